//! klachtpost runs a small firm's complaint procedure through one mailbox.
//!
//! # Map
//!
//! Mail flows through the stages in this order; each is one module.
//!
//! ```text
//!  mailbox (IMAP / Maildir)                                    outgoing (SMTP / sendmail / file)
//!        │                                                              ▲
//!   fetch ──► parse ──► classify ──► intake ──► store ◄── outbox ◄──── send
//!                        (pure)       (one transaction: message,
//!                                      case, acknowledgement)
//! ```
//!
//! - [`fetch`]: the mailbox edge. A [`fetch::Mailbox`] lists what is new, hands over raw
//!   bytes with the server's receipt time, and moves a message away once it is stored.
//! - [`parse`]: raw bytes → [`parse::ParsedMail`] (mail-parser); never fails, flags instead.
//! - [`classify`]: the pure decision "what does this mail mean, for which case", including
//!   who may write on a case and whether the firm's server vouches for a staff sender
//!   ([`classify::authres`]).
//! - [`intake`]: stores the raw message, opens or updates the case and queues the
//!   acknowledgement in one transaction; only then does the mailbox checkpoint move.
//! - [`compose`]: builds the messages klachtpost sends (acknowledgements) from templates.
//! - [`outbox`]: the durable queue's policy: states, retry with backoff, giving up.
//! - [`send`]: the outgoing edge; one trait, SMTP / sendmail / file transports.
//! - [`daemon`]: the loops (`run`): intake and sender tasks, shutdown.
//! - [`store`]: the database (sqlx; SQLite by default, portable SQL): one file per concern
//!   (e.g. a case's parties, the mail that opened no case).
//! - [`calendar`] and [`deadlines`]: working days, Dutch holidays, the complaint clock.
//! - [`config`]: the TOML config, strict and explained. [`clock`]: injected time.
//! - [`cli`]: the command line; [`demo`]: the self-contained demonstration.

pub mod calendar;
pub mod classify;
pub mod cli;
pub mod clock;
pub mod compose;
pub mod config;
pub mod daemon;
pub mod deadlines;
pub mod demo;
pub mod fetch;
pub mod intake;
pub mod outbox;
pub mod parse;
pub mod send;
pub mod store;
pub mod tls;
