//! `klachtpost quarantine list|retry`: the mail intake could not take in, and taking it
//! in again once the cause is fixed. The work is in [`crate::intake::quarantine`].

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::clock::SystemClock;
use crate::config::Config;
use crate::intake::{Pipeline, Retried};
use crate::store::{Store, parse_quarantine_reference, parse_ts, quarantine_reference};

fn local(stored: &str, config: &Config) -> String {
    parse_ts(stored)
        .map(|t| {
            t.with_timezone(&config.firm.timezone)
                .format("%a %d %b %Y %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| stored.to_string())
}

/// What is in quarantine (with `all`, also what was and has been taken in since), and how
/// many duplicates were recorded.
pub async fn list(config: &Config, json: bool, all: bool) -> Result<ExitCode> {
    let store = Store::open(&config.database_url).await?;
    let items = store.quarantine_items(all).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if items.is_empty() {
        println!(
            "{}",
            if all {
                "Nothing was ever quarantined."
            } else {
                "Nothing in quarantine."
            }
        );
    } else {
        println!(
            "{:<8} {:<12} {:<22} {:>10} {:>5}  WHY / WHAT IT BECAME",
            "REF", "STATUS", "RECEIVED", "BYTES", "TRIES"
        );
        for q in &items {
            let what = match (q.status.as_str(), &q.case, q.message_row) {
                ("quarantined", _, _) => q.reason.clone(),
                (_, Some(case), _) => format!("case {case}"),
                (_, None, Some(row)) => format!("message {row}"),
                _ => q.reason.clone(),
            };
            println!(
                "{:<8} {:<12} {:<22} {:>10} {:>5}  {}",
                q.reference,
                q.status,
                local(&q.received_at, config),
                q.size,
                q.attempts,
                what
            );
        }
    }
    let duplicates = store.duplicates().await?;
    if !duplicates.is_empty() {
        let times: i64 = duplicates.iter().map(|d| d.times).sum();
        println!(
            "{} duplicate(s) recognised and not taken in again ({times} sighting(s)).",
            duplicates.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Retry one item (`Q-0007`, `7`) or every item still in quarantine. Fails (exit 1) when
/// an item still cannot be taken in.
pub async fn retry(config: &Config, reference: Option<&str>, all: bool) -> Result<ExitCode> {
    let ids: Vec<i64> = match (reference, all) {
        (Some(_), true) => bail!("give an item or --all, not both"),
        (None, false) => bail!("give an item (e.g. Q-0007) or --all"),
        (Some(r), false) => match parse_quarantine_reference(r) {
            Some(id) => vec![id],
            None => bail!("{r:?} is not a quarantine reference (e.g. Q-0007)"),
        },
        (None, true) => Vec::new(),
    };
    let store = Store::open(&config.database_url).await?;
    let ids = if all {
        store
            .quarantine_items(false)
            .await?
            .iter()
            .map(|q| q.id)
            .collect()
    } else {
        ids
    };
    if ids.is_empty() {
        println!("Nothing in quarantine.");
        return Ok(ExitCode::SUCCESS);
    }
    let clock = SystemClock;
    let pipeline = Pipeline::new(config, &store, &clock)?;
    let mut failed = 0;
    for id in ids {
        let reference = quarantine_reference(id);
        match pipeline.retry(id).await? {
            Retried::TakenIn {
                case: Some(case), ..
            } => println!("{reference}: taken in, case {case}"),
            Retried::TakenIn { message_row, .. } => {
                println!("{reference}: taken in as message {message_row} (no case)")
            }
            Retried::Duplicate { message_row } => println!(
                "{reference}: already taken in (message {}); recorded as a duplicate",
                message_row.map_or("?".to_string(), |r| r.to_string())
            ),
            Retried::StillFailing(why) => {
                failed += 1;
                println!("{reference}: still cannot be taken in: {why}");
            }
            Retried::AlreadyResolved(status) => {
                println!("{reference}: nothing to do ({status})")
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
