//! Alerting end to end: rules evaluated on the ingest stream, notifications published to a
//! real SNS-compatible server (moto) on loopback and read, as on-call would receive them, from
//! an SQS queue subscribed to the topic; webhooks to a receiver in the test; silences, outages,
//! restarts and broken rules files.

use crate::common;

use common::moto::Moto;
use common::{poll, Server};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOPIC: &str = "oncall";

/// An SNS topic with an SQS queue subscribed: what on-call receives.
struct Pager {
    moto: Moto,
    topic_arn: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

/// One message as SQS holds it (the SNS envelope).
#[derive(Debug, Clone)]
struct Page {
    subject: String,
    message: Value,
    attributes: Value,
}

impl Pager {
    fn start() -> Pager {
        let moto = Moto::start();
        let creds = aws_sdk_sns::config::Credentials::new("test", "test", None, None, "moto");
        let region = aws_sdk_sns::config::Region::new("us-east-1");
        let http = || {
            use aws_smithy_http_client::tls;
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https()
        };
        let sns = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::Config::builder()
                .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
                .http_client(http())
                .endpoint_url(moto.endpoint())
                .region(region.clone())
                .credentials_provider(creds.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .http_client(http())
                .endpoint_url(moto.endpoint())
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "test", "test", None, None, "moto",
                ))
                .build(),
        );
        let (topic_arn, queue_url) = moto.block_on(async {
            let topic = sns
                .create_topic()
                .name(TOPIC)
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
            sqs,
        }
    }

    /// Messages received within `wait` (stops early once `want` have arrived).
    fn receive(&self, want: usize, wait: Duration) -> Vec<Page> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while out.len() < want && Instant::now() < deadline {
            let got = self
                .moto
                .block_on(
                    self.sqs
                        .receive_message()
                        .queue_url(&self.queue_url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .send(),
                )
                .expect("receive");
            for m in got.messages() {
                let body: Value =
                    serde_json::from_str(m.body().unwrap_or("{}")).expect("sns envelope");
                let message: Value = serde_json::from_str(body["Message"].as_str().unwrap_or("{}"))
                    .expect("message json");
                out.push(Page {
                    subject: body["Subject"].as_str().unwrap_or_default().to_string(),
                    message,
                    attributes: body["MessageAttributes"].clone(),
                });
                if let Some(h) = m.receipt_handle() {
                    let _ = self.moto.block_on(
                        self.sqs
                            .delete_message()
                            .queue_url(&self.queue_url)
                            .receipt_handle(h)
                            .send(),
                    );
                }
            }
        }
        out
    }

    fn notifier(&self) -> String {
        format!(
            "  - name: oncall\n    type: sns\n    topic_arn: {}\n    endpoint: {}\n",
            self.topic_arn,
            self.moto.endpoint()
        )
    }
}

fn start(dir: &std::path::Path, pager: &Pager, rules: &str) -> Server {
    std::fs::write(
        dir.join("alerts.yaml"),
        format!("notifiers:\n{}rules:\n{rules}", pager.notifier()),
    )
    .unwrap();
    let config = "[index]\nrefresh_interval = \"200ms\"\nhot_retention = \"3650d\"\n[alerts]\nrules = \"alerts.yaml\"\n";
    Server::start_with_config_env(dir, config, pager.moto.env())
}

fn events(n: usize, service: &str, host: &str, level: &str) -> String {
    (0..n)
        .map(|i| {
            json!({"service": service, "host": host, "level": level, "message": format!("payment failed {i}")})
                .to_string()
                + "\n"
        })
        .collect()
}

fn ingest(server: &Server, body: String) {
    let (status, answer) = server.ingest(body, "");
    assert_eq!(status, 200, "{answer}");
}

fn alerts(server: &Server) -> Value {
    server.get("/api/v1/alerts").send().unwrap().json().unwrap()
}

