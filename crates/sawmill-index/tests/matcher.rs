//! The in-memory matcher against the index: a seeded corpus of varied events is indexed in real
//! partitions, and for every query the set of event ids a search returns must equal the set the
//! matcher accepts (or both must reject the query with the same message).

use sawmill_core::Event;
use sawmill_index::matcher::{EventView, Matcher, TokenBuffer};
use sawmill_index::partition::DAY_NANOS;
use sawmill_index::query::{parse, Query};
use sawmill_index::{
    search, Indexer, IndexerConfig, Order, Partitions, SearchError, SearchRequest,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

const SEC: i64 = 1_000_000_000;
/// 2026-11-20T00:00:00Z
const T0: i64 = 1_795_132_800 * SEC;
/// 2026-11-22T12:00:00Z: resolves `now` in queries.
const NOW: i64 = T0 + 2 * DAY_NANOS + 12 * 3600 * SEC;
const EVENTS: usize = 3000;
const TENANT: &str = "t";

/// SplitMix64: a small seeded generator, so the corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const WORDS: &[&str] = &[
    "connection",
    "reset",
    "by",
    "peer",
    "timeout",
    "Timeout",
    "TIMEOUT",
    "error",
    "Error",
    "failed",
    "payment",
    "gateway",
    "user",
    "login",
    "retry",
    "db",
    "cache",
    "miss",
    "disk",
    "full",
    "upstream",
    "a",
    "b",
    "the",
    "and",
    "or",
    "not",
    "AND",
    "OR",
    "x",
];
const NUMBERS: &[&str] = &[
    "500",
    "404",
    "200",
    "503",
    "1.5",
    "-3",
    "10.0.0.7",
    "12:00:01",
    "0x1F",
    "v2",
    "2024-05-01T12:00:00Z",
    "007",
];
const UNICODE: &[&str] = &[
    "Straße",
    "STRASSE",
    "café",
    "CAFÉ",
    "naïve",
    "日本語",
    "東京",
    "Ünïcødé",
    "ΟΔΟΣ",
    "οδος",
    "İstanbul",
    "ǅemal",
    "ﬁle",
    "℃",
    "Ⅻ",
];
const PHRASES: &[&str] = &[
    "connection reset by peer",
    "connection-reset",
    "connection, reset",
    "gateway gateway timeout",
    "a a a",
    "payment gateway timeout",
    "reset connection",
    "login failed for user",
];
const SEPARATORS: &[&str] = &[
    " ", " ", " ", ", ", "-", ".", ":", "/", "=", "(", ")", "\"", "'", "!", " - ", "_", "\t", "\n",
    "|", "…", " → ", "\u{a0}",
];

/// Words around the 40-byte limit of the message analyzer.
fn long_words() -> Vec<String> {
    vec![
        "x".repeat(39),
        "y".repeat(40),
        "z".repeat(45),
        format!("{}B", "Aaaaaaaaaa".repeat(4)),
        "é".repeat(21),
        "Ä".repeat(20),
        format!("{}a", "Ä".repeat(19)),
        "İ".repeat(19),
    ]
}

fn message(rng: &mut Rng, long: &[String]) -> String {
    let mut out = String::new();
    for i in 0..=rng.below(12) {
        if i > 0 {
            out.push_str(rng.pick(SEPARATORS).as_ref());
        }
        match rng.below(10) {
            0..=4 => out.push_str(rng.pick(WORDS).as_ref()),
            5 => out.push_str(rng.pick(NUMBERS).as_ref()),
            6 => out.push_str(rng.pick(UNICODE).as_ref()),
            7 => out.push_str(rng.pick(long).as_str()),
            _ => out.push_str(rng.pick(PHRASES).as_ref()),
        }
    }
    match rng.below(40) {
        0 => String::new(),
        1 => "!!! --- ...".to_string(),
        2 => rng.pick(long).clone(),
        _ => out,
    }
}

fn opt(rng: &mut Rng, none_percent: u64, values: &[&str]) -> Option<String> {
    (!rng.chance(none_percent)).then(|| rng.pick(values).to_string())
}

