//! The archive on S3 (a real `moto_server` on loopback): does it keep up with ingest at full
//! speed, and how many objects (of what size) does a steady 10 MB/s produce per hour?
//!
//! `cargo bench --bench archive -- --events 1000000 --rate-mbps 10 --seconds 120`
//!
//! 1. Ingest at full speed (4 clients, 2 MB batches), `/metrics` sampled every second:
//!    once with the local-folder archive (`fs`, the reference) and twice with S3, default
//!    batch settings (64 MiB uncompressed, 5 min, zstd 3). The `fs` run and the first S3 run
//!    call `POST /api/v1/admin/flush` right after the last acknowledgment and time it; the
//!    second S3 run does not flush and waits until the archive backlog is 0 by itself (the
//!    last partial batch is sealed by its age, 5 min).
//!    This is done for two corpora from the same generator and seed (`--corpus both`):
//!    `replay` is the ingest benchmark's corpus (50 events per second of log time: 5.6 hours
//!    of log time, so one batch per hour, each smaller than 64 MiB) and `live` has the same
//!    events at 50,000 events per second of log time (20 s, all in one hour), as a live
//!    stream at that rate would.
//! 2. Ingest paced at `--rate-mbps` MB/s of raw NDJSON for `--seconds` (the `live` corpus,
//!    sent again from the start when it runs out), S3, default batch settings; then a flush,
//!    and the bucket's listing: objects per hour and their mean size.
//!
//! Every run reports the CPU time the server, moto and other processes used. A full-speed
//! run during which other processes used more than `--max-others` CPU-seconds (default 1) is
//! started again, up to `--attempts` times (default 5): the machine is shared.
//!
//! Options: `--clients N`, `--batch-bytes N`, `--corpus both|live|replay`,
//! `--wait-age yes|no` (the no-flush S3 run), `--paced yes|no` (part 2), `--max yes|no`
//! (part 1), `--max-others S`, `--attempts N`.

mod support;

#[allow(dead_code)]
#[path = "../tests/it/common/moto.rs"]
mod moto;

use moto::Moto;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::{
    arg, corpus, ingest_all, metric_value, metrics_text, pid_cpu_seconds, pids_with_args,
    split_batches, thread_cpu_seconds, Server,
};

const BUCKET: &str = "sawmill-bench";
const START: &str = "2026-11-20T00:00:00Z";
/// The server's default `archive.batch_max_bytes`.
const BATCH_MAX_BYTES: f64 = 67_108_864.0;
/// The server's default `archive.batch_max_age`.
const BATCH_MAX_AGE: Duration = Duration::from_secs(300);
/// S3's minimum billable object size in STANDARD_IA and GLACIER_IR.
const MIN_BILLABLE: f64 = 131_072.0;

type Batches = Arc<Vec<(bytes::Bytes, u64)>>;

/// One reading of the server (and of moto, when there is one).
#[derive(Clone, Debug, Default)]
struct Sample {
    /// Seconds since the run's ingest started.
    t: f64,
    backlog_events: f64,
    backlog_age: f64,
    objects: f64,
    archived_events: f64,
    raw_bytes: f64,
    compressed_bytes: f64,
    wal_bytes: f64,
    server_cpu: f64,
    archive_cpu: f64,
    moto_cpu: f64,
    /// Busy CPU time of the whole machine, and of this benchmark process.
    machine_cpu: f64,
    bench_cpu: f64,
}

impl Sample {
    /// CPU seconds used between `self` and `later` by processes other than the server, moto
    /// and this benchmark (others working on the machine).
    fn others_cpu(&self, later: &Sample) -> f64 {
        let d = |a: f64, b: f64| if a.is_nan() { 0.0 } else { b - a };
        d(self.machine_cpu, later.machine_cpu)
            - d(self.server_cpu, later.server_cpu)
            - d(self.moto_cpu, later.moto_cpu)
            - d(self.bench_cpu, later.bench_cpu)
    }
}

/// Busy time (all but idle and iowait) of every CPU since boot, in seconds.
fn machine_cpu_seconds() -> f64 {
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
    busy / 100.0
}

