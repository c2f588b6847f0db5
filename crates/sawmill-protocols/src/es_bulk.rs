//! Elasticsearch `_bulk` bodies: NDJSON pairs of an action line and a document line.
//!
//! ```text
//! {"create":{"_index":"logs-web","_id":"a1"}}
//! {"@timestamp":"2026-12-04T10:00:00Z","message":"GET /","log.level":"info"}
//! {"index":{}}
//! {"message":"no index, no id"}
//! ```
//!
//! `index` and `create` actions become events, normalized as `/api/v1/ingest` normalizes an
//! NDJSON line. The action's `_index` (else the index of the URL, `/{index}/_bulk`) becomes the
//! keyword field `index` (replacing a document field of that name) and a given `_id` is kept
//! as the attribute `_id`. Each action gets an [`Item`] saying what became of it, as ES
//! answers one item per action:
//!
//! - a document that is not a JSON object within the limits is a per-item `400
//!   document_parsing_exception`, and never rejects the request;
//! - `delete` and `update` (sawmill keeps logs append-only) are per-item `400`s;
//! - an action line that cannot be read (not JSON, not one action object, an unknown action,
//!   a document line missing at the end) rejects the whole request with its line number, as ES
//!   does: the pairing of the lines after it cannot be trusted.
//!
//! Blank lines between pairs are skipped. Unknown action metadata (`routing`, `pipeline`,
//! `require_alias`, `dynamic_templates`, …) is ignored.

use sawmill_core::{parse_line, BodyFormat, LineError, ParseContext, Parsed, MAX_LISTED_ERRORS};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

/// Longest `_index`, in bytes (Elasticsearch's own limit).
pub const MAX_INDEX_BYTES: usize = 255;
/// Longest `_id`, in bytes (Elasticsearch's own limit).
pub const MAX_ID_BYTES: usize = 512;

/// The four bulk actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Index,
    Create,
    Delete,
    Update,
}

impl Action {
    /// The action's name, as the answer's item key.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Delete => "delete",
            Action::Update => "update",
        }
    }
}

/// What became of one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The document is the event at this position of [`Bulk::parsed`]'s events.
    Event(usize),
    /// The document was kept before (same `_index` and `_id`, decided by the server): not
    /// kept again.
    Duplicate,
    /// The action failed on its own; the others are unaffected.
    Failed {
        status: u16,
        /// Elasticsearch's error type (`document_parsing_exception`, …).
        kind: &'static str,
        reason: String,
    },
}

/// One action of the request, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub action: Action,
    pub index: Option<String>,
    pub id: Option<String>,
    pub outcome: Outcome,
}

/// A decoded bulk request.
#[derive(Debug, Default)]
pub struct Bulk {
    /// The events, with `rejected` and `errors` counting every failed item (line numbers are
    /// the action lines').
    pub parsed: Parsed,
    pub items: Vec<Item>,
}

/// Why a bulk request is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    #[error(
        "the request body is empty: send pairs of an action line and a document line (NDJSON)"
    )]
    Empty,
    #[error("malformed action/metadata line [{line}]: {problem}")]
    Malformed { line: usize, problem: String },
}

/// An action line: exactly one of the four must be present.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionLine<'a> {
    #[serde(borrow, default)]
    index: Option<Meta<'a>>,
    #[serde(borrow, default)]
    create: Option<Meta<'a>>,
    #[serde(borrow, default)]
    delete: Option<Meta<'a>>,
    #[serde(borrow, default)]
    update: Option<Meta<'a>>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(rename = "_index", borrow, default)]
    index: Option<Cow<'a, str>>,
    #[serde(rename = "_id", borrow, default)]
    id: Option<IdValue<'a>>,
}

/// `_id` as clients send it: a string, or a number some clients send unquoted.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Number(serde_json::Number),
}

