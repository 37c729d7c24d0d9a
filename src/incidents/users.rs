//! Admin users (argon2id password hashes) and server secrets, in the state
//! database. Sessions are the web UI's; this file only creates and checks users.

use super::db::{Incidents, IncidentsError, now};
use crate::access::Role;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::Serialize;
use sqlx::Row;
use std::sync::OnceLock;

/// A user as the access rules see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub role: Role,
}

/// Why a user could not be added.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user name `{0}` is not valid: use 1-64 of a-z 0-9 . _ @ -")]
    BadName(String),
    #[error("the password is empty")]
    EmptyPassword,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("cannot get random bytes: {0}")]
    Random(String),
}

// IncidentsError (db.rs) has no variant of its own for these; the message is
// carried as an invalid-argument error and shows as "incident log: …".
impl From<UserError> for IncidentsError {
    fn from(e: UserError) -> Self {
        IncidentsError::Sql(sqlx::Error::InvalidArgument(e.to_string()))
    }
}

/// `[a-z0-9._@-]{1,64}`.
pub fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'@' | b'-')
        })
}

fn hash(password: &str) -> Result<String, UserError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so an unknown
/// name costs as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("hallmonitor-dummy-password").unwrap_or_default())
}

/// Fill a buffer with random bytes from the OS.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, UserError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| UserError::Random(e.to_string()))?;
    Ok(buf)
}

impl Incidents {
    /// Add a user, or replace the role and password of an existing one.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<(), IncidentsError> {
        if !valid_user_name(name) {
            return Err(UserError::BadName(name.to_string()).into());
        }
        if password.is_empty() {
            return Err(UserError::EmptyPassword.into());
        }
        let password = password.to_string();
        let phc = tokio::task::spawn_blocking(move || hash(&password))
            .await
            .map_err(|e| UserError::Hash(e.to_string()))??;
        sqlx::query(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT(name) DO UPDATE SET role = excluded.role, \
             password_hash = excluded.password_hash, disabled = 0",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(phc)
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The user if the name and password match an enabled user.
    pub async fn verify_login(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<User>, IncidentsError> {
        let row = sqlx::query("SELECT role, password_hash, disabled FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        let (role, phc, disabled) = match &row {
            Some(r) => (
                Role::parse(&r.try_get::<String, _>("role")?),
                r.try_get::<String, _>("password_hash")?,
                r.try_get::<bool, _>("disabled")?,
            ),
            None => (None, dummy_hash().to_string(), true),
        };
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify(&password, &phc))
            .await
            .unwrap_or(false);
        Ok(match role {
            Some(role) if ok && !disabled => Some(User {
                name: name.to_string(),
                role,
            }),
            _ => None,
        })
    }

    /// An enabled user by name.
    pub async fn user(&self, name: &str) -> Result<Option<User>, IncidentsError> {
        let row = sqlx::query("SELECT role FROM users WHERE name = ? AND disabled = 0")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Role::parse(&r.try_get::<String, _>("role")?).map(|role| User {
                name: name.to_string(),
                role,
            }),
            None => None,
        })
    }

    /// All enabled users, by name.
    pub async fn list_users(&self) -> Result<Vec<User>, IncidentsError> {
        let rows = sqlx::query("SELECT name, role FROM users WHERE disabled = 0 ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::new();
        for r in rows {
            if let Some(role) = Role::parse(&r.try_get::<String, _>("role")?) {
                out.push(User {
                    name: r.try_get("name")?,
                    role,
                });
            }
        }
        Ok(out)
    }

    /// Disable a user (their sessions go too); false if there was none.
    pub async fn disable_user(&self, name: &str) -> Result<bool, IncidentsError> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("UPDATE users SET disabled = 1 WHERE name = ? AND disabled = 0")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM sessions WHERE user = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    /// A named server secret: 32 random bytes made on first use and kept in
    /// the database, so `serve` and the CLI share it.
    pub async fn secret(&self, name: &str) -> Result<Vec<u8>, IncidentsError> {
        if let Some(v) =
            sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM secrets WHERE name = ?")
                .bind(name)
                .fetch_optional(self.pool())
                .await?
        {
            return Ok(v);
        }
        let fresh = random_bytes(32)?;
        sqlx::query("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)")
            .bind(name)
            .bind(fresh)
            .execute(self.pool())
            .await?;
        // Whoever inserted first wins; everyone reads the same value.
        Ok(
            sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM secrets WHERE name = ?")
                .bind(name)
                .fetch_one(self.pool())
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert!(valid_user_name("j.smith@oakfield"));
        assert!(valid_user_name("ict-admin_2"));
        assert!(!valid_user_name(""));
        assert!(!valid_user_name("Admin"));
        assert!(!valid_user_name("a b"));
        assert!(!valid_user_name("../x"));
        assert!(!valid_user_name(&"a".repeat(65)));
    }

    #[tokio::test]
    async fn add_verify_replace_and_disable() {
        let dir = tempfile::tempdir().unwrap();
        let db = Incidents::open(dir.path()).await.unwrap();
        db.add_user("head", Role::Head, "correct horse")
            .await
            .unwrap();
        let phc: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE name = 'head'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert_eq!(
            db.verify_login("head", "correct horse").await.unwrap(),
            Some(User {
                name: "head".into(),
                role: Role::Head
            })
        );
        assert_eq!(db.verify_login("head", "wrong").await.unwrap(), None);
        assert_eq!(
            db.verify_login("nobody", "correct horse").await.unwrap(),
            None
        );
        db.add_user("head", Role::Chair, "new").await.unwrap();
        assert_eq!(db.user("head").await.unwrap().unwrap().role, Role::Chair);
        assert_eq!(
            db.verify_login("head", "correct horse").await.unwrap(),
            None
        );
        assert!(db.add_user("Bad Name", Role::Admin, "x").await.is_err());
        assert!(db.add_user("x", Role::Admin, "").await.is_err());
        assert!(db.disable_user("head").await.unwrap());
        assert_eq!(db.verify_login("head", "new").await.unwrap(), None);
        assert!(db.list_users().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn secrets_are_made_once_and_shared() {
        let dir = tempfile::tempdir().unwrap();
        let db = Incidents::open(dir.path()).await.unwrap();
        let a = db.secret("release_hmac").await.unwrap();
        assert_eq!(a.len(), 32);
        let db2 = Incidents::open(dir.path()).await.unwrap();
        assert_eq!(db2.secret("release_hmac").await.unwrap(), a);
        assert_ne!(db.secret("other").await.unwrap(), a);
    }
}
