//! Restores: events read back from the archive into an index of their own, searchable through
//! the normal search API for `archive.restore_ttl`, then deleted.
//!
//! A restore lists the archive objects of one tenant whose hours and event times overlap the
//! range, reads them (objects in GLACIER or DEEP_ARCHIVE are reported, and an S3 restore of
//! them requested when asked, never skipped silently), keeps the events in the range — and
//! matching the query, if one is given — that are not in a hot day partition already (so no
//! event shows twice), and attaches the finished index to the partitions. Each restore lives
//! in `<data_dir>/restores/<id>/` with its status in `status.json`; restores finished before a
//! restart are attached again, unfinished ones are deleted.

use parking_lot::Mutex;
use sawmill_archive::layout::{hour_of, hour_prefix};
use sawmill_archive::{ObjectStore, Readability, StoreError};
use sawmill_core::record::line_timestamp;
use sawmill_core::{format_rfc3339, Event};
use sawmill_index::partition::day_of;
use sawmill_index::query::Query as Ast;
use sawmill_index::restored::RestoredIndex;
use sawmill_index::Partitions;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Restores running at once.
pub const MAX_RUNNING: usize = 2;
/// Longest range one restore covers.
pub const MAX_RANGE: Duration = Duration::from_secs(400 * 86_400);
/// Decompressed bytes read from one archive object at most.
const MAX_OBJECT_BYTES: u64 = 1 << 30;

/// What a restore asks for.
#[derive(Clone, Debug)]
pub struct RestoreRequest {
    pub tenant: String,
    pub start: i64,
    pub end: i64,
    /// The query text, kept for the status; `ast` is what filters.
    pub query: Option<String>,
    pub ast: Option<Ast>,
    /// Ask S3 to restore objects found in GLACIER or DEEP_ARCHIVE.
    pub request_s3_restore: bool,
    /// Use S3's Bulk retrieval tier (cheaper, slower) instead of Standard.
    pub bulk: bool,
}

/// An object that could not be read because of its storage class.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ColdObject {
    pub key: String,
    pub storage_class: String,
    /// `needs_s3_restore`, `s3_restore_requested` or `s3_restore_in_progress`.
    pub state: String,
}

/// The state of one restore, as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestoreStatus {
    pub id: String,
    pub tenant: String,
    pub start: String,
    pub end: String,
    pub query: Option<String>,
    /// `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    pub created_at: String,
    /// When the restored events stop being searchable (set once done).
    pub expires_at: Option<String>,
    /// Archive objects overlapping the range.
    pub objects: u64,
    pub objects_read: u64,
    /// Events now searchable through this restore.
    pub events: u64,
    /// Events of the range already searchable in the hot index (not restored twice).
    pub events_already_hot: u64,
    /// Events of the range already searchable through an earlier restore that holds every
    /// archived event of its range (no query, no object left cold).
    #[serde(default)]
    pub events_already_restored: u64,
    /// Objects that need an S3 restore before they can be read.
    pub cold_objects: Vec<ColdObject>,
    pub error: Option<String>,
    /// The numeric range, expiry and number, kept in `status.json` for reattaching after a
    /// restart (left out of API answers).
    #[serde(default)]
    pub range_nanos: (i64, i64),
    #[serde(default)]
    pub expires_nanos: i64,
    #[serde(default)]
    pub number: u32,
}

impl RestoreStatus {
    /// The status as the API shows it.
    pub fn to_api_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            for internal in ["range_nanos", "expires_nanos", "number"] {
                map.remove(internal);
            }
        }
        v
    }
}

struct Entry {
    status: Arc<Mutex<RestoreStatus>>,
    cancel: Arc<AtomicBool>,
}

/// Every restore of this server.
pub struct Restores {
    dir: PathBuf,
    partitions: Arc<Partitions>,
    store: Arc<dyn ObjectStore>,
    prefix: String,
    ttl: Duration,
    entries: Mutex<BTreeMap<String, Entry>>,
}

/// Why a restore could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Too many restores are running.
    #[error("{MAX_RUNNING} restores are running already; retry when one is done")]
    Busy,
    #[error("cannot start the restore: {0}")]
    Thread(#[source] std::io::Error),
}

