//! The index crate through its public API: indexing, commit positions, retention, search
//! semantics of the query language on real tantivy partitions.

use sawmill_core::Event;
use sawmill_index::partition::DAY_NANOS;
use sawmill_index::query::parse;
use sawmill_index::{search, Cursor, Indexer, IndexerConfig, Order, Partitions, SearchRequest};
use serde_json::json;
use std::sync::Arc;

const SEC: i64 = 1_000_000_000;
/// 2026-11-20T00:00:00Z
const T0: i64 = 1_795_132_800 * SEC;

fn event(ts: i64, msg: &str, attrs: serde_json::Value) -> Event {
    let serde_json::Value::Object(attributes) = attrs else {
        panic!("attributes must be an object")
    };
    Event {
        timestamp: ts,
        message: msg.to_string(),
        level: Some("ERROR".into()),
        service: Some("Checkout".into()),
        host: Some("web-1".into()),
        source: None,
        attributes,
    }
}

fn config() -> IndexerConfig {
    IndexerConfig {
        writer_threads: 1,
        writer_memory_bytes: 20_000_000,
        max_open_writers: 2,
        retention_nanos: 3650 * DAY_NANOS,
    }
}

fn add(indexer: &mut Indexer, tenant: &str, seq: u64, e: &Event) -> bool {
    let mut json = Vec::new();
    e.write_json(&mut json);
    indexer.add(tenant, seq, e, &json, T0).unwrap()
}

fn total(parts: &Partitions, tenant: &str, q: &str) -> u64 {
    let ast = parse(q).unwrap();
    search(
        parts,
        &SearchRequest {
            tenant,
            query: &ast,
            start: 0,
            end: i64::MAX,
            limit: 0,
            order: Order::Desc,
            cursor: None,
            now: T0,
        },
    )
    .unwrap()
    .total
}

#[test]
fn query_semantics_on_real_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let parts = Arc::new(Partitions::open(dir.path()).unwrap());
    let mut ix = Indexer::open(parts.clone(), config()).unwrap();
    let events = [
        event(
            T0,
            "payment gateway timeout",
            json!({"status": 504, "http": {"method": "POST"}, "latency": 1.5, "ok": false}),
        ),
        event(
            T0 + SEC,
            "order placed",
            json!({"status": 201, "http": {"method": "GET"}, "latency": 0.25, "client_ip": "10.0.0.7"}),
        ),
        event(
            T0 + DAY_NANOS,
            "gateway restarted",
            json!({"status": 500, "note": "Disk Full"}),
        ),
    ];
    for (i, e) in events.iter().enumerate() {
        assert!(add(&mut ix, "default", i as u64, e));
    }
    // another tenant's event in the same partitions must never show
    let foreign = event(T0 + 2 * SEC, "gateway timeout", json!({"status": 504}));
    assert!(add(&mut ix, "acme", 3, &foreign));
    ix.commit().unwrap();
    assert_eq!(parts.all().len(), 2, "two day partitions");
    let cases = [
        ("*", 3),
        ("gateway", 2),
        ("\"gateway timeout\"", 1),
        ("\"timeout gateway\"", 0),
        ("gate*", 2),
        ("level:error", 3),
        ("level:err", 3),
        ("service:checkout", 3),
        ("host:WEB-1", 3),
        ("status:500", 1),
        ("status:[500 TO 599]", 2),
        ("status:{500 TO 504}", 0),
        ("status:>=501", 1),
        ("status:<300", 1),
        ("latency:<1", 1),
        ("latency:[0.25 TO 1.5]", 2),
        ("http.method:post", 1),
        ("client_ip:\"10.0.0.7\"", 1),
        ("note:\"disk full\"", 1),
        ("ok:false", 1),
        ("http:*", 2),
        ("client_ip:*", 1),
        ("gateway AND NOT timeout", 1),
        ("gateway -timeout", 1),
        ("placed OR restarted", 2),
        ("NOT gateway", 1),
        ("status:5*", 0),
        ("http.method:P*", 1),
    ];
    for (q, expected) in cases {
        assert_eq!(total(&parts, "default", q), expected, "query {q}");
    }
    assert_eq!(
        total(&parts, "other-tenant", "*"),
        0,
        "tenants are isolated"
    );
}

#[test]
fn commit_positions_survive_reopen_and_skip_replayed_events() {
    let dir = tempfile::tempdir().unwrap();
    let parts = Arc::new(Partitions::open(dir.path()).unwrap());
    let mut ix = Indexer::open(parts.clone(), config()).unwrap();
    for seq in 0..10u64 {
        add(
            &mut ix,
            "t",
            seq,
            &event(T0 + seq as i64 * SEC, "a", json!({})),
        );
    }
    ix.commit().unwrap();
    assert_eq!(ix.committed_position(), 10);
    // uncommitted work is lost with the process; the WAL replays it
    for seq in 10..15u64 {
        add(
            &mut ix,
            "t",
            seq,
            &event(T0 + seq as i64 * SEC, "a", json!({})),
        );
    }
    drop(ix);
    let parts = Arc::new(Partitions::open(dir.path()).unwrap());
    let mut ix = Indexer::open(parts.clone(), config()).unwrap();
    assert_eq!(ix.position(), 10);
    // a replay from an older position neither duplicates nor loses
    for seq in 0..15u64 {
        add(
            &mut ix,
            "t",
            seq,
            &event(T0 + seq as i64 * SEC, "a", json!({})),
        );
    }
    ix.commit().unwrap();
    assert_eq!(total(&parts, "t", "*"), 15);
}

