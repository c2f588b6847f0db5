//! Search end to end: a deterministic corpus is ingested and every answer of the server is
//! compared with counts the test computes from the same data.

use crate::common;

use common::{gzip, now_nanos, parse_rfc3339, rfc3339, zstd, Checks, Rng, Server};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use time::format_description::well_known::Rfc3339;

const MS: i64 = 1_000_000;
const SEC: i64 = 1_000 * MS;
const HOUR: i64 = 3_600 * SEC;
const DAY: i64 = 24 * HOUR;

const WORDS: &[&str] = &[
    "timeout",
    "timer",
    "timestamp",
    "connection",
    "reset",
    "refused",
    "user",
    "login",
    "failed",
    "payment",
    "order",
    "placed",
    "cache",
    "miss",
    "retry",
    "upstream",
    "database",
    "query",
    "slow",
    "request",
    "done",
    "shutdown",
    "disk",
    "full",
];
const SERVICES: &[&str] = &["checkout", "search", "auth", "billing", "gateway"];
const STATUSES: &[i64] = &[
    200, 200, 200, 201, 204, 301, 304, 400, 404, 429, 499, 500, 502, 503, 504, 599, 600,
];
const METHODS: &[&str] = &["GET", "get", "Get", "POST", "PUT", "DELETE"];

/// A level as sent and its normalized form.
fn levels() -> Vec<(Value, &'static str)> {
    vec![
        (json!("err"), "ERROR"),
        (json!("Error"), "ERROR"),
        (json!("ERROR"), "ERROR"),
        (json!(50), "ERROR"),
        (json!("warning"), "WARN"),
        (json!("WARN"), "WARN"),
        (json!(40), "WARN"),
        (json!("INFO"), "INFO"),
        (json!("info"), "INFO"),
        (json!("notice"), "INFO"),
        (json!(30), "INFO"),
        (json!("debug"), "DEBUG"),
        (json!("crit"), "FATAL"),
        (json!("TRACE"), "TRACE"),
    ]
}

/// One generated event: what was sent and what the server should make of it.
#[derive(Clone, Debug)]
struct Ev {
    n: u64,
    /// Nanoseconds, whole milliseconds.
    ts: i64,
    service: String,
    host: String,
    level: Option<&'static str>,
    message: String,
    /// The words of the message as the server's analyzer sees them (lower-cased).
    words: Vec<String>,
    status: Option<i64>,
    latency: f64,
    http: Option<Value>,
    client_ip: String,
    cached: bool,
    /// The NDJSON line sent.
    line: String,
}

impl Ev {
    fn has(&self, word: &str) -> bool {
        self.words.iter().any(|w| w == word)
    }

    fn has_prefix(&self, prefix: &str) -> bool {
        self.words.iter().any(|w| w.starts_with(prefix))
    }

    fn phrase(&self, a: &str, b: &str) -> bool {
        self.words.windows(2).any(|w| w[0] == a && w[1] == b)
    }

    fn svc(&self, s: &str) -> bool {
        self.service.eq_ignore_ascii_case(s)
    }

    fn lvl(&self, l: &str) -> bool {
        self.level == Some(l)
    }

    fn st(&self, f: impl Fn(i64) -> bool) -> bool {
        self.status.is_some_and(f)
    }

    fn method(&self) -> Option<&str> {
        self.http.as_ref().and_then(|h| h["method"].as_str())
    }

    /// The event as a search hit should show it (timestamp compared separately).
    fn expected_hit(&self) -> Value {
        let mut m = serde_json::Map::new();
        if let Some(l) = self.level {
            m.insert("level".into(), json!(l));
        }
        m.insert("message".into(), json!(self.message));
        m.insert("service".into(), json!(self.service));
        m.insert("host".into(), json!(self.host));
        m.insert("n".into(), json!(self.n));
        if let Some(s) = self.status {
            m.insert("status".into(), json!(s));
        }
        m.insert("latency".into(), json!(self.latency));
        if let Some(h) = &self.http {
            m.insert("http".into(), h.clone());
        }
        m.insert("client_ip".into(), json!(self.client_ip));
        m.insert("cached".into(), json!(self.cached));
        Value::Object(m)
    }
}

