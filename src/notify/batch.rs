//! Batching: when one person has already had `batch_threshold` alerts in
//! the last `batch_window`, further alerts wait and go out as one digest
//! when the window of the first waiting alert has passed.

use super::{compose, outbox};
use crate::config::Config;
use crate::incidents::{Incidents, IncidentsError, now};

/// Should this alert wait for a digest instead of going out now?
pub async fn should_batch(
    config: &Config,
    db: &Incidents,
    item: &outbox::Item,
) -> Result<bool, IncidentsError> {
    if item.kind != "alert" || item.attempts > 0 {
        return Ok(false);
    }
    if outbox::has_batched(db, &item.recipient).await? {
        return Ok(true);
    }
    let window = config.notify.batch_window().as_secs() as i64;
    let sent =
        outbox::individual_alerts_since(db, &item.recipient, now() - window, item.id).await?;
    Ok(sent >= i64::from(config.notify.batch_threshold))
}

/// Turn due batches into digests. Returns how many digests were made.
pub async fn flush(config: &Config, db: &Incidents) -> Result<usize, IncidentsError> {
    let window = config.notify.batch_window().as_secs() as i64;
    let mut made = 0;
    for recipient in outbox::digests_due(db, window).await? {
        let mins = (window as u64).div_ceil(60).max(1);
        let digest = outbox::make_digest(db, &recipient, |parts| {
            let c = compose::digest(config, parts, mins);
            (c.subject, c.body)
        })
        .await?;
        if digest.is_some() {
            made += 1;
        }
    }
    Ok(made)
}
