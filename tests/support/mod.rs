//! Real mail servers for integration tests: a private Dovecot (IMAP, IMAPS, optionally LMTP,
//! optionally OAuth2 bearer tokens checked by its `oauth2` passdb), Postfix's smtp-sink (SMTP
//! with fault injection), a full Postfix with STARTTLS that delivers into the Dovecot, an
//! OAuth2 token server ([`TokenServer`]), and the certificates they use; a private
//! PostgreSQL ([`Postgres`]), and the one way tests write their configs ([`TestConfig`]),
//! whose database is SQLite or PostgreSQL as `KLACHTPOST_TEST_DATABASE` says.
//!
//! Include it from a test file with `mod support;`. Every server gets its own temp dir and
//! ports on 127.0.0.1, so tests run in parallel; it is stopped when dropped, and also when
//! the test process dies (parent-death signal). Starting waits for readiness by polling with
//! a deadline, never by sleeping a fixed time. The servers come from Debian packages that
//! `scripts/install-deps` installs.
//!
//! ```ignore
//! mod support;
//! use support::{Dovecot, SmtpSink};
//!
//! #[tokio::test]
//! async fn acknowledges_a_complaint() {
//!     let imap = Dovecot::start();
//!     let smtp = SmtpSink::start(&[]);
//!     imap.append("INBOX", b"From: a@example.org\r\nSubject: klacht\r\n\r\nHallo\r\n").await;
//!     // ... run the daemon against imap.host / imap.imaps_port / smtp.port ...
//!     let sent = smtp.wait_for(1, Duration::from_secs(5)).await;
//!     assert_eq!(sent[0].rcpt_to, ["a@example.org"]);
//! }
//!
//! // SMTP over TLS, read back from the complainant's mailbox (Postfix needs root):
//! #[tokio::test]
//! async fn acknowledgement_reaches_the_complainant() {
//!     let imap = Dovecot::start_with(DovecotOptions::for_postfix());
//!     let smtp = Postfix::start(&imap);
//!     let jos = imap.add_user("jos");
//!     // ... daemon sends via smtp.host / smtp.smtp_port (STARTTLS) or
//!     //     smtp.submissions_port (implicit TLS), AUTH imap.user / imap.password,
//!     //     trusting imap.ca_pem ...
//!     imap.as_user(&jos).wait_for_count("INBOX", 1, Duration::from_secs(5)).await;
//! }
//! ```
//!
//! Clients must trust `ca_pem` (the certificate names `localhost` and `127.0.0.1`).
//! Helpers panic with the server's log when something fails, since they are test set-up.

// Each test binary uses a different part of the harness.
#![allow(dead_code, unused_imports)]

pub mod certs;
pub mod config;
pub mod daemon;
pub mod database;
pub mod dovecot;
pub mod oauth2;
pub mod postfix;
pub mod postgres;
mod process;
pub mod proxy;
pub mod smtp;

pub use certs::{TestCa, client_config};
pub use config::{FIRM, FIRM_TWO_PARTNERS, TestConfig, open_store, template};
pub use daemon::Daemon;
pub use database::{BACKEND_ENV, Backend, PASSWORD_ENV, Secret, TestDatabase};
pub use dovecot::{
    Account, Dovecot, DovecotOptions, ImapClient, ImapSession, ImapStream, MAIN_USER, Security,
    UserImap, WITHOUT_MOVE, WITHOUT_MOVE_OR_UIDPLUS,
};
pub use oauth2::TokenServer;
pub use postfix::Postfix;
pub use postgres::{PgDatabase, PgOptions, Postgres};
pub use process::force_next_ports;
pub use proxy::FreezingProxy;
pub use smtp::{Received, SmtpSink};
