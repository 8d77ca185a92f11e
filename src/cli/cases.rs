//! `klachtpost cases list|show`: the register, read-only.

use std::process::ExitCode;

use anyhow::Result;

use anyhow::{Context, bail};
use chrono::NaiveDate;

use crate::clock::{Clock, SystemClock};
use crate::compose;
use crate::config::Config;
use crate::deadlines::{self, Deadlines};
use crate::store::{Store, parse_ts};

fn local(stored: &str, config: &Config) -> String {
    parse_ts(stored)
        .map(|t| {
            t.with_timezone(&config.firm.timezone)
                .format("%a %d %b %Y %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| stored.to_string())
}

pub async fn list(config: &Config, json: bool) -> Result<ExitCode> {
    let store = Store::open(&config.database_url).await?;
    let cases = store.list_cases().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&cases)?);
        return Ok(ExitCode::SUCCESS);
    }
    if cases.is_empty() {
        println!("No cases.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<14} {:<7} {:<10} {:<28} {:<20} RESPOND BY",
        "REFERENCE", "STATUS", "CHANNEL", "COMPLAINANT", "PARTNER"
    );
    for c in cases {
        println!(
            "{:<14} {:<7} {:<10} {:<28} {:<20} {}{}",
            c.reference,
            c.status,
            c.channel,
            truncate(c.complainant_address.as_deref().unwrap_or("(unknown)"), 28),
            truncate(&c.partner_name, 20),
            local(&c.response_due_at, config),
            if c.flags.is_empty() {
                String::new()
            } else {
                format!("  ⚑ {}", c.flags.len())
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn show(config: &Config, reference: &str, json: bool) -> Result<ExitCode> {
    let store = Store::open(&config.database_url).await?;
    let Some(d) = store.case(reference).await? else {
        eprintln!("klachtpost: no case {reference}");
        return Ok(ExitCode::FAILURE);
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(ExitCode::SUCCESS);
    }
    let c = &d.case;
    println!("{}  ({})", c.reference, c.status);
    println!("  subject      {}", c.subject);
    println!(
        "  complainant  {} <{}>  ({})",
        c.complainant_name.as_deref().unwrap_or("-"),
        c.complainant_address.as_deref().unwrap_or("-"),
        c.complainant_source
    );
    println!("  channel      {}", c.channel);
    if let Some(s) = &c.staff_address {
        println!("  via staff    {s}");
    }
    println!("  partner      {} <{}>", c.partner_name, c.partner_email);
    println!("  received     {}", local(&c.received_at, config));
    println!("  deadlines");
    println!("    acknowledge  {}", local(&c.ack_due_at, config));
    println!("    respond      {}", local(&c.response_due_at, config));
    println!("    resolve      {}", local(&c.resolution_due_at, config));
    if let Some(orig) = &c.original_resolution_due_at {
        println!(
            "    extended     from {}: {}",
            local(orig, config),
            c.extension_reason.as_deref().unwrap_or("")
        );
    }
    println!(
        "    response     {}",
        c.response_met_at
            .as_deref()
            .map(|t| format!("met {}", local(t, config)))
            .unwrap_or_else(|| "not yet met".into())
    );
    println!("    how          {}", c.deadline_explanation);
    for f in &c.flags {
        println!("  ⚑ {f}");
    }
    println!("  correspondence");
    for m in &d.messages {
        println!(
            "    {} {}  {:<15} {} <{}>{}{}",
            if m.direction == "inbound" {
                "←"
            } else {
                "→"
            },
            local(&m.received_at, config),
            m.kind,
            m.from_name.as_deref().unwrap_or(""),
            m.from_address.as_deref().unwrap_or("-"),
            m.delivery
                .as_deref()
                .map(|s| format!("  [{s}]"))
                .unwrap_or_default(),
            if m.attachments > 0 {
                format!("  📎 {}", m.attachments)
            } else {
                String::new()
            }
        );
        println!("        {}", m.subject);
    }
    println!("  history");
    for e in &d.events {
        println!("    {}  {:<24} {}", local(&e.at, config), e.event, e.detail);
    }
    Ok(ExitCode::SUCCESS)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

pub async fn extend(
    config: &Config,
    reference: &str,
    until: &str,
    reason: &str,
) -> Result<ExitCode> {
    let store = Store::open(&config.database_url).await?;
    let Some(d) = store.case(reference).await? else {
        eprintln!("klachtpost: no case {reference}");
        return Ok(ExitCode::FAILURE);
    };
    let c = &d.case;
    if c.status == "closed" {
        bail!("case {reference} is closed");
    }
    let date = NaiveDate::parse_from_str(until.trim(), "%Y-%m-%d")
        .with_context(|| format!("--until {until:?}: expected YYYY-MM-DD"))?;
    let current = Deadlines {
        acknowledge: parse_ts(&c.ack_due_at)?,
        response: parse_ts(&c.response_due_at)?,
        resolution: parse_ts(&c.resolution_due_at)?,
        explanation: c.deadline_explanation.clone(),
    };
    let ext = deadlines::extend_to_date(&config.calendar, &current, date, reason)
        .map_err(|e| anyhow::anyhow!(e))?;
    let now = SystemClock.now();
    let templates = config.templates.load()?;
    let lang = store.case_language(reference).await?;
    let mail = match c.complainant_address.as_deref() {
        Some(to) => Some(compose::extension(
            &templates,
            &compose::Acknowledgement {
                firm_name: &config.firm.name,
                firm_domain: config.firm.domain(),
                from: &config.outgoing.from,
                to_name: c.complainant_name.as_deref(),
                to_address: to,
                reference,
                original_subject: &c.subject,
                in_reply_to: None,
                references: &[],
                received: parse_ts(&c.received_at)?,
                respond_by: current.response,
                resolve_by: ext.resolution,
                partner_name: &c.partner_name,
                timezone: config.firm.timezone,
                now,
                lang,
            },
            &compose::ExtensionText {
                previous: ext.previous,
                reason: &ext.reason,
            },
        )?),
        None => None,
    };
    let to = c.complainant_address.clone().unwrap_or_default();
    store
        .extend_case(
            reference,
            &ext,
            mail.as_ref()
                .map(|m| (m, config.outgoing.from.as_str(), to.as_str())),
            now,
        )
        .await?;
    println!("{reference}: {}", ext.describe(&config.calendar));
    if mail.is_some() {
        println!("The complainant will be told by mail (queued; `klachtpost run` sends it).");
    } else {
        println!("No complainant address is known: tell the complainant another way.");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn close(config: &Config, reference: &str, satisfied: Option<&str>) -> Result<ExitCode> {
    let satisfied = match satisfied.map(|s| s.trim().to_ascii_lowercase()) {
        None => None,
        Some(s) if ["yes", "ja", "true", "y", "j"].contains(&s.as_str()) => Some(true),
        Some(s) if ["no", "nee", "false", "n"].contains(&s.as_str()) => Some(false),
        Some(s) => bail!("--satisfied {s:?}: expected yes or no"),
    };
    let store = Store::open(&config.database_url).await?;
    if !store
        .close_case(reference, satisfied, SystemClock.now())
        .await?
    {
        eprintln!("klachtpost: no case {reference}");
        return Ok(ExitCode::FAILURE);
    }
    println!("{reference} closed.");
    Ok(ExitCode::SUCCESS)
}
