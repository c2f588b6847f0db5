//! The Elasticsearch-compatible ingest API, mounted at `/es` and at the root for clients that
//! cannot set a path prefix: `_bulk` in front of the one ingest
//! [`Pipeline`](crate::pipeline), and the endpoints shippers probe before they send (the
//! version, license, cluster health, nodes, and the setup of templates, ILM policies, ingest
//! pipelines and data streams, which sawmill acknowledges and does not need).
//!
//! Every answer carries `X-Elastic-Product: Elasticsearch` (elasticsearch-py and Logstash
//! check it) and every error is in ES's shape, `{"error":{"type","reason"},"status"}`
//! ([`reshape`]). The version is the newest 8.x minor, as Filebeat refuses servers of an
//! older minor than its own.
//!
//! `_bulk` answers once every accepted document is durable, in ES's shape: one item per
//! action, `201` for a document kept (its `_id` is the client's, else its sequence number in
//! the log), `400` with the reason for a document or action refused on its own. A document
//! re-sent with the same `_index` and `_id` within a day is not kept twice: it is answered
//! `200` with `"result":"noop"` ([`crate::doc_ids`]).

use super::receive::{content_encoding, count_outcome, receive};
use super::{ApiError, Caller, State};
use crate::doc_ids::{Claim, DocKey};
use crate::pipeline::{DecodeContext, Ingested, Origin, Refusal};
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, RawQuery, Request, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use sawmill_core::IngestAnswer;
use sawmill_protocols::es_bulk::{self, Bulk, Item, Outcome};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The Elasticsearch version sawmill answers as.
pub const VERSION: &str = "8.19.0";
/// The Lucene version of that release, which some clients print.
const LUCENE_VERSION: &str = "9.12.1";
/// The name of the one node and of the cluster.
const NAME: &str = "sawmill";

fn with_product(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

fn es_json(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// ES's error type for a status, when the error did not name one.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 | 403 => "security_exception",
        404 => "resource_not_found_exception",
        405 => "method_not_allowed_exception",
        408 => "timeout_exception",
        413 => "content_too_long_exception",
        415 => "media_type_header_exception",
        429 => "es_rejected_execution_exception",
        503 | 507 => "cluster_block_exception",
        s if s >= 500 => "exception",
        _ => "illegal_argument_exception",
    }
}

/// An error in ES's shape.
fn es_error(status: StatusCode, kind: &str, reason: &str) -> Value {
    let cause = json!({ "type": kind, "reason": reason });
    json!({
        "error": { "root_cause": [cause], "type": kind, "reason": reason },
        "status": status.as_u16(),
    })
}

/// Middleware around the whole API (authorization included): the product header on every
/// answer, and sawmill's `{"error":"…"}` answers rewritten in ES's shape (status and
/// `Retry-After` kept).
pub async fn reshape(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if status.is_success() || status.is_informational() {
        return with_product(response);
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let reason = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(mut o)) => match o.remove("error") {
            Some(Value::String(reason)) => reason,
            // already in ES's shape
            _ => return with_product(Response::from_parts(parts, Body::from(bytes))),
        },
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    };
    let body = es_error(status, error_type(status), &reason).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        parts.headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"sawmill\", ApiKey, Bearer realm=\"sawmill\""),
        );
    }
    with_product(Response::from_parts(parts, Body::from(body)))
}

/// `GET`/`HEAD /` and `/es/`: who answers. A browser asking the root for a page is not an ES
/// client and gets sawmill's own answer.
pub async fn info(method: Method, headers: HeaderMap) -> Response {
    let wants_page = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_page {
        return super::not_found().await;
    }
    let body = json!({
        "name": NAME,
        "cluster_name": NAME,
        "cluster_uuid": "sawmill-0000000000000000",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": "sawmill",
            "build_date": "2025-01-01T00:00:00.000Z",
            "build_snapshot": false,
            "lucene_version": LUCENE_VERSION,
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    });
    if method == Method::HEAD {
        return StatusCode::OK.into_response();
    }
    es_json(StatusCode::OK, body)
}

/// `GET /_license`: an active basic license (Logstash checks `license.status`).
pub async fn license() -> Response {
    es_json(
        StatusCode::OK,
        json!({ "license": {
            "status": "active",
            "uid": "sawmill",
            "type": "basic",
            "issue_date": "2025-01-01T00:00:00.000Z",
            "issue_date_in_millis": 1_735_689_600_000u64,
            "max_nodes": 1000,
            "max_resource_units": null,
            "issued_to": NAME,
            "issuer": "elasticsearch",
            "start_date_in_millis": -1,
        }}),
    )
}

