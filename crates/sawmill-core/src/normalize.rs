//! Normalization: turning an arbitrary JSON log object into an [`Event`].
//!
//! The rules (the contract users rely on):
//! - `timestamp` from the first present of `timestamp`, `@timestamp`, `time`,
//!   `ts` (see [`parse_timestamp_value`]); missing means the time the server
//!   received the event. An unreadable value rejects the event.
//! - `message` from the first of `message`, `msg`, `log` (only when a string),
//!   `@message`; numbers and booleans become text, objects and arrays their
//!   compact JSON; missing means an empty message.
//! - `level` from `level`, `severity`, `lvl`, a literal `"log.level"` key or a
//!   nested `{"log": {"level": ..}}`, normalized by [`normalize_level`].
//! - `service`, `host`, `source` are keywords: strings (numbers and booleans as
//!   text). An object or array there is no keyword and stays an attribute.
//! - The field a value came from is removed; everything else stays as an
//!   attribute, in order, with its JSON structure.
//!
//! A `null` in any of these fields counts as absent. Such a null is dropped
//! when the field is named like an output field (`timestamp`, `message`,
//! `level`, `service`, `host`, `source`), so that the output has each name
//! once; a null alternative (`ts`, `msg`, ..) stays an attribute. An empty or
//! blank level counts as no level.

use serde_json::{Map, Value};
use thiserror::Error;

use crate::event::Event;
use crate::time::parse_timestamp_value;

/// An event that cannot be normalized, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("field {field:?}: {problem}")]
pub struct NormalizeError {
    pub field: String,
    pub problem: String,
}

/// Normalizes a level name to TRACE, DEBUG, INFO, WARN, ERROR or FATAL.
///
/// Case-insensitive names and the usual aliases: `warning`/`wrn` → WARN,
/// `err` → ERROR, `crit`, `critical`, `emerg`, `emergency`, `alert`, `panic`,
/// `ftl` → FATAL, `notice`, `informational`, `information`, `inf` → INFO,
/// `dbg` → DEBUG, `trc`, `verbose`, `vrb` → TRACE; pino/bunyan numbers 10, 20,
/// 30, 40, 50, 60. Anything else is returned trimmed and upper-cased.
pub fn normalize_level(s: &str) -> String {
    let t = s.trim();
    match canonical_level(t) {
        Some(level) => level.to_owned(),
        None => t.to_uppercase(),
    }
}

/// The canonical level for a known name, without allocating.
fn canonical_level(s: &str) -> Option<&'static str> {
    const MAX: usize = 13; // "informational"
    if s.len() > MAX {
        return None;
    }
    let mut buf = [0u8; MAX];
    let lower = &mut buf[..s.len()];
    lower.copy_from_slice(s.as_bytes());
    lower.make_ascii_lowercase();
    Some(match &*lower {
        b"trace" | b"trc" | b"verbose" | b"vrb" | b"10" => "TRACE",
        b"debug" | b"dbg" | b"20" => "DEBUG",
        b"info" | b"inf" | b"notice" | b"informational" | b"information" | b"30" => "INFO",
        b"warn" | b"warning" | b"wrn" | b"40" => "WARN",
        b"error" | b"err" | b"50" => "ERROR",
        b"fatal" | b"ftl" | b"crit" | b"critical" | b"emerg" | b"emergency" | b"alert"
        | b"panic" | b"60" => "FATAL",
        _ => return None,
    })
}

/// The level from a string value, reusing its allocation when it is already
/// canonical. `None` for a blank level.
fn level_from_string(s: String) -> Option<String> {
    match canonical_level(s.trim()) {
        Some(level) if level == s => Some(s),
        Some(level) => Some(level.to_owned()),
        None if s.trim().is_empty() => None,
        None if s.bytes().any(|b| b.is_ascii_lowercase() || !b.is_ascii())
            || s.trim().len() != s.len() =>
        {
            Some(s.trim().to_uppercase())
        }
        None => Some(s),
    }
}

