//! Test harness: starts the real `sawmill` binary on a random port with its own data
//! directory and talks to it over HTTP, as a client would.
#![allow(dead_code)]

pub mod moto;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The path of the built `sawmill` binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sawmill"))
}

/// A running server process.
pub struct Server {
    pub child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    pub config: Option<PathBuf>,
    /// Everything the server wrote to stderr (its log), collected in the background.
    pub log: std::sync::Arc<Log>,
    pub http: reqwest::blocking::Client,
    /// Extra environment variables of the server process (e.g. S3 credentials).
    pub env: Vec<(String, String)>,
}

/// The server's log lines, shared with the thread that reads them.
#[derive(Default)]
pub struct Log(std::sync::Mutex<String>);

impl Log {
    pub fn text(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn push(&self, line: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.push_str(line);
            s.push('\n');
        }
    }
}

/// The config file a test server uses unless a test gives its own: fast refresh.
pub const FAST_CONFIG: &str = "[index]\nrefresh_interval = \"200ms\"\nhot_retention = \"3650d\"\n";

impl Server {
    /// Starts a server on a new temporary data directory with [`FAST_CONFIG`].
    pub fn start(dir: &Path) -> Server {
        Server::start_with_config(dir, FAST_CONFIG)
    }

    /// Starts a server with the given TOML config (data dir and listen address are set by flags).
    pub fn start_with_config(dir: &Path, config: &str) -> Server {
        let data_dir = dir.join("data");
        let config_path = dir.join("sawmill.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut server = Server {
            child: None,
            url: String::new(),
            data_dir,
            config: Some(config_path),
            log: Default::default(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("http client"),
            env: Vec::new(),
        };
        server.spawn();
        server
    }

    /// Like [`Server::start_with_config`], with extra environment variables for the server
    /// process (kept for every later [`Server::spawn`]).
    pub fn start_with_config_env(dir: &Path, config: &str, env: Vec<(String, String)>) -> Server {
        let data_dir = dir.join("data");
        let config_path = dir.join("sawmill.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut server = Server {
            child: None,
            url: String::new(),
            data_dir,
            config: Some(config_path),
            log: Default::default(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("http client"),
            env,
        };
        server.spawn();
        server
    }

    /// Starts the process (again) on the same data directory and waits until it is ready.
    pub fn spawn(&mut self) {
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("SAWMILL_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd.spawn().expect("spawn sawmill serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.push(&line);
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(addr) = line.strip_prefix("sawmill listening on ") {
                        let _ = tx.send(addr.trim().to_string());
                        sent = true;
                    }
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let mut rest = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut rest);
                }
                panic!(
                    "server did not print its address within 60s; log:\n{}{rest}",
                    self.log.text()
                );
            }
        };
        self.url = url;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(120));
    }

    /// Waits for `/readyz` to answer 200.
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.url)).send() {
                if r.status().as_u16() == 200 {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("server not ready in time; log:\n{}", self.log.text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`: the process dies without any chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("server running");
        let pid = c.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!(
                    "server did not stop within 60s of SIGTERM; log:\n{}",
                    self.log.text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn post(&self, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http.post(format!("{}{path}", self.url))
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http.get(format!("{}{path}", self.url))
    }

    /// POSTs an NDJSON body to `/api/v1/ingest` with extra query string `qs`; returns
    /// (status, JSON answer).
    pub fn ingest(&self, body: impl Into<Vec<u8>>, qs: &str) -> (u16, Value) {
        let resp = self
            .post(&format!("/api/v1/ingest{qs}"))
            .header("content-type", "application/x-ndjson")
            .body(body.into())
            .send()
            .expect("ingest request");
        status_json(resp)
    }

    /// `GET /api/v1/search` with the given parameters; returns (status, JSON answer).
    pub fn search(&self, params: &[(&str, &str)]) -> (u16, Value) {
        let resp = self
            .get("/api/v1/search")
            .query(params)
            .send()
            .expect("search request");
        status_json(resp)
    }

    /// The `total` of a successful search over all time.
    pub fn total(&self, q: &str) -> u64 {
        let (status, body) =
            self.search(&[("q", q), ("start", "0"), ("end", "now+1d"), ("limit", "0")]);
        assert_eq!(status, 200, "search {q:?} failed: {body}");
        body["total"].as_u64().expect("total")
    }

    /// `POST /api/v1/admin/flush`.
    pub fn flush(&self) -> Value {
        let (status, body) = status_json(self.post("/api/v1/admin/flush").send().expect("flush"));
        assert_eq!(status, 200, "flush failed: {body}");
        body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Status and JSON body of a response (Null when the body is not JSON).
pub fn status_json(resp: reqwest::blocking::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

// ----- more requests -----

impl Server {
    /// POSTs `body` to `/api/v1/ingest{qs}` with the given headers (no default Content-Type);
    /// returns (status, JSON answer).
    pub fn ingest_with(
        &self,
        qs: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::blocking::Body>,
    ) -> (u16, Value) {
        let mut req = self.post(&format!("/api/v1/ingest{qs}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        status_json(req.body(body).send().expect("ingest request"))
    }

    /// Every hit of `q` in `[start, end)`, newest first, paging with `limit=10000` and
    /// `next_cursor` until it is null.
    pub fn search_all(&self, q: &str, start: &str, end: &str) -> Vec<Value> {
        let mut hits = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut params = vec![("q", q), ("start", start), ("end", end), ("limit", "10000")];
            if let Some(c) = &cursor {
                params.push(("cursor", c.as_str()));
            }
            let (status, body) = self.search(&params);
            assert_eq!(status, 200, "search {q:?} failed: {body}");
            let page = body["hits"].as_array().expect("hits").clone();
            hits.extend(page);
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return hits,
            }
        }
    }

    /// Polls [`Server::total`] of `q` until it equals `want` or `timeout` passes; returns the
    /// last total seen (the caller asserts on it).
    pub fn wait_total(&self, q: &str, want: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let total = self.total(q);
            if total == want || Instant::now() > deadline {
                return total;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The text of `GET /metrics`.
    pub fn metrics(&self) -> String {
        let resp = self.get("/metrics").send().expect("metrics request");
        assert_eq!(resp.status().as_u16(), 200, "GET /metrics");
        resp.text().expect("metrics text")
    }
}

/// The value of the first sample of `metric` whose line contains `labels` (`""` for any) in
/// a Prometheus text exposition.
pub fn metric_sample(metrics: &str, metric: &str, labels: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split([' ', '{']).next() == Some(metric) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Asserts an error answer: the expected status and a JSON body with a non-empty `error`
/// string; returns that string.
#[track_caller]
pub fn assert_error(got: (u16, Value), want_status: u16, what: &str) -> String {
    let (status, body) = got;
    assert_eq!(
        status, want_status,
        "{what}: unexpected status; body {body}"
    );
    let error = body["error"].as_str().unwrap_or_else(|| {
        panic!("{what}: error body is not JSON with an \"error\" string: {body}")
    });
    assert!(!error.trim().is_empty(), "{what}: empty error message");
    error.to_string()
}

// ----- data helpers -----

/// SplitMix64: a tiny deterministic generator, so every corpus is reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).expect("zstd")
}

/// Nanoseconds since the epoch, now.
pub fn now_nanos() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// RFC 3339 UTC (`Z`) text of an instant in nanoseconds.
/// How the server writes a timestamp given in milliseconds: RFC 3339 UTC, 3 decimals.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("time in range");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

pub fn rfc3339(nanos: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .expect("time in range")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format time")
}

/// The instant (nanoseconds) of an RFC 3339 text.
pub fn parse_rfc3339(text: &str) -> i64 {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .unix_timestamp_nanos() as i64
}

/// Polls `f` until it returns `Some`, panicking with `what` after `timeout`.
pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `text` cut to a readable length.
pub fn shorten(mut text: String) -> String {
    const MAX: usize = 600;
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Collects failed checks so that one run reports every mismatch, then fails at the end.
#[derive(Default)]
pub struct Checks(Vec<String>);

impl Checks {
    pub fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            self.0.push(format!(
                "{what}: got {}, want {}",
                shorten(format!("{got:?}")),
                shorten(format!("{want:?}"))
            ));
        }
    }

    pub fn truth(&mut self, what: &str, ok: bool) {
        if !ok {
            self.0.push(what.to_string());
        }
    }

    /// Panics listing every failed check.
    #[track_caller]
    pub fn finish(self) {
        if !self.0.is_empty() {
            panic!(
                "{} check(s) failed:\n  {}",
                self.0.len(),
                self.0.join("\n  ")
            );
        }
    }
}

/// What a finished command printed.
pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `sawmill ARGS` with `stdin` as its standard input; kills it and panics if it takes
/// longer than `timeout`.
pub fn run_sawmill(args: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Output {
    use std::io::Write;
    let mut child = Command::new(binary())
        .args(args)
        .env_remove("SAWMILL_URL")
        .env_remove("SAWMILL_API_KEY")
        .env_remove("SAWMILL_CONFIG")
        .env_remove("SAWMILL_DATA_DIR")
        .env_remove("SAWMILL_LISTEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sawmill");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.unwrap_or_default().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "sawmill {args:?} did not finish within {timeout:?}; stderr:\n{}",
                err_reader.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Every file under `root` (recursively), as paths relative to `root` with `/`, sorted.
pub fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// The NDJSON lines of a zstd archive object (`key` names it in failure messages).
pub fn decode_archive_object(key: &str, bytes: &[u8]) -> Vec<Value> {
    let raw = zstd::decode_all(bytes).unwrap_or_else(|e| panic!("{key}: not zstd: {e}"));
    let text = String::from_utf8(raw).unwrap_or_else(|e| panic!("{key}: not UTF-8: {e}"));
    text.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{key}: line {l:?}: {e}"))
        })
        .collect()
}

/// Every archive object (`*.ndjson.zst`) of a local-folder archive under `root`: (key
/// relative to root, decompressed lines), sorted by key.
pub fn archive_objects(root: &Path) -> Vec<(String, Vec<Value>)> {
    files_under(root)
        .into_iter()
        .filter(|key| key.ends_with(".ndjson.zst"))
        .map(|key| {
            let bytes =
                std::fs::read(root.join(&key)).unwrap_or_else(|e| panic!("cannot read {key}: {e}"));
            let lines = decode_archive_object(&key, &bytes);
            (key, lines)
        })
        .collect()
}
