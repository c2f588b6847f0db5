//! The Elasticsearch-compatible ingest API against the real server over loopback: the
//! official Python client (`elasticsearch` 8, `info()` and `helpers.bulk`), raw `_bulk`
//! requests (gzip, PUT, the vendor MIME type, bad documents, malformed and unknown actions,
//! empty and oversized bodies), the probe sequences of Filebeat and Logstash, keys in the
//! three forms shippers send, the tenant's redaction, re-sent `_id`s kept once, and every
//! acknowledged document present exactly once after `kill -9`.

use crate::common;

use base64::Engine;
use common::{gzip, Server};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

const CONFIG: &str = "[index]\nrefresh_interval = \"200ms\"\nhot_retention = \"3650d\"\n\
                      [tenants.acme]\nredact = [\"email\"]\n";

/// `sawmill keys create` for `tenant` with `scopes`.
fn create_key(data_dir: &std::path::Path, tenant: &str, scopes: &[&str]) -> String {
    let mut cmd = Command::new(common::binary());
    cmd.args(["keys", "create", "--data-dir"])
        .arg(data_dir)
        .args(["--tenant", tenant]);
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

fn bulk(server: &Server, path: &str, body: impl Into<Vec<u8>>) -> (u16, Value) {
    let resp = server
        .post(path)
        .header("content-type", "application/x-ndjson")
        .body(body.into())
        .send()
        .expect("bulk request");
    assert_eq!(
        resp.headers()
            .get("x-elastic-product")
            .and_then(|v| v.to_str().ok()),
        Some("Elasticsearch"),
        "every answer of the ES API names the product"
    );
    common::status_json(resp)
}

fn statuses(answer: &Value) -> Vec<u64> {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let (_, body) = item.as_object().unwrap().iter().next().unwrap();
            body["status"].as_u64().unwrap()
        })
        .collect()
}

fn assert_es_error(got: (u16, Value), status: u16, reason_has: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["status"], status, "{}", got.1);
    let reason = got.1["error"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(reason_has),
        "error reason {reason:?} should contain {reason_has:?}"
    );
    assert!(got.1["error"]["type"].is_string(), "{}", got.1);
}

#[test]
fn the_python_client_connects_and_bulk_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let script = r#"
import sys, json
from elasticsearch import Elasticsearch, helpers
es = Elasticsearch(sys.argv[1], request_timeout=60)
info = es.info()
assert info["version"]["number"].startswith("8."), info
assert info["tagline"] == "You Know, for Search", info
docs = ({"_index": "pyapp", "_id": "doc-%d" % i,
         "_source": {"@timestamp": "2026-12-04T10:00:%02dZ" % (i % 60),
                     "message": "python bulk %d" % i, "log.level": "warn", "n": i}}
        for i in range(500))
ok, errors = helpers.bulk(es, docs, chunk_size=100)
print(json.dumps({"ok": ok, "errors": errors}))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &server.url])
        .output()
        .expect("python3 runs (scripts/test installs the elasticsearch client)");
    assert!(
        out.status.success(),
        "the elasticsearch client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    assert_eq!(result, json!({"ok": 500, "errors": []}));
    let window = [
        ("start", "2026-12-04T00:00:00Z"),
        ("end", "2026-12-05T00:00:00Z"),
    ];
    assert_eq!(
        server.wait_total("index:pyapp AND level:WARN", 500, Duration::from_secs(30)),
        500
    );
    let (_, hits) = server.search(&[
        ("q", "\"python bulk 7\""),
        ("start", window[0].1),
        ("end", window[1].1),
    ]);
    let hit = &hits["hits"][0];
    assert_eq!(hit["index"], "pyapp");
    assert_eq!(hit["_id"], "doc-7");
    assert_eq!(hit["n"], 7);
    assert_eq!(hit["timestamp"], "2026-12-04T10:00:07.000Z");
}

