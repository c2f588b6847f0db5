//! `sawmill ingest`: ships NDJSON or plain-text files to a server in compressed batches.
//!
//! Each file is read line by line and cut into batches of about `--batch-bytes`; a batch is
//! sent zstd-compressed with an `Idempotency-Key`, so a retry after a lost answer never
//! ingests it twice. Connection errors, 429 and 5xx answers are retried with exponential
//! backoff (honouring `Retry-After`); other errors stop the command with the server's message.

use crate::client::{backoff, error_message, retry_after, Client, ServerArgs};
use anyhow::{bail, Context};
use rand::Rng;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Sets `source` on events that carry none (default: the file name).
    #[arg(long)]
    source: Option<String>,
    /// Treat input as plain text (one event per line) or NDJSON; default: detected per file.
    #[arg(long, value_parser = ["auto", "ndjson", "text"], default_value = "auto")]
    format: String,
    /// Uncompressed bytes per batch.
    #[arg(long, default_value_t = 4 << 20)]
    batch_bytes: usize,
    /// Batches in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Attempts per batch before giving up.
    #[arg(long, default_value_t = 10)]
    max_attempts: u32,
    /// Files to ship; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<String>,
}

/// What the server answered for one batch.
#[derive(serde::Deserialize)]
struct Answer {
    accepted: u64,
    rejected: u64,
    #[serde(default)]
    errors: Vec<LineError>,
}

#[derive(serde::Deserialize)]
struct LineError {
    line: u64,
    error: String,
}

struct Batch {
    body: Vec<u8>,
    first_line: u64,
    key: String,
    text: bool,
    source: Option<String>,
}

#[derive(Default)]
struct Totals {
    accepted: u64,
    rejected: u64,
    bytes: u64,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let client = Arc::new(Client::new(&args.server)?);
    let run_id: u64 = rand::thread_rng().gen();
    let mut totals = Totals::default();
    let started = Instant::now();
    for (file_no, file) in args.files.iter().enumerate() {
        let t = ship_file(&client, &args, file, format!("{run_id:016x}-{file_no}")).await?;
        totals.accepted += t.accepted;
        totals.rejected += t.rejected;
        totals.bytes += t.bytes;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "ingested {} events ({} rejected), {:.1} MB in {:.1}s ({:.1} MB/s)",
        totals.accepted,
        totals.rejected,
        totals.bytes as f64 / 1e6,
        secs,
        totals.bytes as f64 / 1e6 / secs.max(1e-9)
    );
    if totals.rejected > 0 {
        bail!("{} lines were rejected (see above)", totals.rejected);
    }
    Ok(())
}

