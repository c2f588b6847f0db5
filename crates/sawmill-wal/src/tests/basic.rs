//! Round trips, reopening, reading from the middle, truncation, validation.

use super::*;
use crate::format::HEADER_LEN;
use crate::WalError;

#[test]
fn round_trip_across_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, report) = open(dir.path(), 1024);
    assert!(report.is_clean());
    assert_eq!(
        (report.next_seq, report.first_seq, report.records),
        (0, 0, 0)
    );
    let written = append_n(&wal, 0, 200, |i| (i % 5 + 1) as u32);
    let usage = wal.disk_usage();
    assert!(usage.segments > 20, "only {} segments", usage.segments);
    assert_eq!(usage.segments, segment_files(dir.path()).len());
    let on_disk: u64 = segment_files(dir.path()).iter().map(|p| file_len(p)).sum();
    assert_eq!(usage.bytes, on_disk);

    let records = read_all(&wal, 0);
    assert_eq!(records.len(), 200);
    for (i, (r, (seq, count))) in records.iter().zip(&written).enumerate() {
        assert_eq!((r.first_seq, r.count), (*seq, *count));
        assert_eq!(r.payload, payload(i as u64));
    }
    assert_eq!(wal.durable_seq(), records.last().unwrap().end_seq());
    assert_eq!(wal.first_seq(), 0);
}

#[test]
fn oversized_record_gets_its_own_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 256);
    wal.append_blocking(vec![1; 10], 1).unwrap();
    wal.append_blocking(vec![2; 1000], 1).unwrap();
    wal.append_blocking(vec![3; 10], 1).unwrap();
    assert_eq!(wal.disk_usage().segments, 3);
    let records = read_all(&wal, 0);
    assert_eq!(records[1].payload, vec![2; 1000]);
    assert_eq!(records.len(), 3);
}

#[test]
fn reopen_continues_seqs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = open(dir.path(), 2048);
        append_n(&wal, 0, 50, |_| 3);
        wal.close();
        assert!(matches!(
            wal.append_blocking(b"late".to_vec(), 1),
            Err(WalError::Closed)
        ));
    }
    let (wal, report) = open(dir.path(), 2048);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.records, 50);
    assert_eq!(report.next_seq, 150);
    assert_eq!(wal.durable_seq(), 150);
    let a = wal.append_blocking(payload(50), 2).unwrap();
    assert_eq!((a.first_seq, a.end_seq), (150, 152));
    drop(wal);

    let (wal, report) = open(dir.path(), 2048);
    assert_eq!(report.next_seq, 152);
    let records = read_all(&wal, 0);
    assert_eq!(records.len(), 51);
    assert_eq!(records[50].payload, payload(50));
}

#[test]
fn read_from_middle_of_record_includes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1024);
    append_n(&wal, 0, 40, |_| 10); // record i covers [10i, 10i+10)
    let records = read_all(&wal, 125);
    assert_eq!(records[0].first_seq, 120);
    assert_eq!(records[0].payload, payload(12));
    assert_eq!(records.len(), 28);
    // Exactly at a record boundary: that record is first.
    assert_eq!(read_all(&wal, 130)[0].first_seq, 130);
    // At or past the end: nothing.
    assert!(read_all(&wal, 400).is_empty());
    assert!(read_all(&wal, 10_000).is_empty());
    let reader = wal.read_from(399).unwrap();
    assert_eq!(reader.end_seq(), 400);
    assert_eq!(reader.count(), 1);
}

#[test]
fn reader_stops_at_durable_end_of_creation() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1024);
    append_n(&wal, 0, 5, |_| 1);
    let reader = wal.read_from(0).unwrap();
    append_n(&wal, 5, 30, |_| 1);
    assert_eq!(reader.count(), 5);
    assert_eq!(read_all(&wal, 0).len(), 35);
}

