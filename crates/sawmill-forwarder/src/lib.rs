//! The sawmill forwarder: turns what AWS hands a Lambda function (CloudWatch Logs
//! subscriptions, S3 log files, Kinesis and SQS records) into sawmill events and ships them.
//!
//! An invocation flows through [`handler`] (what was received), [`formats`] (S3 log files
//! into records), [`enrich`] (source, `aws.*`, static fields, redaction), [`batch`] (request
//! sized NDJSON with content-derived idempotency keys) and [`deliver`] (retries within the
//! invocation's time; what cannot be delivered goes to the [`failures`] bucket for replay).

pub mod aws;
pub mod batch;
pub mod config;
pub mod deliver;
pub mod enrich;
pub mod failures;
pub mod formats;
pub mod handler;

/// An error with its sources, each once (an SDK "service error" with the service's message).
pub fn error_chain<E: std::error::Error + 'static>(e: &E) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}
