//! Test harness: starts the real `sawmill` binary on a random port with its own data
//! directory and talks to it over HTTP, as a client would.
#![allow(dead_code)]

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
                panic!("server did not stop within 60s of SIGTERM; log:\n{}", self.log.text());
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
        let (status, body) = self.search(&[("q", q), ("start", "0"), ("end", "now+1d"), ("limit", "0")]);
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
