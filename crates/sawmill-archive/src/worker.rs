//! The archive consumer of the WAL: reads acknowledged events, batches them per tenant and hour
//! and writes each sealed batch to the object store.
//!
//! Its position only moves past events whose batch the store has confirmed, so an outage or a
//! crash never loses or duplicates a batch (see [`crate::state`]). While the store fails, the
//! worker retries with [`RetryPolicy::DEFAULT`] (on top of the S3 SDK's own retries) and stops
//! reading: the backlog stays in the WAL, whose segments are kept until the archive is past
//! them.
//!
//! Two threads share the worker. The background thread runs at the lowest CPU priority
//! (nice 19), so during a burst ingest and indexing get the cores and archiving uses what they
//! leave. When the events read by neither exceed `catch_up_lag`, the catch-up thread, at normal
//! priority, asks the background thread to let go at the next record and archives until the
//! lag is a quarter of that: under sustained full load the backlog stays bounded instead of
//! growing until the WAL bound throttles ingest.

use crate::batcher::{BatchLimits, Batcher, Sealed};
use crate::layout::{hour_of, object_key};
use crate::state::{ArchiveState, BatchRecord, StateError};
use crate::store::{ObjectStore, StoreError};
use sawmill_core::record::{event_lines, line_timestamp, RecordHeader};
use sawmill_core::RetryPolicy;
use sawmill_wal::{Wal, WalError};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
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
    /// Unread acknowledged events beyond which archiving runs at normal priority.
    pub catch_up_lag: u64,
}

/// Default for [`ArchiveConfig::catch_up_lag`]: about 23 MB of typical log lines, a third
/// of a 64 MiB batch.
pub const DEFAULT_CATCH_UP_LAG: u64 = 100_000;

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
    /// Times the normal-priority catch-up took over from the background thread.
    pub catch_ups: AtomicU64,
}

/// Why the archive could not start, or a round or a flush failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot check archive object {key}: {source}")]
    CheckPending { key: String, source: StoreError },
    #[error("cannot prepare the archive spool {}: {source}", path.display())]
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the {thread} thread: {source}")]
    Thread {
        thread: &'static str,
        source: std::io::Error,
    },
    #[error("read wal from {position}: {source}")]
    ReadWal { position: u64, source: WalError },
    /// A batch could not be written to, or sealed in, the spool.
    #[error("{op} archive batch: {source}")]
    Batch {
        op: &'static str,
        source: std::io::Error,
    },
    /// The spool file of a batch was removed under the server: no retry can help, the events
    /// are read again from the WAL.
    #[error("archive spool file {} disappeared: {source}", path.display())]
    SpoolFileGone { path: PathBuf, source: StoreError },
    #[error("the wal holds nothing between {from} and {to}")]
    WalGap { from: u64, to: u64 },
    /// The store kept failing until a flush or shutdown deadline.
    #[error(
        "the archive store is failing ({0}); the backlog stays in the wal and writes are retried"
    )]
    StoreFailing(#[source] Arc<StoreError>),
    #[error("the archive worker stopped")]
    Stopped,
}

/// What a flush did.
#[derive(Clone, Debug, Default)]
pub struct FlushReport {
    pub objects: u64,
    pub events: u64,
    pub position: u64,
}

enum Cmd {
    Flush(tokio::sync::oneshot::Sender<Result<FlushReport, ArchiveError>>),
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

    /// Seals every open batch and writes it, with everything acknowledged so far. Fails when
    /// the store keeps failing for [`FLUSH_PATIENCE`]; the backlog then stays in the WAL.
    pub async fn flush(&self) -> Result<FlushReport, ArchiveError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Cmd::Flush(tx))
            .map_err(|_| ArchiveError::Stopped)?;
        rx.await.map_err(|_| ArchiveError::Stopped)?
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }
}

/// What the two threads signal each other outside the worker's lock.
#[derive(Default)]
struct Signals {
    /// The catch-up thread wants the worker: the background thread lets go at the next record.
    yield_now: AtomicBool,
    stopping: AtomicBool,
    /// The worker's read position, readable without the lock.
    read_pos: AtomicU64,
    /// The last write failed and waits for its retry: catching up would not help.
    store_failing: AtomicBool,
}

