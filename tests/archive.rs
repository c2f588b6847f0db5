//! The archive on the local-folder backend: objects appear under the contract's keys and,
//! decompressed, hold every acknowledged event exactly once — also across `kill -9`.

mod common;

use common::{now_nanos, poll, rfc3339, Server};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const HOUR: i64 = 3_600_000_000_000;

/// Small batches so that a test produces many objects.
const CONFIG: &str = "[index]\nrefresh_interval = \"200ms\"\nhot_retention = \"3650d\"\n\
[archive]\nbatch_max_bytes = 20000\nbatch_max_age = \"1h\"\nwriter = \"test-node\"\n";

fn archive_root(server: &Server) -> PathBuf {
    server.data_dir.join("archive")
}

/// Every archive object under `root`: (key relative to root, decompressed lines).
fn objects(root: &Path) -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap();
            let lines = text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect();
            out.push((key, lines));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `logs/v1/tenant=default/dt=YYYY-MM-DD/hour=HH/test-node-<first>-<last>-<id>.ndjson.zst`:
/// returns (dt, hour) after checking the shape.
fn parse_key(key: &str) -> (String, String) {
    let parts: Vec<&str> = key.split('/').collect();
    assert_eq!(parts.len(), 6, "{key}");
    assert_eq!(&parts[..3], ["logs", "v1", "tenant=default"], "{key}");
    let dt = parts[3].strip_prefix("dt=").expect(key).to_string();
    let hour = parts[4].strip_prefix("hour=").expect(key).to_string();
    assert!(parts[5].starts_with("test-node-"), "{key}");
    assert!(parts[5].ends_with(".ndjson.zst"), "{key}");
    (dt, hour)
}

/// Events spread over three hours, each with a unique `eid`.
fn body(first_eid: u64, count: u64, base: i64) -> String {
    let mut out = String::new();
    for eid in first_eid..first_eid + count {
        let ts = base + (eid as i64 % 3) * HOUR + eid as i64 * 1_000_000;
        out.push_str(
            &json!({"timestamp": rfc3339(ts), "message": format!("archived event {eid}"),
                    "service": "archiver", "eid": eid, "padding": "x".repeat(100)})
            .to_string(),
        );
        out.push('\n');
    }
    out
}

fn eid_counts(objects: &[(String, Vec<Value>)]) -> HashMap<u64, u32> {
    let mut counts = HashMap::new();
    for (_, lines) in objects {
        for line in lines {
            *counts.entry(line["eid"].as_u64().unwrap()).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn flushed_objects_hold_every_event_once_under_contract_keys() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), CONFIG);
    let base = (now_nanos() / HOUR - 5) * HOUR;
    let mut sent = 0;
    for round in 0..5u64 {
        let (status, answer) = server.ingest(body(round * 400, 400, base), "");
        assert_eq!(status, 200, "{answer}");
        sent += 400;
    }
    let report = server.flush();
    assert_eq!(
        report["archive"]["archived_seq"].as_u64(),
        Some(sent),
        "{report}"
    );
    let objects = objects(&archive_root(&server));
    assert!(
        objects.len() > 3,
        "small batches give many objects: {}",
        objects.len()
    );
    for (key, lines) in &objects {
        let (dt, hour) = parse_key(key);
        for line in lines {
            // each line is a normalized event of the object's hour
            let ts = line["timestamp"].as_str().unwrap();
            assert_eq!(&ts[..10], dt, "{key}: {line}");
            assert_eq!(&ts[11..13], hour, "{key}: {line}");
            assert_eq!(line["service"], "archiver");
        }
    }
    let counts = eid_counts(&objects);
    assert_eq!(counts.len() as u64, sent, "every event archived");
    assert!(counts.values().all(|&c| c == 1), "no event archived twice");
    // a second flush writes nothing new
    let again = server.flush();
    assert_eq!(
        again["archive"]["objects_written"].as_u64(),
        Some(0),
        "{again}"
    );
    let metrics = server.metrics();
    assert!(
        metrics.contains(&format!("sawmill_archive_events_total {sent}")),
        "{metrics}"
    );
}

#[test]
fn kill9_while_archiving_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_config(dir.path(), CONFIG);
    let base = (now_nanos() / HOUR - 5) * HOUR;
    let mut sent = 0u64;
    for round in 0..6u64 {
        let (status, _) = server.ingest(body(round * 300, 300, base), "");
        assert_eq!(status, 200);
        sent += 300;
    }
    // some batches are full and being written; kill in the middle of it
    poll(Duration::from_secs(30), "first archive objects", || {
        (!objects(&archive_root(&server)).is_empty()).then_some(())
    });
    server.kill9();
    server.spawn();
    for round in 6..8u64 {
        let (status, _) = server.ingest(body(round * 300, 300, base), "");
        assert_eq!(status, 200);
        sent += 300;
    }
    server.kill9();
    server.spawn();
    server.flush();
    let counts = eid_counts(&objects(&archive_root(&server)));
    assert_eq!(
        counts.len() as u64,
        sent,
        "every acknowledged event archived"
    );
    let twice: Vec<_> = counts.iter().filter(|(_, &c)| c > 1).collect();
    assert!(twice.is_empty(), "archived more than once: {twice:?}");
}

#[test]
fn sigterm_seals_and_writes_pending_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_config(dir.path(), CONFIG);
    let base = (now_nanos() / HOUR - 2) * HOUR;
    let (status, _) = server.ingest(body(0, 30, base), "");
    assert_eq!(status, 200);
    // 30 small events fill no batch and the age limit is an hour: nothing written yet
    assert!(objects(&archive_root(&server)).is_empty());
    assert!(server.terminate().success());
    let counts = eid_counts(&objects(&archive_root(&server)));
    assert_eq!(counts.len(), 30);
    assert!(counts.values().all(|&c| c == 1));
}
