use std::ops::Bound::{self, Excluded, Included, Unbounded};

use super::{parse, Query, MAX_CLAUSES, MAX_DEPTH, MAX_QUERY_BYTES};

// ----- AST builders -----

fn term(text: &str) -> Query {
    Query::Term {
        field: None,
        text: text.into(),
    }
}

fn fterm(field: &str, text: &str) -> Query {
    Query::Term {
        field: Some(field.into()),
        text: text.into(),
    }
}

fn phrase(text: &str) -> Query {
    Query::Phrase {
        field: None,
        text: text.into(),
    }
}

fn fphrase(field: &str, text: &str) -> Query {
    Query::Phrase {
        field: Some(field.into()),
        text: text.into(),
    }
}

fn prefix(text: &str) -> Query {
    Query::Prefix {
        field: None,
        prefix: text.into(),
    }
}

fn fprefix(field: &str, text: &str) -> Query {
    Query::Prefix {
        field: Some(field.into()),
        prefix: text.into(),
    }
}

fn exists(field: &str) -> Query {
    Query::Exists {
        field: field.into(),
    }
}

fn inc(v: &str) -> Bound<String> {
    Included(v.into())
}

fn exc(v: &str) -> Bound<String> {
    Excluded(v.into())
}

fn range(field: &str, lower: Bound<String>, upper: Bound<String>) -> Query {
    Query::Range {
        field: field.into(),
        lower,
        upper,
    }
}

fn and(parts: Vec<Query>) -> Query {
    Query::And(parts)
}

fn or(parts: Vec<Query>) -> Query {
    Query::Or(parts)
}

fn not(q: Query) -> Query {
    Query::Not(Box::new(q))
}

fn check_ok(cases: Vec<(&str, Query)>) {
    for (input, expected) in cases {
        match parse(input) {
            Ok(actual) => assert_eq!(actual, expected, "query: {input:?}"),
            Err(e) => panic!("query {input:?} failed: {e}"),
        }
    }
}

fn check_err(cases: &[(&str, &str)]) {
    for &(input, expected) in cases {
        match parse(input) {
            Ok(q) => panic!("query {input:?} parsed as {q:?}, expected error {expected:?}"),
            Err(e) => {
                assert_eq!(e.to_string(), expected, "query: {input:?}");
                assert!(e.position <= input.chars().count(), "query: {input:?}");
            }
        }
    }
}

// ----- valid queries -----

#[test]
fn all() {
    check_ok(vec![
        ("", Query::All),
        ("   \t\n", Query::All),
        ("*", Query::All),
        (" * ", Query::All),
        ("(*)", Query::All),
    ]);
}

#[test]
fn words_and_phrases() {
    check_ok(vec![
        ("error", term("error")),
        ("  error  ", term("error")),
        ("\"connection reset\"", phrase("connection reset")),
        ("\"\"", phrase("")),
        ("\"a \\\"quoted\\\" b\"", phrase("a \"quoted\" b")),
        ("\"back\\\\slash\"", phrase("back\\slash")),
        ("\"no * or ? wildcards\"", phrase("no * or ? wildcards")),
        ("\"a:b (c)\"", phrase("a:b (c)")),
        ("héllo", term("héllo")),
        ("日本語", term("日本語")),
        ("and", term("and")),
        ("or", term("or")),
        ("not", term("not")),
        ("ANDROID", term("ANDROID")),
        ("NOTE", term("NOTE")),
        ("a&&b", term("a&&b")),
        ("foo-bar", term("foo-bar")),
        ("foo!", term("foo!")),
        ("<nil>", term("<nil>")),
        ("a]b}", term("a]b}")),
        ("fuzzy~2", term("fuzzy~2")),
    ]);
}

