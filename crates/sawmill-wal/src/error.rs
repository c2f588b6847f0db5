//! Error type shared by every WAL operation.
//!
//! Errors are `Clone` because one failed group commit has to be reported to
//! every callback of that group; the underlying I/O error is shared through an
//! `Arc`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What went wrong in a WAL operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WalError {
    /// An I/O operation on a WAL file or directory failed.
    #[error("failed to {op} {}: {error}", path.display())]
    Io {
        /// The operation, e.g. "fsync segment".
        op: &'static str,
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        error: Arc<io::Error>,
    },
    /// A record must hold at least one event.
    #[error("record must hold at least one event (count is 0)")]
    EmptyRecord,
    /// The payload is larger than `WalConfig::max_record_bytes`.
    #[error("record payload of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// Payload length.
        len: usize,
        /// Configured limit.
        max: u32,
    },
    /// The sequence number space is exhausted.
    #[error("sequence number overflow")]
    SeqOverflow,
    /// The WAL has been closed; no more appends are accepted.
    #[error("wal is closed")]
    Closed,
    /// A reader found damaged data below the durable end of the log.
    #[error("corrupt wal segment {} at offset {offset}: {damage}", path.display())]
    Corrupt {
        /// Segment file.
        path: PathBuf,
        /// Byte offset of the damaged record or header.
        offset: u64,
        /// What is wrong.
        damage: Damage,
    },
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: impl AsRef<Path>, error: io::Error) -> Self {
        WalError::Io {
            op,
            path: path.as_ref().to_path_buf(),
            error: Arc::new(error),
        }
    }

    /// The kind of the underlying I/O error, if this is an I/O error.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            WalError::Io { error, .. } => Some(error.kind()),
            _ => None,
        }
    }
}

/// Why a record or segment header was judged invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The file ends inside a record (typical torn write after a crash).
    IncompleteRecord,
    /// The stored checksum does not match the record contents.
    ChecksumMismatch,
    /// A record claims to hold zero events.
    ZeroCount,
    /// A record's sequence numbers would run past the largest one (the writer never writes
    /// such a record).
    SeqOverflow,
    /// A record's `first_seq` is not the continuation of the previous one.
    SequenceMismatch {
        /// The seq the record should start at.
        expected: u64,
        /// The seq the record claims to start at.
        found: u64,
    },
    /// A record reaches into the range owned by the next segment. This is left
    /// over from a group whose fsync failed: the writer moved on to a new
    /// segment starting at the last durable seq, so the record was never
    /// acknowledged.
    OverlapsNextSegment {
        /// First seq of the next segment.
        next_first_seq: u64,
    },
    /// The segment file ends before the durable end of the log.
    UnexpectedEnd,
    /// The segment header is missing or invalid.
    BadHeader(HeaderDamage),
}

/// Why a segment header is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderDamage {
    /// The file is shorter than a header.
    Short,
    /// The magic bytes are wrong: not a sawmill WAL segment.
    BadMagic,
    /// The header checksum does not match.
    ChecksumMismatch,
    /// A format version this build does not understand.
    UnsupportedVersion(u32),
    /// The seq in the header differs from the one in the file name.
    SeqMismatch {
        /// Seq from the file name.
        name: u64,
        /// Seq from the header.
        header: u64,
    },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::IncompleteRecord => f.write_str("incomplete record"),
            Damage::ChecksumMismatch => f.write_str("checksum mismatch"),
            Damage::ZeroCount => f.write_str("record with zero events"),
            Damage::SeqOverflow => f.write_str("record whose sequence numbers overflow"),
            Damage::SequenceMismatch { expected, found } => {
                write!(f, "sequence mismatch (expected {expected}, found {found})")
            }
            Damage::OverlapsNextSegment { next_first_seq } => {
                write!(
                    f,
                    "record overlaps next segment starting at {next_first_seq}"
                )
            }
            Damage::UnexpectedEnd => f.write_str("segment ends before the durable end of the log"),
            Damage::BadHeader(h) => write!(f, "bad segment header: {h}"),
        }
    }
}

impl fmt::Display for HeaderDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderDamage::Short => f.write_str("file shorter than a segment header"),
            HeaderDamage::BadMagic => f.write_str("bad magic bytes"),
            HeaderDamage::ChecksumMismatch => f.write_str("header checksum mismatch"),
            HeaderDamage::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            HeaderDamage::SeqMismatch { name, header } => {
                write!(f, "file name says seq {name} but header says {header}")
            }
        }
    }
}
