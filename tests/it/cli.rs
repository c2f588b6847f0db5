//! The command-line clients against a real server: `sawmill ingest` (files and stdin),
//! `sawmill search --json`, and the errors users see.

use crate::common;

use common::{now_nanos, parse_rfc3339, run_sawmill, Output, Server};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

/// `sawmill search --json` hits, parsed.
fn search_json(server: &Server, extra: &[&str], query: &str) -> Vec<Value> {
    let mut args = vec![
        "search",
        "--url",
        &server.url,
        "--start",
        "0",
        "--end",
        "now+1d",
        "--json",
    ];
    args.extend(extra);
    args.push(query);
    let out = run_sawmill(&args, None, T);
    ok(&out, &format!("sawmill search {query}"));
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON hit ({e}): {l}")))
        .collect()
}

fn messages(hits: &[Value]) -> BTreeSet<String> {
    hits.iter()
        .map(|h| h["message"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn ingest_files_and_stdin_then_search() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let base = now_nanos() / 1_000_000 - 600_000;

    // NDJSON file
    let levels = ["info", "err", "warning", "error"];
    let mut ndjson = String::new();
    for i in 0..30i64 {
        ndjson.push_str(
            &json!({"timestamp": base + i * 1000, "level": levels[i as usize % 4], "service": "clitest", "message": format!("cli event {i}"), "i": i})
                .to_string(),
        );
        ndjson.push('\n');
    }
    let app = dir.path().join("app.ndjson");
    std::fs::write(&app, &ndjson).unwrap();
    let out = run_sawmill(
        &["ingest", "--url", &server.url, app.to_str().unwrap()],
        None,
        T,
    );
    ok(&out, "sawmill ingest app.ndjson");
    assert_eq!(
        server.wait_total("source:app.ndjson", 30, T),
        30,
        "events of app.ndjson"
    );

    let hits = search_json(&server, &[], "service:clitest");
    assert_eq!(hits.len(), 30);
    let want: BTreeSet<String> = (0..30).map(|i| format!("cli event {i}")).collect();
    assert_eq!(messages(&hits), want);
    let ts: Vec<i64> = hits
        .iter()
        .map(|h| parse_rfc3339(h["timestamp"].as_str().unwrap()))
        .collect();
    assert!(ts.windows(2).all(|w| w[0] >= w[1]), "newest first: {ts:?}");
    assert_eq!(hits[0]["message"], "cli event 29");
    assert_eq!(hits[0]["source"], "app.ndjson");
    let asc = search_json(&server, &["--asc", "--limit", "5"], "service:clitest");
    let asc_msgs: Vec<&str> = asc.iter().map(|h| h["message"].as_str().unwrap()).collect();
    assert_eq!(
        asc_msgs,
        [
            "cli event 0",
            "cli event 1",
            "cli event 2",
            "cli event 3",
            "cli event 4"
        ]
    );
    let errors = search_json(&server, &[], "service:clitest AND level:error");
    let want_errors: BTreeSet<String> = (0..30)
        .filter(|i| i % 4 == 1 || i % 4 == 3)
        .map(|i| format!("cli event {i}"))
        .collect();
    assert_eq!(messages(&errors), want_errors);
    assert!(errors.iter().all(|h| h["level"] == "ERROR"));

    // the human-readable output shows the messages too
    let out = run_sawmill(
        &[
            "search",
            "--url",
            &server.url,
            "--start",
            "0",
            "--end",
            "now+1d",
            "service:clitest",
        ],
        None,
        T,
    );
    ok(&out, "sawmill search (text)");
    assert_eq!(out.stdout.lines().count(), 30, "{}", out.stdout);
    assert!(out.stdout.contains("cli event 17"), "{}", out.stdout);

    // plain-text file: one event per line
    let lines = ["plain text line one", "second line: key=value", "third"];
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, lines.join("\n") + "\n").unwrap();
    let out = run_sawmill(
        &["ingest", "--url", &server.url, notes.to_str().unwrap()],
        None,
        T,
    );
    ok(&out, "sawmill ingest notes.txt");
    assert_eq!(server.wait_total("source:notes.txt", 3, T), 3);
    let hits = search_json(&server, &[], "source:notes.txt");
    assert_eq!(
        messages(&hits),
        lines.iter().map(|s| s.to_string()).collect()
    );

    // standard input with --source
    let piped: String = (0..7)
        .map(|i| json!({"message": format!("piped {i}")}).to_string() + "\n")
        .collect();
    let out = run_sawmill(
        &[
            "ingest",
            "--url",
            &server.url,
            "--source",
            "from-stdin",
            "-",
        ],
        Some(piped.as_bytes()),
        T,
    );
    ok(&out, "sawmill ingest -");
    assert_eq!(server.wait_total("source:from-stdin", 7, T), 7);
    let hits = search_json(&server, &[], "source:from-stdin");
    assert_eq!(
        messages(&hits),
        (0..7).map(|i| format!("piped {i}")).collect()
    );

    // a bad line is reported with its file and line number
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(
        &bad,
        "{\"message\":\"fine\"}\n{\"message\": oops}\n{\"message\":\"fine too\"}\n",
    )
    .unwrap();
    let out = run_sawmill(
        &["ingest", "--url", &server.url, bad.to_str().unwrap()],
        None,
        T,
    );
    assert!(
        out.stderr.contains("bad.ndjson:2"),
        "stderr does not point at the bad line:\n{}",
        out.stderr
    );
    assert_eq!(server.wait_total("source:bad.ndjson", 2, T), 2);
}

#[test]
fn serve_rejects_unknown_config_keys() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, key) in [
        ("[index]\nrefresh_intervall = \"1s\"\n", "refresh_intervall"),
        ("colour = \"blue\"\n", "colour"),
        ("[ingest]\nmax_body = 5\n", "max_body"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, toml).unwrap();
        let data = dir.path().join("data");
        let out = run_sawmill(
            &[
                "serve",
                "--config",
                path.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
            None,
            Duration::from_secs(60),
        );
        assert!(!out.status.success(), "serve accepted unknown key {key}");
        assert!(
            out.stderr.contains(key),
            "the error does not name {key}:\n{}",
            out.stderr
        );
        assert!(
            !out.stdout.contains("listening"),
            "serve started despite unknown key {key}: {}",
            out.stdout
        );
    }
}

