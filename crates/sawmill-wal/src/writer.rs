//! The writer thread: group commit into the active segment.
//!
//! Appenders push [`Pending`] records onto a queue and wake the writer. The
//! writer takes everything queued, assigns seqs in queue order, writes the
//! records with vectored writes (no copy of the payloads), fsyncs once and only
//! then publishes the new durable seq and runs the callbacks in WAL order.
//! Records arriving meanwhile form the next group. A group is split only where
//! it crosses a segment boundary (one fsync per segment touched).
//!
//! Failures:
//! - write error (e.g. disk full): the segment is truncated back to its durable
//!   length, the rest of the group fails, seqs are not consumed. If even the
//!   truncation fails, the segment is abandoned and the next group rolls to a
//!   new one.
//! - fsync error: the group fails and its tail is truncated (best effort). The
//!   kernel may have dropped the dirty pages and cleared the error, so a later
//!   fsync of the same file proves nothing; the writer therefore never writes
//!   to that file again and rolls to a fresh segment starting at the durable
//!   seq. Should the failed records survive a crash anyway, recovery cuts them
//!   because they overlap the next segment.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::WalError;
use crate::faults::{FaultOp, Faults};
use crate::format::{encode_record_header, HEADER_LEN, RECORD_HEADER_LEN};
use crate::segment::{create_segment, SegmentEntry};
use crate::wal::Appended;

/// Completion callback of an append.
pub(crate) type Callback = Box<dyn FnOnce(Result<Appended, WalError>) + Send>;

/// A queued append.
pub(crate) struct Pending {
    pub payload: Vec<u8>,
    /// CRC-32 state of the payload alone, computed by the appending thread.
    pub payload_crc: crc32fast::Hasher,
    pub count: u32,
    pub done: Callback,
}

impl Pending {
    fn disk_len(&self) -> u64 {
        (RECORD_HEADER_LEN + self.payload.len()) as u64
    }
}

#[derive(Default)]
pub(crate) struct Queue {
    pub items: Vec<Pending>,
    pub closed: bool,
}

/// State shared by the `Wal` handle, the writer thread and readers.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub segment_bytes: u64,
    pub max_record_bytes: u32,
    pub on_fsync: Option<Arc<dyn Fn(Duration) + Send + Sync>>,
    pub queue: Mutex<Queue>,
    pub wake: Condvar,
    /// Everything below is fsynced.
    pub durable_seq: AtomicU64,
    /// Live segments in seq order; the last one is active.
    pub segments: Mutex<Vec<SegmentEntry>>,
    pub faults: Faults,
}

