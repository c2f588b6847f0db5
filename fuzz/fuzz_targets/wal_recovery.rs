//! `sawmill_wal`: recovery of a log directory whose segment files are made from the input.
//!
//! The crate parses segment and record frames only privately (`format`, `recovery`,
//! `reader`), so this target goes through the public API: it writes up to three segment
//! files (well-formed headers and records with correct checksums, then damaged as the input
//! says: bad header fields, wrong checksums, wrong seqs, zero counts, flipped bytes,
//! truncation, trailing garbage) into a fresh directory (in /dev/shm when it exists), opens
//! the log with `Wal::open`, reads everything back, reopens it and appends.
//!
//! Properties:
//! - `Wal::open` succeeds on any content (damage is repaired, not an error);
//! - reading from seq 0 yields exactly `report.records` records without an error, each one
//!   of the records that were written (same seq, count and payload), in seq order,
//!   contiguous except across the gaps the report lists (several in a row across empty
//!   segments);
//! - `durable_seq()` is `report.next_seq` and `first_seq()` is `report.first_seq`;
//! - a second open finds nothing more to cut or move aside, and the same records, gaps and
//!   next seq;
//! - an append then gets seq `next_seq` (or `SeqOverflow` when the seqs would overflow) and
//!   is read back.
#![no_main]

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use sawmill_wal::{Record, Wal, WalConfig, WalError};

const MAGIC: &[u8; 8] = b"SAWMWAL\0";

#[derive(Arbitrary, Debug)]
enum Seq {
    /// Where the previous segment or record ends.
    Next,
    /// A small number.
    Small(u8),
    /// Near the end of the u64 range.
    Huge(u8),
    Any(u64),
}

