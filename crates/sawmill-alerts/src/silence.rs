//! Silences: matchers on an alert's labels with a time span, an author and a comment. A
//! silenced alert is still evaluated (its state shows in the API) but not notified.
//!
//! An alert's labels are its rule's `labels`, its group values, `rule` (the rule name),
//! `severity` and, for a tenant rule, `tenant`. Matchers are `name=value`, `name!=value`,
//! `name=~regex` and `name!~regex` (regexes match the whole value); every matcher of a silence
//! must match.
//!
//! A silence made by a tenant ([`Silence::tenant`], set from the caller's key, never from a
//! request body) silences only alerts of that tenant's rules, and only that tenant sees and
//! deletes it; an operator silence (`tenant: None`) silences any alert its matchers match.

use crate::rules::Rule;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Silences at most at once.
pub const MAX_SILENCES: usize = 10_000;

/// A matcher that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    #[error("a matcher has an empty label name")]
    EmptyName,
    #[error("matcher {name}: invalid regex {value:?}: {source}")]
    Regex {
        name: String,
        value: String,
        source: regex::Error,
    },
    #[error("matcher {0:?}: write name=value, name!=value, name=~regex or name!~regex")]
    Syntax(String),
}

/// Saved silences that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SilencesError {
    #[error("invalid silences JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Matcher(#[from] MatcherError),
}

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
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<LabelMatcher, MatcherError> {
        if name.is_empty() {
            return Err(MatcherError::EmptyName);
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|source| MatcherError::Regex {
                        name: name.to_string(),
                        value: value.to_string(),
                        source,
                    })?,
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
    fn prepared(self) -> Result<LabelMatcher, MatcherError> {
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
    /// The tenant that made it; `None`: the operator (and silences saved before tenants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl Silence {
    pub fn active(&self, now: i64) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// Whether a caller sees (lists, deletes) the silence: the operator (`None`) every one,
    /// a tenant only its own.
    pub fn visible_to(&self, viewer: Option<&str>) -> bool {
        match viewer {
            None => true,
            Some(t) => self.tenant.as_deref() == Some(t),
        }
    }

    /// Whether the silence may apply to alerts of `rule`: an operator silence to any, a
    /// tenant's silence to that tenant's rules only.
    fn covers(&self, rule: &Rule) -> bool {
        match &self.tenant {
            None => true,
            Some(t) => rule.tenant.as_ref() == Some(t),
        }
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
        if let Some(t) = &rule.tenant {
            labels.insert("tenant", t);
        }
        self.list.iter().any(|s| {
            s.active(now) && s.covers(rule) && s.matchers.iter().all(|m| m.matches(&labels))
        })
    }

    /// The silences a caller sees: the operator (`None`) all, a tenant its own.
    pub fn visible_to<'a>(&'a self, viewer: Option<&'a str>) -> impl Iterator<Item = &'a Silence> {
        self.list.iter().filter(move |s| s.visible_to(viewer))
    }

    /// Deletes silence `id` if the caller sees it; whether it did. Another tenant's silence
    /// is not found, exactly as one that does not exist.
    pub fn remove(&mut self, id: &str, viewer: Option<&str>) -> bool {
        let before = self.list.len();
        self.list.retain(|s| !(s.id == id && s.visible_to(viewer)));
        self.list.len() != before
    }

    /// Reads saved silences (regexes recompiled); expired ones are dropped.
    pub fn from_json(bytes: &[u8], now: i64) -> Result<Silences, SilencesError> {
        let saved: Silences = serde_json::from_slice(bytes)?;
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
pub fn parse_matcher(text: &str) -> Result<LabelMatcher, MatcherError> {
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
    Err(MatcherError::Syntax(text.to_string()))
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
                tenant: None,
            }],
        };
        assert!(silence(&["rule=errors"], 0, 10).silenced(rule, &group, 5));
        assert!(!silence(&["rule=errors"], 0, 10).silenced(rule, &group, 10));
        assert!(silence(&["team=pay", "host=~web-.*"], 0, 10).silenced(rule, &group, 1));
        assert!(!silence(&["host!=web-1"], 0, 10).silenced(rule, &group, 1));
        assert!(!silence(&["host!~web.*"], 0, 10).silenced(rule, &group, 1));
        assert!(silence(&["severity=warning"], 0, 10).silenced(rule, &group, 1));
        assert!(matches!(
            parse_matcher("host=~("),
            Err(MatcherError::Regex { .. })
        ));
        assert!(matches!(
            parse_matcher("nothing"),
            Err(MatcherError::Syntax(_))
        ));
        let s = silence(&["host=~web-.*"], 0, 10);
        let back = Silences::from_json(&serde_json::to_vec(&s).unwrap(), 1).unwrap();
        assert!(back.silenced(rule, &group, 2));
        assert!(Silences::from_json(&serde_json::to_vec(&s).unwrap(), 11)
            .unwrap()
            .list
            .is_empty());
    }

    fn tenant_silence(id: &str, tenant: Option<&str>) -> Silence {
        Silence {
            id: id.into(),
            matchers: vec![parse_matcher("rule=errors").unwrap()],
            starts_at: 0,
            ends_at: 10,
            created_by: "ada".into(),
            comment: String::new(),
            created_at: 0,
            tenant: tenant.map(str::to_string),
        }
    }

    #[test]
    fn a_tenant_silence_silences_only_its_tenants_rules() {
        let rules = Rules::parse(
            "rules:\n  - {name: errors, tenant: acme, query: x, window: 1m, condition: '> 1'}\n",
            0,
        )
        .unwrap();
        let acme_rule = &rules.rules[0];
        let rules = Rules::parse(
            "rules:\n  - {name: errors, tenant: globex, query: x, window: 1m, condition: '> 1'}\n",
            0,
        )
        .unwrap();
        let globex_rule = &rules.rules[0];
        let rules = Rules::parse(
            "rules:\n  - {name: errors, query: x, window: 1m, condition: '> 1'}\n",
            0,
        )
        .unwrap();
        let operator_rule = &rules.rules[0];
        let group = BTreeMap::new();
        let by = |t: Option<&str>| Silences {
            list: vec![tenant_silence("s", t)],
        };
        // same rule name, same matchers: only the silencing tenant's alert is held
        assert!(by(Some("acme")).silenced(acme_rule, &group, 1));
        assert!(!by(Some("acme")).silenced(globex_rule, &group, 1));
        assert!(!by(Some("acme")).silenced(operator_rule, &group, 1));
        // the operator's silences hold any alert their matchers match
        for rule in [acme_rule, globex_rule, operator_rule] {
            assert!(by(None).silenced(rule, &group, 1));
        }
        // a silence saved before tenants is the operator's
        let old = br#"{"list":[{"id":"s","matchers":[{"name":"rule","op":"=","value":"errors"}],
            "starts_at":0,"ends_at":10,"created_by":"ada","comment":"","created_at":0}]}"#;
        let back = Silences::from_json(old, 1).unwrap();
        assert_eq!(back.list[0].tenant, None);
        assert!(back.silenced(globex_rule, &group, 1));
        // and a tenant's keeps its tenant
        let back = Silences::from_json(&serde_json::to_vec(&by(Some("acme"))).unwrap(), 1).unwrap();
        assert_eq!(back.list[0].tenant.as_deref(), Some("acme"));
        assert!(!back.silenced(globex_rule, &group, 1));
    }

    #[test]
    fn tenants_list_and_delete_only_their_own_silences() {
        let mut all = Silences {
            list: vec![
                tenant_silence("a1", Some("acme")),
                tenant_silence("g1", Some("globex")),
                tenant_silence("o1", None),
            ],
        };
        let ids = |s: &Silences, viewer: Option<&str>| -> Vec<String> {
            s.visible_to(viewer).map(|s| s.id.clone()).collect()
        };
        assert_eq!(ids(&all, None), ["a1", "g1", "o1"]);
        assert_eq!(ids(&all, Some("acme")), ["a1"]);
        assert_eq!(ids(&all, Some("globex")), ["g1"]);
        assert!(ids(&all, Some("initech")).is_empty());
        // another tenant's silence or the operator's: not found for acme, and kept
        assert!(!all.remove("g1", Some("acme")));
        assert!(!all.remove("o1", Some("acme")));
        assert!(!all.remove("nope", Some("acme")));
        assert_eq!(all.list.len(), 3);
        assert!(all.remove("a1", Some("acme")));
        assert_eq!(ids(&all, None), ["g1", "o1"]);
        // the operator deletes any
        assert!(all.remove("g1", None));
        assert_eq!(ids(&all, None), ["o1"]);
    }
}
