//! The indexer: adds events to their day partition's writer and commits them with their WAL
//! position.
//!
//! Events must be handed over in WAL order. Each partition's commit payload records the WAL
//! position below which all of its events are committed; after every partition is committed,
//! the same position is written to `position.json`. On restart the WAL is replayed from that
//! position and an event is skipped when its partition already holds it, so a crash at any
//! point neither loses nor duplicates events.

use crate::partition::{day_of, CommitPayload, Day, Partition, Partitions, DAY_NANOS};
use crate::schema::to_document;
use crate::IndexError;
use sawmill_core::Event;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tantivy::indexer::LogMergePolicy;
use tantivy::{IndexWriter, TantivyDocument};

/// How the indexer uses CPU, memory and time.
#[derive(Clone, Debug)]
pub struct IndexerConfig {
    /// Indexing threads per partition writer.
    pub writer_threads: usize,
    /// Memory budget per partition writer, in bytes (at least 15 MB per thread).
    pub writer_memory_bytes: usize,
    /// Partitions with an open writer at most; the least recently used one is committed and
    /// closed to make room.
    pub max_open_writers: usize,
    /// Events older than this (nanoseconds, relative to now) are not indexed; whole partitions
    /// older than it are deleted.
    pub retention_nanos: i64,
}

impl Default for IndexerConfig {
    fn default() -> Self {
        IndexerConfig {
            writer_threads: 2,
            writer_memory_bytes: 64 << 20,
            max_open_writers: 4,
            retention_nanos: 7 * DAY_NANOS,
        }
    }
}

struct OpenWriter {
    partition: Arc<Partition>,
    writer: IndexWriter,
    dirty: bool,
    last_used: u64,
}

/// What a commit did.
#[derive(Clone, Debug, Default)]
pub struct CommitReport {
    /// The WAL position now committed in every partition.
    pub position: u64,
    /// Partitions committed.
    pub partitions: usize,
    pub duration: std::time::Duration,
}

/// Owns the partition writers; used from one thread.
pub struct Indexer {
    partitions: Arc<Partitions>,
    config: IndexerConfig,
    writers: HashMap<Day, OpenWriter>,
    /// Commit positions of partitions, loaded lazily: events below are already indexed.
    partition_positions: HashMap<Day, u64>,
    /// Next WAL sequence number expected.
    position: u64,
    /// Position committed in every partition.
    committed: u64,
    uses: u64,
    position_file: PathBuf,
    skipped_old: u64,
    /// The record being added: where each day's events stand if its writer is closed.
    in_progress: Option<InProgress>,
}

/// Progress through the record being added.
struct InProgress {
    /// End of the record's sequence numbers.
    end: u64,
    /// Days whose events of the record have all been added.
    done: Vec<Day>,
}

