//! One milter connection: the [`miltr_server::Milter`] callbacks collect the
//! macros, the envelope events, the header fields and the body; end of
//! message hands them to [`super::decide`] and turns its [`Reply`] into the
//! milter's answer.
//!
//! Every event before end of message answers "continue": the verdict needs
//! the whole message, and answering early would let Postfix skip events.

use super::decide::{self, Received, Reply};
use super::edits::{Change, HeaderSection};
use super::envelope::{self, Events, Macros};
use crate::serve::Shared;
use async_trait::async_trait;
use miltr_common::actions::{Action, Continue, Discard, Replycode};
use miltr_common::commands::{Body, Connect, Header, Helo, Macro, Mail, Recipient};
use miltr_common::modifications::ModificationResponse;
use miltr_common::modifications::headers::{AddHeader, ChangeHeader};
use miltr_common::optneg::{Capability, MacroStage, OptNeg, Protocol};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::{Instrument, debug, info_span};

/// Session errors (none are expected: every failure becomes a 451).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {}

/// The message being received.
#[derive(Default)]
struct Message {
    events: Events,
    headers: HeaderSection,
    body: Vec<u8>,
    body_bytes: usize,
    mail_params: Vec<String>,
}

pub struct Session {
    shared: Arc<Shared>,
    macros: Macros,
    connect: Events,
    message: Option<Message>,
    /// True from MAIL to the end of the message (shutdown waits for it).
    pub busy: Arc<AtomicBool>,
}

impl Session {
    pub fn new(shared: Arc<Shared>) -> Session {
        Session {
            shared,
            macros: Macros::default(),
            connect: Events::default(),
            message: None,
            busy: Arc::new(AtomicBool::new(false)),
        }
    }

    fn message(&mut self) -> &mut Message {
        self.message.get_or_insert_with(Message::default)
    }

    fn end_message(&mut self) {
        self.message = None;
        self.macros.end_message();
        self.busy.store(false, Ordering::Release);
    }

    /// The most we keep in memory: the scan limit, and up to twice that so
    /// an oversized message can still be held as unscannable.
    fn keep_limit(&self) -> usize {
        self.shared.settings().max_message_bytes.saturating_mul(2)
    }
}

