//! Recovery: torn tails, corruption in the last and in middle segments, bad
//! headers, records overlapping the next segment.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use super::*;
use crate::format::{parse_segment_file_name, HEADER_LEN, RECORD_HEADER_LEN};
use crate::{Damage, HeaderDamage};

/// Writes records 0..n (one event each) into a single large segment.
fn single_segment(dir: &Path, n: u64) -> PathBuf {
    let (wal, _) = open(dir, 1 << 20);
    append_n(&wal, 0, n, |_| 1);
    drop(wal);
    let files = segment_files(dir);
    assert_eq!(files.len(), 1);
    files[0].clone()
}

/// Offset of record `i` in a segment whose first record is `first` (one
/// event per record, payloads from `payload`).
fn record_offset(first: u64, i: u64) -> u64 {
    HEADER_LEN as u64
        + (first..i)
            .map(|s| (RECORD_HEADER_LEN + payload(s).len()) as u64)
            .sum::<u64>()
}

fn flip_byte(path: &Path, offset: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x40;
    f.write_all_at(&b, offset).unwrap();
}

fn seg_start(p: &Path) -> u64 {
    parse_segment_file_name(p.file_name().unwrap().to_str().unwrap()).unwrap()
}

#[test]
fn torn_tail_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let seg = single_segment(dir.path(), 20);
    let len = file_len(&seg);
    let last = record_offset(0, 19);
    assert_eq!(len, record_offset(0, 20));
    // Cut in the middle of the last record's payload.
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();

    let (wal, report) = open(dir.path(), 1 << 20);
    assert_eq!(report.truncated.len(), 1);
    let t = &report.truncated[0];
    assert_eq!(t.path, seg);
    assert_eq!(t.reason, Damage::IncompleteRecord);
    assert_eq!((t.offset, t.bytes_cut), (last, len - 7 - last));
    assert!(t.last_segment);
    assert_eq!(t.lost, None);
    assert_eq!((report.records, report.next_seq), (19, 19));
    assert_eq!(file_len(&seg), last);

    let records = read_all(&wal, 0);
    assert_eq!(records.len(), 19);
    for r in &records {
        assert_eq!(r.payload, payload(r.first_seq));
    }
    let a = wal.append_blocking(payload(19), 1).unwrap();
    assert_eq!(a.first_seq, 19);
    drop(wal);

    let (wal, report) = open(dir.path(), 1 << 20);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(read_all(&wal, 0).len(), 20);
}

#[test]
fn torn_record_header_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let seg = single_segment(dir.path(), 5);
    let last = record_offset(0, 4);
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(last + 9).unwrap();
    let (wal, report) = open(dir.path(), 1 << 20);
    assert_eq!(report.truncated[0].reason, Damage::IncompleteRecord);
    assert_eq!(report.truncated[0].bytes_cut, 9);
    assert_eq!(wal.durable_seq(), 4);
}

#[test]
fn corrupted_byte_in_last_record_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let seg = single_segment(dir.path(), 10);
    let len = file_len(&seg);
    flip_byte(&seg, len - 3);
    let (wal, report) = open(dir.path(), 1 << 20);
    assert_eq!(report.truncated.len(), 1);
    let t = &report.truncated[0];
    assert_eq!(t.reason, Damage::ChecksumMismatch);
    assert_eq!(t.offset, record_offset(0, 9));
    assert_eq!(t.bytes_cut, len - record_offset(0, 9));
    assert_eq!(report.next_seq, 9);
    assert_eq!(read_all(&wal, 0).len(), 9);
    assert_eq!(wal.append_blocking(b"x".to_vec(), 1).unwrap().first_seq, 9);
}

#[test]
fn corrupted_seq_field_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let seg = single_segment(dir.path(), 10);
    // first_seq field of record 5 (checksum covers it).
    flip_byte(&seg, record_offset(0, 5) + 8);
    let (_wal, report) = open(dir.path(), 1 << 20);
    assert_eq!(report.truncated[0].reason, Damage::ChecksumMismatch);
    assert_eq!(report.next_seq, 5);
}

#[test]
fn corruption_in_middle_segment_reports_lost_range() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = open(dir.path(), 1024);
        append_n(&wal, 0, 100, |_| 1);
    }
    let files = segment_files(dir.path());
    assert!(files.len() > 5);
    let (bad, next) = (&files[2], &files[3]);
    let (start, next_start) = (seg_start(bad), seg_start(next));
    assert!(next_start - start >= 2);
    // Damage the payload of the segment's second record.
    let off = record_offset(start, start + 1);
    flip_byte(bad, off + RECORD_HEADER_LEN as u64 + 4);

    let (wal, report) = open(dir.path(), 1024);
    assert_eq!(report.truncated.len(), 1);
    let t = &report.truncated[0];
    assert_eq!(t.path, *bad);
    assert!(!t.last_segment);
    assert_eq!(t.reason, Damage::ChecksumMismatch);
    assert_eq!(t.offset, off);
    assert_eq!(t.lost, Some(start + 1..next_start));
    assert_eq!(report.gaps, vec![start + 1..next_start]);
    assert_eq!(report.next_seq, 100);
    assert_eq!(report.records, 100 - (next_start - start - 1));

    // Later segments are still readable; the reader jumps over the gap.
    let records = read_all(&wal, 0);
    let seqs: Vec<u64> = records.iter().map(|r| r.first_seq).collect();
    let expected: Vec<u64> = (0..100)
        .filter(|s| !(start + 1..next_start).contains(s))
        .collect();
    assert_eq!(seqs, expected);
    for r in &records {
        assert_eq!(r.payload, payload(r.first_seq));
    }
    // Reading from inside the gap starts at the next segment.
    assert_eq!(read_all(&wal, start + 1)[0].first_seq, next_start);
    assert_eq!(
        wal.append_blocking(b"x".to_vec(), 1).unwrap().first_seq,
        100
    );
}

