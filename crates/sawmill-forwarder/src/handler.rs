//! The Lambda handler: recognizes what AWS sent and ships the logs in it.
//!
//! Recognized shapes:
//! - CloudWatch Logs subscription (`{"awslogs":{"data":…}}`): one event per log event;
//!   `CONTROL_MESSAGE` is acknowledged and ships nothing.
//! - S3 `ObjectCreated` notifications, direct (`Records[].eventSource = aws:s3`), through SNS,
//!   inside SQS messages (also SNS inside SQS) and from EventBridge (`source = aws.s3`): the
//!   object is read, gunzipped when needed and parsed by its format ([`crate::formats`]).
//! - Kinesis records carrying CloudWatch Logs data (gzip) or plain log lines.
//! - SQS messages carrying any of the above, or log lines themselves.
//!
//! SQS and Kinesis batches answer `{"batchItemFailures":[…]}` naming only the records that
//! failed, so the source retries those alone. Anything else fails the whole invocation with a
//! message that says what was received.

use crate::batch::{Batch, Batcher};
use crate::config::ConfigError;
use crate::deliver::{Deliveries, Report, Shipper};
use crate::enrich::{Enricher, Origin};
use crate::failures::AwsError;
use crate::formats::{self, Format, ParseError};
use aws_lambda_events::event::cloudwatch_logs::LogData;
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use sawmill_client::ClientError;
use sawmill_core::error::report as error_report;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::time::Instant;

