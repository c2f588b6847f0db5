//! The Lambda forwarder: CPU time and peak memory per MB of CloudWatch Logs data, and the
//! binary's start time (the floor of a cold start).
//!
//! `cargo bench --bench forwarder -- --events 200000`
//!
//! 1. The messages of the corpus (`--events`, the ingest benchmark's generator and seed) are
//!    cut into CloudWatch Logs subscription events the way CloudWatch Logs builds them
//!    (DATA_MESSAGE JSON, gzip, base64, `{"awslogs":{"data":…}}`), `--per-event` log events
//!    each, and written as event files. MB below are the log messages' bytes, the data a
//!    user pays CloudWatch to carry.
//! 2. A release `sawmill` server on a fresh data directory receives them from the release
//!    `sawmill-forwarder invoke FILE…`: once with every file in one process (a warm Lambda
//!    handling invocation after invocation) and once per file, one process each (every
//!    invocation a cold start). CPU time (user + system) and peak RSS are those of the
//!    forwarder processes alone (`wait4` of each), not of the server.
//! 3. Start time: `sawmill-forwarder invoke` on a CONTROL_MESSAGE event (configuration, AWS
//!    SDK set-up, the handler; no request) and `sawmill-forwarder --version`, `--starts` times
//!    each, wall clock from spawn to exit.
//!
//! Options: `--events N`, `--per-event N`, `--starts N`.

#[path = "support/mod.rs"]
mod support;

use base64::Engine;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use support::{arg, corpus, percentile, root, Server};

fn forwarder_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_sawmill")).with_file_name("sawmill-forwarder");
    if !path.exists() {
        let status = Command::new("cargo")
            .args(["build", "--release", "-p", "sawmill-forwarder"])
            .current_dir(root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p sawmill-forwarder failed");
    }
    path
}

/// What one child process used: wall seconds, CPU seconds (user + system), peak RSS (MiB).
struct Usage {
    cpu: f64,
    peak_mib: f64,
}

/// Runs `cmd` to completion (its output discarded unless it fails) and measures it with
/// `wait4`, so the numbers are this process alone.
// the child is reaped by wait4, which std's Child does not know about
#[allow(clippy::zombie_processes)]
fn run_measured(cmd: &mut Command) -> Usage {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut status = 0;
    // SAFETY: wait4 writes into the zeroed rusage we own, for our own child's pid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    let err = reader.join().unwrap_or_default();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "sawmill-forwarder failed: {err}"
    );
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        cpu: secs(usage.ru_utime) + secs(usage.ru_stime),
        peak_mib: usage.ru_maxrss as f64 / 1024.0,
    }
}

fn subscription_event(group: &str, first_id: u64, messages: &[(i64, String)]) -> Vec<u8> {
    let data = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": group,
        "logStream": "2026/11/27/[$LATEST]0123456789abcdef",
        "subscriptionFilters": ["sawmill"],
        "logEvents": messages.iter().enumerate().map(|(i, (ts, m))| serde_json::json!({
            "id": format!("{:056}", first_id + i as u64),
            "timestamp": ts,
            "message": m,
        })).collect::<Vec<_>>(),
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(&data).expect("json"))
        .expect("gzip");
    let b64 = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
    serde_json::to_vec(&serde_json::json!({"awslogs": {"data": b64}})).expect("json")
}

