//! `POST /api/v1/ingest`: decode, normalize, make durable, answer.
//!
//! The answer is sent only after the WAL group commit that holds the batch has been fsynced.
//! Bad lines are reported one by one and never reject the good lines beside them; whole
//! requests are refused only for what makes the body unusable (size, type, encoding).

use super::{json_ok, now_nanos, ApiError, Caller, State};
use crate::batch::Batch;
use crate::idempotency::{validate_key, Begin};
use crate::limits::{RateLimited, TenantPolicies};
use axum::body::{Body, Bytes};
use axum::extract::{Extension, RawQuery, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use sawmill_core::record::RecordHeader;
use sawmill_core::redact::Redactor;
use sawmill_core::Event;
use sawmill_core::{
    decompress, parse_body, BodyFormat, ContentEncoding, DecodeError, Limits, ParseContext,
};
use sawmill_index::schema::Fields;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

/// How long a request may wait for in-flight memory before it is refused.
const MEMORY_WAIT: Duration = Duration::from_secs(5);
/// How long a parsed batch may wait for room in the indexer's queue before ingest answers 503.
const INDEX_QUEUE_WAIT: Duration = Duration::from_secs(30);
/// How long `refresh=wait_for` holds the answer at most; past it the answer says
/// `"searchable": false` (the events are durable and will become searchable).
const WAIT_FOR_LIMIT: Duration = Duration::from_secs(600);
/// After a body is found too large, up to this much more of it is read and discarded (for at
/// most `DRAIN_TIME`) so that clients that send their whole body before reading the answer
/// still receive the 413 instead of a broken connection.
const DRAIN_BYTES: usize = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(super) struct Params {
    pub source: Option<String>,
    pub wait_for: bool,
}

fn parse_params(query: Option<&str>) -> Result<Params, ApiError> {
    let pairs = super::query_pairs(query)?;
    let mut params = Params::default();
    for (k, v) in pairs {
        match k.as_str() {
            "source" => {
                if v.is_empty() || v.len() > 1024 {
                    return Err(ApiError::bad_request("source must be 1 to 1024 bytes"));
                }
                params.source = Some(v)
            }
            "refresh" => {
                params.wait_for = match v.as_str() {
                    "wait_for" => true,
                    "false" | "" => false,
                    other => {
                        return Err(ApiError::bad_request(format!(
                        "refresh={other} is not supported; use refresh=wait_for or refresh=false"
                    )))
                    }
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter '{other}'; ingest takes source and refresh"
                )))
            }
        }
    }
    Ok(params)
}

fn body_format(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(BodyFormat::Ndjson);
    };
    let text = value.to_str().unwrap_or("");
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-ndjson" | "application/ndjson" | "application/json"
        | "application/jsonlines" | "application/x-jsonlines" | "application/jsonl" => {
            Ok(BodyFormat::Ndjson)
        }
        "text/plain" => Ok(BodyFormat::Text),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type '{text}': send application/x-ndjson (or application/json, one object per line) or text/plain (one event per line)"
            ),
        )),
    }
}

pub(super) fn content_encoding(headers: &HeaderMap) -> Result<ContentEncoding, ApiError> {
    match headers.get(header::CONTENT_ENCODING) {
        None => Ok(ContentEncoding::Identity),
        Some(v) => ContentEncoding::parse(v.to_str().unwrap_or("?"))
            .map_err(|e| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string())),
    }
}

/// Reserves `bytes` of the in-flight memory budget, waiting a little if it is exhausted.
async fn reserve(state: &State, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
    let kib = bytes.div_ceil(1024).clamp(1, u32::MAX as usize) as u32;
    let total = (state.config.ingest.max_inflight_bytes / 1024).max(1) as u32;
    let kib = kib.min(total);
    match tokio::time::timeout(MEMORY_WAIT, state.inflight.clone().acquire_many_owned(kib)).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(ApiError::unavailable(
            "the server is holding its limit of in-flight request data; retry shortly",
            1,
        )
        .because("memory")),
    }
}

pub(super) async fn read_body(
    body: Body,
    declared: Option<usize>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let read = async move {
        let mut body = body;
        let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::bad_request(format!("could not read the request body: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    drain(body).await;
                    return Err(too_large(limit));
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(buf))
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {}s",
                timeout.as_secs()
            ),
        )
    })?
}

/// Reads and discards what is left of a refused body, within bounds.
async fn drain(mut body: Body) {
    let discard = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                if seen > DRAIN_BYTES {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {limit} bytes: split it into smaller batches"),
    )
}

