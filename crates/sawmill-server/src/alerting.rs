//! Alerting in the server: loading and reloading the rules file (SIGHUP and
//! `POST /api/v1/alerts/reload`; a bad file keeps the old rules), the notifier tasks, and the
//! silences file.

use parking_lot::Mutex;
use sawmill_alerts::notify::{run_notifier, NotifyStats};
use sawmill_alerts::{AlertHandle, Rules, Silences};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn now_nanos() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// Reads the rules file, or no rules without one.
pub fn load_rules(path: Option<&Path>) -> Result<Rules, String> {
    match path {
        Some(p) => Rules::load(p, now_nanos()).map_err(|e| e.to_string()),
        None => Ok(Rules::default()),
    }
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
    pub async fn reload(&self, alerts: &AlertHandle) -> Result<serde_json::Value, String> {
        let _one = self.reloading.lock().await;
        let path = self.rules_path.clone();
        let rules = tokio::task::spawn_blocking(move || load_rules(path.as_deref()))
            .await
            .map_err(|e| e.to_string())??;
        let rules = Arc::new(rules);
        alerts
            .reload(rules.clone())
            .await
            .map_err(|e| e.to_string())?;
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
pub fn load_silences(dir: &Path) -> Result<Silences, String> {
    match std::fs::read(dir.join("silences.json")) {
        Ok(bytes) => Silences::from_json(&bytes, now_nanos()).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Silences::default()),
        Err(e) => Err(format!("cannot read silences: {e}")),
    }
}

/// Saves the silences durably (temporary file, fsync, rename).
pub fn save_silences(dir: &Path, silences: &Silences) -> Result<(), String> {
    let bytes = serde_json::to_vec(silences).map_err(|e| e.to_string())?;
    let tmp = dir.join("silences.json.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join("silences.json"))
    };
    write().map_err(|e| format!("cannot save silences: {e}"))
}
