//! Ingest throughput end to end: HTTP → fsynced WAL → searchable, with concurrent clients,
//! beside plain tantivy indexing the same corpus in the same run.
//!
//! `cargo bench --bench ingest -- --events 1000000 --clients 4`

mod support;

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{arg, corpus, tantivy_baseline, Server};

fn main() {
    let events: u64 = arg("events", "1000000").parse().expect("--events");
    let clients: usize = arg("clients", "4").parse().expect("--clients");
    let batch_bytes: usize = arg("batch-bytes", "2000000")
        .parse()
        .expect("--batch-bytes");
    let refresh = arg("refresh", "1s");
    let path = corpus(events, 7, "2026-11-20T00:00:00Z", "50");

    // cut the corpus into batches of whole lines
    let mut batches: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut cur = Vec::with_capacity(batch_bytes + 4096);
    let mut lines_in = 0u64;
    let mut total_bytes = 0usize;
    for line in BufReader::new(std::fs::File::open(&path).expect("open corpus")).split(b'\n') {
        let line = line.expect("read corpus");
        total_bytes += line.len() + 1;
        cur.extend_from_slice(&line);
        cur.push(b'\n');
        lines_in += 1;
        if cur.len() >= batch_bytes {
            batches.push((std::mem::take(&mut cur), lines_in));
            lines_in = 0;
        }
    }
    if !cur.is_empty() {
        batches.push((cur, lines_in));
    }
    let n_events: u64 = batches.iter().map(|b| b.1).sum();

    let dir = support::root()
        .join("target")
        .join("bench-data")
        .join("ingest-server");
    let config = format!("[index]\nrefresh_interval = \"{refresh}\"\nhot_retention = \"3650d\"\n");
    let server = Server::start(&dir, &config);
    let batches = Arc::new(batches);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let batches = batches.clone();
            let next = next.clone();
            let url = format!("{}/api/v1/ingest", server.url);
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(300))
                    .build()
                    .expect("client");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((body, n)) = batches.get(i) else {
                        break;
                    };
                    loop {
                        let resp = http
                            .post(&url)
                            .header("content-type", "application/x-ndjson")
                            .body(body.clone())
                            .send()
                            .expect("ingest");
                        let status = resp.status().as_u16();
                        let text = resp.text().unwrap_or_default();
                        if status == 503 || status == 429 {
                            std::thread::sleep(Duration::from_millis(200));
                            continue;
                        }
                        assert_eq!(status, 200, "{text}");
                        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
                        assert_eq!(v["accepted"].as_u64(), Some(*n), "{text}");
                        break;
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
    let acked = started.elapsed();
    // searchable: wait until the exact total is visible
    let http = reqwest::blocking::Client::new();
    loop {
        let v: serde_json::Value = http
            .get(format!("{}/api/v1/search", server.url))
            .query(&[
                ("q", "*"),
                ("start", "0"),
                ("end", "now+3650d"),
                ("limit", "0"),
            ])
            .send()
            .and_then(|r| r.json())
            .expect("search");
        if v["total"].as_u64() == Some(n_events) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let searchable = started.elapsed();
    let rss = server.peak_rss_mib();
    server.stop();

    let mb = total_bytes as f64 / 1e6;
    println!("corpus: {} ({n_events} events, {mb:.1} MB)", path.display());
    println!(
        "sawmill: clients={clients} batch_bytes={batch_bytes} refresh={refresh}: acked in {:.2}s, searchable in {:.2}s: {:.0} events/s, {:.1} MB/s, peak RSS {rss:.0} MiB",
        acked.as_secs_f64(),
        searchable.as_secs_f64(),
        n_events as f64 / searchable.as_secs_f64(),
        mb / searchable.as_secs_f64()
    );
    if arg("baseline", "yes") == "yes" {
        match tantivy_baseline(&path, 2) {
            Some(line) => println!("tantivy-baseline (2 threads): {line}"),
            None => println!("tantivy-baseline: not run"),
        }
    }
}