#[test]
fn bare_words_that_are_not_fields() {
    check_ok(vec![
        ("12:00:01", term("12:00:01")),
        ("10.0.0.7:8080", term("10.0.0.7:8080")),
        ("2024-01-01T10:00:00Z", term("2024-01-01T10:00:00Z")),
        ("foo/bar:baz", term("foo/bar:baz")),
        ("a\\:b", term("a:b")),
        ("\\:value", term(":value")),
    ]);
}

#[test]
fn escapes() {
    check_ok(vec![
        ("\\(a\\)", term("(a)")),
        ("\\\"quoted\\\"", term("\"quoted\"")),
        ("a\\ b", term("a b")),
        ("foo\\*", term("foo*")),
        ("\\*", term("*")),
        ("fo\\?o", term("fo?o")),
        ("\\-a", term("-a")),
        ("\\AND", term("AND")),
        ("c\\:\\\\windows", term("c:\\windows")),
        ("path:C\\:\\\\x", fterm("path", "C:\\x")),
        ("f\\*o*", prefix("f*o")),
        ("status:\\>5", fterm("status", ">5")),
        ("status:\\[1", fterm("status", "[1")),
    ]);
}

#[test]
fn fields() {
    check_ok(vec![
        ("level:error", fterm("level", "error")),
        ("http.status:500", fterm("http.status", "500")),
        ("aws.log_group:prod", fterm("aws.log_group", "prod")),
        ("@timestamp:today", fterm("@timestamp", "today")),
        ("x-request-id:abc", fterm("x-request-id", "abc")),
        ("_id:7", fterm("_id", "7")),
        ("k8s.pod-name:web", fterm("k8s.pod-name", "web")),
        ("url:http://x/y", fterm("url", "http://x/y")),
        ("time:12:00", fterm("time", "12:00")),
        ("client_ip:10.0.0.7", fterm("client_ip", "10.0.0.7")),
        ("path:/a/b", fterm("path", "/a/b")),
        ("temp:-5", fterm("temp", "-5")),
        ("flag:!x", fterm("flag", "!x")),
        ("a::b", fterm("a", ":b")),
        ("status: 500", fterm("status", "500")),
        ("user:\"Ada Lovelace\"", fphrase("user", "Ada Lovelace")),
        ("user:\"\"", fphrase("user", "")),
        ("status:*", exists("status")),
        ("host:web-*", fprefix("host", "web-")),
        ("http://x", fterm("http", "//x")),
        ("AND:x", fterm("AND", "x")),
    ]);
}

#[test]
fn prefixes() {
    check_ok(vec![
        ("time*", prefix("time")),
        ("f*", prefix("f")),
        ("NOT time*", not(prefix("time"))),
    ]);
}

#[test]
fn ranges() {
    check_ok(vec![
        (
            "status:[500 TO 599]",
            range("status", inc("500"), inc("599")),
        ),
        (
            "status:{500 TO 599}",
            range("status", exc("500"), exc("599")),
        ),
        (
            "status:[500 TO 599}",
            range("status", inc("500"), exc("599")),
        ),
        (
            "status:{500 TO 599]",
            range("status", exc("500"), inc("599")),
        ),
        ("status:[500 TO *]", range("status", inc("500"), Unbounded)),
        ("status:[* TO 500}", range("status", Unbounded, exc("500"))),
        ("status:[* TO *]", range("status", Unbounded, Unbounded)),
        ("status:[ 1   TO\t2 ]", range("status", inc("1"), inc("2"))),
        ("status: [1 TO 2]", range("status", inc("1"), inc("2"))),
        (
            "@timestamp:[2024-01-01T00:00:00Z TO now]",
            range("@timestamp", inc("2024-01-01T00:00:00Z"), inc("now")),
        ),
        (
            "t:[\"2024-01-01 00:00\" TO \"*\"]",
            range("t", inc("2024-01-01 00:00"), inc("*")),
        ),
        ("v:[a\\]b TO \\*]", range("v", inc("a]b"), inc("*"))),
        ("v:[-5 TO -1]", range("v", inc("-5"), inc("-1"))),
        (
            "v:[1 TO 2]x",
            and(vec![range("v", inc("1"), inc("2")), term("x")]),
        ),
    ]);
}

