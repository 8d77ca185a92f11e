//! `klachtpost purge`, `audit verify`: the register as a whole.

use std::process::ExitCode;

use anyhow::Result;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::store::{Store, history};

use super::cases::actor_name;

pub async fn purge(
    config: &Config,
    dry_run: bool,
    json: bool,
    by: Option<&str>,
) -> Result<ExitCode> {
    let by = actor_name(config, by);
    let store = Store::open(&config.database_url).await?;
    let report =
        crate::retention::purge(&store, &config.retention, SystemClock.now(), &by, dry_run).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if dry_run { "would be purged" } else { "purged" };
    println!(
        "Cases closed more than {} ago {verb}: {}",
        config.retention.keep,
        if report.cases.is_empty() {
            "none".to_string()
        } else {
            report.cases.join(", ")
        }
    );
    if !report.held.is_empty() {
        println!("Kept, on hold: {}", report.held.join(", "));
    }
    println!(
        "Mail without a case older than {} {verb}: {} messages",
        config.retention.keep_unattached, report.unattached_messages
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn audit_verify(config: &Config, json: bool) -> Result<ExitCode> {
    let store = Store::open(&config.database_url).await?;
    let v = history::verify(store.pool()).await?;
    let code = if v.broken.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(code);
    }
    match &v.broken {
        None => {
            println!("The history is intact: {} entries.", v.entries);
            println!("Head hash: {}", v.head);
            println!("(Note the head hash elsewhere; a later run must start from it.)");
        }
        Some(b) => {
            println!(
                "The history does NOT verify: entry {}{} — {}",
                b.entry,
                b.case
                    .as_deref()
                    .map(|c| format!(" (case {c})"))
                    .unwrap_or_default(),
                b.problem
            );
            println!("{} entries before it verify.", v.entries);
        }
    }
    Ok(code)
}
