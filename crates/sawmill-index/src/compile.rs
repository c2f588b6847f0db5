//! Compiles a parsed query into a tantivy query over the partition schema.
//!
//! - no field, `message`: words of the message (analyzed like the message: lower-cased words;
//!   several words make a phrase);
//! - `level`: normalized like ingest (`level:error` finds `ERROR`);
//! - `service`, `host`, `source`: whole keyword values, case-insensitive;
//! - `timestamp` / `@timestamp`: ranges and comparisons on the event time;
//! - anything else: an attribute path (`status`, `http.method`): numbers compare as numbers,
//!   strings match whole values case-insensitively.

use crate::query::Query as Ast;
use crate::schema::Fields;
use sawmill_core::{normalize_level, parse_time_param};
use std::ops::Bound;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, InvertedIndexRangeQuery, Occur, PhraseQuery, Query,
    RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};
use tantivy::Term;

/// A query that cannot be compiled, with a message that says what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CompileError(pub String);

/// How an AST field maps onto the schema.
enum Target {
    Message,
    Level,
    Keyword(Field),
    Timestamp,
    Attribute(String),
}

/// Compiles queries; holds the message analyzer.
pub struct Compiler<'a> {
    fields: &'a Fields,
    analyzer: TextAnalyzer,
    now: i64,
}