fn instance_state(server: &Server, rule: &str) -> Vec<(Value, String)> {
    alerts(server)["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == rule)
        .flat_map(|r| r["instances"].as_array().cloned().unwrap_or_default())
        .map(|i| {
            (
                i["group"].clone(),
                i["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

const ERRORS: &str = "  - name: checkout-errors
    query: 'service:checkout AND level:ERROR'
    window: 3s
    condition: \"> 3\"
    severity: critical
    labels: {team: payments}
    annotations: {summary: \"{{count}} errors in checkout\"}
    notify: [oncall]
";

#[test]
fn a_threshold_fires_once_with_the_contract_message_then_resolves() {
    let pager = Pager::start();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &pager, ERRORS);
    // below the threshold, and other services: nothing
    ingest(&server, events(3, "checkout", "web-1", "error"));
    ingest(&server, events(20, "search", "web-1", "error"));
    ingest(&server, events(20, "checkout", "web-1", "info"));
    assert!(pager.receive(1, Duration::from_secs(2)).is_empty());
    // the fourth error crosses it
    let crossed = Instant::now();
    ingest(&server, events(1, "checkout", "web-2", "error"));
    let pages = pager.receive(1, Duration::from_secs(10));
    assert_eq!(pages.len(), 1, "{pages:?}");
    let latency = crossed.elapsed();
    let p = &pages[0];
    assert_eq!(p.subject, "[FIRING] checkout-errors: 4 > 3 in 3s");
    assert!(p.subject.len() < 100);
    let m = &p.message;
    assert_eq!(m["rule"], "checkout-errors");
    assert_eq!(m["state"], "firing");
    assert_eq!(m["severity"], "critical");
    assert_eq!(m["group"], json!({}));
    assert_eq!(m["count"], 4);
    assert_eq!(m["condition"], "> 3");
    assert_eq!(m["window"], "3s");
    assert_eq!(m["labels"], json!({"team": "payments"}));
    assert_eq!(m["annotations"], json!({"summary": "4 errors in checkout"}));
    assert!(m["starts_at"].is_string() && m["ends_at"].is_null());
    assert_eq!(m["fingerprint"].as_str().unwrap().len(), 16);
    let samples = m["samples"].as_array().unwrap();
    assert!(!samples.is_empty() && samples.len() <= 3);
    assert!(samples
        .iter()
        .all(|s| s["service"] == "checkout" && s["level"] == "ERROR"));
    for (k, v) in [
        ("rule", "checkout-errors"),
        ("state", "firing"),
        ("severity", "critical"),
    ] {
        assert_eq!(
            p.attributes[k]["Value"], v,
            "attribute {k}: {}",
            p.attributes
        );
    }
    assert!(latency < Duration::from_secs(5), "paged after {latency:?}");
    // more errors while firing: no second page
    ingest(&server, events(10, "checkout", "web-1", "error"));
    assert!(pager.receive(1, Duration::from_secs(2)).is_empty());
    // the window passes without errors: resolved, once
    let pages = pager.receive(1, Duration::from_secs(15));
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].message["state"], "resolved");
    assert_eq!(
        pages[0].subject.split(':').next(),
        Some("[RESOLVED] checkout-errors")
    );
    assert!(pages[0].message["ends_at"].is_string());
    assert_eq!(pages[0].message["fingerprint"], m["fingerprint"]);
    assert_eq!(pages[0].message["sequence"], 2);
    assert!(pager.receive(1, Duration::from_secs(2)).is_empty());
}

#[test]
fn for_delays_firing_and_group_by_pages_once_per_host() {
    let pager = Pager::start();
    let dir = tempfile::tempdir().unwrap();
    let rules = "  - name: host-errors
    query: 'level:ERROR'
    window: 30s
    condition: \">= 2\"
    group_by: [host]
    for: 3s
    annotations: {summary: \"{{count}} errors on {{group.host}}\"}
    notify: [oncall]
";
    let server = start(dir.path(), &pager, rules);
    let started = Instant::now();
    for host in ["web-1", "web-2", "web-3"] {
        ingest(&server, events(2, "api", host, "error"));
    }
    ingest(&server, events(1, "api", "web-4", "error"));
    // pending first
    poll(Duration::from_secs(5), "instances pending", || {
        let s = instance_state(&server, "host-errors");
        (s.iter().filter(|(_, st)| st == "pending").count() == 3).then_some(())
    });
    let pages = pager.receive(3, Duration::from_secs(15));
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "fired before `for`"
    );
    assert_eq!(pages.len(), 3, "{pages:?}");
    let mut hosts: Vec<String> = pages
        .iter()
        .map(|p| p.message["group"]["host"].as_str().unwrap().to_string())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["web-1", "web-2", "web-3"]);
    for p in &pages {
        let host = p.message["group"]["host"].as_str().unwrap();
        assert_eq!(
            p.message["annotations"]["summary"],
            format!("2 errors on {host}")
        );
        assert!(p.subject.contains(&format!("host={host}")), "{}", p.subject);
    }
    assert!(pager.receive(1, Duration::from_secs(2)).is_empty());
}

#[test]
fn absence_fires_when_a_source_goes_quiet() {
    let pager = Pager::start();
    let dir = tempfile::tempdir().unwrap();
    let rules = "  - name: heartbeat-missing
    query: 'service:heartbeat'
    window: 3s
    condition: \"< 1\"
    notify: [oncall]
";
    let server = start(dir.path(), &pager, rules);
    // heartbeats every 500 ms for 5 s: no page
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        ingest(&server, events(1, "heartbeat", "h", "info"));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(pager.receive(1, Duration::from_millis(500)).is_empty());
    // silence: the page arrives about a window later
    let quiet = Instant::now();
    let pages = pager.receive(1, Duration::from_secs(10));
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].message["state"], "firing");
    assert_eq!(pages[0].message["count"], 0);
    let after = quiet.elapsed();
    assert!(
        after >= Duration::from_secs(2),
        "fired {after:?} after the last heartbeat"
    );
    // it comes back: resolved
    ingest(&server, events(1, "heartbeat", "h", "info"));
    let pages = pager.receive(1, Duration::from_secs(5));
    assert_eq!(pages[0].message["state"], "resolved");
}

#[test]
fn a_silence_suppresses_notifications_not_evaluation() {
    let pager = Pager::start();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &pager, ERRORS);
    let resp = server
        .post("/api/v1/silences")
        .json(
            &json!({"matchers": ["rule=checkout-errors", "team=payments"], "duration": "1h",
                      "created_by": "ada", "comment": "deploy"}),
        )
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let silence: Value = resp.json().unwrap();
    ingest(&server, events(5, "checkout", "web-1", "error"));
    poll(Duration::from_secs(5), "the alert to fire", || {
        instance_state(&server, "checkout-errors")
            .iter()
            .any(|(_, s)| s == "firing")
            .then_some(())
    });
    assert!(
        pager.receive(1, Duration::from_secs(3)).is_empty(),
        "silenced alert paged"
    );
    let listed: Value = server
        .get("/api/v1/silences")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(listed["silences"][0]["created_by"], "ada");
    assert_eq!(listed["silences"][0]["active"], true);
    // bad silences say what to fix
    for (body, want) in [
        (
            json!({"matchers": [], "duration": "1h", "created_by": "a"}),
            "matcher",
        ),
        (
            json!({"matchers": ["rule"], "duration": "1h", "created_by": "a"}),
            "name=value",
        ),
        (
            json!({"matchers": ["rule=x"], "created_by": "a"}),
            "duration",
        ),
        (
            json!({"matchers": ["rule=x"], "duration": "1h", "created_by": ""}),
            "created_by",
        ),
    ] {
        let resp = server.post("/api/v1/silences").json(&body).send().unwrap();
        let msg = common::assert_error(common::status_json(resp), 400, &body.to_string());
        assert!(msg.contains(want), "{body}: {msg}");
    }
    // removing the silence lets the still-firing alert page
    let id = silence["id"].as_str().unwrap();
    let resp = server
        .http
        .delete(format!("{}/api/v1/silences/{id}", server.url))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    ingest(&server, events(5, "checkout", "web-1", "error"));
    let pages = pager.receive(1, Duration::from_secs(10));
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].message["state"], "firing");
}

