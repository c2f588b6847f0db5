//! The archive consumer of the WAL: a thread that reads acknowledged events, batches them per
//! tenant and hour and writes each sealed batch to the object store.
//!
//! Its position only moves past events whose batch the store has confirmed, so an outage or a
//! crash never loses or duplicates a batch (see [`crate::state`]). While the store fails, the
//! worker retries with exponential backoff and jitter and stops reading: the backlog stays in
//! the WAL, whose segments are kept until the archive is past them.

use crate::batcher::{BatchLimits, Batcher, Sealed};
use crate::layout::{hour_of, object_key};
use crate::state::{ArchiveState, BatchRecord};
use crate::store::ObjectStore;
use rand::Rng;
use sawmill_core::record::{event_lines, line_timestamp, RecordHeader};
use sawmill_wal::Wal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the worker runs.
#[derive(Clone, Debug)]
pub struct ArchiveConfig {
    /// `archive/` under the data directory: state and spool live here.
    pub dir: PathBuf,
    /// Key prefix in the store (`logs/v1`).
    pub prefix: String,
    /// Names this server in object keys.
    pub writer: String,
    pub limits: BatchLimits,
    /// How often the WAL is checked for new events.
    pub poll: Duration,
}

/// Counters for `/metrics`, shared with the server.
#[derive(Default, Debug)]
pub struct ArchiveStats {
    pub objects: AtomicU64,
    pub events: AtomicU64,
    pub raw_bytes: AtomicU64,
    pub compressed_bytes: AtomicU64,
    pub upload_errors: AtomicU64,
    pub position: AtomicU64,
    /// Receive time (ns) of the oldest event not yet archived; 0 when none is pending.
    pub oldest_pending: AtomicI64,
}

/// What a flush did.
#[derive(Clone, Debug, Default)]
pub struct FlushReport {
    pub objects: u64,
    pub events: u64,
    pub position: u64,
}

enum Cmd {
    Flush(tokio::sync::oneshot::Sender<Result<FlushReport, String>>),
    Shutdown,
    /// Stops at once, as a crash would: open batches are lost, the state stays as saved.
    #[cfg(test)]
    Abort,
}

/// The handle the server holds.
#[derive(Clone)]
pub struct ArchiveHandle {
    tx: Sender<Cmd>,
    pub stats: Arc<ArchiveStats>,
    store: Arc<dyn ObjectStore>,
}

impl ArchiveHandle {
    /// Every event below this WAL sequence number is archived.
    pub fn position(&self) -> u64 {
        self.stats.position.load(Ordering::Acquire)
    }

    /// Seals every open batch and writes it, with everything acknowledged so far.
    pub async fn flush(&self) -> Result<FlushReport, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Cmd::Flush(tx))
            .map_err(|_| "the archive worker stopped".to_string())?;
        rx.await
            .map_err(|_| "the archive worker stopped".to_string())?
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }
}

/// The running worker.
pub struct ArchiveWorker {
    handle: ArchiveHandle,
    thread: Option<JoinHandle<()>>,
}

