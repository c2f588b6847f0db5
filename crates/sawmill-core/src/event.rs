//! The normalized event and its JSON form.
//!
//! [`Event::write_json`] gives the shape every other part of sawmill sees (a
//! search hit, an archive line, a WAL record) and
//! [`Event::from_normalized_json`] is its exact inverse.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::time::{format_rfc3339_into, parse_rfc3339, RFC3339_MAX_LEN};

/// One log event after normalization.
///
/// Invariant kept by normalization (and needed for [`Event::write_json`] to
/// round-trip): `attributes` has no `timestamp` or `message` key, and has a
/// `level`, `service`, `host` or `source` key only when the field of that name
/// is `None` and the attribute is not a string (an object or array that could
/// not be a keyword).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Nanoseconds since the Unix epoch, UTC.
    pub timestamp: i64,
    pub message: String,
    /// One of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, or an unknown level
    /// upper-cased.
    pub level: Option<String>,
    pub service: Option<String>,
    pub host: Option<String>,
    pub source: Option<String>,
    /// Every other field with its JSON structure, in input order.
    pub attributes: Map<String, Value>,
}

/// Why a line could not be read back as a normalized event.
#[derive(Debug, Error)]
pub enum EventError {
    #[error("normalized event is not a JSON object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("normalized event has no {0:?} field")]
    MissingField(&'static str),
    #[error("normalized event field {field:?} {problem}")]
    BadField {
        field: &'static str,
        problem: String,
    },
}

impl Event {
    /// An event with the given time and message and nothing else.
    pub fn new(timestamp: i64, message: impl Into<String>) -> Self {
        Event {
            timestamp,
            message: message.into(),
            level: None,
            service: None,
            host: None,
            source: None,
            attributes: Map::new(),
        }
    }

    /// Appends the event as one compact JSON object: `timestamp` (RFC 3339
    /// UTC), `level`, `message`, `service`, `host`, `source` (absent ones
    /// omitted), then the attributes at top level in order. No newline.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Serializing into a Vec cannot fail: it does no I/O and every key is
        // a string.
        let result = serde_json::to_writer(&mut *out, self);
        debug_assert!(result.is_ok(), "serializing an event failed: {result:?}");
    }

