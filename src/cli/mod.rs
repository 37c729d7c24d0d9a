//! Subcommands beyond `scan`, `serve` and `status`, one file each.

pub mod quarantine;
pub mod report;
pub mod user;