#[test]
fn comparisons() {
    check_ok(vec![
        ("status:>=500", range("status", inc("500"), Unbounded)),
        ("status:>500", range("status", exc("500"), Unbounded)),
        ("status:<500", range("status", Unbounded, exc("500"))),
        ("status:<=500", range("status", Unbounded, inc("500"))),
        ("status:>= 500", range("status", inc("500"), Unbounded)),
        ("latency:>-1.5", range("latency", exc("-1.5"), Unbounded)),
        (
            "@timestamp:>=2024-05-01T12:00:00Z",
            range("@timestamp", inc("2024-05-01T12:00:00Z"), Unbounded),
        ),
        (
            "t:<\"2024-01-01 12:00\"",
            range("t", Unbounded, exc("2024-01-01 12:00")),
        ),
        (
            "status:>=500 level:error",
            and(vec![
                range("status", inc("500"), Unbounded),
                fterm("level", "error"),
            ]),
        ),
    ]);
}

#[test]
fn boolean_operators() {
    check_ok(vec![
        ("a b", and(vec![term("a"), term("b")])),
        ("a AND b", and(vec![term("a"), term("b")])),
        ("a && b", and(vec![term("a"), term("b")])),
        ("a OR b", or(vec![term("a"), term("b")])),
        ("a || b", or(vec![term("a"), term("b")])),
        ("a b c", and(vec![term("a"), term("b"), term("c")])),
        ("a AND b && c", and(vec![term("a"), term("b"), term("c")])),
        ("a OR b || c", or(vec![term("a"), term("b"), term("c")])),
        ("a and b", and(vec![term("a"), term("and"), term("b")])),
        ("a AND(b)", and(vec![term("a"), term("b")])),
        ("(a)OR(b)", or(vec![term("a"), term("b")])),
        ("a OR\"b\"", or(vec![term("a"), phrase("b")])),
    ]);
}

#[test]
fn negation() {
    check_ok(vec![
        ("NOT a", not(term("a"))),
        ("-a", not(term("a"))),
        ("!a", not(term("a"))),
        ("! a", not(term("a"))),
        ("+a", term("a")),
        ("NOT(a)", not(term("a"))),
        ("NOT \"a b\"", not(phrase("a b"))),
        ("-level:debug", not(fterm("level", "debug"))),
        ("-status:*", not(exists("status"))),
        ("NOT *", not(Query::All)),
        ("a NOT b", and(vec![term("a"), not(term("b"))])),
        ("a AND NOT b", and(vec![term("a"), not(term("b"))])),
        ("a -b +c", and(vec![term("a"), not(term("b")), term("c")])),
        ("NOT NOT a", term("a")),
        ("--a", term("a")),
        ("!!!a", not(term("a"))),
        ("-(NOT a)", term("a")),
        ("-(a OR b)", not(or(vec![term("a"), term("b")]))),
        ("+-a", not(term("a"))),
    ]);
}

#[test]
fn precedence() {
    check_ok(vec![
        (
            "a b OR c",
            or(vec![and(vec![term("a"), term("b")]), term("c")]),
        ),
        (
            "a OR b c",
            or(vec![term("a"), and(vec![term("b"), term("c")])]),
        ),
        (
            "a OR b AND c",
            or(vec![term("a"), and(vec![term("b"), term("c")])]),
        ),
        (
            "a || b && c",
            or(vec![term("a"), and(vec![term("b"), term("c")])]),
        ),
        ("NOT a OR b", or(vec![not(term("a")), term("b")])),
        ("NOT a AND b", and(vec![not(term("a")), term("b")])),
        (
            "(a OR b) c",
            and(vec![or(vec![term("a"), term("b")]), term("c")]),
        ),
        (
            "(a OR b) AND NOT (c OR d)",
            and(vec![
                or(vec![term("a"), term("b")]),
                not(or(vec![term("c"), term("d")])),
            ]),
        ),
    ]);
}