impl Indexer {
    /// Opens the indexer over `partitions`, reading the committed position.
    pub fn open(partitions: Arc<Partitions>, config: IndexerConfig) -> Result<Indexer, IndexError> {
        let position_file = partitions.root().join("position.json");
        let committed = match std::fs::read(&position_file) {
            Ok(bytes) => {
                serde_json::from_slice::<CommitPayload>(&bytes)
                    .map_err(|e| IndexError::Corrupt {
                        what: position_file.display().to_string(),
                        reason: e.to_string(),
                    })?
                    .position
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(IndexError::io(&position_file, "read", e)),
        };
        let mut partition_positions = HashMap::new();
        for p in partitions.all() {
            partition_positions.insert(p.day, p.committed_position()?);
        }
        Ok(Indexer {
            partitions,
            config,
            writers: HashMap::new(),
            partition_positions,
            position: committed,
            committed,
            uses: 0,
            position_file,
            skipped_old: 0,
            in_progress: None,
        })
    }

    /// The next WAL sequence number the indexer expects.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The WAL position committed in every partition: the WAL may be truncated below it.
    pub fn committed_position(&self) -> u64 {
        self.committed
    }

    /// Events not indexed because they were older than the retention.
    pub fn skipped_old(&self) -> u64 {
        self.skipped_old
    }

    /// Adds one event with WAL sequence number `seq` (see [`Indexer::add_documents`]).
    /// Returns false when the event was skipped (already indexed, or older than retention).
    pub fn add(
        &mut self,
        tenant: &str,
        seq: u64,
        event: &Event,
        json: &[u8],
        now: i64,
    ) -> Result<bool, IndexError> {
        let doc = to_document(self.partitions.fields(), tenant, event, json);
        let added = self.add_documents(seq, vec![(event.timestamp, doc)], now)?;
        Ok(added == 1)
    }

    /// Adds the documents of one WAL record (built by [`to_document`]): document `i` has
    /// sequence number `first_seq + i`, which becomes its id, and is routed to the partition
    /// of its timestamp. Records must be handed over in WAL order. Documents are added day by
    /// day, so a record spread over many days opens each day's writer once. Documents already
    /// indexed (before the position, or in their partition's last commit) and documents older
    /// than the retention are skipped. Returns how many were added.
    pub fn add_documents(
        &mut self,
        first_seq: u64,
        docs: Vec<(i64, TantivyDocument)>,
        now: i64,
    ) -> Result<usize, IndexError> {
        let end = first_seq + docs.len() as u64;
        if end <= self.position {
            return Ok(0);
        }
        let skip = self.position.saturating_sub(first_seq) as usize;
        let oldest_day = day_of(now.saturating_sub(self.config.retention_nanos));
        // documents per day, days in order of first appearance (usually just one)
        let mut groups: Vec<(Day, Vec<(u64, TantivyDocument)>)> = Vec::new();
        for (i, (ts, doc)) in docs.into_iter().enumerate().skip(skip) {
            let day = day_of(ts);
            if day < oldest_day {
                self.skipped_old += 1;
                continue;
            }
            let seq = first_seq + i as u64;
            match groups.iter_mut().find(|(d, _)| *d == day) {
                Some((_, group)) => group.push((seq, doc)),
                None => groups.push((day, vec![(seq, doc)])),
            }
        }
        self.in_progress = Some(InProgress {
            end,
            done: Vec::with_capacity(groups.len()),
        });
        let id = self.partitions.fields().id;
        let mut added = 0;
        for (day, group) in groups {
            let committed = self.partition_positions.get(&day).copied().unwrap_or(0);
            let writer = self.writer(day)?;
            for (seq, mut doc) in group {
                if seq < committed {
                    continue;
                }
                doc.add_u64(id, seq);
                writer
                    .writer
                    .add_document(doc)
                    .map_err(|e| IndexError::tantivy("add document", e))?;
                writer.dirty = true;
                added += 1;
            }
            if let Some(p) = self.in_progress.as_mut() {
                p.done.push(day);
            }
        }
        self.in_progress = None;
        self.position = end;
        Ok(added)
    }

    /// Marks every sequence number below `end` as handed over (events skipped upstream).
    pub fn advance_to(&mut self, end: u64) {
        self.position = self.position.max(end);
    }

    fn writer(&mut self, day: Day) -> Result<&mut OpenWriter, IndexError> {
        self.uses += 1;
        let uses = self.uses;
        if !self.writers.contains_key(&day) {
            if self.writers.len() >= self.config.max_open_writers.max(1) {
                self.close_least_recent()?;
            }
            let partition = self.partitions.get_or_create(day)?;
            let writer = partition
                .index
                .writer_with_num_threads(
                    self.config.writer_threads.max(1),
                    self.config
                        .writer_memory_bytes
                        .max(self.config.writer_threads.max(1) * 16_000_000),
                )
                .map_err(|e| {
                    IndexError::tantivy(format!("open writer of {}", partition.dir.display()), e)
                })?;
            writer.set_merge_policy(Box::new(merge_policy()));
            self.writers.insert(
                day,
                OpenWriter {
                    partition,
                    writer,
                    dirty: false,
                    last_used: uses,
                },
            );
        }
        let w = self
            .writers
            .get_mut(&day)
            .ok_or_else(|| IndexError::Internal("writer vanished".into()))?;
        w.last_used = uses;
        Ok(w)
    }

    /// Commits and closes the least recently used writer.
    fn close_least_recent(&mut self) -> Result<(), IndexError> {
        let Some((&day, _)) = self.writers.iter().min_by_key(|(_, w)| w.last_used) else {
            return Ok(());
        };
        // everything of that day below this position has been added to its writer
        let position = match &self.in_progress {
            Some(p) if p.done.contains(&day) => p.end,
            _ => self.position,
        };
        if let Some(mut w) = self.writers.remove(&day) {
            if w.dirty {
                commit_writer(&mut w, position)?;
                self.partition_positions.insert(day, position);
            }
            drop(w.writer);
        }
        Ok(())
    }

    /// Commits every partition with pending events at the current position, reloads their
    /// readers and records the position.
    pub fn commit(&mut self) -> Result<CommitReport, IndexError> {
        let start = Instant::now();
        let position = self.position;
        let mut partitions = 0;
        for (day, w) in self.writers.iter_mut() {
            if !w.dirty {
                continue;
            }
            commit_writer(w, position)?;
            self.partition_positions.insert(*day, position);
            partitions += 1;
        }
        if position != self.committed {
            write_position(&self.position_file, position)?;
            self.committed = position;
        }
        Ok(CommitReport {
            position,
            partitions,
            duration: start.elapsed(),
        })
    }

    /// Deletes partitions that lie entirely before `now - retention`. Returns their days.
    pub fn apply_retention(&mut self, now: i64) -> Result<Vec<Day>, IndexError> {
        let cutoff = now.saturating_sub(self.config.retention_nanos);
        let mut removed = Vec::new();
        for p in self.partitions.all() {
            if (p.day + 1) * DAY_NANOS <= cutoff {
                if let Some(w) = self.writers.remove(&p.day) {
                    drop(w.writer);
                }
                self.partition_positions.remove(&p.day);
                self.partitions.remove(p.day)?;
                removed.push(p.day);
            }
        }
        Ok(removed)
    }

    /// Commits and closes every writer (clean shutdown).
    pub fn close(mut self) -> Result<CommitReport, IndexError> {
        let report = self.commit()?;
        for (_, w) in self.writers.drain() {
            w.writer
                .wait_merging_threads()
                .map_err(|e| IndexError::tantivy("wait for merges", e))?;
        }
        Ok(report)
    }
}

/// Commits every second leave many small segments; merging ten at a time (Quickwit's merge
/// factor) rewrites each event fewer times than tantivy's default of eight while keeping the
/// number of segments a search visits low.
fn merge_policy() -> LogMergePolicy {
    let mut policy = LogMergePolicy::default();
    policy.set_min_num_segments(10);
    policy
}

fn commit_writer(w: &mut OpenWriter, position: u64) -> Result<(), IndexError> {
    let payload = serde_json::to_string(&CommitPayload { position })
        .map_err(|e| IndexError::Internal(e.to_string()))?;
    let dir = w.partition.dir.display().to_string();
    let mut prepared = w
        .writer
        .prepare_commit()
        .map_err(|e| IndexError::tantivy(format!("prepare commit of {dir}"), e))?;
    prepared.set_payload(&payload);
    prepared
        .commit()
        .map_err(|e| IndexError::tantivy(format!("commit {dir}"), e))?;
    w.partition
        .reader
        .reload()
        .map_err(|e| IndexError::tantivy(format!("reload reader of {dir}"), e))?;
    w.dirty = false;
    Ok(())
}

/// Writes the committed position durably.
fn write_position(path: &std::path::Path, position: u64) -> Result<(), IndexError> {
    let body = serde_json::to_vec(&CommitPayload { position })
        .map_err(|e| IndexError::Internal(e.to_string()))?;
    sawmill_core::durable::replace_file(path, &body).map_err(|e| IndexError::io(path, "write", e))
}
