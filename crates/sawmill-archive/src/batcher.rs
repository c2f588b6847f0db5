//! Batches of archive lines, one open batch per tenant and hour, compressed as they grow.
//!
//! Lines are streamed through a zstd encoder into a spool file, so an open batch costs disk,
//! not memory. A batch is sealed when its uncompressed size reaches `max_bytes`, when it has
//! been open for `max_age`, when too many batches are open (the oldest goes first) or on
//! flush. Every line of a tenant's hour read while its batch is open goes into that batch, so
//! a sealed batch is exactly "the events of (tenant, hour) with WAL sequence numbers between
//! `first_seq` and `last_seq`".

use crate::layout::hour_of;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How batches are cut.
#[derive(Clone, Debug)]
pub struct BatchLimits {
    /// Uncompressed bytes at which a batch is sealed.
    pub max_bytes: u64,
    /// Time after which an open batch is sealed.
    pub max_age: Duration,
    /// Batches open at once at most.
    pub max_open: usize,
    /// zstd compression level.
    pub level: i32,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_bytes: 64 << 20,
            max_age: Duration::from_secs(300),
            max_open: 64,
            level: 3,
        }
    }
}

/// A finished batch, compressed in its spool file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub tenant: String,
    pub hour: i64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub events: u64,
    pub raw_bytes: u64,
    pub compressed_bytes: u64,
    pub path: PathBuf,
}

struct Open {
    first_seq: u64,
    last_seq: u64,
    first_ts: i64,
    last_ts: i64,
    events: u64,
    raw_bytes: u64,
    opened: Instant,
    path: PathBuf,
    encoder: zstd::stream::write::Encoder<'static, BufWriter<File>>,
}

/// The open batches.
pub struct Batcher {
    spool: PathBuf,
    limits: BatchLimits,
    open: HashMap<(String, i64), Open>,
}

impl Batcher {
    /// A batcher spooling into `spool` (emptied: batches of a previous run are rebuilt from
    /// the WAL).
    pub fn new(spool: impl Into<PathBuf>, limits: BatchLimits) -> std::io::Result<Batcher> {
        let spool = spool.into();
        if spool.exists() {
            std::fs::remove_dir_all(&spool)?;
        }
        std::fs::create_dir_all(&spool)?;
        Ok(Batcher {
            spool,
            limits,
            open: HashMap::new(),
        })
    }

    /// Adds one event line (its normalized JSON, without newline). Returns batches sealed to
    /// make room or because they reached their size.
    pub fn add(
        &mut self,
        tenant: &str,
        seq: u64,
        ts: i64,
        line: &[u8],
    ) -> std::io::Result<Vec<Sealed>> {
        let mut sealed = Vec::new();
        let hour = hour_of(ts);
        let key = (tenant.to_string(), hour);
        if !self.open.contains_key(&key) {
            if self.open.len() >= self.limits.max_open.max(1) {
                if let Some(oldest) = self
                    .open
                    .iter()
                    .min_by_key(|(_, b)| b.opened)
                    .map(|(k, _)| k.clone())
                {
                    sealed.push(self.seal(&oldest)?);
                }
            }
            let path = self.spool.join(format!(
                "{}-{hour}-{seq}.ndjson.zst",
                crate::layout::key_safe(tenant)
            ));
            let file = File::create(&path)?;
            let encoder = zstd::stream::write::Encoder::new(
                BufWriter::with_capacity(1 << 20, file),
                self.limits.level,
            )?;
            self.open.insert(
                key.clone(),
                Open {
                    first_seq: seq,
                    last_seq: seq,
                    first_ts: ts,
                    last_ts: ts,
                    events: 0,
                    raw_bytes: 0,
                    opened: Instant::now(),
                    path,
                    encoder,
                },
            );
        }
        let full = {
            let Some(b) = self.open.get_mut(&key) else {
                return Ok(sealed);
            };
            b.encoder.write_all(line)?;
            b.encoder.write_all(b"\n")?;
            b.last_seq = seq;
            b.first_ts = b.first_ts.min(ts);
            b.last_ts = b.last_ts.max(ts);
            b.events += 1;
            b.raw_bytes += line.len() as u64 + 1;
            b.raw_bytes >= self.limits.max_bytes
        };
        if full {
            sealed.push(self.seal(&key)?);
        }
        Ok(sealed)
    }

