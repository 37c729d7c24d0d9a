//! Migration 2: users, sessions, login attempts and server secrets for the
//! quarantine admin (CLI and web UI), plus a release lease on the quarantine
//! index so two operators releasing the same message at once deliver it once.

pub const MIGRATION: &str = r#"
CREATE TABLE users (
    name            TEXT PRIMARY KEY,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'head', 'dsl', 'chair', 'governor')),
    password_hash   TEXT NOT NULL,         -- argon2id PHC string
    created_at      INTEGER NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,      -- 32 random bytes, hex
    user            TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    remote          TEXT
);
CREATE INDEX sessions_user ON sessions(user);

CREATE TABLE login_attempts (
    remote          TEXT NOT NULL,
    user            TEXT,
    at              INTEGER NOT NULL
);
CREATE INDEX login_attempts_remote ON login_attempts(remote, at);

CREATE TABLE secrets (
    name            TEXT PRIMARY KEY,      -- e.g. release_hmac
    value           BLOB NOT NULL
);

-- Unix seconds when a release delivery started (NULL when none is running);
-- a lease older than ten minutes is a crashed release and may be retried.
ALTER TABLE quarantine ADD COLUMN release_started INTEGER;
"#;
