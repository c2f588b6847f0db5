//! The ingest batch: the events of one request as they are written to the WAL.
//!
//! A WAL record's payload is a small binary header followed by the events as NDJSON, each
//! line the normalized event exactly as a search hit and an archive line show it:
//!
//! ```text
//! u8  version (1)
//! u16 tenant length, tenant (UTF-8)
//! i64 received_at (ns since the epoch)
//! u16 idempotency key length, key (UTF-8; 0 = none)
//! u32 answer length, answer (the JSON answered to the client; 0 = none)
//! NDJSON of the normalized events, one per line
//! ```
//!
//! On the hot path the parsed events travel beside the payload, so consumers never parse
//! them again; after a restart [`Batch::decode`] rebuilds them from the payload.

use sawmill_core::Event;
use std::ops::Range;

const VERSION: u8 = 1;

/// The metadata of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub tenant: String,
    pub received_at: i64,
    pub idempotency_key: Option<String>,
    pub answer: Vec<u8>,
}

/// One request's events with their encoded payload.
#[derive(Debug)]
pub struct Batch {
    pub header: BatchHeader,
    pub events: Vec<Event>,
    /// The encoded WAL payload.
    pub payload: Vec<u8>,
    /// Where each event's JSON lies in `payload` (without the newline).
    pub spans: Vec<Range<usize>>,
}

/// A payload that cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[error("batch payload is corrupt: {0}")]
pub struct BatchError(String);

impl Batch {
    /// Encodes `events` behind `header`.
    pub fn encode(header: BatchHeader, events: Vec<Event>) -> Batch {
        let mut payload = Vec::with_capacity(64 + events.len() * 256);
        payload.push(VERSION);
        put_str16(&mut payload, &header.tenant);
        payload.extend_from_slice(&header.received_at.to_le_bytes());
        put_str16(
            &mut payload,
            header.idempotency_key.as_deref().unwrap_or(""),
        );
        payload.extend_from_slice(&(header.answer.len() as u32).to_le_bytes());
        payload.extend_from_slice(&header.answer);
        let mut spans = Vec::with_capacity(events.len());
        for event in &events {
            let start = payload.len();
            event.write_json(&mut payload);
            spans.push(start..payload.len());
            payload.push(b'\n');
        }
        Batch {
            header,
            events,
            payload,
            spans,
        }
    }

    /// Decodes only the header of a payload.
    pub fn decode_header(payload: &[u8]) -> Result<(BatchHeader, usize), BatchError> {
        let mut r = Reader {
            buf: payload,
            pos: 0,
        };
        let version = r.u8()?;
        if version != VERSION {
            return Err(BatchError(format!("unknown batch version {version}")));
        }
        let tenant = r.str16()?;
        let received_at = i64::from_le_bytes(r.array::<8>()?);
        let key = r.str16()?;
        let answer_len = u32::from_le_bytes(r.array::<4>()?) as usize;
        let answer = r.take(answer_len)?.to_vec();
        Ok((
            BatchHeader {
                tenant,
                received_at,
                idempotency_key: (!key.is_empty()).then_some(key),
                answer,
            },
            r.pos,
        ))
    }

    /// Rebuilds a batch, events included, from its payload.
    pub fn decode(payload: Vec<u8>) -> Result<Batch, BatchError> {
        let (header, body_start) = Batch::decode_header(&payload)?;
        let mut events = Vec::new();
        let mut spans = Vec::new();
        let mut pos = body_start;
        while pos < payload.len() {
            let end = payload[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| pos + i)
                .unwrap_or(payload.len());
            let event = Event::from_normalized_json(&payload[pos..end])
                .map_err(|e| BatchError(format!("event at byte {pos}: {e}")))?;
            events.push(event);
            spans.push(pos..end);
            pos = end + 1;
        }
        Ok(Batch {
            header,
            events,
            payload,
            spans,
        })
    }

    /// The normalized JSON of event `i`.
    pub fn json(&self, i: usize) -> &[u8] {
        self.spans
            .get(i)
            .and_then(|s| self.payload.get(s.clone()))
            .unwrap_or_default()
    }
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    // callers bound tenants and keys far below 64 KiB
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BatchError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| BatchError(format!("header truncated at byte {}", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, BatchError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BatchError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn str16(&mut self) -> Result<String, BatchError> {
        let len = u16::from_le_bytes(self.array::<2>()?) as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| BatchError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ts: i64, msg: &str) -> Event {
        let mut attributes = serde_json::Map::new();
        attributes.insert("status".into(), serde_json::json!(500));
        Event {
            timestamp: ts,
            message: msg.into(),
            level: Some("ERROR".into()),
            service: Some("web".into()),
            host: None,
            source: None,
            attributes,
        }
    }

    #[test]
    fn round_trip() {
        let header = BatchHeader {
            tenant: "acme".into(),
            received_at: 42,
            idempotency_key: Some("k-1".into()),
            answer: br#"{"accepted":2}"#.to_vec(),
        };
        let batch = Batch::encode(
            header.clone(),
            vec![event(1_000_000_000, "a"), event(2_000_000_000, "b\nc")],
        );
        let decoded = Batch::decode(batch.payload.clone()).unwrap();
        assert_eq!(decoded.header, header);
        assert_eq!(decoded.events, batch.events);
        assert_eq!(decoded.json(1), batch.json(1));
    }

    #[test]
    fn truncated_header_is_an_error() {
        let batch = Batch::encode(
            BatchHeader {
                tenant: "t".into(),
                received_at: 0,
                idempotency_key: None,
                answer: Vec::new(),
            },
            vec![event(0, "x")],
        );
        for cut in 0..10 {
            assert!(Batch::decode_header(&batch.payload[..cut]).is_err());
        }
    }
}