// Candidate fields, as bits of a mask computed in one pass over the keys.
const F_TIMESTAMP: u32 = 1 << 0;
const F_AT_TIMESTAMP: u32 = 1 << 1;
const F_TIME: u32 = 1 << 2;
const F_TS: u32 = 1 << 3;
const F_MESSAGE: u32 = 1 << 4;
const F_MSG: u32 = 1 << 5;
const F_LOG: u32 = 1 << 6;
const F_AT_MESSAGE: u32 = 1 << 7;
const F_LEVEL: u32 = 1 << 8;
const F_SEVERITY: u32 = 1 << 9;
const F_LVL: u32 = 1 << 10;
const F_LOG_LEVEL: u32 = 1 << 11;
const F_SERVICE: u32 = 1 << 12;
const F_HOST: u32 = 1 << 13;
const F_SOURCE: u32 = 1 << 14;

fn field_bit(key: &str) -> u32 {
    match key {
        "timestamp" => F_TIMESTAMP,
        "@timestamp" => F_AT_TIMESTAMP,
        "time" => F_TIME,
        "ts" => F_TS,
        "message" => F_MESSAGE,
        "msg" => F_MSG,
        "log" => F_LOG,
        "@message" => F_AT_MESSAGE,
        "level" => F_LEVEL,
        "severity" => F_SEVERITY,
        "lvl" => F_LVL,
        "log.level" => F_LOG_LEVEL,
        "service" => F_SERVICE,
        "host" => F_HOST,
        "source" => F_SOURCE,
        _ => 0,
    }
}

const TIMESTAMP_FIELDS: [(&str, u32); 4] = [
    ("timestamp", F_TIMESTAMP),
    ("@timestamp", F_AT_TIMESTAMP),
    ("time", F_TIME),
    ("ts", F_TS),
];
const MESSAGE_FIELDS: [(&str, u32); 4] = [
    ("message", F_MESSAGE),
    ("msg", F_MSG),
    ("log", F_LOG),
    ("@message", F_AT_MESSAGE),
];
const LEVEL_FIELDS: [(&str, u32); 4] = [
    ("level", F_LEVEL),
    ("severity", F_SEVERITY),
    ("lvl", F_LVL),
    ("log.level", F_LOG_LEVEL),
];

/// Normalizes one JSON object into an event.
///
/// `received_at` (nanoseconds) is the timestamp when the object has none;
/// `default_source` is the source when the object has no `source` field.
pub fn normalize_object(
    mut obj: Map<String, Value>,
    received_at: i64,
    default_source: Option<&str>,
) -> Result<Event, NormalizeError> {
    let mask = obj.keys().fold(0, |m, k| m | field_bit(k));
    if mask == 0 {
        return Ok(Event {
            timestamp: received_at,
            message: String::new(),
            level: None,
            service: None,
            host: None,
            source: default_source.map(str::to_owned),
            attributes: obj,
        });
    }

    let timestamp = take_timestamp(&mut obj, mask)?.unwrap_or(received_at);
    let message = take_message(&mut obj, mask).unwrap_or_default();
    let level = take_level(&mut obj, mask);
    let service = take_keyword(&mut obj, mask, "service", F_SERVICE);
    let host = take_keyword(&mut obj, mask, "host", F_HOST);
    let mut source = take_keyword(&mut obj, mask, "source", F_SOURCE);
    if source.is_none() && !obj.contains_key("source") {
        source = default_source.map(str::to_owned);
    }
    Ok(Event {
        timestamp,
        message,
        level,
        service,
        host,
        source,
        attributes: obj,
    })
}

/// Whether a null under `key` is dropped rather than kept as an attribute.
fn is_output_name(key: &str) -> bool {
    matches!(
        key,
        "timestamp" | "message" | "level" | "service" | "host" | "source"
    )
}

fn take_timestamp(obj: &mut Map<String, Value>, mask: u32) -> Result<Option<i64>, NormalizeError> {
    for (key, bit) in TIMESTAMP_FIELDS {
        if mask & bit == 0 {
            continue;
        }
        let Some(value) = obj.get(key) else { continue };
        if value.is_null() {
            if is_output_name(key) {
                obj.shift_remove(key);
            }
            continue;
        }
        let nanos = parse_timestamp_value(value).map_err(|problem| NormalizeError {
            field: key.to_owned(),
            problem: problem.to_string(),
        })?;
        obj.shift_remove(key);
        return Ok(Some(nanos));
    }
    Ok(None)
}

