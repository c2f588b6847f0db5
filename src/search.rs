//! `sawmill search`: runs a query and prints the matching events, newest first.

use crate::client::ServerArgs;
use std::io::Write;

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Start of the range: RFC 3339, epoch seconds or milliseconds, or now-15m style.
    #[arg(long)]
    start: Option<String>,
    /// End of the range (exclusive).
    #[arg(long)]
    end: Option<String>,
    /// Events to print at most.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Oldest first instead of newest first.
    #[arg(long)]
    asc: bool,
    /// Print each hit as one JSON line (for scripts).
    #[arg(long)]
    json: bool,
    /// The query, for example 'level:error AND service:checkout'; empty or * for everything.
    #[arg(default_value = "*")]
    query: Vec<String>,
}

pub async fn run(args: SearchArgs) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let query = args.query.join(" ");
    let limit = args.limit.to_string();
    let mut params = vec![
        ("q", query.as_str()),
        ("limit", limit.as_str()),
        ("order", if args.asc { "asc" } else { "desc" }),
    ];
    if let Some(s) = &args.start {
        params.push(("start", s));
    }
    if let Some(e) = &args.end {
        params.push(("end", e));
    }
    let answer = client.get_json("/api/v1/search", &params).await?;
    let hits = answer["hits"].as_array().cloned().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    for hit in &hits {
        if args.json {
            writeln!(out, "{hit}")?;
        } else {
            writeln!(out, "{}", render(hit))?;
        }
    }
    out.flush()?;
    eprintln!(
        "{} of {} matching events ({} ms)",
        hits.len(),
        answer["total"],
        answer["took_ms"]
    );
    Ok(())
}

/// `TIMESTAMP LEVEL service host: message key=value …`
fn render(hit: &serde_json::Value) -> String {
    let s = |k: &str| hit.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let mut line = format!("{} {:<5}", s("timestamp"), s("level"));
    for k in ["service", "host"] {
        if !s(k).is_empty() {
            line.push(' ');
            line.push_str(s(k));
        }
    }
    line.push_str(": ");
    line.push_str(s("message"));
    if let Some(obj) = hit.as_object() {
        for (k, v) in obj {
            if matches!(
                k.as_str(),
                "timestamp" | "level" | "service" | "host" | "message"
            ) {
                continue;
            }
            match v {
                serde_json::Value::String(t) => line.push_str(&format!(" {k}={t}")),
                other => line.push_str(&format!(" {k}={other}")),
            }
        }
    }
    line
}
