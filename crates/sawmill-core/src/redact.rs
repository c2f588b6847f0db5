//! Redaction of secrets and personal data in event text, before it is stored or shipped.
//!
//! Built-in detectors find email addresses, IPv4 and IPv6 addresses, AWS access key IDs (and
//! secret keys written as `aws_secret_access_key=…`), card numbers that pass the Luhn check and
//! bearer tokens; custom regexes add more. Every match is replaced by `[REDACTED:<name>]`, so a
//! reader still sees that something was there and what kind of thing it was.

use crate::Event;
use regex::{Regex, RegexSet};
use serde_json::Value;
use std::borrow::Cow;
use std::net::Ipv6Addr;

/// A built-in detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detector {
    Email,
    Ipv4,
    Ipv6,
    AwsKey,
    Card,
    Bearer,
}

impl Detector {
    pub const ALL: [Detector; 6] = [
        Detector::Email,
        Detector::Ipv4,
        Detector::Ipv6,
        Detector::AwsKey,
        Detector::Card,
        Detector::Bearer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::Ipv4 => "ipv4",
            Detector::Ipv6 => "ipv6",
            Detector::AwsKey => "aws_key",
            Detector::Card => "card",
            Detector::Bearer => "bearer",
        }
    }

    /// Every detector's name, comma-separated.
    fn names() -> String {
        let known: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
        known.join(", ")
    }

    /// By name (`email`, `ipv4`, `ipv6`, `ip` for both, `aws_key`, `card`, `bearer`).
    pub fn parse_list(names: &str) -> Result<Vec<Detector>, RedactError> {
        let mut out = Vec::new();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let found: Vec<Detector> = match name {
                "ip" => vec![Detector::Ipv4, Detector::Ipv6],
                "all" => Detector::ALL.to_vec(),
                _ => Detector::ALL
                    .into_iter()
                    .filter(|d| d.name() == name)
                    .collect(),
            };
            if found.is_empty() {
                return Err(RedactError::UnknownDetector(name.to_owned()));
            }
            for d in found {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }
}

/// How a match is checked before it is replaced.
#[derive(Clone, Copy, Debug)]
enum Check {
    None,
    Luhn,
    Ipv6,
}

#[derive(Clone, Debug)]
struct Rule {
    label: String,
    regex: Regex,
    /// Replace this capture group only (the rest of the match is context).
    group: usize,
    check: Check,
}

/// A set of redaction rules, applied in order.
#[derive(Clone, Debug)]
pub struct Redactor {
    rules: Vec<Rule>,
    /// Every rule's pattern in one automaton: one pass tells which rules can match at all,
    /// so text without secrets (most of it) is read once, not once per rule.
    any: RegexSet,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor {
            rules: Vec::new(),
            any: RegexSet::empty(),
        }
    }
}

/// Redaction rules that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("unknown redaction {0:?}: use {known}, ip or all", known = Detector::names())]
    UnknownDetector(String),
    #[error("built-in redaction {name}: {source}")]
    BuiltIn {
        name: &'static str,
        source: regex::Error,
    },
    #[error("redaction pattern {name:?} is not a valid regex: {source}")]
    Pattern { name: String, source: regex::Error },
    #[error("redaction patterns: {0}")]
    Set(#[source] regex::Error),
}