#[test]
fn sns_down_while_firing_then_back_delivers_exactly_once() {
    let pager = Pager::start();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &pager, ERRORS);
    pager.moto.pause();
    ingest(&server, events(5, "checkout", "web-1", "error"));
    poll(
        Duration::from_secs(10),
        "the notification waiting in the outbox",
        || {
            let a = alerts(&server);
            (a["outbox_pending"].as_u64() == Some(1)).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    pager.moto.resume();
    let pages = pager.receive(2, Duration::from_secs(30));
    let firing: Vec<&Page> = pages
        .iter()
        .filter(|p| p.message["state"] == "firing")
        .collect();
    assert_eq!(firing.len(), 1, "{pages:?}");
    poll(Duration::from_secs(10), "the outbox to empty", || {
        (alerts(&server)["outbox_pending"].as_u64() == Some(0)).then_some(())
    });
}

#[test]
fn a_restart_while_firing_does_not_page_again() {
    let pager = Pager::start();
    let dir = tempfile::tempdir().unwrap();
    let rules = ERRORS.replace("window: 3s", "window: 10m");
    let mut server = start(dir.path(), &pager, &rules);
    ingest(&server, events(5, "checkout", "web-1", "error"));
    let pages = pager.receive(1, Duration::from_secs(10));
    assert_eq!(pages.len(), 1);
    server.kill9();
    server.spawn();
    poll(
        Duration::from_secs(10),
        "the alert firing after the restart",
        || {
            instance_state(&server, "checkout-errors")
                .iter()
                .any(|(_, s)| s == "firing")
                .then_some(())
        },
    );
    ingest(&server, events(5, "checkout", "web-1", "error"));
    server.terminate();
    server.spawn();
    assert!(
        pager.receive(1, Duration::from_secs(4)).is_empty(),
        "paged again after a restart"
    );
}

#[test]
fn broken_rules_are_refused_with_a_clear_message() {
    let pager = Pager::start();
    let dir = tempfile::tempdir().unwrap();
    // at startup
    std::fs::write(
        dir.path().join("bad.yaml"),
        "rules:\n  - name: typo\n    query: 'level:error'\n    window: 5m\n    condition: 'more than 3'\n",
    )
    .unwrap();
    let out = common::run_sawmill(
        &[
            "alerts",
            "check",
            dir.path().join("bad.yaml").to_str().unwrap(),
        ],
        None,
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("rule \"typo\": condition"),
        "{}",
        out.stderr
    );
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[alerts]\nrules = \"bad.yaml\"\n").unwrap();
    let data = dir.path().join("bad-data");
    let out = common::run_sawmill(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        None,
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("rule \"typo\": condition"),
        "{}",
        out.stderr
    );

    // on reload the old rules stay
    let server = start(dir.path(), &pager, ERRORS);
    std::fs::write(
        dir.path().join("alerts.yaml"),
        format!("notifiers:\n{}rules:\n  - name: x\n    query: 'level:('\n    window: 1m\n    condition: '> 1'\n", pager.notifier()),
    )
    .unwrap();
    let resp = server.post("/api/v1/alerts/reload").send().unwrap();
    let msg = common::assert_error(common::status_json(resp), 400, "reload");
    assert!(
        msg.contains("rule \"x\": query") && msg.contains("old rules stay"),
        "{msg}"
    );
    let names: Vec<Value> = alerts(&server)["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, [json!("checkout-errors")]);
    // the old rules still page
    ingest(&server, events(5, "checkout", "web-1", "error"));
    assert_eq!(pager.receive(1, Duration::from_secs(10)).len(), 1);
    // a good file on SIGHUP replaces them
    std::fs::write(
        dir.path().join("alerts.yaml"),
        format!("notifiers:\n{}rules:\n  - name: renamed\n    query: 'level:error'\n    window: 1m\n    condition: '> 100'\n", pager.notifier()),
    )
    .unwrap();
    let pid = server.child.as_ref().unwrap().id();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    poll(
        Duration::from_secs(10),
        "the new rules after SIGHUP",
        || {
            let names: Vec<Value> = alerts(&server)["rules"]
                .as_array()?
                .iter()
                .map(|r| r["name"].clone())
                .collect();
            (names == [json!("renamed")]).then_some(())
        },
    );
    // the firing alert of the removed rule is resolved
    let pages = pager.receive(1, Duration::from_secs(10));
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert_eq!(pages[0].message["state"], "resolved");
}

/// A webhook receiver: collects request bodies; answers 503 to the first `fail_first`.
fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        let mut n = 0;
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.to_ascii_lowercase();
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            n += 1;
            let mut stream = stream;
            if n <= fail_first {
                let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                continue;
            }
            if let Ok(v) = serde_json::from_slice(&body) {
                seen.lock().unwrap().push(v);
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, got)
}

