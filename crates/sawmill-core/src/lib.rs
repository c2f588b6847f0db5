//! The core of sawmill: the event model, ingest body decoding and
//! normalization.
//!
//! An ingest request body is decompressed ([`decompress`]), split into lines
//! and each line turned into a normalized [`Event`] ([`parse_body`]): the
//! timestamp, message, level and keyword fields are found under their usual
//! names and the rest is kept as attributes. [`Event::write_json`] is the one
//! JSON shape the rest of sawmill stores and returns, and
//! [`Event::from_normalized_json`] reads it back. The [`time`] helpers parse
//! and format the timestamps, search time parameters and durations.
//!
//! ```
//! use sawmill_core::{decompress, parse_body, BodyFormat, ContentEncoding, ParseContext};
//!
//! let body = br#"{"ts":1714564800,"msg":"disk full","lvl":"err","host":"db-1","disk":"/dev/sda"}"#;
//! let ctx = ParseContext::new(0);
//! let decoded = decompress(ContentEncoding::Identity, body, ctx.limits.max_decompressed_bytes)?;
//! let parsed = parse_body(&decoded, BodyFormat::Ndjson, &ctx);
//! let mut out = Vec::new();
//! parsed.events[0].write_json(&mut out);
//! assert_eq!(
//!     String::from_utf8_lossy(&out),
//!     r#"{"timestamp":"2024-05-01T12:00:00.000Z","level":"ERROR","message":"disk full","host":"db-1","disk":"/dev/sda"}"#
//! );
//! # Ok::<(), sawmill_core::DecodeError>(())
//! ```

pub mod answer;
pub mod decode;
pub mod durable;
pub mod error;
pub mod event;
pub mod hash;
pub mod normalize;
pub mod parse;
pub mod record;
pub mod redact;
pub mod retry;
pub mod tenant;
pub mod time;

pub use answer::IngestAnswer;
pub use decode::{decode_body, decompress, ContentEncoding, DecodeError, Limits};
pub use event::{Event, EventError};
pub use hash::{fnv1a64, Fnv1a64};
pub use normalize::{normalize_level, normalize_object, NormalizeError};
pub use parse::{
    parse_body, parse_json_line, parse_line, BodyFormat, InvalidLine, LineError, ParseContext,
    Parsed, MAX_LISTED_ERRORS,
};
pub use retry::RetryPolicy;
pub use time::{
    format_rfc3339, parse_duration, parse_rfc3339, parse_time_param, parse_timestamp_value,
    InvalidTime,
};
