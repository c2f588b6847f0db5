//! `sawmill ingest --follow`: the command-line options of the file shipper, checked and
//! handed to the `sawmill-follow` crate, which tails the files until SIGINT or SIGTERM.
//!
//! What the shipper reports goes to standard error, one line per event: `sawmill ingest:
//! <what happened> <field>=<value>…` (more or less of it with `SAWMILL_LOG`, e.g. `warn`).

use crate::client::ServerArgs;
use anyhow::{bail, Context};
use sawmill_follow::{Format, Multiline, Options};
use std::path::PathBuf;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

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

/// The checked options of the shipper.
fn options(args: &FollowArgs, shared: Shared) -> anyhow::Result<Options> {
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
            let start = regex::bytes::Regex::new(re)
                .with_context(|| format!("--multiline-start {re:?} is not a regular expression"))?;
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
        ..Options::default()
    })
}

/// Follows `files` until SIGINT or SIGTERM.
pub async fn run(
    server: &ServerArgs,
    args: FollowArgs,
    shared: Shared,
    files: &[String],
) -> anyhow::Result<()> {
    if files.iter().any(|f| f == "-") {
        bail!("--follow reads files, not standard input: name the files to follow");
    }
    let options = options(&args, shared)?;
    let client = server.client()?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    init_tracing();
    sawmill_follow::follow(client, files, args.state.as_deref(), options, stop).await?;
    Ok(())
}

/// `sawmill ingest: <message> <field>=<value>…` lines on standard error.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SAWMILL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(Prefixed)
        .init();
}

/// Formats an event as `sawmill ingest: ` and its fields (the message first).
struct Prefixed;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Prefixed
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "sawmill ingest: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
