//! Durable writes of the alerting files (the worker's state, outbox entries): a temporary
//! file, fsynced, renamed over the target, so a crash leaves the old file or the new one and
//! never a part of one.

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through the temporary file `tmp`: create, write, fsync, rename.
/// The caller fsyncs the folder ([`sync_dir`]) when the rename itself must survive a crash.
pub(crate) fn write_durably(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

/// Fsyncs a folder so that renames in it survive a crash (best effort: some file systems do
/// not support it).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
