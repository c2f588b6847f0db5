//! The ingest pipeline: the one path from a received request body to durable, indexed events,
//! whatever protocol carried it.
//!
//! A protocol (`/api/v1/ingest`, `/api/v1/firehose`, …) is a thin decoder in front of it: it
//! reads its request, says who sends it ([`Origin`]: tenant, idempotency key, default source)
//! and how its decompressed body becomes events ([`Decode`]). The pipeline does the rest, in
//! the same order for every protocol, so limits, idempotency, redaction, alert matching and
//! metrics apply to all of them by construction:
//!
//! 1. admission before the body is read ([`Pipeline::admit`]): indexing lag, WAL size, free
//!    disk; then the body holds a share of the in-flight memory budget ([`Pipeline::reserve`]);
//! 2. idempotency: a key answered before is answered again, a key in flight is refused;
//! 3. on the blocking pool ([`prepare`]): decompression within `max_decompressed_bytes`, the
//!    tenant's rate charged with the decompressed size, the protocol's decoding, redaction,
//!    alert-rule matching, the WAL record and the index documents;
//! 4. room in the indexer's queue, the WAL append and its group-commit fsync;
//! 5. after the fsync, the documents go to the indexer and the matches to the alert worker;
//!    only then is the request answered ([`Ingested`]).
//!
//! The work from step 2 on runs in a task of its own: a client that hangs up does not cancel
//! an ingest half-way, so its idempotency key is always completed or released.

mod prepare;
mod refusal;

pub use refusal::{Busy, Refusal};

use crate::idempotency::{Begin, IdempotencyStore};
use crate::index_worker::IndexHandle;
use crate::limits::{DiskGuard, TenantPolicies};
use crate::metrics::Metrics;
use bytes::Bytes;
use prepare::Prepared;
use sawmill_alerts::AlertHandle;
use sawmill_core::{ContentEncoding, IngestAnswer, Limits, ParseContext, Parsed};
use sawmill_index::Partitions;
use sawmill_wal::{Appended, Wal};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// How long a request may wait for in-flight memory before it is refused.
const MEMORY_WAIT: Duration = Duration::from_secs(5);
/// How long a prepared batch may wait for room in the indexer's queue before it is refused.
const INDEX_QUEUE_WAIT: Duration = Duration::from_secs(30);
/// How long `wait_for` holds the answer at most; past it the answer says `"searchable":
/// false` (the events are durable and will become searchable).
const WAIT_FOR_LIMIT: Duration = Duration::from_secs(600);

/// The limits the pipeline applies.
#[derive(Clone, Debug)]
pub struct PipelineLimits {
    pub decode: Limits,
    /// Bytes of request data held at once, in all requests.
    pub max_inflight_bytes: usize,
    /// Acknowledged but not yet searchable events beyond which ingest is refused.
    pub max_index_lag_events: u64,
    /// WAL bytes (not yet archived) beyond which ingest is refused.
    pub max_wal_bytes: u64,
}

/// The stages a request goes through, shared by every protocol.
pub struct Pipeline {
    limits: PipelineLimits,
    wal: Arc<Wal>,
    index: IndexHandle,
    alerts: AlertHandle,
    partitions: Arc<Partitions>,
    tenants: Arc<TenantPolicies>,
    idempotency: Arc<IdempotencyStore>,
    metrics: Arc<Metrics>,
    disk: Arc<DiskGuard>,
    /// Request data held at once, in KiB permits.
    inflight: Arc<Semaphore>,
}

/// Who sent a request, and how it is to be ingested.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub tenant: String,
    /// A retried request with the same key (within a day) is answered as the first time and
    /// ingests nothing.
    pub idempotency_key: Option<String>,
    /// The `source` of events that carry none.
    pub default_source: Option<String>,
    /// Hold the answer until the events are searchable.
    pub wait_for: bool,
}

/// A request body received within the limits, holding its share of the memory budget.
pub struct Body {
    pub bytes: Bytes,
    pub encoding: ContentEncoding,
    pub permit: MemoryPermit,
}

