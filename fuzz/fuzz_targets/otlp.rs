//! `sawmill_protocols::otlp::decode_logs` on protobuf and OTLP/JSON bodies with small limits,
//! and the answers it leads to.
//!
//! Input layout: byte 0 picks the format (even: protobuf, odd: JSON), bytes 1-3 the limits
//! (line bytes, fields, depth); the rest is the body.
//!
//! Properties:
//! - nothing panics, whatever the body;
//! - `bytes` is the body's length; the listed errors are the first
//!   `min(rejected, MAX_LISTED_ERRORS)`, with strictly increasing record numbers from 1;
//! - protobuf: accepted + rejected == the records of the request as prost decodes it;
//! - every event keeps the invariant `Event` documents (no `timestamp`/`message` attribute;
//!   a `level`/`service`/`host`/`source` attribute only when the field is absent and the
//!   attribute is not a string) and round-trips through `write_json`/`from_normalized_json`;
//! - JSON that the crate's serde reads gives the same events as the same request in
//!   protobuf (the two encodings decode alike);
//! - the `ExportLogsServiceResponse` for the outcome decodes back to the rejected count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use sawmill_core::{Event, Limits, ParseContext, MAX_LISTED_ERRORS};
use sawmill_protocols::otlp::{decode_logs, encode_response, Format};

fn check_event(e: &Event) {
    assert!(!e.attributes.contains_key("timestamp"), "{e:?}");
    assert!(!e.attributes.contains_key("message"), "{e:?}");
    for (name, field) in [
        ("level", &e.level),
        ("service", &e.service),
        ("host", &e.host),
        ("source", &e.source),
    ] {
        if let Some(v) = e.attributes.get(name) {
            assert!(field.is_none(), "{name} is a field and an attribute: {e:?}");
            assert!(!v.is_string(), "{name} attribute is a string: {e:?}");
        }
    }
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

fn records(request: &ExportLogsServiceRequest) -> usize {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum()
}

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let format = if head[0] & 1 == 0 {
        Format::Protobuf
    } else {
        Format::Json
    };
    let ctx = ParseContext {
        received_at: 1_700_000_000_000_000_000,
        default_source: None,
        limits: Limits {
            max_line_bytes: 1 + usize::from(head[1]) * 8,
            max_fields: usize::from(head[2] % 64),
            max_depth: usize::from(head[3] % 12),
            max_decompressed_bytes: 64 << 10,
            ..Limits::default()
        },
    };
    let Ok(parsed) = decode_logs(body, format, &ctx) else {
        return;
    };
    assert_eq!(parsed.bytes, body.len());
    assert_eq!(parsed.errors.len(), parsed.rejected.min(MAX_LISTED_ERRORS));
    let mut last = 0;
    for e in &parsed.errors {
        assert!(
            e.line > last,
            "record numbers out of order: {:?}",
            parsed.errors
        );
        assert!(!e.error.is_empty());
        last = e.line;
    }
    parsed.events.iter().for_each(check_event);

    match format {
        Format::Protobuf => {
            let request = ExportLogsServiceRequest::decode(body).expect("decoded once already");
            assert_eq!(parsed.events.len() + parsed.rejected, records(&request));
        }
        Format::Json => {
            if let Ok(request) = serde_json::from_slice::<ExportLogsServiceRequest>(body) {
                let proto = request.encode_to_vec();
                let again = decode_logs(&proto, Format::Protobuf, &ctx)
                    .expect("a request read from JSON encodes to valid protobuf");
                assert_eq!(again.events, parsed.events, "JSON and protobuf disagree");
                assert_eq!(again.rejected, parsed.rejected);
            }
        }
    }

    let answer = encode_response(parsed.rejected as u64, &parsed.errors, Format::Protobuf);
    let response = ExportLogsServiceResponse::decode(&answer[..]).expect("our own answer");
    let rejected = response
        .partial_success
        .map_or(0, |p| p.rejected_log_records);
    assert_eq!(rejected as usize, parsed.rejected);
    let json = encode_response(parsed.rejected as u64, &parsed.errors, Format::Json);
    assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok());
});
