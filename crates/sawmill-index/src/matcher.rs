//! Decides whether one event matches a query, in memory and without tantivy, with exactly the
//! answer a search of the index gives.
//!
//! Alert rules evaluate their queries on the incoming event stream, before the events are
//! indexed. A [`Matcher`] is compiled once from a parsed [`Query`] (with the rules and the
//! errors of [`compile`](crate::compile)) and then tests events. An [`EventView`] wraps one event
//! and tokenizes its message lazily, at most once however many matchers look at it:
//!
//! ```
//! use sawmill_core::Event;
//! use sawmill_index::matcher::{EventView, Matcher};
//! use sawmill_index::query::parse;
//!
//! let rules = ["level:error timeout", "\"connection reset\"", "NOT host:web-*"]
//!     .map(|q| Matcher::new(&parse(q).unwrap(), 0).unwrap());
//! let mut event = Event::new(0, "upstream timeout: connection reset by peer");
//! event.level = Some("ERROR".into());
//! let view = EventView::new(&event);
//! let hits: Vec<bool> = rules.iter().map(|m| m.matches_view(&view)).collect();
//! assert_eq!(hits, [true, true, true]);
//! ```
//!
//! The event is seen as [`schema`](crate::schema) indexes it:
//!
//! - `message`: the words of tantivy's `default` analyzer (split on anything not alphanumeric,
//!   words of [`MAX_WORD_BYTES`] bytes or more dropped, lower-cased), with their positions;
//!   a dropped word still takes a position, so a phrase does not match across it;
//! - `level`, `service`, `host`, `source`: the whole value lower-cased character by character
//!   (tantivy's `LowerCaser`), absent when it has [`MAX_KEYWORD_BYTES`] bytes or more;
//! - attributes: the values at a path, where a key containing dots counts as nested keys
//!   (`{"http.status": 1}` is `{"http": {"status": 1}}`), arrays hold several values at the
//!   same path, keys containing a NUL byte are ignored with everything below them, and `null`
//!   is absent; strings are whole lower-cased keyword values like the fields above; numbers are
//!   normalized like tantivy does (an integral float is an integer: `500.0` is `500`; an integer
//!   above `i64::MAX`, or an integral float between it and `u64::MAX`, is an unsigned number
//!   that no number in a query matches);
//! - the timestamp, in nanoseconds.
//!
//! Behaviours of the compiler that are mirrored on purpose, surprising as they may be:
//!
//! - a field value such as `status:500` matches the number 500 and the string `"500"`, but a
//!   range or comparison (`status:>=500`) only matches numbers; a quoted `status:"500"` only
//!   the string; `flag:true` matches the boolean and the strings `true`/`TRUE`, `flag:TRUE`
//!   only the strings;
//! - `field:[* TO *]` on an attribute matches its string values only, not its numbers;
//! - a range with one bound that is not a number (`status:[500 TO abc]`) compares strings;
//! - a number written with an exponent or a fraction is only an integer when it is integral
//!   and below 9e18 (`9.1e18` is a float and does not match the integer 9100000000000000000);
//! - query text for keywords and attributes is lower-cased with `str::to_lowercase` (Greek
//!   final sigma `Σ` → `ς`) while values are lower-cased character by character (`Σ` → `σ`),
//!   so `service:ΟΔΟΣ` does not match the service `ΟΔΟΣ`; message words are lower-cased the
//!   same way on both sides;
//! - `level:` values are normalized (`level:err` is `level:ERROR`) but `level:` prefixes and
//!   event levels are not (`level:warning*` does not match `WARN`, `level:error` does not
//!   match ` ERROR `);
//! - a phrase's words are consecutive in the query even when a word of 40 bytes or more was
//!   dropped from it: `"a <long word> b"` matches `a b`, not `a <long word> b`;
//! - a message prefix without any word (`_*`, or a prefix of 40 bytes or more) matches every
//!   event.

use crate::compile::{int_bounds, parse_number, CompileError, Number};
use crate::query::Query;
use crate::schema::MAX_KEYWORD_BYTES;
use sawmill_core::{normalize_level, parse_time_param, Event};
use serde_json::{Map, Value};
use std::cell::{Cell, OnceCell};
use std::cmp::Ordering;
use std::fmt;
use std::ops::Bound;
use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenizer, TokenFilter, TokenStream, Tokenizer,
};

/// Message words of this many bytes or more are not searchable (tantivy's `default` analyzer).
pub const MAX_WORD_BYTES: usize = 40;

/// A compiled query that tests one event at a time.
#[derive(Clone, Debug)]
pub struct Matcher {
    root: Node,
}

impl Matcher {
    /// Compiles `ast` (from [`parse`](crate::query::parse)) with the same rules and errors as
    /// [`Compiler`](crate::compile::Compiler); `now` (nanoseconds since the epoch) resolves
    /// relative times such as `now-15m` inside the query.
    pub fn new(ast: &Query, now: i64) -> Result<Matcher, CompileError> {
        let mut builder = Builder {
            now,
            words: TokenBuffer::default(),
        };
        Ok(Matcher {
            root: builder.node(ast)?,
        })
    }

    /// Whether `event` matches. The tenant and the time range of a search are not part of the
    /// query and not checked.
    pub fn matches(&self, event: &Event) -> bool {
        self.matches_view(&EventView::new(event))
    }

    /// Whether the event of `view` matches; the view keeps the tokenized message for the next
    /// matcher.
    pub fn matches_view(&self, view: &EventView<'_>) -> bool {
        self.root.eval(view)
    }

    /// Whether the query looks at the words of the message (so that matching may tokenize it).
    pub fn uses_message(&self) -> bool {
        self.root.uses_message()
    }
}

/// One event as matchers see it: the tokenized message is computed on first use and shared by
/// every matcher that tests the view.
///
/// To test a stream without allocating per event, take the buffers back with
/// [`EventView::into_buffer`] and give them to the next view with [`EventView::with_buffer`].
pub struct EventView<'a> {
    event: &'a Event,
    words: OnceCell<TokenBuffer>,
    spare: Cell<Option<TokenBuffer>>,
}

