//! Recovery on open: find the segments, validate every record, cut damaged
//! tails, move segments with bad headers aside and work out where the log
//! continues.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::{Damage, HeaderDamage, WalError};
use crate::faults::Faults;
use crate::format::{
    check_header, parse_segment_file_name, RecordHeader, HEADER_LEN, RECORD_HEADER_LEN, TMP_SUFFIX,
};
use crate::segment::{create_segment, move_aside, sync_dir, SegmentEntry};

/// What `Wal::open` found and repaired.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// Live segments after recovery (including a newly created active one).
    pub segments: usize,
    /// Valid records found.
    pub records: u64,
    /// Seq the next append will get.
    pub next_seq: u64,
    /// Oldest seq present on disk (== `next_seq` if the log is empty).
    pub first_seq: u64,
    /// Segments whose tail was cut off.
    pub truncated: Vec<TruncatedTail>,
    /// Segments with a bad header that were renamed to `.corrupt`.
    pub moved_aside: Vec<MovedAside>,
    /// Seq ranges missing between the surviving segments, in order. Readers
    /// see these as jumps in `first_seq`.
    pub gaps: Vec<Range<u64>>,
}

impl RecoveryReport {
    /// True if nothing had to be cut or moved aside and there are no gaps.
    pub fn is_clean(&self) -> bool {
        self.truncated.is_empty() && self.moved_aside.is_empty() && self.gaps.is_empty()
    }
}

/// A segment tail that recovery cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncatedTail {
    /// Segment file.
    pub path: PathBuf,
    /// Offset of the first bad record; the file now ends here.
    pub offset: u64,
    /// Bytes removed.
    pub bytes_cut: u64,
    /// Why the record at `offset` was rejected.
    pub reason: Damage,
    /// Whether this was the last segment (a torn tail after a crash, nothing
    /// acknowledged is lost) or an earlier one (real corruption).
    pub last_segment: bool,
    /// Acknowledged seqs that are gone, when known: for a non-last segment,
    /// from the bad record up to the next segment's first seq.
    pub lost: Option<Range<u64>>,
}

/// A segment with an unreadable header, renamed so it is kept but ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedAside {
    /// Original path.
    pub path: PathBuf,
    /// Where the file is now.
    pub moved_to: PathBuf,
    /// What is wrong with the header.
    pub reason: HeaderDamage,
    /// Seqs of the records that still look valid behind the bad header
    /// (empty if none). They are not served, but never handed out again.
    pub seqs: Range<u64>,
}

/// Result of recovery: the report, the live segments (last one active) and
/// the active segment opened for appending.
pub(crate) struct Recovered {
    pub report: RecoveryReport,
    pub segments: Vec<SegmentEntry>,
    pub active: File,
}

struct Candidate {
    path: PathBuf,
    first_seq: u64,
    file: File,
    len: u64,
}

pub(crate) fn recover(dir: &Path) -> Result<Recovered, WalError> {
    fs::create_dir_all(dir).map_err(|e| WalError::io("create wal directory", dir, e))?;
    let mut report = RecoveryReport::default();
    let (good, max_seen_seq) = open_segments(dir, &mut report)?;
    let mut segments = validate_records(good, &mut report)?;
    // Where the log continues; moved-aside segments are a lower bound so that
    // seqs are never handed out twice.
    let last_end = segments.last().map_or(0, |s| s.end_seq);
    let next_seq = last_end.max(max_seen_seq);
    report.gaps = find_gaps(&segments, next_seq);
    let active = open_active(dir, &mut segments, next_seq)?;
    report.segments = segments.len();
    report.next_seq = next_seq;
    report.first_seq = crate::wal::oldest_seq(&segments);
    tracing::info!(
        dir = %dir.display(),
        segments = report.segments,
        records = report.records,
        first_seq = report.first_seq,
        next_seq = report.next_seq,
        truncated = report.truncated.len(),
        moved_aside = report.moved_aside.len(),
        "wal recovered"
    );
    Ok(Recovered {
        report,
        segments,
        active,
    })
}

