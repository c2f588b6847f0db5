//! Sending one ingest batch, with sawmill's one set of retry rules.
//!
//! A batch is `POST /api/v1/ingest` with its compressed body, content type, content encoding,
//! `Idempotency-Key` and optional `?source=`. Every attempt sends the same key and the same
//! body bytes, so the server ingests the batch at most once however often it is sent.
//!
//! Tried again: no answer (connection refused or reset, DNS, TLS, timeouts), 408, 409 (the
//! same key is still being ingested), 429, 5xx, and a 2xx whose answer was cut off (whether
//! the batch landed is unknown; the key makes sending it again safe). Final: any other status
//! (with the server's message), and a 2xx that is not an ingest answer.
//!
//! Waits come from a [`RetryPolicy`] (the caller may lower its longest wait), with the
//! server's `Retry-After` as a floor. A [`Retry`] bounds the attempts, the time (a deadline:
//! the sender gives up when the next wait would pass it), or both; with neither it retries
//! until the server answers. One attempt is bounded by the client's request timeout; the
//! first attempt is made whatever the deadline.

use crate::client::{encode_component, error_message, snippet, Client};
use crate::encoding::Encoding;
use bytes::Bytes;
use reqwest::StatusCode;
use sawmill_core::retry::parse_retry_after;
use sawmill_core::{BodyFormat, IngestAnswer, RetryPolicy};
use std::time::Duration;
use tokio::time::Instant;

/// One ingest request, ready to send.
#[derive(Clone, Debug)]
pub struct IngestBatch {
    /// The body, already compressed with `encoding`; shared, not copied, by every attempt.
    pub body: Bytes,
    pub encoding: Encoding,
    /// NDJSON (`application/x-ndjson`) or plain text lines (`text/plain`).
    pub format: BodyFormat,
    /// The `Idempotency-Key`: the same batch always carries the same key.
    pub key: String,
    /// Sets `source` on the events that carry none.
    pub source: Option<String>,
}

/// How long to keep trying a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    pub policy: RetryPolicy,
    /// Attempts before giving up (at least 1); `None`: no limit.
    pub max_attempts: Option<u32>,
    /// No wait ends after it; `None`: no limit.
    pub deadline: Option<Instant>,
}

impl Retry {
    /// Until the server answers, waiting as `policy` says.
    pub fn forever(policy: RetryPolicy) -> Retry {
        Retry {
            policy,
            max_attempts: None,
            deadline: None,
        }
    }

    /// At most `n` attempts.
    pub fn attempts(self, n: u32) -> Retry {
        Retry {
            max_attempts: Some(n.max(1)),
            ..self
        }
    }

    /// Nothing after `deadline`.
    pub fn until(self, deadline: Instant) -> Retry {
        Retry {
            deadline: Some(deadline),
            ..self
        }
    }
}

/// What a retry hook is told before each wait.
#[derive(Debug)]
pub struct Retrying<'a> {
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    pub error: &'a AttemptError,
    /// How long until the next attempt.
    pub wait: Duration,
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// No answer: the connection failed or the request timed out.
    #[error("cannot reach {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered an error status.
    #[error("the server answered {status}: {message}")]
    Status {
        status: StatusCode,
        /// The `error` of its JSON body, or the body.
        message: String,
        retry_after: Option<Duration>,
    },
    /// A success status whose answer could not be read whole.
    #[error("the server answered {status}, then reading the answer failed")]
    AnswerCut {
        status: StatusCode,
        #[source]
        source: reqwest::Error,
    },
    /// A success status with something that is not an ingest answer.
    #[error("the server answered {status} with an unexpected body: {body}")]
    NotAnAnswer {
        status: StatusCode,
        body: String,
        #[source]
        source: serde_json::Error,
    },
}