/// `count` events with ids from `first_n`, timestamps in `[start, end)`.
fn corpus(seed: u64, first_n: u64, count: usize, start: i64, end: i64) -> Vec<Ev> {
    let mut rng = Rng::new(seed);
    let levels = levels();
    let mut out: Vec<Ev> = Vec::with_capacity(count);
    let span_ms = ((end - start) / MS) as u64;
    for i in 0..count {
        let n = first_n + i as u64;
        let mut ts = start + rng.below(span_ms) as i64 * MS;
        if !out.is_empty() && rng.chance(3) {
            // several events at exactly the same instant
            ts = out[rng.below(out.len() as u64) as usize].ts;
        }
        let mut obj = serde_json::Map::new();
        // timestamp in several forms
        let ts_kind = rng.below(20);
        match ts_kind {
            0..=12 => {
                obj.insert("timestamp".into(), json!(rfc3339(ts)));
            }
            13..=14 => {
                let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts))
                    .unwrap()
                    .to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap())
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap();
                obj.insert("@timestamp".into(), json!(t));
            }
            15..=17 => {
                obj.insert("timestamp".into(), json!(ts / MS));
            }
            18 => {
                obj.insert("ts".into(), json!(ts / MS));
            }
            _ => {
                ts -= ts.rem_euclid(SEC);
                obj.insert("time".into(), json!(ts / SEC));
            }
        }
        let mut service = rng.pick(SERVICES).to_string();
        if rng.chance(10) {
            service = service.to_uppercase();
        }
        let host = format!("web-{}", rng.below(12));
        let level = if rng.chance(5) {
            None
        } else {
            let (sent, norm) = rng.pick(&levels).clone();
            let key = *rng.pick(&["level", "severity", "lvl"]);
            obj.insert(key.into(), sent);
            Some(norm)
        };
        // message
        let len = 3 + rng.below(6) as usize;
        let mut words: Vec<String> = (0..len).map(|_| rng.pick(WORDS).to_string()).collect();
        if rng.chance(8) {
            let at = rng.below(words.len() as u64 + 1) as usize;
            words.insert(at, "connection".into());
            words.insert(at + 1, "reset".into());
        }
        let mut message = String::new();
        for (j, w) in words.iter().enumerate() {
            if j > 0 {
                let sep: &&str = rng.pick(&[" ", " ", " ", ", ", ": "]);
                message.push_str(sep);
            }
            if j == 0 && rng.chance(20) {
                let mut c = w.chars();
                let first = c.next().unwrap().to_ascii_uppercase();
                message.push(first);
                message.push_str(c.as_str());
            } else {
                message.push_str(w);
            }
        }
        if rng.chance(30) {
            message.push('.');
        }
        let msg_key = if rng.chance(15) { "msg" } else { "message" };
        obj.insert(msg_key.into(), json!(message));
        obj.insert("service".into(), json!(service));
        obj.insert("host".into(), json!(host));
        obj.insert("n".into(), json!(n));
        let status = if rng.chance(10) {
            None
        } else {
            Some(*rng.pick(STATUSES))
        };
        if let Some(s) = status {
            obj.insert("status".into(), json!(s));
        }
        let latency = if rng.chance(3) {
            0.5
        } else {
            rng.below(2000) as f64 / 1000.0 + 0.0005
        };
        obj.insert("latency".into(), json!(latency));
        let http = if rng.chance(15) {
            None
        } else {
            Some(json!({"method": *rng.pick(METHODS), "path": format!("/api/{}", rng.below(5))}))
        };
        if let Some(h) = &http {
            obj.insert("http".into(), h.clone());
        }
        let client_ip = format!("10.0.0.{}", rng.below(16));
        obj.insert("client_ip".into(), json!(client_ip));
        let cached = rng.chance(50);
        obj.insert("cached".into(), json!(cached));
        let line = Value::Object(obj).to_string();
        out.push(Ev {
            n,
            ts,
            service,
            host,
            level,
            message,
            words,
            status,
            latency,
            http,
            client_ip,
            cached,
            line,
        });
    }
    out
}

fn ndjson(events: &[Ev]) -> Vec<u8> {
    let mut body = Vec::new();
    for e in events {
        body.extend_from_slice(e.line.as_bytes());
        body.push(b'\n');
    }
    body
}

