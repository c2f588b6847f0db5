//! A recursive-descent parser over the query's characters.
//!
//! Positions are 0-based `char` offsets. Nesting is bounded by [`MAX_DEPTH`]
//! before every recursion, so hostile input cannot overflow the stack, and each
//! character is looked at a bounded number of times, so parsing is linear.

use std::fmt;
use std::ops::Bound;

use super::ast::Query;

/// Longest accepted query, in bytes of UTF-8.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Deepest accepted nesting of parentheses (field groups included).
pub const MAX_DEPTH: usize = 64;
/// Most accepted clauses (terms, phrases, prefixes, ranges, `*`...).
pub const MAX_CLAUSES: usize = 1024;

/// Why a query was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What went wrong, phrased to be followed by `at position N` (as `Display` does).
    pub message: String,
    /// 0-based character (not byte) offset into the query.
    pub position: usize,
}

impl ParseError {
    fn new(message: impl Into<String>, position: usize) -> Self {
        ParseError {
            message: message.into(),
            position,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

impl std::error::Error for ParseError {}

type Result<T> = std::result::Result<T, ParseError>;

/// Parses a query in the language described in the [module docs](super).
///
/// # Errors
///
/// A [`ParseError`] naming the problem and its character position when the
/// query is not valid syntax or exceeds [`MAX_QUERY_BYTES`], [`MAX_DEPTH`] or
/// [`MAX_CLAUSES`].
///
/// ```
/// use sawmill_index::query::{parse, Query};
///
/// let query = parse("level:error timeout").unwrap();
/// assert_eq!(
///     query,
///     Query::And(vec![
///         Query::Term { field: Some("level".into()), text: "error".into() },
///         Query::Term { field: None, text: "timeout".into() },
///     ])
/// );
/// let error = parse("status:").unwrap_err();
/// assert_eq!(error.to_string(), "expected a value after 'status:' at position 7");
/// ```
pub fn parse(query: &str) -> Result<Query> {
    check_length(query)?;
    Parser::new(query).parse_query()
}

fn check_length(query: &str) -> Result<()> {
    if query.len() <= MAX_QUERY_BYTES {
        return Ok(());
    }
    let position = query
        .char_indices()
        .take_while(|(byte, _)| *byte < MAX_QUERY_BYTES)
        .count();
    Err(ParseError::new(
        format!("query is longer than the limit of {MAX_QUERY_BYTES} bytes"),
        position,
    ))
}

/// Binary and prefix keywords; they only count when followed by a boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    And,
    Or,
    Not,
}

const KEYWORDS: [(&str, Keyword); 5] = [
    ("AND", Keyword::And),
    ("&&", Keyword::And),
    ("OR", Keyword::Or),
    ("||", Keyword::Or),
    ("NOT", Keyword::Not),
];

/// Characters that end a word, besides whitespace.
const CLAUSE_STOPS: &[char] = &['(', ')', '"'];
/// Characters that end a range bound, besides whitespace.
const BOUND_STOPS: &[char] = &['(', ')', '"', ']', '}'];

/// One character of a word, remembering whether it was backslash-escaped.
struct WordChar {
    ch: char,
    escaped: bool,
    position: usize,
}

/// An unquoted word, before wildcards are interpreted.
struct Word(Vec<WordChar>);

/// What a word means once its wildcards are interpreted.
enum WordValue {
    /// A lone unescaped `*`.
    Star,
    /// `text*`.
    Prefix(String),
    /// Anything else.
    Text(String),
}

impl Word {
    fn text(chars: &[WordChar]) -> String {
        chars.iter().map(|c| c.ch).collect()
    }

    fn is_wildcard(c: &WordChar) -> bool {
        !c.escaped && (c.ch == '*' || c.ch == '?')
    }

    /// `*` alone, `prefix*`, or plain text; any other wildcard is an error.
    fn value(self) -> Result<WordValue> {
        let Some((last, body)) = self.0.split_last() else {
            return Ok(WordValue::Text(String::new()));
        };
        if let Some(bad) = body.iter().find(|c| Self::is_wildcard(c)) {
            return Err(unsupported_wildcard(bad));
        }
        match (last.escaped, last.ch) {
            (false, '*') if body.is_empty() => Ok(WordValue::Star),
            (false, '*') => Ok(WordValue::Prefix(Self::text(body))),
            (false, '?') => Err(unsupported_wildcard(last)),
            _ => Ok(WordValue::Text(Self::text(&self.0))),
        }
    }

    /// A range bound or comparison value: `*` alone is `None` (unbounded),
    /// any other wildcard is an error.
    fn bound(self) -> Result<Option<String>> {
        if let [only] = self.0.as_slice() {
            if Self::is_wildcard(only) && only.ch == '*' {
                return Ok(None);
            }
        }
        if let Some(bad) = self.0.iter().find(|c| Self::is_wildcard(c)) {
            return Err(ParseError::new(
                "wildcards are not supported in ranges and comparisons",
                bad.position,
            ));
        }
        Ok(Some(Self::text(&self.0)))
    }
}

fn unsupported_wildcard(c: &WordChar) -> ParseError {
    ParseError::new(
        format!(
            "unsupported wildcard '{}' (only a trailing '*' is supported)",
            c.ch
        ),
        c.position,
    )
}

fn is_field_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '@'
}

fn is_field_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '@' | '-')
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    clauses: usize,
}

