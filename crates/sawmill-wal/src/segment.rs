//! Segment files: the in-memory list of live segments, creating a segment
//! durably, syncing the directory and moving damaged files aside.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::WalError;
use crate::faults::{FaultOp, Faults};
use crate::format::{encode_header, segment_file_name, TMP_SUFFIX};

/// One live segment. The last entry of the list is the active segment.
#[derive(Debug, Clone)]
pub(crate) struct SegmentEntry {
    pub path: PathBuf,
    /// Seq from the file name; the first record (if any) starts here.
    pub first_seq: u64,
    /// Seq after the last durable record (== `first_seq` if empty).
    pub end_seq: u64,
    /// Durable length in bytes, header included.
    pub bytes: u64,
}

/// Creates `<first_seq>.wal` holding only a header, durably: the header is
/// written to a temporary file, fsynced, renamed into place (replacing an
/// existing segment of the same name, which the writer only does for a
/// segment without durable records) and the directory is fsynced. A crash can
/// therefore never leave a `.wal` file with a torn header. Returns the file
/// opened for appending.
pub(crate) fn create_segment(
    dir: &Path,
    first_seq: u64,
    faults: &Faults,
) -> Result<(File, PathBuf), WalError> {
    let path = dir.join(segment_file_name(first_seq));
    let tmp = dir.join(format!("{first_seq:020}{TMP_SUFFIX}"));
    let result = write_new_segment(dir, &tmp, &path, first_seq, faults);
    if result.is_err() {
        // Best effort: a leftover temporary file is also removed on open.
        let _ = fs::remove_file(&tmp);
    }
    result.map(|file| (file, path))
}

fn write_new_segment(
    dir: &Path,
    tmp: &Path,
    path: &Path,
    first_seq: u64,
    faults: &Faults,
) -> Result<File, WalError> {
    match fs::remove_file(tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(WalError::io("remove stale temporary segment", tmp, e)),
    }
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(tmp)
        .map_err(|e| WalError::io("create segment", tmp, e))?;
    faults
        .check(FaultOp::Create)
        .map_err(|e| WalError::io("create segment", tmp, e))?;
    file.write_all(&encode_header(first_seq))
        .map_err(|e| WalError::io("write segment header", tmp, e))?;
    file.sync_all()
        .map_err(|e| WalError::io("fsync segment", tmp, e))?;
    fs::rename(tmp, path).map_err(|e| WalError::io("rename new segment", path, e))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Fsyncs a directory so that created, renamed or removed entries are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("fsync directory", dir, e))
}

/// Renames a damaged segment to `<name>.corrupt` (or `.corrupt.N` if that
/// exists) so it is no longer read but the data is kept for inspection.
pub(crate) fn move_aside(path: &Path) -> Result<PathBuf, WalError> {
    let with_suffix = |suffix: String| {
        let mut s = path.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let mut target = with_suffix(".corrupt".to_string());
    let mut n = 1;
    while target.exists() {
        target = with_suffix(format!(".corrupt.{n}"));
        n += 1;
    }
    fs::rename(path, &target).map_err(|e| WalError::io("move aside corrupt segment", path, e))?;
    Ok(target)
}