/// Ingests `events` in five requests: plain NDJSON, gzip, zstd, `application/json`, and zstd
/// with `refresh=wait_for` last, so everything is searchable when it returns.
fn ingest_corpus(server: &Server, events: &[Ev]) {
    let chunks: Vec<&[Ev]> = events.chunks(events.len().div_ceil(5)).collect();
    assert_eq!(chunks.len(), 5);
    for (i, chunk) in chunks.iter().enumerate() {
        let raw = ndjson(chunk);
        let (qs, ctype, enc, body) = match i {
            0 => ("", "application/x-ndjson", None, raw),
            1 => ("", "application/x-ndjson", Some("gzip"), gzip(&raw)),
            2 => ("", "application/x-ndjson", Some("zstd"), zstd(&raw)),
            3 => ("", "application/json", None, raw),
            _ => (
                "?refresh=wait_for",
                "application/x-ndjson",
                Some("zstd"),
                zstd(&raw),
            ),
        };
        let mut headers = vec![("content-type", ctype)];
        if let Some(e) = enc {
            headers.push(("content-encoding", e));
        }
        let started = std::time::Instant::now();
        let (status, answer) = server.ingest_with(qs, &headers, body);
        assert_eq!(status, 200, "ingest chunk {i}: {answer}");
        assert_eq!(
            answer,
            json!({"accepted": chunk.len(), "rejected": 0, "errors": []}),
            "ingest chunk {i}"
        );
        if i == 4 {
            // everything acknowledged before is searchable once refresh=wait_for answers
            let got = server.search(&[
                ("q", "*"),
                ("start", "0"),
                ("end", "now+1d"),
                ("limit", "0"),
            ]);
            assert_eq!(
                got.1["total"].as_u64(),
                Some(events.len() as u64),
                "the refresh=wait_for ingest answered after {:?} but not every event is searchable",
                started.elapsed()
            );
        }
    }
}

/// The hour-aligned end of the corpus (an hour before now) and its start three days earlier.
fn corpus_range() -> (i64, i64) {
    let now = now_nanos();
    let end = now - now.rem_euclid(HOUR) - HOUR;
    (end - 3 * DAY, end)
}

fn total(server: &Server, q: &str, start: &str, end: &str) -> Result<u64, String> {
    let (status, body) = server.search(&[("q", q), ("start", start), ("end", end), ("limit", "0")]);
    if status != 200 {
        return Err(format!("status {status}: {body}"));
    }
    if !body["hits"].as_array().is_some_and(Vec::is_empty) {
        return Err(format!("limit=0 returned hits: {body}"));
    }
    body["total"]
        .as_u64()
        .ok_or_else(|| format!("no total: {body}"))
}

type Pred = Box<dyn Fn(&Ev) -> bool>;

