//! Injected write, fsync and segment creation failures.

use std::io::ErrorKind;
use std::sync::atomic::Ordering;

use super::*;

fn check_contents(dir: &Path, segment_bytes: u64, n: u64) {
    let (wal, report) = open(dir, segment_bytes);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.next_seq, n);
    let records = read_all(&wal, 0);
    assert_eq!(records.len() as u64, n);
    for r in records {
        assert_eq!(r.payload, payload(r.first_seq));
    }
}

#[test]
fn write_failure_leaves_wal_consistent_and_usable() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1 << 20);
    append_n(&wal, 0, 10, |_| 1);
    let seg = segment_files(dir.path())[0].clone();
    let len = file_len(&seg);

    wal.faults().fail_writes.store(1, Ordering::SeqCst);
    let err = wal.append_blocking(payload(100), 1).unwrap_err();
    assert_eq!(err.io_kind(), Some(ErrorKind::StorageFull));
    assert!(err.to_string().contains("write to segment"), "{err}");
    // The torn record was cut off again and no seq was consumed.
    assert_eq!(file_len(&seg), len);
    assert_eq!(wal.durable_seq(), 10);
    assert_eq!(read_all(&wal, 0).len(), 10);
    assert_eq!(wal.disk_usage().bytes, len);

    // Space is back: appends continue with the next seq in the same segment.
    append_n(&wal, 10, 10, |_| 1);
    assert_eq!(segment_files(dir.path()).len(), 1);
    drop(wal);
    check_contents(dir.path(), 1 << 20, 20);
}

#[test]
fn fsync_failure_rolls_to_fresh_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1 << 20);
    append_n(&wal, 0, 10, |_| 1);
    let seg = segment_files(dir.path())[0].clone();
    let len = file_len(&seg);

    wal.faults().fail_syncs.store(1, Ordering::SeqCst);
    let err = wal.append_blocking(payload(100), 1).unwrap_err();
    assert!(err.to_string().contains("fsync segment"), "{err}");
    assert_eq!(wal.durable_seq(), 10);
    assert_eq!(file_len(&seg), len);

    append_n(&wal, 10, 5, |_| 1);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 2);
    assert!(files[1].ends_with("00000000000000000010.wal"));
    assert_eq!(file_len(&seg), len, "old segment must not be written again");
    drop(wal);
    check_contents(dir.path(), 1 << 20, 15);
}

#[test]
fn fsync_failure_on_empty_segment_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1 << 20);
    wal.faults().fail_syncs.store(1, Ordering::SeqCst);
    assert!(wal.append_blocking(payload(0), 1).is_err());
    append_n(&wal, 0, 3, |_| 1);
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert_eq!(wal.disk_usage().segments, 1);
    drop(wal);
    check_contents(dir.path(), 1 << 20, 3);
}

#[test]
fn segment_creation_failure_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 200);
    append_n(&wal, 0, 2, |_| 1);
    let segments = wal.disk_usage().segments;
    let active = segment_files(dir.path()).pop().unwrap();
    assert!(file_len(&active) > 24, "active segment holds records");
    assert!(
        file_len(&active) + 20 + payload(2).len() as u64 > 200,
        "next append must roll"
    );

    wal.faults().fail_creates.store(1, Ordering::SeqCst);
    let err = wal.append_blocking(payload(2), 1).unwrap_err();
    assert_eq!(err.io_kind(), Some(ErrorKind::StorageFull));
    assert_eq!(wal.disk_usage().segments, segments);
    assert_eq!(wal.durable_seq(), 2);
    // No leftover temporary file.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".wal")), "{names:?}");

    append_n(&wal, 2, 5, |_| 1);
    drop(wal);
    check_contents(dir.path(), 200, 7);
}

#[test]
fn fsync_failure_then_creation_failure_keeps_old_segment_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1 << 20);
    append_n(&wal, 0, 4, |_| 1);
    let seg = segment_files(dir.path())[0].clone();
    let len = file_len(&seg);
    wal.faults().fail_syncs.store(1, Ordering::SeqCst);
    wal.faults().fail_creates.store(1, Ordering::SeqCst);
    assert!(wal.append_blocking(payload(4), 1).is_err()); // fsync fails
    assert!(wal.append_blocking(payload(4), 1).is_err()); // roll fails
    append_n(&wal, 4, 4, |_| 1); // roll succeeds
    assert_eq!(file_len(&seg), len);
    assert_eq!(segment_files(dir.path()).len(), 2);
    drop(wal);
    check_contents(dir.path(), 1 << 20, 8);
}
