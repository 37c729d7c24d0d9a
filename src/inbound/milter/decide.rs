//! End of message: scan on a blocking thread within the per-message time
//! limit, then act through [`crate::disposition`] exactly as the content
//! filter does, and say what to answer Postfix.
//!
//! The rule is the relay's: Postfix is told "continue" or "discard" only when
//! the message is on its way or durably held; every internal failure is a
//! 451 so the SMTP client keeps the message.
//!
//! In milter mode a tempfail sends the message back to the SMTP client, and
//! its next attempt gets a new Postfix queue id. The three-failures rule
//! ([`disposition::apply_attempt_rule`]) is therefore keyed by a digest of
//! what stays the same between attempts (Message-ID, envelope, size), so a
//! message that cannot be scanned within the limits (too big, too slow) is
//! held as `banned_attachment/unscannable` on its third attempt instead of
//! being refused until the sender gives up.

use super::edits::{Change, HeaderSection};
use crate::config::QuarantineReply;
use crate::disposition;
use crate::incidents::FrontEnd;
use crate::message::{Envelope, ScannedMessage};
use crate::policy::Action;
use crate::scan::ScanReport;
use crate::sender::{self, SchoolDomains};
use crate::serve::Settings;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// What the session answers at end of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Continue (accept) with these header changes.
    Accept(Vec<Change>),
    /// Accept and drop (held in quarantine).
    Discard,
    /// A full SMTP reply: code, enhanced code, text.
    Code(u16, [u16; 3], String),
}

impl Reply {
    fn tempfail(text: &str) -> Reply {
        Reply::Code(451, [4, 3, 0], text.to_string())
    }
}

/// A received message, ready to be judged.
pub struct Received {
    pub envelope: Envelope,
    pub headers: HeaderSection,
    pub body: Vec<u8>,
    /// The message was larger than `limits.max_message_bytes`.
    pub oversize: bool,
    /// It was so large that not even the quarantine copy was kept.
    pub truncated: bool,
    pub mail_params: Vec<String>,
}

impl Received {
    fn raw(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(self.headers.bytes + 2 + self.body.len());
        self.headers.write_to(&mut raw);
        raw.extend_from_slice(&self.body);
        raw
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.trim().to_string())
    }
}

/// The key of the failure count: stable across the SMTP client's retries
/// (and across restarts: FNV-1a, not the std hasher).
fn attempt_key(r: &Received, size: usize) -> String {
    let mut h = Fnv::default();
    h.update(r.header("Message-ID").unwrap_or_default().as_bytes());
    h.update(&[0]);
    h.update(r.envelope.mail_from.as_bytes());
    for rcpt in &r.envelope.rcpt_to {
        h.update(&[0]);
        h.update(rcpt.as_bytes());
    }
    h.update(&size.to_be_bytes());
    format!("milter:{:016x}", h.0)
}

/// 64-bit FNV-1a.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A tempfail report for a message the scanner did not (fully) see.
fn failed(settings: &Settings, r: &Received, error: String) -> ScanReport {
    let config = settings.scanner.config();
    let identity = sender::identify(
        config,
        &SchoolDomains::new(config),
        &r.envelope,
        &ScannedMessage::default(),
    );
    ScanReport {
        verdict: settings.scanner.policy().tempfail(&identity, error),
        message_id: r.header("Message-ID"),
        subject: r.header("Subject"),
        limits: Vec::new(),
    }
}

/// Scan `r` and act on the verdict.
pub async fn judge(settings: Arc<Settings>, r: Received) -> Reply {
    let raw = Arc::new(r.raw());
    let size = raw.len();
    let limit = Duration::from_secs(settings.config.milter.message_timeout_secs.max(1));
    let mut report = if r.oversize {
        failed(
            &settings,
            &r,
            format!(
                "message of {size}+ bytes is over limits.max_message_bytes ({})",
                settings.max_message_bytes
            ),
        )
    } else {
        let task = settings.scanner.scan_async(&r.envelope, &raw);
        match tokio::time::timeout(limit, task).await {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => {
                warn!(error = %e, "scanner task failed");
                return Reply::tempfail("Internal error while scanning, try again later");
            }
            Err(_) => {
                // An inline scan stops here; one on the blocking pool cannot
                // be interrupted, it finishes on its own thread and its
                // result is dropped.
                warn!(secs = limit.as_secs(), "scan time limit reached");
                failed(
                    &settings,
                    &r,
                    format!("scan took longer than {} s", limit.as_secs()),
                )
            }
        }
    };
    let key = attempt_key(&r, size);
    disposition::apply_attempt_rule(&settings, &mut report, &key).await;
    let verdict = &report.verdict;
    let categories: Vec<&str> = verdict.categories().iter().map(|c| c.as_str()).collect();
    info!(
        action = verdict.action.as_str(),
        direction = verdict.direction.as_str(),
        sender_group = verdict.sender_group.as_str(),
        categories = %categories.join(","),
        size,
        rcpts = r.envelope.rcpt_to.len(),
        "scanned"
    );
    match verdict.action {
        Action::Pass | Action::Tag => {
            let marking = disposition::marking(verdict, &settings.relay.tag_subject_prefix);
            let changes = r.headers.changes(&marking);
            disposition::record(&settings, FrontEnd::Milter, &r.envelope, &report, size).await;
            Reply::Accept(changes)
        }
        Action::Quarantine if r.truncated => {
            warn!("message too large to keep a quarantine copy; deferring");
            Reply::Code(
                452,
                [4, 3, 4],
                "Message too large to scan, try again later".into(),
            )
        }
        Action::Quarantine => {
            match disposition::hold(
                &settings,
                FrontEnd::Milter,
                &r.envelope,
                raw,
                &report,
                &r.mail_params,
            )
            .await
            {
                Ok(id) => match settings.config.milter.quarantine_reply {
                    QuarantineReply::Discard => {
                        info!(quarantine_id = %id, "held; discarding");
                        Reply::Discard
                    }
                    QuarantineReply::Reject => {
                        Reply::Code(550, [5, 7, 1], disposition::reject_text(&report.verdict))
                    }
                },
                Err(e) => {
                    warn!(error = %e, "quarantine store failed");
                    Reply::tempfail("Cannot store the message, try again later")
                }
            }
        }
        Action::Reject => {
            disposition::record(&settings, FrontEnd::Milter, &r.envelope, &report, size).await;
            Reply::Code(550, [5, 7, 1], disposition::reject_text(verdict))
        }
        Action::Tempfail => Reply::Code(
            451,
            [4, 7, 1],
            "Message could not be scanned, try again later".into(),
        ),
    }
}
