//! `sawmill ingest`: ships NDJSON or plain-text files to a server in compressed batches.
//!
//! Each file is read line by line and cut into batches of about `--batch-bytes`; a batch is
//! sent zstd-compressed with an `Idempotency-Key`, so a retry after a lost answer never
//! ingests it twice. Connection errors, 408, 409, 429 and 5xx answers are retried with
//! exponential backoff (honouring `Retry-After`); other errors stop the command with the
//! server's message. With `--follow` the files are tailed until SIGINT or SIGTERM instead
//! (see [`crate::follow`]).

use crate::client::{Client, IngestAnswer, IngestBatch, Retry, ServerArgs};
use crate::follow::{FollowArgs, Format};
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
        let client = Client::new(&args.server)?;
        return crate::follow::run(
            client,
            args.follow,
            crate::follow::Shared {
                source: args.source,
                format,
                batch_bytes: args.batch_bytes.max(1),
            },
            &args.files,
        )
        .await;
    }
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
    let mut tasks: JoinSet<anyhow::Result<(u64, IngestAnswer)>> = JoinSet::new();
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

fn account(file: &str, totals: &mut Totals, (first_line, answer): (u64, IngestAnswer)) {
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
) -> anyhow::Result<(u64, IngestAnswer)> {
    let body = zstd::bulk::compress(&batch.body, 3).context("cannot compress a batch")?;
    let request = IngestBatch {
        body: &body,
        content_type: if batch.text {
            "text/plain"
        } else {
            "application/x-ndjson"
        },
        source: batch.source.as_deref(),
        key: &batch.key,
    };
    let retry = Retry {
        max_attempts: Some(max_attempts.max(1)),
        max_delay: Duration::from_secs(30),
    };
    let first_line = batch.first_line;
    match client
        .send_ingest(&request, retry, |_, message, delay| {
            eprintln!(
                "batch starting at line {first_line}: {message}; retrying in {:.1}s",
                delay.as_secs_f64()
            );
        })
        .await
    {
        Ok(answer) => Ok((first_line, answer)),
        Err(e) => bail!("batch starting at line {first_line} {e}"),
    }
}