/// `GET /_xpack`: the features a shipper may check before its setup.
pub async fn xpack() -> Response {
    let on = json!({ "available": true, "enabled": true });
    es_json(
        StatusCode::OK,
        json!({
            "build": { "hash": "sawmill", "date": "2025-01-01T00:00:00.000Z" },
            "license": { "uid": "sawmill", "type": "basic", "mode": "basic", "status": "active" },
            "features": { "ilm": on, "data_streams": on, "security": { "available": true, "enabled": false } },
            "tagline": "You know, for X",
        }),
    )
}

/// `GET /_cluster/health`: green while the server accepts traffic.
pub async fn cluster_health() -> Response {
    es_json(
        StatusCode::OK,
        json!({
            "cluster_name": NAME,
            "status": "green",
            "timed_out": false,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": 1,
            "active_shards": 1,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0,
        }),
    )
}

/// `GET /_nodes/http` (and `/_nodes`): the one node, at the address the client used (clients
/// that sniff connect to the publish address).
pub async fn nodes(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:7480")
        .to_string();
    es_json(
        StatusCode::OK,
        json!({
            "_nodes": { "total": 1, "successful": 1, "failed": 0 },
            "cluster_name": NAME,
            "nodes": { "sawmill-node-0": {
                "name": NAME,
                "version": VERSION,
                "roles": ["data", "ingest", "master"],
                "http": { "bound_address": [host], "publish_address": host, "max_content_length_in_bytes": 104_857_600 },
            }},
        }),
    )
}

/// What a shipper sets up before sending: index templates, ILM policies, ingest pipelines,
/// data streams, component templates. sawmill needs none of them: a read finds nothing
/// (`404`, so the shipper goes on to create it), a creation or deletion is acknowledged.
pub async fn setup(method: Method, Path(name): Path<String>, body: Body) -> Response {
    // a template can be large; it is read (within a bound) so the connection stays usable
    let _ = super::receive::read_body(body, None, MAX_SETUP_BODY, SETUP_TIMEOUT).await;
    match method {
        Method::PUT | Method::POST | Method::DELETE => {
            es_json(StatusCode::OK, json!({ "acknowledged": true }))
        }
        Method::HEAD => StatusCode::NOT_FOUND.into_response(),
        _ => es_json(
            StatusCode::NOT_FOUND,
            es_error(
                StatusCode::NOT_FOUND,
                "resource_not_found_exception",
                &format!("[{name}] not found: sawmill keeps no templates, policies or pipelines"),
            ),
        ),
    }
}

/// Largest setup body read (an index template with its mappings).
const MAX_SETUP_BODY: usize = 8 << 20;
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Which bodies `_bulk` reads: NDJSON under its JSON and vendor names.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json"
        | "application/x-ndjson"
        | "application/ndjson"
        | "application/vnd.elasticsearch+x-ndjson"
        | "application/vnd.elasticsearch+json"
        | "text/plain" => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type header [{text}] is not supported: send application/x-ndjson"),
        )),
    }
}

/// `refresh=wait_for` (or `true`) holds the answer until the documents are searchable; other
/// parameters (`pipeline`, `routing`, `timeout`, `filter_path`, …) are accepted and ignored.
fn wants_refresh(query: Option<&str>) -> Result<bool, ApiError> {
    let pairs = super::query_pairs(query)?;
    Ok(pairs
        .iter()
        .any(|(k, v)| k == "refresh" && matches!(v.as_str(), "" | "true" | "wait_for")))
}

/// `POST|PUT /_bulk`.
pub async fn bulk(
    state: AxumState<State>,
    caller: Extension<Caller>,
    query: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    bulk_into(state, caller, None, query, headers, body).await
}

/// `POST|PUT /{index}/_bulk`.
pub async fn bulk_index(
    state: AxumState<State>,
    caller: Extension<Caller>,
    Path(index): Path<String>,
    query: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    bulk_into(state, caller, Some(index), query, headers, body).await
}

