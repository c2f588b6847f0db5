//! The rules file: notifiers and alert rules in YAML, parsed and validated into [`Rules`].
//!
//! Every error names the rule (or notifier) and the field, and says what to write instead,
//! so `sawmill alerts check FILE` and a reload that keeps the old rules can show it as is.

use crate::template::{Template, TemplateError};
use sawmill_core::tenant::InvalidTenant;
use sawmill_core::InvalidTime;
use sawmill_index::compile::CompileError;
use sawmill_index::matcher::Matcher;
use sawmill_index::query::ParseError;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Rules at most in one file.
pub const MAX_RULES: usize = 1000;
/// The shortest repeat interval of a notifier or rule.
const MIN_REPEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Fields a rule may group by at most.
pub const MAX_GROUP_BY: usize = 8;
/// Longest window a rule may count over.
pub const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    notifiers: Vec<NotifierSpec>,
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifierSpec {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    // sns
    topic_arn: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    // webhook
    url: Option<String>,
    format: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    timeout: Option<String>,
    // all
    repeat_interval: Option<String>,
    send_resolved: Option<bool>,
    group_interval: Option<String>,
    group_limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    query: String,
    window: String,
    condition: String,
    #[serde(default)]
    group_by: Vec<String>,
    #[serde(rename = "for")]
    for_: Option<String>,
    keep_firing_for: Option<String>,
    every: Option<String>,
    severity: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    notify: Vec<String>,
    repeat_interval: Option<String>,
    max_groups: Option<usize>,
    tenant: Option<String>,
}

/// How a notifier delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifierKind {
    /// SNS `Publish` to a topic (region and endpoint: else the AWS SDK chain).
    Sns {
        topic_arn: String,
        region: Option<String>,
        endpoint: Option<String>,
    },
    /// An HTTP POST of the notification JSON, or of a Slack message.
    Webhook {
        url: String,
        slack: bool,
        headers: BTreeMap<String, String>,
        timeout: Duration,
    },
    /// A line in the server's log.
    Log,
}

/// A validated notifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notifier {
    pub name: String,
    pub kind: NotifierKind,
    /// A still-firing alert is notified again after this long.
    pub repeat_interval: Duration,
    pub send_resolved: bool,
    /// At most `group_limit` notifications of one rule go out individually per
    /// `group_interval`; the rest of the interval's go out together, once, at its end.
    pub group_interval: Duration,
    pub group_limit: usize,
}

/// The comparison of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// `> 10`: the count compared with a threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Condition {
    pub op: Op,
    pub threshold: f64,
}

impl Condition {
    pub fn holds(&self, count: u64) -> bool {
        let c = count as f64;
        match self.op {
            Op::Gt => c > self.threshold,
            Op::Ge => c >= self.threshold,
            Op::Lt => c < self.threshold,
            Op::Le => c <= self.threshold,
            Op::Eq => c == self.threshold,
            Op::Ne => c != self.threshold,
        }
    }

    /// Whether a count of zero satisfies it: an absence condition, which needs a whole window
    /// of observation before it may fire.
    pub fn holds_on_nothing(&self) -> bool {
        self.holds(0)
    }

    pub fn text(&self) -> String {
        format!("{} {}", self.op.as_str(), format_number(self.threshold))
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A validated rule.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub query: String,
    pub matcher: Matcher,
    pub window: Duration,
    pub window_text: String,
    pub condition: Condition,
    /// Fields whose values make one alert instance each (`host`, `http.status`, …).
    pub group_by: Vec<String>,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub every: Duration,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: Vec<(String, Template)>,
    /// Indexes into [`Rules::notifiers`].
    pub notify: Vec<usize>,
    /// Overrides the notifiers' repeat interval.
    pub repeat_interval: Option<Duration>,
    /// Alert instances at most (distinct groups); events of further groups are counted in
    /// an overflow instance whose group values are `_other`.
    pub max_groups: usize,
    /// The tenant whose events the rule counts; `None`: an operator rule over every tenant.
    pub tenant: Option<String>,
}

impl Rule {
    /// Whether the rule counts events of `tenant`: a tenant rule its own tenant's only, an
    /// operator rule every tenant's.
    pub fn applies_to(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == tenant)
    }