/// What a run watches: the server's metrics and CPU, and moto's CPU.
#[derive(Clone)]
struct Probe {
    http: reqwest::blocking::Client,
    url: String,
    server_pid: u32,
    moto_pids: Vec<u32>,
    t0: Instant,
}

impl Probe {
    fn sample(&self) -> Sample {
        let text = metrics_text(&self.http, &self.url);
        let m = |series: &str| metric_value(&text, series);
        Sample {
            t: self.t0.elapsed().as_secs_f64(),
            backlog_events: m("sawmill_archive_backlog_events"),
            backlog_age: m("sawmill_archive_backlog_age_seconds"),
            objects: m("sawmill_archive_objects_total"),
            archived_events: m("sawmill_archive_events_total"),
            raw_bytes: m("sawmill_archive_bytes_total{kind=\"raw\"}"),
            compressed_bytes: m("sawmill_archive_bytes_total{kind=\"compressed\"}"),
            wal_bytes: m("sawmill_wal_disk_bytes"),
            server_cpu: pid_cpu_seconds(self.server_pid),
            archive_cpu: thread_cpu_seconds(self.server_pid, "sawmill-archive"),
            moto_cpu: if self.moto_pids.is_empty() {
                f64::NAN
            } else {
                self.moto_pids.iter().map(|p| pid_cpu_seconds(*p)).sum()
            },
            machine_cpu: machine_cpu_seconds(),
            bench_cpu: pid_cpu_seconds(std::process::id()),
        }
    }
}

/// Samples a [`Probe`] every second in a thread.
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: JoinHandle<()>,
}

impl Sampler {
    fn start(probe: Probe) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, samples) = (stop.clone(), samples.clone());
            std::thread::spawn(move || {
                let mut next = probe.t0;
                while !stop.load(Ordering::SeqCst) {
                    let s = probe.sample();
                    samples.lock().expect("samples").push(s);
                    next += Duration::from_secs(1);
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            })
        };
        Sampler {
            stop,
            samples,
            thread,
        }
    }

    fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("sampler thread");
        std::mem::take(&mut *self.samples.lock().expect("samples"))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Fs,
    S3,
}

/// How a full-speed run ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// `POST /api/v1/admin/flush` right after the last acknowledgment.
    Flush,
    /// No flush: wait until the backlog is 0 (the last partial batch seals at its age).
    WaitAge,
}

/// What `POST /api/v1/admin/flush` did.
#[derive(Clone, Debug, Default)]
struct Flush {
    /// Wall time at the client.
    secs: f64,
    objects: u64,
    index_commit_ms: u64,
}

/// One full-speed run.
struct MaxRun {
    label: String,
    bytes: usize,
    events: u64,
    /// Seconds from the first request to the last acknowledgment (read right after it).
    acked: f64,
    /// Attempts done again because other processes used CPU meanwhile: their CPU seconds.
    disturbed: Vec<f64>,
    /// Read right before the first request.
    at_start: Sample,
    /// Read right after the last acknowledgment.
    at_end: Sample,
    samples: Vec<Sample>,
    flush: Option<Flush>,
    /// Seconds after the last acknowledgment at which the backlog was 0 without a flush.
    zero_after: Option<f64>,
    /// Object writes after the last acknowledgment: (seconds after it, objects, backlog).
    writes: Vec<(f64, f64, f64)>,
    last: Sample,
    /// S3 only: (objects listed, their bytes).
    listed: Option<(usize, u64)>,
}

impl MaxRun {
    fn mb_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.acked
    }

    /// Events of one full batch (64 MiB of archived lines).
    fn batch_events(&self) -> f64 {
        BATCH_MAX_BYTES / (self.last.raw_bytes / self.last.archived_events)
    }

    /// The samples taken while ingest ran, and the one right after it.
    fn during(&self) -> impl Iterator<Item = &Sample> {
        self.samples
            .iter()
            .filter(|s| s.t <= self.acked)
            .chain(std::iter::once(&self.at_end))
    }

    fn max_backlog(&self) -> f64 {
        self.during().map(|s| s.backlog_events).fold(0.0, f64::max)
    }

    fn max_age(&self) -> f64 {
        self.during().map(|s| s.backlog_age).fold(0.0, f64::max)
    }

    /// How much a cumulative reading (e.g. a CPU time) grew while ingest ran.
    fn during_ingest(&self, f: impl Fn(&Sample) -> f64) -> f64 {
        f(&self.at_end) - f(&self.at_start)
    }

    /// CPU seconds other processes used on the machine while ingest ran.
    fn others_during(&self) -> f64 {
        self.at_start.others_cpu(&self.at_end)
    }

    /// The last object write after the end of ingest that came before any batch could reach
    /// its age (batches open at the earliest when ingest starts), so sealed by size: (seconds
    /// after the end of ingest, backlog then).
    fn size_sealed_by(&self) -> Option<(f64, f64)> {
        self.writes
            .iter()
            .rfind(|(t, _, _)| self.acked + t < BATCH_MAX_AGE.as_secs_f64())
            .map(|(t, _, b)| (*t, *b))
    }
}