impl Redactor {
    /// Rules for `detectors` and for each `(name, regex)` custom pattern.
    pub fn new(
        detectors: &[Detector],
        custom: &[(String, String)],
    ) -> Result<Redactor, RedactError> {
        let mut rules = Vec::new();
        for d in detectors {
            let (pattern, group, check) = match d {
                Detector::Email => (
                    r"(?i)\b[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}\b",
                    0,
                    Check::None,
                ),
                Detector::Ipv4 => (
                    r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\b",
                    0,
                    Check::None,
                ),
                Detector::Ipv6 => (
                    r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*",
                    0,
                    Check::Ipv6,
                ),
                Detector::AwsKey => (
                    r"(?i:aws_?secret_?access_?key|secret_?access_?key)[\x22']?\s*[:=]\s*[\x22']?([A-Za-z0-9/+=]{40})\b|\b((?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA)[0-9A-Z]{16})\b",
                    usize::MAX,
                    Check::None,
                ),
                Detector::Card => (r"\b[0-9](?:[ \-]?[0-9]){12,18}\b", 0, Check::Luhn),
                Detector::Bearer => (r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{8,}=*)", 1, Check::None),
            };
            rules.push(Rule {
                label: format!("[REDACTED:{}]", d.name()),
                regex: Regex::new(pattern).map_err(|source| RedactError::BuiltIn {
                    name: d.name(),
                    source,
                })?,
                group,
                check,
            });
        }
        for (name, pattern) in custom {
            rules.push(Rule {
                label: format!("[REDACTED:{name}]"),
                regex: Regex::new(pattern).map_err(|source| RedactError::Pattern {
                    name: name.clone(),
                    source,
                })?,
                group: 0,
                check: Check::None,
            });
        }
        let any =
            RegexSet::new(rules.iter().map(|r| r.regex.as_str())).map_err(RedactError::Set)?;
        Ok(Redactor { rules, any })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `text` with every match replaced; borrowed when nothing matched.
    pub fn redact_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut current: Cow<'a, str> = Cow::Borrowed(text);
        if self.rules.is_empty() {
            return current;
        }
        let candidates = self.any.matches(text);
        if !candidates.matched_any() {
            return current;
        }
        // replacements only take text out and put `[REDACTED:…]` labels in, so a rule that
        // matches nothing in the original has nothing to match after the rules before it
        for i in candidates.iter() {
            if let Some(replaced) = self.rules[i].apply(&current) {
                current = Cow::Owned(replaced);
            }
        }
        current
    }

    /// Redacts every string inside `value` (object keys are left alone); true when anything
    /// was replaced.
    pub fn redact_value(&self, value: &mut Value) -> bool {
        match value {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact_str(s) {
                    *s = r;
                    true
                } else {
                    false
                }
            }
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, v| self.redact_value(v) | changed),
            Value::Object(map) => map
                .values_mut()
                .fold(false, |changed, v| self.redact_value(v) | changed),
            _ => false,
        }
    }

    /// Redacts every text of an event in place: the message, the level, the keyword fields
    /// and every string attribute; true when anything was replaced.
    pub fn redact_event(&self, event: &mut Event) -> bool {
        let mut changed = false;
        let texts = [
            Some(&mut event.message),
            event.level.as_mut(),
            event.service.as_mut(),
            event.host.as_mut(),
            event.source.as_mut(),
        ];
        for text in texts.into_iter().flatten() {
            if let Cow::Owned(r) = self.redact_str(text) {
                *text = r;
                changed = true;
            }
        }
        for value in event.attributes.values_mut() {
            changed |= self.redact_value(value);
        }
        changed
    }
}

impl Rule {
    /// The text with this rule's matches replaced, or None when nothing matched.
    fn apply(&self, text: &str) -> Option<String> {
        let mut out = String::new();
        let mut last = 0;
        for caps in self.regex.captures_iter(text) {
            // the group to replace: a fixed one, or (usize::MAX) the first that matched
            let m = if self.group == usize::MAX {
                caps.iter().skip(1).flatten().next()
            } else {
                caps.get(self.group)
            };
            let Some(m) = m else { continue };
            if !self.accepts(text, m.start(), m.as_str()) {
                continue;
            }
            out.push_str(&text[last..m.start()]);
            out.push_str(&self.label);
            last = m.end();
        }
        if last == 0 && out.is_empty() {
            return None;
        }
        out.push_str(&text[last..]);
        Some(out)
    }

