//! `klachtpost reminders preview` and `klachtpost digest preview`: what the partners'
//! job would send, and to whom, without sending or recording anything.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use crate::calendar::local_to_utc;
use crate::clock::{Clock, SystemClock};
use crate::compose::dutch_datetime;
use crate::config::Config;
use crate::partners::mail::Style;
use crate::partners::{digest, scheduler};
use crate::store::{self, Store};

#[derive(Serialize)]
struct PreviewMail {
    purpose: &'static str,
    to: String,
    cases: Vec<String>,
    keys: Vec<String>,
    subject: String,
    text: String,
}

fn parse_at(config: &Config, at: Option<&str>) -> Result<DateTime<Utc>> {
    match at {
        None => Ok(SystemClock.now()),
        Some(s) => {
            let local = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M")
                .with_context(|| format!("--at {s:?}: write \"YYYY-MM-DD HH:MM\" (local time)"))?;
            Ok(local_to_utc(config.firm.timezone, local))
        }
    }
}

/// Every reminder, escalation, acknowledgement warning and digest due at `--at` (default
/// now) and not sent yet.
pub async fn reminders_preview(config: &Config, at: Option<&str>, json: bool) -> Result<ExitCode> {
    let now = parse_at(config, at)?;
    let store = Store::open(&config.database_url).await?;
    let drafts = scheduler::plan(&store, config, now).await?;
    let mails: Vec<PreviewMail> = drafts
        .iter()
        .map(|d| {
            let r = d.render_all(config)?;
            Ok(PreviewMail {
                purpose: d.purpose,
                to: d.to.clone(),
                cases: d.cases.clone(),
                keys: d.claims.iter().map(|c| c.key.clone()).collect(),
                subject: r.subject,
                text: r.text,
            })
        })
        .collect::<Result<_>>()?;
    if json {
        #[derive(Serialize)]
        struct Json {
            at: String,
            mails: Vec<PreviewMail>,
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Json {
                at: store::ts(now),
                mails
            })?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let tz = config.firm.timezone;
    if mails.is_empty() {
        println!("Nothing is due at {}.", dutch_datetime(now, tz));
        let next = scheduler::next_wake(&store, config, now).await?;
        println!(
            "The next moment something may be due: {}.",
            dutch_datetime(next, tz)
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Due at {} ({} mail(s)):",
        dutch_datetime(now, tz),
        mails.len()
    );
    for m in &mails {
        println!(
            "- {} to {}: {} [{}]",
            m.purpose,
            m.to,
            m.subject,
            m.cases.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The next digest: when, to whom, and what it says if the register stays as it is.
pub async fn digest_preview(config: &Config, json: bool) -> Result<ExitCode> {
    let now = SystemClock.now();
    let cal = &config.calendar;
    let Some(next) = digest::next(cal, &config.partners.digest, now) else {
        println!("No digest is scheduled ([digest] schedule = \"never\", or no dates ahead).");
        return Ok(ExitCode::SUCCESS);
    };
    let store = Store::open(&config.database_url).await?;
    let cases = store::partners::open_cases(store.pool()).await?;
    let d = scheduler::build_digest(&store, config, &cases, now).await?;
    let to: Vec<String> = config
        .firm
        .partners
        .iter()
        .map(|p| p.email.clone())
        .collect();
    if json {
        #[derive(Serialize)]
        struct Json<'a> {
            at: String,
            to: Vec<String>,
            digest: &'a digest::Digest,
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Json {
                at: store::ts(next.at),
                to,
                digest: &d
            })?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let templates = config.templates.load()?;
    let r = d.render(&Style::new(config, &templates), cal)?;
    println!(
        "Next digest: {} to {}\nSubject: {}\n",
        dutch_datetime(next.at, config.firm.timezone),
        to.join(", "),
        r.subject
    );
    print!("{}", r.text);
    Ok(ExitCode::SUCCESS)
}