fn config(backend: Backend, moto: Option<&Moto>) -> String {
    let mut c = String::from("[index]\nrefresh_interval = \"1s\"\nhot_retention = \"3650d\"\n");
    if backend == Backend::S3 {
        let moto = moto.expect("moto");
        write!(
            c,
            "\n[archive]\nbackend = \"s3\"\nbucket = \"{BUCKET}\"\nendpoint = \"{}\"\n\
             region = \"us-east-1\"\nforce_path_style = true\n\n[archive.lifecycle]\nmanage = true\n",
            moto.endpoint()
        )
        .expect("write config");
    }
    c
}

/// moto, a server on a fresh data directory, and what watches them.
fn start(backend: Backend, name: &str) -> (Option<Moto>, Server, Probe) {
    let moto = (backend == Backend::S3).then(|| {
        let moto = Moto::start();
        moto.create_bucket(BUCKET);
        moto
    });
    let dir = support::root()
        .join("target")
        .join("bench-data")
        .join(format!("archive-{name}"));
    let env = moto.as_ref().map(|m| m.env()).unwrap_or_default();
    let server = Server::start_with_env(&dir, &config(backend, moto.as_ref()), &env);
    let moto_pids = moto
        .as_ref()
        .map(|m| {
            let port = m.endpoint().rsplit(':').next().unwrap_or("").to_string();
            let pids = pids_with_args("moto", "-p", &port);
            assert!(
                !pids.is_empty(),
                "cannot find the moto process on port {port}"
            );
            pids
        })
        .unwrap_or_default();
    let probe = Probe {
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        url: server.url.clone(),
        server_pid: server.child.id(),
        moto_pids,
        t0: Instant::now(),
    };
    (moto, server, probe)
}

fn flush(url: &str) -> Flush {
    let started = Instant::now();
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(1800))
        .build()
        .expect("client")
        .post(format!("{url}/api/v1/admin/flush"))
        .send()
        .expect("flush");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    assert_eq!(status, 200, "flush: {text}");
    let secs = started.elapsed().as_secs_f64();
    let v: serde_json::Value = serde_json::from_str(&text).expect("flush json");
    Flush {
        secs,
        objects: v["archive"]["objects_written"].as_u64().unwrap_or(0),
        index_commit_ms: v["index"]["commit_ms"].as_u64().unwrap_or(0),
    }
}

fn listing(moto: &Moto) -> Vec<(String, u64, String)> {
    moto.list(BUCKET, "")
}

