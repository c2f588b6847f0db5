//! `sawmill ingest --follow`: tails files like `tail -F` and ships their lines until SIGINT
//! or SIGTERM, exactly once across rotation, truncation and restarts of the shipper.
//!
//! - [`glob`]: the watched paths (literal or glob), expanded on every poll;
//! - [`watch`]: the set of followed files, rotation and truncation;
//! - [`tail`]: one file: reading, cutting into lines or multi-line records, batching;
//! - [`state`]: the offsets file, written atomically.
//!
//! Exactly once: a batch is a byte range `[start, end)` of one file and its
//! `Idempotency-Key` is `sawmill-follow-<file id>-<start>-<end>`. Before a batch is sent its
//! range is written to the state file; once the server acknowledges it, the file's offset
//! moves to `end` (written within a second, or with the next range). After a crash the
//! recorded range is read and sent again whole, under the same key, so the server (which
//! remembers keys for 24 hours) ingests it at most once, and nothing after the acknowledged
//! offset is skipped.

mod glob;
mod state;
mod tail;
mod watch;

use crate::client::{Client, IngestAnswer, IngestBatch, Retry, SendError};
use anyhow::{anyhow, bail, Context};
use state::Span;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tail::Outgoing;
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinSet;
use watch::Follower;

/// Offsets acknowledged since the last write are written at least this often.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// On SIGINT/SIGTERM, batches in flight get this long to be acknowledged.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Longest wait between two attempts to reach the server.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// The follow mode's options (flattened into `sawmill ingest`).
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Following files (--follow)")]
pub struct FollowArgs {
    /// Keep running until SIGINT or SIGTERM, shipping lines as they are appended, across
    /// rotation (rename or copytruncate) and restarts.
    #[arg(long)]
    pub follow: bool,
    /// Where the offsets are kept [default: $XDG_STATE_HOME/sawmill/follow-<hash of the
    /// paths>.json, or ~/.local/state/sawmill/…].
    #[arg(long, value_name = "FILE", requires = "follow")]
    pub state: Option<PathBuf>,
    /// Where to start in files that already exist at the first start (no saved offset);
    /// files created later are always read from their beginning.
    #[arg(long, value_parser = ["beginning", "end"], default_value = "beginning", requires = "follow")]
    pub start_at: String,
    /// Longest a line waits in a batch that is not full before it is sent.
    #[arg(long, value_parser = sawmill_core::parse_duration, default_value = "1s", value_name = "DURATION", requires = "follow")]
    pub flush_interval: Duration,
    /// How often files are checked for new lines, new files, rotation and truncation.
    #[arg(long, value_parser = sawmill_core::parse_duration, default_value = "250ms", value_name = "DURATION", requires = "follow")]
    pub poll_interval: Duration,
    /// A last line without its newline is sent once the file has been idle this long
    /// (`0s`: wait for the newline however long it takes).
    #[arg(long, value_parser = sawmill_core::parse_duration, default_value = "5s", value_name = "DURATION", requires = "follow")]
    pub partial_line_timeout: Duration,
    /// Longer lines are cut to this many bytes with a warning (NDJSON lines, which a cut
    /// would break, are skipped with a warning).
    #[arg(long, default_value_t = 256 << 10, value_name = "BYTES", requires = "follow")]
    pub max_line_bytes: usize,
    /// A line that does not match this regular expression continues the previous record
    /// (stack traces), e.g. '^\d{4}-\d{2}-\d{2}'; text files only.
    #[arg(long, value_name = "REGEX", requires = "follow")]
    pub multiline_start: Option<String>,
    /// A multi-line record is sent once nothing has been appended for this long.
    #[arg(long, value_parser = sawmill_core::parse_duration, default_value = "1s", value_name = "DURATION", requires = "multiline_start")]
    pub multiline_timeout: Duration,
    /// Largest multi-line record; a continuation line that does not fit starts a new record.
    #[arg(long, default_value_t = 256 << 10, value_name = "BYTES", requires = "multiline_start")]
    pub multiline_max_bytes: usize,
    /// A file renamed away or deleted is still read until it has been idle this long (a
    /// program may write a few more lines before it reopens its log).
    #[arg(long, value_parser = sawmill_core::parse_duration, default_value = "5s", value_name = "DURATION", requires = "follow")]
    pub rotate_wait: Duration,
}

/// The `sawmill ingest` options that apply to both modes.
pub struct Shared {
    pub source: Option<String>,
    pub format: Option<Format>,
    pub batch_bytes: usize,
}

/// How a file's lines are sent.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line.
    Ndjson,
    /// One event per line (or per multi-line record): the line is the message.
    Text,
}

