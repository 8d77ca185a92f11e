//! `klachtpost cases …`: the register, read and changed. Every change goes through one
//! command of [`crate::case`] inside one transaction, recorded with `--by`.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::case::{self, Actor, Closing, FormUpdate, Satisfied, Status};
use crate::classify::quote;
use crate::clock::{Clock, SystemClock};
use crate::compose;
use crate::config::Config;
use crate::deadlines::{self, Deadlines};
use crate::store::{CaseDetail, CaseSummary, Store, parse_ts};

pub(super) fn local(stored: &str, config: &Config) -> String {
    parse_ts(stored)
        .map(|t| {
            t.with_timezone(&config.firm.timezone)
                .format("%a %d %b %Y %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| stored.to_string())
}

/// Who a change is recorded as: `--by`, else `[firm] operator`, else the OS user.
pub(super) fn actor_name(config: &Config, by: Option<&str>) -> String {
    by.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| config.firm.operator.clone())
        .or_else(|| std::env::var("USER").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("LOGNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// A YYYY-MM-DD option.
pub(super) fn date_arg(name: &str, value: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .with_context(|| format!("{name} {value:?}: expected YYYY-MM-DD"))
}

/// The local date a stored time falls on.
pub(super) fn local_date(stored: &str, config: &Config) -> Option<NaiveDate> {
    parse_ts(stored)
        .ok()
        .map(|t| t.with_timezone(&config.firm.timezone).date_naive())
}

/// Which cases `cases list` shows.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub open: bool,
    pub overdue: bool,
    pub partner: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

fn is_open(c: &CaseSummary) -> bool {
    c.status.parse::<Status>().is_ok_and(Status::is_open)
}

/// A deadline of an open case that has passed without being met.
pub(super) fn overdue(c: &CaseSummary, now: DateTime<Utc>) -> Vec<&'static str> {
    if !is_open(c) {
        return Vec::new();
    }
    let past = |t: &str| parse_ts(t).is_ok_and(|t| t < now);
    let mut late = Vec::new();
    if c.acknowledged_at.is_none() && past(&c.ack_due_at) {
        late.push("acknowledgement");
    }
    if c.response_met_at.is_none() && past(&c.response_due_at) {
        late.push("response");
    }
    if past(&c.resolution_due_at) {
        late.push("resolution");
    }
    late
}

pub async fn list(config: &Config, filter: &Filter, json: bool) -> Result<ExitCode> {
    let from = filter
        .from
        .as_deref()
        .map(|d| date_arg("--from", d))
        .transpose()?;
    let to = filter
        .to
        .as_deref()
        .map(|d| date_arg("--to", d))
        .transpose()?;
    let now = SystemClock.now();
    let store = Store::open(&config.database_url).await?;
    let cases: Vec<CaseSummary> = store
        .list_cases()
        .await?
        .into_iter()
        .filter(|c| !filter.open || is_open(c))
        .filter(|c| !filter.overdue || !overdue(c, now).is_empty())
        .filter(|c| {
            filter
                .partner
                .as_deref()
                .is_none_or(|p| c.partner_email.eq_ignore_ascii_case(p.trim()))
        })
        .filter(|c| {
            let day = local_date(&c.received_at, config);
            from.is_none_or(|f| day.is_some_and(|d| d >= f))
                && to.is_none_or(|t| day.is_some_and(|d| d <= t))
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&cases)?);
        return Ok(ExitCode::SUCCESS);
    }
    if cases.is_empty() {
        println!("No cases.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<14} {:<15} {:<10} {:<28} {:<20} RESOLVE BY",
        "REFERENCE", "STATUS", "CHANNEL", "COMPLAINANT", "PARTNER"
    );
    for c in cases {
        let late = overdue(&c, now);
        println!(
            "{:<14} {:<15} {:<10} {:<28} {:<20} {}{}{}",
            c.reference,
            c.status,
            c.channel,
            truncate(
                c.complainant_address
                    .as_deref()
                    .or(c.complainant_name.as_deref())
                    .unwrap_or("(unknown)"),
                28
            ),
            truncate(&c.partner_name, 20),
            local(&c.resolution_due_at, config),
            if late.is_empty() {
                String::new()
            } else {
                format!("  OVERDUE: {}", late.join(", "))
            },
            if c.flags.is_empty() {
                String::new()
            } else {
                format!("  ⚑ {}", c.flags.len())
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One message of the correspondence as shown: the new part of a reply (the full text
/// stays stored).
#[derive(Debug, Serialize)]
pub(super) struct Shown<'a> {
    #[serde(flatten)]
    pub message: &'a crate::store::CaseMessage,
    pub new_part: String,
}

pub(super) fn correspondence(d: &CaseDetail) -> Vec<Shown<'_>> {
    d.messages
        .iter()
        .map(|m| Shown {
            message: m,
            new_part: if m.direction == "inbound" {
                quote::new_part(&m.text)
            } else {
                m.text.trim().to_string()
            },
        })
        .collect()
}

pub(super) fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    }
}

pub async fn show(config: &Config, reference: &str, json: bool) -> Result<ExitCode> {
    let store = Store::open(&config.database_url).await?;
    let Some(d) = store.case(reference).await? else {
        eprintln!("klachtpost: no case {reference}");
        return Ok(ExitCode::FAILURE);
    };
    let now = SystemClock.now();
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            case: &'a CaseSummary,
            overdue: Vec<&'static str>,
            correspondence: Vec<Shown<'a>>,
            history: &'a [crate::store::history::Entry],
            /// Kept for older scripts: the same list as `correspondence`, full text.
            messages: &'a [crate::store::CaseMessage],
        }
        let out = Out {
            case: &d.case,
            overdue: overdue(&d.case, now),
            correspondence: correspondence(&d),
            history: &d.events,
            messages: &d.messages,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let c = &d.case;
    println!("{}  ({})", c.reference, c.status);
    if let Some(p) = &c.purged_at {
        println!("  purged       {} (tombstone)", local(p, config));
    }
    if let Some(h) = &c.hold_reason {
        println!("  ON HOLD      {h}");
    }
    println!("  subject      {}", c.subject);
    println!(
        "  complainant  {} <{}>  ({})",
        c.complainant_name.as_deref().unwrap_or("-"),
        c.complainant_address.as_deref().unwrap_or("-"),
        c.complainant_source
    );
    if let Some(p) = &c.complainant_phone {
        println!("  phone        {p}");
    }
    println!("  channel      {}", c.channel);
    if let Some(s) = &c.staff_address {
        println!("  reported by  {s}");
    }
    println!("  partner      {} <{}>", c.partner_name, c.partner_email);
    println!("  received     {}", local(&c.received_at, config));
    println!("  deadlines");
    println!(
        "    acknowledge  {}{}",
        local(&c.ack_due_at, config),
        c.acknowledged_at
            .as_deref()
            .map(|t| format!("  (sent {})", local(t, config)))
            .unwrap_or_default()
    );
    println!(
        "    respond      {}{}",
        local(&c.response_due_at, config),
        c.response_met_at
            .as_deref()
            .map(|t| format!("  (met {})", local(t, config)))
            .unwrap_or_default()
    );
    println!("    resolve      {}", local(&c.resolution_due_at, config));
    if let Some(orig) = &c.original_resolution_due_at {
        println!(
            "    extended     from {}: {}",
            local(orig, config),
            c.extension_reason.as_deref().unwrap_or("")
        );
    }
    let late = overdue(c, now);
    if !late.is_empty() {
        println!("    OVERDUE      {}", late.join(", "));
    }
    for line in c.deadline_explanation.lines() {
        println!("    how          {line}");
    }
    if let Some(t) = &c.closed_at {
        println!("  closed       {}", local(t, config));
    }
    println!("  form");
    let field = |name: &str, v: Option<&str>| println!("    {name:<13}{}", v.unwrap_or("-"));
    field("cause", c.cause.as_deref());
    field("structural", Some(yes_no(c.structural_fault)));
    field("measure", c.improvement_measure.as_deref());
    field("handling", c.handling.as_deref());
    field("result", c.result.as_deref());
    field("evaluation", c.evaluation.as_deref());
    field(
        "satisfied",
        Some(Satisfied::from_bool(c.client_satisfied).as_str()),
    );
    for f in &c.flags {
        println!("  ⚑ {f}");
    }
    println!("  correspondence");
    for s in correspondence(&d) {
        let m = s.message;
        println!(
            "    {} {}  {:<15} {} <{}>{}",
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
        );
        println!("        {}", m.subject);
        for line in s.new_part.lines() {
            println!("        │ {line}");
        }
        for a in &m.attachment_files {
            println!(
                "        📎 {} ({}, {} bytes)",
                a.filename.as_deref().unwrap_or("(no name)"),
                a.content_type,
                a.size
            );
        }
    }
    println!("  history");
    for e in &d.events {
        println!(
            "    {}  {:<24} {:<12} {}{}",
            local(&e.at, config),
            e.event,
            e.actor,
            if e.content_purged {
                "(purged)"
            } else {
                &e.detail
            },
            e.reason
                .as_deref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        );
        for ch in &e.changes {
            println!(
                "        {}: {} → {}",
                ch.field,
                ch.old.as_deref().unwrap_or("∅"),
                ch.new.as_deref().unwrap_or("∅")
            );
        }
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

/// The changing commands of `cases`.
#[derive(Debug, Clone)]
pub enum Change {
    Record(FormUpdate),
    Assign(String),
    Status(String),
    Note(String),
    Close {
        satisfied: Option<String>,
        not_a_complaint: bool,
    },
    Reopen(String),
    Hold(String),
    Release,
}

/// Run one changing command in one transaction.
pub async fn change(
    config: &Config,
    reference: &str,
    what: Change,
    by: Option<&str>,
) -> Result<ExitCode> {
    let by = actor_name(config, by);
    let who = Actor::new(&by, SystemClock.now());
    let store = Store::open(&config.database_url).await?;
    let mut tx = store.begin().await?;
    let said = match what {
        Change::Record(form) => {
            if case::record(&mut tx, reference, &form, who).await? {
                format!("{reference}: form updated.")
            } else {
                format!("{reference}: nothing changed.")
            }
        }
        Change::Assign(partner) => {
            let wanted = partner.trim().to_ascii_lowercase();
            let p = config
                .firm
                .partners
                .iter()
                .find(|p| p.email == wanted || p.name.eq_ignore_ascii_case(partner.trim()))
                .with_context(|| {
                    format!(
                        "{partner:?} is not a partner in the config (firm.partners: {})",
                        config
                            .firm
                            .partners
                            .iter()
                            .map(|p| p.email.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            if case::assign(&mut tx, reference, p, who, None).await? {
                format!("{reference}: responsible partner is now {}.", p.name)
            } else {
                format!("{reference}: {} was already responsible.", p.name)
            }
        }
        Change::Status(s) => {
            let status: Status = s.parse().map_err(anyhow::Error::msg)?;
            if case::set_status(&mut tx, reference, status, who, None).await? {
                format!("{reference}: status {status}.")
            } else {
                format!("{reference}: already {status}.")
            }
        }
        Change::Note(text) => {
            case::note(&mut tx, reference, &text, who).await?;
            format!("{reference}: note added.")
        }
        Change::Close {
            satisfied,
            not_a_complaint,
        } => {
            let how = match (satisfied, not_a_complaint) {
                (Some(_), true) => bail!("--satisfied and --not-a-complaint exclude each other"),
                (None, true) => Closing::NotAComplaint,
                (Some(s), false) => {
                    Closing::Handled(s.parse().map_err(|e| anyhow::anyhow!("--satisfied {e}"))?)
                }
                (None, false) => {
                    bail!("say --satisfied yes|no|unknown, or --not-a-complaint")
                }
            };
            case::close(&mut tx, reference, how, who, None).await?;
            format!("{reference} closed.")
        }
        Change::Reopen(reason) => {
            case::reopen(&mut tx, reference, &reason, who).await?;
            format!("{reference} reopened (status investigating).")
        }
        Change::Hold(reason) => {
            case::hold(&mut tx, reference, &reason, who).await?;
            format!("{reference} is on hold: it is kept past retention until released.")
        }
        Change::Release => {
            case::release(&mut tx, reference, who, None).await?;
            format!("{reference}: hold released.")
        }
    };
    tx.commit().await?;
    println!("{said}");
    Ok(ExitCode::SUCCESS)
}

pub async fn extend(
    config: &Config,
    reference: &str,
    until: &str,
    reason: &str,
    by: Option<&str>,
) -> Result<ExitCode> {
    let store = Store::open(&config.database_url).await?;
    let Some(d) = store.case(reference).await? else {
        eprintln!("klachtpost: no case {reference}");
        return Ok(ExitCode::FAILURE);
    };
    let c = &d.case;
    if !is_open(c) {
        bail!("case {reference} is closed");
    }
    let date = date_arg("--until", until)?;
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
    let by = actor_name(config, by);
    let described = ext.describe(&config.calendar);
    let mut tx = store.begin().await?;
    case::extend(&mut tx, reference, &ext, &described, Actor::new(&by, now)).await?;
    if let (Some(out), Some(to)) = (&mail, c.complainant_address.as_deref()) {
        let id = crate::store::case_id_by_reference(&mut tx, reference)
            .await?
            .context("case vanished")?;
        crate::store::queue_outgoing(
            &mut tx,
            Some(id),
            "extension",
            None,
            &config.outgoing.from,
            to,
            out,
            "extension of the resolution deadline",
            now,
        )
        .await?;
    }
    tx.commit().await?;
    println!("{reference}: {described}");
    if mail.is_some() {
        println!("The complainant will be told by mail (queued; `klachtpost run` sends it).");
    } else {
        println!("No complainant address is known: tell the complainant another way.");
    }
    Ok(ExitCode::SUCCESS)
}
