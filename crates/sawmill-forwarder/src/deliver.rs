//! Delivery of batches to the sawmill server, with retries bounded by the invocation's
//! deadline, and the failure store for what cannot be delivered in time.
//!
//! A batch is POSTed compressed with its idempotency key. Connection errors, timeouts, 408,
//! 429 and 5xx are retried with exponential backoff and jitter (100 ms doubling to 30 s,
//! honouring `Retry-After`) while the deadline allows; any other answer is final. A batch that
//! was not delivered is written to the failure bucket (with its key, so a replay is
//! idempotent too) and the invocation reports failure.

use crate::batch::Batch;
use crate::config::{Compression, Config};
use crate::error_chain;
use crate::failures::FailureStore;
use rand::Rng;
use std::io::Write;
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
}

/// The body of the server's 200 answer.
#[derive(serde::Deserialize)]
struct Answer {
    accepted: u64,
    rejected: u64,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

/// One attempt's outcome.
enum Attempt {
    Done(Answer),
    Retry {
        after: Option<Duration>,
        why: String,
    },
    Final(String),
}

/// Compressed body ready to send (shared, not copied, by every attempt).
pub struct Encoded {
    pub body: bytes::Bytes,
    pub encoding: Option<&'static str>,
    pub key: String,
    pub events: usize,
}

/// Sends batches; shared by the tasks of one invocation.
#[derive(Clone)]
pub struct Shipper {
    http: reqwest::Client,
    config: Arc<Config>,
    failures: Option<Arc<FailureStore>>,
}

/// Time kept back from the deadline to store a failed batch.
const STORE_RESERVE: Duration = Duration::from_secs(3);

impl Shipper {
    pub fn new(
        config: Arc<Config>,
        failures: Option<Arc<FailureStore>>,
    ) -> Result<Shipper, String> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(5).min(config.request_timeout))
            .user_agent(concat!("sawmill-forwarder/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Shipper {
            http,
            config,
            failures,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Compresses a batch as configured.
    pub fn encode(&self, batch: Batch) -> Result<Encoded, String> {
        let key = batch.idempotency_key();
        let body = match self.config.compression {
            Compression::None => batch.body,
            Compression::Zstd => zstd::bulk::compress(&batch.body, 3)
                .map_err(|e| format!("zstd compression failed: {e}"))?,
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(batch.body.len() / 4),
                    flate2::Compression::default(),
                );
                enc.write_all(&batch.body)
                    .and_then(|_| enc.finish())
                    .map_err(|e| format!("gzip compression failed: {e}"))?
            }
        };
        let body = bytes::Bytes::from(body);
        Ok(Encoded {
            body,
            encoding: self.config.compression.header(),
            key,
            events: batch.events,
        })
    }

    /// Delivers one batch before `deadline`, or stores it in the failure bucket.
    pub async fn ship(&self, batch: Batch, deadline: Instant) -> Report {
        let mut report = Report {
            batches: 1,
            events: batch.events as u64,
            ..Report::default()
        };
        let encoded = match self.encode(batch) {
            Ok(e) => e,
            Err(e) => {
                report.errors.push(e);
                return report;
            }
        };
        match self.deliver(&encoded, deadline).await {
            Ok(answer) => {
                report.accepted = answer.accepted;
                report.rejected = answer.rejected;
                if answer.rejected > 0 {
                    tracing::warn!(
                        key = %encoded.key,
                        rejected = answer.rejected,
                        first_errors = %serde_json::Value::Array(answer.errors.into_iter().take(3).collect()),
                        "the server rejected some events of a batch"
                    );
                }
            }
            Err(why) => {
                tracing::error!(key = %encoded.key, events = encoded.events, error = %why, "batch not delivered");
                match &self.failures {
                    Some(store) => match store.put(&encoded, &why).await {
                        Ok(stored) => report.stored.push(stored),
                        Err(e) => report
                            .errors
                            .push(format!("{why}; and storing it failed: {e}")),
                    },
                    None => report.errors.push(format!(
                        "{why} (no SAWMILL_FAILURE_BUCKET is set to keep it)"
                    )),
                }
            }
        }
        report
    }

    /// Delivers an already encoded batch (a replay); never stores it again.
    pub async fn send_encoded(&self, encoded: &Encoded, deadline: Instant) -> Report {
        let mut report = Report {
            batches: 1,
            events: encoded.events as u64,
            ..Report::default()
        };
        match self.deliver(encoded, deadline).await {
            Ok(answer) => {
                report.accepted = answer.accepted;
                report.rejected = answer.rejected;
            }
            Err(why) => report.errors.push(why),
        }
        report
    }

    /// Sends until the server answers 200, a final error, or the deadline.
    async fn deliver(&self, encoded: &Encoded, deadline: Instant) -> Result<Answer, String> {
        let until = deadline.checked_sub(STORE_RESERVE).unwrap_or(deadline);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (after, why) = match self.attempt(encoded).await {
                Attempt::Done(answer) => return Ok(answer),
                Attempt::Final(why) => return Err(why),
                Attempt::Retry { after, why } => (after, why),
            };
            let wait = backoff(attempt).max(after.unwrap_or_default());
            if Instant::now() + wait >= until {
                return Err(format!(
                    "{why} (gave up after {attempt} attempt(s): the invocation's time is running out)"
                ));
            }
            tracing::warn!(key = %encoded.key, attempt, error = %why, retry_in_ms = wait.as_millis() as u64, "delivery failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, encoded: &Encoded) -> Attempt {
        let mut req = self
            .http
            .post(&self.config.ingest_url)
            .header("content-type", "application/x-ndjson")
            .header("idempotency-key", &encoded.key)
            .body(encoded.body.clone()); // a reference count, not a copy
        if let Some(enc) = encoded.encoding {
            req = req.header("content-encoding", enc);
        }
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        if let Some(tenant) = &self.config.tenant {
            req = req.header("x-sawmill-tenant", tenant);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    after: None,
                    why: format!(
                        "cannot reach {}: {}",
                        self.config.ingest_url,
                        error_chain(&e)
                    ),
                }
            }
        };
        let status = resp.status().as_u16();
        let after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(300)));
        let text = resp.text().await.unwrap_or_default();
        if status == 200 {
            return match serde_json::from_str::<Answer>(&text) {
                Ok(a) => Attempt::Done(a),
                Err(e) => Attempt::Final(format!(
                    "the server answered 200 with an unexpected body ({e}): {}",
                    snippet(&text)
                )),
            };
        }
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| snippet(&text));
        let why = format!("the server answered {status}: {message}");
        if status == 408 || status == 429 || status >= 500 {
            Attempt::Retry { after, why }
        } else {
            Attempt::Final(why)
        }
    }
}

/// Runs up to `concurrency` deliveries at once and sums their reports.
pub struct Pipeline {
    shipper: Shipper,
    deadline: Instant,
    tasks: JoinSet<Report>,
    report: Report,
}

impl Pipeline {
    pub fn new(shipper: Shipper, deadline: Instant) -> Pipeline {
        Pipeline {
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

/// 0.5–1× of 100 ms · 2^(attempt-1), at most 30 s.
fn backoff(attempt: u32) -> Duration {
    let cap = (100u64 << attempt.saturating_sub(1).min(9)).min(30_000);
    Duration::from_millis(rand::thread_rng().gen_range(cap / 2..=cap))
}

fn snippet(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= Duration::from_millis(100));
        assert!(backoff(4) >= Duration::from_millis(400));
        assert!(backoff(40) <= Duration::from_secs(30));
    }

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
}
