//! The index consumer of the WAL: a dedicated thread that feeds the tantivy indexer.
//!
//! After each group commit the WAL's writer thread hands over the index documents that the
//! request built, through a bounded queue, so the hot path never parses an event twice. When
//! documents are missed for any reason (a restart, a refused hand-over) the worker notices the
//! gap in sequence numbers and rebuilds them from the WAL on disk. Every `refresh_interval` it commits, which makes the
//! events searchable and records the WAL position in the index. On start it replays the WAL
//! from the index's committed position before reporting ready.

use crate::batch::Batch;
use crate::metrics::Metrics;
use sawmill_index::{CommitReport, IndexError, Indexer, IndexerConfig, Partitions};
use sawmill_wal::Wal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tantivy::TantivyDocument;
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};

/// Batches waiting for the indexer hold at most this many payload bytes (their parsed events
/// take about three times as much memory). Ingest waits for room before it appends to the
/// WAL, so a slow indexer slows ingest down instead of growing memory.
const MAX_QUEUED_KIB: usize = 16 << 10;
/// How often old partitions are checked against the retention.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

enum Msg {
    Batch {
        first_seq: u64,
        docs: Vec<(i64, TantivyDocument)>,
        _room: QueueRoom,
    },
    Flush(oneshot::Sender<Result<CommitReport, FlushError>>),
    Shutdown,
}

/// The handle the HTTP layer holds.
#[derive(Clone)]
pub struct IndexHandle {
    tx: SyncSender<Msg>,
    room: Arc<Semaphore>,
    searchable: watch::Receiver<u64>,
    ready: watch::Receiver<bool>,
    committed: Arc<AtomicU64>,
}

impl IndexHandle {
    /// Waits until the queue has room for a batch of `payload_bytes`; `None` after `timeout`.
    pub async fn reserve(&self, payload_bytes: usize, timeout: Duration) -> Option<QueueRoom> {
        let kib = payload_bytes.div_ceil(1024).clamp(1, MAX_QUEUED_KIB) as u32;
        match tokio::time::timeout(timeout, self.room.clone().acquire_many_owned(kib)).await {
            Ok(Ok(permit)) => Some(QueueRoom(permit)),
            _ => None,
        }
    }

    /// Hands the documents of a durable record to the indexer; never blocks (refused
    /// documents are rebuilt from the WAL).
    pub fn offer(&self, first_seq: u64, docs: Vec<(i64, TantivyDocument)>, room: QueueRoom) {
        let _ = self.tx.try_send(Msg::Batch {
            first_seq,
            docs,
            _room: room,
        });
    }

    /// Sequence number below which every event is searchable.
    pub fn searchable_seq(&self) -> u64 {
        *self.searchable.borrow()
    }

    /// Waits until every event below `seq` is searchable.
    pub async fn wait_searchable(&self, seq: u64) {
        let mut rx = self.searchable.clone();
        let _ = rx.wait_for(|p| *p >= seq).await;
    }

