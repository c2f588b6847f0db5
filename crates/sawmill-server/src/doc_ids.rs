//! Document ids given by Elasticsearch clients: a document re-sent with the same `_index` and
//! `_id` within a day is kept once (shippers re-send a whole bulk request when its answer was
//! lost).
//!
//! An id is claimed when its request is decoded and settled with the request: kept once the
//! events are durable, released when the request failed, so a retry of a failed request is
//! never taken for a duplicate. A document whose id is claimed by a request still in flight is
//! answered `429` on its own, for the client to retry it.
//!
//! Ids are remembered as 128-bit hashes of tenant, index and id (a false match between two
//! different documents has a chance of about 2⁻⁶⁴ in a day of a million ids). They are as
//! durable as the events: on start the store loads `doc-ids.bin` (written before WAL
//! segments are deleted) and then every id found in the WAL that remains. At most
//! `capacity` ids are remembered; past it the oldest are forgotten first.

use parking_lot::Mutex;
use sawmill_core::durable::replace_file;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

/// How long an id is remembered.
pub const ID_TTL_NANOS: i64 = crate::idempotency::KEY_TTL_NANOS;
/// Bytes of one remembered id in the snapshot file: the key, then the time it was kept.
const ENTRY_BYTES: usize = 24;

/// One document's identity within its tenant and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DocKey(u128);

impl DocKey {
    pub fn new(tenant: &str, index: Option<&str>, id: &str) -> DocKey {
        let mut h = Sha256::new();
        for part in [tenant, index.unwrap_or(""), id] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let digest = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        DocKey(u128::from_le_bytes(first))
    }
}

/// What [`DocIds::claim`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First time: the caller holds the claim until it settles it.
    New,
    /// Kept before: the document is a duplicate.
    Seen,
    /// Claimed by a request still in flight.
    InFlight,
}

#[derive(Clone, Copy, Debug)]
enum Entry {
    InFlight,
    Kept(i64),
}

struct Inner {
    entries: HashMap<DocKey, Entry>,
    /// Kept ids in the order they were kept, for expiry and the capacity.
    order: VecDeque<(DocKey, i64)>,
}

/// The remembered ids.
pub struct DocIds {
    path: PathBuf,
    capacity: usize,
    inner: Mutex<Inner>,
}