impl Seq {
    fn value(&self, next: u64) -> u64 {
        match self {
            Seq::Next => next,
            Seq::Small(n) => u64::from(*n),
            Seq::Huge(n) => u64::MAX - u64::from(*n),
            Seq::Any(n) => *n,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Header {
    Good,
    BadMagic,
    BadVersion(u32),
    BadCrc,
    /// The header names another seq than the file name.
    OtherSeq(u64),
    /// Only the first bytes of a header.
    Short(u8),
}

#[derive(Arbitrary, Debug)]
struct Rec {
    seq: Seq,
    count: u8,
    payload: Vec<u8>,
    bad_crc: bool,
}

#[derive(Arbitrary, Debug)]
struct Segment {
    name: Seq,
    header: Header,
    records: Vec<Rec>,
    garbage: Vec<u8>,
    /// Flip one bit at this position (modulo the length).
    flip: Option<(u16, u8)>,
    /// Cut the file at this position (modulo the length + 1).
    cut: Option<u16>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    segments: Vec<Segment>,
    stray_tmp: bool,
    append: (u8, Vec<u8>),
}

fn header_bytes(seq: u64, h: &Header) -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(if matches!(h, Header::BadMagic) {
        b"SAWMWAL1"
    } else {
        MAGIC
    });
    let version = match h {
        Header::BadVersion(v) if *v != 1 => *v,
        Header::BadVersion(_) => 2,
        _ => 1,
    };
    b.extend_from_slice(&version.to_le_bytes());
    let seq = match h {
        Header::OtherSeq(s) => *s,
        _ => seq,
    };
    b.extend_from_slice(&seq.to_le_bytes());
    let mut crc = crc32(&b);
    if matches!(h, Header::BadCrc) {
        crc ^= 0x8000_0001;
    }
    b.extend_from_slice(&crc.to_le_bytes());
    if let Header::Short(n) = h {
        b.truncate(usize::from(*n) % 24);
    }
    b
}

fn crc32(data: &[u8]) -> u32 {
    // CRC-32 (IEEE), bitwise: the harness must not share code with the crate it checks.
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn record_bytes(first_seq: u64, count: u32, payload: &[u8], bad_crc: bool) -> Vec<u8> {
    let mut checked = Vec::with_capacity(12 + payload.len());
    checked.extend_from_slice(&first_seq.to_le_bytes());
    checked.extend_from_slice(&count.to_le_bytes());
    checked.extend_from_slice(payload);
    let mut crc = crc32(&checked);
    if bad_crc {
        crc ^= 1;
    }
    let mut b = Vec::with_capacity(20 + payload.len());
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(&first_seq.to_le_bytes());
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(payload);
    b
}

fn scratch_dir() -> tempfile::TempDir {
    let base = Path::new("/dev/shm");
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("sawmill-fuzz-wal-");
        b
    };
    if base.is_dir() {
        if let Ok(dir) = builder.tempdir_in(base) {
            return dir;
        }
    }
    builder.tempdir().expect("create a temporary directory")
}

fn read_all(wal: &Wal) -> Vec<Record> {
    wal.read_from(0)
        .expect("read_from(0)")
        .map(|r| r.unwrap_or_else(|e| panic!("reading a recovered log failed: {e}")))
        .collect()
}

fn open(dir: &Path) -> (Wal, sawmill_wal::RecoveryReport) {
    let mut config = WalConfig::new(dir);
    config.segment_bytes = 4096;
    Wal::open(config).unwrap_or_else(|e| panic!("Wal::open failed: {e}"))
}

fuzz_target!(|input: Input| {
    if std::env::var_os("SAWMILL_FUZZ_DEBUG").is_some() {
        eprintln!("{input:#?}");
    }
    let dir = scratch_dir();
    let path: PathBuf = dir.path().join("wal");
    std::fs::create_dir(&path).expect("mkdir");

    // Every record written with a correct checksum (or one a flip may correct):
    // (first_seq, count, payload).
    let mut written: HashSet<(u64, u32, Vec<u8>)> = HashSet::new();
    let mut next = 0u64;
    for seg in input.segments.iter().take(3) {
        let seq = seg.name.value(next);
        let mut bytes = header_bytes(seq, &seg.header);
        let mut rec_next = seq;
        for rec in seg.records.iter().take(8) {
            let first = rec.seq.value(rec_next);
            let count = u32::from(rec.count);
            let payload = &rec.payload[..rec.payload.len().min(64)];
            bytes.extend(record_bytes(first, count, payload, rec.bad_crc));
            // A bad checksum differs from the right one in its lowest bit, which a flipped
            // bit may restore.
            if !rec.bad_crc || seg.flip.is_some_and(|(_, bit)| bit % 8 == 0) {
                written.insert((first, count, payload.to_vec()));
            }
            rec_next = first.saturating_add(u64::from(count));
        }
        bytes.extend_from_slice(&seg.garbage[..seg.garbage.len().min(64)]);
        if let Some((at, bit)) = seg.flip {
            if !bytes.is_empty() {
                let at = usize::from(at) % bytes.len();
                bytes[at] ^= 1 << (bit % 8);
            }
        }
        if let Some(cut) = seg.cut {
            bytes.truncate(usize::from(cut) % (bytes.len() + 1));
        }
        std::fs::write(path.join(format!("{seq:020}.wal")), &bytes).expect("write segment");
        next = rec_next;
    }
    if input.stray_tmp {
        std::fs::write(path.join(format!("{next:020}.wal.tmp")), MAGIC).expect("write tmp");
    }

    let (wal, report) = open(&path);
    assert_eq!(wal.durable_seq(), report.next_seq);
    assert_eq!(wal.first_seq(), report.first_seq);
    let records = read_all(&wal);
    assert_eq!(records.len() as u64, report.records, "report: {report:?}");
    for r in &records {
        assert!(
            written.contains(&(r.first_seq, r.count, r.payload.clone())),
            "read a record that was never written: seq {} count {} payload {:?}",
            r.first_seq,
            r.count,
            r.payload
        );
        assert!(r.count > 0);
    }
    for pair in records.windows(2) {
        let (end, start) = (pair[0].end_seq(), pair[1].first_seq);
        assert!(start >= end, "records out of order: {end} then {start}");
        // A jump is covered by reported gaps (several in a row across empty segments).
        let mut covered = end;
        while covered < start {
            match report
                .gaps
                .iter()
                .find(|g| g.start <= covered && covered < g.end)
            {
                Some(g) => covered = g.end,
                None => panic!("jump {end}..{start} is not a reported gap: {report:?}"),
            }
        }
    }
    if let Some(last) = records.last() {
        assert!(last.end_seq() <= report.next_seq);
    }
    drop(wal);

    // A second recovery has nothing left to repair.
    let (wal, again) = open(&path);
    assert!(
        again.truncated.is_empty(),
        "second open cut again: {again:?}"
    );
    assert!(
        again.moved_aside.is_empty(),
        "second open moved aside: {again:?}"
    );
    assert_eq!(again.next_seq, report.next_seq);
    assert_eq!(again.records, report.records);
    assert_eq!(
        again.gaps, report.gaps,
        "first: {report:?}\nsecond: {again:?}"
    );
    assert_eq!(read_all(&wal), records);

    // Appending continues at next_seq.
    let (count, payload) = &input.append;
    let count = u32::from(*count).max(1);
    let payload = payload[..payload.len().min(64)].to_vec();
    match wal.append_blocking(payload.clone(), count) {
        Ok(appended) => {
            assert_eq!(appended.first_seq, report.next_seq);
            assert_eq!(appended.end_seq, report.next_seq + u64::from(count));
            assert_eq!(wal.durable_seq(), appended.end_seq);
            let tail: Vec<Record> = wal
                .read_from(appended.first_seq)
                .expect("read_from")
                .map(|r| r.expect("read the appended record"))
                .collect();
            assert_eq!(
                tail.last().map(|r| (r.first_seq, r.count, &r.payload)),
                Some((appended.first_seq, count, &payload))
            );
        }
        Err(WalError::SeqOverflow) => {
            assert!(report.next_seq.checked_add(u64::from(count)).is_none());
        }
        Err(e) => panic!("append after recovery failed: {e}"),
    }
    drop(wal);
});
