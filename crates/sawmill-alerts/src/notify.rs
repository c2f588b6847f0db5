//! Notifiers: deliver outbox entries to SNS, to a webhook (JSON or Slack) or to the log, with
//! retries until delivered, and grouping so a storm of alerts does not page hundreds of times.
//!
//! Each notifier has its own task. It sends its pending entries oldest first; a failure is
//! retried with [`RetryPolicy::DEFAULT`] (200 ms doubling to 30 s, with jitter) without
//! skipping ahead, so receivers see notifications in order. Per rule, at most `group_limit` notifications go out
//! individually per `group_interval`; the rest wait and go out together in one grouped message
//! when the interval ends.

use crate::engine::Notification;
use crate::outbox::{Entry, Outbox};
use crate::rules::{Notifier, NotifierKind};
use sawmill_core::RetryPolicy;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// SNS refuses messages above 256 KB.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// SNS subjects are under 100 ASCII characters.
pub const MAX_SUBJECT_CHARS: usize = 99;

/// Delivery counters, for `/metrics`.
#[derive(Default, Debug)]
pub struct NotifyStats {
    pub sent: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub grouped: AtomicU64,
}

/// `[FIRING] checkout-errors host=web-1: 42 > 10 in 5m`, made safe for SNS: printable ASCII
/// only, under 100 characters.
pub fn subject(n: &Notification) -> String {
    let mut text = format!("[{}] {}", n.state.to_uppercase(), n.rule);
    for (k, v) in &n.group {
        text.push_str(&format!(" {k}={v}"));
    }
    text.push_str(&format!(": {} {} in {}", n.count, n.condition, n.window));
    ascii_subject(&text)
}

fn ascii_subject(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if out.chars().count() > MAX_SUBJECT_CHARS {
        out = out.chars().take(MAX_SUBJECT_CHARS - 3).collect();
        out.push_str("...");
    }
    out
}

/// The notification as the JSON message on-call receives: the contract's fields, plus the
/// fields of a CloudWatch alarm message that existing on-call tooling reads, plus `tenant` for
/// a tenant rule's. Samples are cut until the message fits in `max_bytes`.
pub fn message(n: &Notification, max_bytes: usize) -> String {
    let mut samples: Vec<Value> = n.samples.clone();
    loop {
        let mut v = json!({
            "rule": n.rule,
            "state": n.state,
            "severity": n.severity,
            "group": n.group,
            "count": n.count,
            "condition": n.condition,
            "window": n.window,
            "starts_at": n.starts_at,
            "ends_at": n.ends_at,
            "labels": n.labels,
            "annotations": n.annotations,
            "fingerprint": n.fingerprint,
            "sequence": n.sequence,
            "repeat": n.repeat,
            "samples": samples,
            "AlarmName": n.rule,
            "NewStateValue": if n.state == "firing" { "ALARM" } else { "OK" },
            "NewStateReason": format!("{} matching events in {} ({})", n.count, n.window, n.condition),
            "StateChangeTime": n.starts_at,
        });
        if let Some(t) = &n.tenant {
            v["tenant"] = json!(t);
        }
        let text = v.to_string();
        if text.len() <= max_bytes || samples.is_empty() {
            return text;
        }
        samples.pop();
    }
}

/// One message for the alerts of a rule held back by grouping.
pub fn grouped(rule: &str, entries: &[Entry]) -> (String, String) {
    let firing = entries
        .iter()
        .filter(|e| e.notification.state == "firing")
        .count();
    let resolved = entries.len() - firing;
    let subject = ascii_subject(&format!(
        "[GROUPED] {rule}: {firing} firing, {resolved} resolved"
    ));
    let mut alerts: Vec<Value> = entries
        .iter()
        .map(|e| {
            let n = &e.notification;
            json!({"state": n.state, "group": n.group, "count": n.count,
                   "fingerprint": n.fingerprint, "sequence": n.sequence,
                   "starts_at": n.starts_at, "ends_at": n.ends_at, "annotations": n.annotations})
        })
        .collect();
    // a rule's entries all have its tenant
    let tenant = entries.first().and_then(|e| e.notification.tenant.as_ref());
    loop {
        let mut v = json!({
            "rule": rule,
            "state": "grouped",
            "firing": firing,
            "resolved": resolved,
            "alerts": alerts,
            "truncated": alerts.len() < entries.len(),
        });
        if let Some(t) = tenant {
            v["tenant"] = json!(t);
        }
        let text = v.to_string();
        if text.len() <= MAX_MESSAGE_BYTES || alerts.is_empty() {
            return (subject, text);
        }
        let keep = alerts.len() / 2;
        alerts.truncate(keep);
    }
}

