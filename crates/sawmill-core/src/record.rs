//! The payload of a WAL record: the accepted events of one ingest request.
//!
//! A small binary header followed by the events as NDJSON, each line the normalized event
//! exactly as a search hit and an archive line show it ([`Event::write_json`]):
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
//! Every consumer of the WAL (the index, the archive) reads records through this module.

use crate::event::Event;

const VERSION: u8 = 1;

/// The metadata of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub tenant: String,
    pub received_at: i64,
    pub idempotency_key: Option<String>,
    /// The answer sent to the client, replayed for a retry with the same idempotency key.
    pub answer: Vec<u8>,
}

/// A payload that cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[error("wal record payload is corrupt: {0}")]
pub struct RecordError(String);

impl RecordError {
    pub fn new(message: impl Into<String>) -> RecordError {
        RecordError(message.into())
    }
}

impl RecordHeader {
    /// Writes the header; the events' NDJSON follows it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        put_str16(out, &self.tenant);
        out.extend_from_slice(&self.received_at.to_le_bytes());
        put_str16(out, self.idempotency_key.as_deref().unwrap_or(""));
        out.extend_from_slice(&(self.answer.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.answer);
    }

    /// Reads the header of a payload; returns it and where the NDJSON starts.
    pub fn decode(payload: &[u8]) -> Result<(RecordHeader, usize), RecordError> {
        let mut r = Reader {
            buf: payload,
            pos: 0,
        };
        let version = r.u8()?;
        if version != VERSION {
            return Err(RecordError(format!("unknown record version {version}")));
        }
        let tenant = r.str16()?;
        let received_at = i64::from_le_bytes(r.array::<8>()?);
        let key = r.str16()?;
        let answer_len = u32::from_le_bytes(r.array::<4>()?) as usize;
        let answer = r.take(answer_len)?.to_vec();
        Ok((
            RecordHeader {
                tenant,
                received_at,
                idempotency_key: (!key.is_empty()).then_some(key),
                answer,
            },
            r.pos,
        ))
    }
}

/// The event lines of a payload whose NDJSON starts at `from`, each with its byte offset.
pub fn event_lines(payload: &[u8], from: usize) -> impl Iterator<Item = (&[u8], usize)> {
    let body = payload.get(from..).unwrap_or_default();
    let mut offset = from;
    body.split(|&b| b == b'\n').filter_map(move |line| {
        let start = offset;
        offset += line.len() + 1;
        (!line.is_empty()).then_some((line, start))
    })
}

/// Decodes every event of a payload.
pub fn decode_events(payload: &[u8]) -> Result<(RecordHeader, Vec<Event>), RecordError> {
    let (header, body) = RecordHeader::decode(payload)?;
    let mut events = Vec::new();
    for (line, start) in event_lines(payload, body) {
        let event = Event::from_normalized_json(line)
            .map_err(|e| RecordError(format!("event at byte {start}: {e}")))?;
        events.push(event);
    }
    Ok((header, events))
}

/// The timestamp (ns) of a normalized event line, read from its leading `"timestamp"` field
/// without parsing the rest of the line.
pub fn line_timestamp(line: &[u8]) -> Option<i64> {
    const PREFIX: &[u8] = b"{\"timestamp\":\"";
    let rest = line.strip_prefix(PREFIX)?;
    let end = rest.iter().position(|&b| b == b'"')?;
    crate::time::parse_rfc3339(std::str::from_utf8(&rest[..end]).ok()?)
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
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| RecordError(format!("header truncated at byte {}", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn str16(&mut self) -> Result<String, RecordError> {
        let len = u16::from_le_bytes(self.array::<2>()?) as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| RecordError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ts: i64, msg: &str) -> Event {
        let mut e = Event::new(ts, msg);
        e.attributes.insert("status".into(), serde_json::json!(500));
        e
    }

    fn payload(header: &RecordHeader, events: &[Event]) -> Vec<u8> {
        let mut out = Vec::new();
        header.encode(&mut out);
        for e in events {
            e.write_json(&mut out);
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn round_trip() {
        let header = RecordHeader {
            tenant: "acme".into(),
            received_at: 42,
            idempotency_key: Some("k-1".into()),
            answer: br#"{"accepted":2}"#.to_vec(),
        };
        let events = vec![event(1_000_000_000, "a"), event(2_000_000_123, "b\nc")];
        let p = payload(&header, &events);
        let (h, decoded) = decode_events(&p).unwrap();
        assert_eq!(h, header);
        assert_eq!(decoded, events);
        let (_, start) = RecordHeader::decode(&p).unwrap();
        let stamps: Vec<_> = event_lines(&p, start)
            .map(|(l, _)| line_timestamp(l))
            .collect();
        assert_eq!(stamps, vec![Some(1_000_000_000), Some(2_000_000_123)]);
    }

    #[test]
    fn truncated_header_is_an_error() {
        let header = RecordHeader {
            tenant: "t".into(),
            received_at: 0,
            idempotency_key: None,
            answer: Vec::new(),
        };
        let p = payload(&header, &[event(0, "x")]);
        for cut in 0..10 {
            assert!(RecordHeader::decode(&p[..cut]).is_err());
        }
        assert!(line_timestamp(b"{\"message\":\"x\"}").is_none());
    }
}
