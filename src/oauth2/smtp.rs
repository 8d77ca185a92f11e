//! SMTP AUTH with a bearer token (lettre's XOAUTH2: the token as the "password"). lettre
//! has no OAUTHBEARER, and Microsoft 365 and Gmail both take XOAUTH2 for SMTP.
//!
//! The transport is built per delivery with the current token (lettre fixes credentials
//! at build time; there is no connection pool to keep). A refused token is replaced once
//! and the delivery tried again.

use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::error::TokenError;
use super::token::{AccessToken, TokenSource};

/// Why a delivery with an OAuth2 login failed.
#[derive(Debug, thiserror::Error)]
pub enum SmtpAuthError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(
        "the SMTP server refused the OAuth2 token twice: the app may lack the send permission (SMTP.SendAsApp), or SMTP AUTH is off for the mailbox"
    )]
    Refused,
    #[error("cannot set up the SMTP connection: {0}")]
    Setup(String),
    /// Anything else the server or connection said; the caller classifies it as usual.
    #[error(transparent)]
    Smtp(SmtpError),
}

/// Whether lettre's error is the server refusing the login. A refused XOAUTH2 login ends
/// in 535 (or 530/534); Postfix with Dovecot SASL first relays Dovecot's JSON error as a
/// `334` challenge, which lettre's XOAUTH2 cannot answer and reports as a client error.
pub fn is_auth_rejection(e: &SmtpError) -> bool {
    let code = e.status().map(|c| c.to_string());
    matches!(code.as_deref(), Some("530" | "534" | "535"))
        || (e.is_client() && e.to_string().contains("challenge"))
}

/// Deliver with a token from `tokens`; `build` makes the transport for one token.
pub async fn send_raw<F>(
    tokens: &TokenSource,
    build: F,
    envelope: &Envelope,
    raw: &[u8],
) -> Result<(), SmtpAuthError>
where
    F: Fn(&AccessToken) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>>,
{
    let token = tokens.token().await?;
    let transport = build(&token).map_err(|e| SmtpAuthError::Setup(format!("{e:#}")))?;
    match transport.send_raw(envelope, raw).await {
        Ok(_) => return Ok(()),
        Err(e) if is_auth_rejection(&e) => {
            tracing::warn!(
                event = "oauth2.smtp_refused",
                "the SMTP server refused the access token"
            );
        }
        Err(e) => return Err(SmtpAuthError::Smtp(e)),
    }
    let token = tokens.refresh_after_rejection(&token).await?;
    let transport = build(&token).map_err(|e| SmtpAuthError::Setup(format!("{e:#}")))?;
    match transport.send_raw(envelope, raw).await {
        Ok(_) => Ok(()),
        Err(e) if is_auth_rejection(&e) => Err(SmtpAuthError::Refused),
        Err(e) => Err(SmtpAuthError::Smtp(e)),
    }
}

/// `check-config`: connect and log in (lettre's test connection logs in), with one retry
/// on a refused token.
pub async fn check<F>(tokens: &TokenSource, build: F) -> Result<(), SmtpAuthError>
where
    F: Fn(&AccessToken) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>>,
{
    let token = tokens.token().await?;
    let transport = build(&token).map_err(|e| SmtpAuthError::Setup(format!("{e:#}")))?;
    match transport.test_connection().await {
        Ok(_) => return Ok(()),
        Err(e) if is_auth_rejection(&e) => {}
        Err(e) => return Err(SmtpAuthError::Smtp(e)),
    }
    let token = tokens.refresh_after_rejection(&token).await?;
    let transport = build(&token).map_err(|e| SmtpAuthError::Setup(format!("{e:#}")))?;
    match transport.test_connection().await {
        Ok(_) => Ok(()),
        Err(e) if is_auth_rejection(&e) => Err(SmtpAuthError::Refused),
        Err(e) => Err(SmtpAuthError::Smtp(e)),
    }
}