impl IdValue<'_> {
    fn into_string(self) -> String {
        match self {
            IdValue::Text(t) => t.into_owned(),
            IdValue::Number(n) => n.to_string(),
        }
    }
}

/// Decodes a (decompressed) bulk body. `default_index` is the index named in the URL.
pub fn decode(
    body: &[u8],
    default_index: Option<&str>,
    ctx: &ParseContext,
) -> Result<Bulk, BulkError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    // the newline that ends the last line does not start another one
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    let mut bulk = Bulk {
        parsed: Parsed {
            bytes: body.len(),
            ..Parsed::default()
        },
        items: Vec::new(),
    };
    let mut lines = body
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    while let Some((number, line)) = lines.next() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (action, meta) = read_action(line, number, ctx.limits.max_line_bytes)?;
        let index = match meta.index {
            Some(i) => Some(i.into_owned()),
            None => default_index.map(str::to_string),
        };
        let id = meta.id.map(IdValue::into_string);
        let document = match action {
            Action::Delete => None,
            _ => Some(lines.next().ok_or_else(|| BulkError::Malformed {
                line: number,
                problem: format!(
                    "the {} action has no document line after it",
                    action.as_str()
                ),
            })?),
        };
        let outcome = match (action, document) {
            (Action::Index | Action::Create, Some((_, doc))) => {
                match check_names(index.as_deref(), id.as_deref()) {
                    Err(failed) => failed,
                    Ok(()) => add_document(&mut bulk.parsed, doc, index.as_deref(), &id, ctx),
                }
            }
            (other, _) => Outcome::Failed {
                status: 400,
                kind: "illegal_argument_exception",
                reason: format!(
                    "sawmill keeps logs append-only: the {} action is not supported; use index or create",
                    other.as_str()
                ),
            },
        };
        if let Outcome::Failed { reason, .. } = &outcome {
            bulk.parsed.rejected += 1;
            if bulk.parsed.errors.len() < MAX_LISTED_ERRORS {
                bulk.parsed.errors.push(LineError {
                    line: number,
                    error: reason.clone(),
                });
            }
        }
        bulk.items.push(Item {
            action,
            index,
            id,
            outcome,
        });
    }
    if bulk.items.is_empty() {
        return Err(BulkError::Empty);
    }
    Ok(bulk)
}

fn read_action(
    line: &[u8],
    number: usize,
    max_bytes: usize,
) -> Result<(Action, Meta<'_>), BulkError> {
    let malformed = |problem: String| BulkError::Malformed {
        line: number,
        problem,
    };
    if line.len() > max_bytes {
        return Err(malformed(format!(
            "the line is {} bytes; the limit is {max_bytes}",
            line.len()
        )));
    }
    let text = std::str::from_utf8(line)
        .map_err(|_| malformed("the line is not UTF-8 text".to_string()))?;
    let parsed: ActionLine<'_> = serde_json::from_str(text).map_err(|e| {
        malformed(format!(
            "expected one of {{\"create\":{{…}}}}, {{\"index\":{{…}}}}, {{\"delete\":{{…}}}} or {{\"update\":{{…}}}} with string _index and _id ({e})"
        ))
    })?;
    let mut given = [
        (Action::Index, parsed.index),
        (Action::Create, parsed.create),
        (Action::Delete, parsed.delete),
        (Action::Update, parsed.update),
    ]
    .into_iter()
    .filter_map(|(action, meta)| meta.map(|m| (action, m)));
    let (action, meta) = match (given.next(), given.next()) {
        (Some(one), None) => one,
        _ => {
            return Err(malformed(
                "expected exactly one action: create, index, delete or update".to_string(),
            ))
        }
    };
    Ok((action, meta))
}

