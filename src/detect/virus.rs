//! virus: every decoded part of the message through clamd (`zINSTREAM`).
//!
//! clamd does the real work; this detector decides what its answers mean for a
//! school:
//!
//! * `stream: OK` is clean;
//! * `stream: NAME FOUND` is a virus (`virus/NAME`, the `.UNOFFICIAL` suffix that
//!   clamd adds to unsigned databases removed), except the heuristics that mean
//!   "could not look inside" rather than "malicious":
//!   `Heuristics.Encrypted.*` on an archive is `banned_attachment/encrypted_archive`
//!   (never a virus, even when the archive hides EICAR: nobody can know), and
//!   `Heuristics.Limits.Exceeded.*` is `banned_attachment/unscannable`, and
//!   `Heuristics.OLE2.ContainsMacros` (clamd's `AlertOLE2Macros`) is
//!   `banned_attachment/macros`, the rule the attachment detector uses;
//!   an encrypted *document* (PDF, Office) is how personal data is supposed to
//!   travel, so clamd's alert on it is not a finding at all;
//! * `INSTREAM size limit exceeded. ERROR` is `banned_attachment/unscannable`: the
//!   part is too big for this clamd, which is a fact about the part, so retrying
//!   would never help;
//! * any other `ERROR`, a refused connection, a timeout or a reply we cannot
//!   read is a [`DetectError::Clamd`], which the scan pipeline turns into
//!   `tempfail`: a message is never passed because the virus scanner was away.
//!
//! One infection is one finding: clamd unpacks archives itself, so EICAR in a
//! zip in a zip answers for the outer zip, the inner zip and the member; we keep
//! the innermost location (see [`drop_container_echoes`]).
//!
//! clamd settings this expects (tests/clamd-test.sh writes them): `AlertEncryptedArchive
//! yes` (else an encrypted zip is `OK` here and only the banned-attachment detector
//! sees it), `AlertEncryptedDoc no`, and `StreamMaxLength` at least the largest
//! message (`limits.max_message_bytes`).
//!
//! We parse clamd's reply ourselves because `clamav_client::clean()` is a
//! substring test (a reply containing "OK" and not "FOUND" is "clean", so
//! `... ERROR` messages mentioning "OK" would pass), and we drive the INSTREAM
//! exchange ourselves on top of `clamav-client`'s transports because its
//! `scan_buffer` returns a bare I/O error when clamd hangs up in the middle of
//! the upload, which is exactly how clamd says "size limit exceeded": the reply
//! is already in our receive buffer and has to be read after the failed write.

mod session;

use super::{DetectError, Detector, ScanContext};
use crate::config::Config;
use crate::finding::{Category, Finding, Severity};
use crate::message::{Part, ScannedMessage};
use clamav_client::tokio::{Socket, Tcp, TransportProtocol};
use session::{Session, SessionError, SessionPool};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::{Handle, RuntimeFlavor};

/// Parts scanned at the same time. clamd's test config runs 4 threads and a
/// production clamd serves the whole mail server; a few in flight keeps a
/// message with many archive members quick without hogging clamd.
const MAX_IN_FLIGHT: usize = 4;

/// Longest reply we read. Real replies are one short line; anything longer
/// is not clamd, and reading it all would let a broken peer fill our memory.
const MAX_REPLY: usize = 4096;

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// `host:port` (TCP).
    Tcp(String),
    /// Path of clamd's unix socket (`LocalSocket`).
    Socket(PathBuf),
}

impl ClamdAddress {
    /// `/path`, `unix:/path` or `unix:path` is a socket; anything else is `host:port`.
    pub fn parse(s: &str) -> ClamdAddress {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix:") {
            ClamdAddress::Socket(PathBuf::from(path))
        } else if s.starts_with('/') {
            ClamdAddress::Socket(PathBuf::from(s))
        } else {
            ClamdAddress::Tcp(s.to_string())
        }
    }
}

impl std::fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClamdAddress::Tcp(a) => f.write_str(a),
            ClamdAddress::Socket(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What one clamd reply says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `stream: OK`
    Clean,
    /// `stream: NAME FOUND`, with the name as clamd gave it (suffixes included).
    Found(String),
    /// `INSTREAM size limit exceeded. ERROR`
    SizeLimit,
    /// Any other `... ERROR` line (the message without ` ERROR`).
    Error(String),
}

/// A reply that is not clamd's protocol (empty, binary, unknown shape).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected reply from clamd: {0:?}")]
pub struct BadReply(pub String);