/// The running worker.
pub struct ArchiveWorker {
    handle: ArchiveHandle,
    signals: Arc<Signals>,
    threads: Vec<JoinHandle<()>>,
}

impl ArchiveWorker {
    /// Loads the state, settles batches left pending by a crash and starts the threads.
    pub fn start(
        wal: Arc<Wal>,
        store: Arc<dyn ObjectStore>,
        config: ArchiveConfig,
    ) -> Result<ArchiveWorker, ArchiveError> {
        std::fs::create_dir_all(&config.dir).map_err(|source| ArchiveError::CreateDir {
            path: config.dir.clone(),
            source,
        })?;
        let state_path = config.dir.join("state.json");
        let mut state = ArchiveState::load(&state_path)?;
        settle_pending(&mut state, store.as_ref())?;
        state.save(&state_path)?;
        let spool = config.dir.join("spool");
        let batcher =
            Batcher::new(&spool, config.limits.clone()).map_err(|source| ArchiveError::Spool {
                path: spool,
                source,
            })?;
        let stats = Arc::new(ArchiveStats::default());
        stats.position.store(state.position, Ordering::Release);
        let signals = Arc::new(Signals::default());
        signals.read_pos.store(state.position, Ordering::Release);
        let (tx, rx) = channel();
        let (poll, lag) = (config.poll, config.catch_up_lag.max(1));
        let worker = Arc::new(Mutex::new(Worker {
            wal: wal.clone(),
            store: store.clone(),
            read_pos: state.position,
            state,
            state_path,
            batcher,
            config,
            stats: stats.clone(),
            signals: signals.clone(),
            queue: VecDeque::new(),
            failures: 0,
            retry: None,
            unarchived: Vec::new(),
        }));
        let background = {
            let worker = worker.clone();
            let signals = signals.clone();
            std::thread::Builder::new()
                .name("sawmill-archive".into())
                .spawn(move || {
                    lower_priority();
                    run_background(&worker, &signals, &rx, poll)
                })
                .map_err(|source| ArchiveError::Thread {
                    thread: "archive",
                    source,
                })?
        };
        let catch_up = {
            let signals = signals.clone();
            std::thread::Builder::new()
                .name("sawmill-archive-catch-up".into())
                .spawn(move || run_catch_up(&worker, &signals, &wal, lag))
                .map_err(|source| ArchiveError::Thread {
                    thread: "archive catch-up",
                    source,
                })?
        };
        Ok(ArchiveWorker {
            handle: ArchiveHandle { tx, stats, store },
            signals,
            threads: vec![background, catch_up],
        })
    }

    pub fn handle(&self) -> ArchiveHandle {
        self.handle.clone()
    }

    /// Archives everything acknowledged (retrying the store for a while) and stops.
    pub fn shutdown(mut self) {
        let _ = self.handle.tx.send(Cmd::Shutdown);
        self.join();
    }

    fn join(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.signals.stopping.store(true, Ordering::Release);
    }
}

/// Archiving is background work: when ingest and indexing keep every core busy, it yields
/// (nice 19) and catches up when they pause, or through the catch-up thread when it falls too
/// far behind; its backlog waits safely in the WAL.
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

