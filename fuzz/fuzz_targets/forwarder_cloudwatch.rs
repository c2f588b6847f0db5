//! `sawmill_forwarder::handler::Forwarder::handle`: what the Lambda forwarder does with the
//! event AWS invokes it with, above all a CloudWatch Logs subscription
//! (`{"awslogs":{"data": base64(gzip(JSON))}}`).
//!
//! The classifier and decoders of `handler.rs` (`classify`, `decode_logs_event`,
//! `s3_objects`, `sns_objects`, `eventbridge_object`) are private, so this target calls the
//! public `Forwarder::handle`. The forwarder ships to a sawmill stand-in served by this
//! process on 127.0.0.1 (an ephemeral port, keep-alive connections) that decodes each body
//! like the server (`decompress` + `parse_body`) and answers 200 with the real
//! accepted/rejected counts. There is no S3 client, so S3 notifications stop before any
//! request; nothing leaves the machine.
//!
//! Input layout: byte 0 picks the mode and one of nine forwarder configurations
//! (compression none/gzip/zstd x batches of 1, 3 or 10000 events; some with redaction and
//! static fields); the rest is:
//! - mode 0: the subscription JSON, gzipped and base64-encoded here into `awslogs.data`;
//! - mode 1: the text of `awslogs.data` itself (base64 and gzip errors);
//! - mode 2: the whole invocation event (any JSON: S3, SNS, SQS, Kinesis, EventBridge...).
//!
//! Properties:
//! - every body the forwarder sends decodes with its content-encoding and is NDJSON of
//!   objects (a body the server could not read is a crash);
//! - mode 0: a payload that is not CloudWatch Logs data (as `aws_lambda_events` reads it)
//!   fails the invocation and sends nothing; a CONTROL_MESSAGE succeeds and sends nothing;
//!   any other succeeds with `events` = the number of log events, each sent exactly once
//!   (the multiset of `aws.event_id`s is that of the log event ids), and `accepted +
//!   rejected` = `events`;
//! - every answer with an `events` count matches the number of lines the server received.
#![no_main]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_lambda_events::event::cloudwatch_logs::LogData;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use sawmill_core::{decompress, parse_body, BodyFormat, ContentEncoding, ParseContext};
use sawmill_forwarder::config::Config;
use sawmill_forwarder::deliver::Shipper;
use sawmill_forwarder::enrich::Enricher;
use sawmill_forwarder::handler::Forwarder;
use serde_json::{json, Value};

const NOW: i64 = 1_714_564_800_000_000_000;

/// Decoded request bodies received by the stand-in server.
fn received() -> &'static Mutex<Vec<Vec<u8>>> {
    static RECEIVED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    &RECEIVED
}

fn serve_connection(stream: TcpStream) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        let mut encoding = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-encoding" => encoding = value.trim().to_owned(),
                    "transfer-encoding" => panic!("the forwarder sent a chunked body"),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let encoding = ContentEncoding::parse(&encoding)
            .unwrap_or_else(|e| panic!("the forwarder sent content-encoding {encoding:?}: {e}"));
        let decoded = decompress(encoding, &body, 64 << 20)
            .unwrap_or_else(|e| panic!("the forwarder sent a body that does not decode: {e}"))
            .into_owned();
        for l in decoded.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "the forwarder sent a line that is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(l)
                )
            });
            assert!(
                v.is_object(),
                "the forwarder sent a line that is not an object: {v}"
            );
        }
        let parsed = parse_body(&decoded, BodyFormat::Ndjson, &ParseContext::new(NOW));
        received().lock().unwrap().push(decoded);
        let answer = format!(
            r#"{{"accepted":{},"rejected":{},"errors":[]}}"#,
            parsed.events.len(),
            parsed.rejected
        );
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve_connection(stream));
            }
        });
        addr
    })
}

