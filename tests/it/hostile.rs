//! A corpus of hostile requests, each with the answer users and operators rely on, sent over
//! raw TCP so that nothing on the client side cleans them up; slow-loris bodies and headers.
//! After each run the server must still be up, still serve good requests, and still hold the
//! data ingested before (exact counts).
//!
//! tests/bad_input.rs covers the basic bad lines, body limits, bombs on NDJSON and bad search
//! parameters; this file adds what it does not: other content types and encodings, framing and
//! header abuse, numbers at the edges, NUL bytes, absurd query strings and slow clients.

use crate::common;

use common::{Checks, Server};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BODY_TIMEOUT_SECS: u64 = 2;
const MAX_BODY: usize = 2 << 20;
const MAX_DECOMPRESSED: usize = 4 << 20;

fn config() -> String {
    format!(
        "[index]\nrefresh_interval = \"200ms\"\nhot_retention = \"3650d\"\n\
         [ingest]\nmax_body_bytes = {MAX_BODY}\nmax_decompressed_bytes = {MAX_DECOMPRESSED}\n\
         body_timeout = \"{BODY_TIMEOUT_SECS}s\"\n"
    )
}

fn addr(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_string()
}

// ----- raw HTTP -----

/// A raw HTTP/1.1 response.
#[derive(Debug)]
struct RawAnswer {
    status: u16,
    body: Vec<u8>,
}

impl RawAnswer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body, cut to a readable length.
    fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        match text.char_indices().nth(160) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.into_owned(),
        }
    }
}

/// A complete response at the start of `buf` (headers and `Content-Length` bytes of body); the
/// number of bytes it takes.
fn parse_answer(buf: &[u8]) -> Option<(RawAnswer, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let len: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let body = buf.get(end + 4..end + 4 + len)?.to_vec();
    Some((RawAnswer { status, body }, end + 4 + len))
}

/// Sends `request` on a new connection and reads one answer; `Err` says what happened instead
/// (no answer in `timeout`, connection closed without an answer).
fn exchange(addr: &str, request: &[u8], timeout: Duration) -> Result<RawAnswer, String> {
    let socket: std::net::SocketAddr = addr.parse().expect("server address");
    let mut stream =
        TcpStream::connect_timeout(&socket, timeout).map_err(|e| format!("connect: {e}"))?;
    stream.set_write_timeout(Some(timeout)).unwrap();
    // the server may answer (and stop reading) before the whole body is sent: that is fine,
    // the answer is what counts
    let _ = stream.write_all(request);
    read_answer(&mut stream, timeout)
}

fn read_answer(stream: &mut TcpStream, timeout: Duration) -> Result<RawAnswer, String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if let Some((answer, _)) = parse_answer(&got) {
            return Ok(answer);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no answer within {timeout:?} (got {:?})",
                String::from_utf8_lossy(&got)
            ));
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => {
                return Err(format!(
                    "connection closed without a complete answer (got {:?})",
                    String::from_utf8_lossy(&got)
                ))
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                return Err(format!(
                    "connection error before a complete answer: {e} (got {:?})",
                    String::from_utf8_lossy(&got)
                ))
            }
        }
    }
}

