//! `sawmill_alerts::Rules::parse`: the YAML rules file, its validation, the rule queries
//! and the annotation templates.
//!
//! Input layout: byte 0 picks the mode. Raw mode: the rest is the YAML text. Built mode:
//! the rest is split at NUL bytes into the values of one notifier and one rule (name, type,
//! url, query, window, condition, group_by, for, every, severity, a label, an annotation,
//! notify, tenant), written as JSON (which is YAML), so the fuzzer spends its time in the
//! validation rather than in YAML syntax.
//!
//! Properties of an accepted file:
//! - rule and notifier names are unique, non-empty and trimmed, rule names at most 128
//!   bytes without control characters, at most `MAX_RULES` rules;
//! - windows are within 1s..=24h, `every` at least 1s, `max_groups` within 1..=100000,
//!   `group_by` at most 8 distinct fields, the condition threshold a finite count;
//! - `notify` indexes existing notifiers;
//! - each rule's query parses on its own, and its matcher runs on an event;
//! - every annotation renders, and a template without `{{` renders as itself.
#![no_main]

use std::collections::BTreeMap;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sawmill_alerts::rules::{Rules, MAX_RULES, MAX_WINDOW};
use sawmill_alerts::template::Context;
use sawmill_core::Event;
use serde_json::{json, Value};

const NOW: i64 = 1_714_564_800_000_000_000;

fn check(text: &str) {
    let Ok(rules) = Rules::parse(text, NOW) else {
        return;
    };
    assert!(rules.rules.len() <= MAX_RULES);
    let mut notifier_names = std::collections::BTreeSet::new();
    for n in &rules.notifiers {
        assert!(
            !n.name.is_empty() && n.name.trim() == n.name,
            "notifier name {:?}",
            n.name
        );
        assert!(
            notifier_names.insert(&n.name),
            "notifier {:?} twice",
            n.name
        );
        assert!(n.group_limit >= 1);
        assert!(n.repeat_interval >= Duration::from_secs(5));
    }
    let mut rule_names = std::collections::BTreeSet::new();
    let event = {
        let mut e = Event::new(NOW, "fuzz event: error timeout 500");
        e.level = Some("ERROR".into());
        e.host = Some("web-1".into());
        e
    };
    for r in &rules.rules {
        assert!(!r.name.is_empty() && r.name.trim() == r.name && r.name.len() <= 128);
        assert!(
            !r.name.chars().any(char::is_control),
            "rule name {:?}",
            r.name
        );
        assert!(rule_names.insert(&r.name), "rule {:?} twice", r.name);
        assert!(r.window >= Duration::from_secs(1) && r.window <= MAX_WINDOW);
        assert!(r.every >= Duration::from_secs(1));
        assert!((1..=100_000).contains(&r.max_groups));
        assert!(r.group_by.len() <= 8);
        let distinct: std::collections::BTreeSet<&String> = r.group_by.iter().collect();
        assert_eq!(distinct.len(), r.group_by.len());
        assert!(r.condition.threshold.is_finite() && r.condition.threshold >= 0.0);
        assert!(!r.condition.text().is_empty());
        for &i in &r.notify {
            assert!(i < rules.notifiers.len(), "notify index {i} out of range");
        }
        assert!(
            sawmill_index::query::parse(&r.query).is_ok(),
            "accepted query does not parse: {:?}",
            r.query
        );
        let _ = r.matcher.matches(&event);

        let group: BTreeMap<String, String> = r
            .group_by
            .iter()
            .map(|g| (g.clone(), format!("<{g}>")))
            .collect();
        let condition = r.condition.text();
        let context = Context {
            count: 7,
            rule: &r.name,
            severity: &r.severity,
            state: "firing",
            condition: &condition,
            threshold: "10",
            window: &r.window_text,
            starts_at: "2024-05-01T12:00:00Z",
            group: &group,
            labels: &r.labels,
        };
        for (_, t) in &r.annotations {
            let _ = t.render(&context);
        }
    }
}

fn built(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let mut next = || parts.next().unwrap_or("").to_owned();
    let notifier_name = next();
    let kind = next();
    let url = next();
    let query = next();
    let window = next();
    let condition = next();
    let group_by: Vec<String> = next()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let for_ = next();
    let every = next();
    let severity = next();
    let label = next();
    let annotation = next();
    let notify = next();
    let tenant = next();

    let mut notifier = json!({"name": notifier_name, "type": kind});
    if !url.is_empty() {
        let field = if url.starts_with("arn:") {
            "topic_arn"
        } else {
            "url"
        };
        notifier[field] = Value::String(url);
    }
    let mut rule = json!({
        "name": "r",
        "query": query,
        "window": window,
        "condition": condition,
        "group_by": group_by,
        "labels": {"team": label},
        "annotations": {"summary": annotation},
        "notify": [notify],
    });
    for (key, value) in [
        ("for", for_),
        ("every", every),
        ("severity", severity),
        ("tenant", tenant),
    ] {
        if !value.is_empty() {
            rule[key] = Value::String(value);
        }
    }
    json!({"notifiers": [notifier], "rules": [rule]}).to_string()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            check(text);
        }
    } else {
        check(&built(rest));
    }
});