    /// Whether a caller sees the rule: the operator (`None`) every rule, a tenant only its
    /// own rules.
    pub fn visible_to(&self, viewer: Option<&str>) -> bool {
        match viewer {
            None => true,
            Some(t) => self.tenant.as_deref() == Some(t),
        }
    }
}

pub use sawmill_core::tenant::{check_tenant, MAX_TENANT_LEN};

/// A validated rules file.
#[derive(Debug, Default)]
pub struct Rules {
    pub notifiers: Vec<Notifier>,
    pub rules: Vec<Rule>,
}

/// Why a rules file was refused: the rule or notifier, the field, and what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An error of the file at `path`.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: Box<RulesError>,
    },
    #[error("{0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("a notifier has an empty name")]
    EmptyNotifierName,
    #[error("notifier {name:?}: {source}")]
    Notifier { name: String, source: NotifierError },
    #[error("notifier {0:?}: the name is used twice")]
    NotifierTwice(String),
    #[error("{0} rules: at most {MAX_RULES} fit in one file")]
    TooManyRules(usize),
    #[error("rule {name:?}: {source}")]
    Rule { name: String, source: RuleError },
    #[error("rule {0:?}: the name is used twice")]
    RuleTwice(String),
}

/// What is wrong with a notifier (the field first).
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("topic_arn is required for type sns")]
    MissingTopicArn,
    #[error("topic_arn {0:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")]
    TopicArn(String),
    #[error("url is required for type webhook")]
    MissingUrl,
    #[error("url {0:?} must start with http:// or https://")]
    Url(String),
    #[error("format {0:?}: use json or slack")]
    Format(String),
    #[error("type {0:?}: use sns, webhook or log")]
    Kind(String),
    #[error("{field} applies to type {kinds} only")]
    NotForKind {
        field: &'static str,
        kinds: &'static str,
    },
    #[error("{field}: {source}")]
    Duration {
        field: &'static str,
        source: InvalidTime,
    },
    #[error("repeat_interval must be at least 5s")]
    RepeatTooShort,
    #[error("group_limit must be at least 1")]
    GroupLimit,
}

/// What is wrong with a rule (the field first).
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("name: empty; give every rule a unique name")]
    EmptyName,
    #[error("name: at most 128 characters, no control characters")]
    Name,
    #[error("tenant: {0}")]
    Tenant(#[from] InvalidTenant),
    #[error("query: {0}")]
    Query(#[from] ParseError),
    #[error("query: {0}")]
    Matcher(#[from] CompileError),
    #[error("{field}: {source}")]
    Duration {
        field: &'static str,
        source: InvalidTime,
    },
    #[error("window: {0} is out of range: use 1s to 24h")]
    WindowRange(String),
    #[error("condition: {0}")]
    Condition(#[from] ConditionError),
    #[error("group_by: {0}")]
    GroupField(#[from] GroupFieldError),
    #[error("group_by: {0:?} is listed twice")]
    GroupedTwice(String),
    #[error("group_by: at most {MAX_GROUP_BY} fields")]
    TooManyGroupFields,
    #[error("every: at least 1s")]
    EveryTooShort,
    #[error("severity: {0:?}: a short word such as critical, warning or info")]
    Severity(String),
    #[error("labels: {0:?} has an empty name or control characters")]
    Label(String),
    #[error("annotations.{key}: {source}")]
    Annotation { key: String, source: TemplateError },
    #[error("notify: no notifier named {target:?} (notifiers: {known:?})")]
    UnknownNotifier { target: String, known: Vec<String> },
    #[error("repeat_interval: at least 5s")]
    RepeatTooShort,
    #[error("max_groups: between 1 and 100000")]
    MaxGroups,
}

/// A condition that is not a comparison with a count.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error(
        "{0:?} is not a comparison: write one of > >= < <= == != and a number, like \"> 10\" or \
         \"< 1\""
    )]
    NotAComparison(String),
    #[error("{text:?}: {number:?} is not a number")]
    NotANumber { text: String, number: String },
    #[error("{0:?}: the threshold must be a count, 0 or more")]
    NotACount(String),
}

/// A `group_by` entry alerts cannot be grouped by.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupFieldError {
    #[error(
        "{0:?} is not a field name: use service, host, level, source or an attribute path like \
         http.status"
    )]
    NotAField(String),
    #[error("{0:?} cannot group alerts: group by service, host, level, source or an attribute")]
    NotGroupable(String),
}

