//! Alerts to the head teacher / Chair of Governors / DSL, notices to
//! senders whose message was held, and operational alerts to the ICT admin.
//!
//! Nothing here is on the mail path: [`incident_recorded`] only writes rows
//! to the durable outbox (a few milliseconds) and wakes the background
//! sender [`run`], which sends with retries, batches bursts into digests and
//! runs the operational checks.

pub mod batch;
pub mod compose;
pub mod ops;
pub mod outbox;
pub mod route;
pub mod send;

use crate::incidents::NewIncident;
use crate::serve::{Settings, Shared};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::{info, warn};

/// Wakes the background sender when something was queued.
static WAKE: Notify = Notify::const_new();

/// Called by [`crate::disposition`] after an incident row was written
/// (`id` is its row id): queue the alerts and the sender notice it calls
/// for, and wake the sender. Never fails and never waits on the network.
pub async fn incident_recorded(settings: &Settings, id: i64, incident: &NewIncident) {
    let config = &settings.config;
    if !config.notify.enabled {
        return;
    }
    let db = &settings.incidents;
    let mut queued = 0;
    if route::wants_alert(config, incident) {
        for r in route::alert_recipients(config, incident) {
            let mail = compose::alert(config, incident, &r.roles);
            match outbox::enqueue(db, &r.address, "alert", &mail.subject, &mail.body, Some(id))
                .await
            {
                Ok(_) => queued += 1,
                Err(e) => warn!(incident = id, error = %e, "alert not queued"),
            }
        }
    }
    if let Some(to) = route::notice_recipient(config, incident) {
        let mail = compose::notice(config, incident, route::told_whom(incident));
        match outbox::enqueue(db, &to, "notice", &mail.subject, &mail.body, Some(id)).await {
            Ok(_) => queued += 1,
            Err(e) => warn!(incident = id, error = %e, "sender notice not queued"),
        }
    }
    if queued > 0 {
        WAKE.notify_one();
    }
}

/// Background sender started by `hallmonitor serve` (retries, batching,
/// operational checks). Returns when the server shuts down.
pub async fn run(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    // The first operational check after one interval, not at start-up:
    // clamd may still be loading its signatures then.
    let mut next_ops =
        tokio::time::Instant::now() + shared.settings().config.notify.ops_check_every();
    loop {
        let settings = shared.settings();
        let mut sleep_for = Duration::from_secs(60);
        if settings.config.notify.enabled {
            if let Err(e) = process(&settings).await {
                warn!(error = %e, "alert outbox");
            }
            if tokio::time::Instant::now() >= next_ops {
                if let Err(e) = ops::check(&settings).await {
                    warn!(error = %e, "operational checks");
                }
                next_ops = tokio::time::Instant::now() + settings.config.notify.ops_check_every();
                // Queued operational alerts go out on the next round at once.
                if let Err(e) = process(&settings).await {
                    warn!(error = %e, "alert outbox");
                }
            }
            let window = settings.config.notify.batch_window().as_secs() as i64;
            if let Ok(Some(t)) = outbox::next_wakeup(&settings.incidents, window).await {
                let wait = (t - crate::incidents::now()).max(0) as u64;
                sleep_for = sleep_for.min(Duration::from_secs(wait));
            }
            sleep_for =
                sleep_for.min(next_ops.saturating_duration_since(tokio::time::Instant::now()));
        }
        // Sub-second granularity is not needed; never spin.
        let sleep_for = sleep_for.max(Duration::from_millis(200));
        tokio::select! {
            () = crate::serve::stopped(&mut shutdown) => return,
            () = WAKE.notified() => {}
            () = tokio::time::sleep(sleep_for) => {}
        }
    }
}

/// One round: make due digests, then send (or batch) every due row.
async fn process(settings: &Settings) -> Result<(), crate::incidents::IncidentsError> {
    let config = &settings.config;
    let db = &settings.incidents;
    batch::flush(config, db).await?;
    let retry = config.notify.retry_delays();
    loop {
        let items = outbox::due(db, 50).await?;
        if items.is_empty() {
            return Ok(());
        }
        let mut progressed = false;
        for item in items {
            if batch::should_batch(config, db, &item).await? {
                outbox::mark_batched(db, item.id).await?;
                info!(outbox = item.id, to = %item.recipient, "alert batched into a digest");
                continue;
            }
            let out = send::Outgoing {
                to: vec![item.recipient.clone()],
                subject: &item.subject,
                text: &item.body,
                html: item.html.as_deref(),
                headers: vec![("X-Hallmonitor-Kind", item.kind.clone())],
                ..send::Outgoing::default()
            };
            match send::send(config, &out).await {
                Ok(()) => {
                    outbox::mark_sent(db, item.id).await?;
                    progressed = true;
                    info!(outbox = item.id, kind = %item.kind, to = %item.recipient, "sent");
                }
                Err(e) => {
                    let retry_in = retry
                        .get(item.attempts as usize)
                        .map(|d| d.as_secs() as i64);
                    warn!(outbox = item.id, kind = %item.kind, to = %item.recipient, error = %e,
                        attempts = item.attempts + 1, gives_up = retry_in.is_none(), "send failed");
                    outbox::mark_failed(db, item.id, &e.to_string(), retry_in).await?;
                }
            }
        }
        if !progressed {
            return Ok(());
        }
    }
}
