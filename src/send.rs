//! The outgoing edge: one operation, "deliver these bytes to these recipients", over SMTP
//! (lettre; implicit TLS, STARTTLS or plain on loopback), a local sendmail, or a folder of
//! `.eml` files (the embedded default). Errors say whether a retry may help
//! ([`SendError::Transient`]) or not ([`SendError::Permanent`]); the outbox decides.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSendmailTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{Config, Security, ServerSettings, Transport};

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth another try later: the server is away, busy, or answered 4xx.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Will not work however often it is tried: 5xx, an invalid address.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// A configured transport.
pub enum Sender {
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    Sendmail(AsyncSendmailTransport<Tokio1Executor>),
    File(PathBuf),
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sender::Smtp(_) => f.write_str("Sender::Smtp"),
            Sender::Sendmail(_) => f.write_str("Sender::Sendmail"),
            Sender::File(d) => write!(f, "Sender::File({})", d.display()),
        }
    }
}

impl Sender {
    pub fn from_config(config: &Config) -> Result<Sender> {
        Ok(match &config.outgoing.transport {
            Transport::Smtp(server) => Sender::Smtp(Box::new(smtp_transport(server)?)),
            Transport::Sendmail { command } => {
                Sender::Sendmail(AsyncSendmailTransport::<Tokio1Executor>::new_with_command(
                    command.as_os_str(),
                ))
            }
            Transport::File { dir } => {
                crate::store::create_private_dir(dir).with_context(|| {
                    format!("cannot create the outbox folder {}", dir.display())
                })?;
                Sender::File(dir.clone())
            }
        })
    }

    /// Deliver `raw` to `recipients`, with `from` as the envelope sender.
    pub async fn send(
        &self,
        from: &str,
        recipients: &[String],
        raw: &[u8],
        file_stem: &str,
    ) -> Result<(), SendError> {
        let envelope = || -> Result<Envelope, SendError> {
            let from = from
                .parse()
                .map_err(|e| SendError::Permanent(format!("invalid sender address: {e}")))?;
            let to = recipients
                .iter()
                .map(|r| r.parse())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SendError::Permanent(format!("invalid recipient address: {e}")))?;
            Envelope::new(Some(from), to).map_err(|e| SendError::Permanent(e.to_string()))
        };
        match self {
            Sender::Smtp(t) => {
                let env = envelope()?;
                t.send_raw(&env, raw).await.map(|_| ()).map_err(|e| {
                    if e.is_permanent() {
                        SendError::Permanent(e.to_string())
                    } else {
                        SendError::Transient(e.to_string())
                    }
                })
            }
            Sender::Sendmail(t) => {
                let env = envelope()?;
                t.send_raw(&env, raw)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendError::Transient(e.to_string()))
            }
            Sender::File(dir) => {
                envelope()?;
                write_file(dir, file_stem, raw).map_err(|e| SendError::Transient(e.to_string()))
            }
        }
    }
}

/// Write atomically: a reader of the folder never sees half a message.
/// The folder and files are owner-only: raw mail is confidential.
fn write_file(dir: &Path, stem: &str, raw: &[u8]) -> std::io::Result<()> {
    crate::store::create_private_dir(dir)?;
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let tmp = dir.join(format!(".{safe}.tmp"));
    crate::export::person::write_private(&tmp, raw)?;
    std::fs::rename(&tmp, dir.join(format!("{safe}.eml")))
}

fn smtp_transport(server: &ServerSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone())
        .port(server.port)
        .timeout(Some(server.timeout));
    let params = || -> Result<TlsParameters> {
        let mut b = TlsParameters::builder(server.host.clone());
        if let Some(ca) = &server.ca_file {
            let pem = std::fs::read(ca)
                .with_context(|| format!("cannot read the CA file {}", ca.display()))?;
            b = b.add_root_certificate(
                Certificate::from_pem(&pem)
                    .with_context(|| format!("no certificate in {}", ca.display()))?,
            );
        }
        b.build().context("cannot set up TLS for SMTP")
    };
    builder = match server.security {
        Security::None => builder.tls(Tls::None),
        Security::Starttls => builder.tls(Tls::Required(params()?)),
        Security::Tls => builder.tls(Tls::Wrapper(params()?)),
    };
    if let (Some(user), Some(password)) = (&server.username, &server.password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_string(),
        ));
    }
    Ok(builder.build())
}

/// `check-config`: connect (and log in) to the SMTP server, or check the folder/command.
pub async fn check(config: &Config) -> Result<String> {
    match &config.outgoing.transport {
        Transport::Smtp(server) => {
            let t = smtp_transport(server)?;
            match t.test_connection().await {
                Ok(true) => Ok(format!(
                    "connected to {}:{}{}",
                    server.host,
                    server.port,
                    if server.username.is_some() {
                        " and logged in"
                    } else {
                        ""
                    }
                )),
                Ok(false) => anyhow::bail!(
                    "{}:{} did not answer as an SMTP server",
                    server.host,
                    server.port
                ),
                Err(e) => Err(anyhow::anyhow!(
                    "cannot connect to {}:{}: {e}",
                    server.host,
                    server.port
                )),
            }
        }
        Transport::Sendmail { command } => {
            if std::fs::metadata(command).is_ok() {
                Ok(format!("sendmail command {} exists", command.display()))
            } else {
                anyhow::bail!("sendmail command {} does not exist", command.display())
            }
        }
        Transport::File { dir } => {
            crate::store::create_private_dir(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Ok(format!("outgoing mail is written to {}", dir.display()))
        }
    }
}
