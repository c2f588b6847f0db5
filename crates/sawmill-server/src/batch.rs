//! The ingest batch: the events of one request as they go to the WAL and to the indexer.
//!
//! The WAL payload format lives in [`sawmill_core::record`]. On the hot path each event is
//! also turned into its tantivy document on the request's thread, so the indexer never parses
//! an event again; after a restart [`Batch::decode`] rebuilds the documents from the payload.

use sawmill_core::record::{event_lines, RecordError, RecordHeader};
use sawmill_core::Event;
use sawmill_index::schema::{to_document, Fields};
use tantivy::TantivyDocument;

/// One request's events: the encoded WAL payload and each event's index document with its
/// timestamp.
pub struct Batch {
    pub header: RecordHeader,
    /// The encoded WAL payload.
    pub payload: Vec<u8>,
    pub docs: Vec<(i64, TantivyDocument)>,
}

impl Batch {
    /// Encodes `events` behind `header` and builds their documents.
    pub fn encode(header: RecordHeader, events: Vec<Event>, fields: &Fields) -> Batch {
        let mut payload = Vec::with_capacity(64 + events.len() * 256);
        header.encode(&mut payload);
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

    /// Rebuilds a batch, documents included, from its payload.
    pub fn decode(payload: Vec<u8>, fields: &Fields) -> Result<Batch, RecordError> {
        let (header, body) = RecordHeader::decode(&payload)?;
        let mut docs = Vec::new();
        for (line, start) in event_lines(&payload, body) {
            let event = Event::from_normalized_json(line)
                .map_err(|e| RecordError::new(format!("event at byte {start}: {e}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_survive_the_round_trip_through_the_payload() {
        let header = RecordHeader {
            tenant: "acme".into(),
            received_at: 42,
            idempotency_key: Some("k-1".into()),
            answer: br#"{"accepted":2}"#.to_vec(),
        };
        let events = vec![
            Event::new(1_000_000_000, "a"),
            Event::new(2_000_000_000, "b\nc"),
        ];
        let fields = sawmill_index::schema::build_schema().1;
        let batch = Batch::encode(header.clone(), events.clone(), &fields);
        assert_eq!(batch.docs.len(), 2);
        let (decoded_header, decoded) =
            sawmill_core::record::decode_events(&batch.payload).unwrap();
        assert_eq!(decoded_header, header);
        assert_eq!(decoded, events);
        let rebuilt = Batch::decode(batch.payload.clone(), &fields).unwrap();
        assert_eq!(rebuilt.docs.len(), 2);
        assert_eq!(rebuilt.docs[1].0, 2_000_000_000);
    }
}