impl<'a> EventView<'a> {
    /// A view of `event`; nothing is computed yet.
    pub fn new(event: &'a Event) -> EventView<'a> {
        EventView {
            event,
            words: OnceCell::new(),
            spare: Cell::new(None),
        }
    }

    /// A view of `event` that tokenizes into `buffer` (reusing its allocations).
    pub fn with_buffer(event: &'a Event, buffer: TokenBuffer) -> EventView<'a> {
        EventView {
            event,
            words: OnceCell::new(),
            spare: Cell::new(Some(buffer)),
        }
    }

    /// The event.
    pub fn event(&self) -> &'a Event {
        self.event
    }

    /// Whether the message has been tokenized.
    pub fn is_tokenized(&self) -> bool {
        self.words.get().is_some()
    }

    /// The words of the message, tokenized on the first call.
    pub fn words(&self) -> &TokenBuffer {
        self.words.get_or_init(|| {
            let mut buffer = self.spare.take().unwrap_or_default();
            buffer.fill(&self.event.message);
            buffer
        })
    }

    /// The token buffer, for the next view.
    pub fn into_buffer(self) -> TokenBuffer {
        self.words
            .into_inner()
            .or_else(|| self.spare.into_inner())
            .unwrap_or_default()
    }
}

impl fmt::Debug for EventView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventView")
            .field("event", &self.event)
            .field("words", &self.words.get())
            .finish()
    }
}

/// The analyzed words of a message with their positions, and the analyzer that makes them.
pub struct TokenBuffer {
    analyze: Box<Analyze>,
    text: String,
    words: Vec<Word>,
}

type Analyze = dyn FnMut(&str, &mut String, &mut Vec<Word>) + Send + Sync;

/// A word of [`TokenBuffer::text`].
#[derive(Clone, Copy, Debug)]
struct Word {
    start: usize,
    end: usize,
    position: usize,
}

/// The message analyzer of the index: tantivy's `default` (`SimpleTokenizer`, then
/// `RemoveLongFilter::limit(40)`, then `LowerCaser`), appending words to `text`.
fn message_analyzer() -> impl FnMut(&str, &mut String, &mut Vec<Word>) + Send + Sync + 'static {
    let mut tokenizer = LowerCaser
        .transform(RemoveLongFilter::limit(MAX_WORD_BYTES).transform(SimpleTokenizer::default()));
    move |input, text, words| {
        text.clear();
        words.clear();
        let mut stream = tokenizer.token_stream(input);
        while stream.advance() {
            let token = stream.token();
            let start = text.len();
            text.push_str(&token.text);
            words.push(Word {
                start,
                end: text.len(),
                position: token.position,
            });
        }
    }
}

impl Default for TokenBuffer {
    fn default() -> TokenBuffer {
        TokenBuffer {
            analyze: Box::new(message_analyzer()),
            text: String::new(),
            words: Vec::new(),
        }
    }
}

impl TokenBuffer {
    /// An empty buffer.
    pub fn new() -> TokenBuffer {
        TokenBuffer::default()
    }

    fn fill(&mut self, message: &str) {
        (self.analyze)(message, &mut self.text, &mut self.words);
    }

    /// The words as (position, lower-cased word); positions skip dropped long words.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &str)> + '_ {
        self.words.iter().map(|w| {
            (
                w.position,
                self.text.get(w.start..w.end).unwrap_or_default(),
            )
        })
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether there is no word.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    fn bytes(&self, w: &Word) -> &[u8] {
        self.text.as_bytes().get(w.start..w.end).unwrap_or_default()
    }

    fn has_word(&self, word: &[u8]) -> bool {
        self.words.iter().any(|w| self.bytes(w) == word)
    }

    fn has_prefix(&self, prefix: &[u8]) -> bool {
        self.words.iter().any(|w| self.bytes(w).starts_with(prefix))
    }

    /// Whether the words of `phrase` appear at consecutive positions.
    fn has_phrase(&self, phrase: &[Box<[u8]>]) -> bool {
        let Some((first, rest)) = phrase.split_first() else {
            return true;
        };
        self.words.iter().enumerate().any(|(k, w)| {
            self.bytes(w) == &first[..]
                && rest.iter().enumerate().all(|(i, want)| {
                    // positions strictly increase, so position p + 1 + i can only be at k + 1 + i
                    self.words.get(k + 1 + i).is_some_and(|next| {
                        next.position == w.position + 1 + i && self.bytes(next) == &want[..]
                    })
                })
        })
    }
}

impl fmt::Debug for TokenBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A compiled query node.
#[derive(Clone, Debug)]
enum Node {
    All,
    And(Vec<Node>),
    /// Empty: matches nothing.
    Or(Vec<Node>),
    Not(Box<Node>),
    /// A message word (analyzed).
    Word(Box<[u8]>),
    /// Message words at consecutive positions (at least two).
    Phrase(Vec<Box<[u8]>>),
    /// A message word starting with the analyzed prefix.
    WordPrefix(Box<[u8]>),
    /// The message has a word.
    AnyWord,
    Keyword(KeywordField, TextTest),
    Timestamp(Bound<i64>, Bound<i64>),
    /// `path`: the segments joined by 0x01, as in tantivy's JSON terms.
    Attribute {
        path: Box<[u8]>,
        test: AttrTest,
    },
}

#[derive(Clone, Copy, Debug)]
enum KeywordField {
    Level,
    Service,
    Host,
    Source,
}

/// A test of a keyword value (lower-cased as indexed); strings are already lower-cased.
#[derive(Clone, Debug)]
enum TextTest {
    Equals(Box<[u8]>),
    Prefix(Box<[u8]>),
    Range(Bound<Box<[u8]>>, Bound<Box<[u8]>>),
    Exists,
}

/// A test of the values of an attribute path.
#[derive(Clone, Debug)]
enum AttrTest {
    /// Any of: the string (lower-cased), the integer, the float (as tantivy's `f64_to_u64`),
    /// the boolean.
    Value {
        text: Box<[u8]>,
        int: Option<i64>,
        float: Option<u64>,
        boolean: Option<bool>,
    },
    Prefix(Box<[u8]>),
    /// Integers in the first range (when there is one) or floats (as `f64_to_u64`) in the
    /// second.
    Numeric {
        int: Option<(Bound<i64>, Bound<i64>)>,
        float: (Bound<u64>, Bound<u64>),
    },
    /// Strings between lower-cased bounds.
    Text(Bound<Box<[u8]>>, Bound<Box<[u8]>>),
    /// A value at the path or below it.
    Exists,
}