#[test]
fn flattening() {
    check_ok(vec![
        ("(a b) c", and(vec![term("a"), term("b"), term("c")])),
        (
            "a (b (c d))",
            and(vec![term("a"), term("b"), term("c"), term("d")]),
        ),
        ("(a OR b) OR c", or(vec![term("a"), term("b"), term("c")])),
        ("a OR (b OR (c))", or(vec![term("a"), term("b"), term("c")])),
        ("((((a))))", term("a")),
        ("( a )", term("a")),
    ]);
}

#[test]
fn field_groups() {
    check_ok(vec![
        (
            "level:(error OR warn)",
            or(vec![fterm("level", "error"), fterm("level", "warn")]),
        ),
        (
            "level:(error warn)",
            and(vec![fterm("level", "error"), fterm("level", "warn")]),
        ),
        (
            "level: (error OR warn)",
            or(vec![fterm("level", "error"), fterm("level", "warn")]),
        ),
        (
            "msg:(\"a b\" -c d*)",
            and(vec![
                fphrase("msg", "a b"),
                not(fterm("msg", "c")),
                fprefix("msg", "d"),
            ]),
        ),
        (
            "status:([500 TO 599] OR 404 OR >=900)",
            or(vec![
                range("status", inc("500"), inc("599")),
                fterm("status", "404"),
                range("status", inc("900"), Unbounded),
            ]),
        ),
        ("status:(*)", exists("status")),
        (
            "a:(b (c OR d))",
            and(vec![
                fterm("a", "b"),
                or(vec![fterm("a", "c"), fterm("a", "d")]),
            ]),
        ),
        (
            "a:(b OR other:c)",
            or(vec![fterm("a", "b"), fterm("other", "c")]),
        ),
        ("a:(b) c", and(vec![fterm("a", "b"), term("c")])),
    ]);
}

#[test]
fn realistic_queries() {
    check_ok(vec![
        (
            "level:error AND service:checkout AND NOT \"health check\"",
            and(vec![
                fterm("level", "error"),
                fterm("service", "checkout"),
                not(phrase("health check")),
            ]),
        ),
        (
            "http.status:[500 TO *] OR (http.status:429 AND url:http://api/v1/*)",
            or(vec![
                range("http.status", inc("500"), Unbounded),
                and(vec![
                    fterm("http.status", "429"),
                    fprefix("url", "http://api/v1/"),
                ]),
            ]),
        ),
        (
            "error timeout -host:canary-*",
            and(vec![
                term("error"),
                term("timeout"),
                not(fprefix("host", "canary-")),
            ]),
        ),
    ]);
}

// ----- errors -----

#[test]
fn error_unexpected_tokens() {
    check_err(&[
        (")", "unexpected ')' at position 0"),
        ("a)", "unexpected ')' at position 1"),
        ("(a OR b) AND c)", "unexpected ')' at position 14"),
        ("()", "unexpected ')' at position 1"),
        ("AND", "unexpected 'AND' at position 0"),
        ("OR OR", "unexpected 'OR' at position 0"),
        ("&& a", "unexpected '&&' at position 0"),
        ("a OR OR b", "unexpected 'OR' at position 5"),
        ("a AND || b", "unexpected '||' at position 6"),
        ("NOT AND", "unexpected 'AND' at position 4"),
        ("a (OR b)", "unexpected 'OR' at position 3"),
    ]);
}

#[test]
fn error_missing_operands() {
    check_err(&[
        ("NOT", "expected a term after 'NOT' at position 3"),
        ("!", "expected a term after '!' at position 1"),
        ("a AND", "expected a term after 'AND' at position 5"),
        ("a OR ", "expected a term after 'OR' at position 5"),
        ("a ||", "expected a term after '||' at position 4"),
        ("(", "expected a term after '(' at position 1"),
        ("-", "expected a term right after '-' at position 1"),
        ("a - b", "expected a term right after '-' at position 3"),
        ("+ a", "expected a term right after '+' at position 1"),
        ("-)", "unexpected ')' at position 1"),
    ]);
}

