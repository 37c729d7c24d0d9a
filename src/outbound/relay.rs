//! The SMTP client to the next hop (Postfix's re-injection smtpd).
//!
//! # Per-recipient results
//!
//! amavisd-new, speaking SMTP to Postfix, can only give one reply to DATA; when
//! the next hop refuses some recipients it accepts the message and sends its
//! own non-delivery notification for them. hallmonitor instead proxies the
//! envelope the way Postfix's own `smtpd_proxy_filter` does: the session
//! forwards each RCPT TO *before* answering Postfix's RCPT, passing the next
//! hop's reply back. A recipient the next hop refuses (4xx or 5xx) is thereby
//! refused to Postfix for that recipient only, and Postfix defers or bounces
//! exactly that recipient. MAIL FROM is answered at once and goes to the next
//! hop with the first RCPT TO; a MAIL FROM the next hop refuses is refused,
//! with its reply, on every RCPT TO, which Postfix treats as it would the
//! refused MAIL FROM (every recipient deferred or bounced). The body is sent
//! only after the scan, and only if the verdict is pass or tag; otherwise the
//! next-hop transaction is abandoned (RSET/QUIT) and nothing is delivered.
//! The one reply to DATA is then the next hop's reply to the message, which
//! covers every recipient it accepted.
//!
//! # Round trips
//!
//! Every request/reply round trip wakes a thread here and a process at the
//! next hop, and on a busy server those wake-ups cost more than the bytes. So
//! when the next hop offers PIPELINING (RFC 2920) the XFORWARD lines go out in
//! one write with MAIL FROM and the first RCPT TO, and when it offers
//! CHUNKING (RFC 3030) the message goes as one `BDAT <n> LAST` with its bytes
//! in the same write instead of DATA, wait for 354, content. Replies are read
//! through our own buffer, since pipelined replies can arrive in one segment.
//!
//! We write the DATA content ourselves rather than with a library's data
//! call: those append CRLF before the final dot, which would add a blank line
//! to every message that already ends with CRLF.

use smtp_proto::response::parser::ResponseReceiver;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        source: std::io::Error,
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
    #[error("next hop {addr} closed the connection")]
    Closed { addr: SocketAddr },
    #[error("next hop {addr} sent a reply we cannot parse")]
    Unparseable { addr: SocketAddr },
}

/// What the next hop said it supports in its EHLO reply.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    pub xforward: Vec<String>,
    pub smtputf8: bool,
    pub eightbitmime: bool,
    pub dsn: bool,
    pub size: bool,
    pub pipelining: bool,
    pub chunking: bool,
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
                "PIPELINING" => c.pipelining = true,
                "CHUNKING" => c.chunking = true,
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

/// A connection to the next hop, between or within transactions.
pub struct NextHop {
    addr: SocketAddr,
    stream: TcpStream,
    /// Limit for each exchange (a command group and its replies, or the
    /// message and its reply).
    timeout: Duration,
    /// Bytes received and not yet parsed: pipelined replies can arrive
    /// together, and the ones after the first must not be lost.
    input: Vec<u8>,
    replies: ResponseReceiver,
    /// XFORWARD lines for the transaction [`NextHop::begin`] started; sent
    /// with its MAIL FROM.
    xforward: Vec<String>,
    /// False once an exchange failed half-way (timeout, I/O error, a reply we
    /// cannot parse) or a reset was refused: the connection may be out of
    /// step and must not carry another transaction.
    usable: bool,
    pub capabilities: Capabilities,
}

