//! The SMTP server session Postfix's content filter talks to.
//!
//! Command lines are framed here (so line-length limits and `XFORWARD` are
//! ours) and then parsed by smtp-proto. The envelope is proxied to the next
//! hop as it arrives (see [`crate::outbound::relay`] for why), the body is
//! read with dot-unstuffing and size/line limits, scanned on a blocking
//! thread, and acted on.
//!
//! The rule that governs every reply: **250 to DATA only when the next hop
//! has accepted the message or it is durably quarantined.** Every internal
//! failure answers 4xx so Postfix keeps the message and retries.
//!
//! Replies are collected in one buffer and written when no complete command
//! is left in the input, so a pipelined batch (Postfix sends MAIL, RCPT…,
//! DATA together) is answered with one write; with TCP_NODELAY set that
//! avoids stalling on the peer's delayed ACK.

use crate::disposition;
use crate::inbound::xforward::{self, XForward};
use crate::incidents::FrontEnd;
use crate::message::Envelope;
use crate::message::received::auth_login_from_received;
use crate::outbound::headers::{self, Edits};
use crate::outbound::relay::{NextHop, RelayError, Reply};
use crate::policy::Action;
use crate::scan::ScanReport;
use crate::sender::Direction;
use crate::serve::{Settings, Shared};
use smtp_proto::{Error as ProtoError, Request};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{Instrument, debug, info, info_span, warn};

/// RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF.
pub const MAX_COMMAND_LINE: usize = 512;
/// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with CRLF.
pub const MAX_TEXT_LINE: usize = 1000;
/// Recipients per message (RFC 5321 asks for at least 100).
pub const MAX_RECIPIENTS: usize = 1000;

const READ_CHUNK: usize = 64 * 1024;

/// The transaction in progress (between MAIL and the end of DATA).
struct Transaction {
    mail_from: String,
    mail_params: Vec<String>,
    rcpts: Vec<String>,
    /// The next-hop transaction, opened at the first RCPT TO.
    hop: Option<NextHop>,
    /// Why the next-hop transaction could not be opened, or broke: the
    /// reply to every further RCPT TO.
    refusal: Option<String>,
    settings: Arc<Settings>,
}

impl Transaction {
    /// Refuse this and every further RCPT TO with `reply`.
    fn refuse(&mut self, reply: String) -> String {
        self.refusal = Some(reply.clone());
        reply
    }

    /// End the transaction without delivering: the next-hop connection,
    /// reset, if it can carry another one.
    async fn abandon(mut self) -> Option<NextHop> {
        let mut hop = self.hop.take()?;
        hop.reset().await.then_some(hop)
    }
}

/// Why a session ends.
enum Flow {
    Continue,
    Data,
    Quit,
}

/// One client connection.
struct Session {
    stream: TcpStream,
    shared: Arc<Shared>,
    input: Vec<u8>,
    output: Vec<u8>,
    helo: Option<String>,
    xforward: XForward,
    txn: Option<Transaction>,
    /// The next-hop connection kept between transactions: Postfix sends
    /// several messages per connection, and a new next-hop session per
    /// message (connect, EHLO, QUIT) costs both sides more than the scan.
    idle_hop: Option<NextHop>,
    /// Discarding the rest of an over-long command line.
    skipping_line: bool,
    started: Instant,
}

/// Serve one connection until QUIT, timeout, shutdown or error.
pub async fn handle(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let span = info_span!("connection", peer = %peer);
    async move {
        let _ = stream.set_nodelay(true);
        let mut s = Session {
            stream,
            shared,
            input: Vec::with_capacity(4096),
            output: Vec::with_capacity(1024),
            helo: None,
            xforward: XForward::default(),
            txn: None,
            idle_hop: None,
            skipping_line: false,
            started: Instant::now(),
        };
        if let Err(e) = s.run().await {
            debug!(error = %e, "connection ended");
        }
        if let Some(t) = s.txn.take()
            && let Some(hop) = t.abandon().await
        {
            hop.quit().await;
        }
        if let Some(hop) = s.idle_hop.take() {
            hop.quit().await;
        }
    }
    .instrument(span)
    .await
}

