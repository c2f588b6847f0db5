//! The outbox: every notification is written to disk (fsynced) before anything tries to send
//! it, and stays there until its notifier confirms delivery.
//!
//! One file per (notification, notifier) in `outbox/`, named by creation time, fingerprint,
//! sequence and notifier, so files sort in the order they were made and the same
//! notification produced twice (replayed after a crash) lands on the same name and is kept
//! once. Delivered entries move to `sent/` and are remembered for a day, so a replay does not
//! send them again either.

use crate::engine::Notification;
use sawmill_core::durable::{sync_dir, write_then_rename};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How long delivered entries are remembered.
pub const SENT_KEEP_NANOS: i64 = 24 * 3_600_000_000_000;

/// One notification for one notifier.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub notifier: String,
    pub notification: Notification,
}

/// Why an entry could not be kept or moved.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode outbox entry {name}: {source}")]
    Encode {
        name: String,
        source: serde_json::Error,
    },
    #[error("cannot write outbox entry {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot move delivered outbox entry {name}: {source}")]
    Deliver {
        name: String,
        source: std::io::Error,
    },
}

/// The outbox directory pair.
pub struct Outbox {
    pending: PathBuf,
    sent: PathBuf,
}

fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

impl Outbox {
    pub fn open(dir: &Path) -> Result<Outbox, OutboxError> {
        let pending = dir.join("outbox");
        let sent = dir.join("sent");
        for d in [&pending, &sent] {
            std::fs::create_dir_all(d).map_err(|source| OutboxError::CreateDir {
                path: d.clone(),
                source,
            })?;
        }
        Ok(Outbox { pending, sent })
    }

    fn name(entry: &Entry) -> String {
        let n = &entry.notification;
        format!(
            "{:020}-{}-{:010}-{}-{}.json",
            n.created_at.max(0),
            n.fingerprint,
            n.sequence,
            safe(&n.state),
            safe(&entry.notifier)
        )
    }

    /// The name without the creation time: what identifies a notification across replays.
    fn identity(name: &str) -> &str {
        name.split_once('-').map(|(_, rest)| rest).unwrap_or(name)
    }

    fn known(&self, identity: &str) -> bool {
        for dir in [&self.pending, &self.sent] {
            if let Ok(list) = std::fs::read_dir(dir) {
                for e in list.flatten() {
                    if let Some(n) = e.file_name().to_str() {
                        if Outbox::identity(n) == identity {
                            return true;
                        }
                    }
                }
            }
        }
        false
    }

    /// Writes the entries durably (fsync, rename, directory fsync); entries already pending or
    /// sent are skipped. Returns how many were added.
    pub fn put(&self, entries: &[Entry]) -> Result<usize, OutboxError> {
        let mut added = 0;
        for entry in entries {
            let name = Outbox::name(entry);
            if self.known(Outbox::identity(&name)) {
                continue;
            }
            let path = self.pending.join(&name);
            let tmp = self.pending.join(format!(".{name}.tmp"));
            let bytes = serde_json::to_vec(entry).map_err(|source| OutboxError::Encode {
                name: name.clone(),
                source,
            })?;
            write_then_rename(&tmp, &path, &bytes, None)
                .map_err(|source| OutboxError::Write { path, source })?;
            added += 1;
        }
        if added > 0 {
            // best effort: the entries themselves are fsynced
            let _ = sync_dir(&self.pending);
        }
        Ok(added)
    }

    /// Pending entries of `notifier`, oldest first: (file name, entry).
    pub fn pending(&self, notifier: &str) -> Vec<(String, Entry)> {
        let suffix = format!("-{}.json", safe(notifier));
        let mut names: Vec<String> = std::fs::read_dir(&self.pending)
            .map(|list| {
                list.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| !n.starts_with('.') && n.ends_with(&suffix))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .into_iter()
            .filter_map(|n| {
                let bytes = std::fs::read(self.pending.join(&n)).ok()?;
                match serde_json::from_slice::<Entry>(&bytes) {
                    Ok(e) if e.notifier == notifier => Some((n, e)),
                    _ => None,
                }
            })
            .collect()
    }

    /// Every pending entry count, by notifier.
    pub fn pending_count(&self) -> usize {
        std::fs::read_dir(&self.pending)
            .map(|l| {
                l.flatten()
                    .filter(|e| e.file_name().to_str().is_some_and(|n| !n.starts_with('.')))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Marks an entry delivered.
    pub fn delivered(&self, name: &str) -> Result<(), OutboxError> {
        std::fs::rename(self.pending.join(name), self.sent.join(name)).map_err(|source| {
            OutboxError::Deliver {
                name: name.to_string(),
                source,
            }
        })?;
        let _ = sync_dir(&self.pending);
        Ok(())
    }

    /// Forgets delivered entries older than a day.
    pub fn prune(&self, now: i64) {
        let Ok(list) = std::fs::read_dir(&self.sent) else {
            return;
        };
        for e in list.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let created: i64 = name
                .split('-')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            if now - created > SENT_KEEP_NANOS {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn note(seq: u64, created: i64) -> Notification {
        Notification {
            tenant: None,
            rule: "r".into(),
            state: "firing".into(),
            severity: "critical".into(),
            group: BTreeMap::new(),
            count: 3,
            condition: "> 2".into(),
            window: "1m".into(),
            starts_at: "x".into(),
            ends_at: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            fingerprint: "00ff".into(),
            sequence: seq,
            samples: vec![],
            notify: vec!["oncall".into()],
            created_at: created,
            repeat: false,
        }
    }

    #[test]
    fn entries_are_kept_once_until_delivered_and_remembered_after() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let entry = |seq, created| Entry {
            notifier: "oncall".into(),
            notification: note(seq, created),
        };
        assert_eq!(outbox.put(&[entry(1, 10), entry(2, 20)]).unwrap(), 2);
        // the same notification replayed later (another creation time): kept once
        assert_eq!(outbox.put(&[entry(1, 15)]).unwrap(), 0);
        let pending = outbox.pending("oncall");
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].1.notification.sequence, 1);
        assert!(outbox.pending("other").is_empty());
        outbox.delivered(&pending[0].0).unwrap();
        assert_eq!(outbox.pending("oncall").len(), 1);
        // delivered and replayed: not sent again
        assert_eq!(outbox.put(&[entry(1, 30)]).unwrap(), 0);
        outbox.prune(10 + SENT_KEEP_NANOS + 1);
        assert_eq!(outbox.put(&[entry(1, 30)]).unwrap(), 1);
    }
}