fn check_names(index: Option<&str>, id: Option<&str>) -> Result<(), Outcome> {
    let failed = |kind: &'static str, reason: String| {
        Err(Outcome::Failed {
            status: 400,
            kind,
            reason,
        })
    };
    if let Some(index) = index {
        if index.is_empty() || index.len() > MAX_INDEX_BYTES {
            return failed(
                "invalid_index_name_exception",
                format!("index name must be 1 to {MAX_INDEX_BYTES} bytes"),
            );
        }
    }
    if let Some(id) = id {
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return failed(
                "illegal_argument_exception",
                format!("_id must be 1 to {MAX_ID_BYTES} bytes"),
            );
        }
    }
    Ok(())
}

fn add_document(
    parsed: &mut Parsed,
    line: &[u8],
    index: Option<&str>,
    id: &Option<String>,
    ctx: &ParseContext,
) -> Outcome {
    match parse_line(line, BodyFormat::Ndjson, ctx) {
        Ok(mut event) => {
            if let Some(index) = index {
                event.attributes.shift_remove("index");
                event
                    .attributes
                    .insert("index".to_string(), Value::String(index.to_string()));
            }
            if let Some(id) = id {
                event
                    .attributes
                    .insert("_id".to_string(), Value::String(id.clone()));
            }
            parsed.events.push(event);
            Outcome::Event(parsed.events.len() - 1)
        }
        Err(e) => Outcome::Failed {
            status: 400,
            kind: "document_parsing_exception",
            reason: format!("failed to parse the document: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sawmill_core::Limits;

    fn ctx() -> ParseContext {
        ParseContext::new(1_700_000_000_000_000_000)
    }

    fn ok(body: &str) -> Bulk {
        decode(body.as_bytes(), None, &ctx()).expect("bulk decodes")
    }

    #[test]
    fn index_and_create_become_events_with_index_and_id() {
        let bulk = ok(concat!(
            "{\"create\":{\"_index\":\"logs-web\",\"_id\":\"a1\"}}\n",
            "{\"@timestamp\":\"2026-12-04T10:00:00Z\",\"message\":\"GET /\",\"log.level\":\"info\",\"index\":\"mine\"}\n",
            "\n",
            "{\"index\":{\"_id\":7}}\r\n",
            "{\"msg\":\"second\"}",
        ));
        assert_eq!(bulk.parsed.events.len(), 2);
        assert_eq!(bulk.parsed.rejected, 0);
        let first = &bulk.parsed.events[0];
        assert_eq!(first.message, "GET /");
        assert_eq!(first.level.as_deref(), Some("INFO"));
        assert_eq!(first.attributes["index"], "logs-web");
        assert_eq!(first.attributes["_id"], "a1");
        let second = &bulk.parsed.events[1];
        assert_eq!(second.message, "second");
        assert!(!second.attributes.contains_key("index"));
        assert_eq!(second.attributes["_id"], "7");
        assert_eq!(bulk.items.len(), 2);
        assert_eq!(bulk.items[0].action, Action::Create);
        assert_eq!(bulk.items[0].outcome, Outcome::Event(0));
        assert_eq!(bulk.items[1].id.as_deref(), Some("7"));
    }

    #[test]
    fn the_url_index_is_the_default() {
        let body = "{\"index\":{}}\n{\"message\":\"a\"}\n{\"index\":{\"_index\":\"b\"}}\n{\"message\":\"b\"}\n";
        let bulk = decode(body.as_bytes(), Some("url-index"), &ctx()).unwrap();
        assert_eq!(bulk.parsed.events[0].attributes["index"], "url-index");
        assert_eq!(bulk.parsed.events[1].attributes["index"], "b");
    }

    #[test]
    fn a_bad_document_fails_alone() {
        let bulk = ok(concat!(
            "{\"index\":{}}\n{\"message\":\"good\"}\n",
            "{\"index\":{}}\nnot json\n",
            "{\"create\":{}}\n[1,2]\n",
            "{\"index\":{}}\n{\"message\":\"also good\"}\n",
        ));
        assert_eq!(bulk.parsed.events.len(), 2);
        assert_eq!(bulk.parsed.rejected, 2);
        assert_eq!(bulk.parsed.errors[0].line, 3);
        assert_eq!(bulk.parsed.errors[1].line, 5);
        match &bulk.items[1].outcome {
            Outcome::Failed { status, kind, .. } => {
                assert_eq!(*status, 400);
                assert_eq!(*kind, "document_parsing_exception");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(bulk.items[3].outcome, Outcome::Event(1));
    }

    #[test]
    fn delete_and_update_are_refused_per_item_and_keep_the_pairing() {
        let bulk = ok(concat!(
            "{\"delete\":{\"_index\":\"x\",\"_id\":\"1\"}}\n",
            "{\"update\":{\"_index\":\"x\",\"_id\":\"1\"}}\n{\"doc\":{\"a\":1}}\n",
            "{\"index\":{}}\n{\"message\":\"kept\"}\n",
        ));
        assert_eq!(bulk.items.len(), 3);
        assert!(matches!(bulk.items[0].outcome, Outcome::Failed { .. }));
        assert!(matches!(bulk.items[1].outcome, Outcome::Failed { .. }));
        assert_eq!(bulk.parsed.events.len(), 1);
        assert_eq!(bulk.parsed.events[0].message, "kept");
        assert_eq!(bulk.parsed.rejected, 2);
    }

    #[test]
    fn malformed_action_lines_reject_the_request_with_their_line() {
        for (body, line) in [
            ("{\"index\":{}}\n{\"m\":1}\nnot json\n{\"m\":2}\n", 3),
            ("{\"upsert\":{}}\n{}\n", 1),
            ("{\"index\":{},\"create\":{}}\n{}\n", 1),
            ("{\"index\":\"logs\"}\n{}\n", 1),
            ("{\"index\":{\"_index\":{\"a\":1}}}\n{}\n", 1),
            ("{\"index\":{}}\n{}\n{\"create\":{}}\n", 3),
            ("{}\n", 1),
        ] {
            match decode(body.as_bytes(), None, &ctx()) {
                Err(BulkError::Malformed { line: l, .. }) => assert_eq!(l, line, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_empty_body_is_refused() {
        for body in ["", "\n\n", " \r\n"] {
            assert_eq!(
                decode(body.as_bytes(), None, &ctx()).unwrap_err(),
                BulkError::Empty
            );
        }
    }

    #[test]
    fn limits_apply_to_documents_and_names() {
        let mut c = ctx();
        c.limits = Limits {
            max_line_bytes: 64,
            ..Limits::default()
        };
        let long = "x".repeat(100);
        let body = format!(
            "{{\"index\":{{}}}}\n{{\"message\":\"{long}\"}}\n{{\"index\":{{\"_id\":\"{}\"}}}}\n{{}}\n",
            "i".repeat(30)
        );
        let bulk = decode(body.as_bytes(), None, &c).unwrap();
        assert_eq!(bulk.parsed.events.len(), 1);
        assert_eq!(bulk.parsed.rejected, 1);
        let huge_id = "{\"index\":{\"_id\":\"".to_string() + &"i".repeat(600) + "\"}}\n{}\n";
        let bulk = ok(&huge_id);
        assert!(matches!(
            bulk.items[0].outcome,
            Outcome::Failed { status: 400, .. }
        ));
    }

    #[test]
    fn deeply_nested_metadata_is_ignored_or_refused_without_overflowing() {
        for depth in [200, 100_000] {
            let body = format!(
                "{{\"index\":{{\"routing\":{}{}}}}}\n{{}}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            let mut c = ctx();
            c.limits.max_line_bytes = 1 << 20;
            let _ = decode(body.as_bytes(), None, &c);
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut body = Vec::new();
            for _ in 0..(seed % 64) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let pick = b"{}[]\":,\n indexcreate_id_index\\\x00\xff1";
                body.push(pick[(seed % pick.len() as u64) as usize]);
            }
            let _ = decode(&body, Some("d"), &ctx());
        }
    }
}
