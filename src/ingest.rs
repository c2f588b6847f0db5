//! `sawmill ingest`: ships NDJSON or plain-text files to a server in compressed batches.
//!
//! Each file is read line by line and cut into batches of about `--batch-bytes`; a batch is
//! sent zstd-compressed with an `Idempotency-Key`, so a retry after a lost answer never
//! ingests it twice. Connection errors, 408, 409, 429 and 5xx answers are retried with
//! exponential backoff (honouring `Retry-After`); other errors stop the command with the
//! server's message. With `--follow` the files are tailed until SIGINT or SIGTERM instead
//! (see [`crate::follow`] and the `sawmill-follow` crate).

use crate::client::ServerArgs;
use crate::follow::{FollowArgs, Shared};
use anyhow::{bail, Context};
use rand::Rng;
use sawmill_client::{Client, Encoding, IngestAnswer, IngestBatch, Retry};
use sawmill_core::{BodyFormat, RetryPolicy};
use sawmill_follow::Format;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Sets `source` on events that carry none (default: the file name; with --follow, the
    /// file's path).
    #[arg(long)]
    source: Option<String>,
    /// Treat input as plain text (one event per line) or NDJSON; default: detected per file
    /// (NDJSON when its first non-blank character is `{`).
    #[arg(long, value_parser = ["auto", "ndjson", "text"], default_value = "auto")]
    format: String,
    /// Uncompressed bytes per batch.
    #[arg(long, default_value_t = 4 << 20)]
    batch_bytes: usize,
    /// Batches in flight at once (not with --follow, which sends one batch per file at a
    /// time).
    #[arg(long, default_value_t = 4, conflicts_with = "follow")]
    concurrency: usize,
    /// Attempts per batch before giving up (not with --follow, which retries until the
    /// server answers).
    #[arg(long, default_value_t = 10, conflicts_with = "follow")]
    max_attempts: u32,
    /// Files to ship; `-` reads standard input. With --follow, files that do not exist yet
    /// and quoted glob patterns (`'/var/log/app/*.log'`) are watched too.
    #[arg(required = true)]
    files: Vec<String>,
    #[command(flatten)]
    follow: FollowArgs,
}

/// One batch of a file: its lines, where they start, and its key.
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
    if args.follow.follow {
        let format = match args.format.as_str() {
            "ndjson" => Some(Format::Ndjson),
            "text" => Some(Format::Text),
            _ => None,
        };
        let shared = Shared {
            source: args.source,
            format,
            batch_bytes: args.batch_bytes.max(1),
        };
        return crate::follow::run(&args.server, args.follow, shared, &args.files).await;
    }
    let client = Arc::new(args.server.client()?);
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

/// Standard input or the file, and its size when known.
fn open(file: &str) -> anyhow::Result<(Box<dyn Read + Send>, Option<u64>)> {
    if file == "-" {
        return Ok((Box::new(std::io::stdin()), None));
    }
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?;
    let size = f.metadata().ok().map(|m| m.len());
    Ok((Box::new(f), size))
}

/// Progress on standard error, at most once a second (when it is a terminal, or with
/// `SAWMILL_PROGRESS`).
struct Progress {
    enabled: bool,
    size: Option<u64>,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(size: Option<u64>) -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal()
                || std::env::var_os("SAWMILL_PROGRESS").is_some(),
            size,
            started: Instant::now(),
            last: Instant::now(),
        }
    }

    fn show(&mut self, file: &str, bytes: u64, lines: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        let mb = bytes as f64 / 1e6;
        let pct = self
            .size
            .filter(|&s| s > 0)
            .map(|s| format!(" ({:.0}%)", bytes as f64 * 100.0 / s as f64))
            .unwrap_or_default();
        eprint!(
            "\r{file}: {mb:.1} MB{pct}, {lines} lines, {:.1} MB/s   ",
            mb / self.started.elapsed().as_secs_f64().max(1e-9)
        );
        let _ = std::io::stderr().flush();
    }

    fn done(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}