/// Parse one reply to `zINSTREAM`. clamd terminates it with NUL (z-commands)
/// or newline (n-commands); both are accepted, as is a missing terminator.
pub fn parse_reply(raw: &[u8]) -> Result<Reply, BadReply> {
    let text = String::from_utf8_lossy(raw);
    let line = text.trim_end_matches(['\0', '\n', '\r', ' ']);
    let shown = || line.chars().take(200).collect::<String>();
    if line.is_empty() || line.contains(['\0', '\n']) {
        return Err(BadReply(shown()));
    }
    if let Some(msg) = line.strip_suffix(" ERROR") {
        if msg.starts_with("INSTREAM size limit exceeded") {
            return Ok(Reply::SizeLimit);
        }
        return Ok(Reply::Error(msg.to_string()));
    }
    // Replies to INSTREAM are labelled `stream:`; a session (IDSESSION) would
    // put a request number before it, which we never ask for.
    let Some(rest) = line.strip_prefix("stream: ") else {
        return Err(BadReply(shown()));
    };
    if rest == "OK" {
        return Ok(Reply::Clean);
    }
    match rest.strip_suffix(" FOUND") {
        Some(name) if !name.trim().is_empty() => Ok(Reply::Found(name.trim().to_string())),
        _ => Err(BadReply(shown())),
    }
}

/// The signature name as the school sees it: `.UNOFFICIAL` (clamd's mark for
/// unsigned databases) and the `(md5:size)` that `ExtendedDetectionInfo` adds
/// are dropped, so the same malware has the same rule id whichever clamd found it.
pub fn signature_name(found: &str) -> &str {
    let mut name = found.trim();
    if let Some(open) = name.rfind('(')
        && name.ends_with(')')
        && name[open + 1..name.len() - 1].contains(':')
    {
        name = &name[..open];
    }
    name.strip_suffix(".UNOFFICIAL").unwrap_or(name)
}

/// Turn one reply for one part into at most one finding, or an error that
/// means "this message was not scanned".
pub fn finding_for(reply: &Reply, location: &str) -> Result<Option<Finding>, DetectError> {
    match reply {
        Reply::Clean => Ok(None),
        Reply::SizeLimit => Ok(Some(unscannable(
            location,
            "too large for the virus scanner (clamd StreamMaxLength)",
        ))),
        Reply::Error(msg) => Err(DetectError::Clamd(format!("{location}: {msg}"))),
        Reply::Found(raw) => {
            let name = signature_name(raw);
            if let Some(kind) = name.strip_prefix("Heuristics.Encrypted.") {
                if is_document_kind(kind) {
                    // An encrypted PDF or Office file is the compliant way to send
                    // personal data; it is not an attachment we ban.
                    tracing::debug!(location, signature = name, "encrypted document");
                    return Ok(None);
                }
                return Ok(Some(
                    Finding::new(
                        Category::BannedAttachment,
                        "banned_attachment/encrypted_archive",
                        location,
                        format!("password-protected archive, cannot be virus-checked ({name})"),
                        Severity::High,
                    )
                    .with_confidence(1.0),
                ));
            }
            if name.starts_with("Heuristics.") && name.contains("Macros") {
                // A clamd with AlertOLE2Macros says so for any Office macro: that is
                // the banned-attachment detector's `macros` rule, not a virus.
                return Ok(Some(Finding::new(
                    Category::BannedAttachment,
                    "banned_attachment/macros",
                    location,
                    format!("Office macros ({name})"),
                    Severity::High,
                )));
            }
            if name.starts_with("Heuristics.Limits.Exceeded") {
                return Ok(Some(unscannable(
                    location,
                    &format!("exceeds the virus scanner's limits ({name})"),
                )));
            }
            Ok(Some(Finding::new(
                Category::Virus,
                format!("virus/{name}"),
                location,
                name,
                Severity::Critical,
            )))
        }
    }
}

fn unscannable(location: &str, why: &str) -> Finding {
    Finding::new(
        Category::BannedAttachment,
        "banned_attachment/unscannable",
        location,
        why,
        Severity::High,
    )
}

/// `Heuristics.Encrypted.<kind>` kinds that are documents, not archives.
/// clamd 1.x names them `PDF` and `Doc` (OLE2/OOXML); anything else (`Zip`,
/// `RAR`, `7Zip`, …) is an archive.
fn is_document_kind(kind: &str) -> bool {
    let k = kind.to_ascii_lowercase();
    k.starts_with("pdf") || k.starts_with("doc") || k.starts_with("ole2") || k.starts_with("office")
}

