//! `klachtpost purge`, `audit verify`, `register export`, `person export`, `cases form`:
//! the register as a whole and what it gives out.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::store::{Store, history};

use super::cases::{actor_name, date_arg};

pub async fn purge(
    config: &Config,
    dry_run: bool,
    json: bool,
    by: Option<&str>,
) -> Result<ExitCode> {
    let by = actor_name(config, by);
    let store = Store::open(&config.database_url).await?;
    let report = crate::retention::purge(&store, config, SystemClock.now(), &by, dry_run).await?;
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

/// `migrate --from sqlite://… --to postgres://…`: copy the register, then verify the
/// copy's history chain as `audit verify` does.
pub async fn migrate(
    from: &str,
    to: &str,
    password_file: Option<&Path>,
    ca_file: Option<std::path::PathBuf>,
) -> Result<ExitCode> {
    use crate::store::{DatabaseUrl, Kind};
    let from = DatabaseUrl::new(from);
    let mut to = DatabaseUrl::new(to);
    if from.kind() != Kind::Sqlite || !from.starts_with("sqlite:") {
        bail!("--from must be a sqlite: URL (got {})", from.redacted());
    }
    if to.kind() != Kind::Postgres {
        bail!("--to must be a postgres:// URL (got {})", to.redacted());
    }
    if let Some(file) = password_file {
        let password = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the password file {}", file.display()))?;
        to.password = Some(password.trim_end_matches(['\r', '\n']).to_string().into());
    }
    to.ca_file = ca_file;
    if !crate::store::Store::exists(&from)? {
        bail!("there is no register at {}", from.redacted());
    }
    let source = Store::open(&from)
        .await
        .with_context(|| format!("cannot open {}", from.redacted()))?;
    let target = Store::open(&to)
        .await
        .with_context(|| format!("cannot open {}", to.redacted()))?;
    // What the outgoing server accepted but only the SQLite journal knows is marked sent
    // first: PostgreSQL has no journal, and a row left `sending` would be sent again.
    crate::outbox::fold_confirmations(&source).await?;
    let copied = crate::store::copy::sqlite_to_postgres(&source, &target).await?;
    println!("Copied {} to {}:", from.redacted(), to.redacted());
    for (table, rows) in &copied.tables {
        println!("  {table}: {rows}");
    }
    let v = history::verify(target.pool()).await?;
    match &v.broken {
        None => {
            println!("The copy's history is intact: {} entries.", v.entries);
            println!("Head hash: {}", v.head);
            Ok(ExitCode::SUCCESS)
        }
        Some(b) => {
            println!(
                "The copy's history does NOT verify: entry {} — {}",
                b.entry, b.problem
            );
            Ok(ExitCode::FAILURE)
        }
    }
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

/// `cases form REF [--output FILE]`: the registration form as one HTML page.
pub async fn form(config: &Config, reference: &str, output: Option<&Path>) -> Result<ExitCode> {
    let store = Store::open(&config.database_url).await?;
    let Some(d) = store.case(reference).await? else {
        eprintln!("klachtpost: no case {reference}");
        return Ok(ExitCode::FAILURE);
    };
    let html = crate::export::form::render(
        &d,
        &config.firm.name,
        config.firm.timezone,
        SystemClock.now(),
    );
    match output {
        Some(path) => {
            crate::export::person::write_private(path, html.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("{reference}: form written to {}", path.display());
        }
        None => print!("{html}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `register export --from DATE --to DATE [--format csv|json] [--output FILE]`.
pub async fn export(
    config: &Config,
    from: &str,
    to: &str,
    format: &str,
    output: Option<&Path>,
) -> Result<ExitCode> {
    let from = date_arg("--from", from)?;
    let to = date_arg("--to", to)?;
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let store = Store::open(&config.database_url).await?;
    let cases = store.list_cases().await?;
    let rows =
        crate::export::register::rows(&cases, from, to, config.firm.timezone, SystemClock.now());
    let text = match format.trim().to_ascii_lowercase().as_str() {
        "csv" => crate::export::register::to_csv(&rows),
        "json" => serde_json::to_string_pretty(&rows)? + "\n",
        other => bail!("--format {other:?}: expected csv or json"),
    };
    match output {
        Some(path) => {
            crate::export::person::write_private(path, text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("{} cases written to {}", rows.len(), path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `person export ADDRESS [--output DIR]`: everything stored about one address.
pub async fn person_export(config: &Config, address: &str, output: &Path) -> Result<ExitCode> {
    let store = Store::open(&config.database_url).await?;
    let mut cases = Vec::new();
    for reference in crate::store::person::cases_of(store.pool(), address).await? {
        if let Some(d) = store.case(&reference).await? {
            cases.push(d);
        }
    }
    let messages = crate::store::person::messages_of(store.pool(), address).await?;
    let written = crate::export::person::write(
        output,
        &address.trim().to_ascii_lowercase(),
        crate::store::ts(SystemClock.now()),
        &cases,
        &messages,
    )
    .with_context(|| format!("cannot write the export to {}", output.display()))?;
    println!(
        "{} cases and {} messages written to {} ({} files)",
        cases.len(),
        messages.len(),
        output.display(),
        written.len()
    );
    Ok(ExitCode::SUCCESS)
}