impl NextHop {
    /// Connect, read the greeting and EHLO, and prepare the XFORWARD lines
    /// the next hop supports for the first transaction (`xforward` builds
    /// them from its advertised attributes; they go out with MAIL FROM).
    /// For a later transaction on the same connection, call [`NextHop::begin`].
    pub async fn connect(
        addr: SocketAddr,
        timeout: Duration,
        helo: &str,
        xforward: impl FnOnce(&[String]) -> Vec<String>,
    ) -> Result<NextHop, RelayError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| RelayError::Timeout { addr })?
            .map_err(|source| RelayError::Connect { addr, source })?;
        // Every exchange is a small write waiting for its reply: without
        // NODELAY each one would wait for the peer's delayed ACK.
        stream
            .set_nodelay(true)
            .map_err(|source| RelayError::Io { addr, source })?;
        let mut hop = NextHop {
            addr,
            stream,
            timeout,
            input: Vec::with_capacity(1024),
            replies: ResponseReceiver::default(),
            xforward: Vec::new(),
            usable: true,
            capabilities: Capabilities::default(),
        };
        let greeting = hop.cmd(None).await?;
        let ehlo = hop.cmd(Some(format!("EHLO {helo}\r\n"))).await?;
        for (reply, expected) in [(&greeting, 220), (&ehlo, 250)] {
            if reply.code != expected {
                return Err(RelayError::Refused {
                    addr,
                    reply: reply.to_smtp().trim_end().to_string(),
                });
            }
        }
        hop.capabilities = Capabilities::parse(&ehlo.message);
        hop.begin(xforward);
        Ok(hop)
    }

    /// Start a transaction on a connection that carried one before: its
    /// XFORWARD lines (Postfix's smtpd forgets XFORWARD attributes at the end
    /// of each transaction) go out with the next MAIL FROM.
    pub fn begin(&mut self, xforward: impl FnOnce(&[String]) -> Vec<String>) {
        self.xforward = xforward(&self.capabilities.xforward);
    }

    /// The next hop's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the connection is in step and may carry another transaction.
    pub fn is_usable(&self) -> bool {
        self.usable
    }

    /// Abort the transaction in progress (RSET) so the connection can carry
    /// the next one; false when the connection is no longer usable.
    pub async fn reset(&mut self) -> bool {
        self.xforward.clear();
        let ok = matches!(self.cmd(Some("RSET\r\n".into())).await, Ok(r) if r.code == 250);
        self.usable &= ok;
        ok
    }

    fn params(&self, params: &[String]) -> String {
        let mut s = String::new();
        for p in params.iter().filter(|p| self.capabilities.allows(p)) {
            s.push(' ');
            s.push_str(p);
        }
        s
    }

    /// `MAIL FROM:<addr>` with the parameters the next hop supports, after
    /// the transaction's XFORWARD lines (in the same write when the next hop
    /// pipelines). A refused XFORWARD is only logged: the message is still
    /// delivered, with less precise logging at the next hop.
    pub async fn mail_from(&mut self, addr: &str, params: &[String]) -> Result<Reply, RelayError> {
        self.open(addr, params, None).await.map(|(mail, _)| mail)
    }

    /// [`NextHop::mail_from`] with the first `RCPT TO` (address and
    /// parameters) in the same write. When MAIL FROM is refused the RCPT
    /// reply means nothing (it can only be "need MAIL"), but the connection
    /// stays in step.
    pub async fn mail_from_rcpt_to(
        &mut self,
        from: &str,
        mail_params: &[String],
        to: &str,
        rcpt_params: &[String],
    ) -> Result<(Reply, Reply), RelayError> {
        let (mail, rcpt) = self
            .open(from, mail_params, Some((to, rcpt_params)))
            .await?;
        let rcpt = rcpt.ok_or(RelayError::Closed { addr: self.addr })?;
        Ok((mail, rcpt))
    }

    async fn open(
        &mut self,
        from: &str,
        mail_params: &[String],
        rcpt: Option<(&str, &[String])>,
    ) -> Result<(Reply, Option<Reply>), RelayError> {
        let mut lines = std::mem::take(&mut self.xforward);
        lines.push(format!(
            "MAIL FROM:<{from}>{}\r\n",
            self.params(mail_params)
        ));
        if let Some((to, params)) = rcpt {
            lines.push(format!("RCPT TO:<{to}>{}\r\n", self.params(params)));
        }
        let mut replies = self.exchange(&lines).await?;
        let rcpt = rcpt.and_then(|_| replies.pop());
        let mail = replies
            .pop()
            .ok_or(RelayError::Closed { addr: self.addr })?;
        for r in replies.iter().filter(|r| r.code != 250) {
            tracing::warn!(code = r.code, "next hop refused XFORWARD");
        }
        Ok((mail, rcpt))
    }

    /// `RCPT TO:<addr>` with the parameters the next hop supports.
    pub async fn rcpt_to(&mut self, addr: &str, params: &[String]) -> Result<Reply, RelayError> {
        let line = format!("RCPT TO:<{addr}>{}\r\n", self.params(params));
        self.cmd(Some(line)).await
    }

    /// One command and its reply; without a command, the next reply (the
    /// greeting, or the verdict on a message just sent).
    async fn cmd(&mut self, line: Option<String>) -> Result<Reply, RelayError> {
        let mut replies = self.exchange(line.as_slice()).await?;
        replies.pop().ok_or(RelayError::Closed { addr: self.addr })
    }

    /// Send `lines` and read one reply per line (with no lines: one reply).
    /// With PIPELINING all lines go in one write and the
    /// replies are read in order afterwards; without it, one at a time.
    async fn exchange(&mut self, lines: &[String]) -> Result<Vec<Reply>, RelayError> {
        let addr = self.addr;
        let result = tokio::time::timeout(self.timeout, async {
            let mut replies = Vec::with_capacity(lines.len().max(1));
            if lines.is_empty() {
                replies.push(self.read_reply().await?);
            } else if self.capabilities.pipelining {
                self.write(lines.concat().as_bytes()).await?;
                for _ in lines {
                    replies.push(self.read_reply().await?);
                }
            } else {
                for line in lines {
                    self.write(line.as_bytes()).await?;
                    replies.push(self.read_reply().await?);
                }
            }
            Ok(replies)
        })
        .await
        .unwrap_or(Err(RelayError::Timeout { addr }));
        if result.is_err() {
            // Replies may still be on their way: the next read would take
            // one of them for the reply to a later command.
            self.usable = false;
        }
        result
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), RelayError> {
        let addr = self.addr;
        self.stream
            .write_all(bytes)
            .await
            .map_err(|source| RelayError::Io { addr, source })
    }

    /// The next reply, from what was already received or from the stream.
    async fn read_reply(&mut self) -> Result<Reply, RelayError> {
        let addr = self.addr;
        loop {
            if !self.input.is_empty() {
                let mut bytes = self.input.iter();
                match self.replies.parse(&mut bytes) {
                    Ok(r) => {
                        let used = self.input.len() - bytes.as_slice().len();
                        self.input.drain(..used);
                        self.replies.reset();
                        return Ok(Reply::from(r));
                    }
                    // The parser keeps the partial reply itself.
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => self.input.clear(),
                    Err(_) => return Err(RelayError::Unparseable { addr }),
                }
            }
            let n = self
                .stream
                .read_buf(&mut self.input)
                .await
                .map_err(|source| RelayError::Io { addr, source })?;
            if n == 0 {
                return Err(RelayError::Closed { addr });
            }
        }
    }

    /// Send the message, given as consecutive parts (our new header and the
    /// unchanged rest); the reply is the next hop's verdict on it. Over BDAT
    /// when the next hop offers CHUNKING, else over DATA. Whatever the reply,
    /// the connection is left ready for the next MAIL FROM, or marked
    /// unusable (see [`NextHop::is_usable`]).
    pub async fn data(&mut self, parts: &[&[u8]]) -> Result<Reply, RelayError> {
        let reply = if self.capabilities.chunking {
            let (command, framing) = Framing::bdat(parts);
            self.send_message(command.into_bytes(), parts, framing)
                .await?
        } else {
            let r = self.cmd(Some("DATA\r\n".into())).await?;
            if r.code != 354 {
                // The transaction is still open at the next hop.
                self.reset().await;
                return Ok(r);
            }
            self.send_message(Vec::new(), parts, Framing::Dot(DotStuffer::default()))
                .await?
        };
        if !reply.is_positive() && self.capabilities.chunking {
            // RFC 3030 only says the transaction failed, not whether the
            // next hop still holds its envelope; RSET makes sure.
            self.reset().await;
        }
        Ok(reply)
    }

    /// Write `head` (the BDAT command: in the same write as the start of
    /// the message) and then the message framed by `framing`, in writes of
    /// about [`WRITE_CHUNK`] (the message is streamed, never copied whole),
    /// and read the one reply.
    async fn send_message(
        &mut self,
        head: Vec<u8>,
        parts: &[&[u8]],
        mut framing: Framing,
    ) -> Result<Reply, RelayError> {
        let addr = self.addr;
        let stream = &mut self.stream;
        let send = async {
            let mut buf = head;
            buf.reserve(WRITE_CHUNK + 1024);
            for part in parts {
                for piece in part.chunks(WRITE_CHUNK) {
                    framing.push(piece, &mut buf);
                    if buf.len() >= WRITE_CHUNK {
                        stream.write_all(&buf).await?;
                        buf.clear();
                    }
                }
            }
            framing.finish(&mut buf);
            stream.write_all(&buf).await
        };
        let sent = tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| RelayError::Timeout { addr })
            .and_then(|r| r.map_err(|source| RelayError::Io { addr, source }));
        if let Err(e) = sent {
            self.usable = false;
            return Err(e);
        }
        self.cmd(None).await
    }

    /// End the session politely; errors do not matter any more.
    pub async fn quit(mut self) {
        let _ = self.cmd(Some("QUIT\r\n".into())).await;
    }
}

