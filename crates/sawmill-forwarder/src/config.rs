//! The forwarder's configuration, read from environment variables (the Lambda way). A
//! mistake is a [`ConfigError`] naming the variable and what to give instead.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SAWMILL_URL` | required | the server's base URL |
//! | `SAWMILL_API_KEY` | none | ingest key, sent as `Authorization: Bearer` |
//! | `SAWMILL_TENANT` | none | tenant to ship as, with an operator key (`X-Sawmill-Tenant`) |
//! | `SAWMILL_FAILURE_BUCKET` | none | where undeliverable batches are stored |
//! | `SAWMILL_FAILURE_PREFIX` | `sawmill-failed/` | key prefix in that bucket |
//! | `SAWMILL_STATIC_FIELDS` | none | JSON object added to every event |
//! | `SAWMILL_REDACT` | none | built-in redactions: `email,ipv4,ipv6,ip,aws_key,card,bearer,all` |
//! | `SAWMILL_REDACT_REGEX` | none | a custom regex whose matches are redacted |
//! | `SAWMILL_S3_FORMAT` | detected | format of S3 objects (`alb`, `vpcflow`, …) |
//! | `SAWMILL_S3_FORCE_PATH_STYLE` | `false` | path-style S3 addressing (S3-compatible servers) |
//! | `SAWMILL_S3_MAX_OBJECT_BYTES` | 2 GiB | largest S3 object read, decompressed |
//! | `SAWMILL_BATCH_MAX_BYTES` | 4 MiB | uncompressed NDJSON per request |
//! | `SAWMILL_BATCH_MAX_EVENTS` | 10000 | events per request |
//! | `SAWMILL_COMPRESSION` | `zstd` | request body compression: `zstd`, `gzip` or `none` |
//! | `SAWMILL_REQUEST_TIMEOUT` | `30s` | one HTTP attempt |
//! | `SAWMILL_CONCURRENCY` | 4 | requests in flight per invocation |

use crate::formats::{Format, UnknownFormat};
use sawmill_client::{ClientConfig, Encoding};
use sawmill_core::redact::{Detector, RedactError, Redactor};
use sawmill_core::tenant::InvalidTenant;
use std::time::Duration;

