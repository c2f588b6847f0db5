//! Ingest throughput of each protocol shippers speak, against sawmill's own `/api/v1/ingest`
//! in the same run: the same corpus, each protocol on a fresh server, the clock from the
//! first request until a search counts every event.
//!
//! `cargo bench --bench protocols -- --events 1000000 --rounds 3 --protocols native,bulk`
//!
//! - `native`: `POST /api/v1/ingest`, NDJSON batches;
//! - `bulk`: `POST /_bulk`, each line as a `create` action into the index `bench` followed by
//!   the line as the document (the shape Filebeat, Logstash and Vector send).
//!
//! Batches hold about `--batch-bytes` of corpus text (2 MB by default), sent by `--clients`
//! threads (4 by default); MB/s is corpus bytes over the time to searchable, so every
//! protocol is measured on the same data whatever its framing adds.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{arg, corpus, count_all, split_batches, Server};

/// One request body, how many events it holds and how to check its answer.
struct Request {
    path: &'static str,
    content_type: &'static str,
    body: bytes::Bytes,
    events: u64,
}

fn native(batches: &[(bytes::Bytes, u64)]) -> Vec<Request> {
    batches
        .iter()
        .map(|(body, n)| Request {
            path: "/api/v1/ingest",
            content_type: "application/x-ndjson",
            body: body.clone(),
            events: *n,
        })
        .collect()
}

fn bulk(batches: &[(bytes::Bytes, u64)]) -> Vec<Request> {
    const ACTION: &[u8] = b"{\"create\":{\"_index\":\"bench\"}}\n";
    batches
        .iter()
        .map(|(body, n)| {
            let mut out = Vec::with_capacity(body.len() + *n as usize * ACTION.len());
            for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                out.extend_from_slice(ACTION);
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            Request {
                path: "/_bulk",
                content_type: "application/x-ndjson",
                body: out.into(),
                events: *n,
            }
        })
        .collect()
}

/// Checks that every event of `request` was accepted, from its answer.
fn accepted(request: &Request, answer: &serde_json::Value) -> bool {
    match request.path {
        "/_bulk" => {
            answer["errors"] == false
                && answer["items"].as_array().map(|a| a.len() as u64) == Some(request.events)
        }
        _ => answer["accepted"].as_u64() == Some(request.events),
    }
}

fn send_all(url: &str, requests: &Arc<Vec<Request>>, clients: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (requests, next, url) = (requests.clone(), next.clone(), url.to_string());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(300))
                    .build()
                    .expect("client");
                while let Some(r) = requests.get(next.fetch_add(1, Ordering::Relaxed)) {
                    loop {
                        let resp = http
                            .post(format!("{url}{}", r.path))
                            .header("content-type", r.content_type)
                            .body(r.body.clone())
                            .send()
                            .expect("request");
                        let status = resp.status().as_u16();
                        let text = resp.text().unwrap_or_default();
                        if status == 503 || status == 429 {
                            std::thread::sleep(Duration::from_millis(200));
                            continue;
                        }
                        assert_eq!(status, 200, "{}: {text}", r.path);
                        let answer: serde_json::Value =
                            serde_json::from_str(&text).expect("a JSON answer");
                        assert!(accepted(r, &answer), "{}: not all accepted", r.path);
                        break;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

fn main() {
    let events: u64 = arg("events", "1000000").parse().expect("--events");
    let clients: usize = arg("clients", "4").parse().expect("--clients");
    let rounds: usize = arg("rounds", "3").parse().expect("--rounds");
    let batch_bytes: usize = arg("batch-bytes", "2000000")
        .parse()
        .expect("--batch-bytes");
    let protocols = arg("protocols", "native,bulk");
    let path = corpus(events, 7, "2026-11-20T00:00:00Z", "50");
    let (batches, total_bytes) = split_batches(&path, batch_bytes);
    let n_events: u64 = batches.iter().map(|b| b.1).sum();
    let mb = total_bytes as f64 / 1e6;
    println!("corpus: {} ({n_events} events, {mb:.1} MB)", path.display());
    let config = "[index]\nrefresh_interval = \"1s\"\nhot_retention = \"3650d\"\n";
    let dir = support::root()
        .join("target")
        .join("bench-data")
        .join("protocols");
    let mut results: Vec<(String, Vec<f64>)> = Vec::new();
    for round in 1..=rounds {
        for name in protocols.split(',') {
            let requests = Arc::new(match name {
                "native" => native(&batches),
                "bulk" => bulk(&batches),
                other => panic!("unknown protocol {other}: use native, bulk"),
            });
            let server = Server::start(&dir, config);
            let started = Instant::now();
            send_all(&server.url, &requests, clients);
            while count_all(&server.url) != n_events {
                std::thread::sleep(Duration::from_millis(20));
            }
            let secs = started.elapsed().as_secs_f64();
            let cpu = server.cpu_seconds();
            server.stop();
            println!(
                "round {round} {name:>6}: searchable in {secs:.2}s, {:.1} MB/s, {:.0} events/s, server CPU {cpu:.2}s",
                mb / secs,
                n_events as f64 / secs
            );
            match results.iter_mut().find(|(n, _)| n == name) {
                Some((_, v)) => v.push(mb / secs),
                None => results.push((name.to_string(), vec![mb / secs])),
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let reference = results
        .iter()
        .find(|(n, _)| n == "native")
        .map(|(_, v)| mean(v));
    for (name, v) in &results {
        let ratio = reference.map(|r| mean(v) / r).unwrap_or(f64::NAN);
        println!(
            "{name:>6}: mean {:.1} MB/s over {} rounds, {ratio:.2}x native",
            mean(v),
            v.len()
        );
    }
}
