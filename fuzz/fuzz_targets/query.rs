//! `sawmill_index::query::parse` on arbitrary strings, then the compilers of the parsed
//! query: the in-memory `Matcher` (alert rules) and the tantivy `Compiler` (search).
//!
//! Input layout: the query, then optionally a NUL byte and an event line (NDJSON, or plain
//! text for the message) that the matcher is tried on.
//!
//! Properties:
//! - an error names a position within the query (0..=its length in characters) and a
//!   non-empty message;
//! - a parsed query keeps the documented shape: `And`/`Or` are flat with 2+ children, no
//!   `Not` directly inside a `Not`, no empty term or field, at most `MAX_CLAUSES` clauses;
//! - printing the query back in the query language (every character escaped or quoted)
//!   and parsing that gives the same query;
//! - `Matcher::new` and `Compiler::compile` accept and refuse the same queries with the
//!   same message (the matcher documents that it mirrors the compiler);
//! - the matcher of `NOT q` answers the opposite of the matcher of `q` on any event.
#![no_main]

use std::ops::Bound;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sawmill_core::{parse_json_line, Event, ParseContext};
use sawmill_index::compile::Compiler;
use sawmill_index::matcher::Matcher;
use sawmill_index::query::{parse, Query, MAX_CLAUSES, MAX_QUERY_BYTES};
use sawmill_index::schema::{build_schema, Fields};

const NOW: i64 = 1_714_564_800_000_000_000;

fn fields() -> &'static Fields {
    static FIELDS: OnceLock<Fields> = OnceLock::new();
    FIELDS.get_or_init(|| build_schema().1)
}

/// Counts clauses and checks the shape the parser promises.
fn check_shape(q: &Query, clauses: &mut usize) {
    match q {
        Query::All => *clauses += 1,
        Query::Term { field, text } => {
            assert!(!text.is_empty(), "empty term: {q:?}");
            assert!(field.as_ref().is_none_or(|f| !f.is_empty()));
            *clauses += 1;
        }
        Query::Phrase { field, .. } => {
            assert!(field.as_ref().is_none_or(|f| !f.is_empty()));
            *clauses += 1;
        }
        Query::Prefix { field, prefix } => {
            assert!(!prefix.is_empty(), "empty prefix: {q:?}");
            assert!(field.as_ref().is_none_or(|f| !f.is_empty()));
            *clauses += 1;
        }
        Query::Exists { field } | Query::Range { field, .. } => {
            assert!(!field.is_empty());
            *clauses += 1;
        }
        Query::And(children) => {
            assert!(children.len() >= 2, "And with {} children", children.len());
            for c in children {
                assert!(!matches!(c, Query::And(_)), "nested And: {q:?}");
                check_shape(c, clauses);
            }
        }
        Query::Or(children) => {
            assert!(children.len() >= 2, "Or with {} children", children.len());
            for c in children {
                assert!(!matches!(c, Query::Or(_)), "nested Or: {q:?}");
                check_shape(c, clauses);
            }
        }
        Query::Not(inner) => {
            assert!(!matches!(**inner, Query::Not(_)), "double negation: {q:?}");
            check_shape(inner, clauses);
        }
    }
}

/// Every character escaped: a word that is never syntax.
fn escaped(text: &str) -> String {
    text.chars().flat_map(|c| ['\\', c]).collect()
}

fn quoted(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

fn field_prefix(field: &Option<String>) -> String {
    field.as_ref().map_or(String::new(), |f| format!("{f}:"))
}

/// The query in the query language.
fn print(q: &Query) -> String {
    match q {
        Query::All => "*".to_owned(),
        Query::Term { field, text } => format!("{}{}", field_prefix(field), escaped(text)),
        Query::Phrase { field, text } => format!("{}{}", field_prefix(field), quoted(text)),
        Query::Prefix { field, prefix } => format!("{}{}*", field_prefix(field), escaped(prefix)),
        Query::Exists { field } => format!("{field}:*"),
        Query::Range {
            field,
            lower,
            upper,
        } => {
            let (open, low) = match lower {
                Bound::Included(v) => ('[', quoted(v)),
                Bound::Excluded(v) => ('{', quoted(v)),
                Bound::Unbounded => ('[', "*".to_owned()),
            };
            let (close, high) = match upper {
                Bound::Included(v) => (']', quoted(v)),
                Bound::Excluded(v) => ('}', quoted(v)),
                Bound::Unbounded => (']', "*".to_owned()),
            };
            format!("{field}:{open}{low} TO {high}{close}")
        }
        Query::And(children) => children
            .iter()
            .map(|c| match c {
                Query::Or(_) => format!("({})", print(c)),
                _ => print(c),
            })
            .collect::<Vec<_>>()
            .join(" AND "),
        Query::Or(children) => children.iter().map(print).collect::<Vec<_>>().join(" OR "),
        Query::Not(inner) => match **inner {
            Query::And(_) | Query::Or(_) => format!("NOT ({})", print(inner)),
            _ => format!("NOT {}", print(inner)),
        },
    }
}

fn event_of(line: &str) -> Event {
    parse_json_line(line, &ParseContext::new(NOW)).unwrap_or_else(|_| {
        let mut e = Event::new(NOW, line);
        e.level = Some("ERROR".into());
        e.host = Some(line.chars().take(8).collect());
        e
    })
}

fuzz_target!(|data: &[u8]| {
    let (query, line) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };

    let ast = match parse(query) {
        Ok(ast) => ast,
        Err(e) => {
            let chars = query.chars().count();
            assert!(
                e.position <= chars,
                "error position {} past the end ({chars} characters): {e}",
                e.position
            );
            assert!(!e.message.is_empty());
            return;
        }
    };
    let mut clauses = 0;
    check_shape(&ast, &mut clauses);
    assert!(clauses <= MAX_CLAUSES, "{clauses} clauses");

    let printed = print(&ast);
    if printed.len() <= MAX_QUERY_BYTES {
        match parse(&printed) {
            Ok(again) => assert_eq!(again, ast, "{query:?} printed as {printed:?}"),
            Err(e) => panic!("{query:?} printed as {printed:?} does not parse: {e}"),
        }
    }

    let matcher = Matcher::new(&ast, NOW);
    let compiled = Compiler::new(fields(), NOW).compile(&ast);
    match (&matcher, &compiled) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!(a.0, b.0, "matcher and compiler errors differ"),
        (Ok(_), Err(e)) => panic!("{query:?}: the compiler refuses ({e}) what the matcher accepts"),
        (Err(e), Ok(_)) => panic!("{query:?}: the matcher refuses ({e}) what the compiler accepts"),
    }
    let Ok(matcher) = matcher else { return };
    let negated = Matcher::new(&ast.clone().negate(), NOW).expect("NOT of a valid query");
    let line = line.map(String::from_utf8_lossy);
    let event = event_of(line.as_deref().unwrap_or(query));
    assert_ne!(
        matcher.matches(&event),
        negated.matches(&event),
        "{query:?} and its negation agree on {event:?}"
    );
});
