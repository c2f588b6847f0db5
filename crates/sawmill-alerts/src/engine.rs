//! The evaluation engine: counts matching events per rule and group over sliding windows and
//! moves each alert instance through inactive → pending → firing → resolved.
//!
//! Events are counted by their own timestamp, in buckets (1 s wide for windows up to 10
//! minutes, `window / 600` beyond), so `count` is the number of matching events in
//! `(now - window, now]` to within one bucket. An instance is evaluated as soon as one of its
//! events arrives (a threshold crossed fires at once) and on every rule's `every` tick (which
//! resolves, ends `for` and notices absence). Conditions that hold on a count of zero (`< 1`)
//! only hold once a whole window has been observed, so a restart or a new rule does not
//! report absence it has not seen.
//!
//! The engine is pure state: it returns [`Notification`]s and never does I/O; the worker
//! persists its [`Snapshot`] and the outbox delivers what it returns.

use crate::rules::{Rule, Rules};
use crate::silence::Silences;
use crate::template::Context;
use sawmill_core::{format_rfc3339, Event, Fnv1a64};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// Matching events kept per instance, shown in notifications.
pub const MAX_SAMPLES: usize = 3;
/// A new sample per instance at most this often (ns).
const SAMPLE_EVERY: i64 = 100_000_000;
/// The group values of events beyond a rule's `max_groups`.
pub const OVERFLOW: &str = "_other";

/// State of an alert instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Inactive,
    Pending,
    Firing,
}

/// Counts in time buckets.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counter {
    width: i64,
    buckets: VecDeque<(i64, u64)>,
}

impl Counter {
    fn new(window_nanos: i64) -> Counter {
        Counter {
            width: (window_nanos / 600).max(1_000_000_000),
            buckets: VecDeque::new(),
        }
    }

    fn add(&mut self, ts: i64, n: u64) {
        let start = ts - ts.rem_euclid(self.width);
        match self.buckets.iter().rposition(|(s, _)| *s <= start) {
            Some(i) if self.buckets[i].0 == start => self.buckets[i].1 += n,
            Some(i) => self.buckets.insert(i + 1, (start, n)),
            None => self.buckets.push_front((start, n)),
        }
    }

    /// Events in `(now - window, now]`; forgets older buckets.
    fn count(&mut self, now: i64, window: i64) -> u64 {
        let from = now - window;
        while self
            .buckets
            .front()
            .is_some_and(|(s, _)| *s + self.width <= from)
        {
            self.buckets.pop_front();
        }
        self.buckets
            .iter()
            .filter(|(s, _)| *s <= now)
            .map(|(_, n)| n)
            .sum()
    }
}

/// One alert instance: a rule and one set of group values.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Instance {
    pub group: BTreeMap<String, String>,
    pub state: State,
    pub counter: Counter,
    /// When the condition started to hold (pending or firing).
    pub active_since: i64,
    pub fired_at: i64,
    /// Last evaluation at which the condition held.
    pub last_true: i64,
    /// Last firing notification sent (0: none since it fired).
    pub last_notified: i64,
    pub last_count: u64,
    pub last_event: i64,
    /// Notifications sent for this instance's fingerprint.
    pub sequence: u64,
    pub samples: VecDeque<serde_json::Value>,
    #[serde(skip)]
    dirty: bool,
    #[serde(skip)]
    last_sample: i64,
}

impl Instance {
    fn new(group: BTreeMap<String, String>, window: i64) -> Instance {
        Instance {
            group,
            state: State::Inactive,
            counter: Counter::new(window),
            active_since: 0,
            fired_at: 0,
            last_true: 0,
            last_notified: 0,
            last_count: 0,
            last_event: 0,
            sequence: 0,
            samples: VecDeque::new(),
            dirty: false,
            last_sample: 0,
        }
    }
}

/// A rule's state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RuleState {
    /// What the rule counted: state is kept across reloads only while these stay the same.
    pub identity: String,
    pub instances: BTreeMap<String, Instance>,
    /// Since when events have been observed for this rule.
    pub observed_since: i64,
    pub last_eval: i64,
    pub last_error: Option<String>,
}

