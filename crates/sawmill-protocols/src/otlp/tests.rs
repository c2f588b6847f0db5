//! Tests of the OTLP decoder: protobuf built with prost from the crate's messages, JSON in the
//! shape the OTLP specification documents.

use super::*;
use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use serde_json::json;

const NOW: i64 = 1_700_000_000_000_000_000;
const T: u64 = 1_714_564_800_123_456_789; // 2024-05-01T12:00:00.123456789Z

fn ctx() -> ParseContext {
    ParseContext::new(NOW)
}

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    })
}

fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value,
        ..KeyValue::default()
    }
}

fn int(i: i64) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::IntValue(i)),
    })
}

fn request(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource,
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "checkout.logger".into(),
                    version: "1.2.0".into(),
                    ..InstrumentationScope::default()
                }),
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

fn proto(req: &ExportLogsServiceRequest) -> Parsed {
    decode_logs(&req.encode_to_vec(), Format::Protobuf, &ctx()).unwrap()
}

fn json_of(e: &Event) -> Value {
    e.to_json_value()
}

#[test]
fn a_protobuf_record_maps_to_every_field() {
    let record = LogRecord {
        time_unix_nano: T,
        observed_time_unix_nano: T + 5,
        severity_number: 17,
        severity_text: "Information".into(),
        body: s("payment declined"),
        attributes: vec![
            kv("http.status_code", int(500)),
            kv("message", s("an attribute, not the body")),
            kv("service", s("not the service")),
            kv("resource.x", s("not a resource attribute")),
            kv(
                "ok",
                Some(AnyValue {
                    value: Some(any_value::Value::BoolValue(true)),
                }),
            ),
        ],
        trace_id: (1..=16).collect(),
        span_id: vec![0xab, 0xcd, 0xef, 0, 1, 2, 3, 4],
        flags: 1,
        ..LogRecord::default()
    };
    let req = request(
        vec![
            kv("service.name", s("checkout")),
            kv("host.name", s("web-1")),
            kv("k8s.pod.name", s("checkout-7d9")),
        ],
        vec![record],
    );
    let parsed = proto(&req);
    assert_eq!(parsed.rejected, 0, "{:?}", parsed.errors);
    assert_eq!(parsed.events.len(), 1);
    let e = &parsed.events[0];
    assert_eq!(e.timestamp, T as i64);
    assert_eq!(e.message, "payment declined");
    assert_eq!(e.level.as_deref(), Some("INFO"), "severityText wins");
    assert_eq!(e.service.as_deref(), Some("checkout"));
    assert_eq!(e.host.as_deref(), Some("web-1"));
    assert_eq!(
        json_of(e),
        json!({
            "timestamp": "2024-05-01T12:00:00.123456789Z",
            "level": "INFO",
            "message": "payment declined",
            "service": "checkout",
            "host": "web-1",
            "http.status_code": 500,
            "attributes.message": "an attribute, not the body",
            "attributes.service": "not the service",
            "attributes.resource.x": "not a resource attribute",
            "ok": true,
            "trace_id": "0102030405060708090a0b0c0d0e0f10",
            "span_id": "abcdef0001020304",
            "flags": 1,
            "scope.name": "checkout.logger",
            "scope.version": "1.2.0",
            "resource.k8s.pod.name": "checkout-7d9",
        })
    );
}

#[test]
fn levels_from_severity_number_ranges() {
    let cases = [
        (0, None),
        (1, Some("TRACE")),
        (4, Some("TRACE")),
        (5, Some("DEBUG")),
        (8, Some("DEBUG")),
        (9, Some("INFO")),
        (12, Some("INFO")),
        (13, Some("WARN")),
        (16, Some("WARN")),
        (17, Some("ERROR")),
        (20, Some("ERROR")),
        (21, Some("FATAL")),
        (24, Some("FATAL")),
        (25, None),
        (-3, None),
    ];
    let records = cases
        .iter()
        .map(|&(n, _)| LogRecord {
            severity_number: n,
            severity_text: "  ".into(),
            ..LogRecord::default()
        })
        .collect();
    let parsed = proto(&request(vec![], records));
    let levels: Vec<Option<&str>> = parsed.events.iter().map(|e| e.level.as_deref()).collect();
    let expected: Vec<Option<&str>> = cases.iter().map(|&(_, l)| l).collect();
    assert_eq!(levels, expected);
}

