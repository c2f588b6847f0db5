//! The sawmill server: configuration, the HTTP API and the wiring of the pipeline
//! (ingest → WAL → index, archive and alerts).
//!
//! - [`config`]: the TOML configuration and its defaults;
//! - [`server`]: start-up, recovery, serving and clean shutdown;
//! - [`http`]: the API routes;
//! - [`pipeline`]: the one ingest path every protocol feeds (limits, idempotency, redaction,
//!   alert matching, WAL, index documents);
//! - [`batch`]: the WAL payload of one ingest request;
//! - [`index_worker`]: the WAL consumer that feeds the index;
//! - [`idempotency`]: `Idempotency-Key` answers that survive restarts;
//! - [`alerting`]: alert rules loading and reloading, notifier tasks, silences;
//! - [`restore`]: archived events read back into search for a while;
//! - [`metrics`]: Prometheus metrics.

pub mod alerting;
pub mod audit;
pub mod batch;
pub mod config;
pub mod doc_ids;
pub mod http;
pub mod idempotency;
pub mod index_worker;
pub mod keys;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod pipeline;
pub mod restore;
pub mod server;

pub use config::Config;
pub use server::run;
