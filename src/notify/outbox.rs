//! The durable outbox: every alert, digest, notice and operational alert is
//! a row first and a mail second, so a crash or an unreachable mail server
//! loses nothing and never holds up mail flow.

use crate::incidents::{Incidents, IncidentsError, now};

/// One outbox row.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: i64,
    pub created_at: i64,
    pub recipient: String,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub html: Option<String>,
    pub incident_id: Option<i64>,
    pub status: String,
    pub attempts: i64,
}

/// Queue one mail; it is due at once.
pub async fn enqueue(
    db: &Incidents,
    recipient: &str,
    kind: &str,
    subject: &str,
    body: &str,
    incident_id: Option<i64>,
) -> Result<i64, IncidentsError> {
    let t = now();
    let id = sqlx::query_scalar(
        "INSERT INTO outbox (created_at, recipient, kind, subject, body, incident_id, next_attempt_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(t)
    .bind(recipient)
    .bind(kind)
    .bind(subject)
    .bind(body)
    .bind(incident_id)
    .bind(t)
    .fetch_one(db.pool())
    .await?;
    Ok(id)
}

/// Pending rows that are due, oldest first.
pub async fn due(db: &Incidents, limit: i64) -> Result<Vec<Item>, IncidentsError> {
    type Row = (
        i64,
        i64,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<i64>,
        String,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, created_at, recipient, kind, subject, body, html, incident_id, status, attempts \
         FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
    )
    .bind(now())
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                created_at,
                recipient,
                kind,
                subject,
                body,
                html,
                incident_id,
                status,
                attempts,
            )| {
                Item {
                    id,
                    created_at,
                    recipient,
                    kind,
                    subject,
                    body,
                    html,
                    incident_id,
                    status,
                    attempts,
                }
            },
        )
        .collect())
}

/// When the next pending or batched row needs attention (unix seconds).
pub async fn next_wakeup(db: &Incidents, window_secs: i64) -> Result<Option<i64>, IncidentsError> {
    Ok(sqlx::query_scalar(
        "SELECT min(t) FROM ( \
           SELECT min(next_attempt_at) AS t FROM outbox WHERE status = 'pending' \
           UNION ALL SELECT min(created_at) + ? FROM outbox WHERE status = 'batched')",
    )
    .bind(window_secs)
    .fetch_one(db.pool())
    .await?)
}

pub async fn mark_sent(db: &Incidents, id: i64) -> Result<(), IncidentsError> {
    sqlx::query(
        "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?",
    )
    .bind(now())
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A failed attempt: try again after `retry_in` seconds, or give up.
pub async fn mark_failed(
    db: &Incidents,
    id: i64,
    error: &str,
    retry_in: Option<i64>,
) -> Result<(), IncidentsError> {
    let (status, next) = match retry_in {
        Some(s) => ("pending", now() + s),
        None => ("failed", now()),
    };
    sqlx::query(
        "UPDATE outbox SET status = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?",
    )
    .bind(status)
    .bind(next)
    .bind(error)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Alerts to `recipient` created since `since` that went (or are going) out
/// on their own: sent, failed, or pending after a first attempt.
pub async fn individual_alerts_since(
    db: &Incidents,
    recipient: &str,
    since: i64,
    except: i64,
) -> Result<i64, IncidentsError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE recipient = ? AND kind = 'alert' AND created_at >= ? AND id != ? \
         AND (status IN ('sent', 'failed') OR (status = 'pending' AND attempts > 0))",
    )
    .bind(recipient)
    .bind(since)
    .bind(except)
    .fetch_one(db.pool())
    .await?)
}

/// Is a digest already collecting for this recipient?
pub async fn has_batched(db: &Incidents, recipient: &str) -> Result<bool, IncidentsError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE recipient = ? AND status = 'batched'",
    )
    .bind(recipient)
    .fetch_one(db.pool())
    .await?;
    Ok(n > 0)
}

pub async fn mark_batched(db: &Incidents, id: i64) -> Result<(), IncidentsError> {
    sqlx::query("UPDATE outbox SET status = 'batched' WHERE id = ?")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Recipients whose oldest batched alert is at least `window_secs` old.
pub async fn digests_due(db: &Incidents, window_secs: i64) -> Result<Vec<String>, IncidentsError> {
    Ok(sqlx::query_scalar(
        "SELECT recipient FROM outbox WHERE status = 'batched' GROUP BY recipient HAVING min(created_at) + ? <= ?",
    )
    .bind(window_secs)
    .bind(now())
    .fetch_all(db.pool())
    .await?)
}

/// Turn every batched alert of `recipient` into one digest row, atomically.
pub async fn make_digest(
    db: &Incidents,
    recipient: &str,
    compose: impl FnOnce(&[(String, String)]) -> (String, String),
) -> Result<Option<i64>, IncidentsError> {
    let mut tx = db.write_tx().await?;
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, subject, body FROM outbox WHERE recipient = ? AND status = 'batched' ORDER BY id",
    )
    .bind(recipient)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let parts: Vec<(String, String)> = rows
        .iter()
        .map(|(_, s, b)| (s.clone(), b.clone()))
        .collect();
    let (subject, body) = compose(&parts);
    let t = now();
    let digest: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (created_at, recipient, kind, subject, body, next_attempt_at) \
         VALUES (?, ?, 'digest', ?, ?, ?) RETURNING id",
    )
    .bind(t)
    .bind(recipient)
    .bind(&subject)
    .bind(&body)
    .bind(t)
    .fetch_one(&mut *tx)
    .await?;
    for (id, _, _) in &rows {
        sqlx::query("UPDATE outbox SET status = 'digested', digest_id = ? WHERE id = ?")
            .bind(digest)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Some(digest))
}