#[test]
fn time_falls_back_to_observed_then_receive_time() {
    let records = vec![
        LogRecord {
            observed_time_unix_nano: T,
            ..LogRecord::default()
        },
        LogRecord::default(),
        LogRecord {
            time_unix_nano: 1, // 1 ns after the epoch, not 1 second
            ..LogRecord::default()
        },
        LogRecord {
            time_unix_nano: u64::MAX,
            ..LogRecord::default()
        },
    ];
    let parsed = proto(&request(vec![], records));
    let times: Vec<i64> = parsed.events.iter().map(|e| e.timestamp).collect();
    assert_eq!(times, [T as i64, NOW, 1]);
    assert_eq!(parsed.rejected, 1);
    assert_eq!(parsed.errors[0].line, 4);
    assert!(
        parsed.errors[0].error.contains("timeUnixNano"),
        "{:?}",
        parsed.errors
    );
}

#[test]
fn bodies_and_attribute_values_become_json() {
    let kvlist = AnyValue {
        value: Some(any_value::Value::KvlistValue(KeyValueList {
            values: vec![
                kv("user", s("ada")),
                kv("tries", int(3)),
                kv(
                    "ratio",
                    Some(AnyValue {
                        value: Some(any_value::Value::DoubleValue(0.5)),
                    }),
                ),
                kv(
                    "nan",
                    Some(AnyValue {
                        value: Some(any_value::Value::DoubleValue(f64::NAN)),
                    }),
                ),
                kv(
                    "raw",
                    Some(AnyValue {
                        value: Some(any_value::Value::BytesValue(b"hi!".to_vec())),
                    }),
                ),
                kv(
                    "list",
                    Some(AnyValue {
                        value: Some(any_value::Value::ArrayValue(ArrayValue {
                            values: vec![s("a").unwrap_or_default(), int(2).unwrap_or_default()],
                        })),
                    }),
                ),
                kv("empty", Some(AnyValue { value: None })),
            ],
        })),
    };
    let records = vec![
        LogRecord {
            body: Some(kvlist.clone()),
            attributes: vec![kv("details", Some(kvlist))],
            ..LogRecord::default()
        },
        LogRecord {
            body: int(42),
            ..LogRecord::default()
        },
        LogRecord::default(),
    ];
    let parsed = proto(&request(vec![], records));
    assert_eq!(parsed.rejected, 0, "{:?}", parsed.errors);
    let expected = json!({
        "user": "ada", "tries": 3, "ratio": 0.5, "nan": "NaN", "raw": "aGkh",
        "list": ["a", 2], "empty": null
    });
    let e = &parsed.events[0];
    assert_eq!(serde_json::from_str::<Value>(&e.message).unwrap(), expected);
    assert_eq!(e.attributes["details"], expected);
    assert_eq!(parsed.events[1].message, "42");
    assert_eq!(parsed.events[2].message, "");
    assert_eq!(parsed.events[2].level, None);
}

#[test]
fn non_scalar_service_name_stays_a_resource_attribute_and_zero_ids_are_absent() {
    let list = Some(AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![] })),
    });
    let record = LogRecord {
        trace_id: vec![0; 16],
        span_id: vec![0; 8],
        ..LogRecord::default()
    };
    let parsed = proto(&request(
        vec![kv("service.name", list), kv("host.name", int(7))],
        vec![record],
    ));
    let e = &parsed.events[0];
    assert_eq!(e.service, None);
    assert_eq!(e.host.as_deref(), Some("7"));
    assert_eq!(e.attributes["resource.service.name"], json!([]));
    assert!(!e.attributes.contains_key("trace_id"));
    assert!(!e.attributes.contains_key("span_id"));
}