fn queries() -> Vec<(&'static str, Pred)> {
    vec![
        ("*", Box::new(|_: &Ev| true)),
        ("", Box::new(|_: &Ev| true)),
        ("timeout", Box::new(|e: &Ev| e.has("timeout"))),
        ("TimeOut", Box::new(|e: &Ev| e.has("timeout"))),
        ("message:refused", Box::new(|e: &Ev| e.has("refused"))),
        (
            "\"connection reset\"",
            Box::new(|e: &Ev| e.phrase("connection", "reset")),
        ),
        (
            "\"reset connection\"",
            Box::new(|e: &Ev| e.phrase("reset", "connection")),
        ),
        ("service:checkout", Box::new(|e: &Ev| e.svc("checkout"))),
        ("service:CHECKOUT", Box::new(|e: &Ev| e.svc("checkout"))),
        ("host:web-3", Box::new(|e: &Ev| e.host == "web-3")),
        ("level:error", Box::new(|e: &Ev| e.lvl("ERROR"))),
        ("level:ERROR", Box::new(|e: &Ev| e.lvl("ERROR"))),
        ("level:err", Box::new(|e: &Ev| e.lvl("ERROR"))),
        ("level:warning", Box::new(|e: &Ev| e.lvl("WARN"))),
        ("level:info", Box::new(|e: &Ev| e.lvl("INFO"))),
        ("level:fatal", Box::new(|e: &Ev| e.lvl("FATAL"))),
        (
            "status:[500 TO 599]",
            Box::new(|e: &Ev| e.st(|s| (500..=599).contains(&s))),
        ),
        (
            "status:{500 TO 599}",
            Box::new(|e: &Ev| e.st(|s| s > 500 && s < 599)),
        ),
        (
            "status:[500 TO 599}",
            Box::new(|e: &Ev| e.st(|s| (500..599).contains(&s))),
        ),
        ("status:[500 TO *]", Box::new(|e: &Ev| e.st(|s| s >= 500))),
        ("status:>=500", Box::new(|e: &Ev| e.st(|s| s >= 500))),
        ("status:>500", Box::new(|e: &Ev| e.st(|s| s > 500))),
        ("status:<300", Box::new(|e: &Ev| e.st(|s| s < 300))),
        ("status:<=404", Box::new(|e: &Ev| e.st(|s| s <= 404))),
        ("status:500", Box::new(|e: &Ev| e.status == Some(500))),
        ("latency:<0.5", Box::new(|e: &Ev| e.latency < 0.5)),
        ("latency:<=0.5", Box::new(|e: &Ev| e.latency <= 0.5)),
        ("latency:>1.5", Box::new(|e: &Ev| e.latency > 1.5)),
        ("latency:0.5", Box::new(|e: &Ev| e.latency == 0.5)),
        (
            "latency:[0.25 TO 0.75]",
            Box::new(|e: &Ev| (0.25..=0.75).contains(&e.latency)),
        ),
        (
            "http.method:GET",
            Box::new(|e: &Ev| e.method().is_some_and(|m| m.eq_ignore_ascii_case("get"))),
        ),
        (
            "http.method:get",
            Box::new(|e: &Ev| e.method().is_some_and(|m| m.eq_ignore_ascii_case("get"))),
        ),
        (
            "http.method:\"POST\"",
            Box::new(|e: &Ev| e.method() == Some("POST")),
        ),
        (
            "client_ip:\"10.0.0.7\"",
            Box::new(|e: &Ev| e.client_ip == "10.0.0.7"),
        ),
        (
            "client_ip:10.0.0.1",
            Box::new(|e: &Ev| e.client_ip == "10.0.0.1"),
        ),
        ("cached:true", Box::new(|e: &Ev| e.cached)),
        ("cached:false", Box::new(|e: &Ev| !e.cached)),
        (
            "service:checkout AND level:error",
            Box::new(|e: &Ev| e.svc("checkout") && e.lvl("ERROR")),
        ),
        (
            "service:checkout level:error",
            Box::new(|e: &Ev| e.svc("checkout") && e.lvl("ERROR")),
        ),
        (
            "timeout OR refused",
            Box::new(|e: &Ev| e.has("timeout") || e.has("refused")),
        ),
        ("NOT level:info", Box::new(|e: &Ev| !e.lvl("INFO"))),
        ("-cached:true", Box::new(|e: &Ev| !e.cached)),
        (
            "-service:auth timeout",
            Box::new(|e: &Ev| !e.svc("auth") && e.has("timeout")),
        ),
        (
            "timeout AND NOT service:auth",
            Box::new(|e: &Ev| !e.svc("auth") && e.has("timeout")),
        ),
        (
            "(service:checkout OR service:billing) AND status:>=500",
            Box::new(|e: &Ev| (e.svc("checkout") || e.svc("billing")) && e.st(|s| s >= 500)),
        ),
        (
            "service:checkout OR service:billing AND status:>=500",
            Box::new(|e: &Ev| e.svc("checkout") || (e.svc("billing") && e.st(|s| s >= 500))),
        ),
        (
            "level:(error OR warn)",
            Box::new(|e: &Ev| e.lvl("ERROR") || e.lvl("WARN")),
        ),
        (
            "service:checkout AND NOT (status:>=500 OR cached:true)",
            Box::new(|e: &Ev| e.svc("checkout") && !(e.st(|s| s >= 500) || e.cached)),
        ),
        (
            "\"connection reset\" -level:error http.method:get",
            Box::new(|e: &Ev| {
                e.phrase("connection", "reset")
                    && !e.lvl("ERROR")
                    && e.method().is_some_and(|m| m.eq_ignore_ascii_case("get"))
            }),
        ),
        ("time*", Box::new(|e: &Ev| e.has_prefix("time"))),
        ("timer*", Box::new(|e: &Ev| e.has_prefix("timer"))),
        (
            "host:web-1*",
            Box::new(|e: &Ev| e.host.starts_with("web-1")),
        ),
        ("status:*", Box::new(|e: &Ev| e.status.is_some())),
        ("http.method:*", Box::new(|e: &Ev| e.http.is_some())),
        ("http:*", Box::new(|e: &Ev| e.http.is_some())),
        ("level:*", Box::new(|e: &Ev| e.level.is_some())),
        ("n:1234", Box::new(|e: &Ev| e.n == 1234)),
    ]
}

