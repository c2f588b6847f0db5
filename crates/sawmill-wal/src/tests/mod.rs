//! Tests against real files in temporary directories.

mod basic;
mod concurrency;
mod faults;
mod recovery;

use std::fs;
use std::path::{Path, PathBuf};

use crate::{Record, RecoveryReport, Wal, WalConfig};

/// Opens a WAL with the given segment size.
fn open(dir: &Path, segment_bytes: u64) -> (Wal, RecoveryReport) {
    let mut config = WalConfig::new(dir);
    config.segment_bytes = segment_bytes;
    Wal::open(config).expect("open wal")
}

/// Deterministic payload of varying length, tagged with `i`.
fn payload(i: u64) -> Vec<u8> {
    let len = 16 + (i * 37 % 300) as usize;
    let mut p = format!("record-{i}:").into_bytes();
    p.extend((0..len).map(|j| (i as usize + j) as u8));
    p
}

/// Appends `n` records of `count(i)` events each, blocking; checks contiguity.
fn append_n(wal: &Wal, start: u64, n: u64, count: impl Fn(u64) -> u32) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    let mut seq = wal.durable_seq();
    for i in start..start + n {
        let c = count(i);
        let a = wal.append_blocking(payload(i), c).expect("append");
        assert_eq!(a.first_seq, seq);
        assert_eq!(a.end_seq, seq + u64::from(c));
        seq = a.end_seq;
        out.push((a.first_seq, c));
    }
    out
}

fn read_all(wal: &Wal, from: u64) -> Vec<Record> {
    wal.read_from(from)
        .expect("read_from")
        .collect::<Result<Vec<_>, _>>()
        .expect("read records")
}

/// Segment files in `dir`, sorted by name.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).expect("stat").len()
}
