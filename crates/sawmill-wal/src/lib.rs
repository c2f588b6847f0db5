//! Write-ahead log for sawmill ingest.
//!
//! The server acknowledges an ingest request only once its events are durable.
//! Each request becomes one WAL *record* holding a serialized batch of events.
//! Events get global, monotonic sequence numbers (seqs, from 0): a record
//! covers `[first_seq, first_seq + count)`. Consumers (search index, archiver,
//! alert engine) keep their own position and read records back with
//! [`Wal::read_from`] after a restart; [`Wal::truncate_before`] deletes
//! segments every consumer is past.
//!
//! Appends are group-committed by one writer thread: everything queued is
//! written with one vectored write and made durable with a single `fdatasync`,
//! then the callbacks run in WAL order (see [`Wal::append`]).
//!
//! # On-disk format
//!
//! The log is a directory of segment files named `<first_seq:020>.wal`
//! (twenty zero-padded decimal digits: the seq of the segment's first record).
//! Other files in the directory are ignored. All integers are little-endian.
//!
//! Segment header (24 bytes):
//!
//! | bytes | field                                   |
//! |-------|-----------------------------------------|
//! | 8     | magic `SAWMWAL\0`                       |
//! | 4     | format version (`1`)                    |
//! | 8     | first seq (must match the file name)    |
//! | 4     | CRC-32 of the preceding 20 bytes        |
//!
//! Then records, back to back (20-byte header + payload):
//!
//! | bytes | field                                                       |
//! |-------|-------------------------------------------------------------|
//! | 4     | `len`: payload length                                       |
//! | 4     | CRC-32 (IEEE) over `first_seq`, `count` (as stored), payload |
//! | 8     | `first_seq`                                                 |
//! | 4     | `count`: events in the record, at least 1                   |
//! | len   | payload                                                     |
//!
//! Within a segment records are contiguous: each `first_seq` is the previous
//! record's `first_seq + count`, the first one equals the segment's seq. The
//! next segment starts where the previous one ends, except after recovery cut
//! acknowledged records out of a damaged segment (a reported gap).
//!
//! New segments are written as `<name>.wal.tmp` (header only), fsynced,
//! renamed into place and the directory is fsynced, so a `.wal` file never has
//! a torn header; leftover `.wal.tmp` files are removed on open.
//!
//! # Recovery
//!
//! [`Wal::open`] validates every record of every segment (length within the
//! file, checksum, non-zero count, seq continuation, not reaching into the next
//! segment) and cuts each segment at its first bad record: in the last segment
//! that is a torn tail from a crash (never acknowledged); in an earlier one it
//! is corruption, reported with the lost seq range. Segments with a bad header
//! are renamed to `.corrupt` and kept. Everything is listed in the
//! [`RecoveryReport`] and logged.
//!
//! # Write failures
//!
//! A failed write (e.g. disk full) fails the callbacks of its group and cuts
//! the segment back to its durable length; seqs are not consumed and later
//! appends succeed once space is back. A failed fsync also fails the group, and
//! because the kernel may have dropped the dirty pages (a retried fsync could
//! falsely succeed) the writer never writes to that segment again and rolls to
//! a new one at the durable seq. Details in the `writer` module.

mod error;
mod faults;
mod format;
mod reader;
mod recovery;
mod segment;
mod wal;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{Damage, HeaderDamage, WalError};
pub use reader::WalReader;
pub use recovery::{MovedAside, RecoveryReport, TruncatedTail};
pub use wal::{Appended, Record, Wal, WalConfig, WalDiskUsage};