impl Parser {
    fn new(query: &str) -> Self {
        Parser {
            chars: query.chars().collect(),
            pos: 0,
            depth: 0,
            clauses: 0,
        }
    }

    // ----- grammar -----

    /// `query := ws* (or_expr ws*)? EOF`
    fn parse_query(mut self) -> Result<Query> {
        self.skip_ws();
        if self.at_end() {
            return Ok(Query::All);
        }
        let query = self.parse_or(None, None)?;
        self.skip_ws();
        match self.peek() {
            None => Ok(query),
            Some(c) => Err(unexpected(c, self.pos)),
        }
    }

    /// `or_expr := and_expr (("OR" | "||") and_expr)*`
    fn parse_or(&mut self, field: Option<&str>, after: Option<&'static str>) -> Result<Query> {
        let mut parts = vec![self.parse_and(field, after)?];
        loop {
            self.skip_ws();
            match self.keyword() {
                Some((Keyword::Or, text)) => {
                    self.pos += text.len();
                    parts.push(self.parse_and(field, Some(text))?);
                }
                _ => return Ok(Query::or(parts)),
            }
        }
    }

    /// `and_expr := unary ((("AND" | "&&") unary) | unary)*` — adjacency is AND.
    fn parse_and(&mut self, field: Option<&str>, after: Option<&'static str>) -> Result<Query> {
        let mut parts = vec![self.parse_unary(field, after)?];
        loop {
            self.skip_ws();
            let after = match self.keyword() {
                Some((Keyword::Or, _)) => break,
                Some((Keyword::And, text)) => {
                    self.pos += text.len();
                    Some(text)
                }
                _ if self.at_end() || self.peek() == Some(')') => break,
                _ => None,
            };
            parts.push(self.parse_unary(field, after)?);
        }
        Ok(Query::and(parts))
    }

    /// `unary := ("NOT" | "!" | "-" | "+")* clause` — handled in a loop, not by
    /// recursion, and an even number of negations cancels out.
    fn parse_unary(
        &mut self,
        field: Option<&str>,
        mut after: Option<&'static str>,
    ) -> Result<Query> {
        let mut negated = false;
        loop {
            self.skip_ws();
            match self.prefix_operator()? {
                Some((negates, text)) => {
                    negated ^= negates;
                    after = Some(text);
                }
                None => break,
            }
        }
        let clause = self.parse_clause(field, after)?;
        Ok(if negated { clause.negate() } else { clause })
    }

    /// Consumes one prefix operator, if there is one. `-` and `+` must be
    /// directly followed by their operand.
    fn prefix_operator(&mut self) -> Result<Option<(bool, &'static str)>> {
        if let Some((Keyword::Not, text)) = self.keyword() {
            self.pos += text.len();
            return Ok(Some((true, text)));
        }
        let (negates, text) = match self.peek() {
            Some('!') => (true, "!"),
            Some('-') => (true, "-"),
            Some('+') => (false, "+"),
            _ => return Ok(None),
        };
        self.pos += 1;
        if text != "!" && self.peek().is_none_or(char::is_whitespace) {
            return Err(ParseError::new(
                format!("expected a term right after '{text}'"),
                self.pos,
            ));
        }
        Ok(Some((negates, text)))
    }