/// Joining lines into records.
#[derive(Debug)]
pub struct Multiline {
    pub start: regex::bytes::Regex,
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// Everything the follow mode needs to know, checked.
#[derive(Debug)]
pub struct Options {
    pub source: Option<String>,
    pub format: Option<Format>,
    pub batch_bytes: usize,
    pub flush_interval: Duration,
    pub poll_interval: Duration,
    /// `None`: a last line without a newline waits for it.
    pub partial_line_timeout: Option<Duration>,
    pub max_line_bytes: usize,
    pub multiline: Option<Multiline>,
    pub rotate_wait: Duration,
    pub start_at_end: bool,
}

impl Options {
    fn new(args: &FollowArgs, shared: Shared) -> anyhow::Result<Options> {
        if args.max_line_bytes == 0 {
            bail!("--max-line-bytes must be at least 1");
        }
        if args.poll_interval < Duration::from_millis(10) {
            bail!("--poll-interval must be at least 10ms");
        }
        let multiline = match &args.multiline_start {
            None => None,
            Some(re) => {
                if args.multiline_max_bytes == 0 {
                    bail!("--multiline-max-bytes must be at least 1");
                }
                let start = regex::bytes::Regex::new(re).with_context(|| {
                    format!("--multiline-start {re:?} is not a regular expression")
                })?;
                Some(Multiline {
                    start,
                    max_bytes: args.multiline_max_bytes,
                    timeout: args.multiline_timeout,
                })
            }
        };
        Ok(Options {
            source: shared.source,
            format: shared.format,
            batch_bytes: shared.batch_bytes.max(1),
            flush_interval: args.flush_interval,
            poll_interval: args.poll_interval,
            partial_line_timeout: Some(args.partial_line_timeout).filter(|d| !d.is_zero()),
            max_line_bytes: args.max_line_bytes,
            multiline,
            rotate_wait: args.rotate_wait,
            start_at_end: args.start_at == "end",
        })
    }

