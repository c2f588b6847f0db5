//! The HTTP API: routes, shared state and JSON errors.
//!
//! Handlers stay short: CPU work (decoding, parsing, searching) runs on the blocking pool,
//! never on the async runtime's threads.

mod admin;
mod alerts;
mod archive;
pub mod auth;
mod es;
mod firehose;
mod ingest;
mod otlp;
pub mod receive;
mod search;

pub use auth::{Caller, Need};

use crate::audit::AuditLog;
use crate::config::Config;
use crate::idempotency::IdempotencyStore;
use crate::index_worker::IndexHandle;
use crate::keys::{KeyRing, Scope};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sawmill_archive::ArchiveHandle;
use sawmill_index::Partitions;
use sawmill_wal::Wal;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// What every handler shares.
pub struct AppState {
    pub config: Config,
    pub wal: Arc<Wal>,
    pub partitions: Arc<Partitions>,
    pub index: IndexHandle,
    pub idempotency: Arc<IdempotencyStore>,
    /// Elasticsearch document ids kept within a day.
    pub doc_ids: Arc<crate::doc_ids::DocIds>,
    pub metrics: Arc<Metrics>,
    /// The one ingest path every protocol feeds.
    pub pipeline: Arc<Pipeline>,
    /// Searches running at once.
    pub searches: Arc<Semaphore>,
    pub archive: ArchiveHandle,
    pub restores: Arc<crate::restore::Restores>,
    pub alerts: sawmill_alerts::AlertHandle,
    /// Restarts the notifiers after a rules reload.
    pub notifiers: Arc<crate::alerting::Notifiers>,
    /// The API keys, reloaded when `sawmill keys` changes them.
    pub keys: Arc<KeyRing>,
    pub audit: Arc<AuditLog>,
    /// Free disk space guard of the data directory.
    pub disk: Arc<crate::limits::DiskGuard>,
}

pub type State = Arc<AppState>;

/// The router of the whole API. Each group of routes names what its callers need (see
/// [`auth`]); health checks are open.
pub fn router(state: State) -> Router {
    let guard =
        |need: Need| axum::middleware::from_fn_with_state((state.clone(), need), auth::require);
    let ingest = Router::new()
        .route("/api/v1/ingest", post(ingest::ingest))
        .route_layer(guard(Need::Tenant(Scope::Ingest)));
    let firehose = Router::new()
        .route("/api/v1/firehose", post(firehose::firehose))
        .route_layer(guard(Need::Tenant(Scope::Ingest)))
        .layer(axum::middleware::from_fn(firehose::reshape));
    let otlp = Router::new()
        .route("/v1/logs", post(otlp::logs))
        .route_layer(guard(Need::Tenant(Scope::Ingest)))
        .layer(axum::middleware::from_fn(otlp::reshape));
    let search = Router::new()
        .route(
            "/api/v1/search",
            get(search::search_get).post(search::search_post),
        )
        .route("/api/v1/histogram", get(search::histogram))
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/silences", get(alerts::list_silences))
        .route("/api/v1/archive/restores", get(archive::list))
        .route("/api/v1/archive/restores/{id}", get(archive::get))
        .route_layer(guard(Need::Tenant(Scope::Search)));
    let admin = Router::new()
        .route("/api/v1/silences", post(alerts::create_silence))
        .route(
            "/api/v1/silences/{id}",
            axum::routing::delete(alerts::delete_silence),
        )
        .route("/api/v1/archive/restore", post(archive::start))
        .route(
            "/api/v1/archive/restores/{id}",
            axum::routing::delete(archive::delete),
        )
        .route_layer(guard(Need::Tenant(Scope::Admin)))
        .layer(DefaultBodyLimit::max(MAX_CHANGE_BODY));
    let operator = Router::new()
        .route("/api/v1/admin/flush", post(admin::flush))
        .route("/api/v1/alerts/reload", post(alerts::reload))
        .route("/metrics", get(admin::metrics))
        .route_layer(guard(Need::Operator(Scope::Admin)));
    Router::new()
        .merge(es_routes(&state, "/es"))
        .merge(es_routes(&state, ""))
        .merge(ingest)
        .merge(firehose)
        .merge(otlp)
        .merge(search)
        .merge(admin)
        .merge(operator)
        .route("/healthz", get(admin::healthz))
        .route("/readyz", get(admin::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The Elasticsearch-compatible API (see [`es`]) under `prefix` (`/es`, and the root for
/// clients that cannot set a path prefix).
fn es_routes(state: &State, prefix: &str) -> Router<State> {
    let guard =
        |need: Need| axum::middleware::from_fn_with_state((state.clone(), need), auth::require);
    let at = |path: &str| format!("{prefix}{path}");
    let bulk = Router::new()
        .route(&at("/_bulk"), post(es::bulk).put(es::bulk))
        .route(
            &at("/{index}/_bulk"),
            post(es::bulk_index).put(es::bulk_index),
        )
        .route_layer(guard(Need::Tenant(Scope::Ingest)));
    let setup = axum::routing::get(es::setup)
        .head(es::setup)
        .put(es::setup)
        .post(es::setup)
        .delete(es::setup);
    let info = get(es::info).head(es::info);
    let mut probes = Router::new()
        .route(&at("/"), info.clone())
        .route(&at("/_license"), get(es::license))
        .route(&at("/_xpack"), get(es::xpack))
        .route(&at("/_cluster/health"), get(es::cluster_health))
        .route(&at("/_nodes"), get(es::nodes))
        .route(&at("/_nodes/http"), get(es::nodes));
    if !prefix.is_empty() {
        probes = probes.route(prefix, info);
    }
    for kind in [
        "/_index_template",
        "/_template",
        "/_component_template",
        "/_ilm/policy",
        "/_ingest/pipeline",
        "/_data_stream",
    ] {
        probes = probes.route(&at(&format!("{kind}/{{name}}")), setup.clone());
    }
    let probes = probes.route_layer(guard(Need::AnyScope));
    Router::new()
        .merge(bulk)
        .merge(probes)
        .layer(axum::middleware::from_fn(es::reshape))
}

async fn not_found() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint: the API lives under /api/v1",
    )
    .into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
    .into_response()
}

/// An error answered as `{"error": "..."}` with its status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
    /// Why the request was refused, for `sawmill_rejected_requests_total{reason}` when the
    /// status alone does not say it.
    pub reason: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
            reason: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// An overload answer that tells the client when to retry.
    pub fn unavailable(message: impl Into<String>, retry_after_secs: u64) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            retry_after: Some(retry_after_secs),
            reason: None,
        }
    }

    /// Names the reason counted in `sawmill_rejected_requests_total`.
    pub fn because(mut self, reason: &'static str) -> ApiError {
        self.reason = Some(reason);
        self
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        let mut response = (self.status, json_headers(), body).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

fn json_headers() -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )]
}