impl<'a> Compiler<'a> {
    /// `now` (nanoseconds) resolves relative times such as `timestamp:>now-1h`.
    pub fn new(fields: &'a Fields, now: i64) -> Compiler<'a> {
        let analyzer = TokenizerManager::default()
            .get("default")
            .unwrap_or_else(|| TextAnalyzer::from(tantivy::tokenizer::SimpleTokenizer::default()));
        Compiler {
            fields,
            analyzer,
            now,
        }
    }

    /// Compiles `ast`; `None` means "every event".
    pub fn compile(&mut self, ast: &Ast) -> Result<Option<Box<dyn Query>>, CompileError> {
        match ast {
            Ast::All => Ok(None),
            other => self.node(other).map(Some),
        }
    }

    fn target(&self, field: Option<&str>) -> Result<Target, CompileError> {
        let Some(field) = field else {
            return Ok(Target::Message);
        };
        Ok(match field {
            "message" | "msg" => Target::Message,
            "level" => Target::Level,
            "service" => Target::Keyword(self.fields.service),
            "host" => Target::Keyword(self.fields.host),
            "source" => Target::Keyword(self.fields.source),
            "timestamp" | "@timestamp" => Target::Timestamp,
            "tenant" => {
                return Err(CompileError(
                    "the tenant is set by the API key and cannot be queried".into(),
                ))
            }
            path => {
                let path = path.strip_prefix("attributes.").unwrap_or(path);
                if path.is_empty() || path.split('.').any(str::is_empty) {
                    return Err(CompileError(format!("'{field}' is not a valid field path")));
                }
                Target::Attribute(path.to_string())
            }
        })
    }

    fn node(&mut self, ast: &Ast) -> Result<Box<dyn Query>, CompileError> {
        match ast {
            Ast::All => Ok(Box::new(AllQuery)),
            Ast::And(children) => {
                let mut clauses = Vec::with_capacity(children.len());
                let mut positives = 0;
                for child in children {
                    match child {
                        Ast::Not(inner) => clauses.push((Occur::MustNot, self.node(inner)?)),
                        Ast::All => {
                            clauses.push((Occur::Must, Box::new(AllQuery) as Box<dyn Query>))
                        }
                        other => {
                            positives += 1;
                            clauses.push((Occur::Must, self.node(other)?))
                        }
                    }
                }
                if positives == 0 {
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                Ok(Box::new(BooleanQuery::new(clauses)))
            }
            Ast::Or(children) => {
                let mut clauses = Vec::with_capacity(children.len());
                for child in children {
                    clauses.push((Occur::Should, self.node(child)?));
                }
                Ok(Box::new(BooleanQuery::new(clauses)))
            }
            Ast::Not(inner) => Ok(Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
                (Occur::MustNot, self.node(inner)?),
            ]))),
            Ast::Term { field, text } => self.term(field.as_deref(), text, false),
            Ast::Phrase { field, text } => self.term(field.as_deref(), text, true),
            Ast::Prefix { field, prefix } => self.prefix(field.as_deref(), prefix),
            Ast::Exists { field } => self.exists(field),
            Ast::Range {
                field,
                lower,
                upper,
            } => self.range(field, lower, upper),
        }
    }

    fn term(
        &mut self,
        field: Option<&str>,
        text: &str,
        phrase: bool,
    ) -> Result<Box<dyn Query>, CompileError> {
        match self.target(field)? {
            Target::Message => self.message_words(text),
            Target::Level => Ok(keyword_term(self.fields.level, &normalize_level(text))),
            Target::Keyword(f) => Ok(keyword_term(f, text)),
            Target::Timestamp => {
                let t = self.time(text)?;
                Ok(Box::new(ts_range_query(
                    self.fields.ts,
                    Bound::Included(t),
                    Bound::Included(t),
                )))
            }
            Target::Attribute(path) => Ok(self.attribute_value(&path, text, phrase)),
        }
    }

    /// Words of the message: one word is a term, several are a phrase.
    fn message_words(&mut self, text: &str) -> Result<Box<dyn Query>, CompileError> {
        let terms = self.tokens(text);
        match terms.len() {
            0 => Err(CompileError(format!(
                "'{text}' has no searchable word: message search matches letters and digits"
            ))),
            1 => Ok(Box::new(TermQuery::new(
                terms
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| Term::from_field_text(self.fields.message, "")),
                IndexRecordOption::Basic,
            ))),
            _ => Ok(Box::new(PhraseQuery::new(terms))),
        }
    }

    fn tokens(&mut self, text: &str) -> Vec<Term> {
        let mut terms = Vec::new();
        let mut stream = self.analyzer.token_stream(text);
        while let Some(token) = stream.next() {
            terms.push(Term::from_field_text(self.fields.message, &token.text));
        }
        terms
    }

    /// An attribute equal to `text`: the whole string (case-insensitive), or the number or
    /// boolean it spells.
    fn attribute_value(&self, path: &str, text: &str, phrase: bool) -> Box<dyn Query> {
        let mut terms = vec![json_str_term(
            self.fields.attributes,
            path,
            &text.to_lowercase(),
        )];
        if !phrase {
            if let Some(n) = parse_number(text) {
                terms.extend(json_number_terms(self.fields.attributes, path, n));
            }
            if let Ok(b) = text.parse::<bool>() {
                let mut t = json_path_term(self.fields.attributes, path);
                t.append_type_and_fast_value(b);
                terms.push(t);
            }
        }
        any_term(terms)
    }

    fn prefix(
        &mut self,
        field: Option<&str>,
        prefix: &str,
    ) -> Result<Box<dyn Query>, CompileError> {
        let (field, value) = match self.target(field)? {
            Target::Message => {
                let terms = self.tokens(prefix);
                match terms.as_slice() {
                    [] => return Ok(Box::new(AllQuery)),
                    [t] => (self.fields.message, t.serialized_value_bytes().to_vec()),
                    _ => {
                        return Err(CompileError(format!(
                            "'{prefix}*' spans several words: a prefix applies to one word"
                        )))
                    }
                }
            }
            Target::Level => (self.fields.level, prefix.to_lowercase().into_bytes()),
            Target::Keyword(f) => (f, prefix.to_lowercase().into_bytes()),
            Target::Timestamp => return Err(CompileError(
                "timestamp does not take a prefix: use a range such as timestamp:[now-1h TO now]"
                    .into(),
            )),
            Target::Attribute(path) => {
                let t = json_str_term(self.fields.attributes, &path, &prefix.to_lowercase());
                (self.fields.attributes, t.serialized_value_bytes().to_vec())
            }
        };
        Ok(bytes_prefix(field, value))
    }

    fn exists(&mut self, field: &str) -> Result<Box<dyn Query>, CompileError> {
        Ok(match self.target(Some(field))? {
            Target::Message => bytes_prefix(self.fields.message, Vec::new()),
            Target::Level => bytes_prefix(self.fields.level, Vec::new()),
            Target::Keyword(f) => bytes_prefix(f, Vec::new()),
            Target::Timestamp => Box::new(AllQuery),
            Target::Attribute(path) => {
                // every value at the path and below it: [path\0, path\x02)
                let t = json_path_term(self.fields.attributes, &path);
                let mut value = t.serialized_value_bytes().to_vec();
                value.pop(); // the end-of-path marker
                let mut upper = value.clone();
                value.push(0);
                upper.push(2);
                bytes_range(
                    self.fields.attributes,
                    Bound::Included(value),
                    Bound::Excluded(upper),
                )
            }
        })
    }

    fn range(
        &mut self,
        field: &str,
        lower: &Bound<String>,
        upper: &Bound<String>,
    ) -> Result<Box<dyn Query>, CompileError> {
        match self.target(Some(field))? {
            Target::Timestamp => {
                let lower = map_bound(lower, |s| self.time(s))?;
                let upper = map_bound(upper, |s| self.time(s))?;
                if matches!((&lower, &upper), (Bound::Unbounded, Bound::Unbounded)) {
                    // every event has a timestamp (and tantivy refuses a range without bounds)
                    return Ok(Box::new(AllQuery));
                }
                Ok(Box::new(ts_range_query(self.fields.ts, lower, upper)))
            }
            Target::Attribute(path) => Ok(self.attribute_range(&path, lower, upper)),
            Target::Level => Err(CompileError(
                "level does not take a range: use level:(WARN OR ERROR OR FATAL)".into(),
            )),
            Target::Message => Err(CompileError(
                "message does not take a range: ranges apply to numbers, times and attribute values".into(),
            )),
            Target::Keyword(f) => {
                let lower = lower_str_bound(lower);
                let upper = lower_str_bound(upper);
                Ok(bytes_range(f, lower, upper))
            }
        }
    }

    fn attribute_range(
        &self,
        path: &str,
        lower: &Bound<String>,
        upper: &Bound<String>,
    ) -> Box<dyn Query> {
        let attrs = self.fields.attributes;
        let numeric = |b: &Bound<String>| match b {
            Bound::Unbounded => Some(Bound::Unbounded),
            Bound::Included(s) => parse_number(s).map(Bound::Included),
            Bound::Excluded(s) => parse_number(s).map(Bound::Excluded),
        };
        if let (Some(lo), Some(hi)) = (numeric(lower), numeric(upper)) {
            if !(matches!(lo, Bound::Unbounded) && matches!(hi, Bound::Unbounded)) {
                return numeric_range(attrs, path, lo, hi);
            }
        }
        // strings compare as (lower-cased) text
        let base = json_path_term(attrs, path);
        let prefix = {
            let mut t = base.clone();
            t.append_type_and_str("");
            t.serialized_value_bytes().to_vec()
        };
        let with = |s: &str| {
            let mut t = base.clone();
            t.append_type_and_str(&s.to_lowercase());
            t.serialized_value_bytes().to_vec()
        };
        let lo = match lower {
            Bound::Unbounded => Bound::Included(prefix.clone()),
            Bound::Included(s) => Bound::Included(with(s)),
            Bound::Excluded(s) => Bound::Excluded(with(s)),
        };
        let hi = match upper {
            Bound::Unbounded => match prefix_end(&prefix) {
                Some(end) => Bound::Excluded(end),
                None => Bound::Unbounded,
            },
            Bound::Included(s) => Bound::Included(with(s)),
            Bound::Excluded(s) => Bound::Excluded(with(s)),
        };
        bytes_range(attrs, lo, hi)
    }

    fn time(&self, text: &str) -> Result<i64, CompileError> {
        parse_time_param(text, self.now)
            .map_err(|e| CompileError(format!("timestamp value '{text}': {e}")))
    }
}

