//! The archive on both backends — a local folder (`fs`) and S3 (a real `moto_server`): objects
//! appear under the contract's keys and, decompressed, hold every acknowledged event exactly
//! once — also across `kill -9` and an S3 outage. On S3 the bucket's lifecycle rule is the
//! one the config describes.

use crate::common;

use common::moto::Moto;
use common::{now_nanos, poll, rfc3339, Server};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HOUR: i64 = 3_600_000_000_000;

/// The bucket of the S3 tests (created by the test: the server needs it to exist).
const BUCKET: &str = "sawmill-test";

/// The tiers every S3 test configures unless it tests them.
const LIFECYCLE: &str = "[archive.lifecycle]\ninfrequent_access_after_days = 30\n\
glacier_ir_after_days = 90\ndeep_archive_after_days = 180\nexpire_after_days = 400\n";

/// Where the server under test archives, and how the test reads what it archived.
enum Backend {
    /// `<data_dir>/archive`.
    Fs,
    /// The bucket [`BUCKET`] of a moto server, prefix `logs/v1`.
    S3(Moto),
}

impl Backend {
    fn fs() -> Backend {
        Backend::Fs
    }

    /// A moto server holding an empty [`BUCKET`].
    fn s3() -> Backend {
        let moto = Moto::start();
        moto.create_bucket(BUCKET);
        Backend::S3(moto)
    }

    fn moto(&self) -> &Moto {
        match self {
            Backend::S3(m) => m,
            Backend::Fs => panic!("not an S3 backend"),
        }
    }

    /// The server config: fast refresh, small batches (`batch_max_bytes`), an hour of batch
    /// age, writer `test-node`; on S3 also `lifecycle` (an `[archive.lifecycle]` section).
    fn config_with(&self, batch_max_bytes: u64, lifecycle: &str) -> String {
        let mut c = format!(
            "[index]\nrefresh_interval = \"200ms\"\nhot_retention = \"3650d\"\n\
             [archive]\nbatch_max_bytes = {batch_max_bytes}\nbatch_max_age = \"1h\"\n\
             writer = \"test-node\"\n"
        );
        if let Backend::S3(moto) = self {
            c.push_str(&format!(
                "backend = \"s3\"\nbucket = \"{BUCKET}\"\nprefix = \"logs/v1\"\n\
                 endpoint = \"{}\"\nregion = \"us-east-1\"\nforce_path_style = true\n\
                 request_timeout = \"5s\"\n{lifecycle}",
                moto.endpoint()
            ));
        }
        c
    }

    /// Small batches so that a test produces many objects.
    fn config(&self) -> String {
        self.config_with(20000, LIFECYCLE)
    }

    fn env(&self) -> Vec<(String, String)> {
        match self {
            Backend::Fs => Vec::new(),
            Backend::S3(moto) => moto.env(),
        }
    }

    fn start(&self, dir: &Path, config: &str) -> Server {
        Server::start_with_config_env(dir, config, self.env())
    }

    /// Every archive object: (key, decompressed lines), in key order.
    fn objects(&self, server: &Server) -> Vec<(String, Vec<Value>)> {
        match self {
            Backend::Fs => common::archive_objects(&archive_root(server)),
            Backend::S3(moto) => moto
                .list(BUCKET, "")
                .into_iter()
                .map(|(key, size, _)| {
                    let bytes = moto.get(BUCKET, &key);
                    assert_eq!(bytes.len() as u64, size, "{key}: listed size");
                    let lines = common::decode_archive_object(&key, &bytes);
                    (key, lines)
                })
                .collect(),
        }
    }

    /// How many archive objects there are (without reading them).
    fn object_count(&self, server: &Server) -> usize {
        match self {
            Backend::Fs => common::files_under(&archive_root(server)).len(),
            Backend::S3(moto) => moto.list(BUCKET, "").len(),
        }
    }
}

fn archive_root(server: &Server) -> PathBuf {
    server.data_dir.join("archive")
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

/// The value of an unlabelled metric in a `/metrics` text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok())?
    })
}

