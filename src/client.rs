//! The HTTP client the command-line tools share: server URL, API key, and sending ingest
//! batches with retries (exponential backoff with jitter, honouring `Retry-After`).

use anyhow::Context;
use rand::Rng;
use std::time::Duration;

/// Where the server is and how to authenticate.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerArgs {
    /// Server URL.
    #[arg(long, env = "SAWMILL_URL", default_value = "http://127.0.0.1:7480")]
    pub url: String,
    /// API key, sent as `Authorization: Bearer <key>`.
    #[arg(long, env = "SAWMILL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Tenant to act for, with an operator key (sent as `X-Sawmill-Tenant`); a tenant key
    /// always acts for its own tenant.
    #[arg(long, env = "SAWMILL_TENANT")]
    pub tenant: Option<String>,
}

/// A client bound to one server.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    api_key: Option<String>,
    tenant: Option<String>,
}

/// What the server answered an ingest request.
#[derive(serde::Deserialize, Debug)]
pub struct IngestAnswer {
    pub accepted: u64,
    pub rejected: u64,
    /// The first rejected lines (the server lists at most 100).
    #[serde(default)]
    pub errors: Vec<LineError>,
}

/// One rejected line of an ingest request.
#[derive(serde::Deserialize, Debug)]
pub struct LineError {
    /// 1-based line number within the request body.
    pub line: u64,
    pub error: String,
}

/// One ingest request, ready to send: a zstd-compressed body and its idempotency key.
pub struct IngestBatch<'a> {
    pub body: &'a [u8],
    /// `application/x-ndjson` or `text/plain`.
    pub content_type: &'a str,
    /// Sets `source` on the events that carry none.
    pub source: Option<&'a str>,
    pub key: &'a str,
}

/// How long to keep trying.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Attempts before giving up; `None` retries until the server answers.
    pub max_attempts: Option<u32>,
    /// Longest wait between two attempts when the server gives no `Retry-After`.
    pub max_delay: Duration,
}

/// Why an ingest request did not succeed.
#[derive(Debug)]
pub enum SendError {
    /// The server refused the request for a reason retrying cannot fix (400, 401, 403, 413,
    /// 415, …) or answered something that is not an ingest answer.
    Refused { attempts: u32, message: String },
    /// Every attempt failed with a retryable error (connection, 408, 409, 429, 5xx).
    GaveUp { attempts: u32, message: String },
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Refused { attempts, message } | SendError::GaveUp { attempts, message } => {
                write!(f, "failed after {attempts} attempt(s): {message}")
            }
        }
    }
}

impl std::error::Error for SendError {}

impl Client {
    pub fn new(args: &ServerArgs) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .context("cannot create the HTTP client")?;
        Ok(Client {
            http,
            base: args.url.trim_end_matches('/').to_string(),
            api_key: args.api_key.clone(),
            tenant: args.tenant.clone(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let req = match &self.tenant {
            Some(t) => req.header("x-sawmill-tenant", t),
            None => req,
        };
        match &self.api_key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }

    /// Sends one ingest batch, retrying connection errors, 408, 409 (the same key still in
    /// progress), 429 and 5xx answers as `retry` allows. Before each wait `on_retry` gets the
    /// attempt number, what failed and the delay.
    pub async fn send_ingest(
        &self,
        batch: &IngestBatch<'_>,
        retry: Retry,
        mut on_retry: impl FnMut(u32, &str, Duration),
    ) -> Result<IngestAnswer, SendError> {
        let mut url = self.url("/api/v1/ingest");
        if let Some(s) = batch.source {
            url.push_str("?source=");
            url.push_str(&urlencode(s));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let req = self
                .auth(self.http.post(&url))
                .header(reqwest::header::CONTENT_TYPE, batch.content_type)
                .header(reqwest::header::CONTENT_ENCODING, "zstd")
                .header("idempotency-key", batch.key)
                .body(batch.body.to_vec());
            let (retryable, message, wait) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let wait = retry_after(&resp);
                    match resp.text().await {
                        Ok(text) if status.is_success() => {
                            return serde_json::from_str::<IngestAnswer>(&text).map_err(|e| {
                                SendError::Refused {
                                    attempts: attempt,
                                    message: format!(
                                        "unexpected answer from the server ({e}): {}",
                                        text.trim()
                                    ),
                                }
                            });
                        }
                        Ok(text) => {
                            let code = status.as_u16();
                            let retryable =
                                matches!(code, 408 | 409 | 429) || status.is_server_error();
                            (
                                retryable,
                                format!("{status}: {}", error_message(&text)),
                                wait,
                            )
                        }
                        // The answer was cut off: whether the batch landed is unknown, and the
                        // idempotency key makes sending it again safe.
                        Err(e) => (
                            true,
                            format!("{status}, then reading the answer failed: {}", chain(&e)),
                            wait,
                        ),
                    }
                }
                Err(e) => (true, chain(&e), None),
            };
            if !retryable {
                return Err(SendError::Refused {
                    attempts: attempt,
                    message,
                });
            }
            if retry.max_attempts.is_some_and(|max| attempt >= max) {
                return Err(SendError::GaveUp {
                    attempts: attempt,
                    message,
                });
            }
            let delay = backoff_capped(attempt, wait, retry.max_delay);
            on_retry(attempt, &message, delay);
            tokio::time::sleep(delay).await;
        }
    }
}

/// Exponential backoff with full jitter, at most `cap`; or the server's `Retry-After` when it
/// gave one (honoured up to a minute whatever the cap).
pub fn backoff_capped(attempt: u32, retry_after: Option<Duration>, cap: Duration) -> Duration {
    if let Some(d) = retry_after {
        return d.min(Duration::from_secs(60));
    }
    let cap = Duration::from_millis(200u64.saturating_mul(1 << attempt.min(8)))
        .min(cap)
        .max(Duration::from_millis(2));
    let millis = rand::thread_rng().gen_range(cap.as_millis() as u64 / 2..=cap.as_millis() as u64);
    Duration::from_millis(millis)
}

/// The `Retry-After` header in seconds, if present.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The `error` of a JSON error body, or the body itself.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string())
}

/// An error and its causes, `: `-separated (reqwest's own message hides why a connection
/// failed).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Percent-encodes a query string value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_the_cap() {
        for attempt in 1..20 {
            let d = backoff_capped(attempt, None, Duration::from_secs(5));
            assert!(d <= Duration::from_secs(5), "{attempt}: {d:?}");
            assert!(d >= Duration::from_millis(100), "{attempt}: {d:?}");
        }
        let first = backoff_capped(1, None, Duration::from_secs(30));
        assert!(first <= Duration::from_millis(400), "{first:?}");
        assert_eq!(
            backoff_capped(9, Some(Duration::from_secs(7)), Duration::from_secs(1)),
            Duration::from_secs(7)
        );
        assert_eq!(
            backoff_capped(1, Some(Duration::from_secs(3600)), Duration::from_secs(30)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn urlencode_keeps_unreserved_characters() {
        assert_eq!(urlencode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(urlencode("/var/log/app.log"), "%2Fvar%2Flog%2Fapp.log");
        assert_eq!(urlencode("é"), "%C3%A9");
    }

    #[test]
    fn error_message_reads_json_errors() {
        assert_eq!(error_message("{\"error\":\"too big\"}"), "too big");
        assert_eq!(error_message(" plain \n"), "plain");
    }
}
