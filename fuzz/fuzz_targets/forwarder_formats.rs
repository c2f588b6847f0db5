//! `sawmill_forwarder::formats`: the S3 log-file parsers (ALB, NLB, VPC flow logs,
//! CloudTrail, CloudFront, WAF, NDJSON, lines) and format detection, over arbitrary bytes.
//!
//! Input layout: byte 0 picks the format (mod 8), byte 1 the read buffer size of the
//! streaming parser and a key shape for `Format::detect`; the rest is the (decompressed)
//! object.
//!
//! Properties:
//! - `parse` (whole object) and `parse_reader` (streamed through a small `BufReader`) give
//!   the same result: the same error, or the same events and stats;
//! - `records` counts the emitted events and `errors <= records`; at least `errors` events
//!   carry a `parse_error`;
//! - the line formats (ALB, NLB, VPC flow, CloudFront, lines) give every event a string
//!   `message` (the raw line, or a summary);
//! - `lines`: one event per non-blank line, whose message is the line, and no errors;
//! - every event serializes to JSON;
//! - `Format::detect` never panics, and the detected format parses the object too.
#![no_main]

use std::io::BufReader;

use libfuzzer_sys::fuzz_target;
use sawmill_forwarder::formats::{parse, parse_reader, Event, Format, ParseStats};

/// The result with its error as text (its `Debug` form: the error and all its causes).
fn run(format: Format, data: &[u8]) -> (Result<ParseStats, String>, Vec<Event>) {
    let mut events = Vec::new();
    let result = parse(format, data, &mut |e| events.push(e)).map_err(|e| format!("{e:?}"));
    (result, events)
}

fn check(format: Format, data: &[u8], buffer: usize) {
    let (whole, events) = run(format, data);
    let mut streamed_events = Vec::new();
    let streamed = parse_reader(format, BufReader::with_capacity(buffer, data), &mut |e| {
        streamed_events.push(e)
    })
    .map_err(|e| format!("{e:?}"));
    assert_eq!(whole, streamed, "{format}: parse and parse_reader disagree");
    assert_eq!(
        events, streamed_events,
        "{format}: parse and parse_reader events differ"
    );

    let Ok(stats) = whole else {
        assert!(
            events.is_empty(),
            "{format}: events emitted for a refused object"
        );
        return;
    };
    assert_eq!(
        stats.records,
        events.len() as u64,
        "{format}: records != events"
    );
    assert!(stats.errors <= stats.records);
    let flagged = events
        .iter()
        .filter(|e| e.contains_key("parse_error"))
        .count() as u64;
    assert!(
        flagged >= stats.errors,
        "{format}: {flagged} parse_error events < {stats:?}"
    );
    for e in &events {
        serde_json::to_vec(e).expect("an event serializes");
    }
    if matches!(
        format,
        Format::Alb | Format::Nlb | Format::VpcFlow | Format::CloudFront | Format::Lines
    ) {
        for e in &events {
            assert!(
                e.get("message").is_some_and(|m| m.is_string()),
                "{format}: event without a string message: {e:?}"
            );
        }
    }
    if format == Format::Lines {
        let body = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
        let expected: Vec<String> = body
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .filter(|l| !l.trim().is_empty())
            .collect();
        let got: Vec<&str> = events
            .iter()
            .map(|e| e["message"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(got, expected, "lines");
        assert_eq!(stats.errors, 0);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[pick, shape], object)) = data.split_first_chunk::<2>() else {
        return;
    };
    let format = Format::ALL[usize::from(pick % 8)];
    // Large enough for the BOM + "PAR1" / gzip magic checks on the first buffer.
    let buffer = 8 + usize::from(shape & 0x3f);
    check(format, object, buffer);

    let key = match shape >> 6 {
        0 => String::new(),
        1 => "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/01/01/x.log.gz".into(),
        2 => "logs/E2ABCDEF123456.2026-01-01-00.abcdef12.gz".into(),
        _ => String::from_utf8_lossy(&object[..object.len().min(96)]).into_owned(),
    };
    let detected = Format::detect(&key, &object[..object.len().min(4096)]);
    if detected != format {
        check(detected, object, buffer);
    }
});
