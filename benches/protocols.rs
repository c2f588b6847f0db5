//! Ingest throughput of each protocol shippers speak, against sawmill's own `/api/v1/ingest`
//! in the same run: the same corpus, each protocol on a fresh server, the clock from the
//! first request until a search counts every event.
//!
//! `cargo bench --bench protocols -- --events 1000000 --rounds 3 --protocols native,bulk,otlp`
//!
//! - `native`: `POST /api/v1/ingest`, NDJSON batches;
//! - `bulk`: `POST /_bulk`, each line as a `create` action into the index `bench` followed by
//!   the line as the document (the shape Filebeat, Logstash and Vector send);
//! - `otlp`: `POST /v1/logs` in protobuf, as an OpenTelemetry SDK sends the same events: one
//!   resource per `service`/`host` (`service.name`, `host.name`), the message as the body,
//!   the level as `severityText`, the time as `timeUnixNano`, the other fields as attributes.
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

fn otlp(batches: &[(bytes::Bytes, u64)]) -> Vec<Request> {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use prost::Message;
    let text = |s: &str| AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    };
    let kv = |k: &str, v: AnyValue| KeyValue {
        key: k.to_string(),
        value: Some(v),
        ..Default::default()
    };
    batches
        .iter()
        .map(|(body, n)| {
            let mut groups: Vec<((String, String), Vec<LogRecord>)> = Vec::new();
            for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let mut event: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(line).expect("corpus line");
                let mut take = |k: &str| match event.remove(k) {
                    Some(serde_json::Value::String(s)) => s,
                    _ => String::new(),
                };
                let (service, host, level) = (take("service"), take("host"), take("level"));
                let message = take("message");
                let time = take("timestamp");
                let nanos = time::OffsetDateTime::parse(
                    &time,
                    &time::format_description::well_known::Rfc3339,
                )
                .expect("corpus timestamp")
                .unix_timestamp_nanos() as u64;
                let attributes = event
                    .iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => kv(k, text(s)),
                        other => kv(k, text(&other.to_string())),
                    })
                    .collect();
                let record = LogRecord {
                    time_unix_nano: nanos,
                    severity_text: level,
                    body: Some(text(&message)),
                    attributes,
                    ..Default::default()
                };
                let key = (service, host);
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, records)) => records.push(record),
                    None => groups.push((key, vec![record])),
                }
            }
            let resource_logs = groups
                .into_iter()
                .map(|((service, host), log_records)| ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![
                            kv("service.name", text(&service)),
                            kv("host.name", text(&host)),
                        ],
                        ..Default::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        log_records,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect();
            let request = ExportLogsServiceRequest { resource_logs };
            Request {
                path: "/v1/logs",
                content_type: "application/x-protobuf",
                body: request.encode_to_vec().into(),
                events: *n,
            }
        })
        .collect()
}

/// Checks that every event of `request` was accepted, from its answer.
fn accepted(request: &Request, answer: &[u8]) -> bool {
    if request.path == "/v1/logs" {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
        use prost::Message;
        return ExportLogsServiceResponse::decode(answer).is_ok_and(|r| {
            r.partial_success
                .is_none_or(|p| p.rejected_log_records == 0)
        });
    }
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(answer) else {
        return false;
    };
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
                        let answer = resp.bytes().unwrap_or_default();
                        if status == 503 || status == 429 {
                            std::thread::sleep(Duration::from_millis(200));
                            continue;
                        }
                        assert_eq!(status, 200, "{}: {answer:?}", r.path);
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
    let protocols = arg("protocols", "native,bulk,otlp");
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
                "otlp" => otlp(&batches),
                other => panic!("unknown protocol {other}: use native, bulk, otlp"),
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