fn attributes(rng: &mut Rng, level_is_none: bool) -> Map<String, Value> {
    let mut a = Map::new();
    let put = |a: &mut Map<String, Value>, k: &str, v: Value| {
        a.insert(k.to_string(), v);
    };
    if rng.chance(60) {
        let statuses = [
            json!(200),
            json!(201),
            json!(404),
            json!(499),
            json!(500),
            json!(503),
            json!(504),
            json!(500.0),
            json!("500"),
            json!("OK"),
            json!(400.5),
            json!(-1),
            json!("5xx"),
        ];
        put(&mut a, "status", rng.pick(&statuses).clone());
    }
    if rng.chance(40) {
        let method = json!(rng.pick(&["GET", "POST", "post", "Delete"]));
        let status = json!(rng.pick(&[200, 404, 500, 502, 599, 600]));
        let url = json!(rng.pick(&["/api/v1/users", "/health", "/API/V1/Orders?id=7"]));
        match rng.below(3) {
            0 => put(
                &mut a,
                "http",
                json!({"method": method, "status": status, "url": url}),
            ),
            1 => {
                put(&mut a, "http.method", method);
                put(&mut a, "http.status", status);
            }
            _ => {
                put(&mut a, "http", json!({"method": method, "url": url}));
                put(&mut a, "http.status", status);
            }
        }
    }
    if rng.chance(40) {
        let latencies = [
            json!(0.25),
            json!(1.5),
            json!(1.0),
            json!(-2.5),
            json!(12.75),
            json!(3),
            json!(0),
            json!(-0.0),
            json!(1e20),
            json!(999.999),
        ];
        put(&mut a, "latency", rng.pick(&latencies).clone());
    }
    if rng.chance(10) {
        let bigs = [
            json!(u64::MAX),
            json!(i64::MAX),
            json!(1.5e19),
            json!(-1e19),
            json!(9.1e18),
            json!(9_100_000_000_000_000_000i64),
            json!(i64::MIN),
        ];
        put(&mut a, "big", rng.pick(&bigs).clone());
    }
    if rng.chance(30) {
        let flags = [
            json!(true),
            json!(false),
            json!("true"),
            json!("TRUE"),
            json!("false"),
            json!(1),
            json!(0),
            json!("yes"),
        ];
        put(&mut a, "flag", rng.pick(&flags).clone());
    }
    if rng.chance(25) {
        let tags = [
            json!(["a", "B"]),
            json!(["prod", "eu-west-1"]),
            json!([3, true, null, "x"]),
            json!([[1, 2], ["Nested"]]),
            json!([]),
            json!([{"k": "v"}, {"k": 5}]),
        ];
        put(&mut a, "tags", rng.pick(&tags).clone());
    }
    if rng.chance(30) {
        let profiles = [
            json!({"country": "FR"}),
            json!({"country": "us"}),
            json!({"country": "Deutschland", "city": null}),
            json!(null),
            json!({}),
        ];
        let user = json!({
            "name": rng.pick(&["Ada Lovelace", "ada", "Grace Hopper", "ΟΔΟΣ"]),
            "id": rng.pick(&[json!(7), json!(42), json!("7")]).clone(),
            "roles": rng.pick(&[json!(["admin", "dev"]), json!(["dev"]), json!([])]).clone(),
            "profile": rng.pick(&profiles).clone(),
        });
        put(&mut a, "user", user);
    }
    for (key, value) in [
        ("empty", json!("")),
        ("nothing", json!(null)),
        ("obj", json!({})),
        ("arr", json!([])),
    ] {
        if rng.chance(5) {
            put(&mut a, key, value);
        }
    }
    if rng.chance(3) {
        put(&mut a, "long", json!("L".repeat(5000)));
    }
    if rng.chance(3) {
        put(&mut a, "long_ok", json!("k".repeat(4095)));
    }
    if rng.chance(20) {
        let ids = ["abc-123", "ABC-124", "req_9"];
        put(&mut a, "x-request-id", json!(rng.pick(&ids)));
    }
    if rng.chance(10) {
        let v = rng.pick(&[json!("1"), json!(1)]).clone();
        put(&mut a, "@version", v);
    }
    if rng.chance(20) {
        let codes = ["E500", "007", "1e3", "+5", "0x10", "-0", "Straße", "ΟΔΟΣ"];
        put(&mut a, "code", json!(rng.pick(&codes)));
    }
    if rng.chance(3) {
        put(&mut a, "a\u{0}b", json!(1));
    }
    if rng.chance(3) {
        put(&mut a, "odd\u{1}key", json!("v"));
    }
    if rng.chance(3) {
        put(&mut a, "trailing.", json!(5));
    }
    if level_is_none && rng.chance(10) {
        put(&mut a, "level", json!({"code": 3}));
    }
    if rng.chance(10) {
        let v = rng.pick(&[json!(1), json!("Deep")]).clone();
        put(&mut a, "nested", json!({"deep": {"er": {"est": v}}}));
    }
    a
}

