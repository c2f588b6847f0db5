//! Archive endpoints: restores of archived events into search.
//!
//! - `POST /api/v1/archive/restore` `{"start","end","query"?,"request_s3_restore"?,"tier"?}`
//!   starts a restore (202 with its status);
//! - `GET /api/v1/archive/restores` lists them, `GET …/restores/{id}` shows one;
//! - `DELETE /api/v1/archive/restores/{id}` stops searching it and deletes it.

use super::{audited_change, json_ok, now_nanos, ApiError, Caller, State};
use crate::restore::{RestoreRequest, StartError, MAX_RANGE};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State as AxumState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sawmill_core::parse_time_param;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    start: String,
    end: Option<String>,
    query: Option<String>,
    #[serde(default)]
    request_s3_restore: bool,
    tier: Option<String>,
}

/// `POST /api/v1/archive/restore`.
pub async fn start(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    audited_change(&state, &caller, "restore.start", body, |body| {
        std::future::ready(start_restore(&state, &caller, &body))
    })
    .await
}

fn start_restore(state: &State, caller: &Caller, body: &[u8]) -> Result<Response, ApiError> {
    let b: Body = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid restore request: {e}; send JSON like {{\"start\":\"2026-01-01T00:00:00Z\",\"end\":\"2026-01-02T00:00:00Z\",\"query\":\"level:error\"}}"
        ))
    })?;
    let now = now_nanos();
    let start = parse_time_param(&b.start, now)
        .map_err(|e| ApiError::bad_request(format!("start: {e}")))?;
    let end = match &b.end {
        Some(t) => {
            parse_time_param(t, now).map_err(|e| ApiError::bad_request(format!("end: {e}")))?
        }
        None => now,
    };
    if end <= start {
        return Err(ApiError::bad_request("end must be after start"));
    }
    if (end - start) as u128 > MAX_RANGE.as_nanos() {
        return Err(ApiError::bad_request(format!(
            "a restore covers at most {} days: split the range",
            MAX_RANGE.as_secs() / 86_400
        )));
    }
    let ast = match b
        .query
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty() && *q != "*")
    {
        Some(q) => Some(
            sawmill_index::query::parse(q)
                .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?,
        ),
        None => None,
    };
    let bulk = match b.tier.as_deref() {
        None | Some("standard") | Some("Standard") => false,
        Some("bulk") | Some("Bulk") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "tier {other}: use standard or bulk"
            )))
        }
    };
    let req = RestoreRequest {
        tenant: caller.tenant.clone(),
        start,
        end,
        query: b.query.clone(),
        ast,
        request_s3_restore: b.request_s3_restore,
        bulk,
    };
    match state.restores.start(req) {
        Ok(status) => Ok((
            StatusCode::ACCEPTED,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            status.to_api_json().to_string(),
        )
            .into_response()),
        Err(e @ StartError::Busy) => {
            Err(ApiError::unavailable(e.to_string(), 10).because("restores_busy"))
        }
        Err(e @ StartError::Thread(_)) => Err(ApiError::internal(e.to_string())),
    }
}

/// `GET /api/v1/archive/restores`.
pub async fn list(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let all: Vec<_> = state
        .restores
        .list(&caller.tenant)
        .iter()
        .map(|s| s.to_api_json())
        .collect();
    json_ok(serde_json::json!({ "restores": all }).to_string())
}

/// `GET /api/v1/archive/restores/{id}`.
pub async fn get(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match state.restores.get(&caller.tenant, &id) {
        Some(s) => json_ok(s.to_api_json().to_string()),
        None => ApiError::new(StatusCode::NOT_FOUND, format!("no restore {id}")).into_response(),
    }
}

/// `DELETE /api/v1/archive/restores/{id}`.
pub async fn delete(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let restores = state.restores.clone();
    let id2 = id.clone();
    let tenant = caller.tenant.clone();
    let found = tokio::task::spawn_blocking(move || restores.delete(&tenant, &id2))
        .await
        .unwrap_or(false);
    state.audit(
        "restore.delete",
        &caller,
        serde_json::json!({ "id": id, "found": found }),
    );
    if found {
        json_ok(serde_json::json!({ "deleted": id }).to_string())
    } else {
        ApiError::new(StatusCode::NOT_FOUND, format!("no restore {id}")).into_response()
    }
}