enum ReadOutcome {
    Data,
    Closed,
    Idle,
    TooLong,
    Shutdown,
}

impl Session {
    fn settings(&self) -> Arc<Settings> {
        self.shared.settings()
    }

    fn reply(&mut self, text: &str) {
        self.output.extend_from_slice(text.as_bytes());
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
        }
        Ok(())
    }

    /// Wait for more input, bounded by the idle and total timeouts and shutdown.
    async fn read_more(&mut self) -> std::io::Result<ReadOutcome> {
        let settings = self.settings();
        let total_left = settings
            .relay
            .total_timeout()
            .saturating_sub(self.started.elapsed());
        let (limit, is_total) = if total_left < settings.relay.idle_timeout() {
            (total_left, true)
        } else {
            (settings.relay.idle_timeout(), false)
        };
        let mut shutdown = self.shared.shutdown.clone();
        // Read straight into the input buffer: no per-session stack buffer.
        self.input.reserve(READ_CHUNK);
        tokio::select! {
            r = tokio::time::timeout(limit, self.stream.read_buf(&mut self.input)) => match r {
                Err(_) if is_total => Ok(ReadOutcome::TooLong),
                Err(_) => Ok(ReadOutcome::Idle),
                Ok(Ok(0)) => Ok(ReadOutcome::Closed),
                Ok(Ok(_)) => Ok(ReadOutcome::Data),
                Ok(Err(e)) => Err(e),
            },
            () = crate::serve::stopped(&mut shutdown) => Ok(ReadOutcome::Shutdown),
        }
    }

    /// Answer a read that brought no data; false ends the session.
    async fn end_on(&mut self, outcome: ReadOutcome) -> std::io::Result<bool> {
        let text = match outcome {
            ReadOutcome::Data => return Ok(true),
            ReadOutcome::Closed => return Ok(false),
            ReadOutcome::Idle => "421 4.4.2 Idle timeout, closing connection\r\n",
            ReadOutcome::TooLong => "421 4.4.2 Session time limit reached, closing connection\r\n",
            ReadOutcome::Shutdown => "421 4.3.2 Service shutting down, try again later\r\n",
        };
        self.reply(text);
        self.flush().await?;
        Ok(false)
    }

    async fn run(&mut self) -> std::io::Result<()> {
        let host = self.settings().relay.hostname.clone();
        self.reply(&format!("220 {host} ESMTP hallmonitor\r\n"));
        loop {
            while let Some(pos) = self.input.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.input.drain(..=pos).collect();
                if std::mem::take(&mut self.skipping_line) {
                    continue;
                }
                if line.len() > MAX_COMMAND_LINE {
                    self.reply("500 5.5.2 Line too long\r\n");
                    continue;
                }
                match self.command(&line).await {
                    Flow::Continue => {}
                    Flow::Quit => return self.flush().await,
                    Flow::Data => {
                        self.flush().await?;
                        if !self.data().await? {
                            return Ok(());
                        }
                    }
                }
            }
            if self.input.len() > MAX_COMMAND_LINE {
                // A line with no end in sight: answer once, drop it up to its LF.
                self.input.clear();
                if !self.skipping_line {
                    self.skipping_line = true;
                    self.reply("500 5.5.2 Line too long\r\n");
                }
            }
            self.flush().await?;
            let outcome = self.read_more().await?;
            if !self.end_on(outcome).await? {
                return Ok(());
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> Flow {
        let text = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if xforward::is_xforward(text) {
            if self.txn.is_some() {
                self.reply("503 5.5.1 Error: XFORWARD not allowed in a mail transaction\r\n");
            } else {
                let s = String::from_utf8_lossy(text).into_owned();
                match self.xforward.ingest(&s) {
                    Ok(()) => self.reply("250 2.0.0 Ok\r\n"),
                    Err(e) => self.reply(&format!("501 5.5.4 {e}\r\n")),
                }
            }
            return Flow::Continue;
        }
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r.into_owned(),
            Err(e) => {
                let msg = match e {
                    ProtoError::UnknownCommand => "500 5.5.1 Error: command not recognized".into(),
                    ProtoError::InvalidSenderAddress => {
                        "501 5.1.7 Bad sender address syntax".into()
                    }
                    ProtoError::InvalidRecipientAddress => {
                        "501 5.1.3 Bad recipient address syntax".into()
                    }
                    ProtoError::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}"),
                    ProtoError::InvalidParameter { param } => {
                        format!("501 5.5.4 Invalid {param} parameter")
                    }
                    ProtoError::UnsupportedParameter { .. } => {
                        "555 5.5.4 Unsupported parameter".into()
                    }
                    _ => "500 5.5.2 Error: bad syntax".into(),
                };
                self.reply(&format!("{msg}\r\n"));
                return Flow::Continue;
            }
        };
        match request {
            Request::Ehlo { host } => {
                self.reset().await;
                self.xforward = XForward::default();
                self.helo = Some(host);
                let s = self.settings();
                let size = s.max_message_bytes;
                self.reply(&format!(
                    "250-{}\r\n250-PIPELINING\r\n250-SIZE {size}\r\n250-8BITMIME\r\n\
                     250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n\
                     250 XFORWARD {}\r\n",
                    s.relay.hostname,
                    xforward::ATTRIBUTES.join(" ")
                ));
            }
            Request::Helo { host } => {
                self.reset().await;
                self.xforward = XForward::default();
                self.helo = Some(host);
                let h = self.settings().relay.hostname.clone();
                self.reply(&format!("250 {h}\r\n"));
            }
            Request::Mail { from } => {
                if self.helo.is_none() {
                    self.reply("503 5.5.1 Error: send HELO/EHLO first\r\n");
                } else if self.txn.is_some() {
                    self.reply("503 5.5.1 Error: nested MAIL command\r\n");
                } else {
                    let params = mail_params(text);
                    self.mail(from.address, from.size, params).await;
                }
            }
            Request::Rcpt { to } => {
                if self.txn.is_none() {
                    self.reply("503 5.5.1 Error: need MAIL command\r\n");
                } else {
                    let params = rcpt_params(text);
                    self.rcpt(to.address, params).await;
                }
            }
            Request::Data => match &self.txn {
                None => self.reply("503 5.5.1 Error: need MAIL command\r\n"),
                Some(t) if t.rcpts.is_empty() => {
                    self.reply("554 5.5.1 Error: no valid recipients\r\n")
                }
                Some(_) => {
                    self.reply("354 End data with <CR><LF>.<CR><LF>\r\n");
                    return Flow::Data;
                }
            },
            Request::Rset => {
                self.reset().await;
                self.xforward = XForward::default();
                self.reply("250 2.0.0 Ok\r\n");
            }
            Request::Noop { .. } => self.reply("250 2.0.0 Ok\r\n"),
            Request::Quit => {
                self.reply("221 2.0.0 Bye\r\n");
                return Flow::Quit;
            }
            Request::Vrfy { .. } => self.reply("252 2.5.2 Cannot VRFY user\r\n"),
            _ => self.reply("502 5.5.1 Error: command not implemented\r\n"),
        }
        Flow::Continue
    }

    async fn reset(&mut self) {
        if let Some(t) = self.txn.take() {
            let hop = t.abandon().await;
            self.keep_hop(hop);
        }
    }

    /// Keep a next-hop connection for the next transaction.
    fn keep_hop(&mut self, hop: Option<NextHop>) {
        if hop.is_some() {
            self.idle_hop = hop;
        }
    }

    /// End a transaction without delivering, keeping its connection.
    async fn drop_txn(&mut self, txn: Transaction) {
        let hop = txn.abandon().await;
        self.keep_hop(hop);
    }

    /// Open the next-hop transaction with XFORWARD, MAIL FROM and the first
    /// RCPT TO (`to`, `params`): on the idle connection when it is in step and
    /// still goes to the configured next hop, else on a new one. The outer
    /// error means no connection could be made; the inner result holds the
    /// replies to MAIL FROM and RCPT TO.
    async fn next_hop(
        &mut self,
        txn: &Transaction,
        to: &str,
        params: &[String],
    ) -> Result<(NextHop, Result<(Reply, Reply), RelayError>), RelayError> {
        let settings = &txn.settings;
        let (from, mail_params) = (&txn.mail_from, &txn.mail_params);
        let xf = self.xforward.clone();
        if let Some(mut hop) = self.idle_hop.take()
            && hop.addr() == settings.next_hop
            && hop.is_usable()
        {
            hop.begin(|supported| xf.commands(supported));
            // A kept connection the next hop has closed since (its idle
            // timeout, a reload) shows here, as an error or a 421: then the
            // transaction starts again on a new connection.
            match hop.mail_from_rcpt_to(from, mail_params, to, params).await {
                Ok((mail, rcpt)) if mail.code != 421 => return Ok((hop, Ok((mail, rcpt)))),
                _ => debug!("idle next-hop connection failed; reconnecting"),
            }
        }
        let mut hop = NextHop::connect(
            settings.next_hop,
            settings.relay.next_hop_timeout(),
            &settings.relay.hostname,
            |supported| xf.commands(supported),
        )
        .await?;
        let replies = hop.mail_from_rcpt_to(from, mail_params, to, params).await;
        Ok((hop, replies))
    }

    /// MAIL FROM: answered here; it goes to the next hop with the first RCPT
    /// TO, in one round trip (see [`Session::rcpt`]).
    async fn mail(&mut self, from: String, size: usize, params: Vec<String>) {
        let settings = self.settings();
        if size > settings.max_message_bytes {
            self.reply("552 5.3.4 Message size exceeds fixed limit\r\n");
            return;
        }
        self.txn = Some(Transaction {
            mail_from: from,
            mail_params: params,
            rcpts: Vec::new(),
            hop: None,
            refusal: None,
            settings,
        });
        self.reply("250 2.1.0 Ok\r\n");
    }

    /// RCPT TO: answered with the next hop's reply, so a recipient it refuses
    /// is refused alone. The first one opens the next-hop transaction; when
    /// the next hop refuses MAIL FROM (or cannot be reached), this and every
    /// further RCPT TO gets that reply, which leaves Postfix where a refused
    /// MAIL FROM would have.
    async fn rcpt(&mut self, to: String, params: Vec<String>) {
        let Some(mut txn) = self.txn.take() else {
            return;
        };
        let reply = self.rcpt_at_next_hop(&mut txn, to, &params).await;
        self.txn = Some(txn);
        self.reply(&reply);
    }

    async fn rcpt_at_next_hop(
        &mut self,
        txn: &mut Transaction,
        to: String,
        params: &[String],
    ) -> String {
        if txn.rcpts.len() >= MAX_RECIPIENTS {
            return "452 4.5.3 Error: too many recipients\r\n".into();
        }
        if let Some(refusal) = &txn.refusal {
            return refusal.clone();
        }
        let rcpt = match txn.hop.as_mut() {
            Some(hop) => hop.rcpt_to(&to, params).await,
            None => match self.next_hop(txn, &to, params).await {
                Ok((hop, Ok((mail, rcpt)))) if mail.is_positive() => {
                    txn.hop = Some(hop);
                    Ok(rcpt)
                }
                Ok((mut hop, Ok((mail, _)))) => {
                    if hop.reset().await {
                        self.idle_hop = Some(hop);
                    }
                    return txn.refuse(mail.to_smtp());
                }
                Ok((_, Err(e))) => {
                    warn!(error = %e, "next hop failed at MAIL");
                    return txn.refuse("451 4.4.2 Next hop failed, try again later\r\n".into());
                }
                Err(e) => {
                    warn!(error = %e, "next hop unavailable");
                    return txn
                        .refuse("451 4.4.1 Next hop unavailable, try again later\r\n".into());
                }
            },
        };
        match rcpt {
            Ok(r) if r.is_positive() => {
                txn.rcpts.push(to);
                "250 2.1.5 Ok\r\n".into()
            }
            Ok(r) => r.to_smtp(),
            Err(e) => {
                warn!(error = %e, "next hop failed at RCPT");
                txn.hop = None;
                txn.refuse("451 4.4.2 Next hop failed, try again later\r\n".into())
            }
        }
    }

    /// Read the message after 354, then act on it. False ends the session.
    async fn data(&mut self) -> std::io::Result<bool> {
        let max = self
            .txn
            .as_ref()
            .map_or(0, |t| t.settings.max_message_bytes);
        let mut body = Body::new(max);
        loop {
            if body.feed(&mut self.input) {
                break;
            }
            let outcome = self.read_more().await?;
            if !matches!(outcome, ReadOutcome::Data) {
                // Never 250 for a message we did not finish receiving.
                self.reset().await;
                return self.end_on(outcome).await;
            }
        }
        let Some(txn) = self.txn.take() else {
            return Ok(true);
        };
        let reply = if body.oversize {
            self.drop_txn(txn).await;
            "552 5.3.4 Message size exceeds fixed limit\r\n".to_string()
        } else if body.long_line {
            self.drop_txn(txn).await;
            "500 5.5.2 Message has a line longer than 1000 octets\r\n".to_string()
        } else {
            let queue_id = self.xforward.get("IDENT");
            let span = info_span!("message", queue_id = queue_id.as_deref().unwrap_or("-"));
            self.deliver(txn, body.data).instrument(span).await
        };
        // As in Postfix's smtpd, XFORWARD attributes describe one transaction.
        self.xforward = XForward::default();
        self.reply(&reply);
        Ok(true)
    }

    /// Scan and act; returns the reply to the end of DATA.
    async fn deliver(&mut self, mut txn: Transaction, raw: Vec<u8>) -> String {
        let settings = txn.settings.clone();
        let queue_id = self.xforward.get("IDENT");
        let received = headers::received_headers(&raw);
        let envelope = Envelope {
            mail_from: txn.mail_from.clone(),
            rcpt_to: txn.rcpts.clone(),
            client_ip: self.xforward.client_ip(),
            client_name: self.xforward.get("NAME"),
            helo: self.xforward.get("HELO").or_else(|| self.helo.clone()),
            auth_user: queue_id
                .as_deref()
                .and_then(|q| auth_login_from_received(&received, q)),
            queue_id: queue_id.clone(),
            local_submission: self.xforward.is_local_submission(),
        };
        // Released from the quarantine by an operator: a valid release token
        // (HMAC with the server secret) means it was scanned and reviewed, so
        // it is delivered as it is. A forged or stale token is scanned as
        // usual (and the rewrite below strips it).
        if crate::release::released_by_us(&settings.incidents, &raw).await {
            let Some(mut hop) = txn.hop.take() else {
                return "451 4.4.2 Next hop failed, try again later\r\n".into();
            };
            let result = hop.data(&[&raw]).await;
            if result.is_ok() {
                self.idle_hop = Some(hop);
            }
            return match result {
                Ok(r) if r.is_positive() => {
                    info!("released message relayed without scanning");
                    let id = queue_id.as_deref().unwrap_or("message");
                    format!("250 2.0.0 Ok: {id} relayed\r\n")
                }
                Ok(r) => r.to_smtp(),
                Err(e) => {
                    warn!(error = %e, "next hop failed at DATA");
                    "451 4.4.2 Next hop failed, try again later\r\n".into()
                }
            };
        }
        let raw = Arc::new(raw);
        let report = settings.scanner.scan_async(&envelope, &raw).await;
        let mut report: ScanReport = match report {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "scanner task failed");
                self.drop_txn(txn).await;
                return "451 4.3.0 Internal error while scanning, try again later\r\n".into();
            }
        };
        if let Some(q) = queue_id.as_deref() {
            disposition::apply_attempt_rule(&settings, &mut report, q).await;
        }
        let verdict = &report.verdict;
        let categories: Vec<&str> = verdict.categories().iter().map(|c| c.as_str()).collect();
        info!(
            action = verdict.action.as_str(),
            direction = verdict.direction.as_str(),
            categories = %categories.join(","),
            size = raw.len(),
            rcpts = envelope.rcpt_to.len(),
            "scanned"
        );
        match verdict.action {
            Action::Pass | Action::Tag => {
                let marking = disposition::marking(verdict, &settings.relay.tag_subject_prefix);
                let edits = Edits {
                    add: marking.headers,
                    subject_prefix: marking.subject_prefix,
                    strip_auth_comment: settings.relay.strip_auth_header_outbound
                        && verdict.direction == Direction::Outbound,
                };
                let (header, body_start) = headers::rewrite_header(&raw, &edits);
                let Some(mut hop) = txn.hop.take() else {
                    return "451 4.4.2 Next hop failed, try again later\r\n".into();
                };
                let result = hop.data(&[&header, &raw[body_start..]]).await;
                if result.is_ok() {
                    // A completed DATA leaves the connection ready for MAIL.
                    self.idle_hop = Some(hop);
                }
                match result {
                    Ok(r) if r.is_positive() => {
                        info!("relayed");
                        disposition::record(
                            &settings,
                            FrontEnd::Relay,
                            &envelope,
                            &report,
                            raw.len(),
                        )
                        .await;
                        let id = queue_id.as_deref().unwrap_or("message");
                        format!("250 2.0.0 Ok: {id} relayed\r\n")
                    }
                    Ok(r) => {
                        warn!(code = r.code, "next hop refused the message");
                        r.to_smtp()
                    }
                    Err(e) => {
                        warn!(error = %e, "next hop failed at DATA");
                        "451 4.4.2 Next hop failed, try again later\r\n".into()
                    }
                }
            }
            Action::Quarantine => {
                let mail_params = std::mem::take(&mut txn.mail_params);
                self.drop_txn(txn).await;
                match disposition::hold(
                    &settings,
                    FrontEnd::Relay,
                    &envelope,
                    raw.clone(),
                    &report,
                    &mail_params,
                )
                .await
                {
                    Ok(id) => format!("250 2.0.0 Ok: quarantined as {id}\r\n"),
                    Err(e) => {
                        warn!(error = %e, "quarantine store failed");
                        "451 4.3.0 Cannot store the message, try again later\r\n".into()
                    }
                }
            }
            Action::Reject => {
                self.drop_txn(txn).await;
                disposition::record(&settings, FrontEnd::Relay, &envelope, &report, raw.len())
                    .await;
                format!("550 5.7.1 {}\r\n", disposition::reject_text(verdict))
            }
            Action::Tempfail => {
                self.drop_txn(txn).await;
                "451 4.7.1 Message could not be scanned, try again later\r\n".into()
            }
        }
    }
}

