//! A real `moto_server` (an S3 emulator) on loopback for one test, and a blocking S3 client
//! to look at what the server under test wrote.
//!
//! moto is installed by `scripts/test` (`pip install 'moto[server]==5.2.1'`). When it is
//! missing the test fails and says how to install it: tests never skip.

use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, Transition, TransitionStorageClass,
};
use serde_json::{json, Map, Value};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const INSTALL_HINT: &str = "moto is needed by the S3 tests: run `scripts/test` (it installs it) \
or `python3 -m pip install 'moto[server]==5.2.1'`";

/// How long moto may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `moto_server` process, killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
    /// What moto wrote to stdout and stderr (the last 64 KiB).
    output: Arc<Mutex<String>>,
    rt: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
}

/// Appends what `pipe` yields to `out`, keeping the last 64 KiB.
fn drain(mut pipe: impl Read + Send + 'static, out: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let mut s = out.lock().unwrap_or_else(|e| e.into_inner());
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    const KEEP: usize = 64 << 10;
                    if s.len() > 2 * KEEP {
                        let mut cut = s.len() - KEEP;
                        while !s.is_char_boundary(cut) {
                            cut += 1;
                        }
                        s.drain(..cut);
                    }
                }
            }
        }
    });
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// How a moto server is started: the `moto_server` script, else `python3 -m moto.server`.
const LAUNCHERS: &[(&str, &[&str])] = &[("moto_server", &[]), ("python3", &["-m", "moto.server"])];

enum Started {
    Ready(Child, Arc<Mutex<String>>),
    /// The launcher could not start or exited early: (description, its output).
    Failed(String, String),
}