/// Remove findings that are only echoes of a more specific one: clamd unpacks
/// archives itself, so EICAR in `a.zip/b.zip/eicar.com` is reported for the
/// outer zip, the inner zip and the member (each is a [`Part`]). The innermost
/// location tells the head teacher which file is infected, so for each rule we
/// keep a finding only if no other finding with the same rule lies inside it.
/// Two separate infected attachments stay two findings.
pub fn drop_container_echoes(findings: Vec<Finding>) -> Vec<Finding> {
    let inside = |inner: &str, outer: &str| {
        inner.len() > outer.len()
            && inner.starts_with(outer)
            && matches!(inner.as_bytes()[outer.len()], b'/' | b'#' | b'!')
    };
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    for (i, f) in findings.iter().enumerate() {
        let echo = findings
            .iter()
            .any(|g| g.rule == f.rule && inside(&g.location, &f.location));
        let duplicate = findings[..i]
            .iter()
            .any(|g| g.rule == f.rule && g.location == f.location);
        if !echo && !duplicate {
            out.push(f.clone());
        }
    }
    out
}

/// The clamd virus detector.
pub struct Virus {
    handle: Handle,
    address: ClamdAddress,
    timeout: Duration,
    /// clamd sessions kept open between messages.
    pool: SessionPool,
}

impl Virus {
    /// `handle` must belong to a multi-threaded tokio runtime: [`Detector::inspect`]
    /// runs on a rayon thread and blocks on it, and only a multi-threaded runtime
    /// drives sockets and timers for a `Handle::block_on` caller.
    pub fn new(config: &Config, handle: Handle) -> Virus {
        Virus::with_address(
            ClamdAddress::parse(&config.clamd_address()),
            config.clamd.timeout(),
            handle,
        )
    }

    /// A detector for an explicit clamd, ignoring the config and `HALLMONITOR_CLAMD`
    /// (tests, and callers that discover clamd themselves).
    pub fn with_address(address: ClamdAddress, timeout: Duration, handle: Handle) -> Virus {
        Virus {
            handle,
            address,
            timeout,
            pool: SessionPool::default(),
        }
    }

    /// Where this detector sends parts.
    pub fn address(&self) -> &ClamdAddress {
        &self.address
    }

    /// Scan one buffer and return clamd's raw reply, within the timeout.
    async fn scan_one(address: ClamdAddress, timeout: Duration, data: Arc<[u8]>) -> ScanOutcome {
        let scan = async {
            match &address {
                ClamdAddress::Tcp(a) => {
                    instream(
                        Tcp {
                            host_address: a.as_str(),
                        },
                        &data,
                    )
                    .await
                }
                ClamdAddress::Socket(p) => {
                    instream(
                        Socket {
                            socket_path: p.as_path(),
                        },
                        &data,
                    )
                    .await
                }
            }
        };
        match tokio::time::timeout(timeout, scan).await {
            Err(_) => ScanOutcome::Failed(format!(
                "no answer from {address} within {} s",
                timeout.as_secs()
            )),
            Ok(Err(e)) => ScanOutcome::Failed(format!("{address}: {e}")),
            Ok(Ok(raw)) => match parse_reply(&raw) {
                Ok(reply) => ScanOutcome::Reply(reply),
                Err(e) => ScanOutcome::Failed(format!("{address}: {e}")),
            },
        }
    }