/// A request with `Host`, `Connection: close`, the extra header lines `head` (each ending in
/// CRLF) and, for a body, its `Content-Length`.
fn request(method: &str, target: &str, head: &[u8], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: sawmill\r\nConnection: close\r\n")
        .into_bytes();
    r.extend_from_slice(head);
    if method == "POST" {
        r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

/// Header lines from pairs.
fn h(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .flat_map(|(k, v)| format!("{k}: {v}\r\n").into_bytes())
        .collect()
}

fn ingest(head: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    request("POST", "/api/v1/ingest", &h(head), body)
}

fn bulk(body: &[u8]) -> Vec<u8> {
    request(
        "POST",
        "/_bulk",
        &h(&[("Content-Type", "application/x-ndjson")]),
        body,
    )
}

fn ndjson(body: &[u8]) -> Vec<u8> {
    ingest(&[("Content-Type", "application/x-ndjson")], body)
}

/// Percent-encodes for a query string (space as `+`).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn get(target: &str) -> Vec<u8> {
    request("GET", target, b"", b"")
}

fn search(q: &str, extra: &str) -> Vec<u8> {
    get(&format!(
        "/api/v1/search?q={}&start=0&end=now%2B1d{extra}",
        enc(q)
    ))
}

fn histogram(q: &str, extra: &str) -> Vec<u8> {
    get(&format!(
        "/api/v1/histogram?q={}&start=now-1h&end=now{extra}",
        enc(q)
    ))
}

fn post_search(body: &[u8]) -> Vec<u8> {
    request(
        "POST",
        "/api/v1/search",
        &h(&[("Content-Type", "application/json")]),
        body,
    )
}

// ----- bodies -----

fn lines(items: &[Value]) -> Vec<u8> {
    let mut body = Vec::new();
    for v in items {
        body.extend_from_slice(v.to_string().as_bytes());
        body.push(b'\n');
    }
    body
}

fn good(n: u32) -> Value {
    json!({"message": format!("corpus good line {n}"), "gen": "corpus"})
}

fn gzip_best(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// 1 GiB of zeros, compressed.
fn bomb(encoding: &str) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    if encoding == "gzip" {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..1024 {
            enc.write_all(&zeros).unwrap();
        }
        enc.finish().unwrap()
    } else {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        for _ in 0..1024 {
            enc.write_all(&zeros).unwrap();
        }
        enc.finish().unwrap()
    }
}

/// An object nested `depth` levels deep (the event itself is level 1).
fn nested_object(depth: usize) -> String {
    format!(
        "{{\"gen\":\"corpus\",\"message\":\"nested {depth}\",\"a\":{}{{\"leaf\":1}}{}}}",
        "{\"a\":".repeat(depth - 2),
        "}".repeat(depth - 2)
    )
}

// ----- the corpus -----

/// What a hostile request must get.
#[derive(Debug)]
enum Expect {
    /// Refused as a whole: this status and a JSON `error` containing the fragment.
    Error(u16, &'static str),
    /// Refused by the HTTP layer before the API sees it: this status (any body).
    Http(u16),
    /// 200 with an Elasticsearch bulk answer: each item's status in order, and how many of
    /// the kept documents are tagged `gen:corpus` (searchable later).
    Items(&'static [u64], u64),
    /// 200 with per-line results: accepted, rejected, a fragment of each listed error in
    /// order, and how many accepted lines are tagged `gen:corpus` (searchable later).
    Lines {
        accepted: u64,
        rejected: u64,
        errors: &'static [&'static str],
        corpus: u64,
    },
}

struct Case {
    name: &'static str,
    request: Vec<u8>,
    expect: Expect,
}

fn case(name: &'static str, request: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        request,
        expect,
    }
}

fn corpus() -> Vec<Case> {
    use Expect::{Error, Http, Items, Lines};
    let text_lines = b"text line one\ntext line two\ntext line three\n".repeat(50);
    let gz_text = common::gzip(&text_lines);
    let ndjson_lines = lines(&(0..200).map(good).collect::<Vec<_>>());
    let zs = common::zstd(&ndjson_lines);
    let two_gzip_members = [
        common::gzip(&lines(&[good(1000)])),
        common::gzip(&lines(&[good(1001)])),
    ]
    .concat();
    let two_zstd_frames = [
        common::zstd(&lines(&[good(1002)])),
        common::zstd(&lines(&[good(1003)])),
    ]
    .concat();
    // 6 MiB over two gzip members, each under max_decompressed_bytes
    let half = b"{\"message\":\"member\",\"gen\":\"members-too-big\"}\n"
        .repeat(MAX_DECOMPRESSED * 3 / 4 / 45);
    let members_too_big = [gzip_best(&half), gzip_best(&half)].concat();
    assert!(members_too_big.len() < MAX_BODY && half.len() * 2 > MAX_DECOMPRESSED);

    let mut fields = serde_json::Map::new();
    fields.insert("gen".into(), json!("too-many-fields"));
    for i in 0..10_000 {
        fields.insert(format!("f{i}"), json!(i));
    }
    let ten_thousand_fields = Value::Object(fields).to_string();

    let deep_arrays = |n: usize| {
        format!(
            "{{\"gen\":\"corpus\",\"message\":\"arrays {n}\",\"x\":{}1{}}}",
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    let join = |ls: &[String]| (ls.join("\n") + "\n").into_bytes();

    let big_query = "a".repeat(100_000);
    let parens = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
    let parens_100 = format!("{}a{}", "(".repeat(100), ")".repeat(100));
    let or_10000 = vec!["a"; 10_000].join(" OR ");
    let or_2000 = vec!["a"; 2000].join(" OR ");

    vec![
        // --- compressed bodies ---
        case(
            "truncated gzip, text/plain",
            ingest(
                &[("Content-Type", "text/plain"), ("Content-Encoding", "gzip")],
                &gz_text[..gz_text.len() / 2],
            ),
            Error(400, "could not be decompressed"),
        ),
        case(
            "truncated zstd, application/json",
            ingest(
                &[("Content-Type", "application/json"), ("Content-Encoding", "zstd")],
                &zs[..zs.len() - 7],
            ),
            Error(400, "could not be decompressed"),
        ),
        case(
            "gzip bomb (1 GiB of zeros), application/json",
            ingest(
                &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
                &bomb("gzip"),
            ),
            Error(413, "once decompressed"),
        ),
        case(
            "zstd bomb (1 GiB of zeros), text/plain",
            ingest(
                &[("Content-Type", "text/plain"), ("Content-Encoding", "zstd")],
                &bomb("zstd"),
            ),
            Error(413, "once decompressed"),
        ),
        case(
            "gzip body of two members (RFC 1952): both are read",
            ingest(
                &[("Content-Type", "application/x-ndjson"), ("Content-Encoding", "gzip")],
                &two_gzip_members,
            ),
            Lines { accepted: 2, rejected: 0, errors: &[], corpus: 2 },
        ),
        case(
            "zstd body of two frames: both are read",
            ingest(
                &[("Content-Type", "application/x-ndjson"), ("Content-Encoding", "zstd")],
                &two_zstd_frames,
            ),
            Lines { accepted: 2, rejected: 0, errors: &[], corpus: 2 },
        ),
        case(
            "two gzip members, each under max_decompressed_bytes, together over it",
            ingest(
                &[("Content-Type", "application/x-ndjson"), ("Content-Encoding", "gzip")],
                &members_too_big,
            ),
            Error(413, "once decompressed"),
        ),
        // --- bad text ---
        case(
            "invalid UTF-8 in NDJSON: UTF-16 surrogate, overlong form, lone \\ud800 escape",
            ndjson(
                &[
                    b"{\"message\":\"surrogate \xed\xa0\x80\",\"gen\":\"bad\"}\n".as_slice(),
                    &lines(&[good(1)]),
                    b"{\"message\":\"overlong \xc0\xaf\",\"gen\":\"bad\"}\n",
                    b"{\"message\":\"lone \\ud800 escape\",\"gen\":\"bad\"}\n",
                ]
                .concat(),
            ),
            Lines {
                accepted: 1,
                rejected: 3,
                errors: &["UTF-8", "UTF-8", "invalid JSON"],
                corpus: 1,
            },
        ),
        case(
            "invalid UTF-8 in text/plain",
            ingest(
                &[("Content-Type", "text/plain")],
                b"corpus text before\nbad \xff\xfe bytes\ncorpus text after\n",
            ),
            Lines { accepted: 2, rejected: 1, errors: &["UTF-8"], corpus: 0 },
        ),
        case(
            "NUL bytes: escaped in strings and keys (kept), raw in a string, a raw NUL line",
            ndjson(
                &[
                    b"{\"message\":\"nul \\u0000 inside\",\"gen\":\"corpus\",\"nul\":\"yes\",\"k\\u0000ey\":\"v\\u0000\"}\n".as_slice(),
                    b"{\"message\":\"raw \x00 nul\",\"gen\":\"corpus\"}\n",
                    b"\x00\x00\x00\n",
                ]
                .concat(),
            ),
            Lines {
                accepted: 1,
                rejected: 2,
                errors: &["control character", "invalid JSON"],
                corpus: 1,
            },
        ),
        case(
            "raw NUL bytes in text/plain are kept",
            ingest(&[("Content-Type", "text/plain")], b"text \x00 with nul\n"),
            Lines { accepted: 1, rejected: 0, errors: &[], corpus: 0 },
        ),
        // --- structure ---
        case(
            "nesting: 32 levels accepted, 33 rejected (objects and arrays)",
            ndjson(&join(&[
                nested_object(32),
                nested_object(33),
                deep_arrays(31),
                deep_arrays(32),
            ])),
            Lines {
                accepted: 2,
                rejected: 2,
                errors: &["nested too deeply", "nested too deeply"],
                corpus: 2,
            },
        ),
        case(
            "an event with 10,000 fields between two good ones",
            ndjson(&join(&[
                good(2).to_string(),
                ten_thousand_fields,
                good(3).to_string(),
            ])),
            Lines { accepted: 2, rejected: 1, errors: &["too many fields"], corpus: 2 },
        ),
        // --- numbers ---
        case(
            "huge and tiny numbers as values: 1e400, 2^64+1, -0, 1e-400",
            ndjson(
                b"{\"message\":\"v 1e400\",\"gen\":\"corpus\",\"v\":1e400}\n\
                  {\"message\":\"v 2^64+1\",\"gen\":\"corpus\",\"v\":18446744073709551617}\n\
                  {\"message\":\"v -0\",\"gen\":\"corpus\",\"v\":-0}\n\
                  {\"message\":\"v 1e-400\",\"gen\":\"corpus\",\"v\":1e-400}\n",
            ),
            Lines { accepted: 3, rejected: 1, errors: &["number out of range"], corpus: 3 },
        ),
        case(
            "huge and tiny numbers as timestamps: 1e400, 2^64+1 (rejected); -0, 1e-400 (1970)",
            ndjson(
                b"{\"message\":\"ts 1e400\",\"gen\":\"epoch\",\"ts\":1e400}\n\
                  {\"message\":\"ts 2^64+1\",\"gen\":\"epoch\",\"ts\":18446744073709551617}\n\
                  {\"message\":\"ts -0\",\"gen\":\"epoch\",\"ts\":-0}\n\
                  {\"message\":\"ts 1e-400\",\"gen\":\"epoch\",\"ts\":1e-400}\n",
            ),
            Lines {
                accepted: 2,
                rejected: 2,
                errors: &["number out of range", "outside the supported range"],
                corpus: 0,
            },
        ),
        // --- types and encodings ---
        case(
            "Content-Type application/xml",
            ingest(&[("Content-Type", "application/xml")], b"<log>x</log>"),
            Error(415, "unsupported Content-Type"),
        ),
        case(
            "Content-Type multipart/form-data",
            ingest(
                &[("Content-Type", "multipart/form-data; boundary=x")],
                b"--x\r\n\r\n{}\r\n--x--",
            ),
            Error(415, "unsupported Content-Type"),
        ),
        case(
            "Content-Type application/octet-stream",
            ingest(&[("Content-Type", "application/octet-stream")], &good(4).to_string().into_bytes()),
            Error(415, "unsupported Content-Type"),
        ),
        case(
            "Content-Type text/html",
            ingest(&[("Content-Type", "text/html")], b"<p>x</p>"),
            Error(415, "unsupported Content-Type"),
        ),
        case(
            "Content-Type with non-ASCII bytes",
            request(
                "POST",
                "/api/v1/ingest",
                b"Content-Type: text/pl\xc3\xa4in\r\n",
                b"x\n",
            ),
            Error(415, "Content-Type"),
        ),
        case(
            "Content-Encoding compress",
            ingest(
                &[("Content-Type", "application/x-ndjson"), ("Content-Encoding", "compress")],
                b"{}",
            ),
            Error(415, "unsupported content-encoding"),
        ),
        case(
            "Content-Encoding deflate",
            ingest(
                &[("Content-Type", "application/x-ndjson"), ("Content-Encoding", "deflate")],
                b"{}",
            ),
            Error(415, "unsupported content-encoding"),
        ),
        case(
            "stacked Content-Encoding gzip, zstd",
            ingest(
                &[("Content-Type", "application/x-ndjson"), ("Content-Encoding", "gzip, zstd")],
                b"{}",
            ),
            Error(415, "unsupported content-encoding"),
        ),
        // --- headers ---
        case(
            "150 headers",
            ingest(
                &(0..150)
                    .map(|_| ("X-Filler", "v"))
                    .chain([("Content-Type", "application/x-ndjson")])
                    .collect::<Vec<_>>(),
                b"{}",
            ),
            Http(431),
        ),
        case(
            "a 1 MiB header",
            request(
                "POST",
                "/api/v1/ingest",
                format!("X-Big: {}\r\n", "a".repeat(1 << 20)).as_bytes(),
                b"{}",
            ),
            Http(431),
        ),
        case(
            "X-Sawmill-Tenant ../../etc",
            ingest(
                &[("Content-Type", "application/x-ndjson"), ("X-Sawmill-Tenant", "../../etc")],
                b"{}",
            ),
            Error(400, "not a tenant name"),
        ),
        case(
            "X-Sawmill-Tenant of 5000 characters",
            ingest(
                &[
                    ("Content-Type", "application/x-ndjson"),
                    ("X-Sawmill-Tenant", &"t".repeat(5000)),
                ],
                b"{}",
            ),
            Error(400, "not a tenant name"),
        ),
        case(
            "X-Sawmill-Tenant with non-ASCII bytes",
            request("POST", "/api/v1/ingest", b"X-Sawmill-Tenant: \xff\xfe\r\n", b"{}"),
            Error(400, "ASCII"),
        ),
        case(
            "Idempotency-Key of 5000 bytes",
            ingest(
                &[
                    ("Content-Type", "application/x-ndjson"),
                    ("Idempotency-Key", &"k".repeat(5000)),
                ],
                b"{}",
            ),
            Error(400, "256"),
        ),
        // --- framing ---
        case(
            "two different Content-Length headers",
            b"POST /api/v1/ingest HTTP/1.1\r\nHost: s\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}}".to_vec(),
            Http(400),
        ),
        case(
            "negative Content-Length",
            b"POST /api/v1/ingest HTTP/1.1\r\nHost: s\r\nContent-Length: -1\r\n\r\n".to_vec(),
            Http(400),
        ),
        case(
            "Content-Length beyond 2^64",
            b"POST /api/v1/ingest HTTP/1.1\r\nHost: s\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
            Http(400),
        ),
        case(
            "invalid chunk size",
            b"POST /api/v1/ingest HTTP/1.1\r\nHost: s\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".to_vec(),
            Error(400, "could not read the request body"),
        ),
        case(
            "chunk size beyond 2^64",
            b"POST /api/v1/ingest HTTP/1.1\r\nHost: s\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabc\r\n".to_vec(),
            Error(400, "could not read the request body"),
        ),
        case(
            "garbage request line",
            b"\x00\x01\x02 garbage\r\n\r\n".to_vec(),
            Http(400),
        ),
        // --- absurd query strings ---
        case(
            "search: 100 KB query string",
            search(&big_query, ""),
            Http(414),
        ),
        case(
            "histogram: 100 KB query string",
            histogram(&big_query, ""),
            Http(414),
        ),
        case(
            "search: q with 10,000 nested parentheses",
            search(&parens, ""),
            Error(400, "longer than the limit"),
        ),
        case(
            "histogram: q with 10,000 nested parentheses",
            histogram(&parens, ""),
            Error(400, "longer than the limit"),
        ),
        case(
            "search: q with 100 nested parentheses",
            search(&parens_100, ""),
            Error(400, "nested more than 64 levels"),
        ),
        case(
            "search: q with 10,000 OR terms",
            search(&or_10000, ""),
            Error(400, "longer than the limit"),
        ),
        case(
            "POST search: q with 10,000 OR terms",
            post_search(json!({"q": or_10000, "start": "0"}).to_string().as_bytes()),
            Error(400, "longer than the limit"),
        ),
        case(
            "search: q with 2,000 OR terms",
            search(&or_2000, ""),
            Error(400, "more than 1024 clauses"),
        ),
        case(
            "histogram: q with 2,000 OR terms",
            histogram(&or_2000, ""),
            Error(400, "more than 1024 clauses"),
        ),
        case(
            "search: limit=99999999999999999999999",
            search("*", "&limit=99999999999999999999999"),
            Error(400, "limit="),
        ),
        case(
            "search: limit=NaN",
            search("*", "&limit=NaN"),
            Error(400, "limit=NaN"),
        ),
        case(
            "search: limit=-99999999999999999999",
            search("*", "&limit=-99999999999999999999"),
            Error(400, "limit="),
        ),
        case(
            "POST search: limit 1e400",
            post_search(b"{\"q\":\"*\",\"limit\":1e400}"),
            Error(400, "number out of range"),
        ),
        case(
            "POST search: 10,000 nested arrays",
            post_search(format!("{{\"q\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000)).as_bytes()),
            Error(400, "JSON object"),
        ),
        case(
            "POST search: 200 KB body",
            post_search(json!({"q": "a".repeat(200_000)}).to_string().as_bytes()),
            Error(413, "larger than"),
        ),
        case(
            "histogram: interval=1ms since 1970",
            get("/api/v1/histogram?q=*&start=0&end=now&interval=1ms"),
            Error(400, "buckets"),
        ),
        case(
            "search: start=2^64+1",
            get("/api/v1/search?q=*&start=18446744073709551617"),
            Error(400, "outside the supported range"),
        ),
        case(
            "search: start=now-99999999999d",
            get("/api/v1/search?q=*&start=now-99999999999d"),
            Error(400, "outside the representable range"),
        ),
        case(
            "search: q=%ZZ (invalid percent-encoding)",
            get("/api/v1/search?q=%ZZ&start=0&end=now%2B1d"),
            Error(400, "percent"),
        ),
        case(
            "search: q=corpus% (truncated percent-encoding)",
            get("/api/v1/search?q=corpus%&start=0&end=now%2B1d"),
            Error(400, "percent"),
        ),
        case(
            "search: q=%FFcorpus (percent-encoded invalid UTF-8)",
            get("/api/v1/search?q=%FFcorpus&start=0&end=now%2B1d"),
            Error(400, "UTF-8"),
        ),
        case(
            "histogram: q=%ZZ (invalid percent-encoding)",
            get("/api/v1/histogram?q=%ZZ"),
            Error(400, "percent"),
        ),
        case(
            "histogram: q=%C3 (percent-encoded truncated UTF-8)",
            get("/api/v1/histogram?q=%C3"),
            Error(400, "UTF-8"),
        ),
        // the Elasticsearch bulk API
        case(
            "_bulk: a NUL byte, a bare string and a 100-deep document between good ones",
            bulk(
                &[
                    format!("{{\"index\":{{}}}}\n{}", good(3000)).into_bytes(),
                    b"{\"index\":{}}\n{\"message\":\"nul \x00 inside\"}".to_vec(),
                    b"{\"create\":{}}\n\"just a string\"".to_vec(),
                    format!("{{\"create\":{{}}}}\n{}", nested_object(100)).into_bytes(),
                    format!("{{\"create\":{{\"_index\":\"h\"}}}}\n{}", good(3001)).into_bytes(),
                ]
                .join(&b'\n'),
            ),
            Items(&[201, 400, 400, 400, 201], 2),
        ),
        case(
            "_bulk: only delete and update actions",
            bulk(b"{\"delete\":{\"_id\":\"1\"}}\n{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{}}\n"),
            Items(&[400, 400], 0),
        ),
        case(
            "_bulk: a 300-byte index name and a 600-byte _id",
            bulk(
                format!(
                    "{{\"index\":{{\"_index\":\"{}\"}}}}\n{{}}\n{{\"index\":{{\"_id\":\"{}\"}}}}\n{{}}\n",
                    "i".repeat(300),
                    "d".repeat(600)
                )
                .as_bytes(),
            ),
            Items(&[400, 400], 0),
        ),
        case(
            "_bulk: invalid UTF-8 in an action line",
            bulk(b"{\"index\":{}}\n{}\n{\"index\":{\"_index\":\"\xff\xfe\"}}\n{}\n"),
            Error(400, "line [3]"),
        ),
        case(
            "_bulk: an action line with no document after it",
            bulk(format!("{{\"index\":{{}}}}\n{}\n{{\"create\":{{}}}}\n", good(3002)).as_bytes()),
            Error(400, "line [3]"),
        ),
        case(
            "_bulk: action metadata nested 200 deep (unknown metadata is ignored)",
            bulk(format!("{{\"index\":{}}}\n{{}}\n", nested_object(200)).as_bytes()),
            Items(&[201], 0),
        ),
        case(
            "_bulk: gzip bomb (1 GiB of zeros)",
            request(
                "POST",
                "/_bulk",
                &h(&[
                    ("Content-Type", "application/x-ndjson"),
                    ("Content-Encoding", "gzip"),
                ]),
                &bomb("gzip"),
            ),
            Error(413, "decompressed"),
        ),
        case(
            "_bulk: Content-Type application/xml",
            request(
                "POST",
                "/es/_bulk",
                &h(&[("Content-Type", "application/xml")]),
                b"<bulk/>",
            ),
            Error(415, "Content-Type"),
        ),
        case(
            "70 KB path",
            get(&format!("/{}", "a".repeat(70_000))),
            Http(414),
        ),
    ]
}

/// The request line of a raw request, for messages.
fn request_line(request: &[u8]) -> String {
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut text = String::from_utf8_lossy(line).into_owned();
    if text.len() > 90 {
        let mut cut = 90;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    format!("{text} ({} bytes)", request.len())
}

fn check_case(checks: &mut Checks, case: &Case, got: Result<RawAnswer, String>) -> u64 {
    let what = format!("{} [{}]", case.name, request_line(&case.request));
    let answer = match got {
        Ok(a) => a,
        Err(e) => {
            checks.truth(&format!("{what}: want {:?}, got {e}", case.expect), false);
            return 0;
        }
    };
    let body = answer.json();
    // sawmill's `{"error":"…"}` or, from the Elasticsearch API, `{"error":{"reason":"…"}}`
    let error = body["error"]
        .as_str()
        .or(body["error"]["reason"].as_str())
        .unwrap_or("");
    match &case.expect {
        Expect::Http(status) => {
            checks.eq(
                &format!("{what}: status ({})", answer.text()),
                answer.status,
                *status,
            );
            0
        }
        Expect::Error(status, fragment) => {
            checks.truth(
                &format!(
                    "{what}: want {status} with a JSON error containing {fragment:?}, got {} {}",
                    answer.status,
                    answer.text()
                ),
                answer.status == *status && error.to_lowercase().contains(&fragment.to_lowercase()),
            );
            0
        }
        Expect::Items(statuses, corpus) => {
            let got: Vec<u64> = body["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_object()?.values().next()?["status"].as_u64())
                        .collect()
                })
                .unwrap_or_default();
            checks.eq(
                &format!("{what}: status and item statuses ({})", answer.text()),
                (answer.status, got),
                (200, statuses.to_vec()),
            );
            if answer.status == 200 {
                *corpus
            } else {
                0
            }
        }
        Expect::Lines {
            accepted,
            rejected,
            errors,
            corpus,
        } => {
            checks.eq(
                &format!("{what}: status ({})", answer.text()),
                answer.status,
                200,
            );
            checks.eq(
                &format!("{what}: accepted/rejected ({body})"),
                (body["accepted"].as_u64(), body["rejected"].as_u64()),
                (Some(*accepted), Some(*rejected)),
            );
            let listed: Vec<String> = body["errors"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| e["error"].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            let matches = listed.len() == errors.len()
                && listed.iter().zip(errors.iter()).all(|(l, f)| l.contains(f));
            checks.truth(
                &format!("{what}: line errors {listed:?} do not match {errors:?}"),
                matches,
            );
            if answer.status == 200 {
                *corpus
            } else {
                0
            }
        }
    }
}

fn seed(server: &Server, n: usize) {
    let body: String = (0..n)
        .map(|i| json!({"message": format!("seed {i}"), "gen": "seed"}).to_string() + "\n")
        .collect();
    let (status, answer) = server.ingest(body, "?refresh=wait_for");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"].as_u64(), Some(n as u64), "{answer}");
}

/// The server is up, serves a good ingest and search, and the seed data is intact.
fn assert_intact(server: &Server, seeded: u64, checks: &mut Checks, marker: &str) {
    let health = server.get("/healthz").send();
    checks.truth(
        &format!("healthz after the corpus: {health:?}"),
        health.is_ok_and(|r| r.status().as_u16() == 200),
    );
    let (status, answer) = server.ingest(
        json!({"message": "still serving", "marker": marker}).to_string(),
        "?refresh=wait_for",
    );
    checks.eq(
        &format!("good ingest after the corpus ({answer})"),
        status,
        200,
    );
    checks.eq(
        "the good event is searchable",
        server.total(&format!("marker:{marker}")),
        1,
    );
    checks.eq(
        "seed events still searchable (exact)",
        server.total("gen:seed"),
        seeded,
    );
}

#[test]
fn hostile_corpus_gets_its_documented_answers_and_the_server_keeps_serving() {
    const SEED: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &config());
    seed(&server, SEED);
    let addr = addr(&server);
    let cases = corpus();
    let mut checks = Checks::default();
    let mut corpus_events = 0;
    eprintln!("{:<78} | {:<64} | expected", "case", "request");
    for case in &cases {
        eprintln!(
            "{:<78} | {:<64} | {:?}",
            case.name,
            request_line(&case.request),
            case.expect
        );
        let got = exchange(&addr, &case.request, Duration::from_secs(30));
        corpus_events += check_case(&mut checks, case, got);
    }

    // what the corpus ingested is searchable, exactly; the refused parts are not
    checks.eq(
        "corpus events searchable (exact)",
        server.wait_total("gen:corpus", corpus_events, Duration::from_secs(30)),
        corpus_events,
    );
    for gen in ["bad", "too-many-fields", "members-too-big"] {
        checks.eq(
            &format!("refused events gen:{gen} searchable"),
            server.total(&format!("gen:{gen}")),
            0,
        );
    }
    // NUL bytes survive the round trip exactly
    let nul = server.search_all("nul:yes", "0", "now+1d");
    checks.eq(
        "the NUL event's message",
        nul.first().map(|h| h["message"].clone()),
        Some(json!("nul \u{0} inside")),
    );
    checks.eq(
        "the NUL event's key with a NUL",
        nul.first().map(|h| h["k\u{0}ey"].clone()),
        Some(json!("v\u{0}")),
    );
    // the number edges: 2^64+1 is kept as the nearest double, -0 and 1e-400 as zeros
    for (message, want) in [
        ("v 2^64+1", json!(18446744073709551616.0)),
        ("v -0", json!(-0.0)),
        ("v 1e-400", json!(0.0)),
    ] {
        let hits = server.search_all(&format!("message:\"{message}\""), "0", "now+1d");
        checks.eq(
            &format!("value of {message:?}"),
            hits.first().map(|h| h["v"].clone()),
            Some(want),
        );
    }
    let rejected = |reason: &str| {
        let text = server.metrics();
        let series = format!("sawmill_rejected_requests_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    checks.truth(
        "too_large refusals are counted",
        rejected("too_large") >= 3.0,
    );
    checks.truth(
        "unsupported_media_type refusals are counted",
        rejected("unsupported_media_type") >= 8.0,
    );
    assert_intact(&server, SEED as u64, &mut checks, "after-corpus");
    let log = server.log.text();
    checks.truth(
        &format!(
            "the server log shows a panic:\n{}",
            common::shorten(log.clone())
        ),
        !log.contains("panicked"),
    );
    checks.finish();
}

// ----- slow clients -----

/// Sends headers declaring a large body, then trickles it far slower than `body_timeout`.
/// Returns (answer, seconds until it came, whether the server then closed the connection).
fn slow_body(addr: &str, chunked: bool) -> (Result<RawAnswer, String>, Duration, bool) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n".to_string()
    } else {
        "Content-Length: 1000000\r\n".to_string()
    };
    let head = format!(
        "POST /api/v1/ingest HTTP/1.1\r\nHost: sawmill\r\nContent-Type: application/x-ndjson\r\n{framing}\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let line = b"{\"message\":\"slow loris\",\"gen\":\"loris\"}\n";
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let answer = loop {
        if let Some((answer, _)) = parse_answer(&got) {
            break Ok(answer);
        }
        if started.elapsed() > Duration::from_secs(BODY_TIMEOUT_SECS * 10) {
            break Err(format!("no answer within {}s", BODY_TIMEOUT_SECS * 10));
        }
        // one short line every 200 ms
        let piece = if chunked {
            [format!("{:x}\r\n", line.len()).as_bytes(), line, b"\r\n"].concat()
        } else {
            line.to_vec()
        };
        let _ = stream.write_all(&piece);
        match stream.read(&mut buf) {
            Ok(0) => break Err("connection closed without an answer".to_string()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => break Err(format!("connection error without an answer: {e}")),
        }
    };
    let took = started.elapsed();
    // after the answer the server must close the connection (the body was never finished)
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (answer, took, closed)
}

#[test]
fn slow_loris_bodies_get_408_and_the_connection_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &config());
    seed(&server, 100);
    let addr = addr(&server);
    let mut checks = Checks::default();
    std::thread::scope(|s| {
        let lorises: Vec<_> = [false, true, false, true]
            .into_iter()
            .map(|chunked| {
                let addr = &addr;
                s.spawn(move || (chunked, slow_body(addr, chunked)))
            })
            .collect();
        // other clients are served meanwhile
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(BODY_TIMEOUT_SECS) {
            let sent = Instant::now();
            let (status, answer) = server.ingest(
                json!({"message": "served beside the lorises", "gen": "beside"}).to_string(),
                "",
            );
            checks.eq(
                &format!("ingest beside slow lorises ({answer})"),
                status,
                200,
            );
            checks.truth(
                &format!("ingest beside slow lorises took {:?}", sent.elapsed()),
                sent.elapsed() < Duration::from_secs(2),
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        for h in lorises {
            let (chunked, (answer, took, closed)) = h.join().unwrap();
            let what = if chunked {
                "chunked slow body"
            } else {
                "slow body with Content-Length"
            };
            match answer {
                Ok(a) => {
                    checks.eq(&format!("{what}: status ({})", a.text()), a.status, 408);
                    checks.truth(
                        &format!(
                            "{what}: the 408 should say the body did not arrive in time: {}",
                            a.text()
                        ),
                        a.json()["error"]
                            .as_str()
                            .is_some_and(|e| e.contains("did not arrive within")),
                    );
                }
                Err(e) => checks.truth(&format!("{what}: want 408, got {e}"), false),
            }
            checks.truth(
                &format!("{what}: answered after {took:?}, want about body_timeout ({BODY_TIMEOUT_SECS}s)"),
                took >= Duration::from_millis(BODY_TIMEOUT_SECS * 1000 - 200)
                    && took < Duration::from_secs(BODY_TIMEOUT_SECS + 4),
            );
            checks.truth(
                &format!("{what}: the server kept the connection open after the 408"),
                closed,
            );
        }
    });
    checks.eq(
        "nothing of the slow bodies was ingested",
        server.total("gen:loris"),
        0,
    );
    let timeouts = server
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix("sawmill_rejected_requests_total{reason=\"timeout\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    checks.eq(
        "sawmill_rejected_requests_total{reason=\"timeout\"}",
        timeouts,
        4.0,
    );
    assert_intact(&server, 100, &mut checks, "after-lorises");
    checks.finish();
}

/// Opens up to `n` connections that send part of a request's headers and never finish them;
/// stops at the first that cannot connect within 5 s (a dropped SYN is retried after 1 s).
fn stalled_header_connections(addr: &str, n: usize) -> Vec<TcpStream> {
    let socket: std::net::SocketAddr = addr.parse().expect("server address");
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let Ok(mut s) = TcpStream::connect_timeout(&socket, Duration::from_secs(5)) else {
            break;
        };
        if s.write_all(b"POST /api/v1/ingest HTTP/1.1\r\nHost: sawmill\r\nX-Never-Ends: ")
            .is_err()
        {
            break;
        }
        out.push(s);
    }
    out
}

/// A good client's answer time: an ingest over a new connection.
fn good_client(addr: &str, timeout: Duration) -> (Result<RawAnswer, String>, Duration) {
    let started = Instant::now();
    let got = exchange(
        addr,
        &ndjson(&lines(&[
            json!({"message": "good client", "gen": "good-client"}),
        ])),
        timeout,
    );
    (got, started.elapsed())
}

/// The soft and hard limit of open files many services run with (systemd's default soft
/// limit).
const SERVICE_NOFILE: u64 = 1024;

#[test]
fn unfinished_headers_do_not_lock_out_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(dir.path(), &config());
    seed(&server, 100);
    let addr = addr(&server);
    let pid = server.child.as_ref().unwrap().id();
    // run the server with the open-file limit of a typical service
    let limit = libc::rlimit {
        rlim_cur: SERVICE_NOFILE,
        rlim_max: SERVICE_NOFILE,
    };
    // SAFETY: prlimit reads `limit` and writes nothing (null old-limit pointer).
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(
        rc,
        0,
        "cannot set the server's open-file limit (prlimit): {}",
        std::io::Error::last_os_error()
    );
    let mut checks = Checks::default();

    // a few hundred stalled connections: others are served at once
    let mut stalled = stalled_header_connections(&addr, 200);
    for round in 0..3 {
        let (got, took) = good_client(&addr, Duration::from_secs(10));
        checks.truth(
            &format!("round {round}: good client beside 200 stalled connections: {got:?}"),
            got.as_ref().is_ok_and(|a| a.status == 200),
        );
        checks.truth(
            &format!("round {round}: good client beside 200 stalled connections took {took:?}"),
            took < Duration::from_secs(2),
        );
        let (status, _) = server.search(&[("q", "gen:seed"), ("start", "0"), ("end", "now+1d")]);
        checks.eq("search beside 200 stalled connections", status, 200);
        std::thread::sleep(Duration::from_millis(200));
    }

    // as many stalled connections as the server may hold files open: a server that keeps
    // connections with unfinished headers forever locks every other client out. The usual
    // defence (hyper's own default when a timer is set) closes them after 30 s; a good client
    // must then be answered within 45 s.
    let opened = Instant::now();
    stalled.extend(stalled_header_connections(
        &addr,
        SERVICE_NOFILE as usize - stalled.len(),
    ));
    let (got, took) = good_client(&addr, Duration::from_secs(45));
    eprintln!(
        "{} stalled connections; good client: {:?} after {took:?}",
        stalled.len(),
        got.as_ref().map(|a| a.status)
    );
    let first_still_open = {
        let s = &mut stalled[0];
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 512];
        // closed (0), answered (n) or reset: anything but a read that times out
        matches!(s.read(&mut buf), Err(e) if e.kind() != std::io::ErrorKind::ConnectionReset)
    };
    checks.truth(
        &format!(
            "a good client after {} connections with unfinished headers (server open-file limit \
             {SERVICE_NOFILE}) got {got:?} after {took:?}; want an answer within 45 s. The first \
             stalled connection is {} {:?} after its headers stopped",
            stalled.len(),
            if first_still_open {
                "still open"
            } else {
                "closed"
            },
            opened.elapsed() + Duration::from_secs(1)
        ),
        got.as_ref().is_ok_and(|a| a.status == 200),
    );
    drop(stalled);
    // once they are gone, everything works again
    let recovered = common::poll(
        Duration::from_secs(30),
        "a good client after the stalled connections closed",
        || {
            let (got, _) = good_client(&addr, Duration::from_secs(5));
            got.ok().filter(|a| a.status == 200)
        },
    );
    checks.eq("good client after the stall", recovered.status, 200);
    assert_intact(&server, 100, &mut checks, "after-stalled-headers");
    checks.finish();
}
