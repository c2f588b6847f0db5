//! `GET|POST /api/v1/search` and `GET /api/v1/histogram`.

use super::{json_ok, now_nanos, ApiError, Caller, State};
use axum::body::Body;
use axum::extract::{Extension, RawQuery, State as AxumState};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sawmill_core::{format_rfc3339, parse_duration, parse_time_param};
use sawmill_index::query::{parse, Query};
use sawmill_index::{Cursor, Order, Partitions, SearchError, SearchRequest};
use std::time::Instant;
use tokio::sync::OwnedSemaphorePermit;

/// Default search range: the last 24 hours.
const DEFAULT_RANGE_NANOS: i64 = 24 * 3600 * 1_000_000_000;
const MAX_LIMIT: usize = 10_000;
const MAX_BUCKETS: i64 = 10_000;
/// Largest JSON body of a POST search.
const MAX_SEARCH_BODY: usize = 64 << 10;
const SEARCH_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

type Params = Vec<(String, String)>;

fn query_params(raw: Option<&str>) -> Result<Params, ApiError> {
    super::query_pairs(raw)
}

fn json_params(body: &[u8]) -> Result<Params, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body must be a JSON object: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    let mut params = Vec::new();
    for (k, v) in map {
        let text = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(ApiError::bad_request(format!(
                    "'{k}' must be a string or a number, not {other}"
                )))
            }
        };
        params.push((k, text));
    }
    Ok(params)
}

/// The time range and query shared by search and histogram.
struct Common {
    query: Query,
    start: i64,
    end: i64,
}

fn common(params: &Params, allowed: &[&str], now: i64) -> Result<Common, ApiError> {
    let mut q = String::new();
    let mut start = None;
    let mut end = None;
    for (k, v) in params {
        match k.as_str() {
            "q" | "query" => q = v.clone(),
            "start" => start = Some(time_param("start", v, now)?),
            "end" => end = Some(time_param("end", v, now)?),
            other if allowed.contains(&other) => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter '{other}'; expected one of q, start, end, {}",
                    allowed.join(", ")
                )))
            }
        }
    }
    let end = end.unwrap_or(now);
    let start = start.unwrap_or(end.saturating_sub(DEFAULT_RANGE_NANOS));
    if start > end {
        return Err(ApiError::bad_request(format!(
            "start ({}) is after end ({})",
            format_rfc3339(start),
            format_rfc3339(end)
        )));
    }
    let query = parse(&q).map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    Ok(Common { query, start, end })
}

fn time_param(name: &str, value: &str, now: i64) -> Result<i64, ApiError> {
    parse_time_param(value, now).map_err(|e| {
        ApiError::bad_request(format!(
            "{name}={value}: {e} (use RFC 3339, epoch seconds or milliseconds, or now-15m style)"
        ))
    })
}

fn encode_cursor(order: Order, c: Cursor) -> String {
    let o = match order {
        Order::Desc => 'd',
        Order::Asc => 'a',
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{o}:{}:{}", c.ts, c.id))
}

fn decode_cursor(order: Order, text: &str) -> Result<Cursor, ApiError> {
    let bad = || {
        ApiError::bad_request("cursor is not one this server handed out: pass next_cursor from the previous answer unchanged")
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = raw.split(':');
    let (Some(o), Some(ts), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let expected = match order {
        Order::Desc => "d",
        Order::Asc => "a",
    };
    if o != expected {
        return Err(ApiError::bad_request(
            "cursor belongs to a search with the other order: keep order unchanged while paging",
        ));
    }
    Ok(Cursor {
        ts: ts.parse().map_err(|_| bad())?,
        id: id.parse().map_err(|_| bad())?,
    })
}

async fn permit(state: &State) -> Result<OwnedSemaphorePermit, ApiError> {
    match tokio::time::timeout(
        state.config.search.queue_timeout,
        state.searches.clone().acquire_owned(),
    )
    .await
    {
        Ok(Ok(p)) => Ok(p),
        _ => Err(refused(
            state,
            "search_concurrency",
            ApiError::unavailable("too many searches are running; retry shortly", 1),
        )),
    }
}

/// Counts a refusal in `sawmill_rejected_requests_total{reason}`.
fn refused(state: &State, reason: &'static str, error: ApiError) -> ApiError {
    state.metrics.refuse(reason);
    error
}

/// Runs `f` over the index on the blocking pool, within the limit of concurrent searches.
async fn on_index<T: Send + 'static>(
    state: &State,
    what: &str,
    f: impl FnOnce(&Partitions) -> Result<T, SearchError> + Send + 'static,
) -> Result<T, ApiError> {
    let permit = permit(state).await?;
    let partitions = state.partitions.clone();
    // the permit goes with the work: a search past its time limit still counts against the
    // concurrency limit until it really ends
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f(&partitions)
    });
    let limit = state.config.search.max_time;
    match tokio::time::timeout(limit, work).await {
        Ok(joined) => joined
            .map_err(|e| ApiError::internal(format!("{what} worker failed: {e}")))?
            .map_err(search_error),
        Err(_) => Err(refused(
            state,
            "search_timeout",
            ApiError::unavailable(
                format!(
                    "the {what} took longer than its limit of {}s: narrow the time range or the query",
                    limit.as_secs_f64()
                ),
                5,
            ),
        )),
    }
}