#[test]
fn bad_header_in_middle_segment_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = open(dir.path(), 1024);
        append_n(&wal, 0, 100, |_| 1);
    }
    let files = segment_files(dir.path());
    let bad = &files[1];
    let (start, next_start) = (seg_start(bad), seg_start(&files[2]));
    flip_byte(bad, 0);

    let (wal, report) = open(dir.path(), 1024);
    assert_eq!(report.moved_aside.len(), 1);
    let m = &report.moved_aside[0];
    assert_eq!(m.path, *bad);
    assert_eq!(m.reason, HeaderDamage::BadMagic);
    assert_eq!(m.seqs, start..next_start);
    assert!(m.moved_to.exists());
    assert!(m.moved_to.to_str().unwrap().ends_with(".wal.corrupt"));
    assert!(!bad.exists());
    assert_eq!(report.gaps, vec![start..next_start]);
    let records = read_all(&wal, 0);
    assert_eq!(records.len() as u64, 100 - (next_start - start));
    assert_eq!(
        wal.append_blocking(b"x".to_vec(), 1).unwrap().first_seq,
        100
    );
}

#[test]
fn bad_header_in_last_segment_never_reuses_seqs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = open(dir.path(), 1024);
        append_n(&wal, 0, 50, |_| 1);
    }
    let files = segment_files(dir.path());
    let last = files.last().unwrap();
    let start = seg_start(last);
    assert!(start < 50);
    flip_byte(last, 14); // inside the header's seq field

    let (wal, report) = open(dir.path(), 1024);
    assert_eq!(report.moved_aside.len(), 1);
    assert_eq!(report.moved_aside[0].reason, HeaderDamage::ChecksumMismatch);
    assert_eq!(report.moved_aside[0].seqs, start..50);
    assert_eq!(report.next_seq, 50);
    assert_eq!(report.gaps, vec![start..50]);
    assert_eq!(read_all(&wal, 0).len() as u64, start);
    assert_eq!(wal.append_blocking(b"x".to_vec(), 1).unwrap().first_seq, 50);
    drop(wal);
    let (wal, report) = open(dir.path(), 1024);
    assert_eq!(report.next_seq, 51);
    assert_eq!(report.gaps, vec![start..50]);
    assert_eq!(read_all(&wal, 0).len() as u64, start + 1);
}

#[test]
fn records_overlapping_next_segment_are_cut() {
    // Left over from a failed fsync whose truncation did not reach the disk:
    // the writer moved on to a segment starting at the last durable seq.
    let dir = tempfile::tempdir().unwrap();
    let seg = single_segment(dir.path(), 10);
    crate::segment::create_segment(dir.path(), 6, &crate::faults::Faults::default()).unwrap();

    let (wal, report) = open(dir.path(), 1 << 20);
    assert_eq!(report.truncated.len(), 1);
    let t = &report.truncated[0];
    assert_eq!(t.path, seg);
    assert_eq!(t.reason, Damage::OverlapsNextSegment { next_first_seq: 6 });
    assert_eq!(t.lost, None);
    assert!(report.gaps.is_empty());
    assert_eq!(file_len(&seg), record_offset(0, 6));
    assert_eq!(read_all(&wal, 0).len(), 6);
    assert_eq!(wal.append_blocking(b"x".to_vec(), 1).unwrap().first_seq, 6);
}

#[test]
fn garbage_segment_and_missing_dir() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/wal");
    let (wal, report) = open(&nested, 1 << 20);
    assert!(report.is_clean());
    drop(wal);
    // A truncated header (shorter than a header) is moved aside too.
    fs::write(nested.join("00000000000000000000.wal"), b"SAWM").unwrap();
    let (wal, report) = open(&nested, 1 << 20);
    assert_eq!(report.moved_aside[0].reason, HeaderDamage::Short);
    assert_eq!(report.next_seq, 0);
    assert_eq!(wal.append_blocking(b"x".to_vec(), 1).unwrap().first_seq, 0);
}

#[test]
fn random_garbage_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let seg = single_segment(dir.path(), 30);
    let good = fs::read(&seg).unwrap();
    // Overwrite a run of bytes at many positions with pseudo-random junk.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..40 {
        let mut bytes = good.clone();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = HEADER_LEN + (x as usize % (bytes.len() - HEADER_LEN));
        for b in bytes.iter_mut().skip(at).take(1 + round % 30) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        fs::write(&seg, &bytes).unwrap();
        let (wal, report) = open(dir.path(), 1 << 20);
        let records = read_all(&wal, 0);
        assert_eq!(records.len() as u64, report.records);
        assert_eq!(report.next_seq, report.records);
        drop(wal);
        // Reset: remove whatever recovery produced and restore the segment.
        for f in segment_files(dir.path()) {
            fs::remove_file(f).unwrap();
        }
        fs::write(&seg, &good).unwrap();
    }
}
