//! Ingest throughput end to end: HTTP → fsynced WAL → searchable, with concurrent clients,
//! beside plain tantivy indexing the same corpus in the same run.
//!
//! `cargo bench --bench ingest -- --events 1000000 --clients 4`

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{
    arg, corpus, count_all, ingest_all, percentile, split_batches, tantivy_baseline, Server,
};

/// While the load runs, sends one uniquely worded event every 250 ms and measures how long
/// after its acknowledgment a search finds it (milliseconds).
fn freshness_probe(url: &str, done: &AtomicBool) -> Vec<f64> {
    let http = reqwest::blocking::Client::new();
    let mut samples = Vec::new();
    let mut n = 0u64;
    while !done.load(Ordering::SeqCst) {
        n += 1;
        let word = format!("freshnessprobe{n}x{}", std::process::id());
        let resp = support::authed(http.post(format!("{url}/api/v1/ingest")))
            .header("content-type", "application/x-ndjson")
            .body(format!(
                "{{\"message\":\"{word}\",\"service\":\"probe\"}}\n"
            ))
            .send()
            .expect("probe ingest");
        assert_eq!(resp.status().as_u16(), 200);
        let acked = Instant::now();
        loop {
            let v: serde_json::Value = support::authed(http.get(format!("{url}/api/v1/search")))
                .query(&[("q", word.as_str()), ("start", "now-1h"), ("limit", "0")])
                .send()
                .and_then(|r| r.json())
                .expect("probe search");
            if v["total"].as_u64() == Some(1) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        samples.push(acked.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(250));
    }
    samples
}

fn main() {
    let events: u64 = arg("events", "1000000").parse().expect("--events");
    let clients: usize = arg("clients", "4").parse().expect("--clients");
    let batch_bytes: usize = arg("batch-bytes", "2000000")
        .parse()
        .expect("--batch-bytes");
    let refresh = arg("refresh", "1s");
    let path = corpus(events, 7, "2026-11-20T00:00:00Z", "50");

    let (batches, total_bytes) = split_batches(&path, batch_bytes);
    let n_events: u64 = batches.iter().map(|b| b.1).sum();

    let dir = support::root()
        .join("target")
        .join("bench-data")
        .join("ingest-server");
    let threads = arg("writer-threads", "2");
    let memory = arg("writer-memory-mib", "256");
    let config = format!(
        "[index]\nrefresh_interval = \"{refresh}\"\nhot_retention = \"3650d\"\nwriter_threads = {threads}\nwriter_memory_mib = {memory}\n"
    );
    // --secure yes: a tenant key for ingest and search, the tenant's rate limit on (high
    // enough never to refuse, so its cost is measured, not its refusals) and the redaction
    // detectors of --redact (default all; none for no redaction); an operator key for the
    // metrics
    let secure = arg("secure", "no") == "yes";
    let redact = arg("redact", "all");
    let config = if secure {
        let redact_line = if redact == "none" {
            String::new()
        } else {
            let names: Vec<String> = redact.split(',').map(|n| format!("\"{n}\"")).collect();
            format!("redact = [{}]\n", names.join(", "))
        };
        format!(
            "{config}[tenants.bench]\ningest_bytes_per_sec = 10000000000\ningest_burst_bytes = 20000000000\n{redact_line}"
        )
    } else {
        config
    };
    let mut operator_key = None;
    let server = Server::start_prepared(&dir, &config, |data| {
        if secure {
            support::use_api_key(&support::create_key(
                data,
                &[
                    "--tenant", "bench", "--scope", "ingest", "--scope", "search",
                ],
            ));
            operator_key = Some(support::create_key(
                data,
                &["--all-tenants", "--scope", "admin"],
            ));
        }
    });
    let batches = Arc::new(batches);
    let done = Arc::new(AtomicBool::new(false));
    // the probe writes to today's partition and searches often: it is off for throughput runs
    let probe = (arg("freshness", "no") == "yes").then(|| {
        let (url, done) = (server.url.clone(), done.clone());
        std::thread::spawn(move || freshness_probe(&url, &done))
    });
    let started = Instant::now();
    ingest_all(&server.url, &batches, clients);
    let acked = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let mut freshness = probe
        .map(|p| p.join().expect("probe thread"))
        .unwrap_or_default();
    let probes = freshness.len() as u64;
    let operator = |req: reqwest::blocking::RequestBuilder| match &operator_key {
        Some(k) => req.bearer_auth(k),
        None => req,
    };
    if arg("flush", "no") == "yes" {
        operator(
            reqwest::blocking::Client::new().post(format!("{}/api/v1/admin/flush", server.url)),
        )
        .send()
        .expect("flush");
    }
    // searchable: wait until the exact total is visible
    while count_all(&server.url) != n_events + probes {
        std::thread::sleep(Duration::from_millis(20));
    }
    let searchable = started.elapsed();
    let metrics = operator(reqwest::blocking::Client::new().get(format!("{}/metrics", server.url)))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default();
    let redacted = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sawmill_redacted_events_total{tenant=\"bench\"}"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "0".into());
    let metric = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let refusals: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("sawmill_rejected_requests_total{"))
        .collect();
    let commits = metric("sawmill_index_commit_seconds_count");
    let commit_secs = metric("sawmill_index_commit_seconds_sum");
    let fsyncs = metric("sawmill_wal_fsync_seconds_count");
    let fsync_secs = metric("sawmill_wal_fsync_seconds_sum");
    let rss = server.peak_rss_mib();
    let cpu = server.cpu_seconds();
    server.stop();

    let mb = total_bytes as f64 / 1e6;
    println!("corpus: {} ({n_events} events, {mb:.1} MB)", path.display());
    if !refusals.is_empty() {
        println!("  refused and retried: {}", refusals.join(", "));
    }
    if secure {
        println!("secure: API key (tenant bench), rate limit on, redaction {redact}: {redacted} events redacted");
    }
    println!(
        "sawmill: clients={clients} batch_bytes={batch_bytes} refresh={refresh}: acked in {:.2}s, searchable in {:.2}s: {:.0} events/s, {:.1} MB/s, peak RSS {rss:.0} MiB, server CPU {cpu:.2}s ({:.1} MB per CPU-second)",
        acked.as_secs_f64(),
        searchable.as_secs_f64(),
        n_events as f64 / searchable.as_secs_f64(),
        mb / searchable.as_secs_f64(),
        mb / cpu
    );
    println!(
        "  index commits: {commits} taking {commit_secs:.2}s in all; wal fsyncs: {fsyncs} taking {fsync_secs:.2}s in all"
    );
    freshness.sort_by(|a, b| a.total_cmp(b));
    if probes > 0 {
        println!(
        "  freshness under load (acknowledged -> searchable, {probes} probes): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&freshness, 50.0),
        percentile(&freshness, 99.0),
        freshness.last().copied().unwrap_or(f64::NAN)
    );
    }
    if arg("baseline", "yes") == "yes" {
        match tantivy_baseline(&path, 2) {
            Some(line) => println!("tantivy-baseline (2 threads): {line}"),
            None => println!("tantivy-baseline: not run"),
        }
    }
}
