//! The ingest retry rules against a real HTTP server on loopback: a scripted stand-in for
//! sawmill that answers each request with the next reply of its script and records what it
//! received (method, target, headers, body bytes).

use bytes::Bytes;
use sawmill_client::{
    AttemptError, Client, ClientConfig, Encoding, IngestBatch, IngestError, Retry,
};
use sawmill_core::error::report as error_report;
use sawmill_core::{BodyFormat, RetryPolicy};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// One scripted answer.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    /// Announce the body's length but close the connection halfway through it.
    cut: bool,
    /// Never answer (the connection stays open).
    silent: bool,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_string(),
        cut: false,
        silent: false,
    }
}

impl Reply {
    fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }
}

const ANSWER: &str = r#"{"accepted":2,"rejected":1,"errors":[{"line":3,"error":"invalid JSON"}]}"#;

/// A request as the server received it.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

struct Scripted {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Scripted {
    /// Serves `script` in order; the last reply answers every request after it.
    async fn start(script: Vec<Reply>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            let mut served = 0usize;
            while let Ok((stream, _)) = listener.accept().await {
                let next = script[served.min(script.len() - 1)].clone();
                served += 1;
                tokio::spawn(answer(stream, next, log.clone()));
            }
        });
        Scripted { addr, received }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

async fn answer(mut stream: TcpStream, reply: Reply, log: Arc<Mutex<Vec<Received>>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    log.lock().expect("lock").push(request);
    if reply.silent {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    }
    let mut head = format!(
        "HTTP/1.1 {} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let body = if reply.cut {
        &reply.body.as_bytes()[..reply.body.len() / 2]
    } else {
        reply.body.as_bytes()
    };
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = match headers.get("content-length") {
        Some(n) => n.parse().ok()?,
        None => 0,
    };
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        method,
        target,
        headers,
        body,
    })
}

/// Short waits, so that only `Retry-After` makes a test slow.
const FAST: RetryPolicy = RetryPolicy {
    initial: Duration::from_millis(10),
    max: Duration::from_millis(50),
    max_retry_after: Duration::from_secs(300),
};

fn client(url: &str) -> Client {
    let mut config = ClientConfig::new(url);
    config.api_key = Some("key-1".into());
    config.tenant = Some("acme".into());
    config.request_timeout = Duration::from_secs(10);
    Client::new(&config).expect("client")
}

fn batch() -> IngestBatch {
    let body = b"{\"message\":\"a\"}\n{\"message\":\"b\"}\nnot json\n";
    IngestBatch {
        body: Encoding::Zstd.compress(body).expect("compress"),
        encoding: Encoding::Zstd,
        format: BodyFormat::Ndjson,
        key: "batch-7".into(),
        source: Some("/var/log/app.log".into()),
    }
}

/// Every attempt carried the same request: key, auth, tenant, encoding, source and bytes.
fn assert_same_request(received: &[Received], batch: &IngestBatch) {
    for r in received {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/api/v1/ingest?source=%2Fvar%2Flog%2Fapp.log");
        assert_eq!(r.headers["idempotency-key"], batch.key);
        assert_eq!(r.headers["authorization"], "Bearer key-1");
        assert_eq!(r.headers["x-sawmill-tenant"], "acme");
        assert_eq!(r.headers["content-encoding"], "zstd");
        assert_eq!(r.headers["content-type"], "application/x-ndjson");
        assert!(r.headers["user-agent"].starts_with("sawmill/"));
        assert_eq!(Bytes::from(r.body.clone()), batch.body);
    }
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_the_answer_read() {
    let server = Scripted::start(vec![
        reply(429, r#"{"error":"slow down"}"#).header("retry-after", "1"),
        reply(200, ANSWER),
    ])
    .await;
    let batch = batch();
    let mut waits = Vec::new();
    let started = Instant::now();
    let answer = client(&server.url())
        .send_ingest(&batch, Retry::forever(FAST).attempts(5), |r| {
            waits.push((r.attempt, r.wait, r.error.to_string()))
        })
        .await
        .expect("delivered");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!((answer.accepted, answer.rejected), (2, 1));
    assert_eq!(answer.errors[0].line, 3);
    assert_eq!(answer.errors[0].error, "invalid JSON");
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0].0, 1);
    assert!(waits[0].1 >= Duration::from_secs(1), "{waits:?}");
    assert!(waits[0].2.contains("429") && waits[0].2.contains("slow down"));
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_same_request(&received, &batch);
}

