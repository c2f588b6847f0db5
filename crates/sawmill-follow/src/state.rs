//! The follow mode's state file: for each followed file, its identity and the offset up to
//! which the server acknowledged its lines, plus the range of the batch being sent.
//!
//! The file is JSON, rewritten atomically (temporary file, fsync, rename, fsync of the
//! folder), so a crash leaves either the old or the new version. A lock file beside it keeps
//! two shippers from using the same state.

use std::path::{Path, PathBuf};

/// The layout version written to and expected in the file.
pub const VERSION: u32 = 1;

/// Why the state file could not be read, written or locked.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a sawmill follow state file; move it away to start over (every file is then shipped again from its beginning)", .path.display())]
    NotState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} has layout version {found}; this sawmill reads version {VERSION}", .path.display())]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "neither XDG_STATE_HOME nor HOME is set: say where to keep the offsets with --state FILE"
    )]
    NoHome,
    #[error("cannot create {}", .path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another `sawmill ingest --follow` is using {}; give each shipper its own --state", .path.display())]
    Locked { path: PathBuf },
    #[error("cannot lock {}", .path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The whole state file.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    pub version: u32,
    pub files: Vec<FileEntry>,
}

impl Default for StateFile {
    fn default() -> Self {
        StateFile {
            version: VERSION,
            files: Vec::new(),
        }
    }
}

/// One followed file.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// 16 hex digits chosen when the file was first seen; every batch's `Idempotency-Key`
    /// starts with it.
    pub id: String,
    /// The path the file was found at: the default `source` of its events, and where to look
    /// for it (renamed in the same folder) after a restart.
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    /// How many of the file's first bytes the fingerprint covers (at most 256).
    pub fingerprint_len: u64,
    /// FNV-1a 64 of those bytes, 16 hex digits.
    pub fingerprint: String,
    /// `text` or `ndjson`, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<crate::Format>,
    /// Every byte before this offset was acknowledged by the server (or held nothing to send).
    pub offset: u64,
    /// The batch being sent: after a crash it is sent again with the same bounds, hence the
    /// same `Idempotency-Key`, so the server ingests it at most once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending: Option<Span>,
}

/// A byte range `[start, end)` of a file.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

/// Reads the state file; a missing file is an empty state.
pub fn load(path: &Path) -> Result<StateFile, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StateFile::default()),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let state: StateFile =
        serde_json::from_slice(&bytes).map_err(|source| StateError::NotState {
            path: path.to_path_buf(),
            source,
        })?;
    if state.version != VERSION {
        return Err(StateError::Version {
            path: path.to_path_buf(),
            found: state.version,
        });
    }
    Ok(state)
}

/// Replaces the state file atomically and durably.
pub fn save(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    sawmill_core::durable::replace_file(path, bytes).map_err(|source| StateError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Where the state lives without `--state`: `$XDG_STATE_HOME/sawmill/`, else
/// `~/.local/state/sawmill/`, in a file named after a hash of the followed paths.
pub fn default_path(patterns: &[String]) -> Result<PathBuf, StateError> {
    let base = match std::env::var_os("XDG_STATE_HOME").map(PathBuf::from) {
        Some(p) if p.is_absolute() => p,
        _ => match std::env::var_os("HOME").map(PathBuf::from) {
            Some(home) if home.is_absolute() => home.join(".local").join("state"),
            _ => return Err(StateError::NoHome),
        },
    };
    let mut sorted: Vec<&str> = patterns.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let hash = sawmill_core::fnv1a64(sorted.join("\0").as_bytes());
    Ok(base
        .join("sawmill")
        .join(format!("follow-{hash:016x}.json")))
}

/// An exclusive lock on a state file, held while the shipper runs.
pub struct Lock {
    _file: std::fs::File,
}

/// Creates the state file's folder and locks `<state>.lock`.
pub fn lock(path: &Path) -> Result<Lock, StateError> {
    let dir = parent(path);
    std::fs::create_dir_all(&dir).map_err(|source| StateError::CreateDir {
        path: dir.clone(),
        source,
    })?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let lock_path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StateError::Lock {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Lock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(StateError::Locked {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StateError::Lock {
            path: lock_path,
            source,
        }),
    }
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> FileEntry {
        FileEntry {
            id: "00000000000000ff".into(),
            path: "/var/log/app.log".into(),
            dev: 2049,
            ino: 131,
            fingerprint_len: 12,
            fingerprint: "0123456789abcdef".into(),
            format: Some(crate::Format::Text),
            offset: 4096,
            sending: Some(Span {
                start: 4096,
                end: 8000,
            }),
        }
    }

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("state.json");
        let _lock = lock(&path).unwrap();
        assert_eq!(load(&path).unwrap(), StateFile::default());
        let mut state = StateFile::default();
        state.files.push(entry());
        save(&path, &serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(load(&path).unwrap(), state);
        state.files[0].sending = None;
        save(&path, &serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(load(&path).unwrap(), state);
        let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn a_second_shipper_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let first = lock(&path).unwrap();
        let err = lock(&path).err().expect("second lock refused").to_string();
        assert!(err.contains("another"), "{err}");
        drop(first);
        lock(&path).unwrap();
    }

    #[test]
    fn corrupt_or_foreign_files_are_refused_with_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{\"version\":1,\"files\":[{\"id\":").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("move it away"), "{err}");
        std::fs::write(&path, "{\"version\":7,\"files\":[]}").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("version 7"), "{err}");
    }

    #[test]
    fn default_path_depends_on_the_set_of_files_only() {
        let a = default_path(&["/b".into(), "/a".into()]);
        let b = default_path(&["/a".into(), "/b".into(), "/a".into()]);
        let c = default_path(&["/a".into()]);
        if let (Ok(a), Ok(b), Ok(c)) = (a, b, c) {
            assert_eq!(a, b);
            assert_ne!(a, c);
            let name = a.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with("follow-") && name.ends_with(".json"),
                "{name}"
            );
            assert!(a.parent().unwrap().ends_with("sawmill"));
        }
    }
}
