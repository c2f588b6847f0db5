//! Alerting: how soon after an event's acknowledgment its notification goes out, and what
//! 100 rules cost at full ingest speed.
//!
//! `cargo bench --bench alerts -- --samples 200 --events 1000000`
//!
//! 1. Latency, acknowledgment → notification. One rule, `service:probe`, window 2 s,
//!    `> 0`, grouped by `probe_id`, notifying an SNS topic on a real `moto_server` (an SQS
//!    queue subscribed to it) and a webhook whose receiver runs in this program. A probe is
//!    one event `{"service":"probe","probe_id":"<n>",…}`; its clock starts when the HTTP 200
//!    arrives, and the notification of group `probe_id=<n>` (state `firing`) is the one it
//!    caused. Measured at two receivers:
//!    - `webhook`: when the POST has arrived at the receiver here: the notification leaving
//!      the server, without SNS or SQS in between;
//!    - `SNS → SQS`: when a long poll of the queue (1 s waits, from its own thread) returns
//!      the message: publish + SQS delivery + polling, an upper bound of the publish instant.
//!      The poller deletes what it received (one batch call), as a consumer would: moto
//!      gets slower with every in-flight message it keeps. The SNS envelope's `Timestamp`
//!      (set by moto while handling the publish) splits this path in two.
//!
//!    `--samples` probes (after 2 warm-up probes that are not counted), ~100 ms apart
//!    (`--spacing-ms`), on an idle server and on a server ingesting the corpus at full speed
//!    from 4 clients during the probes (the corpus is sent again from the start when it runs
//!    out). Notifiers have `group_limit: 1000000` so storm grouping holds nothing back. Each
//!    probe's `starts_at` (the engine's evaluation, wall clock, ms) splits the webhook
//!    latency into engine (ack → evaluation) and delivery (evaluation → arrival). The
//!    comparison with a 1-minute evaluation interval uses the same acknowledgment instants.
//!    The servers log at `SAWMILL_LOG=info` into `target/bench-data/alerts-latency-*.log`;
//!    every probe and every notification seen (firing and resolved, with `starts_at`, moto's
//!    publish time and the arrival) go to `target/bench-data/alerts-latency-*-{probes,
//!    notifications}.csv`. The program also counts firing notifications that stayed pending
//!    while the webhook sender delivered nothing (arrival − max(evaluation, previous webhook
//!    arrival) > 50 ms).
//! 2. Cost of 100 rules: the corpus (`--events`, 4 clients, 2 MB batches, as the ingest
//!    benchmark) ingested by a server without rules and by one with 100 rules (keywords,
//!    attribute ranges, words and phrases of the message, some grouped by host or service,
//!    a log notifier), alternately, `--repeats` times each. The corpus' timestamps are moved
//!    to the run's start (`--rebase yes`) so the rules count every match, as they would for
//!    a live stream (events older than a rule's window are not counted).
//!
//! Options: `--samples N`, `--spacing-ms N`, `--events N`, `--clients N`, `--batch-bytes N`,
//! `--repeats N`, `--rebase yes|no`, `--latency yes|no`, `--latency-load yes|no`,
//! `--sqs-delete yes|no`, `--cost yes|no`, `--print-rules yes` (print the 100 rules and exit).

mod support;

#[allow(dead_code)]
#[path = "../tests/it/common/moto.rs"]
mod moto;

use moto::Moto;
use serde_json::Value;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{
    arg, corpus, count_all, ingest_all, machine_busy_cpu_seconds, metric_value, metrics_text,
    percentile, pid_cpu_seconds, pids_with_args, thread_cpu_seconds, Server,
};

type Batches = Arc<Vec<(bytes::Bytes, u64)>>;

const START: &str = "2026-11-20T00:00:00Z";
/// The ingest benchmark's server configuration.
const INDEX_CONFIG: &str = "[index]\nrefresh_interval = \"1s\"\nhot_retention = \"3650d\"\nwriter_threads = 2\nwriter_memory_mib = 256\n";
const WARMUP_PROBES: usize = 2;

/// Removes a finished server's data directory and waits until the disk has written
/// everything, so the next run does not share the disk with this one's writeback.
fn settle(dir: &std::path::Path) {
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(Duration::from_secs(1));
}

fn bench_dir() -> PathBuf {
    support::root().join("target").join("bench-data")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn rfc3339(unix: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos((unix * 1e9) as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn parse_rfc3339(text: &str) -> Option<f64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
}

// ---------------------------------------------------------------------------------------
// receivers

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Via {
    Webhook,
    Sqs,
}

/// A notification seen by a receiver.
#[derive(Clone, Debug)]
struct Arrival {
    via: Via,
    probe: String,
    state: String,
    /// The notification's `starts_at` (unix seconds).
    starts_at: Option<f64>,
    /// SNS only: the envelope's `Timestamp`, set by moto when it handled the publish (unix
    /// seconds, ms resolution).
    published_at: Option<f64>,
    at: Instant,
    /// Unix seconds at `at`.
    at_wall: f64,
}

type Arrivals = Arc<Mutex<Vec<Arrival>>>;

fn record(
    arrivals: &Arrivals,
    via: Via,
    message: &Value,
    published_at: Option<f64>,
    at: Instant,
    at_wall: f64,
) {
    let one = |m: &Value, state: &str| Arrival {
        via,
        probe: m["group"]["probe_id"].as_str().unwrap_or("").to_string(),
        state: state.to_string(),
        starts_at: m["starts_at"].as_str().and_then(parse_rfc3339),
        published_at,
        at,
        at_wall,
    };
    let mut list = arrivals.lock().unwrap_or_else(|e| e.into_inner());
    if message["state"] == "grouped" {
        // storm grouping held these back (it should not, with group_limit 1000000)
        for a in message["alerts"].as_array().into_iter().flatten() {
            let state = format!("grouped-{}", a["state"].as_str().unwrap_or(""));
            list.push(one(a, &state));
        }
    } else {
        list.push(one(message, message["state"].as_str().unwrap_or("")));
    }
}

/// A webhook receiver on loopback: records each POSTed notification when its body has
/// arrived, answers 200. One thread per connection, keep-alive.
fn webhook_receiver(arrivals: Arrivals) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
    let url = format!("http://{}/hook", listener.local_addr().expect("local addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let arrivals = arrivals.clone();
            std::thread::spawn(move || serve_connection(stream, &arrivals));
        }
    });
    url
}

