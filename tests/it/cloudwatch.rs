//! `sawmill cloudwatch subscribe` and `backfill` against a real CloudWatch Logs-compatible
//! server (moto) on loopback. The log groups, their events and the forwarder function are set
//! up with boto3 (installed with moto), as a user's own tooling would.

use crate::common;

use common::moto::Moto;
use common::Server;
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;

/// Runs a boto3 script against moto; the script prints one JSON document.
fn boto(moto: &Moto, script: &str) -> Value {
    let prelude = format!(
        "import boto3, json, io, zipfile\n\
         def client(name):\n    return boto3.client(name, endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n",
        moto.endpoint()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .output()
        .expect("run python3 (installed with moto by scripts/test)");
    assert!(
        out.status.success(),
        "boto3 script failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        script
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "boto3 script printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn sawmill(moto: &Moto, args: &[&str]) -> Output {
    Command::new(common::binary())
        .args(args)
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .output()
        .expect("run sawmill")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A forwarder function in moto (it is never run: CloudWatch Logs only needs it to exist).
const CREATE_FUNCTION: &str = r#"
iam = client('iam')
role = iam.create_role(RoleName='fwd', AssumeRolePolicyDocument='{}')['Role']['Arn']
buf = io.BytesIO()
with zipfile.ZipFile(buf, 'w') as z:
    z.writestr('bootstrap', 'x')
fn = client('lambda').create_function(FunctionName='sawmill-forwarder', Runtime='provided.al2023',
    Role=role, Handler='bootstrap', Code={'ZipFile': buf.getvalue()})['FunctionArn']
"#;

#[test]
fn subscribe_covers_every_matching_group_idempotently() {
    let moto = Moto::start();
    let arn = boto(
        &moto,
        &format!(
            "{CREATE_FUNCTION}\n\
             logs = client('logs')\n\
             for i in range(60):\n    logs.create_log_group(logGroupName=f'/aws/lambda/app-{{i:02}}')\n\
             logs.create_log_group(logGroupName='/ecs/other')\n\
             logs.create_log_group(logGroupName='/aws/lambda/sawmill-forwarder')\n\
             logs.create_log_group(logGroupName='/aws/lambda/full')\n\
             for n in ('a', 'b'):\n    logs.put_subscription_filter(logGroupName='/aws/lambda/full', filterName=n, filterPattern='', destinationArn=fn)\n\
             print(json.dumps(fn))\n"
        ),
    );
    let arn = arn.as_str().expect("function arn").to_string();

    let out = sawmill(
        &moto,
        &[
            "cloudwatch",
            "subscribe",
            "--prefix",
            "/aws/lambda/",
            "--destination-arn",
            &arn,
        ],
    );
    // the full group is reported and makes the command fail; the others are subscribed
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .contains("62 log group(s): 60 created, 0 updated, 0 unchanged, 1 skipped, 1 excluded"),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("skipped  /aws/lambda/full: it already has the maximum of 2 subscription filters (a, b)"), "{stdout}");
    let filters = boto(
        &moto,
        "logs = client('logs')\n\
         out = {}\n\
         for page in logs.get_paginator('describe_log_groups').paginate():\n  for g in page['logGroups']:\n    out[g['logGroupName']] = [(f['filterName'], f['destinationArn'], f.get('filterPattern', '')) for f in logs.describe_subscription_filters(logGroupName=g['logGroupName'])['subscriptionFilters']]\n\
         print(json.dumps(out))\n",
    );
    for i in 0..60 {
        let group = format!("/aws/lambda/app-{i:02}");
        assert_eq!(
            filters[&group],
            serde_json::json!([["sawmill", arn, ""]]),
            "{group}"
        );
    }
    assert_eq!(filters["/ecs/other"], serde_json::json!([]));
    assert_eq!(
        filters["/aws/lambda/sawmill-forwarder"],
        serde_json::json!([]),
        "the forwarder's own logs are never sent to it"
    );
    assert!(
        stdout.contains("excluded /aws/lambda/sawmill-forwarder: the forwarder's own log group"),
        "{stdout}"
    );

    // again: nothing to do
    let out = sawmill(
        &moto,
        &[
            "cloudwatch",
            "subscribe",
            "--prefix",
            "/aws/lambda/app-",
            "--destination-arn",
            &arn,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("60 log group(s): 0 created, 0 updated, 60 unchanged, 0 skipped"),
        "{}",
        text(&out)
    );
    // a new pattern updates the filter in place
    let out = sawmill(
        &moto,
        &[
            "cloudwatch",
            "subscribe",
            "--prefix",
            "/aws/lambda/app-0",
            "--destination-arn",
            &arn,
            "--filter-pattern",
            "ERROR",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("10 log group(s): 0 created, 10 updated, 0 unchanged, 0 skipped"),
        "{}",
        text(&out)
    );
}

#[test]
fn backfill_ships_a_range_of_history_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let moto = Moto::start();
    let server = Server::start(dir.path());
    let now_ms = common::now_nanos() / 1_000_000;
    let base = now_ms - 3_600_000;
    // 300 events a second apart in two streams; the range takes events 50..250
    boto(
        &moto,
        &format!(
            "logs = client('logs')\n\
             logs.create_log_group(logGroupName='/app/api')\n\
             for s in ('s1', 's2'):\n    logs.create_log_stream(logGroupName='/app/api', logStreamName=s)\n\
             for s, rng in (('s1', range(0, 300, 2)), ('s2', range(1, 300, 2))):\n    logs.put_log_events(logGroupName='/app/api', logStreamName=s, logEvents=[{{'timestamp': {base} + i * 1000, 'message': f'request {{i}} done'}} for i in rng])\n\
             print('{{}}')\n"
        ),
    );
    let start = (base + 50_000).to_string();
    let end = (base + 250_000).to_string();
    let args = [
        "cloudwatch",
        "backfill",
        "--url",
        &server.url,
        "--log-group",
        "/app/api",
        "--start",
        &start,
        "--end",
        &end,
    ];
    let out = sawmill(&moto, &args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/app/api: 200 event(s) read, 200 accepted"),
        "{}",
        text(&out)
    );
    assert_eq!(
        server.wait_total("source:\"/app/api\"", 200, Duration::from_secs(20)),
        200
    );
    let hits = server.search_all("source:\"/app/api\"", "0", "now+1d");
    let mut seen: Vec<u64> = hits
        .iter()
        .map(|h| {
            let m = h["message"].as_str().expect("message");
            m.trim_start_matches("request ")
                .trim_end_matches(" done")
                .parse()
                .expect("number")
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (50..250).collect::<Vec<u64>>());
    let first = hits
        .iter()
        .find(|h| h["message"] == "request 51 done")
        .expect("event 51");
    assert_eq!(first["aws"]["log_stream"], "s2");
    assert_eq!(first["aws"]["log_group"], "/app/api");
    assert_eq!(first["aws"]["account_id"], "123456789012");
    assert!(first["aws"]["event_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert_eq!(first["timestamp"], common::rfc3339_ms(base + 51_000));

    // the same backfill again ingests nothing twice
    let out = sawmill(&moto, &args);
    assert!(out.status.success(), "{}", text(&out));
    server.flush();
    assert_eq!(server.total("source:\"/app/api\""), 200);

    // a group that does not exist is an error that names it
    let out = sawmill(
        &moto,
        &[
            "cloudwatch",
            "backfill",
            "--url",
            &server.url,
            "--log-group",
            "/nope",
            "--start",
            "now-1h",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("log group /nope does not exist"),
        "{}",
        text(&out)
    );
}
