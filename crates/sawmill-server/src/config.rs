//! Server configuration: the TOML file, its defaults and validation.
//!
//! With no file every setting has its default (the embedded default: data in
//! `./sawmill-data`, listening on `127.0.0.1:7480`). Unknown keys are errors that name the key.
//! Command-line flags and `SAWMILL_*` environment variables override the file.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Where the WAL, the index and the server's state live.
    pub data_dir: PathBuf,
    pub index: IndexSection,
    pub ingest: IngestSection,
    pub search: SearchSection,
    pub wal: WalSection,
    pub archive: ArchiveSection,
    pub alerts: AlertsSection,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<TlsSection>,
    pub limits: LimitsSection,
    /// Ingest policy of tenants without a `[tenants.<name>]` section of their own.
    pub tenant_defaults: TenantSection,
    /// Ingest policy per tenant (settings not given there come from `[tenant_defaults]`).
    pub tenants: BTreeMap<String, TenantSection>,
    /// Run without API keys on a non-loopback address (the server warns at start).
    pub allow_anonymous: bool,
}

/// `[tls]`: HTTPS.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain, leaf first; relative to the config file.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1); relative to the config file.
    pub key: PathBuf,
}

/// `[limits]`: server-wide safety limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Below this much free space on the data directory's file system, ingest answers 507
    /// (0 disables the check; a full disk is still reported by the WAL itself).
    pub min_free_disk_bytes: u64,
    /// Connections open at once at most; beyond it new connections are closed at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (also between requests on a kept-alive
    /// connection); slower connections are closed.
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// On shutdown, how long requests in flight may take to finish.
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            min_free_disk_bytes: 256 << 20,
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(60),
        }
    }
}

/// The ingest policy of a tenant: rate limit and redaction.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantSection {
    /// Sustained ingest rate, in decompressed bytes per second (absent or 0: unlimited).
    pub ingest_bytes_per_sec: Option<u64>,
    /// Bytes that may arrive at once above the rate (default twice the rate).
    pub ingest_burst_bytes: Option<u64>,
    /// Built-in detectors to redact: email, ipv4, ipv6, ip, aws_key, card, bearer, all.
    pub redact: Option<Vec<String>>,
    /// Custom redactions: name = regex; matches become `[REDACTED:<name>]`.
    pub redact_patterns: Option<BTreeMap<String, String>>,
}

impl TenantSection {
    /// This tenant's settings, with the defaults' where it gives none.
    pub fn over(&self, defaults: &TenantSection) -> TenantSection {
        TenantSection {
            ingest_bytes_per_sec: self.ingest_bytes_per_sec.or(defaults.ingest_bytes_per_sec),
            // a tenant that sets its own rate gets its own default burst (twice its rate),
            // not the burst that went with the default rate
            ingest_burst_bytes: match self.ingest_bytes_per_sec {
                Some(_) => self.ingest_burst_bytes,
                None => self.ingest_burst_bytes.or(defaults.ingest_burst_bytes),
            },
            redact: self.redact.clone().or_else(|| defaults.redact.clone()),
            redact_patterns: self
                .redact_patterns
                .clone()
                .or_else(|| defaults.redact_patterns.clone()),
        }
    }
}

/// `[alerts]`: alert rules over the log stream.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// The rules file (YAML); relative to the config file. No file: no rules, and
    /// notifications of the embedded default go to the server's log.
    pub rules: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7480)),
            data_dir: PathBuf::from("./sawmill-data"),
            index: IndexSection::default(),
            ingest: IngestSection::default(),
            search: SearchSection::default(),
            wal: WalSection::default(),
            archive: ArchiveSection::default(),
            alerts: AlertsSection::default(),
            tls: None,
            limits: LimitsSection::default(),
            tenant_defaults: TenantSection::default(),
            tenants: BTreeMap::new(),
            allow_anonymous: false,
        }
    }
}

