//! `sawmill cloudwatch`: CloudWatch Logs tooling (aws-sdk-cloudwatchlogs).
//!
//! - `subscribe --prefix P --destination-arn ARN` puts a subscription filter to the forwarder
//!   on every log group whose name starts with `P` (all pages), idempotently: a filter that is
//!   already as asked is left alone, one that differs is updated, and a group that already has
//!   AWS's maximum of two other filters is reported, not touched. It prints what it changed.
//! - `backfill --log-group G --start T --end T` ships the group's history through
//!   FilterLogEvents, shaped exactly as the forwarder ships live events (source, `aws.*`, the
//!   event id) and cut into batches with content-derived idempotency keys, so running it twice
//!   over the same range ingests nothing twice.

use crate::client::ServerArgs;
use anyhow::{bail, Context};
use aws_sdk_cloudwatchlogs::Client;
use sawmill_core::error::report as error_report;
use sawmill_forwarder::batch::Batcher;
use sawmill_forwarder::config::Config;
use sawmill_forwarder::deliver::{Deliveries, Shipper};
use sawmill_forwarder::enrich::{Enricher, Origin};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Subcommand, Debug)]
pub enum CloudwatchCommand {
    /// Subscribe every log group with a name prefix to the forwarder (idempotent).
    Subscribe(SubscribeArgs),
    /// Ship a log group's history between two times to the server.
    Backfill(BackfillArgs),
}

#[derive(clap::Args, Debug)]
pub struct SubscribeArgs {
    /// Log group name prefix (`/aws/lambda/`); every matching group is subscribed.
    #[arg(long)]
    prefix: String,
    /// ARN of the forwarder function (or a Kinesis stream / Firehose).
    #[arg(long)]
    destination_arn: String,
    /// Name of the subscription filter sawmill manages.
    #[arg(long, default_value = "sawmill")]
    filter_name: String,
    /// CloudWatch Logs filter pattern; empty ships everything.
    #[arg(long, default_value = "")]
    filter_pattern: String,
    /// IAM role CloudWatch Logs assumes (needed for Kinesis and Firehose destinations).
    #[arg(long)]
    role_arn: Option<String>,
    /// Print what would change without changing it.
    #[arg(long)]
    dry_run: bool,
    /// CloudWatch Logs endpoint (else the AWS SDK chain: AWS_ENDPOINT_URL_CLOUDWATCH_LOGS, …).
    #[arg(long)]
    endpoint: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct BackfillArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Log group to read.
    #[arg(long)]
    log_group: String,
    /// Start of the range: RFC 3339, epoch seconds or milliseconds, or `now-7d`.
    #[arg(long)]
    start: String,
    /// End of the range (exclusive), same forms; default now.
    #[arg(long, default_value = "now")]
    end: String,
    /// Only events matching this CloudWatch Logs filter pattern.
    #[arg(long)]
    filter_pattern: Option<String>,
    /// CloudWatch Logs endpoint (else the AWS SDK chain).
    #[arg(long)]
    endpoint: Option<String>,
}

pub fn run(command: CloudwatchCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match command {
            CloudwatchCommand::Subscribe(args) => subscribe(args).await,
            CloudwatchCommand::Backfill(args) => backfill(args).await,
        }
    })
}

async fn client(endpoint: Option<&str>) -> anyhow::Result<Client> {
    let shared = sawmill_forwarder::aws::sdk_config().await;
    if shared.region().is_none() {
        bail!("no AWS region: set AWS_REGION (or configure a profile)");
    }
    let mut config = aws_sdk_cloudwatchlogs::config::Builder::from(&shared);
    if let Some(e) = endpoint {
        config = config.endpoint_url(e);
    }
    Ok(Client::from_conf(config.build()))
}

/// What `subscribe` did to one log group.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    Created,
    Updated,
    Unchanged,
    /// AWS allows two subscription filters per log group.
    Full(Vec<String>),
    /// The destination function's own log group: subscribing it would forward the
    /// forwarder's logs to itself in a loop.
    OwnGroup,
}

/// `/aws/lambda/NAME` when `arn` is a Lambda function's ARN (with or without a qualifier).
fn own_log_group(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function")
        .then(|| format!("/aws/lambda/{}", parts[6]))
}

