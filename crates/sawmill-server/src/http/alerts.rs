//! Alerting endpoints.
//!
//! - `GET /api/v1/alerts`: rules, alert instances and their states, last evaluation, errors;
//! - `POST /api/v1/alerts/reload`: reloads the rules file (a bad file keeps the old rules: 400);
//! - `POST /api/v1/silences` `{"matchers":["rule=x","host=~web-.*"],"ends_at"|"duration",
//!   "starts_at"?,"created_by","comment"}`, `GET /api/v1/silences`,
//!   `DELETE /api/v1/silences/{id}`.

use super::{audited_change, json_ok, now_nanos, ApiError, Caller, State};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sawmill_alerts::silence::MAX_SILENCES;
use sawmill_alerts::{parse_matcher, Silence};
use sawmill_core::{format_rfc3339, parse_duration, parse_time_param};
use serde::Deserialize;

/// `GET /api/v1/alerts`.
pub async fn list(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
) -> Response {
    json_ok(state.alerts.status(caller.tenant_filter()).to_string())
}

/// `POST /api/v1/alerts/reload`.
pub async fn reload(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let result = state.notifiers.reload(&state.alerts).await;
    state.audit(
        "alerts.reload",
        &caller,
        serde_json::json!({ "ok": result.is_ok(), "error": result.as_ref().err().map(|e| e.to_string()) }),
    );
    match result {
        Ok(summary) => json_ok(serde_json::json!({"reloaded": summary}).to_string()),
        Err(e) => ApiError::bad_request(format!("rules not reloaded, the old rules stay: {e}"))
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    matchers: Vec<String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    duration: Option<String>,
    created_by: String,
    #[serde(default)]
    comment: String,
}

/// Tenants see and delete their own silences only; operators see every silence.
fn visible(caller: &Caller, silence: &Silence) -> bool {
    silence.visible_to(caller.tenant_filter())
}

fn silence_json(s: &Silence, now: i64) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "matchers": s.matchers.iter().map(|m| format!("{}{}{}", m.name, serde_json::to_value(m.op).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(), m.value)).collect::<Vec<_>>(),
        "starts_at": format_rfc3339(s.starts_at),
        "ends_at": format_rfc3339(s.ends_at),
        "created_by": s.created_by,
        "comment": s.comment,
        "created_at": format_rfc3339(s.created_at),
        "active": s.active(now),
        "tenant": s.tenant,
    })
}

/// `POST /api/v1/silences`.
pub async fn create_silence(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    audited_change(&state, &caller, "silence.create", body, |body| {
        create(&state, &caller, body)
    })
    .await
}

async fn create(state: &State, caller: &Caller, body: Bytes) -> Result<Response, ApiError> {
    let b: NewSilence = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid silence: {e}; send JSON like {{\"matchers\":[\"rule=checkout-errors\"],\"duration\":\"2h\",\"created_by\":\"ada\",\"comment\":\"deploy\"}}"
        ))
    })?;
    if b.matchers.is_empty() {
        return Err(ApiError::bad_request(
            "a silence needs at least one matcher, like rule=checkout-errors",
        ));
    }
    if b.created_by.trim().is_empty() {
        return Err(ApiError::bad_request("created_by: say who silences"));
    }
    let matchers = b
        .matchers
        .iter()
        .map(|m| parse_matcher(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let now = now_nanos();
    let starts_at = match &b.starts_at {
        Some(t) => parse_time_param(t, now)
            .map_err(|e| ApiError::bad_request(format!("starts_at: {e}")))?,
        None => now,
    };
    let ends_at = match (&b.ends_at, &b.duration) {
        (Some(t), None) => {
            parse_time_param(t, now).map_err(|e| ApiError::bad_request(format!("ends_at: {e}")))?
        }
        (None, Some(d)) => {
            let d =
                parse_duration(d).map_err(|e| ApiError::bad_request(format!("duration: {e}")))?;
            starts_at.saturating_add(d.as_nanos() as i64)
        }
        _ => {
            return Err(ApiError::bad_request(
                "give either ends_at or duration (like \"2h\")",
            ))
        }
    };
    if ends_at <= starts_at || ends_at <= now {
        return Err(ApiError::bad_request(
            "the silence must end after it starts, in the future",
        ));
    }
    let silence = Silence {
        id: format!("s{now:x}"),
        matchers,
        starts_at,
        ends_at,
        created_by: b.created_by.trim().chars().take(128).collect(),
        comment: b.comment.chars().take(1024).collect(),
        created_at: now,
        tenant: caller.tenant_filter().map(str::to_string),
    };
    let json = silence_json(&silence, now);
    let snapshot = {
        let mut all = state.alerts.shared.silences.write();
        all.prune(now);
        if all.list.len() >= MAX_SILENCES {
            return Err(ApiError::unavailable(
                format!("{MAX_SILENCES} silences exist: delete some first"),
                60,
            ));
        }
        all.list.push(silence);
        all.clone()
    };
    let dir = state.config.data_dir.join("alerts");
    tokio::task::spawn_blocking(move || crate::alerting::save_silences(&dir, &snapshot))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
        .into_response())
}

/// `GET /api/v1/silences`.
pub async fn list_silences(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let now = now_nanos();
    let all: Vec<serde_json::Value> = state
        .alerts
        .shared
        .silences
        .read()
        .list
        .iter()
        .filter(|s| visible(&caller, s))
        .map(|s| silence_json(s, now))
        .collect();
    json_ok(serde_json::json!({ "silences": all }).to_string())
}

/// `DELETE /api/v1/silences/{id}`.
pub async fn delete_silence(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    state.audit("silence.delete", &caller, serde_json::json!({ "id": id }));
    let snapshot = {
        let mut all = state.alerts.shared.silences.write();
        let before = all.list.len();
        all.list.retain(|s| s.id != id || !visible(&caller, s));
        if all.list.len() == before {
            return ApiError::new(StatusCode::NOT_FOUND, format!("no silence {id}"))
                .into_response();
        }
        all.clone()
    };
    let dir = state.config.data_dir.join("alerts");
    match tokio::task::spawn_blocking(move || crate::alerting::save_silences(&dir, &snapshot)).await
    {
        Ok(Ok(())) => json_ok(serde_json::json!({ "deleted": id }).to_string()),
        Ok(Err(e)) => ApiError::internal(e.to_string()).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}
