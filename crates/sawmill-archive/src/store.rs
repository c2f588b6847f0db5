//! Object stores the archive writes to: the local folder here, S3 in [`crate::s3`].
//!
//! Writes are create-only and idempotent: writing a key that already holds an object of the
//! same size succeeds without touching it (a retry after a lost answer), and a key is never
//! half-written (temporary file, fsync, rename).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// The S3 storage class (`STANDARD`, `GLACIER`, …); `None` for the local folder.
    pub storage_class: Option<String>,
}

/// Whether an object's bytes can be read now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readability {
    Readable,
    /// In GLACIER or DEEP_ARCHIVE: an S3 restore must be requested first.
    NeedsRestore,
    /// An S3 restore was requested and is still running.
    Restoring,
}

/// Why an object store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {key}: {source}")]
    Io {
        op: &'static str,
        key: String,
        source: std::io::Error,
    },
    #[error("{key} already exists with a different size ({existing} bytes, writing {writing})")]
    Conflict {
        key: String,
        existing: u64,
        writing: u64,
    },
    #[error("no object {0}")]
    NotFound(String),
    #[error("{0} is in a Glacier storage class: it needs an S3 restore before it can be read")]
    NeedsRestore(String),
    #[error("{op} {key}: {message}")]
    Remote {
        op: &'static str,
        key: String,
        /// What the store answered, readable (`NoSuchBucket: …`).
        message: String,
        /// The client's error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The local file to store could not be read.
    #[error("cannot {op} {}: {source}", path.display())]
    LocalFile {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid key {0}: keys are relative paths without '..'")]
    InvalidKey(String),
}

/// Where archive objects go.
pub trait ObjectStore: Send + Sync {
    /// Stores the file at `path` under `key`, create-only (see the module doc). The store
    /// may move the file: the caller must not use `path` afterwards.
    fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError>;
    /// Every object whose key starts with `prefix`, in key order.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;
    /// The bytes of an object.
    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;
    /// Whether an object exists under `key`.
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// Whether the object can be read now (`storage_class` as listed).
    fn readability(
        &self,
        _key: &str,
        _storage_class: Option<&str>,
    ) -> Result<Readability, StoreError> {
        Ok(Readability::Readable)
    }
    /// Asks the store to make a cold object readable for `days` (S3 `RestoreObject`; `bulk`
    /// is the cheaper, slower tier).
    fn request_restore(&self, key: &str, _days: u32, _bulk: bool) -> Result<(), StoreError> {
        Err(StoreError::NotFound(key.to_string()))
    }
    /// Where the store is, for logs: `fs:/path` or `s3://bucket/prefix`.
    fn describe(&self) -> String;
}

/// A local folder holding the same layout as a bucket.
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    pub fn new(root: impl Into<PathBuf>) -> Result<FsStore, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| StoreError::Io {
            op: "create archive folder",
            key: root.display().to_string(),
            source,
        })?;
        Ok(FsStore { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        if key.is_empty()
            || key.starts_with('/')
            || key.split('/').any(|part| part == ".." || part == ".")
        {
            return Err(StoreError::InvalidKey(key.to_string()));
        }
        Ok(self.root.join(key))
    }
}

fn io<'a>(op: &'static str, key: &'a str) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        key: key.to_string(),
        source,
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl ObjectStore for FsStore {
    fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        let target = self.path(key)?;
        let source = std::fs::metadata(path);
        if let Ok(existing) = std::fs::metadata(&target) {
            // a retry after the file was already moved in place, or the same object again
            let size = match source {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io("read", key)(e)),
                Ok(m) => m.len(),
            };
            if existing.len() == size {
                return Ok(());
            }
            return Err(StoreError::Conflict {
                key: key.to_string(),
                existing: existing.len(),
                writing: size,
            });
        }
        source.map_err(io("read", key))?;
        let dir = target
            .parent()
            .ok_or_else(|| StoreError::InvalidKey(key.to_string()))?;
        std::fs::create_dir_all(dir).map_err(io("create folder for", key))?;
        // on the same file system the file is moved in place, once it is on disk
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(io("fsync", key))?;
        if std::fs::rename(path, &target).is_ok() {
            sync_dir(dir);
            return Ok(());
        }
        let tmp = target.with_extension("zst.partial");
        {
            let mut src = File::open(path).map_err(io("read", key))?;
            let mut dst = File::create(&tmp).map_err(io("write", key))?;
            std::io::copy(&mut src, &mut dst).map_err(io("write", key))?;
            dst.flush().map_err(io("write", key))?;
            dst.sync_all().map_err(io("fsync", key))?;
        }
        std::fs::rename(&tmp, &target).map_err(io("rename into place", key))?;
        sync_dir(dir);
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("list", prefix)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io("list", prefix))?;
                let path = entry.path();
                let meta = entry.metadata().map_err(io("list", prefix))?;
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let key = rel
                    .to_string_lossy()
                    .replace(std::path::MAIN_SEPARATOR, "/");
                if key.starts_with(prefix) && !key.ends_with(".partial") {
                    out.push(ObjectInfo {
                        key,
                        size: meta.len(),
                        storage_class: None,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path(key)?;
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound(key.to_string()),
            _ => io("read", key)(e),
        })
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.path(key)?.is_file())
    }

    fn describe(&self) -> String {
        format!("fs:{}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_create_only_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path().join("archive")).unwrap();
        let src = dir.path().join("batch");
        std::fs::write(&src, b"hello").unwrap();
        store.put_file("a/b/c.ndjson.zst", &src).unwrap();
        std::fs::write(&src, b"hello").unwrap();
        store.put_file("a/b/c.ndjson.zst", &src).unwrap();
        assert_eq!(store.get("a/b/c.ndjson.zst").unwrap(), b"hello");
        std::fs::write(&src, b"different").unwrap();
        assert!(matches!(
            store.put_file("a/b/c.ndjson.zst", &src),
            Err(StoreError::Conflict { .. })
        ));
        let listed = store.list("a/").unwrap();
        assert_eq!(
            listed,
            vec![ObjectInfo {
                key: "a/b/c.ndjson.zst".into(),
                size: 5,
                storage_class: None,
            }]
        );
        assert!(store.list("z/").unwrap().is_empty());
        assert!(matches!(store.get("a/x"), Err(StoreError::NotFound(_))));
        assert!(matches!(
            store.put_file("../escape", &src),
            Err(StoreError::InvalidKey(_))
        ));
    }
}