    /// `clause := group | field ":" value | value-or-bare-word`
    ///
    /// `field` is the field of an enclosing `field:(...)` group, if any.
    fn parse_clause(&mut self, field: Option<&str>, after: Option<&'static str>) -> Result<Query> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Err(match after {
                Some(op) => ParseError::new(format!("expected a term after '{op}'"), start),
                None => ParseError::new("unexpected end of query", start),
            });
        };
        if let Some((_, text)) = self.keyword() {
            return Err(ParseError::new(format!("unexpected '{text}'"), start));
        }
        match c {
            '(' => self.parse_group(field),
            ')' => Err(unexpected(c, start)),
            ':' => Err(ParseError::new("expected a field name before ':'", start)),
            _ => match (self.field_prefix(), field) {
                (Some(name), _) => self.parse_field_value(&name),
                (None, Some(group_field)) => self.parse_value(group_field),
                (None, None) => self.parse_bare(),
            },
        }
    }

    /// `group := "(" or_expr ")"`, checking the depth limit before recursing.
    fn parse_group(&mut self, field: Option<&str>) -> Result<Query> {
        let open = self.pos;
        if self.depth >= MAX_DEPTH {
            return Err(ParseError::new(
                format!("query is nested more than {MAX_DEPTH} levels deep"),
                open,
            ));
        }
        self.pos += 1;
        self.depth += 1;
        let inner = self.parse_or(field, Some("("))?;
        self.depth -= 1;
        self.skip_ws();
        if self.peek() != Some(')') {
            return Err(ParseError::new("unclosed '('", open));
        }
        self.pos += 1;
        Ok(inner)
    }

    /// Consumes `name:` if the input starts with a field name and a colon.
    fn field_prefix(&mut self) -> Option<String> {
        if !self.peek().is_some_and(is_field_start) {
            return None;
        }
        let mut end = self.pos + 1;
        while self.chars.get(end).copied().is_some_and(is_field_char) {
            end += 1;
        }
        if self.chars.get(end) != Some(&':') {
            return None;
        }
        let name = self.chars.get(self.pos..end)?.iter().collect();
        self.pos = end + 1;
        Some(name)
    }

    /// What follows `field:` — whitespace is allowed before the value.
    fn parse_field_value(&mut self, field: &str) -> Result<Query> {
        let value_pos = self.pos;
        self.skip_ws();
        if !self.at_value_start() {
            return Err(expected_value(&format!("{field}:"), value_pos));
        }
        if self.peek() == Some('(') {
            return self.parse_group(Some(field));
        }
        self.parse_value(field)
    }

    /// A value for a known field: phrase, range, comparison, `*`, prefix or word.
    fn parse_value(&mut self, field: &str) -> Result<Query> {
        self.count_clause()?;
        let field = field.to_string();
        match self.peek() {
            Some('"') => Ok(Query::Phrase {
                field: Some(field),
                text: self.read_phrase()?,
            }),
            Some('[' | '{') => self.parse_range(field),
            Some('>' | '<') => self.parse_comparison(field),
            _ => Ok(match self.read_word(CLAUSE_STOPS)?.value()? {
                WordValue::Star => Query::Exists { field },
                WordValue::Prefix(prefix) => Query::Prefix {
                    field: Some(field),
                    prefix,
                },
                WordValue::Text(text) => Query::Term {
                    field: Some(field),
                    text,
                },
            }),
        }
    }

    /// A clause without a field: phrase, `*`, prefix or word on `message`.
    fn parse_bare(&mut self) -> Result<Query> {
        self.count_clause()?;
        match self.peek() {
            Some('"') => Ok(Query::Phrase {
                field: None,
                text: self.read_phrase()?,
            }),
            Some('[' | '{') => Err(ParseError::new(
                "a range needs a field name, as in 'status:[200 TO 299]'",
                self.pos,
            )),
            _ => Ok(match self.read_word(CLAUSE_STOPS)?.value()? {
                WordValue::Star => Query::All,
                WordValue::Prefix(prefix) => Query::Prefix {
                    field: None,
                    prefix,
                },
                WordValue::Text(text) => Query::Term { field: None, text },
            }),
        }
    }

    /// `range := ("[" | "{") bound "TO" bound ("]" | "}")`
    fn parse_range(&mut self, field: String) -> Result<Query> {
        let open = self.pos;
        let lower_inclusive = self.peek() == Some('[');
        self.pos += 1;
        let lower = self.read_bound(open)?;
        self.expect_to(open)?;
        let upper = self.read_bound(open)?;
        self.skip_ws();
        let upper_inclusive = match self.peek() {
            Some(']') => true,
            Some('}') => false,
            None => return Err(unterminated_range(open)),
            Some(_) => {
                return Err(ParseError::new(
                    "expected ']' or '}' to close the range",
                    self.pos,
                ))
            }
        };
        self.pos += 1;
        Ok(Query::Range {
            field,
            lower: to_bound(lower, lower_inclusive),
            upper: to_bound(upper, upper_inclusive),
        })
    }

    fn read_bound(&mut self, open: usize) -> Result<Option<String>> {
        self.skip_ws();
        match self.peek() {
            None => Err(unterminated_range(open)),
            Some('"') => Ok(Some(self.read_phrase()?)),
            Some(c) if BOUND_STOPS.contains(&c) || self.at_to() => {
                Err(ParseError::new("expected a range bound", self.pos))
            }
            Some(_) => self.read_word(BOUND_STOPS)?.bound(),
        }
    }

    fn expect_to(&mut self, open: usize) -> Result<()> {
        self.skip_ws();
        if self.at_end() {
            return Err(unterminated_range(open));
        }
        if !self.at_to() {
            return Err(ParseError::new("expected 'TO'", self.pos));
        }
        self.pos += 2;
        Ok(())
    }

    /// `comparison := (">=" | ">" | "<=" | "<") value`
    fn parse_comparison(&mut self, field: String) -> Result<Query> {
        let op = match (self.peek(), self.chars.get(self.pos + 1)) {
            (Some('>'), Some('=')) => ">=",
            (Some('>'), _) => ">",
            (Some('<'), Some('=')) => "<=",
            _ => "<",
        };
        self.pos += op.len();
        let value_pos = self.pos;
        self.skip_ws();
        let value = match self.peek() {
            Some('"') => self.read_phrase()?,
            Some('(') => return Err(expected_value(&format!("{field}:{op}"), value_pos)),
            _ if !self.at_value_start() => {
                return Err(expected_value(&format!("{field}:{op}"), value_pos))
            }
            _ => {
                let star = self.pos;
                self.read_word(CLAUSE_STOPS)?
                    .bound()?
                    .ok_or_else(|| ParseError::new("a comparison needs a value, not '*'", star))?
            }
        };
        let (lower, upper) = match op {
            ">=" => (Bound::Included(value), Bound::Unbounded),
            ">" => (Bound::Excluded(value), Bound::Unbounded),
            "<=" => (Bound::Unbounded, Bound::Included(value)),
            _ => (Bound::Unbounded, Bound::Excluded(value)),
        };
        Ok(Query::Range {
            field,
            lower,
            upper,
        })
    }

    // ----- lexical helpers -----

    /// Reads a `"..."` phrase starting at the current `"`; `\x` stands for `x`.
    fn read_phrase(&mut self) -> Result<String> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        while let Some(c) = self.bump() {
            match c {
                '"' => return Ok(text),
                '\\' => match self.bump() {
                    Some(escaped) => text.push(escaped),
                    None => break,
                },
                _ => text.push(c),
            }
        }
        Err(ParseError::new("unterminated phrase starting", start))
    }

    /// Reads an unquoted word up to whitespace or one of `stops`; `\x` stands for `x`.
    fn read_word(&mut self, stops: &[char]) -> Result<Word> {
        let start = self.pos;
        let mut chars = Vec::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || stops.contains(&c) {
                break;
            }
            let position = self.pos;
            self.pos += 1;
            let (ch, escaped) = if c == '\\' {
                let escaped = self
                    .bump()
                    .ok_or_else(|| ParseError::new("expected a character after '\\'", position))?;
                (escaped, true)
            } else {
                (c, false)
            };
            chars.push(WordChar {
                ch,
                escaped,
                position,
            });
        }
        if chars.is_empty() {
            return Err(match self.peek() {
                Some(c) => unexpected(c, start),
                None => ParseError::new("unexpected end of query", start),
            });
        }
        Ok(Word(chars))
    }

    /// The `AND`/`&&`/`OR`/`||`/`NOT` keyword at the current position, if any.
    fn keyword(&self) -> Option<(Keyword, &'static str)> {
        KEYWORDS
            .iter()
            .find(|(text, _)| self.starts_with(text) && self.is_boundary(self.pos + text.len()))
            .map(|&(text, keyword)| (keyword, text))
    }

    /// Whether the range keyword `TO` is at the current position.
    fn at_to(&self) -> bool {
        self.starts_with("TO")
            && self
                .chars
                .get(self.pos + 2)
                .is_none_or(|&c| c.is_whitespace() || BOUND_STOPS.contains(&c))
    }

    /// Whether a field value can start here (not the end, `)` or an operator).
    fn at_value_start(&self) -> bool {
        !self.at_end() && self.peek() != Some(')') && self.keyword().is_none()
    }

    fn starts_with(&self, text: &str) -> bool {
        text.chars()
            .enumerate()
            .all(|(i, c)| self.chars.get(self.pos + i) == Some(&c))
    }

    fn is_boundary(&self, pos: usize) -> bool {
        self.chars
            .get(pos)
            .is_none_or(|&c| c.is_whitespace() || CLAUSE_STOPS.contains(&c))
    }

    fn count_clause(&mut self) -> Result<()> {
        self.clauses += 1;
        if self.clauses > MAX_CLAUSES {
            return Err(ParseError::new(
                format!("query has more than {MAX_CLAUSES} clauses"),
                self.pos,
            ));
        }
        Ok(())
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }
}

fn to_bound(value: Option<String>, inclusive: bool) -> Bound<String> {
    match value {
        None => Bound::Unbounded,
        Some(v) if inclusive => Bound::Included(v),
        Some(v) => Bound::Excluded(v),
    }
}

fn unexpected(c: char, position: usize) -> ParseError {
    ParseError::new(format!("unexpected '{c}'"), position)
}

fn expected_value(after: &str, position: usize) -> ParseError {
    ParseError::new(format!("expected a value after '{after}'"), position)
}

fn unterminated_range(open: usize) -> ParseError {
    ParseError::new("unterminated range starting", open)
}