#[test]
fn raw_bulk_requests_get_per_item_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());

    // POST /_bulk with a bad document between good ones: 200, per-item statuses
    let body = concat!(
        "{\"index\":{\"_index\":\"web\"}}\n{\"message\":\"first\",\"status\":200}\n",
        "{\"create\":{\"_index\":\"web\"}}\n{\"message\": broken\n",
        "{\"delete\":{\"_index\":\"web\",\"_id\":\"x\"}}\n",
        "{\"create\":{}}\n{\"message\":\"no index\"}\n",
    );
    let (status, answer) = bulk(&server, "/_bulk", body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], true);
    assert_eq!(statuses(&answer), vec![201, 400, 400, 201]);
    assert_eq!(
        answer["items"][1]["create"]["error"]["type"],
        "document_parsing_exception"
    );
    assert!(answer["items"][0]["index"]["_id"].is_string());
    assert!(answer["took"].is_u64());

    // PUT /es/{index}/_bulk, gzip, the vendor MIME type of elasticsearch-py 8
    let body = "{\"index\":{}}\n{\"message\":\"gzipped\"}\n{\"index\":{\"_index\":\"other\"}}\n{\"message\":\"own index\"}\n";
    let resp = server
        .http
        .put(format!("{}/es/shop/_bulk?refresh=wait_for", server.url))
        .header(
            "content-type",
            "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
        )
        .header("content-encoding", "gzip")
        .body(gzip(body.as_bytes()))
        .send()
        .unwrap();
    let (status, answer) = common::status_json(resp);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], false);
    assert_eq!(answer["items"][0]["index"]["_index"], "shop");
    assert_eq!(answer["items"][1]["index"]["_index"], "other");
    // refresh=wait_for: searchable at once
    assert_eq!(server.total("index:shop AND gzipped"), 1);
    assert_eq!(server.total("index:other"), 1);
    assert_eq!(server.total("index:web"), 1);
    assert_eq!(server.total("\"no index\""), 1);

    // whole-request refusals, in ES's error shape
    assert_es_error(
        bulk(&server, "/_bulk", "{\"index\":{}}\n{}\nnot an action\n{}\n"),
        400,
        "line [3]",
    );
    assert_es_error(
        bulk(&server, "/es/_bulk", "{\"upsert\":{}}\n{}\n"),
        400,
        "line [1]",
    );
    assert_es_error(bulk(&server, "/_bulk", ""), 400, "empty");
    let resp = server
        .post("/_bulk")
        .header("content-type", "application/xml")
        .body("<a/>")
        .send()
        .unwrap();
    assert_es_error(common::status_json(resp), 415, "Content-Type");
    let line = "{\"index\":{}}\n{\"message\":\"padding padding padding padding\"}\n";
    let huge = line.repeat(100 * 1024 * 1024 / line.len() + 1);
    assert_es_error(bulk(&server, "/_bulk", huge), 413, "larger than");
    // nothing of the refused requests was kept
    assert_eq!(server.total("*"), 4);
}

#[test]
fn filebeat_and_logstash_probes_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let get = |path: &str| {
        let resp = server.get(path).send().unwrap();
        assert_eq!(
            resp.headers()
                .get("x-elastic-product")
                .and_then(|v| v.to_str().ok()),
            Some("Elasticsearch"),
            "{path}"
        );
        common::status_json(resp)
    };
    for root in ["/", "/es", "/es/"] {
        let (status, info) = get(root);
        assert_eq!(status, 200, "{root}: {info}");
        let version = info["version"]["number"].as_str().unwrap();
        // Filebeat 8 refuses a server of an older minor than its own
        assert!(version.starts_with("8.") && version >= "8.19", "{version}");
        assert_eq!(info["version"]["build_flavor"], "default");
    }
    let head = server.http.head(format!("{}/", server.url)).send().unwrap();
    assert_eq!(head.status(), 200);
    let (status, license) = get("/_license");
    assert_eq!(status, 200);
    assert_eq!(license["license"]["status"], "active");
    let (_, xpack) = get("/_xpack");
    assert_eq!(xpack["features"]["ilm"]["available"], true);
    let (_, health) = get("/es/_cluster/health");
    assert_eq!(health["status"], "green");
    let (_, nodes) = get("/_nodes/http");
    let node = nodes["nodes"].as_object().unwrap().values().next().unwrap();
    assert!(node["http"]["publish_address"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));

    // Filebeat's setup: template and ILM policy looked up, then created
    for path in [
        "/_index_template/filebeat-8.19.0",
        "/_ilm/policy/filebeat",
        "/_ingest/pipeline/filebeat-8.19.0-system",
        "/_data_stream/logs-generic-default",
        "/es/_template/logstash",
    ] {
        let (status, missing) = get(path);
        assert_eq!(status, 404, "{path}: {missing}");
        assert_eq!(missing["status"], 404);
        let head = server
            .http
            .head(format!("{}{path}", server.url))
            .send()
            .unwrap();
        assert_eq!(head.status(), 404, "HEAD {path}");
        let put = server
            .http
            .put(format!("{}{path}", server.url))
            .header("content-type", "application/json")
            .body(
                json!({"index_patterns": ["filebeat-*"], "template": {"settings": {}}}).to_string(),
            )
            .send()
            .unwrap();
        let (status, ack) = common::status_json(put);
        assert_eq!(
            (status, ack),
            (200, json!({"acknowledged": true})),
            "PUT {path}"
        );
    }
    // a browser asking the root for a page is not answered as Elasticsearch
    let page = server
        .get("/")
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .unwrap();
    assert_ne!(page.status(), 200);
}

