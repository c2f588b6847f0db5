//! The tantivy schema of a day partition and the mapping from an event to a document.
//!
//! | field        | type  | how it is indexed                                            |
//! |--------------|-------|--------------------------------------------------------------|
//! | `tenant`     | text  | raw, exact                                                   |
//! | `ts`         | i64   | fast: nanoseconds since the epoch                            |
//! | `id`         | u64   | fast: the event's WAL sequence number, unique and monotonic  |
//! | `level`, `service`, `host`, `source` | text | `keyword`: whole value, lower-cased |
//! | `message`    | text  | `default`: words, lower-cased, with positions for phrases    |
//! | `attributes` | json  | `keyword` for strings, numbers as numbers, dotted paths      |
//! | `doc`        | bytes | stored: the normalized event JSON returned as a hit          |

use sawmill_core::Event;
use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf};
use tantivy::schema::{
    BytesOptions, Field, IndexRecordOption, JsonObjectOptions, NumericOptions, Schema,
    TextFieldIndexing, TextOptions, Value, FAST,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, RemoveLongFilter, TextAnalyzer};
use tantivy::{Index, TantivyDocument};

/// Name of the analyzer for keyword fields and attribute strings.
pub const KEYWORD_TOKENIZER: &str = "sawmill_keyword";
/// Keyword values longer than this many bytes are stored but not searchable.
pub const MAX_KEYWORD_BYTES: usize = 4096;

/// The fields of the schema, resolved once.
#[derive(Clone, Debug)]
pub struct Fields {
    pub tenant: Field,
    pub ts: Field,
    pub id: Field,
    pub level: Field,
    pub service: Field,
    pub host: Field,
    pub source: Field,
    pub message: Field,
    pub attributes: Field,
    pub doc: Field,
}

/// Builds the schema every day partition uses.
pub fn build_schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let keyword = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(KEYWORD_TOKENIZER)
            .set_index_option(IndexRecordOption::Basic),
    );
    let raw = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic),
    );
    let message = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let attributes = JsonObjectOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(KEYWORD_TOKENIZER)
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_expand_dots_enabled();
    let fields = Fields {
        tenant: b.add_text_field("tenant", raw),
        ts: b.add_i64_field("ts", NumericOptions::default() | FAST),
        id: b.add_u64_field("id", NumericOptions::default() | FAST),
        level: b.add_text_field("level", keyword.clone()),
        service: b.add_text_field("service", keyword.clone()),
        host: b.add_text_field("host", keyword.clone()),
        source: b.add_text_field("source", keyword),
        message: b.add_text_field("message", message),
        attributes: b.add_json_field("attributes", attributes),
        doc: b.add_bytes_field("doc", BytesOptions::default().set_stored()),
    };
    (b.build(), fields)
}

/// Registers the analyzers the schema names on an opened or created index.
pub fn register_tokenizers(index: &Index) {
    let keyword = TextAnalyzer::builder(RawTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_KEYWORD_BYTES))
        .filter(LowerCaser)
        .build();
    index.tokenizers().register(KEYWORD_TOKENIZER, keyword);
}

/// Builds the tantivy document of one event, without its id (the WAL assigns it later; the
/// indexer adds it).
///
/// `json` is the event's normalized JSON (the stored hit).
pub fn to_document(fields: &Fields, tenant: &str, event: &Event, json: &[u8]) -> TantivyDocument {
    let mut doc = TantivyDocument::new();
    doc.add_text(fields.tenant, tenant);
    doc.add_i64(fields.ts, event.timestamp);
    for (field, value) in [
        (fields.level, &event.level),
        (fields.service, &event.service),
        (fields.host, &event.host),
        (fields.source, &event.source),
    ] {
        if let Some(value) = value {
            doc.add_text(field, value);
        }
    }
    if !event.message.is_empty() {
        doc.add_text(fields.message, &event.message);
    }
    if !event.attributes.is_empty() {
        doc.add_field_value(fields.attributes, AttrValue::Object(&event.attributes));
    }
    doc.add_bytes(fields.doc, json);
    doc
}

/// A borrowed view of an attribute value for tantivy's JSON indexing.
///
/// Unlike tantivy's own view of `serde_json::Value` it keeps strings as strings (no guessing
/// of dates), so what a user searches for is what the event holds.
#[derive(Clone, Copy, Debug)]
enum AttrValue<'a> {
    Object(&'a serde_json::Map<String, serde_json::Value>),
    Value(&'a serde_json::Value),
}

impl<'a> Value<'a> for AttrValue<'a> {
    type ArrayIter = std::iter::Map<
        std::slice::Iter<'a, serde_json::Value>,
        fn(&'a serde_json::Value) -> AttrValue<'a>,
    >;
    type ObjectIter = std::iter::Map<
        serde_json::map::Iter<'a>,
        fn((&'a String, &'a serde_json::Value)) -> (&'a str, AttrValue<'a>),
    >;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        fn object_entry<'a>(
            (key, value): (&'a String, &'a serde_json::Value),
        ) -> (&'a str, AttrValue<'a>) {
            (key.as_str(), AttrValue::Value(value))
        }
        let value = match self {
            AttrValue::Object(map) => {
                return ReferenceValue::Object(map.iter().map(object_entry as fn(_) -> _));
            }
            AttrValue::Value(value) => value,
        };
        match value {
            serde_json::Value::Null => ReferenceValueLeaf::Null.into(),
            serde_json::Value::Bool(b) => ReferenceValueLeaf::Bool(*b).into(),
            serde_json::Value::Number(n) => {
                if let Some(v) = n.as_i64() {
                    ReferenceValueLeaf::I64(v).into()
                } else if let Some(v) = n.as_u64() {
                    ReferenceValueLeaf::U64(v).into()
                } else {
                    // serde_json numbers without arbitrary precision are always one of the three
                    ReferenceValueLeaf::F64(n.as_f64().unwrap_or(f64::NAN)).into()
                }
            }
            serde_json::Value::String(s) => ReferenceValueLeaf::Str(s.as_str()).into(),
            serde_json::Value::Array(items) => {
                ReferenceValue::Array(items.iter().map(AttrValue::Value as fn(_) -> _))
            }
            serde_json::Value::Object(map) => {
                ReferenceValue::Object(map.iter().map(object_entry as fn(_) -> _))
            }
        }
    }
}
