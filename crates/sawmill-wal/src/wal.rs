//! The `Wal` handle: configuration, opening, appending, reading, truncation.

use std::fmt;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::WalError;
use crate::faults::Faults;
use crate::reader::WalReader;
use crate::recovery::{recover, RecoveryReport};
use crate::segment::{sync_dir, SegmentEntry};
use crate::writer::{notify, Pending, Queue, Shared, Writer};

/// WAL configuration.
#[derive(Clone)]
pub struct WalConfig {
    /// Directory holding the segment files; created if missing.
    pub dir: PathBuf,
    /// Roll to a new segment once the active one would grow past this size.
    /// A single record larger than this gets a segment of its own.
    pub segment_bytes: u64,
    /// Appends with a larger payload are refused.
    pub max_record_bytes: u32,
    /// Called on the writer thread with the duration of every group fsync.
    pub on_fsync: Option<Arc<dyn Fn(Duration) + Send + Sync>>,
}

impl WalConfig {
    /// Default segment size: 64 MiB.
    pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
    /// Default record size limit: 256 MiB.
    pub const DEFAULT_MAX_RECORD_BYTES: u32 = 256 << 20;

    /// Configuration with default sizes and no fsync observer.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalConfig {
            dir: dir.into(),
            segment_bytes: Self::DEFAULT_SEGMENT_BYTES,
            max_record_bytes: Self::DEFAULT_MAX_RECORD_BYTES,
            on_fsync: None,
        }
    }
}

impl fmt::Debug for WalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalConfig")
            .field("dir", &self.dir)
            .field("segment_bytes", &self.segment_bytes)
            .field("max_record_bytes", &self.max_record_bytes)
            .field("on_fsync", &self.on_fsync.as_ref().map(|_| "Fn(Duration)"))
            .finish()
    }
}

/// Seqs assigned to a durable record: `[first_seq, end_seq)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Seq of the first event.
    pub first_seq: u64,
    /// `first_seq + count`.
    pub end_seq: u64,
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Seq of the first event.
    pub first_seq: u64,
    /// Number of events in the payload.
    pub count: u32,
    /// The serialized batch exactly as appended.
    pub payload: Vec<u8>,
}

impl Record {
    /// Seq after the last event of the record.
    pub fn end_seq(&self) -> u64 {
        self.first_seq.saturating_add(u64::from(self.count))
    }
}

/// Disk footprint of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalDiskUsage {
    /// Durable bytes in all live segments.
    pub bytes: u64,
    /// Number of live segments, the active one included.
    pub segments: usize,
}

/// The write-ahead log. `Send + Sync`; share it behind an `Arc`.
pub struct Wal {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    writer_id: ThreadId,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .field("durable_seq", &self.durable_seq())
            .finish()
    }
}

