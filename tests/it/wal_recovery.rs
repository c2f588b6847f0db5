//! WAL recovery: with a one-hour refresh nothing reaches the index before the crash, so
//! after `kill -9` every event must come back from the WAL. A damaged tail (torn write or a
//! corrupt last record) is cut: the last request's events are gone, all others are there.

use crate::common;

use common::{now_nanos, Server};
use serde_json::json;
use std::path::{Path, PathBuf};

const CONFIG: &str = "[index]\nrefresh_interval = \"1h\"\nhot_retention = \"3650d\"\n";
/// Events per ingest request; each request is one WAL record.
const SIZES: [u64; 5] = [50, 120, 30, 200, 77];

fn request_body(req: usize, size: u64) -> String {
    let ts = now_nanos() / 1_000_000;
    let mut body = String::new();
    for k in 0..size {
        body.push_str(
            &json!({"timestamp": ts, "level": "info", "message": format!("wal recovery event {k}"), "req": req, "k": k})
                .to_string(),
        );
        body.push('\n');
    }
    body
}

/// Starts a server, ingests the requests of [`SIZES`], checks nothing is searchable yet and
/// kills it.
fn ingest_and_crash(dir: &Path) -> Server {
    let mut server = Server::start_with_config(dir, CONFIG);
    for (i, size) in SIZES.iter().enumerate() {
        let (status, answer) = server.ingest(request_body(i, *size), "");
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accepted"].as_u64(), Some(*size), "{answer}");
    }
    assert_eq!(
        server.total("*"),
        0,
        "with refresh_interval = 1h nothing should be searchable before the crash"
    );
    server.kill9();
    server
}

/// The newest `*.wal` segment.
fn newest_segment(data_dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(data_dir.join("wal"))
        .expect("wal directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    segments.pop().expect("a wal segment")
}

/// Offset and payload length of the last record of a segment (24-byte segment header, then
/// records of a 20-byte header — len, crc, first_seq, count — and the payload).
fn last_record(bytes: &[u8]) -> (usize, usize, u32) {
    let mut offset = 24;
    let mut last = None;
    while offset + 20 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        let count = u32::from_le_bytes(bytes[offset + 16..offset + 20].try_into().unwrap());
        if offset + 20 + len > bytes.len() {
            break;
        }
        last = Some((offset, len, count));
        offset += 20 + len;
    }
    assert_eq!(
        offset,
        bytes.len(),
        "segment does not end on a record boundary"
    );
    last.expect("the segment holds records")
}

fn total_of_first(n: usize) -> u64 {
    SIZES[..n].iter().sum()
}

/// After recovery: per-request counts, then new ingest works and is counted.
fn check_recovered(server: &Server, expect_last: bool) {
    let all = SIZES.len();
    let want = total_of_first(if expect_last { all } else { all - 1 });
    // readiness means the replay is finished
    assert_eq!(server.total("*"), want, "events after recovery");
    for (i, size) in SIZES.iter().enumerate() {
        let want = if i == all - 1 && !expect_last {
            0
        } else {
            *size
        };
        assert_eq!(
            server.total(&format!("req:{i}")),
            want,
            "events of request {i}"
        );
    }
    // the lost request can be sent again, and new requests work
    let (status, answer) = server.ingest(request_body(all - 1, SIZES[all - 1]), "");
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = server.ingest(request_body(99, 33), "");
    assert_eq!(status, 200, "{answer}");
    server.flush();
    let after = want + SIZES[all - 1] + 33;
    assert_eq!(server.total("*"), after, "events after new ingest");
    assert_eq!(server.total("req:99"), 33);
    let last_want = if expect_last { 2 } else { 1 } * SIZES[all - 1];
    assert_eq!(server.total(&format!("req:{}", all - 1)), last_want);
}

fn log_mentions_cut(server: &Server, segment: &Path) -> bool {
    let name = segment.file_name().unwrap().to_string_lossy().to_string();
    server
        .log
        .text()
        .lines()
        .any(|l| l.to_lowercase().contains("cut") && l.contains(&name))
}

#[test]
fn torn_tail_loses_only_the_last_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ingest_and_crash(dir.path());
    let segment = newest_segment(&server.data_dir);
    let len = std::fs::metadata(&segment).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    server.spawn();
    assert!(
        log_mentions_cut(&server, &segment),
        "the log does not report the cut of {}:\n{}",
        segment.display(),
        server.log.text()
    );
    check_recovered(&server, false);
}

#[test]
fn corrupt_last_record_loses_only_the_last_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ingest_and_crash(dir.path());
    let segment = newest_segment(&server.data_dir);
    let mut bytes = std::fs::read(&segment).unwrap();
    let (offset, len, count) = last_record(&bytes);
    assert_eq!(
        u64::from(count),
        SIZES[SIZES.len() - 1],
        "last record is the last request"
    );
    bytes[offset + 20 + len / 2] ^= 0x5a;
    std::fs::write(&segment, &bytes).unwrap();
    server.spawn();
    assert!(
        log_mentions_cut(&server, &segment),
        "the log does not report the cut of {}:\n{}",
        segment.display(),
        server.log.text()
    );
    check_recovered(&server, false);
}

#[test]
fn undamaged_wal_replays_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ingest_and_crash(dir.path());
    let segment = newest_segment(&server.data_dir);
    let bytes = std::fs::read(&segment).unwrap();
    let (_, _, count) = last_record(&bytes);
    assert_eq!(u64::from(count), SIZES[SIZES.len() - 1]);
    server.spawn();
    assert!(
        !log_mentions_cut(&server, &segment),
        "an undamaged wal was reported cut:\n{}",
        server.log.text()
    );
    check_recovered(&server, true);
}