/// A notification to deliver: one instance's change (or repeat).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    pub rule: String,
    /// The tenant of a tenant rule; `None` for an operator rule (and in outbox entries
    /// written before rules had tenants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `firing` or `resolved`.
    pub state: String,
    pub severity: String,
    pub group: BTreeMap<String, String>,
    pub count: u64,
    pub condition: String,
    pub window: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Stable per rule and group: receivers deduplicate on (fingerprint, sequence).
    pub fingerprint: String,
    pub sequence: u64,
    pub samples: Vec<serde_json::Value>,
    /// Notifier names this goes to.
    pub notify: Vec<String>,
    /// When the engine produced it (ns).
    pub created_at: i64,
    /// A reminder of a still-firing alert.
    pub repeat: bool,
}

/// What the worker saves and restores.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub rules: BTreeMap<String, RuleState>,
}

/// The engine.
pub struct Engine {
    rules: Arc<Rules>,
    states: Vec<RuleState>,
    started_at: i64,
}

/// The key of an instance in the state map: group values joined.
fn group_key(group: &BTreeMap<String, String>) -> String {
    let mut key = String::new();
    for (k, v) in group {
        key.push_str(k);
        key.push('=');
        key.push_str(v);
        key.push('\u{1f}');
    }
    key
}

/// The fingerprint of an alert instance, stable per rule and group: FNV-1a 64 of the rule name,
/// then each group field and value, every part followed by a 0 byte, in hex. Outbox entries and
/// receivers keep it, so its value never changes.
pub fn fingerprint(rule: &str, group: &BTreeMap<String, String>) -> String {
    let mut h = Fnv1a64::new();
    h.write(rule.as_bytes()).write(&[0]);
    for (k, v) in group {
        h.write(k.as_bytes()).write(&[0]);
        h.write(v.as_bytes()).write(&[0]);
    }
    format!("{:016x}", h.finish())
}

/// What a rule counts. An operator rule's identity is what it was before rules had tenants,
/// so saved state keeps loading; a tenant rule's also names its tenant, so moving a rule to
/// another tenant (or making it an operator rule) starts it afresh.
fn identity(rule: &Rule) -> String {
    let mut id = format!(
        "{}\u{1f}{}\u{1f}{}",
        rule.query,
        rule.window.as_nanos(),
        rule.group_by.join(",")
    );
    if let Some(t) = &rule.tenant {
        id.push_str("\u{1f}tenant=");
        id.push_str(t);
    }
    id
}

