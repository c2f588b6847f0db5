//! The archive's durable progress: its WAL position and the batches written above it.
//!
//! Exactly-once works like this: before a sealed batch is written, its identity (tenant,
//! hour, first and last sequence number, key) is saved as *pending*; once the store confirms
//! the write it is marked *done*. After a crash, a pending batch whose object exists is done
//! and one whose object is missing is forgotten (its events are still in the WAL and are
//! batched again). Replay skips every event a done batch holds, so nothing is archived twice
//! and nothing is lost.

use serde::{Deserialize, Serialize};
use std::path::Path;

pub use sawmill_core::durable::StateFileError as StateError;

/// A batch at or above the position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub tenant: String,
    pub hour: i64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub key: String,
    /// True once the store has confirmed the object.
    pub done: bool,
}

/// What `archive/state.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveState {
    /// Every event below this WAL sequence number is archived.
    pub position: u64,
    pub batches: Vec<BatchRecord>,
}

impl ArchiveState {
    /// Reads the state (missing file = nothing archived yet).
    pub fn load(path: &Path) -> Result<ArchiveState, StateError> {
        Ok(sawmill_core::durable::load_json(path)?.unwrap_or_default())
    }

    /// Writes the state durably.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        sawmill_core::durable::save_json(path, self)
    }

    /// True when a done batch holds the event `seq` of `tenant`'s `hour`.
    pub fn covers(&self, tenant: &str, hour: i64, seq: u64) -> bool {
        self.batches.iter().any(|b| {
            b.done
                && b.hour == hour
                && b.first_seq <= seq
                && seq <= b.last_seq
                && b.tenant == tenant
        })
    }

    /// Moves the position forward and forgets batches entirely below it.
    pub fn advance(&mut self, position: u64) {
        self.position = self.position.max(position);
        let p = self.position;
        self.batches.retain(|b| b.last_seq >= p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(first: u64, last: u64, done: bool) -> BatchRecord {
        BatchRecord {
            tenant: "t".into(),
            hour: 7,
            first_seq: first,
            last_seq: last,
            key: format!("k{first}"),
            done,
        }
    }

    #[test]
    fn covers_only_done_batches_of_the_same_tenant_and_hour() {
        let state = ArchiveState {
            position: 0,
            batches: vec![record(10, 20, true), record(30, 40, false)],
        };
        assert!(state.covers("t", 7, 10));
        assert!(state.covers("t", 7, 20));
        assert!(!state.covers("t", 7, 21));
        assert!(!state.covers("t", 8, 15));
        assert!(!state.covers("u", 7, 15));
        assert!(!state.covers("t", 7, 35), "pending batches cover nothing");
    }

    #[test]
    fn advance_forgets_batches_below_and_survives_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(ArchiveState::load(&path).unwrap(), ArchiveState::default());
        let mut state = ArchiveState {
            position: 0,
            batches: vec![record(10, 20, true), record(30, 40, true)],
        };
        state.advance(25);
        assert_eq!(state.batches.len(), 1);
        state.save(&path).unwrap();
        assert_eq!(ArchiveState::load(&path).unwrap(), state);
        std::fs::write(&path, b"{garbage").unwrap();
        let e = ArchiveState::load(&path).unwrap_err();
        assert!(matches!(e, StateError::Corrupt { .. }), "{e:?}");
        assert!(e.to_string().contains("state.json is corrupt"), "{e}");
    }
}
