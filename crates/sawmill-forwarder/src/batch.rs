//! Cutting NDJSON lines into request-sized batches, each with an idempotency key derived from
//! its content: the same input cut the same way gives the same keys, so a Lambda retry of an
//! invocation ingests nothing twice.

use sha2::{Digest, Sha256};

/// One request's worth of NDJSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Uncompressed NDJSON, one event per line.
    pub body: Vec<u8>,
    pub events: usize,
}

impl Batch {
    /// `fwd-` and 128 bits of the SHA-256 of the body, in hex.
    pub fn idempotency_key(&self) -> String {
        let digest = Sha256::digest(&self.body);
        let mut key = String::with_capacity(36);
        key.push_str("fwd-");
        for b in digest.iter().take(16) {
            key.push_str(&format!("{b:02x}"));
        }
        key
    }
}

/// Accumulates lines into batches of at most `max_bytes` and `max_events`.
#[derive(Debug)]
pub struct Batcher {
    max_bytes: usize,
    max_events: usize,
    current: Vec<u8>,
    events: usize,
}

impl Batcher {
    pub fn new(max_bytes: usize, max_events: usize) -> Batcher {
        Batcher {
            max_bytes: max_bytes.max(1),
            max_events: max_events.max(1),
            current: Vec::new(),
            events: 0,
        }
    }

    /// Adds the NDJSON lines in `lines` (each ending in `\n`); returns the batches they
    /// completed. A single line larger than `max_bytes` goes alone in its batch.
    pub fn push(&mut self, lines: &[u8]) -> Vec<Batch> {
        let mut done = Vec::new();
        for line in lines.split_inclusive(|b| *b == b'\n') {
            if self.events > 0
                && (self.current.len() + line.len() > self.max_bytes
                    || self.events >= self.max_events)
            {
                done.extend(self.take());
            }
            self.current.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                self.current.push(b'\n');
            }
            self.events += 1;
        }
        done
    }

    /// The last, partial batch.
    pub fn take(&mut self) -> Option<Batch> {
        if self.events == 0 {
            return None;
        }
        let body = std::mem::take(&mut self.current);
        let events = std::mem::take(&mut self.events);
        Some(Batch { body, events })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_bytes_and_events_and_keep_every_line() {
        let lines: Vec<String> = (0..25).map(|i| format!("{{\"i\":{i}}}\n")).collect();
        let all: String = lines.concat();
        let mut b = Batcher::new(60, 4);
        let mut batches = b.push(all.as_bytes());
        batches.extend(b.take());
        assert!(batches.iter().all(|x| x.events <= 4 && x.body.len() <= 60));
        let joined: Vec<u8> = batches.iter().flat_map(|x| x.body.clone()).collect();
        assert_eq!(joined, all.as_bytes());
        assert_eq!(batches.iter().map(|x| x.events).sum::<usize>(), 25);
    }

    #[test]
    fn an_oversized_line_travels_alone() {
        let mut b = Batcher::new(10, 100);
        let mut out = b.push(b"{\"a\":1}\n{\"long\":\"xxxxxxxxxxxxxxxx\"}\n{\"b\":2}\n");
        out.extend(b.take());
        let events: Vec<usize> = out.iter().map(|x| x.events).collect();
        assert_eq!(events, vec![1, 1, 1]);
    }

    #[test]
    fn keys_follow_the_content() {
        let a = Batch {
            body: b"{\"a\":1}\n".to_vec(),
            events: 1,
        };
        let b = Batch {
            body: b"{\"a\":2}\n".to_vec(),
            events: 1,
        };
        assert_eq!(a.idempotency_key(), a.clone().idempotency_key());
        assert_ne!(a.idempotency_key(), b.idempotency_key());
        assert_eq!(a.idempotency_key().len(), 36);
    }
}