/// Ingests everything at full speed and ends as `end` says.
fn run_max(
    corpus_name: &str,
    batches: &Batches,
    bytes: usize,
    backend: Backend,
    end: End,
    again: bool,
) -> MaxRun {
    let label = match (backend, end) {
        (Backend::Fs, _) if again => "fs (reference, again), flush".to_string(),
        (Backend::Fs, _) => "fs (reference), flush".to_string(),
        (Backend::S3, End::Flush) => "s3, flush".to_string(),
        (Backend::S3, End::WaitAge) => "s3, no flush".to_string(),
    };
    eprintln!("== {corpus_name}: {label}");
    let name = format!(
        "{corpus_name}-{}-{}{}",
        if backend == Backend::S3 { "s3" } else { "fs" },
        if end == End::Flush { "flush" } else { "age" },
        if again { "-again" } else { "" }
    );
    let clients: usize = arg("clients", "4").parse().expect("--clients");
    let max_others: f64 = arg("max-others", "1").parse().expect("--max-others");
    let attempts: usize = arg("attempts", "5").parse().expect("--attempts");
    let mut disturbed = Vec::new();
    // an attempt during which other processes took CPU is done again (up to `attempts`)
    let (moto, server, probe, sampler, at_start, at_end) = loop {
        let (moto, server, mut probe) = start(backend, &name);
        probe.t0 = Instant::now();
        let at_start = probe.sample();
        let sampler = Sampler::start(probe.clone());
        ingest_all(&server.url, batches, clients);
        let at_end = probe.sample();
        let others = at_start.others_cpu(&at_end);
        if others <= max_others || disturbed.len() + 1 >= attempts {
            break (moto, server, probe, sampler, at_start, at_end);
        }
        eprintln!("   other processes used {others:.1} CPU-s during the ingest: once more in 30 s");
        disturbed.push(others);
        sampler.finish();
        server.stop();
        drop(moto);
        std::thread::sleep(Duration::from_secs(30));
    };
    let acked = at_end.t;
    let events: u64 = batches.iter().map(|b| b.1).sum();
    let mut run = MaxRun {
        label,
        bytes,
        events,
        acked,
        disturbed,
        at_start,
        at_end: at_end.clone(),
        samples: Vec::new(),
        flush: None,
        zero_after: None,
        writes: Vec::new(),
        last: at_end.clone(),
        listed: None,
    };
    match end {
        End::Flush => run.flush = Some(flush(&server.url)),
        End::WaitAge => {
            let deadline = Instant::now() + BATCH_MAX_AGE + Duration::from_secs(600);
            let mut objects = at_end.objects;
            loop {
                let s = probe.sample();
                if s.objects != objects {
                    objects = s.objects;
                    run.writes.push((s.t - acked, s.objects, s.backlog_events));
                }
                if s.backlog_events == 0.0 && s.archived_events >= events as f64 {
                    run.zero_after = Some(s.t - acked);
                    break;
                }
                if Instant::now() > deadline {
                    eprintln!("backlog not 0 {:.0} s after the end of ingest", s.t - acked);
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    // the sampler sees the backlog settle; then one last reading
    std::thread::sleep(Duration::from_millis(1500));
    run.samples = sampler.finish();
    run.last = probe.sample();
    if let Some(m) = &moto {
        let objects = listing(m);
        run.listed = Some((objects.len(), objects.iter().map(|o| o.1).sum()));
    }
    server.stop();
    drop(moto);
    print_max_run(&run);
    run
}

fn mib(b: f64) -> f64 {
    b / 1_048_576.0
}

/// CPU share (100 % = one core) between two samples.
fn pct(a: f64, b: f64, dt: f64) -> f64 {
    if dt > 0.0 {
        (b - a) / dt * 100.0
    } else {
        f64::NAN
    }
}

/// The highest CPU share (100 % = one core) between consecutive samples.
fn max_pct(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    samples
        .windows(2)
        .map(|w| pct(f(&w[0]), f(&w[1]), w[1].t - w[0].t))
        .fold(f64::NAN, f64::max)
}

/// `v` with `decimals`, or `–` when there is no value (NaN: no moto in an `fs` run).
fn num(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.decimals$}")
    }
}

fn print_max_run(r: &MaxRun) {
    println!(
        "\n### {}: {} events, {:.1} MB acked in {:.2} s: {:.1} MB/s, {:.0} events/s",
        r.label,
        r.events,
        r.bytes as f64 / 1e6,
        r.acked,
        r.mb_s(),
        r.events as f64 / r.acked
    );
    println!(
        "   t s | backlog events | age s | objects | WAL MiB | server CPU % | archive thread % | moto CPU %"
    );
    let mut prev: Option<&Sample> = None;
    for s in r.samples.iter().chain(std::iter::once(&r.last)) {
        let changed = prev.is_none_or(|p| {
            p.backlog_events != s.backlog_events || p.objects != s.objects || s.t <= r.acked + 2.0
        });
        if changed {
            let (sc, ac, mc) = match prev {
                Some(p) => (
                    pct(p.server_cpu, s.server_cpu, s.t - p.t),
                    pct(p.archive_cpu, s.archive_cpu, s.t - p.t),
                    pct(p.moto_cpu, s.moto_cpu, s.t - p.t),
                ),
                None => (f64::NAN, f64::NAN, f64::NAN),
            };
            println!(
                "{:6.1} | {:14.0} | {:5.0} | {:7.0} | {:7.1} | {:>12} | {:>16} | {:>10}",
                s.t,
                s.backlog_events,
                s.backlog_age,
                s.objects,
                mib(s.wal_bytes),
                num(sc, 0),
                num(ac, 0),
                num(mc, 0)
            );
        }
        prev = Some(s);
    }
    let e = &r.at_end;
    if !r.disturbed.is_empty() {
        println!(
            "attempts done again because other processes used CPU during the ingest: {:?} CPU-s",
            r.disturbed
        );
    }
    println!(
        "busiest second: server {} %, archive thread {} %, moto {} %",
        num(max_pct(&r.samples, |s| s.server_cpu), 0),
        num(max_pct(&r.samples, |s| s.archive_cpu), 0),
        num(max_pct(&r.samples, |s| s.moto_cpu), 0)
    );
    println!(
        "backlog during ingest: max {:.0} events ({:.2} batches of 64 MiB), max age {:.0} s; at the end of ingest {:.0} events ({:.2} batches), age {:.0} s; {:.0} objects written by then",
        r.max_backlog(),
        r.max_backlog() / r.batch_events(),
        r.max_age(),
        e.backlog_events,
        e.backlog_events / r.batch_events(),
        e.backlog_age,
        e.objects
    );
    println!(
        "CPU during ingest: server {:.1} s (archive thread {:.1} s), moto {} s, other processes on the machine {:.1} s",
        r.during_ingest(|s| s.server_cpu),
        r.during_ingest(|s| s.archive_cpu),
        num(r.during_ingest(|s| s.moto_cpu), 1),
        r.others_during()
    );
    if let Some(f) = &r.flush {
        println!(
            "flush right after the last ack: {:.2} s ({} objects written, index commit {} ms)",
            f.secs, f.objects, f.index_commit_ms
        );
    }
    if !r.writes.is_empty() || r.zero_after.is_some() {
        let writes: Vec<String> = r
            .writes
            .iter()
            .map(|(t, o, b)| format!("+{t:.1} s: {o:.0} objects, backlog {b:.0}"))
            .collect();
        println!(
            "no flush; object writes after the end of ingest: {}",
            writes.join("; ")
        );
        match r.size_sealed_by() {
            Some((t, b)) => println!(
                "objects written before any batch could be {} s old (so sealed by size): the last at +{t:.1} s after the end of ingest, backlog then {b:.0} events",
                BATCH_MAX_AGE.as_secs()
            ),
            None => println!(
                "no object written after the end of ingest before any batch could be {} s old",
                BATCH_MAX_AGE.as_secs()
            ),
        }
        match r.zero_after {
            Some(t) => println!("backlog 0 without a flush {t:.1} s after the end of ingest"),
            None => println!("backlog not 0 by the deadline"),
        }
    }
    let l = &r.last;
    println!(
        "archived: {:.0} objects, {:.0} events, {:.1} MB raw -> {:.1} MB stored (ratio {:.3}); CPU in all: server {:.1} s (archive thread {:.1} s), moto {} s",
        l.objects,
        l.archived_events,
        l.raw_bytes / 1e6,
        l.compressed_bytes / 1e6,
        l.compressed_bytes / l.raw_bytes,
        l.server_cpu,
        l.archive_cpu,
        num(l.moto_cpu, 1)
    );
    if let Some((n, b)) = r.listed {
        println!("bucket listing: {n} objects, {b} bytes");
    }
    assert_eq!(
        l.archived_events as u64, r.events,
        "every acknowledged event archived once"
    );
}

/// The paced run (part 2).
struct Paced {
    rate_mbps: f64,
    seconds: f64,
    bytes: u64,
    events: u64,
    /// Seconds from the first request to the last acknowledgment.
    run_secs: f64,
    /// Most a request started after its scheduled time, in seconds.
    max_late: f64,
    /// Objects written before the flush: every one sealed by size.
    by_size: u64,
    flush: Flush,
    /// Compressed sizes of the size-sealed objects, and of those the flush sealed.
    sizes: Vec<u64>,
    tail_sizes: Vec<u64>,
    classes: Vec<String>,
    samples: Vec<Sample>,
    last: Sample,
}

fn run_paced(batches: &Batches) -> Paced {
    let rate_mbps: f64 = arg("rate-mbps", "10").parse().expect("--rate-mbps");
    let seconds: f64 = arg("seconds", "120").parse().expect("--seconds");
    let clients: usize = arg("clients", "4").parse().expect("--clients");
    eprintln!("== paced: {rate_mbps} MB/s for {seconds} s, s3");
    let rate = rate_mbps * 1e6;
    // the schedule: batch k (the corpus again and again) is sent at (bytes before it) / rate
    let mut schedule = Vec::new();
    let mut sent = 0u64;
    for k in 0.. {
        let at = sent as f64 / rate;
        if at >= seconds {
            break;
        }
        let i = k % batches.len();
        schedule.push((i, at));
        sent += batches[i].0.len() as u64;
    }
    let events: u64 = schedule.iter().map(|(i, _)| batches[*i].1).sum();
    let (moto, server, mut probe) = start(Backend::S3, "paced");
    let moto = moto.expect("moto");
    probe.t0 = Instant::now();
    let sampler = Sampler::start(probe.clone());
    let schedule = Arc::new(schedule);
    let next = Arc::new(AtomicUsize::new(0));
    let late = Arc::new(Mutex::new(0.0f64));
    let t0 = probe.t0;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (batches, schedule, next, late) = (
                batches.clone(),
                schedule.clone(),
                next.clone(),
                late.clone(),
            );
            let url = format!("{}/api/v1/ingest", server.url);
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(300))
                    .build()
                    .expect("client");
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(i, at)) = schedule.get(k) else {
                        break;
                    };
                    let due = t0 + Duration::from_secs_f64(at);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let behind = t0.elapsed().as_secs_f64() - at;
                    {
                        let mut l = late.lock().expect("late");
                        *l = l.max(behind);
                    }
                    let (body, n) = &batches[i];
                    loop {
                        let resp = http
                            .post(&url)
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
    let run_secs = t0.elapsed().as_secs_f64();
    // let the archive write what was sealed by size during the run: it is idle when neither
    // its object count nor its backlog moved for 5 s
    let mut last = probe.sample();
    let mut still_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    while still_since.elapsed() < Duration::from_secs(5) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        let s = probe.sample();
        if s.objects != last.objects || s.backlog_events != last.backlog_events {
            still_since = Instant::now();
        }
        last = s;
    }
    let by_size = last.objects as u64;
    let before_flush = listing(&moto);
    let flushed = flush(&server.url);
    std::thread::sleep(Duration::from_millis(1500));
    let samples = sampler.finish();
    let last = probe.sample();
    let after = listing(&moto);
    server.stop();
    let first_keys: std::collections::HashSet<&str> =
        before_flush.iter().map(|o| o.0.as_str()).collect();
    let sizes: Vec<u64> = before_flush.iter().map(|o| o.1).collect();
    let tail_sizes: Vec<u64> = after
        .iter()
        .filter(|o| !first_keys.contains(o.0.as_str()))
        .map(|o| o.1)
        .collect();
    let mut classes: Vec<String> = after.iter().map(|o| o.2.clone()).collect();
    classes.sort();
    classes.dedup();
    let p = Paced {
        rate_mbps,
        seconds,
        bytes: sent,
        events,
        run_secs,
        max_late: *late.lock().expect("late"),
        by_size,
        flush: flushed,
        sizes,
        tail_sizes,
        classes,
        samples,
        last,
    };
    print_paced(&p);
    p
}

