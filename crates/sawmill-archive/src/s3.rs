//! The S3 object store, through aws-sdk-s3: AWS itself or any S3-compatible server (endpoint
//! override, path-style addressing).
//!
//! Uploads are create-only (`If-None-Match: *`) and carry a CRC32C checksum that S3 verifies;
//! files larger than the part size go up as a multipart upload whose completion is create-only
//! too. A retried upload whose earlier attempt did land finds the object in place with the same
//! size and succeeds without writing. The SDK retries throttling (`SlowDown`, 503) and transient
//! errors itself with backoff; the archive worker retries whatever still fails.
//!
//! The trait is synchronous (the archive worker is a thread): every call blocks on the tokio
//! runtime the store was created on, so it must not be called from an async task (use
//! `spawn_blocking`).

use crate::lifecycle::{self, LifecycleRule};
use crate::store::{ObjectInfo, ObjectStore, Readability, StoreError};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    self as s3t, ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ExpirationStatus,
    GlacierJobParameters, RestoreRequest, Tier,
};
use aws_sdk_s3::Client;
use base64::Engine;
use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// The content type of archive objects: NDJSON, one event a line.
const CONTENT_TYPE: &str = "application/x-ndjson";
/// The content encoding of archive objects.
const CONTENT_ENCODING: &str = "zstd";

/// How to reach the bucket.
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub bucket: String,
    /// Endpoint override (`http://127.0.0.1:9000`); else the SDK's chain (`AWS_ENDPOINT_URL_S3`…).
    pub endpoint: Option<String>,
    /// Region; else the SDK's chain (`AWS_REGION`, profile, instance metadata).
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible servers.
    pub force_path_style: bool,
    /// Time allowed for one attempt of one request (a whole part, for uploads).
    pub request_timeout: Duration,
    /// Files above this size are uploaded in parts of this size (at least 5 MiB).
    pub part_bytes: u64,
}

/// What applying the lifecycle rule did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleChange {
    /// The bucket already held exactly this rule.
    Unchanged,
    /// The bucket had no rule with this ID.
    Added,
    /// A rule with this ID held other settings.
    Replaced,
    /// The settings use no tier and no expiry: the rule with this ID was taken out.
    Removed,
}

/// An S3 bucket.
pub struct S3Store {
    client: Client,
    bucket: String,
    part_bytes: u64,
    runtime: tokio::runtime::Handle,
    endpoint: Option<String>,
}

/// The checksum S3 expects in `x-amz-checksum-crc32c`: base64 of the big-endian CRC32C.
fn crc32c_base64(digest: &crc_fast::Digest) -> String {
    let crc = digest.finalize() as u32;
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// The CRC32C of `len` bytes of the file at `path` from `offset`, as S3 expects it.
fn crc32c_of_file(path: &Path, offset: u64, len: u64) -> Result<String, StoreError> {
    checksum_file(path, offset, len).map_err(|source| StoreError::LocalFile {
        op: "checksum",
        path: path.to_path_buf(),
        source,
    })
}

fn checksum_file(path: &Path, offset: u64, len: u64) -> std::io::Result<String> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    let mut left = len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "file shrank while being checksummed",
            ));
        }
        digest.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(crc32c_base64(&digest))
}

/// A readable message for any SDK error: code, message and the causes below it.
fn sdk_message<E, R>(e: &SdkError<E, R>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => DisplayErrorContext(e).to_string(),
            }
        }
        _ => DisplayErrorContext(e).to_string(),
    }
}

fn http_status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// A failed S3 request: its code and message, with the SDK's error as the source.
fn sdk_error<E>(op: &'static str, key: &str, e: SdkError<E, HttpResponse>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    StoreError::Remote {
        op,
        key: key.to_string(),
        message: sdk_message(&e),
        source: Some(Box::new(e)),
    }
}

/// A failure around a request (building it, reading a body), with its error as the source.
fn remote(
    op: &'static str,
    key: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Remote {
        op,
        key: key.to_string(),
        message: e.to_string(),
        source: Some(Box::new(e)),
    }
}

/// An answer the store should not have given (or a setting it cannot work without).
fn refused(op: &'static str, key: &str, message: &str) -> StoreError {
    StoreError::Remote {
        op,
        key: key.to_string(),
        message: message.to_string(),
        source: None,
    }
}

