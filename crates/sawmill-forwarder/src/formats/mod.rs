//! Parsers for the log files AWS services write to S3.
//!
//! The format of an object is recognized from its key or its first bytes
//! ([`Format::detect`]), or named by configuration ([`Format::from_name`]); [`parse`] (a
//! whole object in memory) and [`parse_reader`] (a stream, line by line) then turn it into
//! one sawmill event per record, in file order.
//!
//! An event is a JSON object: `timestamp` is the record's own time, `message` is what
//! full-text search should find (the raw line for the line formats, a one-line summary for
//! CloudTrail and WAF), and every parsed field is an attribute under the name AWS documents
//! for it, in snake_case. A field holding AWS's "no value" (`-`) is left out; numeric fields
//! are JSON numbers. A record that cannot be parsed is not dropped: it is emitted as
//! `{"message": <the raw line>, "parse_error": <why>}` and counted in
//! [`ParseStats::errors`].
//!
//! ```
//! use sawmill_forwarder::formats::{parse, Format};
//!
//! let key = "AWSLogs/123456789010/vpcflowlogs/us-east-1/2026/11/27/\
//!            123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20261127T1620Z_fe123456.log.gz";
//! let data = b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
//!              2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n";
//! let format = Format::detect(key, data);
//! assert_eq!(format, Format::VpcFlow);
//! let mut events = Vec::new();
//! let stats = parse(format, data, &mut |event| events.push(event))?;
//! assert_eq!((stats.records, stats.errors), (1, 0));
//! assert_eq!(events[0]["timestamp"], 1418530010);
//! assert_eq!(events[0]["dstport"], 22);
//! assert_eq!(events[0]["action"], "ACCEPT");
//! # Ok::<(), sawmill_forwarder::formats::ParseError>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io::{BufRead, Read};
use std::str::FromStr;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

mod alb;
mod cloudfront;
mod cloudtrail;
mod detect;
mod lines;
mod ndjson;
mod nlb;
mod vpcflow;
mod waf;

/// Longest line read from a log file (the server's default line limit); longer lines become
/// error events holding their first 1024 bytes.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One sawmill event: a JSON object.
pub type Event = Map<String, Value>;