#[test]
fn keys_tenants_and_redaction_apply_to_bulk() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let ingest = create_key(&data_dir, "acme", &["ingest", "search"]);
    let reader = create_key(&data_dir, "acme", &["search"]);
    let server = Server::start_with_config(dir.path(), CONFIG);
    let doc = "{\"create\":{\"_index\":\"app\"}}\n{\"message\":\"signup by ada@example.com\"}\n";
    let send = |auth: Option<String>, path: &str| {
        let mut req = server
            .post(path)
            .header("content-type", "application/x-ndjson");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.body(doc).send().unwrap();
        let www = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        (common::status_json(resp), www)
    };
    let ((status, body), www) = send(None, "/_bulk");
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["type"], "security_exception");
    assert!(www.is_some_and(|w| w.contains("Basic")));
    let ((status, _), _) = send(Some("Bearer smk_nope".into()), "/_bulk");
    assert_eq!(status, 401);
    let ((status, body), _) = send(Some(format!("Bearer {reader}")), "/_bulk");
    assert_eq!(status, 403, "a search-only key cannot ingest: {body}");
    // a search-only key may still ask who answers
    let resp = server
        .get("/")
        .header("authorization", format!("Bearer {reader}"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);

    let b64 = base64::engine::general_purpose::STANDARD;
    for auth in [
        format!("Bearer {ingest}"),
        format!("Basic {}", b64.encode(format!("elastic:{ingest}"))),
        format!("ApiKey {}", b64.encode(format!("some-id:{ingest}"))),
        format!("ApiKey {ingest}"),
    ] {
        let ((status, body), _) = send(Some(auth.clone()), "/es/_bulk");
        assert_eq!(status, 200, "{auth}: {body}");
        assert_eq!(statuses(&body), vec![201]);
    }
    let found = common::poll(Duration::from_secs(20), "four documents searchable", || {
        let (_, r) = common::status_json(
            server
                .get("/api/v1/search")
                .query(&[("q", "index:app")])
                .header("authorization", format!("Bearer {reader}"))
                .send()
                .unwrap(),
        );
        (r["total"] == 4).then_some(r)
    });
    for hit in found["hits"].as_array().unwrap() {
        let message = hit["message"].as_str().unwrap();
        assert!(
            !message.contains("ada@example.com"),
            "the tenant's redaction applies: {message}"
        );
    }
}

#[test]
fn resent_ids_are_kept_once_and_acknowledged_documents_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let batch = |from: usize, to: usize| {
        let mut body = String::new();
        for i in from..to {
            body.push_str(&format!(
                "{{\"create\":{{\"_index\":\"orders\",\"_id\":\"order-{i}\"}}}}\n{{\"message\":\"order {i} paid\",\"n\":{i}}}\n"
            ));
        }
        body
    };
    let (status, first) = bulk(&server, "/_bulk", batch(0, 300));
    assert_eq!(status, 200);
    assert_eq!(statuses(&first), vec![201; 300]);
    // the same batch again (a shipper that lost the answer), overlapping a new one
    let (status, again) = bulk(&server, "/_bulk", batch(200, 400));
    assert_eq!(status, 200, "{again}");
    let got = statuses(&again);
    assert_eq!(got[..100], vec![200; 100][..]);
    assert_eq!(got[100..], vec![201; 100][..]);
    assert_eq!(again["items"][0]["create"]["result"], "noop");
    assert_eq!(again["errors"], false);
    // the same id in another index is another document
    let (_, other) = bulk(
        &server,
        "/_bulk",
        "{\"create\":{\"_index\":\"refunds\",\"_id\":\"order-1\"}}\n{\"message\":\"refund\"}\n",
    );
    assert_eq!(statuses(&other), vec![201]);

    // documents without ids, acknowledged, then kill -9
    let mut plain = String::new();
    for i in 0..250 {
        plain.push_str(&format!(
            "{{\"index\":{{}}}}\n{{\"message\":\"plain {i}\"}}\n"
        ));
    }
    let (status, _) = bulk(&server, "/_bulk", plain);
    assert_eq!(status, 200);
    server.kill9();
    server.spawn();
    assert_eq!(
        server.wait_total("*", 651, Duration::from_secs(60)),
        651,
        "400 orders, 1 refund and 250 plain documents, each once"
    );
    // after the restart the ids are still known
    let (status, after) = bulk(&server, "/_bulk", batch(390, 410));
    assert_eq!(status, 200);
    let got = statuses(&after);
    assert_eq!(got[..10], vec![200; 10][..]);
    assert_eq!(got[10..], vec![201; 10][..]);
    assert_eq!(
        server.wait_total("index:orders", 410, Duration::from_secs(30)),
        410
    );
    for i in [0, 250, 399, 409] {
        assert_eq!(server.total(&format!("\"order {i} paid\"")), 1, "order {i}");
    }
}
