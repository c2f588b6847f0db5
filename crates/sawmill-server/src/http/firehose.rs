//! `POST /api/v1/firehose`: Amazon Data Firehose HTTP endpoint delivery, so a delivery stream
//! can ship logs (CloudWatch Logs subscriptions included) without a Lambda in between.
//!
//! Firehose posts `{"requestId","timestamp","records":[{"data":"<base64>"}]}` (optionally
//! gzip-encoded) with its access key in `X-Amz-Firehose-Access-Key` and retries with the same
//! `X-Amz-Firehose-Request-Id`, which becomes the idempotency key: a retried delivery is
//! ingested once. Each record is a CloudWatch Logs subscription message (gzip JSON: one event
//! per log event, with `aws.log_group`, `aws.log_stream`, `aws.account_id`, `aws.event_id`),
//! NDJSON, or plain text lines. The records become events on the one ingest
//! [`Pipeline`](crate::pipeline) (rate limit, redaction, limits, WAL, index, alerts).
//!
//! A record that cannot be decoded (not base64, broken gzip) does not fail the delivery, which
//! Firehose would retry and then put in its backup bucket with the good records: it becomes
//! an event of its own that says what was wrong and carries the record's data as sent
//! (`firehose.data`, at most [`MAX_BAD_DATA`] characters), counted in
//! `sawmill_firehose_bad_records_total`; the good records are ingested and the answer is 200.
//!
//! Answers are in Firehose's shape: `200 {"requestId","timestamp"}` once durable, or the
//! error status with `errorMessage` (Firehose treats 413 as permanent and retries the rest).

