//! The rules file: notifiers and alert rules in YAML, parsed and validated into [`Rules`].
//!
//! Every error names the rule (or notifier) and the field, and says what to write instead,
//! so `sawmill alerts check FILE` and a reload that keeps the old rules can show it as is.

use crate::template::Template;
use sawmill_index::matcher::Matcher;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Rules at most in one file.
pub const MAX_RULES: usize = 1000;
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

fn duration(what: &str, text: &str) -> Result<Duration, String> {
    sawmill_core::parse_duration(text).map_err(|e| format!("{what}: {e}"))
}

fn parse_condition(text: &str) -> Result<Condition, String> {
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
    .ok_or_else(|| {
        format!("{text:?} is not a comparison: write one of > >= < <= == != and a number, like \"> 10\" or \"< 1\"")
    })?;
    let threshold: f64 = rest
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: {:?} is not a number", rest.trim()))?;
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(format!(
            "{text:?}: the threshold must be a count, 0 or more"
        ));
    }
    Ok(Condition { op, threshold })
}

/// Names that may be grouped by: the keyword fields and attribute paths.
fn check_group_field(field: &str) -> Result<(), String> {
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
        return Err(format!(
            "{field:?} is not a field name: use service, host, level, source or an attribute path like http.status"
        ));
    }
    if matches!(field, "message" | "timestamp" | "@timestamp") {
        return Err(format!(
            "{field:?} cannot group alerts: group by service, host, level, source or an attribute"
        ));
    }
    Ok(())
}

impl Rules {
    /// Parses and validates a rules file; `now` resolves relative times in queries.
    pub fn parse(text: &str, now: i64) -> Result<Rules, String> {
        let spec: FileSpec = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        let mut rules = Rules::default();
        let mut names = BTreeSet::new();
        for n in spec.notifiers {
            let notifier = validate_notifier(n)?;
            if !names.insert(notifier.name.clone()) {
                return Err(format!(
                    "notifier {:?}: the name is used twice",
                    notifier.name
                ));
            }
            rules.notifiers.push(notifier);
        }
        if spec.rules.len() > MAX_RULES {
            return Err(format!(
                "{} rules: at most {MAX_RULES} fit in one file",
                spec.rules.len()
            ));
        }
        let mut rule_names = BTreeSet::new();
        for r in spec.rules {
            let name = r.name.clone();
            let rule = validate_rule(r, &rules.notifiers, now)
                .map_err(|e| format!("rule {name:?}: {e}"))?;
            if !rule_names.insert(rule.name.clone()) {
                return Err(format!("rule {:?}: the name is used twice", rule.name));
            }
            rules.rules.push(rule);
        }
        Ok(rules)
    }