/// A share of the in-flight memory budget, given back when dropped.
pub struct MemoryPermit(#[allow(dead_code)] OwnedSemaphorePermit);

/// How a protocol turns its (decompressed) body into events. Runs on the blocking pool.
///
/// Every event the decoder accepts is ingested; each one it rejects is counted in
/// [`Parsed::rejected`] and described in [`Parsed::errors`]. A body it cannot read at all is
/// refused with a [`Refusal`] (nothing is ingested).
pub trait Decode: Send + 'static {
    fn decode(self, raw: &[u8], ctx: &mut DecodeContext<'_>) -> Result<Parsed, Refusal>;
}

impl<F> Decode for F
where
    F: FnOnce(&[u8], &mut DecodeContext<'_>) -> Result<Parsed, Refusal> + Send + 'static,
{
    fn decode(self, raw: &[u8], ctx: &mut DecodeContext<'_>) -> Result<Parsed, Refusal> {
        self(raw, ctx)
    }
}

/// What a decoder gets besides the body.
pub struct DecodeContext<'a> {
    /// The receive time, default source and limits events are parsed with.
    pub parse: &'a ParseContext,
    meter: prepare::Meter<'a>,
    settle: Option<Settle>,
}

/// Called once a request has ended: `true` when its events are durable (or it had none to
/// append), `false` when it failed after decoding.
pub type Settle = Box<dyn FnOnce(bool) + Send>;

impl DecodeContext<'_> {
    /// Charges the tenant's rate for `bytes` more than the decompressed body (already
    /// charged): a format that holds compressed data of its own (gzip records, snappy blocks)
    /// charges what they expand to before parsing it.
    pub fn charge(&mut self, bytes: usize) -> Result<(), Refusal> {
        if bytes == 0 {
            return Ok(());
        }
        self.meter.charge(bytes)
    }

    /// Asks to be told how the request ends: a decoder that reserves something for its
    /// events (document ids) keeps it when they are durable and gives it back otherwise.
    /// The pipeline calls `settle` exactly once, even when the client has hung up.
    pub fn on_settled(&mut self, settle: impl FnOnce(bool) + Send + 'static) {
        self.settle = Some(Box::new(settle));
    }
}

