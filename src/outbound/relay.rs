//! The SMTP client to the next hop (Postfix's re-injection smtpd), on
//! mail-send's [`SmtpClient`] for the command/reply exchange.
//!
//! # Per-recipient results
//!
//! amavisd-new, speaking SMTP to Postfix, can only give one reply to DATA; when
//! the next hop refuses some recipients it accepts the message and sends its
//! own non-delivery notification for them. hallmonitor instead proxies the
//! envelope the way Postfix's own `smtpd_proxy_filter` does: the session opens
//! the next-hop transaction at MAIL FROM and forwards each RCPT TO *before*
//! answering Postfix's RCPT, passing the next hop's reply back. A recipient the
//! next hop refuses (4xx or 5xx) is thereby refused to Postfix for that
//! recipient only, and Postfix defers or bounces exactly that recipient. The
//! body is sent only after the scan, and only if the verdict is pass or tag;
//! otherwise the next-hop transaction is abandoned (RSET/QUIT) and nothing is
//! delivered. The one reply to DATA is then the next hop's reply to DATA,
//! which covers every recipient it accepted.
//!
//! We write the DATA content ourselves rather than with `SmtpClient::data`:
//! that function always appends CRLF before the final dot, which would add a
//! blank line to every message that already ends with CRLF.

use mail_send::SmtpClient;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// One SMTP reply from the next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code (`[0, 0, 0]` when the next hop sent none).
    pub esc: [u8; 3],
    pub message: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The reply as our own SMTP reply lines (multi-line replies keep their lines).
    pub fn to_smtp(&self) -> String {
        let lines: Vec<&str> = self.message.lines().filter(|l| !l.is_empty()).collect();
        let lines = if lines.is_empty() { vec![""] } else { lines };
        let esc = if self.esc == [0, 0, 0] {
            String::new()
        } else {
            format!("{}.{}.{} ", self.esc[0], self.esc[1], self.esc[2])
        };
        let mut out = String::new();
        for (i, l) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.push_str(&format!("{}{sep}{esc}{l}\r\n", self.code));
        }
        out
    }
}