/// The JSON example of the OTLP specification (opentelemetry-proto's examples/logs.json), as
/// an SDK sends it: lowerCamelCase, 64-bit integers as strings, hex ids.
const SPEC_JSON: &str = r#"{
  "resourceLogs": [
    {
      "resource": {
        "attributes": [
          { "key": "service.name", "value": { "stringValue": "my.service" } },
          { "key": "host.name", "value": { "stringValue": "node-3" } }
        ]
      },
      "scopeLogs": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [
              { "key": "my.scope.attribute", "value": { "stringValue": "some scope attribute" } }
            ]
          },
          "logRecords": [
            {
              "timeUnixNano": "1544712660300000000",
              "observedTimeUnixNano": "1544712660300000000",
              "severityNumber": 10,
              "severityText": "Information",
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "body": { "stringValue": "Example log record" },
              "attributes": [
                { "key": "string.attribute", "value": { "stringValue": "some string" } },
                { "key": "boolean.attribute", "value": { "boolValue": true } },
                { "key": "int.attribute", "value": { "intValue": "10" } },
                { "key": "double.attribute", "value": { "doubleValue": 637.704 } },
                { "key": "array.attribute", "value": { "arrayValue": { "values": [
                  { "stringValue": "many" }, { "stringValue": "values" } ] } } },
                { "key": "map.attribute", "value": { "kvlistValue": { "values": [
                  { "key": "some.map.key", "value": { "stringValue": "some value" } } ] } } },
                { "key": "bytes.attribute", "value": { "bytesValue": "aGkh" } }
              ],
              "unknownFutureField": {"ignored": true}
            }
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn json_in_the_spec_shape() {
    let parsed = decode_logs(SPEC_JSON.as_bytes(), Format::Json, &ctx()).unwrap();
    assert_eq!(parsed.rejected, 0, "{:?}", parsed.errors);
    assert_eq!(parsed.bytes, SPEC_JSON.len());
    let e = &parsed.events[0];
    assert_eq!(
        json_of(e),
        json!({
            "timestamp": "2018-12-13T14:51:00.300Z",
            "level": "INFO",
            "message": "Example log record",
            "service": "my.service",
            "host": "node-3",
            "string.attribute": "some string",
            "boolean.attribute": true,
            "int.attribute": 10,
            "double.attribute": 637.704,
            "array.attribute": ["many", "values"],
            "map.attribute": {"some.map.key": "some value"},
            "bytes.attribute": "aGkh",
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "eee19b7ec3c1b174",
            "scope.name": "my.library",
            "scope.version": "1.0.0",
            "scope.attributes.my.scope.attribute": "some scope attribute",
        })
    );
}

#[test]
fn json_and_protobuf_of_one_request_give_the_same_events() {
    let from_json: ExportLogsServiceRequest = serde_json::from_str(SPEC_JSON).unwrap();
    let parsed_json = decode_logs(SPEC_JSON.as_bytes(), Format::Json, &ctx()).unwrap();
    assert_eq!(
        proto(&from_json),
        Parsed {
            bytes: from_json.encoded_len(),
            ..parsed_json
        }
    );
}

#[test]
fn json_integers_as_numbers_are_accepted_too() {
    let body = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
        {"timeUnixNano": 1544712660300000000, "severityNumber": 17,
         "attributes":[{"key":"n","value":{"intValue":7}},
                       {"key":"e","value":{"arrayValue":{}}},
                       {"key":"k","value":{"kvlistValue":{}}},
                       {"key":"v","value":{}}]}]}]}]}"#;
    let parsed = decode_logs(body.as_bytes(), Format::Json, &ctx()).unwrap();
    let e = &parsed.events[0];
    assert_eq!(e.timestamp, 1_544_712_660_300_000_000);
    assert_eq!(e.level.as_deref(), Some("ERROR"));
    assert_eq!(e.attributes["n"], 7);
    assert_eq!(e.attributes["e"], json!([]));
    assert_eq!(e.attributes["k"], json!({}));
    assert_eq!(e.attributes["v"], Value::Null);
}