/// A 200 answer with a JSON body already serialized.
pub fn json_ok(body: impl Into<axum::body::Body>) -> Response {
    (StatusCode::OK, json_headers(), body.into()).into_response()
}

/// The pairs of a query string, decoded strictly: `+` is a space, every `%` must start a
/// two-digit hex escape and the decoded text must be UTF-8 (a lenient decoder would search
/// for something other than what the user typed).
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let raw = raw.unwrap_or("");
    let mut pairs = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let key = decode_component(k)
            .map_err(|e| ApiError::bad_request(format!("query string: parameter name {e}")))?;
        let value = decode_component(v)
            .map_err(|e| ApiError::bad_request(format!("query string: parameter '{key}' {e}")))?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// Why a query-string component cannot be decoded.
#[derive(Debug, thiserror::Error)]
enum BadComponent {
    #[error("has a bad percent-escape '{shown}' at byte {at}: write % as %25")]
    Escape { shown: String, at: usize },
    #[error("is not UTF-8 once decoded: percent-encode UTF-8 text")]
    NotUtf8,
}

fn decode_component(text: &str) -> Result<String, BadComponent> {
    let bytes = text.as_bytes();
    for (i, _) in bytes.iter().enumerate().filter(|(_, &b)| b == b'%') {
        let ok = bytes.len() > i + 2
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit();
        if !ok {
            return Err(BadComponent::Escape {
                shown: text[i..].chars().take(3).collect(),
                at: i,
            });
        }
    }
    let plus_as_space = text.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| BadComponent::NotUtf8)
}

/// Nanoseconds since the epoch, now.
pub fn now_nanos() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// Largest JSON body of a change an admin makes (a silence, a restore). The routes that take
/// one cap their bodies at this ([`DefaultBodyLimit`]): a larger body is refused while it is
/// read, never held whole.
pub const MAX_CHANGE_BODY: usize = 64 << 10;

/// Handles the JSON body of a change (a silence, a restore) with `handle`, then audits the
/// request and the status it got under `action`.
pub async fn audited_change<F, Fut>(
    state: &State,
    caller: &Caller,
    action: &str,
    body: Result<Bytes, BytesRejection>,
    handle: F,
) -> Response
where
    F: FnOnce(Bytes) -> Fut,
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    let (response, request) = match body {
        Ok(body) => {
            let response = match handle(body.clone()).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            };
            (response, body)
        }
        Err(rejection) => {
            let error = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body is larger than {MAX_CHANGE_BODY} bytes"),
                )
            } else {
                ApiError::new(
                    rejection.status(),
                    format!("cannot read the request body: {}", rejection.body_text()),
                )
            };
            (error.into_response(), Bytes::new())
        }
    };
    let shown = String::from_utf8_lossy(&request[..request.len().min(4096)]);
    state.audit(
        action,
        caller,
        serde_json::json!({ "request": shown, "status": response.status().as_u16() }),
    );
    response
}

impl AppState {
    /// Writes an audit entry for `caller` and counts it.
    pub fn audit(&self, action: &str, caller: &Caller, details: serde_json::Value) {
        self.audit
            .record(action, &caller.actor(), Some(&caller.tenant), details);
        self.metrics.audit_events.with_label_values(&[action]).inc();
    }
}
