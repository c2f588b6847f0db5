//! `POST /api/v1/firehose`: Amazon Data Firehose HTTP endpoint delivery, so a delivery stream
//! can ship logs (CloudWatch Logs subscriptions included) without a Lambda in between.
//!
//! Firehose posts `{"requestId","timestamp","records":[{"data":"<base64>"}]}` (optionally
//! gzip-encoded) with its access key in `X-Amz-Firehose-Access-Key` and retries with the same
//! `X-Amz-Firehose-Request-Id`, which becomes the idempotency key: a retried delivery is
//! ingested once. Each record is a CloudWatch Logs subscription message (gzip JSON: one event
//! per log event, with `aws.log_group`, `aws.log_stream`, `aws.account_id`, `aws.event_id`),
//! NDJSON, or plain text lines. The records become one NDJSON body that goes through the same
//! path as `/api/v1/ingest` (rate limit, redaction, limits, WAL, index, alerts).
//!
//! Answers are in Firehose's shape: `200 {"requestId","timestamp"}` once durable, or the
//! error status with `errorMessage` (Firehose treats 413 as permanent and retries the rest).

use super::ingest::{count_outcome, ingest_request, receive, IngestRequest, Params};
use super::{now_nanos, ApiError, Caller, State};
use crate::idempotency::validate_key;
use aws_lambda_events::event::cloudwatch_logs::LogData;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sawmill_core::{decompress, BodyFormat, ContentEncoding, DecodeError};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Instant;

/// Firehose sends at most this many records a request.
const MAX_RECORDS: usize = 10_000;

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
    let id = request_id(&headers);
    let result = deliver(&state, &caller, &headers, id.as_deref(), body, started).await;
    count_outcome(&state, result)
}

/// Middleware around the route, authorization included: every answer in Firehose's shape.
pub async fn reshape(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let id = request_id(request.headers());
    answer(next.run(request).await, id).await
}

async fn deliver(
    state: &State,
    caller: &Caller,
    headers: &HeaderMap,
    request_id: Option<&str>,
    body: Body,
    started: Instant,
) -> Result<Response, ApiError> {
    let encoding = super::ingest::content_encoding(headers)?;
    let key = match request_id {
        Some(id) => {
            let key = format!("firehose-{id}");
            validate_key(&key)
                .map_err(|e| ApiError::bad_request(format!("X-Amz-Firehose-Request-Id: {e}")))?;
            Some(key)
        }
        None => None,
    };
    let (body, permit) = receive(state, headers, body).await?;
    let max = state.config.ingest.max_decompressed_bytes;
    let ndjson = tokio::task::spawn_blocking(move || to_ndjson(&body, encoding, max))
        .await
        .map_err(|e| ApiError::internal(format!("firehose decoding failed: {e}")))??;
    let request = IngestRequest {
        tenant: caller.tenant.clone(),
        key,
        params: Params::default(),
        format: BodyFormat::Ndjson,
        encoding: ContentEncoding::Identity,
        body: Bytes::from(ndjson),
        permit,
    };
    ingest_request(state, request, started).await
}

fn too_large(e: DecodeError) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
}

/// The delivery's records as one NDJSON body of at most `max` bytes.
fn to_ndjson(body: &[u8], encoding: ContentEncoding, max: usize) -> Result<Vec<u8>, ApiError> {
    let raw = decompress(encoding, body, max).map_err(|e| match e {
        DecodeError::TooLarge { .. } => too_large(e),
        other => ApiError::bad_request(other.to_string()),
    })?;
    let envelope: Envelope = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::bad_request(format!(
            "not a Firehose delivery ({e}): expected {{\"requestId\":…,\"timestamp\":…,\"records\":[{{\"data\":\"<base64>\"}}]}}"
        ))
    })?;
    if envelope.records.len() > MAX_RECORDS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} records; Firehose sends at most {MAX_RECORDS}",
                envelope.records.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    let b64 = base64::engine::general_purpose::STANDARD;
    for (i, record) in envelope.records.iter().enumerate() {
        let data = b64.decode(record.data.as_bytes()).map_err(|e| {
            ApiError::bad_request(format!("record {}: data is not base64: {e}", i + 1))
        })?;
        let remaining = max.saturating_sub(out.len());
        if data.starts_with(&[0x1f, 0x8b]) {
            let json =
                decompress(ContentEncoding::Gzip, &data, remaining).map_err(|e| match e {
                    DecodeError::TooLarge { .. } => too_large(e),
                    other => ApiError::bad_request(format!("record {}: {other}", i + 1)),
                })?;
            match serde_json::from_slice::<LogData>(&json) {
                Ok(logs) => write_logs(&logs, &mut out),
                // gzip of something else: its lines as they are
                Err(_) => write_lines(&json, &mut out),
            }
        } else {
            write_lines(&data, &mut out);
        }
        if out.len() > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the delivery decodes to more than {max} bytes: lower the stream's buffer size"
                ),
            ));
        }
    }
    Ok(out)
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
        let out = to_ndjson(&body, ContentEncoding::Identity, 1 << 20).unwrap();
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
    fn bad_deliveries_say_what_is_wrong() {
        let err = to_ndjson(b"{}", ContentEncoding::Identity, 1 << 20).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        let err = to_ndjson(
            br#"{"records":[{"data":"%%%"}]}"#,
            ContentEncoding::Identity,
            1 << 20,
        )
        .unwrap_err();
        assert!(err.message.contains("record 1"), "{}", err.message);
        let big = delivery(&[vec![b'x'; 2000]]);
        let err = to_ndjson(&big, ContentEncoding::Identity, 1000).unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