impl AttemptError {
    /// Whether sending the batch again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            AttemptError::Unreachable { .. } | AttemptError::AnswerCut { .. } => true,
            AttemptError::Status { status, .. } => {
                matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
            }
            AttemptError::NotAnAnswer { .. } => false,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Why a batch was not ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The server refused it for a reason sending it again cannot fix (400, 401, 403, 413,
    /// 415, …), or answered something that is not an ingest answer.
    #[error("refused after {attempts} attempt(s)")]
    Refused {
        attempts: u32,
        #[source]
        last: AttemptError,
    },
    /// Every attempt failed with an error that may pass, up to the maximum attempts.
    #[error("failed after {attempts} attempt(s)")]
    GaveUp {
        attempts: u32,
        #[source]
        last: AttemptError,
    },
    /// The deadline leaves no time to wait and try again.
    #[error("gave up after {attempts} attempt(s): the deadline leaves no time to try again")]
    OutOfTime {
        attempts: u32,
        #[source]
        last: AttemptError,
    },
}

impl IngestError {
    /// How many attempts were made.
    pub fn attempts(&self) -> u32 {
        match self {
            IngestError::Refused { attempts, .. }
            | IngestError::GaveUp { attempts, .. }
            | IngestError::OutOfTime { attempts, .. } => *attempts,
        }
    }

    /// What the last attempt failed with.
    pub fn last(&self) -> &AttemptError {
        match self {
            IngestError::Refused { last, .. }
            | IngestError::GaveUp { last, .. }
            | IngestError::OutOfTime { last, .. } => last,
        }
    }
}

impl Client {
    /// Sends one ingest batch, trying again as `retry` allows. Before each wait, `on_retry`
    /// is told which attempt failed, why, and how long the wait is.
    pub async fn send_ingest(
        &self,
        batch: &IngestBatch,
        retry: Retry,
        mut on_retry: impl FnMut(&Retrying<'_>),
    ) -> Result<IngestAnswer, IngestError> {
        let url = match &batch.source {
            Some(source) => format!(
                "{}/api/v1/ingest?source={}",
                self.base_url(),
                encode_component(source)
            ),
            None => format!("{}/api/v1/ingest", self.base_url()),
        };
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let error = match self.attempt(&url, batch).await {
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            if !error.is_retryable() {
                return Err(IngestError::Refused {
                    attempts,
                    last: error,
                });
            }
            if retry.max_attempts.is_some_and(|max| attempts >= max) {
                return Err(IngestError::GaveUp {
                    attempts,
                    last: error,
                });
            }
            let wait = retry.policy.delay(attempts, error.retry_after());
            if retry
                .deadline
                .is_some_and(|deadline| Instant::now() + wait >= deadline)
            {
                return Err(IngestError::OutOfTime {
                    attempts,
                    last: error,
                });
            }
            on_retry(&Retrying {
                attempt: attempts,
                error: &error,
                wait,
            });
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt.
    async fn attempt(&self, url: &str, batch: &IngestBatch) -> Result<IngestAnswer, AttemptError> {
        let content_type = match batch.format {
            BodyFormat::Ndjson => "application/x-ndjson",
            BodyFormat::Text => "text/plain",
        };
        let mut req = self
            .request(reqwest::Method::POST, url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header("idempotency-key", &batch.key)
            .body(batch.body.clone()); // a reference count, not a copy
        if let Some(encoding) = batch.encoding.header() {
            req = req.header(reqwest::header::CONTENT_ENCODING, encoding);
        }
        let resp = req
            .send()
            .await
            .map_err(|source| AttemptError::Unreachable {
                url: url.to_string(),
                source: source.without_url(),
            })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = match resp.text().await {
            Ok(text) => text,
            Err(source) if status.is_success() => {
                return Err(AttemptError::AnswerCut { status, source })
            }
            Err(e) => format!(
                "(the answer could not be read: {})",
                sawmill_core::error::report(&e.without_url())
            ),
        };
        if !status.is_success() {
            return Err(AttemptError::Status {
                status,
                message: error_message(&text),
                retry_after,
            });
        }
        serde_json::from_str::<IngestAnswer>(&text).map_err(|source| AttemptError::NotAnAnswer {
            status,
            body: snippet(&text),
            source,
        })
    }
}