#[test]
fn truncate_before_deletes_only_consumed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1024);
    append_n(&wal, 0, 60, |_| 2);
    let before = segment_files(dir.path());
    assert!(before.len() > 5);
    // Segment boundaries from the names.
    let starts: Vec<u64> = before
        .iter()
        .map(|p| {
            crate::format::parse_segment_file_name(p.file_name().unwrap().to_str().unwrap())
                .unwrap()
        })
        .collect();

    assert_eq!(wal.truncate_before(0).unwrap(), 0);
    // A seq inside the second segment deletes only the first one.
    assert_eq!(wal.truncate_before(starts[2] - 1).unwrap(), 1);
    assert_eq!(wal.first_seq(), starts[1]);
    // Exactly the end of the third segment deletes it too.
    assert_eq!(wal.truncate_before(starts[3]).unwrap(), 2);
    assert_eq!(wal.first_seq(), starts[3]);
    assert_eq!(segment_files(dir.path()), before[3..].to_vec());

    // Everything consumed: all but the active segment go.
    let n = wal.truncate_before(u64::MAX).unwrap();
    assert_eq!(n, before.len() - 4);
    let left = segment_files(dir.path());
    assert_eq!(left, vec![before.last().unwrap().clone()]);
    assert_eq!(wal.disk_usage().segments, 1);

    // Appends keep working; the active segment rolls later as usual.
    append_n(&wal, 60, 30, |_| 2);
    assert_eq!(wal.first_seq(), *starts.last().unwrap());
}

#[test]
fn read_from_after_truncate_returns_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1024);
    append_n(&wal, 0, 60, |_| 1);
    assert!(wal.truncate_before(30).unwrap() > 0);
    let first = wal.first_seq();
    assert!(first > 0 && first <= 30);
    let records = read_all(&wal, 0);
    assert_eq!(records[0].first_seq, first);
    assert_eq!(records.last().unwrap().end_seq(), 60);
    assert_eq!(records.len() as u64, 60 - first);
    for r in &records {
        assert_eq!(r.payload, payload(r.first_seq));
    }
    drop(wal);
    let (wal, report) = open(dir.path(), 1024);
    assert_eq!(report.first_seq, first);
    assert_eq!(wal.first_seq(), first);
}

#[test]
fn truncate_everything_when_empty_active() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1 << 20);
    assert_eq!(wal.truncate_before(u64::MAX).unwrap(), 0);
    assert_eq!(wal.disk_usage().segments, 1);
    assert_eq!(wal.disk_usage().bytes, HEADER_LEN as u64);
    assert!(read_all(&wal, 0).is_empty());
}

#[test]
fn invalid_appends_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = WalConfig::new(dir.path());
    config.max_record_bytes = 100;
    let (wal, _) = Wal::open(config).unwrap();
    assert!(matches!(
        wal.append_blocking(b"x".to_vec(), 0),
        Err(WalError::EmptyRecord)
    ));
    assert!(matches!(
        wal.append_blocking(vec![0; 101], 1),
        Err(WalError::RecordTooLarge { len: 101, max: 100 })
    ));
    // Nothing was consumed.
    let a = wal.append_blocking(vec![0; 100], 1).unwrap();
    assert_eq!(a.first_seq, 0);
    assert!(WalError::EmptyRecord.to_string().starts_with("record must"));
}

#[test]
fn empty_payload_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1 << 20);
    wal.append_blocking(Vec::new(), 1).unwrap();
    let r = read_all(&wal, 0);
    assert_eq!(r[0].payload, Vec::<u8>::new());
}

#[test]
fn stray_files_are_ignored_and_tmp_files_removed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = open(dir.path(), 1024);
        append_n(&wal, 0, 10, |_| 1);
    }
    fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    fs::write(dir.path().join("7.wal"), "bad name").unwrap();
    fs::create_dir(dir.path().join("00000000000000000099.wal")).unwrap();
    let tmp = dir.path().join("00000000000000000010.wal.tmp");
    fs::write(&tmp, "partial").unwrap();
    let (wal, report) = open(dir.path(), 1024);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.next_seq, 10);
    assert!(!tmp.exists());
    assert!(dir.path().join("notes.txt").exists());
    assert_eq!(read_all(&wal, 0).len(), 10);
}

#[test]
fn panicking_callback_does_not_kill_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 1 << 20);
    wal.append(b"a".to_vec(), 1, Box::new(|_| panic!("callback bug")));
    let a = wal.append_blocking(b"b".to_vec(), 1).unwrap();
    assert_eq!(a.first_seq, 1);
}

#[test]
fn wal_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Wal>();
    check::<crate::WalReader>();
}