fn search_error(e: SearchError) -> ApiError {
    match e {
        SearchError::Query(e) => ApiError::bad_request(format!("invalid query: {e}")),
        SearchError::Index(e) => ApiError::internal(format!("search failed: {e}")),
    }
}

/// Counts, times and audits one search or histogram request.
fn observe(
    state: &State,
    caller: &Caller,
    endpoint: &str,
    params: Option<&Params>,
    started: Instant,
    response: Response,
) -> Response {
    state
        .metrics
        .search
        .seconds
        .with_label_values(&[endpoint])
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .search
        .requests
        .with_label_values(&[endpoint, response.status().as_str()])
        .inc();
    let param = |name: &str| {
        params.and_then(|p| {
            p.iter()
                .find(|(k, _)| k == name || (name == "q" && k == "query"))
                .map(|(_, v)| v.chars().take(4096).collect::<String>())
        })
    };
    state.audit(
        endpoint,
        caller,
        serde_json::json!({
            "query": param("q"),
            "start": param("start"),
            "end": param("end"),
            "status": response.status().as_u16(),
        }),
    );
    response
}

pub async fn search_get(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Response {
    let started = Instant::now();
    let params = query_params(raw.as_deref());
    let result = match &params {
        Ok(p) => run_search(&state, &caller, p.clone(), started).await,
        Err(e) => Err(ApiError::bad_request(e.message.clone())),
    };
    observe(
        &state,
        &caller,
        "search",
        params.as_ref().ok(),
        started,
        result.unwrap_or_else(IntoResponse::into_response),
    )
}

pub async fn search_post(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Response {
    let started = Instant::now();
    let params = super::receive::read_body(body, None, MAX_SEARCH_BODY, SEARCH_BODY_TIMEOUT)
        .await
        .and_then(|body| json_params(&body));
    let result = match &params {
        Ok(p) => run_search(&state, &caller, p.clone(), started).await,
        Err(e) => Err(ApiError::new(e.status, e.message.clone())),
    };
    observe(
        &state,
        &caller,
        "search",
        params.as_ref().ok(),
        started,
        result.unwrap_or_else(IntoResponse::into_response),
    )
}

async fn run_search(
    state: &State,
    caller: &Caller,
    params: Params,
    started: Instant,
) -> Result<Response, ApiError> {
    let now = now_nanos();
    let common = common(&params, &["limit", "order", "cursor"], now)?;
    let mut limit = 100usize;
    let mut order = Order::Desc;
    let mut cursor_text = None;
    for (k, v) in &params {
        match k.as_str() {
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|&l| l <= MAX_LIMIT)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "limit={v}: must be a whole number from 0 to {MAX_LIMIT}"
                        ))
                    })?
            }
            "order" => {
                order = match v.as_str() {
                    "desc" => Order::Desc,
                    "asc" => Order::Asc,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "order={other}: use desc (newest first) or asc"
                        )))
                    }
                }
            }
            "cursor" if !v.is_empty() => cursor_text = Some(v.clone()),
            _ => {}
        }
    }
    let cursor = cursor_text.map(|c| decode_cursor(order, &c)).transpose()?;
    let tenant = caller.tenant.clone();
    let result = on_index(state, "search", move |partitions| {
        sawmill_index::search(
            partitions,
            &SearchRequest {
                tenant: &tenant,
                query: &common.query,
                start: common.start,
                end: common.end,
                limit,
                order,
                cursor,
                now,
            },
        )
    })
    .await?;
    let mut body =
        Vec::with_capacity(256 + result.hits.iter().map(|h| h.json.len() + 1).sum::<usize>());
    body.extend_from_slice(format!("{{\"total\":{},\"hits\":[", result.total).as_bytes());
    for (i, hit) in result.hits.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&hit.json);
    }
    body.extend_from_slice(b"],\"next_cursor\":");
    match result.next_cursor {
        Some(c) => body.extend_from_slice(format!("\"{}\"", encode_cursor(order, c)).as_bytes()),
        None => body.extend_from_slice(b"null"),
    }
    body.extend_from_slice(format!(",\"took_ms\":{}}}", started.elapsed().as_millis()).as_bytes());
    Ok(json_ok(body))
}