impl Wal {
    /// Opens the log in `config.dir` (creating it if missing), validates every
    /// segment, cuts torn or corrupt tails, moves segments with bad headers
    /// aside and starts the writer thread.
    pub fn open(config: WalConfig) -> Result<(Wal, RecoveryReport), WalError> {
        let recovered = recover(&config.dir)?;
        let next_seq = recovered.report.next_seq;
        let shared = Arc::new(Shared {
            dir: config.dir,
            segment_bytes: config.segment_bytes,
            max_record_bytes: config.max_record_bytes,
            on_fsync: config.on_fsync,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            durable_seq: next_seq.into(),
            segments: Mutex::new(recovered.segments),
            faults: Faults::default(),
        });
        let writer = Writer::new(shared.clone(), recovered.active);
        let handle = thread::Builder::new()
            .name("sawmill-wal-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| WalError::io("start writer thread for", &shared.dir, e))?;
        let wal = Wal {
            writer_id: handle.thread().id(),
            writer: Mutex::new(Some(handle)),
            shared,
        };
        Ok((wal, recovered.report))
    }

    /// Queues a record of `count` events for the next group commit. `done` is
    /// called on the writer thread, in WAL order, once the record is durable
    /// or its group failed; it must be cheap. Invalid appends (`count == 0`,
    /// payload over `max_record_bytes`, WAL closed) are refused by calling
    /// `done` with the error right away on the calling thread.
    pub fn append(
        &self,
        payload: Vec<u8>,
        count: u32,
        done: Box<dyn FnOnce(Result<Appended, WalError>) + Send>,
    ) {
        if count == 0 {
            return notify(done, Err(WalError::EmptyRecord));
        }
        if payload.len() > self.shared.max_record_bytes as usize {
            let max = self.shared.max_record_bytes;
            let len = payload.len();
            return notify(done, Err(WalError::RecordTooLarge { len, max }));
        }
        // Hash on the caller's thread; the writer only combines it with the seqs.
        let mut payload_crc = crc32fast::Hasher::new();
        payload_crc.update(&payload);
        let pending = Pending {
            payload,
            payload_crc,
            count,
            done,
        };
        let mut q = self.shared.queue.lock();
        if q.closed {
            drop(q);
            return notify(pending.done, Err(WalError::Closed));
        }
        let was_empty = q.items.is_empty();
        q.items.push(pending);
        drop(q);
        // The writer only sleeps on an empty queue.
        if was_empty {
            self.shared.wake.notify_one();
        }
    }

    /// Appends and blocks until the record is durable. Convenience for tools
    /// and tests; servers should use [`Wal::append`]. Must not be called from
    /// an append callback (it would wait for itself).
    pub fn append_blocking(&self, payload: Vec<u8>, count: u32) -> Result<Appended, WalError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.append(
            payload,
            count,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        // The writer calls every callback before it exits, so a dropped
        // sender only happens if the callback was lost to a panic.
        rx.recv().unwrap_or(Err(WalError::Closed))
    }

    /// Next seq to be assigned; everything below it is durable.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// Oldest seq still present on disk (== `durable_seq()` if the log is empty).
    pub fn first_seq(&self) -> u64 {
        oldest_seq(&self.shared.segments.lock())
    }

    /// Reads durable records whose range ends after `from_seq` (the record
    /// containing `from_seq` is included), in order, up to the durable end as
    /// of this call. Reads the files independently of the writer. Seqs may
    /// jump where recovery found acknowledged records lost.
    pub fn read_from(&self, from_seq: u64) -> Result<WalReader, WalError> {
        // Load the durable end first: every segment holding records below it
        // is then already in the list.
        let end_seq = self.durable_seq();
        let segments = self.shared.segments.lock().clone();
        WalReader::new(segments, from_seq, end_seq)
    }

    /// Deletes whole segments all of whose records end at or below `seq`
    /// (i.e. every consumer has processed them). Never deletes the active
    /// segment. Returns how many segments were deleted.
    pub fn truncate_before(&self, seq: u64) -> Result<usize, WalError> {
        let victims: Vec<SegmentEntry> = {
            let mut segs = self.shared.segments.lock();
            let closed = segs.len().saturating_sub(1);
            let n = segs[..closed]
                .iter()
                .take_while(|s| s.end_seq <= seq)
                .count();
            segs.drain(..n).collect()
        };
        if victims.is_empty() {
            return Ok(0);
        }
        // Deleted outside the lock so the writer is never held up. A segment
        // whose removal fails reappears after a restart and is deleted again.
        let mut first_err = None;
        for s in &victims {
            match fs::remove_file(&s.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    let err = WalError::io("delete segment", &s.path, e);
                    tracing::error!(error = %err, "failed to delete consumed wal segment");
                    first_err.get_or_insert(err);
                }
            }
        }
        sync_dir(&self.shared.dir)?;
        if let Some(err) = first_err {
            return Err(err);
        }
        tracing::info!(
            segments = victims.len(),
            below_seq = seq,
            first_seq = self.first_seq(),
            "deleted consumed wal segments"
        );
        Ok(victims.len())
    }

    /// Durable bytes on disk and segment count.
    pub fn disk_usage(&self) -> WalDiskUsage {
        let segs = self.shared.segments.lock();
        WalDiskUsage {
            bytes: segs.iter().map(|s| s.bytes).sum(),
            segments: segs.len(),
        }
    }

    /// Refuses further appends, lets the writer commit everything queued and
    /// waits for it to stop. Called from an append callback it does not wait
    /// (the writer stops after the current group). Idempotent.
    pub fn close(&self) {
        self.shared.queue.lock().closed = true;
        self.shared.wake.notify_all();
        if thread::current().id() == self.writer_id {
            return;
        }
        // Held while joining so that a concurrent close also waits.
        let mut writer = self.writer.lock();
        let Some(handle) = writer.take() else {
            return;
        };
        if handle.join().is_err() {
            tracing::error!("wal writer thread panicked");
        }
    }

    #[cfg(test)]
    pub(crate) fn faults(&self) -> &Faults {
        &self.shared.faults
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

/// Oldest seq held by a segment list: the first segment with records, else
/// the active segment's first seq.
pub(crate) fn oldest_seq(segments: &[SegmentEntry]) -> u64 {
    segments
        .iter()
        .find(|s| s.end_seq > s.first_seq)
        .or(segments.last())
        .map_or(0, |s| s.first_seq)
}
