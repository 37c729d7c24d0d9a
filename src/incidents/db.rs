//! Opening the database and applying the schema.

use super::schema::MIGRATIONS;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum IncidentsError {
    #[error("incident log {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "incident log {path}: schema version {found} is newer than this hallmonitor knows ({known}); upgrade hallmonitor"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("incident log: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("incident log: {0}")]
    Json(#[from] serde_json::Error),
}

/// A handle on the incident log; cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct Incidents {
    pool: SqlitePool,
    path: PathBuf,
    /// Queue ids with a row in `scan_failures`, so clearing a count (done
    /// for every scanned message) costs nothing in the common case.
    pub(super) failing_ids: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// File name of the database under the state directory.
pub const DB_FILE: &str = "hallmonitor.db";

impl Incidents {
    /// Open (creating if needed) `state_dir/hallmonitor.db` and bring its
    /// schema up to date.
    pub async fn open(state_dir: &Path) -> Result<Incidents, IncidentsError> {
        let path = state_dir.join(DB_FILE);
        let open_err = |source| IncidentsError::Open {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(|e| open_err(sqlx::Error::Io(e)))?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_err)?;
        let db = Incidents {
            pool,
            path,
            failing_ids: Default::default(),
        };
        db.migrate().await?;
        let ids: Vec<String> = sqlx::query_scalar("SELECT queue_id FROM scan_failures")
            .fetch_all(&db.pool)
            .await?;
        if let Ok(mut set) = db.failing_ids.lock() {
            set.extend(ids);
        }
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that takes the write lock at once (`BEGIN IMMEDIATE`).
    /// Use it for every transaction that reads and then writes: a deferred
    /// one that upgrades from read to write fails at once with "database is
    /// locked" when another writer is busy, instead of waiting out the busy
    /// timeout.
    pub async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn migrate(&self) -> Result<(), IncidentsError> {
        let mut conn = self.pool.acquire().await?;
        // BEGIN IMMEDIATE: two processes opening a new database at once must
        // not both apply migration 1.
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let result = async {
            let version: i64 = sqlx::query_scalar("PRAGMA user_version")
                .fetch_one(&mut *conn)
                .await?;
            let known = MIGRATIONS.len() as i64;
            if version > known {
                return Err(IncidentsError::TooNew {
                    path: self.path.clone(),
                    found: version,
                    known,
                });
            }
            for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                sqlx::raw_sql(*m).execute(&mut *conn).await?;
                let v = i + 1;
                sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA user_version = {v}")))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                sqlx::query("COMMIT").execute(&mut *conn).await?;
                Ok(())
            }
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                Err(e)
            }
        }
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_schema_once_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let db = Incidents::open(dir.path()).await.unwrap();
        let v: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        drop(db);
        // Reopening applies nothing twice (a second CREATE TABLE would fail).
        Incidents::open(dir.path()).await.unwrap();
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = Incidents::open(dir.path()).await.unwrap();
        sqlx::query("PRAGMA user_version = 999")
            .execute(db.pool())
            .await
            .unwrap();
        db.pool().close().await;
        let err = Incidents::open(dir.path()).await.unwrap_err().to_string();
        assert!(err.contains("schema version 999"), "{err}");
    }
}
