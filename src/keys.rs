//! `sawmill keys create|list|revoke`: API keys of a server's data directory.
//!
//! The commands work on the data directory's files directly (a running server picks the
//! change up at its next request), so they need the same `--data-dir` (or `--config`) as the
//! server. Each change is written to the audit log.

use anyhow::Context;
use clap::{Args, Subcommand};
use sawmill_server::keys::{self, Scope};
use std::path::PathBuf;

#[derive(Args)]
pub struct Location {
    /// The server's data directory (default: the config's data_dir, else ./sawmill-data).
    #[arg(long, env = "SAWMILL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The server's config file, to find its data directory.
    #[arg(long, env = "SAWMILL_CONFIG")]
    config: Option<PathBuf>,
}

impl Location {
    fn resolve(&self) -> anyhow::Result<PathBuf> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        match &self.config {
            Some(path) => Ok(sawmill_server::Config::from_file(path)?.data_dir),
            None => Ok(sawmill_server::Config::default().data_dir),
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once, alone on the last line.
    Create {
        /// The tenant the key acts for.
        #[arg(
            long,
            required_unless_present = "all_tenants",
            conflicts_with = "all_tenants"
        )]
        tenant: Option<String>,
        /// An operator key, for every tenant (picked per request with X-Sawmill-Tenant).
        #[arg(long)]
        all_tenants: bool,
        /// What the key may do: ingest, search, admin (repeat for several).
        #[arg(long = "scope", required = true, value_parser = Scope::parse)]
        scopes: Vec<Scope>,
        /// A note on what the key is for (shown by `keys list`).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        location: Location,
    },
    /// List keys (ids, tenants, scopes, state; never the keys themselves).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Revoke a key by id: requests with it are refused from then on.
    Revoke {
        id: String,
        #[command(flatten)]
        location: Location,
    },
}

pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            tenant,
            all_tenants: _,
            scopes,
            name,
            location,
        } => {
            let dir = location.resolve()?;
            let created = keys::create(&dir, tenant.as_deref(), &scopes, name.as_deref())
                .context("cannot create the key")?;
            let e = &created.entry;
            let scopes: Vec<&str> = e.scopes.iter().map(|s| s.as_str()).collect();
            audit(
                &dir,
                "key.create",
                e.tenant.as_deref(),
                serde_json::json!({ "key_id": e.id, "scopes": scopes, "name": e.name }),
            );
            println!(
                "created key {} for {} with scopes {} (store it now: it is not shown again)",
                e.id,
                tenant_text(e.tenant.as_deref()),
                scopes.join(",")
            );
            println!("{}", created.key);
            Ok(())
        }
        KeysCommand::List { json, location } => {
            let dir = location.resolve()?;
            let all = keys::list(&dir)?;
            if json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "id": k.id, "tenant": k.tenant, "scopes": k.scopes, "name": k.name,
                            "created_at": k.created_at, "revoked_at": k.revoked_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            if all.is_empty() {
                println!(
                    "no keys in {} (the server runs open on loopback)",
                    dir.display()
                );
                return Ok(());
            }
            println!(
                "{:<14} {:<20} {:<20} {:<8} {:<22} NAME",
                "ID", "TENANT", "SCOPES", "STATE", "CREATED"
            );
            for k in &all {
                let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "{:<14} {:<20} {:<20} {:<8} {:<22} {}",
                    k.id,
                    tenant_text(k.tenant.as_deref()),
                    scopes.join(","),
                    if k.active() { "active" } else { "revoked" },
                    k.created_at,
                    k.name.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { id, location } => {
            let dir = location.resolve()?;
            let (entry, newly) = keys::revoke(&dir, &id)?;
            if newly {
                audit(
                    &dir,
                    "key.revoke",
                    entry.tenant.as_deref(),
                    serde_json::json!({ "key_id": entry.id }),
                );
                println!("revoked key {}", entry.id);
            } else {
                println!("key {} was already revoked", entry.id);
            }
            Ok(())
        }
    }
}

fn tenant_text(tenant: Option<&str>) -> String {
    match tenant {
        Some(t) => format!("tenant {t}"),
        None => "all tenants".to_string(),
    }
}

fn audit(dir: &std::path::Path, action: &str, tenant: Option<&str>, details: serde_json::Value) {
    if let Err(e) = sawmill_server::audit::record_offline(dir, action, tenant, details) {
        eprintln!("sawmill: warning: cannot write the audit log: {e}");
    }
}
