//! Durable scan-failure counts per Postfix queue id, for the rule that a
//! message failing the same way three times is held as unscannable. Kept in
//! the database so a restart (or a crash caused by the message) does not
//! reset the count.

use super::db::{Incidents, IncidentsError, now};

/// Counts older than this are forgotten: a message failing for a day
/// without an outage will not recover, and Postfix keeps retrying anyway.
const FORGET_AFTER_SECS: i64 = 86_400;

impl Incidents {
    /// Count one more failed scan of `queue_id`; returns the new count.
    pub async fn count_failure(&self, queue_id: &str, error: &str) -> Result<u32, IncidentsError> {
        let t = now();
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM scan_failures WHERE last_at < ?")
            .bind(t - FORGET_AFTER_SECS)
            .execute(&mut *tx)
            .await?;
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO scan_failures (queue_id, attempts, first_at, last_at, last_error) \
             VALUES (?, 1, ?, ?, ?) \
             ON CONFLICT(queue_id) DO UPDATE SET attempts = attempts + 1, \
             last_at = excluded.last_at, last_error = excluded.last_error \
             RETURNING attempts",
        )
        .bind(queue_id)
        .bind(t)
        .bind(t)
        .bind(error)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Ok(mut set) = self.failing_ids.lock() {
            set.insert(queue_id.to_string());
        }
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Forget `queue_id` once its message was handled.
    /// Called for every scanned message, so the common case (nothing to
    /// forget) is answered from the in-memory set of failing queue ids (loaded
    /// at open, kept by [`Incidents::count_failure`]) without touching the
    /// database: clean mail costs no query.
    pub async fn forget_failures(&self, queue_id: &str) -> Result<(), IncidentsError> {
        let known = self
            .failing_ids
            .lock()
            .map(|set| set.contains(queue_id))
            // A poisoned lock: ask the database rather than guess.
            .unwrap_or(true);
        if !known {
            return Ok(());
        }
        sqlx::query("DELETE FROM scan_failures WHERE queue_id = ?")
            .bind(queue_id)
            .execute(self.pool())
            .await?;
        if let Ok(mut set) = self.failing_ids.lock() {
            set.remove(queue_id);
        }
        Ok(())
    }

    /// Messages currently failing to scan (distinct queue ids seen in the
    /// last day) and the attempts they took.
    pub async fn failing(&self) -> Result<(i64, i64), IncidentsError> {
        let row: (i64, Option<i64>) =
            sqlx::query_as("SELECT count(*), sum(attempts) FROM scan_failures WHERE last_at >= ?")
                .bind(now() - FORGET_AFTER_SECS)
                .fetch_one(self.pool())
                .await?;
        Ok((row.0, row.1.unwrap_or(0)))
    }
}

impl Incidents {
    /// Messages in quarantine awaiting review.
    pub async fn held_count(&self) -> Result<i64, IncidentsError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM quarantine WHERE status = 'held'")
                .fetch_one(self.pool())
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::incidents::Incidents;

    #[tokio::test]
    async fn counts_survive_reopening_and_are_forgotten_on_success() {
        let dir = tempfile::tempdir().unwrap();
        let db = Incidents::open(dir.path()).await.unwrap();
        assert_eq!(db.count_failure("Q1", "boom").await.unwrap(), 1);
        assert_eq!(db.count_failure("Q1", "boom").await.unwrap(), 2);
        assert_eq!(db.count_failure("Q2", "boom").await.unwrap(), 1);
        db.pool().close().await;
        let db = Incidents::open(dir.path()).await.unwrap();
        assert_eq!(db.count_failure("Q1", "boom").await.unwrap(), 3);
        assert_eq!(db.failing().await.unwrap(), (2, 4));
        db.forget_failures("Q1").await.unwrap();
        assert_eq!(db.count_failure("Q1", "boom").await.unwrap(), 1);
    }
}