fn parse_condition(text: &str) -> Result<Condition, ConditionError> {
    let t = text.trim();
    let (op, rest) = [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">", Op::Gt),
        ("<", Op::Lt),
    ]
    .into_iter()
    .find_map(|(p, op)| t.strip_prefix(p).map(|r| (op, r)))
    .ok_or_else(|| ConditionError::NotAComparison(text.to_string()))?;
    let threshold: f64 = rest
        .trim()
        .parse()
        .map_err(|_| ConditionError::NotANumber {
            text: text.to_string(),
            number: rest.trim().to_string(),
        })?;
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(ConditionError::NotACount(text.to_string()));
    }
    Ok(Condition { op, threshold })
}

/// Names that may be grouped by: the keyword fields and attribute paths.
fn check_group_field(field: &str) -> Result<(), GroupFieldError> {
    let ok = !field.is_empty()
        && field.len() <= 256
        && field
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '@')
        && field
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '@' | '-'));
    if !ok {
        return Err(GroupFieldError::NotAField(field.to_string()));
    }
    if matches!(field, "message" | "timestamp" | "@timestamp") {
        return Err(GroupFieldError::NotGroupable(field.to_string()));
    }
    Ok(())
}

impl Rules {
    /// Parses and validates a rules file; `now` resolves relative times in queries.
    pub fn parse(text: &str, now: i64) -> Result<Rules, RulesError> {
        let spec: FileSpec = serde_yaml_ng::from_str(text)?;
        let mut rules = Rules::default();
        let mut names = BTreeSet::new();
        for n in spec.notifiers {
            let notifier = validate_notifier(n)?;
            if !names.insert(notifier.name.clone()) {
                return Err(RulesError::NotifierTwice(notifier.name));
            }
            rules.notifiers.push(notifier);
        }
        if spec.rules.len() > MAX_RULES {
            return Err(RulesError::TooManyRules(spec.rules.len()));
        }
        let mut rule_names = BTreeSet::new();
        for r in spec.rules {
            let name = r.name.clone();
            let rule = validate_rule(r, &rules.notifiers, now)
                .map_err(|source| RulesError::Rule { name, source })?;
            if !rule_names.insert(rule.name.clone()) {
                return Err(RulesError::RuleTwice(rule.name));
            }
            rules.rules.push(rule);
        }
        Ok(rules)
    }

