//! A client bound to one sawmill server: where it is, how to authenticate, and the JSON API
//! helpers of the command-line tools (URL building, error answers).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::StatusCode;
use std::time::Duration;

/// What is kept verbatim in a path segment or query value: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a path segment or a query string value.
pub(crate) fn encode_component(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// Where the server is and how to talk to it.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The server's base URL, such as `https://logs.example.com:7480`.
    pub url: String,
    /// Sent as `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// The tenant to act for (an operator key), sent as `X-Sawmill-Tenant`.
    pub tenant: Option<String>,
    pub user_agent: String,
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest time one request may take, answer included.
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// A server without API key or tenant; 10 s to connect, 120 s a request.
    pub fn new(url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            api_key: None,
            tenant: None,
            user_agent: concat!("sawmill/", env!("CARGO_PKG_VERSION")).to_string(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// Why a client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server URL {0:?} must start with http:// or https://")]
    Scheme(String),
    #[error("cannot create the HTTP client")]
    Build(#[source] reqwest::Error),
}

/// Why a request of the JSON API failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No answer: the connection failed or timed out.
    #[error("cannot reach {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered, but the answer could not be read whole.
    #[error("the server answered {status}, then reading the answer failed")]
    Read {
        status: StatusCode,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{status}: {message}")]
    Status { status: StatusCode, message: String },
    /// The server answered success with something that is not JSON.
    #[error("unexpected answer from the server: {body}")]
    NotJson {
        body: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A client bound to one server; cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
    tenant: Option<String>,
}

impl Client {
    pub fn new(config: &ClientConfig) -> Result<Client, ClientError> {
        let base = config.url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Scheme(config.url.clone()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout.min(config.request_timeout))
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.as_str())
            .build()
            .map_err(ClientError::Build)?;
        Ok(Client {
            http,
            base,
            api_key: config.api_key.clone(),
            tenant: config.tenant.clone(),
        })
    }

    /// The server's base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The URL of `path` (which starts with `/`) on the server, with `query` percent-encoded.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}{path}", self.base);
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode_component(name));
            url.push('=');
            url.push_str(&encode_component(value));
        }
        url
    }

    /// `path` with `segment` appended as one percent-encoded path segment.
    pub fn path_with(path: &str, segment: &str) -> String {
        format!(
            "{}/{}",
            path.trim_end_matches('/'),
            encode_component(segment)
        )
    }

    /// A request with the API key and the tenant.
    pub(crate) fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, url);
        if let Some(tenant) = &self.tenant {
            req = req.header("x-sawmill-tenant", tenant);
        }
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        req
    }

    /// `GET path?query`, answered with JSON.
    pub async fn get_json(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<serde_json::Value, RequestError> {
        let url = self.url(path, query);
        self.exchange(self.request(reqwest::Method::GET, &url), url)
            .await
    }

    /// `POST path` with a JSON body, answered with JSON.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, RequestError> {
        let url = self.url(path, &[]);
        let req = self
            .request(reqwest::Method::POST, &url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        self.exchange(req, url).await
    }

    async fn exchange(
        &self,
        req: reqwest::RequestBuilder,
        url: String,
    ) -> Result<serde_json::Value, RequestError> {
        let resp = req
            .send()
            .await
            .map_err(|source| RequestError::Unreachable {
                url,
                source: source.without_url(),
            })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|source| RequestError::Read { status, source })?;
        if !status.is_success() {
            return Err(RequestError::Status {
                status,
                message: error_message(&text),
            });
        }
        serde_json::from_str(&text).map_err(|source| RequestError::NotJson {
            body: snippet(&text),
            source,
        })
    }
}

/// The `error` of a JSON error body (`{"error":"…"}`), or the body itself (its first 200
/// characters), or `(empty body)`.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| snippet(body))
}

/// The first 200 characters of a body, trimmed, for a message.
pub(crate) fn snippet(body: &str) -> String {
    let text: String = body.trim().chars().take(200).collect();
    if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Client {
        Client::new(&ClientConfig::new(url)).expect("client")
    }

    #[test]
    fn urls_are_built_with_encoded_components() {
        let c = client("http://127.0.0.1:7480/");
        assert_eq!(c.base_url(), "http://127.0.0.1:7480");
        assert_eq!(
            c.url("/api/v1/ingest", &[("source", "/var/log/app.log")]),
            "http://127.0.0.1:7480/api/v1/ingest?source=%2Fvar%2Flog%2Fapp.log"
        );
        assert_eq!(
            c.url("/x", &[("q", "a-b_c.d~e é"), ("n", "1&2")]),
            "http://127.0.0.1:7480/x?q=a-b_c.d~e%20%C3%A9&n=1%262"
        );
        assert_eq!(
            Client::path_with("/api/v1/archive/restores", "r/1 2"),
            "/api/v1/archive/restores/r%2F1%202"
        );
    }

    #[test]
    fn a_url_without_a_scheme_is_refused() {
        let err = Client::new(&ClientConfig::new("logs:7480")).unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
    }

    #[test]
    fn error_messages_read_json_errors() {
        assert_eq!(error_message("{\"error\":\"too big\"}"), "too big");
        assert_eq!(error_message(" plain \n"), "plain");
        assert_eq!(error_message(""), "(empty body)");
        assert_eq!(error_message(&"x".repeat(500)).len(), 200);
    }
}
