//! Day partitions: one tantivy index per UTC day under `<root>/YYYY-MM-DD/`.
//!
//! Retention deletes whole directories; a time-range search opens only the partitions that
//! overlap its range. [`Partitions`] is shared by the indexer (which creates partitions and
//! reloads their readers after each commit) and by searches.
//!
//! Indexes built elsewhere (events restored from the archive) can be attached for a while:
//! searches over their time span read them beside the day partitions, and retention never
//! touches them.

use crate::schema::{build_schema, register_tokenizers, Fields};
use crate::IndexError;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tantivy::schema::Schema;
use tantivy::{Index, IndexReader, ReloadPolicy};

/// Nanoseconds in one day.
pub const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

/// A UTC day, counted in days since 1970-01-01.
pub type Day = i64;

/// The day a timestamp (nanoseconds since the epoch) falls in.
pub fn day_of(ts: i64) -> Day {
    ts.div_euclid(DAY_NANOS)
}

/// `YYYY-MM-DD` of a day.
pub fn day_name(day: Day) -> String {
    let date = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(day);
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Parses a `YYYY-MM-DD` directory name.
pub fn parse_day_name(name: &str) -> Option<Day> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(name, &format).ok()?;
    Some(i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY)
}

/// The julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// One day's index and its reader.
pub struct Partition {
    pub day: Day,
    pub dir: PathBuf,
    pub index: Index,
    pub reader: IndexReader,
}

impl Partition {
    pub(crate) fn open_or_create(
        dir: &Path,
        day: Day,
        schema: &Schema,
    ) -> Result<Partition, IndexError> {
        std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, "create partition dir", e))?;
        let index = if dir.join("meta.json").exists() {
            Index::open_in_dir(dir)
        } else {
            Index::create_in_dir(dir, schema.clone())
        }
        .map_err(|e| IndexError::tantivy(format!("open partition {}", dir.display()), e))?;
        register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| IndexError::tantivy(format!("open reader of {}", dir.display()), e))?;
        Ok(Partition {
            day,
            dir: dir.to_path_buf(),
            index,
            reader,
        })
    }

    /// The WAL position recorded with this partition's last commit (0 if never committed).
    pub fn committed_position(&self) -> Result<u64, IndexError> {
        let metas = self
            .index
            .load_metas()
            .map_err(|e| IndexError::tantivy(format!("read metas of {}", self.dir.display()), e))?;
        Ok(metas
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<CommitPayload>(p).ok())
            .map(|p| p.position)
            .unwrap_or(0))
    }
}

/// What each commit records in tantivy's commit payload.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct CommitPayload {
    /// Every event with a WAL sequence number below this is in the commit.
    pub position: u64,
}

/// The set of day partitions under one root directory.
pub struct Partitions {
    root: PathBuf,
    schema: Schema,
    fields: Fields,
    map: RwLock<BTreeMap<Day, Arc<Partition>>>,
    /// Attached indexes by name, with the time span `[start, end)` they cover.
    attached: RwLock<BTreeMap<String, Attached>>,
}

/// An attached index: the span `[start, end)` it covers and the index.
type Attached = (i64, i64, Arc<Partition>);

