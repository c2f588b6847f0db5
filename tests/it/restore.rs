//! Restores from the archive, on both backends: a restore of a range makes exactly the
//! archived events of that range (and query) searchable, beside the hot index and without
//! duplicating what it holds; restores survive a restart and go away when deleted. On S3,
//! objects in a Glacier storage class are reported and their S3 restore can be requested.

use crate::common;

use common::moto::Moto;
use common::{now_nanos, poll, rfc3339, Server};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const DAY: i64 = 86_400_000_000_000;
const BUCKET: &str = "sawmill-restore";

/// Hot retention of a week: events older than that are in the archive only.
const INDEX: &str = "[index]\nrefresh_interval = \"200ms\"\nhot_retention = \"7d\"\n";

fn fs_config() -> String {
    format!("{INDEX}[archive]\nbatch_max_bytes = 20000\nwriter = \"test-node\"\n")
}

fn s3_config(moto: &Moto) -> String {
    format!(
        "{INDEX}[archive]\nbackend = \"s3\"\nbucket = \"{BUCKET}\"\nendpoint = \"{}\"\n\
         region = \"us-east-1\"\nforce_path_style = true\nrequest_timeout = \"5s\"\n\
         batch_max_bytes = 20000\nwriter = \"test-node\"\n",
        moto.endpoint()
    )
}

/// `count` events from `first_eid`, one every `step` nanoseconds from `base`; every third is
/// an error.
fn events(first_eid: u64, count: u64, base: i64, step: i64) -> (String, Vec<(u64, i64, bool)>) {
    let mut body = String::new();
    let mut meta = Vec::new();
    for i in 0..count {
        let eid = first_eid + i;
        let ts = base + i as i64 * step;
        let error = eid.is_multiple_of(3);
        body.push_str(
            &json!({
                "timestamp": rfc3339(ts),
                "level": if error { "error" } else { "info" },
                "message": format!("restore test event {eid}"),
                "eid": eid,
            })
            .to_string(),
        );
        body.push('\n');
        meta.push((eid, ts, error));
    }
    (body, meta)
}

fn eids(server: &Server, q: &str, start: i64, end: i64) -> BTreeSet<u64> {
    let hits = server.search_all(q, &rfc3339(start), &rfc3339(end));
    let mut set = BTreeSet::new();
    for h in &hits {
        let eid = h["eid"].as_u64().expect("eid");
        assert!(set.insert(eid), "event {eid} found twice");
    }
    set
}

/// Starts a restore and waits until it is no longer running; returns its final status.
fn restore(server: &Server, body: Value) -> Value {
    let resp = server
        .post("/api/v1/archive/restore")
        .json(&body)
        .send()
        .expect("restore request");
    assert_eq!(resp.status().as_u16(), 202, "restore answer");
    let started: Value = resp.json().expect("restore json");
    let id = started["id"].as_str().expect("restore id").to_string();
    poll(Duration::from_secs(60), "restore to finish", || {
        let s: Value = server
            .get(&format!("/api/v1/archive/restores/{id}"))
            .send()
            .ok()?
            .json()
            .ok()?;
        (s["state"] != "running").then_some(s)
    })
}

struct Scenario {
    /// Archived only (older than the hot retention): eid, ts, error.
    old: Vec<(u64, i64, bool)>,
    /// Hot: eid, ts.
    hot: Vec<(u64, i64, bool)>,
    /// The whole span of the corpus.
    start: i64,
    end: i64,
}

/// Ingests 600 events spread over days 30 to 18 ago and 200 events of the last hour, then
/// flushes so that everything is archived.
fn ingest_corpus(server: &Server) -> Scenario {
    let now = now_nanos();
    let base = now - 30 * DAY;
    let (body, old) = events(0, 600, base, DAY / 50);
    let (status, answer) = server.ingest(body, "");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 600);
    let (body, hot) = events(10_000, 200, now - 3_600_000_000_000, 10_000_000_000);
    let (status, answer) = server.ingest(body, "");
    assert_eq!(status, 200, "{answer}");
    server.flush();
    Scenario {
        old,
        hot,
        start: base - DAY,
        end: now + DAY,
    }
}

fn expected(events: &[(u64, i64, bool)], start: i64, end: i64, errors_only: bool) -> BTreeSet<u64> {
    events
        .iter()
        .filter(|(_, ts, error)| *ts >= start && *ts < end && (!errors_only || *error))
        .map(|(eid, _, _)| *eid)
        .collect()
}

