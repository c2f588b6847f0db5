//! End-to-end tests of `sawmill-forwarder invoke`: events built the way AWS builds them,
//! shipped to a real sawmill server, S3 objects and the failure bucket on a real moto server,
//! everything checked through the search API.

use crate::common;

use base64::Engine;
use common::moto::Moto;
use common::{gzip, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The forwarder binary, built beside `sawmill` (`scripts/test` builds every binary first).
fn forwarder() -> PathBuf {
    let path = common::binary().with_file_name("sawmill-forwarder");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p sawmill-forwarder` (scripts/test does)",
        path.display()
    );
    path
}

/// Runs `sawmill-forwarder invoke` on `event` with `env`.
fn invoke(dir: &Path, name: &str, event: &Value, env: &[(String, String)]) -> Output {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(event).expect("json")).expect("write event");
    run(
        &[
            "invoke",
            file.to_str().expect("utf-8 path"),
            "--timeout",
            "20s",
        ],
        env,
    )
}

fn run(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(forwarder())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SAWMILL_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run sawmill-forwarder")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn env(server_url: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = vec![
        ("SAWMILL_URL".to_string(), server_url.to_string()),
        ("AWS_REGION".into(), "eu-west-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ];
    v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    v
}

/// A CloudWatch Logs subscription event as Lambda receives it: base64 of gzip of the JSON.
fn cloudwatch_event(data: &Value) -> Value {
    let gz = gzip(&serde_json::to_vec(data).expect("json"));
    json!({"awslogs": {"data": base64::engine::general_purpose::STANDARD.encode(gz)}})
}

fn log_data(group: &str, stream: &str, events: &[(String, i64, String)]) -> Value {
    json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["sawmill"],
        "logEvents": events.iter().map(|(id, ts, m)| json!({"id": id, "timestamp": ts, "message": m})).collect::<Vec<_>>()
    })
}

fn now_ms() -> i64 {
    common::now_nanos() / 1_000_000
}

#[test]
fn a_cloudwatch_subscription_is_shipped_once_with_its_aws_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let t = now_ms() - 60_000;
    let events = vec![
        (
            "36590000000000000000000000000000000000000000000000000001".to_string(),
            t,
            "START RequestId: 8f5e Version: $LATEST".to_string(),
        ),
        (
            "36590000000000000000000000000000000000000000000000000002".to_string(),
            t + 1,
            r#"{"level":"error","msg":"payment failed for ann@example.com","order":17}"#
                .to_string(),
        ),
        (
            "36590000000000000000000000000000000000000000000000000003".to_string(),
            t + 2,
            "END RequestId: 8f5e\n".to_string(),
        ),
    ];
    let event = cloudwatch_event(&log_data(
        "/aws/lambda/checkout",
        "2026/11/27/[$LATEST]abc",
        &events,
    ));
    let vars = env(
        &server.url,
        &[
            ("SAWMILL_REDACT", "email"),
            ("SAWMILL_STATIC_FIELDS", r#"{"env":"prod"}"#),
        ],
    );
    let out = invoke(dir.path(), "cw", &event, &vars);
    assert!(out.status.success(), "{}", text(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("answer is JSON");
    assert_eq!(answer["events"], 3, "{answer}");

    assert_eq!(
        server.wait_total(
            "source:\"/aws/lambda/checkout\"",
            3,
            Duration::from_secs(20)
        ),
        3
    );
    let hits = server.search_all(
        "aws.log_stream:\"2026/11/27/[$LATEST]abc\"",
        "now-1h",
        "now+1d",
    );
    assert_eq!(hits.len(), 3);
    let error = hits
        .iter()
        .find(|h| h["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR event in {hits:?}"));
    assert_eq!(error["message"], "payment failed for [REDACTED:email]");
    assert_eq!(error["order"], 17);
    assert_eq!(error["env"], "prod");
    assert_eq!(error["aws"]["account_id"], "123456789012");
    assert_eq!(error["aws"]["region"], "eu-west-1");
    assert_eq!(error["aws"]["log_group"], "/aws/lambda/checkout");
    assert_eq!(error["aws"]["event_id"], events[1].0);
    let end = hits
        .iter()
        .find(|h| h["aws"]["event_id"] == events[2].0.as_str())
        .expect("END event");
    assert_eq!(end["message"], "END RequestId: 8f5e");
    assert_eq!(
        end["timestamp"],
        common::rfc3339_ms(t + 2),
        "the log event's own time"
    );

    // Lambda retries the same input: nothing is ingested twice
    let again = invoke(dir.path(), "cw", &event, &vars);
    assert!(again.status.success(), "{}", text(&again));
    server.flush();
    assert_eq!(server.total("source:\"/aws/lambda/checkout\""), 3);

    // a CONTROL_MESSAGE is acknowledged and ships nothing
    let mut control = log_data("/aws/lambda/checkout", "s", &[]);
    control["messageType"] = json!("CONTROL_MESSAGE");
    let out = invoke(dir.path(), "control", &cloudwatch_event(&control), &vars);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn an_unknown_event_fails_and_says_what_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vars = env("http://127.0.0.1:9", &[]);
    let out = invoke(
        dir.path(),
        "odd",
        &json!({"detail": {}, "version": "0"}),
        &vars,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unrecognized event: an object with keys [detail, version]"),
        "{err}"
    );
    let out = invoke(
        dir.path(),
        "bad",
        &json!({"awslogs": {"data": "bm90IGd6aXA="}}),
        &vars,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("malformed CloudWatch Logs event"),
        "{}",
        text(&out)
    );
    // configuration mistakes name the variable
    let out = run(&["invoke", "-"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SAWMILL_URL is not set"));
}

#[test]
fn undeliverable_batches_are_stored_and_replayed_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let moto = Moto::start();
    moto.create_bucket("failures");
    let mut moto_env: Vec<(String, String)> = moto.env();
    moto_env.push(("AWS_ENDPOINT_URL".into(), moto.endpoint()));
    moto_env.push(("SAWMILL_S3_FORCE_PATH_STYLE".into(), "true".into()));
    moto_env.push(("SAWMILL_FAILURE_BUCKET".into(), "failures".into()));
    moto_env.push(("SAWMILL_BATCH_MAX_EVENTS".into(), "40".into()));
    let t = now_ms() - 60_000;
    let events: Vec<(String, i64, String)> = (0..100)
        .map(|i| (format!("{:056}", i), t + i, format!("line {i}")))
        .collect();
    let event = cloudwatch_event(&log_data("/app/orders", "i-1", &events));

    // nothing listens on the server's address: every batch fails and is stored
    let closed = format!("http://127.0.0.1:{}", common::moto::free_port());
    let mut down = moto_env.clone();
    down.push(("SAWMILL_URL".into(), closed));
    let file = dir.path().join("down.json");
    std::fs::write(&file, event.to_string()).expect("write event");
    // the invocation's time bounds the retries
    let out = run(
        &[
            "invoke",
            file.to_str().expect("utf-8 path"),
            "--timeout",
            "6s",
        ],
        &down,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stored for replay"),
        "{}",
        text(&out)
    );
    let stored = moto.list("failures", "sawmill-failed/");
    assert_eq!(stored.len(), 3, "100 events in batches of 40: {stored:?}");

    // the server is up: replay sends them, once, and empties the bucket
    let server = Server::start(dir.path());
    let mut up = moto_env.clone();
    up.push(("SAWMILL_URL".into(), server.url.clone()));
    let out = run(&["replay"], &up);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("replay report");
    assert_eq!(report["replayed"], 3, "{report}");
    assert_eq!(report["events"], 100, "{report}");
    assert!(moto.list("failures", "sawmill-failed/").is_empty());
    assert_eq!(
        server.wait_total("source:\"/app/orders\"", 100, Duration::from_secs(20)),
        100
    );

    // Lambda's own retry of the original event arrives late: still nothing twice
    let out = invoke(dir.path(), "retry", &event, &up);
    assert!(out.status.success(), "{}", text(&out));
    server.flush();
    let hits = server.search_all("source:\"/app/orders\"", "now-1h", "now+1d");
    let mut lines: Vec<String> = hits
        .iter()
        .map(|h| h["message"].as_str().unwrap_or_default().to_string())
        .collect();
    lines.sort();
    let mut want: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
    want.sort();
    assert_eq!(lines, want);
}

/// An S3 ObjectCreated notification as S3 sends it (keys URL-encoded).
fn s3_event(bucket: &str, key: &str) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
        "eventTime": "2026-11-27T12:05:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "sawmill",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                          "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key.replace(' ', "+"), "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                          "sequencer": "0055AED6DCD90281E5"}}
    }]})
}

fn sqs_message(id: &str, body: &str) -> Value {
    json!({"messageId": id, "receiptHandle": "AQEB", "body": body,
           "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764244800000",
                          "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1764244800001"},
           "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
           "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:sawmill-s3", "awsRegion": "eu-west-1"})
}

#[test]
fn s3_log_files_are_parsed_into_searchable_fields_from_every_notification_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let moto = Moto::start();
    moto.create_bucket("logs");
    let server = Server::start(dir.path());
    let t0 = now_ms() - 600_000;

    // ALB: 50 requests, every 5th a 502
    let alb: String = (0..50)
        .map(|i| {
            let status = if i % 5 == 0 { 502 } else { 200 };
            format!(
                "https {} app/web/50dc6c495c0c9188 192.168.131.{i}:2817 10.0.0.1:80 0.000 0.00{} 0.000 {status} {status} 34 366 \"GET https://www.example.com:443/orders/{i} HTTP/1.1\" \"curl/8.4.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/73e2d6bc24d8a067 \"Root=1-58337262-36d228ad5d99923122bbe3{i:02}\" \"www.example.com\" \"arn:aws:acm:eu-west-1:123456789012:certificate/12345678\" 0 {} \"forward\" \"-\" \"-\" \"10.0.0.1:80\" \"{status}\" \"-\" \"-\" TID_1234abcd5678ef{i:02}\n",
                common::rfc3339_ms(t0 + i * 1000),
                i % 10,
                common::rfc3339_ms(t0 + i * 1000 - 5),
            )
        })
        .collect();
    let alb_key = "AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2026/11/27/123456789012_elasticloadbalancing_eu-west-1_app.web.50dc6c495c0c9188_20261127T1200Z_10.0.0.1_2ac3cbkd.log.gz";
    // VPC flow logs (version 2 default fields, with the header line AWS writes): 40 records,
    // every 4th rejected
    let mut vpc = String::from("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
    for i in 0..40 {
        let action = if i % 4 == 0 { "REJECT" } else { "ACCEPT" };
        vpc.push_str(&format!(
            "2 123456789012 eni-1235b8ca123456789 172.31.16.{i} 172.31.16.21 {} 22 6 20 4249 {} {} {action} OK\n",
            20000 + i,
            t0 / 1000 + i,
            t0 / 1000 + i + 60
        ));
    }
    let vpc_key = "AWSLogs/123456789012/vpcflowlogs/eu-west-1/2026/11/27/123456789012_vpcflowlogs_eu-west-1_fl-1234abcd_20261127T1200Z_fe123456.log.gz";
    // CloudTrail: 30 records, 3 console logins
    let records: Vec<Value> = (0..30)
        .map(|i| {
            let name = if i % 10 == 0 { "ConsoleLogin" } else { "GetObject" };
            json!({"eventVersion": "1.08",
                   "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": format!("arn:aws:iam::123456789012:user/user{i}"),
                                    "accountId": "123456789012", "userName": format!("user{i}")},
                   "eventTime": common::rfc3339((t0 + i * 1000) * 1_000_000).replace(".000Z", "Z"),
                   "eventSource": if i % 10 == 0 { "signin.amazonaws.com" } else { "s3.amazonaws.com" },
                   "eventName": name, "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.5",
                   "userAgent": "Mozilla/5.0", "requestParameters": null, "responseElements": null,
                   "eventID": format!("3e1fa7b2-0000-4000-8000-{i:012}"), "readOnly": true,
                   "eventType": "AwsApiCall", "recipientAccountId": "123456789012"})
        })
        .collect();
    let trail = serde_json::to_vec(&json!({"Records": records})).expect("json");
    let trail_key = "AWSLogs/123456789012/CloudTrail/eu-west-1/2026/11/27/123456789012_CloudTrail_eu-west-1_20261127T1205Z_a1b2c3d4e5f6g7h8.json.gz";
    for (key, body) in [
        (alb_key, alb.as_bytes()),
        (vpc_key, vpc.as_bytes()),
        (trail_key, &trail[..]),
    ] {
        moto.block_on(
            moto.client()
                .put_object()
                .bucket("logs")
                .key(key)
                .body(gzip(body).into())
                .send(),
        )
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }
    let mut vars = moto.env();
    vars.push(("AWS_ENDPOINT_URL".into(), moto.endpoint()));
    vars.push(("SAWMILL_S3_FORCE_PATH_STYLE".into(), "true".into()));
    vars.push(("SAWMILL_URL".into(), server.url.clone()));

    // the ALB file arrives as a direct S3 notification
    let out = invoke(dir.path(), "direct", &s3_event("logs", alb_key), &vars);
    assert!(out.status.success(), "{}", text(&out));
    // the VPC file through SQS, CloudTrail through SNS then SQS; a third message names an
    // object that does not exist: only that message is reported failed
    let sns_envelope = json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:s3-events",
        "Subject": "Amazon S3 Notification", "Message": s3_event("logs", trail_key).to_string(),
        "Timestamp": "2026-11-27T12:05:01.000Z", "SignatureVersion": "1", "Signature": "x",
        "SigningCertURL": "https://sns", "UnsubscribeURL": "https://sns"});
    let batch = json!({"Records": [
        sqs_message("m-vpc", &s3_event("logs", vpc_key).to_string()),
        sqs_message("m-trail", &sns_envelope.to_string()),
        sqs_message("m-missing", &s3_event("logs", "AWSLogs/none.log.gz").to_string()),
    ]});
    let out = invoke(dir.path(), "sqs", &batch, &vars);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("answer");
    assert_eq!(
        answer["batchItemFailures"],
        json!([{"itemIdentifier": "m-missing"}]),
        "{answer}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read s3://logs/AWSLogs/none.log.gz"),
        "{}",
        text(&out)
    );

    let src = |key: &str| format!("source:\"s3://logs/{key}\"");
    let wait = Duration::from_secs(20);
    assert_eq!(server.wait_total(&src(alb_key), 50, wait), 50);
    assert_eq!(server.wait_total(&src(vpc_key), 40, wait), 40);
    assert_eq!(server.wait_total(&src(trail_key), 30, wait), 30);
    assert_eq!(server.total("elb_status_code:502"), 10);
    assert_eq!(server.total("action:REJECT"), 10);
    assert_eq!(server.total("eventName:ConsoleLogin"), 3);

    let hits = server.search_all(
        "elb_status_code:502 AND client_ip:\"192.168.131.10\"",
        "0",
        "now+1d",
    );
    assert_eq!(hits.len(), 1, "{hits:?}");
    let h = &hits[0];
    assert_eq!(h["timestamp"], common::rfc3339_ms(t0 + 10_000));
    assert_eq!(h["request_method"], "GET");
    assert_eq!(h["request_url"], "https://www.example.com:443/orders/10");
    assert_eq!(h["target_port"], 80);
    assert_eq!(h["aws"]["s3_bucket"], "logs");
    assert_eq!(h["aws"]["account_id"], "123456789012");
    assert_eq!(h["aws"]["region"], "eu-west-1");
    let vpc_hit = server.search_all("srcaddr:\"172.31.16.8\"", "0", "now+1d");
    assert_eq!(vpc_hit.len(), 1, "{vpc_hit:?}");
    assert_eq!(vpc_hit[0]["action"], "REJECT");
    assert_eq!(vpc_hit[0]["dstport"], 22);
    assert_eq!(
        vpc_hit[0]["timestamp"],
        common::rfc3339_ms((t0 / 1000 + 8) * 1000)
    );
    let trail_hit = server.search_all(
        "eventName:ConsoleLogin AND userIdentity.userName:user20",
        "0",
        "now+1d",
    );
    assert_eq!(trail_hit.len(), 1, "{trail_hit:?}");
    assert_eq!(trail_hit[0]["timestamp"], common::rfc3339_ms(t0 + 20_000));

    // SQS redelivers the whole batch: nothing is ingested twice
    let out = invoke(dir.path(), "sqs", &batch, &vars);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    server.flush();
    assert_eq!(server.total(&src(vpc_key)), 40);
    assert_eq!(server.total(&src(trail_key)), 30);
}

fn kinesis_record(seq: &str, data: &[u8], arrival_ms: i64) -> Value {
    json!({
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "p", "sequenceNumber": seq,
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": arrival_ms as f64 / 1000.0},
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": format!("shardId-000000000000:{seq}"), "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/LambdaRole", "awsRegion": "eu-west-1",
        "eventSourceARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/logs"
    })
}

#[test]
fn kinesis_records_carry_cloudwatch_data_or_lines_and_only_bad_ones_are_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let t = now_ms() - 60_000;
    // CloudWatch Logs writes gzipped subscription JSON into the stream
    let events: Vec<(String, i64, String)> = (0..20)
        .map(|i| {
            (
                format!("{:056}", 1000 + i),
                t + i,
                format!("worker tick {i}"),
            )
        })
        .collect();
    let cw = gzip(&serde_json::to_vec(&log_data("/ecs/worker", "task/1", &events)).expect("json"));
    let mut control = log_data("/ecs/worker", "x", &[]);
    control["messageType"] = json!("CONTROL_MESSAGE");
    let control = gzip(&serde_json::to_vec(&control).expect("json"));
    let lines = b"{\"msg\":\"from an app\",\"level\":\"warn\"}\nplain line two\n";
    let broken = [0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02];
    let event = json!({"Records": [
        kinesis_record("495001", &cw, t),
        kinesis_record("495002", &control, t),
        kinesis_record("495003", lines, t + 5),
        kinesis_record("495004", &broken, t),
    ]});
    let vars = env(&server.url, &[]);
    let out = invoke(dir.path(), "kinesis", &event, &vars);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("answer");
    assert_eq!(
        answer["batchItemFailures"],
        json!([{"itemIdentifier": "495004"}]),
        "{answer}"
    );
    assert_eq!(
        server.wait_total("source:\"/ecs/worker\"", 20, Duration::from_secs(20)),
        20
    );
    let app = server.search_all(
        "source:\"arn:aws:kinesis:eu-west-1:123456789012:stream/logs\"",
        "0",
        "now+1d",
    );
    let mut messages: Vec<&str> = app.iter().filter_map(|h| h["message"].as_str()).collect();
    messages.sort_unstable();
    assert_eq!(messages, vec!["from an app", "plain line two"]);
    let warn = app
        .iter()
        .find(|h| h["message"] == "from an app")
        .expect("JSON line");
    assert_eq!(warn["level"], "WARN");
    assert_eq!(
        warn["timestamp"],
        common::rfc3339_ms(t + 5),
        "the record's arrival time"
    );
}