/// Bytes written to the next hop per `write` call while sending a message:
/// it is streamed in pieces, never copied whole.
const WRITE_CHUNK: usize = 64 * 1024;

/// How the message content is framed on the wire.
#[derive(Debug)]
enum Framing {
    /// DATA: dot-stuffed, ended by the `.` line.
    Dot(DotStuffer),
    /// One `BDAT <n> LAST` chunk: the bytes as they are, plus CRLF when the
    /// message does not end in a line break (as with DATA, whose terminator
    /// needs one; counted in n).
    Bdat { add_crlf: bool },
}

impl Framing {
    /// The `BDAT <n> LAST` command for the message in `parts`, and its framing.
    fn bdat(parts: &[&[u8]]) -> (String, Framing) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let add_crlf = parts
            .iter()
            .rev()
            .find(|p| !p.is_empty())
            .is_some_and(|p| !p.ends_with(b"\n"));
        let n = len + if add_crlf { 2 } else { 0 };
        (format!("BDAT {n} LAST\r\n"), Framing::Bdat { add_crlf })
    }

    fn push(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        match self {
            Framing::Dot(s) => s.push(piece, out),
            Framing::Bdat { .. } => out.extend_from_slice(piece),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            Framing::Dot(s) => s.finish(out),
            Framing::Bdat { add_crlf } => {
                if *add_crlf {
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
}

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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

    /// The whole BDAT exchange for `parts`, as written to the next hop.
    fn bdat_wire(parts: &[&[u8]]) -> Vec<u8> {
        let (command, mut framing) = Framing::bdat(parts);
        let mut out = command.into_bytes();
        for p in parts {
            framing.push(p, &mut out);
        }
        framing.finish(&mut out);
        out
    }

    #[test]
    fn bdat_sends_the_bytes_unstuffed_and_counts_them() {
        // Dots at line starts and a lone "." line are data, not a terminator.
        let msg: &[&[u8]] = &[b"X-A: 1\r\n", b"Subject: s\r\n\r\n.\r\n..b\r\n"];
        assert_eq!(
            bdat_wire(msg),
            b"BDAT 30 LAST\r\nX-A: 1\r\nSubject: s\r\n\r\n.\r\n..b\r\n".to_vec()
        );
        // Without a final line break CRLF is added, and counted.
        assert_eq!(
            bdat_wire(&[b"H: v\r\n\r\n", b"body"]),
            b"BDAT 14 LAST\r\nH: v\r\n\r\nbody\r\n"
        );
        // A trailing empty part does not hide the last byte.
        assert_eq!(
            bdat_wire(&[b"H: v\r\n\r\nx\n", b""]),
            b"BDAT 10 LAST\r\nH: v\r\n\r\nx\n"
        );
        assert_eq!(bdat_wire(&[]), b"BDAT 0 LAST\r\n");
    }

    #[test]
    fn bdat_count_matches_the_bytes_sent_for_any_message() {
        for msg in [&b"a"[..], b"a\r\n", b"\r\n.\r\n", b"x\ny", b"\n"] {
            for split in 0..=msg.len() {
                let (head, tail) = msg.split_at(split);
                let wire = bdat_wire(&[head, tail]);
                let nl = wire.iter().position(|&b| b == b'\n').unwrap();
                let command = std::str::from_utf8(&wire[..=nl]).unwrap();
                let n: usize = command
                    .strip_prefix("BDAT ")
                    .and_then(|c| c.strip_suffix(" LAST\r\n"))
                    .unwrap()
                    .parse()
                    .unwrap();
                let content = &wire[nl + 1..];
                assert_eq!(n, content.len(), "{msg:?} split at {split}");
                assert!(content.starts_with(msg) && content.ends_with(b"\n"));
            }
        }
    }

    #[test]
    fn capabilities_from_postfix_ehlo() {
        let c = Capabilities::parse(
            "mx\nPIPELINING\nSIZE 10240000\nVRFY\nETRN\nENHANCEDSTATUSCODES\n8BITMIME\nDSN\nSMTPUTF8\nCHUNKING\nXFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT",
        );
        assert!(c.dsn && c.smtputf8 && c.eightbitmime && c.size);
        assert!(c.pipelining && c.chunking);
        assert!(c.xforward.contains(&"IDENT".to_string()));
        assert!(c.allows("NOTIFY=SUCCESS,FAILURE"));
        assert!(c.allows("BODY=8BITMIME"));
        assert!(!c.allows("SIZE=100"));
    }

    #[test]
    fn smtp_sink_offers_pipelining_but_not_chunking() {
        // Postfix 3.7's smtp-sink: the DATA path stays in use there.
        let c = Capabilities::parse(
            "smtp-sink\npipelining\n8BITMIME\nAUTH PLAIN LOGIN\nXCLIENT NAME HELO\nXFORWARD NAME ADDR PROTO HELO\nENHANCEDSTATUSCODES\nDSN\n",
        );
        assert!(c.pipelining && !c.chunking);
        let c = Capabilities::parse("mx\nSIZE 1000\n8BITMIME");
        assert!(!c.pipelining && !c.chunking);
        // The host name line is never read as a keyword.
        assert!(!Capabilities::parse("CHUNKING\nSIZE 1").chunking);
    }

    /// A peer that sends `script` (greeting, EHLO reply, then whatever
    /// follows) in one write after each read, and returns what each of its
    /// reads received once the client hangs up.
    async fn scripted_peer(
        script: Vec<&'static [u8]>,
    ) -> (SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut reads = Vec::new();
            let mut buf = [0u8; 4096];
            for (i, chunk) in script.into_iter().enumerate() {
                if i > 0 {
                    let n = s.read(&mut buf).await.unwrap();
                    reads.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
                s.write_all(chunk).await.unwrap();
            }
            // Then only listen, until the client hangs up.
            while let Ok(n @ 1..) = s.read(&mut buf).await {
                reads.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            reads
        });
        (addr, task)
    }

    #[tokio::test]
    async fn pipelined_replies_arriving_together_are_all_read() {
        let (addr, peer) = scripted_peer(vec![
            b"220 mx ESMTP\r\n",
            b"250-mx\r\n250-PIPELINING\r\n250 XFORWARD ADDR IDENT\r\n",
            // XFORWARD, XFORWARD (refused: only logged), MAIL; one segment.
            b"250 2.0.0 Ok\r\n550 5.5.1 no\r\n250-2.1.0 Ok\r\n250 2.1.0 really\r\n",
        ])
        .await;
        let mut hop = NextHop::connect(addr, Duration::from_secs(5), "hm", |attrs| {
            assert_eq!(attrs, ["ADDR", "IDENT"]);
            vec![
                "XFORWARD ADDR=192.0.2.1\r\n".into(),
                "XFORWARD IDENT=Q1\r\n".into(),
            ]
        })
        .await
        .unwrap();
        let mail = hop.mail_from("a@b", &[]).await.unwrap();
        assert_eq!((mail.code, mail.message.as_str()), (250, "Ok\nreally"));
        assert!(hop.is_usable());
        drop(hop);
        // The peer answered only after it had all three commands, in order:
        // one round trip.
        let reads = peer.await.unwrap();
        assert_eq!(
            reads,
            [
                "EHLO hm\r\n",
                "XFORWARD ADDR=192.0.2.1\r\nXFORWARD IDENT=Q1\r\nMAIL FROM:<a@b>\r\n"
            ]
        );
    }

    #[tokio::test]
    async fn a_next_hop_that_stops_answering_times_out_and_is_not_reused() {
        let (addr, _peer) = scripted_peer(vec![
            b"220 mx ESMTP\r\n",
            b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
            b"",
        ])
        .await;
        let mut hop = NextHop::connect(addr, Duration::from_millis(300), "hm", |_| Vec::new())
            .await
            .unwrap();
        let r = hop.data(&[b"Subject: x\r\n\r\nhi\r\n"]).await;
        assert!(matches!(r, Err(RelayError::Timeout { .. })), "{r:?}");
        assert!(!hop.is_usable());
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