fn mean(v: &[u64]) -> f64 {
    v.iter().sum::<u64>() as f64 / v.len() as f64
}

fn print_paced(p: &Paced) {
    println!(
        "\n### paced: {:.1} MB ({} events) sent at {} MB/s over {:.1} s (acked by {:.1} s: {:.2} MB/s); a request started at most {:.2} s after its scheduled time",
        p.bytes as f64 / 1e6,
        p.events,
        p.rate_mbps,
        p.seconds,
        p.run_secs,
        p.bytes as f64 / 1e6 / p.run_secs,
        p.max_late
    );
    let max_backlog = p
        .samples
        .iter()
        .map(|s| s.backlog_events)
        .fold(0.0, f64::max);
    let max_age = p.samples.iter().map(|s| s.backlog_age).fold(0.0, f64::max);
    let max_wal = p.samples.iter().map(|s| s.wal_bytes).fold(0.0, f64::max);
    let first = p.samples.first();
    println!(
        "busiest second: server {} %, archive thread {} %, moto {} %",
        num(max_pct(&p.samples, |s| s.server_cpu), 0),
        num(max_pct(&p.samples, |s| s.archive_cpu), 0),
        num(max_pct(&p.samples, |s| s.moto_cpu), 0)
    );
    let batch_events = BATCH_MAX_BYTES / (p.last.raw_bytes / p.last.archived_events);
    println!(
        "backlog over the run: max {max_backlog:.0} events ({:.2} batches), max age {max_age:.0} s; WAL on disk at most {:.0} MiB",
        max_backlog / batch_events,
        mib(max_wal)
    );
    println!(
        "CPU from the first request to the end: server {:.1} s (archive thread {:.1} s), moto {:.1} s, other processes on the machine {:.1} s",
        first.map(|s| p.last.server_cpu - s.server_cpu).unwrap_or(f64::NAN),
        first.map(|s| p.last.archive_cpu - s.archive_cpu).unwrap_or(f64::NAN),
        first.map(|s| p.last.moto_cpu - s.moto_cpu).unwrap_or(f64::NAN),
        first.map(|s| s.others_cpu(&p.last)).unwrap_or(f64::NAN)
    );
    println!(
        "objects sealed by size during the run (written before the flush): {}; the flush wrote {} more in {:.2} s",
        p.by_size, p.flush.objects, p.flush.secs
    );
    println!(
        "bucket: {} objects, storage classes {:?}; size-sealed: mean {:.0} bytes (min {}, max {}); flush-sealed tail: {:?} bytes",
        p.sizes.len() + p.tail_sizes.len(),
        p.classes,
        mean(&p.sizes),
        p.sizes.iter().min().copied().unwrap_or(0),
        p.sizes.iter().max().copied().unwrap_or(0),
        p.tail_sizes
    );
    println!(
        "objects/hour = {} size-sealed objects / {:.1} s x 3600 = {:.0} (64 MiB raw each: {} MB/s x 3600 / 64 MiB = {:.0})",
        p.by_size,
        p.run_secs,
        p.objects_per_hour(),
        p.rate_mbps,
        p.rate_mbps * 1e6 * 3600.0 / BATCH_MAX_BYTES
    );
    if let Some((first, last, rate)) = p.spacing_per_hour() {
        println!(
            "cross-check from their spacing: objects 1 to {} written between {first:.0} s and {last:.0} s: {rate:.0} objects/hour",
            p.by_size
        );
    }
    println!(
        "mean size-sealed object {:.2} MB = {:.0}x S3's 128 KB minimum billable size (STANDARD_IA, GLACIER_IR)",
        mean(&p.sizes) / 1e6,
        mean(&p.sizes) / MIN_BILLABLE
    );
    assert_eq!(
        p.last.archived_events as u64, p.events,
        "every acknowledged event archived once"
    );
}