#[test]
fn error_unbalanced() {
    check_err(&[
        ("(a", "unclosed '(' at position 0"),
        ("x (a OR (b)", "unclosed '(' at position 2"),
        ("level:(a OR b", "unclosed '(' at position 6"),
        ("\"abc", "unterminated phrase starting at position 0"),
        ("a \"b c", "unterminated phrase starting at position 2"),
        ("foo\"bar", "unterminated phrase starting at position 3"),
        ("msg:\"x\\\"", "unterminated phrase starting at position 4"),
        ("\"a\\", "unterminated phrase starting at position 0"),
    ]);
}

#[test]
fn error_fields() {
    check_err(&[
        ("status:", "expected a value after 'status:' at position 7"),
        (
            "status:   ",
            "expected a value after 'status:' at position 7",
        ),
        (
            "a status: OR b",
            "expected a value after 'status:' at position 9",
        ),
        (
            "status:AND",
            "expected a value after 'status:' at position 7",
        ),
        (
            "(status:)",
            "expected a value after 'status:' at position 8",
        ),
        (":value", "expected a field name before ':' at position 0"),
        ("a :b", "expected a field name before ':' at position 2"),
        ("status:()", "unexpected ')' at position 8"),
    ]);
}

#[test]
fn error_ranges() {
    check_err(&[
        (
            "[1 TO 5]",
            "a range needs a field name, as in 'status:[200 TO 299]' at position 0",
        ),
        (
            "{a TO b}",
            "a range needs a field name, as in 'status:[200 TO 299]' at position 0",
        ),
        ("v:[1 TO", "unterminated range starting at position 2"),
        ("v:[1 TO 5", "unterminated range starting at position 2"),
        ("v:[", "unterminated range starting at position 2"),
        ("v:[1", "unterminated range starting at position 2"),
        ("v:[1 5]", "expected 'TO' at position 5"),
        ("v:[1 to 5]", "expected 'TO' at position 5"),
        ("v:[1TO 5]", "expected 'TO' at position 7"),
        (
            "v:[1 TO 5 6]",
            "expected ']' or '}' to close the range at position 10",
        ),
        (
            "v:[1 TO 5)",
            "expected ']' or '}' to close the range at position 9",
        ),
        ("v:[]", "expected a range bound at position 3"),
        ("v:[TO 5]", "expected a range bound at position 3"),
        ("v:[1 TO ]", "expected a range bound at position 8"),
        ("v:[1 TO \"5]", "unterminated phrase starting at position 8"),
        (
            "v:[1* TO 5]",
            "wildcards are not supported in ranges and comparisons at position 4",
        ),
        (
            "v:[1 TO ?]",
            "wildcards are not supported in ranges and comparisons at position 8",
        ),
    ]);
}

#[test]
fn error_comparisons() {
    check_err(&[
        (
            "status:>",
            "expected a value after 'status:>' at position 8",
        ),
        (
            "status:>=",
            "expected a value after 'status:>=' at position 9",
        ),
        (
            "status:<= ",
            "expected a value after 'status:<=' at position 9",
        ),
        (
            "status:< )",
            "expected a value after 'status:<' at position 8",
        ),
        (
            "status:>(5)",
            "expected a value after 'status:>' at position 8",
        ),
        (
            "status:>OR",
            "expected a value after 'status:>' at position 8",
        ),
        (
            "status:>*",
            "a comparison needs a value, not '*' at position 8",
        ),
        (
            "status:>5*",
            "wildcards are not supported in ranges and comparisons at position 9",
        ),
    ]);
}

