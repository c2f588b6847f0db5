//! The forwarder's configuration, read from environment variables (the Lambda way).
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

use crate::formats::Format;
use sawmill_core::redact::{Detector, Redactor};
use std::time::Duration;

/// Request body compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The `Content-Encoding` header value, if any.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// `…/api/v1/ingest` on the server.
    pub ingest_url: String,
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
    pub compression: Compression,
    pub request_timeout: Duration,
    pub concurrency: usize,
}

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<Config, String> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let url = var("SAWMILL_URL")
            .ok_or("SAWMILL_URL is not set: give the sawmill server's URL, e.g. https://logs.example.com:7480")?;
        let url = url.trim().trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "SAWMILL_URL={url:?} must start with http:// or https://"
            ));
        }
        let static_fields = match var("SAWMILL_STATIC_FIELDS") {
            None => serde_json::Map::new(),
            Some(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => {
                    return Err(format!(
                        "SAWMILL_STATIC_FIELDS must be a JSON object such as {{\"env\":\"prod\"}}, not {text:?}"
                    ))
                }
            },
        };
        let detectors = match var("SAWMILL_REDACT") {
            Some(names) => {
                Detector::parse_list(&names).map_err(|e| format!("SAWMILL_REDACT: {e}"))?
            }
            None => Vec::new(),
        };
        let custom: Vec<(String, String)> = var("SAWMILL_REDACT_REGEX")
            .map(|r| vec![("custom".to_string(), r)])
            .unwrap_or_default();
        let redactor =
            Redactor::new(&detectors, &custom).map_err(|e| format!("SAWMILL_REDACT_REGEX: {e}"))?;
        let s3_format = var("SAWMILL_S3_FORMAT")
            .map(|f| Format::from_name(f.trim()).map_err(|e| format!("SAWMILL_S3_FORMAT: {e}")))
            .transpose()?;
        let compression = match var("SAWMILL_COMPRESSION").as_deref().map(str::trim) {
            None | Some("zstd") => Compression::Zstd,
            Some("gzip") => Compression::Gzip,
            Some("none") => Compression::None,
            Some(other) => {
                return Err(format!(
                    "SAWMILL_COMPRESSION={other:?}: use zstd, gzip or none"
                ))
            }
        };
        let number =
            |name: &str, default: usize, min: usize, max: usize| -> Result<usize, String> {
                match var(name) {
                    None => Ok(default),
                    Some(v) => match v.trim().parse::<usize>() {
                        Ok(n) if (min..=max).contains(&n) => Ok(n),
                        _ => Err(format!(
                            "{name}={v:?}: give a whole number from {min} to {max}"
                        )),
                    },
                }
            };
        let request_timeout = match var("SAWMILL_REQUEST_TIMEOUT") {
            None => Duration::from_secs(30),
            Some(v) => sawmill_core::parse_duration(v.trim())
                .map_err(|e| format!("SAWMILL_REQUEST_TIMEOUT={v:?}: {e}"))?,
        };
        let flag = |name: &str| -> Result<bool, String> {
            match var(name).as_deref().map(str::trim) {
                None | Some("false") | Some("0") | Some("no") => Ok(false),
                Some("true") | Some("1") | Some("yes") => Ok(true),
                Some(other) => Err(format!("{name}={other:?}: use true or false")),
            }
        };
        let mut failure_prefix =
            var("SAWMILL_FAILURE_PREFIX").unwrap_or_else(|| "sawmill-failed/".into());
        if !failure_prefix.is_empty() && !failure_prefix.ends_with('/') {
            failure_prefix.push('/');
        }
        Ok(Config {
            ingest_url: format!("{url}/api/v1/ingest"),
            api_key: var("SAWMILL_API_KEY"),
            tenant: match var("SAWMILL_TENANT") {
                Some(t) => {
                    sawmill_core::tenant::check_tenant(&t)
                        .map_err(|e| format!("SAWMILL_TENANT: {e}"))?;
                    Some(t)
                }
                None => None,
            },
            failure_bucket: var("SAWMILL_FAILURE_BUCKET"),
            failure_prefix,
            static_fields,
            redactor,
            s3_format,
            s3_force_path_style: flag("SAWMILL_S3_FORCE_PATH_STYLE")?,
            s3_max_object_bytes: number(
                "SAWMILL_S3_MAX_OBJECT_BYTES",
                2 << 30,
                1 << 20,
                usize::MAX,
            )?,
            batch_max_bytes: number("SAWMILL_BATCH_MAX_BYTES", 4 << 20, 64 << 10, 64 << 20)?,
            batch_max_events: number("SAWMILL_BATCH_MAX_EVENTS", 10_000, 1, 1_000_000)?,
            compression,
            request_timeout,
            concurrency: number("SAWMILL_CONCURRENCY", 4, 1, 64)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
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
        let err = config(&[url, ("SAWMILL_TENANT", "Acme/x")]).unwrap_err();
        assert!(err.contains("SAWMILL_TENANT"), "{err}");
    }

    #[test]
    fn defaults_and_overrides() {
        let c = config(&[("SAWMILL_URL", "https://logs.example.com:7480/")]).unwrap();
        assert_eq!(c.ingest_url, "https://logs.example.com:7480/api/v1/ingest");
        assert_eq!(c.compression, Compression::Zstd);
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
        assert_eq!(c.compression, Compression::Gzip);
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
            let e = config(vars).unwrap_err();
            assert!(e.contains(want), "{vars:?}: {e}");
        }
    }
}
