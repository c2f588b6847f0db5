//! Why the pipeline refused a whole request: nothing of it was ingested. Each protocol turns a
//! refusal into its own answer (an HTTP status, a Firehose error, …); every message says what
//! the sender can do about it.

use sawmill_wal::WalError;

/// A request refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The body cannot be read at all (not the protocol's format).
    #[error("{0}")]
    BadBody(String),
    /// The body's compression is broken, or it decompresses beyond the limit.
    #[error(transparent)]
    Decompress(#[from] sawmill_core::DecodeError),
    /// The body, or what it decompresses to, is larger than the limits.
    #[error("{0}")]
    TooLarge(String),
    /// The tenant's rate limit is exhausted for now.
    #[error("tenant '{tenant}' is over its ingest rate; nothing was ingested: retry after {retry_after}s or send less")]
    RateLimited { tenant: String, retry_after: u64 },
    /// The request alone is larger than the tenant may ever send at once.
    #[error("this request decodes to {bytes} bytes, more than tenant '{tenant}' may send at once ({burst_bytes} bytes): split it into smaller batches")]
    OverBurst {
        tenant: String,
        bytes: usize,
        burst_bytes: u64,
    },
    /// The server is overloaded or stopping: retry shortly.
    #[error(transparent)]
    Busy(Busy),
    /// The data directory's disk is under its free-space threshold.
    #[error("the server's disk is nearly full ({free} bytes free, below its threshold of {threshold}): nothing was ingested; retry later")]
    DiskLow { free: u64, threshold: u64 },
    /// The WAL could not make the events durable.
    #[error("the events could not be made durable ({0}); nothing was ingested: retry later")]
    NotDurable(#[source] WalError),
    /// Another request with the same idempotency key is being processed.
    #[error(
        "a request with this Idempotency-Key is still being processed; retry after it answers"
    )]
    KeyInFlight,
    /// A bug or a crash of a worker.
    #[error("{0}")]
    Internal(String),
}

/// Why the server cannot take a request right now.
#[derive(Debug, thiserror::Error)]
pub enum Busy {
    #[error("the server is holding its limit of in-flight request data; retry shortly")]
    Memory,
    #[error("indexing is {events} events behind; retry shortly")]
    IndexLag { events: u64 },
    #[error("indexing is behind and its queue is full; retry shortly")]
    IndexQueue,
    #[error("the write-ahead log holds {bytes} bytes not yet archived (limit {limit}); retry when the archive catches up")]
    WalFull { bytes: u64, limit: u64 },
    #[error("the server is shutting down; retry")]
    ShuttingDown,
}

impl Refusal {
    /// Seconds after which a retry may succeed; `None` when retrying the same request cannot.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Refusal::RateLimited { retry_after, .. } => Some(*retry_after),
            Refusal::Busy(busy) => Some(match busy {
                Busy::Memory => 1,
                Busy::IndexLag { .. } | Busy::IndexQueue => 2,
                Busy::WalFull { .. } => 30,
                Busy::ShuttingDown => 5,
            }),
            Refusal::DiskLow { .. } => Some(30),
            Refusal::NotDurable(_) => Some(5),
            Refusal::KeyInFlight => Some(1),
            Refusal::BadBody(_)
            | Refusal::Decompress(_)
            | Refusal::TooLarge(_)
            | Refusal::OverBurst { .. }
            | Refusal::Internal(_) => None,
        }
    }

    /// The reason counted in `sawmill_rejected_requests_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::BadBody(_) => "bad_request",
            Refusal::Decompress(e) if e.too_large() => "too_large",
            Refusal::Decompress(_) => "bad_request",
            Refusal::TooLarge(_) => "too_large",
            Refusal::RateLimited { .. } | Refusal::OverBurst { .. } => "rate_limited",
            Refusal::Busy(Busy::Memory) => "memory",
            Refusal::Busy(Busy::IndexLag { .. } | Busy::IndexQueue) => "index_lag",
            Refusal::Busy(Busy::WalFull { .. }) => "wal_full",
            Refusal::Busy(Busy::ShuttingDown) => "unavailable",
            Refusal::DiskLow { .. } => "disk_low",
            Refusal::NotDurable(e) if e.io_kind() == Some(std::io::ErrorKind::StorageFull) => {
                "disk_full"
            }
            Refusal::NotDurable(_) => "unavailable",
            Refusal::KeyInFlight => "idempotency_in_flight",
            Refusal::Internal(_) => "internal",
        }
    }

    /// True when the disk is full (the WAL met ENOSPC): 507 rather than 503 over HTTP.
    pub fn disk_full(&self) -> bool {
        match self {
            Refusal::DiskLow { .. } => true,
            Refusal::NotDurable(e) => e.io_kind() == Some(std::io::ErrorKind::StorageFull),
            _ => false,
        }
    }
}