#[test]
fn error_wildcards() {
    let msg = |c: char, pos: usize| {
        format!("unsupported wildcard '{c}' (only a trailing '*' is supported) at position {pos}")
    };
    let cases = [
        ("*foo", msg('*', 0)),
        ("f*o", msg('*', 1)),
        ("fo?", msg('?', 2)),
        ("?", msg('?', 0)),
        ("**", msg('*', 0)),
        ("a b?c", msg('?', 3)),
        ("host:*web", msg('*', 5)),
        ("host:w?b*", msg('?', 6)),
    ];
    let cases: Vec<(&str, &str)> = cases.iter().map(|(q, m)| (*q, m.as_str())).collect();
    check_err(&cases);
}

#[test]
fn error_escapes() {
    check_err(&[
        ("\\", "expected a character after '\\' at position 0"),
        ("foo\\", "expected a character after '\\' at position 3"),
        ("a:b\\", "expected a character after '\\' at position 3"),
    ]);
}

// ----- limits -----

#[test]
fn length_limit() {
    let max = "a".repeat(MAX_QUERY_BYTES);
    assert_eq!(parse(&max), Ok(term(&max)));

    let long = "a".repeat(MAX_QUERY_BYTES + 1);
    let err = parse(&long).unwrap_err();
    assert_eq!(
        err.to_string(),
        "query is longer than the limit of 16384 bytes at position 16384"
    );

    // Multi-byte characters: the position is in characters, not bytes.
    let wide = "é".repeat(MAX_QUERY_BYTES / 2 + 1);
    let err = parse(&wide).unwrap_err();
    assert_eq!(err.position, MAX_QUERY_BYTES / 2);
}

#[test]
fn depth_limit() {
    let nested = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(parse(&nested(MAX_DEPTH)), Ok(term("a")));
    let err = parse(&nested(MAX_DEPTH + 1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "query is nested more than 64 levels deep at position 64"
    );

    // Field groups count as nesting too.
    let groups = "f:(".repeat(MAX_DEPTH + 1);
    let err = parse(&groups).unwrap_err();
    assert_eq!(err.position, MAX_DEPTH * 3 + 2);

    // As deep as the length limit allows: an error, not a stack overflow.
    let err = parse(&"(".repeat(MAX_QUERY_BYTES)).unwrap_err();
    assert_eq!(err.position, MAX_DEPTH);
    let err = parse(&"-(".repeat(MAX_QUERY_BYTES / 2)).unwrap_err();
    assert_eq!(err.position, MAX_DEPTH * 2 + 1);
}

#[test]
fn long_operator_chains_do_not_nest() {
    // Prefix operators are parsed in a loop and cancel out in pairs.
    let nots = format!("{}a", "NOT ".repeat(4000));
    assert_eq!(parse(&nots), Ok(term("a")));
    let bangs = format!("{}a", "!".repeat(MAX_QUERY_BYTES - 1));
    assert_eq!(parse(&bangs), Ok(not(term("a"))));
    let err = parse(&"!".repeat(MAX_QUERY_BYTES)).unwrap_err();
    assert_eq!(err.position, MAX_QUERY_BYTES);
}

#[test]
fn clause_limit() {
    let words = |n: usize| vec!["a"; n].join(" ");
    match parse(&words(MAX_CLAUSES)) {
        Ok(Query::And(parts)) => assert_eq!(parts.len(), MAX_CLAUSES),
        other => panic!("unexpected {other:?}"),
    }
    let err = parse(&words(MAX_CLAUSES + 1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "query has more than 1024 clauses at position {}",
            MAX_CLAUSES * 2
        )
    );

    // Clauses inside field groups count as well.
    let group = format!("f:({})", vec!["a"; MAX_CLAUSES + 1].join(" OR "));
    assert!(parse(&group).is_err());
}

// ----- property test -----

/// xorshift64*: a tiny deterministic PRNG, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn any_char(&mut self) -> char {
        // Mostly ASCII, sometimes anything (invalid scalar values are skipped).
        let limit = if self.below(4) == 0 { 0x11_0000 } else { 0x80 };
        char::from_u32(self.below(limit) as u32).unwrap_or('\u{fffd}')
    }
}