impl ArchiveWorker {
    /// Loads the state, settles batches left pending by a crash and starts the thread.
    pub fn start(
        wal: Arc<Wal>,
        store: Arc<dyn ObjectStore>,
        config: ArchiveConfig,
    ) -> Result<ArchiveWorker, String> {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| format!("cannot create {}: {e}", config.dir.display()))?;
        let state_path = config.dir.join("state.json");
        let mut state = ArchiveState::load(&state_path)?;
        settle_pending(&mut state, store.as_ref())?;
        state.save(&state_path)?;
        let batcher = Batcher::new(config.dir.join("spool"), config.limits.clone())
            .map_err(|e| format!("cannot prepare the archive spool: {e}"))?;
        let stats = Arc::new(ArchiveStats::default());
        stats.position.store(state.position, Ordering::Release);
        let (tx, rx) = channel();
        let mut worker = Worker {
            wal,
            store: store.clone(),
            read_pos: state.position,
            state,
            state_path,
            batcher,
            config,
            stats: stats.clone(),
            rx,
            stop_deadline: None,
            unarchived: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("sawmill-archive".into())
            .spawn(move || {
                lower_priority();
                worker.run()
            })
            .map_err(|e| format!("cannot start the archive thread: {e}"))?;
        Ok(ArchiveWorker {
            handle: ArchiveHandle { tx, stats, store },
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> ArchiveHandle {
        self.handle.clone()
    }

    /// Archives everything acknowledged (retrying the store for a while) and stops.
    pub fn shutdown(mut self) {
        let _ = self.handle.tx.send(Cmd::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Archiving is background work: when ingest and indexing keep every core busy, it yields
/// (nice 19) and catches up when they pause; its backlog waits safely in the WAL.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority only read their arguments; on Linux the nice value
        // is per thread, so this lowers the archive thread alone.
        let result = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 19)
        };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the archive thread's priority");
        }
    }
}

/// Pending batches become done when their object exists, and are forgotten otherwise.
fn settle_pending(state: &mut ArchiveState, store: &dyn ObjectStore) -> Result<(), String> {
    let mut kept = Vec::with_capacity(state.batches.len());
    for mut b in std::mem::take(&mut state.batches) {
        if !b.done {
            match store.exists(&b.key) {
                Ok(true) => b.done = true,
                Ok(false) => continue,
                Err(e) => return Err(format!("cannot check archive object {}: {e}", b.key)),
            }
        }
        kept.push(b);
    }
    state.batches = kept;
    Ok(())
}

/// How long a shutdown keeps retrying a failing store before leaving the rest to the WAL.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(30);
/// Records read per round before commands are checked again.
const RECORDS_PER_ROUND: usize = 256;

struct Worker {
    wal: Arc<Wal>,
    store: Arc<dyn ObjectStore>,
    /// Next WAL sequence number to read.
    read_pos: u64,
    state: ArchiveState,
    state_path: PathBuf,
    batcher: Batcher,
    config: ArchiveConfig,
    stats: Arc<ArchiveStats>,
    rx: Receiver<Cmd>,
    /// Set when a shutdown arrived while the store was failing: retries end then.
    stop_deadline: Option<Instant>,
    /// (end seq, receive time) of records read but not yet entirely archived.
    unarchived: Vec<(u64, i64)>,
}

impl Worker {
    fn run(&mut self) {
        loop {
            if self.stop_deadline.is_none() {
                if let Err(e) = self.round() {
                    tracing::error!(error = %e, "archiving failed; retrying");
                    self.pause(Duration::from_secs(1));
                }
            }
            let next = if self.stop_deadline.is_some() {
                Ok(Cmd::Shutdown)
            } else {
                self.rx.recv_timeout(self.config.poll)
            };
            match next {
                Ok(Cmd::Flush(reply)) => {
                    let _ = reply.send(self.flush());
                }
                Ok(Cmd::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    let deadline = *self
                        .stop_deadline
                        .get_or_insert_with(|| Instant::now() + SHUTDOWN_PATIENCE);
                    match self.flush_until(Some(deadline)) {
                        Ok(r) => tracing::info!(
                            objects = r.objects,
                            position = r.position,
                            "archive flushed at shutdown"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, "archive not flushed at shutdown; the wal keeps the rest")
                        }
                    }
                    self.batcher.discard_all();
                    return;
                }
                #[cfg(test)]
                Ok(Cmd::Abort) => {
                    self.batcher.discard_all();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Reads what is new, seals what is due and writes what is sealed.
    fn round(&mut self) -> Result<(), String> {
        let sealed = self.read(RECORDS_PER_ROUND)?;
        self.write_all(sealed, None)?;
        let due = self
            .batcher
            .seal_due()
            .map_err(|e| format!("seal batch: {e}"))?;
        self.write_all(due, None)?;
        self.advance()
    }

    fn flush(&mut self) -> Result<FlushReport, String> {
        self.flush_until(None)
    }

    fn flush_until(&mut self, deadline: Option<Instant>) -> Result<FlushReport, String> {
        let before = (
            self.stats.objects.load(Ordering::Relaxed),
            self.stats.events.load(Ordering::Relaxed),
        );
        let target = self.wal.durable_seq();
        while self.read_pos < target {
            let before = self.read_pos;
            let sealed = self.read(usize::MAX)?;
            self.write_all(sealed, deadline)?;
            if self.read_pos == before {
                return Err(format!(
                    "the wal holds nothing between {before} and {target}"
                ));
            }
        }
        let sealed = self
            .batcher
            .seal_all()
            .map_err(|e| format!("seal batch: {e}"))?;
        self.write_all(sealed, deadline)?;
        self.advance()?;
        Ok(FlushReport {
            objects: self.stats.objects.load(Ordering::Relaxed) - before.0,
            events: self.stats.events.load(Ordering::Relaxed) - before.1,
            position: self.state.position,
        })
    }

    /// Reads up to `max_records` records after `read_pos`; returns batches sealed meanwhile.
    fn read(&mut self, max_records: usize) -> Result<Vec<Sealed>, String> {
        let mut sealed = Vec::new();
        if self.wal.durable_seq() <= self.read_pos {
            return Ok(sealed);
        }
        let reader = self
            .wal
            .read_from(self.read_pos)
            .map_err(|e| format!("read wal from {}: {e}", self.read_pos))?;
        for record in reader.take(max_records) {
            let record = record.map_err(|e| format!("read wal: {e}"))?;
            let (first_seq, end_seq) = (record.first_seq, record.end_seq());
            if end_seq <= self.read_pos {
                continue;
            }
            let (header, body) = match RecordHeader::decode(&record.payload) {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(first_seq, end_seq, error = %e, "skipping undecodable wal record");
                    self.read_pos = end_seq;
                    continue;
                }
            };
            let mut kept = false;
            for (i, (line, _)) in event_lines(&record.payload, body).enumerate() {
                let seq = first_seq + i as u64;
                if seq < self.read_pos {
                    continue;
                }
                let ts = line_timestamp(line).unwrap_or(header.received_at);
                if self.state.covers(&header.tenant, hour_of(ts), seq) {
                    continue;
                }
                kept = true;
                sealed.extend(
                    self.batcher
                        .add(&header.tenant, seq, ts, line)
                        .map_err(|e| format!("spool archive batch: {e}"))?,
                );
            }
            if kept {
                self.unarchived.push((end_seq, header.received_at));
                // the backlog's age shows from the first read, even while writes keep failing
                let oldest = self.stats.oldest_pending.load(Ordering::Relaxed);
                if oldest == 0 || header.received_at < oldest {
                    self.stats
                        .oldest_pending
                        .store(header.received_at, Ordering::Relaxed);
                }
            }
            self.read_pos = end_seq;
        }
        Ok(sealed)
    }

    fn write_all(&mut self, sealed: Vec<Sealed>, deadline: Option<Instant>) -> Result<(), String> {
        for batch in sealed {
            self.write(batch, deadline)?;
        }
        Ok(())
    }

    /// Writes one sealed batch: pending in the state, then the object, then done.
    fn write(&mut self, batch: Sealed, deadline: Option<Instant>) -> Result<(), String> {
        let key = object_key(
            &self.config.prefix,
            &batch.tenant,
            batch.hour,
            &self.config.writer,
            batch.first_ts,
            batch.last_ts,
            batch.first_seq,
        );
        self.state.batches.push(BatchRecord {
            tenant: batch.tenant.clone(),
            hour: batch.hour,
            first_seq: batch.first_seq,
            last_seq: batch.last_seq,
            key: key.clone(),
            done: false,
        });
        self.state.save(&self.state_path)?;
        let mut attempt = 0u32;
        loop {
            match self.store.put_file(&key, &batch.path) {
                Ok(()) => break,
                Err(e) => {
                    attempt += 1;
                    self.stats.upload_errors.fetch_add(1, Ordering::Relaxed);
                    let wait = backoff(attempt);
                    tracing::warn!(key = %key, attempt, error = %e, retry_in_ms = wait.as_millis() as u64, "archive write failed");
                    if deadline
                        .or(self.stop_deadline)
                        .is_some_and(|d| Instant::now() + wait > d)
                    {
                        return Err(format!("archive write of {key} failed: {e}"));
                    }
                    self.pause(wait);
                }
            }
        }
        if let Some(b) = self.state.batches.iter_mut().find(|b| b.key == key) {
            b.done = true;
        }
        self.state.save(&self.state_path)?;
        let _ = std::fs::remove_file(&batch.path);
        self.stats.objects.fetch_add(1, Ordering::Relaxed);
        self.stats.events.fetch_add(batch.events, Ordering::Relaxed);
        self.stats
            .raw_bytes
            .fetch_add(batch.raw_bytes, Ordering::Relaxed);
        self.stats
            .compressed_bytes
            .fetch_add(batch.compressed_bytes, Ordering::Relaxed);
        tracing::debug!(key = %key, events = batch.events, bytes = batch.compressed_bytes, "archived batch");
        Ok(())
    }

    /// Moves the position to the oldest event still in an open batch (or to what was read).
    fn advance(&mut self) -> Result<(), String> {
        let position = self
            .batcher
            .min_open_seq()
            .unwrap_or(self.read_pos)
            .min(self.read_pos);
        self.unarchived.retain(|(end, _)| *end > position);
        let oldest = self.unarchived.iter().map(|(_, t)| *t).min().unwrap_or(0);
        self.stats.oldest_pending.store(oldest, Ordering::Relaxed);
        if position > self.state.position {
            self.state.advance(position);
            self.state.save(&self.state_path)?;
            self.stats.position.store(position, Ordering::Release);
        }
        Ok(())
    }

    /// Sleeps, but wakes for a shutdown (remembered: retries then end at a deadline).
    fn pause(&mut self, wait: Duration) {
        if self.stop_deadline.is_some() {
            std::thread::sleep(wait);
            return;
        }
        match self.rx.recv_timeout(wait) {
            Ok(Cmd::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                self.stop_deadline = Some(Instant::now() + SHUTDOWN_PATIENCE)
            }
            Ok(Cmd::Flush(reply)) => {
                let _ = reply.send(Err("the archive store is failing; retrying".into()));
            }
            #[cfg(test)]
            Ok(Cmd::Abort) => self.stop_deadline = Some(Instant::now()),
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Exponential backoff with jitter: 0.5–1× of 200 ms · 2^attempt, at most 30 s.
fn backoff(attempt: u32) -> Duration {
    let cap = (200u64 << attempt.min(8)).min(30_000);
    Duration::from_millis(rand::thread_rng().gen_range(cap / 2..=cap))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FsStore, ObjectInfo, StoreError};
    use sawmill_core::Event;
    use sawmill_wal::WalConfig;
    use std::path::Path;
    use std::sync::atomic::AtomicBool;

    /// A folder store that fails while `down` is set, and can lose the answer of a write
    /// that succeeded.
    struct Flaky {
        inner: FsStore,
        down: AtomicBool,
        lose_next_answer: AtomicBool,
    }

    impl ObjectStore for Flaky {
        fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::NotFound("store is down".into()));
            }
            self.inner.put_file(key, path)?;
            if self.lose_next_answer.swap(false, Ordering::SeqCst) {
                return Err(StoreError::NotFound("answer lost".into()));
            }
            Ok(())
        }
        fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
            self.inner.list(prefix)
        }
        fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
            self.inner.get(key)
        }
        fn exists(&self, key: &str) -> Result<bool, StoreError> {
            self.inner.exists(key)
        }
        fn describe(&self) -> String {
            "flaky".into()
        }
    }