    /// Reads and validates a rules file.
    pub fn load(path: &std::path::Path, now: i64) -> Result<Rules, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Rules::parse(&text, now).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn validate_notifier(n: NotifierSpec) -> Result<Notifier, String> {
    let name = n.name.trim().to_string();
    let at = |e: String| format!("notifier {name:?}: {e}");
    if name.is_empty() {
        return Err("a notifier has an empty name".into());
    }
    let kind = match n.kind.as_str() {
        "sns" => {
            let topic_arn = n
                .topic_arn
                .clone()
                .ok_or_else(|| at("topic_arn is required for type sns".into()))?;
            if !topic_arn.starts_with("arn:") || topic_arn.split(':').count() < 6 {
                return Err(at(format!(
                    "topic_arn {topic_arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
                )));
            }
            NotifierKind::Sns {
                topic_arn,
                region: n.region.clone(),
                endpoint: n.endpoint.clone(),
            }
        }
        "webhook" => {
            let url = n
                .url
                .clone()
                .ok_or_else(|| at("url is required for type webhook".into()))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(at(format!(
                    "url {url:?} must start with http:// or https://"
                )));
            }
            let slack = match n.format.as_deref() {
                None | Some("json") => false,
                Some("slack") => true,
                Some(other) => {
                    return Err(at(format!("format {other:?}: use json or slack")));
                }
            };
            let timeout = match &n.timeout {
                Some(t) => duration("timeout", t).map_err(at)?,
                None => Duration::from_secs(10),
            };
            NotifierKind::Webhook {
                url,
                slack,
                headers: n.headers.clone(),
                timeout,
            }
        }
        "log" => NotifierKind::Log,
        other => {
            return Err(at(format!("type {other:?}: use sns, webhook or log")));
        }
    };
    let only = |field: &str, present: bool, kinds: &str| {
        if present {
            Err(at(format!("{field} applies to type {kinds} only")))
        } else {
            Ok(())
        }
    };
    let is_sns = matches!(kind, NotifierKind::Sns { .. });
    let is_webhook = matches!(kind, NotifierKind::Webhook { .. });
    only("topic_arn", n.topic_arn.is_some() && !is_sns, "sns")?;
    only("region", n.region.is_some() && !is_sns, "sns")?;
    only("endpoint", n.endpoint.is_some() && !is_sns, "sns")?;
    only("url", n.url.is_some() && !is_webhook, "webhook")?;
    only("format", n.format.is_some() && !is_webhook, "webhook")?;
    only("headers", !n.headers.is_empty() && !is_webhook, "webhook")?;
    only("timeout", n.timeout.is_some() && !is_webhook, "webhook")?;
    let repeat_interval = match &n.repeat_interval {
        Some(t) => duration("repeat_interval", t).map_err(at)?,
        None => Duration::from_secs(4 * 3600),
    };
    let group_interval = match &n.group_interval {
        Some(t) => duration("group_interval", t).map_err(at)?,
        None => Duration::from_secs(300),
    };
    if repeat_interval < Duration::from_secs(5) {
        return Err(at("repeat_interval must be at least 5s".into()));
    }
    let group_limit = n.group_limit.unwrap_or(5);
    if group_limit == 0 {
        return Err(at("group_limit must be at least 1".into()));
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

fn validate_rule(r: RuleSpec, notifiers: &[Notifier], now: i64) -> Result<Rule, String> {
    let name = r.name.trim().to_string();
    if name.is_empty() {
        return Err("name: empty; give every rule a unique name".into());
    }
    if name.len() > 128 || name.chars().any(char::is_control) {
        return Err("name: at most 128 characters, no control characters".into());
    }
    if let Some(t) = &r.tenant {
        check_tenant(t).map_err(|e| format!("tenant: {e}"))?;
    }
    let ast = sawmill_index::query::parse(&r.query).map_err(|e| format!("query: {e}"))?;
    let matcher = Matcher::new(&ast, now).map_err(|e| format!("query: {e}"))?;
    let window = duration("window", &r.window)?;
    if window < Duration::from_secs(1) || window > MAX_WINDOW {
        return Err(format!(
            "window: {} is out of range: use 1s to 24h",
            r.window
        ));
    }
    let condition = parse_condition(&r.condition).map_err(|e| format!("condition: {e}"))?;
    let mut seen = BTreeSet::new();
    for field in &r.group_by {
        check_group_field(field).map_err(|e| format!("group_by: {e}"))?;
        if !seen.insert(field.as_str()) {
            return Err(format!("group_by: {field:?} is listed twice"));
        }
    }
    if r.group_by.len() > 8 {
        return Err("group_by: at most 8 fields".into());
    }
    let for_ = match &r.for_ {
        Some(t) => duration("for", t)?,
        None => Duration::ZERO,
    };
    let keep_firing_for = match &r.keep_firing_for {
        Some(t) => duration("keep_firing_for", t)?,
        None => Duration::ZERO,
    };
    let every = match &r.every {
        Some(t) => duration("every", t)?,
        None => Duration::from_secs(1),
    };
    if every < Duration::from_secs(1) {
        return Err("every: at least 1s".into());
    }
    let severity = r.severity.clone().unwrap_or_else(|| "warning".into());
    if severity.is_empty() || severity.len() > 32 || severity.chars().any(char::is_control) {
        return Err(format!(
            "severity: {severity:?}: a short word such as critical, warning or info"
        ));
    }
    for (k, v) in &r.labels {
        if k.is_empty() || k.chars().any(char::is_control) || v.chars().any(char::is_control) {
            return Err(format!(
                "labels: {k:?} has an empty name or control characters"
            ));
        }
    }
    let mut annotations = Vec::new();
    for (k, v) in &r.annotations {
        let t = Template::parse(v, &r.group_by, &r.labels)
            .map_err(|e| format!("annotations.{k}: {e}"))?;
        annotations.push((k.clone(), t));
    }
    let mut notify = Vec::new();
    for target in &r.notify {
        let i = notifiers
            .iter()
            .position(|n| &n.name == target)
            .ok_or_else(|| {
                let known: Vec<&str> = notifiers.iter().map(|n| n.name.as_str()).collect();
                format!("notify: no notifier named {target:?} (notifiers: {known:?})")
            })?;
        notify.push(i);
    }
    let repeat_interval = match &r.repeat_interval {
        Some(t) => {
            let d = duration("repeat_interval", t)?;
            if d < Duration::from_secs(5) {
                return Err("repeat_interval: at least 5s".into());
            }
            Some(d)
        }
        None => None,
    };
    let max_groups = r.max_groups.unwrap_or(1000);
    if max_groups == 0 || max_groups > 100_000 {
        return Err("max_groups: between 1 and 100000".into());
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
        Rules::parse(yaml, 0).unwrap_err()
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
