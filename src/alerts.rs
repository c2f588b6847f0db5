//! `sawmill alerts check FILE`: validates a rules file offline, with the errors the server
//! would give (naming the rule and the field).

use anyhow::bail;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum AlertsCommand {
    /// Validate a rules file and print a summary of its rules.
    Check {
        /// The rules file (YAML).
        file: PathBuf,
    },
}

pub fn run(command: AlertsCommand) -> anyhow::Result<()> {
    match command {
        AlertsCommand::Check { file } => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
            let rules = match sawmill_alerts::Rules::load(&file, now) {
                Ok(r) => r,
                Err(e) => bail!("{e}"),
            };
            println!(
                "{}: {} rules, {} notifiers",
                file.display(),
                rules.rules.len(),
                rules.notifiers.len()
            );
            for r in &rules.rules {
                let notify: Vec<&str> = r
                    .notify
                    .iter()
                    .map(|&i| rules.notifiers[i].name.as_str())
                    .collect();
                let group = if r.group_by.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", r.group_by.join(", "))
                };
                println!(
                    "  {}: count of '{}' over {}{} {} -> {} ({})",
                    r.name,
                    r.query,
                    r.window_text,
                    group,
                    r.condition.text(),
                    if notify.is_empty() {
                        "no notifier".to_string()
                    } else {
                        notify.join(", ")
                    },
                    r.severity
                );
            }
            Ok(())
        }
    }
}