impl From<smtp_proto::Response<String>> for Reply {
    fn from(r: smtp_proto::Response<String>) -> Self {
        Reply {
            code: r.code,
            esc: r.esc,
            message: r.message,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot connect to next hop {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: mail_send::Error,
    },
    #[error("next hop {addr}: {source}")]
    Session {
        addr: SocketAddr,
        #[source]
        source: mail_send::Error,
    },
    #[error("next hop {addr} refused the session: {reply}")]
    Refused { addr: SocketAddr, reply: String },
    #[error("next hop {addr}: timed out")]
    Timeout { addr: SocketAddr },
    #[error("next hop {addr}: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What the next hop said it supports in its EHLO reply.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    pub xforward: Vec<String>,
    pub smtputf8: bool,
    pub eightbitmime: bool,
    pub dsn: bool,
    pub size: bool,
}

impl Capabilities {
    fn parse(ehlo: &str) -> Capabilities {
        let mut c = Capabilities::default();
        for line in ehlo.lines().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(kw) = words.next() else { continue };
            match kw.to_ascii_uppercase().as_str() {
                "XFORWARD" => c.xforward = words.map(str::to_ascii_uppercase).collect(),
                "SMTPUTF8" => c.smtputf8 = true,
                "8BITMIME" => c.eightbitmime = true,
                "DSN" => c.dsn = true,
                "SIZE" => c.size = true,
                _ => {}
            }
        }
        c
    }

    /// Whether a MAIL/RCPT parameter (`KEY` or `KEY=value`) may be passed on.
    pub fn allows(&self, param: &str) -> bool {
        let key = param.split('=').next().unwrap_or("").to_ascii_uppercase();
        match key.as_str() {
            "BODY" => self.eightbitmime,
            "SMTPUTF8" => self.smtputf8,
            "RET" | "ENVID" | "NOTIFY" | "ORCPT" => self.dsn,
            // SIZE is dropped on purpose: we add headers, so the client's
            // estimate is no longer the size we send.
            _ => false,
        }
    }
}

/// An open transaction with the next hop.
pub struct NextHop {
    addr: SocketAddr,
    client: SmtpClient<TcpStream>,
    pub capabilities: Capabilities,
}

impl NextHop {
    /// Connect, read the greeting, EHLO, and send the XFORWARD lines the next
    /// hop supports (`xforward` builds them from its advertised attributes).
    /// For a later transaction on the same connection, call [`NextHop::begin`].
    pub async fn connect(
        addr: SocketAddr,
        timeout: Duration,
        helo: &str,
        xforward: impl FnOnce(&[String]) -> Vec<String>,
    ) -> Result<NextHop, RelayError> {
        let mut client = SmtpClient::connect(addr, timeout)
            .await
            .map_err(|source| RelayError::Connect { addr, source })?;
        // One small command per round trip: without NODELAY every exchange
        // waits for the peer's delayed ACK.
        client
            .stream
            .set_nodelay(true)
            .map_err(|source| RelayError::Io { addr, source })?;
        let session = |source| RelayError::Session { addr, source };
        let greeting = tokio::time::timeout(timeout, client.read())
            .await
            .map_err(|_| RelayError::Timeout { addr })?
            .map_err(session)?;
        if greeting.code != 220 {
            return Err(RelayError::Refused {
                addr,
                reply: Reply::from(greeting).to_smtp().trim_end().to_string(),
            });
        }
        let ehlo = client
            .cmd(format!("EHLO {helo}\r\n"))
            .await
            .map_err(session)?;
        if ehlo.code != 250 {
            return Err(RelayError::Refused {
                addr,
                reply: Reply::from(ehlo).to_smtp().trim_end().to_string(),
            });
        }
        let capabilities = Capabilities::parse(&ehlo.message);
        let mut hop = NextHop {
            addr,
            client,
            capabilities,
        };
        hop.begin(xforward).await?;
        Ok(hop)
    }

    /// Start a transaction: send the XFORWARD lines for it (Postfix's smtpd
    /// forgets XFORWARD attributes at the end of each transaction).
    pub async fn begin(
        &mut self,
        xforward: impl FnOnce(&[String]) -> Vec<String>,
    ) -> Result<(), RelayError> {
        for line in xforward(&self.capabilities.xforward) {
            let r = self.cmd(line).await?;
            if r.code != 250 {
                // Not fatal: the message is still delivered, only with less
                // precise logging at the next hop.
                tracing::warn!(code = r.code, "next hop refused XFORWARD");
            }
        }
        Ok(())
    }

    /// The next hop's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Abort the transaction in progress (RSET) so the connection can carry
    /// the next one; false when the connection is no longer usable.
    pub async fn reset(&mut self) -> bool {
        matches!(self.cmd("RSET\r\n".into()).await, Ok(r) if r.code == 250)
    }

    fn params(&self, params: &[String]) -> String {
        let mut s = String::new();
        for p in params.iter().filter(|p| self.capabilities.allows(p)) {
            s.push(' ');
            s.push_str(p);
        }
        s
    }

    /// `MAIL FROM:<addr>` with the parameters the next hop supports.
    pub async fn mail_from(&mut self, addr: &str, params: &[String]) -> Result<Reply, RelayError> {
        let line = format!("MAIL FROM:<{addr}>{}\r\n", self.params(params));
        self.cmd(line).await
    }

    /// `RCPT TO:<addr>` with the parameters the next hop supports.
    pub async fn rcpt_to(&mut self, addr: &str, params: &[String]) -> Result<Reply, RelayError> {
        let line = format!("RCPT TO:<{addr}>{}\r\n", self.params(params));
        self.cmd(line).await
    }