/// The answer to an ingested request.
#[derive(Debug)]
pub enum Ingested {
    /// The accepted events are durable (and searchable, when `wait_for` was asked and the
    /// answer says nothing else).
    Done(IngestAnswer),
    /// A request with the same idempotency key was answered this way before: nothing was
    /// ingested now. The answer as it was first sent.
    Replayed(Vec<u8>),
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        limits: PipelineLimits,
        wal: Arc<Wal>,
        index: IndexHandle,
        alerts: AlertHandle,
        partitions: Arc<Partitions>,
        tenants: Arc<TenantPolicies>,
        idempotency: Arc<IdempotencyStore>,
        metrics: Arc<Metrics>,
        disk: Arc<DiskGuard>,
    ) -> Pipeline {
        let inflight = Arc::new(Semaphore::new((limits.max_inflight_bytes / 1024).max(1)));
        Pipeline {
            limits,
            wal,
            index,
            alerts,
            partitions,
            tenants,
            idempotency,
            metrics,
            disk,
            inflight,
        }
    }

    pub fn limits(&self) -> &PipelineLimits {
        &self.limits
    }

    /// Checks, before a body is read, that the server can take it: indexing is not too far
    /// behind, the WAL is within its bound, the disk has room.
    pub fn admit(&self) -> Result<(), Refusal> {
        let lag = self
            .wal
            .durable_seq()
            .saturating_sub(self.index.searchable_seq());
        if lag > self.limits.max_index_lag_events {
            return Err(Refusal::Busy(Busy::IndexLag { events: lag }));
        }
        let wal_bytes = self.wal.disk_usage().bytes;
        if wal_bytes > self.limits.max_wal_bytes {
            return Err(Refusal::Busy(Busy::WalFull {
                bytes: wal_bytes,
                limit: self.limits.max_wal_bytes,
            }));
        }
        if let Err(free) = self.disk.check() {
            return Err(Refusal::DiskLow {
                free,
                threshold: self.disk.threshold(),
            });
        }
        Ok(())
    }

    /// Reserves `bytes` of the in-flight memory budget (at most all of it), waiting a little
    /// when it is exhausted.
    pub async fn reserve(&self, bytes: usize) -> Result<MemoryPermit, Refusal> {
        let total = (self.limits.max_inflight_bytes / 1024).max(1) as u32;
        let kib = bytes.div_ceil(1024).clamp(1, u32::MAX as usize) as u32;
        let wait = self.inflight.clone().acquire_many_owned(kib.min(total));
        match tokio::time::timeout(MEMORY_WAIT, wait).await {
            Ok(Ok(permit)) => Ok(MemoryPermit(permit)),
            _ => Err(Refusal::Busy(Busy::Memory)),
        }
    }

    /// Counts a received body.
    pub fn received(&self, bytes: usize) {
        self.metrics
            .ingest
            .bytes
            .with_label_values(&["received"])
            .inc_by(bytes as u64);
    }

    /// Ingests one request: answers a known idempotency key again, else decodes the body with
    /// `decoder` and makes its events durable.
    pub async fn ingest(
        self: &Arc<Self>,
        origin: Origin,
        body: Body,
        decoder: impl Decode,
    ) -> Result<Ingested, Refusal> {
        let now = crate::http::now_nanos();
        if let Some(key) = &origin.idempotency_key {
            match self.idempotency.begin(&origin.tenant, key, now) {
                Begin::New => {}
                Begin::Done(answer) => return Ok(Ingested::Replayed(answer)),
                Begin::InFlight => return Err(Refusal::KeyInFlight),
            }
        }
        let pipeline = self.clone();
        let task = tokio::spawn(async move {
            let tenant = origin.tenant.clone();
            let key = origin.idempotency_key.clone();
            let result = pipeline.run(origin, body, decoder, now).await;
            if let Some(k) = &key {
                match &result {
                    Ok((_, stored)) => {
                        pipeline
                            .idempotency
                            .complete(&tenant, k, stored.clone(), now)
                    }
                    Err(_) => pipeline.idempotency.abort(&tenant, k),
                }
            }
            result.map(|(answer, _)| answer)
        });
        match task.await {
            Ok(result) => result.map(Ingested::Done),
            Err(e) => {
                // the task panicked or was cancelled before it could settle its key
                Err(Refusal::Internal(format!("the ingest task failed: {e}")))
            }
        }
    }

    /// Steps 3 to 5; the answer as sent, and as stored for the idempotency key.
    async fn run(
        &self,
        origin: Origin,
        body: Body,
        decoder: impl Decode,
        now: i64,
    ) -> Result<(IngestAnswer, Vec<u8>), Refusal> {
        let Body {
            bytes,
            encoding,
            permit,
        } = body;
        // Decompressed bodies and their parsed events need memory of their own (parsed events
        // take about three times their text). One reservation covers the body and its
        // decoding: the body's own share is given back first, as holding it while waiting
        // for more could leave every request waiting on the others.
        let text_bytes = match encoding {
            ContentEncoding::Identity => bytes.len(),
            _ => (bytes.len() * 8).min(self.limits.decode.max_decompressed_bytes),
        };
        drop(permit);
        let _permit = self.reserve(bytes.len() + text_bytes * 4).await?;
        let ctx = ParseContext {
            received_at: now,
            default_source: origin.default_source.clone(),
            limits: self.limits.decode,
        };
        let prepared = {
            let fields = self.partitions.clone();
            let alerts = self.alerts.clone();
            let tenants = self.tenants.clone();
            let tenant = origin.tenant.clone();
            let key = origin.idempotency_key.clone();
            tokio::task::spawn_blocking(move || {
                let input = prepare::Input {
                    body: &bytes,
                    encoding,
                    ctx: &ctx,
                    tenant,
                    key,
                };
                prepare::prepare(input, decoder, fields.fields(), &alerts, &tenants)
            })
            .await
            .map_err(|e| Refusal::Internal(format!("the ingest worker failed: {e}")))??
        };
        self.count_prepared(&origin.tenant, &prepared);
        let Prepared {
            mut answer,
            stored,
            batch,
            matches,
            settle,
            ..
        } = prepared;
        let Some(batch) = batch else {
            if let Some(settle) = settle {
                settle(true);
            }
            return Ok((answer, stored));
        };
        let appended = self.append(batch, matches).await;
        if let Some(settle) = settle {
            settle(appended.is_ok());
        }
        let appended = appended?;
        answer.first_seq = Some(appended.first_seq);
        self.metrics
            .ingest
            .events
            .with_label_values(&["accepted"])
            .inc_by(answer.accepted);
        if origin.wait_for && !self.wait_searchable(appended.end_seq).await {
            answer.searchable = Some(false);
        }
        Ok((answer, stored))
    }

    fn count_prepared(&self, tenant: &str, prepared: &Prepared) {
        let m = &self.metrics;
        m.ingest
            .bytes
            .with_label_values(&["decompressed"])
            .inc_by(prepared.decompressed as u64);
        m.ingest
            .events
            .with_label_values(&["rejected"])
            .inc_by(prepared.answer.rejected);
        if prepared.redacted > 0 {
            m.ingest
                .redacted_events
                .with_label_values(&[tenant])
                .inc_by(prepared.redacted as u64);
        }
    }

    /// Appends a batch to the WAL once the indexer's queue has room for it, and hands its
    /// documents and alert matches over after the fsync.
    async fn append(
        &self,
        batch: crate::batch::Batch,
        matches: Option<sawmill_alerts::Matches>,
    ) -> Result<Appended, Refusal> {
        let crate::batch::Batch { payload, docs, .. } = batch;
        let count = docs.len() as u32;
        let Some(room) = self.index.reserve(payload.len(), INDEX_QUEUE_WAIT).await else {
            return Err(Refusal::Busy(Busy::IndexQueue));
        };
        let (tx, rx) = oneshot::channel();
        let index = self.index.clone();
        let alerts = self.alerts.clone();
        self.wal.append(
            payload,
            count,
            Box::new(move |result| {
                if let Ok(appended) = &result {
                    index.offer(appended.first_seq, docs, room);
                    alerts.offer(appended.first_seq, u64::from(count), matches);
                }
                let _ = tx.send(result);
            }),
        );
        match rx.await {
            Ok(Ok(appended)) => Ok(appended),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "wal append failed");
                Err(Refusal::NotDurable(e))
            }
            Err(_) => Err(Refusal::Busy(Busy::ShuttingDown)),
        }
    }

    /// Waits until events below `end_seq` are searchable; false when it gave up.
    async fn wait_searchable(&self, end_seq: u64) -> bool {
        let waited =
            tokio::time::timeout(WAIT_FOR_LIMIT, self.index.wait_searchable(end_seq)).await;
        if waited.is_err() {
            tracing::warn!(seq = end_seq, "refresh=wait_for timed out");
        }
        waited.is_ok()
    }
}

#[cfg(test)]
mod tests;
