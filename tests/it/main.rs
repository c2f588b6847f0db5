//! The end-to-end tests, in one test binary so that the server, the forwarder and the AWS SDK
//! are compiled and linked once. Each module starts the real `sawmill` (and
//! `sawmill-forwarder`) binaries on random ports and talks to them over loopback, as users and
//! their shippers do; `common` holds the harness (a spawned server, a moto server, helpers).

mod common;

mod alerts;
mod api;
mod archive;
mod archive_backlog;
mod auth;
mod bad_input;
mod cli;
mod cloudwatch;
mod crash;
mod es;
mod firehose;
mod follow;
mod forwarder;
mod hostile;
mod idempotency;
mod lambda_runtime;
mod limits;
mod otlp;
mod restore;
mod s3_store;
mod search;
mod wal_recovery;