#[tokio::test]
async fn a_503_retry_after_is_a_floor_above_a_lower_maximum_wait() {
    let server = Scripted::start(vec![
        reply(503, "overloaded").header("retry-after", "1"),
        reply(200, ANSWER),
    ])
    .await;
    let started = Instant::now();
    client(&server.url())
        .send_ingest(&batch(), Retry::forever(FAST), |_| {})
        .await
        .expect("delivered");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn a_409_for_a_key_still_in_flight_is_retried() {
    let server = Scripted::start(vec![
        reply(409, r#"{"error":"a request with this key is in progress"}"#),
        reply(409, r#"{"error":"a request with this key is in progress"}"#),
        reply(200, ANSWER),
    ])
    .await;
    let batch = batch();
    let answer = client(&server.url())
        .send_ingest(&batch, Retry::forever(FAST).attempts(5), |_| {})
        .await
        .expect("delivered");
    assert_eq!(answer.accepted, 2);
    let received = server.received();
    assert_eq!(received.len(), 3);
    assert_same_request(&received, &batch);
}

#[tokio::test]
async fn a_400_is_final_with_the_servers_message() {
    let server = Scripted::start(vec![
        reply(400, r#"{"error":"unknown tenant acme"}"#),
        reply(200, ANSWER),
    ])
    .await;
    let mut retries = 0;
    let err = client(&server.url())
        .send_ingest(&batch(), Retry::forever(FAST).attempts(5), |_| retries += 1)
        .await
        .expect_err("refused");
    assert!(
        matches!(err, IngestError::Refused { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(
        error_report(&err),
        "refused after 1 attempt(s): the server answered 400 Bad Request: unknown tenant acme"
    );
    assert_eq!(retries, 0);
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn a_success_that_is_not_an_ingest_answer_is_final() {
    let server = Scripted::start(vec![reply(200, "<html>proxy</html>")]).await;
    let err = client(&server.url())
        .send_ingest(&batch(), Retry::forever(FAST).attempts(5), |_| {})
        .await
        .expect_err("not an answer");
    assert!(
        matches!(err.last(), AttemptError::NotAnAnswer { body, .. } if body == "<html>proxy</html>"),
        "{err:?}"
    );
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_up_to_the_maximum_attempts() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut retries = Vec::new();
    let err = client(&format!("http://127.0.0.1:{port}"))
        .send_ingest(&batch(), Retry::forever(FAST).attempts(3), |r| {
            retries.push(r.attempt)
        })
        .await
        .expect_err("nobody listens");
    assert!(
        matches!(err, IngestError::GaveUp { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(retries, vec![1, 2]);
    let text = error_report(&err);
    assert!(text.starts_with("failed after 3 attempt(s): cannot reach http://127.0.0.1:"));
    assert!(text.contains(&port.to_string()), "{text}");
    // the cause reqwest's own message hides
    assert!(text.to_lowercase().contains("connect"), "{text}");
}

#[tokio::test]
async fn a_success_whose_answer_is_cut_off_is_sent_again() {
    let cut = Reply {
        cut: true,
        ..reply(200, ANSWER)
    };
    let server = Scripted::start(vec![cut, reply(200, ANSWER)]).await;
    let batch = batch();
    let mut why = Vec::new();
    let answer = client(&server.url())
        .send_ingest(&batch, Retry::forever(FAST).attempts(5), |r| {
            why.push(matches!(r.error, AttemptError::AnswerCut { .. }))
        })
        .await
        .expect("delivered");
    assert_eq!(answer.accepted, 2);
    assert_eq!(why, vec![true]);
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_same_request(&received, &batch);
}

#[tokio::test]
async fn no_wait_passes_the_deadline() {
    let server = Scripted::start(vec![reply(503, "overloaded").header("retry-after", "5")]).await;
    let started = Instant::now();
    let err = client(&server.url())
        .send_ingest(
            &batch(),
            Retry::forever(FAST).until(started + Duration::from_secs(2)),
            |_| {},
        )
        .await
        .expect_err("out of time");
    assert!(
        matches!(err, IngestError::OutOfTime { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.received().len(), 1);

    // short waits go on until the next one would pass the deadline
    let server = Scripted::start(vec![reply(500, "broken")]).await;
    let started = Instant::now();
    let err = client(&server.url())
        .send_ingest(
            &batch(),
            Retry::forever(FAST).until(started + Duration::from_millis(500)),
            |_| {},
        )
        .await
        .expect_err("out of time");
    assert!(matches!(err, IngestError::OutOfTime { .. }), "{err:?}");
    assert!(err.attempts() > 2, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn the_first_attempt_is_made_even_past_the_deadline() {
    let server = Scripted::start(vec![reply(200, ANSWER)]).await;
    let answer = client(&server.url())
        .send_ingest(&batch(), Retry::forever(FAST).until(Instant::now()), |_| {})
        .await
        .expect("delivered");
    assert_eq!(answer.accepted, 2);
}

#[tokio::test]
async fn an_attempt_is_bounded_by_the_request_timeout() {
    let silent = Reply {
        silent: true,
        ..reply(200, ANSWER)
    };
    let server = Scripted::start(vec![silent]).await;
    let mut config = ClientConfig::new(server.url());
    config.request_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = Client::new(&config)
        .expect("client")
        .send_ingest(&batch(), Retry::forever(FAST).attempts(2), |_| {})
        .await
        .expect_err("no answer");
    assert!(
        matches!(
            err,
            IngestError::GaveUp {
                attempts: 2,
                last: AttemptError::Unreachable { .. }
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn the_json_api_reports_the_servers_error() {
    let server = Scripted::start(vec![
        reply(200, r#"{"hits":[],"total":0}"#),
        reply(403, r#"{"error":"this key cannot search"}"#),
    ])
    .await;
    let c = client(&server.url());
    let ok = c
        .get_json(
            "/api/v1/search",
            &[("q", "level:error AND x"), ("limit", "5")],
        )
        .await
        .expect("answer");
    assert_eq!(ok["total"], 0);
    let err = c.get_json("/api/v1/search", &[]).await.expect_err("403");
    assert_eq!(err.to_string(), "403 Forbidden: this key cannot search");
    let received = server.received();
    assert_eq!(
        received[0].target,
        "/api/v1/search?q=level%3Aerror%20AND%20x&limit=5"
    );
    assert_eq!(received[0].headers["authorization"], "Bearer key-1");
    assert_eq!(received[0].headers["x-sawmill-tenant"], "acme");
}