    /// Seals batches open for longer than `max_age`.
    pub fn seal_due(&mut self) -> std::io::Result<Vec<Sealed>> {
        let due: Vec<_> = self
            .open
            .iter()
            .filter(|(_, b)| b.opened.elapsed() >= self.limits.max_age)
            .map(|(k, _)| k.clone())
            .collect();
        due.iter().map(|k| self.seal(k)).collect()
    }

    /// Seals every open batch.
    pub fn seal_all(&mut self) -> std::io::Result<Vec<Sealed>> {
        let keys: Vec<_> = self.open.keys().cloned().collect();
        let mut sealed: Vec<Sealed> = keys
            .iter()
            .map(|k| self.seal(k))
            .collect::<Result<_, _>>()?;
        sealed.sort_by_key(|s| s.first_seq);
        Ok(sealed)
    }

    /// The smallest WAL sequence number held by an open batch.
    pub fn min_open_seq(&self) -> Option<u64> {
        self.open.values().map(|b| b.first_seq).min()
    }

    /// Drops every open batch and its spool file (their events are still in the WAL).
    pub fn discard_all(&mut self) {
        for (_, b) in self.open.drain() {
            drop(b.encoder);
            let _ = std::fs::remove_file(&b.path);
        }
    }

    fn seal(&mut self, key: &(String, i64)) -> std::io::Result<Sealed> {
        let Some(b) = self.open.remove(key) else {
            return Err(std::io::Error::other("sealing a batch that is not open"));
        };
        let mut writer = b.encoder.finish()?;
        writer.flush()?;
        // not fsynced: a spool file is rebuilt from the WAL after a crash, and the store
        // makes the object durable
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        let compressed_bytes = file.metadata()?.len();
        Ok(Sealed {
            tenant: key.0.clone(),
            hour: key.1,
            first_seq: b.first_seq,
            last_seq: b.last_seq,
            first_ts: b.first_ts,
            last_ts: b.last_ts,
            events: b.events,
            raw_bytes: b.raw_bytes,
            compressed_bytes,
            path: b.path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::HOUR_NANOS;
    use std::path::Path;

    fn decompress(path: &Path) -> String {
        String::from_utf8(zstd::decode_all(File::open(path).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn lines_are_grouped_by_tenant_and_hour() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Batcher::new(dir.path().join("spool"), BatchLimits::default()).unwrap();
        assert!(b.add("a", 0, 10, b"{\"n\":0}").unwrap().is_empty());
        assert!(b
            .add("a", 1, HOUR_NANOS + 5, b"{\"n\":1}")
            .unwrap()
            .is_empty());
        assert!(b.add("b", 2, 20, b"{\"n\":2}").unwrap().is_empty());
        assert!(b.add("a", 3, 30, b"{\"n\":3}").unwrap().is_empty());
        assert_eq!(b.min_open_seq(), Some(0));
        let sealed = b.seal_all().unwrap();
        assert_eq!(sealed.len(), 3);
        let first = &sealed[0];
        assert_eq!(
            (
                first.tenant.as_str(),
                first.hour,
                first.first_seq,
                first.last_seq
            ),
            ("a", 0, 0, 3)
        );
        assert_eq!((first.first_ts, first.last_ts, first.events), (10, 30, 2));
        assert_eq!(decompress(&first.path), "{\"n\":0}\n{\"n\":3}\n");
        assert_eq!(b.min_open_seq(), None);
    }

    #[test]
    fn size_and_open_count_seal_batches() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BatchLimits {
            max_bytes: 20,
            max_open: 2,
            ..BatchLimits::default()
        };
        let mut b = Batcher::new(dir.path().join("spool"), limits).unwrap();
        assert!(b.add("a", 0, 0, b"0123456789").unwrap().is_empty());
        let full = b.add("a", 1, 0, b"0123456789").unwrap();
        assert_eq!(full.len(), 1, "22 bytes >= 20 seals");
        assert_eq!(full[0].events, 2);
        b.add("x", 2, 0, b"x").unwrap();
        b.add("y", 3, 0, b"y").unwrap();
        let evicted = b.add("z", 4, 0, b"z").unwrap();
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].tenant, "x", "the oldest open batch makes room");
    }
}