/// Why the archive bucket cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("bucket {0} does not exist: create it first")]
    Missing(String),
    #[error("access to bucket {0} denied: check the credentials and the bucket policy")]
    Denied(String),
    #[error(
        "bucket {bucket} refused the request ({why}): check archive.region and archive.endpoint"
    )]
    Refused { bucket: String, why: String },
    #[error("bucket {bucket} unreachable: {why}")]
    Unreachable { bucket: String, why: String },
}

impl BucketError {
    /// True for a configuration error (missing bucket, access denied, wrong region or
    /// endpoint); false when it could not be reached now, which is worth retrying.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, BucketError::Unreachable { .. })
    }
}

impl S3Store {
    /// Checks that the bucket exists and can be used.
    pub async fn check_bucket(&self) -> Result<(), BucketError> {
        let bucket = self.bucket.clone();
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(match http_status(&e) {
                Some(404) => BucketError::Missing(bucket),
                Some(401 | 403) => BucketError::Denied(bucket),
                Some(301 | 400) => BucketError::Refused {
                    bucket,
                    why: sdk_message(&e),
                },
                _ => BucketError::Unreachable {
                    bucket,
                    why: sdk_message(&e),
                },
            }),
        }
    }

    /// Builds the client without contacting the bucket.
    pub async fn new(settings: &S3Settings) -> Result<S3Store, StoreError> {
        let shared = sawmill_aws::sdk_config(&sawmill_aws::AwsSettings {
            region: settings.region.clone(),
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: settings.request_timeout,
            max_attempts: 3,
        })
        .await;
        if shared.region().is_none() {
            return Err(refused(
                "configure",
                &settings.bucket,
                "no AWS region: set archive.region or AWS_REGION",
            ));
        }
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.force_path_style)
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            );
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(S3Store {
            client: Client::from_conf(config.build()),
            bucket: settings.bucket.clone(),
            part_bytes: settings.part_bytes.max(5 << 20),
            runtime: tokio::runtime::Handle::current(),
            endpoint: settings.endpoint.clone(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn block<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    async fn put_single(&self, key: &str, path: &Path, size: u64) -> Result<(), StoreError> {
        let crc = crc32c_of_file(path, 0, size)?;
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| remote("read", key, e))?;
        let sent = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .checksum_crc32_c(crc)
            .content_type(CONTENT_TYPE)
            .content_encoding(CONTENT_ENCODING)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if http_status(&e) == Some(412) => self.same_object(key, size).await,
            Err(e) => Err(sdk_error("put", key, e)),
        }
    }

    async fn put_multipart(&self, key: &str, path: &Path, size: u64) -> Result<(), StoreError> {
        if self.exists_async(key).await? {
            return self.same_object(key, size).await;
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .content_type(CONTENT_TYPE)
            .content_encoding(CONTENT_ENCODING)
            .send()
            .await
            .map_err(|e| sdk_error("start multipart upload of", key, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| refused("start multipart upload of", key, "no upload id"))?
            .to_string();
        let result = self.upload_parts(key, path, size, &upload_id).await;
        if result.is_err() {
            // best effort: the lifecycle rule aborts forgotten uploads after some days too
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    async fn upload_parts(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut number = 1i32;
        while offset < size {
            let len = self.part_bytes.min(size - offset);
            let crc = crc32c_of_file(path, offset, len)?;
            let body = ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(len))
                .build()
                .await
                .map_err(|e| remote("read", key, e))?;
            let part = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .checksum_crc32_c(crc.clone())
                .body(body)
                .send()
                .await
                .map_err(|e| sdk_error("upload part of", key, e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_string))
                    .checksum_crc32_c(crc)
                    .build(),
            );
            offset += len;
            number += 1;
        }
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) if http_status(&e) == Some(412) => self.same_object(key, size).await,
            // the answer was lost or unreadable (some S3-compatible servers answer with another
            // XML root): the upload counts when the object is in place with this size
            Err(e) => match self.same_object(key, size).await {
                Ok(()) => Ok(()),
                Err(_) => Err(sdk_error("complete multipart upload of", key, e)),
            },
        }
    }

    /// After a create-only write found the key taken: fine if it holds an object of this size
    /// (an earlier attempt whose answer was lost), a conflict otherwise.
    async fn same_object(&self, key: &str, size: u64) -> Result<(), StoreError> {
        let head = self
            .head(key)
            .await
            .map_err(|e| sdk_error("check", key, e))?;
        let existing = head.content_length().unwrap_or(-1);
        if existing == size as i64 {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                key: key.to_string(),
                existing: existing.max(0) as u64,
                writing: size,
            })
        }
    }

    async fn exists_async(&self, key: &str) -> Result<bool, StoreError> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(e) if http_status(&e) == Some(404) => Ok(false),
            Err(e) => Err(sdk_error("check", key, e)),
        }
    }

    /// `HeadObject` of `key`.
    async fn head(
        &self,
        key: &str,
    ) -> Result<HeadObjectOutput, SdkError<HeadObjectError, HttpResponse>> {
        self.client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
    }

    /// Every rule of the bucket's lifecycle configuration (none when it has none).
    pub async fn lifecycle_rules(&self) -> Result<Vec<s3t::LifecycleRule>, StoreError> {
        match self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(out) => Ok(out.rules().to_vec()),
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Ok(Vec::new()),
            Err(e) => Err(sdk_error(
                "read lifecycle configuration of",
                &self.bucket,
                e,
            )),
        }
    }

    /// The rule with `id` in force in the bucket, in the AWS JSON shape.
    pub async fn lifecycle_rule(&self, id: &str) -> Result<Option<LifecycleRule>, StoreError> {
        Ok(self
            .lifecycle_rules()
            .await?
            .iter()
            .find(|r| r.id() == Some(id))
            .map(from_sdk_rule))
    }

    /// Puts `rule` into the bucket's lifecycle configuration, replacing the rule with the same
    /// ID and leaving every other rule as it is.
    pub async fn apply_lifecycle(
        &self,
        rule: &LifecycleRule,
    ) -> Result<LifecycleChange, StoreError> {
        let mut rules = self.lifecycle_rules().await?;
        let ours = rules.iter().position(|r| r.id() == Some(rule.id.as_str()));
        if !rule.has_actions() {
            // every tier and expiry off: S3 refuses a rule without actions, so ours goes
            let Some(i) = ours else {
                return Ok(LifecycleChange::Unchanged);
            };
            rules.remove(i);
            if rules.is_empty() {
                self.client
                    .delete_bucket_lifecycle()
                    .bucket(&self.bucket)
                    .send()
                    .await
                    .map_err(|e| sdk_error("delete lifecycle configuration of", &self.bucket, e))?;
                return Ok(LifecycleChange::Removed);
            }
            self.put_lifecycle(rules).await?;
            return Ok(LifecycleChange::Removed);
        }
        let change = match ours {
            Some(i) if from_sdk_rule(&rules[i]) == *rule => return Ok(LifecycleChange::Unchanged),
            Some(i) => {
                rules[i] = to_sdk_rule(rule)?;
                LifecycleChange::Replaced
            }
            None => {
                rules.push(to_sdk_rule(rule)?);
                LifecycleChange::Added
            }
        };
        self.put_lifecycle(rules).await?;
        Ok(change)
    }

    async fn put_lifecycle(&self, rules: Vec<s3t::LifecycleRule>) -> Result<(), StoreError> {
        let config = s3t::BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| remote("build lifecycle rule", &self.bucket, e))?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .lifecycle_configuration(config)
            .send()
            .await
            .map_err(|e| sdk_error("write lifecycle configuration of", &self.bucket, e))?;
        Ok(())
    }
}

