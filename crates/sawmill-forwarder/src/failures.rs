//! The failure bucket: batches that could not be delivered, kept for `sawmill-forwarder
//! replay`.
//!
//! Each is one object `<prefix><yyyy>/<mm>/<dd>/<idempotency key>.ndjson[.zst|.gz]` holding the
//! compressed request body as it was sent, with the key, the encoding, the event count and
//! the last error in its metadata. The same batch failing twice overwrites the same object,
//! and a replay sends it with its original key, so the server ingests it once however many
//! times it is replayed.

use crate::deliver::{Encoded, Report, Shipper};
use crate::error_chain as aws_error;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use tokio::time::Instant;

pub struct FailureStore {
    client: Client,
    bucket: String,
    prefix: String,
}

/// What a replay did.
#[derive(Debug, Default, serde::Serialize)]
pub struct ReplayReport {
    pub found: u64,
    pub replayed: u64,
    pub events: u64,
    pub still_failing: Vec<String>,
}

impl FailureStore {
    pub fn new(client: Client, bucket: String, prefix: String) -> FailureStore {
        FailureStore {
            client,
            bucket,
            prefix,
        }
    }

    /// Stores a batch; returns its `s3://` address.
    pub async fn put(&self, batch: &Encoded, error: &str) -> Result<String, String> {
        let now = time::OffsetDateTime::now_utc();
        let suffix = match batch.encoding {
            Some("zstd") => ".ndjson.zst",
            Some("gzip") => ".ndjson.gz",
            _ => ".ndjson",
        };
        let key = format!(
            "{}{:04}/{:02}/{:02}/{}{suffix}",
            self.prefix,
            now.year(),
            u8::from(now.month()),
            now.day(),
            batch.key
        );
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(batch.body.clone()))
            .content_type("application/x-ndjson")
            .metadata("idempotency-key", &batch.key)
            .metadata("content-encoding", batch.encoding.unwrap_or("identity"))
            .metadata("events", batch.events.to_string())
            .metadata("error", header_safe(error))
            .send()
            .await
            .map_err(|e| format!("cannot write s3://{}/{key}: {}", self.bucket, aws_error(&e)))?;
        Ok(format!("s3://{}/{key}", self.bucket))
    }

    /// Sends every stored batch again, deleting each once the server has it.
    pub async fn replay(
        &self,
        shipper: &Shipper,
        deadline: Instant,
    ) -> Result<ReplayReport, String> {
        let mut report = ReplayReport::default();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "cannot list s3://{}/{}: {}",
                    self.bucket,
                    self.prefix,
                    aws_error(&e)
                )
            })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        for key in keys {
            report.found += 1;
            match self.replay_one(shipper, &key, deadline).await {
                Ok(events) => {
                    report.replayed += 1;
                    report.events += events;
                }
                Err(e) => {
                    tracing::error!(key = %key, error = %e, "replay failed");
                    report
                        .still_failing
                        .push(format!("s3://{}/{key}: {e}", self.bucket));
                }
            }
        }
        Ok(report)
    }

    async fn replay_one(
        &self,
        shipper: &Shipper,
        key: &str,
        deadline: Instant,
    ) -> Result<u64, String> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| format!("cannot read it: {}", aws_error(&e)))?;
        let meta = object.metadata().cloned().unwrap_or_default();
        let idempotency_key = meta
            .get("idempotency-key")
            .cloned()
            .ok_or("it has no idempotency-key metadata: it was not written by the forwarder")?;
        let encoding = match meta.get("content-encoding").map(String::as_str) {
            Some("zstd") => Some("zstd"),
            Some("gzip") => Some("gzip"),
            Some("identity") | None => None,
            Some(other) => return Err(format!("unknown content-encoding {other:?}")),
        };
        let events = meta
            .get("events")
            .and_then(|e| e.parse::<usize>().ok())
            .unwrap_or(0);
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| format!("cannot read it: {e}"))?
            .into_bytes();
        let encoded = Encoded {
            body,
            encoding,
            key: idempotency_key,
            events,
        };
        let report: Report = shipper.send_encoded(&encoded, deadline).await;
        if !report.errors.is_empty() {
            return Err(report.errors.join("; "));
        }
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| format!("delivered, but cannot delete it: {}", aws_error(&e)))?;
        tracing::info!(key = %key, events, "replayed");
        Ok(events as u64)
    }
}

/// S3 metadata travels in HTTP headers: printable ASCII, bounded.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(1024)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_made_header_safe() {
        assert_eq!(header_safe("bad\nline é ok"), "bad?line ? ok");
        assert_eq!(header_safe(&"x".repeat(5000)).len(), 1024);
    }
}