#[test]
fn search_counts_ranges_order_histogram_and_hits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (start, end) = corpus_range();
    let events = corpus(0x5EED_0001, 0, 20_000, start, end);
    ingest_corpus(&server, &events);
    let (s, e) = (rfc3339(start), rfc3339(end));
    let mut checks = Checks::default();

    // --- totals of queries over the whole range
    for (q, pred) in queries() {
        let want = events.iter().filter(|ev| pred(ev)).count() as u64;
        checks.eq(
            &format!("total of {q:?}"),
            total(&server, q, &s, &e),
            Ok(want),
        );
    }

    // --- time ranges: sub-ranges, several formats, day boundaries, [start, end)
    let in_range = |a: i64, b: i64, pred: &dyn Fn(&Ev) -> bool| {
        events
            .iter()
            .filter(|ev| ev.ts >= a && ev.ts < b && pred(ev))
            .count() as u64
    };
    let first_midnight = start - start.rem_euclid(DAY) + DAY;
    let ranges = [
        (start + 10 * HOUR, start + 34 * HOUR),
        (start + 5 * HOUR + 123 * MS, start + 50 * HOUR + 7 * SEC),
        (
            first_midnight - 30 * 60 * SEC,
            first_midnight + 30 * 60 * SEC,
        ),
        (start - DAY, start + HOUR),
        (end - HOUR, end + DAY),
        (start + HOUR, start + HOUR),
    ];
    for (a, b) in ranges {
        for (q, pred) in [
            ("*", &(|_: &Ev| true) as &dyn Fn(&Ev) -> bool),
            ("level:error", &|ev: &Ev| ev.lvl("ERROR")),
        ] {
            let want = in_range(a, b, pred);
            checks.eq(
                &format!(
                    "total of {q:?} in [{}, {}) (RFC 3339)",
                    rfc3339(a),
                    rfc3339(b)
                ),
                total(&server, q, &rfc3339(a), &rfc3339(b)),
                Ok(want),
            );
            if a % MS == 0 && b % MS == 0 {
                checks.eq(
                    &format!("total of {q:?} in [{}, {}) (epoch ms)", a / MS, b / MS),
                    total(&server, q, &(a / MS).to_string(), &(b / MS).to_string()),
                    Ok(want),
                );
            }
        }
    }
    // an instant several events share: included as start, excluded as end
    let mut per_ts: BTreeMap<i64, u64> = BTreeMap::new();
    for ev in &events {
        *per_ts.entry(ev.ts).or_default() += 1;
    }
    let (&shared, &count) = per_ts
        .iter()
        .find(|(t, c)| **c >= 2 && **t > start + HOUR)
        .expect("the corpus has events sharing a timestamp");
    checks.eq(
        "events at exactly the shared instant, [T, T+1ms)",
        total(&server, "*", &rfc3339(shared), &rfc3339(shared + MS)),
        Ok(count),
    );
    checks.eq(
        "[T-1h, T) excludes events at T",
        total(&server, "*", &rfc3339(shared - HOUR), &rfc3339(shared)),
        Ok(in_range(shared - HOUR, shared, &|_| true)),
    );
    checks.eq(
        "[T, T+1h) includes events at T",
        total(&server, "*", &rfc3339(shared), &rfc3339(shared + HOUR)),
        Ok(in_range(shared, shared + HOUR, &|_| true)),
    );
    checks.eq(
        "[T, T) is empty",
        total(&server, "*", &rfc3339(shared), &rfc3339(shared)),
        Ok(0),
    );

    // --- ordering: newest first by default, oldest first with order=asc
    for (q, order, limit) in [
        ("*", None, 1000usize),
        ("*", Some("desc"), 1000),
        ("*", Some("asc"), 1000),
        ("level:error", Some("asc"), 300),
        ("service:checkout", None, 300),
    ] {
        let pred: Box<dyn Fn(&Ev) -> bool> = match q {
            "*" => Box::new(|_| true),
            "level:error" => Box::new(|ev| ev.lvl("ERROR")),
            _ => Box::new(|ev| ev.svc("checkout")),
        };
        let mut want: Vec<i64> = events
            .iter()
            .filter(|ev| pred(ev))
            .map(|ev| ev.ts)
            .collect();
        want.sort_unstable();
        if order != Some("asc") {
            want.reverse();
        }
        want.truncate(limit);
        let limit_s = limit.to_string();
        let mut params = vec![("q", q), ("start", &s), ("end", &e), ("limit", &limit_s)];
        if let Some(o) = order {
            params.push(("order", o));
        }
        let (status, body) = server.search(&params);
        checks.eq(&format!("status of ordered search {params:?}"), status, 200);
        let got: Vec<i64> = body["hits"]
            .as_array()
            .map(|h| h.iter().map(hit_ts).collect())
            .unwrap_or_default();
        let what = format!("hits of {q:?} order={order:?} limit={limit}");
        checks.eq(&format!("{what}: count"), got.len(), want.len());
        let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
        checks.eq(
            &format!("{what}: first hit out of order (index, got, want)"),
            first_diff.map(|i| (i, rfc3339(got[i]), rfc3339(want[i]))),
            None,
        );
    }

    // --- hits are the normalized events
    let (status, body) = server.search(&[
        ("q", "n:[0 TO 199]"),
        ("start", &s),
        ("end", &e),
        ("limit", "200"),
    ]);
    checks.eq("status of n:[0 TO 199]", status, 200);
    let hits = body["hits"].as_array().cloned().unwrap_or_default();
    checks.eq("hits of n:[0 TO 199]", hits.len(), 200);
    for hit in &hits {
        let Some(n) = hit["n"].as_u64() else {
            checks.truth(&format!("hit without n: {hit}"), false);
            continue;
        };
        let ev = &events[n as usize];
        let ts_text = hit["timestamp"].as_str().unwrap_or("");
        checks.truth(
            &format!("hit {n}: timestamp {ts_text:?} is RFC 3339 UTC ending in Z"),
            ts_text.ends_with('Z') && time::OffsetDateTime::parse(ts_text, &Rfc3339).is_ok(),
        );
        checks.eq(&format!("hit {n}: timestamp"), hit_ts(hit), ev.ts);
        let mut rest = hit.clone();
        rest.as_object_mut().unwrap().remove("timestamp");
        checks.eq(
            &format!("hit {n}: fields (sent {})", ev.line),
            rest,
            ev.expected_hit(),
        );
    }

    // --- histogram
    let hour_buckets = |a: i64, b: i64, width: i64, pred: &dyn Fn(&Ev) -> bool| {
        let mut m: BTreeMap<i64, u64> = BTreeMap::new();
        for ev in events
            .iter()
            .filter(|ev| ev.ts >= a && ev.ts < b && pred(ev))
        {
            *m.entry(ev.ts - ev.ts.rem_euclid(width)).or_default() += 1;
        }
        m
    };
    for (q, a, b, interval, width) in [
        ("*", start, end, "1h", HOUR),
        (
            "level:error",
            start + 90 * 60 * SEC,
            start + 30 * HOUR,
            "1h",
            HOUR,
        ),
        ("service:checkout", start, end, "1d", DAY),
        (
            "status:>=500",
            start + 7 * SEC,
            end - 3 * SEC,
            "10m",
            600 * SEC,
        ),
    ] {
        let pred: Box<dyn Fn(&Ev) -> bool> = match q {
            "*" => Box::new(|_| true),
            "level:error" => Box::new(|ev| ev.lvl("ERROR")),
            "service:checkout" => Box::new(|ev| ev.svc("checkout")),
            _ => Box::new(|ev| ev.st(|s| s >= 500)),
        };
        let want = hour_buckets(a, b, width, &*pred);
        let what = format!(
            "histogram {q:?} [{}, {}) interval={interval}",
            rfc3339(a),
            rfc3339(b)
        );
        match histogram(&server, q, &rfc3339(a), &rfc3339(b), interval) {
            Err(err) => checks.truth(&format!("{what}: {err}"), false),
            Ok((got_interval, buckets)) => {
                checks.eq(&format!("{what}: interval"), got_interval, width);
                check_buckets(&mut checks, &what, &buckets, width);
                checks.eq(
                    &format!("{what}: first bucket"),
                    buckets.first().map(|b| b.0),
                    Some(a - a.rem_euclid(width)),
                );
                checks.truth(
                    &format!("{what}: last bucket ends at or after the range end"),
                    buckets.last().is_some_and(|l| l.0 < b && l.0 + width >= b),
                );
                let got: BTreeMap<i64, u64> = buckets.iter().filter(|b| b.1 > 0).copied().collect();
                checks.eq(
                    &format!("{what}: buckets (start, got, want) that differ"),
                    bucket_diff(&got, &want),
                    vec![],
                );
                checks.eq(
                    &format!("{what}: sum of counts equals search total"),
                    Ok(buckets.iter().map(|b| b.1).sum::<u64>()),
                    total(&server, q, &rfc3339(a), &rfc3339(b)),
                );
            }
        }
    }
    for q in ["*", "timeout"] {
        let what = format!("histogram {q:?} interval=auto");
        match histogram(&server, q, &s, &e, "auto") {
            Err(err) => checks.truth(&format!("{what}: {err}"), false),
            Ok((width, buckets)) => {
                checks.truth(&format!("{what}: has buckets"), !buckets.is_empty());
                check_buckets(&mut checks, &what, &buckets, width);
                let got: BTreeMap<i64, u64> = buckets.iter().filter(|b| b.1 > 0).copied().collect();
                let want = hour_buckets(start, end, width, &|ev| q == "*" || ev.has(q));
                checks.eq(
                    &format!("{what}: buckets (start, got, want) that differ"),
                    bucket_diff(&got, &want),
                    vec![],
                );
            }
        }
    }

    // --- limits
    let (status, body) = server.search(&[("q", "*"), ("start", &s), ("end", &e), ("limit", "0")]);
    checks.eq("limit=0 status", status, 200);
    checks.eq(
        "limit=0 total",
        body["total"].as_u64(),
        Some(events.len() as u64),
    );
    checks.eq("limit=0 hits", body["hits"].clone(), json!([]));
    let (status, body) =
        server.search(&[("q", "*"), ("start", &s), ("end", &e), ("limit", "10000")]);
    checks.eq("limit=10000 status", status, 200);
    checks.eq(
        "limit=10000 hit count",
        body["hits"].as_array().map(Vec::len),
        Some(10_000),
    );
    let (status, body) =
        server.search(&[("q", "*"), ("start", &s), ("end", &e), ("limit", "10001")]);
    checks.eq("limit=10001 status", status, 400);
    checks.truth(
        &format!("limit=10001 answers a JSON error: {body}"),
        body["error"].as_str().is_some_and(|m| !m.is_empty()),
    );
    // default limit is 100
    let (status, body) = server.search(&[("q", "*"), ("start", &s), ("end", &e)]);
    checks.eq("default limit status", status, 200);
    checks.eq(
        "default limit hits",
        body["hits"].as_array().map(Vec::len),
        Some(100),
    );

    checks.finish();
}

