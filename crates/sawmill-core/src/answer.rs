//! The answer to an ingest request, as the server sends it and every client reads it:
//! `{"accepted":N,"rejected":M,"errors":[{"line":L,"error":"…"}]}`.
//!
//! The same bytes are stored with the events in the WAL record, so a retried request with the
//! same `Idempotency-Key` is answered exactly as the first time.

use crate::parse::LineError;
use serde::{Deserialize, Serialize};

/// What became of the events of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestAnswer {
    /// Events made durable.
    pub accepted: u64,
    /// Lines (or records) refused one by one.
    pub rejected: u64,
    /// The first refusals, at most [`crate::MAX_LISTED_ERRORS`].
    #[serde(default)]
    pub errors: Vec<LineError>,
    /// `false` when `refresh=wait_for` gave up waiting: the events are durable and will
    /// become searchable. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub searchable: Option<bool>,
    /// The WAL sequence number of the first accepted event (the others follow it in order),
    /// for protocols whose answers name each event. Not part of the wire shape.
    #[serde(skip)]
    pub first_seq: Option<u64>,
}

impl IngestAnswer {
    /// The answer as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // a struct of numbers, strings and a list of them always serializes
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_shape_is_stable() {
        let answer = IngestAnswer {
            accepted: 2,
            rejected: 1,
            errors: vec![LineError {
                line: 3,
                error: "invalid JSON".into(),
            }],
            searchable: None,
            first_seq: Some(7),
        };
        let json = String::from_utf8(answer.to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"accepted":2,"rejected":1,"errors":[{"line":3,"error":"invalid JSON"}]}"#
        );
        let back = serde_json::from_str::<IngestAnswer>(&json).unwrap();
        assert_eq!(back.first_seq, None);
        assert_eq!(
            back,
            IngestAnswer {
                first_seq: None,
                ..answer
            }
        );
        let minimal: IngestAnswer = serde_json::from_str(r#"{"accepted":1,"rejected":0}"#).unwrap();
        assert!(minimal.errors.is_empty());
    }
}