/// Sends batches, at most `concurrency` at once, and adds up the answers.
struct Sender {
    client: Arc<Client>,
    concurrency: usize,
    max_attempts: u32,
    tasks: JoinSet<anyhow::Result<(u64, IngestAnswer)>>,
}

impl Sender {
    /// Starts sending `batch`, first waiting for a slot.
    async fn submit(
        &mut self,
        file: &str,
        totals: &mut Totals,
        batch: Batch,
    ) -> anyhow::Result<()> {
        while self.tasks.len() >= self.concurrency {
            if let Some(done) = self.tasks.join_next().await {
                account(file, totals, done??);
            }
        }
        let client = self.client.clone();
        let attempts = self.max_attempts;
        self.tasks
            .spawn(async move { send_batch(&client, batch, attempts).await });
        Ok(())
    }

    /// Waits for every batch.
    async fn finish(mut self, file: &str, totals: &mut Totals) -> anyhow::Result<()> {
        while let Some(done) = self.tasks.join_next().await {
            account(file, totals, done??);
        }
        Ok(())
    }
}

async fn ship_file(
    client: &Arc<Client>,
    args: &IngestArgs,
    file: &str,
    key_prefix: String,
) -> anyhow::Result<Totals> {
    let (reader, size) = open(file)?;
    let source = args.source.clone().or_else(|| {
        (file != "-").then(|| {
            PathBuf::from(file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.to_string())
        })
    });
    let mut lines = BufReader::with_capacity(1 << 20, reader);
    let mut sender = Sender {
        client: client.clone(),
        concurrency: args.concurrency.max(1),
        max_attempts: args.max_attempts,
        tasks: JoinSet::new(),
    };
    let mut totals = Totals::default();
    let mut text: Option<bool> = match args.format.as_str() {
        "ndjson" => Some(false),
        "text" => Some(true),
        _ => None,
    };
    let mut progress = Progress::new(size);
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
                text = detect_text(&line);
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
            sender.submit(file, &mut totals, batch).await?;
        }
        progress.show(file, totals.bytes, line_no);
        if n == 0 {
            break;
        }
    }
    sender.finish(file, &mut totals).await?;
    progress.done();
    Ok(totals)
}

/// Whether a file whose first non-blank line is `line` is plain text (NDJSON when that line
/// starts with `{`); `None` for a blank line.
fn detect_text(line: &[u8]) -> Option<bool> {
    line.iter()
        .find(|b| !b.is_ascii_whitespace())
        .map(|&b| b != b'{')
}

fn account(file: &str, totals: &mut Totals, (first_line, answer): (u64, IngestAnswer)) {
    totals.accepted += answer.accepted;
    totals.rejected += answer.rejected;
    for e in &answer.errors {
        eprintln!(
            "{file}:{}: {}",
            (first_line + e.line as u64).saturating_sub(1),
            e.error
        );
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
) -> anyhow::Result<(u64, IngestAnswer)> {
    let first_line = batch.first_line;
    let body = tokio::task::spawn_blocking(move || Encoding::Zstd.compress_owned(batch.body))
        .await
        .context("compressing a batch failed")?
        .with_context(|| format!("cannot compress the batch starting at line {first_line}"))?;
    let request = IngestBatch {
        body,
        encoding: Encoding::Zstd,
        format: if batch.text {
            BodyFormat::Text
        } else {
            BodyFormat::Ndjson
        },
        key: batch.key,
        source: batch.source,
    };
    let retry = Retry::forever(RetryPolicy::DEFAULT).attempts(max_attempts);
    let answer = client
        .send_ingest(&request, retry, |r| {
            eprintln!(
                "batch starting at line {first_line}: {}; retrying in {:.1}s",
                sawmill_core::error::report(r.error),
                r.wait.as_secs_f64()
            );
        })
        .await
        .with_context(|| format!("batch starting at line {first_line}"))?;
    Ok((first_line, answer))
}
