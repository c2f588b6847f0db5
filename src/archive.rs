//! `sawmill archive …`: the archive's lifecycle rule, restores into search, and the Athena
//! table over the archive.

use crate::client::ServerArgs;
use anyhow::{bail, Context};
use sawmill_archive::athena::{create_table_ddl, AthenaOptions};
use sawmill_archive::lifecycle;
use sawmill_client::Client;
use sawmill_server::config::ArchiveBackend;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Subcommand, Debug)]
pub enum ArchiveCommand {
    /// Print the S3 lifecycle rule of the archive (storage tiers, expiry) as JSON: what the
    /// configuration asks for, or with --in-force what the bucket holds.
    Lifecycle {
        /// TOML configuration file of the server.
        #[arg(long, env = "SAWMILL_CONFIG")]
        config: Option<PathBuf>,
        /// Read the rule in force from the bucket instead (needs backend = "s3").
        #[arg(long)]
        in_force: bool,
    },
    /// Make archived events of a time range searchable again for a while (archive.restore_ttl).
    Restore(RestoreArgs),
    /// Print a CREATE EXTERNAL TABLE for Athena or Trino over the archive bucket.
    AthenaDdl {
        /// TOML configuration file of the server (bucket and prefix).
        #[arg(long, env = "SAWMILL_CONFIG")]
        config: Option<PathBuf>,
        /// Bucket holding the archive (default: archive.bucket of the config).
        #[arg(long)]
        bucket: Option<String>,
        /// Key prefix of the archive (default: archive.prefix of the config).
        #[arg(long)]
        prefix: Option<String>,
        /// Table name.
        #[arg(long, default_value = "sawmill_logs")]
        table: String,
        /// Database (schema) of the table.
        #[arg(long)]
        database: Option<String>,
        /// First day of the partition projection (YYYY-MM-DD).
        #[arg(long, default_value = "2024-01-01")]
        first_day: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Start of the range: RFC 3339, epoch seconds or milliseconds, or now-30d style.
    #[arg(long)]
    start: String,
    /// End of the range (exclusive; default now).
    #[arg(long)]
    end: Option<String>,
    /// Restore only the events matching this query.
    #[arg(long)]
    query: Option<String>,
    /// Ask S3 to restore objects found in GLACIER or DEEP_ARCHIVE (run the restore again
    /// once S3 has made them readable).
    #[arg(long)]
    request_s3_restore: bool,
    /// S3 retrieval tier for --request-s3-restore: standard or bulk.
    #[arg(long, default_value = "standard")]
    tier: String,
    /// Print the final status as JSON.
    #[arg(long)]
    json: bool,
    /// Return as soon as the restore has started.
    #[arg(long)]
    no_wait: bool,
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<sawmill_server::Config> {
    let config = match path {
        Some(p) => sawmill_server::Config::from_file(p)?,
        None => sawmill_server::Config::default(),
    };
    config.validate()?;
    Ok(config)
}

pub fn run(command: ArchiveCommand) -> anyhow::Result<()> {
    match command {
        ArchiveCommand::Lifecycle { config, in_force } => {
            let config = load_config(config.as_ref())?;
            let a = &config.archive;
            for warning in a.lifecycle.validate().map_err(anyhow::Error::msg)? {
                eprintln!("warning: {warning}");
            }
            let rule = lifecycle::rule(&a.lifecycle, &a.prefix);
            if !in_force {
                println!("{}", serde_json::to_string_pretty(&rule)?);
                return Ok(());
            }
            if a.backend != ArchiveBackend::S3 {
                bail!("--in-force reads the bucket: the archive backend is not s3");
            }
            let runtime = crate::client_runtime()?;
            let in_bucket = runtime.block_on(async {
                let store = sawmill_server::server::s3_client(a).await?;
                store.check_bucket().await?;
                store
                    .lifecycle_rule(&rule.id)
                    .await
                    .context("cannot read the bucket's lifecycle rules")
            })?;
            match in_bucket {
                Some(r) => println!("{}", serde_json::to_string_pretty(&r)?),
                None => bail!(
                    "the bucket {} holds no rule {}",
                    a.bucket.as_deref().unwrap_or_default(),
                    rule.id
                ),
            }
            Ok(())
        }
        ArchiveCommand::AthenaDdl {
            config,
            bucket,
            prefix,
            table,
            database,
            first_day,
        } => {
            let config = load_config(config.as_ref())?;
            let bucket = bucket.or(config.archive.bucket.clone()).context(
                "no bucket: pass --bucket or use a config with backend = \"s3\" and bucket",
            )?;
            let ddl = create_table_ddl(&AthenaOptions {
                bucket,
                prefix: prefix.unwrap_or(config.archive.prefix.clone()),
                table,
                database,
                first_day,
            })
            .map_err(anyhow::Error::msg)?;
            println!("{ddl}");
            Ok(())
        }
        ArchiveCommand::Restore(args) => {
            crate::client_runtime().and_then(|rt| rt.block_on(restore(args)))
        }
    }
}

async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let body = serde_json::json!({
        "start": args.start,
        "end": args.end,
        "query": args.query,
        "request_s3_restore": args.request_s3_restore,
        "tier": args.tier,
    });
    let mut answer = client.post_json("/api/v1/archive/restore", &body).await?;
    let id = answer["id"].as_str().unwrap_or_default().to_string();
    if !args.no_wait {
        let status = Client::path_with("/api/v1/archive/restores", &id);
        while answer["state"] == "running" {
            tokio::time::sleep(Duration::from_millis(500)).await;
            answer = client.get_json(&status, &[]).await?;
        }
    }
    if args.json {
        println!("{answer}");
    } else {
        print_summary(&answer);
    }
    match answer["state"].as_str() {
        Some("failed") | Some("cancelled") => bail!(
            "restore {id} {}: {}",
            answer["state"].as_str().unwrap_or_default(),
            answer["error"].as_str().unwrap_or("no reason given")
        ),
        _ => Ok(()),
    }
}

fn print_summary(s: &serde_json::Value) {
    let text = |k: &str| s[k].as_str().unwrap_or("-").to_string();
    let num = |k: &str| s[k].as_u64().unwrap_or(0);
    println!(
        "restore {}: {} ({} to {})",
        text("id"),
        text("state"),
        text("start"),
        text("end")
    );
    if s["state"] == "running" {
        return;
    }
    println!(
        "{} events searchable from {} of {} objects until {}; {} events of the range were already in the hot index",
        num("events"),
        num("objects_read"),
        num("objects"),
        text("expires_at"),
        num("events_already_hot"),
    );
    if let Some(cold) = s["cold_objects"].as_array().filter(|c| !c.is_empty()) {
        println!(
            "{} objects are in a Glacier storage class and were not read:",
            cold.len()
        );
        for c in cold {
            println!(
                "  {} ({}): {}",
                c["key"].as_str().unwrap_or_default(),
                c["storage_class"].as_str().unwrap_or_default(),
                c["state"].as_str().unwrap_or_default()
            );
        }
        println!("run the restore with --request-s3-restore, then again once S3 has restored them");
    }
}