fn serve_connection(stream: TcpStream, arrivals: &Arrivals) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let mut len = 0usize;
        let mut started = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                if started {
                    break;
                }
                continue;
            }
            started = true;
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (at, at_wall) = (Instant::now(), unix_now());
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            record(arrivals, Via::Webhook, &v, None, at, at_wall);
        }
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn aws_http() -> aws_sdk_sqs::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .http_client(aws_http())
            .endpoint_url(endpoint)
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .build(),
    )
}

/// An SNS topic on moto with an SQS queue subscribed: what on-call receives.
struct Pager {
    moto: Moto,
    topic_arn: String,
    queue_url: String,
}

impl Pager {
    fn start() -> Pager {
        let moto = Moto::start();
        let sns = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::Config::builder()
                .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
                .http_client(aws_http())
                .endpoint_url(moto.endpoint())
                .region(aws_sdk_sns::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sns::config::Credentials::new(
                    "test", "test", None, None, "moto",
                ))
                .build(),
        );
        let sqs = sqs_client(&moto.endpoint());
        let (topic_arn, queue_url) = moto.block_on(async {
            let topic = sns
                .create_topic()
                .name("oncall")
                .send()
                .await
                .expect("create topic");
            let topic_arn = topic.topic_arn().expect("topic arn").to_string();
            let queue = sqs
                .create_queue()
                .queue_name("pager")
                .send()
                .await
                .expect("create queue");
            let queue_url = queue.queue_url().expect("queue url").to_string();
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(&queue_url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
                .expect("queue attributes");
            let queue_arn = attrs
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
                .expect("queue arn")
                .clone();
            sns.subscribe()
                .topic_arn(&topic_arn)
                .protocol("sqs")
                .endpoint(queue_arn)
                .send()
                .await
                .expect("subscribe");
            (topic_arn, queue_url)
        });
        Pager {
            moto,
            topic_arn,
            queue_url,
        }
    }

    /// The CPU seconds moto's processes have used so far.
    fn cpu_seconds(&self) -> f64 {
        let endpoint = self.moto.endpoint();
        let port = endpoint.rsplit(':').next().unwrap_or("");
        pids_with_args("moto", "-p", port)
            .into_iter()
            .map(pid_cpu_seconds)
            .sum()
    }

