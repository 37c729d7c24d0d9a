//! Acting on a verdict, shared by every front-end (content-filter relay and
//! milter): the headers a passed or tagged message gets, the 550 text of a
//! reject, holding a message in quarantine, writing the incident log, and
//! the rule that a message failing the same way three times is held as
//! unscannable instead of being retried until it bounces.

use crate::finding::{Category, Finding, Severity};
use crate::incidents::{FrontEnd, HeldRow, NewIncident};
use crate::message::Envelope;
use crate::policy::{Action, Verdict};
use crate::scan::ScanReport;
use crate::serve::Settings;
use serde::Serialize;
use std::sync::Arc;
use tracing::{info, warn};

/// Scan attempts for one queue id before a message that keeps failing is
/// held as unscannable instead of being retried until Postfix bounces it.
pub const MAX_SCAN_ATTEMPTS: u32 = 3;

/// The `X-Hallmonitor-*` headers for a delivered message, and the new
/// subject prefix when it is tagged.
pub struct Marking {
    pub headers: Vec<(&'static str, String)>,
    pub subject_prefix: Option<String>,
}

/// Headers (and subject prefix) for a `pass` or `tag` verdict.
pub fn marking(verdict: &Verdict, tag_subject_prefix: &str) -> Marking {
    let categories: Vec<&str> = verdict.categories().iter().map(|c| c.as_str()).collect();
    let cats = if categories.is_empty() {
        "none".to_string()
    } else {
        categories.join(", ")
    };
    let subject_prefix =
        (verdict.action == Action::Tag).then(|| tag_subject_prefix.replace("{categories}", &cats));
    Marking {
        headers: vec![
            ("X-Hallmonitor-Verdict", verdict.action.as_str().to_string()),
            ("X-Hallmonitor-Categories", cats),
            ("X-Hallmonitor-Version", crate::VERSION.to_string()),
        ],
        subject_prefix,
    }
}

/// The reply text (without code) of a rejected message: its first AUP clause.
pub fn reject_text(verdict: &Verdict) -> String {
    verdict
        .clauses()
        .first()
        .map(|c| one_line(c))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "Message refused by the school's mail policy".into())
}

/// A clause as one short reply line (SMTP replies are ASCII, one line).
pub fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    out.truncate(400);
    out.trim().to_string()
}

/// Why a message could not be held.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error(transparent)]
    Store(#[from] crate::quarantine::StoreError),
    #[error("quarantine task failed: {0}")]
    Task(String),
}

/// What the quarantine keeps next to the message.
#[derive(Serialize)]
struct QuarantineMeta<'a> {
    /// Unix seconds.
    time: i64,
    front_end: FrontEnd,
    queue_id: Option<String>,
    next_hop: String,
    mail_params: &'a [String],
    envelope: &'a Envelope,
    report: &'a ScanReport,
    /// The incident row, so the index can be rebuilt from the files.
    incident: &'a NewIncident,
}

/// Hold a message: write it and its metadata durably (fsynced file and
/// directory), then index it in the incident log. `Ok(id)` means the
/// message is safe on disk and the front-end may accept it. A failure to
/// index after the files are safe is only logged: the files are the truth
/// and `serve` re-indexes them at start-up.
pub async fn hold(
    settings: &Settings,
    front_end: FrontEnd,
    envelope: &Envelope,
    raw: Arc<Vec<u8>>,
    report: &ScanReport,
    mail_params: &[String],
) -> Result<String, HoldError> {
    let mut incident = NewIncident::from_scan(front_end, envelope, report, raw.len())
        .unwrap_or_else(|| unscannable_incident(front_end, envelope, report, raw.len()));
    incident.action = Action::Quarantine.as_str().into();
    let next_hop = settings.next_hop.to_string();
    let meta = QuarantineMeta {
        time: incident.at,
        front_end,
        queue_id: envelope.queue_id.clone(),
        next_hop: next_hop.clone(),
        mail_params,
        envelope,
        report,
        incident: &incident,
    };
    let meta = serde_json::to_value(&meta).map_err(crate::quarantine::StoreError::Json)?;
    let store = settings.store.clone();
    let id = tokio::task::spawn_blocking(move || store.put(&raw, &meta))
        .await
        .map_err(|e| HoldError::Task(e.to_string()))??;
    info!(quarantine_id = %id, "quarantined");
    incident.held = Some(HeldRow {
        id: id.clone(),
        next_hop,
    });
    match settings.incidents.record(&incident).await {
        Ok(row) => crate::notify::incident_recorded(settings, row, &incident).await,
        Err(e) => {
            warn!(quarantine_id = %id, error = %e, "held message not indexed yet (re-indexed at next start)")
        }
    }
    Ok(id)
}