fn hit_ts(hit: &Value) -> i64 {
    hit["timestamp"]
        .as_str()
        .map(parse_rfc3339)
        .unwrap_or(i64::MIN)
}

/// Reads `10s`, `1m`, `1h`, `1d` as nanoseconds.
fn interval_nanos(text: &str) -> Option<i64> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let n: i64 = digits.parse().ok()?;
    let unit = match unit {
        "ms" => MS,
        "s" => SEC,
        "m" => 60 * SEC,
        "h" => HOUR,
        "d" => DAY,
        "w" => 7 * DAY,
        _ => return None,
    };
    Some(n * unit)
}

/// `(interval, [(bucket start, count)])` of a histogram request.
fn histogram(
    server: &Server,
    q: &str,
    start: &str,
    end: &str,
    interval: &str,
) -> Result<(i64, Vec<(i64, u64)>), String> {
    let resp = server
        .get("/api/v1/histogram")
        .query(&[
            ("q", q),
            ("start", start),
            ("end", end),
            ("interval", interval),
        ])
        .send()
        .map_err(|e| e.to_string())?;
    let (status, body) = common::status_json(resp);
    if status != 200 {
        return Err(format!("status {status}: {body}"));
    }
    let width = body["interval"]
        .as_str()
        .and_then(interval_nanos)
        .ok_or_else(|| format!("unreadable interval: {body}"))?;
    let buckets = body["buckets"]
        .as_array()
        .ok_or_else(|| format!("no buckets: {body}"))?
        .iter()
        .map(|b| {
            Ok((
                parse_rfc3339(b["start"].as_str().ok_or("bucket without start")?),
                b["count"].as_u64().ok_or("bucket without count")?,
            ))
        })
        .collect::<Result<Vec<_>, &str>>()?;
    Ok((width, buckets))
}