fn corpus() -> Vec<Event> {
    let mut rng = Rng(0x5eed_0f5a_3311);
    let long = long_words();
    let mut events = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let timestamp = match i {
            0 => T0,
            1 => NOW,
            2 => NOW - 3600 * SEC,
            _ if rng.chance(15) => {
                NOW - 2 * 3600 * SEC + (rng.next() % (3 * 3600) as u64) as i64 * SEC
            }
            _ => T0 + (rng.next() % (3 * DAY_NANOS) as u64) as i64,
        };
        let level = opt(
            &mut rng,
            20,
            &[
                "ERROR", "WARN", "INFO", "DEBUG", "FATAL", "TRACE", "error", "Warning", "CUSTOM",
                "ΟΔΟΣ", "", " ERROR ",
            ],
        );
        let service = opt(
            &mut rng,
            15,
            &[
                "checkout",
                "Checkout-API",
                "auth.v2",
                "payments_db",
                "web-1.eu",
                "ΟΔΟΣ",
                "Straße",
                "",
                "svc:alpha",
                "a b",
            ],
        );
        let host = opt(
            &mut rng,
            5,
            &[
                "web-1",
                "web-2",
                "WEB-10",
                "db-1.internal",
                "cache.eu-west-1",
                "ip-10-0-0-7",
                "web-1.eu",
            ],
        );
        let source = opt(
            &mut rng,
            40,
            &["/var/log/app.log", "stdin", "k8s/pod-1", "Syslog"],
        );
        let attributes = attributes(&mut rng, level.is_none());
        events.push(Event {
            timestamp,
            message: message(&mut rng, &long),
            level,
            service,
            host,
            source,
            attributes,
        });
    }
    events
}

fn index(events: &[Event]) -> (tempfile::TempDir, Arc<Partitions>) {
    let dir = tempfile::tempdir().unwrap();
    let parts = Arc::new(Partitions::open(dir.path()).unwrap());
    let mut ix = Indexer::open(
        parts.clone(),
        IndexerConfig {
            writer_threads: 1,
            writer_memory_bytes: 20_000_000,
            max_open_writers: 4,
            retention_nanos: 3650 * DAY_NANOS,
        },
    )
    .unwrap();
    let mut json = Vec::new();
    for (seq, e) in events.iter().enumerate() {
        json.clear();
        e.write_json(&mut json);
        assert!(ix.add(TENANT, seq as u64, e, &json, NOW).unwrap());
    }
    ix.commit().unwrap();
    (dir, parts)
}

