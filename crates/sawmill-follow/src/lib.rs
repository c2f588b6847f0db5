//! The file shipper of `sawmill ingest --follow`: tails files like `tail -F` and ships their
//! lines to a sawmill server until told to stop, exactly once across rotation, truncation and
//! restarts of the shipper.
//!
//! - [`glob`]: the watched paths (literal or glob), expanded on every poll;
//! - [`watch`]: the set of followed files, rotation and truncation;
//! - [`tail`]: one file: reading, cutting into lines or multi-line records, batching;
//! - [`state`]: the offsets file, written atomically;
//! - [`ship`]: the loop that polls the files, saves the offsets and sends the batches through
//!   the one ingest client (`sawmill-client`), retrying until the server answers.
//!
//! Exactly once: a batch is a byte range `[start, end)` of one file and its
//! `Idempotency-Key` is `sawmill-follow-<file id>-<start>-<end>`. Before a batch is sent its
//! range is written to the state file; once the server acknowledges it, the file's offset
//! moves to `end` (written within a second, or with the next range). After a crash the
//! recorded range is read and sent again whole, under the same key, so the server (which
//! remembers keys for 24 hours) ingests it at most once, and nothing after the acknowledged
//! offset is skipped.
//!
//! What happens (files found, rotated, retried, stopped) is reported as `tracing` events with
//! structured fields.

pub mod glob;
pub mod ship;
pub mod state;
pub mod tail;
pub mod watch;

pub use glob::{Pattern, PatternError};
pub use ship::{follow, FollowError, Totals};
pub use state::StateError;

use std::time::Duration;

/// How a file's lines are sent.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line.
    Ndjson,
    /// One event per line (or per multi-line record): the line is the message.
    Text,
}

/// Joining lines into records.
#[derive(Debug)]
pub struct Multiline {
    /// A line that does not match continues the previous record.
    pub start: regex::bytes::Regex,
    /// Largest record; a continuation line that does not fit starts a new record.
    pub max_bytes: usize,
    /// A record is complete once nothing has been appended for this long.
    pub timeout: Duration,
}

/// How files are followed and batched.
#[derive(Debug)]
pub struct Options {
    /// `source` of the events that carry none (default: the file's path).
    pub source: Option<String>,
    /// `None`: detected per file (NDJSON when its first non-blank character is `{`).
    pub format: Option<Format>,
    /// Uncompressed bytes per batch (at least 1).
    pub batch_bytes: usize,
    /// Longest a line waits in a batch that is not full before it is sent.
    pub flush_interval: Duration,
    /// How often files are checked for new lines, new files, rotation and truncation.
    pub poll_interval: Duration,
    /// `None`: a last line without a newline waits for it.
    pub partial_line_timeout: Option<Duration>,
    /// Longer lines are cut (text) or skipped (NDJSON) (at least 1).
    pub max_line_bytes: usize,
    pub multiline: Option<Multiline>,
    /// A file renamed away or deleted is still read until it has been idle this long.
    pub rotate_wait: Duration,
    /// Files that exist at the first start (no saved offset) are read from after their last
    /// complete line instead of from their beginning.
    pub start_at_end: bool,
    /// Longest wait between two attempts to reach the server.
    pub max_retry_wait: Duration,
}

impl Default for Options {
    /// The defaults of `sawmill ingest --follow`.
    fn default() -> Options {
        Options {
            source: None,
            format: None,
            batch_bytes: 4 << 20,
            flush_interval: Duration::from_secs(1),
            poll_interval: Duration::from_millis(250),
            partial_line_timeout: Some(Duration::from_secs(5)),
            max_line_bytes: 256 << 10,
            multiline: None,
            rotate_wait: Duration::from_secs(5),
            start_at_end: false,
            max_retry_wait: Duration::from_secs(5),
        }
    }
}