/// Why a whole object could not be parsed (nothing of it was emitted, or, for a read error,
/// only the records before it).
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the data is still gzip-compressed: decompress the object first")]
    StillCompressed,
    #[error(
        "the object is an Apache Parquet file, which the {0} parser does not read: deliver the logs as text"
    )]
    Parquet(Format),
    #[error("reading the log file")]
    Read(#[source] std::io::Error),
    #[error("not a valid CloudTrail log file")]
    NotJson(#[source] serde_json::Error),
    #[error("not a CloudTrail log file")]
    NotCloudTrail(#[source] serde_json::Error),
    #[error("not a CloudTrail log file: it has no \"Records\" array")]
    NoRecords,
}

/// A format name that is not one of [`Format::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown S3 log format {name:?}: expected one of {expected}")]
pub struct UnknownFormat {
    pub name: String,
    /// The valid names, comma-separated.
    pub expected: String,
}

/// Why one record could not be parsed: the text of the `parse_error` of its event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

impl From<String> for RecordError {
    fn from(why: String) -> RecordError {
        RecordError(why)
    }
}

/// A log-file format the forwarder can parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Application Load Balancer access logs: space-separated, some fields quoted.
    Alb,
    /// Network Load Balancer (TLS listener) access logs: space-separated.
    Nlb,
    /// VPC flow logs in the text file format, fields named by the file's header line.
    VpcFlow,
    /// CloudTrail log files: one JSON document `{"Records": [...]}`.
    CloudTrail,
    /// CloudFront standard logs: tab-separated, fields named by the `#Fields:` header.
    CloudFront,
    /// AWS WAF logs: one JSON object per line.
    Waf,
    /// Any newline-delimited JSON objects, kept as they are.
    Ndjson,
    /// Plain text: each line is the message of one event.
    Lines,
}

impl Format {
    /// Every format, in the order their names are listed.
    pub const ALL: [Format; 8] = [
        Format::Alb,
        Format::Nlb,
        Format::VpcFlow,
        Format::CloudTrail,
        Format::CloudFront,
        Format::Waf,
        Format::Ndjson,
        Format::Lines,
    ];

    /// The format called `name` (case-insensitive), as a configured override
    /// (`SAWMILL_S3_FORMAT`) names it: "alb", "nlb", "vpcflow", "cloudtrail", "cloudfront",
    /// "waf", "ndjson" or "lines". The error names the valid ones.
    pub fn from_name(name: &str) -> Result<Format, UnknownFormat> {
        let wanted = name.trim();
        Format::ALL
            .into_iter()
            .find(|format| format.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(Format::name).collect();
                UnknownFormat {
                    name: wanted.to_string(),
                    expected: names.join(", "),
                }
            })
    }

    /// The name [`Format::from_name`] accepts for this format.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Alb => "alb",
            Format::Nlb => "nlb",
            Format::VpcFlow => "vpcflow",
            Format::CloudTrail => "cloudtrail",
            Format::CloudFront => "cloudfront",
            Format::Waf => "waf",
            Format::Ndjson => "ndjson",
            Format::Lines => "lines",
        }
    }

    /// Recognizes the format of an S3 object from its (URL-decoded) key, by the layouts AWS
    /// documents for its log deliveries, and, when the key says nothing, from `head`, the
    /// first bytes of the decompressed object (a few KiB are plenty).
    ///
    /// Keys: `AWSLogs/<account>/elasticloadbalancing/<region>/.../<account>_elasticloadbalancing_<region>_app.<lb>_..._<ip>_<random>.log.gz`
    /// (ALB; `net.` for NLB), `AWSLogs/<account>/vpcflowlogs/...` (also Hive-style
    /// `aws-service=vpcflowlogs`), `AWSLogs/<account>/CloudTrail/...` (and
    /// `CloudTrail-Insight`), `AWSLogs/<account>/WAFLogs/...` (and Firehose deliveries whose
    /// stream is named `aws-waf-logs-...`), CloudFront's
    /// `<prefix>/<distribution-id>.YYYY-MM-DD-HH.<unique>.gz`.
    ///
    /// Content: a `#Version:`/`#Fields:` header is CloudFront, a VPC flow log header line
    /// (`version account-id interface-id ...`) or default-format record is a VPC flow log,
    /// `{"Records":[` is CloudTrail, a line of JSON is NDJSON (WAF when it has a
    /// `"webaclId"`), a line shaped like an ALB or NLB entry is one; anything else is lines.
    pub fn detect(key: &str, head: &[u8]) -> Format {
        detect::from_key(key).unwrap_or_else(|| detect::from_content(head))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<Format, UnknownFormat> {
        Format::from_name(name)
    }
}

/// What parsing one object produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Events emitted, the unparsable records among them.
    pub records: u64,
    /// Records that could not be parsed, emitted with a `parse_error`.
    pub errors: u64,
}

/// Parses a whole object (already decompressed) and calls `emit` once per record with its
/// event, in file order.
///
/// Line formats are processed line by line (blank lines are skipped, CRLF line ends
/// accepted); a CloudTrail file is one JSON document, checked whole before any of its events
/// is emitted. Invalid UTF-8 is replaced (U+FFFD). The error is for the object as a whole:
/// still gzip-compressed, in Parquet, or (CloudTrail) not a CloudTrail log file; nothing is
/// emitted then.
pub fn parse(
    format: Format,
    data: &[u8],
    emit: &mut dyn FnMut(Event),
) -> Result<ParseStats, ParseError> {
    let data = strip_bom(data);
    check_decoded(format, data)?;
    let mut sink = Sink::new(emit);
    if format == Format::CloudTrail {
        cloudtrail::parse(&String::from_utf8_lossy(data), &mut sink)?;
    } else {
        let mut parser = LineParser::new(format);
        for line in data.split(|&b| b == b'\n') {
            parser.line(line, &mut sink);
        }
    }
    Ok(sink.stats)
}