/// The SDK's rule for ours.
fn to_sdk_rule(rule: &LifecycleRule) -> Result<s3t::LifecycleRule, StoreError> {
    let bad = |e: aws_sdk_s3::error::BuildError| remote("build lifecycle rule", &rule.id, e);
    let mut transitions = Vec::new();
    for t in &rule.transitions {
        transitions.push(
            s3t::Transition::builder()
                .days(t.days as i32)
                .storage_class(s3t::TransitionStorageClass::from(t.storage_class.as_str()))
                .build(),
        );
    }
    let mut b = s3t::LifecycleRule::builder()
        .id(&rule.id)
        .status(ExpirationStatus::from(rule.status.as_str()))
        .filter(
            s3t::LifecycleRuleFilter::builder()
                .prefix(&rule.filter.prefix)
                .build(),
        )
        .set_transitions((!transitions.is_empty()).then_some(transitions));
    if let Some(e) = &rule.expiration {
        b = b.expiration(
            s3t::LifecycleExpiration::builder()
                .days(e.days as i32)
                .build(),
        );
    }
    if let Some(a) = &rule.abort_incomplete_multipart_upload {
        b = b.abort_incomplete_multipart_upload(
            s3t::AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(a.days_after_initiation as i32)
                .build(),
        );
    }
    b.build().map_err(bad)
}

