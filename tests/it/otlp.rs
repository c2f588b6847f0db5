//! OTLP logs over HTTP (`POST /v1/logs`): the real OpenTelemetry Python SDK's OTLP/HTTP log
//! exporter, OTLP/JSON in the specification's shape, gzip protobuf built with prost, records
//! over a limit answered with `partial_success`, refusals as `google.rpc.Status` (400, 415,
//! 401, 429 with `Retry-After`), and no acknowledged record lost or doubled by `kill -9`.

use crate::common;

use common::{gzip, now_nanos, run_sawmill, status_json, Server, FAST_CONFIG};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The Python packages `scripts/test` installs for this test.
const PYTHON_SDK: &str = "opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2";

/// `google.rpc.Status` as OTLP/HTTP sends it (details left out).
#[derive(Clone, PartialEq, prost::Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn string(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    })
}

fn int(i: i64) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::IntValue(i)),
    })
}

fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value,
        ..KeyValue::default()
    }
}

fn request(service: &str, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", string(service))],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

/// POSTs a body to `/v1/logs`; the status, the headers and the body.
fn export(
    server: &Server,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = server
        .post("/v1/logs")
        .header("content-type", content_type)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().expect("POST /v1/logs");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().expect("answer body").to_vec())
}

fn export_proto(server: &Server, req: &ExportLogsServiceRequest) -> ExportLogsServiceResponse {
    let (status, headers, body) = export(
        server,
        "application/x-protobuf",
        &[("content-encoding", "gzip")],
        gzip(&req.encode_to_vec()),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/x-protobuf");
    ExportLogsServiceResponse::decode(&body[..]).expect("an ExportLogsServiceResponse")
}

/// Every hit of `q`, as JSON objects.
fn hits(server: &Server, q: &str) -> Vec<Value> {
    server.search_all(q, "0", "now+1d")
}

#[test]
fn the_python_sdk_exporter_ships_records_with_their_fields() {
    const N: u64 = 25;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let run = format!("run-{}", now_nanos());
    let out = Command::new("python3")
        .arg("-c")
        .arg(PYTHON_EXPORTER)
        .arg(&server.url)
        .arg(N.to_string())
        .arg(&run)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "the OpenTelemetry Python exporter failed (scripts/test installs {PYTHON_SDK}):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let q = format!("run:{run}");
    assert_eq!(server.wait_total(&q, N, Duration::from_secs(30)), N);
    let found = hits(&server, &q);
    assert_eq!(found.len() as u64, N);
    let mut orders: Vec<i64> = Vec::new();
    for h in &found {
        let order = h["order.id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no order.id: {h}"));
        orders.push(order);
        assert_eq!(h["message"], format!("order {order} placed"), "{h}");
        let level = if order % 2 == 1 { "WARN" } else { "INFO" };
        assert_eq!(h["level"], level, "{h}");
        assert_eq!(h["service"], "py-checkout", "{h}");
        assert_eq!(h["host"], "py-host", "{h}");
        assert_eq!(h["resource.deployment.environment"], "test", "{h}");
        assert_eq!(h["resource.telemetry.sdk.language"], "python", "{h}");
        assert_eq!(h["scope.name"], "sawmill.otlp.test", "{h}");
        let trace = h["trace_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no trace_id: {h}"));
        assert!(
            trace.len() == 32
                && trace
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{h}"
        );
        assert_eq!(h["span_id"].as_str().map(str::len), Some(16), "{h}");
        let ts = common::parse_rfc3339(h["timestamp"].as_str().expect("timestamp"));
        assert!((ts - now_nanos()).abs() < 600_000_000_000, "{h}");
    }
    orders.sort_unstable();
    assert_eq!(orders, (0..N as i64).collect::<Vec<_>>());
    // record attributes are top-level fields: queries read as they do for any event
    assert_eq!(
        server.total(&format!("{q} AND http.status_code:500")),
        N / 2
    );
    assert_eq!(
        server.total(&format!("{q} AND level:WARN AND service:py-checkout")),
        N / 2
    );
}

