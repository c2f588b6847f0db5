//! Hostile and broken input: bad lines are rejected one by one, bad requests as a whole with
//! a JSON error, and the server keeps serving.

use crate::common;

use common::{assert_error, gzip, zstd, Server};
use serde_json::{json, Value};
use std::io::Write;
use std::time::{Duration, Instant};

const MAX_BODY: usize = 2 << 20;
const MAX_DECOMPRESSED: usize = 4 << 20;
const MAX_LINE: usize = 2048;
const MAX_FIELDS: usize = 50;

fn config() -> String {
    format!(
        "[index]\nrefresh_interval = \"200ms\"\nhot_retention = \"3650d\"\n\
         [ingest]\nmax_body_bytes = {MAX_BODY}\nmax_decompressed_bytes = {MAX_DECOMPRESSED}\n\
         max_line_bytes = {MAX_LINE}\nmax_fields = {MAX_FIELDS}\n"
    )
}

/// The server is alive and a normal ingest and search still work.
fn assert_still_serving(server: &Server, marker: &str) {
    let resp = server.get("/healthz").send().expect("healthz");
    assert_eq!(resp.status().as_u16(), 200);
    let (status, answer) = server.ingest(
        json!({"message": "still serving", "marker": marker}).to_string(),
        "?refresh=wait_for",
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 1);
    assert_eq!(server.total(&format!("marker:{marker}")), 1);
}

fn ndjson_ingest(server: &Server, body: impl Into<reqwest::blocking::Body>) -> (u16, Value) {
    server.ingest_with(
        "?refresh=wait_for",
        &[("content-type", "application/x-ndjson")],
        body,
    )
}

#[test]
fn bad_lines_are_rejected_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &config());

    let good = |g: u32| {
        json!({"message": format!("good line {g}"), "batch": "mixed", "g": g})
            .to_string()
            .into_bytes()
    };
    // exactly MAX_FIELDS leaf values: accepted
    let mut fields = serde_json::Map::new();
    fields.insert("batch".into(), json!("mixed"));
    fields.insert("g".into(), json!(100));
    for i in 0..MAX_FIELDS - 2 {
        fields.insert(format!("f{i}"), json!(i));
    }
    let at_field_limit = Value::Object(fields.clone()).to_string().into_bytes();
    fields.insert("one_too_many".into(), json!(1));
    let over_field_limit = Value::Object(fields).to_string().into_bytes();
    // exactly MAX_LINE bytes: accepted; one more: rejected
    let sized = |len: usize, g: u32| {
        let mut line = json!({"batch": "mixed", "g": g, "message": ""}).to_string();
        let pad = len - line.len();
        line.insert_str(line.len() - 2, &"x".repeat(pad));
        assert_eq!(line.len(), len);
        line.into_bytes()
    };
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(1000), "]".repeat(1000)).into_bytes();
    assert!(deep.len() <= MAX_LINE);

    // (line, is it good?)
    let lines: Vec<(Vec<u8>, bool)> = vec![
        (good(1), true),
        (b"{\"message\": \"broken\",".to_vec(), false),
        (good(2), true),
        (b"".to_vec(), true), // blank: skipped, but counts for line numbers
        (b"[1, 2, 3]".to_vec(), false),
        (b"42".to_vec(), false),
        (good(3), true),
        (
            b"{\"message\":\"bad \xff\xfe utf8\",\"batch\":\"mixed\"}".to_vec(),
            false,
        ),
        (sized(MAX_LINE + 1, 900), false),
        (sized(MAX_LINE, 4), true),
        (over_field_limit, false),
        (at_field_limit, true),
        (deep, false),
        (
            b"{\"message\":\"x\",\"batch\":\"mixed\"} trailing".to_vec(),
            false,
        ),
        (b"\"just a string\"".to_vec(), false),
        (b"null".to_vec(), false),
        ([good(5), b"\r".to_vec()].concat(), true), // CRLF line end
        (good(6), true),
    ];
    let mut body = Vec::new();
    for (i, (line, _)) in lines.iter().enumerate() {
        if i > 0 {
            body.push(b'\n');
        }
        body.extend_from_slice(line);
    }
    // no newline after the last line
    let bad_lines: Vec<u64> = lines
        .iter()
        .enumerate()
        .filter(|(_, (_, ok))| !ok)
        .map(|(i, _)| i as u64 + 1)
        .collect();
    let good_count = lines.iter().filter(|(l, ok)| *ok && !l.is_empty()).count() as u64;

    let (status, answer) = ndjson_ingest(&server, body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"].as_u64(), Some(good_count), "{answer}");
    assert_eq!(
        answer["rejected"].as_u64(),
        Some(bad_lines.len() as u64),
        "{answer}"
    );
    let errors = answer["errors"].as_array().expect("errors");
    let lines_reported: Vec<u64> = errors.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(
        lines_reported, bad_lines,
        "1-based numbers of the bad lines: {answer}"
    );
    for e in errors {
        assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    assert_eq!(
        server.total("batch:mixed"),
        good_count,
        "the good lines are searchable"
    );
    assert_eq!(
        server.total("g:900"),
        0,
        "the over-long line is not ingested"
    );
    for g in [1, 2, 3, 4, 5, 6, 100] {
        assert_eq!(server.total(&format!("g:{g}")), 1, "good line g={g}");
    }
    assert_still_serving(&server, "after-bad-lines");
}

#[test]
fn error_list_is_capped_but_every_rejection_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &config());
    let mut body = String::new();
    let mut bad = Vec::new();
    let mut good = 0;
    for i in 1..=260u64 {
        if i % 26 == 0 {
            body.push_str(&json!({"message": "fine", "batch": "capped"}).to_string());
            good += 1;
        } else {
            body.push_str(&format!("nope {i}"));
            bad.push(i);
        }
        body.push('\n');
    }
    let (status, answer) = ndjson_ingest(&server, body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"].as_u64(), Some(good));
    assert_eq!(answer["rejected"].as_u64(), Some(bad.len() as u64));
    let lines: Vec<u64> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, bad[..100], "the first 100 errors are listed");
    assert_eq!(server.total("batch:capped"), good);
    assert_still_serving(&server, "after-cap");
}