impl Node {
    fn eval(&self, view: &EventView<'_>) -> bool {
        let event = view.event;
        match self {
            Node::All => true,
            Node::And(children) => children.iter().all(|c| c.eval(view)),
            Node::Or(children) => children.iter().any(|c| c.eval(view)),
            Node::Not(inner) => !inner.eval(view),
            Node::Word(word) => view.words().has_word(word),
            Node::Phrase(words) => view.words().has_phrase(words),
            Node::WordPrefix(prefix) => view.words().has_prefix(prefix),
            Node::AnyWord => !view.words().is_empty(),
            Node::Keyword(field, test) => {
                let value = match field {
                    KeywordField::Level => &event.level,
                    KeywordField::Service => &event.service,
                    KeywordField::Host => &event.host,
                    KeywordField::Source => &event.source,
                };
                match value {
                    Some(v) if v.len() < MAX_KEYWORD_BYTES => test.matches(v),
                    _ => false,
                }
            }
            Node::Timestamp(lower, upper) => within(&event.timestamp, lower, upper),
            Node::Attribute { path, test } => test.matches(&event.attributes, path),
        }
    }

    fn uses_message(&self) -> bool {
        match self {
            Node::Word(_) | Node::Phrase(_) | Node::WordPrefix(_) | Node::AnyWord => true,
            Node::And(children) | Node::Or(children) => children.iter().any(Node::uses_message),
            Node::Not(inner) => inner.uses_message(),
            Node::All | Node::Keyword(..) | Node::Timestamp(..) | Node::Attribute { .. } => false,
        }
    }

    /// A rough cost, to test cheap children of `AND`/`OR` first.
    fn cost(&self) -> u8 {
        match self {
            Node::All | Node::Timestamp(..) => 0,
            Node::Keyword(..) => 1,
            Node::Attribute { .. } => 2,
            Node::Word(_) | Node::Phrase(_) | Node::WordPrefix(_) | Node::AnyWord => 3,
            Node::Not(inner) => inner.cost(),
            Node::And(children) | Node::Or(children) => {
                children.iter().map(Node::cost).max().unwrap_or(0)
            }
        }
    }
}

impl TextTest {
    /// `value` is an indexed keyword (shorter than the limit), before lower-casing.
    fn matches(&self, value: &str) -> bool {
        match self {
            TextTest::Equals(want) => lower_eq(value, want),
            TextTest::Prefix(prefix) => lower_starts_with(value, prefix),
            TextTest::Range(lower, upper) => lower_within(value, lower, upper),
            TextTest::Exists => true,
        }
    }
}

impl AttrTest {
    fn matches(&self, attributes: &Map<String, Value>, path: &[u8]) -> bool {
        match self {
            AttrTest::Exists => visit_object(attributes, path, true, &mut |_| true),
            test => visit_object(attributes, path, false, &mut |leaf| test.leaf(leaf)),
        }
    }

    fn leaf(&self, leaf: Leaf<'_>) -> bool {
        match (self, leaf) {
            (AttrTest::Value { text, .. }, Leaf::Str(s)) => lower_eq(s, text),
            (AttrTest::Value { int, .. }, Leaf::I64(v)) => *int == Some(v),
            (AttrTest::Value { float, .. }, Leaf::F64(v)) => *float == Some(tantivy::f64_to_u64(v)),
            (AttrTest::Value { boolean, .. }, Leaf::Bool(v)) => *boolean == Some(v),
            (AttrTest::Prefix(prefix), Leaf::Str(s)) => lower_starts_with(s, prefix),
            (AttrTest::Numeric { int, .. }, Leaf::I64(v)) => {
                int.as_ref().is_some_and(|(lo, hi)| within(&v, lo, hi))
            }
            (AttrTest::Numeric { float, .. }, Leaf::F64(v)) => {
                within(&tantivy::f64_to_u64(v), &float.0, &float.1)
            }
            (AttrTest::Text(lower, upper), Leaf::Str(s)) => lower_within(s, lower, upper),
            (AttrTest::Exists, _) => true,
            _ => false,
        }
    }
}

/// An attribute value as the index holds it.
#[derive(Clone, Copy, Debug)]
enum Leaf<'a> {
    /// A string short enough to be indexed, before lower-casing.
    Str(&'a str),
    I64(i64),
    /// An integer above `i64::MAX`: no query term matches it, but it exists.
    U64,
    /// Not integral (or beyond the integers), finite.
    F64(f64),
    Bool(bool),
}

/// The indexed leaf of a scalar value (`None`: not indexed, or not a scalar).
fn leaf(value: &Value) -> Option<Leaf<'_>> {
    match value {
        Value::String(s) if s.len() < MAX_KEYWORD_BYTES => Some(Leaf::Str(s)),
        Value::Bool(b) => Some(Leaf::Bool(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Some(Leaf::I64(i));
            }
            if n.as_u64().is_some() {
                return Some(Leaf::U64);
            }
            let f = n.as_f64()?;
            if !f.is_finite() {
                return None;
            }
            // tantivy's `NumericalValue::normalize`
            Some(
                if f.fract() == 0.0 && f >= i64::MIN as f64 && f <= i64::MAX as f64 {
                    Leaf::I64(f as i64)
                } else if f.fract() == 0.0 && f >= 0.0 && f <= u64::MAX as f64 {
                    Leaf::U64
                } else {
                    Leaf::F64(f)
                },
            )
        }
        _ => None,
    }
}