/// The SNS message attributes of a notification: `rule`, `state`, `severity` and, for a
/// tenant rule's, `tenant`.
pub fn attributes<'a>(n: &'a Notification, state: &'a str) -> Vec<(&'static str, &'a str)> {
    let mut a = vec![
        ("rule", n.rule.as_str()),
        ("state", state),
        ("severity", n.severity.as_str()),
    ];
    if let Some(t) = &n.tenant {
        a.push(("tenant", t.as_str()));
    }
    a
}

/// Where one notifier sends.
enum Target {
    Sns {
        client: aws_sdk_sns::Client,
        topic_arn: String,
    },
    Webhook {
        http: reqwest::Client,
        url: String,
        slack: bool,
        headers: Vec<(String, String)>,
    },
    Log,
}

async fn sns_client(region: Option<&str>, endpoint: Option<&str>) -> aws_sdk_sns::Client {
    let shared = sawmill_aws::sdk_config(&sawmill_aws::AwsSettings {
        region: region.map(str::to_string),
        connect_timeout: Duration::from_secs(3),
        attempt_timeout: Duration::from_secs(10),
        max_attempts: 3,
    })
    .await;
    let mut config = aws_sdk_sns::config::Builder::from(&shared);
    if let Some(e) = endpoint {
        config = config.endpoint_url(e);
    }
    aws_sdk_sns::Client::from_conf(config.build())
}

impl Target {
    async fn new(n: &Notifier) -> Target {
        match &n.kind {
            NotifierKind::Sns {
                topic_arn,
                region,
                endpoint,
            } => {
                // the topic's region unless configured
                let region = region
                    .clone()
                    .or_else(|| topic_arn.split(':').nth(3).map(str::to_string));
                Target::Sns {
                    client: sns_client(region.as_deref(), endpoint.as_deref()).await,
                    topic_arn: topic_arn.clone(),
                }
            }
            NotifierKind::Webhook {
                url,
                slack,
                headers,
                timeout,
            } => Target::Webhook {
                http: reqwest::Client::builder()
                    .timeout(*timeout)
                    .build()
                    .unwrap_or_default(),
                url: url.clone(),
                slack: *slack,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            },
            NotifierKind::Log => Target::Log,
        }
    }

    /// Sends one message; `attributes` are SNS message attributes ([`attributes`]).
    async fn send(
        &self,
        subject: &str,
        message: &str,
        attributes: &[(&str, &str)],
        dedup: &str,
    ) -> Result<(), String> {
        match self {
            Target::Sns { client, topic_arn } => {
                let mut req = client
                    .publish()
                    .topic_arn(topic_arn)
                    .subject(subject)
                    .message(message);
                for (k, v) in attributes {
                    req = req.message_attributes(
                        *k,
                        aws_sdk_sns::types::MessageAttributeValue::builder()
                            .data_type("String")
                            .string_value(*v)
                            .build()
                            .map_err(|e| e.to_string())?,
                    );
                }
                if topic_arn.ends_with(".fifo") {
                    let group = attributes
                        .iter()
                        .find(|(k, _)| *k == "rule")
                        .map(|(_, v)| *v)
                        .unwrap_or("sawmill");
                    req = req
                        .message_group_id(group)
                        .message_deduplication_id(dedup.chars().take(128).collect::<String>());
                }
                req.send().await.map(|_| ()).map_err(|e| {
                    format!(
                        "sns publish to {topic_arn}: {}",
                        aws_sdk_sns::error::DisplayErrorContext(&e)
                    )
                })
            }
            Target::Webhook {
                http,
                url,
                slack,
                headers,
            } => {
                let body = if *slack {
                    let summary = serde_json::from_str::<Value>(message)
                        .ok()
                        .and_then(|v| v["annotations"]["summary"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    json!({"text": if summary.is_empty() { subject.to_string() } else { format!("{subject}\n{summary}") }})
                        .to_string()
                } else {
                    message.to_string()
                };
                let mut req = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body);
                for (k, v) in headers {
                    req = req.header(k, v);
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| format!("webhook {url}: {e}"))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("webhook {url} answered {}", resp.status()))
                }
            }
            Target::Log => {
                tracing::warn!(target: "sawmill::alert", subject, message, "alert notification");
                Ok(())
            }
        }
    }
}