/// `[index]`: the hot search index.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexSection {
    /// How soon an acknowledged event becomes searchable.
    #[serde(deserialize_with = "duration")]
    pub refresh_interval: Duration,
    /// Day partitions older than this are deleted; older events are archived only.
    #[serde(deserialize_with = "duration")]
    pub hot_retention: Duration,
    /// Indexing threads per day partition being written.
    pub writer_threads: usize,
    /// Indexing memory, in MiB, shared by the day partitions being written.
    pub writer_memory_mib: usize,
    /// Day partitions written at the same time at most (late or backfilled events); each
    /// gets `writer_memory_mib / max_open_writers`.
    pub max_open_writers: usize,
}

impl Default for IndexSection {
    fn default() -> Self {
        IndexSection {
            refresh_interval: Duration::from_secs(1),
            hot_retention: Duration::from_secs(7 * 86_400),
            writer_threads: 2,
            writer_memory_mib: 256,
            max_open_writers: 4,
        }
    }
}

/// `[ingest]`: limits of the ingest API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Largest request body accepted, as sent (compressed or not).
    pub max_body_bytes: usize,
    /// Largest body after decompression.
    pub max_decompressed_bytes: usize,
    /// Largest single line (event).
    pub max_line_bytes: usize,
    /// Most fields (leaf values) in one event.
    pub max_fields: usize,
    /// Deepest nesting of objects and arrays in one event.
    pub max_depth: usize,
    /// Memory held by request bodies being processed; beyond it ingest answers 503.
    pub max_inflight_bytes: usize,
    /// Events acknowledged but not yet searchable; beyond it ingest answers 503.
    pub max_index_lag_events: u64,
    /// Longest time a client may take to send its body.
    #[serde(deserialize_with = "duration")]
    pub body_timeout: Duration,
    /// Document ids (Elasticsearch `_index` + `_id`) remembered to keep re-sent documents
    /// once, within a day; beyond it the oldest are forgotten. About 100 bytes each.
    pub max_document_ids: usize,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            max_line_bytes: 1 << 20,
            max_fields: 1000,
            max_depth: 32,
            max_inflight_bytes: 512 << 20,
            max_index_lag_events: 5_000_000,
            body_timeout: Duration::from_secs(60),
            max_document_ids: 1_000_000,
        }
    }
}

impl IngestSection {
    /// The limits every event is decoded under.
    pub fn limits(&self) -> sawmill_core::Limits {
        sawmill_core::Limits {
            max_body_bytes: self.max_body_bytes,
            max_decompressed_bytes: self.max_decompressed_bytes,
            max_line_bytes: self.max_line_bytes,
            max_fields: self.max_fields,
            max_depth: self.max_depth,
        }
    }
}

/// `[search]`: limits of the search API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchSection {
    /// Searches running at once; more wait up to `queue_timeout`, then get 503.
    pub max_concurrent: usize,
    #[serde(deserialize_with = "duration")]
    pub queue_timeout: Duration,
    /// Longest time a search or histogram may take before it is answered 503.
    #[serde(deserialize_with = "duration")]
    pub max_time: Duration,
}

impl Default for SearchSection {
    fn default() -> Self {
        SearchSection {
            max_concurrent: 8,
            queue_timeout: Duration::from_secs(10),
            max_time: Duration::from_secs(60),
        }
    }
}

/// `[wal]`: the write-ahead log.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalSection {
    /// Size at which a WAL segment is closed and a new one started.
    pub segment_bytes: u64,
    /// WAL bytes on disk at most: beyond it (a long archive outage) ingest answers 503.
    pub max_bytes: u64,
}

impl Default for WalSection {
    fn default() -> Self {
        WalSection {
            segment_bytes: 64 << 20,
            max_bytes: 16 << 30,
        }
    }
}

/// Where archive objects go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveBackend {
    /// A local folder (`path`, default `<data_dir>/archive`).
    Fs,
    /// An S3 bucket (`bucket`, `endpoint`, `region`, `force_path_style`).
    S3,
}

