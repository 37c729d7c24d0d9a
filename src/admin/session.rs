//! Sessions, CSRF tokens and login rate limiting, kept in the incident log
//! (`sessions` and `login_attempts`, created by migration 2).
//!
//! The cookie `hm_session` carries 32 random bytes (hex); the database keeps
//! only their SHA-256, so a copy of the database does not hand out live
//! sessions. Each session has its own CSRF token (32 random bytes) that every
//! form carries in a hidden field. Sessions end after [`IDLE_SECS`] without a
//! request or [`ABSOLUTE_SECS`] after login, whichever comes first.

use crate::access::Role;
use crate::incidents::{Incidents, IncidentsError, now};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// Name of the session cookie.
pub const COOKIE: &str = "hm_session";
/// Idle expiry: 30 minutes without a request.
pub const IDLE_SECS: i64 = 30 * 60;
/// Absolute expiry: 12 hours after login.
pub const ABSOLUTE_SECS: i64 = 12 * 60 * 60;
/// Login rate limit: this many failures from one address …
pub const MAX_FAILURES_PER_REMOTE: i64 = 5;
/// … or against one user name …
pub const MAX_FAILURES_PER_USER: i64 = 10;
/// … within this window answer 429.
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Db(#[from] IncidentsError),
    #[error("incident log: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("no system randomness: {0}")]
    Random(String),
}

/// A logged-in user's session.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 (hex) of the cookie value: the row key.
    pub key: String,
    pub user: String,
    pub role: Role,
    pub csrf: String,
}

/// `n` random bytes from the operating system, as lowercase hex.
pub fn random_hex(n: usize) -> Result<String, SessionError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| SessionError::Random(e.to_string()))?;
    Ok(hex(&buf))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The database key of a cookie value.
pub fn key_of(cookie_value: &str) -> String {
    hex(&Sha256::digest(cookie_value.as_bytes()))
}

/// A well-formed cookie value: 64 lowercase hex digits.
pub fn well_formed(cookie_value: &str) -> bool {
    cookie_value.len() == 64
        && cookie_value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Compare two secrets without an early exit on the first difference.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in a `Cookie:` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// The `Set-Cookie` value for a new session.
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ABSOLUTE_SECS}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Create a session for `user` and return (cookie value, session).
pub async fn create(
    db: &Incidents,
    user: &str,
    role: Role,
    remote: Option<&str>,
) -> Result<(String, Session), SessionError> {
    let value = random_hex(32)?;
    let csrf = random_hex(32)?;
    let key = key_of(&value);
    let t = now();
    sqlx::query(
        "INSERT INTO sessions (id, user, csrf, created_at, last_seen, remote) VALUES (?,?,?,?,?,?)",
    )
    .bind(&key)
    .bind(user)
    .bind(&csrf)
    .bind(t)
    .bind(t)
    .bind(remote)
    .execute(db.pool())
    .await?;
    Ok((
        value,
        Session {
            key,
            user: user.to_string(),
            role,
            csrf,
        },
    ))
}

/// The live session for a cookie value, refreshing its idle timer; expired
/// sessions and sessions of disabled or removed users are deleted.
pub async fn lookup(db: &Incidents, cookie_value: &str) -> Result<Option<Session>, SessionError> {
    if !well_formed(cookie_value) {
        return Ok(None);
    }
    let key = key_of(cookie_value);
    let row = sqlx::query(
        "SELECT s.user, s.csrf, s.created_at, s.last_seen, u.role, u.disabled \
         FROM sessions s JOIN users u ON u.name = s.user WHERE s.id = ?",
    )
    .bind(&key)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let user: String = row.try_get("user")?;
    let csrf: String = row.try_get("csrf")?;
    let created_at: i64 = row.try_get("created_at")?;
    let last_seen: i64 = row.try_get("last_seen")?;
    let role: String = row.try_get("role")?;
    let disabled: i64 = row.try_get("disabled")?;
    let t = now();
    let role = Role::parse(&role);
    let live = t - last_seen <= IDLE_SECS && t - created_at <= ABSOLUTE_SECS && disabled == 0;
    let (true, Some(role)) = (live, role) else {
        end(db, &key).await?;
        return Ok(None);
    };
    sqlx::query("UPDATE sessions SET last_seen = ? WHERE id = ?")
        .bind(t)
        .bind(&key)
        .execute(db.pool())
        .await?;
    Ok(Some(Session {
        key,
        user,
        role,
        csrf,
    }))
}