/// The scenario both backends pass.
fn restore_scenario(server: &mut Server) {
    let s = ingest_corpus(server);
    let hot: BTreeSet<u64> = s.hot.iter().map(|e| e.0).collect();
    // before any restore only the hot events are searchable
    assert_eq!(eids(server, "*", s.start, s.end), hot);

    // a range in the middle of the archived days, all events
    let (r1_start, r1_end) = (s.old[100].1, s.old[250].1);
    let r1 = restore(
        server,
        json!({"start": rfc3339(r1_start), "end": rfc3339(r1_end)}),
    );
    assert_eq!(r1["state"], "done", "{r1}");
    let want1 = expected(&s.old, r1_start, r1_end, false);
    assert_eq!(want1.len(), 150);
    assert_eq!(r1["events"], 150, "{r1}");
    assert!(r1["objects_read"].as_u64().unwrap() >= 1, "{r1}");
    assert_eq!(r1["cold_objects"], json!([]));
    let mut all: BTreeSet<u64> = hot.union(&want1).copied().collect();
    assert_eq!(eids(server, "*", s.start, s.end), all);
    // the restored events answer queries like hot ones
    let restored_errors = expected(&s.old, r1_start, r1_end, true);
    let hot_errors: BTreeSet<u64> = s.hot.iter().filter(|e| e.2).map(|e| e.0).collect();
    assert_eq!(
        eids(server, "level:error", s.start, s.end),
        restored_errors.union(&hot_errors).copied().collect()
    );
    assert_eq!(
        eids(server, "eid:[100 TO 109]", r1_start, r1_end),
        (100..110).collect()
    );

    // a later range with a query: only its errors
    let (r2_start, r2_end) = (s.old[400].1, s.old[500].1);
    let r2 = restore(
        server,
        json!({"start": rfc3339(r2_start), "end": rfc3339(r2_end), "query": "level:error"}),
    );
    assert_eq!(r2["state"], "done", "{r2}");
    let want2 = expected(&s.old, r2_start, r2_end, true);
    assert_eq!(r2["events"], want2.len() as u64, "{r2}");
    all.extend(&want2);
    assert_eq!(eids(server, "*", s.start, s.end), all);

    // a range over everything: the hot events and the first restore are not added twice
    let r3 = restore(
        server,
        json!({"start": rfc3339(s.start), "end": rfc3339(s.end)}),
    );
    assert_eq!(r3["state"], "done", "{r3}");
    assert_eq!(r3["events_already_hot"], 200, "{r3}");
    assert_eq!(r3["events_already_restored"], 150, "{r3}");
    assert_eq!(r3["events"], 600 - 150, "{r3}");
    let everything: BTreeSet<u64> = s.old.iter().chain(&s.hot).map(|e| e.0).collect();
    // the errors of r2 are in r2 and in r3: the query restore is not a full cover
    let found = server.search_all("*", &rfc3339(s.start), &rfc3339(s.end));
    let distinct: BTreeSet<u64> = found.iter().map(|h| h["eid"].as_u64().unwrap()).collect();
    assert_eq!(distinct, everything);
    assert_eq!(found.len(), everything.len() + want2.len());

    // deleting the query restore leaves every event exactly once
    let id2 = r2["id"].as_str().unwrap();
    let resp = server
        .http
        .delete(format!("{}/api/v1/archive/restores/{id2}", server.url))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(eids(server, "*", s.start, s.end), everything);

    // restores survive a crash
    server.kill9();
    server.spawn();
    assert_eq!(eids(server, "*", s.start, s.end), everything);
    let listed: Value = server
        .get("/api/v1/archive/restores")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let ids: BTreeSet<&str> = listed["restores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [r1["id"].as_str().unwrap(), r3["id"].as_str().unwrap()]
            .into_iter()
            .collect()
    );
    // and go away when deleted
    for id in ids {
        let resp = server
            .http
            .delete(format!("{}/api/v1/archive/restores/{id}", server.url))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    assert_eq!(eids(server, "*", s.start, s.end), hot);
}

#[test]
fn fs_restore_makes_exactly_its_range_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_config(dir.path(), &fs_config());
    restore_scenario(&mut server);
}

#[test]
fn s3_restore_makes_exactly_its_range_searchable() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_config_env(dir.path(), &s3_config(&moto), moto.env());
    restore_scenario(&mut server);
}