#[test]
fn records_over_a_limit_are_rejected_alone_and_numbered_in_request_order() {
    let mut c = ctx();
    c.limits.max_fields = 10;
    c.limits.max_depth = 2;
    c.limits.max_line_bytes = 300;
    let many: Vec<KeyValue> = (0..11).map(|i| kv(&format!("a{i}"), int(i))).collect();
    let deep = Some(AnyValue {
        value: Some(any_value::Value::KvlistValue(KeyValueList {
            values: vec![kv(
                "b",
                Some(AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![kv("c", int(1))],
                    })),
                }),
            )],
        })),
    });
    let mut req = request(
        vec![kv("service.name", s("svc"))],
        vec![
            LogRecord {
                body: s("good 1"),
                ..LogRecord::default()
            },
            LogRecord {
                attributes: many,
                ..LogRecord::default()
            },
            LogRecord {
                attributes: vec![kv("a", deep)],
                ..LogRecord::default()
            },
        ],
    );
    req.resource_logs.push(ResourceLogs {
        scope_logs: vec![ScopeLogs {
            log_records: vec![
                LogRecord {
                    body: s(&"x".repeat(400)),
                    ..LogRecord::default()
                },
                LogRecord {
                    body: s("good 2"),
                    ..LogRecord::default()
                },
            ],
            ..ScopeLogs::default()
        }],
        ..ResourceLogs::default()
    });
    let parsed = decode_logs(&req.encode_to_vec(), Format::Protobuf, &c).unwrap();
    let messages: Vec<&str> = parsed.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["good 1", "good 2"]);
    assert_eq!(parsed.rejected, 3);
    let lines: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3, 4]);
    assert!(
        parsed.errors[0].error.contains("too many fields"),
        "{:?}",
        parsed.errors
    );
    assert!(
        parsed.errors[1].error.contains("nested too deeply"),
        "{:?}",
        parsed.errors
    );
    assert!(
        parsed.errors[2].error.contains("the limit is 300"),
        "{:?}",
        parsed.errors
    );
    // the depth limit counts as /api/v1/ingest counts: {"a":{"b":{"c":1}}} is 3 levels
    c.limits.max_depth = 3;
    let parsed = decode_logs(&req.encode_to_vec(), Format::Protobuf, &c).unwrap();
    assert_eq!(parsed.rejected, 2, "{:?}", parsed.errors);
}

#[test]
fn field_limit_counts_as_ingest_does() {
    // timestamp, message, service and 7 attributes: exactly at the limit of 10
    let mut c = ctx();
    c.limits.max_fields = 10;
    let attrs: Vec<KeyValue> = (0..7).map(|i| kv(&format!("a{i}"), int(i))).collect();
    let req = request(
        vec![kv("service.name", s("svc"))],
        vec![LogRecord {
            body: s("m"),
            attributes: attrs,
            ..LogRecord::default()
        }],
    );
    let mut no_scope = req.clone();
    no_scope.resource_logs[0].scope_logs[0].scope = None;
    let parsed = decode_logs(&no_scope.encode_to_vec(), Format::Protobuf, &c).unwrap();
    assert_eq!(parsed.rejected, 0, "{:?}", parsed.errors);
    let line = json_of(&parsed.events[0]).to_string();
    let same = sawmill_core::parse_json_line(&line, &c);
    assert!(same.is_ok(), "{line}: {same:?}");
    c.limits.max_fields = 9;
    let parsed = decode_logs(&no_scope.encode_to_vec(), Format::Protobuf, &c).unwrap();
    assert_eq!(parsed.rejected, 1, "one over the limit");
    assert!(sawmill_core::parse_json_line(&line, &c).is_err());
    c.limits.max_fields = 10;
    // the scope's name and version are two more fields
    let parsed = decode_logs(&req.encode_to_vec(), Format::Protobuf, &c).unwrap();
    assert_eq!(parsed.rejected, 1, "{:?}", parsed.errors);
}

#[test]
fn a_small_body_that_expands_beyond_the_budget_is_refused() {
    let mut c = ctx();
    c.limits.max_decompressed_bytes = 10_000;
    let big = kv("big", s(&"r".repeat(500)));
    let req = request(vec![big], vec![LogRecord::default(); 100]);
    assert!(req.encoded_len() < 1_000);
    let err = decode_logs(&req.encode_to_vec(), Format::Protobuf, &c).unwrap_err();
    assert!(
        matches!(err, OtlpError::TooLarge { limit: 10_000 }),
        "{err}"
    );
}