/// Buckets whose counts differ: (start, got, want).
fn bucket_diff(got: &BTreeMap<i64, u64>, want: &BTreeMap<i64, u64>) -> Vec<(String, u64, u64)> {
    let starts: std::collections::BTreeSet<i64> = got.keys().chain(want.keys()).copied().collect();
    starts
        .into_iter()
        .map(|t| {
            (
                t,
                got.get(&t).copied().unwrap_or(0),
                want.get(&t).copied().unwrap_or(0),
            )
        })
        .filter(|(_, g, w)| g != w)
        .map(|(t, g, w)| (rfc3339(t), g, w))
        .collect()
}

/// Buckets are in time order, one interval apart, aligned to the interval.
fn check_buckets(checks: &mut Checks, what: &str, buckets: &[(i64, u64)], width: i64) {
    for pair in buckets.windows(2) {
        if pair[1].0 - pair[0].0 != width {
            checks.truth(
                &format!(
                    "{what}: buckets {} and {} are not one interval apart",
                    rfc3339(pair[0].0),
                    rfc3339(pair[1].0)
                ),
                false,
            );
            return;
        }
    }
    checks.truth(
        &format!("{what}: buckets aligned to the interval"),
        buckets.iter().all(|b| b.0.rem_euclid(width) == 0),
    );
}

