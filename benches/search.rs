//! Search latency on a multi-million-event corpus, with requests that vary (windows, terms,
//! services, bounds) so no cache flatters them.
//!
//! `cargo bench --bench search -- --events 2000000 --runs 200`
//!
//! The corpus spans about 2.3 days (10 events/s of log time), so searches cross day
//! partitions. The data directory is kept in target/bench-data/search-server and reused by
//! later runs with the same corpus (`--reuse yes`).

mod support;

use rand::{Rng, SeedableRng};
use std::time::Instant;
use support::{arg, corpus, count_all, ingest_all, percentile, split_batches, Server};

const START: &str = "2026-11-20T00:00:00Z";
const START_SECS: i64 = 1_795_132_800; // 2026-11-20T00:00:00Z
const RATE: f64 = 10.0;

/// Makes one request: endpoint and query parameters.
type MakeRequest<'a> = dyn FnMut(&mut rand::rngs::StdRng) -> (String, Vec<(String, String)>) + 'a;

fn main() {
    let events: u64 = arg("events", "2000000").parse().expect("--events");
    let runs: usize = arg("runs", "200").parse().expect("--runs");
    let path = corpus(events, 11, START, "10");
    let dir = support::root()
        .join("target")
        .join("bench-data")
        .join(format!("search-server-{events}"));
    let config = "[index]\nrefresh_interval = \"1s\"\nhot_retention = \"3650d\"\n";
    let reuse = arg("reuse", "yes") == "yes" && dir.join("data").join("index").exists();
    let server = if reuse {
        Server::spawn(&dir, &dir.join("sawmill.toml"))
    } else {
        let server = Server::start(&dir, config);
        load(&server, &path);
        server
    };
    let http = reqwest::blocking::Client::new();
    println!("corpus: {} events searchable", count_all(&server.url));
    let span = (events as f64 / RATE) as i64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let services = [
        "hdfs",
        "apache",
        "openssh",
        "linux",
        "zookeeper",
        "spark",
        "hadoop",
        "healthapp",
        "web",
    ];
    let terms = [
        "error",
        "failed",
        "connection",
        "block",
        "session",
        "received",
        "exception",
        "closed",
        "timeout",
        "user",
        "invalid",
        "packet",
        "authentication",
        "starting",
        "served",
    ];
    let rfc = |secs: i64| {
        time::OffsetDateTime::from_unix_timestamp(secs)
            .expect("time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    let mut run = |name: &str, f: &mut MakeRequest| {
        let mut samples = Vec::with_capacity(runs);
        let mut hits_total = 0u64;
        for _ in 0..runs {
            let (endpoint, params) = f(&mut rng);
            let t = Instant::now();
            let resp = http
                .get(format!("{}{endpoint}", server.url))
                .query(&params)
                .send()
                .expect("request");
            assert_eq!(resp.status().as_u16(), 200, "{params:?}");
            let v: serde_json::Value = resp.json().expect("json");
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
            hits_total += match v["buckets"].as_array() {
                Some(buckets) => buckets.iter().filter_map(|b| b["count"].as_u64()).sum(),
                None => v["total"].as_u64().unwrap_or(0),
            };
        }
        samples.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{name:<40} p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms  (mean matches {:.0})",
            percentile(&samples, 50.0),
            percentile(&samples, 99.0),
            samples.last().copied().unwrap_or(f64::NAN),
            hits_total as f64 / runs as f64
        );
    };
    run("keyword + 2h range, newest 100", &mut |rng| {
        let s = START_SECS + rng.gen_range(0..span - 7200);
        let svc = services[rng.gen_range(0..services.len())];
        (
            "/api/v1/search".into(),
            vec![
                ("q".into(), format!("service:{svc}")),
                ("start".into(), rfc(s)),
                ("end".into(), rfc(s + 7200)),
                ("limit".into(), "100".into()),
            ],
        )
    });
    run("full-text term, 24h, newest 100", &mut |rng| {
        let s = START_SECS + rng.gen_range(0..(span - 86_400).max(1));
        let term = terms[rng.gen_range(0..terms.len())];
        (
            "/api/v1/search".into(),
            vec![
                ("q".into(), term.to_string()),
                ("start".into(), rfc(s)),
                ("end".into(), rfc(s + 86_400)),
                ("limit".into(), "100".into()),
            ],
        )
    });
    run("attribute range, 24h, newest 100", &mut |rng| {
        let s = START_SECS + rng.gen_range(0..(span - 86_400).max(1));
        let lo = [200, 300, 400, 500][rng.gen_range(0..4)];
        let q = if rng.gen_bool(0.5) {
            format!("status:[{lo} TO {}]", lo + 99)
        } else {
            format!("bytes:>={}", rng.gen_range(1000..50_000))
        };
        (
            "/api/v1/search".into(),
            vec![
                ("q".into(), q),
                ("start".into(), rfc(s)),
                ("end".into(), rfc(s + 86_400)),
                ("limit".into(), "100".into()),
            ],
        )
    });
    run("histogram, 24h, auto interval", &mut |rng| {
        let s = START_SECS + rng.gen_range(0..(span - 86_400).max(1));
        (
            "/api/v1/histogram".into(),
            vec![
                ("q".into(), "*".into()),
                ("start".into(), rfc(s)),
                ("end".into(), rfc(s + 86_400)),
                ("interval".into(), "auto".into()),
            ],
        )
    });
    println!("server peak RSS {:.0} MiB", server.peak_rss_mib());
    server.stop();
}

/// Ingests the corpus with 4 clients and waits until it is searchable.
fn load(server: &Server, path: &std::path::Path) {
    let started = Instant::now();
    let (batches, _) = split_batches(path, 2_000_000);
    let n: u64 = batches.iter().map(|b| b.1).sum();
    ingest_all(&server.url, &std::sync::Arc::new(batches), 4);
    reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/admin/flush", server.url))
        .send()
        .expect("flush");
    assert_eq!(
        count_all(&server.url),
        n,
        "every event searchable after flush"
    );
    eprintln!(
        "loaded {n} events in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
