//! Delivery of batches to the sawmill server within the invocation's time, and the failure
//! store for what cannot be delivered in time.
//!
//! A batch is compressed and sent with its idempotency key by [`sawmill_client`], under its
//! one set of retry rules (connection errors, timeouts, 408, 409, 429, 5xx and cut-off answers
//! are tried again, waiting as `RetryPolicy::DEFAULT` says with `Retry-After` as a floor),
//! until the invocation's deadline, less the time kept to store the batch. A batch that was
//! not delivered is written to the failure bucket (with its key, so a replay is idempotent
//! too) and the invocation reports failure. [`Deliveries`] runs a few deliveries at once and
//! sums their [`Report`]s.

use crate::batch::Batch;
use crate::config::Config;
use crate::failures::FailureStore;
use sawmill_client::{
    Client, ClientError, CompressError, Encoding, IngestAnswer, IngestBatch, IngestError, Retry,
};
use sawmill_core::error::report as error_report;
use sawmill_core::{BodyFormat, RetryPolicy};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What happened to the batches of one invocation (or one SQS/Kinesis record).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub batches: u64,
    pub events: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Failure-store keys of batches that were not delivered.
    pub stored: Vec<String>,
    /// Batches neither delivered nor stored.
    pub errors: Vec<String>,
}

impl Report {
    /// True when every batch reached the server.
    pub fn delivered(&self) -> bool {
        self.stored.is_empty() && self.errors.is_empty()
    }

    pub fn add(&mut self, other: Report) {
        self.batches += other.batches;
        self.events += other.events;
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.stored.extend(other.stored);
        self.errors.extend(other.errors);
    }

    /// One line for the invocation's error.
    pub fn failure_summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.stored.is_empty() {
            parts.push(format!(
                "{} batch(es) not delivered, stored for replay: {}",
                self.stored.len(),
                self.stored.join(", ")
            ));
        }
        if !self.errors.is_empty() {
            parts.push(format!(
                "{} batch(es) lost to this invocation (it fails so the source retries): {}",
                self.errors.len(),
                self.errors.join("; ")
            ));
        }
        parts.join("; ")
    }

    /// The report of one batch the server answered.
    fn answered(events: usize, answer: &IngestAnswer) -> Report {
        Report {
            batches: 1,
            events: events as u64,
            accepted: answer.accepted,
            rejected: answer.rejected,
            ..Report::default()
        }
    }

    /// The report of one batch that was not delivered.
    fn failed(events: usize) -> Report {
        Report {
            batches: 1,
            events: events as u64,
            ..Report::default()
        }
    }
}

/// A compressed batch ready to send (its body shared, not copied, by every attempt).
#[derive(Clone, Debug)]
pub struct Encoded {
    pub body: bytes::Bytes,
    pub encoding: Encoding,
    pub key: String,
    pub events: usize,
}

impl Encoded {
    fn request(&self) -> IngestBatch {
        IngestBatch {
            body: self.body.clone(),
            encoding: self.encoding,
            format: BodyFormat::Ndjson,
            key: self.key.clone(),
            source: None,
        }
    }
}

/// Sends batches; shared by the tasks of one invocation.
#[derive(Clone)]
pub struct Shipper {
    client: Client,
    config: Arc<Config>,
    failures: Option<Arc<FailureStore>>,
}

/// Time kept back from the deadline to store a failed batch.
const STORE_RESERVE: Duration = Duration::from_secs(3);