/// A configuration mistake: names the variable and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "SAWMILL_URL is not set: give the sawmill server's URL, e.g. https://logs.example.com:7480"
    )]
    NoUrl,
    #[error("SAWMILL_URL={0:?} must start with http:// or https://")]
    UrlScheme(String),
    #[error("SAWMILL_STATIC_FIELDS must be a JSON object such as {{\"env\":\"prod\"}}, not {0:?}")]
    StaticFields(String),
    #[error("SAWMILL_REDACT")]
    Redact(#[source] RedactError),
    #[error("SAWMILL_REDACT_REGEX")]
    RedactRegex(#[source] RedactError),
    #[error("SAWMILL_S3_FORMAT")]
    S3Format(#[source] UnknownFormat),
    #[error("SAWMILL_COMPRESSION={0:?}: use zstd, gzip or none")]
    Compression(String),
    #[error("{name}={value:?}: give a whole number from {min} to {max}")]
    Number {
        name: &'static str,
        value: String,
        min: usize,
        max: usize,
    },
    #[error("SAWMILL_REQUEST_TIMEOUT={value:?}")]
    Timeout {
        value: String,
        #[source]
        source: sawmill_core::InvalidTime,
    },
    #[error("{name}={value:?}: use true or false")]
    Flag { name: &'static str, value: String },
    #[error("SAWMILL_TENANT")]
    Tenant(#[source] InvalidTenant),
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The server's base URL, without a trailing `/`.
    pub url: String,
    pub api_key: Option<String>,
    /// Sent as `X-Sawmill-Tenant` (operator keys choose their tenant with it).
    pub tenant: Option<String>,
    pub failure_bucket: Option<String>,
    pub failure_prefix: String,
    pub static_fields: serde_json::Map<String, serde_json::Value>,
    pub redactor: Redactor,
    pub s3_format: Option<Format>,
    pub s3_force_path_style: bool,
    pub s3_max_object_bytes: usize,
    pub batch_max_bytes: usize,
    pub batch_max_events: usize,
    pub compression: Encoding,
    pub request_timeout: Duration,
    pub concurrency: usize,
}

/// Reads the variables of one lookup: unset and blank are the same.
struct Vars<F> {
    get: F,
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn text(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    fn number(
        &self,
        name: &'static str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, ConfigError> {
        match self.text(name) {
            None => Ok(default),
            Some(value) => match value.trim().parse::<usize>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError::Number {
                    name,
                    value,
                    min,
                    max,
                }),
            },
        }
    }

    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.text(name).as_deref().map(str::trim) {
            None | Some("false") | Some("0") | Some("no") => Ok(false),
            Some("true") | Some("1") | Some("yes") => Ok(true),
            Some(other) => Err(ConfigError::Flag {
                name,
                value: other.to_string(),
            }),
        }
    }

    fn url(&self) -> Result<String, ConfigError> {
        let url = self.text("SAWMILL_URL").ok_or(ConfigError::NoUrl)?;
        let url = url.trim().trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::UrlScheme(url.to_string()));
        }
        Ok(url.to_string())
    }

    fn static_fields(&self) -> Result<serde_json::Map<String, serde_json::Value>, ConfigError> {
        match self.text("SAWMILL_STATIC_FIELDS") {
            None => Ok(serde_json::Map::new()),
            Some(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(map)) => Ok(map),
                _ => Err(ConfigError::StaticFields(text)),
            },
        }
    }

    fn redactor(&self) -> Result<Redactor, ConfigError> {
        let detectors = match self.text("SAWMILL_REDACT") {
            Some(names) => Detector::parse_list(&names).map_err(ConfigError::Redact)?,
            None => Vec::new(),
        };
        let custom: Vec<(String, String)> = self
            .text("SAWMILL_REDACT_REGEX")
            .map(|r| vec![("custom".to_string(), r)])
            .unwrap_or_default();
        Redactor::new(&detectors, &custom).map_err(ConfigError::RedactRegex)
    }

    fn compression(&self) -> Result<Encoding, ConfigError> {
        match self.text("SAWMILL_COMPRESSION").as_deref().map(str::trim) {
            None | Some("zstd") => Ok(Encoding::Zstd),
            Some("gzip") => Ok(Encoding::Gzip),
            Some("none") => Ok(Encoding::Identity),
            Some(other) => Err(ConfigError::Compression(other.to_string())),
        }
    }

    fn request_timeout(&self) -> Result<Duration, ConfigError> {
        match self.text("SAWMILL_REQUEST_TIMEOUT") {
            None => Ok(Duration::from_secs(30)),
            Some(value) => sawmill_core::parse_duration(value.trim())
                .map_err(|source| ConfigError::Timeout { value, source }),
        }
    }

    fn tenant(&self) -> Result<Option<String>, ConfigError> {
        let Some(tenant) = self.text("SAWMILL_TENANT") else {
            return Ok(None);
        };
        sawmill_core::tenant::check_tenant(&tenant).map_err(ConfigError::Tenant)?;
        Ok(Some(tenant))
    }

    fn failure_prefix(&self) -> String {
        let mut prefix = self
            .text("SAWMILL_FAILURE_PREFIX")
            .unwrap_or_else(|| "sawmill-failed/".into());
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        prefix
    }
}

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let vars = Vars { get };
        let s3_format = vars
            .text("SAWMILL_S3_FORMAT")
            .map(|f| Format::from_name(f.trim()).map_err(ConfigError::S3Format))
            .transpose()?;
        Ok(Config {
            url: vars.url()?,
            api_key: vars.text("SAWMILL_API_KEY"),
            tenant: vars.tenant()?,
            failure_bucket: vars.text("SAWMILL_FAILURE_BUCKET"),
            failure_prefix: vars.failure_prefix(),
            static_fields: vars.static_fields()?,
            redactor: vars.redactor()?,
            s3_format,
            s3_force_path_style: vars.flag("SAWMILL_S3_FORCE_PATH_STYLE")?,
            s3_max_object_bytes: vars.number(
                "SAWMILL_S3_MAX_OBJECT_BYTES",
                2 << 30,
                1 << 20,
                usize::MAX,
            )?,
            batch_max_bytes: vars.number("SAWMILL_BATCH_MAX_BYTES", 4 << 20, 64 << 10, 64 << 20)?,
            batch_max_events: vars.number("SAWMILL_BATCH_MAX_EVENTS", 10_000, 1, 1_000_000)?,
            compression: vars.compression()?,
            request_timeout: vars.request_timeout()?,
            concurrency: vars.number("SAWMILL_CONCURRENCY", 4, 1, 64)?,
        })
    }

    /// The HTTP client's settings: this server, key and tenant; 5 s to connect (at most the
    /// request timeout), `SAWMILL_REQUEST_TIMEOUT` an attempt.
    pub fn client(&self) -> ClientConfig {
        ClientConfig {
            api_key: self.api_key.clone(),
            tenant: self.tenant.clone(),
            user_agent: concat!("sawmill-forwarder/", env!("CARGO_PKG_VERSION")).to_string(),
            connect_timeout: Duration::from_secs(5).min(self.request_timeout),
            request_timeout: self.request_timeout,
            ..ClientConfig::new(self.url.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn the_tenant_is_checked() {
        let url = ("SAWMILL_URL", "http://127.0.0.1:7480");
        let c = config(&[url, ("SAWMILL_TENANT", "acme")]).unwrap();
        assert_eq!(c.tenant.as_deref(), Some("acme"));
        assert!(config(&[url]).unwrap().tenant.is_none());
        let err = config(&[url, ("SAWMILL_TENANT", "Acme/x")])
            .map(|_| ())
            .map_err(|e| sawmill_core::error::report(&e))
            .unwrap_err();
        assert!(err.contains("SAWMILL_TENANT"), "{err}");
    }

    #[test]
    fn defaults_and_overrides() {
        let c = config(&[("SAWMILL_URL", "https://logs.example.com:7480/")]).unwrap();
        assert_eq!(c.url, "https://logs.example.com:7480");
        assert_eq!(c.compression, Encoding::Zstd);
        assert_eq!(c.batch_max_bytes, 4 << 20);
        assert_eq!(c.failure_prefix, "sawmill-failed/");
        assert!(c.redactor.is_empty());
        let c = config(&[
            ("SAWMILL_URL", "http://127.0.0.1:7480"),
            ("SAWMILL_COMPRESSION", "gzip"),
            ("SAWMILL_STATIC_FIELDS", r#"{"env":"prod"}"#),
            ("SAWMILL_REDACT", "email,card"),
            ("SAWMILL_FAILURE_PREFIX", "failed"),
            ("SAWMILL_S3_FORCE_PATH_STYLE", "true"),
        ])
        .unwrap();
        assert_eq!(c.compression, Encoding::Gzip);
        assert_eq!(c.static_fields["env"], "prod");
        assert!(!c.redactor.is_empty());
        assert_eq!(c.failure_prefix, "failed/");
        assert!(c.s3_force_path_style);
    }

    #[test]
    fn mistakes_name_the_variable_and_the_fix() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[], "SAWMILL_URL is not set"),
            (&[("SAWMILL_URL", "logs:7480")], "must start with http"),
            (
                &[
                    ("SAWMILL_URL", "http://x"),
                    ("SAWMILL_STATIC_FIELDS", "[1]"),
                ],
                "SAWMILL_STATIC_FIELDS must be a JSON object",
            ),
            (
                &[("SAWMILL_URL", "http://x"), ("SAWMILL_REDACT", "mail")],
                "SAWMILL_REDACT: unknown redaction",
            ),
            (
                &[
                    ("SAWMILL_URL", "http://x"),
                    ("SAWMILL_BATCH_MAX_EVENTS", "0"),
                ],
                "SAWMILL_BATCH_MAX_EVENTS=\"0\": give a whole number",
            ),
            (
                &[("SAWMILL_URL", "http://x"), ("SAWMILL_COMPRESSION", "br")],
                "use zstd, gzip or none",
            ),
        ];
        for (vars, want) in cases {
            let e = sawmill_core::error::report(&config(vars).unwrap_err());
            assert!(e.contains(want), "{vars:?}: {e}");
        }
    }
}
