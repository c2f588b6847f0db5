//! Indexes of events read back from the archive.
//!
//! A restore builds one index apart from the day partitions (same schema), optionally keeps
//! only the events matching a query, commits it and attaches it to [`Partitions`] for its
//! time span: the normal search API then sees its events until it is detached and deleted.
//! Restored events get ids with the top bit set, so they never collide with the WAL sequence
//! numbers of hot events.

use crate::compile::Compiler;
use crate::partition::{Partition, Partitions};
use crate::query::Query as Ast;
use crate::schema::to_document;
use crate::IndexError;
use sawmill_core::Event;
use std::path::Path;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query};
use tantivy::IndexWriter;

/// Memory of the writer of one restore.
const WRITER_MEMORY: usize = 64 << 20;

/// An index being filled with restored events.
pub struct RestoredIndex<'a> {
    partitions: &'a Partitions,
    partition: Partition,
    writer: IndexWriter,
    id_base: u64,
    added: u64,
}

impl<'a> RestoredIndex<'a> {
    /// Creates the index in `dir` (which must not hold one). `number` tells this restore's
    /// ids apart from other restores'.
    pub fn create(
        partitions: &'a Partitions,
        dir: &Path,
        number: u32,
    ) -> Result<RestoredIndex<'a>, IndexError> {
        let partition = partitions.create_detached(dir)?;
        let writer = partition
            .index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(|e| IndexError::tantivy(format!("open writer of {}", dir.display()), e))?;
        Ok(RestoredIndex {
            partitions,
            partition,
            writer,
            id_base: (1 << 63) | (u64::from(number) << 40),
            added: 0,
        })
    }

    /// Adds one event of `tenant`; `json` is its normalized JSON (the stored hit).
    pub fn add(&mut self, tenant: &str, event: &Event, json: &[u8]) -> Result<(), IndexError> {
        let fields = self.partitions.fields();
        let mut doc = to_document(fields, tenant, event, json);
        doc.add_u64(fields.id, self.id_base | (self.added & ((1 << 40) - 1)));
        self.writer
            .add_document(doc)
            .map_err(|e| IndexError::tantivy("add restored event", e))?;
        self.added += 1;
        Ok(())
    }

    /// Keeps only the events matching `query` (if any), commits and returns the index with
    /// the number of events it holds.
    pub fn finish(mut self, query: Option<&Ast>, now: i64) -> Result<(Partition, u64), IndexError> {
        if let Some(ast) = query {
            let compiled = Compiler::new(self.partitions.fields(), now)
                .compile(ast)
                .map_err(|e| IndexError::Internal(format!("restore query: {e}")))?;
            if let Some(q) = compiled {
                let drop: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
                    (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
                    (Occur::MustNot, q),
                ]));
                self.writer
                    .delete_query(drop)
                    .map_err(|e| IndexError::tantivy("filter restored events", e))?;
            }
        }
        self.writer
            .commit()
            .map_err(|e| IndexError::tantivy("commit restored events", e))?;
        self.writer
            .wait_merging_threads()
            .map_err(|e| IndexError::tantivy("finish restored index", e))?;
        self.partition
            .reader
            .reload()
            .map_err(|e| IndexError::tantivy("open restored index", e))?;
        let count = self.partition.reader.searcher().num_docs();
        Ok((self.partition, count))
    }
}