/// Logs N records through the SDK's `LoggingHandler`, `BatchLogRecordProcessor` and
/// `OTLPLogExporter` (gzip), inside a span; fails unless every export succeeded.
const PYTHON_EXPORTER: &str = r#"
import logging, sys
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

url, n, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
results = []

class Checked(OTLPLogExporter):
    def export(self, batch):
        result = super().export(batch)
        results.append(result)
        return result

resource = Resource.create({"service.name": "py-checkout", "host.name": "py-host",
                            "deployment.environment": "test"})
provider = LoggerProvider(resource=resource)
provider.add_log_record_processor(BatchLogRecordProcessor(
    Checked(endpoint=url + "/v1/logs", compression=Compression.Gzip), max_export_batch_size=10))
tracer = TracerProvider(resource=resource).get_tracer("sawmill.otlp.test")
log = logging.getLogger("sawmill.otlp.test")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
with tracer.start_as_current_span("checkout"):
    for i in range(n):
        level = logging.WARNING if i % 2 else logging.INFO
        log.log(level, "order %d placed", i,
                extra={"order.id": i, "run": run, "http.status_code": 500 if i % 2 else 200})
provider.shutdown()
print("exports:", [r.name for r in results])
sys.exit(0 if results and all(r.name == "SUCCESS" for r in results) else 1)
"#;

#[test]
fn otlp_json_in_the_spec_shape_and_gzip_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let body = json!({
      "resourceLogs": [{
        "resource": {"attributes": [
          {"key": "service.name", "value": {"stringValue": "json-svc"}},
          {"key": "host.name", "value": {"stringValue": "node-3"}},
          {"key": "cloud.region", "value": {"stringValue": "eu-west-1"}}
        ]},
        "scopeLogs": [{
          "scope": {"name": "my.library", "version": "1.0.0"},
          "logRecords": [{
            "timeUnixNano": "1544712660300000000",
            "observedTimeUnixNano": "1544712660300000001",
            "severityNumber": 17,
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "EEE19B7EC3C1B174",
            "body": {"stringValue": "json spec record"},
            "attributes": [
              {"key": "int.attribute", "value": {"intValue": "10"}},
              {"key": "message", "value": {"stringValue": "shadowed"}},
              {"key": "empty.list", "value": {"arrayValue": {}}}
            ]
          }]
        }]
      }]
    });
    let (status, headers, answer) = export(
        &server,
        "application/json",
        &[],
        body.to_string().into_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(serde_json::from_slice::<Value>(&answer).unwrap(), json!({}));

    let records = (0..3)
        .map(|i| LogRecord {
            time_unix_nano: 1_714_564_800_000_000_000 + i,
            severity_text: "warning".into(),
            body: string(&format!("proto record {i}")),
            attributes: vec![kv("n", int(i as i64))],
            ..LogRecord::default()
        })
        .collect();
    let response = export_proto(&server, &request("proto-svc", records));
    assert_eq!(response.partial_success, None);

    assert_eq!(
        server.wait_total("service:json-svc", 1, Duration::from_secs(30)),
        1
    );
    let hit = &hits(&server, "service:json-svc")[0];
    assert_eq!(
        hit,
        &json!({
            "timestamp": "2018-12-13T14:51:00.300Z",
            "level": "ERROR",
            "message": "json spec record",
            "service": "json-svc",
            "host": "node-3",
            "int.attribute": 10,
            "attributes.message": "shadowed",
            "empty.list": [],
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "eee19b7ec3c1b174",
            "scope.name": "my.library",
            "scope.version": "1.0.0",
            "resource.cloud.region": "eu-west-1",
        })
    );
    assert_eq!(server.total("trace_id:5b8efff798038103d269b633813fc60c"), 1);
    assert_eq!(
        server.wait_total("service:proto-svc", 3, Duration::from_secs(30)),
        3
    );
    let mut found = hits(&server, "service:proto-svc AND level:WARN");
    found.sort_by_key(|h| h["n"].as_i64());
    let messages: Vec<&str> = found.iter().filter_map(|h| h["message"].as_str()).collect();
    assert_eq!(
        messages,
        ["proto record 0", "proto record 1", "proto record 2"]
    );
    assert_eq!(found[1]["timestamp"], "2024-05-01T12:00:00.000000001Z");
}