fn lock(worker: &Mutex<Worker>) -> MutexGuard<'_, Worker> {
    // a panic while archiving leaves a worker whose saved state is still right: go on with it
    worker
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The background thread: rounds every `poll`, commands in between.
fn run_background(worker: &Mutex<Worker>, signals: &Signals, rx: &Receiver<Cmd>, poll: Duration) {
    loop {
        let wait = {
            let mut w = lock(worker);
            match w.round(true) {
                Ok(_) => poll,
                Err(e) => {
                    tracing::error!(error = %e, "archiving failed; starting again from the saved position");
                    w.restart_from_saved();
                    Duration::from_secs(1)
                }
            }
        };
        match rx.recv_timeout(wait) {
            Ok(Cmd::Flush(reply)) => {
                let report = lock(worker).flush_until(Instant::now() + FLUSH_PATIENCE);
                let _ = reply.send(report);
            }
            Ok(Cmd::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                signals.stopping.store(true, Ordering::Release);
                let mut w = lock(worker);
                match w.flush_until(Instant::now() + SHUTDOWN_PATIENCE) {
                    Ok(r) => tracing::info!(
                        objects = r.objects,
                        position = r.position,
                        "archive flushed at shutdown"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "archive not flushed at shutdown; the wal keeps the rest")
                    }
                }
                w.discard();
                return;
            }
            #[cfg(test)]
            Ok(Cmd::Abort) => {
                signals.stopping.store(true, Ordering::Release);
                lock(worker).discard();
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// How often the catch-up thread looks at the lag.
const CATCH_UP_CHECK: Duration = Duration::from_millis(50);

/// The catch-up thread, at normal priority: takes over while the unread lag exceeds `lag`.
fn run_catch_up(worker: &Mutex<Worker>, signals: &Signals, wal: &Wal, lag: u64) {
    let unread = |read_pos: u64| wal.durable_seq().saturating_sub(read_pos);
    while !signals.stopping.load(Ordering::Acquire) {
        std::thread::sleep(CATCH_UP_CHECK);
        if signals.store_failing.load(Ordering::Acquire)
            || unread(signals.read_pos.load(Ordering::Acquire)) <= lag
        {
            continue;
        }
        signals.yield_now.store(true, Ordering::Release);
        let mut w = lock(worker);
        signals.yield_now.store(false, Ordering::Release);
        if signals.stopping.load(Ordering::Acquire) {
            return;
        }
        w.stats.catch_ups.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            unread = unread(w.read_pos),
            "archive catching up at normal priority"
        );
        while !signals.stopping.load(Ordering::Acquire) && unread(w.read_pos) > lag / 4 {
            match w.round(false) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::error!(error = %e, "archiving failed; starting again from the saved position");
                    w.restart_from_saved();
                    break;
                }
            }
        }
    }
}

/// Pending batches become done when their object exists, and are forgotten otherwise.
fn settle_pending(state: &mut ArchiveState, store: &dyn ObjectStore) -> Result<(), ArchiveError> {
    let mut kept = Vec::with_capacity(state.batches.len());
    for mut b in std::mem::take(&mut state.batches) {
        if !b.done {
            match store.exists(&b.key) {
                Ok(true) => b.done = true,
                Ok(false) => continue,
                Err(source) => {
                    return Err(ArchiveError::CheckPending {
                        key: b.key.clone(),
                        source,
                    })
                }
            }
        }
        kept.push(b);
    }
    state.batches = kept;
    Ok(())
}

/// How long a shutdown keeps retrying a failing store before leaving the rest to the WAL.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(30);
/// How long a flush keeps retrying a failing store before it answers with the error.
pub const FLUSH_PATIENCE: Duration = Duration::from_secs(10);
/// Records read per round before the threads look at commands and the lag again.
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
    signals: Arc<Signals>,
    /// Sealed batches waiting for the store, written in order.
    queue: VecDeque<Sealed>,
    /// Failed attempts at the front batch in a row.
    failures: u32,
    /// The last failure of the front batch, while its retry waits.
    retry: Option<Retry>,
    /// (end seq, receive time) of records read but not yet entirely archived.
    unarchived: Vec<(u64, i64)>,
}

/// A failed write waiting for its retry.
struct Retry {
    at: Instant,
    error: Arc<StoreError>,
}

impl Worker {
    /// Writes what waits, reads what is new (letting go early when `yielding` and the
    /// catch-up thread asks), seals what is due. False while the store is failing.
    fn round(&mut self, yielding: bool) -> Result<bool, ArchiveError> {
        if !self.drain()? {
            return Ok(false);
        }
        let sealed = self.read(RECORDS_PER_ROUND, yielding)?;
        self.queue.extend(sealed);
        let due = self
            .batcher
            .seal_due()
            .map_err(|source| ArchiveError::Batch { op: "seal", source })?;
        self.queue.extend(due);
        let written = self.drain()?;
        self.advance()?;
        Ok(written)
    }