/// A number as written in a query.
/// A number as written in a query: an integer when it is integral and below 9e18.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
}

/// The i64 bounds of a numeric range: fractional bounds rounded inwards (and inclusive);
/// `None` when no integer can be in it.
pub(crate) fn int_bounds(lo: Bound<Number>, hi: Bound<Number>) -> Option<(Bound<i64>, Bound<i64>)> {
    let int_lo = match lo {
        Bound::Unbounded => Some(Bound::Included(i64::MIN)),
        Bound::Included(Number::Int(i)) => Some(Bound::Included(i)),
        Bound::Excluded(Number::Int(i)) => Some(Bound::Excluded(i)),
        Bound::Included(Number::Float(f)) | Bound::Excluded(Number::Float(f)) => {
            let c = f.ceil();
            (c <= i64::MAX as f64).then(|| Bound::Included(c.max(i64::MIN as f64) as i64))
        }
    };
    let int_hi = match hi {
        Bound::Unbounded => Some(Bound::Included(i64::MAX)),
        Bound::Included(Number::Int(i)) => Some(Bound::Included(i)),
        Bound::Excluded(Number::Int(i)) => Some(Bound::Excluded(i)),
        Bound::Included(Number::Float(f)) | Bound::Excluded(Number::Float(f)) => {
            let c = f.floor();
            (c >= i64::MIN as f64).then(|| Bound::Included(c.min(i64::MAX as f64) as i64))
        }
    };
    int_lo.zip(int_hi)
}

pub(crate) fn parse_number(s: &str) -> Option<Number> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Number::Int(i));
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && s.chars().any(|c| c.is_ascii_digit()) => {
            if f.fract() == 0.0 && f.abs() < 9.0e18 {
                Some(Number::Int(f as i64))
            } else {
                Some(Number::Float(f))
            }
        }
        _ => None,
    }
}

