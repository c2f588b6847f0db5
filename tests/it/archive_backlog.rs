//! A long S3 outage: the archive's backlog waits in the WAL up to `wal.max_bytes`; beyond it
//! ingest answers 503 with `Retry-After` instead of dropping anything, and when S3 is back the
//! backlog drains, ingest resumes by itself and every acknowledged event is archived once.

use crate::common;

use common::moto::Moto;
use common::{poll, Server};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const BUCKET: &str = "sawmill-backlog";

fn config(moto: &Moto) -> String {
    format!(
        "[index]\nrefresh_interval = \"200ms\"\nhot_retention = \"3650d\"\n\
         [wal]\nsegment_bytes = 1048576\nmax_bytes = 3145728\n\
         [archive]\nbackend = \"s3\"\nbucket = \"{BUCKET}\"\nendpoint = \"{}\"\n\
         region = \"us-east-1\"\nforce_path_style = true\nrequest_timeout = \"2s\"\n\
         batch_max_bytes = 200000\nbatch_max_age = \"1h\"\nwriter = \"test-node\"\n",
        moto.endpoint()
    )
}

/// One request of 500 events of about 200 bytes each, ids from `first`.
fn batch(first: u64) -> String {
    let pad = "x".repeat(150);
    (first..first + 500)
        .map(|eid| {
            json!({"message": format!("backlog {eid} {pad}"), "eid": eid}).to_string() + "\n"
        })
        .collect()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn s3_outage_fills_the_wal_bound_then_503_then_drains() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config_env(dir.path(), &config(&moto), moto.env());

    let mut acked: Vec<u64> = Vec::new();
    let mut next = 0u64;
    moto.pause();
    // ingest until the WAL bound refuses more: about 3 MiB of events
    let refused = loop {
        assert!(next < 200_000, "ingest never hit wal.max_bytes");
        let resp = server
            .post("/api/v1/ingest")
            .header("content-type", "application/x-ndjson")
            .body(batch(next))
            .send()
            .expect("ingest");
        let status = resp.status().as_u16();
        if status == 200 {
            acked.extend(next..next + 500);
            next += 500;
            continue;
        }
        break resp;
    };
    assert_eq!(refused.status().as_u16(), 503);
    let retry_after = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(retry_after.is_some_and(|s| s >= 1), "no Retry-After");
    let body: Value = refused.json().unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("not yet archived"),
        "{body}"
    );
    let metrics = server.metrics();
    assert!(metric(&metrics, "sawmill_archive_backlog_events") >= acked.len() as f64 - 1.0);
    assert!(
        metrics.contains("reason=\"wal_full\""),
        "refusal not counted"
    );
    // still refused while S3 stays down
    let (status, _) = server.ingest(batch(next), "");
    assert_eq!(status, 503);

    moto.resume();
    // the backlog drains and the WAL is truncated: ingest comes back by itself
    poll(
        Duration::from_secs(120),
        "ingest to resume after S3 is back",
        || {
            let (status, _) = server.ingest(batch(next), "");
            (status == 200).then_some(())
        },
    );
    acked.extend(next..next + 500);
    let flush = server.flush();
    assert!(
        flush["archive"]["archived_seq"].as_u64().is_some(),
        "{flush}"
    );
    assert_eq!(
        metric(&server.metrics(), "sawmill_archive_backlog_events"),
        0.0
    );

    // every acknowledged event is in the bucket exactly once
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for (key, _, _) in moto.list(BUCKET, "logs/v1/") {
        let bytes = moto.get(BUCKET, &key);
        let text = String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            *seen.entry(v["eid"].as_u64().unwrap()).or_default() += 1;
        }
    }
    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "archived twice: {dupes:?}");
    let missing: Vec<_> = acked.iter().filter(|e| !seen.contains_key(e)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events not archived",
        missing.len()
    );
    assert_eq!(seen.len(), acked.len(), "unacknowledged events archived");
}
