//! The syntax tree produced by [`parse`](super::parse).

use std::ops::Bound;

/// A parsed search query.
///
/// A `field` of `None` means the default field, `message`. All texts have their
/// backslash escapes removed. [`And`](Query::And) and [`Or`](Query::Or) built by
/// the parser (or by [`Query::and`] / [`Query::or`]) are flat — they never hold a
/// child of their own kind — and hold at least two children.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Query {
    /// Matches every record: `*` or an empty query.
    All,
    /// A single word: `timeout`, `level:error`.
    Term { field: Option<String>, text: String },
    /// A quoted phrase: `"connection reset"`, `user:"Ada Lovelace"`.
    Phrase { field: Option<String>, text: String },
    /// Words starting with `prefix`: `time*`, `host:web-*`.
    Prefix {
        field: Option<String>,
        prefix: String,
    },
    /// Records that have the field at all: `status:*`.
    Exists { field: String },
    /// Values between two bounds: `status:[500 TO 599]`, `status:>=500`.
    /// A `*` bound is [`Bound::Unbounded`].
    Range {
        field: String,
        lower: Bound<String>,
        upper: Bound<String>,
    },
    /// Every child matches.
    And(Vec<Query>),
    /// At least one child matches.
    Or(Vec<Query>),
    /// Everything except what the child matches.
    Not(Box<Query>),
}

impl Query {
    /// Conjunction of `parts`: nested `And`s are flattened, a single part is
    /// returned as is and no parts at all is [`Query::All`].
    #[must_use]
    pub fn and(parts: impl IntoIterator<Item = Query>) -> Query {
        let mut flat = Vec::new();
        for part in parts {
            match part {
                Query::And(children) => flat.extend(children),
                other => flat.push(other),
            }
        }
        match flat.len() {
            0 => Query::All,
            1 => flat.pop().unwrap_or(Query::All),
            _ => Query::And(flat),
        }
    }

    /// Disjunction of `parts`: nested `Or`s are flattened and a single part is
    /// returned as is. No parts at all is an empty `Or`, which matches nothing.
    #[must_use]
    pub fn or(parts: impl IntoIterator<Item = Query>) -> Query {
        let mut flat = Vec::new();
        for part in parts {
            match part {
                Query::Or(children) => flat.extend(children),
                other => flat.push(other),
            }
        }
        if flat.len() == 1 {
            if let Some(only) = flat.pop() {
                return only;
            }
        }
        Query::Or(flat)
    }

    /// Negation of `self`; negating a `Not` returns its child (`NOT NOT a` is `a`).
    #[must_use]
    pub fn negate(self) -> Query {
        match self {
            Query::Not(inner) => *inner,
            other => Query::Not(Box::new(other)),
        }
    }
}
