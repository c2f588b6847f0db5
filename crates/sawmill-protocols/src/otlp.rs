//! OTLP logs over HTTP (`POST /v1/logs`): an `ExportLogsServiceRequest` in protobuf or in
//! OTLP/JSON, decoded into sawmill events, and the answers the OTLP/HTTP specification asks
//! for (an `ExportLogsServiceResponse` with `partial_success`, a `google.rpc.Status` for a
//! refused request), each in the request's format.
//!
//! The messages are those of the `opentelemetry-proto` crate: prost for protobuf, its serde
//! mapping for JSON (lowerCamelCase keys, 64-bit integers as strings or numbers, `traceId` and
//! `spanId` as hex, `bytesValue` as base64; unknown keys are ignored; an empty `arrayValue` or
//! `kvlistValue` may leave out its `values`).
//!
//! # Field mapping
//!
//! Each log record becomes one event. The decoder builds a JSON object and hands it to
//! [`normalize_object`], so normalization is the one `/api/v1/ingest` applies.
//!
//! | OTLP                                          | event field                                |
//! |-----------------------------------------------|--------------------------------------------|
//! | `body`                                        | `message`: a string as is, any other value as its compact JSON, none as `""` |
//! | `severityText` (when not blank)               | `level`, normalized (`Information` → `INFO`, `WARNING` → `WARN`, …) |
//! | else `severityNumber` 1–4, 5–8, 9–12, 13–16, 17–20, 21–24 | `level` TRACE, DEBUG, INFO, WARN, ERROR, FATAL |
//! | `timeUnixNano`, else `observedTimeUnixNano`, else the receive time | `timestamp` |
//! | resource attribute `service.name`             | `service`                                  |
//! | resource attribute `host.name`                | `host`                                     |
//! | other resource attributes                     | `resource.<key>`                           |
//! | scope `name`, `version`                       | `scope.name`, `scope.version`              |
//! | scope attributes                              | `scope.attributes.<key>`                   |
//! | record attributes                             | `<key>`, at top level (`http.status_code:500` finds them) |
//! | record attribute named like a field above     | `attributes.<key>`                         |
//! | `traceId`, `spanId` (when not all zero)       | `trace_id`, `span_id`: lower-case hex      |
//! | `flags` (when not zero)                       | `flags`                                    |
//! | `eventName` (when not empty)                  | `event_name`                               |
//!
//! A record attribute is moved under `attributes.` when its key is one that normalization or
//! this mapping gives a meaning (`timestamp`, `@timestamp`, `time`, `ts`, `message`, `msg`,
//! `log`, `@message`, `level`, `severity`, `lvl`, `log.level`, `service`, `host`, `source`,
//! `trace_id`, `span_id`, `flags`, `event_name`) or starts with `resource.`, `scope.` or
//! `attributes.`: no attribute overwrites the record's own fields. A non-scalar `service.name`
//! or `host.name` stays a `resource.` attribute.
//!
//! Attribute values keep their structure: strings, integers and doubles as JSON numbers (a
//! NaN or infinite double as the string `"NaN"`, `"Infinity"`, `"-Infinity"`), booleans,
//! bytes as base64 strings, arrays as arrays, key-value lists as objects, an empty value as
//! `null`. Severity number, schema URLs and dropped-attribute counts are not kept.
//!
//! # Limits and rejected records
//!
//! Records are numbered from 1 in request order (resource by resource, scope by scope); a
//! [`LineError`]'s `line` is that number. A record whose event would exceed the
//! [`Limits`](sawmill_core::Limits) of `/api/v1/ingest` (`max_fields` leaf values, its
//! timestamp included, `max_depth` levels, `max_line_bytes` bytes as JSON) or whose time is past what sawmill
//! stores (year 2262) is rejected alone and counted in [`Parsed::rejected`]; the others are
//! kept. A body that is not an `ExportLogsServiceRequest` at all is an [`OtlpError`], and so is
//! one whose events together exceed `max_decompressed_bytes` as JSON (the resource's
//! attributes are repeated in every event, so a small body can expand).

use std::fmt;
use std::io;