    /// Scan the parts, at most [`MAX_IN_FLIGHT`] at a time; stop at the first
    /// failure (the message will be tempfailed anyway, and against a clamd that
    /// never answers, waiting for every part would multiply the timeout).
    async fn scan_parts(
        &self,
        parts: Vec<(String, Arc<[u8]>)>,
    ) -> Result<Vec<(String, Reply)>, DetectError> {
        let mut set = tokio::task::JoinSet::new();
        let mut pending = parts.into_iter();
        let mut replies = Vec::new();
        loop {
            while set.len() < MAX_IN_FLIGHT {
                let Some((location, data)) = pending.next() else {
                    break;
                };
                let address = self.address.clone();
                let timeout = self.timeout;
                set.spawn(async move {
                    let outcome = Virus::scan_one(address, timeout, data).await;
                    (location, outcome)
                });
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            match joined {
                Ok((location, ScanOutcome::Reply(reply))) => replies.push((location, reply)),
                Ok((location, ScanOutcome::Failed(why))) => {
                    return Err(DetectError::Clamd(format!("{location}: {why}")));
                }
                Err(e) => return Err(DetectError::Clamd(format!("scan task failed: {e}"))),
            }
        }
        Ok(replies)
    }
}

enum ScanOutcome {
    Reply(Reply),
    Failed(String),
}

/// One `zINSTREAM` exchange on a connection of its own: the framed data,
/// then clamd's reply up to its NUL terminator.
///
/// A failed write is not the end: clamd answers `INSTREAM size limit exceeded`
/// and closes while we are still sending, so we always try to read the reply
/// and only report the write error when there is none.
async fn instream<T: TransportProtocol>(conn: T, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = conn.connect().await?;
    let mut framed = Vec::with_capacity(data.len() + 32);
    session::frame_instream(&mut framed, data);
    let written: std::io::Result<()> = async {
        stream.write_all(&framed).await?;
        stream.flush().await
    }
    .await;
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    let read: std::io::Result<()> = loop {
        match stream.read(&mut buf).await {
            Ok(0) => break Ok(()),
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if reply.contains(&0) || reply.len() >= MAX_REPLY {
                    break Ok(());
                }
            }
            Err(e) => break Err(e),
        }
    };
    if !reply.is_empty() {
        return Ok(reply);
    }
    written?;
    read?;
    Ok(reply)
}

/// Messages whose parts add up to at most this many bytes go to clamd in one
/// session (one connection, parts one after another); larger ones get a
/// connection per part, several at once, so big attachments are scanned in
/// parallel by clamd's threads.
pub const SESSION_MAX_BYTES: usize = 1024 * 1024;

/// The virus scan of one message, started by [`Virus::start`]: its parts are
/// on their way to clamd while the caller runs the other detectors.
pub struct PendingScan {
    parts: Vec<(String, Arc<[u8]>)>,
    /// None for a message without parts or one over [`SESSION_MAX_BYTES`].
    session: Option<Session>,
}

impl Virus {
    /// Connect to clamd and send the message's parts (the first batch of a
    /// session). Never fails: a failure is reported by [`PendingScan::finish`].
    pub async fn start(&self, message: &ScannedMessage) -> PendingScan {
        let parts: Vec<(String, Arc<[u8]>)> = message
            .parts
            .iter()
            .filter(|p: &&Part| !p.data.is_empty())
            .map(|p| (p.location.clone(), Arc::clone(&p.data)))
            .collect();
        let total: usize = parts.iter().map(|(_, d)| d.len()).sum();
        let session = if parts.is_empty() || total > SESSION_MAX_BYTES {
            None
        } else {
            let data: Vec<&[u8]> = parts.iter().map(|(_, d)| d.as_ref()).collect();
            Some(Session::start(Some(&self.pool), &self.address, self.timeout, &data).await)
        };
        PendingScan { parts, session }
    }

    /// A session's replies, with unanswered parts scanned on their own.
    async fn finish_session(
        &self,
        session: Session,
        parts: &[(String, Arc<[u8]>)],
    ) -> Result<Vec<(String, Reply)>, DetectError> {
        let data: Vec<&[u8]> = parts.iter().map(|(_, d)| d.as_ref()).collect();
        let first = parts.first().map(|(l, _)| l.as_str()).unwrap_or("message");
        let pool = Some(&self.pool);
        let session = match session.finish(pool, &data).await {
            Err(SessionError::Stale) => {
                // clamd had closed the pooled session: once more on a new one.
                tracing::debug!("pooled clamd session was closed; reconnecting");
                let fresh = Session::start(None, &self.address, self.timeout, &data).await;
                fresh.finish(pool, &data).await
            }
            other => other,
        };
        let session = session.map_err(|e| {
            DetectError::Clamd(match e {
                SessionError::Timeout => format!(
                    "{first}: no answer from {} within {} s",
                    self.address,
                    self.timeout.as_secs()
                ),
                SessionError::Io(e) => format!("{first}: {}: {e}", self.address),
                SessionError::Stale => format!("{first}: {} closed the session", self.address),
            })
        })?;
        let mut replies = Vec::with_capacity(parts.len());
        for ((location, data), reply) in parts.iter().zip(session) {
            let reply = match reply {
                Some(r) => r,
                None => {
                    let outcome =
                        Virus::scan_one(self.address.clone(), self.timeout, Arc::clone(data)).await;
                    match outcome {
                        ScanOutcome::Reply(r) => r,
                        ScanOutcome::Failed(why) => {
                            return Err(DetectError::Clamd(format!("{location}: {why}")));
                        }
                    }
                }
            };
            replies.push((location.clone(), reply));
        }
        Ok(replies)
    }