/// Calls `f` on the leaves of `map` at `path` (segments separated by 0x01) until it returns
/// true; with `below`, any leaf at the path or under it counts (tantivy's JSON term order puts
/// them in `[path 0x00, path 0x02)`).
fn visit_object(
    map: &Map<String, Value>,
    path: &[u8],
    below: bool,
    f: &mut dyn FnMut(Leaf<'_>) -> bool,
) -> bool {
    for (key, value) in map {
        let key = key.as_bytes();
        if key.contains(&0) {
            continue; // tantivy skips such keys and what is below them
        }
        let found = match path.split_at_checked(key.len()) {
            Some((head, rest)) => segment_eq(key, head) && visit_value(value, rest, below, f),
            // the key itself reaches below the path (`a.b` for `a`, or a key with 0x01)
            None => {
                below
                    && key
                        .split_at_checked(path.len())
                        .is_some_and(|(head, tail)| {
                            segment_eq(head, path)
                                && tail.first().map(|&b| json_path_byte(b)) == Some(1)
                                && any_leaf(value)
                        })
            }
        };
        if found {
            return true;
        }
    }
    false
}

fn visit_value(
    value: &Value,
    rest: &[u8],
    below: bool,
    f: &mut dyn FnMut(Leaf<'_>) -> bool,
) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|v| visit_value(v, rest, below, f)),
        Value::Object(map) => match rest.split_first() {
            Some((1, tail)) => visit_object(map, tail, below, f),
            None if below => any_leaf(value),
            _ => false,
        },
        scalar => rest.is_empty() && leaf(scalar).is_some_and(f),
    }
}

/// Whether `value` indexes anything.
fn any_leaf(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(any_leaf),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| !k.as_bytes().contains(&0) && any_leaf(v)),
        scalar => leaf(scalar).is_some(),
    }
}

/// A byte of a key as it is in a JSON path with dots expanded.
fn json_path_byte(b: u8) -> u8 {
    if b == b'.' {
        1
    } else {
        b
    }
}

fn segment_eq(key: &[u8], path: &[u8]) -> bool {
    key.len() == path.len() && key.iter().zip(path).all(|(&k, &p)| json_path_byte(k) == p)
}

/// The bytes of `s` lower-cased as tantivy's `LowerCaser` does: character by character, without
/// the final-sigma rule of `str::to_lowercase`.
fn lower_bytes(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.chars().flat_map(char::to_lowercase).flat_map(Utf8::new)
}

/// The UTF-8 bytes of one char.
struct Utf8 {
    buf: [u8; 4],
    at: usize,
    len: usize,
}

impl Utf8 {
    fn new(c: char) -> Utf8 {
        let mut buf = [0; 4];
        let len = c.encode_utf8(&mut buf).len();
        Utf8 { buf, at: 0, len }
    }
}

impl Iterator for Utf8 {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if self.at >= self.len {
            return None;
        }
        let b = self.buf.get(self.at).copied();
        self.at += 1;
        b
    }
}

fn lower_eq(value: &str, want: &[u8]) -> bool {
    if value.is_ascii() {
        value.len() == want.len()
            && value
                .bytes()
                .zip(want)
                .all(|(a, &b)| a.to_ascii_lowercase() == b)
    } else {
        lower_bytes(value).eq(want.iter().copied())
    }
}

fn lower_starts_with(value: &str, prefix: &[u8]) -> bool {
    if value.is_ascii() {
        value.len() >= prefix.len()
            && value
                .bytes()
                .zip(prefix)
                .all(|(a, &b)| a.to_ascii_lowercase() == b)
    } else {
        let mut bytes = lower_bytes(value);
        prefix.iter().all(|&b| bytes.next() == Some(b))
    }
}

fn lower_cmp(value: &str, other: &[u8]) -> Ordering {
    if value.is_ascii() {
        value
            .bytes()
            .map(|b| b.to_ascii_lowercase())
            .cmp(other.iter().copied())
    } else {
        lower_bytes(value).cmp(other.iter().copied())
    }
}

fn lower_within(value: &str, lower: &Bound<Box<[u8]>>, upper: &Bound<Box<[u8]>>) -> bool {
    let above = match lower {
        Bound::Unbounded => true,
        Bound::Included(b) => lower_cmp(value, b) != Ordering::Less,
        Bound::Excluded(b) => lower_cmp(value, b) == Ordering::Greater,
    };
    above
        && match upper {
            Bound::Unbounded => true,
            Bound::Included(b) => lower_cmp(value, b) != Ordering::Greater,
            Bound::Excluded(b) => lower_cmp(value, b) == Ordering::Less,
        }
}

fn within<T: Ord>(value: &T, lower: &Bound<T>, upper: &Bound<T>) -> bool {
    (match lower {
        Bound::Unbounded => true,
        Bound::Included(b) => value >= b,
        Bound::Excluded(b) => value > b,
    }) && match upper {
        Bound::Unbounded => true,
        Bound::Included(b) => value <= b,
        Bound::Excluded(b) => value < b,
    }
}

/// How an AST field maps onto the event (as in `compile.rs`).
enum Target {
    Message,
    Level,
    Keyword(KeywordField),
    Timestamp,
    Attribute(Box<[u8]>),
}

/// Compiles AST nodes, mirroring `compile::Compiler` node by node (same errors, same order).
struct Builder {
    now: i64,
    words: TokenBuffer,
}