/// End one session (logout or expiry).
pub async fn end(db: &Incidents, key: &str) -> Result<(), SessionError> {
    sqlx::query("DELETE FROM sessions WHERE id = ?")
        .bind(key)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Delete expired sessions and old login attempts.
pub async fn sweep(db: &Incidents) -> Result<(), SessionError> {
    let t = now();
    sqlx::query("DELETE FROM sessions WHERE last_seen < ? OR created_at < ?")
        .bind(t - IDLE_SECS)
        .bind(t - ABSOLUTE_SECS)
        .execute(db.pool())
        .await?;
    sqlx::query("DELETE FROM login_attempts WHERE at < ?")
        .bind(t - 24 * 60 * 60)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// True when `remote` or `user` has too many recent failed logins.
pub async fn throttled(db: &Incidents, remote: &str, user: &str) -> Result<bool, SessionError> {
    let since = now() - FAILURE_WINDOW_SECS;
    let by_remote: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM login_attempts WHERE remote = ? AND at > ?")
            .bind(remote)
            .bind(since)
            .fetch_one(db.pool())
            .await?;
    if by_remote >= MAX_FAILURES_PER_REMOTE {
        return Ok(true);
    }
    let by_user: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM login_attempts WHERE user = ? AND at > ?")
            .bind(user)
            .bind(since)
            .fetch_one(db.pool())
            .await?;
    Ok(by_user >= MAX_FAILURES_PER_USER)
}

/// Record a failed login.
pub async fn failed_login(db: &Incidents, remote: &str, user: &str) -> Result<(), SessionError> {
    sqlx::query("INSERT INTO login_attempts (remote, user, at) VALUES (?,?,?)")
        .bind(remote)
        .bind(user)
        .bind(now())
        .execute(db.pool())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_header_parsing() {
        let h = "a=1; hm_session=abc ; other=x";
        assert_eq!(cookie_value(h, COOKIE), Some("abc"));
        assert_eq!(cookie_value("hm_session_x=1", COOKIE), None);
        assert_eq!(cookie_value("", COOKIE), None);
    }

    #[test]
    fn cookie_attributes() {
        let c = set_cookie("v", false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"));
        assert!(!c.contains("Secure"));
        assert!(set_cookie("v", true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn tokens_are_random_hex_and_keys_hide_them() {
        let a = random_hex(32).unwrap();
        let b = random_hex(32).unwrap();
        assert!(well_formed(&a) && well_formed(&b));
        assert_ne!(a, b);
        assert_ne!(key_of(&a), a);
        assert_eq!(key_of(&a), key_of(&a));
        assert!(!well_formed("../../etc/passwd"));
        assert!(!well_formed(&a.to_uppercase()));
    }

    #[test]
    fn secret_comparison() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    async fn db_with_user(dir: &std::path::Path) -> Incidents {
        let db = Incidents::open(dir).await.unwrap();
        db.add_user("ict", Role::Admin, "pw").await.unwrap();
        db
    }

    #[tokio::test]
    async fn sessions_live_expire_and_end() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_user(dir.path()).await;
        let (value, s) = create(&db, "ict", Role::Admin, Some("127.0.0.1"))
            .await
            .unwrap();
        let found = lookup(&db, &value).await.unwrap().expect("live session");
        assert_eq!((found.user.as_str(), found.role), ("ict", Role::Admin));
        assert_eq!(found.csrf, s.csrf);
        // The key, not the cookie value, is stored.
        let stored: String = sqlx::query_scalar("SELECT id FROM sessions")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(stored, key_of(&value));
        assert!(
            lookup(&db, &random_hex(32).unwrap())
                .await
                .unwrap()
                .is_none()
        );
        // Idle expiry deletes the row.
        sqlx::query("UPDATE sessions SET last_seen = last_seen - ?")
            .bind(IDLE_SECS + 1)
            .execute(db.pool())
            .await
            .unwrap();
        assert!(lookup(&db, &value).await.unwrap().is_none());
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(left, 0);
        // Absolute expiry even when active.
        let (value, _) = create(&db, "ict", Role::Admin, None).await.unwrap();
        sqlx::query("UPDATE sessions SET created_at = created_at - ?")
            .bind(ABSOLUTE_SECS + 1)
            .execute(db.pool())
            .await
            .unwrap();
        assert!(lookup(&db, &value).await.unwrap().is_none());
        // A disabled user's sessions stop working.
        let (value, _) = create(&db, "ict", Role::Admin, None).await.unwrap();
        assert!(lookup(&db, &value).await.unwrap().is_some());
        db.disable_user("ict").await.unwrap();
        assert!(lookup(&db, &value).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn failed_logins_throttle_by_address_and_by_user() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_user(dir.path()).await;
        for _ in 0..MAX_FAILURES_PER_REMOTE {
            assert!(!throttled(&db, "192.0.2.1", "ict").await.unwrap());
            failed_login(&db, "192.0.2.1", "ict").await.unwrap();
        }
        assert!(throttled(&db, "192.0.2.1", "someone").await.unwrap());
        assert!(!throttled(&db, "192.0.2.2", "ict").await.unwrap());
        for i in 0..(MAX_FAILURES_PER_USER - MAX_FAILURES_PER_REMOTE) {
            failed_login(&db, &format!("198.51.100.{i}"), "ict")
                .await
                .unwrap();
        }
        assert!(throttled(&db, "192.0.2.2", "ict").await.unwrap());
        // Old failures no longer count.
        sqlx::query("UPDATE login_attempts SET at = at - ?")
            .bind(FAILURE_WINDOW_SECS + 1)
            .execute(db.pool())
            .await
            .unwrap();
        assert!(!throttled(&db, "192.0.2.1", "ict").await.unwrap());
    }
}