/// The parameters after `<address>` on a MAIL/RCPT line, as sent.
fn params_after_address(line: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(line);
    let after_colon = text.split_once(':').map_or("", |(_, r)| r).trim_start();
    let rest = if after_colon.starts_with('<') {
        after_colon.split_once('>').map_or("", |(_, r)| r)
    } else {
        after_colon
            .split_once(char::is_whitespace)
            .map_or("", |(_, r)| r)
    };
    rest.split_ascii_whitespace().map(str::to_string).collect()
}

/// MAIL parameters we pass through (SIZE is dropped by the relay).
fn mail_params(line: &[u8]) -> Vec<String> {
    params_after_address(line)
        .into_iter()
        .filter(|p| {
            let k = p.split('=').next().unwrap_or("").to_ascii_uppercase();
            matches!(k.as_str(), "BODY" | "SMTPUTF8" | "RET" | "ENVID" | "SIZE")
        })
        .collect()
}

fn rcpt_params(line: &[u8]) -> Vec<String> {
    params_after_address(line)
        .into_iter()
        .filter(|p| {
            let k = p.split('=').next().unwrap_or("").to_ascii_uppercase();
            matches!(k.as_str(), "NOTIFY" | "ORCPT")
        })
        .collect()
}

/// The DATA reader: dot-unstuffing, the terminator, size and line limits.
/// Over-limit input is read to the end (so the session stays in sync) but
/// not kept.
struct Body {
    data: Vec<u8>,
    max: usize,
    oversize: bool,
    long_line: bool,
    at_line_start: bool,
    line_len: usize,
}