/// Like [`parse`], reading the object from `reader` line by line (for example a gzip
/// decoder over the S3 body), so that a large file is never held whole in memory; a
/// CloudTrail file, a single JSON document, is read whole.
///
/// A read error ends parsing with an error; the events of the lines read before it have
/// already been emitted.
pub fn parse_reader<R: BufRead>(
    format: Format,
    mut reader: R,
    emit: &mut dyn FnMut(Event),
) -> Result<ParseStats, ParseError> {
    let read_error = ParseError::Read;
    if format == Format::CloudTrail {
        let mut data = Vec::new();
        reader.read_to_end(&mut data).map_err(read_error)?;
        return parse(format, &data, emit);
    }
    check_decoded(format, strip_bom(reader.fill_buf().map_err(read_error)?))?;
    let mut sink = Sink::new(emit);
    let mut parser = LineParser::new(format);
    let mut buf = Vec::new();
    let mut first = true;
    loop {
        buf.clear();
        // a line is read up to MAX_LINE_BYTES: a file without newlines never fills memory
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(read_error)?;
        if n == 0 {
            break;
        }
        if buf.len() > MAX_LINE_BYTES && !buf.ends_with(b"\n") {
            // skip the rest of the line and keep its start as an error event
            let mut skipped = 0usize;
            loop {
                let chunk = reader.fill_buf().map_err(read_error)?;
                if chunk.is_empty() {
                    break;
                }
                let (used, end) = match chunk.iter().position(|b| *b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (chunk.len(), false),
                };
                reader.consume(used);
                skipped += used;
                if end {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..1024]);
            sink.error(
                &head,
                format!(
                    "line longer than {MAX_LINE_BYTES} bytes ({} bytes or more): only its first 1024 bytes are kept",
                    buf.len() + skipped
                ),
            );
            first = false;
            continue;
        }
        let line = if first { strip_bom(&buf) } else { &buf[..] };
        first = false;
        parser.line(line.strip_suffix(b"\n").unwrap_or(line), &mut sink);
    }
    Ok(sink.stats)
}

/// Where parsed events go, counted.
pub(crate) struct Sink<'a> {
    emit: &'a mut dyn FnMut(Event),
    stats: ParseStats,
}

impl<'a> Sink<'a> {
    fn new(emit: &'a mut dyn FnMut(Event)) -> Self {
        Sink {
            emit,
            stats: ParseStats::default(),
        }
    }

    /// Emits a parsed record.
    pub(crate) fn record(&mut self, event: Event) {
        self.stats.records += 1;
        (self.emit)(event);
    }

    /// Emits a record that could not be parsed: its raw text and why.
    pub(crate) fn error(&mut self, raw: &str, why: String) {
        self.stats.records += 1;
        self.stats.errors += 1;
        let mut event = Event::with_capacity(2);
        event.insert("message".to_owned(), Value::String(raw.to_owned()));
        event.insert("parse_error".to_owned(), Value::String(why));
        (self.emit)(event);
    }
}

/// The per-line state of a line format.
enum LineParser {
    Alb,
    Nlb,
    VpcFlow(vpcflow::VpcFlow),
    CloudFront(cloudfront::CloudFront),
    Waf,
    Ndjson,
    Lines,
}

impl LineParser {
    fn new(format: Format) -> Self {
        match format {
            Format::Alb => LineParser::Alb,
            Format::Nlb => LineParser::Nlb,
            Format::VpcFlow => LineParser::VpcFlow(vpcflow::VpcFlow::new()),
            Format::CloudFront => LineParser::CloudFront(cloudfront::CloudFront::new()),
            Format::Waf => LineParser::Waf,
            Format::Ndjson => LineParser::Ndjson,
            // A CloudTrail file is parsed whole; as lines it is text.
            Format::Lines | Format::CloudTrail => LineParser::Lines,
        }
    }

