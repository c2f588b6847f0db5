//! Operations endpoints: flush, health, readiness and metrics.

use super::{json_ok, ApiError, Caller, State};
use axum::extract::{Extension, State as AxumState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// `POST /api/v1/admin/flush`: commits the index and seals and writes every pending archive
/// batch, up to everything acknowledged.
pub async fn flush(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
) -> Response {
    state.audit("flush", &caller, serde_json::json!({}));
    let started = Instant::now();
    let index = match state.index.flush().await {
        Ok(report) => report,
        Err(e) => return ApiError::internal(format!("index flush failed: {e}")).into_response(),
    };
    let archive = match state.archive.flush().await {
        Ok(report) => report,
        Err(e) => {
            return ApiError::unavailable(format!("archive flush failed: {e}"), 5).into_response()
        }
    };
    json_ok(
        serde_json::json!({
            "index": {
                "committed_seq": index.position,
                "partitions_committed": index.partitions,
                "commit_ms": index.duration.as_millis() as u64,
            },
            "archive": {
                "objects_written": archive.objects,
                "events_written": archive.events,
                "archived_seq": archive.position,
                "store": state.archive.store().describe(),
            },
            "took_ms": started.elapsed().as_millis() as u64,
        })
        .to_string(),
    )
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Response {
    json_ok(r#"{"status":"ok"}"#)
}

/// `GET /readyz`: recovery is finished and traffic is accepted.
pub async fn readyz(AxumState(state): AxumState<State>) -> Response {
    if state.index.is_ready() {
        json_ok(r#"{"status":"ready"}"#)
    } else {
        let body = serde_json::json!({
            "status": "recovering",
            "searchable_seq": state.index.searchable_seq(),
            "durable_seq": state.wal.durable_seq(),
        });
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body.to_string(),
        )
            .into_response()
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(AxumState(state): AxumState<State>) -> Response {
    let m = &state.metrics;
    let durable = state.wal.durable_seq();
    let searchable = state.index.searchable_seq();
    m.wal.durable_seq.set(durable as i64);
    m.index.searchable_seq.set(searchable as i64);
    m.index
        .lag_events
        .set(durable.saturating_sub(searchable) as i64);
    m.observe_archive(&state.archive.stats, durable, super::now_nanos());
    m.observe_alerts(&state.alerts, &state.notifiers.stats, durable);
    let usage = state.wal.disk_usage();
    m.wal.disk_bytes.set(usage.bytes as i64);
    m.wal.segments.set(usage.segments as i64);
    if let Ok(free) = state.disk.free_bytes() {
        m.disk_free_bytes.set(free.min(i64::MAX as u64) as i64);
    }
    let partitions = state.partitions.clone();
    if let Ok(docs) = tokio::task::spawn_blocking(move || partitions.num_docs()).await {
        m.index.docs.set(docs as i64);
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        m.render(),
    )
        .into_response()
}
