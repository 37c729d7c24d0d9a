//! The schema, as numbered migrations applied in order; `PRAGMA user_version`
//! holds how many have run. Never edit a shipped migration: add one.

/// Each entry is one migration (several statements, run in one transaction).
pub const MIGRATIONS: &[&str] = &[
    // 1: incidents, their findings, the quarantine index, audit, scan failures.
    r#"
CREATE TABLE incidents (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,      -- unix seconds, when the verdict was acted on
    front_end       TEXT NOT NULL,         -- relay | milter
    queue_id        TEXT,                  -- Postfix queue id
    message_id      TEXT,
    subject         TEXT,
    mail_from       TEXT NOT NULL,         -- envelope sender ('' for <>)
    rcpts           TEXT NOT NULL,         -- JSON array of envelope recipients
    client_ip       TEXT,
    auth_user       TEXT,
    direction       TEXT NOT NULL,         -- inbound | outbound | internal
    sender_group    TEXT NOT NULL,         -- staff | pupil | external
    identified_sender TEXT,                -- login or From of an identified sender
    sender_is_head  INTEGER NOT NULL DEFAULT 0,
    action          TEXT NOT NULL,         -- pass | tag | quarantine | reject
    categories      TEXT NOT NULL,         -- comma-separated, sorted, '' for none
    rules           TEXT NOT NULL,         -- comma-separated distinct rule ids
    notify          TEXT NOT NULL,         -- comma-separated: head_teacher, chair_of_governors, dsl
    clauses         TEXT NOT NULL,         -- JSON array of AUP clauses
    size            INTEGER NOT NULL
);
CREATE INDEX incidents_at ON incidents(at);
CREATE INDEX incidents_queue_id ON incidents(queue_id);

CREATE TABLE findings (
    incident_id     INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    category        TEXT NOT NULL,
    rule            TEXT NOT NULL,
    location        TEXT NOT NULL,
    evidence        TEXT NOT NULL,         -- masked
    severity        TEXT NOT NULL,
    confidence      REAL NOT NULL,
    count           INTEGER NOT NULL,
    clause          TEXT NOT NULL
);
CREATE INDEX findings_incident ON findings(incident_id);
CREATE INDEX findings_category ON findings(category);

CREATE TABLE quarantine (
    id              TEXT PRIMARY KEY,      -- file stem under STATE/messages
    incident_id     INTEGER NOT NULL UNIQUE REFERENCES incidents(id) ON DELETE CASCADE,
    status          TEXT NOT NULL DEFAULT 'held',  -- held | released | deleted | purged
    held_at         INTEGER NOT NULL,
    next_hop        TEXT NOT NULL,         -- where the holding front-end would have relayed
    reviewed_at     INTEGER,
    reviewed_by     TEXT,
    review_reason   TEXT,
    last_error      TEXT                   -- e.g. a failed release delivery
);
CREATE INDEX quarantine_status ON quarantine(status, held_at);

CREATE TABLE audit (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    actor           TEXT NOT NULL,         -- login name, web user, or 'hallmonitor'
    action          TEXT NOT NULL,         -- view | release | delete | purge | login | ...
    target          TEXT,                  -- quarantine id, user name, ...
    reason          TEXT,
    remote          TEXT,                  -- client address for web actions
    detail          TEXT
);
CREATE INDEX audit_at ON audit(at);

CREATE TABLE scan_failures (
    queue_id        TEXT PRIMARY KEY,
    attempts        INTEGER NOT NULL,
    first_at        INTEGER NOT NULL,
    last_at         INTEGER NOT NULL,
    last_error      TEXT
);
"#,
    // 2: quarantine admin (users, sessions, …).
    super::schema_admin::MIGRATION,
    // 3: alert outbox and summary archive.
    super::schema_notify::MIGRATION,
];