    /// The whole scan on the calling task.
    pub async fn scan_message(
        &self,
        message: &ScannedMessage,
    ) -> Result<Vec<Finding>, DetectError> {
        self.start(message).await.finish(self).await
    }
}

impl PendingScan {
    /// Wait for clamd's verdicts and turn them into findings; an error means
    /// the message was not (fully) virus-checked, which is a tempfail.
    pub async fn finish(self, virus: &Virus) -> Result<Vec<Finding>, DetectError> {
        let replies = match self.session {
            Some(session) => virus.finish_session(session, &self.parts).await?,
            None if self.parts.is_empty() => return Ok(Vec::new()),
            None => virus.scan_parts(self.parts).await?,
        };
        let mut found = Vec::new();
        for (location, reply) in &replies {
            if let Some(f) = finding_for(reply, location)? {
                tracing::info!(location = %location, rule = %f.rule, "clamd finding");
                found.push(f);
            }
        }
        Ok(drop_container_echoes(found))
    }
}

impl Detector for Virus {
    fn name(&self) -> &'static str {
        "virus"
    }

    /// The scan from a thread that may block (the blocking pool, rayon, the
    /// CLI). On the async runtime use [`Virus::start`] instead.
    fn inspect(&self, ctx: &ScanContext<'_>, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        if self.handle.runtime_flavor() == RuntimeFlavor::CurrentThread {
            return Err(DetectError::Clamd(
                "virus scan needs a multi-threaded tokio runtime".into(),
            ));
        }
        // Handle::block_on panics when called on an async worker thread (it
        // would block the runtime); inside spawn_blocking or on a rayon thread it
        // is fine. There is no public test for "async context" (a spawn_blocking
        // thread has a current Handle too), so catch that panic and report it.
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.handle.block_on(self.scan_message(ctx.message))
        }))
        .map_err(|_| {
            DetectError::Clamd(
                "virus scan called on an async runtime thread (use Virus::start)".into(),
            )
        })??;
        out.extend(found);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_reply() {
        assert_eq!(parse_reply(b"stream: OK\0"), Ok(Reply::Clean));
        assert_eq!(parse_reply(b"stream: OK\n"), Ok(Reply::Clean));
        assert_eq!(parse_reply(b"stream: OK"), Ok(Reply::Clean));
    }

    #[test]
    fn found_reply_keeps_name() {
        assert_eq!(
            parse_reply(b"stream: Hallmonitor.Test.EICAR.UNOFFICIAL FOUND\0"),
            Ok(Reply::Found("Hallmonitor.Test.EICAR.UNOFFICIAL".into()))
        );
        assert_eq!(
            parse_reply(b"stream: Eicar-Test-Signature FOUND\n"),
            Ok(Reply::Found("Eicar-Test-Signature".into()))
        );
    }

    #[test]
    fn size_limit_and_errors() {
        assert_eq!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR\0"),
            Ok(Reply::SizeLimit)
        );
        assert_eq!(
            parse_reply(b"Can't allocate memory ERROR\0"),
            Ok(Reply::Error("Can't allocate memory".into()))
        );
        // clamav_client::clean() would call this one clean: it contains "OK".
        assert_eq!(
            parse_reply(b"stream: lstat() failed: OK? ERROR\0"),
            Ok(Reply::Error("stream: lstat() failed: OK?".into()))
        );
    }

    #[test]
    fn garbage_is_an_error_not_clean() {
        for raw in [
            &b""[..],
            b"\0",
            b"OK",
            b"PONG\0",
            b"stream: FOUND\0",
            b"stream: OKAY\0",
            b"HTTP/1.1 400 Bad Request\r\n\r\n",
            b"stream: OK\0stream: X FOUND\0",
        ] {
            assert!(parse_reply(raw).is_err(), "{raw:?} must not parse");
        }
    }

    #[test]
    fn signature_names_lose_unofficial_and_hash() {
        assert_eq!(
            signature_name("Hallmonitor.Test.EICAR.UNOFFICIAL"),
            "Hallmonitor.Test.EICAR"
        );
        assert_eq!(
            signature_name("Eicar-Test-Signature(44d88612fea8a8f36de82e1278abb02f:68)"),
            "Eicar-Test-Signature"
        );
        assert_eq!(
            signature_name("Win.Test.EICAR_HDB-1"),
            "Win.Test.EICAR_HDB-1"
        );
    }

    #[test]
    fn found_is_a_critical_virus_at_the_part() {
        let f = finding_for(
            &Reply::Found("Hallmonitor.Test.EICAR.UNOFFICIAL".into()),
            "attachment:minutes.pdf",
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.category, Category::Virus);
        assert_eq!(f.rule, "virus/Hallmonitor.Test.EICAR");
        assert_eq!(f.location, "attachment:minutes.pdf");
        assert_eq!(f.evidence, "Hallmonitor.Test.EICAR");
        assert_eq!(f.severity, Severity::Critical);
    }

    #[test]
    fn encrypted_archive_is_banned_never_virus() {
        for sig in [
            "Heuristics.Encrypted.Zip",
            "Heuristics.Encrypted.RAR",
            "Heuristics.Encrypted.7Zip",
        ] {
            let f = finding_for(&Reply::Found(sig.into()), "attachment:x.zip")
                .unwrap()
                .unwrap();
            assert_eq!(f.category, Category::BannedAttachment, "{sig}");
            assert_eq!(f.rule, "banned_attachment/encrypted_archive");
        }
    }

    #[test]
    fn macro_alert_is_a_banned_attachment_not_a_virus() {
        let f = finding_for(
            &Reply::Found("Heuristics.OLE2.ContainsMacros".into()),
            "attachment:tracker.xls",
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.category, Category::BannedAttachment);
        assert_eq!(f.rule, "banned_attachment/macros");
    }

    #[test]
    fn encrypted_documents_are_not_findings() {
        for sig in ["Heuristics.Encrypted.PDF", "Heuristics.Encrypted.Doc"] {
            assert_eq!(
                finding_for(&Reply::Found(sig.into()), "attachment:x").unwrap(),
                None
            );
        }
    }

    #[test]
    fn size_limit_is_unscannable_and_other_errors_fail_the_scan() {
        let f = finding_for(&Reply::SizeLimit, "attachment:big.iso")
            .unwrap()
            .unwrap();
        assert_eq!(f.rule, "banned_attachment/unscannable");
        let f = finding_for(
            &Reply::Found("Heuristics.Limits.Exceeded.MaxFileSize".into()),
            "attachment:big.zip",
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.rule, "banned_attachment/unscannable");
        assert!(matches!(
            finding_for(&Reply::Error("Can't allocate memory".into()), "body"),
            Err(DetectError::Clamd(_))
        ));
        assert_eq!(finding_for(&Reply::Clean, "body").unwrap(), None);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            ClamdAddress::parse("/run/clamav/clamd.ctl"),
            ClamdAddress::Socket("/run/clamav/clamd.ctl".into())
        );
        assert_eq!(
            ClamdAddress::parse("unix:/tmp/c.sock"),
            ClamdAddress::Socket("/tmp/c.sock".into())
        );
        assert_eq!(
            ClamdAddress::parse(" 127.0.0.1:3310 "),
            ClamdAddress::Tcp("127.0.0.1:3310".into())
        );
        assert_eq!(
            ClamdAddress::parse("[::1]:3310"),
            ClamdAddress::Tcp("[::1]:3310".into())
        );
    }

    fn virus(loc: &str) -> Finding {
        finding_for(&Reply::Found("Hallmonitor.Test.EICAR".into()), loc)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn container_echoes_collapse_to_the_innermost_part() {
        let out = drop_container_echoes(vec![
            virus("attachment:outer.zip"),
            virus("attachment:outer.zip/inner.zip"),
            virus("attachment:outer.zip/inner.zip/eicar.com"),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].location, "attachment:outer.zip/inner.zip/eicar.com");
    }

    #[test]
    fn separate_infected_attachments_stay_separate() {
        let out = drop_container_echoes(vec![
            virus("attachment:a.zip"),
            virus("attachment:a.zip.pdf"),
            virus("attachment:a.zip"),
        ]);
        let locs: Vec<&str> = out.iter().map(|f| f.location.as_str()).collect();
        assert_eq!(locs, ["attachment:a.zip", "attachment:a.zip.pdf"]);
    }

    #[test]
    fn different_rules_do_not_hide_each_other() {
        let enc = finding_for(
            &Reply::Found("Heuristics.Encrypted.Zip".into()),
            "attachment:a.zip",
        )
        .unwrap()
        .unwrap();
        let out = drop_container_echoes(vec![enc, virus("attachment:a.zip/readme.txt")]);
        assert_eq!(out.len(), 2);
    }
}