#[test]
fn body_over_max_body_bytes_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &config());
    // several times the limit, sent as a plain client does: the whole body, without waiting
    // for an early answer (no `Expect: 100-continue`); the client must still get the 413
    let line = json!({"message": "should not be ingested", "batch": "toobig"}).to_string() + "\n";
    let too_big = line.repeat(4 * MAX_BODY / line.len());
    assert!(too_big.len() > 3 * MAX_BODY);
    let send = |body: reqwest::blocking::Body, what: &str| {
        let resp = server
            .post("/api/v1/ingest")
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .unwrap_or_else(|e| {
                panic!(
                    "{what}: no answer, the client saw a transport error instead of the 413: {e:?}"
                )
            });
        assert_error(common::status_json(resp), 413, what);
    };
    send(
        too_big.clone().into(),
        "body over max_body_bytes (with Content-Length)",
    );
    send(
        reqwest::blocking::Body::new(std::io::Cursor::new(too_big.into_bytes())),
        "body over max_body_bytes (chunked)",
    );
    server.flush();
    assert_eq!(server.total("batch:toobig"), 0);
    assert_still_serving(&server, "after-too-big");
}

/// A compressed body that expands to 1 GiB of zeros.
fn bomb(encoding: &str) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    match encoding {
        "gzip" => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            for _ in 0..1024 {
                enc.write_all(&zeros).unwrap();
            }
            enc.finish().unwrap()
        }
        _ => {
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            for _ in 0..1024 {
                enc.write_all(&zeros).unwrap();
            }
            enc.finish().unwrap()
        }
    }
}

