//! Migration 3: the alert outbox, the operational-alert rate limit and the
//! weekly summary archive. Owned by the alerts and weekly summary work
//! (issue 8).

pub const MIGRATION: &str = r#"
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    created_at      INTEGER NOT NULL,      -- unix seconds
    recipient       TEXT NOT NULL,         -- one address
    kind            TEXT NOT NULL CHECK(kind IN ('alert','digest','notice','ops')),
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,         -- plain text (evidence masked)
    html            TEXT,
    incident_id     INTEGER,               -- the incident an alert or notice is about
    status          TEXT NOT NULL DEFAULT 'pending',
                    -- pending | sent | failed | batched (waiting for a digest) | digested
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    sent_at         INTEGER,
    digest_id       INTEGER                -- for digested alerts: the digest row
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox(recipient, kind, created_at);

CREATE TABLE ops_alerts (
    key             TEXT PRIMARY KEY,      -- clamd | signatures | disk | tempfails | scan_errors
    last_sent       INTEGER NOT NULL,
    last_text       TEXT NOT NULL
);

CREATE TABLE summaries (
    id              INTEGER PRIMARY KEY,
    week            TEXT NOT NULL,         -- ISO week, e.g. '2026-W47'
    audience        TEXT NOT NULL CHECK(audience IN ('head','governors')),
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    subject         TEXT NOT NULL,
    text            TEXT NOT NULL,
    html            TEXT NOT NULL,         -- references the chart as cid:chart
    png             BLOB
);
CREATE INDEX summaries_week ON summaries(week, audience);
"#;