    /// The defaults, for unit tests.
    #[cfg(test)]
    pub fn for_tests() -> Options {
        Options {
            source: None,
            format: None,
            batch_bytes: 1 << 20,
            flush_interval: Duration::from_secs(1),
            poll_interval: Duration::from_millis(250),
            partial_line_timeout: Some(Duration::from_secs(5)),
            max_line_bytes: 256 << 10,
            multiline: None,
            rotate_wait: Duration::from_secs(5),
            start_at_end: false,
        }
    }
}

/// One batch's fate.
struct Delivered {
    file: u64,
    span: Span,
    path: String,
    offsets: Vec<u64>,
    result: Result<IngestAnswer, SendError>,
}

#[derive(Default)]
struct Totals {
    accepted: u64,
    rejected: u64,
}

/// Follows `files` until SIGINT or SIGTERM.
pub async fn run(
    client: Client,
    args: FollowArgs,
    shared: Shared,
    files: &[String],
) -> anyhow::Result<()> {
    if files.iter().any(|f| f == "-") {
        bail!("--follow reads files, not standard input: name the files to follow");
    }
    let patterns = files
        .iter()
        .map(|f| glob::Pattern::new(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let texts: Vec<String> = patterns.iter().map(|p| p.text.clone()).collect();
    let state_path = match &args.state {
        Some(p) => std::path::absolute(p)
            .with_context(|| format!("cannot make {} an absolute path", p.display()))?,
        None => state::default_path(&texts)?,
    };
    let options = Arc::new(Options::new(&args, shared)?);
    let _lock = state::lock(&state_path)?;
    let saved = state::load(&state_path)?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;
    eprintln!(
        "sawmill ingest: following {} (offsets in {})",
        texts.join(", "),
        state_path.display()
    );
    let o = options.clone();
    let mut follower =
        blocking(move || Follower::start(patterns, saved, &o, Instant::now())).await?;
    save(&mut follower, &state_path).await?;

    let client = Arc::new(client);
    let mut inflight: JoinSet<Delivered> = JoinSet::new();
    let mut unsent: Vec<Outgoing> = Vec::new();
    let mut tick = tokio::time::interval(options.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_save = Instant::now();
    let mut save_failing = false;
    let mut totals = Totals::default();
    let mut outcome: anyhow::Result<()> = Ok(());
    loop {
        let o = options.clone();
        follower = blocking(move || {
            follower.poll(&o, Instant::now());
            follower
        })
        .await?;
        unsent.extend(follower.take_ready(&options, Instant::now()));
        if !unsent.is_empty() || (follower.dirty() && last_save.elapsed() >= SAVE_EVERY) {
            // A batch's range is durable before the batch leaves: that is what lets a
            // restart send it again under the same key.
            match save(&mut follower, &state_path).await {
                Ok(()) => {
                    last_save = Instant::now();
                    if save_failing {
                        eprintln!("sawmill ingest: offsets saved again; sending resumes");
                        save_failing = false;
                    }
                    for batch in unsent.drain(..) {
                        inflight.spawn(deliver(client.clone(), batch));
                    }
                }
                Err(e) => {
                    if !save_failing {
                        eprintln!(
                            "sawmill ingest: {e:#}; nothing is sent until the offsets can be saved"
                        );
                    }
                    save_failing = true;
                }
            }
        }
        tokio::select! {
            _ = tick.tick() => {}
            Some(done) = inflight.join_next() => {
                if let Err(e) = settle(&mut follower, &mut totals, done) {
                    outcome = Err(e);
                    break;
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }

    // Stopping: batches in flight get a moment to be acknowledged; whatever is not is sent
    // again by the next start, under the same keys.
    let grace = tokio::time::sleep(SHUTDOWN_GRACE);
    tokio::pin!(grace);
    while !inflight.is_empty() {
        tokio::select! {
            Some(done) = inflight.join_next() => {
                if let Err(e) = settle(&mut follower, &mut totals, done) {
                    eprintln!("sawmill ingest: {e:#}");
                }
            }
            _ = &mut grace => break,
        }
    }
    inflight.abort_all();
    let saved = save(&mut follower, &state_path).await;
    eprintln!(
        "sawmill ingest: stopped; {} events shipped ({} rejected); offsets in {}",
        totals.accepted,
        totals.rejected,
        state_path.display()
    );
    outcome.and(saved)
}

/// Records what happened to one batch; an error for a batch the server refused for good.
fn settle(
    follower: &mut Follower,
    totals: &mut Totals,
    done: Result<Delivered, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    let d = done.map_err(|e| anyhow!("sending a batch failed: {e}"))?;
    match d.result {
        Ok(answer) => {
            follower.acknowledged(d.file, d.span);
            totals.accepted += answer.accepted;
            totals.rejected += answer.rejected;
            for e in &answer.errors {
                let at = usize::try_from(e.line)
                    .ok()
                    .and_then(|l| l.checked_sub(1))
                    .and_then(|i| d.offsets.get(i));
                match at {
                    Some(offset) => eprintln!(
                        "sawmill ingest: {}: the line at byte {offset} was rejected: {}",
                        d.path, e.error
                    ),
                    None => eprintln!(
                        "sawmill ingest: {} (bytes {}..{}): a line was rejected: {}",
                        d.path, d.span.start, d.span.end, e.error
                    ),
                }
            }
            if answer.rejected > answer.errors.len() as u64 {
                eprintln!(
                    "sawmill ingest: {} (bytes {}..{}): {} more lines were rejected",
                    d.path,
                    d.span.start,
                    d.span.end,
                    answer.rejected - answer.errors.len() as u64
                );
            }
            Ok(())
        }
        Err(e) => Err(anyhow!(
            "{} (bytes {}..{}): the batch {e}; fix the cause and start again: the offsets stay before this batch",
            d.path,
            d.span.start,
            d.span.end
        )),
    }
}

/// Compresses and sends one batch, retrying until the server answers.
async fn deliver(client: Arc<Client>, batch: Outgoing) -> Delivered {
    let Outgoing {
        file,
        span,
        key,
        path,
        source,
        content_type,
        body,
        offsets,
    } = batch;
    let label = format!("{path} (bytes {}..{})", span.start, span.end);
    let compressed = match tokio::task::spawn_blocking(move || zstd::bulk::compress(&body, 3)).await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let result = match compressed {
        Ok(compressed) => {
            let request = IngestBatch {
                body: &compressed,
                content_type,
                source: Some(&source),
                key: &key,
            };
            let retry = Retry {
                max_attempts: None,
                max_delay: MAX_RETRY_DELAY,
            };
            let mut failures = 0u32;
            let result = client
                .send_ingest(&request, retry, |attempt, message, delay| {
                    failures = attempt;
                    if attempt <= 3 || attempt % 20 == 0 {
                        eprintln!(
                            "sawmill ingest: {label}: {message}; retrying in {:.1}s (attempt {attempt})",
                            delay.as_secs_f64()
                        );
                    }
                })
                .await;
            if result.is_ok() && failures > 0 {
                eprintln!(
                    "sawmill ingest: {label}: delivered after {} attempts",
                    failures + 1
                );
            }
            result
        }
        Err(e) => Err(SendError::Refused {
            attempts: 0,
            message: format!("cannot be compressed: {e}"),
        }),
    };
    Delivered {
        file,
        span,
        path,
        offsets,
        result,
    }
}

/// Writes the state file (on the blocking pool).
async fn save(follower: &mut Follower, path: &Path) -> anyhow::Result<()> {
    let bytes =
        serde_json::to_vec_pretty(&follower.snapshot()).context("cannot encode the offsets")?;
    let path = path.to_path_buf();
    blocking(move || state::save(&path, &bytes)).await??;
    follower.saved();
    Ok(())
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("a file task failed: {e}"))
}
