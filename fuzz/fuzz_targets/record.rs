//! `sawmill_core::record`: decoding a WAL record payload (header and NDJSON events), and
//! `Event::from_normalized_json` on its lines.
//!
//! Input layout: byte 0 picks the mode; the rest is either a raw payload or the material of
//! a payload built here.
//!
//! Raw mode (arbitrary bytes as a payload):
//! - `RecordHeader::decode` either fails or returns an offset within the payload, and
//!   encoding the decoded header gives back exactly the bytes before that offset;
//! - `decode_events` agrees with `RecordHeader::decode`, yields one event per non-empty
//!   line of `event_lines`, and every event it yields round-trips through `write_json`;
//! - `event_lines` offsets point at their lines.
//!
//! Built mode (a header and events made from the input, encoded as the server does):
//! - `decode_events` gives back exactly that header and those events;
//! - `line_timestamp` of every line is the event's timestamp.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sawmill_core::record::{decode_events, event_lines, line_timestamp, RecordHeader};
use sawmill_core::{parse_body, BodyFormat, Event, ParseContext};

fn raw(payload: &[u8]) {
    let header = RecordHeader::decode(payload);
    let events = decode_events(payload);
    match (&header, &events) {
        (Err(_), Err(_)) => return,
        (Err(e), Ok(_)) => panic!("decode_events accepted a payload whose header fails: {e}"),
        (Ok((h, _)), Ok((h2, _))) => assert_eq!(h, h2),
        (Ok(_), Err(_)) => {}
    }
    let Ok((h, start)) = header else { return };
    assert!(start <= payload.len());
    let mut encoded = Vec::new();
    h.encode(&mut encoded);
    assert_eq!(&encoded[..], &payload[..start], "header does not re-encode");

    let lines: Vec<(&[u8], usize)> = event_lines(payload, start).collect();
    for (line, offset) in &lines {
        assert!(!line.is_empty());
        assert_eq!(&payload[*offset..*offset + line.len()], *line);
        assert!(*offset >= start);
    }
    if let Ok((_, events)) = events {
        assert_eq!(events.len(), lines.len());
        for e in &events {
            let mut json = Vec::new();
            e.write_json(&mut json);
            let back = Event::from_normalized_json(&json).expect("write_json is read back");
            assert_eq!(&back, e);
        }
    }
    for (line, _) in &lines {
        let _ = line_timestamp(line);
    }
}

fn built(control: u8, data: &[u8]) {
    // Material: tenant (up to 16 bytes), key (up to 16 bytes), answer, then an NDJSON body.
    let take = |data: &mut &[u8], n: usize| {
        let (a, b) = data.split_at(n.min(data.len()));
        *data = b;
        String::from_utf8_lossy(a).into_owned()
    };
    let mut rest = data;
    let tenant = take(&mut rest, usize::from(control & 15));
    let key = take(&mut rest, usize::from(control >> 4));
    let answer_len = rest.first().map_or(0, |&b| usize::from(b % 32));
    rest = rest.get(1..).unwrap_or_default();
    let answer = take(&mut rest, answer_len).into_bytes();
    let received_at = i64::from(control) * 1_000_000_007;
    let header = RecordHeader {
        tenant,
        received_at,
        idempotency_key: (!key.is_empty()).then_some(key),
        answer,
    };
    let events: Vec<Event> =
        parse_body(rest, BodyFormat::Ndjson, &ParseContext::new(received_at)).events;

    let mut payload = Vec::new();
    header.encode(&mut payload);
    for e in &events {
        e.write_json(&mut payload);
        payload.push(b'\n');
    }
    let (h, decoded) = decode_events(&payload).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h, header);
    assert_eq!(decoded, events);
    let (_, start) = RecordHeader::decode(&payload).expect("header");
    let stamps: Vec<Option<i64>> = event_lines(&payload, start)
        .map(|(l, _)| line_timestamp(l))
        .collect();
    let want: Vec<Option<i64>> = events.iter().map(|e| Some(e.timestamp)).collect();
    assert_eq!(stamps, want);
    raw(&payload);
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    if control & 1 == 0 {
        raw(rest);
    } else if let Some((&c2, rest)) = rest.split_first() {
        built(c2, rest);
    }
});
