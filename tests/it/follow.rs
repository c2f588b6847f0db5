//! `sawmill ingest --follow` against a real server: lines appended over time, rename
//! rotation while writing, copytruncate, `kill -9` of the shipper and restarts from the state
//! file, the server going away and coming back, multi-line records, and files created after
//! the start. Every test writes unique numbered lines and checks, through the search API, that
//! the server holds each of them exactly once.

use crate::common;

use common::{binary, poll, Server};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous: lines normally arrive within about a second.
const DEADLINE: Duration = Duration::from_secs(60);

/// A running `sawmill ingest --follow`.
struct Shipper {
    child: Option<Child>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: Arc<Mutex<String>>,
}

impl Shipper {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Shipper {
        let mut s = Shipper {
            child: None,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: Arc::default(),
        };
        s.spawn();
        s
    }

    /// Starts the process (again) with the same arguments.
    fn spawn(&mut self) {
        let mut child = Command::new(binary())
            .arg("ingest")
            .arg("--follow")
            .args(&self.args)
            .env_remove("SAWMILL_URL")
            .env_remove("SAWMILL_API_KEY")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sawmill ingest --follow");
        let stderr = child.stderr.take().expect("stderr");
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        self.child = Some(child);
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit.
    fn stop(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("shipper running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!(
                    "the shipper did not stop within 30s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Appends to a file the way a program writes its log (`O_APPEND`, one write per call).
fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    f.write_all(text.as_bytes()).expect("write log");
}

fn lines(tag: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{tag}-{i:05}")).collect()
}

fn text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn counts(messages: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in messages {
        *m.entry(s).or_insert(0) += 1;
    }
    m
}

fn messages(hits: &[Value]) -> Vec<String> {
    hits.iter()
        .map(|h| h["message"].as_str().unwrap_or("<no message>").to_string())
        .collect()
}

/// What differs between the messages on the server and the ones wanted.
fn difference(got: &BTreeMap<String, usize>, want: &BTreeMap<String, usize>) -> String {
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let twice: Vec<(&String, &usize)> = got.iter().filter(|(_, &n)| n > 1).collect();
    format!(
        "{} missing (first: {:?}), {} unexpected (first: {:?}), {} more than once (first: {:?})",
        missing.len(),
        &missing[..missing.len().min(5)],
        extra.len(),
        &extra[..extra.len().min(5)],
        twice.len(),
        &twice[..twice.len().min(5)]
    )
}

/// Waits until the server holds exactly `want` (each once, nothing else); fails as soon as a
/// message arrives twice or one that was never written appears.
#[track_caller]
fn wait_exact(server: &Server, want: &[String], shipper: &Shipper) -> Vec<Value> {
    let want = counts(want.iter().cloned());
    let deadline = Instant::now() + DEADLINE;
    loop {
        let hits = server.search_all("*", "0", "now+1d");
        let got = counts(messages(&hits));
        if got == want {
            return hits;
        }
        let wrong = got.values().any(|&n| n > 1) || got.keys().any(|k| !want.contains_key(k));
        if wrong || Instant::now() > deadline {
            panic!(
                "{} events on the server, {} wanted: {}\nshipper log:\n{}",
                got.values().sum::<usize>(),
                want.len(),
                difference(&got, &want),
                tail(&shipper.log())
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// After the shipper stopped: nothing more arrived (a late duplicate would show now).
#[track_caller]
fn assert_still_exact(server: &Server, want: &[String], shipper: &Shipper) {
    server.flush();
    let got = counts(messages(&server.search_all("*", "0", "now+1d")));
    let want = counts(want.iter().cloned());
    assert!(
        got == want,
        "after stopping: {}\nshipper log:\n{}",
        difference(&got, &want),
        tail(&shipper.log())
    );
}

fn tail(log: &str) -> String {
    let start = log.len().saturating_sub(6000);
    let mut cut = start;
    while !log.is_char_boundary(cut) {
        cut += 1;
    }
    log[cut..].to_string()
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_string()
}

/// The saved state, parsed.
fn state(path: &Path) -> Value {
    let bytes = std::fs::read(path).expect("read the state file");
    serde_json::from_slice(&bytes).expect("the state file is JSON")
}

struct Setup {
    dir: tempfile::TempDir,
    server: Server,
    logs: PathBuf,
    state: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let state = dir.path().join("follow-state.json");
    Setup {
        dir,
        server,
        logs,
        state,
    }
}

#[test]
fn appended_lines_arrive_once_with_the_path_as_source() {
    let s = setup();
    let app = s.logs.join("app.log");
    let events = s.logs.join("events.ndjson");
    let mut want = lines("app", 0..50);
    append(&app, &text(&want));
    let mut shipper = Shipper::start(
        &[
            "--url",
            &s.server.url,
            "--state",
            &path_str(&s.state),
            &path_str(&app),
            &path_str(&events),
        ],
        &[],
    );
    for round in 1..4 {
        let more = lines("app", round * 100..round * 100 + 100);
        append(&app, &text(&more));
        want.extend(more);
        std::thread::sleep(Duration::from_millis(300));
    }
    // a line written in two parts is one event, not two
    append(&app, "partial line st");
    std::thread::sleep(Duration::from_millis(400));
    append(&app, "arts here\n");
    want.push("partial line starts here".into());
    let json: String = (0..20)
        .map(|i| format!("{{\"message\":\"json-{i:05}\",\"level\":\"warning\",\"n\":{i}}}\n"))
        .collect();
    append(&events, &json);
    want.extend(lines("json", 0..20));

    let hits = wait_exact(&s.server, &want, &shipper);
    for h in &hits {
        let msg = h["message"].as_str().unwrap_or_default();
        if msg.starts_with("json-") {
            assert_eq!(h["source"], path_str(&events).as_str(), "{h}");
            assert_eq!(h["level"], "WARN", "NDJSON fields are parsed: {h}");
        } else {
            assert_eq!(h["source"], path_str(&app).as_str(), "{h}");
        }
    }

    let status = shipper.stop();
    assert!(status.success(), "SIGTERM: {status:?}\n{}", shipper.log());
    assert!(shipper.log().contains("stopped"), "{}", shipper.log());
    assert_still_exact(&s.server, &want, &shipper);
    let saved = state(&s.state);
    let files = saved["files"].as_array().expect("files");
    assert_eq!(files.len(), 2, "{saved}");
    for f in files {
        let path = f["path"].as_str().expect("path");
        let size = std::fs::metadata(path).expect("followed file").len();
        assert_eq!(f["offset"].as_u64(), Some(size), "all acknowledged: {f}");
        assert!(f.get("sending").is_none(), "nothing in flight: {f}");
    }
}

#[test]
fn rename_rotation_while_writing_loses_nothing() {
    let s = setup();
    let app = s.logs.join("app.log");
    let shipper = Shipper::start(
        &[
            "--url",
            &s.server.url,
            "--state",
            &path_str(&s.state),
            "--rotate-wait",
            "2s",
            &path_str(&app),
        ],
        &[],
    );
    let mut want = Vec::new();
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&app)
        .expect("open log");
    let mut n = 0;
    for generation in 0..4 {
        // about 0.7 s of lines, then rotation: rename, late lines to the old file for a
        // while (the program has not reopened yet; the path is missing meanwhile), then a new
        // file at the same path
        for _ in 0..70 {
            let l = format!("rot-{n:05}");
            log.write_all(format!("{l}\n").as_bytes()).expect("write");
            want.push(l);
            n += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::rename(&app, s.logs.join(format!("app.log.{generation}"))).expect("rename");
        for _ in 0..5 {
            let l = format!("rot-{n:05}");
            log.write_all(format!("{l}\n").as_bytes()).expect("write");
            want.push(l);
            n += 1;
            std::thread::sleep(Duration::from_millis(80));
        }
        log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&app)
            .expect("reopen log");
    }
    let last = lines("last", 0..10);
    log.write_all(text(&last).as_bytes()).expect("write");
    want.extend(last);
    wait_exact(&s.server, &want, &shipper);
}

#[test]
fn copytruncate_starts_the_file_over() {
    let s = setup();
    let app = s.logs.join("app.log");
    let shipper = Shipper::start(
        &[
            "--url",
            &s.server.url,
            "--state",
            &path_str(&s.state),
            &path_str(&app),
        ],
        &[],
    );
    let mut writer = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&app)
        .expect("open log");
    let mut want = lines("first", 0..200);
    writer.write_all(text(&want).as_bytes()).expect("write");
    wait_exact(&s.server, &want, &shipper);

    let copytruncate = |to: &str| {
        std::fs::copy(&app, s.logs.join(to)).expect("copy");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&app)
            .expect("open for truncate")
            .set_len(0)
            .expect("truncate");
    };
    // shorter than before: the size shows the truncation
    copytruncate("app.log.1");
    let second = lines("second", 0..50);
    writer.write_all(text(&second).as_bytes()).expect("write");
    want.extend(second);
    wait_exact(&s.server, &want, &shipper);

    // longer than before by the next look: the first bytes show it
    copytruncate("app.log.2");
    let third = lines("third", 0..400);
    writer.write_all(text(&third).as_bytes()).expect("write");
    want.extend(third);
    wait_exact(&s.server, &want, &shipper);
}

#[test]
fn kill9_and_restart_ship_every_line_exactly_once() {
    let s = setup();
    let app = s.logs.join("app.log");
    // small, frequent batches: many ranges in flight to be killed in the middle of
    let mut shipper = Shipper::start(
        &[
            "--url",
            &s.server.url,
            "--state",
            &path_str(&s.state),
            "--batch-bytes",
            "2048",
            "--flush-interval",
            "100ms",
            &path_str(&app),
        ],
        &[],
    );
    let total = 3000;
    let writer = {
        let app = app.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&app)
                .expect("open log");
            for chunk in 0..total / 10 {
                let batch = lines("k9", chunk * 10..chunk * 10 + 10);
                f.write_all(text(&batch).as_bytes()).expect("write");
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    for threshold in [300, 1200, 2100] {
        poll(DEADLINE, "progress before the kill", || {
            (s.server.total("*") >= threshold).then_some(())
        });
        shipper.kill9();
        if threshold == 1200 {
            // stay down a moment: lines pile up
            std::thread::sleep(Duration::from_millis(300));
        }
        shipper.spawn();
    }
    writer.join().expect("writer");
    let want = lines("k9", 0..total);
    wait_exact(&s.server, &want, &shipper);
    assert_still_exact(&s.server, &want, &shipper);
}

#[test]
fn a_crash_after_the_acknowledgment_but_before_the_state_write_ingests_nothing_twice() {
    let s = setup();
    let app = s.logs.join("app.log");
    let mut shipper = Shipper::start(
        &[
            "--url",
            &s.server.url,
            "--state",
            &path_str(&s.state),
            &path_str(&app),
        ],
        &[],
    );
    let mut want = lines("ack", 0..100);
    append(&app, &text(&want));
    wait_exact(&s.server, &want, &shipper);
    let size = std::fs::metadata(&app).expect("log").len();
    poll(DEADLINE, "the offset to be saved", || {
        (state(&s.state)["files"][0]["offset"].as_u64() == Some(size)).then_some(())
    });

    // the next batch: catch the state file while its range is recorded as being sent
    let more = lines("ack", 100..150);
    append(&app, &text(&more));
    want.extend(more);
    let end = std::fs::metadata(&app).expect("log").len();
    let in_flight = poll(DEADLINE, "the batch's range in the state file", || {
        let bytes = std::fs::read(&s.state).ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        let sending = &v["files"][0]["sending"];
        (sending["start"].as_u64() == Some(size) && sending["end"].as_u64() == Some(end))
            .then_some(bytes)
    });
    wait_exact(&s.server, &want, &shipper);
    poll(DEADLINE, "the acknowledged offset to be saved", || {
        (state(&s.state)["files"][0]["offset"].as_u64() == Some(end)).then_some(())
    });

    // crash, and come back with the state as it was before the acknowledgment was saved
    shipper.kill9();
    std::fs::write(&s.state, &in_flight).expect("restore the state");
    shipper.spawn();
    let after = lines("ack", 150..200);
    append(&app, &text(&after));
    want.extend(after);
    wait_exact(&s.server, &want, &shipper);
    let status = shipper.stop();
    assert!(status.success(), "{status:?}");
    assert_still_exact(&s.server, &want, &shipper);
}

/// A TCP proxy in front of the server: the shipper keeps one URL while the server behind it
/// dies and restarts on another port.
struct Proxy {
    addr: SocketAddr,
    upstream: Arc<Mutex<Option<SocketAddr>>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let target = Arc::new(Mutex::new(Some(upstream)));
        let t = target.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let up = t.lock().ok().and_then(|u| *u);
                let Some(up) = up else {
                    drop(client);
                    continue;
                };
                match TcpStream::connect(up) {
                    Ok(server) => pipe(client, server),
                    Err(_) => drop(client),
                }
            }
        });
        Proxy {
            addr,
            upstream: target,
        }
    }

    fn point_to(&self, upstream: Option<SocketAddr>) {
        *self.upstream.lock().expect("proxy lock") = upstream;
    }
}

fn pipe(a: TcpStream, b: TcpStream) {
    for (mut from, mut to) in [
        (a.try_clone(), b.try_clone()),
        (b.try_clone(), a.try_clone()),
    ]
    .into_iter()
    .filter_map(|(x, y)| Some((x.ok()?, y.ok()?)))
    {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = from.shutdown(std::net::Shutdown::Both);
            let _ = to.shutdown(std::net::Shutdown::Both);
        });
    }
}

