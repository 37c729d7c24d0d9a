//! hallmonitor: a mail content-scanning relay for schools.
//!
//! Every front-end (the Postfix content filter, the milter, `hallmonitor scan`)
//! builds an [`message::Envelope`] and the raw bytes and calls [`scan::Scanner::scan`]:
//! extraction → detectors → policy → verdict.

pub mod access;
pub mod admin;
pub mod config;
pub mod detect;
pub mod disposition;
pub mod finding;
pub mod inbound;
pub mod incidents;
pub mod mask;
pub mod message;
pub mod notify;
pub mod outbound;
pub mod policy;
pub mod quarantine;
pub mod release;
pub mod report;
pub mod rules;
pub mod scan;
pub mod sender;
pub mod serve;
pub mod status;

pub use finding::{Category, Finding, Severity};

/// Version string written into `X-Hallmonitor-Version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