fn launch(program: &str, args: &[&str], port: u16) -> Started {
    let port_text = port.to_string();
    let what = format!("`{}` on port {port}", [&[program], args].concat().join(" "));
    let mut child = match Command::new(program)
        .args(args)
        .args(["-H", "127.0.0.1", "-p", &port_text])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Started::Failed(what, format!("cannot run it: {e}")),
    };
    let output = Arc::new(Mutex::new(String::new()));
    drain(child.stdout.take().expect("stdout"), output.clone());
    drain(child.stderr.take().expect("stderr"), output.clone());
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    let url = format!("http://127.0.0.1:{port}/moto-api/");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(r) = http.get(&url).send() {
            if r.status().is_success() {
                return Started::Ready(child, output);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            // let the pipes drain
            std::thread::sleep(Duration::from_millis(100));
            let out = output.lock().unwrap_or_else(|e| e.into_inner()).clone();
            return Started::Failed(what, format!("exited with {status}; output:\n{out}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = output.lock().unwrap_or_else(|e| e.into_inner()).clone();
            panic!("{what} did not answer GET {url} within {START_TIMEOUT:?}; its output:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Moto {
    /// Starts moto on a free loopback port and waits until it answers.
    pub fn start() -> Moto {
        let mut failures = Vec::new();
        for (program, args) in LAUNCHERS {
            // a port picked free can be taken before moto binds it: try a few
            for _ in 0..3 {
                let port = free_port();
                match launch(program, args, port) {
                    Started::Ready(child, output) => return Moto::new(child, port, output),
                    Started::Failed(what, out) => {
                        let taken = out.contains("Address already in use");
                        failures.push(format!("{what}: {out}"));
                        if !taken {
                            break;
                        }
                    }
                }
            }
        }
        panic!(
            "cannot start moto_server. {INSTALL_HINT}.\n{}",
            failures.join("\n")
        );
    }

    fn new(child: Child, port: u16, output: Arc<Mutex<String>>) -> Moto {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .force_path_style(true)
            .http_client(http)
            // a test must not hang on a paused moto
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            )
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        Moto {
            child,
            port,
            output,
            rt,
            client,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What moto printed so far (its last 64 KiB), for failure messages.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The environment the sawmill server needs to talk to this moto.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} moto: {status}");
    }

    /// Whether moto answers `GET /moto-api/` within `timeout`.
    fn answers(&self, timeout: Duration) -> bool {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
            .expect("http client")
            .get(format!("{}/moto-api/", self.endpoint()))
            .send()
            .is_ok_and(|r| r.status().is_success())
    }

    /// SIGSTOP: moto stops answering (connections hang) and keeps its objects.
    pub fn pause(&self) {
        self.signal("-STOP");
        // the signal must reach the process that serves (not a wrapper of it)
        assert!(
            !self.answers(Duration::from_secs(1)),
            "moto still answers after SIGSTOP to pid {}",
            self.child.id()
        );
    }

    /// SIGCONT: moto answers again, with everything it held.
    pub fn resume(&self) {
        self.signal("-CONT");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.answers(Duration::from_secs(2)) {
            assert!(
                Instant::now() < deadline,
                "moto does not answer 30 s after SIGCONT; its output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Runs a future of the S3 client to completion.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.block_on(self.client.create_bucket().bucket(bucket).send())
            .unwrap_or_else(|e| panic!("create bucket {bucket}: {}", err_text(&e)));
    }

    /// Every object whose key starts with `prefix`: (key, size, storage class), in key order.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64, String)> {
        self.block_on(async {
            let mut out = Vec::new();
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page
                    .unwrap_or_else(|e| panic!("list s3://{bucket}/{prefix}: {}", err_text(&e)));
                for o in page.contents() {
                    out.push((
                        o.key().unwrap_or_default().to_string(),
                        o.size().unwrap_or_default() as u64,
                        o.storage_class()
                            .map(|c| c.as_str().to_string())
                            .unwrap_or_default(),
                    ));
                }
            }
            out
        })
    }

    /// The bytes of an object.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.block_on(async {
            let out = self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("get s3://{bucket}/{key}: {}", err_text(&e)));
            out.body
                .collect()
                .await
                .unwrap_or_else(|e| panic!("read s3://{bucket}/{key}: {e}"))
                .into_bytes()
                .to_vec()
        })
    }

    /// The bucket's lifecycle rules in the AWS JSON shape (`[]` when it has none): every
    /// field S3 returns is mapped, so unexpected settings show in comparisons.
    pub fn lifecycle_rules(&self, bucket: &str) -> Value {
        let answer = self.block_on(
            self.client
                .get_bucket_lifecycle_configuration()
                .bucket(bucket)
                .send(),
        );
        let out = match answer {
            Ok(out) => out,
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => return json!([]),
            Err(e) => panic!("get lifecycle of {bucket}: {}", err_text(&e)),
        };
        Value::Array(out.rules().iter().map(rule_json).collect())
    }

    /// Replaces the bucket's lifecycle configuration with `rules` (AWS JSON shape, the fields
    /// [`Moto::lifecycle_rules`] shows for a prefix rule).
    pub fn put_lifecycle_rules(&self, bucket: &str, rules: Value) {
        let rules: Vec<LifecycleRule> = rules
            .as_array()
            .expect("lifecycle rules are a JSON array")
            .iter()
            .map(rule_from_json)
            .collect();
        let config = BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .expect("lifecycle configuration");
        self.block_on(
            self.client
                .put_bucket_lifecycle_configuration()
                .bucket(bucket)
                .lifecycle_configuration(config)
                .send(),
        )
        .unwrap_or_else(|e| panic!("put lifecycle of {bucket}: {}", err_text(&e)));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SDK error with the service's code and message when there is one.
fn err_text<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    format!(
        "{} (code {:?}, message {:?}): {:?}",
        e,
        e.code(),
        e.message(),
        e
    )
}

