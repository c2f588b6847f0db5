//! Alerting in the server: loading and reloading the rules file (SIGHUP and
//! `POST /api/v1/alerts/reload`; a bad file keeps the old rules), the notifier tasks, and the
//! silences file.

use parking_lot::Mutex;
use sawmill_alerts::notify::{run_notifier, NotifyStats};
use sawmill_alerts::{AlertError, AlertHandle, Rules, RulesError, Silences, SilencesError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn now_nanos() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// Reads the rules file, or no rules without one.
pub fn load_rules(path: Option<&Path>) -> Result<Rules, RulesError> {
    match path {
        Some(p) => Rules::load(p, now_nanos()),
        None => Ok(Rules::default()),
    }
}

/// Why the rules were not reloaded (the old rules stay).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    Engine(#[from] AlertError),
    #[error("the rules could not be read: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The silences file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SilencesFileError {
    #[error("cannot {action} silences {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] SilencesError),
}

/// The running notifier tasks, restarted when the rules change.
pub struct Notifiers {
    stop: Mutex<Option<tokio::sync::watch::Sender<bool>>>,
    pub stats: Arc<NotifyStats>,
    /// The rules file, for reloads.
    pub rules_path: Option<PathBuf>,
    /// Serializes reloads.
    pub reloading: tokio::sync::Mutex<()>,
    /// One lock per notifier name: a restarted notifier waits for its predecessor.
    exclusive: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Notifiers {
    pub fn new(rules_path: Option<PathBuf>) -> Notifiers {
        Notifiers {
            stop: Mutex::new(None),
            stats: Arc::default(),
            rules_path,
            reloading: tokio::sync::Mutex::new(()),
            exclusive: Mutex::default(),
        }
    }

    /// Stops the running tasks and starts one per notifier of `rules`.
    pub fn restart(&self, rules: &Rules, alerts: &AlertHandle) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        if let Some(old) = self.stop.lock().replace(tx) {
            let _ = old.send(true);
        }
        for n in &rules.notifiers {
            let exclusive = self
                .exclusive
                .lock()
                .entry(n.name.clone())
                .or_default()
                .clone();
            tokio::spawn(run_notifier(
                n.clone(),
                alerts.outbox.clone(),
                alerts.wake.clone(),
                self.stats.clone(),
                rx.clone(),
                exclusive,
            ));
        }
    }

    pub fn stop(&self) {
        if let Some(old) = self.stop.lock().take() {
            let _ = old.send(true);
        }
    }

    /// Reloads the rules file: on success the engine and the notifiers use the new rules and
    /// the summary is returned; on error the old rules stay and the error says why.
    pub async fn reload(&self, alerts: &AlertHandle) -> Result<serde_json::Value, ReloadError> {
        let _one = self.reloading.lock().await;
        let path = self.rules_path.clone();
        let rules = tokio::task::spawn_blocking(move || load_rules(path.as_deref())).await??;
        let rules = Arc::new(rules);
        alerts.reload(rules.clone()).await?;
        self.restart(&rules, alerts);
        tracing::info!(
            rules = rules.rules.len(),
            notifiers = rules.notifiers.len(),
            "alert rules reloaded"
        );
        Ok(serde_json::json!({
            "rules": rules.rules.len(),
            "notifiers": rules.notifiers.len(),
        }))
    }
}

/// Reloads the rules on every SIGHUP.
pub async fn reload_on_sighup(state: crate::http::State) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let result = state.notifiers.reload(&state.alerts).await;
            state.audit.record(
                "alerts.reload",
                "signal:SIGHUP",
                None,
                serde_json::json!({ "ok": result.is_ok(), "error": result.as_ref().err().map(|e| e.to_string()) }),
            );
            state
                .metrics
                .audit_events
                .with_label_values(&["alerts.reload"])
                .inc();
            if let Err(e) = result {
                tracing::error!(error = %e, "alert rules not reloaded; the old rules stay");
            }
        }
    }
}

/// Loads saved silences (`silences.json`), dropping expired ones.
pub fn load_silences(dir: &Path) -> Result<Silences, SilencesFileError> {
    let path = dir.join("silences.json");
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Silences::from_json(&bytes, now_nanos())?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Silences::default()),
        Err(source) => Err(SilencesFileError::Io {
            action: "read",
            path,
            source,
        }),
    }
}

/// Saves the silences durably.
pub fn save_silences(dir: &Path, silences: &Silences) -> Result<(), SilencesFileError> {
    let path = dir.join("silences.json");
    let io = |source| SilencesFileError::Io {
        action: "save",
        path: path.clone(),
        source,
    };
    let bytes = serde_json::to_vec(silences).map_err(|e| io(e.into()))?;
    sawmill_core::durable::replace_file(&path, &bytes).map_err(io)
}