async fn bulk_into(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
    index: Option<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let result = bulk_request(&state, caller, index, query.as_deref(), &headers, body).await;
    let result = result.map(|(answer, items)| {
        let body = bulk_answer(&answer, &items, started.elapsed().as_millis() as u64);
        super::json_ok(body)
    });
    count_outcome(&state, started, result)
}

/// What the decoder hands back to the handler besides the events.
type Items = Arc<Mutex<Vec<Item>>>;

async fn bulk_request(
    state: &State,
    caller: Caller,
    index: Option<String>,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(IngestAnswer, Vec<Item>), ApiError> {
    check_content_type(headers)?;
    let wait_for = wants_refresh(query)?;
    let encoding = content_encoding(headers)?;
    let tenant = caller.tenant.clone();
    let origin = Origin {
        tenant: caller.tenant,
        idempotency_key: None,
        default_source: None,
        wait_for,
    };
    let body = receive(state, headers, body, encoding).await?;
    let items: Items = Arc::default();
    let decoder = BulkDecoder {
        index,
        tenant,
        items: items.clone(),
        doc_ids: state.doc_ids.clone(),
    };
    let decode = move |raw: &[u8], ctx: &mut DecodeContext<'_>| decoder.decode(raw, ctx);
    let answer = match state.pipeline.ingest(origin, body, decode).await? {
        Ingested::Done(answer) => answer,
        // bulk requests carry no idempotency key
        Ingested::Replayed(_) => {
            return Err(ApiError::internal(
                "a bulk request was answered as a replay",
            ))
        }
    };
    let items = std::mem::take(&mut *items.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((answer, items))
}

/// The bulk decoding of one request, with its documents' ids claimed in the store.
struct BulkDecoder {
    index: Option<String>,
    tenant: String,
    items: Items,
    doc_ids: Arc<crate::doc_ids::DocIds>,
}

impl BulkDecoder {
    fn decode(
        self,
        raw: &[u8],
        ctx: &mut DecodeContext<'_>,
    ) -> Result<sawmill_core::Parsed, Refusal> {
        let mut bulk = es_bulk::decode(raw, self.index.as_deref(), ctx.parse)
            .map_err(|e| Refusal::BadBody(e.to_string()))?;
        let claims = self.claim_ids(&mut bulk, ctx.parse.received_at);
        if !claims.is_empty() {
            let doc_ids = self.doc_ids.clone();
            ctx.on_settled(move |durable| doc_ids.settle(claims, durable));
        }
        *self.items.lock().unwrap_or_else(|p| p.into_inner()) = bulk.items;
        Ok(bulk.parsed)
    }

    /// Claims the ids of the documents that have one; a document whose id is already kept
    /// (or claimed by a request in flight) is taken out of the events and answered as a
    /// no-op. Returns the new claims, to be settled with the request.
    fn claim_ids(&self, bulk: &mut Bulk, now: i64) -> Vec<DocKey> {
        let mut claims = Vec::new();
        let mut dropped = vec![false; bulk.parsed.events.len()];
        for item in bulk.items.iter_mut() {
            let (Outcome::Event(pos), Some(id)) = (&item.outcome, &item.id) else {
                continue;
            };
            let key = DocKey::new(&self.tenant, item.index.as_deref(), id);
            match self.doc_ids.claim(key, now) {
                Claim::New => claims.push(key),
                Claim::Seen => {
                    dropped[*pos] = true;
                    item.outcome = Outcome::Duplicate;
                }
                Claim::InFlight => {
                    dropped[*pos] = true;
                    item.outcome = Outcome::Failed {
                        status: 429,
                        kind: "es_rejected_execution_exception",
                        reason: "a document with the same _index and _id is being ingested by another request: retry it".to_string(),
                    };
                }
            }
        }
        if dropped.iter().any(|d| *d) {
            let mut kept = 0;
            let mut new_pos = Vec::with_capacity(dropped.len());
            for d in &dropped {
                new_pos.push(kept);
                kept += usize::from(!d);
            }
            let mut i = 0;
            bulk.parsed.events.retain(|_| {
                i += 1;
                !dropped[i - 1]
            });
            for item in bulk.items.iter_mut() {
                if let Outcome::Event(pos) = &mut item.outcome {
                    *pos = new_pos[*pos];
                }
            }
        }
        claims
    }
}

/// ES's bulk answer: one item per action, in order. Written directly (a bulk request holds
/// thousands of items, and a JSON tree per item would cost more than decoding the documents).
fn bulk_answer(answer: &IngestAnswer, items: &[Item], took_ms: u64) -> Vec<u8> {
    use std::io::Write;
    let first_seq = answer.first_seq.unwrap_or(0);
    let errors = items
        .iter()
        .any(|i| matches!(i.outcome, Outcome::Failed { .. }));
    let mut out = Vec::with_capacity(64 + items.len() * 200);
    // writes into a Vec cannot fail
    let _ = write!(out, "{{\"took\":{took_ms},\"errors\":{errors},\"items\":[");
    let string = |out: &mut Vec<u8>, text: &str| {
        let _ = serde_json::to_writer(&mut *out, text);
    };
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let _ = write!(out, "{{\"{}\":{{\"_index\":", item.action.as_str());
        string(&mut out, item.index.as_deref().unwrap_or(""));
        out.extend_from_slice(b",\"_id\":");
        match (&item.outcome, &item.id) {
            (_, Some(id)) => string(&mut out, id),
            (Outcome::Event(pos), None) => {
                let _ = write!(out, "\"{}\"", first_seq + *pos as u64);
            }
            (_, None) => out.extend_from_slice(b"null"),
        }
        match &item.outcome {
            Outcome::Event(pos) => {
                let _ = write!(
                    out,
                    ",\"_version\":1,\"result\":\"created\",{SHARDS},\"_seq_no\":{},\"_primary_term\":1,\"status\":201}}}}",
                    first_seq + *pos as u64
                );
            }
            Outcome::Duplicate => {
                let _ = write!(
                    out,
                    ",\"_version\":1,\"result\":\"noop\",{SHARDS},\"status\":200}}}}"
                );
            }
            Outcome::Failed {
                status,
                kind,
                reason,
            } => {
                let _ = write!(out, ",\"status\":{status},\"error\":{{\"type\":");
                string(&mut out, kind);
                out.extend_from_slice(b",\"reason\":");
                string(&mut out, reason);
                out.extend_from_slice(b"}}}");
            }
        }
    }
    out.extend_from_slice(b"]}");
    out
}

const SHARDS: &str = "\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0}";

#[cfg(test)]
mod tests {
    use super::*;
    use sawmill_protocols::es_bulk::Action;

    #[test]
    fn the_bulk_answer_is_es_shaped_json() {
        let item = |action, id: Option<&str>, outcome| Item {
            action,
            index: Some("logs \"x\"".into()),
            id: id.map(str::to_string),
            outcome,
        };
        let items = vec![
            item(Action::Create, None, Outcome::Event(0)),
            item(Action::Index, Some("a1"), Outcome::Event(1)),
            item(Action::Create, Some("a0"), Outcome::Duplicate),
            item(
                Action::Delete,
                None,
                Outcome::Failed {
                    status: 400,
                    kind: "illegal_argument_exception",
                    reason: "no \"delete\"".into(),
                },
            ),
        ];
        let answer = IngestAnswer {
            accepted: 2,
            first_seq: Some(40),
            ..IngestAnswer::default()
        };
        let json: Value = serde_json::from_slice(&bulk_answer(&answer, &items, 7)).unwrap();
        assert_eq!(json["took"], 7);
        assert_eq!(json["errors"], true);
        let first = &json["items"][0]["create"];
        assert_eq!(first["_index"], "logs \"x\"");
        assert_eq!(
            (&first["_id"], &first["_seq_no"]),
            (&json!("40"), &json!(40))
        );
        assert_eq!(
            (&first["status"], &first["result"]),
            (&json!(201), &json!("created"))
        );
        assert_eq!(first["_shards"]["successful"], 1);
        assert_eq!(json["items"][1]["index"]["_id"], "a1");
        assert_eq!(json["items"][1]["index"]["_seq_no"], 41);
        assert_eq!(json["items"][2]["create"]["result"], "noop");
        assert_eq!(json["items"][2]["create"]["status"], 200);
        let failed = &json["items"][3]["delete"];
        assert_eq!(failed["status"], 400);
        assert_eq!(failed["_id"], Value::Null);
        assert_eq!(failed["error"]["reason"], "no \"delete\"");
        let none = bulk_answer(&answer, &items[..1], 0);
        let none: Value = serde_json::from_slice(&none).unwrap();
        assert_eq!(none["errors"], false);
    }
}