    /// Archives everything acknowledged so far, retrying a failing store until `deadline`.
    fn flush_until(&mut self, deadline: Instant) -> Result<FlushReport, ArchiveError> {
        let before = (
            self.stats.objects.load(Ordering::Relaxed),
            self.stats.events.load(Ordering::Relaxed),
        );
        // an explicit flush tries the store now rather than at the next backoff
        self.retry = None;
        let target = self.wal.durable_seq();
        loop {
            if !self.drain()? {
                self.wait_for_retry(deadline)?;
                continue;
            }
            if self.read_pos >= target {
                break;
            }
            let before = self.read_pos;
            let sealed = self.read(usize::MAX, false)?;
            self.queue.extend(sealed);
            if self.read_pos == before {
                return Err(ArchiveError::WalGap {
                    from: before,
                    to: target,
                });
            }
        }
        let sealed = self
            .batcher
            .seal_all()
            .map_err(|source| ArchiveError::Batch { op: "seal", source })?;
        self.queue.extend(sealed);
        while !self.drain()? {
            self.wait_for_retry(deadline)?;
        }
        self.advance()?;
        Ok(FlushReport {
            objects: self.stats.objects.load(Ordering::Relaxed) - before.0,
            events: self.stats.events.load(Ordering::Relaxed) - before.1,
            position: self.state.position,
        })
    }

    /// Sleeps until the next write attempt, or fails when that is past `deadline`.
    fn wait_for_retry(&self, deadline: Instant) -> Result<(), ArchiveError> {
        let Some(retry) = &self.retry else {
            return Ok(());
        };
        if retry.at > deadline {
            return Err(ArchiveError::StoreFailing(retry.error.clone()));
        }
        std::thread::sleep(retry.at.saturating_duration_since(Instant::now()));
        Ok(())
    }