impl DocIds {
    /// Loads the snapshot at `path` (missing = empty), dropping expired ids.
    pub fn load(path: impl Into<PathBuf>, capacity: usize, now: i64) -> io::Result<DocIds> {
        let path = path.into();
        let store = DocIds {
            path,
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
        };
        let bytes = match std::fs::read(&store.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(store),
            Err(e) => return Err(e),
        };
        if bytes.len() % ENTRY_BYTES != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is {} bytes, not a whole number of {ENTRY_BYTES}-byte entries",
                    store.path.display(),
                    bytes.len()
                ),
            ));
        }
        for chunk in bytes.chunks_exact(ENTRY_BYTES) {
            let mut key = [0u8; 16];
            key.copy_from_slice(&chunk[..16]);
            let mut at = [0u8; 8];
            at.copy_from_slice(&chunk[16..]);
            store.restore(
                DocKey(u128::from_le_bytes(key)),
                i64::from_le_bytes(at),
                now,
            );
        }
        Ok(store)
    }

    /// Remembers an id kept at `at` (from the snapshot or the WAL).
    pub fn restore(&self, key: DocKey, at: i64, now: i64) {
        if now - at >= ID_TTL_NANOS {
            return;
        }
        let mut inner = self.inner.lock();
        if inner.entries.insert(key, Entry::Kept(at)).is_none() {
            inner.order.push_back((key, at));
            self.trim(&mut inner, now);
        }
    }

    /// Claims `key` for a request being decoded.
    pub fn claim(&self, key: DocKey, now: i64) -> Claim {
        let mut inner = self.inner.lock();
        self.trim(&mut inner, now);
        match inner.entries.get(&key) {
            Some(Entry::Kept(at)) if now - at < ID_TTL_NANOS => Claim::Seen,
            Some(Entry::InFlight) => Claim::InFlight,
            _ => {
                inner.entries.insert(key, Entry::InFlight);
                Claim::New
            }
        }
    }

    /// Settles the claims of a request: kept when its events are durable, else released.
    pub fn settle(&self, claims: Vec<DocKey>, durable: bool) {
        let now = crate::http::now_nanos();
        let mut inner = self.inner.lock();
        for key in claims {
            if durable {
                inner.entries.insert(key, Entry::Kept(now));
                inner.order.push_back((key, now));
            } else {
                inner.entries.remove(&key);
            }
        }
        self.trim(&mut inner, now);
    }

    /// Forgets expired ids, and the oldest beyond the capacity.
    fn trim(&self, inner: &mut Inner, now: i64) {
        while let Some(&(key, at)) = inner.order.front() {
            if now - at < ID_TTL_NANOS && inner.order.len() <= self.capacity {
                break;
            }
            inner.order.pop_front();
            // an id kept again later has a newer entry in `order`: keep it
            if matches!(inner.entries.get(&key), Some(Entry::Kept(t)) if *t == at) {
                inner.entries.remove(&key);
            }
        }
    }

    /// How many ids are remembered (kept or in flight).
    pub fn remembered(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// Writes the kept ids within their day to the snapshot file (atomically).
    pub fn save(&self, now: i64) -> io::Result<()> {
        let bytes = {
            let mut inner = self.inner.lock();
            self.trim(&mut inner, now);
            let mut out = Vec::with_capacity(inner.order.len() * ENTRY_BYTES);
            for (key, at) in &inner.order {
                if matches!(inner.entries.get(key), Some(Entry::Kept(t)) if t == at) {
                    out.extend_from_slice(&key.0.to_le_bytes());
                    out.extend_from_slice(&at.to_le_bytes());
                }
            }
            out
        };
        replace_file(&self.path, &bytes)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The ids of the documents in a WAL record's events (NDJSON after the header): each line
/// with an `_id` string attribute, with its `index`.
pub fn ids_in_events(tenant: &str, ndjson: &[u8]) -> Vec<DocKey> {
    let finder = memchr::memmem::Finder::new(b"\"_id\"");
    if finder.find(ndjson).is_none() {
        return Vec::new();
    }
    ndjson
        .split(|&b| b == b'\n')
        .filter(|line| finder.find(line).is_some())
        .filter_map(|line| serde_json::from_slice::<IdFields>(line).ok())
        .filter_map(|f| Some(DocKey::new(tenant, f.index.as_deref(), &f.id?)))
        .collect()
}

#[derive(serde::Deserialize)]
struct IdFields {
    #[serde(rename = "_id")]
    id: Option<String>,
    index: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600 * 1_000_000_000;

    fn key(id: &str) -> DocKey {
        DocKey::new("t", Some("logs"), id)
    }

    #[test]
    fn keys_differ_by_tenant_index_and_id() {
        let a = DocKey::new("t", Some("logs"), "1");
        assert_eq!(a, DocKey::new("t", Some("logs"), "1"));
        assert_ne!(a, DocKey::new("u", Some("logs"), "1"));
        assert_ne!(a, DocKey::new("t", Some("logs2"), "1"));
        assert_ne!(a, DocKey::new("t", None, "1"));
        assert_ne!(
            DocKey::new("t", Some("a"), "bc"),
            DocKey::new("t", Some("ab"), "c")
        );
    }

    #[test]
    fn a_claim_is_kept_when_durable_and_released_when_not() {
        let dir = tempfile::tempdir().unwrap();
        let ids = DocIds::load(dir.path().join("ids"), 100, 0).unwrap();
        let now = crate::http::now_nanos();
        assert_eq!(ids.claim(key("a"), now), Claim::New);
        assert_eq!(ids.claim(key("a"), now), Claim::InFlight);
        assert_eq!(ids.claim(key("b"), now), Claim::New);
        ids.settle(vec![key("a")], true);
        ids.settle(vec![key("b")], false);
        assert_eq!(ids.claim(key("a"), now), Claim::Seen);
        assert_eq!(ids.claim(key("b"), now), Claim::New);
        // a day later the id is forgotten
        assert_eq!(ids.claim(key("a"), now + 25 * HOUR), Claim::New);
    }

    #[test]
    fn the_snapshot_round_trips_and_drops_expired_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids");
        let now = crate::http::now_nanos();
        let ids = DocIds::load(&path, 100, now).unwrap();
        ids.restore(key("old"), now - 23 * HOUR, now);
        ids.restore(key("new"), now - HOUR, now);
        ids.save(now).unwrap();
        let back = DocIds::load(&path, 100, now + 2 * HOUR).unwrap();
        assert_eq!(back.remembered(), 1);
        assert_eq!(back.claim(key("new"), now + 2 * HOUR), Claim::Seen);
        assert_eq!(back.claim(key("old"), now + 2 * HOUR), Claim::New);
        std::fs::write(&path, b"short").unwrap();
        assert!(DocIds::load(&path, 100, now).is_err());
    }

    #[test]
    fn the_oldest_ids_go_first_beyond_the_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::http::now_nanos();
        let ids = DocIds::load(dir.path().join("ids"), 2, now).unwrap();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            ids.restore(key(id), now - 10 + i as i64, now);
        }
        assert_eq!(ids.remembered(), 2);
        assert_eq!(ids.claim(key("a"), now), Claim::New);
    }

    #[test]
    fn ids_are_found_in_wal_events() {
        let ndjson = concat!(
            "{\"timestamp\":\"2026-12-04T00:00:00Z\",\"message\":\"x\",\"index\":\"logs\",\"_id\":\"1\"}\n",
            "{\"timestamp\":\"2026-12-04T00:00:00Z\",\"message\":\"no id\"}\n",
            "{\"timestamp\":\"2026-12-04T00:00:00Z\",\"message\":\"y\",\"_id\":\"2\"}\n",
        );
        let found = ids_in_events("t", ndjson.as_bytes());
        assert_eq!(found, vec![key("1"), DocKey::new("t", None, "2")]);
        assert!(ids_in_events("t", b"{\"message\":\"x\"}\n").is_empty());
    }
}