impl Shipper {
    pub fn new(
        config: Arc<Config>,
        failures: Option<Arc<FailureStore>>,
    ) -> Result<Shipper, ClientError> {
        let client = Client::new(&config.client())?;
        Ok(Shipper {
            client,
            config,
            failures,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Compresses a batch as configured.
    pub fn encode(&self, batch: Batch) -> Result<Encoded, CompressError> {
        let key = batch.idempotency_key();
        let events = batch.events;
        let body = self.config.compression.compress_owned(batch.body)?;
        Ok(Encoded {
            body,
            encoding: self.config.compression,
            key,
            events,
        })
    }

    /// Delivers one batch before `deadline`, or stores it in the failure bucket.
    pub async fn ship(&self, batch: Batch, deadline: Instant) -> Report {
        let events = batch.events;
        let encoded = match self.encode(batch) {
            Ok(e) => e,
            Err(e) => {
                let mut report = Report::failed(events);
                report.errors.push(error_report(&e));
                return report;
            }
        };
        match self.deliver(&encoded, deadline).await {
            Ok(answer) => {
                if answer.rejected > 0 {
                    let first: Vec<String> = answer
                        .errors
                        .iter()
                        .take(3)
                        .map(|e| format!("line {}: {}", e.line, e.error))
                        .collect();
                    tracing::warn!(
                        key = %encoded.key,
                        rejected = answer.rejected,
                        first_errors = %first.join("; "),
                        "the server rejected some events of a batch"
                    );
                }
                Report::answered(encoded.events, &answer)
            }
            Err(e) => self.keep(&encoded, &e).await,
        }
    }

    /// Stores a batch that was not delivered, when a failure bucket is configured.
    async fn keep(&self, encoded: &Encoded, error: &IngestError) -> Report {
        let why = error_report(error);
        tracing::error!(key = %encoded.key, events = encoded.events, error = %why, "batch not delivered");
        let mut report = Report::failed(encoded.events);
        match &self.failures {
            Some(store) => match store.put(encoded, &why).await {
                Ok(stored) => report.stored.push(stored),
                Err(e) => report.errors.push(format!(
                    "{why}; and storing it failed: {}",
                    error_report(&e)
                )),
            },
            None => report.errors.push(format!(
                "{why} (no SAWMILL_FAILURE_BUCKET is set to keep it)"
            )),
        }
        report
    }

    /// Delivers an already encoded batch (a replay); never stores it again.
    pub async fn send_encoded(
        &self,
        encoded: &Encoded,
        deadline: Instant,
    ) -> Result<IngestAnswer, IngestError> {
        self.deliver(encoded, deadline).await
    }

    /// Sends until the server answers, a final error, or the deadline (less the time kept
    /// to store the batch).
    async fn deliver(
        &self,
        encoded: &Encoded,
        deadline: Instant,
    ) -> Result<IngestAnswer, IngestError> {
        let until = deadline.checked_sub(STORE_RESERVE).unwrap_or(deadline);
        let retry = Retry::forever(RetryPolicy::DEFAULT).until(until);
        self.client
            .send_ingest(&encoded.request(), retry, |r| {
                tracing::warn!(
                    key = %encoded.key,
                    attempt = r.attempt,
                    error = %error_report(r.error),
                    retry_in_ms = r.wait.as_millis() as u64,
                    "delivery failed; retrying"
                );
            })
            .await
    }
}

/// Runs up to `concurrency` deliveries at once and sums their reports.
pub struct Deliveries {
    shipper: Shipper,
    deadline: Instant,
    tasks: JoinSet<Report>,
    report: Report,
}

impl Deliveries {
    pub fn new(shipper: Shipper, deadline: Instant) -> Deliveries {
        Deliveries {
            shipper,
            deadline,
            tasks: JoinSet::new(),
            report: Report::default(),
        }
    }

    /// Starts delivering `batch`, first waiting for a slot.
    pub async fn submit(&mut self, batch: Batch) {
        while self.tasks.len() >= self.shipper.config.concurrency {
            self.join_one().await;
        }
        let shipper = self.shipper.clone();
        let deadline = self.deadline;
        self.tasks
            .spawn(async move { shipper.ship(batch, deadline).await });
    }

    async fn join_one(&mut self) {
        match self.tasks.join_next().await {
            Some(Ok(r)) => self.report.add(r),
            Some(Err(e)) => self
                .report
                .errors
                .push(format!("a delivery task failed: {e}")),
            None => {}
        }
    }

    /// Waits for every delivery.
    pub async fn finish(mut self) -> Report {
        while !self.tasks.is_empty() {
            self.join_one().await;
        }
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_fails_when_anything_was_stored_or_lost() {
        let mut r = Report::default();
        assert!(r.delivered());
        r.add(Report {
            stored: vec!["s3://f/k".into()],
            ..Report::default()
        });
        assert!(!r.delivered());
        assert!(r.failure_summary().contains("stored for replay: s3://f/k"));
    }

    #[test]
    fn batches_are_encoded_as_configured_and_keyed_by_content() {
        let config = Config::from_lookup(|k| match k {
            "SAWMILL_URL" => Some("http://127.0.0.1:7480".into()),
            "SAWMILL_COMPRESSION" => Some("gzip".into()),
            _ => None,
        })
        .expect("config");
        let shipper = Shipper::new(Arc::new(config), None).expect("shipper");
        let batch = Batch {
            body: b"{\"a\":1}\n".to_vec(),
            events: 1,
        };
        let key = batch.idempotency_key();
        let encoded = shipper.encode(batch).expect("encoded");
        assert_eq!(encoded.encoding, Encoding::Gzip);
        assert_eq!(encoded.key, key);
        assert_eq!(&encoded.body[..2], &[0x1f, 0x8b]);
    }
}