/// The value of `field` in an event, as a group value (`""` when absent).
pub fn group_value(event: &Event, field: &str) -> String {
    let keyword = match field {
        "level" => Some(&event.level),
        "service" => Some(&event.service),
        "host" => Some(&event.host),
        "source" => Some(&event.source),
        _ => None,
    };
    if let Some(v) = keyword {
        return v.clone().unwrap_or_default();
    }
    let path = field.strip_prefix("attributes.").unwrap_or(field);
    let mut value: Option<&serde_json::Value> = None;
    let mut map = &event.attributes;
    // a key may itself contain dots: try the longest key first at every level
    let parts: Vec<&str> = path.split('.').collect();
    let mut i = 0;
    while i < parts.len() {
        let mut found = None;
        for j in (i + 1..=parts.len()).rev() {
            let key = parts[i..j].join(".");
            if let Some(v) = map.get(&key) {
                found = Some((v, j));
                break;
            }
        }
        let Some((v, j)) = found else {
            return String::new();
        };
        i = j;
        value = Some(v);
        if i < parts.len() {
            match v.as_object() {
                Some(m) => map = m,
                None => return String::new(),
            }
        }
    }
    match value {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

impl Engine {
    pub fn new(rules: Arc<Rules>, snapshot: Snapshot, now: i64) -> Engine {
        let mut engine = Engine {
            rules: Arc::new(Rules::default()),
            states: Vec::new(),
            started_at: now,
        };
        let mut saved = snapshot.rules;
        engine.states = rules
            .rules
            .iter()
            .map(|r| match saved.remove(&r.name) {
                Some(s) if s.identity == identity(r) => s,
                _ => fresh_state(r, now),
            })
            .collect();
        engine.rules = rules;
        engine
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// Replaces the rules. Rules whose query, window and grouping are unchanged keep their
    /// counts and instances; the firing instances of rules removed or changed are resolved.
    pub fn reload(&mut self, rules: Arc<Rules>, now: i64) -> Vec<Notification> {
        let mut old: HashMap<String, (usize, RuleState)> = std::mem::take(&mut self.states)
            .into_iter()
            .enumerate()
            .map(|(i, s)| (self.rules.rules[i].name.clone(), (i, s)))
            .collect();
        let mut out = Vec::new();
        let mut states = Vec::with_capacity(rules.rules.len());
        for r in &rules.rules {
            match old.remove(&r.name) {
                Some((_, s)) if s.identity == identity(r) => states.push(s),
                Some((i, s)) => {
                    out.extend(self.resolve_all(i, s, now));
                    states.push(fresh_state(r, now));
                }
                None => states.push(fresh_state(r, now)),
            }
        }
        for (_, (i, s)) in old {
            out.extend(self.resolve_all(i, s, now));
        }
        self.rules = rules;
        self.states = states;
        out
    }

    fn resolve_all(&self, rule_index: usize, state: RuleState, now: i64) -> Vec<Notification> {
        let rule = &self.rules.rules[rule_index];
        state
            .instances
            .into_values()
            .filter(|i| i.state == State::Firing)
            .map(|mut i| {
                i.sequence += 1;
                notification(&self.rules, rule, &i, "resolved", now, false)
            })
            .collect()
    }

    /// Counts one matching event of rule `rule_index`.
    pub fn observe(&mut self, rule_index: usize, event: &Event, now: i64) {
        let Some(rule) = self.rules.rules.get(rule_index) else {
            return;
        };
        let group = rule
            .group_by
            .iter()
            .map(|f| group_value(event, f))
            .collect();
        self.observe_hit(rule_index, event.timestamp, group, Some(event), now);
    }

    /// Counts one matching event of rule `rule_index` at `ts` with the values of the rule's
    /// `group_by` fields; `sample`, when given, may become one of the instance's samples
    /// (at most one new sample per instance every 100 ms: building it costs more than
    /// counting).
    pub fn observe_hit(
        &mut self,
        rule_index: usize,
        ts: i64,
        group_values: Vec<String>,
        sample: Option<&Event>,
        now: i64,
    ) {
        let Some(rule) = self.rules.rules.get(rule_index) else {
            return;
        };
        let window = rule.window.as_nanos() as i64;
        // a future timestamp (clock skew) counts now; one older than the window not at all
        let ts = ts.min(now);
        if ts <= now - window {
            return;
        }
        let state = &mut self.states[rule_index];
        let mut group: BTreeMap<String, String> =
            rule.group_by.iter().cloned().zip(group_values).collect();
        let mut key = group_key(&group);
        if !state.instances.contains_key(&key) && state.instances.len() >= rule.max_groups {
            for v in group.values_mut() {
                *v = OVERFLOW.to_string();
            }
            key = group_key(&group);
            if !state.instances.contains_key(&key) {
                state.last_error = Some(format!(
                    "more than {} groups: further groups are counted together as {OVERFLOW}",
                    rule.max_groups
                ));
            }
        }
        let instance = state
            .instances
            .entry(key)
            .or_insert_with(|| Instance::new(group, window));
        instance.counter.add(ts, 1);
        instance.last_event = instance.last_event.max(ts);
        instance.dirty = true;
        if let Some(event) = sample {
            if instance.samples.len() < MAX_SAMPLES || now - instance.last_sample >= SAMPLE_EVERY {
                if instance.samples.len() >= MAX_SAMPLES {
                    instance.samples.pop_front();
                }
                instance.samples.push_back(event.to_json_value());
                instance.last_sample = now;
            }
        }
    }

    /// Evaluates the instances that received events (`due_only = false`: also every rule
    /// whose `every` has come) and returns the notifications to send.
    pub fn evaluate(&mut self, now: i64, silences: &Silences, ticks: bool) -> Vec<Notification> {
        let rules = self.rules.clone();
        let mut out = Vec::new();
        for (ri, rule) in rules.rules.iter().enumerate() {
            let state = &mut self.states[ri];
            let due = ticks && now - state.last_eval >= rule.every.as_nanos() as i64;
            if due {
                state.last_eval = now;
            }
            let window = rule.window.as_nanos() as i64;
            let observed_enough = now - state.observed_since >= window;
            let mut idle = Vec::new();
            for (key, inst) in state.instances.iter_mut() {
                if !(due || inst.dirty) {
                    continue;
                }
                inst.dirty = false;
                let count = inst.counter.count(now, window);
                inst.last_count = count;
                let holds = rule.condition.holds(count)
                    && (count > 0 || observed_enough || !rule.condition.holds_on_nothing());
                step(&rules, rule, inst, holds, now, silences, &mut out);
                if inst.state == State::Inactive
                    && count == 0
                    && !rule.group_by.is_empty()
                    && now - inst.last_event > window + 3_600_000_000_000
                {
                    idle.push(key.clone());
                }
            }
            for key in idle {
                state.instances.remove(&key);
            }
        }
        out
    }

    /// Rules, their instances and states, for the API.
    pub fn status(&self) -> Vec<(&Rule, &RuleState)> {
        self.rules.rules.iter().zip(self.states.iter()).collect()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            rules: self
                .rules
                .rules
                .iter()
                .zip(self.states.iter())
                .map(|(r, s)| (r.name.clone(), s.clone()))
                .collect(),
        }
    }

    pub fn started_at(&self) -> i64 {
        self.started_at
    }
}

fn fresh_state(rule: &Rule, now: i64) -> RuleState {
    let mut state = RuleState {
        identity: identity(rule),
        observed_since: now,
        ..Default::default()
    };
    if rule.group_by.is_empty() {
        // one instance that exists before any event: absence needs it
        let group = BTreeMap::new();
        state.instances.insert(
            group_key(&group),
            Instance::new(group, rule.window.as_nanos() as i64),
        );
    }
    state
}

/// Moves one instance on; pushes the notifications it causes.
fn step(
    rules: &Rules,
    rule: &Rule,
    inst: &mut Instance,
    holds: bool,
    now: i64,
    silences: &Silences,
    out: &mut Vec<Notification>,
) {
    if holds {
        inst.last_true = now;
    }
    match inst.state {
        State::Inactive if holds => {
            inst.active_since = now;
            inst.state = State::Pending;
        }
        State::Inactive => return,
        State::Pending if !holds => {
            inst.state = State::Inactive;
            return;
        }
        _ => {}
    }
    if inst.state == State::Pending {
        if now - inst.active_since < rule.for_.as_nanos() as i64 {
            return;
        }
        inst.state = State::Firing;
        inst.fired_at = now;
        inst.last_notified = 0;
    }
    // firing
    if !holds && now - inst.last_true >= rule.keep_firing_for.as_nanos() as i64 {
        inst.state = State::Inactive;
        let was_notified = inst.last_notified != 0;
        inst.last_notified = 0;
        if was_notified && !silences.silenced(rule, &inst.group, now) {
            inst.sequence += 1;
            out.push(notification(rules, rule, inst, "resolved", now, false));
        }
        return;
    }
    if silences.silenced(rule, &inst.group, now) {
        return;
    }
    let repeat = rule
        .repeat_interval
        .or_else(|| {
            rule.notify
                .iter()
                .map(|&i| rules.notifiers[i].repeat_interval)
                .min()
        })
        .unwrap_or(std::time::Duration::from_secs(4 * 3600))
        .as_nanos() as i64;
    if inst.last_notified == 0 || now - inst.last_notified >= repeat {
        let is_repeat = inst.last_notified != 0;
        inst.last_notified = now;
        inst.sequence += 1;
        out.push(notification(rules, rule, inst, "firing", now, is_repeat));
    }
}

fn notification(
    rules: &Rules,
    rule: &Rule,
    inst: &Instance,
    state: &str,
    now: i64,
    repeat: bool,
) -> Notification {
    let starts_at = format_rfc3339(inst.fired_at.max(inst.active_since));
    let condition = rule.condition.text();
    let threshold = condition
        .split_once(' ')
        .map(|(_, t)| t.to_string())
        .unwrap_or_default();
    let ctx = Context {
        count: inst.last_count,
        rule: &rule.name,
        severity: &rule.severity,
        state,
        condition: &condition,
        threshold: &threshold,
        window: &rule.window_text,
        starts_at: &starts_at,
        group: &inst.group,
        labels: &rule.labels,
    };
    let annotations = rule
        .annotations
        .iter()
        .map(|(k, t)| (k.clone(), t.render(&ctx)))
        .collect();
    Notification {
        rule: rule.name.clone(),
        tenant: rule.tenant.clone(),
        state: state.to_string(),
        severity: rule.severity.clone(),
        group: inst.group.clone(),
        count: inst.last_count,
        condition,
        window: rule.window_text.clone(),
        starts_at,
        ends_at: (state == "resolved").then(|| format_rfc3339(now)),
        labels: rule.labels.clone(),
        annotations,
        fingerprint: fingerprint(&rule.name, &inst.group),
        sequence: inst.sequence,
        samples: inst.samples.iter().cloned().collect(),
        notify: rule
            .notify
            .iter()
            .map(|&i| rules.notifiers[i].name.clone())
            .collect(),
        created_at: now,
        repeat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn engine(yaml: &str, now: i64) -> Engine {
        let rules = Arc::new(Rules::parse(yaml, now).unwrap());
        Engine::new(rules, Snapshot::default(), now)
    }

    fn event(ts: i64, host: &str) -> Event {
        let mut e = Event::new(ts, "payment failed");
        e.level = Some("ERROR".into());
        e.service = Some("checkout".into());
        e.host = Some(host.into());
        e
    }

    fn feed(e: &mut Engine, ev: &Event, now: i64) {
        for i in 0..e.rules.rules.len() {
            if e.rules.rules[i].matcher.matches(ev) {
                e.observe(i, ev, now);
            }
        }
    }

    /// One silence with one matcher, from the epoch to `ends_at`.
    fn silence(matcher: &str, ends_at: i64, tenant: Option<&str>) -> Silences {
        Silences {
            list: vec![crate::silence::Silence {
                id: "s".into(),
                matchers: vec![crate::silence::parse_matcher(matcher).unwrap()],
                starts_at: 0,
                ends_at,
                created_by: "t".into(),
                comment: String::new(),
                created_at: 0,
                tenant: tenant.map(str::to_string),
            }],
        }
    }

    const THRESHOLD: &str = r#"
notifiers: [{name: log, type: log}]
rules:
  - name: errors
    query: 'level:error'
    window: 1m
    condition: "> 2"
    group_by: [host]
    annotations: {summary: "{{count}} errors on {{group.host}}"}
    notify: [log]
"#;

    #[test]
    fn a_threshold_fires_once_on_the_crossing_event_and_resolves() {
        let t0 = 1_000_000 * S;
        let mut e = engine(THRESHOLD, t0);
        let quiet = Silences::default();
        for i in 0..3 {
            feed(&mut e, &event(t0 + i * S, "web-1"), t0 + i * S);
            let n = e.evaluate(t0 + i * S, &quiet, false);
            if i < 2 {
                assert!(n.is_empty());
            } else {
                assert_eq!(n.len(), 1);
                assert_eq!(n[0].state, "firing");
                assert_eq!(n[0].count, 3);
                assert_eq!(n[0].group["host"], "web-1");
                assert_eq!(n[0].annotations["summary"], "3 errors on web-1");
                assert_eq!(n[0].sequence, 1);
                assert_eq!(n[0].samples.len(), 3);
            }
        }
        // more events: still firing, no new page
        feed(&mut e, &event(t0 + 4 * S, "web-1"), t0 + 4 * S);
        assert!(e.evaluate(t0 + 4 * S, &quiet, true).is_empty());
        // another host below the threshold: nothing
        feed(&mut e, &event(t0 + 5 * S, "web-2"), t0 + 5 * S);
        assert!(e.evaluate(t0 + 5 * S, &quiet, true).is_empty());
        // the window passes: resolved, once
        let n = e.evaluate(t0 + 70 * S, &quiet, true);
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(n[0].state, "resolved");
        assert_eq!(n[0].sequence, 2);
        assert!(n[0].ends_at.is_some());
        assert!(e.evaluate(t0 + 71 * S, &quiet, true).is_empty());
    }

    #[test]
    fn for_delays_and_absence_waits_a_window() {
        let t0 = 1_000_000 * S;
        let yaml = r#"
rules:
  - {name: slow, query: 'level:error', window: 1m, condition: "> 0", for: 10s}
  - {name: quiet, query: 'service:heartbeat', window: 30s, condition: "< 1"}
"#;
        let mut e = engine(yaml, t0);
        let quiet = Silences::default();
        feed(&mut e, &event(t0, "a"), t0);
        assert!(e.evaluate(t0, &quiet, true).is_empty());
        assert!(e.evaluate(t0 + 5 * S, &quiet, true).is_empty());
        let n = e.evaluate(t0 + 10 * S, &quiet, true);
        assert_eq!(
            n.iter().map(|n| n.rule.as_str()).collect::<Vec<_>>(),
            ["slow"]
        );
        // absence fires only once a whole window has been observed
        let n = e.evaluate(t0 + 30 * S, &quiet, true);
        assert_eq!(
            n.iter().map(|n| n.rule.as_str()).collect::<Vec<_>>(),
            ["quiet"]
        );
        // a heartbeat resolves it
        let mut hb = Event::new(t0 + 31 * S, "alive");
        hb.service = Some("heartbeat".into());
        feed(&mut e, &hb, t0 + 31 * S);
        let n = e.evaluate(t0 + 31 * S, &quiet, false);
        assert_eq!(n.len(), 1);
        assert_eq!(
            (n[0].rule.as_str(), n[0].state.as_str()),
            ("quiet", "resolved")
        );
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert_and_silences_hold_pages() {
        let t0 = 1_000_000 * S;
        let yaml = r#"
notifiers: [{name: log, type: log}]
rules:
  - {name: flappy, query: 'level:error', window: 10s, condition: "> 0", keep_firing_for: 20s, notify: [log]}
"#;
        let mut e = engine(yaml, t0);
        let quiet = Silences::default();
        feed(&mut e, &event(t0, "a"), t0);
        assert_eq!(e.evaluate(t0, &quiet, true).len(), 1);
        // the condition holds until the event leaves the window (t0+10s), then the alert
        // keeps firing 20 s more
        assert!(e.evaluate(t0 + 9 * S, &quiet, true).is_empty());
        assert!(e.evaluate(t0 + 15 * S, &quiet, true).is_empty());
        assert!(e.evaluate(t0 + 28 * S, &quiet, true).is_empty());
        // an event during keep_firing_for: still the same alert, no new page
        feed(&mut e, &event(t0 + 28 * S, "a"), t0 + 28 * S);
        assert!(e.evaluate(t0 + 28 * S, &quiet, false).is_empty());
        assert!(e.evaluate(t0 + 37 * S, &quiet, true).is_empty());
        assert!(e.evaluate(t0 + 56 * S, &quiet, true).is_empty());
        let n = e.evaluate(t0 + 58 * S, &quiet, true);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].state, "resolved");

        // silenced while it fires: no page; once the silence ends, the page goes out
        let silence = silence("rule=flappy", t0 + 105 * S, None);
        feed(&mut e, &event(t0 + 100 * S, "a"), t0 + 100 * S);
        assert!(e.evaluate(t0 + 100 * S, &silence, true).is_empty());
        let n = e.evaluate(t0 + 106 * S, &silence, true);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].state, "firing");
    }

    #[test]
    fn state_survives_a_snapshot_and_reload_keeps_unchanged_rules() {
        let t0 = 1_000_000 * S;
        let mut e = engine(THRESHOLD, t0);
        let quiet = Silences::default();
        for i in 0..3 {
            feed(&mut e, &event(t0 + i, "web-1"), t0 + i);
        }
        assert_eq!(e.evaluate(t0 + 3, &quiet, false).len(), 1);
        let snap: Snapshot =
            serde_json::from_str(&serde_json::to_string(&e.snapshot()).unwrap()).unwrap();
        let rules = Arc::new(Rules::parse(THRESHOLD, t0).unwrap());
        let mut e2 = Engine::new(rules.clone(), snap, t0 + S);
        // restarted while firing: no new page
        assert!(e2.evaluate(t0 + 2 * S, &quiet, true).is_empty());
        // the same rules again: nothing changes
        assert!(e2.reload(rules, t0 + 3 * S).is_empty());
        // the rule changed: its firing instance is resolved
        let changed = THRESHOLD.replace("\"> 2\"", "\"> 5\"").replace("1m", "2m");
        let n = e2.reload(Arc::new(Rules::parse(&changed, t0).unwrap()), t0 + 4 * S);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].state, "resolved");
    }

    #[test]
    fn a_tenant_silence_holds_only_that_tenants_alerts() {
        let t0 = 1_000_000 * S;
        let yaml = r#"
notifiers: [{name: log, type: log}]
rules:
  - {name: acme-errors, tenant: acme, query: 'level:error', window: 1m, condition: "> 0", notify: [log]}
  - {name: globex-errors, tenant: globex, query: 'level:error', window: 1m, condition: "> 0", notify: [log]}
  - {name: all-errors, query: 'level:error', window: 1m, condition: "> 0", notify: [log]}
"#;
        let mut e = engine(yaml, t0);
        // acme silences everything it can: matchers that match every alert
        let silence = |tenant| silence("rule=~.*", t0 + 1000 * S, tenant);
        // every rule sees an event (the tenant filter is the matching's: see worker tests)
        for i in 0..3 {
            e.observe(i, &event(t0, "a"), t0);
        }
        let n = e.evaluate(t0, &silence(Some("acme")), true);
        let mut fired: Vec<(&str, Option<&str>)> = n
            .iter()
            .map(|n| (n.rule.as_str(), n.tenant.as_deref()))
            .collect();
        fired.sort();
        // neither another tenant's rule nor an operator rule is silenced by acme
        assert_eq!(
            fired,
            [("all-errors", None), ("globex-errors", Some("globex"))]
        );
        // an operator silence silences any alert
        let mut e = engine(yaml, t0);
        for i in 0..3 {
            e.observe(i, &event(t0, "a"), t0);
        }
        assert!(e.evaluate(t0, &silence(None), true).is_empty());
        // the tenant is a label an operator silence may match
        let mut e = engine(yaml, t0);
        for i in 0..3 {
            e.observe(i, &event(t0, "a"), t0);
        }
        let mut by_tenant = silence(None);
        by_tenant.list[0].matchers = vec![crate::silence::parse_matcher("tenant=acme").unwrap()];
        let mut fired: Vec<String> = e
            .evaluate(t0, &by_tenant, true)
            .into_iter()
            .map(|n| n.rule)
            .collect();
        fired.sort();
        assert_eq!(fired, ["all-errors", "globex-errors"]);
    }

    #[test]
    fn state_saved_before_tenants_still_loads() {
        let t0 = 1_000_000 * S;
        // a snapshot as written before rules had tenants: rule "errors" of THRESHOLD firing
        // for web-1 with 3 events in the window
        let saved = format!(
            r#"{{"rules":{{"errors":{{"identity":"level:error\u001f60000000000\u001fhost",
            "instances":{{"host=web-1\u001f":{{"group":{{"host":"web-1"}},"state":"firing",
            "counter":{{"width":1000000000,"buckets":[[{t0},3]]}},"active_since":{t0},
            "fired_at":{t0},"last_true":{t0},"last_notified":{t0},"last_count":3,
            "last_event":{t0},"sequence":1,"samples":[]}}}},
            "observed_since":{t0},"last_eval":{t0},"last_error":null}}}}}}"#
        );
        let snap: Snapshot = serde_json::from_str(&saved).unwrap();
        let rules = Arc::new(Rules::parse(THRESHOLD, t0).unwrap());
        let mut e = Engine::new(rules, snap.clone(), t0 + S);
        // kept: still firing, no new page; one more event counts on top of the saved ones
        feed(&mut e, &event(t0 + S, "web-1"), t0 + S);
        assert!(e.evaluate(t0 + S, &Silences::default(), false).is_empty());
        let (_, state) = e.status()[0];
        let inst = &state.instances["host=web-1\u{1f}"];
        assert_eq!((inst.state, inst.last_count), (State::Firing, 4));
        // the same rule moved to a tenant counts something else: it starts afresh
        let tenant =
            THRESHOLD.replace("  - name: errors\n", "  - name: errors\n    tenant: acme\n");
        let rules = Arc::new(Rules::parse(&tenant, t0).unwrap());
        let e = Engine::new(rules, snap, t0 + S);
        assert!(!e.status()[0].1.instances.contains_key("host=web-1\u{1f}"));
    }

    #[test]
    fn notifications_of_tenant_rules_carry_the_tenant() {
        let t0 = 1_000_000 * S;
        let tenant =
            THRESHOLD.replace("  - name: errors\n", "  - name: errors\n    tenant: acme\n");
        for (yaml, want) in [(THRESHOLD.to_string(), None), (tenant, Some("acme"))] {
            let mut e = engine(&yaml, t0);
            for i in 0..3 {
                feed(&mut e, &event(t0 + i, "web-1"), t0 + i);
            }
            let n = e.evaluate(t0 + 3, &Silences::default(), false);
            assert_eq!(n.len(), 1);
            assert_eq!(n[0].tenant.as_deref(), want);
            // an outbox entry round-trips; one written before tenants has none
            let json = serde_json::to_value(&n[0]).unwrap();
            assert_eq!(json.get("tenant").and_then(|t| t.as_str()), want);
            let mut old = json.clone();
            old.as_object_mut().unwrap().remove("tenant");
            let back: Notification = serde_json::from_value(old).unwrap();
            assert_eq!(back.tenant, None);
        }
    }

    #[test]
    fn group_values_come_from_fields_and_attributes() {
        let mut e = Event::new(0, "m");
        e.host = Some("web-1".into());
        e.attributes = serde_json::json!({"http": {"status": 503}, "k8s.pod": "p-1"})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(group_value(&e, "host"), "web-1");
        assert_eq!(group_value(&e, "http.status"), "503");
        assert_eq!(group_value(&e, "k8s.pod"), "p-1");
        assert_eq!(group_value(&e, "missing"), "");
        assert_eq!(group_value(&e, "service"), "");
    }

    #[test]
    fn fingerprints_keep_their_values() {
        // persisted in the outbox and state, sent to receivers that deduplicate on them
        let group = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            fingerprint("checkout-errors", &group(&[("host", "web-1")])),
            "fe861d6a00c532f1"
        );
        assert_eq!(fingerprint("errors", &group(&[])), "3964dc9e9d2ee592");
        assert_eq!(
            fingerprint(
                "errors",
                &group(&[("http.status", "503"), ("host", "web-1")])
            ),
            "80e325b5c98a5546"
        );
    }

    #[test]
    fn counters_slide() {
        let mut c = Counter::new(60 * S);
        c.add(10 * S, 1);
        c.add(10 * S + 5, 2);
        c.add(70 * S, 1);
        // the bucket [10 s, 11 s) still overlaps (10 s, 70 s]
        assert_eq!(c.count(70 * S, 60 * S), 4);
        assert_eq!(c.count(71 * S, 60 * S), 1);
        c.add(65 * S, 4);
        assert_eq!(c.count(71 * S, 60 * S), 5);
        // a bucket after now is not counted yet
        assert_eq!(c.count(66 * S, 60 * S), 4);
    }
}