const FRAGMENTS: &[&str] = &[
    "a",
    "error",
    "status",
    "http.status",
    "@timestamp",
    "x-id",
    "500",
    "1.5",
    " ",
    "  ",
    "\t",
    "\u{3000}",
    ":",
    "::",
    "\"",
    "\\",
    "\\\"",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    " TO ",
    "TO",
    "*",
    "?",
    ">",
    ">=",
    "<",
    "<=",
    "-",
    "+",
    "!",
    "AND",
    " AND ",
    "OR",
    " OR ",
    "NOT",
    " NOT ",
    "&&",
    "||",
    "é",
    "日本",
    "\u{1F600}",
    "\u{0}",
    "\n",
    "~",
    "^",
    "/",
    ".",
];

const SEEDS: &[&str] = &[
    "level:error AND service:checkout AND NOT \"health check\"",
    "http.status:[500 TO *] OR (http.status:429 AND url:http://api/v1/*)",
    "status:{200 TO 300] -host:canary-* time*",
    "level:(error OR warn) @timestamp:>=2024-01-01T00:00:00Z",
    "a\\:b \"x \\\" y\" !c +d || e && f",
];

fn random_query(rng: &mut Rng) -> String {
    let mut query = String::new();
    for _ in 0..rng.below(24) {
        if rng.below(5) == 0 {
            query.push(rng.any_char());
        } else {
            query.push_str(rng.pick(FRAGMENTS));
        }
    }
    query
}

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for _ in 0..=rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(3) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => chars[at] = rng.any_char(),
            _ => {
                let fragment: Vec<char> = rng.pick(FRAGMENTS).chars().collect();
                chars.splice(at..at, fragment);
            }
        }
    }
    chars.into_iter().collect()
}

fn check_invariants(query: &str) {
    match parse(query) {
        Ok(ast) => assert_well_formed(&ast, query),
        Err(e) => {
            assert!(
                e.position <= query.chars().count(),
                "position {} out of range for {query:?}: {e}",
                e.position
            );
            assert!(!e.message.is_empty());
        }
    }
}

fn assert_well_formed(ast: &Query, query: &str) {
    match ast {
        Query::And(parts) => {
            assert!(parts.len() >= 2, "degenerate And for {query:?}");
            for part in parts {
                assert!(!matches!(part, Query::And(_)), "nested And for {query:?}");
                assert_well_formed(part, query);
            }
        }
        Query::Or(parts) => {
            assert!(parts.len() >= 2, "degenerate Or for {query:?}");
            for part in parts {
                assert!(!matches!(part, Query::Or(_)), "nested Or for {query:?}");
                assert_well_formed(part, query);
            }
        }
        Query::Not(inner) => {
            assert!(
                !matches!(**inner, Query::Not(_)),
                "double Not for {query:?}"
            );
            assert_well_formed(inner, query);
        }
        Query::Prefix { prefix, .. } => assert!(!prefix.is_empty()),
        _ => {}
    }
}

#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..20_000 {
        check_invariants(&random_query(&mut rng));
    }
    for _ in 0..20_000 {
        let seed = rng.pick(SEEDS);
        check_invariants(&mutate(&mut rng, seed));
    }
    for _ in 0..2_000 {
        let noise: String = (0..rng.below(64)).map(|_| rng.any_char()).collect();
        check_invariants(&noise);
    }
}

#[test]
fn every_prefix_of_a_valid_query_is_handled() {
    for seed in SEEDS {
        assert!(parse(seed).is_ok(), "seed {seed:?} must parse");
        let chars: Vec<char> = seed.chars().collect();
        for end in 0..=chars.len() {
            let head: String = chars[..end].iter().collect();
            let tail: String = chars[end..].iter().collect();
            check_invariants(&head);
            check_invariants(&tail);
        }
    }
}
