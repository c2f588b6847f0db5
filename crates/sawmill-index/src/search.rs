//! Search and histograms over the day partitions.
//!
//! Every search runs the user's query, restricted to the caller's tenant and the time range,
//! over the partitions overlapping the range. One pass per segment counts every match (the
//! exact `total`) and keeps the best `limit` hits by (timestamp, id) beyond the cursor; the
//! per-partition winners are merged and only the final hits are read from the doc store.
//! The event id (its WAL sequence number) breaks timestamp ties, so a cursor of the last
//! (timestamp, id) pages without gaps or repeats while new events arrive.

use crate::compile::{ts_range_query, CompileError, Compiler};
use crate::partition::{Partition, Partitions};
use crate::query::Query as Ast;
use crate::schema::Fields;
use crate::IndexError;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Bound;
use std::sync::Arc;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::ColumnValues;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{
    DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader, TantivyDocument, Term,
};

/// Result order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Newest first.
    Desc,
    /// Oldest first.
    Asc,
}

/// The position after the last hit of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub ts: i64,
    pub id: u64,
}

/// A search over `[start, end)`.
pub struct SearchRequest<'a> {
    pub tenant: &'a str,
    pub query: &'a Ast,
    pub start: i64,
    pub end: i64,
    pub limit: usize,
    pub order: Order,
    pub cursor: Option<Cursor>,
    /// Resolves relative times inside the query.
    pub now: i64,
}

/// One matching event.
#[derive(Debug)]
pub struct Hit {
    pub ts: i64,
    pub id: u64,
    /// The normalized event JSON.
    pub json: Vec<u8>,
}