#[test]
fn a_record_over_the_field_limit_is_a_partial_success() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let wide: Vec<KeyValue> = (0..1200).map(|i| kv(&format!("f{i}"), int(i))).collect();
    let good = |i: i64| LogRecord {
        body: string(&format!("kept {i}")),
        ..LogRecord::default()
    };
    let records = vec![
        good(1),
        LogRecord {
            body: string("too wide"),
            attributes: wide,
            ..LogRecord::default()
        },
        good(2),
    ];
    let req = request("limits-svc", records);

    let response = export_proto(&server, &req);
    let partial = response.partial_success.expect("partial_success");
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial.error_message.contains("record 2")
            && partial.error_message.contains("too many fields"),
        "{}",
        partial.error_message
    );

    // the same request in OTLP/JSON: rejectedLogRecords is an int64, written as a string
    let (status, _, answer) = export(
        &server,
        "application/json",
        &[],
        serde_json::to_vec(&req).unwrap(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(
        answer["partialSuccess"]["rejectedLogRecords"], "1",
        "{answer}"
    );
    assert!(answer["partialSuccess"]["errorMessage"]
        .as_str()
        .is_some_and(|m| m.contains("too many fields")));

    assert_eq!(
        server.wait_total("service:limits-svc", 4, Duration::from_secs(30)),
        4
    );
    assert_eq!(server.total("service:limits-svc AND message:kept"), 4);
    assert_eq!(server.total("message:wide"), 0);
}

#[test]
fn bad_bodies_and_types_are_refused_with_a_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());

    let (status, headers, body) = export(&server, "application/json", &[], b"{not json".to_vec());
    assert_eq!(status, 400);
    assert_eq!(headers["content-type"], "application/json");
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["code"], 3, "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("not an OTLP ExportLogsServiceRequest"),
        "{answer}"
    );

    let (status, headers, body) = export(
        &server,
        "application/x-protobuf",
        &[],
        b"\xff\xff\xff\xff garbage".to_vec(),
    );
    assert_eq!(status, 400);
    assert_eq!(headers["content-type"], "application/x-protobuf");
    let status_msg = Status::decode(&body[..]).expect("a google.rpc.Status");
    assert_eq!(status_msg.code, 3);
    assert!(status_msg.message.contains("protobuf"), "{status_msg:?}");

    // broken gzip is a bad body too
    let (status, _, _) = export(
        &server,
        "application/x-protobuf",
        &[("content-encoding", "gzip")],
        b"\x1f\x8b not really".to_vec(),
    );
    assert_eq!(status, 400);

    for content_type in ["application/x-ndjson", "text/plain"] {
        let (status, _, body) = export(&server, content_type, &[], b"{}".to_vec());
        assert_eq!(status, 415, "{content_type}");
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains("application/x-protobuf")),
            "{answer}"
        );
    }
    let resp = server.post("/v1/logs").body("{}").send().unwrap();
    assert_eq!(resp.status().as_u16(), 415, "no Content-Type");
    assert_eq!(server.total("*"), 0);
}

#[test]
fn throttled_exports_are_told_when_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{FAST_CONFIG}[tenants.default]\ningest_bytes_per_sec = 1\ningest_burst_bytes = 65536\n"
    );
    let server = Server::start_with_config(dir.path(), &config);
    let record = LogRecord {
        body: string(&"x".repeat(20_000)),
        ..LogRecord::default()
    };
    let req = request("throttled", vec![record]).encode_to_vec();
    let mut limited = None;
    for _ in 0..5 {
        let (status, headers, body) = export(&server, "application/x-protobuf", &[], req.clone());
        if status == 429 {
            limited = Some((headers, body));
            break;
        }
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let (headers, body) = limited.expect("no 429 after sending 5 × the burst");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
    let status = Status::decode(&body[..]).expect("a google.rpc.Status");
    assert_eq!(status.code, 8, "RESOURCE_EXHAUSTED: {status:?}");
    assert!(status.message.contains("rate"), "{status:?}");
}

