//! Durable file replacement, for every small state file sawmill keeps (the archive's and the
//! alert worker's state, outbox entries, silences, idempotency keys, API keys, the index
//! position, the file shipper's offsets): the new content goes to a temporary file that is
//! fsynced and renamed over the old one, and the folder is fsynced, so a crash leaves the old
//! file or the new one, never a part of one.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A JSON state file that cannot be read, decoded, encoded or written.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is corrupt: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot encode {}: {source}", path.display())]
    Encode {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// Reads a JSON state file; `None` when there is none yet.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StateFileError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StateFileError::Corrupt {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateFileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Replaces a JSON state file durably ([`replace_file`]).
pub fn save_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), StateFileError> {
    let bytes = serde_json::to_vec(value).map_err(|source| StateFileError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    replace_file(path, &bytes).map_err(|source| StateFileError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Replaces `path` with `bytes` durably, through `<path>.tmp`.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_then_rename(&tmp_path(path), path, bytes, None)?;
    sync_parent(path)
}

/// Like [`replace_file`], for a file only its owner may read (mode 0600 from its creation).
pub fn replace_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_then_rename(&tmp_path(path), path, bytes, Some(0o600))?;
    sync_parent(path)
}

/// Writes `bytes` to `tmp`, fsyncs it and renames it to `path`, without syncing the folder:
/// for a writer that renames several files into one folder and syncs it once
/// ([`sync_dir`]).
pub fn write_then_rename(
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
    mode: Option<u32>,
) -> io::Result<()> {
    let mut options = File::options();
    options.create(true).truncate(true).write(true);
    #[cfg(unix)]
    if let Some(mode) = mode {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = options.open(tmp)?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        // a temporary file left by an earlier crash keeps its old mode: set it again
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    }
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(tmp, path)
}

/// Fsyncs a folder, so that renames and new files in it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// `<path>.tmp`, next to `path`.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_state_round_trips_and_says_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load_json::<Vec<u32>>(&path).unwrap(), None);
        save_json(&path, &vec![1u32, 2]).unwrap();
        assert_eq!(load_json::<Vec<u32>>(&path).unwrap(), Some(vec![1, 2]));
        std::fs::write(&path, b"{not json").unwrap();
        let e = load_json::<Vec<u32>>(&path).unwrap_err();
        assert!(matches!(e, StateFileError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("state.json is corrupt"), "{e}");
    }

    #[test]
    fn a_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        replace_file(&path, b"first").unwrap();
        replace_file(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        // a leftover temporary file with a looser mode
        std::fs::write(dir.path().join("keys.json.tmp"), b"old").unwrap();
        std::fs::set_permissions(
            dir.path().join("keys.json.tmp"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        replace_private_file(&path, b"secret").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
    }
}
