//! Sequential reader over durable records, independent of the writer.
//!
//! A reader snapshots the durable end and the segment list when it is created
//! and then reads the segment files with its own file handles. It stops at the
//! snapshot's durable end, so it never looks at bytes the writer may still be
//! writing. Records are checksummed again as they are read.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;

use crate::error::{Damage, HeaderDamage, WalError};
use crate::format::{check_header, RecordHeader, HEADER_LEN, RECORD_HEADER_LEN};
use crate::segment::SegmentEntry;
use crate::wal::Record;

/// Iterator over durable records, created by [`crate::Wal::read_from`].
///
/// Yields records in seq order. `first_seq` of consecutive records is
/// contiguous except where recovery reported lost records. After an error the
/// iterator is finished.
#[derive(Debug)]
pub struct WalReader {
    pending: VecDeque<SegmentEntry>,
    cur: Option<Cursor>,
    from_seq: u64,
    end_seq: u64,
    done: bool,
}

#[derive(Debug)]
struct Cursor {
    r: BufReader<File>,
    path: PathBuf,
    offset: u64,
    file_len: u64,
    next_seq: u64,
}

enum Step {
    Record(Record),
    Skipped,
    End,
}

impl WalReader {
    pub(crate) fn new(
        segments: Vec<SegmentEntry>,
        from_seq: u64,
        end_seq: u64,
    ) -> Result<Self, WalError> {
        // Skip closed segments that end at or before from_seq. The last entry
        // is kept regardless: its end_seq may lag behind the durable seq.
        let n = segments.len();
        let pending = segments
            .into_iter()
            .enumerate()
            .filter(|(i, s)| i + 1 == n || s.end_seq > from_seq)
            .map(|(_, s)| s)
            .collect();
        let mut reader = WalReader {
            pending,
            cur: None,
            from_seq,
            end_seq,
            done: from_seq >= end_seq,
        };
        // Open the first segment now so that errors show up early.
        if !reader.done && !reader.open_next()? {
            reader.done = true;
        }
        Ok(reader)
    }

    /// The durable end this reader stops at (exclusive).
    pub fn end_seq(&self) -> u64 {
        self.end_seq
    }

    fn open_next(&mut self) -> Result<bool, WalError> {
        let Some(seg) = self.pending.pop_front() else {
            return Ok(false);
        };
        if seg.first_seq >= self.end_seq {
            self.pending.clear();
            return Ok(false);
        }
        let path = seg.path;
        let file = File::open(&path).map_err(|e| WalError::io("open segment", &path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| WalError::io("stat segment", &path, e))?
            .len();
        let mut r = BufReader::with_capacity(256 << 10, file);
        let mut header = [0u8; HEADER_LEN];
        let header_ok = match r.read_exact(&mut header) {
            Ok(()) => check_header(&header, seg.first_seq),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(HeaderDamage::Short),
            Err(e) => return Err(WalError::io("read segment", &path, e)),
        };
        if let Err(d) = header_ok {
            return Err(WalError::Corrupt {
                path,
                offset: 0,
                damage: Damage::BadHeader(d),
            });
        }
        self.cur = Some(Cursor {
            r,
            path,
            offset: HEADER_LEN as u64,
            file_len,
            next_seq: seg.first_seq,
        });
        Ok(true)
    }

    fn next_inner(&mut self) -> Result<Option<Record>, WalError> {
        loop {
            let Some(cur) = self.cur.as_mut() else {
                if self.open_next()? {
                    continue;
                }
                return Ok(None);
            };
            if cur.next_seq >= self.end_seq {
                return Ok(None);
            }
            match cur.step(self.from_seq)? {
                Step::Record(r) => return Ok(Some(r)),
                Step::Skipped => {}
                Step::End => {
                    let (path, offset) = (cur.path.clone(), cur.offset);
                    self.cur = None;
                    if self.pending.is_empty() {
                        return Err(WalError::Corrupt {
                            path,
                            offset,
                            damage: Damage::UnexpectedEnd,
                        });
                    }
                }
            }
        }
    }
}

impl Iterator for WalReader {
    type Item = Result<Record, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_inner().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
            self.cur = None;
        }
        item
    }
}

impl Cursor {
    fn corrupt(&self, damage: Damage) -> WalError {
        WalError::Corrupt {
            path: self.path.clone(),
            offset: self.offset,
            damage,
        }
    }

    fn io_err(&self, e: io::Error) -> WalError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.corrupt(Damage::IncompleteRecord)
        } else {
            WalError::io("read segment", &self.path, e)
        }
    }

    /// Reads the next record, or skips it if it ends at or before `from_seq`.
    fn step(&mut self, from_seq: u64) -> Result<Step, WalError> {
        let remaining = self.file_len.saturating_sub(self.offset);
        if remaining == 0 {
            return Ok(Step::End);
        }
        if remaining < RECORD_HEADER_LEN as u64 {
            return Err(self.corrupt(Damage::IncompleteRecord));
        }
        let mut hb = [0u8; RECORD_HEADER_LEN];
        self.r.read_exact(&mut hb).map_err(|e| self.io_err(e))?;
        let h = RecordHeader::decode(&hb);
        let len = u64::from(h.len);
        if len > remaining - RECORD_HEADER_LEN as u64 {
            return Err(self.corrupt(Damage::IncompleteRecord));
        }
        if h.first_seq != self.next_seq {
            let expected = self.next_seq;
            let found = h.first_seq;
            return Err(self.corrupt(Damage::SequenceMismatch { expected, found }));
        }
        if h.count == 0 {
            return Err(self.corrupt(Damage::ZeroCount));
        }
        if h.first_seq.checked_add(u64::from(h.count)).is_none() {
            return Err(self.corrupt(Damage::SeqOverflow));
        }
        let step = if h.end_seq() <= from_seq {
            // len fits in i64: it is a u32.
            self.r
                .seek_relative(i64::from(h.len))
                .map_err(|e| self.io_err(e))?;
            Step::Skipped
        } else {
            let mut payload = Vec::with_capacity(h.len as usize);
            (&mut self.r)
                .take(len)
                .read_to_end(&mut payload)
                .map_err(|e| self.io_err(e))?;
            if payload.len() as u64 != len {
                return Err(self.corrupt(Damage::IncompleteRecord));
            }
            let mut crc = h.crc_hasher();
            crc.update(&payload);
            if crc.finalize() != h.crc {
                return Err(self.corrupt(Damage::ChecksumMismatch));
            }
            Step::Record(Record {
                first_seq: h.first_seq,
                count: h.count,
                payload,
            })
        };
        self.offset += RECORD_HEADER_LEN as u64 + len;
        self.next_seq = h.end_seq();
        Ok(step)
    }
}
