//! Silences: matchers on an alert's labels with a time span, an author and a comment. A
//! silenced alert is still evaluated (its state shows in the API) but not notified.
//!
//! An alert's labels are its rule's `labels`, its group values, `rule` (the rule name) and
//! `severity`. Matchers are `name=value`, `name!=value`, `name=~regex` and `name!~regex`
//! (regexes match the whole value); every matcher of a silence must match.

use crate::rules::Rule;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Silences at most at once.
pub const MAX_SILENCES: usize = 10_000;

/// How a matcher compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    #[serde(rename = "=~")]
    Regex,
    #[serde(rename = "!~")]
    NotRegex,
}

/// One matcher.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    #[serde(skip)]
    regex: Option<regex::Regex>,
}

impl LabelMatcher {
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<LabelMatcher, String> {
        if name.is_empty() {
            return Err("a matcher has an empty label name".into());
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("matcher {name}: invalid regex {value:?}: {e}"))?,
            ),
            _ => None,
        };
        Ok(LabelMatcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Recompiles the regex after deserialization.
    fn prepared(self) -> Result<LabelMatcher, String> {
        LabelMatcher::new(&self.name, self.op, &self.value)
    }

    fn matches(&self, labels: &BTreeMap<&str, &str>) -> bool {
        let value = labels.get(self.name.as_str()).copied().unwrap_or("");
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }
}

/// A silence.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<LabelMatcher>,
    /// ns since the epoch.
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_by: String,
    pub comment: String,
    pub created_at: i64,
}

impl Silence {
    pub fn active(&self, now: i64) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}

/// Every silence.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Silences {
    pub list: Vec<Silence>,
}

impl Silences {
    /// Whether an alert of `rule` with `group` values is silenced at `now`.
    pub fn silenced(&self, rule: &Rule, group: &BTreeMap<String, String>, now: i64) -> bool {
        if self.list.is_empty() {
            return false;
        }
        let mut labels: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in &rule.labels {
            labels.insert(k, v);
        }
        for (k, v) in group {
            labels.insert(k, v);
        }
        labels.insert("rule", &rule.name);
        labels.insert("severity", &rule.severity);
        self.list
            .iter()
            .any(|s| s.active(now) && s.matchers.iter().all(|m| m.matches(&labels)))
    }

    /// Reads saved silences (regexes recompiled); expired ones are dropped.
    pub fn from_json(bytes: &[u8], now: i64) -> Result<Silences, String> {
        let saved: Silences = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let mut list = Vec::new();
        for mut s in saved.list {
            if s.ends_at <= now {
                continue;
            }
            s.matchers = s
                .matchers
                .into_iter()
                .map(LabelMatcher::prepared)
                .collect::<Result<_, _>>()?;
            list.push(s);
        }
        Ok(Silences { list })
    }

    /// Drops expired silences.
    pub fn prune(&mut self, now: i64) -> bool {
        let before = self.list.len();
        self.list.retain(|s| s.ends_at > now);
        before != self.list.len()
    }
}

/// Parses `name=value`, `name!=value`, `name=~re` or `name!~re`.
pub fn parse_matcher(text: &str) -> Result<LabelMatcher, String> {
    for (sep, op) in [
        ("!~", MatchOp::NotRegex),
        ("=~", MatchOp::Regex),
        ("!=", MatchOp::NotEqual),
        ("=", MatchOp::Equal),
    ] {
        if let Some((name, value)) = text.split_once(sep) {
            let value = value.trim().trim_matches('"');
            return LabelMatcher::new(name.trim(), op, value);
        }
    }
    Err(format!(
        "matcher {text:?}: write name=value, name!=value, name=~regex or name!~regex"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rules;

    #[test]
    fn matchers_select_alerts_by_rule_labels_and_group() {
        let rules = Rules::parse(
            "rules:\n  - {name: errors, query: x, window: 1m, condition: '> 1', group_by: [host], labels: {team: pay}}\n",
            0,
        )
        .unwrap();
        let rule = &rules.rules[0];
        let group: BTreeMap<String, String> = [("host".into(), "web-1".into())].into();
        let silence = |m: &[&str], start: i64, end: i64| Silences {
            list: vec![Silence {
                id: "s".into(),
                matchers: m.iter().map(|t| parse_matcher(t).unwrap()).collect(),
                starts_at: start,
                ends_at: end,
                created_by: "ada".into(),
                comment: "deploy".into(),
                created_at: 0,
            }],
        };
        assert!(silence(&["rule=errors"], 0, 10).silenced(rule, &group, 5));
        assert!(!silence(&["rule=errors"], 0, 10).silenced(rule, &group, 10));
        assert!(silence(&["team=pay", "host=~web-.*"], 0, 10).silenced(rule, &group, 1));
        assert!(!silence(&["host!=web-1"], 0, 10).silenced(rule, &group, 1));
        assert!(!silence(&["host!~web.*"], 0, 10).silenced(rule, &group, 1));
        assert!(silence(&["severity=warning"], 0, 10).silenced(rule, &group, 1));
        assert!(parse_matcher("host=~(").is_err());
        assert!(parse_matcher("nothing").is_err());
        let s = silence(&["host=~web-.*"], 0, 10);
        let back = Silences::from_json(&serde_json::to_vec(&s).unwrap(), 1).unwrap();
        assert!(back.silenced(rule, &group, 2));
        assert!(Silences::from_json(&serde_json::to_vec(&s).unwrap(), 11)
            .unwrap()
            .list
            .is_empty());
    }
}