    /// The event as [`Event::write_json`] would write it, as a JSON value.
    pub fn to_json_value(&self) -> Value {
        let mut map = Map::with_capacity(6 + self.attributes.len());
        let mut buf = [0u8; RFC3339_MAX_LEN];
        map.insert(
            "timestamp".to_owned(),
            Value::String(format_rfc3339_into(self.timestamp, &mut buf).to_owned()),
        );
        if let Some(level) = &self.level {
            map.insert("level".to_owned(), Value::String(level.clone()));
        }
        map.insert("message".to_owned(), Value::String(self.message.clone()));
        for (key, value) in [
            ("service", &self.service),
            ("host", &self.host),
            ("source", &self.source),
        ] {
            if let Some(v) = value {
                map.insert(key.to_owned(), Value::String(v.clone()));
            }
        }
        for (k, v) in &self.attributes {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(map)
    }

    /// Reads an event written by [`Event::write_json`] (the exact inverse:
    /// `from_normalized_json(write_json(e)) == e`).
    pub fn from_normalized_json(bytes: &[u8]) -> Result<Event, EventError> {
        let map: Map<String, Value> = serde_json::from_slice(bytes)?;
        Event::from_normalized_map(map)
    }

    /// Builds an event from the object form of [`Event::write_json`].
    pub fn from_normalized_map(map: Map<String, Value>) -> Result<Event, EventError> {
        let mut timestamp = None;
        let mut message = None;
        let mut event = Event::new(0, String::new());
        event.attributes = Map::with_capacity(map.len().saturating_sub(2));
        for (key, value) in map {
            match (key.as_str(), value) {
                ("timestamp", Value::String(s)) => {
                    timestamp = Some(parse_rfc3339(&s).ok_or_else(|| EventError::BadField {
                        field: "timestamp",
                        problem: format!("{s:?} is not an RFC 3339 time"),
                    })?);
                }
                ("timestamp", other) => return Err(not_a_string("timestamp", &other)),
                ("message", Value::String(s)) => message = Some(s),
                ("message", other) => return Err(not_a_string("message", &other)),
                ("level", Value::String(s)) => event.level = Some(s),
                ("service", Value::String(s)) => event.service = Some(s),
                ("host", Value::String(s)) => event.host = Some(s),
                ("source", Value::String(s)) => event.source = Some(s),
                (_, value) => {
                    event.attributes.insert(key, value);
                }
            }
        }
        event.timestamp = timestamp.ok_or(EventError::MissingField("timestamp"))?;
        event.message = message.ok_or(EventError::MissingField("message"))?;
        Ok(event)
    }
}

fn not_a_string(field: &'static str, value: &Value) -> EventError {
    EventError::BadField {
        field,
        problem: format!("must be a string, not {}", crate::time::json_kind(value)),
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = 2
            + usize::from(self.level.is_some())
            + usize::from(self.service.is_some())
            + usize::from(self.host.is_some())
            + usize::from(self.source.is_some());
        let mut map = serializer.serialize_map(Some(fields + self.attributes.len()))?;
        let mut buf = [0u8; RFC3339_MAX_LEN];
        map.serialize_entry("timestamp", format_rfc3339_into(self.timestamp, &mut buf))?;
        if let Some(level) = &self.level {
            map.serialize_entry("level", level)?;
        }
        map.serialize_entry("message", &self.message)?;
        if let Some(service) = &self.service {
            map.serialize_entry("service", service)?;
        }
        if let Some(host) = &self.host {
            map.serialize_entry("host", host)?;
        }
        if let Some(source) = &self.source {
            map.serialize_entry("source", source)?;
        }
        for (k, v) in &self.attributes {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    /// Reads the normalized form (as [`Event::from_normalized_json`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventVisitor;
        impl<'de> Visitor<'de> for EventVisitor {
            type Value = Event;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a normalized event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Event, A::Error> {
                let map = Map::deserialize(de::value::MapAccessDeserializer::new(access))?;
                Event::from_normalized_map(map).map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_map(EventVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Event {
        let mut e = Event::new(1_714_564_800_123_000_000, "user \"x\" logged in\n");
        e.level = Some("INFO".into());
        e.service = Some("auth".into());
        e.host = Some("web-1".into());
        e.source = Some("/var/log/auth.log".into());
        e.attributes
            .insert("user".into(), json!({"id": 7, "roles": ["a", "b"]}));
        e.attributes.insert("latency_ms".into(), json!(12.5));
        e.attributes.insert("ok".into(), json!(true));
        e.attributes.insert("none".into(), Value::Null);
        e
    }

    fn json_of(e: &Event) -> String {
        let mut out = Vec::new();
        e.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_fields_in_order_then_attributes() {
        assert_eq!(
            json_of(&sample()),
            r#"{"timestamp":"2024-05-01T12:00:00.123Z","level":"INFO","message":"user \"x\" logged in\n","service":"auth","host":"web-1","source":"/var/log/auth.log","user":{"id":7,"roles":["a","b"]},"latency_ms":12.5,"ok":true,"none":null}"#
        );
        let bare = Event::new(0, "");
        assert_eq!(
            json_of(&bare),
            r#"{"timestamp":"1970-01-01T00:00:00.000Z","message":""}"#
        );
    }

    #[test]
    fn to_json_value_matches_write_json() {
        let e = sample();
        let v = e.to_json_value();
        assert_eq!(serde_json::to_string(&v).unwrap(), json_of(&e));
    }

    #[test]
    fn round_trips() {
        let mut events = vec![sample(), Event::new(0, "")];
        let mut nanos = sample();
        nanos.timestamp += 456_789;
        nanos.level = None;
        nanos.service = None;
        nanos.source = None;
        // A non-keyword object under a keyword name stays an attribute.
        nanos
            .attributes
            .insert("service".into(), json!({"name": "x", "version": 2}));
        nanos.attributes.insert("source".into(), json!(["a"]));
        events.push(nanos);
        let mut micros = Event::new(1_714_564_800_000_001_000, "ünïcødé ✓ \u{1}");
        micros.attributes.insert("big".into(), json!(u64::MAX));
        micros.attributes.insert("neg".into(), json!(-3));
        micros.attributes.insert("z".into(), json!(""));
        micros.attributes.insert("a".into(), json!([]));
        events.push(micros);
        for e in events {
            let text = json_of(&e);
            let back = Event::from_normalized_json(text.as_bytes()).unwrap();
            assert_eq!(back, e, "{text}");
            assert_eq!(json_of(&back), text);
            let via_serde: Event = serde_json::from_str(&text).unwrap();
            assert_eq!(via_serde, e);
        }
    }

    #[test]
    fn rejects_bad_normalized_json() {
        for (input, want) in [
            ("[1]", "not a JSON object"),
            ("{\"message\":\"x\"}", "no \"timestamp\""),
            ("{\"timestamp\":\"2024-05-01T12:00:00Z\"}", "no \"message\""),
            (
                "{\"timestamp\":\"soon\",\"message\":\"\"}",
                "not an RFC 3339",
            ),
            ("{\"timestamp\":5,\"message\":\"\"}", "must be a string"),
            (
                "{\"timestamp\":\"2024-05-01T12:00:00Z\",\"message\":1}",
                "must be a string",
            ),
            ("{\"timestamp\":", "not a JSON object"),
        ] {
            let err = Event::from_normalized_json(input.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(want), "{input}: {err}");
        }
    }
}
