//! Splitting a decoded ingest body into lines and those into events.
//!
//! Each line stands alone: a bad line is rejected with its line number and a
//! reason, and the good lines around it are kept. Nothing here panics on any
//! input.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::decode::Limits;
use crate::event::Event;
use crate::normalize::{normalize_object, NormalizeError};

/// How many line errors [`Parsed::errors`] lists at most.
pub const MAX_LISTED_ERRORS: usize = 100;

/// How the lines of a body are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// One JSON object per line.
    Ndjson,
    /// Each line is the message of an event received now.
    Text,
}

impl BodyFormat {
    /// The format for a `Content-Type` header: JSON types (`application/json`,
    /// `application/x-ndjson`, `application/jsonl`, ..) are NDJSON,
    /// `text/plain` is text; `None` for anything else.
    pub fn from_content_type(content_type: &str) -> Option<BodyFormat> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let lower = essence.to_ascii_lowercase();
        match lower.as_str() {
            "text/plain" => Some(BodyFormat::Text),
            "application/json"
            | "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines" => Some(BodyFormat::Ndjson),
            _ => None,
        }
    }
}

/// A rejected line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineError {
    /// 1-based line number in the (decoded) body.
    pub line: usize,
    pub error: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

/// The outcome of [`parse_body`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// The accepted events, in body order.
    pub events: Vec<Event>,
    /// How many lines were rejected.
    pub rejected: usize,
    /// The first [`MAX_LISTED_ERRORS`] rejections.
    pub errors: Vec<LineError>,
    /// Size of the decoded body.
    pub bytes: usize,
}

/// What parsing needs to know besides the body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseContext {
    /// When the body arrived, in nanoseconds since the epoch: the timestamp
    /// of events that carry none.
    pub received_at: i64,
    /// The `source` of events that have none.
    pub default_source: Option<String>,
    pub limits: Limits,
}

impl ParseContext {
    /// A context with default limits and no default source.
    pub fn new(received_at: i64) -> Self {
        ParseContext {
            received_at,
            default_source: None,
            limits: Limits::default(),
        }
    }
}

/// Parses a decoded body into events.
///
/// Lines end at `\n` (a trailing `\r` is dropped); blank lines are skipped
/// but still counted for line numbers; a leading UTF-8 byte order mark is
/// ignored. A line longer than `max_line_bytes` or not valid UTF-8 is
/// rejected; in NDJSON so is one that is not a JSON object, exceeds
/// `max_fields` or `max_depth`, or has an unreadable timestamp.
pub fn parse_body(body: &[u8], format: BodyFormat, ctx: &ParseContext) -> Parsed {
    let mut parsed = Parsed {
        bytes: body.len(),
        ..Parsed::default()
    };
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_line(line, format, ctx) {
            Ok(event) => parsed.events.push(event),
            Err(error) => {
                parsed.rejected += 1;
                if parsed.errors.len() < MAX_LISTED_ERRORS {
                    parsed.errors.push(LineError {
                        line: index + 1,
                        error: error.to_string(),
                    });
                }
            }
        }
    }
    parsed
}

/// Why a line (or a document) is not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLine {
    #[error("line is {len} bytes; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("line is not valid UTF-8 (bad byte at offset {offset} of the line): send UTF-8 text")]
    NotUtf8 { offset: usize },
    #[error("event has too many fields: the limit is {max} leaf values")]
    TooManyFields { max: usize },
    #[error("event is nested too deeply: the limit is {max} levels")]
    TooDeep { max: usize },
    /// Not JSON, or JSON but not an object: serde_json's reason and the column.
    #[error("{0}")]
    Json(String),
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
}