/// The segments with a valid header, in seq order; the others are moved aside (and
/// reported). Also the highest seq any segment reaches, moved-aside ones included.
fn open_segments(
    dir: &Path,
    report: &mut RecoveryReport,
) -> Result<(Vec<Candidate>, u64), WalError> {
    let mut good = Vec::new();
    let mut max_seen_seq = 0u64;
    for (first_seq, path) in list_segments(dir)? {
        max_seen_seq = max_seen_seq.max(first_seq);
        let file = File::open(&path).map_err(|e| WalError::io("open segment", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| WalError::io("stat segment", &path, e))?
            .len();
        let mut header = Vec::with_capacity(HEADER_LEN);
        (&file)
            .take(HEADER_LEN as u64)
            .read_to_end(&mut header)
            .map_err(|e| WalError::io("read segment header", &path, e))?;
        let candidate = Candidate {
            path,
            first_seq,
            file,
            len,
        };
        match check_header(&header, first_seq) {
            Ok(()) => good.push(candidate),
            Err(reason) => {
                let moved = move_aside_damaged(dir, candidate, reason)?;
                max_seen_seq = max_seen_seq.max(moved.seqs.end);
                report.moved_aside.push(moved);
            }
        }
    }
    Ok((good, max_seen_seq))
}

/// Moves a segment with a damaged header out of the way. The records behind a damaged
/// header are often intact: how far they reach is reported so that their seqs are never
/// reused.
fn move_aside_damaged(
    dir: &Path,
    candidate: Candidate,
    reason: HeaderDamage,
) -> Result<MovedAside, WalError> {
    let seqs = candidate.first_seq..scan_segment(&candidate, None)?.end_seq;
    let Candidate { path, file, .. } = candidate;
    drop(file);
    let moved_to = move_aside(&path)?;
    sync_dir(dir)?;
    tracing::error!(
        path = %path.display(),
        moved_to = %moved_to.display(),
        reason = %reason,
        seq_first = seqs.start,
        seq_end = seqs.end,
        "moved aside wal segment with bad header"
    );
    Ok(MovedAside {
        path,
        moved_to,
        reason,
        seqs,
    })
}

/// Validates every record, cutting each segment at its first bad one.
fn validate_records(
    good: Vec<Candidate>,
    report: &mut RecoveryReport,
) -> Result<Vec<SegmentEntry>, WalError> {
    let mut segments = Vec::with_capacity(good.len());
    for (i, c) in good.iter().enumerate() {
        let next_first = good.get(i + 1).map(|c| c.first_seq);
        let scan = scan_segment(c, next_first)?;
        if let Some(reason) = scan.damage {
            let tail = cut_tail(c, scan.valid_len, scan.end_seq, reason, next_first)?;
            report.truncated.push(tail);
        }
        report.records += scan.records;
        segments.push(SegmentEntry {
            path: c.path.clone(),
            first_seq: c.first_seq,
            end_seq: scan.end_seq,
            bytes: scan.valid_len,
        });
    }
    Ok(segments)
}

/// The ranges of seqs no segment holds, below `next_seq`.
fn find_gaps(segments: &[SegmentEntry], next_seq: u64) -> Vec<Range<u64>> {
    let mut gaps = Vec::new();
    let mut prev_end: Option<u64> = None;
    for s in segments {
        if let Some(p) = prev_end.filter(|p| *p < s.first_seq) {
            gaps.push(p..s.first_seq);
        }
        prev_end = Some(s.end_seq);
    }
    let last_end = segments.last().map_or(0, |s| s.end_seq);
    if !segments.is_empty() && last_end < next_seq {
        gaps.push(last_end..next_seq);
    }
    for gap in &gaps {
        tracing::warn!(
            first = gap.start,
            end = gap.end,
            "gap in wal sequence numbers"
        );
    }
    gaps
}

/// The segment appends go to: the last one when it ends at `next_seq`, else a new one.
fn open_active(
    dir: &Path,
    segments: &mut Vec<SegmentEntry>,
    next_seq: u64,
) -> Result<File, WalError> {
    match segments.last() {
        Some(last) if last.end_seq == next_seq => OpenOptions::new()
            .append(true)
            .open(&last.path)
            .map_err(|e| WalError::io("open active segment", &last.path, e)),
        _ => {
            let (file, path) = create_segment(dir, next_seq, &Faults::default())?;
            segments.push(SegmentEntry {
                path,
                first_seq: next_seq,
                end_seq: next_seq,
                bytes: HEADER_LEN as u64,
            });
            Ok(file)
        }
    }
}

/// Segment files in `dir` sorted by seq. Leftover temporary files from an
/// interrupted segment creation hold only a header and are removed.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut found = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| WalError::io("list wal directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("list wal directory", dir, e))?;
        let path = entry.path();
        let is_file = entry
            .file_type()
            .map_err(|e| WalError::io("stat", &path, e))?
            .is_file();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !is_file {
            continue;
        }
        if name.ends_with(TMP_SUFFIX) {
            tracing::debug!(path = %path.display(), "removing leftover temporary segment");
            fs::remove_file(&path)
                .map_err(|e| WalError::io("remove temporary segment", &path, e))?;
        } else if let Some(seq) = parse_segment_file_name(&name) {
            found.push((seq, path));
        } else if name.ends_with(".wal") {
            tracing::warn!(path = %path.display(), "ignoring file with malformed segment name");
        }
    }
    found.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(found)
}

