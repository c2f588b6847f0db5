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
//! On the hot path each event is turned into its tantivy document on the request's thread, so
//! the indexer never parses an event again; after a restart [`Batch::decode`] rebuilds the
//! documents from the payload.

use sawmill_core::Event;
use sawmill_index::schema::{to_document, Fields};
use tantivy::TantivyDocument;

const VERSION: u8 = 1;

/// The metadata of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub tenant: String,
    pub received_at: i64,
    pub idempotency_key: Option<String>,
    pub answer: Vec<u8>,
}

/// One request's events: the encoded WAL payload and each event's index document with its
/// timestamp.
pub struct Batch {
    pub header: BatchHeader,
    /// The encoded WAL payload.
    pub payload: Vec<u8>,
    pub docs: Vec<(i64, TantivyDocument)>,
}

/// A payload that cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[error("batch payload is corrupt: {0}")]
pub struct BatchError(String);

impl Batch {
    /// Encodes `events` behind `header` and builds their documents.
    pub fn encode(header: BatchHeader, events: Vec<Event>, fields: &Fields) -> Batch {
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
        let mut docs = Vec::with_capacity(events.len());
        for event in events {
            let start = payload.len();
            event.write_json(&mut payload);
            let doc = to_document(fields, &header.tenant, &event, &payload[start..]);
            docs.push((event.timestamp, doc));
            payload.push(b'\n');
        }
        Batch {
            header,
            payload,
            docs,
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

    /// The events of a payload.
    pub fn decode_events(payload: &[u8]) -> Result<(BatchHeader, Vec<Event>), BatchError> {
        let (header, body_start) = Batch::decode_header(payload)?;
        let mut events = Vec::new();
        for (line, start) in lines(payload, body_start) {
            let event = Event::from_normalized_json(line)
                .map_err(|e| BatchError(format!("event at byte {start}: {e}")))?;
            events.push(event);
        }
        Ok((header, events))
    }

    /// Rebuilds a batch, documents included, from its payload.
    pub fn decode(payload: Vec<u8>, fields: &Fields) -> Result<Batch, BatchError> {
        let (header, body_start) = Batch::decode_header(&payload)?;
        let mut docs = Vec::new();
        for (line, start) in lines(&payload, body_start) {
            let event = Event::from_normalized_json(line)
                .map_err(|e| BatchError(format!("event at byte {start}: {e}")))?;
            docs.push((
                event.timestamp,
                to_document(fields, &header.tenant, &event, line),
            ));
        }
        Ok(Batch {
            header,
            payload,
            docs,
        })
    }
}

/// The lines of the NDJSON part of a payload, with their offsets.
fn lines(payload: &[u8], from: usize) -> impl Iterator<Item = (&[u8], usize)> {
    let body = payload.get(from..).unwrap_or_default();
    let mut offset = from;
    body.split(|&b| b == b'\n').filter_map(move |line| {
        let start = offset;
        offset += line.len() + 1;
        (!line.is_empty()).then_some((line, start))
    })
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
        let events = vec![event(1_000_000_000, "a"), event(2_000_000_000, "b\nc")];
        let fields = sawmill_index::schema::build_schema().1;
        let batch = Batch::encode(header.clone(), events.clone(), &fields);
        assert_eq!(batch.docs.len(), 2);
        let (decoded_header, decoded) = Batch::decode_events(&batch.payload).unwrap();
        assert_eq!(decoded_header, header);
        assert_eq!(decoded, events);
        let rebuilt = Batch::decode(batch.payload.clone(), &fields).unwrap();
        assert_eq!(rebuilt.docs.len(), 2);
        assert_eq!(rebuilt.docs[1].0, 2_000_000_000);
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
            &sawmill_index::schema::build_schema().1,
        );
        for cut in 0..10 {
            assert!(Batch::decode_header(&batch.payload[..cut]).is_err());
        }
    }
}