impl Paced {
    fn objects_per_hour(&self) -> f64 {
        self.by_size as f64 / self.run_secs * 3600.0
    }

    /// The same rate from the spacing of the size-sealed writes: (objects − 1) over the time
    /// from the first to the last, as the sampler saw them (1 s resolution).
    fn spacing_per_hour(&self) -> Option<(f64, f64, f64)> {
        let first = self.samples.iter().find(|s| s.objects >= 1.0)?.t;
        let last = self
            .samples
            .iter()
            .find(|s| s.objects >= self.by_size as f64)?
            .t;
        (last > first && self.by_size > 1).then(|| {
            (
                first,
                last,
                (self.by_size - 1) as f64 / (last - first) * 3600.0,
            )
        })
    }
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map(|v| format!("{v:.1} {unit}"))
        .unwrap_or_else(|| "–".into())
}

fn summary(corpora: &[(String, u64, usize, Vec<MaxRun>)], paced: Option<&Paced>) {
    println!("\n## Summary (markdown)\n");
    if !corpora.is_empty() {
        println!(
            "Full speed, {} clients, 2 MB requests; backlog in events (and in 64 MiB batches):\n",
            arg("clients", "4")
        );
        println!("| corpus | archive | ingest MB/s | events/s | backlog max | backlog at end of ingest | age max | flush after last ack | backlog 0 without flush | CPU s during ingest: server / moto / others |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for (name, _, _, runs) in corpora {
            for r in runs {
                let b = r.batch_events();
                println!(
                    "| {name} | {} | {:.1} | {:.0} | {:.0} ({:.2}) | {:.0} ({:.2}) | {:.0} s | {} | {} | {:.1} / {} / {:.1} |",
                    r.label,
                    r.mb_s(),
                    r.events as f64 / r.acked,
                    r.max_backlog(),
                    r.max_backlog() / b,
                    r.at_end.backlog_events,
                    r.at_end.backlog_events / b,
                    r.max_age(),
                    opt(r.flush.as_ref().map(|f| f.secs), "s"),
                    opt(r.zero_after, "s"),
                    r.during_ingest(|s| s.server_cpu),
                    num(r.during_ingest(|s| s.moto_cpu), 1),
                    r.others_during()
                );
            }
        }
    }
    let redone: usize = corpora
        .iter()
        .flat_map(|c| c.3.iter())
        .map(|r| r.disturbed.len())
        .sum();
    if !corpora.is_empty() {
        println!(
            "\nAttempts done again because other processes used more than {} CPU-s during the ingest: {redone}",
            arg("max-others", "1")
        );
    }
    if let Some(p) = paced {
        println!(
            "\nPaced {} MB/s for {:.0} s: {} objects sealed by size in {:.1} s -> {:.0} objects/hour; mean object {:.2} MB ({:.0}x 128 KB); flush tail {} object(s) of {:?} bytes in {:.2} s",
            p.rate_mbps,
            p.seconds,
            p.by_size,
            p.run_secs,
            p.objects_per_hour(),
            mean(&p.sizes) / 1e6,
            mean(&p.sizes) / MIN_BILLABLE,
            p.flush.objects,
            p.tail_sizes,
            p.flush.secs
        );
    }
}