    /// Parses one line (without its `\n`) into the sink.
    fn line(&mut self, raw: &[u8], sink: &mut Sink<'_>) {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = String::from_utf8_lossy(raw);
        if text.trim().is_empty() {
            return;
        }
        let text = text.as_ref();
        let parsed = match self {
            LineParser::Alb => alb::parse_line(text),
            LineParser::Nlb => nlb::parse_line(text),
            LineParser::VpcFlow(parser) => return parser.line(text, sink),
            LineParser::CloudFront(parser) => return parser.line(text, sink),
            LineParser::Waf => return ndjson::each_object(text, sink, waf::event),
            LineParser::Ndjson => return ndjson::each_object(text, sink, |record| record),
            LineParser::Lines => Ok(lines::event(text)),
        };
        match parsed {
            Ok(event) => sink.record(event),
            Err(why) => sink.error(text, why.0),
        }
    }
}

/// Drops a UTF-8 byte order mark.
fn strip_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data)
}

/// Refuses data that is not the decompressed text of a log file.
fn check_decoded(format: Format, data: &[u8]) -> Result<(), ParseError> {
    if data.starts_with(&[0x1f, 0x8b]) {
        return Err(ParseError::StillCompressed);
    }
    if format != Format::Lines && data.starts_with(b"PAR1") {
        return Err(ParseError::Parquet(format));
    }
    Ok(())
}

/// How a positional field of a space-separated access log entry is turned into attributes.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// Kept as a string.
    Text,
    /// A JSON number.
    Number,
    /// `ip:port`, split into two attributes (the port a number).
    Addr {
        ip: &'static str,
        port: &'static str,
    },
    /// An HTTP request line, kept whole and split into method, URL and protocol.
    Request,
}

/// Adds the attributes of the positional `values` described by `fields` (extra values are
/// ignored, missing trailing ones left out).
pub(crate) fn put_fields(
    event: &mut Event,
    fields: &[(&'static str, Kind)],
    values: &[Cow<'_, str>],
) -> Result<(), RecordError> {
    for (&(name, kind), value) in fields.iter().zip(values) {
        let value = value.as_ref();
        match kind {
            Kind::Text => put_text(event, name, value),
            Kind::Number => put_number(event, name, value)?,
            Kind::Addr { ip, port } => put_addr(event, name, ip, port, value)?,
            Kind::Request => put_request(event, name, value),
        }
    }
    Ok(())
}

/// True for AWS's "no value": `-`, or nothing.
pub(crate) fn is_absent(value: &str) -> bool {
    value.is_empty() || value == "-"
}

/// Adds a string attribute unless the value is absent.
pub(crate) fn put_text(event: &mut Event, name: &str, value: &str) {
    if !is_absent(value) {
        event.insert(name.to_owned(), Value::String(value.to_owned()));
    }
}

/// Adds a numeric attribute unless the value is absent; a value that is not a number is an
/// error naming the field.
pub(crate) fn put_number(event: &mut Event, name: &str, value: &str) -> Result<(), RecordError> {
    if is_absent(value) {
        return Ok(());
    }
    let number =
        parse_number(value).ok_or_else(|| format!("{name}: expected a number, found {value:?}"))?;
    event.insert(name.to_owned(), number);
    Ok(())
}

/// A JSON number from its text: an integer when it is one, else a finite float.
pub(crate) fn parse_number(text: &str) -> Option<Value> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::from(i));
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(Value::from(u));
    }
    let looks_numeric = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    match text.parse::<f64>() {
        Ok(f) if looks_numeric && f.is_finite() => {
            serde_json::Number::from_f64(f).map(Value::Number)
        }
        _ => None,
    }
}

