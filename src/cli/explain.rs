//! `klachtpost explain FILE.eml`: the classifier's decision for one mail, changing nothing.
//!
//! No database is consulted yet: the decision is made with an empty [`Known`], so a reply
//! shows as what it would be without its case. [`decide`] takes a `Known` so the store's
//! answers can be passed in once they exist.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::classify::{self, Context, Decision, Known, Lookups};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Firm, Secrets};

/// Where the arrival time used for the decision comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalBasis {
    /// The mail's Date header.
    DateHeader,
    /// The file's modification time (the mail has no valid Date header).
    FileTime,
    /// Neither was there: the current time.
    Now,
}

impl ArrivalBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            ArrivalBasis::DateHeader => "the mail's Date header",
            ArrivalBasis::FileTime => "the file's modification time (no valid Date header)",
            ArrivalBasis::Now => "the current time (no Date header, no file time)",
        }
    }
}

/// A decision with what it was made from.
#[derive(Debug, Clone)]
pub struct Explained {
    pub decision: Decision,
    pub lookups: Lookups,
    pub arrival: DateTime<Utc>,
    pub arrival_basis: ArrivalBasis,
}

impl Explained {
    /// The JSON printed by `--json`: the decision's keys plus `lookups` and `arrival`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = self.decision.to_json();
        if let serde_json::Value::Object(map) = &mut v {
            map.insert(
                "lookups".into(),
                serde_json::json!({
                    "message_ids": self.lookups.message_ids,
                    "references": self.lookups.references,
                }),
            );
            map.insert(
                "arrival".into(),
                serde_json::json!({
                    "at": self.arrival.to_rfc3339_opts(SecondsFormat::Secs, true),
                    "from": self.arrival_basis.as_str(),
                }),
            );
            map.insert("store_consulted".into(), serde_json::Value::Bool(false));
        }
        v
    }
}

/// The addresses klachtpost sends from, lower-cased.
pub fn own_addresses(config: &Config) -> Vec<String> {
    let mut own = vec![config.firm.address.to_ascii_lowercase()];
    let from = config.outgoing.from.to_ascii_lowercase();
    if !own.contains(&from) {
        own.push(from);
    }
    own
}

/// Parse and classify raw bytes. `file_time` is used when the mail has no Date header.
pub fn decide(
    firm: &Firm,
    own_addresses: Vec<String>,
    raw: &[u8],
    file_time: Option<DateTime<Utc>>,
    known: &Known,
) -> Explained {
    let mail = crate::parse::parse(raw);
    let (arrival, arrival_basis) = match (mail.date, file_time) {
        (Some(d), _) => (d, ArrivalBasis::DateHeader),
        (None, Some(t)) => (t, ArrivalBasis::FileTime),
        (None, None) => (SystemClock.now(), ArrivalBasis::Now),
    };
    let ctx = Context {
        firm,
        own_addresses,
        received_at: arrival,
    };
    Explained {
        lookups: classify::lookups(&mail),
        decision: classify::classify(&mail, &ctx, known),
        arrival,
        arrival_basis,
    }
}

/// Explain one mail. When the database exists it is consulted read-only, so a reply shows
/// the case it threads to; nothing is written.
pub async fn run(config_path: &Path, file: &Path, json: bool) -> Result<ExitCode> {
    let loaded = Config::load_with(config_path, Secrets::Skip)
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            let raw = std::fs::read(file)
                .with_context(|| format!("cannot read the mail file {}", file.display()))?;
            Ok((config, raw))
        });
    let (config, raw) = match loaded {
        Ok(v) => v,
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "error": format!("{e:#}"), "file": file.display().to_string() })
                );
            }
            eprintln!("klachtpost explain: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let file_time = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Utc>::from);
    let known = match crate::store::Store::open_read_only(&config.database_url).await {
        Ok(Some(store)) => store
            .known(&crate::classify::lookups(&crate::parse::parse(&raw)))
            .await
            .context("cannot read the database")?,
        Ok(None) => Known::default(),
        Err(e) => return Err(e).context("cannot open the database"),
    };
    let explained = decide(
        &config.firm,
        own_addresses(&config),
        &raw,
        file_time,
        &known,
    );
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&explained.to_json())
                .context("cannot write the decision as JSON")?
        );
    } else {
        print!("{}", text(&explained, &config.firm));
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable explanation.
pub fn text(e: &Explained, firm: &Firm) -> String {
    let d = &e.decision;
    let mut out = String::new();
    let mut line = |k: &str, v: &str| {
        out.push_str(&format!("{k:<14}{v}\n"));
    };
    line("kind:", d.kind.as_str());
    line("reason:", &d.reason);
    let case = match (&d.case, &d.thread_evidence) {
        (Some(c), Some(ev)) => format!("{c} (matched by {:?} {})", ev.via, ev.value),
        (Some(c), None) => c.clone(),
        (None, _) => "none (no database consulted: only what the mail itself says)".into(),
    };
    line("case:", &case);
    let complainant = match (&d.complainant, &d.complainant_name) {
        (Some(c), _) => c.to_string(),
        (None, Some(n)) => format!("{n} (no mail address)"),
        (None, None) => "none recognised".into(),
    };
    let source = d
        .complainant_source
        .map(|s| format!(" — from: {}", s.describe()))
        .unwrap_or_default();
    line("complainant:", &format!("{complainant}{source}"));
    if let Some(p) = &d.complainant_phone {
        line("phone:", p);
    }
    let channel = match &d.channel_detail {
        Some(detail) => format!("{} ({detail})", d.channel.as_str()),
        None => d.channel.as_str().to_string(),
    };
    line("channel:", &channel);
    line(
        "received at:",
        &format!(
            "{} {} ({}; {:?})",
            d.received_at
                .with_timezone(&firm.timezone)
                .format("%Y-%m-%d %H:%M"),
            firm.timezone.name(),
            d.received_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            d.received_at_source
        ),
    );
    line(
        "arrival:",
        &format!(
            "{} (from {})",
            e.arrival.to_rfc3339_opts(SecondsFormat::Secs, true),
            e.arrival_basis.as_str()
        ),
    );
    line("acknowledge:", if d.acknowledge { "yes" } else { "no" });
    line(
        "direction:",
        match d.direction {
            classify::Direction::Inbound => "inbound",
            classify::Direction::Outbound => "outbound",
        },
    );
    if let Some(s) = &d.staff {
        line("staff:", &s.to_string());
    }
    if let Some(s) = &d.original_subject {
        line("subject:", s);
    }
    if let Some(s) = &d.staff_summary {
        line("tell staff:", s);
    }
    for f in &d.flags {
        line("flag:", f);
    }
    if !e.lookups.message_ids.is_empty() || !e.lookups.references.is_empty() {
        line(
            "would ask:",
            &format!(
                "message ids [{}], references [{}]",
                e.lookups.message_ids.join(", "),
                e.lookups.references.join(", ")
            ),
        );
    }
    let preview: String = d
        .new_part
        .lines()
        .take(6)
        .collect::<Vec<_>>()
        .join("\n              ");
    if !preview.trim().is_empty() {
        line("new part:", &preview);
    }
    out
}