/// The handler.
pub async fn ingest(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let result = ingest_inner(&state, &caller.tenant, query, &headers, body, started).await;
    count_outcome(&state, result)
}

/// Counts an ingest answer in `sawmill_ingest_requests_total` (and refusals by reason).
pub(super) fn count_outcome(state: &State, result: Result<Response, ApiError>) -> Response {
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            let reason = e.reason.unwrap_or(match e.status {
                StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                StatusCode::SERVICE_UNAVAILABLE => "unavailable",
                StatusCode::REQUEST_TIMEOUT => "timeout",
                StatusCode::INSUFFICIENT_STORAGE => "disk_full",
                StatusCode::TOO_MANY_REQUESTS => "rate_limited",
                s if s.is_server_error() => "internal",
                _ => "bad_request",
            });
            state.metrics.refuse(reason);
            e.into_response()
        }
    };
    state
        .metrics
        .ingest_requests
        .with_label_values(&[response.status().as_str()])
        .inc();
    response
}

struct Prepared {
    answer: Vec<u8>,
    accepted: usize,
    rejected: usize,
    decompressed: usize,
    /// Events in which redaction replaced something.
    redacted: usize,
    batch: Option<Batch>,
    /// The events' matches against the alert rules.
    matches: Option<sawmill_alerts::Matches>,
}

async fn ingest_inner(
    state: &State,
    tenant: &str,
    query: Option<String>,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<Response, ApiError> {
    let params = parse_params(query.as_deref())?;
    let format = body_format(headers)?;
    let encoding = content_encoding(headers)?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key must be printable ASCII"))?;
            validate_key(k).map_err(ApiError::bad_request)?;
            Some(k.to_string())
        }
    };
    let (body, permit) = receive(state, headers, body).await?;
    let request = IngestRequest {
        tenant: tenant.to_string(),
        key,
        params,
        format,
        encoding,
        body,
        permit,
    };
    ingest_request(state, request, started).await
}

/// A request body received and ready to ingest.
pub(super) struct IngestRequest {
    pub tenant: String,
    pub key: Option<String>,
    pub params: Params,
    pub format: BodyFormat,
    pub encoding: ContentEncoding,
    pub body: Bytes,
    /// The body's share of the in-flight memory budget.
    pub permit: OwnedSemaphorePermit,
}

/// Admission (indexing lag, WAL size, free disk) and the body, read within its limits.
pub(super) async fn receive(
    state: &State,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, OwnedSemaphorePermit), ApiError> {
    let limits = &state.config.ingest;
    let lag = state
        .wal
        .durable_seq()
        .saturating_sub(state.index.searchable_seq());
    if lag > limits.max_index_lag_events {
        return Err(ApiError::unavailable(
            format!("indexing is {lag} events behind; retry shortly"),
            2,
        )
        .because("index_lag"));
    }
    let wal_bytes = state.wal.disk_usage().bytes;
    if wal_bytes > state.config.wal.max_bytes {
        return Err(ApiError::unavailable(
            format!(
                "the write-ahead log holds {wal_bytes} bytes not yet archived (limit {}); retry when the archive catches up",
                state.config.wal.max_bytes
            ),
            30,
        )
        .because("wal_full"));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Err(free) = state.disk.check() {
        // read what the client sends (within bounds) so that it gets the answer
        if declared.is_none_or(|n| n <= DRAIN_BYTES) {
            drain(body).await;
        }
        return Err(ApiError {
            retry_after: Some(30),
            ..ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "the server's disk is nearly full ({free} bytes free, below its threshold of {}): nothing was ingested; retry later",
                    state.disk.threshold()
                ),
            )
        }
        .because("disk_low"));
    }
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        if declared.is_some_and(|n| n <= DRAIN_BYTES) {
            drain(body).await;
        }
        return Err(too_large(limits.max_body_bytes));
    }
    let body_permit = reserve(state, declared.unwrap_or(limits.max_body_bytes)).await?;
    let body = read_body(body, declared, limits.max_body_bytes, limits.body_timeout).await?;
    state
        .metrics
        .ingest_bytes
        .with_label_values(&["received"])
        .inc_by(body.len() as u64);
    Ok((body, body_permit))
}