/// Every construct of the language, and the tricky cases.
fn queries() -> Vec<String> {
    let mut q: Vec<String> = [
        // message words, phrases, prefixes
        "timeout",
        "TIMEOUT",
        "error",
        "connection reset",
        "\"connection reset\"",
        "\"connection reset by peer\"",
        "\"reset connection\"",
        "connection-reset",
        "\"gateway timeout\"",
        "\"gateway gateway\"",
        "\"a a\"",
        "\"a a a a\"",
        "\"login failed\" user",
        "time*",
        "TIME*",
        "gate*",
        "x*",
        "_*",
        "connection* reset*",
        "500",
        "\"500\"",
        "\"10.0.0.7\"",
        "10.0.0.7",
        "12:00:01",
        "\"-3\"",
        "1.5",
        "0x1F",
        "v2",
        "\"2024-05-01T12:00:00Z\"",
        "straße",
        "STRASSE",
        "café",
        "CAFÉ",
        "naïve",
        "日本語",
        "東京",
        "ΟΔΟΣ",
        "οδος",
        "İstanbul",
        "ǅemal",
        "ﬁle",
        "Ⅻ",
        "\"and or\"",
        "\"AND\"",
        "message:timeout",
        "msg:\"connection reset\"",
        "message:*",
        "NOT message:*",
        "message:conn*",
        // boolean structure
        "NOT timeout",
        "-timeout",
        "!timeout",
        "NOT NOT timeout",
        "-a b",
        "NOT disk",
        "NOT (a OR b)",
        "timeout OR reset",
        "timeout || reset && gateway",
        "(timeout OR reset) AND level:error",
        "payment gateway OR disk full",
        "+timeout -gateway",
        "*",
        "",
        "NOT *",
        "-*",
        "* AND timeout",
        "* OR timeout",
        "NOT timeout AND NOT reset",
        // level
        "level:error",
        "level:ERROR",
        "level:err",
        "level:50",
        "level:warning",
        "level:(error OR warn)",
        "level:(error OR fatal OR custom)",
        "level:custom",
        "level:err*",
        "level:E*",
        "level:*",
        "NOT level:*",
        "level:ΟΔΟΣ",
        "level:\"\"",
        "level:\" ERROR \"",
        // keyword fields
        "service:checkout",
        "service:CHECKOUT-api",
        "service:\"checkout-api\"",
        "service:auth.v2",
        "service:web-*",
        "service:ΟΔΟΣ",
        "service:οδοσ",
        "service:straße",
        "service:STRASSE",
        "service:[a TO d]",
        "service:{checkout TO web}",
        "service:[* TO *]",
        "service:[payments_db TO *]",
        "service:>=s",
        "service:<b",
        "service:*",
        "NOT service:*",
        "service:\"a b\"",
        "service:\"\"",
        "service:svc:alpha",
        "host:web-1",
        "host:WEB-*",
        "host:web-1*",
        "host:(web-1 OR web-2)",
        "host:db-1.internal",
        "host:*",
        "source:*",
        "source:/var/log/app.log",
        "source:k8s*",
        "source:syslog",
        // attribute values
        "status:500",
        "status:\"500\"",
        "status:>=500",
        "status:>500",
        "status:<500",
        "status:<=499",
        "status:[400 TO 500}",
        "status:[400 TO 500]",
        "status:{499 TO 504}",
        "status:[500 TO *]",
        "status:[* TO *]",
        "status:[500 TO abc]",
        "status:[a TO z]",
        "status:5*",
        "status:ok",
        "status:*",
        "NOT status:*",
        "status:400.5",
        "status:>400.4",
        "status:[400.5 TO 400.5]",
        "status:-1",
        "status:<0",
        "status:[600 TO 500]",
        "http.status:500",
        "http.status:\"500\"",
        "http.status:>=500",
        "http.status:[500 TO 599]",
        "http.method:post",
        "http.method:P*",
        "http:*",
        "http.url:\"/api/v1/users\"",
        "http.url:/api/*",
        "attributes.http.method:get",
        "latency:<1",
        "latency:[0.25 TO 1.5]",
        "latency:1",
        "latency:1.0",
        "latency:0",
        "latency:>1e19",
        "latency:1e20",
        "latency:{-3 TO 0}",
        "latency:>=-2.5",
        "latency:<0.5",
        "latency:>999.99",
        "big:*",
        "big:18446744073709551615",
        "big:>0",
        "big:9223372036854775807",
        "big:9100000000000000000",
        "big:9.1e18",
        "big:<-1e18",
        "big:<=-9223372036854775808",
        "big:>=9e18",
        "flag:true",
        "flag:TRUE",
        "flag:\"true\"",
        "flag:false",
        "flag:1",
        "flag:*",
        "tags:a",
        "tags:b",
        "tags:3",
        "tags:true",
        "tags:*",
        "tags:nested",
        "tags:1",
        "tags.k:v",
        "tags.k:5",
        "user.name:\"Ada Lovelace\"",
        "user.name:ada*",
        "user.name:ada",
        "user.name:ΟΔΟΣ",
        "user.id:7",
        "user.id:\"7\"",
        "user.roles:admin",
        "user.profile.country:fr",
        "user.profile:*",
        "user.profile.city:*",
        "user:*",
        "empty:*",
        "empty:\"\"",
        "nothing:*",
        "obj:*",
        "arr:*",
        "long:*",
        "long_ok:*",
        "x-request-id:abc-*",
        "x-request-id:ABC-124",
        "@version:1",
        "code:7",
        "code:007",
        "code:1e3",
        "code:1000",
        "code:+5",
        "code:5",
        "code:-0",
        "code:0",
        "code:straße",
        "code:ΟΔΟΣ",
        "odd.key:v",
        "odd:*",
        "a:*",
        "trailing:*",
        "attributes.level.code:3",
        "attributes.level:*",
        "nested.deep.er.est:1",
        "nested.deep:*",
        "nested.deep.er.est:deep",
        "nested.deep.er:*",
        "missing:*",
        "missing:x",
        "NOT missing:*",
        // time
        "timestamp:[now-1h TO now]",
        "timestamp:[* TO *]",
        "timestamp:{* TO *}",
        "timestamp:>now-2h",
        "timestamp:<now-2d",
        "@timestamp:[2026-11-21T00:00:00Z TO 2026-11-21T12:00:00Z}",
        "timestamp:{now-1h TO now}",
        "timestamp:*",
        "timestamp:now-1h",
        "timestamp:1795132800",
        "timestamp:>=1795132800000",
        // combinations as alert rules write them
        "msg:conn* -level:debug host:web-*",
        "(level:error OR status:>=500) AND NOT host:web-2 AND \"connection reset\"",
        "level:(error OR warn) -service:checkout",
        "service:(checkout OR auth.v2) AND (timeout OR http.status:[500 TO 599])",
        "user.name:ada* OR tags:prod",
        "login failed user.id:7",
        "NOT level:debug NOT level:info",
        // errors: both sides must refuse with the same message
        "timestamp:abc",
        "timestamp:x*",
        "tenant:x",
        "attributes.:x",
        "a..b:1",
        "message:[a TO b]",
        "level:[a TO z]",
        "\\!\\!\\!",
        "\"...\"",
        "conn-reset*",
        "timestamp:[now-1h TO soon]",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let long = long_words();
    q.push(long[0].clone()); // 39 bytes: a word
    q.push(format!("{}*", long[0])); // 39 bytes: a prefix
    q.push(long[1].clone()); // 40 bytes: no searchable word
    q.push(long[2].clone());
    q.push(format!("{}*", long[2])); // no word: every event
    q.push(format!("{}*", &long[2][..10]));
    q.push(long[3].to_lowercase());
    q.push(long[6].clone()); // 39 bytes of Ä·a
    q.push(long[5].clone()); // 40 bytes
    q.push(long[7].clone()); // 38 bytes before lower-casing, longer after
    q.push(format!("\"payment {} gateway\"", long[2]));
    q.push(format!("\"connection {} reset\"", long[1]));
    q.push(format!("\"x {}\"", long[0]));
    q
}

/// ASTs the parser does not produce but the compiler accepts.
fn built_queries() -> Vec<(&'static str, Query)> {
    let word = |w: &str| Query::Term {
        field: None,
        text: w.to_string(),
    };
    vec![
        ("Or([])", Query::Or(Vec::new())),
        ("And([])", Query::And(Vec::new())),
        ("Not(All)", Query::Not(Box::new(Query::All))),
        (
            "And([Not(a), Not(b)])",
            Query::And(vec![
                Query::Not(Box::new(word("a"))),
                Query::Not(Box::new(word("b"))),
            ]),
        ),
        (
            "Or([Not(timeout), a])",
            Query::Or(vec![Query::Not(Box::new(word("timeout"))), word("a")]),
        ),
        (
            "And([All, Not(a)])",
            Query::And(vec![Query::All, Query::Not(Box::new(word("a")))]),
        ),
        (
            "Prefix(message, \"\")",
            Query::Prefix {
                field: None,
                prefix: String::new(),
            },
        ),
        (
            "Prefix(service, \"\")",
            Query::Prefix {
                field: Some("service".into()),
                prefix: String::new(),
            },
        ),
        (
            "Not(Not(timeout))",
            Query::Not(Box::new(Query::Not(Box::new(word("timeout"))))),
        ),
    ]
}

fn index_ids(parts: &Partitions, ast: &Query) -> Result<BTreeSet<u64>, String> {
    let result = search(
        parts,
        &SearchRequest {
            tenant: TENANT,
            query: ast,
            start: 0,
            end: i64::MAX,
            limit: EVENTS + 1,
            order: Order::Desc,
            cursor: None,
            now: NOW,
        },
    );
    match result {
        Ok(r) => {
            assert_eq!(r.total, r.hits.len() as u64, "{ast:?}: every hit returned");
            Ok(r.hits.iter().map(|h| h.id).collect())
        }
        Err(SearchError::Query(e)) => Err(e.to_string()),
        Err(e) => panic!("{ast:?}: search failed: {e}"),
    }
}

fn describe(events: &[Event], ids: impl Iterator<Item = u64>) -> String {
    ids.take(3)
        .map(|id| {
            let mut json = Vec::new();
            events[id as usize].write_json(&mut json);
            format!("\n    #{id}: {}", String::from_utf8_lossy(&json))
        })
        .collect()
}

#[test]
fn matcher_agrees_with_the_index() {
    let events = corpus();
    let (_dir, parts) = index(&events);
    assert!(parts.all().len() >= 3, "events span several day partitions");
    let views: Vec<EventView<'_>> = events.iter().map(EventView::new).collect();

    let mut cases: Vec<(String, Query)> = queries()
        .into_iter()
        .map(|q| {
            let ast = parse(&q).unwrap_or_else(|e| panic!("test query {q:?} does not parse: {e}"));
            (q, ast)
        })
        .collect();
    cases.extend(
        built_queries()
            .into_iter()
            .map(|(name, ast)| (name.to_string(), ast)),
    );
    assert!(cases.len() >= 80, "{} queries", cases.len());

    let mut failures = Vec::new();
    let (mut agreed, mut errors, mut selective) = (0, 0, 0);
    for (q, ast) in &cases {
        let index = index_ids(&parts, ast);
        let matcher = Matcher::new(ast, NOW);
        match (index, matcher) {
            (Ok(want), Ok(m)) => {
                let got: BTreeSet<u64> = views
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| m.matches_view(v))
                    .map(|(id, _)| id as u64)
                    .collect();
                if got == want {
                    agreed += 1;
                    if !got.is_empty() && got.len() < EVENTS {
                        selective += 1;
                    }
                    println!("{:5} {q}", got.len());
                } else {
                    failures.push(format!(
                        "{q}: index {} vs matcher {}\n  only the index:{}\n  only the matcher:{}",
                        want.len(),
                        got.len(),
                        describe(&events, want.difference(&got).copied()),
                        describe(&events, got.difference(&want).copied()),
                    ));
                }
            }
            (Err(a), Err(b)) if a == b.to_string() => {
                agreed += 1;
                errors += 1;
                println!("error {q}: {a}");
            }
            (a, b) => failures.push(format!(
                "{q}: index {:?} vs matcher {:?}",
                a.map(|ids| ids.len()),
                b.map(|_| "compiled")
            )),
        }
    }
    println!(
        "{agreed} of {} queries agree ({selective} select some but not all events, {errors} are \
         errors on both sides)",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} queries disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        selective >= 150,
        "the corpus exercises the queries: {selective}"
    );

    // `matches` (a view per call) and views built on recycled buffers answer the same
    let m = Matcher::new(&parse("\"connection reset\" OR level:error").unwrap(), NOW).unwrap();
    let mut buffer = TokenBuffer::new();
    for (e, v) in events.iter().zip(&views) {
        let view = EventView::with_buffer(e, buffer);
        assert_eq!(m.matches(e), m.matches_view(v));
        assert_eq!(m.matches_view(&view), m.matches_view(v));
        buffer = view.into_buffer();
    }
}