use base64::Engine;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use sawmill_core::{
    normalize_object, Event, LineError, NormalizeError, ParseContext, Parsed, MAX_LISTED_ERRORS,
};
use serde_json::{Map, Number, Value};

/// The two encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Binary protobuf, `Content-Type: application/x-protobuf`.
    Protobuf,
    /// OTLP/JSON, `Content-Type: application/json`.
    Json,
}

impl Format {
    /// The format of a `Content-Type` header (parameters such as `charset` ignored); `None`
    /// for anything but `application/x-protobuf` and `application/json`.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Format::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else {
            None
        }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// Why a body was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("body is not an OTLP ExportLogsServiceRequest in protobuf ({0}): send opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest, or OTLP/JSON with Content-Type application/json")]
    Protobuf(#[source] prost::DecodeError),
    #[error("body is not an OTLP ExportLogsServiceRequest in JSON ({0}): send OTLP/JSON ({{\"resourceLogs\":[{{\"scopeLogs\":[{{\"logRecords\":[…]}}]}}]}}, lowerCamelCase keys, hex trace and span ids)")]
    Json(#[source] serde_json::Error),
    #[error("body is not a JSON object: send OTLP/JSON ({{\"resourceLogs\":[…]}}) or protobuf with Content-Type application/x-protobuf")]
    NotAnObject,
    #[error("the log records of this request come to more than {limit} bytes as events: send fewer records per request")]
    TooLarge { limit: usize },
}

/// Why one record was rejected.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("log record is {len} bytes as an event; the limit is {max}: send a smaller body or fewer attributes")]
    TooLong { len: usize, max: usize },
    #[error("log record has too many fields: the limit is {max} leaf values (resource and scope attributes included)")]
    TooManyFields { max: usize },
    #[error("log record is nested too deeply: the limit is {max} levels")]
    TooDeep { max: usize },
    #[error("{field} {nanos} is past the latest time sawmill stores (year 2262): send nanoseconds since the Unix epoch")]
    TimeOutOfRange { field: &'static str, nanos: u64 },
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
}

/// Decodes an `ExportLogsServiceRequest` (already decompressed) into events.
pub fn decode_logs(body: &[u8], format: Format, ctx: &ParseContext) -> Result<Parsed, OtlpError> {
    let request = match format {
        Format::Protobuf => ExportLogsServiceRequest::decode(body).map_err(OtlpError::Protobuf)?,
        Format::Json => {
            // serde would also read a struct from a JSON array
            if body.trim_ascii_start().first() != Some(&b'{') {
                return Err(OtlpError::NotAnObject);
            }
            read_json(body)?
        }
    };
    let mut parsed = Parsed {
        bytes: body.len(),
        ..Parsed::default()
    };
    let budget = ctx.limits.max_decompressed_bytes;
    let mut total = 0usize;
    let mut number = 0usize;
    for resource_logs in &request.resource_logs {
        let resource = Shared::of_resource(resource_logs.resource.as_ref());
        for scope_logs in &resource_logs.scope_logs {
            let shared = resource.with_scope(scope_logs.scope.as_ref());
            for record in &scope_logs.log_records {
                number += 1;
                let (result, size) = record_event(record, &shared, ctx);
                total = total.saturating_add(size);
                if total > budget {
                    return Err(OtlpError::TooLarge { limit: budget });
                }
                match result {
                    Ok(event) => parsed.events.push(event),
                    Err(error) => {
                        parsed.rejected += 1;
                        if parsed.errors.len() < MAX_LISTED_ERRORS {
                            parsed.errors.push(LineError {
                                line: number,
                                error: error.to_string(),
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(parsed)
}

/// Reads OTLP/JSON. The crate's serde mapping wants `values` in every `arrayValue` and
/// `kvlistValue`, where OTLP/JSON (proto3's mapping) may leave an empty list out, as the
/// Collector does: a body it refuses is read again with those lists filled in.
fn read_json(body: &[u8]) -> Result<ExportLogsServiceRequest, OtlpError> {
    let error = match serde_json::from_slice(body) {
        Ok(request) => return Ok(request),
        Err(e) => e,
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return Err(OtlpError::Json(error));
    };
    fill_empty_lists(&mut value);
    serde_json::from_value(value).map_err(|_| OtlpError::Json(error))
}

fn fill_empty_lists(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if let ("arrayValue" | "kvlistValue", Value::Object(list)) =
                    (key.as_str(), &mut *child)
                {
                    let values = list.entry("values").or_insert(Value::Null);
                    if values.is_null() {
                        *values = Value::Array(Vec::new());
                    }
                }
                fill_empty_lists(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fill_empty_lists),
        _ => {}
    }
}

/// What every record of a scope carries: the resource's `service` and `host` and the
/// `resource.` and `scope.` fields.
#[derive(Clone, Default)]
struct Shared {
    service: Option<Value>,
    host: Option<Value>,
    fields: Vec<(String, Value)>,
}

impl Shared {
    fn of_resource(resource: Option<&Resource>) -> Shared {
        let mut shared = Shared::default();
        for kv in resource
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default()
        {
            let value = any_to_json(kv.value.as_ref());
            let keyword = matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_));
            match kv.key.as_str() {
                "service.name" if keyword => shared.service = Some(value),
                "host.name" if keyword => shared.host = Some(value),
                key => shared.fields.push((format!("resource.{key}"), value)),
            }
        }
        shared
    }

    fn with_scope(&self, scope: Option<&InstrumentationScope>) -> Shared {
        let mut shared = self.clone();
        let Some(scope) = scope else {
            return shared;
        };
        let mut fields = Vec::with_capacity(2 + scope.attributes.len() + shared.fields.len());
        if !scope.name.is_empty() {
            fields.push(("scope.name".to_owned(), Value::String(scope.name.clone())));
        }
        if !scope.version.is_empty() {
            fields.push((
                "scope.version".to_owned(),
                Value::String(scope.version.clone()),
            ));
        }
        for kv in &scope.attributes {
            fields.push((
                format!("scope.attributes.{}", kv.key),
                any_to_json(kv.value.as_ref()),
            ));
        }
        fields.append(&mut shared.fields);
        shared.fields = fields;
        shared
    }
}

/// Record attribute keys that would collide with a field of the mapping.
fn is_reserved(key: &str) -> bool {
    matches!(
        key,
        "timestamp"
            | "@timestamp"
            | "time"
            | "ts"
            | "message"
            | "msg"
            | "log"
            | "@message"
            | "level"
            | "severity"
            | "lvl"
            | "log.level"
            | "service"
            | "host"
            | "source"
            | "trace_id"
            | "span_id"
            | "flags"
            | "event_name"
    ) || key.starts_with("resource.")
        || key.starts_with("scope.")
        || key.starts_with("attributes.")
}

/// One record as an event, and the size of its JSON object (counted against the request's
/// budget whether the record is kept or not).
fn record_event(
    record: &LogRecord,
    shared: &Shared,
    ctx: &ParseContext,
) -> (Result<Event, RecordError>, usize) {
    let obj = record_object(record, shared);
    let size = json_size(&obj);
    (check_and_normalize(obj, size, record, ctx), size)
}

fn record_object(record: &LogRecord, shared: &Shared) -> Map<String, Value> {
    let mut obj = Map::with_capacity(8 + record.attributes.len() + shared.fields.len());
    match &record.body {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(s)),
        }) => {
            obj.insert("message".into(), Value::String(s.clone()));
        }
        Some(body @ AnyValue { value: Some(_) }) => {
            obj.insert(
                "message".into(),
                Value::String(any_to_json(Some(body)).to_string()),
            );
        }
        _ => {}
    }
    if let Some(level) = level(record) {
        obj.insert("level".into(), Value::String(level));
    }
    if let Some(service) = &shared.service {
        obj.insert("service".into(), service.clone());
    }
    if let Some(host) = &shared.host {
        obj.insert("host".into(), host.clone());
    }
    for KeyValue { key, value, .. } in &record.attributes {
        let value = any_to_json(value.as_ref());
        if is_reserved(key) {
            obj.insert(format!("attributes.{key}"), value);
        } else {
            obj.insert(key.clone(), value);
        }
    }
    if is_id(&record.trace_id) {
        obj.insert("trace_id".into(), Value::String(hex(&record.trace_id)));
    }
    if is_id(&record.span_id) {
        obj.insert("span_id".into(), Value::String(hex(&record.span_id)));
    }
    if record.flags != 0 {
        obj.insert("flags".into(), Value::from(record.flags));
    }
    if !record.event_name.is_empty() {
        obj.insert(
            "event_name".into(),
            Value::String(record.event_name.clone()),
        );
    }
    for (key, value) in &shared.fields {
        obj.insert(key.clone(), value.clone());
    }
    obj
}

fn check_and_normalize(
    obj: Map<String, Value>,
    size: usize,
    record: &LogRecord,
    ctx: &ParseContext,
) -> Result<Event, RecordError> {
    let limits = &ctx.limits;
    if size > limits.max_line_bytes {
        return Err(RecordError::TooLong {
            len: size,
            max: limits.max_line_bytes,
        });
    }
    // the timestamp, always in the event, is one field
    let Some(mut fields_left) = limits.max_fields.checked_sub(1) else {
        return Err(RecordError::TooManyFields {
            max: limits.max_fields,
        });
    };
    for value in obj.values() {
        measure(value, 2, &mut fields_left, limits.max_depth).map_err(|e| match e {
            Exceeded::Fields => RecordError::TooManyFields {
                max: limits.max_fields,
            },
            Exceeded::Depth => RecordError::TooDeep {
                max: limits.max_depth,
            },
        })?;
    }
    let timestamp = timestamp(record)?.unwrap_or(ctx.received_at);
    // No key of `obj` is a timestamp field, so the event's time is `timestamp`.
    Ok(normalize_object(
        obj,
        timestamp,
        ctx.default_source.as_deref(),
    )?)
}

/// The record's time: `timeUnixNano`, else `observedTimeUnixNano`; `None` when both are 0.
fn timestamp(record: &LogRecord) -> Result<Option<i64>, RecordError> {
    for (field, nanos) in [
        ("timeUnixNano", record.time_unix_nano),
        ("observedTimeUnixNano", record.observed_time_unix_nano),
    ] {
        if nanos != 0 {
            return i64::try_from(nanos)
                .map(Some)
                .map_err(|_| RecordError::TimeOutOfRange { field, nanos });
        }
    }
    Ok(None)
}

/// `severityText` when not blank (normalized later), else the range of `severityNumber`.
fn level(record: &LogRecord) -> Option<String> {
    if !record.severity_text.trim().is_empty() {
        return Some(record.severity_text.clone());
    }
    let level = match record.severity_number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => return None,
    };
    Some(level.to_owned())
}

/// An id is present when it has a byte that is not zero (all zeros means "no id").
fn is_id(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| b != 0)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// An `AnyValue` as JSON (see the module documentation).
fn any_to_json(value: Option<&AnyValue>) -> Value {
    use any_value::Value as V;
    let Some(value) = value.and_then(|v| v.value.as_ref()) else {
        return Value::Null;
    };
    match value {
        V::StringValue(s) => Value::String(s.clone()),
        V::BoolValue(b) => Value::Bool(*b),
        V::IntValue(i) => Value::Number((*i).into()),
        V::DoubleValue(d) => match Number::from_f64(*d) {
            Some(n) => Value::Number(n),
            None if d.is_nan() => Value::String("NaN".into()),
            None if *d > 0.0 => Value::String("Infinity".into()),
            None => Value::String("-Infinity".into()),
        },
        V::ArrayValue(array) => {
            Value::Array(array.values.iter().map(|v| any_to_json(Some(v))).collect())
        }
        V::KvlistValue(list) => Value::Object(
            list.values
                .iter()
                .map(|kv| (kv.key.clone(), any_to_json(kv.value.as_ref())))
                .collect(),
        ),
        V::BytesValue(bytes) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        // A reference into a dictionary that only profiles have.
        V::StringValueStrindex(_) => Value::Null,
    }
}

enum Exceeded {
    Fields,
    Depth,
}

/// Counts the leaves of `value` at `depth` (the event itself being level 1) as
/// `/api/v1/ingest` counts them: scalars and empty containers are leaves.
fn measure(
    value: &Value,
    depth: usize,
    fields_left: &mut usize,
    max_depth: usize,
) -> Result<(), Exceeded> {
    let children = match value {
        Value::Array(items) if !items.is_empty() => Some(items.len()),
        Value::Object(map) if !map.is_empty() => Some(map.len()),
        _ => None,
    };
    if matches!(value, Value::Array(_) | Value::Object(_)) && depth > max_depth {
        return Err(Exceeded::Depth);
    }
    if children.is_none() {
        if *fields_left == 0 {
            return Err(Exceeded::Fields);
        }
        *fields_left -= 1;
        return Ok(());
    }
    match value {
        Value::Array(items) => items
            .iter()
            .try_for_each(|v| measure(v, depth + 1, fields_left, max_depth)),
        Value::Object(map) => map
            .values()
            .try_for_each(|v| measure(v, depth + 1, fields_left, max_depth)),
        _ => Ok(()),
    }
}

/// The length of `obj` as compact JSON, without writing it anywhere.
fn json_size(obj: &Map<String, Value>) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // A map of JSON values always serializes; the count stands either way.
    let _ = serde_json::to_writer(&mut count, obj);
    count.0
}

/// How many rejected records an answer's `error_message` names one by one.
const MAX_NAMED_ERRORS: usize = 10;

/// The `ExportLogsServiceResponse` for a request of which `rejected` records were refused
/// (`errors` says why, for the first of them): empty when none was, else with
/// `partial_success`. JSON writes `rejectedLogRecords` as a string, as OTLP/JSON writes every
/// 64-bit integer.
pub fn encode_response(rejected: u64, errors: &[LineError], format: Format) -> Vec<u8> {
    let partial = (rejected > 0).then(|| ExportLogsPartialSuccess {
        rejected_log_records: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: rejection_message(rejected, errors),
    });
    match format {
        Format::Protobuf => ExportLogsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        Format::Json => {
            let body = match partial {
                Some(p) => serde_json::json!({
                    "partialSuccess": {
                        "rejectedLogRecords": p.rejected_log_records.to_string(),
                        "errorMessage": p.error_message,
                    }
                }),
                None => serde_json::json!({}),
            };
            body.to_string().into_bytes()
        }
    }
}

/// `N log records rejected: record 3: why; record 9: why; …`
fn rejection_message(rejected: u64, errors: &[LineError]) -> String {
    let mut message = if rejected == 1 {
        "1 log record rejected".to_owned()
    } else {
        format!("{rejected} log records rejected")
    };
    for (i, e) in errors.iter().take(MAX_NAMED_ERRORS).enumerate() {
        message.push_str(if i == 0 { ": " } else { "; " });
        message.push_str(&format!("record {}: {}", e.line, e.error));
    }
    if rejected as usize > errors.len().min(MAX_NAMED_ERRORS) && !errors.is_empty() {
        message.push_str("; …");
    }
    message
}

/// `google.rpc.Status`, the body of every OTLP/HTTP answer that is not a success. `details`
/// (field 3) is never sent, so it is not declared.
#[derive(Clone, PartialEq, prost::Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The gRPC status code the OTLP/HTTP answer with this HTTP status carries.
pub fn grpc_code(http_status: u16) -> i32 {
    match http_status {
        200..=299 => 0,       // OK
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        408 => 4,             // DEADLINE_EXCEEDED
        404 => 5,             // NOT_FOUND
        403 => 7,             // PERMISSION_DENIED
        429 | 507 => 8,       // RESOURCE_EXHAUSTED
        405 => 12,            // UNIMPLEMENTED
        409 => 10,            // ABORTED
        503 => 14,            // UNAVAILABLE
        401 => 16,            // UNAUTHENTICATED
        500..=599 => 13,      // INTERNAL
        _ => 2,               // UNKNOWN
    }
}

/// A `google.rpc.Status` body for an answer with this HTTP status.
pub fn encode_status(http_status: u16, message: &str, format: Format) -> Vec<u8> {
    let status = Status {
        code: grpc_code(http_status),
        message: message.to_owned(),
    };
    match format {
        Format::Protobuf => status.encode_to_vec(),
        Format::Json => serde_json::json!({ "code": status.code, "message": status.message })
            .to_string()
            .into_bytes(),
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.content_type())
    }
}

#[cfg(test)]
mod tests;