/// Why an invocation (or one SQS or Kinesis record of it) failed; the message says what was
/// received or what to change.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("unrecognized event: {0}. The forwarder handles CloudWatch Logs subscriptions, S3 ObjectCreated notifications (direct, SNS, SQS or EventBridge), Kinesis and SQS batches")]
    Unrecognized(String),
    #[error("malformed {kind} event")]
    Malformed {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "malformed CloudWatch Logs event: awslogs.data must be a string (base64 of gzipped JSON)"
    )]
    LogsDataMissing,
    #[error("malformed CloudWatch Logs event: awslogs.data is not base64")]
    LogsBase64(#[source] base64::DecodeError),
    #[error("malformed CloudWatch Logs event: awslogs.data")]
    LogsGzip(#[source] sawmill_core::DecodeError),
    #[error("malformed CloudWatch Logs event: the subscription JSON")]
    LogsJson(#[source] serde_json::Error),
    #[error("cannot gunzip Kinesis record {seq}")]
    KinesisGzip {
        seq: String,
        #[source]
        source: sawmill_core::DecodeError,
    },
    #[error("Kinesis record {seq} is gzip but not CloudWatch Logs data")]
    KinesisNotLogs {
        seq: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("an S3 event record has no {0}")]
    S3Record(&'static str),
    #[error("S3 object key {key:?} is not valid URL encoding")]
    S3Key {
        key: String,
        #[source]
        source: std::str::Utf8Error,
    },
    #[error("an EventBridge S3 event without {0}")]
    EventBridge(&'static str),
    #[error("the SNS message is not JSON (the forwarder expects S3 notifications through SNS)")]
    SnsNotJson(#[source] serde_json::Error),
    #[error("the SNS message holds {0}, not an S3 notification")]
    SnsNotS3(String),
    #[error("S3 events need an S3 client, which could not be configured")]
    NoS3Client,
    #[error("cannot read {address}")]
    S3Read {
        address: String,
        #[source]
        source: AwsError,
    },
    #[error("{address} is {size} bytes, over SAWMILL_S3_MAX_OBJECT_BYTES ({limit}); raise it (and the function's memory) or split the files")]
    TooLarge {
        address: String,
        size: i64,
        limit: usize,
    },
    #[error("{address} is larger than SAWMILL_S3_MAX_OBJECT_BYTES ({limit}) once decompressed; its first {limit} bytes were shipped. Raise the limit (and the function's memory) or split the files")]
    TooLargeDecompressed { address: String, limit: usize },
    #[error("cannot read {address}")]
    ObjectRead {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {address} as {format}")]
    Parse {
        address: String,
        format: Format,
        #[source]
        source: ParseError,
    },
    #[error("parsing {address} failed")]
    ParseTask {
        address: String,
        #[source]
        source: tokio::task::JoinError,
    },
    /// Batches were stored for replay or lost (the report's summary).
    #[error("{0}")]
    Undelivered(String),
}

/// Why the forwarder could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Everything an invocation needs, built once per process.
pub struct Forwarder {
    pub shipper: Shipper,
    pub enricher: Enricher,
    pub s3: Option<aws_sdk_s3::Client>,
    pub failures: Option<Arc<crate::failures::FailureStore>>,
    /// The function's region (`AWS_REGION`), for `aws.region`.
    pub region: Option<String>,
}

/// One S3 object to read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ObjectRef {
    bucket: String,
    key: String,
    region: Option<String>,
}

impl Forwarder {
    /// The failure bucket, when one is configured.
    pub fn failures(&self) -> Option<&crate::failures::FailureStore> {
        self.failures.as_deref()
    }

    /// Handles one invocation. `Ok` carries the answer for Lambda; `Err` fails the invocation.
    pub async fn handle(&self, event: Value, deadline: Instant) -> Result<Value, HandlerError> {
        let kind = classify(&event);
        match kind {
            Kind::CloudWatch => {
                let data = decode_logs_event(event)?;
                let report = self.ship_logs(&data, deadline).await;
                finish(report, json!({"kind": "cloudwatch_logs"}))
            }
            Kind::S3 | Kind::EventBridge | Kind::Sns => {
                let objects = match kind {
                    Kind::S3 => s3_objects(event)?,
                    Kind::EventBridge => eventbridge_object(&event)?.into_iter().collect(),
                    _ => sns_objects(event)?,
                };
                let mut report = Report::default();
                for object in &objects {
                    report.add(self.ship_object(object, deadline).await?);
                }
                finish(report, json!({"kind": "s3", "objects": objects.len()}))
            }
            Kind::Sqs => self.handle_sqs(event, deadline).await,
            Kind::Kinesis => self.handle_kinesis(event, deadline).await,
            Kind::S3Test => Ok(json!({"kind": "s3_test_event", "events": 0})),
            Kind::Empty => Ok(json!({"events": 0})),
            Kind::Unknown(what) => Err(HandlerError::Unrecognized(what)),
        }
    }

    /// CloudWatch Logs data: one event per log event.
    async fn ship_logs(&self, data: &LogData, deadline: Instant) -> Report {
        if data.message_type == "CONTROL_MESSAGE" {
            return Report::default();
        }
        let origin = Origin::new(data.log_group.clone())
            .with("account_id", Some(&data.owner))
            .with("region", self.region.as_deref())
            .with("log_group", Some(&data.log_group))
            .with("log_stream", Some(&data.log_stream));
        let events = data.log_events.iter().map(|e| {
            (
                self.enricher.from_message(Some(e.timestamp), &e.message),
                Some(e.id.as_str()),
            )
        });
        self.ship_events(&origin, events, deadline).await
    }

    /// Enriches, batches and delivers events with their ids.
    async fn ship_events<'a>(
        &self,
        origin: &Origin,
        events: impl Iterator<Item = (serde_json::Map<String, Value>, Option<&'a str>)>,
        deadline: Instant,
    ) -> Report {
        let config = self.shipper.config();
        let mut batcher = Batcher::new(config.batch_max_bytes, config.batch_max_events);
        let mut deliveries = Deliveries::new(self.shipper.clone(), deadline);
        let mut line = Vec::new();
        for (event, id) in events {
            line.clear();
            self.enricher.write(event, origin, id, &mut line);
            for batch in batcher.push(&line) {
                deliveries.submit(batch).await;
            }
        }
        if let Some(batch) = batcher.take() {
            deliveries.submit(batch).await;
        }
        deliveries.finish().await
    }

    /// Reads an S3 object and ships its records.
    async fn ship_object(
        &self,
        object: &ObjectRef,
        deadline: Instant,
    ) -> Result<Report, HandlerError> {
        let address = format!("s3://{}/{}", object.bucket, object.key);
        let raw = self.fetch_object(object, &address).await?;
        let config = self.shipper.config();
        let job = ParseJob {
            address: address.clone(),
            key: object.key.clone(),
            format: config.s3_format,
            limit: config.s3_max_object_bytes,
            max_bytes: config.batch_max_bytes,
            max_events: config.batch_max_events,
            enricher: self.enricher.clone(),
            origin: Origin::new(address.clone())
                .with("account_id", account_in_key(&object.key))
                .with(
                    "region",
                    object.region.as_deref().or(self.region.as_deref()),
                )
                .with("s3_bucket", Some(&object.bucket))
                .with("s3_key", Some(&object.key)),
        };
        // parse on a blocking thread; batches come back through a small channel, so at most
        // a few are held at once whatever the object's size
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(config.concurrency.max(1));
        let parser = tokio::task::spawn_blocking(move || job.run(&raw, &tx));
        let mut deliveries = Deliveries::new(self.shipper.clone(), deadline);
        while let Some(batch) = rx.recv().await {
            deliveries.submit(batch).await;
        }
        let report = deliveries.finish().await;
        let stats = parser.await.map_err(|source| HandlerError::ParseTask {
            address: address.clone(),
            source,
        })??;
        tracing::info!(object = %address, records = stats.records, parse_errors = stats.errors, events = report.events, "object shipped");
        Ok(report)
    }

    /// The (still compressed) bytes of an S3 object, refused when over the size limit.
    async fn fetch_object(
        &self,
        object: &ObjectRef,
        address: &str,
    ) -> Result<bytes::Bytes, HandlerError> {
        let s3 = self.s3.as_ref().ok_or(HandlerError::NoS3Client)?;
        let limit = self.shipper.config().s3_max_object_bytes;
        let read_failed = |source: AwsError| HandlerError::S3Read {
            address: address.to_string(),
            source,
        };
        let got = s3
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await
            .map_err(|e| read_failed(e.into()))?;
        let size = got.content_length().unwrap_or(0);
        if size as u64 > limit as u64 {
            return Err(HandlerError::TooLarge {
                address: address.to_string(),
                size,
                limit,
            });
        }
        Ok(got
            .body
            .collect()
            .await
            .map_err(|e| read_failed(e.into()))?
            .into_bytes())
    }

    async fn handle_sqs(&self, event: Value, deadline: Instant) -> Result<Value, HandlerError> {
        let sqs: SqsEvent =
            serde_json::from_value(event).map_err(|source| HandlerError::Malformed {
                kind: "SQS",
                source,
            })?;
        let mut failures = Vec::new();
        let mut total = Report::default();
        for message in &sqs.records {
            let id = message.message_id.clone().unwrap_or_default();
            let body = message.body.as_deref().unwrap_or("");
            let source = message.event_source_arn.as_deref().unwrap_or("sqs");
            match self.handle_payload(body, source, deadline).await {
                Ok(report) if report.delivered() => total.add(report),
                Ok(report) => {
                    tracing::error!(message_id = %id, error = %report.failure_summary(), "SQS message not delivered");
                    total.add(report);
                    failures.push(json!({"itemIdentifier": id}));
                }
                Err(e) => {
                    tracing::error!(message_id = %id, error = %error_report(&e), "SQS message failed");
                    failures.push(json!({"itemIdentifier": id}));
                }
            }
        }
        Ok(json!({"batchItemFailures": failures, "events": total.events}))
    }

    /// One SQS message body: an S3 notification (maybe inside SNS), a subscription event, or
    /// log lines.
    async fn handle_payload(
        &self,
        body: &str,
        source: &str,
        deadline: Instant,
    ) -> Result<Report, HandlerError> {
        let parsed: Option<Value> = serde_json::from_str(body.trim()).ok();
        if let Some(value) = parsed {
            let value = match sns_envelope_message(&value) {
                Some(inner) => match serde_json::from_str::<Value>(&inner) {
                    Ok(v) => v,
                    // an SNS message that is not JSON is a log line
                    Err(_) => return Ok(self.ship_lines(&inner, source, None, deadline).await),
                },
                None => value,
            };
            let kind = classify(&value);
            match kind {
                Kind::S3 | Kind::EventBridge => {
                    let objects = if kind == Kind::S3 {
                        s3_objects(value)?
                    } else {
                        eventbridge_object(&value)?.into_iter().collect()
                    };
                    let mut report = Report::default();
                    for object in &objects {
                        report.add(self.ship_object(object, deadline).await?);
                    }
                    return Ok(report);
                }
                Kind::CloudWatch => {
                    let data = decode_logs_event(value)?;
                    return Ok(self.ship_logs(&data, deadline).await);
                }
                Kind::S3Test | Kind::Empty => return Ok(Report::default()),
                _ => {}
            }
        }
        Ok(self.ship_lines(body, source, None, deadline).await)
    }

    async fn handle_kinesis(&self, event: Value, deadline: Instant) -> Result<Value, HandlerError> {
        let arrivals = kinesis_arrivals(&event);
        let kinesis: KinesisEvent =
            serde_json::from_value(event).map_err(|source| HandlerError::Malformed {
                kind: "Kinesis",
                source,
            })?;
        let mut failures = Vec::new();
        let mut total = Report::default();
        for (i, record) in kinesis.records.iter().enumerate() {
            let seq = record.kinesis.sequence_number.clone();
            let data = &record.kinesis.data.0;
            let arrival = arrivals.get(i).copied().flatten();
            let source = record.event_source_arn.as_deref().unwrap_or("kinesis");
            let report = match kinesis_logs(&seq, data) {
                Ok(Some(logs)) => Ok(self.ship_logs(&logs, deadline).await),
                Ok(None) => Ok(self
                    .ship_lines(&String::from_utf8_lossy(data), source, arrival, deadline)
                    .await),
                Err(e) => Err(e),
            };
            match report {
                Ok(r) if r.delivered() => total.add(r),
                Ok(r) => {
                    tracing::error!(sequence_number = %seq, error = %r.failure_summary(), "Kinesis record not delivered");
                    total.add(r);
                    failures.push(json!({"itemIdentifier": seq}));
                }
                Err(e) => {
                    tracing::error!(sequence_number = %seq, error = %error_report(&e), "Kinesis record failed");
                    failures.push(json!({"itemIdentifier": seq}));
                }
            }
        }
        Ok(json!({"batchItemFailures": failures, "events": total.events}))
    }

    /// Log lines carried in a message: each line an event (JSON lines keep their fields).
    async fn ship_lines(
        &self,
        text: &str,
        source: &str,
        time_ms: Option<i64>,
        deadline: Instant,
    ) -> Report {
        let origin = Origin::new(source).with("region", self.region.as_deref());
        let events = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| (self.enricher.from_message(time_ms, l), None));
        self.ship_events(&origin, events, deadline).await
    }
}

/// The account of AWS's log layouts, `…AWSLogs/<12 digits>/…`.
fn account_in_key(key: &str) -> Option<&str> {
    let rest = &key[key.find("AWSLogs/")? + "AWSLogs/".len()..];
    let account = rest.split('/').next()?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// Counts the bytes a buffered reader hands out.
struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for CountingReader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.read += amt as u64;
        self.inner.consume(amt);
    }
}

/// The arrival times of a Kinesis event's records (ms since the epoch): aws_lambda_events
/// reads "1480641523.3" as .003 s, so they are read here.
fn kinesis_arrivals(event: &Value) -> Vec<Option<i64>> {
    event
        .get("Records")
        .and_then(Value::as_array)
        .map(|records| {
            records
                .iter()
                .map(|r| {
                    r.pointer("/kinesis/approximateArrivalTimestamp")
                        .and_then(Value::as_f64)
                        .map(|s| (s * 1000.0).round() as i64)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The CloudWatch Logs data of a gzipped Kinesis record; `None` for a record of log lines.
fn kinesis_logs(seq: &str, data: &[u8]) -> Result<Option<LogData>, HandlerError> {
    if !data.starts_with(&[0x1f, 0x8b]) {
        return Ok(None);
    }
    let json = sawmill_core::decompress(sawmill_core::ContentEncoding::Gzip, data, MAX_LOGS_DATA)
        .map_err(|source| HandlerError::KinesisGzip {
        seq: seq.to_string(),
        source,
    })?;
    serde_json::from_slice::<LogData>(&json)
        .map(Some)
        .map_err(|source| HandlerError::KinesisNotLogs {
            seq: seq.to_string(),
            source,
        })
}

/// An S3 object to parse on a blocking thread, and how to batch its events.
struct ParseJob {
    address: String,
    key: String,
    /// The configured format; detected from the key and the content when `None`.
    format: Option<Format>,
    limit: usize,
    max_bytes: usize,
    max_events: usize,
    enricher: Enricher,
    origin: Origin,
}

impl ParseJob {
    /// Decompresses (gzip, as it is parsed: memory holds the compressed object only),
    /// parses and batches the object, sending the batches on `tx`.
    fn run(
        self,
        raw: &[u8],
        tx: &tokio::sync::mpsc::Sender<Batch>,
    ) -> Result<formats::ParseStats, HandlerError> {
        use std::io::{BufRead, Read};
        let source: Box<dyn Read + '_> = if raw.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(raw))
        } else {
            Box::new(raw)
        };
        // one byte more than the limit tells an object over it from one exactly at it
        let mut reader =
            std::io::BufReader::with_capacity(256 << 10, source.take(self.limit as u64 + 1));
        let head = reader
            .fill_buf()
            .map_err(|source| HandlerError::ObjectRead {
                address: self.address.clone(),
                source,
            })?;
        let format = self
            .format
            .unwrap_or_else(|| Format::detect(&self.key, &head[..head.len().min(4096)]));
        let mut batcher = Batcher::new(self.max_bytes, self.max_events);
        let mut line = Vec::new();
        let mut closed = false;
        let mut counting = CountingReader {
            inner: reader,
            read: 0,
        };
        let stats = formats::parse_reader(format, &mut counting, &mut |event| {
            if closed {
                return;
            }
            line.clear();
            self.enricher.write(event, &self.origin, None, &mut line);
            for batch in batcher.push(&line) {
                closed |= tx.blocking_send(batch).is_err();
            }
        })
        .map_err(|source| HandlerError::Parse {
            address: self.address.clone(),
            format,
            source,
        })?;
        if counting.read > self.limit as u64 {
            return Err(HandlerError::TooLargeDecompressed {
                address: self.address,
                limit: self.limit,
            });
        }
        if let Some(batch) = batcher.take() {
            let _ = tx.blocking_send(batch);
        }
        Ok(stats)
    }
}

/// The answer of a whole-invocation event, or its failure.
fn finish(report: Report, mut answer: Value) -> Result<Value, HandlerError> {
    if !report.delivered() {
        return Err(HandlerError::Undelivered(report.failure_summary()));
    }
    if let Some(map) = answer.as_object_mut() {
        map.insert("events".into(), json!(report.events));
        map.insert("batches".into(), json!(report.batches));
        map.insert("accepted".into(), json!(report.accepted));
        map.insert("rejected".into(), json!(report.rejected));
    }
    Ok(answer)
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    CloudWatch,
    S3,
    S3Test,
    EventBridge,
    Sns,
    Sqs,
    Kinesis,
    Empty,
    Unknown(String),
}

fn classify(event: &Value) -> Kind {
    let Some(map) = event.as_object() else {
        return Kind::Unknown(format!("a JSON {}, not an object", json_type(event)));
    };
    if map.contains_key("awslogs") {
        return Kind::CloudWatch;
    }
    if map.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Kind::S3Test;
    }
    if map.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return Kind::EventBridge;
    }
    if let Some(records) = map.get("Records").and_then(Value::as_array) {
        let Some(first) = records.first() else {
            return Kind::Empty;
        };
        let source = first
            .get("eventSource")
            .or_else(|| first.get("EventSource"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return match source {
            "aws:s3" => Kind::S3,
            "aws:sqs" => Kind::Sqs,
            "aws:kinesis" => Kind::Kinesis,
            "aws:sns" => Kind::Sns,
            "" => Kind::Unknown(format!(
                "an object with {} Records whose first has no eventSource (keys: {})",
                records.len(),
                keys_of(first)
            )),
            other => Kind::Unknown(format!("Records from {other:?}")),
        };
    }
    Kind::Unknown(format!("an object with keys {}", keys_of(event)))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn keys_of(v: &Value) -> String {
    match v.as_object() {
        Some(m) => {
            let keys: Vec<&str> = m.keys().map(String::as_str).take(10).collect();
            format!("[{}]", keys.join(", "))
        }
        None => json_type(v).to_string(),
    }
}

/// Largest CloudWatch Logs payload accepted once decompressed (AWS sends at most about 1 MB
/// of log data per subscription event).
const MAX_LOGS_DATA: usize = 64 << 20;

/// `awslogs.data`: base64 of gzip of the subscription JSON.
fn decode_logs_event(event: Value) -> Result<LogData, HandlerError> {
    use base64::Engine;
    let data = event
        .pointer("/awslogs/data")
        .and_then(Value::as_str)
        .ok_or(HandlerError::LogsDataMissing)?;
    let gz = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(HandlerError::LogsBase64)?;
    let json = sawmill_core::decompress(sawmill_core::ContentEncoding::Gzip, &gz, MAX_LOGS_DATA)
        .map_err(HandlerError::LogsGzip)?;
    serde_json::from_slice::<LogData>(&json).map_err(HandlerError::LogsJson)
}

/// The objects of an S3 notification; keys arrive URL-encoded (`+` for space).
fn s3_objects(event: Value) -> Result<Vec<ObjectRef>, HandlerError> {
    let s3: S3Event = serde_json::from_value(event)
        .map_err(|source| HandlerError::Malformed { kind: "S3", source })?;
    let mut out = Vec::new();
    for r in s3.records {
        if !r
            .event_name
            .as_deref()
            .is_some_and(|n| n.starts_with("ObjectCreated"))
        {
            continue;
        }
        let bucket =
            r.s3.bucket
                .name
                .ok_or(HandlerError::S3Record("bucket name"))?;
        let raw =
            r.s3.object
                .key
                .ok_or(HandlerError::S3Record("object key"))?;
        let plus_as_space = raw.replace('+', " ");
        let key = percent_encoding::percent_decode_str(&plus_as_space)
            .decode_utf8()
            .map_err(|source| HandlerError::S3Key {
                key: raw.clone(),
                source,
            })?
            .into_owned();
        out.push(ObjectRef {
            bucket,
            key,
            region: r.aws_region,
        });
    }
    Ok(out)
}

/// The object of an EventBridge `Object Created` event (keys are not URL-encoded there).
fn eventbridge_object(event: &Value) -> Result<Option<ObjectRef>, HandlerError> {
    let detail_type = event
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if detail_type != "Object Created" {
        return Ok(None);
    }
    let detail = event
        .get("detail")
        .ok_or(HandlerError::EventBridge("detail"))?;
    let bucket = detail
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .ok_or(HandlerError::EventBridge("detail.bucket.name"))?;
    let key = detail
        .pointer("/object/key")
        .and_then(Value::as_str)
        .ok_or(HandlerError::EventBridge("detail.object.key"))?;
    Ok(Some(ObjectRef {
        bucket: bucket.to_string(),
        key: key.to_string(),
        region: event
            .get("region")
            .and_then(Value::as_str)
            .map(str::to_string),
    }))
}

/// S3 notifications delivered through SNS to the function.
fn sns_objects(event: Value) -> Result<Vec<ObjectRef>, HandlerError> {
    let sns: SnsEvent =
        serde_json::from_value(event).map_err(|source| HandlerError::Malformed {
            kind: "SNS",
            source,
        })?;
    let mut out = Vec::new();
    for r in sns.records {
        let inner: Value =
            serde_json::from_str(&r.sns.message).map_err(HandlerError::SnsNotJson)?;
        match classify(&inner) {
            Kind::S3 => out.extend(s3_objects(inner)?),
            Kind::EventBridge => out.extend(eventbridge_object(&inner)?),
            Kind::S3Test | Kind::Empty => {}
            other => return Err(HandlerError::SnsNotS3(format!("{other:?}"))),
        }
    }
    Ok(out)
}

/// The `Message` of an SNS notification envelope (as SNS delivers to SQS without raw
/// delivery).
fn sns_envelope_message(v: &Value) -> Option<String> {
    (v.get("Type").and_then(Value::as_str) == Some("Notification"))
        .then(|| v.get("Message").and_then(Value::as_str).map(str::to_string))
        .flatten()
}

/// The deadline for work started now, from the Lambda's own deadline (ms since the epoch).
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Instant::now() + std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Builds a forwarder from the environment.
pub async fn from_env() -> Result<Arc<Forwarder>, SetupError> {
    let config = Arc::new(crate::config::Config::from_env()?);
    let shared = crate::aws::sdk_config().await;
    let s3 = crate::aws::s3_client(&shared, config.s3_force_path_style);
    let failures = config.failure_bucket.clone().map(|bucket| {
        Arc::new(crate::failures::FailureStore::new(
            s3.clone(),
            bucket,
            config.failure_prefix.clone(),
        ))
    });
    let enricher = Enricher {
        static_fields: config.static_fields.clone(),
        redactor: config.redactor.clone(),
    };
    let shipper = Shipper::new(config, failures.clone())?;
    Ok(Arc::new(Forwarder {
        shipper,
        enricher,
        s3: Some(s3),
        failures,
        region: std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_recognized_and_unknown_ones_named() {
        let cases = [
            (json!({"awslogs": {"data": "x"}}), Kind::CloudWatch),
            (json!({"Records": [{"eventSource": "aws:s3"}]}), Kind::S3),
            (json!({"Records": [{"eventSource": "aws:sqs"}]}), Kind::Sqs),
            (
                json!({"Records": [{"eventSource": "aws:kinesis"}]}),
                Kind::Kinesis,
            ),
            (json!({"Records": [{"EventSource": "aws:sns"}]}), Kind::Sns),
            (json!({"Records": []}), Kind::Empty),
            (
                json!({"source": "aws.s3", "detail-type": "Object Created"}),
                Kind::EventBridge,
            ),
            (
                json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
                Kind::S3Test,
            ),
        ];
        for (event, want) in cases {
            assert_eq!(classify(&event), want, "{event}");
        }
        let Kind::Unknown(what) = classify(&json!({"hello": 1, "detail": {}})) else {
            panic!("not unknown")
        };
        assert_eq!(what, "an object with keys [hello, detail]");
        let Kind::Unknown(what) = classify(&json!({"Records": [{"eventSource": "aws:dynamodb"}]}))
        else {
            panic!("not unknown")
        };
        assert_eq!(what, "Records from \"aws:dynamodb\"");
        assert!(matches!(classify(&json!([1])), Kind::Unknown(w) if w.contains("array")));
    }

    #[test]
    fn s3_keys_are_url_decoded_and_only_created_objects_read() {
        let event = json!({"Records": [
            {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "eu-west-1",
             "eventTime": "2026-11-27T10:00:00.000Z",
             "userIdentity": {"principalId": "AWS:AIDA"}, "requestParameters": {"sourceIPAddress": "10.0.0.1"},
             "s3": {"bucket": {"name": "logs"}, "object": {"key": "AWSLogs/a+b/c%3Dd.log.gz", "size": 5}}},
            {"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
             "eventTime": "2026-11-27T10:00:00.000Z",
             "userIdentity": {"principalId": "AWS:AIDA"}, "requestParameters": {"sourceIPAddress": "10.0.0.1"},
             "s3": {"bucket": {"name": "logs"}, "object": {"key": "gone"}}}
        ]});
        assert_eq!(
            s3_objects(event).unwrap(),
            vec![ObjectRef {
                bucket: "logs".into(),
                key: "AWSLogs/a b/c=d.log.gz".into(),
                region: Some("eu-west-1".into()),
            }]
        );
    }

    #[test]
    fn the_account_comes_from_aws_log_layouts() {
        assert_eq!(
            account_in_key("AWSLogs/123456789012/vpcflowlogs/eu-west-1/x.log.gz"),
            Some("123456789012")
        );
        assert_eq!(
            account_in_key("prefix/AWSLogs/123456789012/CloudTrail/x"),
            Some("123456789012")
        );
        assert_eq!(account_in_key("AWSLogs/12345/x"), None);
        assert_eq!(account_in_key("logs/app.log"), None);
    }

    #[test]
    fn eventbridge_and_sns_envelopes() {
        let eb = json!({"source": "aws.s3", "detail-type": "Object Created", "region": "us-east-2",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "k 1"}}});
        assert_eq!(
            eventbridge_object(&eb).unwrap(),
            Some(ObjectRef {
                bucket: "b".into(),
                key: "k 1".into(),
                region: Some("us-east-2".into())
            })
        );
        let envelope = json!({"Type": "Notification", "Message": "{\"a\":1}"});
        assert_eq!(
            sns_envelope_message(&envelope).as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(sns_envelope_message(&json!({"Type": "Other"})), None);
    }
}
