//! API keys: creation, listing, revocation and lookup.
//!
//! Keys live in `<data_dir>/keys.json`, one entry per key with its id, tenant, scopes and the
//! SHA-256 of the key (the key itself is shown once, at creation, and never stored). A key
//! reads `smk_<id>_<secret>`: the id finds the entry, the hash of the whole key proves it. Keys
//! carry 256 random bits, so a fast hash is enough (as for GitHub or Stripe tokens): there is
//! nothing to brute-force.
//!
//! The `sawmill keys` commands change the file under an exclusive lock and replace it
//! atomically; a running server notices the change at the next request (it compares the
//! file's identity and modification time) and reloads it. Revoked keys stay in the file, so
//! revoking the last key never turns the server open.

use anyhow::Context;
use parking_lot::Mutex;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file that holds the keys, under the data directory.
pub const KEYS_FILE: &str = "keys.json";
const KEY_PREFIX: &str = "smk_";

/// A scope name that is not one of `ingest`, `search`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope '{0}': use ingest, search or admin")]
pub struct UnknownScope(pub String);

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send events.
    Ingest,
    /// Search, histograms, alert and restore listings.
    Search,
    /// Silences, restores, flush, reloads and metrics.
    Admin,
}

impl Scope {
    pub fn parse(text: &str) -> Result<Scope, UnknownScope> {
        match text {
            "ingest" => Ok(Scope::Ingest),
            "search" => Ok(Scope::Search),
            "admin" => Ok(Scope::Admin),
            other => Err(UnknownScope(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Search => "search",
            Scope::Admin => "admin",
        }
    }
}

pub use sawmill_core::tenant::check_tenant as validate_tenant;

/// One key as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyEntry {
    pub id: String,
    /// The tenant the key acts for; `None`: an operator key, for every tenant.
    pub tenant: Option<String>,
    pub scopes: Vec<Scope>,
    /// `sha256:<hex>` of the whole key.
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl KeyEntry {
    pub fn active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeysFile {
    version: u32,
    keys: Vec<KeyEntry>,
}

fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn read_file(path: &Path) -> anyhow::Result<KeysFile> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a valid keys file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeysFile {
            version: 1,
            keys: Vec::new(),
        }),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Runs `change` on the keys file under its lock and replaces the file atomically.
fn modify<T>(
    data_dir: &Path,
    change: impl FnOnce(&mut KeysFile) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let lock_path = data_dir.join("keys.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    let path = data_dir.join(KEYS_FILE);
    let mut file = read_file(&path)?;
    file.version = 1;
    let out = change(&mut file)?;
    let text = serde_json::to_vec_pretty(&file).context("cannot encode the keys")?;
    sawmill_core::durable::replace_private_file(&path, &text)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(out)
}

/// A key just created: the secret is in `key`, shown once.
pub struct Created {
    pub entry: KeyEntry,
    pub key: String,
}

/// Creates a key for `tenant` (`None`: every tenant) with `scopes`.
pub fn create(
    data_dir: &Path,
    tenant: Option<&str>,
    scopes: &[Scope],
    name: Option<&str>,
) -> anyhow::Result<Created> {
    if let Some(t) = tenant {
        validate_tenant(t)?;
    }
    anyhow::ensure!(
        !scopes.is_empty(),
        "give at least one --scope (ingest, search, admin)"
    );
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let mut rng = rand::rngs::OsRng;
    let mut id_bytes = [0u8; 6];
    rng.fill_bytes(&mut id_bytes);
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let id: String = id_bytes.iter().map(|b| format!("{b:02x}")).collect();
    use base64::Engine;
    let key = format!(
        "{KEY_PREFIX}{id}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let entry = KeyEntry {
        id: id.clone(),
        tenant: tenant.map(str::to_string),
        scopes,
        hash: hash_key(&key),
        name: name.map(str::to_string),
        created_at: now_rfc3339(),
        revoked_at: None,
    };
    let stored = entry.clone();
    modify(data_dir, move |file| {
        anyhow::ensure!(
            file.keys.iter().all(|k| k.id != stored.id),
            "key id collision; run the command again"
        );
        file.keys.push(stored);
        Ok(())
    })?;
    Ok(Created { entry, key })
}

/// Every key, revoked ones included, oldest first.
pub fn list(data_dir: &Path) -> anyhow::Result<Vec<KeyEntry>> {
    Ok(read_file(&data_dir.join(KEYS_FILE))?.keys)
}

/// Revokes key `id`; `Ok(false)` if it was already revoked.
pub fn revoke(data_dir: &Path, id: &str) -> anyhow::Result<(KeyEntry, bool)> {
    modify(data_dir, |file| {
        let entry = file
            .keys
            .iter_mut()
            .find(|k| k.id == id)
            .with_context(|| format!("no key with id '{id}' (see `sawmill keys list`)"))?;
        let newly = entry.revoked_at.is_none();
        if newly {
            entry.revoked_at = Some(now_rfc3339());
        }
        Ok((entry.clone(), newly))
    })
}

/// Whom a request speaks for, once its key is checked.
#[derive(Clone, Debug)]
pub struct Grant {
    pub key_id: String,
    /// `None`: every tenant.
    pub tenant: Option<String>,
    pub scopes: Vec<Scope>,
}

/// Why a key was refused (all answered alike, so that nobody learns which keys exist).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    Unknown,
    Revoked,
}

/// The keys as a running server sees them, reloaded when the file changes.
pub struct KeyRing {
    path: PathBuf,
    state: Mutex<Loaded>,
}

struct Loaded {
    /// (device, inode, mtime ns, length) of the file last read; `None`: no file.
    stamp: Option<(u64, u64, i128, u64)>,
    keys: Arc<Keys>,
}

/// One loaded version of the keys file.
#[derive(Default)]
pub struct Keys {
    by_id: HashMap<String, KeyEntry>,
}

impl Keys {
    /// True when no key was ever created: the server may run open on loopback.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Keys in the file, and those not revoked.
    pub fn counts(&self) -> (usize, usize) {
        let active = self.by_id.values().filter(|k| k.active()).count();
        (self.by_id.len(), active)
    }

    pub fn check(&self, key: &str) -> Result<Grant, Refused> {
        let rest = key.strip_prefix(KEY_PREFIX).ok_or(Refused::Malformed)?;
        let (id, _) = rest.split_once('_').ok_or(Refused::Malformed)?;
        let entry = self.by_id.get(id).ok_or(Refused::Unknown)?;
        if entry.hash != hash_key(key) {
            return Err(Refused::Unknown);
        }
        if !entry.active() {
            return Err(Refused::Revoked);
        }
        Ok(Grant {
            key_id: entry.id.clone(),
            tenant: entry.tenant.clone(),
            scopes: entry.scopes.clone(),
        })
    }
}

fn stamp(path: &Path) -> std::io::Result<Option<(u64, u64, i128, u64)>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some((
            m.dev(),
            m.ino(),
            i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            m.len(),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl KeyRing {
    /// Loads the keys of `data_dir`.
    pub fn open(data_dir: &Path) -> anyhow::Result<KeyRing> {
        let ring = KeyRing {
            path: data_dir.join(KEYS_FILE),
            state: Mutex::new(Loaded {
                stamp: None,
                keys: Arc::new(Keys::default()),
            }),
        };
        ring.current()?;
        Ok(ring)
    }

    /// The keys now in force, reloading the file if it changed since last read. On a file
    /// that cannot be read the previous keys stay in force (and the error is returned once
    /// per change, for the log).
    pub fn current(&self) -> anyhow::Result<Arc<Keys>> {
        Ok(self.current_or_reloaded()?.0)
    }

    /// Like [`KeyRing::current`], also saying whether the file was read again just now.
    pub fn current_or_reloaded(&self) -> anyhow::Result<(Arc<Keys>, bool)> {
        let now =
            stamp(&self.path).with_context(|| format!("cannot stat {}", self.path.display()))?;
        let mut state = self.state.lock();
        if now == state.stamp {
            return Ok((state.keys.clone(), false));
        }
        state.stamp = now;
        let file = read_file(&self.path)?;
        let keys = Keys {
            by_id: file.keys.into_iter().map(|k| (k.id.clone(), k)).collect(),
        };
        state.keys = Arc::new(keys);
        Ok((state.keys.clone(), true))
    }

    /// The keys last loaded, without looking at the file.
    pub fn loaded(&self) -> Arc<Keys> {
        self.state.lock().keys.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_keys_are_checked_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path()).unwrap();
        assert!(ring.current().unwrap().is_empty());
        let a = create(
            dir.path(),
            Some("acme"),
            &[Scope::Search, Scope::Ingest],
            None,
        )
        .unwrap();
        let keys = ring.current().unwrap();
        let grant = keys.check(&a.key).unwrap();
        assert_eq!(grant.tenant.as_deref(), Some("acme"));
        assert_eq!(grant.scopes, vec![Scope::Ingest, Scope::Search]);
        // a wrong secret behind a valid id, a bare id, garbage
        let forged = format!("{}x", &a.key[..a.key.len() - 1]);
        assert_eq!(keys.check(&forged).unwrap_err(), Refused::Unknown);
        assert_eq!(keys.check("nope").unwrap_err(), Refused::Malformed);
        let stored = std::fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap();
        assert!(!stored.contains(&a.key[KEY_PREFIX.len() + 13..]));
        let (_, newly) = revoke(dir.path(), &a.entry.id).unwrap();
        assert!(newly);
        assert_eq!(
            ring.current().unwrap().check(&a.key).unwrap_err(),
            Refused::Revoked
        );
        assert!(!ring.current().unwrap().is_empty());
        assert!(revoke(dir.path(), "000000000000").is_err());
    }
}