/// What a search found.
#[derive(Debug)]
pub struct SearchResult {
    /// Every matching event in the range (ignores the cursor).
    pub total: u64,
    pub hits: Vec<Hit>,
    /// Set when events remain after the last hit.
    pub next_cursor: Option<Cursor>,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Query(#[from] CompileError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Sort key: bigger is better (comes first), for either order.
fn sort_key(order: Order, ts: i64, id: u64) -> u128 {
    let key = (u128::from((ts as u64) ^ (1 << 63)) << 64) | u128::from(id);
    match order {
        Order::Desc => key,
        Order::Asc => !key,
    }
}

/// The query of one request on one partition: the user's query, the tenant and the time
/// range. Clauses every document of the partition satisfies are left out (a partition that
/// holds one tenant, a range that covers the partition), so a `*` over whole days reads the
/// timestamp column without intersecting anything. `None`: the partition cannot match.
fn partition_query(
    fields: &Fields,
    searcher: &Searcher,
    tenant: &str,
    user: Option<&dyn Query>,
    start: i64,
    end: i64,
) -> tantivy::Result<Option<Box<dyn Query>>> {
    let tenant_term = Term::from_field_text(fields.tenant, tenant);
    let tenant_docs = searcher.doc_freq(&tenant_term)?;
    if tenant_docs == 0 {
        return Ok(None);
    }
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if tenant_docs != searcher.num_docs() {
        clauses.push((
            Occur::Must,
            Box::new(TermQuery::new(tenant_term, IndexRecordOption::Basic)),
        ));
    }
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for segment in searcher.segment_readers() {
        if segment.num_docs() == 0 {
            continue;
        }
        let ts = segment.fast_fields().i64("ts")?;
        lo = lo.min(ts.min_value());
        hi = hi.max(ts.max_value());
    }
    if lo > hi || hi < start || lo >= end {
        return Ok(None);
    }
    if !(start <= lo && hi < end) {
        clauses.push((
            Occur::Must,
            Box::new(ts_range_query(
                fields.ts,
                Bound::Included(start),
                Bound::Excluded(end),
            )),
        ));
    }
    if let Some(user) = user {
        clauses.push((Occur::Must, user.box_clone()));
    }
    Ok(Some(match clauses.len() {
        0 => Box::new(AllQuery),
        1 => clauses
            .pop()
            .map(|(_, q)| q)
            .unwrap_or_else(|| Box::new(AllQuery)),
        _ => Box::new(BooleanQuery::new(clauses)),
    }))
}

/// Runs a search.
pub fn search(
    partitions: &Partitions,
    req: &SearchRequest<'_>,
) -> Result<SearchResult, SearchError> {
    let user = Compiler::new(partitions.fields(), req.now).compile(req.query)?;
    let cursor_key = req
        .cursor
        .map(|c| sort_key(req.order, c.ts, c.id))
        .unwrap_or(u128::MAX);
    let collector = TopCollector {
        limit: req.limit,
        order: req.order,
        cursor_key,
    };
    let mut total = 0u64;
    let mut remaining = 0u64;
    // (key, partition index, doc)
    let mut best: Vec<(u128, usize, DocAddress)> = Vec::new();
    let parts = partitions.overlapping(req.start, req.end);
    let searchers: Vec<_> = parts.iter().map(|p| p.reader.searcher()).collect();
    for (pi, searcher) in searchers.iter().enumerate() {
        let query = partition_query(
            partitions.fields(),
            searcher,
            req.tenant,
            user.as_deref(),
            req.start,
            req.end,
        )
        .map_err(|e| IndexError::tantivy("search", e))?;
        let Some(query) = query else { continue };
        if req.limit == 0 && req.cursor.is_none() {
            // only the total: tantivy counts from postings and doc counts where it can
            let n = searcher
                .search(query.as_ref(), &tantivy::collector::Count)
                .map_err(|e| IndexError::tantivy("count", e))?;
            total += n as u64;
            remaining += n as u64;
            continue;
        }
        let fruit = searcher
            .search(query.as_ref(), &collector)
            .map_err(|e| IndexError::tantivy("search", e))?;
        total += fruit.total;
        remaining += fruit.after_cursor;
        best.extend(fruit.top.into_iter().map(|(k, d)| (k, pi, d)));
    }
    best.sort_unstable_by_key(|b| Reverse(b.0));
    best.truncate(req.limit);
    let mut hits = Vec::with_capacity(best.len());
    for (_, pi, addr) in &best {
        hits.push(read_hit(
            partitions.fields().doc,
            &parts[*pi],
            &searchers[*pi],
            *addr,
        )?);
    }
    let next_cursor = if remaining > hits.len() as u64 {
        hits.last().map(|h| Cursor { ts: h.ts, id: h.id })
    } else {
        None
    };
    Ok(SearchResult {
        total,
        hits,
        next_cursor,
    })
}

fn read_hit(
    doc_field: tantivy::schema::Field,
    partition: &Arc<Partition>,
    searcher: &tantivy::Searcher,
    addr: DocAddress,
) -> Result<Hit, IndexError> {
    let doc: TantivyDocument = searcher.doc(addr).map_err(|e| {
        IndexError::tantivy(format!("read hit from {}", partition.dir.display()), e)
    })?;
    let seg = searcher.segment_reader(addr.segment_ord);
    let ff = seg.fast_fields();
    let ts = ff
        .i64("ts")
        .ok()
        .and_then(|c| c.first(addr.doc_id))
        .unwrap_or_default();
    let id = ff
        .u64("id")
        .ok()
        .and_then(|c| c.first(addr.doc_id))
        .unwrap_or_default();
    let json = doc
        .get_first(doc_field)
        .and_then(|v| v.as_bytes())
        .map(<[u8]>::to_vec)
        .ok_or_else(|| IndexError::Corrupt {
            what: partition.dir.display().to_string(),
            reason: format!("document {addr:?} has no stored event"),
        })?;
    Ok(Hit { ts, id, json })
}

/// Counts matches in `[start, end)` per bucket of `interval` nanoseconds, buckets starting at
/// `origin` (at or before `start`); returns one count per bucket up to `end`.
#[allow(clippy::too_many_arguments)]
pub fn histogram(
    partitions: &Partitions,
    tenant: &str,
    query: &Ast,
    start: i64,
    end: i64,
    origin: i64,
    interval: i64,
    now: i64,
) -> Result<Vec<u64>, SearchError> {
    let origin = origin.min(start);
    let buckets = if end > origin && interval > 0 {
        ((end - origin + interval - 1) / interval) as usize
    } else {
        0
    };
    let mut counts = vec![0u64; buckets];
    if buckets == 0 || end <= start {
        return Ok(counts);
    }
    let user = Compiler::new(partitions.fields(), now).compile(query)?;
    let collector = HistogramCollector {
        start: origin,
        interval,
        buckets,
    };
    for p in partitions.overlapping(start, end) {
        let searcher = p.reader.searcher();
        let query = partition_query(
            partitions.fields(),
            &searcher,
            tenant,
            user.as_deref(),
            start,
            end,
        )
        .map_err(|e| IndexError::tantivy("histogram", e))?;
        let Some(query) = query else { continue };
        let fruit = searcher
            .search(query.as_ref(), &collector)
            .map_err(|e| IndexError::tantivy("histogram", e))?;
        for (c, f) in counts.iter_mut().zip(fruit) {
            *c += f;
        }
    }
    Ok(counts)
}

fn ts_column(seg: &SegmentReader) -> tantivy::Result<Arc<dyn ColumnValues<i64>>> {
    Ok(seg.fast_fields().i64("ts")?.first_or_default_col(0))
}

fn id_column(seg: &SegmentReader) -> tantivy::Result<Arc<dyn ColumnValues<u64>>> {
    Ok(seg.fast_fields().u64("id")?.first_or_default_col(0))
}

/// Counts matches and keeps the best `limit` beyond the cursor.
struct TopCollector {
    limit: usize,
    order: Order,
    cursor_key: u128,
}

struct TopFruit {
    total: u64,
    after_cursor: u64,
    top: Vec<(u128, DocAddress)>,
}

struct TopSegment {
    segment: SegmentOrdinal,
    ts: Arc<dyn ColumnValues<i64>>,
    id: Arc<dyn ColumnValues<u64>>,
    limit: usize,
    order: Order,
    cursor_key: u128,
    total: u64,
    after_cursor: u64,
    heap: BinaryHeap<Reverse<(u128, DocId)>>,
    ts_buf: Vec<i64>,
    id_buf: Vec<u64>,
}

impl TopSegment {
    #[inline]
    fn offer(&mut self, doc: DocId, ts: i64, id: u64) {
        let key = sort_key(self.order, ts, id);
        if key >= self.cursor_key {
            return;
        }
        self.after_cursor += 1;
        if self.limit == 0 {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(Reverse((key, doc)));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if key > worst.0 .0 {
                *worst = Reverse((key, doc));
            }
        }
    }
}

impl Collector for TopCollector {
    type Fruit = TopFruit;
    type Child = TopSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<TopSegment> {
        Ok(TopSegment {
            segment,
            ts: ts_column(reader)?,
            id: id_column(reader)?,
            limit: self.limit,
            order: self.order,
            cursor_key: self.cursor_key,
            total: 0,
            after_cursor: 0,
            heap: BinaryHeap::with_capacity(self.limit.min(10_000) + 1),
            ts_buf: Vec::new(),
            id_buf: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<TopFruit>) -> tantivy::Result<TopFruit> {
        let mut total = 0;
        let mut after_cursor = 0;
        let mut top = Vec::new();
        for f in fruits {
            total += f.total;
            after_cursor += f.after_cursor;
            top.extend(f.top);
        }
        top.sort_unstable_by_key(|t| Reverse(t.0));
        top.truncate(self.limit);
        Ok(TopFruit {
            total,
            after_cursor,
            top,
        })
    }
}

impl SegmentCollector for TopSegment {
    type Fruit = TopFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.total += 1;
        let ts = self.ts.get_val(doc);
        let id = self.id.get_val(doc);
        self.offer(doc, ts, id);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.total += docs.len() as u64;
        let mut ts_buf = std::mem::take(&mut self.ts_buf);
        let mut id_buf = std::mem::take(&mut self.id_buf);
        ts_buf.resize(docs.len(), 0);
        id_buf.resize(docs.len(), 0);
        self.ts.get_vals(docs, &mut ts_buf);
        self.id.get_vals(docs, &mut id_buf);
        for ((&doc, &ts), &id) in docs.iter().zip(&ts_buf).zip(&id_buf) {
            self.offer(doc, ts, id);
        }
        self.ts_buf = ts_buf;
        self.id_buf = id_buf;
    }

    fn harvest(self) -> TopFruit {
        let segment = self.segment;
        TopFruit {
            total: self.total,
            after_cursor: self.after_cursor,
            top: self
                .heap
                .into_iter()
                .map(|Reverse((k, d))| (k, DocAddress::new(segment, d)))
                .collect(),
        }
    }
}

/// Counts matches per time bucket.
struct HistogramCollector {
    start: i64,
    interval: i64,
    buckets: usize,
}

struct HistogramSegment {
    ts: Arc<dyn ColumnValues<i64>>,
    start: i64,
    interval: i64,
    counts: Vec<u64>,
    buf: Vec<i64>,
}

impl HistogramSegment {
    #[inline]
    fn add(&mut self, ts: i64) {
        let i = ((ts - self.start) / self.interval) as usize;
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
    }
}

impl Collector for HistogramCollector {
    type Fruit = Vec<u64>;
    type Child = HistogramSegment;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<HistogramSegment> {
        Ok(HistogramSegment {
            ts: ts_column(reader)?,
            start: self.start,
            interval: self.interval,
            counts: vec![0; self.buckets],
            buf: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<u64>>) -> tantivy::Result<Vec<u64>> {
        let mut out = vec![0u64; self.buckets];
        for f in fruits {
            for (o, c) in out.iter_mut().zip(f) {
                *o += c;
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for HistogramSegment {
    type Fruit = Vec<u64>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let ts = self.ts.get_val(doc);
        self.add(ts);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(docs.len(), 0);
        self.ts.get_vals(docs, &mut buf);
        for &ts in &buf {
            self.add(ts);
        }
        self.buf = buf;
    }

    fn harvest(self) -> Vec<u64> {
        self.counts
    }
}
