//! The command line. Each subcommand's work lives in the stage modules; this file only
//! parses arguments, loads the config, and prints.

mod calendar;
mod cases;
mod explain;
mod mail;
mod oauth2;
mod partners;
mod quarantine;
mod register;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::{self, Config, Secrets};

#[derive(Debug, Parser)]
#[command(
    name = "klachtpost",
    version,
    about = "Runs a firm's complaint procedure through one mailbox"
)]
pub struct Cli {
    /// The config file.
    #[arg(long, global = true, env = "KLACHTPOST_CONFIG", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch the mailbox, open cases, send acknowledgements (runs until stopped).
    Run {
        /// Process what is in the mailbox and the outbox once, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Put example complaints into the local Maildir, process them, and show the result.
    Demo,
    /// Check the config: report every problem, and try to reach and log in to the servers.
    CheckConfig {
        /// Do not connect to the IMAP and SMTP servers.
        #[arg(long)]
        offline: bool,
    },
    /// The register of cases.
    Cases {
        #[command(subcommand)]
        command: CasesCommand,
    },
    /// The mail taken in and what was decided for it.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Mail that could not be taken in: list it, take it in again after a fix.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Show what klachtpost would decide for one mail, without changing anything.
    Explain {
        /// A mail file (.eml).
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The firm's non-working days of a year: public holidays and closing days.
    Calendar {
        #[arg(long)]
        year: i32,
        #[arg(long)]
        json: bool,
    },
    /// Is intake working: the last good pass, the backlog, open outages, the outbox.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The register as a whole.
    Register {
        #[command(subcommand)]
        command: RegisterCommand,
    },
    /// What is stored about one person.
    Person {
        #[command(subcommand)]
        command: PersonCommand,
    },
    /// Purge what is past retention ([retention] keep, keep_unattached).
    Purge {
        /// Only show what would be purged.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        by: By,
    },
    /// The register's integrity.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The complaint clock.
    Deadlines {
        #[command(subcommand)]
        command: DeadlinesCommand,
    },
    /// OAuth2 sign-in (`[oauth2]`).
    Oauth2 {
        #[command(subcommand)]
        command: Oauth2Command,
    },
    /// The partners' reminders, escalations and acknowledgement warnings.
    Reminders {
        #[command(subcommand)]
        command: RemindersCommand,
    },
    /// The digest for the partners' meeting.
    Digest {
        #[command(subcommand)]
        command: DigestCommand,
    },
    /// Copy a register from SQLite to a new PostgreSQL database (ids and the history chain
    /// included), then verify the copy's history. Needs no config.
    Migrate {
        /// The register to copy: sqlite://PATH.
        #[arg(long)]
        from: String,
        /// The new register: postgres://USER@HOST:PORT/DB (created and empty). The password
        /// from --password-file, the URL or libpq's PGPASSWORD.
        #[arg(long)]
        to: String,
        /// A file holding the password of the new database.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// The CA of the new database server's certificate (TLS, name checked).
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Oauth2Command {
    /// For flow = "refresh_token": sign in once with the device code (shows a URL and a
    /// code), then store the refresh token in refresh_token_file.
    Authorize,
}

#[derive(Debug, Subcommand)]
pub enum RemindersCommand {
    /// Show every reminder, escalation, warning and digest due at a moment, and to whom,
    /// without sending.
    Preview {
        /// Local time in the firm's time zone, "YYYY-MM-DD HH:MM" (default: now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DigestCommand {
    /// Show the next digest: when, to whom, and what it would say now.
    Preview {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CasesCommand {
    /// List cases, newest first.
    List {
        /// Only cases still being handled.
        #[arg(long)]
        open: bool,
        /// Only open cases with a deadline passed and not met.
        #[arg(long)]
        overdue: bool,
        /// Only cases of this responsible partner (mail address).
        #[arg(long, value_name = "EMAIL")]
        partner: Option<String>,
        /// Received on or after this day (YYYY-MM-DD, the firm's time zone).
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// Received on or before this day (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One case: all fields, deadlines, history and correspondence.
    Show {
        /// The case reference, e.g. KL-2026-0042.
        reference: String,
        #[arg(long)]
        json: bool,
    },
    /// Fill in the registration form's analysis.
    Record {
        reference: String,
        /// Analysis: the cause of the complaint.
        #[arg(long)]
        cause: Option<String>,
        /// Whether the fault is structural: yes or no.
        #[arg(long, value_name = "yes|no")]
        structural: Option<String>,
        /// The improvement measure taken.
        #[arg(long)]
        measure: Option<String>,
        /// How the complaint was handled.
        #[arg(long)]
        handling: Option<String>,
        /// The result.
        #[arg(long)]
        result: Option<String>,
        /// The evaluation.
        #[arg(long)]
        evaluation: Option<String>,
        /// An acknowledgement made outside klachtpost, now: phone, letter or in-person.
        #[arg(long, value_name = "phone|letter|in-person")]
        acknowledged_by: Option<String>,
        #[command(flatten)]
        by: By,
    },
    /// Make another partner responsible (mail address or name from firm.partners).
    Assign {
        reference: String,
        partner: String,
        #[command(flatten)]
        by: By,
    },
    /// Set the status: new, acknowledged, investigating or responded (close with `close`).
    Status {
        reference: String,
        status: String,
        #[command(flatten)]
        by: By,
    },
    /// Add a note to the case's history.
    Note {
        reference: String,
        text: String,
        #[command(flatten)]
        by: By,
    },
    /// Extend the resolution deadline (the complainant is told by mail).
    Extend {
        reference: String,
        /// The new last day, YYYY-MM-DD (a working day; due at its end).
        #[arg(long)]
        until: String,
        /// Why; it is recorded and told to the complainant.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        by: By,
    },
    /// Close a case: --satisfied yes|no|unknown, or --not-a-complaint.
    Close {
        reference: String,
        /// Whether the client said to be satisfied with the solution: yes, no or unknown.
        #[arg(long, value_name = "yes|no|unknown")]
        satisfied: Option<String>,
        /// It turned out not to be a complaint.
        #[arg(long)]
        not_a_complaint: bool,
        #[command(flatten)]
        by: By,
    },
    /// Reopen a closed case.
    Reopen {
        reference: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        by: By,
    },
    /// Keep a case past retention (never purged while held).
    Hold {
        reference: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        by: By,
    },
    /// End a hold.
    Release {
        reference: String,
        #[command(flatten)]
        by: By,
    },
    /// The completed registration form as one printable HTML page.
    Form {
        reference: String,
        /// Write to this file (owner-only) instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RegisterCommand {
    /// One row per case received in the period, for an auditor.
    Export {
        /// First day received (YYYY-MM-DD, the firm's time zone).
        #[arg(long, value_name = "DATE")]
        from: String,
        /// Last day received (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        to: String,
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Write to this file (owner-only) instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PersonCommand {
    /// Everything stored about one mail address: data.json and the raw mails.
    Export {
        address: String,
        /// The folder to write (created owner-only).
        #[arg(long, value_name = "DIR", default_value = "person-export")]
        output: PathBuf,
    },
}

/// Who a change is recorded as.
#[derive(Debug, Clone, clap::Args)]
pub struct By {
    /// Recorded in the history as who made the change (default: firm.operator, else the
    /// OS user).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the history's hash chain; name the first entry that does not fit.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// What is in quarantine, oldest first, and how many duplicates were recognised.
    List {
        #[arg(long)]
        json: bool,
        /// Also what was quarantined before and has been taken in since.
        #[arg(long)]
        all: bool,
    },
    /// Run intake again on a quarantined mail's stored bytes (after fixing the cause).
    Retry {
        /// The item, e.g. Q-0007.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        reference: Option<String>,
        /// Every item still in quarantine.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// List the mail taken in, newest first, with the reason for each decision.
    List {
        /// Only mail that opened no case (automatic, bounce, triage, duplicate).
        #[arg(long)]
        unfiled: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadlinesCommand {
    /// Compute the deadlines for a complaint received at a given local time.
    Explain {
        /// Local time in the firm's time zone, "YYYY-MM-DD HH:MM".
        #[arg(long)]
        received: String,
        #[arg(long)]
        json: bool,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon logs its work; one-shot commands only warnings, so their output reads.
    crate::daemon::init_tracing(match cli.command {
        Command::Run { .. } => "info",
        _ => "warn",
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("klachtpost: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("klachtpost: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The config for commands that only read or change the register: no mailbox or SMTP
/// secret is needed (outgoing mail is queued; the daemon sends it).
fn load_register(path: &std::path::Path) -> Result<Config> {
    Ok(Config::load_with(path, Secrets::Skip)?)
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run { once } => {
            let config = Config::load(&cli.config)?;
            crate::daemon::run(config, once).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => {
            crate::demo::run(&cli.config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { offline } => check_config(&cli.config, offline).await,
        Command::Cases { command } => {
            let config = load_register(&cli.config)?;
            cases_command(&config, command).await
        }
        Command::Register {
            command:
                RegisterCommand::Export {
                    from,
                    to,
                    format,
                    output,
                },
        } => {
            let config = load_register(&cli.config)?;
            register::export(&config, &from, &to, &format, output.as_deref()).await
        }
        Command::Person {
            command: PersonCommand::Export { address, output },
        } => {
            let config = load_register(&cli.config)?;
            register::person_export(&config, &address, &output).await
        }
        Command::Purge { dry_run, json, by } => {
            // Purging reaches the copies in the mailbox too, so it logs in.
            let config = Config::load(&cli.config)?;
            register::purge(&config, dry_run, json, by.by.as_deref()).await
        }
        Command::Audit {
            command: AuditCommand::Verify { json },
        } => {
            let config = load_register(&cli.config)?;
            register::audit_verify(&config, json).await
        }
        Command::Status { json } => status::status(&load_register(&cli.config)?, json).await,
        Command::Migrate {
            from,
            to,
            password_file,
            ca_file,
        } => register::migrate(&from, &to, password_file.as_deref(), ca_file).await,
        Command::Mail {
            command: MailCommand::List { unfiled, json },
        } => mail::list(&load_register(&cli.config)?, unfiled, json).await,
        Command::Quarantine { command } => {
            let config = load_register(&cli.config)?;
            match command {
                QuarantineCommand::List { json, all } => quarantine::list(&config, json, all).await,
                QuarantineCommand::Retry { reference, all } => {
                    quarantine::retry(&config, reference.as_deref(), all).await
                }
            }
        }
        Command::Explain { file, json } => explain::run(&cli.config, &file, json).await,
        Command::Calendar { year, json } => calendar::calendar(&cli.config, year, json),
        Command::Deadlines {
            command: DeadlinesCommand::Explain { received, json },
        } => calendar::deadlines_explain(&cli.config, &received, json),
        Command::Oauth2 {
            command: Oauth2Command::Authorize,
        } => oauth2::authorize(&Config::load(&cli.config)?).await,
        Command::Reminders {
            command: RemindersCommand::Preview { at, json },
        } => {
            let config = load_register(&cli.config)?;
            partners::reminders_preview(&config, at.as_deref(), json).await
        }
        Command::Digest {
            command: DigestCommand::Preview { json },
        } => {
            let config = load_register(&cli.config)?;
            partners::digest_preview(&config, json).await
        }
    }
}

async fn cases_command(config: &Config, command: CasesCommand) -> Result<ExitCode> {
    use cases::Change;
    let yes_no = |s: Option<String>| -> Result<Option<bool>> {
        s.map(|s| crate::case::parse_yes_no(&s).map_err(|e| anyhow::anyhow!("--structural {e}")))
            .transpose()
    };
    let (reference, change, by) = match command {
        CasesCommand::List {
            open,
            overdue,
            partner,
            from,
            to,
            json,
        } => {
            let filter = cases::Filter {
                open,
                overdue,
                partner,
                from,
                to,
            };
            return cases::list(config, &filter, json).await;
        }
        CasesCommand::Show { reference, json } => {
            return cases::show(config, &reference, json).await;
        }
        CasesCommand::Form { reference, output } => {
            return register::form(config, &reference, output.as_deref()).await;
        }
        CasesCommand::Extend {
            reference,
            until,
            reason,
            by,
        } => return cases::extend(config, &reference, &until, &reason, by.by.as_deref()).await,
        CasesCommand::Record {
            reference,
            cause,
            structural,
            measure,
            handling,
            result,
            evaluation,
            acknowledged_by,
            by,
        } => {
            let form = crate::case::FormUpdate {
                cause,
                structural: yes_no(structural)?,
                measure,
                handling,
                result,
                evaluation,
            };
            let change = match acknowledged_by {
                Some(method) => Change::Acknowledged(method, form),
                None => Change::Record(form),
            };
            (reference, change, by)
        }
        CasesCommand::Assign {
            reference,
            partner,
            by,
        } => (reference, Change::Assign(partner), by),
        CasesCommand::Status {
            reference,
            status,
            by,
        } => (reference, Change::Status(status), by),
        CasesCommand::Note {
            reference,
            text,
            by,
        } => (reference, Change::Note(text), by),
        CasesCommand::Close {
            reference,
            satisfied,
            not_a_complaint,
            by,
        } => (
            reference,
            Change::Close {
                satisfied,
                not_a_complaint,
            },
            by,
        ),
        CasesCommand::Reopen {
            reference,
            reason,
            by,
        } => (reference, Change::Reopen(reason), by),
        CasesCommand::Hold {
            reference,
            reason,
            by,
        } => (reference, Change::Hold(reason), by),
        CasesCommand::Release { reference, by } => (reference, Change::Release, by),
    };
    cases::change(config, &reference, change, by.by.as_deref()).await
}

async fn check_config(path: &std::path::Path, offline: bool) -> Result<ExitCode> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("{}: the config is valid", path.display());
    println!(
        "templates: {} mails rendered in Dutch and English with sample data ({})",
        crate::compose::templates::KINDS.len(),
        match &config.templates.dir {
            Some(dir) => format!("built-in, with the files in {} over them", dir.display()),
            None => "built-in".to_string(),
        }
    );
    if offline {
        return Ok(ExitCode::SUCCESS);
    }
    let mut ok = true;
    if let Some(tokens) = &config.oauth2 {
        match crate::oauth2::check(tokens).await {
            Ok(what) => println!("oauth2: {what}"),
            Err(e) => {
                ok = false;
                println!("oauth2: {e}");
            }
        }
    }
    match crate::fetch::check(&config).await {
        Ok(what) => println!("mailbox: {what}"),
        Err(e) => {
            ok = false;
            println!("mailbox: {e:#}");
        }
    }
    match crate::send::check(&config).await {
        Ok(what) => println!("outgoing: {what}"),
        Err(e) => {
            ok = false;
            println!("outgoing: {e:#}");
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
