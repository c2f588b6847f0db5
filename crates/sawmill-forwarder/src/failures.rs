//! The failure bucket: batches that could not be delivered, kept for `sawmill-forwarder
//! replay`.
//!
//! Each is one object `<prefix><yyyy>/<mm>/<dd>/<idempotency key>.ndjson[.zst|.gz]` holding the
//! compressed request body as it was sent, with the key, the encoding, the event count and
//! the last error in its metadata. The same batch failing twice overwrites the same object,
//! and a replay sends it with its original key, so the server ingests it once however many
//! times it is replayed.

use crate::deliver::{Encoded, Shipper};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use sawmill_client::{Encoding, IngestError};
use sawmill_core::error::report as error_report;
use tokio::time::Instant;

/// An AWS SDK error, whatever the operation (its own message and sources are kept).
pub type AwsError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the failure bucket could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot write {address}")]
    Write {
        address: String,
        #[source]
        source: AwsError,
    },
    #[error("cannot list {address}")]
    List {
        address: String,
        #[source]
        source: AwsError,
    },
}

/// Why one stored batch could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read it")]
    Read(#[source] AwsError),
    #[error("it has no idempotency-key metadata: it was not written by the forwarder")]
    NoKey,
    #[error("unknown content-encoding {0:?}")]
    Encoding(String),
    #[error("not delivered")]
    Delivery(#[source] IngestError),
    #[error("delivered, but cannot delete it")]
    Delete(#[source] AwsError),
}

/// The failure bucket of one forwarder.
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
    pub async fn put(&self, batch: &Encoded, error: &str) -> Result<String, StoreError> {
        let now = time::OffsetDateTime::now_utc();
        let suffix = match batch.encoding {
            Encoding::Zstd => ".ndjson.zst",
            Encoding::Gzip => ".ndjson.gz",
            Encoding::Identity => ".ndjson",
        };
        let key = format!(
            "{}{:04}/{:02}/{:02}/{}{suffix}",
            self.prefix,
            now.year(),
            u8::from(now.month()),
            now.day(),
            batch.key
        );
        let address = format!("s3://{}/{key}", self.bucket);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(batch.body.clone()))
            .content_type("application/x-ndjson")
            .metadata("idempotency-key", &batch.key)
            .metadata(
                "content-encoding",
                batch.encoding.header().unwrap_or("identity"),
            )
            .metadata("events", batch.events.to_string())
            .metadata("error", header_safe(error))
            .send()
            .await
            .map_err(|e| StoreError::Write {
                address: address.clone(),
                source: e.into(),
            })?;
        Ok(address)
    }

    /// Sends every stored batch again, deleting each once the server has it.
    pub async fn replay(
        &self,
        shipper: &Shipper,
        deadline: Instant,
    ) -> Result<ReplayReport, StoreError> {
        let mut report = ReplayReport::default();
        for key in self.keys().await? {
            report.found += 1;
            match self.replay_one(shipper, &key, deadline).await {
                Ok(events) => {
                    report.replayed += 1;
                    report.events += events;
                }
                Err(e) => {
                    let why = error_report(&e);
                    tracing::error!(key = %key, error = %why, "replay failed");
                    report
                        .still_failing
                        .push(format!("s3://{}/{key}: {why}", self.bucket));
                }
            }
        }
        Ok(report)
    }

    /// The keys of every stored batch.
    async fn keys(&self) -> Result<Vec<String>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| StoreError::List {
                address: format!("s3://{}/{}", self.bucket, self.prefix),
                source: e.into(),
            })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }

    async fn replay_one(
        &self,
        shipper: &Shipper,
        key: &str,
        deadline: Instant,
    ) -> Result<u64, ReplayError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| ReplayError::Read(e.into()))?;
        let meta = object.metadata().cloned().unwrap_or_default();
        let idempotency_key = meta
            .get("idempotency-key")
            .cloned()
            .ok_or(ReplayError::NoKey)?;
        let stored_encoding = meta.get("content-encoding").map(String::as_str);
        let encoding = Encoding::from_header(stored_encoding)
            .ok_or_else(|| ReplayError::Encoding(stored_encoding.unwrap_or_default().into()))?;
        let events = meta
            .get("events")
            .and_then(|e| e.parse::<usize>().ok())
            .unwrap_or(0);
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| ReplayError::Read(e.into()))?
            .into_bytes();
        let encoded = Encoded {
            body,
            encoding,
            key: idempotency_key,
            events,
        };
        shipper
            .send_encoded(&encoded, deadline)
            .await
            .map_err(ReplayError::Delivery)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| ReplayError::Delete(e.into()))?;
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