#[test]
fn whole_request_errors_and_bombs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &config());
    let line =
        |tag: &str| json!({"message": "should not be ingested", "batch": tag}).to_string() + "\n";

    // decompression bombs: refused quickly, server unharmed
    for encoding in ["gzip", "zstd"] {
        let body = bomb(encoding);
        assert!(
            body.len() < MAX_BODY,
            "{encoding} bomb is {} bytes",
            body.len()
        );
        let started = Instant::now();
        let got = server.ingest_with(
            "",
            &[
                ("content-type", "application/x-ndjson"),
                ("content-encoding", encoding),
            ],
            body,
        );
        let took = started.elapsed();
        assert_error(got, 413, &format!("{encoding} bomb"));
        assert!(
            took < Duration::from_secs(10),
            "{encoding} bomb took {took:?}"
        );
        let resp = server.get("/healthz").send().expect("healthz after bomb");
        assert_eq!(resp.status().as_u16(), 200);
    }
    // compressed within max_body_bytes but over max_decompressed_bytes
    let expands = line("expands").repeat(MAX_DECOMPRESSED / 50 + 1000);
    assert!(expands.len() > MAX_DECOMPRESSED);
    assert_error(
        server.ingest_with(
            "",
            &[
                ("content-type", "application/x-ndjson"),
                ("content-encoding", "gzip"),
            ],
            gzip(expands.as_bytes()),
        ),
        413,
        "gzip body over max_decompressed_bytes",
    );

    // truncated or bogus compressed bodies
    let valid = line("truncated").repeat(200);
    let gz = gzip(valid.as_bytes());
    assert_error(
        server.ingest_with(
            "",
            &[
                ("content-type", "application/x-ndjson"),
                ("content-encoding", "gzip"),
            ],
            gz[..gz.len() / 2].to_vec(),
        ),
        400,
        "truncated gzip",
    );
    let zs = zstd(valid.as_bytes());
    assert_error(
        server.ingest_with(
            "",
            &[
                ("content-type", "application/x-ndjson"),
                ("content-encoding", "zstd"),
            ],
            zs[..zs.len() / 2].to_vec(),
        ),
        400,
        "truncated zstd",
    );
    assert_error(
        server.ingest_with(
            "",
            &[
                ("content-type", "application/x-ndjson"),
                ("content-encoding", "gzip"),
            ],
            valid.clone(),
        ),
        400,
        "plain body labelled gzip",
    );

    // unsupported type and encoding
    assert_error(
        server.ingest_with(
            "",
            &[("content-type", "application/x-www-form-urlencoded")],
            "message=hello".to_string(),
        ),
        415,
        "form content type",
    );
    assert_error(
        server.ingest_with(
            "",
            &[
                ("content-type", "application/x-ndjson"),
                ("content-encoding", "br"),
            ],
            valid.clone(),
        ),
        415,
        "brotli encoding",
    );
    // unknown or bad parameters
    assert_error(
        server.ingest_with(
            "?colour=red",
            &[("content-type", "application/x-ndjson")],
            valid.clone(),
        ),
        400,
        "unknown ingest parameter",
    );
    assert_error(
        server.ingest_with(
            "?refresh=sometimes",
            &[("content-type", "application/x-ndjson")],
            valid,
        ),
        400,
        "bad refresh value",
    );

    // nothing of the refused requests was ingested
    server.flush();
    for tag in ["expands", "truncated"] {
        assert_eq!(server.total(&format!("batch:{tag}")), 0, "batch {tag}");
    }
    assert_still_serving(&server, "after-whole-request-errors");
}

/// The `N` of `position N` in an error message.
fn error_position(message: &str) -> Option<usize> {
    let rest = &message[message.find("position ")? + "position ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[test]
fn bad_search_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &config());
    let range = [("start", "0"), ("end", "now+1d")];

    for q in [
        "status:[1 TO",
        "(a",
        "a)",
        "status:",
        "foo*bar",
        "\"unclosed",
        "a AND",
        "-",
    ] {
        let mut params = vec![("q", q)];
        params.extend(range);
        let message = assert_error(server.search(&params), 400, &format!("query {q:?}"));
        let position = error_position(&message)
            .unwrap_or_else(|| panic!("query {q:?}: error does not name a position: {message}"));
        assert!(
            position <= q.chars().count(),
            "query {q:?}: position {position} is outside it"
        );
        // the histogram checks its query the same way
        let resp = server
            .get("/api/v1/histogram")
            .query(&params)
            .send()
            .unwrap();
        assert_error(
            common::status_json(resp),
            400,
            &format!("histogram query {q:?}"),
        );
    }

    let bad_params: &[(&str, &[(&str, &str)])] = &[
        ("bad start", &[("q", "*"), ("start", "yesterday")]),
        ("bad end", &[("q", "*"), ("end", "2024-13-45T00:00:00Z")]),
        ("start after end", &[("start", "now"), ("end", "now-1h")]),
        ("unknown parameter", &[("q", "*"), ("colour", "red")]),
        ("bad order", &[("q", "*"), ("order", "sideways")]),
        ("negative limit", &[("q", "*"), ("limit", "-1")]),
        ("limit not a number", &[("q", "*"), ("limit", "ten")]),
        ("limit over 10000", &[("q", "*"), ("limit", "10001")]),
        ("bad cursor", &[("q", "*"), ("cursor", "not-a-cursor")]),
    ];
    for (what, params) in bad_params {
        assert_error(server.search(params), 400, what);
    }
    for (what, params) in [
        ("bad interval", vec![("q", "*"), ("interval", "banana")]),
        (
            "unknown histogram parameter",
            vec![("q", "*"), ("limit", "5")],
        ),
        ("bad histogram start", vec![("q", "*"), ("start", "soon")]),
    ] {
        let resp = server
            .get("/api/v1/histogram")
            .query(&params)
            .send()
            .unwrap();
        assert_error(common::status_json(resp), 400, what);
    }
    // POST search with a body that is not a JSON object
    for body in ["not json", "[1,2]"] {
        let resp = server
            .post("/api/v1/search")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert_error(
            common::status_json(resp),
            400,
            &format!("POST search body {body:?}"),
        );
    }
    assert_still_serving(&server, "after-bad-searches");
}