/// Runs one notifier until `stop` is set: delivers its outbox entries. `exclusive` is held
/// while it runs, so the task of a reloaded notifier of the same name starts only once this
/// one has finished what it was sending (an entry is never sent by two tasks).
pub async fn run_notifier(
    notifier: Notifier,
    outbox: Arc<Outbox>,
    wake: Arc<tokio::sync::Notify>,
    stats: Arc<NotifyStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    exclusive: Arc<tokio::sync::Mutex<()>>,
) {
    let _running = exclusive.lock().await;
    let target = Target::new(&notifier).await;
    let interval = notifier.group_interval.as_nanos() as i64;
    // per rule: the current group interval
    let mut windows: HashMap<String, GroupWindow> = HashMap::new();
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        // registered before the outbox is read, so an entry written while this pass runs
        // wakes the next one at once (notify_waiters keeps no permit)
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let name = notifier.name.clone();
        let ob = outbox.clone();
        let pending = tokio::task::spawn_blocking(move || ob.pending(&name))
            .await
            .unwrap_or_default();
        let now = now_nanos();
        let mut held: HashMap<String, Vec<(String, Entry)>> = HashMap::new();
        let mut failed = None;
        for (file, entry) in pending {
            if entry.notification.state == "resolved" && !notifier.send_resolved {
                delivered(&outbox, file).await;
                continue;
            }
            let rule = entry.notification.rule.clone();
            let w = windows.entry(rule.clone()).or_insert(GroupWindow {
                start: now,
                sent: 0,
                overflow: false,
            });
            if !w.overflow && now - w.start >= interval {
                *w = GroupWindow {
                    start: now,
                    sent: 0,
                    overflow: false,
                };
            }
            if w.overflow || w.sent >= notifier.group_limit {
                // the rest of this interval's go out together when it ends
                w.overflow = true;
                held.entry(rule).or_default().push((file, entry));
                continue;
            }
            let n = &entry.notification;
            let dedup = format!("{}-{}-{}", n.fingerprint, n.sequence, n.state);
            let result = target
                .send(
                    &subject(n),
                    &message(n, MAX_MESSAGE_BYTES),
                    &attributes(n, &n.state),
                    &dedup,
                )
                .await;
            match result {
                Ok(()) => {
                    w.sent += 1;
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    delivered(&outbox, file).await;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        // held entries go out together once their rule's interval is over
        if failed.is_none() {
            for (rule, entries) in held {
                let Some(w) = windows.get_mut(&rule) else {
                    continue;
                };
                if now - w.start < interval {
                    continue;
                }
                let list: Vec<Entry> = entries.iter().map(|(_, e)| e.clone()).collect();
                let (subj, msg) = grouped(&rule, &list);
                let dedup = format!("group-{rule}-{}", w.start);
                match target
                    .send(
                        &subj,
                        &msg,
                        &attributes(&list[0].notification, "grouped"),
                        &dedup,
                    )
                    .await
                {
                    Ok(()) => {
                        *w = GroupWindow {
                            start: now,
                            sent: 1,
                            overflow: false,
                        };
                        stats
                            .grouped
                            .fetch_add(list.len() as u64, Ordering::Relaxed);
                        stats.sent.fetch_add(1, Ordering::Relaxed);
                        for (file, _) in entries {
                            delivered(&outbox, file).await;
                        }
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        let wait = match failed {
            Some(e) => {
                failures += 1;
                stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                let wait = RetryPolicy::DEFAULT.delay(failures, None);
                tracing::warn!(notifier = %notifier.name, error = %e, retry_in_ms = wait.as_millis() as u64, "notification not delivered; retrying");
                wait
            }
            None => {
                failures = 0;
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = &mut woken, if failures == 0 => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Moves a delivered entry out of the outbox, off the async threads (it renames and fsyncs).
async fn delivered(outbox: &Arc<Outbox>, file: String) {
    let outbox = outbox.clone();
    let moved = tokio::task::spawn_blocking(move || outbox.delivered(&file)).await;
    if let Ok(Err(e)) = moved {
        tracing::error!(error = %e, "outbox");
    }
}

/// One rule's group interval in a notifier.
struct GroupWindow {
    start: i64,
    sent: usize,
    /// More than `group_limit` came: every further one waits for the grouped message.
    overflow: bool,
}

fn now_nanos() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn note() -> Notification {
        Notification {
            tenant: None,
            rule: "checkout-errors".into(),
            state: "firing".into(),
            severity: "critical".into(),
            group: [("host".to_string(), "wéb-1\n".to_string())].into(),
            count: 42,
            condition: "> 10".into(),
            window: "5m".into(),
            starts_at: "2026-11-27T10:00:00Z".into(),
            ends_at: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            fingerprint: "ab".into(),
            sequence: 1,
            samples: vec![json!({"message": "x".repeat(100_000)}); 3],
            notify: vec![],
            created_at: 0,
            repeat: false,
        }
    }

    #[test]
    fn subjects_are_short_printable_ascii() {
        let mut n = note();
        assert_eq!(
            subject(&n),
            "[FIRING] checkout-errors host=w?b-1?: 42 > 10 in 5m"
        );
        n.rule = "r".repeat(300);
        let s = subject(&n);
        assert!(s.chars().count() <= MAX_SUBJECT_CHARS && s.ends_with("..."));
    }

    #[test]
    fn messages_fit_by_dropping_samples() {
        let n = note();
        let m = message(&n, MAX_MESSAGE_BYTES);
        assert!(m.len() <= MAX_MESSAGE_BYTES);
        let v: Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["samples"].as_array().unwrap().len(), 2);
        for field in [
            "rule",
            "state",
            "severity",
            "group",
            "count",
            "condition",
            "window",
            "starts_at",
            "ends_at",
            "labels",
            "annotations",
            "fingerprint",
            "samples",
        ] {
            assert!(v.get(field).is_some(), "{field}");
        }
        assert_eq!(v["NewStateValue"], "ALARM");
    }

    #[test]
    fn tenant_rules_messages_and_attributes_carry_the_tenant() {
        let mut n = note();
        n.samples.clear();
        // an operator rule's message and attributes are as before
        let v: Value = serde_json::from_str(&message(&n, MAX_MESSAGE_BYTES)).unwrap();
        assert!(v.get("tenant").is_none());
        assert_eq!(
            attributes(&n, &n.state),
            [
                ("rule", "checkout-errors"),
                ("state", "firing"),
                ("severity", "critical")
            ]
        );
        n.tenant = Some("acme".into());
        let v: Value = serde_json::from_str(&message(&n, MAX_MESSAGE_BYTES)).unwrap();
        assert_eq!(v["tenant"], "acme");
        assert!(attributes(&n, &n.state).contains(&("tenant", "acme")));
        let entry = Entry {
            notifier: "oncall".into(),
            notification: n.clone(),
        };
        let (_, grouped_text) = grouped(&n.rule, &[entry]);
        let v: Value = serde_json::from_str(&grouped_text).unwrap();
        assert_eq!(v["tenant"], "acme");
        assert_eq!(attributes(&n, "grouped")[1], ("state", "grouped"));
    }
}