async fn subscribe(args: SubscribeArgs) -> anyhow::Result<()> {
    let client = client(args.endpoint.as_deref()).await?;
    let mut groups = Vec::new();
    let mut pages = client
        .describe_log_groups()
        .log_group_name_prefix(&args.prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| anyhow::anyhow!("cannot list log groups: {}", error_report(&e)))?;
        groups.extend(
            page.log_groups()
                .iter()
                .filter_map(|g| g.log_group_name().map(str::to_string)),
        );
    }
    if groups.is_empty() {
        println!("no log group starts with {:?}", args.prefix);
        return Ok(());
    }
    let (mut created, mut updated, mut unchanged, mut full) = (0, 0, 0, 0);
    let own = own_log_group(&args.destination_arn);
    for group in &groups {
        let change = if own.as_deref() == Some(group.as_str()) {
            Change::OwnGroup
        } else {
            subscribe_one(&client, &args, group).await?
        };
        let verb = if args.dry_run { "would be " } else { "" };
        match &change {
            Change::Created => {
                created += 1;
                println!("{verb}created  {group}");
            }
            Change::Updated => {
                updated += 1;
                println!("{verb}updated  {group}");
            }
            Change::Unchanged => unchanged += 1,
            Change::OwnGroup => {
                println!("excluded {group}: the forwarder's own log group (subscribing it would forward its logs to itself in a loop)");
            }
            Change::Full(others) => {
                full += 1;
                println!(
                    "skipped  {group}: it already has the maximum of 2 subscription filters ({}); remove one to subscribe it",
                    others.join(", ")
                );
            }
        }
    }
    let excluded = usize::from(own.as_ref().is_some_and(|o| groups.contains(o)));
    println!(
        "{} log group(s): {created} created, {updated} updated, {unchanged} unchanged, {full} skipped{}{}",
        groups.len(),
        if excluded > 0 { ", 1 excluded" } else { "" },
        if args.dry_run { " (dry run: nothing changed)" } else { "" }
    );
    if full > 0 {
        bail!("{full} log group(s) could not be subscribed");
    }
    Ok(())
}

async fn subscribe_one(
    client: &Client,
    args: &SubscribeArgs,
    group: &str,
) -> anyhow::Result<Change> {
    let existing = client
        .describe_subscription_filters()
        .log_group_name(group)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read the subscription filters of {group}: {}",
                error_report(&e)
            )
        })?;
    let filters = existing.subscription_filters();
    let ours = filters
        .iter()
        .find(|f| f.filter_name() == Some(args.filter_name.as_str()));
    let change = match ours {
        Some(f)
            if f.destination_arn() == Some(args.destination_arn.as_str())
                && f.filter_pattern().unwrap_or("") == args.filter_pattern
                && f.role_arn() == args.role_arn.as_deref() =>
        {
            return Ok(Change::Unchanged)
        }
        Some(_) => Change::Updated,
        None if filters.len() >= 2 => {
            return Ok(Change::Full(
                filters
                    .iter()
                    .filter_map(|f| f.filter_name().map(str::to_string))
                    .collect(),
            ))
        }
        None => Change::Created,
    };
    if !args.dry_run {
        let mut put = client
            .put_subscription_filter()
            .log_group_name(group)
            .filter_name(&args.filter_name)
            .filter_pattern(&args.filter_pattern)
            .destination_arn(&args.destination_arn);
        if let Some(role) = &args.role_arn {
            put = put.role_arn(role);
        }
        put.send().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot put the subscription filter on {group}: {}",
                error_report(&e)
            )
        })?;
    }
    Ok(change)
}