    /// Reads and validates a rules file.
    pub fn load(path: &Path, now: i64) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Rules::parse(&text, now).map_err(|e| RulesError::File {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }
}

/// Reads the duration of an optional notifier setting (`default` when absent).
fn notifier_duration(
    field: &'static str,
    text: Option<&str>,
    default: Duration,
) -> Result<Duration, NotifierError> {
    match text {
        Some(t) => sawmill_core::parse_duration(t)
            .map_err(|source| NotifierError::Duration { field, source }),
        None => Ok(default),
    }
}

/// Reads the duration of a rule setting.
fn rule_duration(field: &'static str, text: &str) -> Result<Duration, RuleError> {
    sawmill_core::parse_duration(text).map_err(|source| RuleError::Duration { field, source })
}

/// Reads the duration of an optional rule setting (`default` when absent).
fn optional_rule_duration(
    field: &'static str,
    text: Option<&str>,
    default: Duration,
) -> Result<Duration, RuleError> {
    text.map_or(Ok(default), |t| rule_duration(field, t))
}

fn validate_notifier(n: NotifierSpec) -> Result<Notifier, RulesError> {
    let name = n.name.trim().to_string();
    if name.is_empty() {
        return Err(RulesError::EmptyNotifierName);
    }
    notifier_settings(&n, name.clone()).map_err(|source| RulesError::Notifier { name, source })
}

/// The notifier `name` of a spec: its type's settings, then those of every type.
fn notifier_settings(n: &NotifierSpec, name: String) -> Result<Notifier, NotifierError> {
    let kind = notifier_kind(n)?;
    check_fields_of_other_kinds(n, &kind)?;
    let repeat_interval = notifier_duration(
        "repeat_interval",
        n.repeat_interval.as_deref(),
        Duration::from_secs(4 * 3600),
    )?;
    let group_interval = notifier_duration(
        "group_interval",
        n.group_interval.as_deref(),
        Duration::from_secs(300),
    )?;
    if repeat_interval < MIN_REPEAT_INTERVAL {
        return Err(NotifierError::RepeatTooShort);
    }
    let group_limit = n.group_limit.unwrap_or(5);
    if group_limit == 0 {
        return Err(NotifierError::GroupLimit);
    }
    Ok(Notifier {
        name,
        kind,
        repeat_interval,
        send_resolved: n.send_resolved.unwrap_or(true),
        group_interval,
        group_limit,
    })
}

/// How the notifier delivers, from `type` and that type's settings.
fn notifier_kind(n: &NotifierSpec) -> Result<NotifierKind, NotifierError> {
    match n.kind.as_str() {
        "sns" => {
            let topic_arn = n.topic_arn.clone().ok_or(NotifierError::MissingTopicArn)?;
            if !topic_arn.starts_with("arn:") || topic_arn.split(':').count() < 6 {
                return Err(NotifierError::TopicArn(topic_arn));
            }
            Ok(NotifierKind::Sns {
                topic_arn,
                region: n.region.clone(),
                endpoint: n.endpoint.clone(),
            })
        }
        "webhook" => {
            let url = n.url.clone().ok_or(NotifierError::MissingUrl)?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(NotifierError::Url(url));
            }
            let slack = match n.format.as_deref() {
                None | Some("json") => false,
                Some("slack") => true,
                Some(other) => return Err(NotifierError::Format(other.to_string())),
            };
            Ok(NotifierKind::Webhook {
                url,
                slack,
                headers: n.headers.clone(),
                timeout: notifier_duration(
                    "timeout",
                    n.timeout.as_deref(),
                    Duration::from_secs(10),
                )?,
            })
        }
        "log" => Ok(NotifierKind::Log),
        other => Err(NotifierError::Kind(other.to_string())),
    }
}

/// Settings of another type than the notifier's are refused rather than ignored.
fn check_fields_of_other_kinds(n: &NotifierSpec, kind: &NotifierKind) -> Result<(), NotifierError> {
    let is_sns = matches!(kind, NotifierKind::Sns { .. });
    let is_webhook = matches!(kind, NotifierKind::Webhook { .. });
    for (field, present, kinds) in [
        ("topic_arn", n.topic_arn.is_some() && !is_sns, "sns"),
        ("region", n.region.is_some() && !is_sns, "sns"),
        ("endpoint", n.endpoint.is_some() && !is_sns, "sns"),
        ("url", n.url.is_some() && !is_webhook, "webhook"),
        ("format", n.format.is_some() && !is_webhook, "webhook"),
        ("headers", !n.headers.is_empty() && !is_webhook, "webhook"),
        ("timeout", n.timeout.is_some() && !is_webhook, "webhook"),
    ] {
        if present {
            return Err(NotifierError::NotForKind { field, kinds });
        }
    }
    Ok(())
}

