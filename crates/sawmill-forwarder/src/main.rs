//! `sawmill-forwarder`: the AWS Lambda function (run with no arguments by the
//! provided.al2023 runtime as `bootstrap`), and the same handler for local runs:
//!
//! - `sawmill-forwarder invoke EVENT.json…` handles event files once each, in one process, and
//!   prints each answer; it exits 1 when the handler failed on any of them and 2 when an SQS
//!   or Kinesis batch reported failed records;
//! - `sawmill-forwarder replay` sends the batches kept in the failure bucket again.
//!
//! Configuration comes from environment variables (see `sawmill_forwarder::config`).

use clap::{Parser, Subcommand};
use lambda_runtime::{service_fn, LambdaEvent};
use sawmill_core::error::report as error_report;
use sawmill_forwarder::handler::{deadline_from_epoch_ms, from_env, Forwarder};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "sawmill-forwarder",
    version,
    about = "Ships CloudWatch Logs, S3 log files, Kinesis and SQS records to sawmill (an AWS Lambda function)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the handler on event files (`-` reads standard input), one after the other in
    /// one process, as a warm Lambda would.
    Invoke {
        #[arg(required = true)]
        events: Vec<PathBuf>,
        /// Time the invocation may take, as Lambda's timeout would bound it.
        #[arg(long, default_value = "15m", value_parser = sawmill_core::parse_duration)]
        timeout: Duration,
    },
    /// Sends the batches stored in SAWMILL_FAILURE_BUCKET again and deletes the delivered ones.
    Replay {
        #[arg(long, default_value = "15m", value_parser = sawmill_core::parse_duration)]
        timeout: Duration,
    },
}

/// Time kept back from Lambda's deadline so the function answers before it is cut off.
const LAMBDA_MARGIN: Duration = Duration::from_millis(1500);

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SAWMILL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sawmill-forwarder: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            None => run_lambda().await,
            Some(Command::Invoke { events, timeout }) => invoke_all(&events, timeout).await,
            Some(Command::Replay { timeout }) => replay(timeout).await,
        }
    })
}

async fn run_lambda() -> ExitCode {
    let forwarder = match from_env().await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sawmill-forwarder: {}", error_report(&e));
            return ExitCode::FAILURE;
        }
    };
    let result = lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let forwarder = forwarder.clone();
        async move {
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            let deadline = deadline.checked_sub(LAMBDA_MARGIN).unwrap_or(deadline);
            forwarder
                .handle(event.payload, deadline)
                .await
                // the whole chain, so the invocation's error says why
                .map_err(|e| lambda_runtime::Error::from(error_report(&e)))
        }
    }))
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sawmill-forwarder: the Lambda runtime stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status of a run of invocations: the worst of them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Partial,
    Failed,
}

async fn invoke_all(paths: &[PathBuf], timeout: Duration) -> ExitCode {
    let forwarder = match from_env().await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sawmill-forwarder: {}", error_report(&e));
            return ExitCode::FAILURE;
        }
    };
    let mut worst = Outcome::Ok;
    for path in paths {
        worst = worst.max(invoke(&forwarder, path, timeout).await);
    }
    match worst {
        Outcome::Ok => ExitCode::SUCCESS,
        Outcome::Partial => ExitCode::from(2),
        Outcome::Failed => ExitCode::FAILURE,
    }
}

async fn invoke(forwarder: &Forwarder, path: &PathBuf, timeout: Duration) -> Outcome {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        match std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
            Ok(_) => s,
            Err(e) => {
                eprintln!("sawmill-forwarder: cannot read standard input: {e}");
                return Outcome::Failed;
            }
        }
    } else {
        match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sawmill-forwarder: cannot read {}: {e}", path.display());
                return Outcome::Failed;
            }
        }
    };
    let event: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "sawmill-forwarder: {} is not a JSON event: {e}",
                path.display()
            );
            return Outcome::Failed;
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    match forwarder.handle(event, deadline).await {
        Ok(answer) => {
            println!("{answer}");
            let partial = answer
                .get("batchItemFailures")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            if partial {
                eprintln!(
                    "sawmill-forwarder: {}: some records failed (batchItemFailures)",
                    path.display()
                );
                Outcome::Partial
            } else {
                Outcome::Ok
            }
        }
        Err(e) => {
            eprintln!(
                "sawmill-forwarder: {}: the handler failed: {}",
                path.display(),
                error_report(&e)
            );
            Outcome::Failed
        }
    }
}

async fn replay(timeout: Duration) -> ExitCode {
    let forwarder = match from_env().await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sawmill-forwarder: {}", error_report(&e));
            return ExitCode::FAILURE;
        }
    };
    let Some(store) = forwarder.failures() else {
        eprintln!(
            "sawmill-forwarder: SAWMILL_FAILURE_BUCKET is not set: there is nothing to replay from"
        );
        return ExitCode::FAILURE;
    };
    let deadline = tokio::time::Instant::now() + timeout;
    match store.replay(&forwarder.shipper, deadline).await {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string(&report).unwrap_or_else(|e| e.to_string())
            );
            if report.still_failing.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "sawmill-forwarder: {} stored batch(es) still failing",
                    report.still_failing.len()
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("sawmill-forwarder: replay failed: {}", error_report(&e));
            ExitCode::FAILURE
        }
    }
}