impl Number {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

fn json_path_term(field: Field, path: &str) -> Term {
    Term::from_field_json_path(field, path, true)
}

fn json_str_term(field: Field, path: &str, value: &str) -> Term {
    let mut t = json_path_term(field, path);
    t.append_type_and_str(value);
    t
}

/// Terms an attribute holding the number `n` is indexed under (tantivy stores integral
/// numbers as i64 and the rest as f64).
fn json_number_terms(field: Field, path: &str, n: Number) -> Vec<Term> {
    let mut out = Vec::new();
    match n {
        Number::Int(i) => {
            let mut t = json_path_term(field, path);
            t.append_type_and_fast_value(i);
            out.push(t);
        }
        Number::Float(f) => {
            let mut t = json_path_term(field, path);
            t.append_type_and_fast_value(f);
            out.push(t);
        }
    }
    out
}

/// A numeric range over an attribute: the union of its i64 and f64 term ranges.
fn numeric_range(field: Field, path: &str, lo: Bound<Number>, hi: Bound<Number>) -> Box<dyn Query> {
    let base = json_path_term(field, path);
    let i64_term = |v: i64| {
        let mut t = base.clone();
        t.append_type_and_fast_value(v);
        t.serialized_value_bytes().to_vec()
    };
    let f64_term = |v: f64| {
        let mut t = base.clone();
        t.append_type_and_fast_value(v);
        t.serialized_value_bytes().to_vec()
    };
    let ints = int_bounds(lo, hi);
    let float_lo = match lo {
        Bound::Unbounded => Bound::Included(f64::NEG_INFINITY),
        Bound::Included(n) => Bound::Included(n.as_f64()),
        Bound::Excluded(n) => Bound::Excluded(n.as_f64()),
    };
    let float_hi = match hi {
        Bound::Unbounded => Bound::Included(f64::INFINITY),
        Bound::Included(n) => Bound::Included(n.as_f64()),
        Bound::Excluded(n) => Bound::Excluded(n.as_f64()),
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if let Some((lo, hi)) = ints {
        clauses.push((
            Occur::Should,
            bytes_range(field, lo.map(i64_term), hi.map(i64_term)),
        ));
    }
    clauses.push((
        Occur::Should,
        bytes_range(field, float_lo.map(f64_term), float_hi.map(f64_term)),
    ));
    Box::new(BooleanQuery::new(clauses))
}

fn keyword_term(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, &text.to_lowercase()),
        IndexRecordOption::Basic,
    ))
}

fn any_term(terms: Vec<Term>) -> Box<dyn Query> {
    if terms.len() == 1 {
        if let Some(t) = terms.into_iter().next() {
            return Box::new(TermQuery::new(t, IndexRecordOption::Basic));
        }
        return Box::new(EmptyQuery);
    }
    Box::new(BooleanQuery::new(
        terms
            .into_iter()
            .map(|t| {
                (
                    Occur::Should,
                    Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as Box<dyn Query>,
                )
            })
            .collect(),
    ))
}

/// A range over the event time (nanoseconds), answered from the fast field.
pub fn ts_range_query(field: Field, lower: Bound<i64>, upper: Bound<i64>) -> RangeQuery {
    RangeQuery::new(
        lower.map(|v| Term::from_field_i64(field, v)),
        upper.map(|v| Term::from_field_i64(field, v)),
    )
}

/// Terms of `field` whose value bytes start with `prefix`.
fn bytes_prefix(field: Field, prefix: Vec<u8>) -> Box<dyn Query> {
    let upper = match prefix_end(&prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    bytes_range(field, Bound::Included(prefix), upper)
}

/// Terms of `field` whose serialized value bytes lie in the range (inverted index scan).
fn bytes_range(field: Field, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> Box<dyn Query> {
    // the range weight compares value bytes only, so the term type does not matter
    let to_term = |b: Vec<u8>| Term::from_field_bytes(field, &b);
    match (&lower, &upper) {
        (Bound::Unbounded, Bound::Unbounded) => Box::new(InvertedIndexRangeQuery::new(
            Bound::Included(Term::from_field_bytes(field, &[])),
            Bound::Unbounded,
        )),
        _ => Box::new(InvertedIndexRangeQuery::new(
            lower.map(to_term),
            upper.map(to_term),
        )),
    }
}

/// The smallest byte string greater than every string starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn lower_str_bound(b: &Bound<String>) -> Bound<Vec<u8>> {
    match b {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(s) => Bound::Included(s.to_lowercase().into_bytes()),
        Bound::Excluded(s) => Bound::Excluded(s.to_lowercase().into_bytes()),
    }
}

fn map_bound<T, U, E>(b: &Bound<T>, f: impl FnOnce(&T) -> Result<U, E>) -> Result<Bound<U>, E> {
    Ok(match b {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(v) => Bound::Included(f(v)?),
        Bound::Excluded(v) => Bound::Excluded(f(v)?),
    })
}
