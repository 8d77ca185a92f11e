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
//!                        (pure)       (per mail a savepoint: message, case,
//!                                      acknowledgement; on SQLite a batch is one
//!                                      transaction)
//! ```
//!
//! - [`fetch`]: the mailbox edge. A [`fetch::Mailbox`] lists what is new, hands over raw
//!   bytes with the server's receipt time, and moves a message away once it is stored.
//! - [`parse`]: raw bytes → [`parse::ParsedMail`] (mail-parser); never fails, flags instead.
//!   A large mail is parsed as its skeleton, without the bodies of its large binary
//!   attachments, which are never decoded (`parse/skeleton.rs`).
//! - [`classify`]: the pure decision "what does this mail mean, for which case", including
//!   who may write on a case and whether the firm's server vouches for a staff sender
//!   ([`classify::authres`]).
//! - [`intake`]: stores the raw message, opens or updates the case and queues the
//!   acknowledgement in one transaction (on SQLite the batch's, each mail behind a
//!   savepoint; on PostgreSQL the mail's own); only then does the mailbox checkpoint move.
//!   [`intake::identity`] knows a mail seen before by what it is (duplicates are recorded,
//!   never taken in twice); [`intake::quarantine`] is the fault boundary: a mail that
//!   cannot be taken in is kept raw in quarantine and the partners are told, and intake
//!   goes on.
//! - [`compose`]: builds every message klachtpost sends from templates (minijinja; built-in
//!   defaults, a firm's own files over them; Dutch and English, text and HTML).
//! - [`outbox`]: the durable queue's policy: states, retry with backoff, giving up,
//!   transport outages, loop and flood protection.
//! - [`send`]: the outgoing edge (SMTP / sendmail / file); tells a transport outage from a
//!   refused mail; redacts SMTP replies.
//! - [`daemon`]: the loops (`run`): intake and sender tasks, supervised (restarted with
//!   backoff; the daemon exits non-zero when one keeps failing), shutdown; `daemon/batch.rs`
//!   intake batch by batch (taken in, made durable, moved; a backlog's batches overlap),
//!   `daemon/supervise.rs` backoff and restarts, `daemon/process.rs` logging, the one CPU
//!   (`[run] cpus`) and the signals.
//! - [`lease`]: several instances on one database: each mailbox is watched by the holder
//!   of its lease (renewed every few seconds, taken over when the holder dies), and each
//!   running instance says it is alive, so only the outbox claims of instances that are
//!   gone are taken again.
//! - [`health`]: outages of the mailbox and of outgoing mail, what `klachtpost status`
//!   shows; for the mailbox the partners are told once after `alerts.alert_after` and once
//!   on recovery (for outgoing mail the outbox tells them through `[outgoing.fallback]`).
//! - [`case`]: the one place where a case changes: typed statuses and the case commands
//!   (open, assign, status, form fields, note, extend, close, reopen, hold, purge …), each in
//!   the caller's transaction with one entry in the hash-chained history.
//! - [`export`]: what the register gives out: the registration form (HTML), the register
//!   for auditors (CSV/JSON), a person's data (access request).
//! - [`retention`]: purging closed cases past `[retention] keep` to a tombstone, and mail
//!   without a case; the daemon's daily job.
//! - [`store`]: the database (sqlx; SQLite by default, or PostgreSQL from the URL): one
//!   file per concern (e.g. a case's parties, the mail that opened no case), each query
//!   written once for both ([`store::Pool`], [`store::Tx`], a transaction's statements as
//!   [`store::Sql`], on SQLite run on the calling thread, `store/direct.rs`; what differs
//!   in [`store::dialect`]); the history chain and `audit verify` in [`store::history`];
//!   intake's batches made durable at once (`batches.rs`), the outgoing server's 250
//!   journaled outside SQLite's write lock (`confirmations.rs`), a message with its raw
//!   mail (in `message_raw`) and its outbox row written together (`messages.rs`), a large
//!   raw mail written into its SQLite row in pieces (`blob.rs`), SQLite's log copied
//!   into the file by a thread of its own, not by the commit that fills it
//!   (`checkpoint.rs`).
//! - [`calendar`] and [`deadlines`]: working days, Dutch holidays, the complaint clock.
//! - [`oauth2`]: OAuth2 sign-in for both edges (Microsoft 365, Gmail): the `[oauth2]`
//!   config, the token client with its cache, the flows (app-only client credentials,
//!   refresh token, command, `oauth2 authorize`), the XOAUTH2/OAUTHBEARER login steps.
//! - [`config`]: the TOML config, strict and explained. [`clock`]: injected time.
//!   [`tls`]: the rustls client settings (public roots plus an optional `ca_file`) that
//!   IMAP and the OAuth2 token client share.
//! - [`partners`]: the partners' side: assignment rules, the new-complaint notice (an
//!   intake transaction's new cases told in one mail per partner, just before it commits),
//!   reminders and escalation, the acknowledgement watchdog, the digest, commands by reply.
//! - [`cli`]: the command line; [`demo`]: the self-contained demonstration.

pub mod calendar;
pub mod case;
pub mod classify;
pub mod cli;
pub mod clock;
pub mod compose;
pub mod config;
pub mod daemon;
pub mod deadlines;
pub mod demo;
pub mod export;
pub mod fetch;
pub mod health;
pub mod intake;
pub mod lease;
pub mod oauth2;
pub mod outbox;
pub mod parse;
pub mod partners;
pub mod retention;
pub mod send;
pub mod store;
pub mod tls;
