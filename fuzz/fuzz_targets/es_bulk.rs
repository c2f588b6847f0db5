//! `sawmill_protocols::es_bulk::decode` (Elasticsearch `_bulk` bodies) with small limits.
//!
//! Input layout: byte 0 picks whether the URL names a default index, bytes 1-2 the limits
//! (line bytes, fields); the rest is the body.
//!
//! Properties:
//! - a whole-request error names a line of the body;
//! - otherwise there is one item per action, in order; the items that became events point
//!   at each event once, in order; `rejected` counts the failed items and the listed errors
//!   have increasing line numbers;
//! - every event keeps the `Event` invariant and round-trips through its JSON (the WAL
//!   depends on that), carries its item's index as the `index` attribute and its `_id`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sawmill_core::{Event, Limits, ParseContext, MAX_LISTED_ERRORS};
use sawmill_protocols::es_bulk::{decode, BulkError, Outcome};

fn check_round_trip(e: &Event) {
    assert!(!e.attributes.contains_key("timestamp"), "{e:?}");
    assert!(!e.attributes.contains_key("message"), "{e:?}");
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
    let Some((head, body)) = data.split_first_chunk::<3>() else {
        return;
    };
    let default_index = (head[0] & 1 != 0).then_some("url-index");
    let ctx = ParseContext {
        received_at: 1_764_230_400_000_000_000,
        default_source: None,
        limits: Limits {
            max_line_bytes: 1 + usize::from(head[1]) * 4,
            max_fields: usize::from(head[2] % 64),
            ..Limits::default()
        },
    };
    let lines = body.split(|&b| b == b'\n').count();
    let bulk = match decode(body, default_index, &ctx) {
        Ok(b) => b,
        Err(BulkError::Empty) => return,
        Err(BulkError::Malformed { line, problem }) => {
            assert!(
                line >= 1 && line <= lines,
                "line {line} of {lines}: {problem}"
            );
            return;
        }
    };
    assert!(!bulk.items.is_empty());
    let mut next = 0;
    let mut failed = 0;
    for item in &bulk.items {
        match &item.outcome {
            Outcome::Event(pos) => {
                assert_eq!(*pos, next, "events out of order");
                let event = &bulk.parsed.events[*pos];
                check_round_trip(event);
                if let Some(i) = &item.index {
                    assert_eq!(event.attributes.get("index"), Some(&i.as_str().into()));
                }
                if let Some(id) = &item.id {
                    assert_eq!(event.attributes.get("_id"), Some(&id.as_str().into()));
                }
                next += 1;
            }
            Outcome::Failed { status, reason, .. } => {
                assert_eq!(*status, 400);
                assert!(!reason.is_empty());
                failed += 1;
            }
            Outcome::Duplicate => panic!("the decoder never decides duplicates"),
        }
    }
    assert_eq!(next, bulk.parsed.events.len());
    assert_eq!(failed, bulk.parsed.rejected);
    assert_eq!(bulk.parsed.errors.len(), failed.min(MAX_LISTED_ERRORS));
    assert!(bulk.parsed.errors.windows(2).all(|w| w[0].line < w[1].line));
});