fn take_message(obj: &mut Map<String, Value>, mask: u32) -> Option<String> {
    for (key, bit) in MESSAGE_FIELDS {
        if mask & bit == 0 {
            continue;
        }
        match obj.get(key) {
            None => continue,
            Some(Value::Null) => {
                if is_output_name(key) {
                    obj.shift_remove(key);
                }
                continue;
            }
            // ECS puts an object under `log`; only a string is a message.
            Some(v) if key == "log" && !v.is_string() => continue,
            Some(_) => {}
        }
        return obj.shift_remove(key).map(value_to_text);
    }
    None
}

/// Message text of any non-null value.
fn value_to_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// What to do with a candidate field for a scalar-only output.
enum Pick {
    /// Not there or null: try the next candidate.
    Next,
    /// An object or array: not usable, stays where it is; stop looking.
    Keep,
    /// Take this value.
    Take,
}

fn pick(value: Option<&Value>) -> Pick {
    match value {
        None | Some(Value::Null) => Pick::Next,
        Some(Value::Object(_) | Value::Array(_)) => Pick::Keep,
        Some(_) => Pick::Take,
    }
}

fn take_level(obj: &mut Map<String, Value>, mask: u32) -> Option<String> {
    for (key, bit) in LEVEL_FIELDS {
        if mask & bit == 0 {
            continue;
        }
        match pick(obj.get(key)) {
            Pick::Next => {
                if is_output_name(key) {
                    obj.shift_remove(key);
                }
            }
            Pick::Keep => return None,
            Pick::Take => match obj.shift_remove(key).and_then(level_from_value) {
                Some(level) => return Some(level),
                None => continue,
            },
        }
    }
    if mask & F_LOG != 0 {
        // ECS: {"log": {"level": "info", "logger": ..}}.
        let Some(Value::Object(log)) = obj.get_mut("log") else {
            return None;
        };
        match pick(log.get("level")) {
            Pick::Keep => return None,
            Pick::Next => {}
            Pick::Take => {
                let level = log.shift_remove("level").and_then(level_from_value);
                if log.is_empty() {
                    obj.shift_remove("log");
                }
                return level;
            }
        }
    }
    None
}