fn rule_json(rule: &LifecycleRule) -> Value {
    let mut r = Map::new();
    if let Some(id) = rule.id() {
        r.insert("ID".into(), json!(id));
    }
    r.insert("Status".into(), json!(rule.status().as_str()));
    #[allow(deprecated)]
    if let Some(prefix) = rule.prefix() {
        r.insert("Prefix".into(), json!(prefix));
    }
    if let Some(f) = rule.filter() {
        let mut filter = Map::new();
        if let Some(p) = f.prefix() {
            filter.insert("Prefix".into(), json!(p));
        }
        if let Some(t) = f.tag() {
            filter.insert("Tag".into(), json!({"Key": t.key(), "Value": t.value()}));
        }
        if let Some(n) = f.object_size_greater_than() {
            filter.insert("ObjectSizeGreaterThan".into(), json!(n));
        }
        if let Some(n) = f.object_size_less_than() {
            filter.insert("ObjectSizeLessThan".into(), json!(n));
        }
        if let Some(a) = f.and() {
            filter.insert("And".into(), json!(format!("{a:?}")));
        }
        r.insert("Filter".into(), Value::Object(filter));
    }
    if !rule.transitions().is_empty() {
        let transitions: Vec<Value> = rule
            .transitions()
            .iter()
            .map(|t| {
                let mut m = Map::new();
                if let Some(d) = t.days() {
                    m.insert("Days".into(), json!(d));
                }
                if let Some(d) = t.date() {
                    m.insert("Date".into(), json!(d.to_string()));
                }
                if let Some(c) = t.storage_class() {
                    m.insert("StorageClass".into(), json!(c.as_str()));
                }
                Value::Object(m)
            })
            .collect();
        r.insert("Transitions".into(), Value::Array(transitions));
    }
    if let Some(e) = rule.expiration() {
        let mut m = Map::new();
        if let Some(d) = e.days() {
            m.insert("Days".into(), json!(d));
        }
        if let Some(d) = e.date() {
            m.insert("Date".into(), json!(d.to_string()));
        }
        if let Some(b) = e.expired_object_delete_marker() {
            m.insert("ExpiredObjectDeleteMarker".into(), json!(b));
        }
        r.insert("Expiration".into(), Value::Object(m));
    }
    if !rule.noncurrent_version_transitions().is_empty() {
        let t: Vec<Value> = rule
            .noncurrent_version_transitions()
            .iter()
            .map(|t| json!(format!("{t:?}")))
            .collect();
        r.insert("NoncurrentVersionTransitions".into(), Value::Array(t));
    }
    if let Some(e) = rule.noncurrent_version_expiration() {
        r.insert(
            "NoncurrentVersionExpiration".into(),
            json!(format!("{e:?}")),
        );
    }
    if let Some(a) = rule.abort_incomplete_multipart_upload() {
        let mut m = Map::new();
        if let Some(d) = a.days_after_initiation() {
            m.insert("DaysAfterInitiation".into(), json!(d));
        }
        r.insert("AbortIncompleteMultipartUpload".into(), Value::Object(m));
    }
    Value::Object(r)
}

fn days(v: &Value, what: &str) -> i32 {
    v.as_i64()
        .and_then(|d| i32::try_from(d).ok())
        .unwrap_or_else(|| panic!("{what} must be a number of days: {v}"))
}

fn rule_from_json(v: &Value) -> LifecycleRule {
    let obj = v.as_object().expect("a lifecycle rule is a JSON object");
    let mut b = LifecycleRule::builder();
    for (field, value) in obj {
        b = match field.as_str() {
            "ID" => b.id(value.as_str().expect("ID")),
            "Status" => b.status(ExpirationStatus::from(value.as_str().expect("Status"))),
            "Filter" => {
                let f = value.as_object().expect("Filter");
                assert!(
                    f.keys().all(|k| k == "Prefix"),
                    "put_lifecycle_rules supports Filter.Prefix only: {value}"
                );
                let mut fb = LifecycleRuleFilter::builder();
                if let Some(p) = f.get("Prefix") {
                    fb = fb.prefix(p.as_str().expect("Filter.Prefix"));
                }
                b.filter(fb.build())
            }
            "Transitions" => {
                let mut b = b;
                for t in value.as_array().expect("Transitions") {
                    let mut tb = Transition::builder();
                    for (k, v) in t.as_object().expect("a transition") {
                        tb = match k.as_str() {
                            "Days" => tb.days(days(v, "Transitions.Days")),
                            "StorageClass" => tb.storage_class(TransitionStorageClass::from(
                                v.as_str().expect("StorageClass"),
                            )),
                            other => panic!("unsupported transition field {other}: {t}"),
                        };
                    }
                    b = b.transitions(tb.build());
                }
                b
            }
            "Expiration" => {
                let e = value.as_object().expect("Expiration");
                assert!(
                    e.keys().all(|k| k == "Days"),
                    "put_lifecycle_rules supports Expiration.Days only: {value}"
                );
                let mut eb = LifecycleExpiration::builder();
                if let Some(d) = e.get("Days") {
                    eb = eb.days(days(d, "Expiration.Days"));
                }
                b.expiration(eb.build())
            }
            "AbortIncompleteMultipartUpload" => {
                let d = &value["DaysAfterInitiation"];
                b.abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(days(d, "DaysAfterInitiation"))
                        .build(),
                )
            }
            other => panic!("put_lifecycle_rules does not support the field {other}: {v}"),
        };
    }
    b.build()
        .unwrap_or_else(|e| panic!("lifecycle rule {v}: {e}"))
}
