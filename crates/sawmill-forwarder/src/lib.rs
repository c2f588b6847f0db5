//! The sawmill forwarder: turns what AWS hands a Lambda function (CloudWatch Logs
//! subscriptions, S3 log files, Kinesis and SQS records) into sawmill events and ships them.
//!
//! An invocation flows through [`handler`] (what was received), [`formats`] (S3 log files
//! into records), [`enrich`] (source, `aws.*`, static fields, redaction), [`batch`] (request
//! sized NDJSON with content-derived idempotency keys) and [`deliver`] (retries within the
//! invocation's time, through the one ingest client, `sawmill-client`; what cannot be
//! delivered goes to the [`failures`] bucket for replay). Errors are typed
//! ([`handler::HandlerError`], [`config::ConfigError`], …) and keep their sources;
//! `sawmill_core::error::report` prints one whole.

pub mod aws;
pub mod batch;
pub mod config;
pub mod deliver;
pub mod enrich;
pub mod failures;
pub mod formats;
pub mod handler;