/// Adds `ip` and `port` from `address:port` (an IPv6 address may be bracketed) unless the
/// value is absent.
fn put_addr(
    event: &mut Event,
    field: &str,
    ip_name: &str,
    port_name: &str,
    value: &str,
) -> Result<(), RecordError> {
    if is_absent(value) {
        return Ok(());
    }
    let malformed = || RecordError(format!("{field}: expected address:port, found {value:?}"));
    let (ip, port) = value.rsplit_once(':').ok_or_else(malformed)?;
    let ip = ip
        .strip_prefix('[')
        .and_then(|ip| ip.strip_suffix(']'))
        .unwrap_or(ip);
    let port: u16 = port.parse().map_err(|_| malformed())?;
    if ip.is_empty() {
        return Err(malformed());
    }
    event.insert(ip_name.to_owned(), Value::String(ip.to_owned()));
    event.insert(port_name.to_owned(), Value::from(port));
    Ok(())
}

/// Adds the request line and its parts (`<name>_method`, `<name>_url`, `<name>_protocol`).
fn put_request(event: &mut Event, name: &str, value: &str) {
    put_text(event, name, value);
    let line = value.trim();
    let (method, rest) = line.split_once(' ').unwrap_or((line, ""));
    let (url, protocol) = rest.rsplit_once(' ').unwrap_or((rest, ""));
    put_text(event, &format!("{name}_method"), method);
    put_text(event, &format!("{name}_url"), url);
    put_text(event, &format!("{name}_protocol"), protocol);
}

/// The time as an RFC 3339 string, reading a time without an offset (as the NLB writes it)
/// as UTC; `None` when it is not a valid ISO 8601 date and time.
pub(crate) fn utc_time(text: &str) -> Option<Cow<'_, str>> {
    if OffsetDateTime::parse(text, &Rfc3339).is_ok() {
        return Some(Cow::Borrowed(text));
    }
    let with_offset = format!("{text}Z");
    OffsetDateTime::parse(&with_offset, &Rfc3339)
        .is_ok()
        .then_some(Cow::Owned(with_offset))
}

/// A header's field name as an attribute name: lower case, every run of other characters
/// than letters and digits one `_` (`pkt-srcaddr` → `pkt_srcaddr`, `cs(User-Agent)` →
/// `cs_user_agent`).
pub(crate) fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_separator = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_separator && !out.is_empty() {
                out.push('_');
            }
            pending_separator = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_separator = true;
        }
    }
    out
}