use super::receive::{content_encoding, count_outcome, receive};
use super::{now_nanos, ApiError, Caller, State};
use crate::idempotency::validate_key;
use crate::metrics::Metrics;
use crate::pipeline::{DecodeContext, Ingested, Origin, Refusal};
use aws_lambda_events::event::cloudwatch_logs::LogData;
use axum::body::Body;
use axum::extract::{Extension, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sawmill_core::{decompress, parse_body, BodyFormat, ContentEncoding, DecodeError, Parsed};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Instant;

/// Firehose sends at most this many records a request.
const MAX_RECORDS: usize = 10_000;
/// The most characters of an undecodable record's data kept in its event.
pub const MAX_BAD_DATA: usize = 8192;

#[derive(Deserialize)]
struct Envelope {
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    data: String,
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-amz-firehose-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The handler (its answers, like the authorization's, are reshaped by [`reshape`]).
pub async fn firehose(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let result = deliver(&state, caller, &headers, body).await;
    count_outcome(&state, started, result)
}

/// Middleware around the route, authorization included: every answer in Firehose's shape.
pub async fn reshape(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let id = request_id(request.headers());
    answer(next.run(request).await, id).await
}

async fn deliver(
    state: &State,
    caller: Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let encoding = content_encoding(headers)?;
    let idempotency_key = match request_id(headers) {
        Some(id) => {
            let key = format!("firehose-{id}");
            validate_key(&key)
                .map_err(|e| ApiError::bad_request(format!("X-Amz-Firehose-Request-Id: {e}")))?;
            Some(key)
        }
        None => None,
    };
    let origin = Origin {
        tenant: caller.tenant,
        idempotency_key,
        default_source: None,
        wait_for: false,
    };
    let body = receive(state, headers, body, encoding).await?;
    let metrics = state.metrics.clone();
    let decode = move |raw: &[u8], ctx: &mut DecodeContext<'_>| decode(raw, ctx, &metrics);
    match state.pipeline.ingest(origin, body, decode).await? {
        // the reshaping middleware writes Firehose's answer
        Ingested::Done(_) | Ingested::Replayed(_) => Ok(().into_response()),
    }
}

/// The delivery's records as events.
fn decode(raw: &[u8], ctx: &mut DecodeContext<'_>, metrics: &Metrics) -> Result<Parsed, Refusal> {
    let max = ctx.parse.limits.max_decompressed_bytes;
    let (ndjson, bad) = to_ndjson(raw, max)?;
    if bad > 0 {
        metrics.ingest.firehose_bad_records.inc_by(bad);
    }
    // records hold compressed data of their own: charge what they expand to
    ctx.charge(ndjson.len().saturating_sub(raw.len()))?;
    Ok(parse_body(&ndjson, BodyFormat::Ndjson, ctx.parse))
}

/// The records of a delivery as one NDJSON body of at most `max` bytes, and how many records
/// could not be decoded (each one is a line describing it).
fn to_ndjson(raw: &[u8], max: usize) -> Result<(Vec<u8>, u64), Refusal> {
    let envelope: Envelope = serde_json::from_slice(raw).map_err(|e| {
        Refusal::BadBody(format!(
            "not a Firehose delivery ({e}): expected {{\"requestId\":…,\"timestamp\":…,\"records\":[{{\"data\":\"<base64>\"}}]}}"
        ))
    })?;
    if envelope.records.len() > MAX_RECORDS {
        return Err(Refusal::TooLarge(format!(
            "{} records; Firehose sends at most {MAX_RECORDS}",
            envelope.records.len()
        )));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut bad = 0;
    for (i, record) in envelope.records.iter().enumerate() {
        let remaining = max.saturating_sub(out.len());
        match write_record(&record.data, remaining, &mut out) {
            Ok(()) => {}
            Err(RecordError::TooLarge) => return Err(delivery_too_large(max)),
            Err(RecordError::Undecodable(why)) => {
                bad += 1;
                write_bad_record(i + 1, &record.data, &why, &mut out);
            }
        }
        if out.len() > max {
            return Err(delivery_too_large(max));
        }
    }
    Ok((out, bad))
}

fn delivery_too_large(max: usize) -> Refusal {
    Refusal::TooLarge(format!(
        "the delivery decodes to more than {max} bytes: lower the stream's buffer size"
    ))
}

/// Why one record was not decoded.
enum RecordError {
    /// It expands beyond what is left of the delivery's limit.
    TooLarge,
    Undecodable(String),
}

/// Appends the lines of one record (base64 of CloudWatch Logs gzip JSON, NDJSON or text).
fn write_record(data: &str, remaining: usize, out: &mut Vec<u8>) -> Result<(), RecordError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let data = b64
        .decode(data.as_bytes())
        .map_err(|e| RecordError::Undecodable(format!("data is not base64: {e}")))?;
    if !data.starts_with(&[0x1f, 0x8b]) {
        write_lines(&data, out);
        return Ok(());
    }
    let json = decompress(ContentEncoding::Gzip, &data, remaining).map_err(|e| match e {
        DecodeError::TooLarge { .. } => RecordError::TooLarge,
        other => RecordError::Undecodable(other.to_string()),
    })?;
    match serde_json::from_slice::<LogData>(&json) {
        Ok(logs) => write_logs(&logs, out),
        // gzip of something else: its lines as they are
        Err(_) => write_lines(&json, out),
    }
    Ok(())
}

/// A line for a record that could not be decoded: what was wrong, and its data as sent.
fn write_bad_record(number: usize, data: &str, why: &str, out: &mut Vec<u8>) {
    let mut kept = data.len().min(MAX_BAD_DATA);
    while !data.is_char_boundary(kept) {
        kept -= 1;
    }
    let event = serde_json::json!({
        "level": "ERROR",
        "message": format!("firehose record {number} could not be decoded: {why}"),
        "firehose": {
            "record": number,
            "error": why,
            "data_bytes": data.len(),
            "data": &data[..kept],
            "data_truncated": kept < data.len(),
        },
    });
    out.extend_from_slice(event.to_string().as_bytes());
    out.push(b'\n');
}

/// One line per log event of a CloudWatch Logs subscription message (control messages, sent
/// when a subscription is created, carry none).
fn write_logs(logs: &LogData, out: &mut Vec<u8>) {
    if logs.message_type == "CONTROL_MESSAGE" {
        return;
    }
    for e in &logs.log_events {
        let mut event = match serde_json::from_str::<Value>(e.message.trim()) {
            Ok(Value::Object(map)) => map,
            _ => {
                let mut map = Map::new();
                map.insert(
                    "message".into(),
                    Value::String(e.message.trim_end().to_string()),
                );
                map
            }
        };
        if !["timestamp", "@timestamp", "time", "ts"]
            .iter()
            .any(|k| event.contains_key(*k))
        {
            event.insert("timestamp".into(), Value::from(e.timestamp));
        }
        if !event.contains_key("source") {
            event.insert("source".into(), Value::String(logs.log_group.clone()));
        }
        let mut aws = Map::new();
        aws.insert("account_id".into(), Value::String(logs.owner.clone()));
        aws.insert("log_group".into(), Value::String(logs.log_group.clone()));
        aws.insert("log_stream".into(), Value::String(logs.log_stream.clone()));
        aws.insert("event_id".into(), Value::String(e.id.clone()));
        match event.get_mut("aws") {
            Some(Value::Object(own)) => {
                for (k, v) in aws {
                    own.entry(k).or_insert(v);
                }
            }
            _ => {
                event.insert("aws".into(), Value::Object(aws));
            }
        }
        // a map of values always serializes
        if serde_json::to_writer(&mut *out, &event).is_ok() {
            out.push(b'\n');
        }
    }
}

/// Lines of a record as they are: JSON objects stay events, other lines become messages.
fn write_lines(data: &[u8], out: &mut Vec<u8>) {
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line.first() == Some(&b'{') {
            out.extend_from_slice(line);
        } else {
            let text = String::from_utf8_lossy(line);
            let event = serde_json::json!({ "message": text });
            out.extend_from_slice(event.to_string().as_bytes());
        }
        out.push(b'\n');
    }
}

/// Rewrites an ingest answer into Firehose's shape.
async fn answer(response: Response, request_id: Option<String>) -> Response {
    let status = response.status();
    let kept = response.headers().clone();
    let message = if status.is_success() {
        None
    } else {
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 10)
            .await
            .unwrap_or_default();
        let text = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        Some(text)
    };
    let mut body = serde_json::json!({
        "requestId": request_id.unwrap_or_default(),
        "timestamp": now_nanos() / 1_000_000,
    });
    if let Some(m) = message {
        body["errorMessage"] = Value::String(m);
    }
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for name in [header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(v) = kept.get(&name) {
            r.headers_mut().insert(name, v.clone());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn delivery(records: &[Vec<u8>]) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let records: Vec<Value> = records
            .iter()
            .map(|r| serde_json::json!({ "data": b64.encode(r) }))
            .collect();
        serde_json::json!({"requestId": "r1", "timestamp": 1, "records": records})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn cloudwatch_plain_and_ndjson_records_become_events() {
        let logs = serde_json::json!({
            "messageType": "DATA_MESSAGE", "owner": "123456789012",
            "logGroup": "/aws/lambda/api", "logStream": "s1",
            "subscriptionFilters": ["f"],
            "logEvents": [
                {"id": "e1", "timestamp": 1764230400000i64, "message": "plain text\n"},
                {"id": "e2", "timestamp": 1764230401000i64, "message": "{\"level\":\"error\",\"msg\":\"boom\"}"}
            ]
        });
        let control = serde_json::json!({
            "messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs",
            "logGroup": "", "logStream": "", "subscriptionFilters": [],
            "logEvents": [{"id": "c", "timestamp": 0, "message": "CWL CONTROL MESSAGE"}]
        });
        let body = delivery(&[
            gzip(logs.to_string().as_bytes()),
            gzip(control.to_string().as_bytes()),
            b"{\"message\":\"ndjson\"}\nraw line\n".to_vec(),
        ]);
        let (out, bad) = to_ndjson(&body, 1 << 20).unwrap();
        assert_eq!(bad, 0);
        let lines: Vec<Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[0]["message"], "plain text");
        assert_eq!(lines[0]["timestamp"], 1764230400000i64);
        assert_eq!(lines[0]["aws"]["log_group"], "/aws/lambda/api");
        assert_eq!(lines[0]["aws"]["event_id"], "e1");
        assert_eq!(lines[1]["msg"], "boom");
        assert_eq!(lines[2]["message"], "ndjson");
        assert_eq!(lines[3]["message"], "raw line");
    }

    #[test]
    fn a_bad_record_becomes_an_event_and_the_good_ones_stay() {
        let mut body: Value = serde_json::from_slice(&delivery(&[
            b"good one\n".to_vec(),
            vec![0x1f, 0x8b, 1, 2, 3], // gzip magic, then garbage
            b"good two\n".to_vec(),
        ]))
        .unwrap();
        body["records"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"data": "%%% not base64"}));
        let (out, bad) = to_ndjson(body.to_string().as_bytes(), 1 << 20).unwrap();
        assert_eq!(bad, 2);
        let lines: Vec<Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[0]["message"], "good one");
        assert_eq!(lines[2]["message"], "good two");
        let gzip_bad = &lines[1];
        assert_eq!(gzip_bad["level"], "ERROR");
        assert_eq!(gzip_bad["firehose"]["record"], 2);
        assert!(
            gzip_bad["message"]
                .as_str()
                .unwrap()
                .starts_with("firehose record 2 could not be decoded"),
            "{gzip_bad}"
        );
        assert_eq!(gzip_bad["firehose"]["data"], "H4sBAgM=");
        assert_eq!(gzip_bad["firehose"]["data_truncated"], false);
        let b64_bad = &lines[3];
        assert!(
            b64_bad["firehose"]["error"]
                .as_str()
                .unwrap()
                .contains("not base64"),
            "{b64_bad}"
        );
        assert_eq!(b64_bad["firehose"]["data"], "%%% not base64");
    }

    #[test]
    fn the_data_kept_of_a_bad_record_is_capped() {
        let data = "!".repeat(MAX_BAD_DATA * 3);
        let body = serde_json::json!({"records": [{"data": data}]}).to_string();
        let (out, bad) = to_ndjson(body.as_bytes(), 1 << 20).unwrap();
        assert_eq!(bad, 1);
        let event: Value = serde_json::from_slice(out.trim_ascii_end()).unwrap();
        assert_eq!(
            event["firehose"]["data"].as_str().unwrap().len(),
            MAX_BAD_DATA
        );
        assert_eq!(event["firehose"]["data_bytes"], MAX_BAD_DATA * 3);
        assert_eq!(event["firehose"]["data_truncated"], true);
    }

    #[test]
    fn deliveries_that_cannot_be_read_are_refused() {
        let err = to_ndjson(b"{}", 1 << 20).unwrap_err();
        assert!(matches!(err, Refusal::BadBody(_)), "{err}");
        let big = delivery(&[vec![b'x'; 2000]]);
        let err = to_ndjson(&big, 1000).unwrap_err();
        assert!(matches!(err, Refusal::TooLarge(_)), "{err}");
        let bomb = delivery(&[gzip(&vec![b'a'; 1 << 20])]);
        let err = to_ndjson(&bomb, 64 << 10).unwrap_err();
        assert!(matches!(err, Refusal::TooLarge(_)), "{err}");
    }
}