impl Builder {
    fn target(&self, field: Option<&str>) -> Result<Target, CompileError> {
        let Some(field) = field else {
            return Ok(Target::Message);
        };
        Ok(match field {
            "message" | "msg" => Target::Message,
            "level" => Target::Level,
            "service" => Target::Keyword(KeywordField::Service),
            "host" => Target::Keyword(KeywordField::Host),
            "source" => Target::Keyword(KeywordField::Source),
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
                Target::Attribute(json_path(path))
            }
        })
    }

    fn node(&mut self, ast: &Query) -> Result<Node, CompileError> {
        Ok(match ast {
            Query::All => Node::All,
            Query::And(children) => Node::And(self.children(children)?),
            Query::Or(children) => Node::Or(self.children(children)?),
            Query::Not(inner) => Node::Not(Box::new(self.node(inner)?)),
            Query::Term { field, text } => self.term(field.as_deref(), text, false)?,
            Query::Phrase { field, text } => self.term(field.as_deref(), text, true)?,
            Query::Prefix { field, prefix } => self.prefix(field.as_deref(), prefix)?,
            Query::Exists { field } => self.exists(field)?,
            Query::Range {
                field,
                lower,
                upper,
            } => self.range(field, lower, upper)?,
        })
    }

    /// Children compiled in order (the first error wins, as in `compile.rs`), then sorted
    /// cheapest first: `AND` and `OR` do not depend on the order.
    fn children(&mut self, children: &[Query]) -> Result<Vec<Node>, CompileError> {
        let mut nodes = children
            .iter()
            .map(|c| self.node(c))
            .collect::<Result<Vec<_>, _>>()?;
        nodes.sort_by_key(Node::cost);
        Ok(nodes)
    }

    fn term(
        &mut self,
        field: Option<&str>,
        text: &str,
        phrase: bool,
    ) -> Result<Node, CompileError> {
        Ok(match self.target(field)? {
            Target::Message => self.message_words(text)?,
            Target::Level => Node::Keyword(
                KeywordField::Level,
                TextTest::Equals(lower(&normalize_level(text))),
            ),
            Target::Keyword(f) => Node::Keyword(f, TextTest::Equals(lower(text))),
            Target::Timestamp => {
                let t = self.time(text)?;
                Node::Timestamp(Bound::Included(t), Bound::Included(t))
            }
            Target::Attribute(path) => Node::Attribute {
                path,
                test: attribute_value(text, phrase),
            },
        })
    }

    /// The analyzed words of `text`.
    fn tokens(&mut self, text: &str) -> Vec<Box<[u8]>> {
        self.words.fill(text);
        self.words
            .iter()
            .map(|(_, w)| Box::from(w.as_bytes()))
            .collect()
    }

    /// One word is a term, several are a phrase.
    fn message_words(&mut self, text: &str) -> Result<Node, CompileError> {
        let mut words = self.tokens(text);
        match words.len() {
            0 => Err(CompileError(format!(
                "'{text}' has no searchable word: message search matches letters and digits"
            ))),
            1 => Ok(words.pop().map_or(Node::Or(Vec::new()), Node::Word)),
            _ => Ok(Node::Phrase(words)),
        }
    }

    fn prefix(&mut self, field: Option<&str>, prefix: &str) -> Result<Node, CompileError> {
        Ok(match self.target(field)? {
            Target::Message => {
                let mut words = self.tokens(prefix);
                match words.len() {
                    0 => Node::All,
                    1 => words.pop().map_or(Node::All, Node::WordPrefix),
                    _ => {
                        return Err(CompileError(format!(
                            "'{prefix}*' spans several words: a prefix applies to one word"
                        )))
                    }
                }
            }
            Target::Level => Node::Keyword(KeywordField::Level, TextTest::Prefix(lower(prefix))),
            Target::Keyword(f) => Node::Keyword(f, TextTest::Prefix(lower(prefix))),
            Target::Timestamp => return Err(CompileError(
                "timestamp does not take a prefix: use a range such as timestamp:[now-1h TO now]"
                    .into(),
            )),
            Target::Attribute(path) => Node::Attribute {
                path,
                test: AttrTest::Prefix(lower(prefix)),
            },
        })
    }

    fn exists(&mut self, field: &str) -> Result<Node, CompileError> {
        Ok(match self.target(Some(field))? {
            Target::Message => Node::AnyWord,
            Target::Level => Node::Keyword(KeywordField::Level, TextTest::Exists),
            Target::Keyword(f) => Node::Keyword(f, TextTest::Exists),
            Target::Timestamp => Node::All,
            Target::Attribute(path) => Node::Attribute {
                path,
                test: AttrTest::Exists,
            },
        })
    }

    fn range(
        &mut self,
        field: &str,
        lower: &Bound<String>,
        upper: &Bound<String>,
    ) -> Result<Node, CompileError> {
        match self.target(Some(field))? {
            Target::Timestamp => {
                let lower = map_bound(lower, |s| self.time(s))?;
                let upper = map_bound(upper, |s| self.time(s))?;
                Ok(Node::Timestamp(lower, upper))
            }
            Target::Attribute(path) => Ok(Node::Attribute {
                path,
                test: attribute_range(lower, upper),
            }),
            Target::Level => Err(CompileError(
                "level does not take a range: use level:(WARN OR ERROR OR FATAL)".into(),
            )),
            Target::Message => Err(CompileError(
                "message does not take a range: ranges apply to numbers, times and attribute values".into(),
            )),
            Target::Keyword(f) => Ok(Node::Keyword(
                f,
                TextTest::Range(lower_bound(lower), lower_bound(upper)),
            )),
        }
    }

    fn time(&self, text: &str) -> Result<i64, CompileError> {
        parse_time_param(text, self.now)
            .map_err(|e| CompileError(format!("timestamp value '{text}': {e}")))
    }
}

/// The JSON path of tantivy's `Term::from_field_json_path(_, path, true)`: `\x` escapes
/// removed and every dot a segment separator (0x01).
fn json_path(path: &str) -> Box<[u8]> {
    let segments = tantivy::json_utils::split_json_path(path);
    let mut out = Vec::with_capacity(path.len());
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push(1);
        }
        out.extend(segment.bytes().map(json_path_byte));
    }
    out.into_boxed_slice()
}

fn lower(text: &str) -> Box<[u8]> {
    text.to_lowercase().into_bytes().into_boxed_slice()
}

fn lower_bound(b: &Bound<String>) -> Bound<Box<[u8]>> {
    match b {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(s) => Bound::Included(lower(s)),
        Bound::Excluded(s) => Bound::Excluded(lower(s)),
    }
}

fn map_bound<T, U, E>(b: &Bound<T>, f: impl FnOnce(&T) -> Result<U, E>) -> Result<Bound<U>, E> {
    Ok(match b {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(v) => Bound::Included(f(v)?),
        Bound::Excluded(v) => Bound::Excluded(f(v)?),
    })
}

/// An attribute equal to `text`: the whole string (case-insensitive), or, unless quoted, the
/// number or boolean it spells.
fn attribute_value(text: &str, phrase: bool) -> AttrTest {
    let (mut int, mut float, mut boolean) = (None, None, None);
    if !phrase {
        match parse_number(text) {
            Some(Number::Int(i)) => int = Some(i),
            Some(Number::Float(f)) => float = Some(tantivy::f64_to_u64(f)),
            None => {}
        }
        boolean = text.parse::<bool>().ok();
    }
    AttrTest::Value {
        text: lower(text),
        int,
        float,
        boolean,
    }
}