impl Partitions {
    /// Opens every partition found under `root` (creating `root` if needed).
    pub fn open(root: impl Into<PathBuf>) -> Result<Partitions, IndexError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| IndexError::io(&root, "create index dir", e))?;
        let (schema, fields) = build_schema();
        let mut map = BTreeMap::new();
        let entries =
            std::fs::read_dir(&root).map_err(|e| IndexError::io(&root, "list index dir", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| IndexError::io(&root, "list index dir", e))?;
            let name = entry.file_name();
            let Some(day) = name.to_str().and_then(parse_day_name) else {
                continue;
            };
            if !entry.path().join("meta.json").exists() {
                // created but never committed: nothing in it
                continue;
            }
            let partition = Partition::open_or_create(&entry.path(), day, &schema)?;
            map.insert(day, Arc::new(partition));
        }
        Ok(Partitions {
            root,
            schema,
            fields,
            map: RwLock::new(map),
            attached: RwLock::new(BTreeMap::new()),
        })
    }

    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The partition of `day`, created if missing.
    pub fn get_or_create(&self, day: Day) -> Result<Arc<Partition>, IndexError> {
        if let Some(p) = self.map.read().get(&day) {
            return Ok(p.clone());
        }
        let dir = self.root.join(day_name(day));
        let partition = Arc::new(Partition::open_or_create(&dir, day, &self.schema)?);
        self.map.write().insert(day, partition.clone());
        Ok(partition)
    }

    pub fn get(&self, day: Day) -> Option<Arc<Partition>> {
        self.map.read().get(&day).cloned()
    }

    /// Every partition, oldest first.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.map.read().values().cloned().collect()
    }

    /// Partitions that may hold events in `[start, end)`, newest first, then the attached
    /// indexes whose span overlaps it.
    pub fn overlapping(&self, start: i64, end: i64) -> Vec<Arc<Partition>> {
        if end <= start {
            return Vec::new();
        }
        let (first, last) = (day_of(start), day_of(end - 1));
        let mut out: Vec<Arc<Partition>> = self
            .map
            .read()
            .range(first..=last)
            .rev()
            .map(|(_, p)| p.clone())
            .collect();
        out.extend(
            self.attached
                .read()
                .values()
                .filter(|(s, e, _)| *s < end && start < *e)
                .map(|(_, _, p)| p.clone()),
        );
        out
    }

    /// Makes an index built by [`crate::restored::RestoredIndex`] searchable for `[start, end)`
    /// under `name` (replacing one of the same name).
    pub fn attach(&self, name: &str, start: i64, end: i64, partition: Arc<Partition>) {
        self.attached
            .write()
            .insert(name.to_string(), (start, end, partition));
    }

    /// Stops searching an attached index; returns it if it was attached.
    pub fn detach(&self, name: &str) -> Option<Arc<Partition>> {
        self.attached.write().remove(name).map(|(_, _, p)| p)
    }

    /// Opens an index directory written with this schema (an attached index).
    pub fn open_detached(&self, dir: &Path) -> Result<Partition, IndexError> {
        if !dir.join("meta.json").exists() {
            return Err(IndexError::Corrupt {
                what: dir.display().to_string(),
                reason: "no meta.json: the index was never committed".into(),
            });
        }
        Partition::open_or_create(dir, 0, &self.schema)
    }

    /// Creates an empty index directory with this schema (for an attached index).
    pub fn create_detached(&self, dir: &Path) -> Result<Partition, IndexError> {
        Partition::open_or_create(dir, 0, &self.schema)
    }

    /// Forgets a partition and deletes its directory (retention).
    pub fn remove(&self, day: Day) -> Result<(), IndexError> {
        let removed = self.map.write().remove(&day);
        let dir = match removed {
            Some(p) => p.dir.clone(),
            None => self.root.join(day_name(day)),
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| IndexError::io(&dir, "delete partition", e))?;
        }
        Ok(())
    }

    /// Number of searchable documents over all partitions.
    pub fn num_docs(&self) -> u64 {
        self.map
            .read()
            .values()
            .map(|p| p.reader.searcher().num_docs())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_names_round_trip() {
        for day in [0, 1, 365, 20_393, 20_788, -1] {
            let name = day_name(day);
            assert_eq!(parse_day_name(&name), Some(day), "{name}");
        }
        assert_eq!(day_name(20_393), "2025-11-01");
        assert_eq!(parse_day_name("2026-13-01"), None);
        assert_eq!(parse_day_name("junk"), None);
    }

    #[test]
    fn day_of_negative_timestamps_rounds_down() {
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_NANOS), 1);
    }
}