    /// Long-polls the queue from its own thread (and its own runtime) until `stop`: records
    /// every message when the receive call returns it, then deletes what it received (one
    /// batch call) when `delete`; otherwise the messages stay invisible for 12 h.
    fn poll_queue(
        &self,
        arrivals: Arrivals,
        stop: Arc<AtomicBool>,
        delete: bool,
    ) -> JoinHandle<()> {
        let endpoint = self.moto.endpoint();
        let queue_url = self.queue_url.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let sqs = sqs_client(&endpoint);
            while !stop.load(Ordering::SeqCst) {
                let got = rt.block_on(
                    sqs.receive_message()
                        .queue_url(&queue_url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .visibility_timeout(43_200)
                        .send(),
                );
                let (at, at_wall) = (Instant::now(), unix_now());
                match got {
                    Ok(out) => {
                        let mut handles = Vec::new();
                        for m in out.messages() {
                            if let Some(h) = m.receipt_handle() {
                                handles.push(h.to_string());
                            }
                            let Ok(envelope) =
                                serde_json::from_str::<Value>(m.body().unwrap_or("{}"))
                            else {
                                continue;
                            };
                            let published = envelope["Timestamp"].as_str().and_then(parse_rfc3339);
                            if let Ok(message) = serde_json::from_str::<Value>(
                                envelope["Message"].as_str().unwrap_or("{}"),
                            ) {
                                record(&arrivals, Via::Sqs, &message, published, at, at_wall);
                            }
                        }
                        if delete && !handles.is_empty() {
                            let entries: Vec<_> = handles
                                .iter()
                                .enumerate()
                                .filter_map(|(i, h)| {
                                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                                        .id(i.to_string())
                                        .receipt_handle(h)
                                        .build()
                                        .ok()
                                })
                                .collect();
                            let deleted = rt.block_on(
                                sqs.delete_message_batch()
                                    .queue_url(&queue_url)
                                    .set_entries(Some(entries))
                                    .send(),
                            );
                            if let Err(e) = deleted {
                                eprintln!("sqs delete: {e:?}");
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("sqs receive: {e:?}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
    }
}

// ---------------------------------------------------------------------------------------
// load

/// The corpus sent from `clients` threads, from the start again when it runs out, until
/// stopped.
struct Load {
    stop: Arc<AtomicBool>,
    events: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Load {
    fn start(url: &str, batches: &Batches, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let next = Arc::new(AtomicUsize::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (stop, events, bytes, next) =
                    (stop.clone(), events.clone(), bytes.clone(), next.clone());
                let batches = batches.clone();
                let url = format!("{url}/api/v1/ingest");
                std::thread::spawn(move || {
                    let http = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(300))
                        .build()
                        .expect("client");
                    while !stop.load(Ordering::SeqCst) {
                        let i = next.fetch_add(1, Ordering::Relaxed) % batches.len();
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
                            events.fetch_add(*n, Ordering::Relaxed);
                            bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                            break;
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            events,
            bytes,
            threads,
            started: Instant::now(),
        }
    }

    /// Stops it; (events, bytes, seconds) acknowledged while it ran.
    fn finish(self) -> (u64, u64, f64) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("load thread");
        }
        (
            self.events.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.started.elapsed().as_secs_f64(),
        )
    }
}

// ---------------------------------------------------------------------------------------
// part 1: latency

/// One probe: its id and when it was sent and acknowledged.
#[derive(Clone, Debug)]
struct Probe {
    id: String,
    sent: Instant,
    acked: Instant,
    /// Unix seconds at the acknowledgment.
    acked_wall: f64,
}

fn send_probes(url: &str, prefix: &str, count: usize, spacing: Duration) -> Vec<Probe> {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let mut probes = Vec::with_capacity(count);
    for n in 0..count {
        let id = format!("{prefix}{n}");
        let body = format!(
            "{{\"service\":\"probe\",\"probe_id\":\"{id}\",\"message\":\"alert latency probe {id}\"}}\n"
        );
        let sent = Instant::now();
        let resp = http
            .post(format!("{url}/api/v1/ingest"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .expect("probe ingest");
        let acked = Instant::now();
        let acked_wall = unix_now();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        assert_eq!(status, 200, "probe {id}: {text}");
        probes.push(Probe {
            id,
            sent,
            acked,
            acked_wall,
        });
        std::thread::sleep(spacing);
    }
    probes
}

/// What one latency phase measured.
struct LatencyRun {
    name: &'static str,
    probes: Vec<Probe>,
    /// Per probe: ack → arrival at the webhook receiver and at the SQS poller (ms).
    webhook: Vec<Option<f64>>,
    sqs: Vec<Option<f64>>,
    /// Per probe: ack → the engine's evaluation (`starts_at`), and evaluation → webhook
    /// arrival (ms, wall clock; `starts_at` has ms resolution).
    engine: Vec<Option<f64>>,
    delivery: Vec<Option<f64>>,
    /// Per probe: ack → moto's publish `Timestamp`, and that → the SQS receive (ms, wall
    /// clock; the timestamp has ms resolution).
    sns_publish: Vec<Option<f64>>,
    sqs_after_publish: Vec<Option<f64>>,
    /// Per probe: how long its firing notification was pending while the webhook sender
    /// delivered nothing (ms): arrival − max(evaluation, the previous webhook arrival).
    hook_idle_wait: Vec<Option<f64>>,
    /// Warm-up probes: ack → webhook, ack → SQS (ms).
    warmup: Vec<(Option<f64>, Option<f64>)>,
    /// (events, MB, seconds) of background ingest.
    load: Option<(u64, f64, f64)>,
    grouped: usize,
    deliveries: f64,
    delivery_failures: f64,
    server_cpu: f64,
    moto_cpu: f64,
    others_cpu: f64,
    rss: f64,
    t0: Instant,
    log: PathBuf,
}

fn latency_rules(pager: &Pager, hook: &str) -> String {
    format!(
        "notifiers:
  - name: pager
    type: sns
    topic_arn: {}
    endpoint: {}
    group_limit: 1000000
  - name: hook
    type: webhook
    url: '{hook}'
    group_limit: 1000000
rules:
  - name: probe
    query: 'service:probe'
    window: 2s
    condition: \"> 0\"
    group_by: [probe_id]
    max_groups: 100000
    notify: [pager, hook]
",
        pager.topic_arn,
        pager.moto.endpoint()
    )
}

fn latency_run(
    name: &'static str,
    pager: &Pager,
    hook: &str,
    arrivals: &Arrivals,
    load: Option<(&Batches, usize)>,
    samples: usize,
    spacing: Duration,
) -> LatencyRun {
    let dir = bench_dir().join(format!("alerts-latency-{name}"));
    let rules_path = bench_dir().join(format!("alerts-latency-{name}.yaml"));
    std::fs::write(&rules_path, latency_rules(pager, hook)).expect("write rules");
    let config = format!(
        "{INDEX_CONFIG}[alerts]\nrules = \"{}\"\n",
        rules_path.display()
    );
    let mut env = pager.moto.env();
    env.push(("SAWMILL_LOG".into(), "info".into()));
    let log = bench_dir().join(format!("alerts-latency-{name}.log"));
    let server = Server::start_logged(&dir, &config, &env, &log);
    let http = reqwest::blocking::Client::new();
    let (cpu0, moto0, machine0, self0) = (
        server.cpu_seconds(),
        pager.cpu_seconds(),
        machine_busy_cpu_seconds(),
        pid_cpu_seconds(std::process::id()),
    );
    let t0 = Instant::now();
    let background = load.map(|(batches, clients)| {
        let l = Load::start(&server.url, batches, clients);
        // let it reach full speed
        std::thread::sleep(Duration::from_secs(2));
        l
    });
    let warm = send_probes(&server.url, &format!("{name}-w"), WARMUP_PROBES, spacing);
    let probes = send_probes(&server.url, &format!("{name}-"), samples, spacing);
    // every probe's firing notification at both receivers, or 30 s
    let firing = |via: Via, id: &str| -> Option<Arrival> {
        arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|a| a.via == via && a.probe == id && a.state.ends_with("firing"))
            .min_by_key(|a| a.at)
            .cloned()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && !probes
            .iter()
            .chain(&warm)
            .all(|p| firing(Via::Webhook, &p.id).is_some() && firing(Via::Sqs, &p.id).is_some())
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let load = background.map(|l| {
        let (events, bytes, secs) = l.finish();
        (events, bytes as f64 / 1e6, secs)
    });
    let metrics = metrics_text(&http, &server.url);
    let (cpu, moto_cpu, machine, self_cpu) = (
        server.cpu_seconds() - cpu0,
        pager.cpu_seconds() - moto0,
        machine_busy_cpu_seconds() - machine0,
        pid_cpu_seconds(std::process::id()) - self0,
    );
    let rss = server.peak_rss_mib();
    server.stop();
    settle(&dir);

    let ms = |from: Instant, a: &Option<Arrival>| {
        a.as_ref().map(|a| {
            if a.at >= from {
                a.at.duration_since(from).as_secs_f64() * 1000.0
            } else {
                -(from.duration_since(a.at).as_secs_f64() * 1000.0)
            }
        })
    };
    let mut run = LatencyRun {
        name,
        probes: probes.clone(),
        webhook: Vec::new(),
        sqs: Vec::new(),
        engine: Vec::new(),
        delivery: Vec::new(),
        sns_publish: Vec::new(),
        sqs_after_publish: Vec::new(),
        hook_idle_wait: Vec::new(),
        warmup: warm
            .iter()
            .map(|p| {
                (
                    ms(p.acked, &firing(Via::Webhook, &p.id)),
                    ms(p.acked, &firing(Via::Sqs, &p.id)),
                )
            })
            .collect(),
        load,
        grouped: arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|a| a.state.starts_with("grouped") && a.probe.starts_with(name))
            .count(),
        deliveries: metric_value(&metrics, "sawmill_alert_deliveries_total"),
        delivery_failures: metric_value(&metrics, "sawmill_alert_delivery_failures_total"),
        server_cpu: cpu,
        moto_cpu,
        others_cpu: machine - cpu - moto_cpu - self_cpu,
        rss,
        t0,
        log,
    };
    for p in &probes {
        let hook = firing(Via::Webhook, &p.id);
        let sqs = firing(Via::Sqs, &p.id);
        run.webhook.push(ms(p.acked, &hook));
        run.sqs.push(ms(p.acked, &sqs));
        let starts = hook.as_ref().and_then(|a| a.starts_at);
        run.engine.push(starts.map(|s| (s - p.acked_wall) * 1000.0));
        run.delivery.push(
            starts
                .zip(hook.as_ref())
                .map(|(s, a)| (a.at_wall - s) * 1000.0),
        );
        let published = sqs.as_ref().and_then(|a| a.published_at);
        run.sns_publish
            .push(published.map(|t| (t - p.acked_wall) * 1000.0));
        run.sqs_after_publish.push(
            published
                .zip(sqs.as_ref())
                .map(|(t, a)| (a.at_wall - t) * 1000.0),
        );
    }
    let mut hook_arrivals: Vec<f64> = arrivals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|a| a.via == Via::Webhook)
        .map(|a| a.at_wall)
        .collect();
    hook_arrivals.sort_by(|a, b| a.total_cmp(b));
    for p in &probes {
        let hook = firing(Via::Webhook, &p.id);
        run.hook_idle_wait.push(hook.and_then(|a| {
            let previous = hook_arrivals
                .iter()
                .rev()
                .find(|t| **t < a.at_wall)
                .copied()
                .unwrap_or(f64::MIN);
            a.starts_at.map(|s| (a.at_wall - s.max(previous)) * 1000.0)
        }));
    }
    dump(&run, arrivals);
    run
}

/// Writes the phase's probes and every notification its receivers saw (firing and resolved)
/// as CSV into target/bench-data, for a closer look at outliers.
fn dump(run: &LatencyRun, arrivals: &Arrivals) {
    let f = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
    let mut probes = String::from(
        "probe,acked_unix,send_to_ack_ms,webhook_ms,sqs_ms,evaluation_ms,evaluation_to_webhook_ms,sns_publish_ms,publish_to_sqs_ms\n",
    );
    for (i, p) in run.probes.iter().enumerate() {
        let _ = writeln!(
            probes,
            "{},{:.6},{:.3},{},{},{},{},{},{}",
            p.id,
            p.acked_wall,
            p.acked.duration_since(p.sent).as_secs_f64() * 1000.0,
            f(run.webhook[i]),
            f(run.sqs[i]),
            f(run.engine[i]),
            f(run.delivery[i]),
            f(run.sns_publish[i]),
            f(run.sqs_after_publish[i]),
        );
    }
    let mut seen = String::from("via,probe,state,starts_at_unix,published_unix,arrived_unix\n");
    for a in arrivals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|a| a.probe.starts_with(run.name))
    {
        let _ = writeln!(
            seen,
            "{:?},{},{},{},{},{:.6}",
            a.via,
            a.probe,
            a.state,
            f(a.starts_at),
            f(a.published_at),
            a.at_wall
        );
    }
    for (name, text) in [("probes", probes), ("notifications", seen)] {
        let path = bench_dir().join(format!("alerts-latency-{}-{name}.csv", run.name));
        std::fs::write(&path, text).expect("write csv");
    }
}

/// p50, p90, p99, max of the present values; and how many are missing.
fn stats(values: &[Option<f64>]) -> ([f64; 4], usize) {
    let mut v: Vec<f64> = values.iter().flatten().copied().collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let missing = values.len() - v.len();
    (
        [
            percentile(&v, 50.0),
            percentile(&v, 90.0),
            percentile(&v, 99.0),
            v.last().copied().unwrap_or(f64::NAN),
        ],
        missing,
    )
}

/// Latency to the next evaluation of a ruler evaluating every 60 s, for the probes'
/// acknowledgment instants: pooled over 600 tick offsets (0.0, 0.1, … 59.9 s after each
/// whole minute, i.e. the ruler started at a uniformly random moment), and for ticks on
/// whole minutes of UTC. Returns ([p50, p90, p99, max] pooled, [p50, p90, p99, max] on the
/// minute), in seconds.
fn one_minute_ticks(acked_wall: &[f64]) -> ([f64; 4], [f64; 4]) {
    let next_tick = |t: f64, offset: f64| {
        let since = (t - offset).rem_euclid(60.0);
        // an ack exactly on a tick waits a whole interval
        60.0 - since
    };
    let summarize = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        [
            percentile(&v, 50.0),
            percentile(&v, 90.0),
            percentile(&v, 99.0),
            v.last().copied().unwrap_or(f64::NAN),
        ]
    };
    let pooled: Vec<f64> = (0..600)
        .flat_map(|k| {
            let offset = k as f64 / 10.0;
            acked_wall.iter().map(move |t| next_tick(*t, offset))
        })
        .collect();
    let on_minute: Vec<f64> = acked_wall.iter().map(|t| next_tick(*t, 0.0)).collect();
    (summarize(pooled), summarize(on_minute))
}

fn print_latency(run: &LatencyRun) {
    let (w, wm) = stats(&run.webhook);
    let (s, sm) = stats(&run.sqs);
    let (e, _) = stats(&run.engine);
    let (d, _) = stats(&run.delivery);
    let (sp, _) = stats(&run.sns_publish);
    let waited: Vec<f64> = run
        .hook_idle_wait
        .iter()
        .flatten()
        .copied()
        .filter(|w| *w > 50.0)
        .collect();
    let (sq, _) = stats(&run.sqs_after_publish);
    let (a, _) = stats(
        &run.probes
            .iter()
            .map(|p| Some(p.acked.duration_since(p.sent).as_secs_f64() * 1000.0))
            .collect::<Vec<_>>(),
    );
    println!(
        "\nlatency, {} ({} probes, {} + {} warm-up missing at the webhook / SQS):",
        run.name,
        run.probes.len(),
        wm,
        sm
    );
    if let Some((events, mb, secs)) = run.load {
        println!(
            "  background ingest during the probes: {events} events, {mb:.1} MB in {secs:.1} s ({:.1} MB/s, {:.0} events/s)",
            mb / secs,
            events as f64 / secs
        );
    }
    let min = |v: &[Option<f64>]| v.iter().flatten().copied().fold(f64::INFINITY, f64::min);
    println!(
        "  ack -> webhook arrival   min {:.1} ms, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        min(&run.webhook),
        w[0],
        w[1],
        w[2],
        w[3]
    );
    println!(
        "  ack -> SNS -> SQS poll   min {:.1} ms, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        min(&run.sqs),
        s[0],
        s[1],
        s[2],
        s[3]
    );
    println!(
        "  webhook split: ack -> evaluation (starts_at) p50 {:.0} / p99 {:.0} / max {:.0} ms; evaluation -> arrival p50 {:.0} / p99 {:.0} / max {:.0} ms",
        e[0], e[2], e[3], d[0], d[2], d[3]
    );
    println!(
        "  SNS split: ack -> moto's publish Timestamp p50 {:.0} / p90 {:.0} / p99 {:.0} / max {:.0} ms; publish -> SQS receive p50 {:.0} / p99 {:.0} / max {:.0} ms",
        sp[0], sp[1], sp[2], sp[3], sq[0], sq[2], sq[3]
    );
    println!(
        "  firing notifications pending > 50 ms while the webhook sender delivered nothing: {} (longest {:.0} ms)",
        waited.len(),
        waited.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "  probe send -> ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; warm-up probes (webhook, SQS): {:?}",
        a[0], a[2], a[3], run.warmup
    );
    println!(
        "  deliveries {} (failed attempts {}), grouped {}; server CPU {:.2} s, moto CPU {:.2} s, other processes {:.2} s; peak RSS {:.0} MiB; server log {}",
        run.deliveries,
        run.delivery_failures,
        run.grouped,
        run.server_cpu,
        run.moto_cpu,
        run.others_cpu,
        run.rss,
        run.log.display()
    );
    // the slowest probes, to look up in the server log
    let mut order: Vec<usize> = (0..run.probes.len()).collect();
    order.sort_by(|&i, &j| {
        run.webhook[j]
            .unwrap_or(f64::INFINITY)
            .total_cmp(&run.webhook[i].unwrap_or(f64::INFINITY))
    });
    for &i in order.iter().take(5) {
        let p = &run.probes[i];
        println!(
            "    slow: {} acked at {} (+{:.3} s): webhook {:?} ms (evaluation +{:?} ms, then {:?} ms), SQS {:?} ms",
            p.id,
            rfc3339(p.acked_wall),
            p.acked.duration_since(run.t0).as_secs_f64(),
            run.webhook[i].map(|v| v.round()),
            run.engine[i].map(|v| v.round()),
            run.delivery[i].map(|v| v.round()),
            run.sqs[i].map(|v| v.round()),
        );
    }
}

// ---------------------------------------------------------------------------------------
// part 2: cost of 100 rules

/// The 100 rules: (name, query, window, group_by, condition, for).
fn rule_set() -> Vec<(
    String,
    String,
    &'static str,
    &'static str,
    String,
    &'static str,
)> {
    let mut rules = Vec::new();
    let mut add = |name: String,
                   query: &str,
                   window: &'static str,
                   group: &'static str,
                   condition: &str,
                   for_: &'static str| {
        rules.push((
            name,
            query.to_string(),
            window,
            group,
            condition.to_string(),
            for_,
        ));
    };
    // keyword rules: per service, errors per host, warnings, fatal
    for s in [
        "web",
        "hdfs",
        "healthapp",
        "spark",
        "openssh",
        "linux",
        "zookeeper",
        "apache",
        "hadoop",
    ] {
        add(
            format!("{s}-errors-per-host"),
            &format!("service:{s} AND level:ERROR"),
            "5m",
            "host",
            "> 20000",
            "",
        );
        add(
            format!("{s}-warnings"),
            &format!("service:{s} AND level:WARN"),
            "5m",
            "",
            "> 400000",
            "",
        );
        add(
            format!("{s}-fatal"),
            &format!("service:{s} AND (level:FATAL OR level:ERROR) AND NOT component:test"),
            "15m",
            "",
            "> 400000",
            "1m",
        );
    }
    // attribute ranges (the access log: status, bytes, method)
    for (name, query, window, group, condition) in [
        ("http-5xx", "status:>=500", "5m", "", "> 50"),
        (
            "http-5xx-per-host",
            "status:[500 TO 599]",
            "5m",
            "host",
            "> 1000",
        ),
        (
            "http-5xx-post",
            "status:>=500 AND method:POST",
            "5m",
            "",
            "> 1000",
        ),
        ("http-404-per-host", "status:404", "5m", "host", "> 20000"),
        ("http-403", "status:403", "5m", "", "> 10000"),
        ("http-401", "status:401", "5m", "", "> 10000"),
        ("http-429", "status:429", "1m", "", "> 10000"),
        (
            "http-4xx-per-service",
            "status:[400 TO 499]",
            "5m",
            "service",
            "> 400000",
        ),
        ("http-delete", "method:DELETE", "5m", "", "> 10000"),
        (
            "http-huge-responses",
            "bytes:>=10000000",
            "5m",
            "",
            "> 10000",
        ),
        (
            "http-big-gets-per-host",
            "bytes:>1000000 AND method:GET",
            "5m",
            "host",
            "> 20000",
        ),
        ("http-informational", "status:<200", "5m", "", "> 10000"),
        (
            "http-5xx-exclusive",
            "status:{499 TO 600}",
            "1m",
            "",
            "> 10000",
        ),
        (
            "http-gateway-per-host",
            "status:502 OR status:503 OR status:504",
            "5m",
            "host",
            "> 1000",
        ),
        (
            "http-put-errors",
            "method:PUT AND status:>=400",
            "5m",
            "",
            "> 10000",
        ),
    ] {
        add(name.to_string(), query, window, group, condition, "");
    }
    // full-text words of the message, some with a keyword
    for (name, query, window, group, condition) in [
        ("word-failed", "failed", "5m", "", "> 400000"),
        ("word-exception", "exception", "5m", "", "> 400000"),
        ("word-timeout", "timeout", "5m", "", "> 400000"),
        ("word-error", "error", "5m", "", "> 400000"),
        ("word-refused", "refused", "5m", "", "> 400000"),
        ("word-denied", "denied", "5m", "", "> 400000"),
        ("word-interrupted", "interrupted", "5m", "", "> 400000"),
        ("word-broken", "broken", "5m", "", "> 400000"),
        ("word-invalid", "invalid", "5m", "", "> 400000"),
        ("word-retrying", "retrying", "1m", "", "> 400000"),
        ("word-slow", "slow", "5m", "", "> 400000"),
        ("word-unknown", "unknown", "5m", "", "> 400000"),
        ("word-killed", "killed", "5m", "", "> 400000"),
        ("word-corrupt", "corrupt OR corrupted", "15m", "", "> 10000"),
        ("word-panic", "panic", "5m", "", "> 10000"),
        ("word-terminating", "terminating", "5m", "", "> 400000"),
        ("word-disconnect", "disconnect", "5m", "", "> 400000"),
        ("word-closed", "closed", "5m", "", "> 400000"),
        ("word-lost", "lost", "5m", "", "> 400000"),
        ("word-unreachable", "unreachable", "5m", "", "> 10000"),
        ("word-rejected", "rejected", "5m", "", "> 400000"),
        ("word-abort", "abort*", "5m", "", "> 400000"),
        ("word-crash", "crash*", "5m", "", "> 10000"),
        ("word-fatal", "fatal", "5m", "", "> 400000"),
        (
            "ssh-failed-per-host",
            "service:openssh AND failed",
            "5m",
            "host",
            "> 20000",
        ),
        (
            "ssh-invalid-per-host",
            "service:openssh AND invalid",
            "5m",
            "host",
            "> 20000",
        ),
        (
            "error-exceptions-per-service",
            "level:ERROR AND exception",
            "5m",
            "service",
            "> 400000",
        ),
        (
            "hdfs-exceptions-per-host",
            "service:hdfs AND exception",
            "5m",
            "host",
            "> 20000",
        ),
        (
            "zookeeper-broken-per-host",
            "service:zookeeper AND (broken OR interrupted)",
            "5m",
            "host",
            "> 20000",
        ),
        (
            "spark-lost-or-killed",
            "service:spark AND (lost OR killed)",
            "5m",
            "",
            "> 400000",
        ),
    ] {
        add(name.to_string(), query, window, group, condition, "");
    }
    // phrases
    for (name, query, window, group, condition) in [
        (
            "phrase-authentication-failure",
            "\"authentication failure\"",
            "5m",
            "",
            "> 400000",
        ),
        (
            "phrase-connection-reset",
            "\"connection reset\"",
            "5m",
            "",
            "> 400000",
        ),
        (
            "phrase-failed-password",
            "\"failed password\"",
            "5m",
            "host",
            "> 20000",
        ),
        (
            "phrase-broken-pipe",
            "\"broken pipe\"",
            "5m",
            "",
            "> 400000",
        ),
        (
            "phrase-connection-refused",
            "\"connection refused\"",
            "5m",
            "",
            "> 400000",
        ),
        (
            "phrase-out-of-memory",
            "\"out of memory\"",
            "5m",
            "",
            "> 10000",
        ),
        (
            "phrase-invalid-user",
            "\"invalid user\"",
            "5m",
            "host",
            "> 20000",
        ),
        (
            "phrase-no-route",
            "\"no route to host\"",
            "5m",
            "",
            "> 10000",
        ),
        (
            "phrase-got-exception",
            "\"got exception\"",
            "5m",
            "",
            "> 400000",
        ),
        (
            "phrase-connection-closed",
            "\"connection closed\"",
            "5m",
            "",
            "> 400000",
        ),
        (
            "phrase-session-opened",
            "\"session opened\"",
            "5m",
            "",
            "> 400000",
        ),
        ("phrase-too-many", "\"too many\"", "5m", "", "> 400000"),
        (
            "phrase-permission-denied",
            "\"permission denied\"",
            "5m",
            "",
            "> 10000",
        ),
        ("phrase-disk-full", "\"no space left\"", "5m", "", "> 10"),
        (
            "phrase-address-in-use",
            "\"address already in use\"",
            "5m",
            "",
            "> 10000",
        ),
        ("phrase-bad-block", "\"bad block\"", "5m", "", "> 10000"),
        (
            "phrase-checksum-error",
            "\"checksum error\"",
            "5m",
            "",
            "> 10000",
        ),
        (
            "phrase-lease-expired",
            "\"lease expired\"",
            "5m",
            "",
            "> 10000",
        ),
        (
            "phrase-socket-timeout",
            "\"socket timeout\"",
            "5m",
            "",
            "> 10000",
        ),
        (
            "phrase-not-permitted",
            "\"operation not permitted\"",
            "5m",
            "",
            "> 10000",
        ),
    ] {
        add(name.to_string(), query, window, group, condition, "");
    }
    // broad rules grouped by service or host
    for (name, query, window, group, condition) in [
        (
            "errors-per-service",
            "level:ERROR",
            "5m",
            "service",
            "> 400000",
        ),
        (
            "warnings-per-service",
            "level:WARN",
            "5m",
            "service",
            "> 400000",
        ),
        ("fatal-per-host", "level:FATAL", "5m", "host", "> 5"),
        (
            "timeouts-per-service",
            "timeout OR \"timed out\"",
            "5m",
            "service",
            "> 400000",
        ),
        ("exceptions-per-host", "exception", "5m", "host", "> 20000"),
        (
            "failures-per-host",
            "failed OR failure",
            "5m",
            "host",
            "> 20000",
        ),
        (
            "ssh-root-per-host",
            "service:openssh AND root",
            "5m",
            "host",
            "> 20000",
        ),
        (
            "errors-or-5xx-per-service",
            "level:ERROR OR status:>=500",
            "5m",
            "service",
            "> 400000",
        ),
    ] {
        add(name.to_string(), query, window, group, condition, "");
    }
    rules
}

fn rules_yaml() -> String {
    let mut y = String::from("notifiers:\n  - name: log\n    type: log\nrules:\n");
    for (name, query, window, group, condition, for_) in rule_set() {
        let _ = write!(
            y,
            "  - name: {name}\n    query: '{}'\n    window: {window}\n    condition: \"{condition}\"\n",
            query.replace('\'', "''")
        );
        if !group.is_empty() {
            let _ = writeln!(y, "    group_by: [{group}]");
        }
        if !for_.is_empty() {
            let _ = writeln!(y, "    for: {for_}");
        }
        let _ = writeln!(y, "    notify: [log]");
    }
    y
}

/// The corpus with every timestamp moved by the same amount so the first one is `first`
/// (unix seconds), cut into batches of whole lines of about `batch_bytes`.
fn rebased_batches(
    raw: &[u8],
    first: Option<f64>,
    batch_bytes: usize,
) -> (Vec<(bytes::Bytes, u64)>, usize) {
    const PREFIX: &[u8] = b"{\"timestamp\":\"";
    const TS: usize = 24;
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let ts_of = |line: &[u8]| -> Option<time::OffsetDateTime> {
        let t = line.strip_prefix(PREFIX)?.get(..TS)?;
        time::OffsetDateTime::parse(
            std::str::from_utf8(t).ok()?,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
    };
    let shift = first.and_then(|f| {
        let base = ts_of(raw.split(|b| *b == b'\n').next()?)?;
        let to = time::OffsetDateTime::from_unix_timestamp_nanos((f * 1e9) as i128).ok()?;
        Some(to - base)
    });
    let mut batches = Vec::new();
    let mut cur = Vec::with_capacity(batch_bytes + 4096);
    let mut lines = 0u64;
    let mut total = 0usize;
    for line in raw.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let moved = shift.and_then(|s| {
            let t = ts_of(line)? + s;
            t.format(&format).ok()
        });
        match moved {
            Some(t) => {
                cur.extend_from_slice(PREFIX);
                cur.extend_from_slice(t.as_bytes());
                cur.extend_from_slice(&line[PREFIX.len() + TS..]);
            }
            None => cur.extend_from_slice(line),
        }
        cur.push(b'\n');
        lines += 1;
        if cur.len() >= batch_bytes {
            total += cur.len();
            batches.push((bytes::Bytes::from(std::mem::take(&mut cur)), lines));
            lines = 0;
        }
    }
    if !cur.is_empty() {
        total += cur.len();
        batches.push((bytes::Bytes::from(cur), lines));
    }
    (batches, total)
}

/// One full-speed ingest of the corpus.
struct CostRun {
    rules: bool,
    mb: f64,
    events: u64,
    acked: f64,
    searchable: f64,
    cpu: f64,
    alerts_cpu: f64,
    others_cpu: f64,
    rss: f64,
    lag_max: f64,
    lag_at_ack: f64,
    /// Seconds after the last acknowledgment until `sawmill_alert_lag_events` was 0.
    lag_zero_after: f64,
    rules_loaded: f64,
    counted: u64,
    instances: usize,
    firing: Vec<String>,
    notifications: f64,
    errors: Vec<String>,
}

fn cost_run(raw: &[u8], rules: bool, rebase: bool, batch_bytes: usize, clients: usize) -> CostRun {
    // the first event 5 s before the ingest starts; the corpus spans its log time from there
    let (batches, total) = rebased_batches(raw, rebase.then(|| unix_now() - 5.0), batch_bytes);
    let n_events: u64 = batches.iter().map(|b| b.1).sum();
    let batches = Arc::new(batches);
    let name = if rules { "rules" } else { "none" };
    let dir = bench_dir().join(format!("alerts-cost-{name}"));
    let mut config = INDEX_CONFIG.to_string();
    if rules {
        let path = bench_dir().join("alerts-cost-100-rules.yaml");
        std::fs::write(&path, rules_yaml()).expect("write rules");
        let _ = write!(config, "[alerts]\nrules = \"{}\"\n", path.display());
    }
    let log = bench_dir().join(format!("alerts-cost-{name}.log"));
    let server = Server::start_logged(&dir, &config, &[], &log);
    let http = reqwest::blocking::Client::new();
    let pid = server.child.id();
    // lag sampled every 200 ms while the corpus goes in
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, url, http) = (done.clone(), server.url.clone(), http.clone());
        std::thread::spawn(move || {
            let mut max = 0f64;
            while !done.load(Ordering::SeqCst) {
                let lag = metric_value(&metrics_text(&http, &url), "sawmill_alert_lag_events");
                if lag.is_finite() {
                    max = max.max(lag);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            max
        })
    };
    let (cpu0, machine0, self0) = (
        server.cpu_seconds(),
        machine_busy_cpu_seconds(),
        pid_cpu_seconds(std::process::id()),
    );
    let started = Instant::now();
    ingest_all(&server.url, &batches, clients);
    let acked = started.elapsed();
    let lag_at_ack = metric_value(
        &metrics_text(&http, &server.url),
        "sawmill_alert_lag_events",
    );
    let ack_instant = Instant::now();
    let mut lag_zero_after = f64::NAN;
    let mut searchable = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline && (searchable.is_none() || lag_zero_after.is_nan()) {
        if searchable.is_none() && count_all(&server.url) == n_events {
            searchable = Some(started.elapsed());
        }
        if lag_zero_after.is_nan()
            && metric_value(
                &metrics_text(&http, &server.url),
                "sawmill_alert_lag_events",
            ) == 0.0
        {
            lag_zero_after = ack_instant.elapsed().as_secs_f64();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let searchable = searchable.expect("every event searchable");
    let (cpu, machine, self_cpu) = (
        server.cpu_seconds() - cpu0,
        machine_busy_cpu_seconds() - machine0,
        pid_cpu_seconds(std::process::id()) - self0,
    );
    done.store(true, Ordering::SeqCst);
    let lag_max = sampler.join().expect("sampler");
    let alerts_cpu = thread_cpu_seconds(pid, "sawmill-alerts");
    let rss = server.peak_rss_mib();
    // every instance evaluated again on its tick (1 s)
    std::thread::sleep(Duration::from_millis(1500));
    let status: Value = http
        .get(format!("{}/api/v1/alerts", server.url))
        .send()
        .and_then(|r| r.json())
        .unwrap_or(Value::Null);
    let metrics = metrics_text(&http, &server.url);
    server.stop();
    settle(&dir);
    let mut counted = 0u64;
    let mut instances = 0usize;
    let mut firing = Vec::new();
    let mut errors = Vec::new();
    for r in status["rules"].as_array().into_iter().flatten() {
        if let Some(e) = r["last_error"].as_str() {
            errors.push(format!("{}: {e}", r["name"]));
        }
        for i in r["instances"].as_array().into_iter().flatten() {
            instances += 1;
            counted += i["count"].as_u64().unwrap_or(0);
            if i["state"] != "inactive" {
                firing.push(format!(
                    "{} {} {} ({})",
                    r["name"].as_str().unwrap_or(""),
                    i["group"],
                    i["state"].as_str().unwrap_or(""),
                    i["count"]
                ));
            }
        }
    }
    CostRun {
        rules,
        mb: total as f64 / 1e6,
        events: n_events,
        acked: acked.as_secs_f64(),
        searchable: searchable.as_secs_f64(),
        cpu,
        alerts_cpu,
        others_cpu: machine - cpu - self_cpu,
        rss,
        lag_max,
        lag_at_ack,
        lag_zero_after,
        rules_loaded: metric_value(&metrics, "sawmill_alert_rules"),
        counted,
        instances,
        firing,
        notifications: metric_value(&metrics, "sawmill_alert_notifications_total"),
        errors,
    }
}

fn print_cost(r: &CostRun) {
    println!(
        "  {}: acked in {:.2} s, searchable in {:.2} s: {:.1} MB/s, {:.0} events/s; server CPU {:.2} s (alert thread {:.2} s), other processes {:.2} s, peak RSS {:.0} MiB",
        if r.rules { "100 rules" } else { "no rules " },
        r.acked,
        r.searchable,
        r.mb / r.searchable,
        r.events as f64 / r.searchable,
        r.cpu,
        r.alerts_cpu,
        r.others_cpu,
        r.rss
    );
    println!(
        "      rules loaded {}, alert lag: max {:.0} events while ingesting, {:.0} at the last ack, 0 after {:.2} s; {} instances counted {} matches ({:.2} per event), {} notifications; active: {:?}{}",
        r.rules_loaded,
        r.lag_max,
        r.lag_at_ack,
        r.lag_zero_after,
        r.instances,
        r.counted,
        r.counted as f64 / r.events as f64,
        r.notifications,
        r.firing,
        if r.errors.is_empty() {
            String::new()
        } else {
            format!("; rule errors: {:?}", r.errors)
        }
    );
}

// ---------------------------------------------------------------------------------------

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

fn main() {
    if arg("print-rules", "no") == "yes" {
        print!("{}", rules_yaml());
        return;
    }
    let samples: usize = arg("samples", "200").parse().expect("--samples");
    let spacing = Duration::from_millis(arg("spacing-ms", "100").parse().expect("--spacing-ms"));
    let events: u64 = arg("events", "1000000").parse().expect("--events");
    let clients: usize = arg("clients", "4").parse().expect("--clients");
    let batch_bytes: usize = arg("batch-bytes", "2000000")
        .parse()
        .expect("--batch-bytes");
    let repeats: usize = arg("repeats", "3").parse().expect("--repeats");
    let rebase = arg("rebase", "yes") == "yes";
    // the ingest benchmark's corpus with its events at 50,000 per second of log time (20 s)
    let path = corpus(events, 7, START, "50000");
    let raw = std::fs::read(&path).expect("read corpus");
    println!(
        "corpus: {} ({events} events, {:.1} MB)",
        path.display(),
        raw.len() as f64 / 1e6
    );

    let mut latency = Vec::new();
    if arg("latency", "yes") == "yes" {
        let pager = Pager::start();
        let arrivals: Arrivals = Arc::default();
        let hook = webhook_receiver(arrivals.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let poller = pager.poll_queue(
            arrivals.clone(),
            stop.clone(),
            arg("sqs-delete", "yes") == "yes",
        );
        let idle = latency_run("idle", &pager, &hook, &arrivals, None, samples, spacing);
        print_latency(&idle);
        latency.push(idle);
        if arg("latency-load", "yes") == "yes" {
            let batches: Batches = Arc::new(rebased_batches(&raw, None, batch_bytes).0);
            let loaded = latency_run(
                "load",
                &pager,
                &hook,
                &arrivals,
                Some((&batches, clients)),
                samples,
                spacing,
            );
            print_latency(&loaded);
            latency.push(loaded);
        }
        stop.store(true, Ordering::SeqCst);
        poller.join().expect("sqs poller");
        // moto ends with the pager, before the throughput runs
    }

    let mut cost = Vec::new();
    if arg("cost", "yes") == "yes" {
        println!(
            "\ncost of 100 rules ({clients} clients, {batch_bytes}-byte batches, timestamps {}):",
            if rebase {
                "moved to the run's start"
            } else {
                "as generated"
            }
        );
        for _ in 0..repeats {
            for rules in [false, true] {
                let r = cost_run(&raw, rules, rebase, batch_bytes, clients);
                print_cost(&r);
                cost.push(r);
            }
        }
    }

    summary(&latency, &cost);
}

fn summary(latency: &[LatencyRun], cost: &[CostRun]) {
    let mut out = String::new();
    if !latency.is_empty() {
        let _ = writeln!(out, "\n## summary (markdown)\n");
        let _ = writeln!(
            out,
            "| acknowledgment → | load | probes | p50 | p90 | p99 | max | missing |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for run in latency {
            let load = match run.load {
                Some((_, mb, secs)) => format!("ingest {:.1} MB/s", mb / secs),
                None => "idle".to_string(),
            };
            for (what, values) in [
                ("webhook arrival", &run.webhook),
                ("SNS → SQS receive", &run.sqs),
            ] {
                let (s, missing) = stats(values);
                let _ = writeln!(
                    out,
                    "| {what} | {load} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {missing} |",
                    values.len(),
                    s[0],
                    s[1],
                    s[2],
                    s[3]
                );
            }
        }
        let walls: Vec<f64> = latency
            .iter()
            .flat_map(|r| r.probes.iter().map(|p| p.acked_wall))
            .collect();
        let (pooled, on_minute) = one_minute_ticks(&walls);
        let _ = writeln!(
            out,
            "| next tick of a 60 s evaluation interval, over 600 tick offsets | same acks | {} | {:.1} s | {:.1} s | {:.1} s | {:.1} s | |",
            walls.len(),
            pooled[0],
            pooled[1],
            pooled[2],
            pooled[3]
        );
        let _ = writeln!(
            out,
            "| next tick of a 60 s evaluation interval, ticks on the minute | same acks | {} | {:.1} s | {:.1} s | {:.1} s | {:.1} s | |",
            walls.len(),
            on_minute[0],
            on_minute[1],
            on_minute[2],
            on_minute[3]
        );
    }
    if !cost.is_empty() {
        let _ = writeln!(
            out,
            "\n| run | rules | MB/s | events/s | server CPU s | alert thread CPU s | peak RSS MiB | alert lag at last ack / max | lag 0 after |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
        for (i, r) in cost.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} / {:.0} | {:.2} s |",
                i / 2 + 1,
                if r.rules { 100 } else { 0 },
                r.mb / r.searchable,
                r.events as f64 / r.searchable,
                r.cpu,
                r.alerts_cpu,
                r.rss,
                r.lag_at_ack,
                r.lag_max,
                r.lag_zero_after
            );
        }
        let with: Vec<&CostRun> = cost.iter().filter(|r| r.rules).collect();
        let without: Vec<&CostRun> = cost.iter().filter(|r| !r.rules).collect();
        if !with.is_empty() && !without.is_empty() {
            let mbs = |v: &[&CostRun]| mean(v.iter().map(|r| r.mb / r.searchable));
            let cpu = |v: &[&CostRun]| mean(v.iter().map(|r| r.cpu));
            let (a, b) = (mbs(&without), mbs(&with));
            let paired: Vec<String> = without
                .iter()
                .zip(&with)
                .map(|(n, w)| {
                    format!(
                        "{:+.1} %",
                        ((w.mb / w.searchable) / (n.mb / n.searchable) - 1.0) * 100.0
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "\nmean: no rules {a:.1} MB/s, 100 rules {b:.1} MB/s ({:+.1} %; per pair {}); server CPU {:.2} s vs {:.2} s ({:+.1} %)",
                (b / a - 1.0) * 100.0,
                paired.join(", "),
                cpu(&without),
                cpu(&with),
                (cpu(&with) / cpu(&without) - 1.0) * 100.0
            );
        }
    }
    print!("{out}");
}