/// A range over an attribute: numbers when both bounds are numbers (or open, but not both),
/// lower-cased strings otherwise.
fn attribute_range(lower: &Bound<String>, upper: &Bound<String>) -> AttrTest {
    let numeric = |b: &Bound<String>| match b {
        Bound::Unbounded => Some(Bound::Unbounded),
        Bound::Included(s) => parse_number(s).map(Bound::Included),
        Bound::Excluded(s) => parse_number(s).map(Bound::Excluded),
    };
    if let (Some(lo), Some(hi)) = (numeric(lower), numeric(upper)) {
        if !(matches!(lo, Bound::Unbounded) && matches!(hi, Bound::Unbounded)) {
            return numeric_range(lo, hi);
        }
    }
    AttrTest::Text(lower_bound(lower), lower_bound(upper))
}

/// The integer and float ranges of `compile::numeric_range`, bound for bound.
fn numeric_range(lo: Bound<Number>, hi: Bound<Number>) -> AttrTest {
    let float = |b: Bound<Number>, open: f64| match b {
        Bound::Unbounded => Bound::Included(tantivy::f64_to_u64(open)),
        Bound::Included(n) => Bound::Included(tantivy::f64_to_u64(n.as_f64())),
        Bound::Excluded(n) => Bound::Excluded(tantivy::f64_to_u64(n.as_f64())),
    };
    AttrTest::Numeric {
        int: int_bounds(lo, hi),
        float: (float(lo, f64::NEG_INFINITY), float(hi, f64::INFINITY)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::Compiler;
    use crate::query::parse;
    use crate::schema::build_schema;
    use serde_json::json;
    use tantivy::tokenizer::TokenizerManager;

    const SEC: i64 = 1_000_000_000;
    /// 2026-11-20T00:00:00Z
    const NOW: i64 = 1_795_132_800 * SEC;

    fn matcher(q: &str) -> Matcher {
        let ast = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        Matcher::new(&ast, NOW).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn hit(q: &str, e: &Event) -> bool {
        matcher(q).matches(e)
    }

    fn msg(text: &str) -> Event {
        Event::new(NOW, text)
    }

    fn attrs(value: serde_json::Value) -> Event {
        let mut e = msg("");
        if let serde_json::Value::Object(map) = value {
            e.attributes = map;
        }
        e
    }

    fn error(q: &str) -> String {
        match Matcher::new(&parse(q).unwrap(), NOW) {
            Ok(_) => panic!("{q} compiled"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn message_words_are_those_of_the_default_analyzer() {
        let mut reference = TokenizerManager::default().get("default").unwrap();
        let mut buffer = TokenBuffer::new();
        for text in [
            "Hello, happy tax-payer!",
            "ÜNÏCØDÉ Straße ΟΔΟΣ İstanbul ǅemal ﬁle 日本語 東京",
            &format!("a {} b {} c", "x".repeat(40), "é".repeat(20)),
            &format!("{}a {}", "Ä".repeat(19), "İ".repeat(19)),
            "12:00:01 10.0.0.7 -3 1.5 0x1F",
            "",
            "!!! ...",
        ] {
            let mut want = Vec::new();
            let mut stream = reference.token_stream(text);
            while stream.advance() {
                let t = stream.token();
                want.push((t.position, t.text.clone()));
            }
            buffer.fill(text);
            let got: Vec<(usize, String)> =
                buffer.iter().map(|(p, w)| (p, w.to_string())).collect();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn bare_words_match_message_words() {
        let e = msg("Upstream TIMEOUT: connection-reset by peer (10.0.0.7)");
        assert!(hit("timeout", &e));
        assert!(hit("Timeout", &e));
        assert!(hit("message:upstream", &e));
        assert!(hit("msg:peer", &e));
        assert!(!hit("time", &e));
        assert!(!hit("timeouts", &e));
        assert!(hit("10.0.0.7", &e), "several words are a phrase");
        assert!(!hit("10.0.0.8", &e));
        assert!(hit("connection-reset", &e));
        assert!(hit("\"10 0\"", &e));
        assert!(hit("café", &msg("CAFÉ crème")));
        assert!(
            hit("ΟΔΟΣ", &msg("οδοσ")),
            "char-wise lower-casing on both sides"
        );
        assert!(!hit("ΟΔΟΣ", &msg("οδος")));
        assert!(!hit("a", &msg("")));
    }

    #[test]
    fn phrases_need_consecutive_positions() {
        let e = msg("connection, reset by peer; gateway gateway timeout");
        assert!(hit("\"connection reset\"", &e));
        assert!(hit("\"Connection-Reset By\"", &e));
        assert!(!hit("\"reset connection\"", &e));
        assert!(!hit("\"connection by\"", &e));
        assert!(hit("\"gateway timeout\"", &e));
        assert!(hit("\"gateway gateway timeout\"", &e));
        assert!(!hit("\"gateway gateway gateway\"", &e));
        assert!(hit("\"peer gateway\"", &e), "punctuation is not a word");
        // a dropped long word keeps its position in the message...
        let long = "x".repeat(45);
        assert!(!hit("\"a b\"", &msg(&format!("a {long} b"))));
        // ...but not in the query
        assert!(hit(&format!("\"a {long} b\""), &msg("a b")));
        assert!(!hit(
            &format!("\"a {long} b\""),
            &msg(&format!("a {long} b"))
        ));
        // a word of 39 bytes is kept, 40 is dropped
        assert!(hit(&"x".repeat(39), &msg(&"X".repeat(39))));
        assert!(!hit(&format!("{}*", "x".repeat(39)), &msg(&"x".repeat(40))));
    }

    #[test]
    fn message_prefixes_and_existence() {
        let e = msg("Connection timeout");
        assert!(hit("time*", &e));
        assert!(hit("TIME*", &e));
        assert!(hit("message:conn*", &e));
        assert!(!hit("out*", &e));
        assert!(hit("message:*", &e));
        assert!(!hit("message:*", &msg("!!! ---")));
        assert!(!hit("message:*", &msg(&"z".repeat(40))));
        assert!(!hit("message:*", &msg("")));
        // a prefix without a word matches every event, even one without a message
        assert!(hit("_*", &msg("")));
        assert!(hit(&format!("{}*", "z".repeat(40)), &msg("")));
        assert_eq!(
            error("conn-reset*"),
            "'conn-reset*' spans several words: a prefix applies to one word"
        );
        assert_eq!(
            error("\"...\""),
            "'...' has no searchable word: message search matches letters and digits"
        );
        assert!(error(&"y".repeat(40)).contains("no searchable word"));
    }

    #[test]
    fn levels_are_normalized_in_values_only() {
        let mut e = msg("");
        e.level = Some("WARN".into());
        for q in [
            "level:warn",
            "level:WARNING",
            "level:wrn",
            "level:40",
            "level:(error OR warn)",
        ] {
            assert!(hit(q, &e), "{q}");
        }
        assert!(!hit("level:error", &e));
        assert!(hit("level:wa*", &e));
        assert!(!hit("level:warning*", &e), "a prefix is not normalized");
        assert!(hit("level:*", &e));
        assert!(!hit("NOT level:*", &e));
        assert!(!hit("level:*", &msg("")));
        e.level = Some(" ERROR ".into());
        assert!(!hit("level:error", &e), "the event level is not normalized");
        assert!(
            !hit("level:\" ERROR \"", &e),
            "a query level is trimmed, the event level is not"
        );
        assert_eq!(
            error("level:[a TO z]"),
            "level does not take a range: use level:(WARN OR ERROR OR FATAL)"
        );
    }

    #[test]
    fn keywords_are_whole_values_case_insensitive() {
        let mut e = msg("");
        e.service = Some("Checkout-API".into());
        e.host = Some("web-1.eu".into());
        e.source = Some("/var/log/app.log".into());
        assert!(hit("service:checkout-api", &e));
        assert!(hit("service:\"CHECKOUT-API\"", &e));
        assert!(!hit("service:checkout", &e));
        assert!(hit("service:check*", &e));
        assert!(hit("host:WEB-*", &e));
        assert!(hit("host:web-1.eu", &e));
        assert!(hit("source:/var/log/app.log", &e));
        assert!(hit("service:[a TO d]", &e));
        assert!(!hit("service:[a TO checkout]", &e));
        assert!(hit("service:{checkout TO checkout-b}", &e));
        assert!(hit("service:>=checkout-api", &e));
        assert!(!hit("service:>checkout-api", &e));
        assert!(hit("service:[* TO *]", &e));
        assert!(hit("service:*", &e));
        assert!(!hit("service:*", &msg("")));
        e.service = Some(String::new());
        assert!(hit("service:*", &e), "an empty value is a value");
        assert!(hit("service:\"\"", &e));
        e.service = Some("S".repeat(MAX_KEYWORD_BYTES));
        assert!(!hit("service:*", &e), "too long to be indexed");
        e.service = Some("S".repeat(MAX_KEYWORD_BYTES - 1));
        assert!(hit("service:s*", &e));
        // query text is lower-cased with the final-sigma rule, values without it
        e.service = Some("ΟΔΟΣ".into());
        assert!(!hit("service:ΟΔΟΣ", &e));
        assert!(hit("service:οδοσ", &e));
        e.service = Some("Straße".into());
        assert!(hit("service:STRAßE", &e));
        assert!(!hit("service:strasse", &e));
    }

    #[test]
    fn attribute_values_match_numbers_strings_and_booleans() {
        let e = attrs(json!({
            "status": 500, "code": "500", "ratio": 0.5, "whole": 2.0, "flag": true, "word": "TRUE",
            "big": u64::MAX, "huge": 1e20, "neg": -0.0,
        }));
        assert!(hit("status:500", &e));
        assert!(hit("status:500.0", &e));
        assert!(hit("status:5e2", &e));
        assert!(!hit("status:\"500\"", &e), "a quoted value is a string");
        assert!(hit("code:500", &e), "a number also matches the string");
        assert!(hit("code:\"500\"", &e));
        assert!(!hit("code:>=500", &e), "a range only matches numbers");
        assert!(hit("ratio:0.5", &e));
        assert!(hit("whole:2", &e), "an integral float is an integer");
        assert!(hit("flag:true", &e));
        assert!(!hit("flag:TRUE", &e));
        assert!(!hit("flag:\"true\"", &e));
        assert!(hit("word:true", &e));
        assert!(hit("word:TRUE", &e));
        assert!(
            !hit("big:18446744073709551615", &e),
            "u64 values match no number"
        );
        assert!(!hit("big:>0", &e));
        assert!(hit("big:*", &e));
        assert!(hit("huge:1e20", &e));
        assert!(hit("huge:>1e19", &e));
        assert!(hit("neg:0", &e), "-0.0 is the integer 0");
        let e = attrs(json!({"v": 9_100_000_000_000_000_000i64}));
        assert!(hit("v:9100000000000000000", &e));
        assert!(!hit("v:9.1e18", &e), "9.1e18 is a float in a query");
    }

    #[test]
    fn attribute_paths_expand_dots_and_arrays() {
        let e = attrs(json!({
            "http": {"method": "POST", "url": "/API/v1"},
            "http.status": 502,
            "tags": ["a", "B", 3, null, [true], {"k": "v"}],
            "user": {"profile": {"city": null}, "empty": {}, "list": []},
            "a\u{0}b": 1,
            "odd\u{1}key": "v",
            "trailing.": 5,
        }));
        assert!(hit("http.method:post", &e));
        assert!(hit("attributes.http.method:post", &e));
        assert!(hit("http.status:502", &e), "a dotted key is a path");
        assert!(hit("http.url:/api/*", &e));
        assert!(!hit("http:post", &e));
        assert!(hit("http:*", &e));
        assert!(hit("tags:b", &e));
        assert!(hit("tags:3", &e));
        assert!(hit("tags:true", &e), "nested arrays are flattened");
        assert!(hit("tags.k:v", &e));
        assert!(!hit("user.profile.city:*", &e), "null is not indexed");
        assert!(!hit("user.profile:*", &e));
        assert!(!hit("user.empty:*", &e));
        assert!(!hit("user.list:*", &e));
        assert!(!hit("user:*", &e));
        assert!(!hit("a:*", &e), "keys with NUL are skipped");
        assert!(hit("odd.key:v", &e), "0x01 in a key separates segments");
        assert!(hit("odd:*", &e));
        assert!(
            hit("trailing:*", &e),
            "a key ending with a dot is below its path"
        );
        assert!(!hit("missing:*", &e));
        assert!(hit("NOT missing:x", &e));
        assert_eq!(error("a..b:1"), "'a..b' is not a valid field path");
        assert_eq!(
            error("attributes.:1"),
            "'attributes.' is not a valid field path"
        );
        let long = attrs(json!({"s": "L".repeat(MAX_KEYWORD_BYTES)}));
        assert!(!hit("s:*", &long), "too long to be indexed");
    }

    #[test]
    fn attribute_ranges() {
        let int = attrs(json!({"n": 500}));
        let float = attrs(json!({"n": 400.5}));
        let text = attrs(json!({"n": "OK"}));
        for (q, i, f, t) in [
            ("n:>=500", true, false, false),
            ("n:>500", false, false, false),
            ("n:<500", false, true, false),
            ("n:[400 TO 500}", false, true, false),
            ("n:[400.5 TO 500]", true, true, false),
            ("n:{400.5 TO 500}", false, false, false),
            ("n:>400.4", true, true, false),
            ("n:[499.5 TO 500.5]", true, false, false),
            ("n:[500 TO *]", true, false, false),
            ("n:[* TO *]", false, false, true),
            ("n:[a TO z]", false, false, true),
            ("n:[500 TO abc]", false, false, false),
            ("n:[500 TO z]", false, false, true),
            ("n:{ok TO z]", false, false, false),
            ("n:[600 TO 500]", false, false, false),
            ("n:<=-9223372036854775808", false, false, false),
            ("n:>-1e19", true, true, false),
        ] {
            assert_eq!(
                (hit(q, &int), hit(q, &float), hit(q, &text)),
                (i, f, t),
                "{q}"
            );
        }
    }

    #[test]
    fn timestamps() {
        let e = msg("x");
        assert!(hit("timestamp:[now-1h TO now]", &e));
        assert!(!hit("timestamp:{now-1h TO now}", &e));
        assert!(hit("@timestamp:>=now", &e));
        assert!(!hit("timestamp:>now-15m AND timestamp:<now", &e));
        assert!(hit("timestamp:2026-11-20T00:00:00Z", &e));
        assert!(hit("timestamp:1795132800", &e));
        assert!(hit("timestamp:\"now\"", &e));
        assert!(!hit("timestamp:now-1s", &e));
        assert!(hit("timestamp:*", &e));
        assert!(
            hit("timestamp:[* TO *]", &e),
            "the index panics; every event is in it"
        );
        assert_eq!(
            error("timestamp:x*"),
            "timestamp does not take a prefix: use a range such as timestamp:[now-1h TO now]"
        );
        assert!(error("timestamp:[now-1h TO soon]").starts_with("timestamp value 'soon': "));
    }

    #[test]
    fn boolean_structure() {
        let ab = msg("a b");
        let a = msg("a");
        let b = msg("b");
        assert!(hit("NOT a", &b), "NOT alone is everything except");
        assert!(!hit("NOT a", &a));
        assert!(hit("-a b", &b));
        assert!(!hit("-a b", &ab));
        assert!(hit("a OR c", &a));
        assert!(hit("a b OR c", &ab));
        assert!(!hit("a b OR c", &a));
        assert!(hit("*", &a));
        assert!(hit("", &a));
        assert!(!hit("NOT *", &a));
        assert!(hit("NOT NOT a", &a));
        assert!(!Matcher::new(&Query::Or(Vec::new()), NOW)
            .unwrap()
            .matches(&a));
        assert!(Matcher::new(&Query::And(Vec::new()), NOW)
            .unwrap()
            .matches(&a));
        assert_eq!(
            error("tenant:x"),
            "the tenant is set by the API key and cannot be queried"
        );
        assert_eq!(
            error("message:[a TO b]"),
            "message does not take a range: ranges apply to numbers, times and attribute values"
        );
    }

    #[test]
    fn compiles_and_fails_like_the_compiler() {
        let (_, fields) = build_schema();
        for q in [
            "a",
            "a b -c",
            "level:err*",
            "tenant:x",
            "a OR tenant:x OR timestamp:x",
            "timestamp:x OR tenant:x",
            "NOT (a AND timestamp:[now TO x])",
            "message:[a TO b]",
            "level:[a TO b]",
            "timestamp:x*",
            "\"...\"",
            "a-b*",
            "x.:1",
            "attributes.:1",
            "timestamp:[now-1h TO now]",
            "status:[1 TO x]",
            "_*",
        ] {
            let ast = parse(q).unwrap();
            let want = Compiler::new(&fields, NOW).compile(&ast).map(|_| ());
            let got = Matcher::new(&ast, NOW).map(|_| ());
            assert_eq!(
                got.map_err(|e| e.to_string()),
                want.map_err(|e| e.to_string()),
                "{q}"
            );
        }
    }

    #[test]
    fn matchers_and_buffers_go_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Matcher>();
        send_sync::<TokenBuffer>();
    }

    #[test]
    fn a_view_tokenizes_the_message_once() {
        let mut e = msg("connection reset by peer");
        e.level = Some("ERROR".into());
        let keyword = matcher("level:error");
        let words = matcher("reset");
        let phrase = matcher("\"connection reset\"");
        assert!(!keyword.uses_message());
        assert!(words.uses_message() && phrase.uses_message());
        let view = EventView::new(&e);
        assert!(keyword.matches_view(&view));
        assert!(!view.is_tokenized(), "a keyword test does not tokenize");
        assert!(words.matches_view(&view));
        let first: *const TokenBuffer = view.words();
        assert!(phrase.matches_view(&view));
        assert!(std::ptr::eq(first, view.words()), "the words are cached");
        // AND tests cheap clauses first: a failing keyword spares the tokenization
        let view = EventView::new(&e);
        assert!(!matcher("reset level:info").matches_view(&view));
        assert!(!view.is_tokenized());
        // buffers go from view to view
        let buffer = view.into_buffer();
        let other = msg("another message");
        let view = EventView::with_buffer(&other, buffer);
        assert!(matcher("another").matches_view(&view));
        assert!(!words.matches_view(&view));
        assert_eq!(view.into_buffer().len(), 2);
    }
}