    /// True once the WAL has been replayed into the index after start.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// The WAL position committed in the index: the WAL may be truncated below it.
    pub fn committed_seq(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Commits everything durable so far and reports what was done.
    pub async fn flush(&self) -> Result<CommitReport, FlushError> {
        let (reply, rx) = oneshot::channel();
        let tx = self.tx.clone();
        // the queue may be full: wait for room off the async threads
        match tokio::task::spawn_blocking(move || tx.send(Msg::Flush(reply))).await {
            Ok(Ok(())) => {}
            _ => return Err(FlushError::Stopped),
        }
        rx.await.map_err(|_| FlushError::Stopped)?
    }
}

/// Why a flush of the index did not complete.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error("the indexer stopped")]
    Stopped,
    /// The worker reopens the index from its last commit and goes on from the WAL.
    #[error(transparent)]
    Failed(#[from] IndexError),
}

/// Room reserved in the indexer's queue, released when the indexer is done with the batch.
pub struct QueueRoom(#[allow(dead_code)] OwnedSemaphorePermit);

/// The running worker.
pub struct IndexWorker {
    handle: IndexHandle,
    thread: Option<JoinHandle<()>>,
}

impl IndexWorker {
    /// Starts the worker thread; it replays the WAL, then follows new batches.
    pub fn start(
        wal: Arc<Wal>,
        partitions: Arc<Partitions>,
        config: IndexerConfig,
        refresh: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<IndexWorker, IndexError> {
        let indexer = Indexer::open(partitions.clone(), config.clone())?;
        let (tx, rx) = sync_channel(4096);
        let (searchable_tx, searchable) = watch::channel(indexer.committed_position());
        let (ready_tx, ready) = watch::channel(false);
        let committed = Arc::new(AtomicU64::new(indexer.committed_position()));
        let mut state = Worker {
            wal,
            partitions,
            config,
            indexer: Some(indexer),
            rx,
            searchable: searchable_tx,
            committed: committed.clone(),
            refresh,
            metrics,
            first_dirty: None,
            commit_estimate: Duration::ZERO,
        };
        let thread = std::thread::Builder::new()
            .name("sawmill-indexer".into())
            .spawn(move || {
                state.replay();
                let _ = ready_tx.send(true);
                state.run();
            })
            .map_err(|e| IndexError::Internal(format!("cannot start the indexer thread: {e}")))?;
        Ok(IndexWorker {
            handle: IndexHandle {
                tx,
                room: Arc::new(Semaphore::new(MAX_QUEUED_KIB)),
                searchable,
                ready,
                committed,
            },
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> IndexHandle {
        self.handle.clone()
    }

    /// Indexes everything durable, commits and stops the thread.
    pub fn shutdown(mut self) {
        let _ = self.handle.tx.send(Msg::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    wal: Arc<Wal>,
    partitions: Arc<Partitions>,
    config: IndexerConfig,
    /// `None` only while being rebuilt after an error.
    indexer: Option<Indexer>,
    rx: Receiver<Msg>,
    searchable: watch::Sender<u64>,
    committed: Arc<AtomicU64>,
    refresh: Duration,
    metrics: Arc<Metrics>,
    first_dirty: Option<Instant>,
    /// Recent commit duration, smoothed.
    commit_estimate: Duration,
}

fn now_nanos() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

impl Worker {
    fn replay(&mut self) {
        let target = self.wal.durable_seq();
        let from = self.position();
        if from < target {
            tracing::info!(from, to = target, "replaying wal into the index");
        }
        let started = Instant::now();
        loop {
            match self
                .catch_up(target)
                .and_then(|_| self.commit().map(|_| ()))
            {
                Ok(()) => break,
                Err(e) => self.recover_from(&e),
            }
        }
        if from < target {
            tracing::info!(
                events = target - from,
                took_ms = started.elapsed().as_millis() as u64,
                "index replay finished"
            );
        }
    }

    fn run(&mut self) {
        let mut last_retention = Instant::now() - RETENTION_EVERY;
        loop {
            let timeout = match self.first_dirty {
                Some(t) => (t + self.commit_after()).saturating_duration_since(Instant::now()),
                None => self.refresh,
            };
            let result = match self.rx.recv_timeout(timeout) {
                Ok(Msg::Batch {
                    first_seq, docs, ..
                }) => self.take_batch(first_seq, docs),
                Ok(Msg::Flush(reply)) => {
                    let target = self.wal.durable_seq();
                    let result = self.catch_up(target).and_then(|_| self.commit());
                    if let Err(e) = &result {
                        self.recover_from(e);
                    }
                    let _ = reply.send(result.map_err(FlushError::Failed));
                    Ok(())
                }
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    self.stop();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    // pick up batches the queue refused
                    let target = self.wal.durable_seq();
                    self.catch_up(target)
                }
            };
            let result = result.and_then(|_| {
                if self
                    .first_dirty
                    .is_some_and(|t| t.elapsed() >= self.commit_after())
                {
                    self.commit()?;
                }
                if last_retention.elapsed() >= RETENTION_EVERY {
                    last_retention = Instant::now();
                    self.retention()?;
                }
                Ok(())
            });
            if let Err(e) = result {
                self.recover_from(&e);
            }
        }
    }

    fn indexer(&mut self) -> Result<&mut Indexer, IndexError> {
        if self.indexer.is_none() {
            self.indexer = Some(Indexer::open(self.partitions.clone(), self.config.clone())?);
        }
        self.indexer
            .as_mut()
            .ok_or_else(|| IndexError::Internal("indexer unavailable".into()))
    }

    fn position(&mut self) -> u64 {
        self.indexer().map(|i| i.position()).unwrap_or(0)
    }

    /// Drops the indexer (losing only uncommitted work, which the WAL still holds) and waits
    /// a moment before it is reopened from its last commit.
    fn recover_from(&mut self, error: &IndexError) {
        self.metrics.index.errors.inc();
        tracing::error!(error = %error, "indexing failed; reopening the index from its last commit");
        self.indexer = None;
        self.first_dirty = None;
        std::thread::sleep(Duration::from_secs(1));
    }

    fn take_batch(
        &mut self,
        first_seq: u64,
        docs: Vec<(i64, TantivyDocument)>,
    ) -> Result<(), IndexError> {
        let position = self.indexer()?.position();
        if first_seq > position {
            self.catch_up(first_seq)?;
        }
        self.index_docs(first_seq, docs)
    }

    fn index_docs(
        &mut self,
        first_seq: u64,
        docs: Vec<(i64, TantivyDocument)>,
    ) -> Result<(), IndexError> {
        let end = first_seq + docs.len() as u64;
        let indexer = self.indexer()?;
        let skipped_before = indexer.skipped_old();
        let added = indexer.add_documents(first_seq, docs, now_nanos())? > 0;
        let skipped = indexer.skipped_old() - skipped_before;
        if skipped > 0 {
            self.metrics
                .index
                .skipped_events
                .with_label_values(&["retention"])
                .inc_by(skipped);
        }
        if added && self.first_dirty.is_none() {
            self.first_dirty = Some(Instant::now());
        }
        if !added && self.first_dirty.is_none() {
            // nothing to commit, but the position moved: publish it
            self.publish(end);
        }
        Ok(())
    }

    /// Reads records `[position, until)` back from the WAL and indexes them.
    fn catch_up(&mut self, until: u64) -> Result<(), IndexError> {
        let from = self.indexer()?.position();
        if from >= until {
            return Ok(());
        }
        let reader = self
            .wal
            .read_from(from)
            .map_err(|e| IndexError::Internal(format!("read wal from {from}: {e}")))?;
        for record in reader {
            let record = record.map_err(|e| IndexError::Internal(format!("read wal: {e}")))?;
            if record.first_seq >= until {
                break;
            }
            let (first_seq, end_seq) = (record.first_seq, record.end_seq());
            match Batch::decode(record.payload, self.partitions.fields()) {
                Ok(batch) => self.index_docs(first_seq, batch.docs)?,
                Err(e) => {
                    tracing::error!(first_seq, end_seq, error = %e, "skipping undecodable wal record");
                    self.indexer()?.advance_to(end_seq);
                }
            }
        }
        Ok(())
    }

    /// How long after the first uncommitted event the commit starts: early enough that the
    /// commit (estimated from recent ones) ends within `refresh_interval` of that event.
    fn commit_after(&self) -> Duration {
        self.refresh
            .saturating_sub(self.commit_estimate.min(self.refresh / 2))
    }

    fn commit(&mut self) -> Result<CommitReport, IndexError> {
        let report = self.indexer()?.commit()?;
        // moving average of commit durations, for `commit_after`
        self.commit_estimate = (self.commit_estimate * 3 + report.duration) / 4;
        self.first_dirty = None;
        self.metrics
            .index
            .commit_seconds
            .observe(report.duration.as_secs_f64());
        self.committed.store(report.position, Ordering::Release);
        self.publish(report.position);
        Ok(report)
    }

    fn publish(&self, position: u64) {
        self.searchable.send_if_modified(|p| {
            if position > *p {
                *p = position;
                true
            } else {
                false
            }
        });
    }

    fn retention(&mut self) -> Result<(), IndexError> {
        let removed = self.indexer()?.apply_retention(now_nanos())?;
        for day in removed {
            tracing::info!(day = %sawmill_index::partition::day_name(day), "deleted partition past hot retention");
        }
        Ok(())
    }

    fn stop(&mut self) {
        let target = self.wal.durable_seq();
        let result = self.catch_up(target).and_then(|_| {
            let indexer = self
                .indexer
                .take()
                .ok_or_else(|| IndexError::Internal("indexer unavailable".into()))?;
            indexer.close()
        });
        match result {
            Ok(report) => {
                self.committed.store(report.position, Ordering::Release);
                self.publish(report.position);
                tracing::info!(position = report.position, "index committed at shutdown");
            }
            Err(e) => {
                tracing::error!(error = %e, "final index commit failed; the wal will be replayed at start")
            }
        }
    }
}
