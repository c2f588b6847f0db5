//! The archive of sawmill: every acknowledged event, exactly once, in zstd-compressed NDJSON
//! objects partitioned by tenant, day and hour, in a local folder or an S3 bucket, readable by
//! `zstd -d`, Athena, Trino, DuckDB and Spark.
//!
//! - [`layout`]: object keys;
//! - [`batcher`]: batches per tenant and hour, sealed by size or age;
//! - [`store`]: the object store interface and the local folder;
//! - [`s3`]: S3 and S3-compatible servers;
//! - [`lifecycle`]: the bucket lifecycle rule (storage tiers, expiry);
//! - [`athena`]: a `CREATE EXTERNAL TABLE` for Athena and Trino;
//! - [`state`]: the archive's durable position and exactly-once bookkeeping;
//! - [`worker`]: the WAL consumer that ties them together.

pub mod athena;
pub mod batcher;
pub mod layout;
pub mod lifecycle;
pub mod s3;
pub mod state;
pub mod store;
pub mod worker;

pub use athena::AthenaError;
pub use batcher::BatchLimits;
pub use lifecycle::LifecycleError;
pub use s3::{BucketError, LifecycleChange, S3Settings, S3Store};
pub use state::StateError;
pub use store::{FsStore, ObjectInfo, ObjectStore, Readability, StoreError};
pub use worker::{
    ArchiveConfig, ArchiveError, ArchiveHandle, ArchiveStats, ArchiveWorker, FlushReport,
    DEFAULT_CATCH_UP_LAG,
};