async fn ship_file(
    client: &Arc<Client>,
    args: &IngestArgs,
    file: &str,
    key_prefix: String,
) -> anyhow::Result<Totals> {
    let (reader, size): (Box<dyn Read + Send>, Option<u64>) = if file == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let source = args.source.clone().or_else(|| {
        (file != "-").then(|| {
            PathBuf::from(file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.to_string())
        })
    });
    let mut lines = BufReader::with_capacity(1 << 20, reader);
    let mut tasks: JoinSet<anyhow::Result<(u64, Answer)>> = JoinSet::new();
    let mut totals = Totals::default();
    let mut text: Option<bool> = match args.format.as_str() {
        "ndjson" => Some(false),
        "text" => Some(true),
        _ => None,
    };
    let progress =
        std::io::stderr().is_terminal() || std::env::var_os("SAWMILL_PROGRESS").is_some();
    let mut last_progress = Instant::now();
    let started = Instant::now();
    let mut line_no = 0u64;
    let mut batch_no = 0u64;
    let mut buf = Vec::with_capacity(args.batch_bytes + 4096);
    let mut first_line = 1u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = lines
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {file}"))?;
        if n > 0 {
            line_no += 1;
            totals.bytes += n as u64;
            if text.is_none() {
                let trimmed = line.iter().position(|b| !b.is_ascii_whitespace());
                if let Some(i) = trimmed {
                    text = Some(line[i] != b'{');
                }
            }
            buf.extend_from_slice(&line);
            if line.last() != Some(&b'\n') {
                buf.push(b'\n');
            }
        }
        let full = buf.len() >= args.batch_bytes;
        if (full || n == 0) && !buf.is_empty() {
            let batch = Batch {
                body: std::mem::take(&mut buf),
                first_line,
                key: format!("{key_prefix}-{batch_no}"),
                text: text.unwrap_or(true),
                source: source.clone(),
            };
            batch_no += 1;
            first_line = line_no + 1;
            while tasks.len() >= args.concurrency.max(1) {
                if let Some(done) = tasks.join_next().await {
                    account(file, &mut totals, done??);
                }
            }
            let client = client.clone();
            let attempts = args.max_attempts;
            tasks.spawn(async move { send_batch(&client, batch, attempts).await });
        }
        if progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let mb = totals.bytes as f64 / 1e6;
            let pct = size
                .filter(|&s| s > 0)
                .map(|s| format!(" ({:.0}%)", totals.bytes as f64 * 100.0 / s as f64))
                .unwrap_or_default();
            eprint!(
                "\r{file}: {mb:.1} MB{pct}, {line_no} lines, {:.1} MB/s   ",
                mb / started.elapsed().as_secs_f64().max(1e-9)
            );
            let _ = std::io::stderr().flush();
        }
        if n == 0 {
            break;
        }
    }
    while let Some(done) = tasks.join_next().await {
        account(file, &mut totals, done??);
    }
    if progress {
        eprintln!();
    }
    Ok(totals)
}

fn account(file: &str, totals: &mut Totals, (first_line, answer): (u64, Answer)) {
    totals.accepted += answer.accepted;
    totals.rejected += answer.rejected;
    for e in &answer.errors {
        eprintln!("{file}:{}: {}", first_line + e.line - 1, e.error);
    }
    if answer.rejected as usize > answer.errors.len() {
        eprintln!(
            "{file}: {} more rejected lines in the batch starting at line {first_line}",
            answer.rejected as usize - answer.errors.len()
        );
    }
}

async fn send_batch(
    client: &Client,
    batch: Batch,
    max_attempts: u32,
) -> anyhow::Result<(u64, Answer)> {
    let body = zstd::bulk::compress(&batch.body, 3).context("cannot compress a batch")?;
    let content_type = if batch.text {
        "text/plain"
    } else {
        "application/x-ndjson"
    };
    let mut url = client.url("/api/v1/ingest");
    if let Some(s) = &batch.source {
        url.push_str("?source=");
        url.push_str(&urlencode(s));
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let req = client
            .auth(client.http.post(&url))
            .header("content-type", content_type)
            .header("content-encoding", "zstd")
            .header("idempotency-key", &batch.key)
            .body(body.clone());
        let (retryable, message, wait) = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let wait = retry_after(&resp);
                let text = resp.text().await.unwrap_or_default();
                if status.is_success() {
                    let answer: Answer = serde_json::from_str(&text)
                        .with_context(|| format!("unexpected answer from the server: {text}"))?;
                    return Ok((batch.first_line, answer));
                }
                let retryable =
                    status.as_u16() == 429 || status.as_u16() == 409 || status.is_server_error();
                (
                    retryable,
                    format!("{status}: {}", error_message(&text)),
                    wait,
                )
            }
            Err(e) => (true, format!("{e}"), None),
        };
        if !retryable || attempt >= max_attempts {
            bail!(
                "batch starting at line {} failed after {attempt} attempt(s): {message}",
                batch.first_line
            );
        }
        let delay = backoff(attempt, wait);
        eprintln!(
            "batch starting at line {}: {message}; retrying in {:.1}s",
            batch.first_line,
            delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
