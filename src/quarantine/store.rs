//! Durable quarantine files: `STATE/messages/ID.eml` (the raw bytes as
//! received) and `STATE/messages/ID.json` (envelope, verdict with masked
//! findings, next hop, time, queue id).
//!
//! The relay answers 250 for a quarantined message, so Postfix deletes its
//! copy: from then on this store is the only copy. Each file is therefore
//! written to a temporary name, fsynced, renamed into place, and the directory
//! is fsynced, so a crash or power cut leaves either the whole file or none.
//! The `.eml` is written before the `.json`: a `.json` always has its message.

use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("quarantine {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("quarantine metadata: {0}")]
    Json(#[from] serde_json::Error),
}

/// The quarantine directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// The store under `state_dir/messages` (created on first use).
    pub fn new(state_dir: &Path) -> Store {
        Store {
            dir: state_dir.join("messages"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Create the directory now, so a permissions problem shows at start-up.
    pub fn ensure_dir(&self) -> Result<(), StoreError> {
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))
    }

    /// A new id: time, process and a counter, so ids sort by time and never
    /// collide within a host.
    fn new_id() -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        format!(
            "{}{:09}-{}-{}",
            now.as_secs(),
            now.subsec_nanos(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Store one message durably and return its quarantine id.
    pub fn put<M: Serialize>(&self, raw: &[u8], meta: &M) -> Result<String, StoreError> {
        self.ensure_dir()?;
        let id = Store::new_id();
        let json = serde_json::to_vec_pretty(meta)?;
        self.write_durably(&format!("{id}.eml"), raw)?;
        self.write_durably(&format!("{id}.json"), &json)?;
        let d = File::open(&self.dir).map_err(io(&self.dir))?;
        d.sync_all().map_err(io(&self.dir))?;
        Ok(id)
    }

    fn write_durably(&self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(name);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        let written = f.write_all(data).and_then(|()| f.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io(&tmp)(e));
        }
        fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Every stored message's metadata, by id (unreadable files are skipped
    /// with a warning). Used to rebuild the index.
    pub fn metadata_files(&self) -> Vec<(String, serde_json::Value)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if id.starts_with('.') {
                continue;
            }
            match fs::read(e.path()).map(|b| serde_json::from_slice(&b)) {
                Ok(Ok(v)) => out.push((id.to_string(), v)),
                Ok(Err(err)) => {
                    tracing::warn!(file = %e.path().display(), error = %err, "unreadable quarantine metadata")
                }
                Err(err) => {
                    tracing::warn!(file = %e.path().display(), error = %err, "unreadable quarantine metadata")
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Path of a stored message (for tests and, later, release).
    pub fn message_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.eml"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_message_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let id = store
            .put(b"Subject: x\r\n\r\nbody\r\n", &serde_json::json!({"q": 1}))
            .unwrap();
        assert_eq!(
            fs::read(store.message_path(&id)).unwrap(),
            b"Subject: x\r\n\r\nbody\r\n"
        );
        let meta = fs::read_to_string(store.dir().join(format!("{id}.json"))).unwrap();
        assert!(meta.contains("\"q\": 1"));
        let id2 = store.put(b"x", &serde_json::json!({})).unwrap();
        assert_ne!(id, id2);
        let leftovers = fs::read_dir(store.dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn unwritable_directory_is_an_error_not_a_panic() {
        let store = Store::new(Path::new("/proc/hallmonitor-no-such-dir"));
        assert!(store.put(b"x", &serde_json::json!({})).is_err());
    }
}
