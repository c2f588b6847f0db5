//! Shared pieces of the benchmarks: corpus generation, a server process, measurements.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The project root (benches run with the package root as working directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared`, where the corpus generator and the tantivy baseline live.
pub fn shared() -> PathBuf {
    root().join("..").join("shared")
}

/// Value of `--name VALUE` on the command line, or the default.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == &format!("--{name}"))
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// Generates (once) a corpus with `gen-logs.py` and returns its path.
pub fn corpus(events: u64, seed: u64, start: &str, rate: &str) -> PathBuf {
    let dir = root().join("target").join("bench-data");
    std::fs::create_dir_all(&dir).expect("create target/bench-data");
    let path = dir.join(format!("corpus-{events}-{seed}-{start}-{rate}.ndjson").replace(':', ""));
    if path.exists() {
        return path;
    }
    let gen = shared().join("tools").join("gen-logs.py");
    assert!(
        gen.exists(),
        "corpus generator not found at {}",
        gen.display()
    );
    eprintln!("generating {events} events into {}", path.display());
    let out = std::fs::File::create(&path).expect("create corpus");
    let status = Command::new("python3")
        .arg(&gen)
        .args([
            "--events",
            &events.to_string(),
            "--seed",
            &seed.to_string(),
            "--start",
            start,
            "--rate",
            rate,
        ])
        .stdout(out)
        .status()
        .expect("run gen-logs.py");
    assert!(status.success(), "gen-logs.py failed");
    path
}

/// The API key the shared request helpers send (`Authorization: Bearer`), once set.
static API_KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every request of the shared helpers carry `key`.
pub fn use_api_key(key: &str) {
    let _ = API_KEY.set(key.to_string());
}

/// `req` with the API key, if one is in use.
pub fn authed(req: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
    match API_KEY.get() {
        Some(k) => req.bearer_auth(k),
        None => req,
    }
}