/// Intervals `auto` chooses from.
const NICE_INTERVALS: &[i64] = &[
    1_000_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
    300_000_000_000,
    600_000_000_000,
    1_800_000_000_000,
    3_600_000_000_000,
    10_800_000_000_000,
    21_600_000_000_000,
    43_200_000_000_000,
    86_400_000_000_000,
    604_800_000_000_000,
];

/// `auto`: the finest nice interval giving at most 100 buckets.
fn auto_interval(start: i64, end: i64) -> i64 {
    let span = (end - start).max(1);
    NICE_INTERVALS
        .iter()
        .copied()
        .find(|i| span / i <= 100)
        .unwrap_or(30 * 86_400_000_000_000)
}

/// `1m`, `6h`, `500ms`: the largest unit that divides the interval.
fn format_interval(nanos: i64) -> String {
    const UNITS: &[(i64, &str)] = &[
        (604_800_000_000_000, "w"),
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    for (size, unit) in UNITS {
        if nanos % size == 0 {
            return format!("{}{unit}", nanos / size);
        }
    }
    format!("{nanos}ns")
}

pub async fn histogram(
    AxumState(state): AxumState<State>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Response {
    let started = Instant::now();
    let params = query_params(raw.as_deref());
    let result = match &params {
        Ok(p) => run_histogram(&state, &caller, p.clone()).await,
        Err(e) => Err(ApiError::bad_request(e.message.clone())),
    };
    observe(
        &state,
        &caller,
        "histogram",
        params.as_ref().ok(),
        started,
        result.unwrap_or_else(IntoResponse::into_response),
    )
}

async fn run_histogram(
    state: &State,
    caller: &Caller,
    params: Params,
) -> Result<Response, ApiError> {
    let now = now_nanos();
    let common = common(&params, &["interval"], now)?;
    let interval_text = params
        .iter()
        .find(|(k, _)| k == "interval")
        .map(|(_, v)| v.as_str())
        .unwrap_or("auto");
    let interval = if interval_text == "auto" {
        auto_interval(common.start, common.end)
    } else {
        let d = parse_duration(interval_text).map_err(|e| {
            ApiError::bad_request(format!(
                "interval={interval_text}: {e} (use 10s, 1m, 1h, 1d or auto)"
            ))
        })?;
        i64::try_from(d.as_nanos())
            .ok()
            .filter(|&n| n >= 1_000_000)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "interval={interval_text}: must be between 1ms and 100 years"
                ))
            })?
    };
    let aligned = common.start - common.start.rem_euclid(interval);
    let buckets = (common.end - aligned + interval - 1) / interval;
    if buckets > MAX_BUCKETS {
        return Err(ApiError::bad_request(format!(
            "interval={interval_text} over this range gives {buckets} buckets; the limit is {MAX_BUCKETS}: use a larger interval or auto"
        )));
    }
    let tenant = caller.tenant.clone();
    let (start, end) = (common.start, common.end);
    let counts = on_index(state, "histogram", move |partitions| {
        sawmill_index::histogram(
            partitions,
            &tenant,
            &common.query,
            start,
            end,
            aligned,
            interval,
            now,
        )
    })
    .await?;
    let buckets: Vec<_> = counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            serde_json::json!({
                "start": format_rfc3339(aligned + i as i64 * interval),
                "count": c,
            })
        })
        .collect();
    let body = serde_json::json!({ "interval": format_interval(interval), "buckets": buckets });
    Ok(json_ok(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_check_order() {
        let c = Cursor { ts: -5, id: 42 };
        let text = encode_cursor(Order::Desc, c);
        assert_eq!(decode_cursor(Order::Desc, &text).unwrap(), c);
        assert!(decode_cursor(Order::Asc, &text).is_err());
        assert!(decode_cursor(Order::Desc, "garbage!").is_err());
    }

    #[test]
    fn auto_interval_gives_at_most_100_buckets() {
        let h = 3_600_000_000_000;
        assert_eq!(auto_interval(0, h), 60_000_000_000);
        assert_eq!(auto_interval(0, 24 * h), 1_800_000_000_000);
        assert_eq!(format_interval(60_000_000_000), "1m");
        assert_eq!(format_interval(1_800_000_000_000), "30m");
        assert_eq!(format_interval(86_400_000_000_000), "1d");
    }
}