/// Parses one line (without its newline) of a body: the checks of [`parse_body`] (length,
/// UTF-8, and for NDJSON the object, field and depth limits) and normalization.
pub fn parse_line(
    line: &[u8],
    format: BodyFormat,
    ctx: &ParseContext,
) -> Result<Event, InvalidLine> {
    let max = ctx.limits.max_line_bytes;
    if line.len() > max {
        return Err(InvalidLine::TooLong {
            len: line.len(),
            max,
        });
    }
    let text = std::str::from_utf8(line).map_err(|e| InvalidLine::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    match format {
        BodyFormat::Ndjson => parse_json_line(text, ctx),
        BodyFormat::Text => {
            let mut event = Event::new(ctx.received_at, text);
            event.source.clone_from(&ctx.default_source);
            Ok(event)
        }
    }
}

/// Parses and normalizes one JSON object (one NDJSON line), enforcing
/// `max_fields` and `max_depth` (but not `max_line_bytes`).
pub fn parse_json_line(text: &str, ctx: &ParseContext) -> Result<Event, InvalidLine> {
    let limits = &ctx.limits;
    let mut budget = Budget {
        fields_left: limits.max_fields,
        max_depth: limits.max_depth,
        exceeded: None,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let result = de
        .deserialize_map(ObjectVisitor {
            budget: &mut budget,
        })
        .and_then(|obj| de.end().map(|()| obj));
    let obj = match result {
        Ok(obj) => obj,
        Err(e) => {
            return Err(match budget.exceeded {
                Some(Exceeded::Fields) => InvalidLine::TooManyFields {
                    max: limits.max_fields,
                },
                Some(Exceeded::Depth) => InvalidLine::TooDeep {
                    max: limits.max_depth,
                },
                None => InvalidLine::Json(json_error(&e)),
            })
        }
    };
    Ok(normalize_object(
        obj,
        ctx.received_at,
        ctx.default_source.as_deref(),
    )?)
}

/// A serde_json error as `invalid JSON: <what> at column <n>`.
fn json_error(e: &serde_json::Error) -> String {
    let mut what = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    if what.ends_with(&position) {
        what.truncate(what.len() - position.len());
    }
    let prefix = match e.classify() {
        serde_json::error::Category::Data => "not a JSON object",
        _ => "invalid JSON",
    };
    // serde_json says column 0 for a wrong type found before reading a byte.
    format!("{prefix}: {what} at column {}", e.column().max(1))
}

/// The field and depth allowance of one event.
struct Budget {
    fields_left: usize,
    max_depth: usize,
    exceeded: Option<Exceeded>,
}

#[derive(Debug, Clone, Copy)]
enum Exceeded {
    Fields,
    Depth,
}

impl Budget {
    fn leaf<E: de::Error>(&mut self) -> Result<(), E> {
        if self.fields_left == 0 {
            self.exceeded = Some(Exceeded::Fields);
            return Err(E::custom("too many fields"));
        }
        self.fields_left -= 1;
        Ok(())
    }

    fn enter<E: de::Error>(&mut self, depth: usize) -> Result<(), E> {
        if depth > self.max_depth {
            self.exceeded = Some(Exceeded::Depth);
            return Err(E::custom("nested too deeply"));
        }
        Ok(())
    }
}

/// The top-level object of a line.
struct ObjectVisitor<'b> {
    budget: &'b mut Budget,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        self.budget.enter(1)?;
        read_map(self.budget, 1, access)
    }
}

fn read_map<'de, A: MapAccess<'de>>(
    budget: &mut Budget,
    depth: usize,
    mut access: A,
) -> Result<Map<String, Value>, A::Error> {
    let mut map = Map::new();
    while let Some(key) = access.next_key::<String>()? {
        let value = access.next_value_seed(ValueSeed {
            budget,
            depth: depth + 1,
        })?;
        map.insert(key, value);
    }
    Ok(map)
}

