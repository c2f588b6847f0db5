//! `sawmill_core::parse_body` (NDJSON and text bodies) with small limits, which covers line
//! splitting, the field/depth budget and the normalization of events and their timestamps.
//!
//! Input layout: byte 0 picks the format and whether there is a default source, bytes 1-3
//! the limits (line bytes, fields, depth), bytes 4-11 `received_at`; the rest is the body.
//!
//! Properties:
//! - accepted + rejected == the number of lines that are not blank (after the BOM, `\n`
//!   split, one trailing `\r` dropped);
//! - the listed errors are the first `min(rejected, MAX_LISTED_ERRORS)` ones, with strictly
//!   increasing 1-based line numbers that point at non-blank lines;
//! - `bytes` is the body's length;
//! - text: every valid-UTF-8 line within the line limit is accepted, verbatim, at
//!   `received_at`, with the default source; every other non-blank line is rejected;
//! - NDJSON: every event keeps the invariant `Event` documents (no `timestamp`/`message`
//!   attribute; a `level`/`service`/`host`/`source` attribute only when the field is absent
//!   and the attribute is not a string), and `Event::from_normalized_json` of its
//!   `write_json` gives the same event back (the WAL and the archive depend on that);
//! - timestamps of NDJSON events that carry their own are in 1970..2262 (non-negative);
//! - a line the parser accepted alone is accepted by `parse_json_line` with the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sawmill_core::{
    parse_body, parse_json_line, BodyFormat, Event, Limits, ParseContext, MAX_LISTED_ERRORS,
};

fn check_invariant(e: &Event) {
    assert!(!e.attributes.contains_key("timestamp"), "{e:?}");
    assert!(!e.attributes.contains_key("message"), "{e:?}");
    for (name, field) in [
        ("level", &e.level),
        ("service", &e.service),
        ("host", &e.host),
        ("source", &e.source),
    ] {
        if let Some(v) = e.attributes.get(name) {
            assert!(
                field.is_none(),
                "{name} is both a field and an attribute: {e:?}"
            );
            assert!(!v.is_string(), "{name} attribute is a string: {e:?}");
        }
    }
}

fn check_round_trip(e: &Event) {
    let mut json = Vec::new();
    e.write_json(&mut json);
    let back = Event::from_normalized_json(&json).unwrap_or_else(|err| {
        panic!(
            "write_json output is not read back ({err}): {}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(&back, e, "round trip of {}", String::from_utf8_lossy(&json));
}

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<12>() else {
        return;
    };
    let format = if head[0] & 1 == 0 {
        BodyFormat::Ndjson
    } else {
        BodyFormat::Text
    };
    let mut received = [0u8; 8];
    received.copy_from_slice(&head[4..12]);
    // Clear the sign bit: the server's clock is past 1970.
    let received_at = i64::from_le_bytes(received) & i64::MAX;
    let ctx = ParseContext {
        received_at,
        default_source: (head[0] & 2 != 0).then(|| "fuzz-source".to_owned()),
        limits: Limits {
            max_line_bytes: 1 + usize::from(head[1]) * 4,
            max_fields: usize::from(head[2] % 64),
            max_depth: usize::from(head[3] % 12),
            ..Limits::default()
        },
    };

    let parsed = parse_body(body, format, &ctx);
    assert_eq!(parsed.bytes, body.len());

    let stripped = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let lines: Vec<&[u8]> = stripped
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    let is_blank = |l: &[u8]| l.iter().all(u8::is_ascii_whitespace);
    let non_blank = lines.iter().filter(|l| !is_blank(l)).count();
    assert_eq!(
        parsed.events.len() + parsed.rejected,
        non_blank,
        "accepted + rejected != non-blank lines"
    );
    assert_eq!(parsed.errors.len(), parsed.rejected.min(MAX_LISTED_ERRORS));
    let mut last = 0;
    for e in &parsed.errors {
        assert!(
            e.line > last,
            "error lines out of order: {:?}",
            parsed.errors
        );
        assert!(e.line <= lines.len(), "error line {} past the end", e.line);
        assert!(
            !is_blank(lines[e.line - 1]),
            "error on a blank line {}",
            e.line
        );
        assert!(!e.error.is_empty());
        last = e.line;
    }

    match format {
        BodyFormat::Text => {
            let expected: Vec<&str> = lines
                .iter()
                .filter(|l| !is_blank(l) && l.len() <= ctx.limits.max_line_bytes)
                .filter_map(|l| std::str::from_utf8(l).ok())
                .collect();
            let got: Vec<&str> = parsed.events.iter().map(|e| e.message.as_str()).collect();
            assert_eq!(got, expected, "text lines");
            for e in &parsed.events {
                assert_eq!(e.timestamp, received_at);
                assert_eq!(e.source, ctx.default_source);
                assert!(e.level.is_none() && e.attributes.is_empty());
            }
        }
        BodyFormat::Ndjson => {
            for e in &parsed.events {
                check_invariant(e);
                check_round_trip(e);
                assert!(e.timestamp >= 0, "event before 1970: {e:?}");
            }
            // Line by line, the accepted lines give the same events.
            let mut events = parsed.events.iter();
            for line in lines.iter().filter(|l| !is_blank(l)) {
                if line.len() > ctx.limits.max_line_bytes {
                    continue;
                }
                let Ok(text) = std::str::from_utf8(line) else {
                    continue;
                };
                if let Ok(alone) = parse_json_line(text, &ctx) {
                    let in_body = events.next().expect("fewer events than accepted lines");
                    assert_eq!(&alone, in_body);
                }
            }
            assert!(events.next().is_none(), "more events than accepted lines");
        }
    }
});