fn main() {
    let events: u64 = arg("events", "1000000").parse().expect("--events");
    let batch_bytes: usize = arg("batch-bytes", "2000000")
        .parse()
        .expect("--batch-bytes");
    let which = arg("corpus", "both");
    let mut corpora = Vec::new();
    let mut live: Option<Batches> = None;
    let wanted: Vec<(&str, &str)> = [("replay", "50"), ("live", "50000")]
        .into_iter()
        .filter(|(n, _)| which == "both" || which == *n)
        .collect();
    if arg("max", "yes") == "yes" {
        for (name, rate) in wanted {
            let path = corpus(events, 7, START, rate);
            let (batches, bytes) = split_batches(&path, batch_bytes);
            let batches = Arc::new(batches);
            println!(
                "\ncorpus {name}: {} ({events} events, {:.1} MB, {rate} events per second of log time)",
                path.display(),
                bytes as f64 / 1e6
            );
            // the reference before and after the S3 runs, to see the run-to-run spread
            let mut runs = vec![
                run_max(name, &batches, bytes, Backend::Fs, End::Flush, false),
                run_max(name, &batches, bytes, Backend::S3, End::Flush, false),
            ];
            if arg("wait-age", "yes") == "yes" {
                runs.push(run_max(
                    name,
                    &batches,
                    bytes,
                    Backend::S3,
                    End::WaitAge,
                    false,
                ));
            }
            runs.push(run_max(
                name,
                &batches,
                bytes,
                Backend::Fs,
                End::Flush,
                true,
            ));
            if name == "live" {
                live = Some(batches.clone());
            }
            corpora.push((name.to_string(), events, bytes, runs));
        }
    }
    let paced = (arg("paced", "yes") == "yes").then(|| {
        let batches = live.unwrap_or_else(|| {
            Arc::new(split_batches(&corpus(events, 7, START, "50000"), batch_bytes).0)
        });
        run_paced(&batches)
    });
    summary(&corpora, paced.as_ref());
}