#[test]
fn webhooks_deliver_json_and_slack_messages_with_retries() {
    let (json_url, json_got) = receiver(2);
    let (slack_url, slack_got) = receiver(0);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alerts.yaml"),
        format!(
            "notifiers:\n  - {{name: hook, type: webhook, url: '{json_url}'}}\n  - {{name: chat, type: webhook, url: '{slack_url}', format: slack}}\n\
             rules:\n  - name: errors\n    query: 'level:error'\n    window: 1m\n    condition: '> 1'\n    annotations: {{summary: '{{{{count}}}} errors'}}\n    notify: [hook, chat]\n"
        ),
    )
    .unwrap();
    let server = Server::start_with_config(dir.path(), "[alerts]\nrules = \"alerts.yaml\"\n");
    ingest(&server, events(2, "api", "h", "error"));
    let hooks = poll(
        Duration::from_secs(20),
        "the webhook after two refusals",
        || {
            let g = json_got.lock().unwrap().clone();
            (!g.is_empty()).then_some(g)
        },
    );
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["rule"], "errors");
    assert_eq!(hooks[0]["state"], "firing");
    assert_eq!(hooks[0]["count"], 2);
    let slack = poll(Duration::from_secs(10), "the slack message", || {
        let g = slack_got.lock().unwrap().clone();
        (!g.is_empty()).then_some(g)
    });
    assert_eq!(slack[0]["text"], "[FIRING] errors: 2 > 1 in 1m\n2 errors");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(json_got.lock().unwrap().len(), 1, "delivered twice");
}

