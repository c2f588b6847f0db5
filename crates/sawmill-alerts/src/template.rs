//! Annotation templates: text with `{{variable}}` placeholders, checked when the rules are
//! loaded so that rendering never fails.
//!
//! Variables: `count`, `rule`, `severity`, `state`, `condition`, `threshold`, `window`,
//! `starts_at`, `group.<field>` (a `group_by` field) and `labels.<name>` (a rule label).

use std::collections::BTreeMap;

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Var {
    Count,
    Rule,
    Severity,
    State,
    Condition,
    Threshold,
    Window,
    StartsAt,
    Group(String),
    Label(String),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template is rendered with.
pub struct Context<'a> {
    pub count: u64,
    pub rule: &'a str,
    pub severity: &'a str,
    pub state: &'a str,
    pub condition: &'a str,
    pub threshold: &'a str,
    pub window: &'a str,
    pub starts_at: &'a str,
    pub group: &'a BTreeMap<String, String>,
    pub labels: &'a BTreeMap<String, String>,
}

/// Longest template text.
const MAX_TEMPLATE: usize = 4096;

/// Why a template cannot be used; the message says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("longer than {MAX_TEMPLATE} bytes")]
    TooLong,
    #[error("{{{{ at byte {0} is never closed with }}}}")]
    Unclosed(usize),
    #[error("{{{{{name}}}}}: {field:?} is not in group_by {group_by:?}")]
    NotGrouped {
        name: String,
        field: String,
        group_by: Vec<String>,
    },
    #[error("{{{{{name}}}}}: the rule has no label {label:?}")]
    NoLabel { name: String, label: String },
    #[error(
        "unknown variable {{{{{0}}}}}: use count, rule, severity, state, condition, threshold, \
         window, starts_at, group.<field> or labels.<name>"
    )]
    UnknownVariable(String),
}

impl Template {
    /// Parses `text`; `group_by` and `labels` are the rule's, which `group.*` and `labels.*`
    /// must name.
    pub fn parse(
        text: &str,
        group_by: &[String],
        labels: &BTreeMap<String, String>,
    ) -> Result<Template, TemplateError> {
        if text.len() > MAX_TEMPLATE {
            return Err(TemplateError::TooLong);
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or(TemplateError::Unclosed(text.len() - rest.len() + open))?;
            parts.push(Part::Var(variable(
                after[..close].trim(),
                group_by,
                labels,
            )?));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    pub fn render(&self, c: &Context<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => match v {
                    Var::Count => out.push_str(&c.count.to_string()),
                    Var::Rule => out.push_str(c.rule),
                    Var::Severity => out.push_str(c.severity),
                    Var::State => out.push_str(c.state),
                    Var::Condition => out.push_str(c.condition),
                    Var::Threshold => out.push_str(c.threshold),
                    Var::Window => out.push_str(c.window),
                    Var::StartsAt => out.push_str(c.starts_at),
                    Var::Group(f) => out.push_str(c.group.get(f).map(String::as_str).unwrap_or("")),
                    Var::Label(l) => {
                        out.push_str(c.labels.get(l).map(String::as_str).unwrap_or(""))
                    }
                },
            }
        }
        out
    }
}

/// The variable `name` names, checked against the rule's `group_by` and `labels`.
fn variable(
    name: &str,
    group_by: &[String],
    labels: &BTreeMap<String, String>,
) -> Result<Var, TemplateError> {
    Ok(match name {
        "count" => Var::Count,
        "rule" => Var::Rule,
        "severity" => Var::Severity,
        "state" => Var::State,
        "condition" => Var::Condition,
        "threshold" => Var::Threshold,
        "window" => Var::Window,
        "starts_at" => Var::StartsAt,
        _ => {
            if let Some(field) = name.strip_prefix("group.") {
                if !group_by.iter().any(|g| g == field) {
                    return Err(TemplateError::NotGrouped {
                        name: name.to_string(),
                        field: field.to_string(),
                        group_by: group_by.to_vec(),
                    });
                }
                Var::Group(field.to_string())
            } else if let Some(label) = name.strip_prefix("labels.") {
                if !labels.contains_key(label) {
                    return Err(TemplateError::NoLabel {
                        name: name.to_string(),
                        label: label.to_string(),
                    });
                }
                Var::Label(label.to_string())
            } else {
                return Err(TemplateError::UnknownVariable(name.to_string()));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables_and_rejects_unknown_ones() {
        let labels: BTreeMap<String, String> =
            [("team".to_string(), "payments".to_string())].into();
        let group: BTreeMap<String, String> = [("host".to_string(), "web-1".to_string())].into();
        let t = Template::parse(
            "{{count}} errors on {{ group.host }} ({{rule}}, {{labels.team}}) {{condition}}",
            &["host".to_string()],
            &labels,
        )
        .unwrap();
        let text = t.render(&Context {
            count: 42,
            rule: "checkout-errors",
            severity: "critical",
            state: "firing",
            condition: "> 10",
            threshold: "10",
            window: "5m",
            starts_at: "2026-11-27T10:00:00Z",
            group: &group,
            labels: &labels,
        });
        assert_eq!(text, "42 errors on web-1 (checkout-errors, payments) > 10");
        assert!(
            Template::parse("{{group.az}}", &["host".to_string()], &labels)
                .unwrap_err()
                .to_string()
                .contains("{{group.az}}: \"az\" is not in group_by [\"host\"]")
        );
        assert!(Template::parse("{{labels.x}}", &[], &labels)
            .unwrap_err()
            .to_string()
            .contains("no label"));
        assert!(Template::parse("{{counts}}", &[], &labels)
            .unwrap_err()
            .to_string()
            .contains("unknown variable {{counts}}"));
        assert_eq!(
            Template::parse("x {{count", &[], &labels)
                .unwrap_err()
                .to_string(),
            "{{ at byte 2 is never closed with }}"
        );
        assert_eq!(
            Template::parse("plain", &[], &labels)
                .unwrap()
                .render(&Context {
                    count: 0,
                    rule: "",
                    severity: "",
                    state: "",
                    condition: "",
                    threshold: "",
                    window: "",
                    starts_at: "",
                    group: &group,
                    labels: &labels
                }),
            "plain"
        );
    }
}
