//! Notifiers: deliver outbox entries to SNS, to a webhook (JSON or Slack) or to the log, with
//! retries until delivered, and grouping so a storm of alerts does not page hundreds of times.
//!
//! Each notifier has its own task. It sends its pending entries oldest first; a failure is
//! retried with [`RetryPolicy::DEFAULT`] (200 ms doubling to 30 s, with jitter) without
//! skipping ahead, so receivers see notifications in order. Per rule, at most `group_limit`
//! notifications go out individually per `group_interval`; the rest wait and go out together
//! in one grouped message when the interval ends.

use crate::engine::Notification;
use crate::now_nanos;
use crate::outbox::{Entry, Outbox};
use crate::rules::{Notifier, NotifierKind};
use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{BuildError, DisplayErrorContext, SdkError};
use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_sns::types::MessageAttributeValue;
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

/// Why a notification was not delivered (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("sns message attribute {name}: {source}")]
    Attribute { name: String, source: BuildError },
    #[error("sns publish to {topic_arn}: {}", DisplayErrorContext(.source.as_ref()))]
    Publish {
        topic_arn: String,
        source: Box<SdkError<PublishError, HttpResponse>>,
    },
    #[error("webhook {url}: {source}")]
    Webhook { url: String, source: reqwest::Error },
    #[error("webhook {url} answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
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

    /// Sends one message; `attributes` are SNS message attributes ([`attributes`]) and
    /// `dedup` the deduplication id of a FIFO topic.
    async fn send(
        &self,
        subject: &str,
        message: &str,
        attributes: &[(&str, &str)],
        dedup: &str,
    ) -> Result<(), NotifyError> {
        match self {
            Target::Sns { client, topic_arn } => {
                publish(client, topic_arn, subject, message, attributes, dedup).await
            }
            Target::Webhook {
                http,
                url,
                slack,
                headers,
            } => {
                let body = if *slack {
                    slack_body(subject, message)
                } else {
                    message.to_string()
                };
                post(http, url, headers, body).await
            }
            Target::Log => {
                tracing::warn!(target: "sawmill::alert", subject, message, "alert notification");
                Ok(())
            }
        }
    }
}

/// SNS `Publish` of one message to `topic_arn`.
async fn publish(
    client: &aws_sdk_sns::Client,
    topic_arn: &str,
    subject: &str,
    message: &str,
    attributes: &[(&str, &str)],
    dedup: &str,
) -> Result<(), NotifyError> {
    let mut req = client
        .publish()
        .topic_arn(topic_arn)
        .subject(subject)
        .message(message);
    for (name, value) in attributes {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(*value)
            .build()
            .map_err(|source| NotifyError::Attribute {
                name: name.to_string(),
                source,
            })?;
        req = req.message_attributes(*name, value);
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
    req.send()
        .await
        .map(|_| ())
        .map_err(|source| NotifyError::Publish {
            topic_arn: topic_arn.to_string(),
            source: Box::new(source),
        })
}

/// The Slack message of a notification: its subject and, when it has one, its summary.
fn slack_body(subject: &str, message: &str) -> String {
    let summary = serde_json::from_str::<Value>(message)
        .ok()
        .and_then(|v| v["annotations"]["summary"].as_str().map(str::to_string))
        .unwrap_or_default();
    let text = if summary.is_empty() {
        subject.to_string()
    } else {
        format!("{subject}\n{summary}")
    };
    json!({ "text": text }).to_string()
}

/// A JSON POST of `body` to the webhook; anything but a 2xx answer is a failure.
async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    body: String,
) -> Result<(), NotifyError> {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|source| NotifyError::Webhook {
        url: url.to_string(),
        source,
    })?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(NotifyError::Status {
            url: url.to_string(),
            status: resp.status(),
        })
    }
}

/// How long a notifier waits between passes over its outbox when nothing wakes it: entries
/// held by grouping go out once their interval is over.
const IDLE_PASS: Duration = Duration::from_secs(1);