/// Any JSON value at `depth`, counted against the budget.
struct ValueSeed<'b> {
    budget: &'b mut Budget,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.budget.leaf()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.budget.leaf()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.budget.leaf()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.budget.leaf()?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.leaf()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.budget.leaf()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.budget.leaf()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        self.budget.enter(self.depth)?;
        let mut items = Vec::new();
        while let Some(item) = access.next_element_seed(ValueSeed {
            budget: self.budget,
            depth: self.depth + 1,
        })? {
            items.push(item);
        }
        if items.is_empty() {
            self.budget.leaf()?;
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Value, A::Error> {
        self.budget.enter(self.depth)?;
        let map = read_map(self.budget, self.depth, access)?;
        if map.is_empty() {
            self.budget.leaf()?;
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn ctx() -> ParseContext {
        ParseContext::new(NOW)
    }

    fn errors(p: &Parsed) -> Vec<(usize, &str)> {
        p.errors
            .iter()
            .map(|e| (e.line, e.error.as_str()))
            .collect()
    }

    #[test]
    fn good_lines_with_blank_lines_and_crlf() {
        let body = b"{\"msg\":\"a\"}\r\n\n   \r\n{\"msg\":\"b\",\"level\":\"warn\"}\n";
        let p = parse_body(body, BodyFormat::Ndjson, &ctx());
        assert_eq!(p.rejected, 0, "{:?}", p.errors);
        assert_eq!(p.bytes, body.len());
        let msgs: Vec<&str> = p.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(msgs, ["a", "b"]);
        assert_eq!(p.events[1].level.as_deref(), Some("WARN"));
        assert_eq!(p.events[0].timestamp, NOW);
    }

    #[test]
    fn no_trailing_newline_and_bom() {
        let p = parse_body(
            b"\xEF\xBB\xBF{\"a\":1}\n{\"a\":2}",
            BodyFormat::Ndjson,
            &ctx(),
        );
        assert_eq!(p.events.len(), 2);
        assert_eq!(p.rejected, 0);
        assert_eq!(
            parse_body(b"", BodyFormat::Ndjson, &ctx()),
            Parsed::default()
        );
    }

    #[test]
    fn bad_lines_among_good_ones() {
        let mut body = Vec::new();
        body.extend_from_slice(b"{\"msg\":\"one\"}\n"); // 1
        body.extend_from_slice(b"{\"msg\": \"two\"\n"); // 2 malformed
        body.extend_from_slice(b"[1,2,3]\n"); // 3 not an object
        body.extend_from_slice(b"\"just a string\"\n"); // 4 not an object
        body.extend_from_slice(b"{\"msg\":\"bad \xff utf8\"}\n"); // 5
        body.extend_from_slice(b"\n"); // 6 blank
        body.extend_from_slice(b"{\"ts\":\"yesterday\"}\n"); // 7
        body.extend_from_slice(b"{\"a\":1} trailing\n"); // 8
        body.extend_from_slice(b"{\"msg\":\"three\"}\n"); // 9
        let p = parse_body(&body, BodyFormat::Ndjson, &ctx());
        let msgs: Vec<&str> = p.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(msgs, ["one", "three"]);
        assert_eq!(p.rejected, 6);
        let errs = errors(&p);
        let lines: Vec<usize> = errs.iter().map(|e| e.0).collect();
        assert_eq!(lines, [2, 3, 4, 5, 7, 8]);
        assert_eq!(
            errs[0].1,
            "invalid JSON: EOF while parsing an object at column 13"
        );
        assert_eq!(
            errs[1].1,
            "not a JSON object: invalid type: sequence, expected a JSON object at column 1"
        );
        assert!(
            errs[2]
                .1
                .starts_with("not a JSON object: invalid type: string"),
            "{}",
            errs[2].1
        );
        assert_eq!(
            errs[3].1,
            "line is not valid UTF-8 (bad byte at offset 12 of the line): send UTF-8 text"
        );
        assert_eq!(
            errs[4].1,
            r#"field "ts": cannot read "yesterday" as an RFC 3339 time or epoch number"#
        );
        assert_eq!(errs[5].1, "invalid JSON: trailing characters at column 9");
    }

    #[test]
    fn over_long_line_is_rejected_unparsed() {
        let mut body = b"{\"msg\":\"ok\"}\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', 2_000_000));
        body.extend_from_slice(b"\n{\"msg\":\"ok2\"}");
        for format in [BodyFormat::Ndjson, BodyFormat::Text] {
            let p = parse_body(&body, format, &ctx());
            assert_eq!(p.events.len(), 2);
            assert_eq!(
                errors(&p),
                [(2, "line is 2000000 bytes; the limit is 1048576")]
            );
        }
    }

    fn nested(depth: usize) -> String {
        // `depth` levels counting the event itself.
        let mut s = String::new();
        for _ in 1..depth {
            s.push_str("{\"a\":");
        }
        s.push('1');
        for _ in 1..depth {
            s.push('}');
        }
        format!("{{\"x\":{s}}}")
    }

    #[test]
    fn depth_limit() {
        let c = ctx();
        assert!(parse_json_line(&nested(32), &c).is_ok());
        let err = parse_json_line(&nested(33), &c).unwrap_err().to_string();
        assert_eq!(err, "event is nested too deeply: the limit is 32 levels");
        let arrays = format!("{{\"x\":{}1{}}}", "[".repeat(31), "]".repeat(31));
        assert!(parse_json_line(&arrays, &c).is_ok());
        let arrays = format!("{{\"x\":{}1{}}}", "[".repeat(32), "]".repeat(32));
        assert!(parse_json_line(&arrays, &c).is_err());
        // Far deeper than serde_json's own recursion limit.
        let deep = format!("{{\"x\":{}", "[".repeat(100_000));
        let err = parse_json_line(&deep, &c).unwrap_err().to_string();
        assert!(err.contains("limit is 32"), "{err}");
    }

    #[test]
    fn field_limit() {
        let c = ctx();
        let obj = |n: usize| {
            let fields: Vec<String> = (0..n).map(|i| format!("\"f{i}\":{i}")).collect();
            format!("{{{}}}", fields.join(","))
        };
        assert!(parse_json_line(&obj(1000), &c).is_ok());
        let err = parse_json_line(&obj(1001), &c).unwrap_err().to_string();
        assert_eq!(
            err,
            "event has too many fields: the limit is 1000 leaf values"
        );
        // Array elements and nested fields count as leaves too.
        let arr: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
        assert!(parse_json_line(&format!("{{\"a\":[{}]}}", arr.join(",")), &c).is_err());
        let empties = vec!["[]"; 1001].join(",");
        assert!(parse_json_line(&format!("{{\"a\":[{empties}]}}"), &c).is_err());
    }

    #[test]
    fn structure_is_preserved() {
        let line = r#"{"b":{"x":[1,2.5,"s",null,true,{}],"y":{}},"a":-1,"msg":"m","big":18446744073709551615}"#;
        let e = parse_json_line(line, &ctx()).unwrap();
        assert_eq!(e.message, "m");
        assert_eq!(
            Value::Object(e.attributes),
            json!({"b":{"x":[1,2.5,"s",null,true,{}],"y":{}},"a":-1,"big":18446744073709551615u64})
        );
    }

    #[test]
    fn text_format() {
        let mut c = ctx();
        c.default_source = Some("upload".into());
        let p = parse_body(
            b"first line\r\n\n second  \nbad \xc3\x28\n",
            BodyFormat::Text,
            &c,
        );
        let msgs: Vec<&str> = p.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(msgs, ["first line", " second  "]);
        assert!(p
            .events
            .iter()
            .all(|e| e.timestamp == NOW && e.level.is_none()));
        assert!(p
            .events
            .iter()
            .all(|e| e.source.as_deref() == Some("upload")));
        assert_eq!(p.rejected, 1);
        assert_eq!(p.errors[0].line, 4);
        assert!(
            p.errors[0].error.contains("offset 4"),
            "{}",
            p.errors[0].error
        );
    }

    #[test]
    fn default_source_applies_to_ndjson() {
        let mut c = ctx();
        c.default_source = Some("k8s".into());
        let p = parse_body(b"{\"a\":1}\n{\"source\":\"own\"}\n", BodyFormat::Ndjson, &c);
        assert_eq!(p.events[0].source.as_deref(), Some("k8s"));
        assert_eq!(p.events[1].source.as_deref(), Some("own"));
    }

    #[test]
    fn error_list_is_capped_but_count_is_not() {
        let body = "nope\n".repeat(250) + "{\"msg\":\"ok\"}\n";
        let p = parse_body(body.as_bytes(), BodyFormat::Ndjson, &ctx());
        assert_eq!(p.rejected, 250);
        assert_eq!(p.errors.len(), MAX_LISTED_ERRORS);
        assert_eq!(p.errors[99].line, 100);
        assert_eq!(p.events.len(), 1);
    }

    #[test]
    fn compressed_bodies_end_to_end() {
        let body = b"{\"msg\":\"a\",\"level\":30}\n{\"msg\":\"b\"}\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::stream::encode_all(&body[..], 3).unwrap();
        for (enc, data) in [
            (crate::ContentEncoding::Gzip, gz),
            (crate::ContentEncoding::Zstd, zs),
        ] {
            let decoded = crate::decompress(enc, &data, 1 << 20).unwrap();
            let p = parse_body(&decoded, BodyFormat::Ndjson, &ctx());
            assert_eq!(p.events.len(), 2);
            assert_eq!(p.events[0].level.as_deref(), Some("INFO"));
            assert_eq!(p.bytes, body.len());
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(
            BodyFormat::from_content_type("application/x-ndjson; charset=utf-8"),
            Some(BodyFormat::Ndjson)
        );
        assert_eq!(
            BodyFormat::from_content_type("Text/Plain"),
            Some(BodyFormat::Text)
        );
        assert_eq!(BodyFormat::from_content_type("image/png"), None);
    }

    #[test]
    fn never_panics_on_junk() {
        // A cheap deterministic fuzz: random bytes biased towards JSON syntax.
        let alphabet = b"{}[]\":,0123456789.eE+-tfnulrsa \\\n\r\xff\xc3\x80";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut body = Vec::new();
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            body.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        for format in [BodyFormat::Ndjson, BodyFormat::Text] {
            let p = parse_body(&body, format, &ctx());
            assert!(p.events.len() + p.rejected > 0);
        }
        // Valid events with junk values for the normalized fields.
        for line in [
            r#"{"ts":-1}"#,
            r#"{"ts":1e308}"#,
            r#"{"ts":"1e99999999999999999999"}"#,
            r#"{"ts":"9999-12-31T23:59:59Z"}"#,
            r#"{"timestamp":[],"message":{},"level":[],"host":{}}"#,
            r#"{"level":"\u0000","service":"","log":{"level":null}}"#,
            r#"{"level":"ǅǆǄ-ß"}"#,
            r#"{"ts":"2024-05-01T12:00:00.1234567890123456789Z"}"#,
        ] {
            let _ = parse_json_line(line, &ctx());
        }
    }

    /// Run with `cargo test -p sawmill-core --release -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn ingest_throughput() {
        let mut body = Vec::new();
        let levels = ["info", "warn", "error", "debug"];
        for i in 0..100_000u64 {
            let level = levels[(i % 4) as usize];
            let line = json!({
                "@timestamp": format!("2024-05-01T12:{:02}:{:02}.{:03}Z", i / 60 % 60, i % 60, i % 1000),
                "level": level,
                "msg": format!("GET /api/v1/items/{i} completed with status 200 in {}ms", i % 97),
                "service": "checkout",
                "host": format!("web-{}", i % 16),
                "http": {"method": "GET", "status": 200, "path": format!("/api/v1/items/{i}")},
                "latency_ms": (i % 97) as f64 * 1.5,
                "trace_id": format!("{:032x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                "user": {"id": i % 5000, "tags": ["a", "b"]},
            });
            serde_json::to_writer(&mut body, &line).unwrap();
            body.push(b'\n');
        }
        let c = ctx();
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            let p = parse_body(&body, BodyFormat::Ndjson, &c);
            let secs = start.elapsed().as_secs_f64();
            assert_eq!(p.events.len(), 100_000);
            best = best.min(secs);
            drop(p);
        }
        let mb = body.len() as f64 / 1e6;
        let start = std::time::Instant::now();
        let mut n = 0;
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_slice(line).unwrap();
            n += v.as_object().map_or(0, |m| m.len());
        }
        let base = start.elapsed().as_secs_f64();
        println!("baseline serde_json::Value: {:.0} MB/s ({n})", mb / base);
        println!(
            "ndjson: {:.1} MB, 100000 lines, best {:.1} ms: {:.0} MB/s, {:.0} events/s",
            mb,
            best * 1e3,
            mb / best,
            100_000.0 / best
        );
        let mut out = Vec::with_capacity(body.len());
        let p = parse_body(&body, BodyFormat::Ndjson, &c);
        let start = std::time::Instant::now();
        for e in &p.events {
            e.write_json(&mut out);
            out.push(b'\n');
        }
        let secs = start.elapsed().as_secs_f64();
        println!("write_json: {:.0} MB/s", out.len() as f64 / 1e6 / secs);
    }
}