fn main() {
    let events: u64 = arg("events", "200000").parse().expect("--events");
    let per_event: usize = arg("per-event", "2000").parse().expect("--per-event");
    let starts: usize = arg("starts", "20").parse().expect("--starts");
    let binary = forwarder_binary();
    let path = corpus(events, 7, "2026-11-20T00:00:00Z", "50");
    let dir = root().join("target").join("bench-data").join("forwarder");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create bench dir");

    // 1. event files
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000;
    let reader = BufReader::new(std::fs::File::open(&path).expect("open corpus"));
    let mut files = Vec::new();
    let mut chunk: Vec<(i64, String)> = Vec::new();
    let (mut message_bytes, mut payload_bytes, mut n) = (0usize, Vec::new(), 0u64);
    let mut flush = |chunk: &mut Vec<(i64, String)>, files: &mut Vec<PathBuf>| {
        if chunk.is_empty() {
            return;
        }
        let body = subscription_event("/bench/app", n, chunk);
        payload_bytes.push(body.len());
        let file = dir.join(format!("event-{:05}.json", files.len()));
        std::fs::write(&file, body).expect("write event");
        files.push(file);
        n += chunk.len() as u64;
        chunk.clear();
    };
    for line in reader.lines() {
        let line = line.expect("read corpus");
        let v: serde_json::Value = serde_json::from_str(&line).expect("corpus line");
        let message = v
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or(line);
        message_bytes += message.len();
        chunk.push((now_ms - 3_600_000 + chunk.len() as i64, message));
        if chunk.len() == per_event {
            flush(&mut chunk, &mut files);
        }
    }
    flush(&mut chunk, &mut files);
    let mb = message_bytes as f64 / 1e6;
    payload_bytes.sort_unstable();
    println!(
        "{} subscription events of {per_event} log events: {events} messages, {mb:.1} MB; payload (base64 of gzip) median {:.0} KB, max {:.0} KB (Lambda's asynchronous limit is 256 KB)",
        files.len(),
        payload_bytes[payload_bytes.len() / 2] as f64 / 1e3,
        payload_bytes[payload_bytes.len() - 1] as f64 / 1e3
    );

    // 2. shipping
    let run = |label: &str, groups: Vec<Vec<PathBuf>>| {
        let server = Server::start(
            &dir.join(format!("server-{label}")),
            "[index]\nrefresh_interval = \"1s\"\nhot_retention = \"3650d\"\n",
        );
        let started = Instant::now();
        let (mut cpu, mut peak) = (0.0f64, 0.0f64);
        for group in &groups {
            let u = run_measured(
                Command::new(&binary)
                    .arg("invoke")
                    .args(group)
                    .env("SAWMILL_URL", &server.url)
                    .env("AWS_REGION", "us-east-1")
                    .env("AWS_ACCESS_KEY_ID", "bench")
                    .env("AWS_SECRET_ACCESS_KEY", "bench")
                    .env("AWS_EC2_METADATA_DISABLED", "true")
                    .env("SAWMILL_LOG", "warn"),
            );
            cpu += u.cpu;
            peak = peak.max(u.peak_mib);
        }
        let wall = started.elapsed().as_secs_f64();
        let flushed = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/admin/flush", server.url))
            .send()
            .expect("flush");
        assert!(flushed.status().is_success(), "flush failed");
        let total = support::count_all(&server.url);
        assert_eq!(total, events, "every event arrives once");
        server.stop();
        println!(
            "{label:>28}: {:>3} process(es), wall {wall:.2} s ({:.1} MB/s), forwarder CPU {cpu:.2} s = {:.3} CPU-s per MB, peak RSS of a process {peak:.1} MiB",
            groups.len(),
            mb / wall,
            cpu / mb
        );
    };
    run("warm (one process)", vec![files.clone()]);
    run(
        "cold (one process each)",
        files.iter().map(|f| vec![f.clone()]).collect(),
    );

    // 3. start time
    let control = dir.join("control.json");
    let mut data = serde_json::json!({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs",
        "logGroup": "", "logStream": "", "subscriptionFilters": [], "logEvents": []});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data.to_string().as_bytes()).expect("gzip");
    data = serde_json::json!({"awslogs": {"data": base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"))}});
    std::fs::write(&control, data.to_string()).expect("write control event");
    let time = |args: &[&str]| -> Vec<f64> {
        let mut times: Vec<f64> = (0..starts)
            .map(|_| {
                let t = Instant::now();
                let out = Command::new(&binary)
                    .args(args)
                    .env("SAWMILL_URL", "http://127.0.0.1:9")
                    .env("AWS_REGION", "us-east-1")
                    .env("AWS_ACCESS_KEY_ID", "bench")
                    .env("AWS_SECRET_ACCESS_KEY", "bench")
                    .env("AWS_EC2_METADATA_DISABLED", "true")
                    .output()
                    .expect("run sawmill-forwarder");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times
    };
    let control_path = control.to_str().expect("utf-8 path");
    for (label, args) in [
        ("--version", vec!["--version"]),
        ("invoke CONTROL_MESSAGE", vec!["invoke", control_path]),
    ] {
        let t = time(&args);
        println!(
            "start {label:>24}: min {:.1} ms, p50 {:.1} ms, p90 {:.1} ms over {starts} runs",
            t[0],
            percentile(&t, 50.0),
            percentile(&t, 90.0)
        );
    }
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    let stripped = dir.join("sawmill-forwarder.stripped");
    let stripped_size = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&binary)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&stripped).ok())
        .map(|m| m.len() as f64 / 1e6);
    println!(
        "binary: {} ({:.1} MB; stripped, as a Lambda package would carry it: {})",
        binary.display(),
        size as f64 / 1e6,
        stripped_size.map_or("strip not available".to_string(), |s| format!("{s:.1} MB"))
    );
}