/// Ingests a received body: idempotency, then decoding, parsing and the WAL in a task of its
/// own.
pub(super) async fn ingest_request(
    state: &State,
    request: IngestRequest,
    started: Instant,
) -> Result<Response, ApiError> {
    let IngestRequest {
        tenant,
        key,
        params,
        format,
        encoding,
        body,
        permit: body_permit,
    } = request;
    let now = now_nanos();
    if let Some(k) = &key {
        match state.idempotency.begin(&tenant, k, now) {
            Begin::New => {}
            Begin::Done(answer) => {
                let mut r = json_ok(answer);
                r.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                return Ok(r);
            }
            Begin::InFlight => {
                return Err(ApiError {
                    retry_after: Some(1),
                    ..ApiError::new(
                        StatusCode::CONFLICT,
                        "a request with this Idempotency-Key is still being processed; retry after it answers",
                    )
                }
                .because("idempotency_in_flight"))
            }
        }
    }
    // The work runs in its own task: a client that disconnects drops this handler, but not
    // the ingest it started, so the idempotency key is always completed or released (else a
    // retry would find it in flight forever, and the body's memory stays reserved until done).
    let task = {
        let state = state.clone();
        let tenant = tenant.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let result = ingest_body(
                &state,
                &tenant,
                key.clone(),
                params,
                format,
                encoding,
                (body, body_permit),
                now,
            )
            .await;
            if let Some(k) = &key {
                match &result {
                    Ok((_, answer)) => state.idempotency.complete(&tenant, k, answer.clone(), now),
                    Err(_) => state.idempotency.abort(&tenant, k),
                }
            }
            result
        })
    };
    let result = match task.await {
        Ok(result) => result,
        Err(e) => {
            if let Some(k) = &key {
                state.idempotency.abort(&tenant, k);
            }
            return Err(ApiError::internal(format!("the ingest task failed: {e}")));
        }
    };
    let (response, _) = result?;
    state
        .metrics
        .ingest_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(response)
}

#[allow(clippy::too_many_arguments)]
async fn ingest_body(
    state: &State,
    tenant: &str,
    key: Option<String>,
    params: Params,
    format: BodyFormat,
    encoding: ContentEncoding,
    (body, body_permit): (Bytes, OwnedSemaphorePermit),
    now: i64,
) -> Result<(Response, Vec<u8>), ApiError> {
    let cfg = &state.config.ingest;
    let limits = Limits {
        max_body_bytes: cfg.max_body_bytes,
        max_decompressed_bytes: cfg.max_decompressed_bytes,
        max_line_bytes: cfg.max_line_bytes,
        max_fields: cfg.max_fields,
        max_depth: cfg.max_depth,
    };
    // decompressed bodies and their parsed events need memory of their own: parsed events
    // take about three times their text
    let text_bytes = if matches!(encoding, ContentEncoding::Identity) {
        body.len()
    } else {
        (body.len() * 8).min(cfg.max_decompressed_bytes)
    };
    // one reservation for the body and its decoding: the body's own is given back first, as
    // holding it while waiting for more could leave every request waiting on the others
    drop(body_permit);
    let _permit = reserve(state, body.len() + text_bytes * 4).await?;
    let ctx = ParseContext {
        received_at: now,
        default_source: params.source,
        limits,
    };
    let tenant_owned = tenant.to_string();
    let partitions = state.partitions.clone();
    let alerts = state.alerts.clone();
    let tenants = state.tenants.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        prepare(
            &body,
            encoding,
            format,
            &ctx,
            tenant_owned,
            key,
            partitions.fields(),
            &alerts,
            &tenants,
        )
    })
    .await
    .map_err(|e| ApiError::internal(format!("ingest worker failed: {e}")))??;
    let m = &state.metrics;
    m.ingest_bytes
        .with_label_values(&["decompressed"])
        .inc_by(prepared.decompressed as u64);
    m.ingest_events
        .with_label_values(&["rejected"])
        .inc_by(prepared.rejected as u64);
    if prepared.redacted > 0 {
        m.redacted_events
            .with_label_values(&[tenant])
            .inc_by(prepared.redacted as u64);
    }
    let answer = prepared.answer;
    let Some(batch) = prepared.batch else {
        return Ok((json_ok(answer.clone()), answer));
    };
    let count = prepared.accepted as u32;
    let matches = prepared.matches;
    let Batch { payload, docs, .. } = batch;
    let Some(room) = state.index.reserve(payload.len(), INDEX_QUEUE_WAIT).await else {
        return Err(ApiError::unavailable(
            "indexing is behind and its queue is full; retry shortly",
            2,
        )
        .because("index_lag"));
    };
    let (tx, rx) = oneshot::channel();
    let index = state.index.clone();
    let alerts = state.alerts.clone();
    state.wal.append(
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
    let appended = match rx.await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            let disk_full = e.io_kind() == Some(std::io::ErrorKind::StorageFull);
            tracing::error!(error = %e, "wal append failed");
            let status = if disk_full {
                StatusCode::INSUFFICIENT_STORAGE
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            return Err(ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    status,
                    format!("the events could not be made durable ({e}); nothing was ingested: retry later"),
                )
            });
        }
        Err(_) => {
            return Err(ApiError::unavailable(
                "the server is shutting down; retry",
                5,
            ))
        }
    };
    m.ingest_events
        .with_label_values(&["accepted"])
        .inc_by(u64::from(count));
    if params.wait_for {
        let waited = tokio::time::timeout(
            WAIT_FOR_LIMIT,
            state.index.wait_searchable(appended.end_seq),
        )
        .await;
        if waited.is_err() {
            tracing::warn!(seq = appended.end_seq, "refresh=wait_for timed out");
            let mut late: serde_json::Value =
                serde_json::from_slice(&answer).map_err(|e| ApiError::internal(e.to_string()))?;
            late["searchable"] = serde_json::Value::Bool(false);
            return Ok((json_ok(late.to_string()), answer));
        }
    }
    Ok((json_ok(answer.clone()), answer))
}