/// Ours for the SDK's (the fields sawmill manages; others are not compared).
fn from_sdk_rule(r: &s3t::LifecycleRule) -> LifecycleRule {
    let days = |d: Option<i32>| d.unwrap_or(0).max(0) as u32;
    let mut transitions: Vec<lifecycle::Transition> = r
        .transitions()
        .iter()
        .map(|t| lifecycle::Transition {
            days: days(t.days()),
            storage_class: t
                .storage_class()
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
        })
        .collect();
    transitions.sort_by_key(|t| t.days);
    LifecycleRule {
        id: r.id().unwrap_or_default().to_string(),
        status: r.status().as_str().to_string(),
        filter: lifecycle::RuleFilter {
            prefix: r
                .filter()
                .and_then(|f| f.prefix())
                .unwrap_or_default()
                .to_string(),
        },
        transitions,
        expiration: r
            .expiration()
            .and_then(|e| e.days())
            .map(|d| lifecycle::Expiration {
                days: days(Some(d)),
            }),
        abort_incomplete_multipart_upload: r
            .abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation())
            .map(|d| lifecycle::AbortIncompleteMultipartUpload {
                days_after_initiation: days(Some(d)),
            }),
    }
}

impl ObjectStore for S3Store {
    fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        let size = std::fs::metadata(path)
            .map_err(|source| StoreError::LocalFile {
                op: "read",
                path: path.to_path_buf(),
                source,
            })?
            .len();
        self.block(async {
            if size > self.part_bytes {
                self.put_multipart(key, path, size).await
            } else {
                self.put_single(key, path, size).await
            }
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.block(async {
            let mut out = Vec::new();
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| sdk_error("list", prefix, e))?;
                for o in page.contents() {
                    let Some(key) = o.key() else { continue };
                    out.push(ObjectInfo {
                        key: key.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                        storage_class: o.storage_class().map(|c| c.as_str().to_string()),
                    });
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.block(async {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| match e.code() {
                    Some("NoSuchKey") => StoreError::NotFound(key.to_string()),
                    Some("InvalidObjectState") => StoreError::NeedsRestore(key.to_string()),
                    _ => sdk_error("get", key, e),
                })?;
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| remote("get", key, e))?;
            Ok(bytes.into_bytes().to_vec())
        })
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.block(self.exists_async(key))
    }

    fn readability(
        &self,
        key: &str,
        storage_class: Option<&str>,
    ) -> Result<Readability, StoreError> {
        if !matches!(storage_class, Some("GLACIER" | "DEEP_ARCHIVE")) {
            return Ok(Readability::Readable);
        }
        self.block(async {
            let head = self
                .head(key)
                .await
                .map_err(|e| sdk_error("check", key, e))?;
            Ok(match head.restore() {
                None => Readability::NeedsRestore,
                Some(r) if r.contains("ongoing-request=\"true\"") => Readability::Restoring,
                Some(_) => Readability::Readable,
            })
        })
    }

    fn request_restore(&self, key: &str, days: u32, bulk: bool) -> Result<(), StoreError> {
        self.block(async {
            let request = RestoreRequest::builder()
                .days(days.max(1) as i32)
                .glacier_job_parameters(
                    GlacierJobParameters::builder()
                        .tier(if bulk { Tier::Bulk } else { Tier::Standard })
                        .build()
                        .map_err(|e| remote("restore", key, e))?,
                )
                .build();
            match self
                .client
                .restore_object()
                .bucket(&self.bucket)
                .key(key)
                .restore_request(request)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some("RestoreAlreadyInProgress") => Ok(()),
                Err(e) => Err(sdk_error("restore", key, e)),
            }
        })
    }

    fn describe(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("s3://{} at {e}", self.bucket),
            None => format!("s3://{}", self.bucket),
        }
    }
}
