//! `sawmill ingest --follow` against a release server: how fast a followed file reaches the
//! index, beside a one-shot `sawmill ingest` of the same file in the same run.
//!
//! `cargo bench --bench follow -- --events 1000000`
//!
//! The corpus (the ingest benchmark's generator and seed, NDJSON) is shipped three ways, each
//! to a fresh release server (`refresh_interval = "1s"`), the clock running from the start of
//! the shipper (or of the writer) until a search counts every event:
//! 1. `sawmill ingest FILE` (the reference: 4 MiB batches, 4 in flight, exits at the end);
//! 2. `sawmill ingest --follow FILE` on the complete file (a backlog being caught up);
//! 3. `sawmill ingest --follow FILE` while another thread appends the corpus to the file as
//!    fast as it can, in 64 KiB writes (a busy log being tailed).
//!
//! The shipper's CPU time is read from `/proc` before it is stopped.
//!
//! Options: `--events N`.

#[path = "support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{arg, corpus, count_all, pid_cpu_seconds, root, Server};

const CONFIG: &str = "[index]\nrefresh_interval = \"1s\"\nhot_retention = \"3650d\"\n";

/// Polls the server until it counts `events`; returns the seconds since `started`.
fn wait_for(url: &str, events: u64, started: Instant) -> f64 {
    let deadline = started + Duration::from_secs(600);
    loop {
        if count_all(url) >= events {
            return started.elapsed().as_secs_f64();
        }
        assert!(
            Instant::now() < deadline,
            "events did not arrive in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn shipper(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sawmill"));
    cmd.arg("ingest")
        .arg("--url")
        .arg(url)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn stop(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn main() {
    let events: u64 = arg("events", "1000000").parse().expect("--events");
    let path = corpus(events, 7, "2026-11-20T00:00:00Z", "50");
    let mb = std::fs::metadata(&path).expect("corpus").len() as f64 / 1e6;
    let dir = root().join("target").join("bench-data").join("follow");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create bench dir");
    println!("corpus: {} ({events} events, {mb:.1} MB)", path.display());
    let report = |label: &str, secs: f64, cpu: f64| {
        println!(
            "{label:>34}: {secs:6.2} s to searchable, {:5.1} MB/s, {:7.0} events/s, shipper CPU {cpu:.2} s ({:.1} MB per CPU-s)",
            mb / secs,
            events as f64 / secs,
            mb / cpu
        );
    };

    // 1. one-shot
    {
        let server = Server::start(&dir.join("server-once"), CONFIG);
        let started = Instant::now();
        let mut child = shipper(&server.url, &[path.to_str().expect("utf-8 path")])
            .spawn()
            .expect("run sawmill ingest");
        let pid = child.id();
        let mut cpu = 0.0;
        while child.try_wait().expect("wait").is_none() {
            cpu = pid_cpu_seconds(pid);
            std::thread::sleep(Duration::from_millis(20));
        }
        let secs = wait_for(&server.url, events, started);
        report("sawmill ingest FILE (reference)", secs, cpu);
        server.stop();
    }

    // 2. follow a complete file
    {
        let server = Server::start(&dir.join("server-follow"), CONFIG);
        let state = dir.join("follow-state.json");
        let started = Instant::now();
        let mut child = shipper(
            &server.url,
            &[
                "--follow",
                "--state",
                state.to_str().expect("utf-8 path"),
                path.to_str().expect("utf-8 path"),
            ],
        )
        .spawn()
        .expect("run sawmill ingest --follow");
        let secs = wait_for(&server.url, events, started);
        let cpu = pid_cpu_seconds(child.id());
        stop(&mut child);
        report("--follow, complete file", secs, cpu);
        server.stop();
    }

    // 3. follow a file being written
    {
        let server = Server::start(&dir.join("server-live"), CONFIG);
        let state = dir.join("live-state.json");
        let live = dir.join("live.log");
        std::fs::write(&live, b"").expect("create live file");
        let mut child = shipper(
            &server.url,
            &[
                "--follow",
                "--state",
                state.to_str().expect("utf-8 path"),
                live.to_str().expect("utf-8 path"),
            ],
        )
        .spawn()
        .expect("run sawmill ingest --follow");
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        let writer = {
            let (src, dst) = (path.clone(), live.clone());
            std::thread::spawn(move || append_all(&src, &dst))
        };
        let secs = wait_for(&server.url, events, started);
        let wrote = writer.join().expect("writer thread");
        let cpu = pid_cpu_seconds(child.id());
        stop(&mut child);
        println!(
            "{:>34}  (the writer took {wrote:.2} s to append the corpus)",
            ""
        );
        report("--follow, file being appended", secs, cpu);
        server.stop();
    }
}

/// Appends `src` to `dst` in 64 KiB writes as fast as possible; returns the seconds taken.
fn append_all(src: &Path, dst: &Path) -> f64 {
    let started = Instant::now();
    let mut input = std::fs::File::open(src).expect("open corpus");
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .open(dst)
        .expect("open live file");
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = input.read(&mut buf).expect("read corpus");
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).expect("append");
    }
    started.elapsed().as_secs_f64()
}
