//! The incident log: an embedded SQLite database (`STATE/hallmonitor.db`)
//! with every message that had findings or was not simply passed, what was
//! done about it, the quarantine index, the audit trail and the scan-failure
//! counts. Release, alerts and the weekly summary are all queries on it.
//!
//! WAL mode with `synchronous = FULL`: a committed row survives a power cut,
//! and the CLI can read and write while `serve` runs (busy timeout 5 s).

mod db;
mod failures;
mod quarantine;
mod record;
mod schema;
mod schema_admin;
mod schema_notify;
mod users;

pub use db::{DB_FILE, Incidents, IncidentsError, now};
pub use quarantine::{AuditRow, HeldFilter, HeldItem, IncidentRow};
pub use record::{AuditEntry, FindingRow, FrontEnd, HeldRow, NewIncident};
pub use users::{User, UserError, random_bytes, valid_user_name};