/// The level of a scalar value; `None` when blank.
fn level_from_value(value: Value) -> Option<String> {
    match value {
        Value::String(s) => level_from_string(s),
        Value::Number(n) => match n.as_u64().and_then(pino_level) {
            Some(level) => Some(level.to_owned()),
            None => Some(n.to_string()),
        },
        Value::Bool(b) => Some(if b { "TRUE" } else { "FALSE" }.to_owned()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn pino_level(n: u64) -> Option<&'static str> {
    Some(match n {
        10 => "TRACE",
        20 => "DEBUG",
        30 => "INFO",
        40 => "WARN",
        50 => "ERROR",
        60 => "FATAL",
        _ => return None,
    })
}

fn take_keyword(obj: &mut Map<String, Value>, mask: u32, key: &str, bit: u32) -> Option<String> {
    if mask & bit == 0 {
        return None;
    }
    match pick(obj.get(key)) {
        Pick::Keep => None,
        Pick::Next => {
            obj.shift_remove(key);
            None
        }
        Pick::Take => obj.shift_remove(key).map(value_to_text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000_000_000;
    const T2024: i64 = 1_714_564_800_000_000_000; // 2024-05-01T12:00:00Z

    fn norm(v: Value) -> Event {
        try_norm(v).unwrap()
    }

    fn try_norm(v: Value) -> Result<Event, NormalizeError> {
        let Value::Object(map) = v else {
            panic!("not an object")
        };
        normalize_object(map, NOW, None)
    }

    fn keys(e: &Event) -> Vec<&str> {
        e.attributes.keys().map(String::as_str).collect()
    }

    #[test]
    fn timestamp_from_each_field() {
        for key in ["timestamp", "@timestamp", "time", "ts"] {
            let e = norm(json!({ key: "2024-05-01T12:00:00Z", "a": 1 }));
            assert_eq!(e.timestamp, T2024, "{key}");
            assert_eq!(keys(&e), ["a"], "{key} is removed");
        }
    }

    #[test]
    fn timestamp_forms() {
        for v in [
            json!("2024-05-01T12:00:00Z"),
            json!("2024-05-01T12:00:00.000000000Z"),
            json!("2024-05-01 12:00:00"),
            json!("2024-05-01T14:00:00+0200"),
            json!("2024-05-01T14:00:00+02:00"),
            json!(1_714_564_800),
            json!(1_714_564_800_000u64),
            json!(1_714_564_800_000_000u64),
            json!(1_714_564_800_000_000_000u64),
            json!(1_714_564_800.0),
            json!("1714564800"),
            json!("1714564800000"),
        ] {
            assert_eq!(norm(json!({ "ts": v.clone() })).timestamp, T2024, "{v}");
        }
        assert_eq!(
            norm(json!({"ts": 1_714_564_800.5})).timestamp,
            T2024 + 500_000_000
        );
        assert_eq!(
            norm(json!({"ts": "2024-05-01T12:00:00.1Z"})).timestamp,
            T2024 + 100_000_000
        );
    }

    #[test]
    fn timestamp_missing_is_received_at() {
        assert_eq!(norm(json!({"message": "x"})).timestamp, NOW);
        assert_eq!(norm(json!({})).timestamp, NOW);
        let e = norm(json!({"timestamp": null}));
        assert_eq!(e.timestamp, NOW);
        assert!(e.attributes.is_empty());
    }

    #[test]
    fn timestamp_precedence() {
        let e = norm(json!({
            "ts": 1, "time": "2000-01-01T00:00:00Z", "@timestamp": "2024-05-01T12:00:00Z"
        }));
        assert_eq!(e.timestamp, T2024);
        assert_eq!(keys(&e), ["ts", "time"]);
        let e = norm(json!({"timestamp": null, "ts": 1_714_564_800}));
        assert_eq!(e.timestamp, T2024);
        assert!(e.attributes.is_empty());
        let e = norm(json!({"time": null, "ts": 1_714_564_800}));
        assert_eq!(e.timestamp, T2024);
        assert_eq!(keys(&e), ["time"]);
    }

    #[test]
    fn timestamp_errors_name_the_field() {
        let err = try_norm(json!({"ts": "yesterday"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"field "ts": cannot read "yesterday" as an RFC 3339 time or epoch number"#
        );
        let err = try_norm(json!({"@timestamp": "1969-12-31T23:59:59Z"})).unwrap_err();
        assert!(
            err.to_string().starts_with("field \"@timestamp\": "),
            "{err}"
        );
        assert!(err.to_string().contains("outside"), "{err}");
        let err = try_norm(json!({"time": 1e30})).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        let err = try_norm(json!({"timestamp": {"sec": 1}})).unwrap_err();
        assert!(err.to_string().contains("found an object"), "{err}");
    }

    #[test]
    fn message_from_each_field() {
        for key in ["message", "msg", "log", "@message"] {
            let e = norm(json!({ key: "hello", "a": 1 }));
            assert_eq!(e.message, "hello", "{key}");
            assert_eq!(keys(&e), ["a"], "{key}");
        }
        assert_eq!(norm(json!({"a": 1})).message, "");
    }

    #[test]
    fn message_precedence_and_leftovers() {
        let e = norm(json!({"@message": "d", "log": "c", "msg": "b", "message": "a"}));
        assert_eq!(e.message, "a");
        assert_eq!(keys(&e), ["@message", "log", "msg"]);
        let e = norm(json!({"@message": "d", "msg": "b"}));
        assert_eq!(e.message, "b");
        assert_eq!(keys(&e), ["@message"]);
        let e = norm(json!({"message": null, "msg": "b"}));
        assert_eq!(e.message, "b");
        assert!(e.attributes.is_empty());
    }

    #[test]
    fn message_non_strings() {
        assert_eq!(norm(json!({"message": 42})).message, "42");
        assert_eq!(norm(json!({"message": 1.5})).message, "1.5");
        assert_eq!(norm(json!({"msg": true})).message, "true");
        assert_eq!(
            norm(json!({"message": {"b": 1, "a": [1, "x"]}})).message,
            r#"{"b":1,"a":[1,"x"]}"#
        );
        assert_eq!(norm(json!({"message": [1, 2]})).message, "[1,2]");
    }

    #[test]
    fn log_object_is_not_a_message() {
        let e = norm(json!({"log": {"logger": "main"}, "@message": "m"}));
        assert_eq!(e.message, "m");
        assert_eq!(e.attributes["log"], json!({"logger": "main"}));
        let e = norm(json!({"log": 5}));
        assert_eq!(e.message, "");
        assert_eq!(e.attributes["log"], json!(5));
        let e = norm(json!({"log": "text line"}));
        assert_eq!(e.message, "text line");
        assert!(e.attributes.is_empty());
    }

    #[test]
    fn level_aliases() {
        let cases = [
            ("trace", "TRACE"),
            ("TRACE", "TRACE"),
            ("trc", "TRACE"),
            ("debug", "DEBUG"),
            ("Debug", "DEBUG"),
            ("dbg", "DEBUG"),
            ("info", "INFO"),
            ("INFO", "INFO"),
            ("notice", "INFO"),
            ("informational", "INFO"),
            ("information", "INFO"),
            ("warn", "WARN"),
            ("WARNING", "WARN"),
            ("warning", "WARN"),
            ("error", "ERROR"),
            ("err", "ERROR"),
            ("ERR", "ERROR"),
            ("fatal", "FATAL"),
            ("crit", "FATAL"),
            ("critical", "FATAL"),
            ("emerg", "FATAL"),
            ("emergency", "FATAL"),
            ("alert", "FATAL"),
            ("panic", "FATAL"),
            ("PANIC", "FATAL"),
            ("10", "TRACE"),
            ("60", "FATAL"),
            (" info ", "INFO"),
            ("custom", "CUSTOM"),
            ("Audit-Trail", "AUDIT-TRAIL"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_level(input), want, "{input}");
            if !input.trim().is_empty() {
                assert_eq!(
                    norm(json!({ "level": input })).level.as_deref(),
                    Some(want),
                    "{input}"
                );
            }
        }
    }

    #[test]
    fn numeric_levels() {
        for (n, want) in [
            (10, "TRACE"),
            (20, "DEBUG"),
            (30, "INFO"),
            (40, "WARN"),
            (50, "ERROR"),
            (60, "FATAL"),
            (35, "35"),
            (0, "0"),
        ] {
            assert_eq!(norm(json!({ "level": n })).level.as_deref(), Some(want));
        }
        assert_eq!(norm(json!({"level": 2.5})).level.as_deref(), Some("2.5"));
        assert_eq!(norm(json!({"level": true})).level.as_deref(), Some("TRUE"));
    }

    #[test]
    fn level_from_each_field_and_precedence() {
        for key in ["level", "severity", "lvl", "log.level"] {
            let e = norm(json!({ key: "warning", "a": 1 }));
            assert_eq!(e.level.as_deref(), Some("WARN"), "{key}");
            assert_eq!(keys(&e), ["a"], "{key}");
        }
        let e = norm(json!({"lvl": "debug", "severity": "err", "level": "info"}));
        assert_eq!(e.level.as_deref(), Some("INFO"));
        assert_eq!(keys(&e), ["lvl", "severity"]);
        let e = norm(json!({"lvl": "debug", "severity": "err"}));
        assert_eq!(e.level.as_deref(), Some("ERROR"));
        assert_eq!(keys(&e), ["lvl"]);
        let e = norm(json!({"level": null, "lvl": "dbg"}));
        assert_eq!(e.level.as_deref(), Some("DEBUG"));
        assert!(e.attributes.is_empty());
        let e = norm(json!({"level": "  ", "lvl": "dbg"}));
        assert_eq!(e.level.as_deref(), Some("DEBUG"));
        assert!(e.attributes.is_empty());
        assert_eq!(norm(json!({"a": 1})).level, None);
    }

    #[test]
    fn log_level_both_forms() {
        let e = norm(json!({"log.level": "error", "x": 1}));
        assert_eq!(e.level.as_deref(), Some("ERROR"));
        assert_eq!(keys(&e), ["x"]);

        let e = norm(json!({"log": {"level": "warn", "logger": "app"}, "x": 1}));
        assert_eq!(e.level.as_deref(), Some("WARN"));
        assert_eq!(keys(&e), ["log", "x"]);
        assert_eq!(e.attributes["log"], json!({"logger": "app"}));

        // The emptied container goes too.
        let e = norm(json!({"log": {"level": "warn"}, "x": 1}));
        assert_eq!(e.level.as_deref(), Some("WARN"));
        assert_eq!(keys(&e), ["x"]);

        // The literal dotted key wins over the nested one.
        let e = norm(json!({"log": {"level": "warn"}, "log.level": "info"}));
        assert_eq!(e.level.as_deref(), Some("INFO"));
        assert_eq!(e.attributes["log"], json!({"level": "warn"}));

        // A higher-precedence field leaves log.level where it is.
        let e = norm(json!({"level": "debug", "log": {"level": "warn"}}));
        assert_eq!(e.level.as_deref(), Some("DEBUG"));
        assert_eq!(e.attributes["log"], json!({"level": "warn"}));

        // ECS with a message under `message` and the level nested.
        let e = norm(json!({
            "@timestamp": "2024-05-01T12:00:00Z",
            "log": {"level": "error", "logger": "db"},
            "message": "boom",
        }));
        assert_eq!(e.timestamp, T2024);
        assert_eq!(e.message, "boom");
        assert_eq!(e.level.as_deref(), Some("ERROR"));
        assert_eq!(e.attributes["log"], json!({"logger": "db"}));
    }

    #[test]
    fn non_scalar_level_stays_an_attribute() {
        let e = norm(json!({"level": {"name": "info"}, "severity": "warn"}));
        assert_eq!(e.level, None);
        assert_eq!(e.attributes["level"], json!({"name": "info"}));
        assert_eq!(e.attributes["severity"], json!("warn"));
    }

    #[test]
    fn keywords() {
        let e = norm(json!({"service": "api", "host": "web-1", "source": "app.log", "a": 1}));
        assert_eq!(e.service.as_deref(), Some("api"));
        assert_eq!(e.host.as_deref(), Some("web-1"));
        assert_eq!(e.source.as_deref(), Some("app.log"));
        assert_eq!(keys(&e), ["a"]);

        let e = norm(json!({"service": 7, "host": false, "source": 1.5}));
        assert_eq!(e.service.as_deref(), Some("7"));
        assert_eq!(e.host.as_deref(), Some("false"));
        assert_eq!(e.source.as_deref(), Some("1.5"));
        assert!(e.attributes.is_empty());
    }

    #[test]
    fn keyword_non_scalars_stay_attributes() {
        let e = norm(json!({
            "a": 1,
            "host": {"name": "web-1", "ip": ["10.0.0.1"]},
            "service": ["x"],
            "b": 2,
        }));
        assert_eq!(e.host, None);
        assert_eq!(e.service, None);
        assert_eq!(keys(&e), ["a", "host", "service", "b"]);
        assert_eq!(
            e.attributes["host"],
            json!({"name": "web-1", "ip": ["10.0.0.1"]})
        );
        let e = norm(json!({"host": null}));
        assert_eq!(e.host, None);
        assert!(e.attributes.is_empty());
    }

    #[test]
    fn default_source() {
        let obj = |v: Value| match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let e = normalize_object(obj(json!({"m": 1})), NOW, Some("syslog")).unwrap();
        assert_eq!(e.source.as_deref(), Some("syslog"));
        let e = normalize_object(obj(json!({"source": "app"})), NOW, Some("syslog")).unwrap();
        assert_eq!(e.source.as_deref(), Some("app"));
        let e = normalize_object(obj(json!({"source": null})), NOW, Some("syslog")).unwrap();
        assert_eq!(e.source.as_deref(), Some("syslog"));
        // An object source is the event's own; the default does not add a
        // second `source`.
        let e = normalize_object(obj(json!({"source": {"ip": "1"}})), NOW, Some("syslog")).unwrap();
        assert_eq!(e.source, None);
        assert_eq!(e.attributes["source"], json!({"ip": "1"}));
    }

    #[test]
    fn attributes_keep_structure_and_order() {
        let e = norm(json!({
            "z": {"nested": {"deep": [1, {"x": null}]}},
            "msg": "m",
            "a": [true, 1.25, "s"],
            "level": "info",
            "m": -7,
            "n": null,
        }));
        assert_eq!(keys(&e), ["z", "a", "m", "n"]);
        assert_eq!(
            e.attributes["z"],
            json!({"nested": {"deep": [1, {"x": null}]}})
        );
        assert_eq!(e.attributes["a"], json!([true, 1.25, "s"]));
        assert_eq!(e.attributes["n"], Value::Null);
    }

    /// Random objects over the field names normalization cares about; every
    /// normalized event must survive write_json → from_normalized_json and
    /// name each output key once.
    #[test]
    fn random_objects_round_trip() {
        const KEYS: [&str; 20] = [
            "timestamp",
            "@timestamp",
            "time",
            "ts",
            "message",
            "msg",
            "log",
            "@message",
            "level",
            "severity",
            "lvl",
            "log.level",
            "service",
            "host",
            "source",
            "a",
            "b",
            "level.x",
            "Message",
            "",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut accepted = 0;
        for _ in 0..5_000 {
            let mut obj = Map::new();
            for _ in 0..next(8) {
                let key = KEYS[next(KEYS.len() as u64) as usize];
                let value = match next(11) {
                    0 => Value::Null,
                    1 => json!(next(2) == 0),
                    2 => json!(next(100)),
                    3 => json!(1_600_000_000 + next(200_000_000)),
                    4 => json!(next(1_000_000) as f64 / 7.0),
                    5 => json!(["info", "WARN", "err", "x", "", " dbg "][next(6) as usize]),
                    6 => json!(crate::time::format_rfc3339(next(1 << 62) as i64)),
                    7 => json!({"level": "error", "k": [1, null]}),
                    8 => json!({"level": null}),
                    9 => json!([]),
                    _ => json!("text"),
                };
                obj.insert(key.to_owned(), value);
            }
            let source = (next(2) == 0).then_some("default");
            let Ok(e) = normalize_object(obj, NOW, source) else {
                continue;
            };
            accepted += 1;
            let mut out = Vec::new();
            e.write_json(&mut out);
            let back = Event::from_normalized_json(&out).unwrap();
            assert_eq!(back, e, "{}", String::from_utf8_lossy(&out));
            let reparsed: Map<String, Value> = serde_json::from_slice(&out).unwrap();
            let fields = 2 + [&e.level, &e.service, &e.host, &e.source]
                .iter()
                .filter(|f| f.is_some())
                .count();
            assert_eq!(reparsed.len(), fields + e.attributes.len(), "duplicate key");
            assert_eq!(Value::Object(reparsed), e.to_json_value());
        }
        assert!(accepted > 1_000, "{accepted}");
    }

    #[test]
    fn normalized_events_round_trip() {
        for v in [
            json!({"level": {"x": 1}, "host": [1], "source": {"a": 1}, "msg": "m", "q": 1}),
            json!({"ts": 1_714_564_800_123_456_789u64, "message": "x", "service": "s"}),
            json!({"timestamp": null, "message": null, "level": null}),
            json!({"log": {"level": 30, "file": "a.js"}, "log.origin": 1}),
        ] {
            let e = norm(v);
            let mut out = Vec::new();
            e.write_json(&mut out);
            assert_eq!(Event::from_normalized_json(&out).unwrap(), e);
        }
    }
}
