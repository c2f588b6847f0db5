//! The search index of sawmill: one tantivy index per UTC day, the query language, search,
//! histograms and retention.
//!
//! - [`schema`]: fields of a partition and the event → document mapping;
//! - [`partition`]: day partitions on disk;
//! - [`indexer`]: adds events in WAL order and commits them with their WAL position;
//! - [`query`]: the Lucene-like query language (parser and AST);
//! - [`compile`]: AST → tantivy query;
//! - [`matcher`]: tests one event against a query in memory, as the index would answer;
//! - [`search`]: search with exact totals and cursors, histograms;
//! - [`restored`]: indexes of events read back from the archive, attached for a while.

pub mod compile;
pub mod indexer;
pub mod matcher;
pub mod partition;
pub mod query;
pub mod restored;
pub mod schema;
pub mod search;

pub use indexer::{CommitReport, Indexer, IndexerConfig};
pub use partition::Partitions;
pub use search::{histogram, search, Cursor, Hit, Order, SearchError, SearchRequest, SearchResult};

use std::path::Path;

/// Errors of the index, with the file or operation they concern.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Tantivy {
        context: String,
        source: tantivy::TantivyError,
    },
    #[error("{what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl IndexError {
    pub(crate) fn io(path: &Path, op: &'static str, source: std::io::Error) -> IndexError {
        IndexError::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn tantivy(context: impl Into<String>, source: tantivy::TantivyError) -> IndexError {
        IndexError::Tantivy {
            context: context.into(),
            source,
        }
    }
}