fn metric_of(server: &Server, name: &str) -> f64 {
    let text = server.metrics();
    metric(&text, name).unwrap_or_else(|| panic!("no metric {name} in /metrics:\n{text}"))
}

// ----- scenarios shared by both backends -----

fn flushed_objects_hold_every_event_once_under_contract_keys(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.start(dir.path(), &backend.config());
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
    let objects = backend.objects(&server);
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

fn kill9_while_archiving_loses_and_duplicates_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = backend.start(dir.path(), &backend.config());
    let base = (now_nanos() / HOUR - 5) * HOUR;
    let mut sent = 0u64;
    for round in 0..6u64 {
        let (status, _) = server.ingest(body(round * 300, 300, base), "");
        assert_eq!(status, 200);
        sent += 300;
    }
    // some batches are full and being written; kill in the middle of it
    poll(Duration::from_secs(30), "first archive objects", || {
        (backend.object_count(&server) > 0).then_some(())
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
    let counts = eid_counts(&backend.objects(&server));
    assert_eq!(
        counts.len() as u64,
        sent,
        "every acknowledged event archived"
    );
    let twice: Vec<_> = counts.iter().filter(|(_, &c)| c > 1).collect();
    assert!(twice.is_empty(), "archived more than once: {twice:?}");
}

fn sigterm_seals_and_writes_pending_batches(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = backend.start(dir.path(), &backend.config());
    let base = (now_nanos() / HOUR - 2) * HOUR;
    let (status, _) = server.ingest(body(0, 30, base), "");
    assert_eq!(status, 200);
    // 30 small events fill no batch and the age limit is an hour: nothing written yet
    assert!(backend.objects(&server).is_empty());
    assert!(server.terminate().success());
    let counts = eid_counts(&backend.objects(&server));
    assert_eq!(counts.len(), 30);
    assert!(counts.values().all(|&c| c == 1));
}

/// Ingests continuously from a thread while the server is killed with `kill -9` several
/// times in the middle of writing batches; every acknowledged event ends up archived exactly
/// once, and nothing that was never sent appears.
fn kill9_during_uploads_loses_and_duplicates_nothing(backend: Backend) {
    const KILLS: usize = 5;
    const PER_REQUEST: u64 = 20;
    /// Between requests: a steady stream the archive keeps up with, a batch every few
    /// requests, instead of a backlog that the final flush writes.
    const PACE: Duration = Duration::from_millis(20);
    let dir = tempfile::tempdir().unwrap();
    // ~20 events a batch: an object every few requests
    let mut server = backend.start(dir.path(), &backend.config_with(4096, LIFECYCLE));
    let base = (now_nanos() / HOUR - 5) * HOUR;

    // the ingest thread posts to whatever server is up (`url`, empty while it is down)
    let url = Arc::new(Mutex::new(server.url.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let ingester = {
        let (url, stop, acked) = (url.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let mut next = 0u64;
            let mut unacked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let target = url.lock().unwrap().clone();
                if target.is_empty() {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                let first = next;
                next += PER_REQUEST;
                let answer = http
                    .post(format!("{target}/api/v1/ingest"))
                    .header("content-type", "application/x-ndjson")
                    .body(body(first, PER_REQUEST, base))
                    .send();
                match answer {
                    Ok(r) if r.status().as_u16() == 200 => {
                        acked.lock().unwrap().extend(first..first + PER_REQUEST)
                    }
                    _ => unacked += 1,
                }
                std::thread::sleep(PACE);
            }
            (next, unacked)
        })
    };
    let acked_now = || acked.lock().unwrap().len();

    for kill in 0..KILLS {
        // wait until batches are being written by this process, then kill it mid-way
        let objects_before = backend.object_count(&server);
        let acked_before = acked_now();
        poll(
            Duration::from_secs(120),
            &format!("new archive objects and acknowledged events before kill {kill}"),
            || {
                (backend.object_count(&server) >= objects_before + 3
                    && acked_now() >= acked_before + 300)
                    .then_some(())
            },
        );
        eprintln!(
            "kill {kill}: {} objects, {} events acknowledged",
            backend.object_count(&server),
            acked_now()
        );
        server.kill9();
        *url.lock().unwrap() = String::new();
        server.spawn();
        *url.lock().unwrap() = server.url.clone();
    }
    // the last process archives and acknowledges too
    let acked_before = acked_now();
    poll(
        Duration::from_secs(120),
        "acknowledged events after the last restart",
        || (acked_now() >= acked_before + 300).then_some(()),
    );
    stop.store(true, Ordering::Relaxed);
    let (sent, unacked) = ingester.join().expect("ingest thread");
    let report = server.flush();
    eprintln!("final flush: {report}; {sent} events sent, {unacked} requests failed");

    let acked = acked.lock().unwrap().clone();
    let objects = backend.objects(&server);
    eprintln!("{} objects", objects.len());
    let counts = eid_counts(&objects);
    let missing: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|e| !counts.contains_key(e))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events not archived (first: {:?}); {unacked} requests failed \
         around kills",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(20)]
    );
    let twice: Vec<_> = counts.iter().filter(|(_, &c)| c > 1).collect();
    assert!(twice.is_empty(), "archived more than once: {twice:?}");
    let never_sent: Vec<_> = counts.keys().filter(|&&e| e >= sent).collect();
    assert!(
        never_sent.is_empty(),
        "archived but never sent: {never_sent:?}"
    );
    // events of requests cut by a kill may or may not be archived (they were not
    // acknowledged), so at most every sent event is there
    assert!(
        counts.len() as u64 >= acked.len() as u64 && counts.len() as u64 <= sent,
        "{} archived, {} acknowledged, {sent} sent",
        counts.len(),
        acked.len()
    );
}

// ----- the tests: every scenario on both backends -----

#[test]
fn fs_flushed_objects_hold_every_event_once_under_contract_keys() {
    flushed_objects_hold_every_event_once_under_contract_keys(Backend::fs());
}

#[test]
fn s3_flushed_objects_hold_every_event_once_under_contract_keys() {
    flushed_objects_hold_every_event_once_under_contract_keys(Backend::s3());
}

#[test]
fn fs_kill9_while_archiving_loses_and_duplicates_nothing() {
    kill9_while_archiving_loses_and_duplicates_nothing(Backend::fs());
}

#[test]
fn s3_kill9_while_archiving_loses_and_duplicates_nothing() {
    kill9_while_archiving_loses_and_duplicates_nothing(Backend::s3());
}

#[test]
fn fs_sigterm_seals_and_writes_pending_batches() {
    sigterm_seals_and_writes_pending_batches(Backend::fs());
}

#[test]
fn s3_sigterm_seals_and_writes_pending_batches() {
    sigterm_seals_and_writes_pending_batches(Backend::s3());
}

#[test]
fn fs_kill9_during_uploads_loses_and_duplicates_nothing() {
    kill9_during_uploads_loses_and_duplicates_nothing(Backend::fs());
}

#[test]
fn s3_kill9_during_uploads_loses_and_duplicates_nothing() {
    kill9_during_uploads_loses_and_duplicates_nothing(Backend::s3());
}

// ----- S3 only -----

/// `[archive.lifecycle]` with the given days and `manage`.
fn lifecycle(manage: bool, days: [u32; 4]) -> String {
    format!(
        "[archive.lifecycle]\nmanage = {manage}\ninfrequent_access_after_days = {}\n\
         glacier_ir_after_days = {}\ndeep_archive_after_days = {}\nexpire_after_days = {}\n",
        days[0], days[1], days[2], days[3]
    )
}

/// The rule sawmill keeps in force for prefix `logs/v1` and these days.
fn sawmill_rule(days: [u32; 4]) -> Value {
    json!({
        "ID": "sawmill-tiers:logs/v1",
        "Status": "Enabled",
        "Filter": {"Prefix": "logs/v1/"},
        "Transitions": [
            {"Days": days[0], "StorageClass": "STANDARD_IA"},
            {"Days": days[1], "StorageClass": "GLACIER_IR"},
            {"Days": days[2], "StorageClass": "DEEP_ARCHIVE"},
        ],
        "Expiration": {"Days": days[3]},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    })
}

/// Waits (a minute at most) until the bucket's rules, sorted by ID, are `want`; fails showing
/// the difference otherwise.
#[track_caller]
fn assert_rules(moto: &Moto, want: Vec<Value>, what: &str, server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = rules_by_id(moto);
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            assert_eq!(
                Value::Array(got),
                Value::Array(want),
                "{what}; log:\n{}",
                server.log.text()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The bucket's rules sorted by ID (their order carries no meaning).
fn rules_by_id(moto: &Moto) -> Vec<Value> {
    let mut rules = moto
        .lifecycle_rules(BUCKET)
        .as_array()
        .expect("rules")
        .clone();
    rules.sort_by(|a, b| a["ID"].as_str().cmp(&b["ID"].as_str()));
    rules
}

#[test]
fn s3_lifecycle_rule_in_force_equals_config() {
    let backend = Backend::s3();
    let moto = backend.moto();
    // another prefix's rule, which sawmill must leave alone
    let other = json!({
        "ID": "keep-other",
        "Status": "Enabled",
        "Filter": {"Prefix": "other/"},
        "Transitions": [{"Days": 60, "StorageClass": "GLACIER"}],
        "Expiration": {"Days": 3650},
    });
    moto.put_lifecycle_rules(BUCKET, json!([other.clone()]));
    assert_eq!(
        rules_by_id(moto),
        vec![other.clone()],
        "the other rule reads back as it was put"
    );

    let dir = tempfile::tempdir().unwrap();
    let first = [45, 120, 300, 730];
    let mut server = backend.start(
        dir.path(),
        &backend.config_with(20000, &lifecycle(true, first)),
    );
    assert_rules(
        moto,
        vec![other.clone(), sawmill_rule(first)],
        "bucket rules after the first start",
        &server,
    );
    assert!(server.terminate().success());

    // other days: the rule is replaced, not added again
    let second = [31, 95, 200, 500];
    let config = server.config.clone().unwrap();
    std::fs::write(
        &config,
        backend.config_with(20000, &lifecycle(true, second)),
    )
    .unwrap();
    server.spawn();
    assert_rules(
        moto,
        vec![other.clone(), sawmill_rule(second)],
        "bucket rules after a restart with other days: replaced, not added",
        &server,
    );
    assert!(server.terminate().success());

    // manage = false: the bucket's lifecycle is left as it is, whatever the days say
    let unmanaged = [60, 180, 365, 1000];
    std::fs::write(
        &config,
        backend.config_with(20000, &lifecycle(false, unmanaged)),
    )
    .unwrap();
    server.spawn();
    // the server is up and writing to the bucket
    let base = (now_nanos() / HOUR - 2) * HOUR;
    let (status, answer) = server.ingest(body(0, 30, base), "");
    assert_eq!(status, 200, "{answer}");
    let report = server.flush();
    assert_eq!(
        report["archive"]["archived_seq"].as_u64(),
        Some(30),
        "{report}"
    );
    assert!(!moto.list(BUCKET, "logs/v1/").is_empty(), "objects written");
    // (the server applies its rule at startup, before it is ready: no wait needed)
    assert_eq!(
        Value::Array(rules_by_id(moto)),
        Value::Array(vec![other, sawmill_rule(second)]),
        "bucket rules after a start with manage = false; log:\n{}",
        server.log.text()
    );
}

/// Runs `sawmill serve` with `config`, expecting it to exit by itself within a minute;
/// returns (exit status, stdout + stderr).
fn serve_until_exit(
    dir: &Path,
    config: &str,
    env: &[(String, String)],
) -> (std::process::ExitStatus, String) {
    let config_path = dir.join("sawmill.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = Command::new(common::binary())
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--config")
        .arg(&config_path)
        .env("SAWMILL_LOG", "info")
        .env_remove("SAWMILL_CONFIG")
        .env_remove("SAWMILL_DATA_DIR")
        .env_remove("SAWMILL_LISTEN")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sawmill serve");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "sawmill serve kept running with config:\n{config}\nstdout:\n{}\nstderr:\n{}",
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    (status, text)
}

#[test]
fn s3_impossible_lifecycle_is_a_startup_error() {
    let backend = Backend::s3();
    let moto = backend.moto();
    let cases: [(&str, [u32; 4], &str); 2] = [
        // S3 keeps objects 30 days before STANDARD_IA
        (
            "infrequent access after 10 days",
            [10, 90, 180, 400],
            "archive.lifecycle.infrequent_access_after_days",
        ),
        // tiers out of order
        (
            "glacier ir before infrequent access",
            [60, 40, 180, 400],
            "archive.lifecycle.",
        ),
    ];
    for (what, days, named) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = backend.config_with(20000, &lifecycle(true, days));
        let (status, output) = serve_until_exit(dir.path(), &config, &backend.env());
        eprintln!("{what}: {status}; output:\n{output}");
        assert!(
            !status.success(),
            "{what}: exit status {status}; output:\n{output}"
        );
        assert!(
            output.contains(named),
            "{what}: the error names {named}; output:\n{output}"
        );
        assert_eq!(
            moto.lifecycle_rules(BUCKET),
            json!([]),
            "{what}: no rule put into the bucket"
        );
    }
}

#[test]
fn s3_outage_backlog_grows_then_drains() {
    let backend = Backend::s3();
    let moto = backend.moto();
    let dir = tempfile::tempdir().unwrap();
    let server = backend.start(dir.path(), &backend.config());
    let base = (now_nanos() / HOUR - 5) * HOUR;
    let mut sent = 0u64;
    let mut ingest = |server: &Server, n: u64, when: &str| {
        let (status, answer) = server.ingest(body(sent, n, base), "");
        assert_eq!(status, 200, "ingest {when}: {answer}");
        sent += n;
    };
    for _ in 0..4 {
        ingest(&server, 100, "before the outage");
    }
    poll(Duration::from_secs(60), "objects before the outage", || {
        (!moto.list(BUCKET, "").is_empty()).then_some(())
    });
    let errors_before = metric_of(&server, "sawmill_archive_write_errors_total");

    moto.pause();
    // ingest keeps answering while the store hangs; the backlog grows, writes fail
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut observed = None;
    while Instant::now() < deadline {
        ingest(&server, 100, "during the outage");
        let text = server.metrics();
        let backlog = metric(&text, "sawmill_archive_backlog_events").expect("backlog metric");
        let errors = metric(&text, "sawmill_archive_write_errors_total").expect("errors metric");
        if backlog > 0.0 && errors > errors_before {
            observed = Some((backlog, errors));
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let Some((backlog, errors)) = observed else {
        moto.resume();
        panic!(
            "within 180 s of the outage, backlog > 0 and write errors > {errors_before} were \
             not both seen; metrics:\n{}\nlog:\n{}",
            server.metrics(),
            server.log.text()
        );
    };
    eprintln!("outage: backlog {backlog} events, {errors} write errors (before: {errors_before})");
    for _ in 0..3 {
        ingest(&server, 100, "during the outage, after write errors");
    }
    moto.resume();
    let report = flush_after_outage(&server);
    assert_eq!(
        report["archive"]["archived_seq"].as_u64(),
        Some(sent),
        "{report}"
    );

    let counts = eid_counts(&backend.objects(&server));
    assert_eq!(
        counts.len() as u64,
        sent,
        "every acknowledged event archived (backlog was {backlog}, errors {errors})"
    );
    let twice: Vec<_> = counts.iter().filter(|(_, &c)| c > 1).collect();
    assert!(twice.is_empty(), "archived more than once: {twice:?}");
    let (backlog, age) = poll(Duration::from_secs(30), "backlog back to 0", || {
        let text = server.metrics();
        let backlog = metric(&text, "sawmill_archive_backlog_events")?;
        let age = metric(&text, "sawmill_archive_backlog_age_seconds")?;
        (backlog == 0.0 && age == 0.0).then_some((backlog, age))
    });
    assert_eq!((backlog, age), (0.0, 0.0));
}

/// Flushes until the flush answers 200 (it answers an error while the archive waits to retry
/// a failed write), for three minutes at most; returns the flush report.
fn flush_after_outage(server: &Server) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut answers = Vec::new();
    loop {
        let (status, answer) = common::status_json(
            server
                .post("/api/v1/admin/flush")
                .send()
                .expect("flush request"),
        );
        if status == 200 {
            eprintln!("flush after the outage: {answer}; earlier answers: {answers:?}");
            return answer;
        }
        answers.push(format!("{status} {answer}"));
        assert!(
            Instant::now() < deadline,
            "flush did not succeed within 180 s of the outage's end: {answers:?}; log:\n{}",
            server.log.text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// An outage that starts when everything is archived: the backlog's age counts from the
/// oldest event acknowledged since, while writes fail, and is 0 again once it drained.
#[test]
fn s3_outage_backlog_age_counts_from_the_oldest_unarchived_event() {
    let backend = Backend::s3();
    let moto = backend.moto();
    let dir = tempfile::tempdir().unwrap();
    let server = backend.start(dir.path(), &backend.config());
    let base = (now_nanos() / HOUR - 5) * HOUR;
    let (status, answer) = server.ingest(body(0, 30, base), "");
    assert_eq!(status, 200, "{answer}");
    let report = server.flush();
    assert_eq!(
        report["archive"]["archived_seq"].as_u64(),
        Some(30),
        "{report}"
    );
    assert_eq!(metric_of(&server, "sawmill_archive_backlog_events"), 0.0);
    assert_eq!(
        metric_of(&server, "sawmill_archive_backlog_age_seconds"),
        0.0
    );

    moto.pause();
    let outage = Instant::now();
    let mut sent = 30;
    for round in 0..4 {
        // about 130 events an hour: every hour's batch fills and is sealed
        let (status, answer) = server.ingest(body(sent, 100, base), "");
        assert_eq!(status, 200, "ingest {round} during the outage: {answer}");
        sent += 100;
    }
    let errors = poll(Duration::from_secs(180), "a failed archive write", || {
        let errors = metric_of(&server, "sawmill_archive_write_errors_total");
        (errors > 0.0).then_some(errors)
    });
    let text = server.metrics();
    let backlog = metric(&text, "sawmill_archive_backlog_events").expect("backlog metric");
    let age = metric(&text, "sawmill_archive_backlog_age_seconds").expect("age metric");
    let elapsed = outage.elapsed().as_secs_f64();
    moto.resume();
    assert_eq!(backlog, (sent - 30) as f64, "backlog during the outage");
    // the oldest unarchived event was acknowledged right after the outage began, at least
    // one request timeout (5 s) ago
    assert!(
        age >= 1.0 && age >= elapsed - 2.0,
        "backlog age {age} s, {elapsed:.1} s into the outage, after {errors} failed writes \
         and with {backlog} events not archived; archive log lines:\n{}",
        server
            .log
            .text()
            .lines()
            .filter(|l| l.contains("archive"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    let report = flush_after_outage(&server);
    assert_eq!(
        report["archive"]["archived_seq"].as_u64(),
        Some(sent),
        "{report}"
    );
    let counts = eid_counts(&backend.objects(&server));
    assert_eq!(
        counts.len() as u64,
        sent,
        "every acknowledged event archived"
    );
    assert!(counts.values().all(|&c| c == 1), "no event archived twice");
    assert_eq!(
        metric_of(&server, "sawmill_archive_backlog_age_seconds"),
        0.0
    );
}
