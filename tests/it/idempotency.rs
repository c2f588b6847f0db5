//! `Idempotency-Key`: a retried request is answered with the first answer and ingests
//! nothing, also after a crash. And `?source=` on text ingest.

use crate::common;

use common::{now_nanos, Server};
use serde_json::{json, Value};

/// `good` valid events tagged `batch`, plus one bad line, so the answer is not trivial.
fn body(batch: &str, good: u64) -> String {
    let ts = now_nanos() / 1_000_000;
    let mut body = String::new();
    for i in 0..good {
        body.push_str(
            &json!({"timestamp": ts, "message": "idempotent", "batch": batch, "i": i}).to_string(),
        );
        body.push('\n');
    }
    body.push_str("{not json\n");
    body
}

fn ingest_keyed(server: &Server, key: &str, body: &str) -> (u16, Value) {
    server.ingest_with(
        "",
        &[
            ("content-type", "application/x-ndjson"),
            ("idempotency-key", key),
        ],
        body.to_string(),
    )
}

#[test]
fn same_key_ingests_once_even_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let a = body("a", 25);

    let first = ingest_keyed(&server, "key-a", &a);
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first.1["accepted"], 25);
    assert_eq!(first.1["rejected"], 1);
    let again = ingest_keyed(&server, "key-a", &a);
    assert_eq!(again, first, "a retry gets the first answer");
    server.flush();
    assert_eq!(server.total("batch:a"), 25, "the retry ingested nothing");

    // another key is another request, even with the same body
    let other = ingest_keyed(&server, "key-b", &a);
    assert_eq!(other.0, 200);
    assert_eq!(other.1["accepted"], 25);
    server.flush();
    assert_eq!(server.total("batch:a"), 50);

    // a key is answered from memory even for a different body
    let b = body("b", 7);
    let reused = ingest_keyed(&server, "key-a", &b);
    assert_eq!(
        reused, first,
        "same key, other body: still the first answer"
    );
    server.flush();
    assert_eq!(server.total("batch:b"), 0);

    // after kill -9 and restart the keys are still known
    server.kill9();
    server.spawn();
    let after = ingest_keyed(&server, "key-a", &a);
    assert_eq!(after, first, "after a crash a retry gets the first answer");
    let after_b = ingest_keyed(&server, "key-b", &a);
    assert_eq!(after_b, other);
    server.flush();
    assert_eq!(
        server.total("batch:a"),
        50,
        "retries after the crash ingested nothing"
    );

    // a new key after the restart ingests
    let fresh = ingest_keyed(&server, "key-c", &b);
    assert_eq!(fresh.0, 200);
    assert_eq!(fresh.1["accepted"], 7);
    server.flush();
    assert_eq!(server.total("batch:b"), 7);

    // and again after a clean restart
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    server.spawn();
    assert_eq!(ingest_keyed(&server, "key-c", &b), fresh);
    server.flush();
    assert_eq!(server.total("batch:b"), 7);
    assert_eq!(server.total("batch:a"), 50);
}

#[test]
fn text_ingest_with_source() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let lines = [
        "first plain line",
        "second plain line: with {json-ish} text",
        "third",
    ];
    let (status, answer) = server.ingest_with(
        "?source=laptop-42&refresh=wait_for",
        &[("content-type", "text/plain; charset=utf-8")],
        format!("{}\n\n{}\r\n{}", lines[0], lines[1], lines[2]),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"accepted": 3, "rejected": 0, "errors": []}));
    let hits = server.search_all("source:laptop-42", "0", "now+1d");
    let mut messages: Vec<&str> = hits
        .iter()
        .map(|h| h["message"].as_str().unwrap())
        .collect();
    messages.sort_unstable();
    let mut want = lines.to_vec();
    want.sort_unstable();
    assert_eq!(messages, want);
    for h in &hits {
        assert_eq!(h["source"], "laptop-42", "{h}");
    }

    // NDJSON with ?source=: events without a source get it, events with one keep theirs
    let (status, answer) = server.ingest(
        "{\"message\":\"no source here\"}\n{\"message\":\"own source\",\"source\":\"mine\"}\n",
        "?source=fallback&refresh=wait_for",
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(server.total("source:fallback"), 1);
    assert_eq!(server.total("source:mine"), 1);
    assert_eq!(server.total("source:fallback AND \"no source here\""), 1);
}

#[test]
fn keys_survive_the_deletion_of_their_wal_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[index]\nrefresh_interval = \"200ms\"\nhot_retention = \"3650d\"\n[wal]\nsegment_bytes = 1048576\n";
    let mut server = Server::start_with_config(dir.path(), config);
    // over 1 MiB: the segment holding this request is full afterwards
    let big = body("big", 20_000);
    assert!(big.len() > 1 << 20);
    let first = ingest_keyed(&server, "key-big", &big);
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first.1["accepted"], 20_000);
    let small = body("small", 3);
    let second = ingest_keyed(&server, "key-small", &small);
    assert_eq!(second.0, 200, "{}", second.1);
    server.flush();
    // the index is past the first segment: the server deletes it (maintenance runs every few
    // seconds) and must keep the key elsewhere
    let first_segment = server.data_dir.join("wal").join(format!("{:020}.wal", 0));
    assert!(
        first_segment.exists(),
        "expected the first segment at {}",
        first_segment.display()
    );
    common::poll(
        std::time::Duration::from_secs(60),
        "the first wal segment to be deleted",
        || (!first_segment.exists()).then_some(()),
    );
    server.kill9();
    server.spawn();
    assert_eq!(ingest_keyed(&server, "key-big", &big), first);
    assert_eq!(ingest_keyed(&server, "key-small", &small), second);
    server.flush();
    assert_eq!(server.total("batch:big"), 20_000);
    assert_eq!(server.total("batch:small"), 3);
}

/// A client that sends a keyed request and disconnects before the answer must not leave the
/// key "in flight": its retry is answered (the events ingested once), never 409 forever.
#[test]
fn a_client_that_hangs_up_mid_request_can_retry_its_key() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let addr = server.url.trim_start_matches("http://").to_string();
    let bodies: Vec<String> = (0..10).map(|r| body(&format!("hang-{r}"), 200)).collect();
    for (r, b) in bodies.iter().enumerate() {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let request = format!(
            "POST /api/v1/ingest HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-ndjson\r\nidempotency-key: hang-{r}\r\ncontent-length: {}\r\n\r\n{b}",
            b.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        // hang up without reading the answer
        drop(stream);
    }
    for (r, b) in bodies.iter().enumerate() {
        let key = format!("hang-{r}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (status, answer) = ingest_keyed(&server, &key, b);
            if status == 200 {
                assert_eq!(answer["accepted"], 200, "{key}: {answer}");
                break;
            }
            assert_eq!(status, 409, "{key}: {answer}");
            assert!(
                std::time::Instant::now() < deadline,
                "{key} is still in flight 10 s after its client hung up: {answer}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    server.flush();
    for r in 0..10 {
        assert_eq!(server.total(&format!("batch:hang-{r}")), 200, "hang-{r}");
    }
}
