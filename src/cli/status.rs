//! `klachtpost status`: is intake working — the last good pass, the backlog, open outages,
//! the outbox and the quarantine. Read-only.

use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::health::{self, Status};
use crate::store::Store;

pub async fn status(config: &Config, json: bool) -> Result<ExitCode> {
    let store = Store::open(&config.database_url).await?;
    let status = health::status(&store).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status, config));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(s: &Status, config: &Config) -> String {
    let at = |t: Option<DateTime<Utc>>| {
        t.map(|t| {
            t.with_timezone(&config.firm.timezone)
                .format("%a %d %b %Y %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "never".to_string())
    };
    let mut out = String::new();
    let mailbox = s.channels.iter().find(|c| c.channel == "mailbox");
    match mailbox {
        Some(m) => {
            out += &format!("last intake pass: {}\n", at(m.state.last_success_at));
            out += &format!(
                "backlog:          {}\n",
                m.state
                    .backlog
                    .map(|n| format!("{n} message(s) waiting in the folder"))
                    .unwrap_or_else(|| "unknown".into())
            );
        }
        None => out += "last intake pass: never (the daemon has not run yet)\n",
    }
    let open: Vec<_> = s
        .channels
        .iter()
        .filter(|c| c.state.failing_since.is_some())
        .collect();
    if open.is_empty() {
        out += "outages:          none\n";
    } else {
        for c in open {
            out += &format!(
                "outage:           {} failing since {} ({}); last error: {}\n",
                c.channel,
                at(c.state.failing_since),
                match c.state.alerted_at {
                    Some(t) => format!("partners told {}", at(Some(t))),
                    None => "partners not told yet".to_string(),
                },
                c.state.last_error.as_deref().unwrap_or("-")
            );
        }
    }
    for m in &s.mailboxes {
        out += &format!(
            "mailbox lease:    {} {} {} since {}, until {}{}\n",
            m.mailbox,
            if m.expired { "was held by" } else { "held by" },
            m.instance,
            at(Some(m.since)),
            at(Some(m.until)),
            if m.expired {
                " (expired: another instance takes over)"
            } else {
                ""
            }
        );
    }
    let alive: Vec<&str> = s
        .instances
        .iter()
        .filter(|i| i.alive)
        .map(|i| i.instance.as_str())
        .collect();
    if !s.instances.is_empty() {
        out += &format!(
            "instances:        {} running{}\n",
            alive.len(),
            if alive.is_empty() {
                String::new()
            } else {
                format!(" ({})", alive.join(", "))
            }
        );
    }
    out += &format!(
        "outbox:           {} queued, {} failed\n",
        s.outbox_queued, s.outbox_failed
    );
    out += &match s.quarantined {
        0 => "quarantine:       empty\n".to_string(),
        n => format!("quarantine:       {n} mail(s) waiting (klachtpost quarantine list)\n"),
    };
    out
}
