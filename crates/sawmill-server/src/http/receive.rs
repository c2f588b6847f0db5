//! What every HTTP ingest protocol shares in front of the [`Pipeline`](crate::pipeline):
//! reading a request body within its size and time limits (after the pipeline's admission,
//! holding a share of its memory budget), the `Content-Encoding` and `Idempotency-Key`
//! headers, refusals as HTTP answers, and the per-request metrics.

use super::{ApiError, State};
use crate::idempotency::validate_key;
use crate::pipeline::{Body as Received, Refusal};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use sawmill_core::ContentEncoding;
use std::time::{Duration, Instant};

/// After a body is found too large, up to this much more of it is read and discarded (for at
/// most `DRAIN_TIME`) so that clients that send their whole body before reading the answer
/// still receive the answer instead of a broken connection.
const DRAIN_BYTES: usize = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(10);

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        let status = match &refusal {
            Refusal::BadBody(_) => StatusCode::BAD_REQUEST,
            Refusal::Decompress(e) if e.too_large() => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Decompress(_) => StatusCode::BAD_REQUEST,
            Refusal::TooLarge(_) | Refusal::OverBurst { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::KeyInFlight => StatusCode::CONFLICT,
            Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            r if r.disk_full() => StatusCode::INSUFFICIENT_STORAGE,
            Refusal::Busy(_) | Refusal::DiskLow { .. } | Refusal::NotDurable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError {
            status,
            message: refusal.to_string(),
            retry_after: refusal.retry_after(),
            reason: Some(refusal.reason()),
        }
    }
}

/// The request's `Content-Encoding` (identity, gzip or zstd), else 415.
pub fn content_encoding(headers: &HeaderMap) -> Result<ContentEncoding, ApiError> {
    match headers.get(header::CONTENT_ENCODING) {
        None => Ok(ContentEncoding::Identity),
        Some(v) => ContentEncoding::parse(v.to_str().unwrap_or("?"))
            .map_err(|e| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string())),
    }
}

/// The request's `Idempotency-Key`, checked.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::bad_request("Idempotency-Key must be printable ASCII"))?;
    validate_key(key).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Some(key.to_string()))
}

/// Admits a request (indexing lag, WAL size, free disk), then reads its body within
/// `ingest.max_body_bytes` and `ingest.body_timeout`, holding a share of the in-flight memory.
pub async fn receive(
    state: &State,
    headers: &HeaderMap,
    body: Body,
    encoding: ContentEncoding,
) -> Result<Received, ApiError> {
    let limits = &state.config.ingest;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Err(refusal) = state.pipeline.admit() {
        if matches!(refusal, Refusal::DiskLow { .. }) && declared.is_none_or(|n| n <= DRAIN_BYTES) {
            // read what the client sends (within bounds) so that it gets the answer
            drain(body).await;
        }
        return Err(refusal.into());
    }
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        if declared.is_some_and(|n| n <= DRAIN_BYTES) {
            drain(body).await;
        }
        return Err(too_large(limits.max_body_bytes));
    }
    let permit = state
        .pipeline
        .reserve(declared.unwrap_or(limits.max_body_bytes))
        .await?;
    let bytes = read_body(body, declared, limits.max_body_bytes, limits.body_timeout).await?;
    state.pipeline.received(bytes.len());
    Ok(Received {
        bytes,
        encoding,
        permit,
    })
}

/// Reads a body of at most `limit` bytes within `timeout` (413 and 408 otherwise).
pub async fn read_body(
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

/// Counts an ingest answer in `sawmill_ingest_requests_total` (and refusals by reason) and,
/// for a success, its time in `sawmill_ingest_seconds`.
pub fn count_outcome(
    state: &State,
    started: Instant,
    result: Result<Response, ApiError>,
) -> Response {
    let response = match result {
        Ok(r) => {
            state
                .metrics
                .ingest
                .seconds
                .observe(started.elapsed().as_secs_f64());
            r
        }
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
        .ingest
        .requests
        .with_label_values(&[response.status().as_str()])
        .inc();
    response
}
