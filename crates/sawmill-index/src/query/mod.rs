//! # Query language
//!
//! Sawmill searches use a Lucene-like syntax, as in Kibana, Quickwit or tantivy.
//!
//! | Query                                   | Finds records where…                                     |
//! |-----------------------------------------|----------------------------------------------------------|
//! | `timeout`                               | `message` contains the word `timeout`                    |
//! | `"connection reset"`                    | `message` contains the phrase                            |
//! | `level:error`                           | field `level` contains `error`                           |
//! | `user.name:"Ada Lovelace"`              | the field contains the phrase                            |
//! | `time*`, `host:web-*`                   | a word starts with `time` / `web-`                       |
//! | `status:*`                              | the field `status` exists                                |
//! | `*` (or an empty query)                 | anything                                                 |
//! | `status:[500 TO 599]`                   | `500 ≤ status ≤ 599`                                     |
//! | `status:{500 TO 599}`, `status:[500 TO 600}` | the same with exclusive (`{` `}`) ends              |
//! | `status:[500 TO *]`                     | `status ≥ 500` (`*` leaves an end open)                  |
//! | `status:>=500`, `>500`, `<500`, `<=500` | comparisons, on numbers and timestamps                   |
//! | `error timeout`, `error AND timeout`, `error && timeout` | both match                          |
//! | `error OR warn`, `error \|\| warn`      | either matches                                           |
//! | `NOT debug`, `-debug`, `!debug`         | `debug` does not match (alone: everything except it)     |
//! | `+error`                                | `error` matches (same as `error`)                        |
//! | `(error OR warn) AND db`                | grouping                                                 |
//! | `level:(error OR warn)`                 | the field applies to every term in the group             |
//!
//! **Operators** are upper-case (`and`, `or`, `not` are ordinary words).
//! `NOT`/`-`/`!` bind tightest, then `AND`, then `OR`: `a b OR c` means
//! `(a AND b) OR c`. Clauses next to each other must all match. `-` and `+` go
//! directly before their term, without a space.
//!
//! **Fields** are written `name:value`. A name starts with a letter, `_` or `@`
//! and continues with letters, digits, `_`, `.`, `@` and `-`: `http.status`,
//! `aws.log_group`, `@timestamp`, `x-request-id`. Space is allowed after the
//! colon. A value runs to the next space or parenthesis, so it may contain
//! colons, slashes and dots: `url:http://x/y`, `time:12:00`, `client_ip:10.0.0.7`.
//! A word that does not start with a field name is searched as is:
//! `12:00:01` and `10.0.0.7:8080` search `message`.
//!
//! **Quotes and escapes**: a backslash makes the next character ordinary, in
//! words and phrases alike: `\:`, `\"`, `\(`, `\*`, `\\`, `\ `. Quote or escape
//! words that would otherwise be read as syntax, like `"AND"`, `"[ERROR]"`,
//! `"-1"` or `"http://x"` in a message search.
//!
//! **Wildcards**: only a trailing `*` is supported (`time*`); `*` or `?`
//! anywhere else in a word is an error. Inside quotes `*` and `?` are ordinary.
//! `~` and `^` have no special meaning.
//!
//! **Limits**: a query is at most 16 KiB long, nests parentheses at most 64
//! deep and has at most 1024 clauses. Errors name the character position
//! (counting from 0) where the problem is: `unexpected ')' at position 14`.

mod ast;
mod parser;
#[cfg(test)]
mod tests;

pub use ast::Query;
pub use parser::{parse, ParseError, MAX_CLAUSES, MAX_DEPTH, MAX_QUERY_BYTES};