#[test]
fn bad_restore_requests_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &fs_config());
    for (body, want) in [
        (json!({"end": "now"}), "start"),
        (json!({"start": "yesterday"}), "start"),
        (json!({"start": "now-1h", "end": "now-2h"}), "after start"),
        (json!({"start": "now-800d"}), "at most"),
        (
            json!({"start": "now-1d", "query": "level:("}),
            "invalid query",
        ),
        (json!({"start": "now-1d", "tier": "fast"}), "tier"),
        (json!({"start": "now-1d", "bogus": 1}), "bogus"),
    ] {
        let resp = server
            .post("/api/v1/archive/restore")
            .json(&body)
            .send()
            .unwrap();
        let got = common::status_json(resp);
        let message = common::assert_error(got, 400, &body.to_string());
        assert!(message.contains(want), "{body}: {message}");
    }
    let resp = server.get("/api/v1/archive/restores/nope").send().unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

/// Moves every archived object of the bucket to GLACIER (as a lifecycle transition would).
fn freeze(moto: &Moto) -> usize {
    let objects = moto.list(BUCKET, "logs/v1/");
    for (key, _, _) in &objects {
        moto.block_on(
            moto.client()
                .copy_object()
                .bucket(BUCKET)
                .key(key)
                .copy_source(format!("{BUCKET}/{key}"))
                .storage_class(aws_sdk_s3::types::StorageClass::Glacier)
                .send(),
        )
        .unwrap_or_else(|e| panic!("move {key} to GLACIER: {e:?}"));
    }
    objects.len()
}

#[test]
fn s3_glacier_objects_are_reported_and_their_restore_requested() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config_env(dir.path(), &s3_config(&moto), moto.env());
    let s = ingest_corpus(&server);
    let frozen = freeze(&moto);
    assert!(frozen > 0);
    assert!(moto
        .list(BUCKET, "logs/v1/")
        .iter()
        .all(|(_, _, class)| class == "GLACIER"));
    let (start, end) = (s.old[0].1, s.old[599].1 + 1);
    // without asking: every overlapping object is reported, none is read
    let r = restore(
        &server,
        json!({"start": rfc3339(start), "end": rfc3339(end)}),
    );
    assert_eq!(r["state"], "done", "{r}");
    assert_eq!(r["events"], 0, "{r}");
    let cold = r["cold_objects"].as_array().unwrap();
    assert!(!cold.is_empty(), "{r}");
    assert_eq!(cold.len() as u64, r["objects"].as_u64().unwrap(), "{r}");
    assert!(cold
        .iter()
        .all(|c| c["state"] == "needs_s3_restore" && c["storage_class"] == "GLACIER"));
    // asking for the S3 restore: requested for each (moto makes them readable at once)
    let r = restore(
        &server,
        json!({"start": rfc3339(start), "end": rfc3339(end), "request_s3_restore": true}),
    );
    let cold = r["cold_objects"].as_array().unwrap();
    assert!(
        cold.iter().all(|c| c["state"] == "s3_restore_requested"),
        "{r}"
    );
    for c in cold {
        let head = moto
            .block_on(
                moto.client()
                    .head_object()
                    .bucket(BUCKET)
                    .key(c["key"].as_str().unwrap())
                    .send(),
            )
            .unwrap();
        assert!(head.restore().is_some(), "no restore requested for {c}");
    }
    // once S3 has restored them, a restore reads them
    let r = restore(
        &server,
        json!({"start": rfc3339(start), "end": rfc3339(end)}),
    );
    assert_eq!(r["cold_objects"], json!([]), "{r}");
    assert_eq!(r["events"], 600, "{r}");
}

#[test]
fn cli_restore_prints_what_it_restored() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &fs_config());
    let s = ingest_corpus(&server);
    let (start, end) = (s.old[0].1, s.old[100].1);
    let out = common::run_sawmill(
        &[
            "archive",
            "restore",
            "--url",
            &server.url,
            "--start",
            &rfc3339(start),
            "--end",
            &rfc3339(end),
            "--json",
        ],
        None,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let status: Value = serde_json::from_str(out.stdout.trim()).expect("json status");
    assert_eq!(status["state"], "done");
    assert_eq!(status["events"], 100);
    assert_eq!(eids(&server, "*", start, end), (0..100).collect());
}