#[test]
fn exports_need_an_ingest_key_when_the_server_has_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        "keys",
        "create",
        "--tenant",
        "otel",
        "--scope",
        "ingest",
        "--scope",
        "search",
        "--name",
        "collector",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
    ];
    let out = run_sawmill(&args, None, Duration::from_secs(30));
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let key = out.stdout.lines().last().expect("a key").trim().to_string();
    let server = Server::start(dir.path());
    let req = request(
        "keyed",
        vec![LogRecord {
            body: string("with a key"),
            ..LogRecord::default()
        }],
    )
    .encode_to_vec();

    let (status, headers, body) = export(&server, "application/x-protobuf", &[], req.clone());
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    let refused = Status::decode(&body[..]).expect("a google.rpc.Status");
    assert_eq!(refused.code, 16, "UNAUTHENTICATED: {refused:?}");
    let (status, _, body) = export(
        &server,
        "application/json",
        &[("authorization", "Bearer smk_000000000000_wrong")],
        b"{}".to_vec(),
    );
    assert_eq!(status, 401);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["code"], 16);

    let bearer = format!("Bearer {key}");
    let (status, _, body) = export(
        &server,
        "application/x-protobuf",
        &[("authorization", &bearer)],
        req,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let search = || {
        status_json(
            server
                .get("/api/v1/search")
                .header("authorization", &bearer)
                .query(&[("q", "service:keyed"), ("start", "0"), ("end", "now+1d")])
                .send()
                .unwrap(),
        )
    };
    let found = common::poll(Duration::from_secs(30), "the keyed export", || {
        let (status, body) = search();
        (status == 200 && body["total"] == 1).then_some(body)
    });
    assert_eq!(found["hits"][0]["message"], "with a key");
}

#[test]
fn kill9_loses_and_doubles_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let url = server.url.clone();
        let acked = acked.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            for batch in 0..10_000i64 {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let ids: Vec<i64> = (batch * 50..batch * 50 + 50).collect();
                let records = ids
                    .iter()
                    .map(|&id| LogRecord {
                        body: string("crash test"),
                        attributes: vec![kv("rid", int(id))],
                        ..LogRecord::default()
                    })
                    .collect();
                let body = gzip(&request("crash-svc", records).encode_to_vec());
                let sent = http
                    .post(format!("{url}/v1/logs"))
                    .header("content-type", "application/x-protobuf")
                    .header("content-encoding", "gzip")
                    .body(body)
                    .send();
                match sent {
                    Ok(resp) if resp.status().is_success() => {
                        let answer = resp
                            .bytes()
                            .map(|b| ExportLogsServiceResponse::decode(&b[..]));
                        match answer {
                            Ok(Ok(r)) if r.partial_success.is_none() => {
                                acked.lock().unwrap().extend(&ids)
                            }
                            _ => return,
                        }
                    }
                    _ => return,
                }
            }
        })
    };
    common::poll(Duration::from_secs(60), "acknowledged exports", || {
        (acked.lock().unwrap().len() >= 2_000).then_some(())
    });
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();
    server.spawn();
    let acked = acked.lock().unwrap().clone();
    // recovery replays the WAL in the background: wait until the acknowledged are searchable
    common::poll(
        Duration::from_secs(60),
        "acknowledged records searchable",
        || (server.total("service:crash-svc") >= acked.len() as u64).then_some(()),
    );
    let found = hits(&server, "service:crash-svc");
    let mut counts: HashMap<i64, u32> = HashMap::new();
    for h in &found {
        *counts.entry(h["rid"].as_i64().expect("rid")).or_default() += 1;
    }
    let doubled: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        doubled.is_empty(),
        "records found more than once: {doubled:?}"
    );
    let missing: Vec<_> = acked.iter().filter(|id| !counts.contains_key(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged records missing after kill -9, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
}