    /// Reads up to `max_records` records after `read_pos`; returns batches sealed meanwhile.
    fn read(&mut self, max_records: usize, yielding: bool) -> Result<Vec<Sealed>, ArchiveError> {
        let mut sealed = Vec::new();
        if self.wal.durable_seq() <= self.read_pos {
            return Ok(sealed);
        }
        let read_error = |position| move |source| ArchiveError::ReadWal { position, source };
        let reader = self
            .wal
            .read_from(self.read_pos)
            .map_err(read_error(self.read_pos))?;
        for record in reader.take(max_records) {
            if yielding && self.signals.yield_now.load(Ordering::Acquire) {
                break;
            }
            let record = record.map_err(read_error(self.read_pos))?;
            let (first_seq, end_seq) = (record.first_seq, record.end_seq());
            if end_seq <= self.read_pos {
                continue;
            }
            let (header, body) = match RecordHeader::decode(&record.payload) {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(first_seq, end_seq, error = %e, "skipping undecodable wal record");
                    self.set_read_pos(end_seq);
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
                let full = self
                    .batcher
                    .add(&header.tenant, seq, ts, line)
                    .map_err(|source| ArchiveError::Batch {
                        op: "spool",
                        source,
                    })?;
                sealed.extend(full);
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
            self.set_read_pos(end_seq);
        }
        Ok(sealed)
    }

    fn set_read_pos(&mut self, pos: u64) {
        self.read_pos = pos;
        self.signals.read_pos.store(pos, Ordering::Release);
    }

    /// Writes the queued batches in order. False when the store failed: the batch stays at
    /// the front and is tried again after a backoff.
    fn drain(&mut self) -> Result<bool, ArchiveError> {
        if self.retry.as_ref().is_some_and(|r| Instant::now() < r.at) {
            return Ok(false);
        }
        while let Some(batch) = self.queue.front() {
            let record = self.record_of(batch);
            let path = batch.path.clone();
            // pending in the state, then the object, then done
            if !self.state.batches.iter().any(|b| b.key == record.key) {
                self.state.batches.push(record.clone());
                self.state.save(&self.state_path)?;
            }
            match self.store.put_file(&record.key, &path) {
                Ok(()) => self.written(&record.key)?,
                // the spool file is gone (removed under the server): not the store's fault
                // and no retry can help; the caller reads the WAL again
                Err(source) if !path.exists() => {
                    return Err(ArchiveError::SpoolFileGone { path, source })
                }
                Err(e) => {
                    self.write_failed(&record.key, e);
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The state's pending record of a sealed batch, with its object key.
    fn record_of(&self, batch: &Sealed) -> BatchRecord {
        BatchRecord {
            tenant: batch.tenant.clone(),
            hour: batch.hour,
            first_seq: batch.first_seq,
            last_seq: batch.last_seq,
            key: object_key(
                &self.config.prefix,
                &batch.tenant,
                batch.hour,
                &self.config.writer,
                batch.first_ts,
                batch.last_ts,
                batch.first_seq,
            ),
            done: false,
        }
    }

    /// The store confirmed the front batch as `key`: done in the state, out of the queue.
    fn written(&mut self, key: &str) -> Result<(), ArchiveError> {
        self.failures = 0;
        self.retry = None;
        self.signals.store_failing.store(false, Ordering::Release);
        if let Some(b) = self.state.batches.iter_mut().find(|b| b.key == key) {
            b.done = true;
        }
        self.state.save(&self.state_path)?;
        if let Some(batch) = self.queue.pop_front() {
            let _ = std::fs::remove_file(&batch.path);
            self.stats.objects.fetch_add(1, Ordering::Relaxed);
            self.stats.events.fetch_add(batch.events, Ordering::Relaxed);
            self.stats
                .raw_bytes
                .fetch_add(batch.raw_bytes, Ordering::Relaxed);
            self.stats
                .compressed_bytes
                .fetch_add(batch.compressed_bytes, Ordering::Relaxed);
            tracing::debug!(
                key,
                events = batch.events,
                bytes = batch.compressed_bytes,
                "archived batch"
            );
        }
        Ok(())
    }

    /// The store refused the front batch: it is tried again after the policy's wait.
    fn write_failed(&mut self, key: &str, error: StoreError) {
        self.failures += 1;
        self.stats.upload_errors.fetch_add(1, Ordering::Relaxed);
        let wait = RetryPolicy::DEFAULT.delay(self.failures, None);
        tracing::warn!(key, attempt = self.failures, error = %error, retry_in_ms = wait.as_millis() as u64, "archive write failed");
        self.retry = Some(Retry {
            at: Instant::now() + wait,
            error: Arc::new(error),
        });
        self.signals.store_failing.store(true, Ordering::Release);
    }

    /// Moves the position to the oldest event still in a queued or open batch (or to what
    /// was read).
    fn advance(&mut self) -> Result<(), ArchiveError> {
        let position = self
            .queue
            .iter()
            .map(|b| b.first_seq)
            .chain(self.batcher.min_open_seq())
            .fold(self.read_pos, u64::min);
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

    /// After a failure that is not the store's (the state could not be saved, the spool could
    /// not be written): forgets everything read since the saved position and reads it again.
    fn restart_from_saved(&mut self) {
        self.discard();
        self.unarchived.clear();
        let position = self.state.position;
        self.set_read_pos(position);
    }

    /// Drops open and queued batches: their events are still in the WAL.
    fn discard(&mut self) {
        self.batcher.discard_all();
        for batch in self.queue.drain(..) {
            let _ = std::fs::remove_file(&batch.path);
        }
    }
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
            catch_up_lag: DEFAULT_CATCH_UP_LAG,
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
    fn the_catch_up_thread_takes_over_when_the_lag_exceeds_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(WalConfig::new(dir.path().join("wal"))).unwrap();
        let wal = Arc::new(wal);
        let store: Arc<dyn ObjectStore> =
            Arc::new(FsStore::new(dir.path().join("objects")).unwrap());
        // the background thread looks at the WAL once a minute: only the catch-up thread can
        // archive within the test
        let config = ArchiveConfig {
            poll: Duration::from_secs(60),
            catch_up_lag: 100,
            ..config(dir.path())
        };
        let worker = ArchiveWorker::start(wal.clone(), store.clone(), config).unwrap();
        let handle = worker.handle();
        std::thread::sleep(Duration::from_millis(100));
        append(&wal, 0, 90);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            handle.stats.catch_ups.load(Ordering::SeqCst),
            0,
            "90 unread events are within the bound"
        );
        for r in 0..10 {
            append(&wal, 90 + r * 50, 50);
        }
        wait("the catch-up thread to archive", || {
            handle.stats.events.load(Ordering::SeqCst) > 300
        });
        assert!(handle.stats.catch_ups.load(Ordering::SeqCst) >= 1);
        worker.shutdown();
        assert_eq!(archived(store.as_ref()), (0..590).collect::<Vec<_>>());
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
        worker.join();
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
