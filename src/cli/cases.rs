//! `klachtpost cases list|show`: the register, read-only.

use std::process::ExitCode;

use anyhow::Result;

use crate::config::Config;
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