struct Active {
    file: File,
    path: PathBuf,
    first_seq: u64,
    /// Durable length; the file never holds more once a group has finished.
    len: u64,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    active: Active,
    next_seq: u64,
    /// The active segment must not be written again (failed fsync or failed
    /// repair); roll before the next write.
    must_roll: bool,
    headers: Vec<[u8; RECORD_HEADER_LEN]>,
}

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>, file: File) -> Self {
        let (path, first_seq, len, next_seq) = {
            let segs = shared.segments.lock();
            // Invariant: recovery always leaves an active segment.
            let last = segs.last().expect("segment list is never empty");
            (last.path.clone(), last.first_seq, last.bytes, last.end_seq)
        };
        Writer {
            shared,
            active: Active {
                file,
                path,
                first_seq,
                len,
            },
            next_seq,
            must_roll: false,
            headers: Vec::new(),
        }
    }

    /// Runs until the queue is closed and drained.
    pub(crate) fn run(mut self) {
        let shared = self.shared.clone();
        let _guard = CloseOnExit(&shared);
        let mut group = Vec::new();
        loop {
            {
                let mut q = self.shared.queue.lock();
                while q.items.is_empty() && !q.closed {
                    self.shared.wake.wait(&mut q);
                }
                if q.items.is_empty() {
                    break;
                }
                std::mem::swap(&mut q.items, &mut group);
            }
            self.commit_group(&mut group);
        }
        tracing::debug!(next_seq = self.next_seq, "wal writer stopped");
    }

    fn commit_group(&mut self, group: &mut Vec<Pending>) {
        while let Some(first) = group.first() {
            let has_records = self.active.len > HEADER_LEN as u64;
            if self.must_roll
                || (has_records && self.active.len + first.disk_len() > self.shared.segment_bytes)
            {
                if let Err(e) = self.roll() {
                    fail_all(group.drain(..), &e);
                    return;
                }
            }
            // Take records while they fit in the segment (always at least one).
            let mut n = 0;
            let mut bytes = 0;
            for p in group.iter() {
                if n > 0 && self.active.len + bytes + p.disk_len() > self.shared.segment_bytes {
                    break;
                }
                bytes += p.disk_len();
                n += 1;
            }
            match self.write_batch(&group[..n], bytes) {
                Ok(first_seq) => {
                    let mut seq = first_seq;
                    for p in group.drain(..n) {
                        let end_seq = seq + u64::from(p.count);
                        notify(
                            p.done,
                            Ok(Appended {
                                first_seq: seq,
                                end_seq,
                            }),
                        );
                        seq = end_seq;
                    }
                }
                Err(e) => {
                    fail_all(group.drain(..), &e);
                    return;
                }
            }
        }
    }

    /// Writes and fsyncs records into the active segment; returns the first seq.
    fn write_batch(&mut self, batch: &[Pending], bytes: u64) -> Result<u64, WalError> {
        let first_seq = self.next_seq;
        let mut seq = first_seq;
        self.headers.clear();
        for p in batch {
            // The payload length fits in u32: append checks it against max_record_bytes.
            let len = p.payload.len() as u32;
            self.headers
                .push(encode_record_header(seq, p.count, len, &p.payload_crc));
            seq = seq
                .checked_add(u64::from(p.count))
                .ok_or(WalError::SeqOverflow)?;
        }
        let mut slices = Vec::with_capacity(batch.len() * 2);
        for (h, p) in self.headers.iter().zip(batch) {
            slices.push(IoSlice::new(h));
            slices.push(IoSlice::new(&p.payload));
        }

        let written = write_slices(&mut self.active.file, &self.shared.faults, &mut slices);
        drop(slices);
        if let Err(e) = written {
            let err = WalError::io("write to segment", &self.active.path, e);
            tracing::error!(path = %self.active.path.display(), error = %err, "wal write failed");
            self.discard_tail();
            return Err(err);
        }

        let started = Instant::now();
        let synced = self
            .shared
            .faults
            .check(FaultOp::Sync)
            .and_then(|()| self.active.file.sync_data());
        let took = started.elapsed();
        if let Err(e) = synced {
            let err = WalError::io("fsync segment", &self.active.path, e);
            tracing::error!(
                path = %self.active.path.display(), error = %err,
                "wal fsync failed, rolling to a new segment"
            );
            self.discard_tail();
            self.must_roll = true;
            return Err(err);
        }

        self.active.len += bytes;
        self.next_seq = seq;
        self.shared.durable_seq.store(seq, Ordering::Release);
        if let Some(last) = self.shared.segments.lock().last_mut() {
            last.end_seq = seq;
            last.bytes = self.active.len;
        }
        if let Some(observe) = &self.shared.on_fsync {
            if catch_unwind(AssertUnwindSafe(|| observe(took))).is_err() {
                tracing::error!("wal fsync observer panicked");
            }
        }
        Ok(first_seq)
    }

    /// Cuts the active segment back to its durable length after a failed
    /// group. The file is in append mode, so the next write lands right there.
    fn discard_tail(&mut self) {
        if let Err(e) = self.active.file.set_len(self.active.len) {
            tracing::error!(
                path = %self.active.path.display(), error = %e,
                "failed to truncate wal segment after a failed write, abandoning it"
            );
            self.must_roll = true;
        }
    }

    /// Switches to a new segment starting at the next seq. A segment without
    /// durable records has the same name and is replaced.
    fn roll(&mut self) -> Result<(), WalError> {
        let (file, path) = create_segment(&self.shared.dir, self.next_seq, &self.shared.faults)
            .inspect_err(|e| {
                tracing::error!(error = %e, "failed to create wal segment");
            })?;
        let replaced = self.active.first_seq == self.next_seq;
        {
            let mut segs = self.shared.segments.lock();
            let entry = SegmentEntry {
                path: path.clone(),
                first_seq: self.next_seq,
                end_seq: self.next_seq,
                bytes: HEADER_LEN as u64,
            };
            match segs.last_mut() {
                Some(last) if replaced => *last = entry,
                _ => segs.push(entry),
            }
        }
        tracing::debug!(path = %path.display(), first_seq = self.next_seq, "rolled wal segment");
        self.active = Active {
            file,
            path,
            first_seq: self.next_seq,
            len: HEADER_LEN as u64,
        };
        self.must_roll = false;
        Ok(())
    }
}

/// Writes all slices (`writev`, at most `IOV_MAX` slices per call).
fn write_slices(
    file: &mut File,
    faults: &Faults,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    if let Err(e) = faults.check(FaultOp::Write) {
        // Simulate a torn write: part of the group reaches the file.
        if let Some(first) = slices.first() {
            file.write_all(&first[..first.len() / 2])?;
        }
        return Err(e);
    }
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Closes the queue and fails whatever is left when the writer stops, even by
/// a panic, so that no appender waits forever.
struct CloseOnExit<'a>(&'a Shared);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        let left = {
            let mut q = self.0.queue.lock();
            q.closed = true;
            std::mem::take(&mut q.items)
        };
        fail_all(left.into_iter(), &WalError::Closed);
    }
}

fn fail_all(items: impl Iterator<Item = Pending>, err: &WalError) {
    for p in items {
        notify(p.done, Err(err.clone()));
    }
}

/// Runs a callback; a panicking callback is logged and must not take the
/// writer thread (and with it every later append) down.
pub(crate) fn notify(done: Callback, result: Result<Appended, WalError>) {
    if catch_unwind(AssertUnwindSafe(move || done(result))).is_err() {
        tracing::error!("wal append callback panicked");
    }
}
