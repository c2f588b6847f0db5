//! Operations endpoints and API shapes: health, readiness, metrics, flush, POST search,
//! unknown paths.

use crate::common;

use common::{assert_error, now_nanos, status_json, Server};
use serde_json::{json, Value};

fn events(n: u64, tag: &str) -> String {
    let ts = now_nanos() / 1_000_000 - 60_000;
    (0..n)
        .map(|i| {
            json!({"timestamp": ts + i as i64, "level": if i % 3 == 0 { "error" } else { "info" }, "message": format!("api event {i}"), "tag": tag, "i": i})
                .to_string()
                + "\n"
        })
        .collect()
}

#[test]
fn health_readiness_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    for path in ["/healthz", "/readyz"] {
        let (status, body) = status_json(server.get(path).send().unwrap());
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, answer) = server.ingest(events(42, "metrics"), "?refresh=wait_for");
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = server.ingest("{\"message\":\"ok\"}\nbroken\n", "?refresh=wait_for");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(server.total("tag:metrics"), 42);

    let text = server.metrics();
    for name in [
        "sawmill_ingest_events_total",
        "sawmill_wal_fsync_seconds",
        "sawmill_index_lag_events",
        "sawmill_search_seconds",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    assert_eq!(
        common::metric_sample(&text, "sawmill_ingest_events_total", "accepted"),
        Some(43.0),
        "accepted events:\n{text}"
    );
    assert_eq!(
        common::metric_sample(&text, "sawmill_ingest_events_total", "rejected"),
        Some(1.0),
        "rejected events:\n{text}"
    );
    // two group commits at least, one per request
    let fsyncs = common::metric_sample(&text, "sawmill_wal_fsync_seconds_count", "").unwrap_or(0.0);
    assert!(fsyncs >= 2.0, "fsync count {fsyncs}:\n{text}");
    // everything was waited for: nothing lags
    assert_eq!(
        common::metric_sample(&text, "sawmill_index_lag_events", ""),
        Some(0.0),
        "{text}"
    );
}

#[test]
fn flush_commits_and_says_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), "[index]\nrefresh_interval = \"1h\"\n");
    let (status, answer) = server.ingest(events(25, "flush"), "");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(server.total("tag:flush"), 0, "a 1h refresh has not run yet");
    let report = server.flush();
    assert!(report.is_object(), "{report}");
    assert_eq!(
        report["index"]["committed_seq"], 25,
        "flush report: {report}"
    );
    assert!(
        report["index"]["partitions_committed"].as_u64() >= Some(1),
        "flush report: {report}"
    );
    assert_eq!(
        server.total("tag:flush"),
        25,
        "flushed events are searchable"
    );
}

#[test]
fn post_search_equals_get_search() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (status, answer) = server.ingest(events(300, "post"), "?refresh=wait_for");
    assert_eq!(status, 200, "{answer}");

    let strip = |mut v: Value| {
        v.as_object_mut().map(|o| o.remove("took_ms"));
        v
    };
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("q", "level:error"),
            ("start", "now-1d"),
            ("end", "now+1h"),
            ("limit", "7"),
        ],
        vec![
            ("q", "tag:post AND i:>=100"),
            ("start", "0"),
            ("end", "now+1d"),
            ("limit", "50"),
            ("order", "asc"),
        ],
        vec![
            ("q", "*"),
            ("start", "now-1d"),
            ("end", "now+1h"),
            ("limit", "0"),
        ],
    ];
    for params in cases {
        let (gs, get) = server.search(&params);
        assert_eq!(gs, 200, "{get}");
        let body: serde_json::Map<String, Value> = params
            .iter()
            .map(|(k, v)| {
                let v = match *k {
                    "limit" => json!(v.parse::<u64>().unwrap()),
                    _ => json!(v),
                };
                (k.to_string(), v)
            })
            .collect();
        let (ps, post) = status_json(
            server
                .post("/api/v1/search")
                .header("content-type", "application/json")
                .body(Value::Object(body).to_string())
                .send()
                .unwrap(),
        );
        assert_eq!(ps, 200, "{post}");
        assert_eq!(
            strip(post.clone()),
            strip(get.clone()),
            "POST and GET differ for {params:?}"
        );
        assert!(post["took_ms"].is_u64(), "{post}");
    }
    // a cursor from GET continues a POST search
    let (_, first) = server.search(&[
        ("q", "tag:post"),
        ("start", "0"),
        ("end", "now+1d"),
        ("limit", "100"),
    ]);
    assert_eq!(first["total"], 300);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (ps, second) = status_json(
        server
            .post("/api/v1/search")
            .json(&json!({"q": "tag:post", "start": "0", "end": "now+1d", "limit": 100, "cursor": cursor}))
            .send()
            .unwrap(),
    );
    assert_eq!(ps, 200, "{second}");
    let ids = |v: &Value| -> Vec<u64> {
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["i"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&first), (200..300).rev().collect::<Vec<_>>());
    assert_eq!(ids(&second), (100..200).rev().collect::<Vec<_>>());
}

#[test]
fn unknown_paths_are_json_404() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    for path in ["/nope", "/api/v1/nope", "/api/v2/search"] {
        assert_error(status_json(server.get(path).send().unwrap()), 404, path);
    }
    assert_error(
        status_json(server.post("/api/v1/nope").body("x").send().unwrap()),
        404,
        "POST /api/v1/nope",
    );
}
