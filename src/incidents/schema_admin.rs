//! Migration 2: users, sessions and anything else the quarantine admin
//! (CLI and web UI) needs. Owned by the quarantine-admin work (issue 7).

pub const MIGRATION: &str = r#"
-- reserved for the quarantine admin (issue 7)
SELECT 1;
"#;