fn socket_addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("server address")
}

#[test]
fn lines_written_while_the_server_is_down_arrive_once_it_is_back_even_across_a_kill9() {
    let mut s = setup();
    let proxy = Proxy::start(socket_addr(&s.server.url));
    let app = s.logs.join("app.log");
    let mut shipper = Shipper::start(
        &[
            "--url",
            &format!("http://{}", proxy.addr),
            "--state",
            &path_str(&s.state),
            &path_str(&app),
        ],
        &[],
    );
    let mut want = lines("down", 0..100);
    append(&app, &text(&want));
    wait_exact(&s.server, &want, &shipper);

    s.server.kill9();
    proxy.point_to(None);
    for round in 1..5 {
        let more = lines("down", round * 100..round * 100 + 50);
        append(&app, &text(&more));
        want.extend(more);
        std::thread::sleep(Duration::from_millis(250));
    }
    poll(DEADLINE, "the shipper to report retries", || {
        shipper.log().contains("retrying").then_some(())
    });
    // the shipper dies too while its batch cannot be delivered (a laptop offline, rebooted):
    // that batch was not acknowledged, so the next start must send it
    shipper.kill9();
    let more = lines("down", 500..550);
    append(&app, &text(&more));
    want.extend(more);
    shipper.spawn();
    s.server.spawn();
    proxy.point_to(Some(socket_addr(&s.server.url)));
    let last = lines("back", 0..20);
    append(&app, &text(&last));
    want.extend(last);
    wait_exact(&s.server, &want, &shipper);
}