fn validate_rule(r: RuleSpec, notifiers: &[Notifier], now: i64) -> Result<Rule, RuleError> {
    let name = rule_name(&r.name)?;
    if let Some(t) = &r.tenant {
        check_tenant(t)?;
    }
    let matcher = Matcher::new(&sawmill_index::query::parse(&r.query)?, now)?;
    let window = rule_window(&r.window)?;
    let condition = parse_condition(&r.condition)?;
    check_group_by(&r.group_by)?;
    let for_ = optional_rule_duration("for", r.for_.as_deref(), Duration::ZERO)?;
    let keep_firing_for = optional_rule_duration(
        "keep_firing_for",
        r.keep_firing_for.as_deref(),
        Duration::ZERO,
    )?;
    let every = optional_rule_duration("every", r.every.as_deref(), Duration::from_secs(1))?;
    if every < Duration::from_secs(1) {
        return Err(RuleError::EveryTooShort);
    }
    let severity = rule_severity(r.severity.as_deref())?;
    check_labels(&r.labels)?;
    let annotations = rule_annotations(&r.annotations, &r.group_by, &r.labels)?;
    let notify = notifier_indexes(&r.notify, notifiers)?;
    let repeat_interval = rule_repeat_interval(r.repeat_interval.as_deref())?;
    let max_groups = r.max_groups.unwrap_or(1000);
    if max_groups == 0 || max_groups > 100_000 {
        return Err(RuleError::MaxGroups);
    }
    Ok(Rule {
        name,
        query: r.query,
        matcher,
        window,
        window_text: r.window.trim().to_string(),
        condition,
        group_by: r.group_by,
        for_,
        keep_firing_for,
        every,
        severity,
        labels: r.labels,
        annotations,
        notify,
        repeat_interval,
        max_groups,
        tenant: r.tenant,
    })
}

/// The rule's name, trimmed: not empty, at most 128 characters, no control characters.
fn rule_name(name: &str) -> Result<String, RuleError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(RuleError::EmptyName);
    }
    if name.len() > 128 || name.chars().any(char::is_control) {
        return Err(RuleError::Name);
    }
    Ok(name.to_string())
}

/// The window a rule counts over: 1s to [`MAX_WINDOW`].
fn rule_window(text: &str) -> Result<Duration, RuleError> {
    let window = rule_duration("window", text)?;
    if window < Duration::from_secs(1) || window > MAX_WINDOW {
        return Err(RuleError::WindowRange(text.to_string()));
    }
    Ok(window)
}

/// The rule's own repeat interval, if it sets one: at least 5s.
fn rule_repeat_interval(text: Option<&str>) -> Result<Option<Duration>, RuleError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let d = rule_duration("repeat_interval", text)?;
    if d < MIN_REPEAT_INTERVAL {
        return Err(RuleError::RepeatTooShort);
    }
    Ok(Some(d))
}

/// At most [`MAX_GROUP_BY`] distinct fields alerts can be grouped by.
fn check_group_by(group_by: &[String]) -> Result<(), RuleError> {
    let mut seen = BTreeSet::new();
    for field in group_by {
        check_group_field(field)?;
        if !seen.insert(field.as_str()) {
            return Err(RuleError::GroupedTwice(field.clone()));
        }
    }
    if group_by.len() > MAX_GROUP_BY {
        return Err(RuleError::TooManyGroupFields);
    }
    Ok(())
}

/// The severity (`warning` when absent): a short word without control characters.
fn rule_severity(severity: Option<&str>) -> Result<String, RuleError> {
    let severity = severity.unwrap_or("warning");
    if severity.is_empty() || severity.len() > 32 || severity.chars().any(char::is_control) {
        return Err(RuleError::Severity(severity.to_string()));
    }
    Ok(severity.to_string())
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), RuleError> {
    match labels.iter().find(|(k, v)| {
        k.is_empty() || k.chars().any(char::is_control) || v.chars().any(char::is_control)
    }) {
        Some((k, _)) => Err(RuleError::Label(k.clone())),
        None => Ok(()),
    }
}

/// The annotation templates, parsed against the rule's `group_by` and labels.
fn rule_annotations(
    annotations: &BTreeMap<String, String>,
    group_by: &[String],
    labels: &BTreeMap<String, String>,
) -> Result<Vec<(String, Template)>, RuleError> {
    annotations
        .iter()
        .map(
            |(key, text)| match Template::parse(text, group_by, labels) {
                Ok(t) => Ok((key.clone(), t)),
                Err(source) => Err(RuleError::Annotation {
                    key: key.clone(),
                    source,
                }),
            },
        )
        .collect()
}