    fn accepts(&self, text: &str, start: usize, found: &str) -> bool {
        match self.check {
            Check::None => true,
            Check::Luhn => luhn(found),
            Check::Ipv6 => {
                // not the tail of a word (`std::io`) and a real address with 2+ groups
                let before = text[..start].chars().next_back();
                let glued = before.is_some_and(|c| c.is_alphanumeric() || c == '_');
                let groups = found.split(':').filter(|g| !g.is_empty()).count();
                !glued && groups >= 2 && found.parse::<Ipv6Addr>().is_ok()
            }
        }
    }
}

/// True when the digits of `s` (13 to 19 of them) pass the Luhn check.
fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Redactor {
        Redactor::new(&Detector::ALL, &[]).unwrap()
    }

    #[test]
    fn only_ascii_digits_make_addresses_and_card_numbers() {
        let r = all();
        // Arabic-Indic digits: neither an IPv4 address nor a card number
        for text in ["١.٢.٣.٤", "٤١١١١١١١١١١١١١١١"] {
            assert_eq!(r.redact_str(text), text);
        }
        assert_eq!(r.redact_str("from 10.1.2.3"), "from [REDACTED:ipv4]");
    }

    #[test]
    fn each_detector_replaces_what_it_finds_and_nothing_else() {
        let r = all();
        let cases = [
            (
                "login by jane.doe+ops@mail.example.co.uk failed",
                "login by [REDACTED:email] failed",
            ),
            (
                "client 10.0.12.255 port 443 (version 1.2.3)",
                "client [REDACTED:ipv4] port 443 (version 1.2.3)",
            ),
            ("peer 2001:db8::8a2e:370:7334 up", "peer [REDACTED:ipv6] up"),
            ("fe80:0:0:0:0:0:0:1%eth0", "[REDACTED:ipv6]%eth0"),
            (
                "use std::io::Read at 12:30:45",
                "use std::io::Read at 12:30:45",
            ),
            (
                "key AKIAIOSFODNN7EXAMPLE used",
                "key [REDACTED:aws_key] used",
            ),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_access_key = [REDACTED:aws_key]",
            ),
            (
                "paid with 4111 1111 1111 1111 ok",
                "paid with [REDACTED:card] ok",
            ),
            (
                "order 4111 1111 1111 1112 (fails luhn)",
                "order 4111 1111 1111 1112 (fails luhn)",
            ),
            (
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc123",
                "Authorization: Bearer [REDACTED:bearer]",
            ),
            ("nothing to see", "nothing to see"),
        ];
        for (input, want) in cases {
            assert_eq!(r.redact_str(input), want, "{input}");
        }
    }

    #[test]
    fn unchanged_text_is_borrowed() {
        assert!(matches!(all().redact_str("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn custom_patterns_and_nested_values() {
        let r = Redactor::new(
            &[Detector::Email],
            &[("ssn".into(), r"\b\d{3}-\d{2}-\d{4}\b".into())],
        )
        .unwrap();
        let mut v = serde_json::json!({
            "user": {"email": "a@b.io", "ssn": "123-45-6789", "n": 5},
            "list": ["x a@b.io y"]
        });
        r.redact_value(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "user": {"email": "[REDACTED:email]", "ssn": "[REDACTED:ssn]", "n": 5},
                "list": ["x [REDACTED:email] y"]
            })
        );
    }

    #[test]
    fn names_and_bad_patterns_are_explained() {
        assert_eq!(
            Detector::parse_list("email, ip").unwrap(),
            vec![Detector::Email, Detector::Ipv4, Detector::Ipv6]
        );
        let e = Detector::parse_list("emails").unwrap_err().to_string();
        assert!(e.contains("unknown redaction \"emails\""), "{e}");
        let e = Redactor::new(&[], &[("x".into(), "(".into())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid regex"), "{e}");
    }

    #[test]
    fn luhn_check() {
        assert!(luhn("4539 1488 0343 6467"));
        assert!(luhn("378282246310005"));
        assert!(!luhn("4539 1488 0343 6468"));
        assert!(!luhn("1234"));
    }
}
