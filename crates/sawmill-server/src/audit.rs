//! The audit log: who did what, for which tenant, and when.
//!
//! One JSON object a line in `<data_dir>/audit.log`, appended by the server (searches,
//! histograms, alert reloads, silences, restores, flushes, key changes it notices) and by the
//! `sawmill keys` commands (key creation and revocation). Lines are written with `O_APPEND` in
//! one `write`, so the server and a command appending at once never interleave a line. The
//! server's lines are written by a thread of their own, so a slow disk never holds up the
//! request being audited. Each action is also counted in
//! `sawmill_audit_events_total{action}`.

use parking_lot::Mutex;
use serde_json::{json, Value};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// The file under the data directory.
pub const AUDIT_FILE: &str = "audit.log";

/// An open audit log.
pub struct AuditLog {
    /// Lines for the writer thread; `None` once closed.
    lines: Mutex<Option<mpsc::Sender<String>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Who acted: a key id, or `anonymous` on a server without keys, or `cli` for local commands.
pub fn actor_of(key_id: Option<&str>) -> String {
    match key_id {
        Some(id) => format!("key:{id}"),
        None => "anonymous".to_string(),
    }
}

fn line(action: &str, actor: &str, tenant: Option<&str>, details: Value) -> String {
    let mut line = json!({
        "ts": now_rfc3339(),
        "action": action,
        "actor": actor,
        "tenant": tenant,
    });
    if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), details) {
        obj.extend(extra);
    }
    let mut text = line.to_string();
    text.push('\n');
    text
}

/// Appends lines to `path` until the sender goes away; a failed write is logged and the file
/// opened again for the next line.
fn write_lines(path: PathBuf, lines: mpsc::Receiver<String>) {
    let mut file: Option<File> = None;
    for text in lines {
        if file.is_none() {
            match open_append(&path) {
                Ok(f) => file = Some(f),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot open the audit log");
                    continue;
                }
            }
        }
        if let Some(f) = file.as_mut() {
            if let Err(e) = f.write_all(text.as_bytes()) {
                tracing::error!(path = %path.display(), error = %e, "cannot write the audit log");
                file = None;
            }
        }
    }
}

impl AuditLog {
    pub fn open(data_dir: &Path) -> AuditLog {
        let (tx, rx) = mpsc::channel();
        let path = data_dir.join(AUDIT_FILE);
        let writer = std::thread::Builder::new()
            .name("sawmill-audit".into())
            .spawn(move || write_lines(path, rx))
            .map_err(|e| tracing::error!(error = %e, "cannot start the audit log writer"))
            .ok();
        AuditLog {
            lines: Mutex::new(writer.as_ref().map(|_| tx)),
            writer: Mutex::new(writer),
        }
    }

    /// Queues one entry; `details` are merged into the line. Never blocks on the disk.
    pub fn record(&self, action: &str, actor: &str, tenant: Option<&str>, details: Value) {
        let text = line(action, actor, tenant, details);
        if let Some(tx) = self.lines.lock().as_ref() {
            let _ = tx.send(text);
        }
    }

    /// Writes what is queued and stops the writer (at shutdown).
    pub fn close(&self) {
        drop(self.lines.lock().take());
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Appends one entry from a command-line tool (no server running needed), synced to disk.
pub fn record_offline(
    data_dir: &Path,
    action: &str,
    tenant: Option<&str>,
    details: Value,
) -> std::io::Result<()> {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_string());
    let text = line(action, &format!("cli:{user}"), tenant, details);
    let mut f = open_append(&data_dir.join(AUDIT_FILE))?;
    f.write_all(text.as_bytes())?;
    f.sync_data()
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