/// Creates an API key in `data_dir` with `sawmill keys create ARGS…`; returns it.
pub fn create_key(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sawmill"))
        .args(["keys", "create", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run sawmill keys create");
    assert!(
        out.status.success(),
        "keys create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().last().expect("key line").trim().to_string()
}

/// A release server on a fresh data directory.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
}

impl Server {
    pub fn start(dir: &Path, config: &str) -> Server {
        Server::start_prepared(dir, config, |_| {})
    }

    /// Like [`Server::start`], running `prepare` on the fresh data directory (to create keys)
    /// before the server starts.
    pub fn start_prepared(dir: &Path, config: &str, prepare: impl FnOnce(&Path)) -> Server {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("data")).expect("create bench dir");
        prepare(&dir.join("data"));
        std::fs::create_dir_all(dir).expect("create bench dir");
        let config_path = dir.join("sawmill.toml");
        std::fs::write(&config_path, config).expect("write config");
        Server::spawn(dir, &config_path)
    }

    /// Starts on an existing data directory (keeps its data).
    pub fn spawn(dir: &Path, config_path: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sawmill"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .arg("--config")
            .arg(config_path)
            .env("SAWMILL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("server exited").expect("read stdout");
            if let Some(u) = line.strip_prefix("sawmill listening on ") {
                break u.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let http = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(600);
        while http
            .get(format!("{url}/readyz"))
            .send()
            .map(|r| r.status().as_u16() != 200)
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "server not ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        Server {
            child,
            url,
            dir: dir.to_path_buf(),
        }
    }

    /// Peak resident memory of the server so far, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }

    /// CPU time (user + system) the server has used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        // utime and stime are the 12th and 13th fields after the command name
        stat_seconds(&format!("/proc/{}/stat", self.child.id()), 11, 12)
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The `p`-th percentile (0..=100) of sorted samples.
/// A benchmark that panics must not leave its server running (the next run deletes its
/// data directory under it).
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Builds `../shared/tools/tantivy-baseline` into target/ and runs it on `corpus`.
pub fn tantivy_baseline(corpus: &Path, threads: usize) -> Option<String> {
    let manifest = shared()
        .join("tools")
        .join("tantivy-baseline")
        .join("Cargo.toml");
    if !manifest.exists() {
        eprintln!("tantivy baseline not found at {}", manifest.display());
        return None;
    }
    let target = root().join("target").join("tantivy-baseline");
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .status()
        .ok()?;
    if !status.success() {
        eprintln!("building the tantivy baseline failed");
        return None;
    }
    let cpu_before = children_cpu_seconds();
    let out = Command::new(target.join("release").join("tantivy-baseline"))
        .arg(corpus)
        .arg(threads.to_string())
        .output()
        .ok()?;
    let cpu = children_cpu_seconds() - cpu_before;
    Some(format!(
        "{} cpu_s={cpu:.2}",
        String::from_utf8_lossy(&out.stdout).trim()
    ))
}

/// Cuts an NDJSON file into batches of whole lines of about `batch_bytes`; each batch with
/// its number of lines. Also returns the total bytes.
pub fn split_batches(path: &Path, batch_bytes: usize) -> (Vec<(bytes::Bytes, u64)>, usize) {
    let mut batches = Vec::new();
    let mut cur = Vec::with_capacity(batch_bytes + 4096);
    let mut lines = 0u64;
    let mut total = 0usize;
    for line in BufReader::new(std::fs::File::open(path).expect("open corpus")).split(b'\n') {
        let line = line.expect("read corpus");
        total += line.len() + 1;
        cur.extend_from_slice(&line);
        cur.push(b'\n');
        lines += 1;
        if cur.len() >= batch_bytes {
            batches.push((bytes::Bytes::from(std::mem::take(&mut cur)), lines));
            lines = 0;
        }
    }
    if !cur.is_empty() {
        batches.push((bytes::Bytes::from(cur), lines));
    }
    (batches, total)
}

/// Sends every batch to `url`/api/v1/ingest from `clients` threads; retries 429/503 and
/// checks that every line was accepted.
pub fn ingest_all(url: &str, batches: &std::sync::Arc<Vec<(bytes::Bytes, u64)>>, clients: usize) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let batches = batches.clone();
            let next = next.clone();
            let url = format!("{url}/api/v1/ingest");
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(300))
                    .build()
                    .expect("client");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((body, n)) = batches.get(i) else {
                        break;
                    };
                    loop {
                        let resp = authed(http.post(&url))
                            .header("content-type", "application/x-ndjson")
                            .body(body.clone())
                            .send()
                            .expect("ingest");
                        let status = resp.status().as_u16();
                        let text = resp.text().unwrap_or_default();
                        if status == 503 || status == 429 {
                            std::thread::sleep(Duration::from_millis(200));
                            continue;
                        }
                        assert_eq!(status, 200, "{text}");
                        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
                        assert_eq!(v["accepted"].as_u64(), Some(*n), "{text}");
                        break;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

/// The exact number of events the server finds over all time.
pub fn count_all(url: &str) -> u64 {
    let v: serde_json::Value =
        authed(reqwest::blocking::Client::new().get(format!("{url}/api/v1/search")))
            .query(&[
                ("q", "*"),
                ("start", "0"),
                ("end", "now+3650d"),
                ("limit", "0"),
            ])
            .send()
            .and_then(|r| r.json())
            .expect("search");
    v["total"].as_u64().unwrap_or(0)
}

/// `getconf CLK_TCK` (100 on Linux).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU time (user + system) of finished child processes of this process, in seconds.
pub fn children_cpu_seconds() -> f64 {
    // cutime and cstime are the 14th and 15th fields after the command name
    stat_seconds("/proc/self/stat", 13, 14)
}

/// The sum of two clock-tick fields of a `/proc/*/stat` file (counted after the command name,
/// which is in parentheses), in seconds.
fn stat_seconds(path: &str, a: usize, b: usize) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(a) + ticks(b)) / clock_ticks_per_second()
}

impl Server {
    /// Like [`Server::start`], with extra environment variables for the server process (e.g.
    /// the S3 credentials of a moto server).
    pub fn start_with_env(dir: &Path, config: &str, env: &[(String, String)]) -> Server {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("create bench dir");
        let config_path = dir.join("sawmill.toml");
        std::fs::write(&config_path, config).expect("write config");
        Server::spawn_with_env(dir, &config_path, env)
    }

    /// Like [`Server::spawn`], with extra environment variables for the server process.
    pub fn spawn_with_env(dir: &Path, config_path: &Path, env: &[(String, String)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sawmill"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .arg("--config")
            .arg(config_path)
            .env("SAWMILL_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("server exited").expect("read stdout");
            if let Some(u) = line.strip_prefix("sawmill listening on ") {
                break u.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let http = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(600);
        while http
            .get(format!("{url}/readyz"))
            .send()
            .map(|r| r.status().as_u16() != 200)
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "server not ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        Server {
            child,
            url,
            dir: dir.to_path_buf(),
        }
    }
}

/// CPU time (user + system) used so far by the threads of process `pid` named `name` (e.g.
/// `sawmill-archive`), in seconds.
pub fn thread_cpu_seconds(pid: u32, name: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return f64::NAN;
    };
    entries
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .map(|e| stat_seconds(&e.path().join("stat").to_string_lossy(), 11, 12))
        .sum()
}

/// The `/metrics` text of the server at `url` (empty when it does not answer).
pub fn metrics_text(http: &reqwest::blocking::Client, url: &str) -> String {
    http.get(format!("{url}/metrics"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default()
}

/// The value of one series of a Prometheus text exposition, written as it appears there
/// (`name` or `name{label="value"}`); NaN when it is absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            if name.trim() != series {
                return None;
            }
            value.trim().parse::<f64>().ok()
        })
        .unwrap_or(f64::NAN)
}

/// CPU time (user + system) a running process has used so far, in seconds.
pub fn pid_cpu_seconds(pid: u32) -> f64 {
    stat_seconds(&format!("/proc/{pid}/stat"), 11, 12)
}

/// The processes whose command line holds `arg` followed by `next`, and an argument that
/// contains `word` (e.g. a `moto_server` started with `-p PORT`).
pub fn pids_with_args(word: &str, arg: &str, next: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.iter().any(|a| a.contains(word))
                && args.windows(2).any(|w| w[0] == arg && w[1] == next)
        })
        .collect()
}

impl Server {
    /// Like [`Server::start_with_env`], with the server's log (stderr) written to `log`
    /// instead of this process's stderr. `SAWMILL_LOG` may be set in `env`.
    pub fn start_logged(dir: &Path, config: &str, env: &[(String, String)], log: &Path) -> Server {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("create bench dir");
        let config_path = dir.join("sawmill.toml");
        std::fs::write(&config_path, config).expect("write config");
        let stderr = std::fs::File::create(log).expect("create server log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sawmill"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .arg("--config")
            .arg(&config_path)
            .env("SAWMILL_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let Some(line) = lines.next() else {
                panic!(
                    "server exited; its log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            };
            if let Some(u) = line
                .expect("read stdout")
                .strip_prefix("sawmill listening on ")
            {
                break u.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let http = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(600);
        while http
            .get(format!("{url}/readyz"))
            .send()
            .map(|r| r.status().as_u16() != 200)
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "server not ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        Server {
            child,
            url,
            dir: dir.to_path_buf(),
        }
    }
}

/// Busy time (all but idle and iowait) of every CPU of the machine since boot, in seconds.
pub fn machine_busy_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    let busy: f64 = f
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    busy / clock_ticks_per_second()
}