/// The parameters hallmonitor keeps with a held message (as the relay does).
fn kept_params(args: &[std::borrow::Cow<'_, str>]) -> Vec<String> {
    args.iter()
        .filter(|p| {
            let k = p.split('=').next().unwrap_or("").to_ascii_uppercase();
            matches!(k.as_str(), "BODY" | "SMTPUTF8" | "RET" | "ENVID")
        })
        .map(|p| p.to_string())
        .collect()
}

fn answer(reply: Reply) -> ModificationResponse {
    match reply {
        Reply::Accept(changes) => {
            let mut b = ModificationResponse::builder();
            for c in changes {
                match c {
                    Change::Change { index, name, value } => {
                        b.push(ChangeHeader::new(index, name.as_bytes(), value.as_bytes()))
                    }
                    Change::Add { name, value } => {
                        b.push(AddHeader::new(name.as_bytes(), value.as_bytes()))
                    }
                }
            }
            b.contin()
        }
        Reply::Discard => ModificationResponse::builder().build(Discard),
        Reply::Code(code, x, text) => {
            let digits = [
                (code / 100) as u8,
                (code / 10 % 10) as u8,
                (code % 10) as u8,
            ];
            let text = crate::disposition::one_line(&text);
            let action: Action = Replycode::new(digits, x, &text).into();
            ModificationResponse::builder().build(action)
        }
    }
}

#[async_trait]
impl miltr_server::Milter for Session {
    type Error = SessionError;

    async fn option_negotiation(
        &mut self,
        theirs: OptNeg,
    ) -> Result<OptNeg, miltr_server::Error<Self::Error>> {
        let mut ours = OptNeg {
            capabilities: Capability::SMFIF_ADDHDRS | Capability::SMFIF_CHGHDRS,
            // Postfix need not wait for a reply to any event before the end
            // of the message (see `conn`), and need not send the events we
            // have no use for (DATA, end of headers, unknown commands): each
            // is a write in Postfix and a read here for every message.
            protocol: super::conn::no_reply_flags()
                | Protocol::NO_DATA
                | Protocol::NO_END_OF_HEADER
                | Protocol::NO_UNKNOWN,
            ..OptNeg::default()
        };
        // A hint only: main.cf's milter_*_macros lists are the guarantee.
        let split = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        ours.macro_stages
            .with_stage(MacroStage::Connect, &split(envelope::CONNECT_MACROS));
        ours.macro_stages
            .with_stage(MacroStage::MailFrom, &split(envelope::MAIL_MACROS));
        ours.macro_stages
            .with_stage(MacroStage::RcptTo, &split(envelope::RCPT_MACROS));
        ours.macro_stages
            .with_stage(MacroStage::EndOfBody, &split(envelope::EOD_MACROS));
        if theirs.version < 6 {
            tracing::error!(
                version = theirs.version,
                "configuration error: the MTA offers milter protocol {}; set milter_protocol = 6",
                theirs.version
            );
        }
        let mut merged = ours
            .merge_compatible(&theirs)
            .map_err(miltr_common::ProtocolError::CompatibilityError)?;
        merged.version = theirs.version.min(6);
        Ok(merged)
    }

    async fn macro_(&mut self, m: Macro) -> Result<(), Self::Error> {
        self.macros.ingest(m.code, m.macros());
        Ok(())
    }

    async fn connect(&mut self, c: Connect) -> Result<Action, Self::Error> {
        self.connect.connect_host = Some(c.hostname().into_owned());
        let addr = c.address().into_owned();
        self.connect.connect_addr = (!addr.is_empty()).then_some(addr);
        self.connect.connect_port = c.port;
        debug!(host = %c.hostname(), addr = %c.address(), port = ?c.port, "milter connect");
        Ok(Continue.into())
    }

    async fn helo(&mut self, h: Helo) -> Result<Action, Self::Error> {
        self.connect.helo = Some(h.helo().trim_end_matches('\0').to_string());
        Ok(Continue.into())
    }

    async fn mail(&mut self, m: Mail) -> Result<Action, Self::Error> {
        self.message = None;
        self.busy.store(true, Ordering::Release);
        let params = kept_params(&m.esmtp_args());
        let msg = self.message();
        msg.events.mail_from = Some(m.sender().into_owned());
        msg.mail_params = params;
        Ok(Continue.into())
    }

    async fn rcpt(&mut self, r: Recipient) -> Result<Action, Self::Error> {
        let to = r.recipient().into_owned();
        self.message().events.rcpts.push(to);
        Ok(Continue.into())
    }

    async fn header(&mut self, h: Header) -> Result<Action, Self::Error> {
        let (name, value) = (h.name().into_owned(), h.value().into_owned());
        self.message().headers.push(&name, &value);
        Ok(Continue.into())
    }

    async fn body(&mut self, b: Body) -> Result<Action, Self::Error> {
        let limit = self.keep_limit();
        let msg = self.message();
        msg.body_bytes += b.as_bytes().len();
        if msg.headers.bytes + msg.body_bytes <= limit {
            msg.body.extend_from_slice(b.as_bytes());
        } else if !msg.body.is_empty() {
            msg.body = Vec::new();
        }
        Ok(Continue.into())
    }

    async fn end_of_body(&mut self) -> Result<ModificationResponse, Self::Error> {
        let settings = self.shared.settings();
        let mut msg = self.message.take().unwrap_or_default();
        let mut events = std::mem::take(&mut msg.events);
        events.connect_host = self.connect.connect_host.clone();
        events.connect_addr = self.connect.connect_addr.clone();
        events.connect_port = self.connect.connect_port;
        events.helo = self.connect.helo.clone();
        self.macros.warn_missing();
        let envelope = envelope::envelope(&self.macros, &events);
        let span = info_span!(
            "message",
            queue_id = envelope.queue_id.as_deref().unwrap_or("-")
        );
        let total = msg.headers.bytes + 2 + msg.body_bytes;
        let truncated = total > self.keep_limit();
        let received = Received {
            envelope,
            headers: msg.headers,
            body: msg.body,
            oversize: total > settings.max_message_bytes,
            truncated,
            mail_params: msg.mail_params,
        };
        let reply = decide::judge(settings, received).instrument(span).await;
        self.end_message();
        Ok(answer(reply))
    }

    async fn abort(&mut self) -> Result<(), Self::Error> {
        self.end_message();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miltr_common::encoding::ServerMessage;

    #[test]
    fn reply_codes_become_replycode_actions() {
        let r = answer(Reply::Code(550, [5, 7, 1], "No\r\nthanks".into()));
        match r.final_action() {
            Action::Replycode(rc) => {
                assert_eq!(rc.rcode().code(), [5, 5, 0]);
                assert_eq!(rc.message(), "No  thanks");
            }
            other => panic!("{other:?}"),
        }
        let msgs: Vec<ServerMessage> = answer(Reply::Accept(vec![Change::Add {
            name: "X-Hallmonitor-Verdict".into(),
            value: "pass".into(),
        }]))
        .into();
        assert_eq!(msgs.len(), 2);
    }

    #[test]
    fn keeps_only_relay_parameters() {
        let args = vec!["BODY=8BITMIME".into(), "SIZE=10".into(), "SMTPUTF8".into()];
        assert_eq!(kept_params(&args), vec!["BODY=8BITMIME", "SMTPUTF8"]);
    }
}