#[test]
fn garbage_is_an_error_and_never_a_panic() {
    for (body, format) in [
        (&b"this is not protobuf"[..], Format::Protobuf),
        (&b"\xff\xff\xff\xff\xff"[..], Format::Protobuf),
        (&b"{\"resourceLogs\": 3}"[..], Format::Json),
        (&b"not json"[..], Format::Json),
        (&b""[..], Format::Json),
        (&b"[]"[..], Format::Json),
        (
            &br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}"#[..],
            Format::Json,
        ),
    ] {
        let err = decode_logs(body, format, &ctx());
        assert!(err.is_err(), "{body:?} as {format}: {err:?}");
    }
    // deep nesting stops at the decoders' recursion limits
    let mut deep = Vec::new();
    for _ in 0..200 {
        deep.extend_from_slice(br#"{"arrayValue":{"values":["#);
    }
    let body = format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{}"#,
        String::from_utf8_lossy(&deep)
    );
    assert!(decode_logs(body.as_bytes(), Format::Json, &ctx()).is_err());
    // bytes that happen to decode (an empty message) are a valid, empty request
    let empty = decode_logs(b"", Format::Protobuf, &ctx()).unwrap();
    assert!(empty.events.is_empty());
    // every prefix and byte flip of a real request decodes or fails cleanly
    let real = request(
        vec![kv("service.name", s("svc"))],
        vec![LogRecord {
            body: s("hello"),
            attributes: vec![kv("a", int(1))],
            ..LogRecord::default()
        }],
    )
    .encode_to_vec();
    for n in 0..real.len() {
        let _ = decode_logs(&real[..n], Format::Protobuf, &ctx());
        let mut flipped = real.clone();
        flipped[n] ^= 0xff;
        let _ = decode_logs(&flipped, Format::Protobuf, &ctx());
    }
}

#[test]
fn content_types() {
    assert_eq!(
        Format::from_content_type("application/x-protobuf"),
        Some(Format::Protobuf)
    );
    assert_eq!(
        Format::from_content_type("Application/JSON; charset=utf-8"),
        Some(Format::Json)
    );
    assert_eq!(Format::from_content_type("text/plain"), None);
    assert_eq!(Format::from_content_type("application/x-ndjson"), None);
    assert_eq!(Format::from_content_type(""), None);
}

#[test]
fn responses_in_both_formats() {
    assert!(encode_response(0, &[], Format::Protobuf).is_empty());
    assert_eq!(encode_response(0, &[], Format::Json), b"{}");
    let errors = vec![LineError {
        line: 2,
        error: "log record has too many fields".into(),
    }];
    let json: Value = serde_json::from_slice(&encode_response(1, &errors, Format::Json)).unwrap();
    assert_eq!(
        json,
        json!({"partialSuccess": {
            "rejectedLogRecords": "1",
            "errorMessage": "1 log record rejected: record 2: log record has too many fields"
        }})
    );
    // the crate's own serde reads it back
    let read: ExportLogsServiceResponse =
        serde_json::from_value(json!({"partialSuccess": {"rejectedLogRecords": 1,
            "errorMessage": json["partialSuccess"]["errorMessage"]}}))
        .unwrap();
    let proto =
        ExportLogsServiceResponse::decode(&encode_response(1, &errors, Format::Protobuf)[..])
            .unwrap();
    assert_eq!(read, proto);
    let p = proto.partial_success.unwrap();
    assert_eq!(p.rejected_log_records, 1);
    let many: Vec<LineError> = (1..=20)
        .map(|line| LineError {
            line,
            error: "bad".into(),
        })
        .collect();
    let message = rejection_message(20, &many);
    assert!(message.starts_with("20 log records rejected: record 1: bad; record 2: bad"));
    assert!(message.ends_with("record 10: bad; …"), "{message}");
}

#[test]
fn statuses_in_both_formats() {
    let json: Value =
        serde_json::from_slice(&encode_status(400, "bad body", Format::Json)).unwrap();
    assert_eq!(json, json!({"code": 3, "message": "bad body"}));
    let status = Status::decode(&encode_status(503, "busy", Format::Protobuf)[..]).unwrap();
    assert_eq!(
        status,
        Status {
            code: 14,
            message: "busy".into()
        }
    );
    assert_eq!(grpc_code(401), 16);
    assert_eq!(grpc_code(429), 8);
    assert_eq!(grpc_code(500), 13);
}
