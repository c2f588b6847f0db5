//! `Idempotency-Key` handling: a retried ingest request with the same key within 24 h gets the
//! first answer and ingests nothing again.
//!
//! The key and its answer travel inside the WAL record of the batch, so they are exactly as
//! durable as the events. Before WAL segments are deleted, the keys still within their 24 h
//! are written to `idempotency.json`; on start the store loads that file and then every key
//! found in the WAL that remains.

use parking_lot::Mutex;
use sawmill_core::durable::{load_json, save_json, StateFileError};
use std::collections::HashMap;
use std::path::PathBuf;

/// How long a key is remembered.
pub const KEY_TTL_NANOS: i64 = 24 * 3600 * 1_000_000_000;
/// Longest accepted key.
pub const MAX_KEY_BYTES: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
struct KeyId {
    tenant: String,
    key: String,
}

#[derive(Clone, Debug)]
enum Entry {
    InFlight,
    Done { answer: Vec<u8>, at: i64 },
}

/// What [`IdempotencyStore::begin`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// First time: process the request, then call `complete` or `abort`.
    New,
    /// Already answered: send this answer again.
    Done(Vec<u8>),
    /// The same key is being processed by another request right now.
    InFlight,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotEntry {
    tenant: String,
    key: String,
    at: i64,
    answer: String,
}

/// The remembered keys.
pub struct IdempotencyStore {
    path: PathBuf,
    entries: Mutex<HashMap<KeyId, Entry>>,
}

impl IdempotencyStore {
    /// Loads the snapshot at `path` (missing = empty), dropping expired keys.
    pub fn load(path: impl Into<PathBuf>, now: i64) -> Result<IdempotencyStore, StateFileError> {
        let path = path.into();
        let list: Vec<SnapshotEntry> = load_json(&path)?.unwrap_or_default();
        let entries = list
            .into_iter()
            .filter(|e| now - e.at < KEY_TTL_NANOS)
            .map(|e| {
                let id = KeyId {
                    tenant: e.tenant,
                    key: e.key,
                };
                let done = Entry::Done {
                    answer: e.answer.into_bytes(),
                    at: e.at,
                };
                (id, done)
            })
            .collect();
        Ok(IdempotencyStore {
            path,
            entries: Mutex::new(entries),
        })
    }

    /// Remembers an answer found in the WAL during recovery.
    pub fn restore(&self, tenant: &str, key: &str, answer: Vec<u8>, at: i64, now: i64) {
        if now - at < KEY_TTL_NANOS {
            self.entries.lock().insert(
                KeyId {
                    tenant: tenant.to_string(),
                    key: key.to_string(),
                },
                Entry::Done { answer, at },
            );
        }
    }

    /// Claims `key` for a request, or returns the answer it already had.
    pub fn begin(&self, tenant: &str, key: &str, now: i64) -> Begin {
        let id = KeyId {
            tenant: tenant.to_string(),
            key: key.to_string(),
        };
        let mut entries = self.entries.lock();
        match entries.get(&id) {
            Some(Entry::InFlight) => Begin::InFlight,
            Some(Entry::Done { answer, at }) if now - at < KEY_TTL_NANOS => {
                Begin::Done(answer.clone())
            }
            _ => {
                entries.insert(id, Entry::InFlight);
                Begin::New
            }
        }
    }

    /// Records the answer of a request that succeeded.
    pub fn complete(&self, tenant: &str, key: &str, answer: Vec<u8>, now: i64) {
        self.entries.lock().insert(
            KeyId {
                tenant: tenant.to_string(),
                key: key.to_string(),
            },
            Entry::Done { answer, at: now },
        );
    }

    /// Releases a key whose request failed before anything was made durable.
    pub fn abort(&self, tenant: &str, key: &str) {
        let id = KeyId {
            tenant: tenant.to_string(),
            key: key.to_string(),
        };
        let mut entries = self.entries.lock();
        if matches!(entries.get(&id), Some(Entry::InFlight)) {
            entries.remove(&id);
        }
    }

    /// Forgets expired keys.
    pub fn prune(&self, now: i64) {
        self.entries
            .lock()
            .retain(|_, e| !matches!(e, Entry::Done { at, .. } if now - *at >= KEY_TTL_NANOS));
    }

    /// Writes every unexpired answered key to the snapshot file (atomically, fsynced), so WAL
    /// segments holding them can be deleted.
    pub fn save(&self, now: i64) -> Result<(), StateFileError> {
        let list: Vec<SnapshotEntry> = self
            .entries
            .lock()
            .iter()
            .filter_map(|(id, e)| match e {
                Entry::Done { answer, at } if now - at < KEY_TTL_NANOS => Some(SnapshotEntry {
                    tenant: id.tenant.clone(),
                    key: id.key.clone(),
                    at: *at,
                    answer: String::from_utf8_lossy(answer).into_owned(),
                }),
                _ => None,
            })
            .collect();
        save_json(&self.path, &list)
    }
}

/// An `Idempotency-Key` header value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    #[error("Idempotency-Key is empty")]
    Empty,
    #[error("Idempotency-Key is {0} bytes; the limit is {MAX_KEY_BYTES}")]
    TooLong(usize),
    #[error("Idempotency-Key must be printable ASCII without spaces")]
    NotPrintable,
}

/// Checks an `Idempotency-Key` header value.
pub fn validate_key(key: &str) -> Result<(), InvalidKey> {
    if key.is_empty() {
        return Err(InvalidKey::Empty);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(InvalidKey::TooLong(key.len()));
    }
    if !key.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(InvalidKey::NotPrintable);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_gets_first_answer() {
        let dir = tempfile::tempdir().unwrap();
        let store = IdempotencyStore::load(dir.path().join("i.json"), 0).unwrap();
        assert_eq!(store.begin("t", "k", 0), Begin::New);
        assert_eq!(store.begin("t", "k", 1), Begin::InFlight);
        store.complete("t", "k", b"A".to_vec(), 2);
        assert_eq!(store.begin("t", "k", 3), Begin::Done(b"A".to_vec()));
        // other tenants are separate
        assert_eq!(store.begin("u", "k", 3), Begin::New);
        // expires after 24 h
        assert_eq!(store.begin("t", "k", 2 + KEY_TTL_NANOS), Begin::New);
    }

    #[test]
    fn abort_releases_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = IdempotencyStore::load(dir.path().join("i.json"), 0).unwrap();
        assert_eq!(store.begin("t", "k", 0), Begin::New);
        store.abort("t", "k");
        assert_eq!(store.begin("t", "k", 0), Begin::New);
    }

    #[test]
    fn snapshot_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.json");
        let store = IdempotencyStore::load(&path, 0).unwrap();
        store.complete("t", "k", b"{\"accepted\":1}".to_vec(), 10);
        store.save(20).unwrap();
        let again = IdempotencyStore::load(&path, 30).unwrap();
        assert_eq!(
            again.begin("t", "k", 40),
            Begin::Done(b"{\"accepted\":1}".to_vec())
        );
    }

    #[test]
    fn keys_are_validated() {
        assert!(validate_key("abc-123").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("has space").is_err());
        assert!(validate_key(&"x".repeat(300)).is_err());
    }
}