    fn append(wal: &Wal, first: u64, n: u64) {
        let header = RecordHeader {
            tenant: "t".into(),
            received_at: 0,
            idempotency_key: None,
            answer: Vec::new(),
        };
        let mut payload = Vec::new();
        header.encode(&mut payload);
        for i in first..first + n {
            let mut e = Event::new(1_000_000_000_000 + i as i64, format!("event {i}"));
            e.attributes.insert("i".into(), serde_json::json!(i));
            e.write_json(&mut payload);
            payload.push(b'\n');
        }
        wal.append_blocking(payload, n as u32).unwrap();
    }

    fn archived(store: &dyn ObjectStore) -> Vec<u64> {
        let mut out = Vec::new();
        for o in store.list("").unwrap() {
            let text = zstd::decode_all(&store.get(&o.key).unwrap()[..]).unwrap();
            for line in String::from_utf8(text).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                out.push(v["i"].as_u64().unwrap());
            }
        }
        out.sort_unstable();
        out
    }

    fn config(dir: &Path) -> ArchiveConfig {
        ArchiveConfig {
            dir: dir.join("state"),
            prefix: "logs".into(),
            writer: "w".into(),
            limits: BatchLimits {
                max_bytes: 2000,
                max_age: Duration::from_millis(300),
                ..BatchLimits::default()
            },
            poll: Duration::from_millis(20),
        }
    }

    fn wait(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn an_outage_holds_the_position_and_drains_after() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(WalConfig::new(dir.path().join("wal"))).unwrap();
        let wal = Arc::new(wal);
        let store = Arc::new(Flaky {
            inner: FsStore::new(dir.path().join("objects")).unwrap(),
            down: AtomicBool::new(true),
            lose_next_answer: AtomicBool::new(true),
        });
        let worker = ArchiveWorker::start(wal.clone(), store.clone(), config(dir.path())).unwrap();
        let handle = worker.handle();
        for r in 0..10 {
            append(&wal, r * 20, 20);
        }
        wait("write attempts", || {
            handle.stats.upload_errors.load(Ordering::SeqCst) >= 2
        });
        assert_eq!(
            handle.position(),
            0,
            "nothing confirmed, position unchanged"
        );
        assert!(archived(store.as_ref()).is_empty());
        store.down.store(false, Ordering::SeqCst);
        wait("the backlog to drain", || {
            handle.stats.events.load(Ordering::SeqCst) == 200
        });
        worker.shutdown();
        assert_eq!(archived(store.as_ref()), (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn restart_continues_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(WalConfig::new(dir.path().join("wal"))).unwrap();
        let wal = Arc::new(wal);
        let store: Arc<dyn ObjectStore> =
            Arc::new(FsStore::new(dir.path().join("objects")).unwrap());
        let worker = ArchiveWorker::start(wal.clone(), store.clone(), config(dir.path())).unwrap();
        for r in 0..5 {
            append(&wal, r * 20, 20);
        }
        let handle = worker.handle();
        wait("some objects", || {
            handle.stats.objects.load(Ordering::SeqCst) > 0
        });
        // stop as a crash would, with batches open: the next run batches them again
        handle.tx.send(Cmd::Abort).ok();
        let mut worker = worker;
        if let Some(t) = worker.thread.take() {
            t.join().unwrap();
        }
        for r in 5..8 {
            append(&wal, r * 20, 20);
        }
        let worker = ArchiveWorker::start(wal.clone(), store.clone(), config(dir.path())).unwrap();
        worker.shutdown();
        assert_eq!(archived(store.as_ref()), (0..160).collect::<Vec<_>>());
    }

    #[test]
    fn pending_batches_settle_by_what_the_store_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path()).unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, b"x").unwrap();
        store.put_file("k/present", &src).unwrap();
        let record = |key: &str, done| BatchRecord {
            tenant: "t".into(),
            hour: 1,
            first_seq: 5,
            last_seq: 9,
            key: key.into(),
            done,
        };
        let mut state = ArchiveState {
            position: 5,
            batches: vec![
                record("k/present", false),
                record("k/missing", false),
                record("k/old", true),
            ],
        };
        settle_pending(&mut state, &store).unwrap();
        let keys: Vec<_> = state
            .batches
            .iter()
            .map(|b| (b.key.as_str(), b.done))
            .collect();
        assert_eq!(keys, vec![("k/present", true), ("k/old", true)]);
    }
}
