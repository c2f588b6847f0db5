//! `POST /api/v1/ingest`: sawmill's own protocol, NDJSON or text lines, in front of the
//! [`Pipeline`](crate::pipeline).
//!
//! The answer is sent only after the WAL group commit that holds the batch has been fsynced.
//! Bad lines are reported one by one and never reject the good lines beside them; whole
//! requests are refused only for what makes the body unusable (size, type, encoding).

use super::receive::{content_encoding, count_outcome, idempotency_key, receive};
use super::{json_ok, ApiError, Caller, State};
use crate::pipeline::{DecodeContext, Ingested, Origin};
use axum::body::Body;
use axum::extract::{Extension, RawQuery, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use sawmill_core::{parse_body, BodyFormat};
use std::time::Instant;

#[derive(Default)]
struct Params {
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
    BodyFormat::from_content_type(text).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type '{text}': send application/x-ndjson (or application/json, one object per line) or text/plain (one event per line)"
            ),
        )
    })
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
    let result = ingest_request(&state, caller, query.as_deref(), &headers, body).await;
    count_outcome(&state, started, result)
}

async fn ingest_request(
    state: &State,
    caller: Caller,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let params = parse_params(query)?;
    let format = body_format(headers)?;
    let encoding = content_encoding(headers)?;
    let origin = Origin {
        tenant: caller.tenant,
        idempotency_key: idempotency_key(headers)?,
        default_source: params.source,
        wait_for: params.wait_for,
    };
    let body = receive(state, headers, body, encoding).await?;
    let decode =
        move |raw: &[u8], ctx: &mut DecodeContext<'_>| Ok(parse_body(raw, format, ctx.parse));
    match state.pipeline.ingest(origin, body, decode).await? {
        Ingested::Done(answer) => Ok(json_ok(answer.to_json())),
        Ingested::Replayed(answer) => {
            let mut r = json_ok(answer);
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(r)
        }
    }
}