/// What the shipper should make of a file of multi-line records, given the maximum record
/// size: continuation lines that do not fit start a new record.
fn expected_records(records: &[Vec<String>], max: usize) -> Vec<String> {
    let mut out = Vec::new();
    for lines in records {
        let mut cur = lines[0].clone();
        for l in &lines[1..] {
            if cur.len() + 1 + l.len() <= max {
                cur.push('\n');
                cur.push_str(l);
            } else {
                out.push(std::mem::replace(&mut cur, l.clone()));
            }
        }
        out.push(cur);
    }
    out
}

#[test]
fn multiline_stack_traces_become_single_events() {
    let s = setup();
    let app = s.logs.join("app.log");
    let max = 600;
    let shipper = Shipper::start(
        &[
            "--url",
            &s.server.url,
            "--state",
            &path_str(&s.state),
            "--multiline-start",
            r"^\d{4}-\d{2}-\d{2} ",
            "--multiline-max-bytes",
            &max.to_string(),
            &path_str(&app),
        ],
        &[],
    );
    let mut records: Vec<Vec<String>> = Vec::new();
    for i in 0..30 {
        let mut r = vec![format!(
            "2026-11-27 10:00:{:02} INFO request {i:05} done",
            i % 60
        )];
        if i % 3 == 1 {
            r[0] = format!("2026-11-27 10:00:{:02} ERROR request {i:05} failed", i % 60);
            r.push(format!(
                "java.lang.IllegalStateException: payment {i} declined"
            ));
            for depth in 0..(i % 7 + 1) {
                r.push(format!(
                    "\tat com.acme.checkout.Step{depth}.run(Step{depth}.java:{})",
                    10 + depth
                ));
            }
            r.push(format!("Caused by: java.io.IOException: reset {i}"));
            r.push("\t... 3 more".into());
        }
        records.push(r);
    }
    // a trace larger than --multiline-max-bytes is cut into several events
    let mut long = vec!["2026-11-27 10:01:00 ERROR a very deep stack".to_string()];
    for depth in 0..40 {
        long.push(format!(
            "\tat com.acme.deep.Frame{depth:02}.call(Frame.java:{depth})"
        ));
    }
    records.push(long);
    // the last record has no successor: the timeout sends it
    records.push(vec![
        "2026-11-27 10:02:00 ERROR last one".into(),
        "java.lang.RuntimeException: the end".into(),
        "\tat com.acme.Main.main(Main.java:1)".into(),
    ]);

    // written in pieces, some records split between two writes
    let all: Vec<String> = records.iter().flatten().cloned().collect();
    for chunk in all.chunks(7) {
        append(&app, &text(chunk));
        std::thread::sleep(Duration::from_millis(50));
    }
    let want = expected_records(&records, max);
    assert!(
        want.len() > records.len(),
        "the long trace is cut in the expectation"
    );
    assert!(want.iter().all(|r| r.len() <= max));
    wait_exact(&s.server, &want, &shipper);
}