/// Ten typical alert rules over the corpus: prints ns per event (not asserted). Run with
/// `cargo test --release -p sawmill-index --test matcher -- --ignored --nocapture`.
#[test]
#[ignore]
fn speed() {
    let events = corpus();
    let rules = [
        "level:error",
        "level:(error OR fatal) service:checkout",
        "\"connection reset by peer\"",
        "timeout OR \"gateway timeout\"",
        "status:>=500",
        "http.status:[500 TO 599] AND http.method:post",
        "host:web-* AND NOT level:debug",
        "user.name:ada* OR tags:prod",
        "error -timeout -retry",
        "login failed user.id:7",
    ];
    let matchers: Vec<Matcher> = rules
        .iter()
        .map(|q| Matcher::new(&parse(q).unwrap(), NOW).unwrap())
        .collect();
    let rounds = 30;
    let n = (events.len() * rounds) as f64;
    let mut buffer = TokenBuffer::new();
    for (q, m) in rules.iter().zip(&matchers) {
        let start = Instant::now();
        let mut hits = 0usize;
        for _ in 0..rounds {
            for e in &events {
                let view = EventView::with_buffer(e, buffer);
                hits += usize::from(m.matches_view(&view));
                buffer = view.into_buffer();
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / n;
        println!("{ns:8.0} ns/event  {hits:6} hits  {q}");
    }
    let start = Instant::now();
    let mut hits = 0usize;
    for _ in 0..rounds {
        for e in &events {
            let view = EventView::with_buffer(e, buffer);
            hits += matchers.iter().filter(|m| m.matches_view(&view)).count();
            buffer = view.into_buffer();
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / n;
    println!("{ns:8.0} ns/event  {hits:6} hits  all ten rules on one view per event");
}