struct Setup {
    runtime: tokio::runtime::Runtime,
    /// (forwarder, whether it rewrites events: redaction or static fields)
    forwarders: Vec<(Forwarder, bool)>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let url = format!("http://{}", server());
        let mut forwarders = Vec::new();
        for compression in ["none", "gzip", "zstd"] {
            for (events, rewrite) in [("1", false), ("3", compression == "gzip"), ("10000", false)]
            {
                let mut vars: HashMap<&str, String> = HashMap::from([
                    ("SAWMILL_URL", url.clone()),
                    ("SAWMILL_COMPRESSION", compression.to_owned()),
                    ("SAWMILL_BATCH_MAX_EVENTS", events.to_owned()),
                    ("SAWMILL_CONCURRENCY", "2".to_owned()),
                    ("SAWMILL_REQUEST_TIMEOUT", "10s".to_owned()),
                ]);
                if rewrite {
                    vars.insert("SAWMILL_REDACT", "all".to_owned());
                    vars.insert("SAWMILL_STATIC_FIELDS", r#"{"env":"fuzz"}"#.to_owned());
                }
                let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("config");
                let enricher = Enricher {
                    static_fields: config.static_fields.clone(),
                    redactor: config.redactor.clone(),
                };
                let shipper = runtime
                    .block_on(async { Shipper::new(Arc::new(config), None) })
                    .expect("shipper");
                forwarders.push((
                    Forwarder {
                        shipper,
                        enricher,
                        s3: None,
                        failures: None,
                        region: Some("eu-west-1".into()),
                    },
                    rewrite,
                ));
            }
        }
        Setup {
            runtime,
            forwarders,
        }
    })
}

fn gzip_base64(data: &[u8]) -> String {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    base64::engine::general_purpose::STANDARD.encode(enc.finish().expect("gzip"))
}

fn received_lines() -> Vec<Value> {
    received()
        .lock()
        .unwrap()
        .iter()
        .flat_map(|body| {
            body.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice::<Value>(l).expect("checked by the server"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let setup = setup();
    let (forwarder, _rewrites) =
        &setup.forwarders[usize::from(control >> 2) % setup.forwarders.len()];
    let mode = control & 3;
    let event = match mode {
        0 => json!({"awslogs": {"data": gzip_base64(rest)}}),
        1 => json!({"awslogs": {"data": String::from_utf8_lossy(rest)}}),
        _ => match serde_json::from_slice::<Value>(rest) {
            Ok(v) => v,
            Err(_) => return,
        },
    };

    received().lock().unwrap().clear();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let result = setup.runtime.block_on(forwarder.handle(event, deadline));
    let lines = received_lines();
    if std::env::var_os("SAWMILL_FUZZ_DEBUG").is_some() {
        eprintln!("answer: {result:?}\nlines received: {}", lines.len());
        for l in &lines {
            eprintln!("  {l}");
        }
    }

    if let Ok(answer) = &result {
        if let Some(events) = answer.get("events").and_then(Value::as_u64) {
            assert_eq!(
                lines.len() as u64,
                events,
                "answer {answer} but {} lines received",
                lines.len()
            );
        }
        if let (Some(a), Some(r)) = (
            answer.get("accepted").and_then(Value::as_u64),
            answer.get("rejected").and_then(Value::as_u64),
        ) {
            assert_eq!(
                Some(a + r),
                answer.get("events").and_then(Value::as_u64),
                "{answer}"
            );
        }
    }

    if mode != 0 {
        return;
    }
    match serde_json::from_slice::<LogData>(rest) {
        Err(_) => {
            assert!(
                result.is_err(),
                "malformed subscription data accepted: {result:?}"
            );
            assert!(
                lines.is_empty(),
                "malformed subscription data shipped {} lines",
                lines.len()
            );
        }
        Ok(logs) if logs.message_type == "CONTROL_MESSAGE" => {
            assert!(result.is_ok(), "control message failed: {result:?}");
            assert!(
                lines.is_empty(),
                "a control message shipped {} lines",
                lines.len()
            );
        }
        Ok(logs) => {
            let answer = result.unwrap_or_else(|e| panic!("subscription data failed: {e}"));
            assert_eq!(answer["kind"], "cloudwatch_logs");
            assert_eq!(
                answer["events"].as_u64(),
                Some(logs.log_events.len() as u64)
            );
            let mut sent: Vec<String> = lines
                .iter()
                .map(|l| {
                    l.pointer("/aws/event_id")
                        .and_then(Value::as_str)
                        .unwrap_or_else(|| panic!("a line without aws.event_id: {l}"))
                        .to_owned()
                })
                .collect();
            let mut ids: Vec<String> = logs.log_events.iter().map(|e| e.id.clone()).collect();
            sent.sort();
            ids.sort();
            assert_eq!(sent, ids, "the events shipped are not the log events");
        }
    }
});