struct Scan {
    valid_len: u64,
    end_seq: u64,
    records: u64,
    damage: Option<Damage>,
}

/// Reads every record of a segment, stopping at the first invalid one.
/// `next_first` is the first seq of the next segment: records reaching past it
/// are invalid. I/O errors are returned as errors, never treated as damage.
fn scan_segment(c: &Candidate, next_first: Option<u64>) -> Result<Scan, WalError> {
    let io_err = |e: io::Error| WalError::io("read segment", &c.path, e);
    let mut r = BufReader::with_capacity(1 << 20, &c.file);
    r.seek(SeekFrom::Start(HEADER_LEN as u64)).map_err(io_err)?;
    let mut scan = Scan {
        valid_len: HEADER_LEN as u64,
        end_seq: c.first_seq,
        records: 0,
        damage: None,
    };
    loop {
        let remaining = c.len.saturating_sub(scan.valid_len);
        if remaining == 0 {
            return Ok(scan);
        }
        let damage = match read_record(&mut r, remaining, scan.end_seq, next_first) {
            Ok(Ok(header)) => {
                scan.valid_len += RECORD_HEADER_LEN as u64 + u64::from(header.len);
                scan.end_seq = header.end_seq();
                scan.records += 1;
                continue;
            }
            Ok(Err(damage)) => damage,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Damage::IncompleteRecord,
            Err(e) => return Err(io_err(e)),
        };
        scan.damage = Some(damage);
        return Ok(scan);
    }
}

/// Reads and validates one record, hashing the payload straight from the
/// read buffer.
fn read_record(
    r: &mut BufReader<&File>,
    remaining: u64,
    expected: u64,
    next_first: Option<u64>,
) -> io::Result<Result<RecordHeader, Damage>> {
    if remaining < RECORD_HEADER_LEN as u64 {
        return Ok(Err(Damage::IncompleteRecord));
    }
    let mut hb = [0u8; RECORD_HEADER_LEN];
    r.read_exact(&mut hb)?;
    let h = RecordHeader::decode(&hb);
    if u64::from(h.len) > remaining - RECORD_HEADER_LEN as u64 {
        return Ok(Err(Damage::IncompleteRecord));
    }
    let mut hasher = h.crc_hasher();
    let mut left = h.len as usize;
    while left > 0 {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(Err(Damage::IncompleteRecord));
        }
        let n = left.min(buf.len());
        hasher.update(&buf[..n]);
        r.consume(n);
        left -= n;
    }
    if hasher.finalize() != h.crc {
        return Ok(Err(Damage::ChecksumMismatch));
    }
    if h.count == 0 {
        return Ok(Err(Damage::ZeroCount));
    }
    if h.first_seq.checked_add(u64::from(h.count)).is_none() {
        return Ok(Err(Damage::SeqOverflow));
    }
    if h.first_seq != expected {
        return Ok(Err(Damage::SequenceMismatch {
            expected,
            found: h.first_seq,
        }));
    }
    if let Some(next_first_seq) = next_first.filter(|n| h.end_seq() > *n) {
        return Ok(Err(Damage::OverlapsNextSegment { next_first_seq }));
    }
    Ok(Ok(h))
}

/// Truncates a segment after its last valid record and logs what was lost.
fn cut_tail(
    c: &Candidate,
    valid_len: u64,
    end_seq: u64,
    reason: Damage,
    next_first: Option<u64>,
) -> Result<TruncatedTail, WalError> {
    let file = OpenOptions::new()
        .write(true)
        .open(&c.path)
        .map_err(|e| WalError::io("open segment for repair", &c.path, e))?;
    file.set_len(valid_len)
        .map_err(|e| WalError::io("truncate segment", &c.path, e))?;
    file.sync_all()
        .map_err(|e| WalError::io("fsync segment", &c.path, e))?;
    let bytes_cut = c.len - valid_len;
    let lost = next_first.filter(|n| end_seq < *n).map(|n| end_seq..n);
    let path = c.path.display();
    match (&lost, next_first) {
        (_, None) => tracing::warn!(
            path = %path, offset = valid_len, bytes_cut, reason = %reason,
            "cut torn tail of last wal segment"
        ),
        (Some(lost), Some(_)) => tracing::error!(
            path = %path, offset = valid_len, bytes_cut, reason = %reason,
            lost_first = lost.start, lost_end = lost.end,
            "wal segment corrupt, acknowledged records lost"
        ),
        (None, Some(_)) => tracing::warn!(
            path = %path, offset = valid_len, bytes_cut, reason = %reason,
            "cut unacknowledged tail of wal segment"
        ),
    }
    Ok(TruncatedTail {
        path: c.path.clone(),
        offset: valid_len,
        bytes_cut,
        reason,
        last_segment: next_first.is_none(),
        lost,
    })
}
