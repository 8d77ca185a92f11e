//! The command line. Each subcommand's work lives in the stage modules; this file only
//! parses arguments, loads the config, and prints.

mod calendar;
mod cases;
mod explain;
mod mail;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::{self, Config};

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
    /// The complaint clock.
    Deadlines {
        #[command(subcommand)]
        command: DeadlinesCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum CasesCommand {
    /// List cases, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One case, its deadlines and its correspondence.
    Show {
        /// The case reference, e.g. KL-2026-0042.
        reference: String,
        #[arg(long)]
        json: bool,
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
    },
    /// Close a case.
    Close {
        reference: String,
        /// Whether the client said to be satisfied with the solution: yes or no.
        #[arg(long)]
        satisfied: Option<String>,
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

fn load(path: &std::path::Path) -> Result<Config> {
    Ok(Config::load(path)?)
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run { once } => {
            let config = load(&cli.config)?;
            crate::daemon::run(config, once).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => {
            crate::demo::run(&cli.config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { offline } => check_config(&cli.config, offline).await,
        Command::Cases { command } => {
            let config = load(&cli.config)?;
            match command {
                CasesCommand::List { json } => cases::list(&config, json).await,
                CasesCommand::Show { reference, json } => {
                    cases::show(&config, &reference, json).await
                }
                CasesCommand::Extend {
                    reference,
                    until,
                    reason,
                } => cases::extend(&config, &reference, &until, &reason).await,
                CasesCommand::Close {
                    reference,
                    satisfied,
                } => cases::close(&config, &reference, satisfied.as_deref()).await,
            }
        }
        Command::Mail {
            command: MailCommand::List { unfiled, json },
        } => mail::list(&load(&cli.config)?, unfiled, json).await,
        Command::Explain { file, json } => explain::run(&cli.config, &file, json).await,
        Command::Calendar { year, json } => calendar::calendar(&cli.config, year, json),
        Command::Deadlines {
            command: DeadlinesCommand::Explain { received, json },
        } => calendar::deadlines_explain(&cli.config, &received, json),
    }
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
    if offline {
        return Ok(ExitCode::SUCCESS);
    }
    let mut ok = true;
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