#[test]
fn ingest_to_a_down_server_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // a port nothing listens on
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let file = dir.path().join("x.ndjson");
    std::fs::write(&file, "{\"message\":\"nobody listens\"}\n").unwrap();
    let out = run_sawmill(
        &[
            "ingest",
            "--url",
            &url,
            "--max-attempts",
            "2",
            file.to_str().unwrap(),
        ],
        None,
        Duration::from_secs(60),
    );
    assert!(
        !out.status.success(),
        "ingest to a down server succeeded:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("2 attempt"),
        "does not say it gave up after 2 attempts:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&port.to_string()),
        "does not name the server:\n{}",
        out.stderr
    );

    // search says what failed too
    let out = run_sawmill(
        &["search", "--url", &url, "*"],
        None,
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    assert!(
        out.stderr.contains(&port.to_string()),
        "does not name the server:\n{}",
        out.stderr
    );
}

#[test]
fn archive_lifecycle_prints_the_configured_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiers.toml");
    std::fs::write(
        &path,
        "[archive]\nprefix = \"acme/logs\"\n[archive.lifecycle]\ninfrequent_access_after_days = 45\n\
         glacier_ir_after_days = 0\ndeep_archive_after_days = 200\nexpire_after_days = 800\n",
    )
    .unwrap();
    let out = run_sawmill(
        &["archive", "lifecycle", "--config", path.to_str().unwrap()],
        None,
        T,
    );
    ok(&out, "archive lifecycle");
    let rule: Value = serde_json::from_str(&out.stdout).expect("the rule is JSON");
    assert_eq!(
        rule,
        json!({
            "ID": "sawmill-tiers:acme/logs",
            "Status": "Enabled",
            "Filter": {"Prefix": "acme/logs/"},
            "Transitions": [
                {"Days": 45, "StorageClass": "STANDARD_IA"},
                {"Days": 200, "StorageClass": "DEEP_ARCHIVE"}
            ],
            "Expiration": {"Days": 800},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}
        })
    );
    // impossible tiers are refused by the command and by the server, naming the setting
    std::fs::write(
        &path,
        "[archive.lifecycle]\ninfrequent_access_after_days = 60\nglacier_ir_after_days = 40\n",
    )
    .unwrap();
    let out = run_sawmill(
        &["archive", "lifecycle", "--config", path.to_str().unwrap()],
        None,
        T,
    );
    assert!(!out.status.success(), "accepted tiers out of order");
    assert!(
        out.stderr
            .contains("archive.lifecycle.glacier_ir_after_days"),
        "{}",
        out.stderr
    );
}

#[test]
fn archive_athena_ddl_describes_the_layout() {
    let out = run_sawmill(
        &[
            "archive",
            "athena-ddl",
            "--bucket",
            "acme-logs",
            "--database",
            "ops",
            "--first-day",
            "2025-06-01",
        ],
        None,
        T,
    );
    ok(&out, "archive athena-ddl");
    let ddl = out.stdout;
    for line in [
        "CREATE EXTERNAL TABLE IF NOT EXISTS `ops`.`sawmill_logs`",
        "LOCATION 's3://acme-logs/logs/v1/'",
        "'storage.location.template'='s3://acme-logs/logs/v1/tenant=${tenant}/dt=${dt}/hour=${hour}/'",
        "'projection.dt.range'='2025-06-01,NOW'",
        "PARTITIONED BY",
    ] {
        assert!(ddl.contains(line), "missing {line:?} in:\n{ddl}");
    }
    // the local-folder config has no bucket: the command says what to pass
    let out = run_sawmill(&["archive", "athena-ddl"], None, T);
    assert!(!out.status.success());
    assert!(out.stderr.contains("--bucket"), "{}", out.stderr);
}