#[test]
fn partition_positions_prevent_duplicates_after_partial_commit() {
    // day A is committed at a later position than the global position file says
    let dir = tempfile::tempdir().unwrap();
    let parts = Arc::new(Partitions::open(dir.path()).unwrap());
    let mut ix = Indexer::open(
        parts.clone(),
        IndexerConfig {
            max_open_writers: 1,
            ..config()
        },
    )
    .unwrap();
    add(&mut ix, "t", 0, &event(T0, "day a", json!({})));
    add(&mut ix, "t", 1, &event(T0 + SEC, "day a", json!({})));
    // opening day B's writer closes (and commits) day A's at position 2
    add(&mut ix, "t", 2, &event(T0 + DAY_NANOS, "day b", json!({})));
    drop(ix); // crash before the global commit
    let parts = Arc::new(Partitions::open(dir.path()).unwrap());
    let mut ix = Indexer::open(parts.clone(), config()).unwrap();
    assert_eq!(ix.position(), 0, "global position never advanced");
    let mut added = 0;
    added += add(&mut ix, "t", 0, &event(T0, "day a", json!({}))) as u32;
    added += add(&mut ix, "t", 1, &event(T0 + SEC, "day a", json!({}))) as u32;
    added += add(&mut ix, "t", 2, &event(T0 + DAY_NANOS, "day b", json!({}))) as u32;
    assert_eq!(added, 1, "only day b's event is indexed again");
    ix.commit().unwrap();
    assert_eq!(total(&parts, "t", "*"), 3);
}

#[test]
fn retention_drops_whole_old_partitions_and_old_events() {
    let dir = tempfile::tempdir().unwrap();
    let parts = Arc::new(Partitions::open(dir.path()).unwrap());
    let cfg = IndexerConfig {
        retention_nanos: 2 * DAY_NANOS,
        ..config()
    };
    let mut ix = Indexer::open(parts.clone(), cfg).unwrap();
    let now = T0 + 10 * DAY_NANOS;
    let mut json = Vec::new();
    let mut put = |ix: &mut Indexer, seq: u64, ts: i64, now: i64| {
        let e = event(ts, "x", json!({}));
        json.clear();
        e.write_json(&mut json);
        ix.add("t", seq, &e, &json, now).unwrap()
    };
    assert!(
        put(&mut ix, 0, T0 + 9 * DAY_NANOS, now),
        "recent event indexed"
    );
    assert!(
        !put(&mut ix, 1, T0, now),
        "event past retention not indexed"
    );
    assert_eq!(ix.skipped_old(), 1);
    // an old partition written while it was still within retention
    assert!(put(&mut ix, 2, T0 + 5 * DAY_NANOS, T0 + 6 * DAY_NANOS));
    ix.commit().unwrap();
    assert_eq!(parts.all().len(), 2);
    let removed = ix.apply_retention(now).unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(parts.all().len(), 1);
    assert_eq!(total(&parts, "t", "*"), 1);
    assert!(!dir.path().join("2026-11-25").exists(), "directory deleted");
}

#[test]
fn cursor_pages_without_gaps_or_repeats_with_equal_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let parts = Arc::new(Partitions::open(dir.path()).unwrap());
    let mut ix = Indexer::open(parts.clone(), config()).unwrap();
    // many events share a timestamp: the id breaks ties
    for seq in 0..250u64 {
        add(
            &mut ix,
            "t",
            seq,
            &event(T0 + (seq as i64 / 10) * SEC, "x", json!({})),
        );
    }
    ix.commit().unwrap();
    let ast = parse("*").unwrap();
    for order in [Order::Desc, Order::Asc] {
        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let r = search(
                &parts,
                &SearchRequest {
                    tenant: "t",
                    query: &ast,
                    start: 0,
                    end: i64::MAX,
                    limit: 33,
                    order,
                    cursor,
                    now: T0,
                },
            )
            .unwrap();
            assert_eq!(r.total, 250);
            seen.extend(r.hits.iter().map(|h| (h.ts, h.id)));
            match r.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 250, "{order:?}");
        let mut sorted = seen.clone();
        sorted.sort();
        if order == Order::Desc {
            sorted.reverse();
        }
        assert_eq!(
            seen, sorted,
            "{order:?}: pages are in order without repeats"
        );
    }
}
