//! Amazon Data Firehose HTTP endpoint delivery into the real server over loopback: access key
//! header, CloudWatch Logs records, retries deduplicated by request id, Firehose-shaped answers,
//! the tenant of the key and the tenant's redaction, and records that cannot be decoded.

use crate::common;

use base64::Engine;
use common::{gzip, Server};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

const CONFIG: &str = "[index]\nrefresh_interval = \"200ms\"\nhot_retention = \"3650d\"\n\
                      [tenants.acme]\nredact = [\"email\"]\n";

/// `sawmill keys create` for `tenant` (empty: an operator key for every tenant).
fn create_key(data_dir: &std::path::Path, tenant: &str, scopes: &[&str]) -> String {
    let mut cmd = Command::new(common::binary());
    cmd.args(["keys", "create", "--data-dir"]).arg(data_dir);
    if tenant.is_empty() {
        cmd.arg("--all-tenants");
    } else {
        cmd.args(["--tenant", tenant]);
    }
    for s in scopes {
        cmd.args(["--scope", s]);
    }
    let out = cmd.output().expect("run sawmill keys create");
    assert!(
        out.status.success(),
        "keys create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    text.lines().last().expect("a key line").trim().to_string()
}

fn delivery(request_id: &str, records: &[Vec<u8>]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<Value> = records
        .iter()
        .map(|r| json!({ "data": b64.encode(r) }))
        .collect();
    json!({"requestId": request_id, "timestamp": 1764230400000i64, "records": records}).to_string()
}

fn post(server: &Server, key: Option<&str>, request_id: &str, body: &str) -> (u16, Value) {
    let mut req = server
        .post("/api/v1/firehose")
        .header("content-type", "application/json")
        .header("x-amz-firehose-protocol-version", "1.0")
        .header("x-amz-firehose-request-id", request_id);
    if let Some(k) = key {
        req = req.header("x-amz-firehose-access-key", k);
    }
    common::status_json(req.body(body.to_string()).send().expect("firehose request"))
}

#[test]
fn firehose_deliveries_are_ingested_once_for_the_keys_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let acme = create_key(&data_dir, "acme", &["ingest", "search"]);
    let other = create_key(&data_dir, "other", &["ingest", "search"]);
    let operator = create_key(&data_dir, "", &["admin"]);
    let server = Server::start_with_config(dir.path(), CONFIG);

    let now_ms = common::now_nanos() / 1_000_000;
    let logs = json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012",
        "logGroup": "/aws/lambda/checkout", "logStream": "2026/11/27/[$LATEST]abc",
        "subscriptionFilters": ["sawmill"],
        "logEvents": [
            {"id": "e1", "timestamp": now_ms - 2000, "message": "payment failed for ada@example.com"},
            {"id": "e2", "timestamp": now_ms - 1000, "message": "{\"level\":\"error\",\"msg\":\"card declined\"}"}
        ]
    });
    let body = delivery(
        "req-1",
        &[
            gzip(logs.to_string().as_bytes()),
            b"{\"message\":\"firehose ndjson record\"}\n".to_vec(),
        ],
    );

    // no key, a wrong key: 401 in Firehose's shape
    for key in [None, Some("smk_000000000000_nope")] {
        let (status, answer) = post(&server, key, "req-0", &body);
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["requestId"], "req-0");
        assert!(
            answer["errorMessage"]
                .as_str()
                .unwrap_or("")
                .contains("API key"),
            "{answer}"
        );
    }

    // delivered, then retried with the same request id: ingested once
    for attempt in 0..2 {
        let (status, answer) = post(&server, Some(&acme), "req-1", &body);
        assert_eq!(status, 200, "attempt {attempt}: {answer}");
        assert_eq!(answer["requestId"], "req-1");
        assert!(answer["timestamp"].as_i64().is_some(), "{answer}");
        assert!(answer.get("errorMessage").is_none(), "{answer}");
    }
    let search = |key: &str, q: &str| -> Vec<Value> {
        let resp = server
            .get("/api/v1/search")
            .bearer_auth(key)
            .query(&[("q", q), ("start", "now-1h"), ("end", "now+1h")])
            .send()
            .expect("search");
        let (status, body) = common::status_json(resp);
        assert_eq!(status, 200, "{body}");
        body["hits"].as_array().cloned().unwrap_or_default()
    };
    let hits = common::poll(Duration::from_secs(20), "3 acme events searchable", || {
        let hits = search(&acme, "*");
        (hits.len() == 3).then_some(hits)
    });
    // the CloudWatch origin is kept, the tenant's redaction applied
    let failed = hits
        .iter()
        .find(|h| {
            h["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("payment failed")
        })
        .expect("the CloudWatch text event");
    assert_eq!(
        failed["message"], "payment failed for [REDACTED:email]",
        "{failed}"
    );
    assert_eq!(failed["source"], "/aws/lambda/checkout");
    assert_eq!(failed["aws"]["log_group"], "/aws/lambda/checkout");
    assert_eq!(failed["aws"]["event_id"], "e1");
    assert_eq!(
        common::parse_rfc3339(failed["timestamp"].as_str().unwrap()) / 1_000_000,
        now_ms - 2000
    );
    assert_eq!(search(&acme, "level:error").len(), 1);
    assert!(!serde_json::to_string(&hits)
        .unwrap()
        .contains("ada@example.com"));
    // the other tenant sees none of it
    assert_eq!(search(&other, "*").len(), 0);

    // a body that is not a delivery: 400 with the reason, nothing ingested
    let (status, answer) = post(&server, Some(&acme), "req-2", "{\"records\":7}");
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("not a Firehose delivery"),
        "{answer}"
    );
    assert_eq!(search(&acme, "*").len(), 3);

    // one record that cannot be decoded does not fail the delivery: the good records are
    // ingested, the bad one becomes an event that says what was wrong and keeps its data
    let mut mixed: Value = serde_json::from_str(&delivery(
        "req-3",
        &[b"{\"message\":\"good record\"}\n".to_vec()],
    ))
    .unwrap();
    mixed["records"]
        .as_array_mut()
        .unwrap()
        .push(json!({"data": "%%not-base64%%"}));
    let (status, answer) = post(&server, Some(&acme), "req-3", &mixed.to_string());
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("errorMessage").is_none(), "{answer}");
    let bad = common::poll(Duration::from_secs(20), "the bad-record event", || {
        let hits = search(&acme, "firehose.record:2");
        (hits.len() == 1).then(|| hits[0].clone())
    });
    assert_eq!(bad["level"], "ERROR");
    assert_eq!(bad["firehose"]["data"], "%%not-base64%%");
    assert!(
        bad["firehose"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("not base64"),
        "{bad}"
    );
    assert_eq!(search(&acme, "\"good record\"").len(), 1);
    assert_eq!(search(&acme, "*").len(), 5);
    let metrics = server
        .get("/metrics")
        .bearer_auth(&operator)
        .send()
        .expect("metrics")
        .text()
        .expect("metrics text");
    assert_eq!(
        common::metric_sample(&metrics, "sawmill_firehose_bad_records_total", ""),
        Some(1.0),
        "{metrics}"
    );
}
