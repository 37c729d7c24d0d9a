//! Alerts to the head teacher / Chair / DSL, notices to senders and
//! operational alerts to the ICT admin (skeleton; issue 8).

use crate::incidents::NewIncident;
use crate::serve::{Settings, Shared};
use std::sync::Arc;

/// Called by [`crate::disposition`] after an incident row was written
/// (`id` is its row id). Must never block mail flow: queue and return.
pub async fn incident_recorded(settings: &Settings, id: i64, incident: &NewIncident) {
    let _ = (settings, id, incident);
}

/// Background sender started by `hallmonitor serve` (retries, batching,
/// operational checks). Returns when the server shuts down.
pub async fn run(shared: Arc<Shared>) {
    let _ = shared;
}