#[test]
fn a_storm_is_grouped_and_still_firing_alerts_repeat() {
    let pager = Pager::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alerts.yaml"),
        format!(
            "notifiers:\n{}    group_limit: 2\n    group_interval: 4s\nrules:\n  - name: host-down\n    query: 'level:fatal'\n    window: 10m\n    condition: '> 0'\n    group_by: [host]\n    keep_firing_for: 1m\n    repeat_interval: 6s\n    notify: [oncall]\n",
            pager.notifier()
        ),
    )
    .unwrap();
    let server = Server::start_with_config_env(
        dir.path(),
        "[alerts]\nrules = \"alerts.yaml\"\n",
        pager.moto.env(),
    );
    for host in ["a", "b", "c", "d", "e"] {
        ingest(&server, events(1, "api", host, "fatal"));
    }
    // two pages at once, the other three together when the interval ends
    let first = pager.receive(2, Duration::from_secs(3));
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(|p| p.message["state"] == "firing"));
    let grouped = pager.receive(1, Duration::from_secs(8));
    assert_eq!(grouped.len(), 1, "{grouped:?}");
    let g = &grouped[0];
    assert!(
        g.subject.starts_with("[GROUPED] host-down: 3 firing"),
        "{}",
        g.subject
    );
    assert_eq!(g.message["alerts"].as_array().unwrap().len(), 3);
    let mut hosts: Vec<String> = first
        .iter()
        .map(|p| p.message["group"]["host"].as_str().unwrap().to_string())
        .chain(
            g.message["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["group"]["host"].as_str().unwrap().to_string()),
        )
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["a", "b", "c", "d", "e"]);
    // still firing after repeat_interval: reminders, marked as repeats
    let reminders = pager.receive(1, Duration::from_secs(15));
    assert!(!reminders.is_empty());
    let r = &reminders[0];
    let is_repeat = r.message["repeat"] == true
        || r.message["alerts"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
    assert!(is_repeat, "{r:?}");
    let metrics = server.metrics();
    assert!(metrics.contains("sawmill_alerts_firing 5"), "{metrics}");
    assert!(metrics.contains("sawmill_alert_rules 1"));
}
