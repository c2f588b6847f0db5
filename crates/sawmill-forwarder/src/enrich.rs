//! Turning a record into the event that is shipped: where it came from (`source`, `aws.*`),
//! the configured static fields, and redaction before anything leaves the function.

use sawmill_core::redact::Redactor;
use serde_json::{Map, Value};

/// The fields naming where events came from.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    /// `source`: the log group, or `s3://bucket/key`, or the queue or stream.
    pub source: String,
    /// `aws.*` attributes: account_id, region, log_group, log_stream, …
    pub aws: Map<String, Value>,
}

impl Origin {
    pub fn new(source: impl Into<String>) -> Origin {
        Origin {
            source: source.into(),
            aws: Map::new(),
        }
    }

    /// Adds `aws.<name>` when the value is known.
    pub fn with(mut self, name: &str, value: Option<&str>) -> Origin {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.aws
                .insert(name.to_string(), Value::String(v.to_string()));
        }
        self
    }
}

/// Finishes events and writes them as NDJSON lines.
#[derive(Clone, Debug, Default)]
pub struct Enricher {
    pub static_fields: Map<String, Value>,
    pub redactor: Redactor,
}

/// Names the server reads the timestamp from.
const TIME_KEYS: [&str; 4] = ["timestamp", "@timestamp", "time", "ts"];

impl Enricher {
    /// The event for a log line that arrived with a time of its own (CloudWatch Logs, Kinesis):
    /// a JSON object line keeps its fields (and its own time when it has one), anything else
    /// is the message.
    pub fn from_message(&self, timestamp_ms: Option<i64>, message: &str) -> Map<String, Value> {
        let trimmed = message.trim_end_matches(['\n', '\r']);
        if trimmed.trim_start().starts_with('{') {
            if let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(trimmed) {
                if let Some(ms) = timestamp_ms {
                    if !TIME_KEYS.iter().any(|k| map.contains_key(*k)) {
                        map.insert("timestamp".into(), Value::from(ms));
                    }
                }
                return map;
            }
        }
        let mut map = Map::new();
        if let Some(ms) = timestamp_ms {
            map.insert("timestamp".into(), Value::from(ms));
        }
        map.insert("message".into(), Value::String(trimmed.to_string()));
        map
    }

    /// Redacts, adds the static fields (never over the event's own), the origin and the
    /// event id, and appends the JSON line to `out`.
    pub fn write(
        &self,
        mut event: Map<String, Value>,
        origin: &Origin,
        event_id: Option<&str>,
        out: &mut Vec<u8>,
    ) {
        if !self.redactor.is_empty() {
            for v in event.values_mut() {
                self.redactor.redact_value(v);
            }
        }
        for (k, v) in &self.static_fields {
            if !event.contains_key(k) {
                event.insert(k.clone(), v.clone());
            }
        }
        if !origin.source.is_empty() && !event.contains_key("source") {
            event.insert("source".into(), Value::String(origin.source.clone()));
        }
        if !origin.aws.is_empty() || event_id.is_some() {
            let aws = event
                .entry("aws")
                .or_insert_with(|| Value::Object(Map::new()));
            if !aws.is_object() {
                // the event's own `aws` is not an object: keep it beside ours
                let own = std::mem::replace(aws, Value::Object(Map::new()));
                if let Value::Object(m) = aws {
                    m.insert("value".into(), own);
                }
            }
            if let Value::Object(aws) = aws {
                for (k, v) in &origin.aws {
                    aws.insert(k.clone(), v.clone());
                }
                if let Some(id) = event_id {
                    aws.insert("event_id".into(), Value::String(id.to_string()));
                }
            }
        }
        // a Map of Values always serializes
        if serde_json::to_writer(&mut *out, &event).is_ok() {
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sawmill_core::redact::Detector;
    use serde_json::json;

    fn line(out: &[u8]) -> Value {
        serde_json::from_slice(out).unwrap()
    }

    #[test]
    fn text_and_json_messages() {
        let e = Enricher::default();
        assert_eq!(
            Value::Object(e.from_message(Some(1_700_000_000_123), "START RequestId: 1\n")),
            json!({"timestamp": 1_700_000_000_123i64, "message": "START RequestId: 1"})
        );
        // a structured line keeps its fields and its own time
        assert_eq!(
            Value::Object(e.from_message(
                Some(5),
                r#"{"level":"error","msg":"x","time":"2026-01-01T00:00:00Z"}"#
            )),
            json!({"level": "error", "msg": "x", "time": "2026-01-01T00:00:00Z"})
        );
        assert_eq!(
            Value::Object(e.from_message(Some(5), r#"{"msg":"x"}"#)),
            json!({"msg": "x", "timestamp": 5})
        );
        // broken JSON is a message like any other
        assert_eq!(
            Value::Object(e.from_message(None, r#"{"msg":"#)),
            json!({"message": "{\"msg\":"})
        );
    }

    #[test]
    fn origin_static_fields_and_redaction() {
        let e = Enricher {
            static_fields: json!({"env": "prod", "message": "never used"})
                .as_object()
                .unwrap()
                .clone(),
            redactor: Redactor::new(&[Detector::Email], &[]).unwrap(),
        };
        let origin = Origin::new("/aws/lambda/api")
            .with("account_id", Some("123456789012"))
            .with("region", None)
            .with("log_group", Some("/aws/lambda/api"));
        let mut out = Vec::new();
        let event = e.from_message(Some(7), "mail to bob@example.com");
        e.write(event, &origin, Some("3659"), &mut out);
        assert_eq!(
            line(&out),
            json!({
                "timestamp": 7,
                "message": "mail to [REDACTED:email]",
                "env": "prod",
                "source": "/aws/lambda/api",
                "aws": {"account_id": "123456789012", "log_group": "/aws/lambda/api", "event_id": "3659"}
            })
        );
        assert!(out.ends_with(b"\n"));
    }

    #[test]
    fn an_event_with_its_own_aws_field_keeps_it() {
        let e = Enricher::default();
        let mut out = Vec::new();
        let mut event = Map::new();
        event.insert("aws".into(), json!("x"));
        event.insert("source".into(), json!("mine"));
        e.write(event, &Origin::new("s3://b/k"), Some("1"), &mut out);
        assert_eq!(
            line(&out),
            json!({"aws": {"value": "x", "event_id": "1"}, "source": "mine"})
        );
    }
}
