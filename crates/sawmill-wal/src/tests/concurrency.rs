//! Many appending threads: contiguous seqs, callback order, group commit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;

use parking_lot::Mutex;

use super::*;
use crate::Appended;

const THREADS: u64 = 8;

fn thread_payload(t: u64, i: u64) -> Vec<u8> {
    let mut p = payload(t * 100_000 + i);
    p.extend_from_slice(format!("/t{t}/i{i}").as_bytes());
    p
}

fn open_counting(dir: &Path, segment_bytes: u64) -> (Wal, Arc<AtomicU64>) {
    let fsyncs = Arc::new(AtomicU64::new(0));
    let mut config = WalConfig::new(dir);
    config.segment_bytes = segment_bytes;
    let counter = fsyncs.clone();
    config.on_fsync = Some(Arc::new(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    }));
    let (wal, _) = Wal::open(config).unwrap();
    (wal, fsyncs)
}

/// Checks that the appended ranges tile `[0, total)` and that each record
/// reads back with its own payload.
fn check_tiling(wal: &Wal, results: Vec<(u64, u64, u32, Appended)>) {
    let mut by_seq: HashMap<u64, (u64, u64, u32)> = HashMap::new();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for (t, i, count, a) in results {
        assert_eq!(a.end_seq - a.first_seq, u64::from(count));
        ranges.push((a.first_seq, a.end_seq));
        by_seq.insert(a.first_seq, (t, i, count));
    }
    ranges.sort_unstable();
    let mut expect = 0;
    for (start, end) in &ranges {
        assert_eq!(*start, expect, "ranges overlap or leave a gap");
        expect = *end;
    }
    assert_eq!(wal.durable_seq(), expect);
    let records = read_all(wal, 0);
    assert_eq!(records.len(), ranges.len());
    for r in records {
        let (t, i, count) = by_seq[&r.first_seq];
        assert_eq!(r.count, count);
        assert_eq!(r.payload, thread_payload(t, i));
    }
}

#[test]
fn concurrent_blocking_appenders_get_contiguous_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, fsyncs) = open_counting(dir.path(), 16 << 10);
    let wal = Arc::new(wal);
    let per_thread = 150;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = wal.clone();
            thread::spawn(move || {
                (0..per_thread)
                    .map(|i| {
                        let count = (i % 7 + 1) as u32;
                        let a = wal.append_blocking(thread_payload(t, i), count).unwrap();
                        (t, i, count, a)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(results.len() as u64, THREADS * per_thread);
    check_tiling(&wal, results);
    assert!(fsyncs.load(Ordering::Relaxed) <= THREADS * per_thread);
}

#[test]
fn group_commit_batches_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, fsyncs) = open_counting(dir.path(), 64 << 20);
    // Slow fsyncs down a little so the test does not depend on disk speed.
    wal.faults().sync_delay_us.store(2000, Ordering::Relaxed);
    let wal = Arc::new(wal);
    let per_thread = 100;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = wal.clone();
            thread::spawn(move || {
                for i in 0..per_thread {
                    wal.append_blocking(thread_payload(t, i), 1).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let records = THREADS * per_thread;
    let n = fsyncs.load(Ordering::Relaxed);
    assert!(n * 3 <= records, "{n} fsyncs for {records} records");
}

#[test]
fn pipelined_appends_are_batched_and_called_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, fsyncs) = open_counting(dir.path(), 1 << 20);
    let wal = Arc::new(wal);
    let per_thread = 500;
    let order = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (wal, order, tx) = (wal.clone(), order.clone(), tx.clone());
            thread::spawn(move || {
                for i in 0..per_thread {
                    let (order, tx) = (order.clone(), tx.clone());
                    let count = (i % 3 + 1) as u32;
                    wal.append(
                        thread_payload(t, i),
                        count,
                        Box::new(move |r| {
                            let a = r.unwrap();
                            order.lock().push(a.first_seq);
                            tx.send((t, i, count, a)).unwrap();
                        }),
                    );
                }
            })
        })
        .collect();
    drop(tx);
    for h in handles {
        h.join().unwrap();
    }
    let results: Vec<_> = rx.iter().collect();
    let total = THREADS * per_thread;
    assert_eq!(results.len() as u64, total);
    // Callbacks ran in WAL order.
    let order = order.lock().clone();
    assert!(order.windows(2).all(|w| w[0] < w[1]));
    check_tiling(&wal, results);
    let n = fsyncs.load(Ordering::Relaxed);
    assert!(n * 10 <= total, "{n} fsyncs for {total} records");
}

#[test]
fn close_flushes_queued_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1 << 20);
    let done = Arc::new(AtomicU64::new(0));
    for i in 0..1000 {
        let done = done.clone();
        wal.append(
            payload(i),
            1,
            Box::new(move |r| {
                r.unwrap();
                done.fetch_add(1, Ordering::SeqCst);
            }),
        );
    }
    wal.close();
    assert_eq!(done.load(Ordering::SeqCst), 1000);
    drop(wal);
    let (wal, report) = open(dir.path(), 1 << 20);
    assert_eq!(report.next_seq, 1000);
    assert_eq!(read_all(&wal, 0).len(), 1000);
}

#[test]
fn callbacks_may_read_and_close_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1 << 20);
    let wal = Arc::new(wal);
    let (tx, rx) = mpsc::channel();
    let w = wal.clone();
    wal.append(
        b"first".to_vec(),
        1,
        Box::new(move |r| {
            let a = r.unwrap();
            // The record is durable and visible to readers inside its callback.
            let seen = w.read_from(a.first_seq).unwrap().count();
            w.close();
            tx.send(seen).unwrap();
        }),
    );
    assert_eq!(rx.recv().unwrap(), 1);
    assert!(matches!(
        wal.append_blocking(b"x".to_vec(), 1),
        Err(crate::WalError::Closed)
    ));
}
