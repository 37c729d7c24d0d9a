//! Sending one mail with lettre to the `[notify]` SMTP server (by default
//! the relay's re-injection next hop, which does not scan again).

use crate::config::Config;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("notify.smtp `{0}` is not an IP address and port")]
    Server(String),
    #[error("bad address `{0}`")]
    Address(String),
    #[error("building the mail: {0}")]
    Build(String),
    #[error("sending to {server}: {message}")]
    Smtp { server: String, message: String },
}

/// A mail to send.
#[derive(Debug, Clone, Default)]
pub struct Outgoing<'a> {
    pub to: Vec<String>,
    pub subject: &'a str,
    pub text: &'a str,
    /// HTML alternative; it may show the chart as `cid:chart`.
    pub html: Option<&'a str>,
    /// The inline chart (Content-ID `<chart>`).
    pub png: Option<&'a [u8]>,
    /// Extra headers besides `Auto-Submitted` and `X-Hallmonitor-Alert`.
    pub headers: Vec<(&'static str, String)>,
}

/// Content-ID of the inline chart in summaries.
pub const CHART_CID: &str = "chart";

/// Build the RFC 5322 message.
pub fn build(config: &Config, out: &Outgoing<'_>) -> Result<Message, SendError> {
    let from_addr = config.notify_from();
    let from: Mailbox = format!("hallmonitor <{from_addr}>")
        .parse()
        .map_err(|_| SendError::Address(from_addr.clone()))?;
    let mut b = Message::builder().from(from).subject(out.subject);
    for to in &out.to {
        let mb: Mailbox = to.parse().map_err(|_| SendError::Address(to.clone()))?;
        b = b.to(mb);
    }
    let mut headers = vec![
        ("Auto-Submitted", "auto-generated".to_string()),
        ("X-Hallmonitor-Alert", "1".to_string()),
    ];
    headers.extend(out.headers.iter().cloned());
    for (name, value) in headers {
        let name = HeaderName::new_from_ascii(name.to_string())
            .map_err(|e| SendError::Build(e.to_string()))?;
        b = b.raw_header(HeaderValue::new(name, value));
    }
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(out.text.to_string());
    let msg = match out.html {
        None => b.singlepart(text),
        Some(html) => {
            let html_part = SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(html.to_string());
            let rich = match out.png {
                Some(png) => {
                    let ct = ContentType::parse("image/png")
                        .map_err(|e| SendError::Build(e.to_string()))?;
                    MultiPart::related()
                        .singlepart(html_part)
                        .singlepart(Attachment::new_inline(CHART_CID.into()).body(png.to_vec(), ct))
                }
                None => MultiPart::related().singlepart(html_part),
            };
            b.multipart(MultiPart::alternative().singlepart(text).multipart(rich))
        }
    };
    msg.map_err(|e| SendError::Build(e.to_string()))
}

/// Send one mail; one attempt, with a timeout.
pub async fn send(config: &Config, out: &Outgoing<'_>) -> Result<(), SendError> {
    let server = config.notify_smtp();
    let addr: std::net::SocketAddr = server
        .parse()
        .map_err(|_| SendError::Server(server.clone()))?;
    let msg = build(config, out)?;
    let transport: AsyncSmtpTransport<Tokio1Executor> =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(addr.port())
            .hello_name(ClientId::Domain(config.relay.hostname.clone()))
            .timeout(Some(Duration::from_secs(30)))
            .build();
    transport
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|e| SendError::Smtp {
            server,
            message: e.to_string(),
        })
}