/// `n` values of hits.
fn ns(hits: &[Value]) -> Vec<u64> {
    hits.iter()
        .map(|h| h["n"].as_u64().expect("hit has n"))
        .collect()
}

#[test]
fn pagination_is_complete_and_stable_under_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (start, end) = corpus_range();
    let events = corpus(0x5EED_0002, 0, 6_000, start, end);
    ingest_corpus(&server, &events);
    let (s, e) = (rfc3339(start), rfc3339(end));
    let q = "level:error OR status:>=500";
    let matches = |ev: &Ev| ev.lvl("ERROR") || ev.st(|s| s >= 500);
    let want: HashSet<u64> = events
        .iter()
        .filter(|ev| matches(ev))
        .map(|ev| ev.n)
        .collect();
    assert!(want.len() > 137 * 10, "corpus too small: {}", want.len());

    // oldest first, nothing arriving meanwhile: exactly the matching set, in order
    let mut seen: Vec<u64> = Vec::new();
    let mut last_ts = i64::MIN;
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = vec![
            ("q", q),
            ("start", &s),
            ("end", &e),
            ("limit", "137"),
            ("order", "asc"),
        ];
        if let Some(c) = &cursor {
            params.push(("cursor", c));
        }
        let (status, body) = server.search(&params);
        assert_eq!(status, 200, "page {pages}: {body}");
        assert_eq!(
            body["total"].as_u64(),
            Some(want.len() as u64),
            "page {pages} total"
        );
        let hits = body["hits"].as_array().unwrap();
        assert!(hits.len() <= 137);
        for h in hits {
            let t = hit_ts(h);
            assert!(t >= last_ts, "page {pages}: asc order broken");
            last_ts = t;
        }
        seen.extend(ns(hits));
        pages += 1;
        assert!(pages < 1000, "pagination does not end");
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "asc pages repeat events");
    assert_eq!(unique, want, "asc pages miss or add events");

    // newest first while new matching events arrive, spread over the whole range
    let mut extra_n = 1_000_000;
    let mut new_ns: HashSet<u64> = HashSet::new();
    let mut seen: Vec<u64> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut last_ts = i64::MAX;
    let mut pages = 0;
    loop {
        if pages == 3 || pages == 10 {
            let mut batch = corpus(0x5EED_0003 + pages, extra_n, 300, start, end + HOUR / 2);
            for ev in &mut batch {
                // make every new event match the query
                let mut v: Value = serde_json::from_str(&ev.line).unwrap();
                v["level"] = json!("error");
                v.as_object_mut().unwrap().remove("severity");
                v.as_object_mut().unwrap().remove("lvl");
                ev.line = v.to_string();
                new_ns.insert(ev.n);
            }
            extra_n += 300;
            let (status, answer) = server.ingest(ndjson(&batch), "?refresh=wait_for");
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["accepted"], 300, "{answer}");
        }
        let mut params = vec![("q", q), ("start", &s), ("end", &e), ("limit", "137")];
        if let Some(c) = &cursor {
            params.push(("cursor", c));
        }
        let (status, body) = server.search(&params);
        assert_eq!(status, 200, "page {pages}: {body}");
        let hits = body["hits"].as_array().unwrap();
        for h in hits {
            let t = hit_ts(h);
            assert!(t <= last_ts, "page {pages}: desc order broken");
            last_ts = t;
        }
        seen.extend(ns(hits));
        pages += 1;
        assert!(pages < 1000, "pagination does not end");
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "desc pages repeat events");
    let missing: Vec<_> = want.difference(&unique).collect();
    assert!(
        missing.is_empty(),
        "pages miss {} original events: {missing:?}",
        missing.len()
    );
    let foreign: Vec<_> = unique
        .iter()
        .filter(|n| !want.contains(n) && !new_ns.contains(n))
        .collect();
    assert!(
        foreign.is_empty(),
        "pages hold events that do not match: {foreign:?}"
    );
    // and the new events are all there when searched afresh
    let all: HashSet<u64> = ns(&server.search_all(q, &s, &rfc3339(end + HOUR)))
        .into_iter()
        .collect();
    let expected_all: HashSet<u64> = want.union(&new_ns).copied().collect();
    assert_eq!(
        all, expected_all,
        "final search differs from original + new events"
    );
}