/// Write the incident for a message that was delivered, tagged or rejected
/// (nothing is written for a clean pass or a tempfail). Failures are logged,
/// never turned into a mail failure: the message has already been dealt with.
pub async fn record(
    settings: &Settings,
    front_end: FrontEnd,
    envelope: &Envelope,
    report: &ScanReport,
    size: usize,
) {
    if let Some(incident) = NewIncident::from_scan(front_end, envelope, report, size) {
        match settings.incidents.record(&incident).await {
            Ok(row) => crate::notify::incident_recorded(settings, row, &incident).await,
            Err(e) => warn!(error = %e, "incident not recorded"),
        }
    }
}

fn unscannable_incident(
    front_end: FrontEnd,
    envelope: &Envelope,
    report: &ScanReport,
    size: usize,
) -> NewIncident {
    let mut r = report.clone();
    r.verdict.action = Action::Quarantine;
    NewIncident::from_scan(front_end, envelope, &r, size).unwrap_or_else(|| NewIncident {
        at: crate::incidents::now(),
        front_end,
        queue_id: envelope.queue_id.clone(),
        message_id: report.message_id.clone(),
        subject: report.subject.clone(),
        mail_from: envelope.mail_from.clone(),
        rcpts: envelope.rcpt_to.clone(),
        client_ip: envelope.client_ip.map(|i| i.to_string()),
        auth_user: envelope.auth_user.clone(),
        direction: report.verdict.direction.as_str().into(),
        sender_group: report.verdict.sender_group.as_str().into(),
        identified_sender: report.verdict.identified_sender.clone(),
        sender_is_head: report.verdict.sender_is_head,
        action: "quarantine".into(),
        categories: Vec::new(),
        rules: Vec::new(),
        notify: Vec::new(),
        clauses: Vec::new(),
        size: size as i64,
        findings: Vec::new(),
        held: None,
    })
}

/// After a scan: a tempfail while clamd answers PING is a failure of this
/// message, not an outage. Count it durably, and on the
/// [`MAX_SCAN_ATTEMPTS`]th attempt turn the verdict into quarantine as
/// `banned_attachment/unscannable`. During a clamd outage nothing is
/// counted, so mail is only deferred. Any other verdict clears the count.
pub async fn apply_attempt_rule(settings: &Settings, report: &mut ScanReport, queue_id: &str) {
    if report.verdict.action != Action::Tempfail {
        if let Err(e) = settings.incidents.forget_failures(queue_id).await {
            warn!(error = %e, "scan failure count not cleared");
        }
        return;
    }
    if let Some(clamd) = &settings.clamd
        && crate::serve::ping_clamd(clamd, std::time::Duration::from_secs(5))
            .await
            .is_err()
    {
        return;
    }
    let error = report.verdict.error.clone().unwrap_or_default();
    let attempts = match settings.incidents.count_failure(queue_id, &error).await {
        Ok(n) => n,
        Err(e) => {
            // Without the count, keep deferring: Postfix still has the message.
            warn!(error = %e, "scan failure not counted");
            return;
        }
    };
    if attempts < MAX_SCAN_ATTEMPTS {
        return;
    }
    warn!(
        attempts,
        "scan keeps failing; holding the message as unscannable"
    );
    mark_unscannable(report, &format!("scan failed {attempts} times"));
    if let Err(e) = settings.incidents.forget_failures(queue_id).await {
        warn!(error = %e, "scan failure count not cleared");
    }
}

/// Turn a verdict into "hold as unscannable".
pub fn mark_unscannable(report: &mut ScanReport, why: &str) {
    let mut f = Finding::new(
        Category::BannedAttachment,
        "banned_attachment/unscannable",
        "message",
        why.to_string(),
        Severity::High,
    );
    f.clause = "Attachments that cannot be checked are held for review.".into();
    report.verdict.findings.push(f);
    report.verdict.action = Action::Quarantine;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_text_is_one_ascii_line() {
        assert_eq!(one_line("Don’t\r\nsend\tthis "), "Don t  send this");
        assert_eq!(one_line(&"x".repeat(1000)).len(), 400);
    }
}