#[test]
fn files_created_after_the_start_and_globs_are_followed() {
    let s = setup();
    let xdg = s.dir.path().join("xdg-state");
    let glob = format!("{}/*.log", path_str(&s.logs));
    let later = s.logs.join("later.txt");
    let shipper = Shipper::start(
        &["--url", &s.server.url, &glob, &path_str(&later)],
        &[("XDG_STATE_HOME", path_str(&xdg).as_str())],
    );
    // the default state file appears under $XDG_STATE_HOME/sawmill/
    let state_file = poll(DEADLINE, "the default state file", || {
        std::fs::read_dir(xdg.join("sawmill"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                name.is_some_and(|n| n.starts_with("follow-") && n.ends_with(".json"))
            })
    });

    let mut want = lines("a", 0..30);
    append(&s.logs.join("a.log"), &text(&want));
    append(&s.logs.join("ignored.txt"), "not followed\n");
    let b = lines("b", 0..30);
    append(&s.logs.join("b.log"), &text(&b));
    want.extend(b);
    wait_exact(&s.server, &want, &shipper);

    let late = lines("later", 0..30);
    append(&later, &text(&late));
    want.extend(late);
    wait_exact(&s.server, &want, &shipper);

    // a file that disappears for a while and comes back with new content
    std::fs::remove_file(s.logs.join("a.log")).expect("remove");
    std::thread::sleep(Duration::from_millis(600));
    let again = lines("a-again", 0..30);
    append(&s.logs.join("a.log"), &text(&again));
    want.extend(again);
    wait_exact(&s.server, &want, &shipper);

    let saved = state(&state_file);
    let paths: Vec<&str> = saved["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    for name in ["b.log", "later.txt"] {
        assert!(paths.iter().any(|p| p.ends_with(name)), "{name} in {saved}");
    }
}

#[test]
fn bad_options_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = path_str(&dir.path().join("s.json"));
    for (args, needle) in [
        (
            vec!["--multiline-start", "(unclosed", "x.log"],
            "multiline-start",
        ),
        (vec!["-"], "standard input"),
    ] {
        let mut all = vec!["ingest", "--follow", "--state", state.as_str()];
        all.extend(args);
        let out = common::run_sawmill(&all, None, Duration::from_secs(30));
        assert!(!out.status.success(), "{all:?} accepted");
        assert!(out.stderr.contains(needle), "{all:?}: {}", out.stderr);
    }
    // follow-only options need --follow
    let out = common::run_sawmill(
        &["ingest", "--state", &state, "x.log"],
        None,
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    assert!(out.stderr.contains("--follow"), "{}", out.stderr);
}
