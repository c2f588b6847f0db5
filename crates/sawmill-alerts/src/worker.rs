//! The alert consumer of the WAL: a thread that feeds the engine, persists its state and puts
//! notifications in the outbox.
//!
//! On the hot path the request's thread matches its events against the rules that count its
//! tenant's events ([`AlertHandle::match_events`]) and, after the WAL's fsync, hands the
//! matches over with the record's sequence numbers, so no event is parsed twice. Records the
//! worker did not get that way (a restart, a full queue, rules reloaded in between) it reads
//! from the WAL itself: the WAL is the source of truth, the hand-over an optimization. Either
//! way a record counts only for the operator's rules and its own tenant's (the tenant of its
//! header). The worker's position takes part in WAL truncation, so after a crash it replays
//! from its last saved state.
//!
//! Notifications are written to the outbox and the engine's state saved before the worker
//! goes on, so a crash never loses a notification, and a notification produced again by
//! a replay lands on the same outbox entry (same fingerprint and sequence) and is sent once.

use crate::engine::{Engine, Snapshot};
use crate::now_nanos;
use crate::outbox::{Entry, Outbox, OutboxError};
use crate::rules::{Rule, Rules};
use crate::silence::Silences;
use parking_lot::{Mutex, RwLock};
use sawmill_core::record::{event_lines, RecordError, RecordHeader};
use sawmill_core::Event;
use sawmill_index::matcher::EventView;
use sawmill_wal::{Wal, WalError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Matches handed over at most waiting (records); beyond, the worker reads the WAL.
const QUEUE: usize = 4096;
/// How often every rule is looked at (each rule's `every` decides whether it is evaluated).
const TICK: Duration = Duration::from_millis(250);
/// How often the API's status is rebuilt when nothing changed.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How often the state is saved when nothing was notified.
const SAVE_EVERY: Duration = Duration::from_secs(5);
/// A record not handed over within this long is read from the WAL.
const HANDOVER_GRACE: Duration = Duration::from_millis(300);

/// Why alerting could not start, or the worker could not read the WAL or keep its state.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    ReadState {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    CorruptState {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot save alert state to {}: {source}", path.display())]
    SaveState {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode the alert state: {0}")]
    EncodeState(#[source] serde_json::Error),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("cannot start the alert thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("read wal from {position}: {source}")]
    ReadWal { position: u64, source: WalError },
    #[error("wal record {first_seq}: {source}")]
    Record { first_seq: u64, source: RecordError },
    #[error("cannot hand the rules to the alert worker: {0}")]
    Handover(#[from] tokio::task::JoinError),
    #[error("the alert worker stopped")]
    Stopped,
}

/// The matches of one record.
pub struct Matches {
    generation: u64,
    hits: Vec<Hit>,
}

/// One event matching one rule: what counting it needs, without the event itself (a few
/// events per rule and record come along as sample candidates).
struct Hit {
    rule: u32,
    ts: i64,
    group: Vec<String>,
    sample: Option<Event>,
}

enum Msg {
    Record {
        first_seq: u64,
        count: u64,
        matches: Option<Matches>,
    },
    Reload(Arc<Rules>, tokio::sync::oneshot::Sender<()>),
    Shutdown,
}

/// What the API shows and the server reads.
pub struct Shared {
    rules: RwLock<(u64, Arc<Rules>)>,
    pub silences: RwLock<Silences>,
    /// Every event below this WAL sequence number is counted.
    pub position: AtomicU64,
    /// JSON of rules and instances, refreshed after each evaluation.
    pub status: RwLock<serde_json::Value>,
    pub last_evaluation: AtomicU64,
    pub notifications: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// The handle the server holds.
#[derive(Clone)]
pub struct AlertHandle {
    tx: SyncSender<Msg>,
    pub shared: Arc<Shared>,
    pub wake: Arc<tokio::sync::Notify>,
    pub outbox: Arc<Outbox>,
}

impl AlertHandle {
    /// Matches the events of a request of `tenant` against the rules that count that
    /// tenant's events (its own and the operator's); `None` when there are no rules at all.
    pub fn match_events(&self, tenant: &str, events: &[Event]) -> Option<Matches> {
        let (generation, rules) = {
            let r = self.shared.rules.read();
            (r.0, r.1.clone())
        };
        if rules.rules.is_empty() {
            return None;
        }
        // which rules apply is decided once per batch, not per event
        let applicable = applicable_rules(&rules, tenant);
        let mut hits = Vec::new();
        if applicable.is_empty() {
            return Some(Matches { generation, hits });
        }
        let mut samples = vec![0usize; rules.rules.len()];
        for event in events {
            let view = EventView::new(event);
            for &(i, rule) in &applicable {
                if rule.matcher.matches_view(&view) {
                    let sample = (samples[i] < crate::engine::MAX_SAMPLES).then(|| {
                        samples[i] += 1;
                        event.clone()
                    });
                    hits.push(Hit {
                        rule: i as u32,
                        ts: event.timestamp,
                        group: rule
                            .group_by
                            .iter()
                            .map(|f| crate::engine::group_value(event, f))
                            .collect(),
                        sample,
                    });
                }
            }
        }
        Some(Matches { generation, hits })
    }

    /// Hands over the matches of a durable record; never blocks.
    pub fn offer(&self, first_seq: u64, count: u64, matches: Option<Matches>) {
        let _ = self.tx.try_send(Msg::Record {
            first_seq,
            count,
            matches,
        });
    }

    /// Installs new rules (already validated); returns once the engine uses them.
    pub async fn reload(&self, rules: Arc<Rules>) -> Result<(), AlertError> {
        {
            let mut r = self.shared.rules.write();
            r.0 += 1;
            r.1 = rules.clone();
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sender = self.tx.clone();
        tokio::task::spawn_blocking(move || sender.send(Msg::Reload(rules, tx)))
            .await?
            .map_err(|_| AlertError::Stopped)?;
        rx.await.map_err(|_| AlertError::Stopped)
    }

    pub fn rules(&self) -> Arc<Rules> {
        self.shared.rules.read().1.clone()
    }

    /// What `GET /api/v1/alerts` shows a caller: for the operator (`None`) every rule and the
    /// worker's position, outbox and last error; for a tenant only its own rules (and when
    /// they were evaluated), nothing about other tenants or the worker.
    pub fn status(&self, viewer: Option<&str>) -> serde_json::Value {
        let status = self.shared.status.read();
        let Some(tenant) = viewer else {
            return status.clone();
        };
        let rules: Vec<serde_json::Value> = status["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["tenant"].as_str() == Some(tenant))
            .cloned()
            .collect();
        serde_json::json!({
            "rules": rules,
            "evaluated_at": status["evaluated_at"],
        })
    }

    /// Every event below this sequence number has been counted.
    pub fn position(&self) -> u64 {
        self.shared.position.load(Ordering::Acquire)
    }
}

/// What `state.json` holds.
#[derive(Default, Serialize, Deserialize)]
struct Saved {
    position: u64,
    snapshot: Snapshot,
}

impl Saved {
    /// The saved state at `path`; `None` when there is none yet.
    fn load(path: &Path) -> Result<Option<Saved>, AlertError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| {
                AlertError::CorruptState {
                    path: path.to_path_buf(),
                    source,
                }
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(AlertError::ReadState {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the state to `path` durably.
    fn save(&self, path: &Path) -> Result<(), AlertError> {
        let bytes = serde_json::to_vec(self).map_err(AlertError::EncodeState)?;
        sawmill_core::durable::replace_file(path, &bytes).map_err(|source| AlertError::SaveState {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The running worker.
pub struct AlertWorker {
    handle: AlertHandle,
    thread: Option<JoinHandle<()>>,
}

impl AlertWorker {
    /// Loads the saved state from `dir` and starts the thread.
    pub fn start(
        wal: Arc<Wal>,
        rules: Arc<Rules>,
        silences: Silences,
        dir: PathBuf,
    ) -> Result<AlertWorker, AlertError> {
        let (mut worker, handle) = Worker::open(wal, rules, silences, dir)?;
        let thread = std::thread::Builder::new()
            .name("sawmill-alerts".into())
            .spawn(move || worker.run())
            .map_err(AlertError::Thread)?;
        Ok(AlertWorker {
            handle,
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> AlertHandle {
        self.handle.clone()
    }

    /// Saves the state and stops.
    pub fn shutdown(mut self) {
        let _ = self.handle.tx.send(Msg::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    engine: Engine,
    generation: u64,
    wal: Arc<Wal>,
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    outbox: Arc<Outbox>,
    wake: Arc<tokio::sync::Notify>,
    state_path: PathBuf,
    /// Next WAL sequence number to count.
    position: u64,
    last_save: Instant,
    last_publish: Instant,
    /// Since when the WAL holds records not handed over.
    behind_since: Option<Instant>,
}

impl Worker {
    /// Loads the saved state from `dir`: the worker (not running yet) and its handle.
    fn open(
        wal: Arc<Wal>,
        rules: Arc<Rules>,
        silences: Silences,
        dir: PathBuf,
    ) -> Result<(Worker, AlertHandle), AlertError> {
        std::fs::create_dir_all(&dir).map_err(|source| AlertError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let state_path = dir.join("state.json");
        let now = now_nanos();
        // without a saved state there is nothing to replay: start at the end of the WAL
        let saved = Saved::load(&state_path)?.unwrap_or_else(|| Saved {
            position: wal.durable_seq(),
            ..Default::default()
        });
        let outbox = Arc::new(Outbox::open(&dir)?);
        let position = saved.position.max(wal.first_seq());
        let shared = Arc::new(Shared {
            rules: RwLock::new((1, rules.clone())),
            silences: RwLock::new(silences),
            position: AtomicU64::new(position),
            status: RwLock::new(serde_json::Value::Null),
            last_evaluation: AtomicU64::new(0),
            notifications: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let (tx, rx) = sync_channel(QUEUE);
        let wake = Arc::new(tokio::sync::Notify::new());
        let worker = Worker {
            engine: Engine::new(rules, saved.snapshot, now),
            generation: 1,
            wal,
            rx,
            shared: shared.clone(),
            outbox: outbox.clone(),
            wake: wake.clone(),
            state_path,
            position,
            last_save: Instant::now(),
            last_publish: Instant::now(),
            behind_since: None,
        };
        let handle = AlertHandle {
            tx,
            shared,
            wake,
            outbox,
        };
        Ok((worker, handle))
    }

    fn run(&mut self) {
        // replay what the saved state has not counted
        if let Err(e) = self.catch_up(self.wal.durable_seq()) {
            self.error(format!("replay failed: {e}"));
        }
        self.evaluate(true);
        self.publish_status(now_nanos());
        let mut next_tick = Instant::now() + TICK;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(Msg::Record {
                    first_seq,
                    count,
                    matches,
                }) => {
                    if let Err(e) = self.record(first_seq, count, matches) {
                        self.error(e);
                    }
                    self.evaluate(false);
                }
                Ok(Msg::Reload(rules, done)) => {
                    let now = now_nanos();
                    self.generation = self.shared.rules.read().0;
                    let resolved = self.engine.reload(rules, now);
                    self.emit(resolved);
                    self.save();
                    self.publish_status(now);
                    let _ = done.send(());
                }
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    self.save();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + TICK;
                // records that were never handed over: read them from the WAL
                let durable = self.wal.durable_seq();
                if durable > self.position {
                    let since = *self.behind_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= HANDOVER_GRACE {
                        if let Err(e) = self.catch_up(durable) {
                            self.error(e);
                        }
                        self.behind_since = None;
                    }
                } else {
                    self.behind_since = None;
                }
                self.evaluate(true);
                if self.last_save.elapsed() >= SAVE_EVERY {
                    self.save();
                }
            }
        }
    }

    /// Logs an error and shows it in the API's status as the last error.
    fn error(&self, e: impl std::fmt::Display) {
        let message = e.to_string();
        tracing::error!(error = %message, "alerting");
        *self.shared.last_error.lock() = Some(message);
    }

    fn record(
        &mut self,
        first_seq: u64,
        count: u64,
        matches: Option<Matches>,
    ) -> Result<(), AlertError> {
        let end = first_seq + count;
        if end <= self.position {
            return Ok(());
        }
        if first_seq > self.position {
            self.catch_up(first_seq)?;
        }
        let now = now_nanos();
        match matches {
            Some(m) if m.generation == self.generation && first_seq == self.position => {
                for hit in m.hits {
                    self.engine.observe_hit(
                        hit.rule as usize,
                        hit.ts,
                        hit.group,
                        hit.sample.as_ref(),
                        now,
                    );
                }
                self.advance(end);
                Ok(())
            }
            None if self.engine.rules().rules.is_empty() && first_seq == self.position => {
                self.advance(end);
                Ok(())
            }
            // matched against other rules, or overlapping: read it again
            _ => self.catch_up(end),
        }
    }

    fn advance(&mut self, end: u64) {
        self.position = end;
        self.shared.position.store(end, Ordering::Release);
        if self.wal.durable_seq() <= end {
            self.behind_since = None;
        }
    }

    /// Counts the WAL's events from the position up to `target`.
    fn catch_up(&mut self, target: u64) -> Result<(), AlertError> {
        if target <= self.position {
            return Ok(());
        }
        let rules = self.engine.rules().clone();
        let now = now_nanos();
        let read_error = |position| move |source| AlertError::ReadWal { position, source };
        let reader = self
            .wal
            .read_from(self.position)
            .map_err(read_error(self.position))?;
        for record in reader {
            let record = record.map_err(read_error(self.position))?;
            let (first, end) = (record.first_seq, record.end_seq());
            if end <= self.position {
                continue;
            }
            if first >= target {
                break;
            }
            if !rules.rules.is_empty() {
                self.count_record(&rules, &record, now)?;
            }
            self.advance(end);
        }
        // the WAL may end before target (events not yet durable): nothing more to read
        Ok(())
    }

    /// Counts the events of a WAL record not counted yet, with the rules that count its
    /// tenant's events.
    fn count_record(
        &mut self,
        rules: &Rules,
        record: &sawmill_wal::Record,
        now: i64,
    ) -> Result<(), AlertError> {
        let first = record.first_seq;
        let (header, body) =
            RecordHeader::decode(&record.payload).map_err(|source| AlertError::Record {
                first_seq: first,
                source,
            })?;
        // decided once per record; no rule for this tenant: nothing to parse
        let applicable = applicable_rules(rules, &header.tenant);
        if applicable.is_empty() {
            return Ok(());
        }
        for (i, (line, _)) in event_lines(&record.payload, body).enumerate() {
            if first + (i as u64) < self.position {
                continue;
            }
            let Ok(event) = Event::from_normalized_json(line) else {
                continue;
            };
            let view = EventView::new(&event);
            for &(ri, rule) in &applicable {
                if rule.matcher.matches_view(&view) {
                    self.engine.observe(ri, &event, now);
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, ticks: bool) {
        let now = now_nanos();
        let silences = self.shared.silences.read().clone();
        let out = self.engine.evaluate(now, &silences, ticks);
        if ticks {
            self.shared
                .last_evaluation
                .store(now.max(0) as u64, Ordering::Relaxed);
        }
        let changed = !out.is_empty();
        if changed {
            self.emit(out);
            self.save();
        }
        // the status JSON covers every instance: rebuilt on changes, else once a second
        if changed || (ticks && self.last_publish.elapsed() >= STATUS_EVERY) {
            self.publish_status(now);
        }
    }

    /// Writes notifications to the outbox (durably) and wakes the notifiers.
    fn emit(&mut self, notes: Vec<crate::engine::Notification>) {
        if notes.is_empty() {
            return;
        }
        let mut entries = Vec::new();
        for n in notes {
            if n.notify.is_empty() {
                tracing::info!(rule = %n.rule, state = %n.state, "alert changed state (no notifier)");
                continue;
            }
            for target in &n.notify {
                entries.push(Entry {
                    notifier: target.clone(),
                    notification: n.clone(),
                });
            }
        }
        match self.outbox.put(&entries) {
            Ok(added) => {
                self.shared
                    .notifications
                    .fetch_add(added as u64, Ordering::Relaxed);
            }
            Err(e) => self.error(format!("cannot record notifications: {e}")),
        }
        self.wake.notify_waiters();
    }

    fn save(&mut self) {
        self.last_save = Instant::now();
        let saved = Saved {
            position: self.position,
            snapshot: self.engine.snapshot(),
        };
        if let Err(e) = saved.save(&self.state_path) {
            self.error(e);
        }
    }

    /// Refreshes the JSON the API shows.
    fn publish_status(&mut self, now: i64) {
        self.last_publish = Instant::now();
        let rules: Vec<serde_json::Value> = self
            .engine
            .status()
            .into_iter()
            .map(|(rule, state)| {
                let instances: Vec<serde_json::Value> = state
                    .instances
                    .values()
                    .map(|i| {
                        serde_json::json!({
                            "group": i.group,
                            "state": i.state,
                            "count": i.last_count,
                            "active_since": (i.active_since > 0).then(|| sawmill_core::format_rfc3339(i.active_since)),
                            "fired_at": (i.state == crate::engine::State::Firing).then(|| sawmill_core::format_rfc3339(i.fired_at)),
                            "fingerprint": crate::engine::fingerprint(&rule.name, &i.group),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "name": rule.name,
                    "tenant": rule.tenant,
                    "query": rule.query,
                    "window": rule.window_text,
                    "condition": rule.condition.text(),
                    "group_by": rule.group_by,
                    "for": humantime(rule.for_),
                    "keep_firing_for": humantime(rule.keep_firing_for),
                    "every": humantime(rule.every),
                    "severity": rule.severity,
                    "labels": rule.labels,
                    "notify": rule.notify.iter().map(|&i| self.engine.rules().notifiers[i].name.clone()).collect::<Vec<_>>(),
                    "last_evaluation": (state.last_eval > 0).then(|| sawmill_core::format_rfc3339(state.last_eval)),
                    "last_error": state.last_error,
                    "instances": instances,
                })
            })
            .collect();
        *self.shared.status.write() = serde_json::json!({
            "rules": rules,
            "evaluated_at": sawmill_core::format_rfc3339(now),
            "position": self.position,
            "outbox_pending": self.outbox.pending_count(),
            "last_error": self.shared.last_error.lock().clone(),
        });
    }
}

/// The rules (with their indexes) that count events of `tenant`.
fn applicable_rules<'a>(rules: &'a Rules, tenant: &str) -> Vec<(usize, &'a Rule)> {
    rules
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.applies_to(tenant))
        .collect()
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        "0s".into()
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sawmill_wal::WalConfig;

    const RULES: &str = r#"
rules:
  - {name: acme-errors, tenant: acme, query: 'level:error', window: 1h, condition: "> 1000"}
  - {name: globex-errors, tenant: globex, query: 'level:error', window: 1h, condition: "> 1000"}
  - {name: all-errors, query: 'level:error', window: 1h, condition: "> 1000"}
"#;

    fn errors(n: usize, now: i64) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let mut e = Event::new(now - i as i64, "payment failed");
                e.level = Some("ERROR".into());
                e
            })
            .collect()
    }

    fn payload(tenant: &str, events: &[Event]) -> Vec<u8> {
        let mut out = Vec::new();
        RecordHeader {
            tenant: tenant.into(),
            received_at: 0,
            idempotency_key: None,
            answer: Vec::new(),
        }
        .encode(&mut out);
        for e in events {
            e.write_json(&mut out);
            out.push(b'\n');
        }
        out
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        wal: Arc<Wal>,
        worker: Worker,
        handle: AlertHandle,
    }

    fn fixture(rules: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(WalConfig::new(dir.path().join("wal"))).unwrap();
        let wal = Arc::new(wal);
        let rules = Arc::new(Rules::parse(rules, now_nanos()).unwrap());
        let (worker, handle) = Worker::open(
            wal.clone(),
            rules,
            Silences::default(),
            dir.path().join("alerts"),
        )
        .unwrap();
        Fixture {
            _dir: dir,
            wal,
            worker,
            handle,
        }
    }

    impl Fixture {
        /// Appends a record of `tenant` to the WAL; its first sequence number.
        fn append(&self, tenant: &str, events: &[Event]) -> u64 {
            self.wal
                .append_blocking(payload(tenant, events), events.len() as u32)
                .unwrap()
                .first_seq
        }

        /// The count of every rule, by name, after an evaluation.
        fn counts(&mut self) -> Vec<(String, u64)> {
            self.worker
                .engine
                .evaluate(now_nanos(), &Silences::default(), true);
            self.worker
                .engine
                .status()
                .into_iter()
                .map(|(rule, state)| {
                    let count = state.instances.values().map(|i| i.last_count).sum();
                    (rule.name.clone(), count)
                })
                .collect()
        }
    }

    fn want(acme: u64, globex: u64, all: u64) -> Vec<(String, u64)> {
        vec![
            ("acme-errors".into(), acme),
            ("globex-errors".into(), globex),
            ("all-errors".into(), all),
        ]
    }

    #[test]
    fn the_request_path_counts_a_batch_only_for_its_tenants_rules() {
        let mut f = fixture(RULES);
        let now = now_nanos();
        for (tenant, n) in [("acme", 2), ("globex", 3), ("initech", 4)] {
            let events = errors(n, now);
            let first = f.append(tenant, &events);
            let matches = f.handle.match_events(tenant, &events);
            assert!(matches.is_some());
            f.worker.record(first, n as u64, matches).unwrap();
        }
        assert_eq!(f.worker.position, f.wal.durable_seq());
        // a tenant rule its tenant's events only, the operator rule every tenant's
        assert_eq!(f.counts(), want(2, 3, 9));
    }

    #[test]
    fn match_events_skips_rules_of_other_tenants() {
        let f = fixture(RULES);
        let events = errors(2, now_nanos());
        let rules_hit = |tenant: &str| -> Vec<u32> {
            let m = f.handle.match_events(tenant, &events).unwrap();
            assert_eq!(m.generation, 1);
            m.hits.iter().map(|h| h.rule).collect()
        };
        assert_eq!(rules_hit("acme"), [0, 2, 0, 2]);
        assert_eq!(rules_hit("globex"), [1, 2, 1, 2]);
        assert_eq!(rules_hit("initech"), [2, 2]);
        // no rule for the tenant at all: matched (nothing), not left to the WAL
        let f = fixture(
            "rules:\n  - {name: mine, tenant: acme, query: 'level:error', window: 1m, condition: '> 1'}\n",
        );
        let m = f.handle.match_events("globex", &events).unwrap();
        assert!(m.hits.is_empty());
        // no rules: nothing to match
        let f = fixture("rules: []\n");
        assert!(f.handle.match_events("acme", &events).is_none());
    }

    #[test]
    fn the_catch_up_path_counts_a_record_only_for_its_tenants_rules() {
        let mut f = fixture(RULES);
        let now = now_nanos();
        f.append("acme", &errors(2, now));
        f.append("globex", &errors(3, now));
        f.append("initech", &errors(4, now));
        // never handed over: read from the WAL with the records' headers
        f.worker.catch_up(f.wal.durable_seq()).unwrap();
        assert_eq!(f.worker.position, f.wal.durable_seq());
        assert_eq!(f.counts(), want(2, 3, 9));
        // a hand-over of stale matches (rules reloaded since) is read again from the WAL
        let events = errors(5, now);
        let first = f.append("globex", &events);
        let mut stale = f.handle.match_events("globex", &events).unwrap();
        stale.generation = 0;
        f.worker.record(first, 5, Some(stale)).unwrap();
        assert_eq!(f.counts(), want(2, 8, 14));
    }

    #[test]
    fn the_listing_shows_a_tenant_its_own_rules_only() {
        let mut f = fixture(RULES);
        f.worker.publish_status(now_nanos());
        let names = |v: &serde_json::Value| -> Vec<String> {
            v["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect()
        };
        let operator = f.handle.status(None);
        assert_eq!(
            names(&operator),
            ["acme-errors", "globex-errors", "all-errors"]
        );
        assert_eq!(operator["rules"][0]["tenant"], "acme");
        assert!(operator["rules"][2]["tenant"].is_null());
        assert!(operator.get("position").is_some());
        let acme = f.handle.status(Some("acme"));
        assert_eq!(names(&acme), ["acme-errors"]);
        assert!(acme.get("evaluated_at").is_some());
        // nothing about the worker or other tenants
        for field in ["position", "outbox_pending", "last_error"] {
            assert!(acme.get(field).is_none(), "{field}");
        }
        assert_eq!(names(&f.handle.status(Some("globex"))), ["globex-errors"]);
        assert!(names(&f.handle.status(Some("initech"))).is_empty());
    }

    #[test]
    fn state_saved_before_tenants_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(WalConfig::new(dir.path().join("wal"))).unwrap();
        let wal = Arc::new(wal);
        let now = now_nanos();
        let alerts = dir.path().join("alerts");
        std::fs::create_dir_all(&alerts).unwrap();
        // a state.json as written before rules had tenants
        let saved = format!(
            r#"{{"position":0,"snapshot":{{"rules":{{"all-errors":{{"identity":"level:error\u001f3600000000000\u001f",
            "instances":{{"":{{"group":{{}},"state":"inactive","counter":{{"width":6000000000,"buckets":[[{b},7]]}},
            "active_since":0,"fired_at":0,"last_true":0,"last_notified":0,"last_count":7,"last_event":{now},
            "sequence":0,"samples":[]}}}},"observed_since":{now},"last_eval":0,"last_error":null}}}}}}}}"#,
            b = now - now.rem_euclid(6_000_000_000)
        );
        std::fs::write(alerts.join("state.json"), saved).unwrap();
        let rules = Arc::new(Rules::parse(RULES, now).unwrap());
        let (worker, handle) =
            Worker::open(wal.clone(), rules, Silences::default(), alerts).unwrap();
        let mut f = Fixture {
            _dir: dir,
            wal,
            worker,
            handle,
        };
        assert_eq!(f.counts(), want(0, 0, 7));
    }
}
