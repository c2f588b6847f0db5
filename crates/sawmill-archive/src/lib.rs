//! The archive of sawmill: every acknowledged event, exactly once, in zstd-compressed NDJSON
//! objects partitioned by tenant, day and hour, in a local folder or an S3 bucket, readable by
//! `zstd -d`, Athena, Trino, DuckDB and Spark.
//!
//! - [`layout`]: object keys;
//! - [`batcher`]: batches per tenant and hour, sealed by size or age;
//! - [`store`]: object stores (local folder);
//! - [`state`]: the archive's durable position and exactly-once bookkeeping;
//! - [`worker`]: the WAL consumer that ties them together.

pub mod batcher;
pub mod layout;
pub mod state;
pub mod store;
pub mod worker;

pub use batcher::BatchLimits;
pub use store::{FsStore, ObjectInfo, ObjectStore, StoreError};
pub use worker::{ArchiveConfig, ArchiveHandle, ArchiveStats, ArchiveWorker, FlushReport};