/// The indexes in `notifiers` of the notifiers named in `notify`.
fn notifier_indexes(notify: &[String], notifiers: &[Notifier]) -> Result<Vec<usize>, RuleError> {
    notify
        .iter()
        .map(|target| {
            notifiers
                .iter()
                .position(|n| &n.name == target)
                .ok_or_else(|| RuleError::UnknownNotifier {
                    target: target.clone(),
                    known: notifiers.iter().map(|n| n.name.clone()).collect(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
notifiers:
  - name: oncall
    type: sns
    topic_arn: arn:aws:sns:eu-west-1:123456789012:oncall
  - name: chat
    type: webhook
    url: https://hooks.example.com/x
    format: slack
rules:
  - name: checkout-errors
    query: 'service:checkout AND level:ERROR'
    window: 5m
    condition: "> 10"
    group_by: [host]
    for: 1m
    every: 15s
    severity: critical
    labels: {team: payments}
    annotations: {summary: "{{count}} errors on {{group.host}}"}
    notify: [oncall, chat]
  - name: heartbeat-missing
    query: 'service:heartbeat'
    window: 2m
    condition: "< 1"
"#;

    #[test]
    fn the_contract_example_parses() {
        let rules = Rules::parse(GOOD, 0).unwrap();
        assert_eq!(rules.notifiers.len(), 2);
        let r = &rules.rules[0];
        assert_eq!(r.name, "checkout-errors");
        assert_eq!(r.window, Duration::from_secs(300));
        assert_eq!(
            r.condition,
            Condition {
                op: Op::Gt,
                threshold: 10.0
            }
        );
        assert_eq!(r.group_by, ["host"]);
        assert_eq!(r.for_, Duration::from_secs(60));
        assert_eq!(r.every, Duration::from_secs(15));
        assert_eq!(r.notify, [0, 1]);
        let absent = &rules.rules[1];
        assert!(absent.condition.holds_on_nothing());
        assert_eq!(absent.severity, "warning");
        assert_eq!(absent.every, Duration::from_secs(1));
    }

    fn error_of(yaml: &str) -> String {
        Rules::parse(yaml, 0).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_rule_and_the_field() {
        let rule = |extra: &str| {
            format!("rules:\n  - name: r1\n    query: 'level:error'\n    window: 5m\n    condition: '> 1'\n{extra}")
        };
        for (extra, want) in [
            ("    every: 0s\n", "every"),
            ("    group_by: [message]\n", "group_by"),
            ("    notify: [nobody]\n", "no notifier named \"nobody\""),
            (
                "    annotations: {summary: '{{group.host}}'}\n",
                "annotations.summary",
            ),
            ("    frobnicate: 1\n", "frobnicate"),
        ] {
            let e = error_of(&rule(extra));
            assert!(e.contains(want), "{extra}: {e}");
        }
        let e = error_of(
            "rules:\n  - name: r1\n    query: 'level:('\n    window: 5m\n    condition: '> 1'\n",
        );
        assert!(e.contains("rule \"r1\": query"), "{e}");
        let e = error_of(
            "rules:\n  - name: r1\n    query: 'x'\n    window: 5 parsecs\n    condition: '> 1'\n",
        );
        assert!(e.contains("rule \"r1\": window"), "{e}");
        let e = error_of(
            "rules:\n  - name: r1\n    query: 'x'\n    window: 5m\n    condition: 'more than 3'\n",
        );
        assert!(e.contains("rule \"r1\": condition"), "{e}");
        let e = error_of(
            "rules:\n  - name: r1\n    query: 'x'\n    window: 48h\n    condition: '> 3'\n",
        );
        assert!(e.contains("24h"), "{e}");
        let e = error_of("rules:\n  - {name: a, query: x, window: 1m, condition: '> 1'}\n  - {name: a, query: y, window: 1m, condition: '> 1'}\n");
        assert!(e.contains("used twice"), "{e}");
        let e = error_of("notifiers:\n  - {name: n, type: sns}\n");
        assert!(e.contains("notifier \"n\": topic_arn"), "{e}");
        let e = error_of("notifiers:\n  - {name: n, type: pager}\n");
        assert!(e.contains("sns, webhook or log"), "{e}");
        let e = error_of("notifiers:\n  - {name: n, type: log, url: 'http://x'}\n");
        assert!(e.contains("url applies to type webhook only"), "{e}");
        let e = error_of("rules: [1, 2");
        assert!(!e.is_empty());
    }

    #[test]
    fn errors_keep_the_rule_the_field_and_the_cause() {
        let e = Rules::parse(
            "rules:\n  - {name: r1, query: x, window: 5 parsecs, condition: '> 1'}\n",
            0,
        )
        .unwrap_err();
        let RulesError::Rule {
            name,
            source: RuleError::Duration { field, source },
        } = &e
        else {
            panic!("{e:?}");
        };
        assert_eq!((name.as_str(), *field), ("r1", "window"));
        // the cause is the error's source, below the rule and the field
        let cause = std::error::Error::source(&e)
            .and_then(std::error::Error::source)
            .map(ToString::to_string);
        assert_eq!(cause, Some(source.to_string()));

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.yaml");
        let e = Rules::load(&missing, 0).unwrap_err();
        assert!(
            matches!(&e, RulesError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
            "{e:?}"
        );
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "rules: [1, 2").unwrap();
        let e = Rules::load(&bad, 0).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!("{}: ", bad.display())),
            "{e}"
        );
        assert!(
            matches!(&e, RulesError::File { source, .. } if matches!(**source, RulesError::Yaml(_)))
        );
    }

    #[test]
    fn rules_may_belong_to_a_tenant() {
        let rules = Rules::parse(
            "rules:\n  - {name: mine, tenant: acme-2, query: x, window: 1m, condition: '> 1'}\n  - {name: ops, query: x, window: 1m, condition: '> 1'}\n",
            0,
        )
        .unwrap();
        let (mine, ops) = (&rules.rules[0], &rules.rules[1]);
        assert_eq!(mine.tenant.as_deref(), Some("acme-2"));
        assert!(mine.applies_to("acme-2") && !mine.applies_to("globex"));
        assert_eq!(ops.tenant, None);
        assert!(ops.applies_to("acme-2") && ops.applies_to("globex"));
        assert!(mine.visible_to(None) && mine.visible_to(Some("acme-2")));
        assert!(!mine.visible_to(Some("globex")));
        assert!(ops.visible_to(None) && !ops.visible_to(Some("acme-2")));
    }

    #[test]
    fn a_bad_tenant_names_the_rule_and_the_field() {
        let long = "a".repeat(65);
        for bad in [
            "Acme",
            "-acme",
            "_acme",
            "ac me",
            "acme.com",
            "''",
            "été",
            long.as_str(),
        ] {
            let e = error_of(&format!(
                "rules:\n  - name: r1\n    tenant: {bad}\n    query: 'level:error'\n    window: 5m\n    condition: '> 1'\n"
            ));
            assert!(e.contains("rule \"r1\": tenant:"), "{bad}: {e}");
        }
        for good in ["a", "0", "acme", "acme_eu-1", &"a".repeat(64)] {
            assert!(check_tenant(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn conditions_compare_counts() {
        let c = parse_condition(">= 3").unwrap();
        assert!(c.holds(3) && !c.holds(2));
        assert_eq!(c.text(), ">= 3");
        let c = parse_condition("<1").unwrap();
        assert!(c.holds_on_nothing() && !c.holds(1));
        assert!(parse_condition("!= 0").unwrap().holds(5));
        assert!(parse_condition("== 0").unwrap().holds_on_nothing());
        assert!(parse_condition("> -1").is_err());
        assert!(parse_condition("=> 1").is_err());
    }
}