/// Splits a space-separated line whose fields may be enclosed in double quotes (a quoted
/// field ends at a quote followed by a space or the end of the line; `\"` and `\\` inside it
/// are a quote and a backslash).
pub(crate) fn split_quoted(line: &str) -> Result<Vec<Cow<'_, str>>, RecordError> {
    let bytes = line.as_bytes();
    let mut fields = Vec::with_capacity(32);
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i >= bytes.len() {
            return Ok(fields);
        }
        if bytes[i] != b'"' {
            let start = i;
            while i < bytes.len() && bytes[i] != b' ' {
                i += 1;
            }
            fields.push(Cow::Borrowed(&line[start..i]));
            continue;
        }
        i += 1;
        let start = i;
        let mut unescaped: Option<String> = None;
        let mut segment = start;
        loop {
            match bytes.get(i) {
                None => {
                    return Err(format!(
                        "field {} has no closing quote (truncated entry?)",
                        fields.len() + 1
                    )
                    .into())
                }
                Some(b'\\') if matches!(bytes.get(i + 1), Some(b'"' | b'\\')) => {
                    let text = unescaped.get_or_insert_with(String::new);
                    text.push_str(&line[segment..i]);
                    text.push(char::from(bytes[i + 1]));
                    i += 2;
                    segment = i;
                }
                Some(b'"') if matches!(bytes.get(i + 1), None | Some(b' ')) => break,
                Some(_) => i += 1,
            }
        }
        fields.push(match unescaped {
            Some(mut text) => {
                text.push_str(&line[segment..i]);
                Cow::Owned(text)
            }
            None => Cow::Borrowed(&line[start..i]),
        });
        i += 1;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Parses `data` and returns its events and stats, asserting success.
    pub(crate) fn parse_all(format: Format, data: &[u8]) -> (Vec<Event>, ParseStats) {
        let mut events = Vec::new();
        let stats = match parse(format, data, &mut |event| events.push(event)) {
            Ok(stats) => stats,
            Err(e) => panic!("parse failed: {e}"),
        };
        assert_eq!(stats.records, events.len() as u64);
        (events, stats)
    }

    #[test]
    fn names_round_trip_and_errors_list_them() {
        for format in Format::ALL {
            assert_eq!(Format::from_name(format.name()), Ok(format));
            assert_eq!(format.to_string().parse::<Format>(), Ok(format));
        }
        assert_eq!(Format::from_name(" VpcFlow "), Ok(Format::VpcFlow));
        assert_eq!(Format::from_name("CLOUDTRAIL"), Ok(Format::CloudTrail));
        let err = Format::from_name("elb").unwrap_err().to_string();
        assert!(err.contains("\"elb\""), "{err}");
        assert!(
            err.contains("alb, nlb, vpcflow, cloudtrail, cloudfront, waf, ndjson, lines"),
            "{err}"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("200"), Some(Value::from(200)));
        assert_eq!(parse_number("-1"), Some(Value::from(-1)));
        assert_eq!(parse_number("0.001"), Some(Value::from(0.001)));
        assert_eq!(parse_number("000"), Some(Value::from(0)));
        assert_eq!(
            parse_number("18446744073709551615"),
            Some(Value::from(u64::MAX))
        );
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("1e999"), None);
        assert_eq!(parse_number("abc"), None);
        assert_eq!(parse_number(""), None);
    }

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("pkt-srcaddr"), "pkt_srcaddr");
        assert_eq!(snake_case("cs(User-Agent)"), "cs_user_agent");
        assert_eq!(snake_case("cs(Host)"), "cs_host");
        assert_eq!(snake_case("x-edge-location"), "x_edge_location");
        assert_eq!(snake_case("${log-status}"), "log_status");
        assert_eq!(snake_case("date"), "date");
    }

    #[test]
    fn quoted_fields() {
        let fields = split_quoted(r#"a "b c"  "" "x \"y\" \\z" "h2","http/1.1" d"#).unwrap();
        assert_eq!(
            fields,
            vec!["a", "b c", "", r#"x "y" \z"#, r#"h2","http/1.1"#, "d"]
        );
        // A quote inside a field that is not followed by a space does not end it.
        let fields = split_quoted(r#""Mozilla/5.0 (compatible;"x") y" z"#).unwrap();
        assert_eq!(fields, vec![r#"Mozilla/5.0 (compatible;"x") y"#, "z"]);
        let err = split_quoted(r#"a "GET http://www.exa"#).unwrap_err().0;
        assert!(err.contains("field 2 has no closing quote"), "{err}");
        assert!(split_quoted("").unwrap().is_empty());
    }

    #[test]
    fn times() {
        assert_eq!(
            utc_time("2018-07-02T22:23:00.186641Z").as_deref(),
            Some("2018-07-02T22:23:00.186641Z")
        );
        assert_eq!(
            utc_time("2018-12-20T02:59:40").as_deref(),
            Some("2018-12-20T02:59:40Z")
        );
        assert_eq!(utc_time("2018-13-20T02:59:40"), None);
        assert_eq!(utc_time("yesterday"), None);
    }

    #[test]
    fn empty_and_blank_files_have_no_records() {
        for format in Format::ALL {
            if format == Format::CloudTrail {
                continue;
            }
            for data in [&b""[..], b"\n", b"\r\n\r\n  \n"] {
                let (events, stats) = parse_all(format, data);
                assert!(events.is_empty(), "{format}");
                assert_eq!(stats, ParseStats::default());
            }
        }
        let err = parse(Format::CloudTrail, b"", &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid CloudTrail log file"), "{err}");
    }

    #[test]
    fn compressed_or_parquet_data_is_refused() {
        let err = parse(Format::Alb, &[0x1f, 0x8b, 8, 0], &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("gzip"), "{err}");
        let err = parse(Format::VpcFlow, b"PAR1\x15\x04", &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("Parquet") && err.contains("vpcflow"), "{err}");
        let err = parse_reader(Format::CloudFront, &b"PAR1\x15\x04"[..], &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("Parquet"), "{err}");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let (events, stats) = parse_all(Format::Lines, b"caf\xC3\xA9 ok\nbad \xFF\xFE byte\n");
        assert_eq!(stats.records, 2);
        assert_eq!(events[0]["message"], "caf\u{e9} ok");
        assert_eq!(events[1]["message"], "bad \u{FFFD}\u{FFFD} byte");
    }

    #[test]
    fn byte_order_mark_is_dropped() {
        let (events, _) = parse_all(Format::Lines, b"\xEF\xBB\xBFfirst\nsecond");
        assert_eq!(events[0]["message"], "first");
        assert_eq!(events[1]["message"], "second");
    }

    #[test]
    fn reader_and_slice_agree() {
        let data: &[u8] = b"\xEF\xBB\xBFversion srcaddr dstaddr start\r\n\
            2 10.0.0.1 10.0.0.2 1418530010\r\n\
            garbage\r\n\
            \r\n\
            2 10.0.0.3 10.0.0.4 1418530070";
        let (from_slice, slice_stats) = parse_all(Format::VpcFlow, data);
        let mut from_reader = Vec::new();
        // A tiny buffer makes lines span several reads.
        let reader = std::io::BufReader::with_capacity(7, data);
        let reader_stats = parse_reader(Format::VpcFlow, reader, &mut |event| {
            from_reader.push(event)
        })
        .unwrap();
        assert_eq!(from_slice, from_reader);
        assert_eq!(slice_stats, reader_stats);
        assert_eq!((slice_stats.records, slice_stats.errors), (3, 1));
        assert_eq!(from_slice[0]["srcaddr"], "10.0.0.1");
        assert_eq!(from_slice[2]["timestamp"], 1418530070);
    }

    #[test]
    fn reader_reads_cloudtrail_whole() {
        let data: &[u8] = br#"{"Records":[{"eventTime":"2014-03-06T21:22:54Z","eventSource":"ec2.amazonaws.com","eventName":"StartInstances"}]}"#;
        let mut events = Vec::new();
        let reader = std::io::BufReader::with_capacity(5, data);
        let stats = parse_reader(Format::CloudTrail, reader, &mut |e| events.push(e)).unwrap();
        assert_eq!(stats.records, 1);
        assert_eq!(events[0]["timestamp"], "2014-03-06T21:22:54Z");
    }

    #[test]
    fn reader_errors_are_reported() {
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("connection reset"))
            }
        }
        let err =
            parse_reader(Format::Lines, std::io::BufReader::new(Failing), &mut |_| {}).unwrap_err();
        assert_eq!(
            sawmill_core::error::report(&err),
            "reading the log file: connection reset"
        );
    }

    #[test]
    fn an_overlong_line_becomes_an_error_event_and_the_next_lines_are_read() {
        let mut data = b"first\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 5000));
        data.extend(b"\nlast\n");
        let mut events = Vec::new();
        let stats = parse_reader(Format::Lines, &data[..], &mut |e| events.push(e)).unwrap();
        assert_eq!(stats.records, 3);
        assert_eq!(stats.errors, 1);
        assert_eq!(events[0]["message"], "first");
        assert_eq!(events[1]["message"].as_str().map(str::len), Some(1024));
        assert!(events[1]["parse_error"]
            .as_str()
            .is_some_and(|e| e.contains("line longer than")));
        assert_eq!(events[2]["message"], "last");
    }
}