async fn backfill(args: BackfillArgs) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    let start = sawmill_core::parse_time_param(&args.start, now)
        .map_err(|e| anyhow::anyhow!("--start {:?}: {e}", args.start))?;
    let end = sawmill_core::parse_time_param(&args.end, now)
        .map_err(|e| anyhow::anyhow!("--end {:?}: {e}", args.end))?;
    if end <= start {
        bail!("--end must be after --start");
    }
    let client = client(args.endpoint.as_deref()).await?;
    let shipper = shipper(&args.server)?;
    let config = Arc::new(shipper.config().clone());
    // a backfill has no Lambda deadline; a day bounds each batch's retries
    let deadline = tokio::time::Instant::now() + Duration::from_secs(24 * 3600);
    let mut deliveries = Deliveries::new(shipper, deadline);
    let mut batcher = Batcher::new(config.batch_max_bytes, config.batch_max_events);
    let read = read_events(&client, &args, (start, end), &mut batcher, &mut deliveries).await?;
    if let Some(batch) = batcher.take() {
        deliveries.submit(batch).await;
    }
    let report = deliveries.finish().await;
    println!(
        "{}: {read} event(s) read, {} accepted, {} rejected, in {} batch(es)",
        args.log_group, report.accepted, report.rejected, report.batches
    );
    if !report.delivered() {
        bail!(
            "not everything was delivered: {}; run the same backfill again (nothing is ingested twice)",
            report.failure_summary()
        );
    }
    Ok(())
}

/// The forwarder's delivery, to the server of the command line (no failure bucket: a
/// backfill that fails is run again).
fn shipper(server: &ServerArgs) -> anyhow::Result<Shipper> {
    let config = Config::from_lookup(|name| match name {
        "SAWMILL_URL" => Some(server.url.clone()),
        "SAWMILL_API_KEY" => server.api_key.clone(),
        "SAWMILL_TENANT" => server.tenant.clone(),
        _ => None,
    })
    .map_err(|e| anyhow::anyhow!(error_report(&e)))?;
    Shipper::new(Arc::new(config), None).map_err(|e| anyhow::anyhow!(error_report(&e)))
}

/// Reads the group's events between `range` (ns since the epoch, end exclusive), shaped as
/// the forwarder ships them, and delivers the batches `batcher` completes; returns how many
/// events were read.
async fn read_events(
    client: &Client,
    args: &BackfillArgs,
    (start, end): (i64, i64),
    batcher: &mut Batcher,
    deliveries: &mut Deliveries,
) -> anyhow::Result<u64> {
    let region = client.config().region().map(|r| r.to_string());
    let account = account_of(client, &args.log_group).await?;
    let enricher = Enricher::default();
    let mut request = client
        .filter_log_events()
        .log_group_name(&args.log_group)
        .start_time(start / 1_000_000)
        .end_time(end / 1_000_000 - 1);
    if let Some(p) = &args.filter_pattern {
        request = request.filter_pattern(p);
    }
    let mut pages = request.into_paginator().send();
    let mut line = Vec::new();
    let mut read = 0u64;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow::anyhow!(
                "cannot read events of {}: {}",
                args.log_group,
                error_report(&e)
            )
        })?;
        for e in page.events() {
            let origin = Origin::new(args.log_group.clone())
                .with("account_id", account.as_deref())
                .with("region", region.as_deref())
                .with("log_group", Some(&args.log_group))
                .with("log_stream", e.log_stream_name());
            line.clear();
            let event = enricher.from_message(e.timestamp(), e.message().unwrap_or(""));
            enricher.write(event, &origin, e.event_id(), &mut line);
            read += 1;
            for b in batcher.push(&line) {
                deliveries.submit(b).await;
            }
        }
    }
    Ok(read)
}

/// The account id from the log group's ARN (`arn:aws:logs:region:ACCOUNT:log-group:…`).
async fn account_of(client: &Client, group: &str) -> anyhow::Result<Option<String>> {
    let page = client
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot describe log group {group}: {}", error_report(&e)))?;
    let Some(found) = page
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(group))
    else {
        bail!("log group {group} does not exist (in this account and region)");
    };
    Ok(found
        .arn()
        .and_then(|arn| arn.split(':').nth(4))
        .filter(|a| !a.is_empty())
        .map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarders_own_group_is_known_from_its_arn() {
        assert_eq!(
            own_log_group("arn:aws:lambda:eu-west-1:123456789012:function:sawmill-forwarder"),
            Some("/aws/lambda/sawmill-forwarder".into())
        );
        assert_eq!(
            own_log_group("arn:aws:lambda:eu-west-1:123456789012:function:fwd:live"),
            Some("/aws/lambda/fwd".into())
        );
        assert_eq!(
            own_log_group("arn:aws:kinesis:eu-west-1:123456789012:stream/logs"),
            None
        );
    }
}
