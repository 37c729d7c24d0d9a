//! Migration 3: the alert outbox and the weekly summary archive. Owned by
//! the alerts and weekly summary work (issue 8).

pub const MIGRATION: &str = r#"
-- reserved for alerts and the weekly summary (issue 8)
SELECT 1;
"#;
