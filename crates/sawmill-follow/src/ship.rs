//! The shipping loop: polls the followed files, saves the offsets, sends the due batches
//! through the ingest client and records what the server acknowledged, until told to stop.
//!
//! A batch's range is written to the state file before the batch leaves, so that a restart
//! can send it again under the same key. Sending retries until the server answers (waits of
//! at most [`Options::max_retry_wait`], `Retry-After` honoured); a batch the server refuses
//! for good stops the shipper with the reason, the offsets staying before that batch. On stop,
//! batches in flight get [`SHUTDOWN_GRACE`] to be acknowledged; whatever is not is sent again
//! by the next start.

use crate::glob::{Pattern, PatternError};
use crate::state::{self, Span, StateError};
use crate::tail::Outgoing;
use crate::watch::Follower;
use crate::{Format, Options};
use sawmill_client::{
    Client, CompressError, Encoding, IngestAnswer, IngestBatch, IngestError, Retry,
};
use sawmill_core::error::report as error_report;
use sawmill_core::{BodyFormat, RetryPolicy};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Offsets acknowledged since the last write are written at least this often.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// On stop, batches in flight get this long to be acknowledged.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why following stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot make {} an absolute path", .0.display())]
    StatePath(PathBuf, #[source] std::io::Error),
    /// The server refused a batch for good.
    #[error("{path} (bytes {}..{}): the batch was not ingested; fix the cause and start again: the offsets stay before this batch", .span.start, .span.end)]
    Refused {
        path: String,
        span: Span,
        #[source]
        source: IngestError,
    },
    #[error("{path} (bytes {}..{}): the batch cannot be compressed", .span.start, .span.end)]
    Compress {
        path: String,
        span: Span,
        #[source]
        source: CompressError,
    },
    #[error("cannot encode the offsets")]
    EncodeState(#[source] serde_json::Error),
    #[error("a background task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// What the server made of the lines shipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub accepted: u64,
    pub rejected: u64,
}

/// One batch's fate.
struct Delivered {
    file: u64,
    span: Span,
    path: String,
    offsets: Vec<u64>,
    result: Result<IngestAnswer, FollowError>,
}

/// Follows the files or glob patterns `files` until `stop` completes or the server refuses
/// a batch for good, keeping the offsets in `state` (default: a file named after the paths
/// under `$XDG_STATE_HOME/sawmill/`).
pub async fn follow(
    client: Client,
    files: &[String],
    state: Option<&Path>,
    options: Options,
    stop: impl Future<Output = ()>,
) -> Result<Totals, FollowError> {
    let patterns = files
        .iter()
        .map(|f| Pattern::new(f))
        .collect::<Result<Vec<_>, _>>()?;
    let texts: Vec<String> = patterns.iter().map(|p| p.text.clone()).collect();
    let state_path = match state {
        Some(p) => std::path::absolute(p).map_err(|e| FollowError::StatePath(p.into(), e))?,
        None => state::default_path(&texts)?,
    };
    let _lock = state::lock(&state_path)?;
    let saved = state::load(&state_path)?;
    tracing::info!(
        paths = %texts.join(", "),
        state = %state_path.display(),
        "following files"
    );
    let options = Arc::new(options);
    let o = options.clone();
    let follower = blocking(move || Follower::start(patterns, saved, &o, Instant::now())).await?;
    let mut run = Run {
        client: Arc::new(client),
        options,
        state_path,
        follower,
        inflight: JoinSet::new(),
        unsent: Vec::new(),
        totals: Totals::default(),
    };
    run.save().await?;
    let outcome = run.until(stop).await;
    let stopped = run.stop().await;
    tracing::info!(
        accepted = run.totals.accepted,
        rejected = run.totals.rejected,
        state = %run.state_path.display(),
        "stopped"
    );
    outcome.and(stopped).map(|()| run.totals)
}

/// The state of a running shipper.
struct Run {
    client: Arc<Client>,
    options: Arc<Options>,
    state_path: PathBuf,
    follower: Follower,
    inflight: JoinSet<Delivered>,
    /// Batches due but not sent yet (their range not saved yet).
    unsent: Vec<Outgoing>,
    totals: Totals,
}

impl Run {
    /// Polls, saves and sends until `stop`, or until a batch is refused for good.
    async fn until(&mut self, stop: impl Future<Output = ()>) -> Result<(), FollowError> {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(self.options.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_save = Instant::now();
        let mut save_failing = false;
        loop {
            self.poll().await?;
            let due = !self.unsent.is_empty()
                || (self.follower.dirty() && last_save.elapsed() >= SAVE_EVERY);
            if due {
                match self.save().await {
                    Ok(()) => {
                        last_save = Instant::now();
                        if std::mem::take(&mut save_failing) {
                            tracing::info!("offsets saved again; sending resumes");
                        }
                        self.send_unsent();
                    }
                    Err(e) => {
                        if !save_failing {
                            tracing::error!(
                                error = %error_report(&e),
                                "nothing is sent until the offsets can be saved"
                            );
                        }
                        save_failing = true;
                    }
                }
            }
            tokio::select! {
                _ = tick.tick() => {}
                Some(done) = self.inflight.join_next() => self.settle(done)?,
                () = &mut stop => return Ok(()),
            }
        }
    }

    /// Reads the files (on the blocking pool) and collects the batches due.
    async fn poll(&mut self) -> Result<(), FollowError> {
        let o = self.options.clone();
        let mut follower = std::mem::replace(&mut self.follower, Follower::empty());
        self.follower = blocking(move || {
            follower.poll(&o, Instant::now());
            follower
        })
        .await?;
        self.unsent
            .extend(self.follower.take_ready(&self.options, Instant::now()));
        Ok(())
    }

    /// Sends the batches whose ranges were just saved.
    fn send_unsent(&mut self) {
        let retry = Retry::forever(RetryPolicy::DEFAULT.with_max(self.options.max_retry_wait));
        for batch in self.unsent.drain(..) {
            self.inflight
                .spawn(deliver(self.client.clone(), batch, retry));
        }
    }

    /// Batches in flight get a moment to be acknowledged; then the offsets are saved.
    async fn stop(&mut self) -> Result<(), FollowError> {
        let grace = tokio::time::sleep(SHUTDOWN_GRACE);
        tokio::pin!(grace);
        while !self.inflight.is_empty() {
            tokio::select! {
                Some(done) = self.inflight.join_next() => {
                    if let Err(e) = self.settle(done) {
                        tracing::error!(error = %error_report(&e), "a batch was not ingested");
                    }
                }
                _ = &mut grace => break,
            }
        }
        self.inflight.abort_all();
        self.save().await
    }

    /// Records what happened to one batch; an error for a batch the server refused for good.
    fn settle(
        &mut self,
        done: Result<Delivered, tokio::task::JoinError>,
    ) -> Result<(), FollowError> {
        let d = done.map_err(FollowError::Task)?;
        let answer = d.result?;
        self.follower.acknowledged(d.file, d.span);
        self.totals.accepted += answer.accepted;
        self.totals.rejected += answer.rejected;
        for e in &answer.errors {
            let at = e.line.checked_sub(1).and_then(|i| d.offsets.get(i));
            match at {
                Some(offset) => tracing::warn!(
                    path = %d.path,
                    offset,
                    error = %e.error,
                    "the server rejected a line"
                ),
                None => tracing::warn!(
                    path = %d.path,
                    start = d.span.start,
                    end = d.span.end,
                    error = %e.error,
                    "the server rejected a line of the batch"
                ),
            }
        }
        let unlisted = answer.rejected.saturating_sub(answer.errors.len() as u64);
        if unlisted > 0 {
            tracing::warn!(
                path = %d.path,
                start = d.span.start,
                end = d.span.end,
                rejected = unlisted,
                "the server rejected more lines of the batch"
            );
        }
        Ok(())
    }

    /// Writes the state file (on the blocking pool).
    async fn save(&mut self) -> Result<(), FollowError> {
        let bytes = serde_json::to_vec_pretty(&self.follower.snapshot())
            .map_err(FollowError::EncodeState)?;
        let path = self.state_path.clone();
        blocking(move || state::save(&path, &bytes)).await??;
        self.follower.saved();
        Ok(())
    }
}

/// Compresses and sends one batch, retrying until the server answers.
async fn deliver(client: Arc<Client>, batch: Outgoing, retry: Retry) -> Delivered {
    let Outgoing {
        file,
        span,
        key,
        path,
        source,
        format,
        body,
        offsets,
    } = batch;
    let result = match blocking(move || Encoding::Zstd.compress_owned(body)).await {
        Ok(Ok(body)) => {
            let request = IngestBatch {
                body,
                encoding: Encoding::Zstd,
                format: match format {
                    Format::Ndjson => BodyFormat::Ndjson,
                    Format::Text => BodyFormat::Text,
                },
                key,
                source: Some(source),
            };
            send(&client, &request, retry, &path, span).await
        }
        Ok(Err(source)) => Err(FollowError::Compress {
            path: path.clone(),
            span,
            source,
        }),
        Err(e) => Err(e),
    };
    Delivered {
        file,
        span,
        path,
        offsets,
        result,
    }
}

/// Sends one compressed batch, reporting the first retries and then every 20th.
async fn send(
    client: &Client,
    request: &IngestBatch,
    retry: Retry,
    path: &str,
    span: Span,
) -> Result<IngestAnswer, FollowError> {
    let mut failures = 0u32;
    let result = client
        .send_ingest(request, retry, |r| {
            failures = r.attempt;
            if r.attempt <= 3 || r.attempt % 20 == 0 {
                tracing::warn!(
                    path = %path,
                    start = span.start,
                    end = span.end,
                    attempt = r.attempt,
                    retry_in_ms = r.wait.as_millis() as u64,
                    error = %error_report(r.error),
                    "sending failed; retrying"
                );
            }
        })
        .await;
    match result {
        Ok(answer) => {
            if failures > 0 {
                tracing::info!(
                    path = %path,
                    start = span.start,
                    end = span.end,
                    attempts = failures + 1,
                    "delivered after retries"
                );
            }
            Ok(answer)
        }
        Err(source) => Err(FollowError::Refused {
            path: path.to_string(),
            span,
            source,
        }),
    }
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, FollowError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(FollowError::Task)
}