/// Why a restore failed (the message is kept in its status).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot {action} {key}: {source}")]
    Store {
        action: &'static str,
        key: String,
        source: StoreError,
    },
    #[error("cannot {action} the restore index: {source}")]
    Index {
        action: &'static str,
        source: sawmill_index::IndexError,
    },
    #[error("cannot restore {key}: {problem}")]
    Object {
        key: String,
        #[source]
        problem: ObjectProblem,
    },
    #[error("unexpected archive prefix {0}")]
    Prefix(String),
    #[error("cancelled")]
    Cancelled,
}

/// What is wrong with one archive object.
#[derive(Debug, thiserror::Error)]
pub enum ObjectProblem {
    #[error("not a zstd object: {0}")]
    NotZstd(#[source] std::io::Error),
    #[error("decompresses to more than {MAX_OBJECT_BYTES} bytes")]
    TooLarge,
    #[error("line {line}: {source}")]
    Line {
        line: usize,
        source: sawmill_core::EventError,
    },
    #[error("cannot index it: {0}")]
    Index(#[source] sawmill_index::IndexError),
}

fn now_nanos() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

impl Restores {
    /// Loads finished restores (attaching those not expired) and deletes the rest.
    pub fn open(
        dir: PathBuf,
        partitions: Arc<Partitions>,
        store: Arc<dyn ObjectStore>,
        prefix: String,
        ttl: Duration,
    ) -> Result<Restores, RestoreError> {
        std::fs::create_dir_all(&dir).map_err(|source| RestoreError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let restores = Restores {
            dir,
            partitions,
            store,
            prefix,
            ttl,
            entries: Mutex::new(BTreeMap::new()),
        };
        let now = now_nanos();
        let listing = std::fs::read_dir(&restores.dir).map_err(|source| RestoreError::Io {
            action: "list",
            path: restores.dir.clone(),
            source,
        })?;
        for entry in listing.flatten() {
            let path = entry.path();
            let status = std::fs::read(path.join("status.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<RestoreStatus>(&b).ok());
            match status {
                Some(s) if s.state == "done" && s.expires_nanos > now => {
                    match restores.partitions.open_detached(&path.join("index")) {
                        Ok(p) => {
                            restores.partitions.attach(
                                &s.id,
                                s.range_nanos.0,
                                s.range_nanos.1,
                                Arc::new(p),
                            );
                            restores.entries.lock().insert(
                                s.id.clone(),
                                Entry {
                                    status: Arc::new(Mutex::new(s)),
                                    cancel: Arc::default(),
                                },
                            );
                        }
                        Err(e) => {
                            tracing::warn!(restore = %path.display(), error = %e, "dropping unreadable restore");
                            let _ = std::fs::remove_dir_all(&path);
                        }
                    }
                }
                _ => {
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
        }
        Ok(restores)
    }

    /// Every restore, newest first.
    pub fn list(&self, tenant: &str) -> Vec<RestoreStatus> {
        let mut out: Vec<RestoreStatus> = self
            .entries
            .lock()
            .values()
            .map(|e| e.status.lock().clone())
            .filter(|s| s.tenant == tenant)
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        out
    }

    pub fn get(&self, tenant: &str, id: &str) -> Option<RestoreStatus> {
        self.entries
            .lock()
            .get(id)
            .map(|e| e.status.lock().clone())
            .filter(|s| s.tenant == tenant)
    }

    /// Starts a restore on a thread of its own; returns its first status.
    pub fn start(self: &Arc<Self>, req: RestoreRequest) -> Result<RestoreStatus, StartError> {
        let mut entries = self.entries.lock();
        let running = entries
            .values()
            .filter(|e| e.status.lock().state == "running")
            .count();
        if running >= MAX_RUNNING {
            return Err(StartError::Busy);
        }
        let number = entries
            .values()
            .map(|e| e.status.lock().number)
            .max()
            .unwrap_or(0)
            .wrapping_add(1)
            & 0x7f_ffff;
        let now = now_nanos();
        let id = format!("r{}-{number}", now / 1_000_000);
        let status = RestoreStatus {
            id: id.clone(),
            tenant: req.tenant.clone(),
            start: format_rfc3339(req.start),
            end: format_rfc3339(req.end),
            query: req.query.clone(),
            state: "running".into(),
            created_at: format_rfc3339(now),
            expires_at: None,
            objects: 0,
            objects_read: 0,
            events: 0,
            events_already_hot: 0,
            events_already_restored: 0,
            cold_objects: Vec::new(),
            error: None,
            range_nanos: (req.start, req.end),
            expires_nanos: 0,
            number,
        };
        let shared = Arc::new(Mutex::new(status.clone()));
        let cancel = Arc::new(AtomicBool::new(false));
        entries.insert(
            id.clone(),
            Entry {
                status: shared.clone(),
                cancel: cancel.clone(),
            },
        );
        drop(entries);
        let this = self.clone();
        std::thread::Builder::new()
            .name("sawmill-restore".into())
            .spawn(move || this.run(req, shared, cancel))
            .map_err(StartError::Thread)?;
        Ok(status)
    }

    /// Stops searching a restore and deletes it (cancelling it if it is running).
    pub fn delete(&self, tenant: &str, id: &str) -> bool {
        let mut entries = self.entries.lock();
        let Some(entry) = entries.get(id) else {
            return false;
        };
        if entry.status.lock().tenant != tenant {
            return false;
        }
        let running = entry.status.lock().state == "running";
        entry.cancel.store(true, Ordering::Release);
        if !running {
            entries.remove(id);
            drop(entries);
            self.partitions.detach(id);
            let _ = std::fs::remove_dir_all(self.dir.join(id));
        }
        true
    }

    /// Deletes restores past their expiry; returns how many.
    pub fn expire(&self, now: i64) -> usize {
        let expired: Vec<String> = self
            .entries
            .lock()
            .iter()
            .filter(|(_, e)| {
                let s = e.status.lock();
                s.state != "running" && s.expires_nanos <= now
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.entries.lock().remove(id);
            self.partitions.detach(id);
            let _ = std::fs::remove_dir_all(self.dir.join(id));
            tracing::info!(restore = %id, "restore expired; its events are no longer searchable");
        }
        expired.len()
    }

    fn run(&self, req: RestoreRequest, shared: Arc<Mutex<RestoreStatus>>, cancel: Arc<AtomicBool>) {
        let id = shared.lock().id.clone();
        let dir = self.dir.join(&id);
        let result = self.build(&req, &dir, &shared, &cancel);
        let mut s = shared.lock();
        match result {
            Ok(partition) => {
                let expires = now_nanos().saturating_add(self.ttl.as_nanos() as i64);
                s.state = "done".into();
                s.expires_nanos = expires;
                s.expires_at = Some(format_rfc3339(expires));
                let saved = serde_json::to_vec_pretty(&*s)
                    .map_err(std::io::Error::other)
                    .and_then(|b| std::fs::write(dir.join("status.json"), b));
                if let Err(e) = saved {
                    tracing::warn!(restore = %id, error = %e, "cannot save restore status; it will not survive a restart");
                }
                self.partitions
                    .attach(&id, req.start, req.end, Arc::new(partition));
                tracing::info!(restore = %id, events = s.events, objects = s.objects_read, cold = s.cold_objects.len(), "restore done");
            }
            Err(e) => {
                let cancelled = cancel.load(Ordering::Acquire);
                s.state = if cancelled { "cancelled" } else { "failed" }.into();
                s.error = Some(e.to_string());
                // a failed restore stays listed (with its error) until it expires
                s.expires_nanos = now_nanos().saturating_add(self.ttl.as_nanos() as i64);
                let _ = std::fs::remove_dir_all(&dir);
                if cancelled {
                    drop(s);
                    self.entries.lock().remove(&id);
                } else {
                    tracing::warn!(restore = %id, error = %e, "restore failed");
                }
            }
        }
    }

    /// Reads the objects and builds the index; returns it committed.
    fn build(
        &self,
        req: &RestoreRequest,
        dir: &Path,
        shared: &Mutex<RestoreStatus>,
        cancel: &AtomicBool,
    ) -> Result<sawmill_index::partition::Partition, RestoreError> {
        let covered = self.covered_ranges(&req.tenant);
        let objects = self.objects_in_range(req)?;
        shared.lock().objects = objects.len() as u64;
        std::fs::create_dir_all(dir).map_err(|source| RestoreError::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        let number = shared.lock().number;
        let mut index = RestoredIndex::create(&self.partitions, &dir.join("index"), number)
            .map_err(|source| RestoreError::Index {
                action: "create",
                source,
            })?;
        for object in objects {
            if cancel.load(Ordering::Acquire) {
                return Err(RestoreError::Cancelled);
            }
            let bytes = match self.read_object(req, &object)? {
                Ok(bytes) => bytes,
                Err(cold) => {
                    shared.lock().cold_objects.push(cold);
                    continue;
                }
            };
            let counts = self
                .add_object(req, &covered, &bytes, &mut index)
                .map_err(|problem| RestoreError::Object {
                    key: object.key.clone(),
                    problem,
                })?;
            let mut s = shared.lock();
            s.objects_read += 1;
            s.events += counts.added;
            s.events_already_hot += counts.hot;
            s.events_already_restored += counts.restored;
        }
        let (partition, count) = index
            .finish(req.ast.as_ref(), now_nanos())
            .map_err(|source| RestoreError::Index {
                action: "commit",
                source,
            })?;
        shared.lock().events = count;
        Ok(partition)
    }

    /// The ranges whose every event an earlier finished, whole (no query, nothing cold)
    /// restore of the tenant holds already.
    fn covered_ranges(&self, tenant: &str) -> Vec<(i64, i64)> {
        self.entries
            .lock()
            .values()
            .map(|e| e.status.lock().clone())
            .filter(|s| {
                s.tenant == tenant
                    && s.state == "done"
                    && s.query.is_none()
                    && s.cold_objects.is_empty()
            })
            .map(|s| s.range_nanos)
            .collect()
    }

    /// An object's bytes, or what keeps it from being read now (its storage class: the S3
    /// restore is requested when the request asks for it).
    fn read_object(
        &self,
        req: &RestoreRequest,
        object: &sawmill_archive::ObjectInfo,
    ) -> Result<Result<Vec<u8>, ColdObject>, RestoreError> {
        let store_error = |action, source| RestoreError::Store {
            action,
            key: object.key.clone(),
            source,
        };
        let cold = |state: &str| ColdObject {
            key: object.key.clone(),
            storage_class: object.storage_class.clone().unwrap_or_default(),
            state: state.into(),
        };
        let readability = self
            .store
            .readability(&object.key, object.storage_class.as_deref())
            .map_err(|e| store_error("check", e))?;
        match readability {
            Readability::Readable => {}
            Readability::Restoring => return Ok(Err(cold("s3_restore_in_progress"))),
            Readability::NeedsRestore if req.request_s3_restore => {
                let ttl_days = self.ttl.as_secs().div_ceil(86_400).max(1) as u32;
                self.store
                    .request_restore(&object.key, ttl_days, req.bulk)
                    .map_err(|e| store_error("request the S3 restore of", e))?;
                return Ok(Err(cold("s3_restore_requested")));
            }
            Readability::NeedsRestore => return Ok(Err(cold("needs_s3_restore"))),
        }
        match self.store.get(&object.key) {
            Ok(bytes) => Ok(Ok(bytes)),
            Err(StoreError::NeedsRestore(_)) => Ok(Err(cold("needs_s3_restore"))),
            Err(e) => Err(store_error("read", e)),
        }
    }

    /// The tenant's objects whose hour and event times overlap the range, oldest first.
    fn objects_in_range(
        &self,
        req: &RestoreRequest,
    ) -> Result<Vec<sawmill_archive::ObjectInfo>, RestoreError> {
        let (first_hour, last_hour) = (hour_of(req.start), hour_of(req.end - 1));
        let mut out = Vec::new();
        let mut day_start = first_hour - first_hour.rem_euclid(24);
        while day_start <= last_hour {
            // the day's prefix: the hour prefix without `hour=HH/`
            let hour_key = hour_prefix(&self.prefix, &req.tenant, day_start);
            let day_key = hour_key
                .strip_suffix("hour=00/")
                .ok_or_else(|| RestoreError::Prefix(hour_key.clone()))?;
            let listed = self
                .store
                .list(day_key)
                .map_err(|source| RestoreError::Store {
                    action: "list",
                    key: day_key.to_string(),
                    source,
                })?;
            for object in listed {
                let Some((hour, first, last)) = parse_object_key(&object.key, day_start) else {
                    continue;
                };
                if hour < first_hour || hour > last_hour {
                    continue;
                }
                // key times are whole seconds: the last event may be up to 1 s later
                if last + 1_000_000_000 <= req.start || first >= req.end {
                    continue;
                }
                out.push(object);
            }
            day_start += 24;
        }
        Ok(out)
    }

    /// Adds the object's events in range that neither a hot partition nor an earlier restore
    /// of a `covered` range holds.
    fn add_object(
        &self,
        req: &RestoreRequest,
        covered: &[(i64, i64)],
        bytes: &[u8],
        index: &mut RestoredIndex<'_>,
    ) -> Result<Counts, ObjectProblem> {
        let decoder = zstd::stream::read::Decoder::new(bytes).map_err(ObjectProblem::NotZstd)?;
        let mut text = Vec::new();
        decoder
            .take(MAX_OBJECT_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(ObjectProblem::NotZstd)?;
        if text.len() as u64 > MAX_OBJECT_BYTES {
            return Err(ObjectProblem::TooLarge);
        }
        let mut counts = Counts::default();
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let ts = match line_timestamp(line) {
                Some(ts) => ts,
                None => {
                    Event::from_normalized_json(line)
                        .map_err(|source| ObjectProblem::Line {
                            line: n + 1,
                            source,
                        })?
                        .timestamp
                }
            };
            if ts < req.start || ts >= req.end {
                continue;
            }
            if self.partitions.get(day_of(ts)).is_some() {
                counts.hot += 1;
                continue;
            }
            if covered.iter().any(|(s, e)| *s <= ts && ts < *e) {
                counts.restored += 1;
                continue;
            }
            let event =
                Event::from_normalized_json(line).map_err(|source| ObjectProblem::Line {
                    line: n + 1,
                    source,
                })?;
            index
                .add(&req.tenant, &event, line)
                .map_err(ObjectProblem::Index)?;
            counts.added += 1;
        }
        Ok(counts)
    }
}

/// What one object gave.
#[derive(Default)]
struct Counts {
    added: u64,
    hot: u64,
    restored: u64,
}

/// (hour, first event time, last event time) of an object key of the day starting at
/// `day_start` (hours since the epoch); `None` for keys not in the layout.
fn parse_object_key(key: &str, day_start: i64) -> Option<(i64, i64, i64)> {
    let mut parts = key.rsplit('/');
    let name = parts.next()?;
    let hour_part = parts.next()?;
    let hh: i64 = hour_part.strip_prefix("hour=")?.parse().ok()?;
    if !(0..24).contains(&hh) {
        return None;
    }
    let stem = name.strip_suffix(".ndjson.zst")?;
    let mut fields = stem.rsplitn(4, '-');
    let _id = fields.next()?;
    let last = parse_compact(fields.next()?)?;
    let first = parse_compact(fields.next()?)?;
    Some((day_start + hh, first, last))
}

/// `YYYYMMDDTHHMMSSZ` → nanoseconds.
fn parse_compact(text: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(text, &format).ok()?;
    Some((t.assume_utc().unix_timestamp_nanos()) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_give_hour_and_times() {
        let key = "logs/v1/tenant=default/dt=2026-11-27/hour=10/node-a-20261127T101500Z-20261127T105959Z-00000000000000000042.ndjson.zst";
        let day_start = 1_795_737_600 / 3600; // 2026-11-27T00:00:00Z in hours
        let (hour, first, last) = parse_object_key(key, day_start).expect("parses");
        assert_eq!(hour, day_start + 10);
        assert_eq!(first, 1_795_774_500 * 1_000_000_000);
        assert_eq!(last, 1_795_777_199 * 1_000_000_000);
        assert_eq!(hour_of(first), hour);
        assert!(
            parse_object_key("logs/v1/tenant=default/dt=2026-11-27/hour=10/junk.txt", 0).is_none()
        );
        assert!(parse_object_key("logs/v1/tenant=default/dt=2026-11-27/hour=99/a-20261127T101500Z-20261127T105959Z-1.ndjson.zst", 0).is_none());
    }
}
