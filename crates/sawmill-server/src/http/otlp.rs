//! `POST /v1/logs`: OTLP logs over HTTP, so OpenTelemetry SDKs and the Collector's `otlphttp`
//! exporter ship to sawmill directly. A thin decoder ([`sawmill_protocols::otlp`]) in front
//! of the one ingest [`Pipeline`](crate::pipeline): rate limits, redaction, limits, WAL,
//! index and alerts apply as to `/api/v1/ingest`.
//!
//! The body is an `ExportLogsServiceRequest` in protobuf (`application/x-protobuf`) or
//! OTLP/JSON (`application/json`), identity, gzip or zstd; any other type is 415. The answer,
//! sent once the events are durable, is an `ExportLogsServiceResponse` in the request's
//! format, with `partial_success` when records were rejected one by one (over a limit). Every
//! other answer, authorization's included, carries a `google.rpc.Status` in the request's
//! format (JSON for a request of neither type); 429 and 503 keep their `Retry-After`, which the
//! SDKs honour.
//!
//! OTLP has no idempotency key, and the `Idempotency-Key` header is not read here: a
//! Collector's configured headers go with every request, and one fixed key would make every
//! export after the first a replay.

use super::receive::{content_encoding, count_outcome, receive};
use super::{ApiError, Caller, State};
use crate::pipeline::{DecodeContext, Ingested, Origin, Refusal};
use axum::body::Body;
use axum::extract::{Extension, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sawmill_core::IngestAnswer;
use sawmill_protocols::otlp::{decode_logs, encode_response, encode_status, Format, OtlpError};
use serde_json::Value;
use std::time::Instant;

/// The largest error answer read back to be rewritten as a `Status`.
const MAX_ERROR_BODY: usize = 64 << 10;

/// The handler (its error answers, like the authorization's, are rewritten by [`reshape`]).
pub async fn logs(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let result = export(&state, caller, &headers, body).await;
    count_outcome(&state, started, result)
}

fn request_format(headers: &HeaderMap) -> Option<Format> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Format::from_content_type)
}

async fn export(
    state: &State,
    caller: Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(format) = request_format(headers) else {
        let shown = headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Type '{shown}': OTLP/HTTP logs are application/x-protobuf or application/json"),
        ));
    };
    let encoding = content_encoding(headers)?;
    let origin = Origin {
        tenant: caller.tenant,
        idempotency_key: None,
        default_source: None,
        wait_for: false,
    };
    let body = receive(state, headers, body, encoding).await?;
    let decode = move |raw: &[u8], ctx: &mut DecodeContext<'_>| {
        decode_logs(raw, format, ctx.parse).map_err(|e| match e {
            OtlpError::TooLarge { .. } => Refusal::TooLarge(e.to_string()),
            other => Refusal::BadBody(other.to_string()),
        })
    };
    let answer = match state.pipeline.ingest(origin, body, decode).await? {
        Ingested::Done(answer) => answer,
        // not reached without an idempotency key; the stored answer is an IngestAnswer
        Ingested::Replayed(stored) => serde_json::from_slice(&stored).unwrap_or_default(),
    };
    Ok(success(&answer, format))
}

fn success(answer: &IngestAnswer, format: Format) -> Response {
    let body = encode_response(answer.rejected, &answer.errors, format);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    r
}

/// Middleware around the route, authorization included: every answer that is not a success
/// becomes a `google.rpc.Status` in the request's format, keeping `Retry-After` and
/// `WWW-Authenticate`.
pub async fn reshape(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let format = request_format(request.headers()).unwrap_or(Format::Json);
    let response = next.run(request).await;
    let status = response.status();
    if status.is_success() {
        return response;
    }
    let kept = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    let mut r = (status, encode_status(status.as_u16(), &message, format)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    for name in [header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(v) = kept.get(&name) {
            r.headers_mut().insert(name, v.clone());
        }
    }
    r
}