    async fn cmd(&mut self, line: String) -> Result<Reply, RelayError> {
        let addr = self.addr;
        self.client
            .cmd(line)
            .await
            .map(Reply::from)
            .map_err(|source| RelayError::Session { addr, source })
    }

    /// Send the message, given as consecutive parts (our new header and the
    /// unchanged rest); the reply is the next hop's verdict on it.
    pub async fn data(&mut self, parts: &[&[u8]]) -> Result<Reply, RelayError> {
        let r = self.cmd("DATA\r\n".into()).await?;
        if r.code != 354 {
            return Ok(r);
        }
        let addr = self.addr;
        let timeout = self.client.timeout;
        let stream = &mut self.client.stream;
        let send = async {
            let mut stuffer = DotStuffer::default();
            let mut buf = Vec::with_capacity(WRITE_CHUNK + 1024);
            for part in parts {
                for piece in part.chunks(WRITE_CHUNK) {
                    stuffer.push(piece, &mut buf);
                    if buf.len() >= WRITE_CHUNK {
                        stream.write_all(&buf).await?;
                        buf.clear();
                    }
                }
            }
            stuffer.finish(&mut buf);
            stream.write_all(&buf).await
        };
        tokio::time::timeout(timeout, send)
            .await
            .map_err(|_| RelayError::Timeout { addr })?
            .map_err(|source| RelayError::Io { addr, source })?;
        tokio::time::timeout(timeout, self.client.read())
            .await
            .map_err(|_| RelayError::Timeout { addr })?
            .map(Reply::from)
            .map_err(|source| RelayError::Session { addr, source })
    }

    /// End the session politely; errors do not matter any more.
    pub async fn quit(mut self) {
        let _ = self.client.cmd("QUIT\r\n").await;
    }
}

/// Bytes written to the next hop per `write` call while sending DATA: the
/// message is streamed in pieces, never copied whole.
const WRITE_CHUNK: usize = 64 * 1024;

/// SMTP transparency (RFC 5321 4.5.2) over a message given in pieces.
#[derive(Debug)]
struct DotStuffer {
    at_line_start: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer {
            at_line_start: true,
        }
    }
}

impl DotStuffer {
    fn push(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        for &b in piece {
            if self.at_line_start && b == b'.' {
                out.push(b'.');
            }
            out.push(b);
            self.at_line_start = b == b'\n';
        }
    }

    /// The end-of-data line; a message not ending in a line break gets CRLF,
    /// as the terminator needs one.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// The whole DATA content for `message` (dot-stuffed, terminated).
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut s = DotStuffer::default();
    s.push(message, &mut out);
    s.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_keeps_bytes_and_terminates() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
    }

    #[test]
    fn stuffing_carries_line_starts_across_pieces() {
        let mut s = DotStuffer::default();
        let mut out = Vec::new();
        s.push(b"a\r\n", &mut out);
        s.push(b".b\r", &mut out);
        s.push(b"\n.", &mut out);
        s.finish(&mut out);
        assert_eq!(out, b"a\r\n..b\r\n..\r\n.\r\n");
    }

    #[test]
    fn capabilities_from_postfix_ehlo() {
        let c = Capabilities::parse(
            "mx\nPIPELINING\nSIZE 10240000\n8BITMIME\nDSN\nSMTPUTF8\nXFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT",
        );
        assert!(c.dsn && c.smtputf8 && c.eightbitmime && c.size);
        assert!(c.xforward.contains(&"IDENT".to_string()));
        assert!(c.allows("NOTIFY=SUCCESS,FAILURE"));
        assert!(c.allows("BODY=8BITMIME"));
        assert!(!c.allows("SIZE=100"));
    }

    #[test]
    fn reply_text_keeps_codes() {
        let r = Reply {
            code: 550,
            esc: [5, 1, 1],
            message: "no such user".into(),
        };
        assert_eq!(r.to_smtp(), "550 5.1.1 no such user\r\n");
    }
}