/// `[archive]`: long-term storage of every event.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveSection {
    pub backend: ArchiveBackend,
    /// Root folder of the `fs` backend; default `<data_dir>/archive`.
    pub path: Option<PathBuf>,
    /// Key prefix of every object.
    pub prefix: String,
    /// Uncompressed bytes at which a batch is sealed.
    pub batch_max_bytes: u64,
    /// Age at which an open batch is sealed.
    #[serde(deserialize_with = "duration")]
    pub batch_max_age: Duration,
    /// Batches open at once (tenants × hours being written).
    pub max_open_batches: usize,
    /// zstd level of archive objects (1–19).
    pub zstd_level: i32,
    /// Acknowledged events not yet read by the archive beyond which it runs at normal CPU
    /// priority until it is back to a quarter of that. Below it, archiving yields to ingest
    /// and indexing (nice 19) and catches up when they pause; larger values let longer
    /// bursts pass before archiving competes for CPU, at the price of a larger backlog under
    /// sustained load (about this plus one batch).
    pub catch_up_events: u64,
    /// Names this server in object keys; default the host name.
    pub writer: Option<String>,
    /// Bucket of the `s3` backend.
    pub bucket: Option<String>,
    /// S3 endpoint override; else the AWS SDK chain (`AWS_ENDPOINT_URL_S3`, …).
    pub endpoint: Option<String>,
    /// S3 region; else the AWS SDK chain (`AWS_REGION`, profile, instance metadata).
    pub region: Option<String>,
    /// Path-style S3 addressing, for most S3-compatible servers.
    pub force_path_style: bool,
    /// Time allowed for one attempt of one S3 request.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Objects larger than this go up as multipart uploads in parts of this size.
    pub multipart_part_bytes: u64,
    /// How long events restored from the archive stay searchable.
    #[serde(deserialize_with = "duration")]
    pub restore_ttl: Duration,
    /// Storage tiers and expiry of archive objects in S3.
    pub lifecycle: sawmill_archive::lifecycle::LifecycleSettings,
}

impl Default for ArchiveSection {
    fn default() -> Self {
        ArchiveSection {
            backend: ArchiveBackend::Fs,
            path: None,
            prefix: "logs/v1".into(),
            batch_max_bytes: 64 << 20,
            batch_max_age: Duration::from_secs(300),
            max_open_batches: 64,
            zstd_level: 3,
            catch_up_events: sawmill_archive::DEFAULT_CATCH_UP_LAG,
            writer: None,
            bucket: None,
            endpoint: None,
            region: None,
            force_path_style: false,
            request_timeout: Duration::from_secs(60),
            multipart_part_bytes: 16 << 20,
            restore_ttl: Duration::from_secs(24 * 3600),
            lifecycle: Default::default(),
        }
    }
}

/// A configuration error that says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("config: {0}")]
    Invalid(String),
    #[error("config: {0}")]
    Policy(#[from] crate::limits::PolicyError),
}

