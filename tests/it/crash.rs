//! Crash safety: `kill -9` while clients ingest, then restart; every acknowledged event must
//! be found exactly once. Also a clean SIGTERM stop.

use crate::common;

use common::{now_nanos, poll, Server};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const THREADS: u64 = 4;
const BATCH: u64 = 100;

/// Event ids sent and acknowledged by the client threads.
#[derive(Default)]
struct Ledger {
    sent: Mutex<HashSet<u64>>,
    acked: Mutex<HashSet<u64>>,
    acked_batches: Mutex<u64>,
}

/// Four threads that ingest batches with unique `eid`s until the server stops answering or
/// `stop` is set. Ids of round `round` start at `round * 1e9`.
fn start_clients(
    url: &str,
    round: u64,
    ledger: &Arc<Ledger>,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<()>> {
    (0..THREADS)
        .map(|t| {
            let url = url.to_string();
            let ledger = ledger.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .unwrap();
                for b in 0..100_000u64 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let first = round * 1_000_000_000 + t * 100_000_000 + b * BATCH;
                    let ids: Vec<u64> = (first..first + BATCH).collect();
                    let ts = now_nanos() / 1_000_000;
                    let mut body = String::new();
                    for id in &ids {
                        body.push_str(
                            &json!({"timestamp": ts, "message": "crash test", "eid": id, "round": round})
                                .to_string(),
                        );
                        body.push('\n');
                    }
                    ledger.sent.lock().unwrap().extend(&ids);
                    let resp = http
                        .post(format!("{url}/api/v1/ingest"))
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send();
                    let Ok(resp) = resp else {
                        return; // the server is gone
                    };
                    if resp.status().as_u16() != 200 {
                        continue;
                    }
                    let Ok(answer) = resp.json::<serde_json::Value>() else {
                        return;
                    };
                    if answer["accepted"].as_u64() == Some(BATCH) {
                        ledger.acked.lock().unwrap().extend(&ids);
                        *ledger.acked_batches.lock().unwrap() += 1;
                    }
                }
            })
        })
        .collect()
}

/// Lets the clients run until `batches` more batches are acknowledged, then kills the server
/// (while they are still sending) and waits for the clients to stop.
fn kill_mid_stream(server: &mut Server, round: u64, ledger: &Arc<Ledger>, batches: u64) {
    let before = *ledger.acked_batches.lock().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_clients(&server.url, round, ledger, &stop);
    poll(Duration::from_secs(120), "acknowledged batches", || {
        (*ledger.acked_batches.lock().unwrap() >= before + batches).then_some(())
    });
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
}

/// After a restart: every acknowledged event is found exactly once, and nothing that was
/// never sent appears.
fn check_events(server: &Server, ledger: &Ledger, what: &str) {
    let acked = ledger.acked.lock().unwrap().clone();
    let sent = ledger.sent.lock().unwrap().clone();
    // every acknowledged event must become searchable once recovery is done
    let total = poll(
        Duration::from_secs(60),
        "acknowledged events searchable",
        || {
            let t = server.total("*");
            (t >= acked.len() as u64).then_some(t)
        },
    );
    let hits = server.search_all("*", "0", "now+1d");
    assert!(
        hits.len() as u64 >= total,
        "{what}: paging returned fewer hits than total"
    );
    let mut counts: HashMap<u64, u32> = HashMap::new();
    for h in &hits {
        let eid = h["eid"]
            .as_u64()
            .unwrap_or_else(|| panic!("{what}: hit without eid: {h}"));
        *counts.entry(eid).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        dups.is_empty(),
        "{what}: events found more than once: {dups:?}"
    );
    let found: HashSet<u64> = counts.keys().copied().collect();
    let lost: Vec<_> = acked.difference(&found).collect();
    assert!(
        lost.is_empty(),
        "{what}: {} acknowledged events lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let invented: Vec<_> = found.difference(&sent).collect();
    assert!(
        invented.is_empty(),
        "{what}: events never sent were found: {invented:?}"
    );
    assert!(
        acked.len() >= 1000,
        "{what}: too few acknowledged events to mean anything"
    );
}

#[test]
fn kill9_while_ingesting_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let ledger = Arc::new(Ledger::default());

    kill_mid_stream(&mut server, 0, &ledger, 30);
    server.spawn();
    check_events(&server, &ledger, "after the first kill");

    // replay after replay: more ingest, kill again
    kill_mid_stream(&mut server, 1, &ledger, 30);
    server.spawn();
    check_events(&server, &ledger, "after the second kill");

    // and once more without any ingest in between: a restart alone changes nothing
    server.kill9();
    server.spawn();
    check_events(&server, &ledger, "after a third restart");
}

#[test]
fn sigterm_stops_cleanly_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    // nothing is committed by the refresh: the shutdown (or replay) must do it
    let mut server = Server::start_with_config(dir.path(), "[index]\nrefresh_interval = \"1h\"\n");
    let ledger = Arc::new(Ledger::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_clients(&server.url, 0, &ledger, &stop);
    poll(Duration::from_secs(120), "acknowledged batches", || {
        (*ledger.acked_batches.lock().unwrap() >= 20).then_some(())
    });
    let status = server.terminate();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    assert!(
        status.success(),
        "SIGTERM exit status {status:?}; log:\n{}",
        server.log.text()
    );
    assert_eq!(status.code(), Some(0));
    server.spawn();
    check_events(&server, &ledger, "after SIGTERM");
}