/// Decompresses, checks the tenant's rate, parses, redacts, matches against the alert rules
/// and encodes a body (runs on the blocking pool).
#[allow(clippy::too_many_arguments)]
fn prepare(
    body: &[u8],
    encoding: ContentEncoding,
    format: BodyFormat,
    ctx: &ParseContext,
    tenant: String,
    key: Option<String>,
    fields: &Fields,
    alerts: &sawmill_alerts::AlertHandle,
    tenants: &TenantPolicies,
) -> Result<Prepared, ApiError> {
    let raw =
        decompress(encoding, body, ctx.limits.max_decompressed_bytes).map_err(|e| match e {
            DecodeError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            }
            other => ApiError::bad_request(other.to_string()),
        })?;
    let policy = tenants.get(&tenant);
    match tenants.charge(&policy, raw.len()) {
        Ok(()) => {}
        Err(RateLimited::Wait(wait)) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            return Err(ApiError {
                retry_after: Some(secs),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("tenant '{tenant}' is over its ingest rate; nothing was ingested: retry after {secs}s or send less"),
                )
            }
            .because("rate_limited"));
        }
        Err(RateLimited::LargerThanBurst { burst_bytes }) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "this request decodes to {} bytes, more than tenant '{tenant}' may send at once ({burst_bytes} bytes): split it into smaller batches",
                    raw.len()
                ),
            )
            .because("rate_limited"));
        }
    }
    let mut parsed = parse_body(&raw, format, ctx);
    if let Some(r) = &policy.redactor {
        // error messages quote the bad value, and the answer is stored (WAL, idempotency)
        for e in parsed.errors.iter_mut() {
            if let std::borrow::Cow::Owned(text) = r.redact_str(&e.error) {
                e.error = text;
            }
        }
    }
    let redacted = match &policy.redactor {
        Some(r) => parsed
            .events
            .iter_mut()
            .map(|e| usize::from(redact_event(r, e)))
            .sum(),
        None => 0,
    };
    let accepted = parsed.events.len();
    let answer = serde_json::to_vec(&serde_json::json!({
        "accepted": accepted,
        "rejected": parsed.rejected,
        "errors": parsed.errors.iter().map(|e| serde_json::json!({"line": e.line, "error": e.error})).collect::<Vec<_>>(),
    }))
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let matches = alerts.match_events(&tenant, &parsed.events);
    let batch = (accepted > 0).then(|| {
        Batch::encode(
            RecordHeader {
                tenant,
                received_at: ctx.received_at,
                idempotency_key: key,
                answer: answer.clone(),
            },
            parsed.events,
            fields,
        )
    });
    Ok(Prepared {
        answer,
        accepted,
        rejected: parsed.rejected,
        decompressed: raw.len(),
        redacted,
        batch,
        matches,
    })
}

/// Redacts every text of an event in place; true when anything was replaced.
fn redact_event(redactor: &Redactor, event: &mut Event) -> bool {
    let mut changed = false;
    let mut text = |s: &mut String| {
        if let std::borrow::Cow::Owned(r) = redactor.redact_str(s) {
            *s = r;
            changed = true;
        }
    };
    text(&mut event.message);
    for s in [
        &mut event.level,
        &mut event.service,
        &mut event.host,
        &mut event.source,
    ]
    .into_iter()
    .flatten()
    {
        text(s);
    }
    for value in event.attributes.values_mut() {
        changed |= redactor.redact_value(value);
    }
    changed
}