impl Body {
    fn new(max: usize) -> Body {
        Body {
            data: Vec::with_capacity(64 * 1024),
            max,
            oversize: false,
            long_line: false,
            at_line_start: true,
            line_len: 0,
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        self.line_len += bytes.len();
        if self.line_len > MAX_TEXT_LINE {
            self.long_line = true;
        }
        if self.oversize || self.data.len() + bytes.len() > self.max {
            self.oversize = true;
            self.data = Vec::new();
        } else {
            self.data.extend_from_slice(bytes);
        }
    }

    /// Consume what `input` holds; true once the final `.` line was seen
    /// (anything after it stays in `input`, for pipelined commands).
    fn feed(&mut self, input: &mut Vec<u8>) -> bool {
        let mut pos = 0;
        let done = loop {
            let rest = &input[pos..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    let line = &rest[..=nl];
                    pos += nl + 1;
                    if self.at_line_start && (line == b".\r\n" || line == b".\n") {
                        break true;
                    }
                    let line = if self.at_line_start && line.first() == Some(&b'.') {
                        &line[1..]
                    } else {
                        line
                    };
                    self.keep(line);
                    self.at_line_start = true;
                    self.line_len = 0;
                }
                None => {
                    // A partial line: keep what cannot be (part of) the terminator.
                    if rest.is_empty() || (self.at_line_start && rest.len() < 3) {
                        break false;
                    }
                    let part = if self.at_line_start && rest[0] == b'.' {
                        &rest[1..]
                    } else {
                        rest
                    };
                    self.keep(part);
                    pos = input.len();
                    self.at_line_start = false;
                    break false;
                }
            }
        };
        input.drain(..pos);
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(chunks: &[&[u8]], max: usize) -> (Body, Vec<u8>, bool) {
        let mut b = Body::new(max);
        let mut input = Vec::new();
        let mut done = false;
        for c in chunks {
            input.extend_from_slice(c);
            if b.feed(&mut input) {
                done = true;
                break;
            }
        }
        (b, input, done)
    }

    #[test]
    fn unstuffs_and_stops_at_the_dot_line_across_chunks() {
        let (b, rest, done) = feed_all(
            &[
                b"Subject: x\r\n\r\n..leading dot\r\nline",
                b" two\r\n.",
                b"\r\nQUIT\r\n",
            ],
            1000,
        );
        assert!(done);
        assert_eq!(b.data, b"Subject: x\r\n\r\n.leading dot\r\nline two\r\n");
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn size_and_line_limits_are_flagged_but_read_to_the_end() {
        let (b, _, done) = feed_all(&[b"0123456789\r\n0123456789\r\n.\r\n"], 15);
        assert!(done && b.oversize && !b.long_line);
        let long = [b'a'; 1200];
        let (b, _, done) = feed_all(&[&long[..600], &long[600..], b"\r\n.\r\n"], 1 << 20);
        assert!(done && b.long_line);
    }

    #[test]
    fn passes_dsn_and_body_parameters() {
        assert_eq!(
            mail_params(b"MAIL FROM:<a@b> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=x+2B AUTH=<>"),
            vec!["SIZE=100", "BODY=8BITMIME", "RET=HDRS", "ENVID=x+2B"]
        );
        assert_eq!(
            rcpt_params(b"RCPT TO:<c@d> NOTIFY=SUCCESS ORCPT=rfc822;c@d"),
            vec!["NOTIFY=SUCCESS", "ORCPT=rfc822;c@d"]
        );
    }
}