impl Config {
    /// Reads a TOML config file. Relative `data_dir` is relative to the working directory.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Config::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })?;
        // the rules file and the TLS files are relative to the config file
        if let Some(dir) = path.parent() {
            let resolve = |p: &mut PathBuf| {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            };
            if let Some(rules) = config.alerts.rules.as_mut() {
                resolve(rules);
            }
            if let Some(tls) = config.tls.as_mut() {
                resolve(&mut tls.cert);
                resolve(&mut tls.key);
            }
        }
        Ok(config)
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks settings that are valid TOML but impossible.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.index.refresh_interval < Duration::from_millis(50) {
            return invalid("index.refresh_interval must be at least 50ms");
        }
        if self.index.hot_retention < Duration::from_secs(3600) {
            return invalid("index.hot_retention must be at least 1h");
        }
        if self.index.writer_threads == 0 || self.index.writer_threads > 64 {
            return invalid("index.writer_threads must be between 1 and 64");
        }
        if self.index.max_open_writers == 0 || self.index.max_open_writers > 64 {
            return invalid("index.max_open_writers must be between 1 and 64");
        }
        let needed = 16 * self.index.writer_threads * self.index.max_open_writers;
        if self.index.writer_memory_mib < needed {
            return Err(ConfigError::Invalid(format!(
                "index.writer_memory_mib must be at least {needed}: 16 per writer thread of each open writer"
            )));
        }
        if self.ingest.max_body_bytes == 0 || self.ingest.max_decompressed_bytes == 0 {
            return invalid(
                "ingest.max_body_bytes and ingest.max_decompressed_bytes must be positive",
            );
        }
        if self.ingest.max_line_bytes == 0 || self.ingest.max_fields == 0 {
            return invalid("ingest.max_line_bytes and ingest.max_fields must be positive");
        }
        if self.ingest.max_inflight_bytes < self.ingest.max_body_bytes {
            return invalid("ingest.max_inflight_bytes must be at least ingest.max_body_bytes");
        }
        if self.search.max_concurrent == 0 {
            return invalid("search.max_concurrent must be at least 1");
        }
        if self.wal.segment_bytes < (1 << 20) {
            return invalid("wal.segment_bytes must be at least 1 MiB");
        }
        if self.wal.max_bytes < 2 * self.wal.segment_bytes {
            return invalid("wal.max_bytes must be at least twice wal.segment_bytes");
        }
        let a = &self.archive;
        if a.batch_max_bytes < 1024 {
            return invalid("archive.batch_max_bytes must be at least 1024");
        }
        if a.batch_max_age < Duration::from_secs(1) {
            return invalid("archive.batch_max_age must be at least 1s");
        }
        if a.max_open_batches == 0 {
            return invalid("archive.max_open_batches must be at least 1");
        }
        if a.catch_up_events == 0 {
            return invalid("archive.catch_up_events must be at least 1");
        }
        if !(1..=19).contains(&a.zstd_level) {
            return invalid("archive.zstd_level must be between 1 and 19");
        }
        if a.prefix.split('/').any(|p| p == ".." || p == ".") {
            return invalid("archive.prefix must not contain '.' or '..' segments");
        }
        if a.backend == ArchiveBackend::S3 && a.bucket.as_deref().unwrap_or("").is_empty() {
            return invalid("archive.bucket is required with backend = \"s3\"");
        }
        if a.backend == ArchiveBackend::Fs && (a.bucket.is_some() || a.endpoint.is_some()) {
            return invalid(
                "archive.bucket and archive.endpoint need backend = \"s3\" (the backend is \"fs\")",
            );
        }
        if a.request_timeout < Duration::from_secs(1) {
            return invalid("archive.request_timeout must be at least 1s");
        }
        if a.multipart_part_bytes < (5 << 20) || a.multipart_part_bytes > (5 << 30) {
            return invalid(
                "archive.multipart_part_bytes must be between 5 MiB (5242880) and 5 GiB (S3's part limits)",
            );
        }
        if a.restore_ttl < Duration::from_secs(60) {
            return invalid("archive.restore_ttl must be at least 1m");
        }
        a.lifecycle
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if self.limits.max_connections == 0 {
            return invalid("limits.max_connections must be at least 1");
        }
        if self.limits.header_read_timeout < Duration::from_millis(100) {
            return invalid("limits.header_read_timeout must be at least 100ms");
        }
        crate::limits::TenantPolicies::new(self)?;
        Ok(())
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    sawmill_core::parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_embedded_default() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7480");
        assert_eq!(c.data_dir, PathBuf::from("./sawmill-data"));
        assert_eq!(c.index.refresh_interval, Duration::from_secs(1));
        c.validate().unwrap();
    }

    #[test]
    fn contract_keys_parse() {
        let c = Config::from_toml(
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/tmp/x\"\n[index]\nrefresh_interval = \"500ms\"\nhot_retention = \"3d\"\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.index.refresh_interval, Duration::from_millis(500));
        assert_eq!(c.index.hot_retention, Duration::from_secs(3 * 86_400));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml("[index]\nrefresh = \"1s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("refresh"), "{err}");
        let err = Config::from_toml("colour = 1\n").unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_durations_are_explained() {
        let err = Config::from_toml("[index]\nrefresh_interval = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("soon"), "{err}");
    }

    #[test]
    fn impossible_settings_are_rejected() {
        let mut c = Config::default();
        c.index.writer_threads = 0;
        assert!(c.validate().is_err());
    }
}