/// The wait before the next pass after `failures` failed passes in a row.
fn retry_wait(failures: u32) -> Duration {
    RetryPolicy::DEFAULT.delay(failures, None)
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
    let mut delivery = Delivery {
        target: Target::new(&notifier).await,
        notifier,
        outbox,
        stats,
        windows: HashMap::new(),
    };
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
        let wait = match delivery.pass().await {
            Ok(()) => {
                failures = 0;
                IDLE_PASS
            }
            Err(e) => {
                failures += 1;
                delivery
                    .stats
                    .failed_attempts
                    .fetch_add(1, Ordering::Relaxed);
                let wait = retry_wait(failures);
                tracing::warn!(notifier = %delivery.notifier.name, error = %e, retry_in_ms = wait.as_millis() as u64, "notification not delivered; retrying");
                wait
            }
        };
        tokio::select! {
            _ = &mut woken, if failures == 0 => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Pending entries by rule, waiting for their rule's grouped message: (file name, entry).
type Held = HashMap<String, Vec<(String, Entry)>>;

/// What one notifier's task delivers with, and its rules' group intervals.
struct Delivery {
    notifier: Notifier,
    target: Target,
    outbox: Arc<Outbox>,
    stats: Arc<NotifyStats>,
    /// Per rule: the current group interval.
    windows: HashMap<String, GroupWindow>,
}

impl Delivery {
    /// One pass over the notifier's pending entries, oldest first, up to the first failure:
    /// entries within their rule's group limit go out one by one, the others together once
    /// their rule's interval is over.
    async fn pass(&mut self) -> Result<(), NotifyError> {
        let pending = self.pending().await;
        let now = now_nanos();
        let held = self.send_individually(pending, now).await?;
        self.send_grouped(held, now).await
    }

    /// The notifier's pending entries, read off the async threads.
    async fn pending(&self) -> Vec<(String, Entry)> {
        let name = self.notifier.name.clone();
        let outbox = self.outbox.clone();
        tokio::task::spawn_blocking(move || outbox.pending(&name))
            .await
            .unwrap_or_default()
    }

    fn interval(&self) -> i64 {
        self.notifier.group_interval.as_nanos() as i64
    }

    /// Sends the entries their rule's group limit lets through, in order; returns the others.
    async fn send_individually(
        &mut self,
        pending: Vec<(String, Entry)>,
        now: i64,
    ) -> Result<Held, NotifyError> {
        let interval = self.interval();
        let mut held = Held::new();
        for (file, entry) in pending {
            let n = &entry.notification;
            if n.state == "resolved" && !self.notifier.send_resolved {
                delivered(&self.outbox, file).await;
                continue;
            }
            let window = self
                .windows
                .entry(n.rule.clone())
                .or_insert_with(|| GroupWindow::new(now));
            window.roll(now, interval);
            if !window.admit(self.notifier.group_limit) {
                held.entry(n.rule.clone()).or_default().push((file, entry));
                continue;
            }
            let dedup = format!("{}-{}-{}", n.fingerprint, n.sequence, n.state);
            self.target
                .send(
                    &subject(n),
                    &message(n, MAX_MESSAGE_BYTES),
                    &attributes(n, &n.state),
                    &dedup,
                )
                .await?;
            window.sent += 1;
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
            delivered(&self.outbox, file).await;
        }
        Ok(held)
    }

    /// Sends the held entries of each rule whose interval is over as one grouped message, and
    /// starts the rule's next interval with it.
    async fn send_grouped(&mut self, held: Held, now: i64) -> Result<(), NotifyError> {
        let interval = self.interval();
        for (rule, entries) in held {
            let Some(window) = self.windows.get_mut(&rule) else {
                continue;
            };
            if now - window.start < interval {
                continue;
            }
            let list: Vec<Entry> = entries.iter().map(|(_, e)| e.clone()).collect();
            let Some(first) = list.first() else {
                continue;
            };
            let (subject, message) = grouped(&rule, &list);
            let dedup = format!("group-{rule}-{}", window.start);
            self.target
                .send(
                    &subject,
                    &message,
                    &attributes(&first.notification, "grouped"),
                    &dedup,
                )
                .await?;
            *window = GroupWindow {
                start: now,
                sent: 1,
                overflow: false,
            };
            self.stats
                .grouped
                .fetch_add(list.len() as u64, Ordering::Relaxed);
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
            for (file, _) in entries {
                delivered(&self.outbox, file).await;
            }
        }
        Ok(())
    }
}

/// Moves a delivered entry out of the outbox, off the async threads (it renames and fsyncs).
async fn delivered(outbox: &Arc<Outbox>, file: String) {
    let outbox = outbox.clone();
    let moved = tokio::task::spawn_blocking(move || outbox.delivered(&file)).await;
    if let Ok(Err(e)) = moved {
        tracing::error!(error = %e, "delivered notification left in the outbox: it may be sent again");
    }
}

/// One rule's group interval in a notifier.
struct GroupWindow {
    start: i64,
    sent: usize,
    /// More than `group_limit` came: every further one waits for the grouped message.
    overflow: bool,
}

impl GroupWindow {
    fn new(start: i64) -> GroupWindow {
        GroupWindow {
            start,
            sent: 0,
            overflow: false,
        }
    }

    /// Starts the next interval once this one is over, unless notifications wait for this
    /// one's grouped message.
    fn roll(&mut self, now: i64, interval: i64) {
        if !self.overflow && now - self.start >= interval {
            *self = GroupWindow::new(now);
        }
    }

    /// Whether one more notification goes out on its own; once one does not, the rest of the
    /// interval's wait for the grouped message.
    fn admit(&mut self, group_limit: usize) -> bool {
        if self.overflow || self.sent >= group_limit {
            self.overflow = true;
            return false;
        }
        true
    }
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
    fn failed_deliveries_are_retried_at_least_every_30_seconds() {
        // on-call hears soon after SNS or the webhook recovers, however long it was down
        assert!(retry_wait(1) <= Duration::from_millis(200));
        for failures in [9, 20, u32::MAX] {
            let wait = retry_wait(failures);
            assert!(
                wait >= Duration::from_secs(15) && wait <= Duration::from_secs(30),
                "{failures}: {wait:?}"
            );
        }
    }

    #[test]
    fn a_group_window_holds_what_exceeds_the_limit_until_its_grouped_message() {
        let mut w = GroupWindow::new(0);
        for _ in 0..2 {
            assert!(w.admit(2));
            w.sent += 1;
        }
        assert!(!w.admit(2), "the third of the interval waits");
        // the interval is over but entries wait for its grouped message: it stays
        w.roll(100, 10);
        assert_eq!((w.start, w.overflow), (0, true));
        assert!(!w.admit(2));
        // without entries waiting, the next interval starts afresh
        let mut w = GroupWindow::new(0);
        w.sent = 2;
        w.roll(5, 10);
        assert_eq!(w.start, 0, "not over yet");
        w.roll(10, 10);
        assert_eq!((w.start, w.sent), (10, 0));
        assert!(w.admit(2));
    }

    #[test]
    fn slack_messages_carry_the_subject_and_the_summary() {
        let text = |message: &str| -> Value {
            serde_json::from_str::<Value>(&slack_body("[FIRING] r", message)).unwrap()["text"]
                .clone()
        };
        assert_eq!(
            text(r#"{"annotations":{"summary":"3 errors on web-1"}}"#),
            "[FIRING] r\n3 errors on web-1"
        );
        assert_eq!(text(r#"{"annotations":{}}"#), "[FIRING] r");
        assert_eq!(text("not json"), "[FIRING] r");
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
