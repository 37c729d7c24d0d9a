//! Operational alerts to the ICT admin: clamd unreachable, scans failing
//! (tempfails piling up), old signatures, a full quarantine disk. Each kind
//! of problem is mailed at most once per `notify.ops_interval`.

use super::{compose, outbox};
use crate::incidents::{IncidentsError, now};
use crate::serve::Settings;
use crate::status::{MAX_DISK_USED_PERCENT, MAX_FAILING_MESSAGES, MAX_SIGNATURE_AGE_DAYS, Status};

/// Problems as (key, words).
pub fn problems(status: &Status, recent_unscannable: i64) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let c = &status.clamd;
    if !c.disabled && !c.reachable {
        out.push((
            "clamd",
            format!(
                "clamd at {} is unreachable ({}); mail is being deferred",
                c.address,
                c.error.as_deref().unwrap_or("no answer")
            ),
        ));
    }
    if let Some(age) = c.signature_age_days
        && age > MAX_SIGNATURE_AGE_DAYS
    {
        out.push((
            "signatures",
            format!("the virus signature database is {age:.1} days old (more than {MAX_SIGNATURE_AGE_DAYS}); check freshclam"),
        ));
    }
    if let Some(d) = &status.disk
        && d.used_percent > MAX_DISK_USED_PERCENT
    {
        out.push((
            "disk",
            format!(
                "the quarantine disk ({}) is {:.0}% full (more than {MAX_DISK_USED_PERCENT:.0}%)",
                status.state_dir, d.used_percent
            ),
        ));
    }
    if status.failing_messages > MAX_FAILING_MESSAGES {
        out.push((
            "tempfails",
            format!(
                "{} messages keep failing to scan and are piling up deferred in Postfix ({} attempts)",
                status.failing_messages, status.failed_attempts
            ),
        ));
    } else if status.failing_messages > 0 || recent_unscannable > 0 {
        out.push((
            "scan_errors",
            format!(
                "scan errors: {} messages are failing to scan, {recent_unscannable} held as unscannable recently",
                status.failing_messages
            ),
        ));
    }
    out
}

/// Run the checks and queue what is due. Returns how many alerts were queued.
pub async fn check(settings: &Settings) -> Result<usize, IncidentsError> {
    let config = &settings.config;
    if config.people.ict_admin.is_empty() {
        return Ok(0);
    }
    let db = &settings.incidents;
    let status = crate::status::gather(config, Some(db)).await;
    let since = now() - config.notify.ops_check_every().as_secs() as i64 - 1;
    let unscannable: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM incidents WHERE at >= ? AND rules LIKE '%banned_attachment/unscannable%'",
    )
    .bind(since)
    .fetch_one(db.pool())
    .await?;
    let interval = config.notify.ops_interval().as_secs() as i64;
    let mut queued = 0;
    let found = problems(&status, unscannable);
    tracing::info!(problems = found.len(), "operational check");
    for (key, text) in found {
        let last: Option<i64> =
            sqlx::query_scalar("SELECT last_sent FROM ops_alerts WHERE key = ?")
                .bind(key)
                .fetch_optional(db.pool())
                .await?;
        if last.is_some_and(|t| now() - t < interval) {
            continue;
        }
        let mail = compose::ops(config, &text, &crate::status::render_text(&status));
        for admin in &config.people.ict_admin {
            outbox::enqueue(db, admin, "ops", &mail.subject, &mail.body, None).await?;
            queued += 1;
        }
        sqlx::query(
            "INSERT INTO ops_alerts (key, last_sent, last_text) VALUES (?, ?, ?) \
             ON CONFLICT(key) DO UPDATE SET last_sent = excluded.last_sent, last_text = excluded.last_text",
        )
        .bind(key)
        .bind(now())
        .bind(&text)
        .execute(db.pool())
        .await?;
        tracing::warn!(problem = %text, "operational alert queued for the ICT admin");
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{ClamdStatus, Disk};

    fn status() -> Status {
        Status {
            healthy: true,
            problems: vec![],
            version: "test",
            clamd: ClamdStatus {
                address: "127.0.0.1:3310".into(),
                disabled: false,
                reachable: true,
                error: None,
                version: None,
                signature_age_days: Some(1.0),
            },
            failing_messages: 0,
            failed_attempts: 0,
            held: 0,
            state_dir: "/var/lib/hallmonitor".into(),
            disk: Some(Disk {
                total_bytes: 100,
                free_bytes: 50,
                used_percent: 50.0,
            }),
        }
    }

    #[test]
    fn a_healthy_installation_has_no_problems() {
        assert!(problems(&status(), 0).is_empty());
    }

    #[test]
    fn each_problem_has_its_own_key() {
        let mut s = status();
        s.clamd.reachable = false;
        s.clamd.signature_age_days = Some(4.5);
        s.disk = Some(Disk {
            total_bytes: 100,
            free_bytes: 5,
            used_percent: 95.0,
        });
        s.failing_messages = 11;
        let keys: Vec<&str> = problems(&s, 0).iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["clamd", "signatures", "disk", "tempfails"]);
        let mut s = status();
        s.failing_messages = 1;
        let p = problems(&s, 2);
        assert_eq!(p[0].0, "scan_errors");
        assert!(p[0].1.contains("2 held as unscannable"), "{}", p[0].1);
    }
}
