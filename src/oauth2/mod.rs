//! OAuth2 sign-in for the mailbox and for sending (Microsoft 365, Gmail, any RFC 6749
//! server), next to the password login.
//!
//! - [`config`]: the `[oauth2]` section (provider, flow, where the secrets are), validated
//!   with the rest of the config; `[mailbox] auth` / `[outgoing] auth` choose it.
//! - [`token`]: [`TokenSource`], the token client with its in-memory cache: the app-only
//!   client-credentials flow, the refresh-token flow (a rotated refresh token is saved at
//!   once, owner-only), or a command that prints a token. Shared by mailbox and sender.
//! - [`device`]: `klachtpost oauth2 authorize`, the device-code flow (RFC 8628) that puts
//!   the first refresh token in its file.
//! - [`sasl`]: the XOAUTH2 and OAUTHBEARER (RFC 7628) strings.
//! - [`imap`] and [`smtp`]: the login step for the two edges, each retrying once with a
//!   new token when the server refuses one.
//! - [`error`]: why a token could not be had ([`Cause`]: revoked consent, client secret,
//!   tenant, network), in words an administrator acts on.
//! - [`http`]: the minimal HTTPS client for the token endpoint.
//!
//! Secrets (client secret, refresh token, access tokens) are held as `SecretString` or
//! [`AccessToken`]; no `Debug`, log line or error message shows them.

pub mod config;
pub mod device;
pub mod error;
pub mod http;
pub mod imap;
pub mod sasl;
pub mod smtp;
pub mod token;

pub use config::{Flow, OAuth2Settings, Provider};
pub use error::{Cause, TokenError};
pub use token::{AccessToken, TokenSource};

/// `check-config`: obtain a token and say how.
pub async fn check(tokens: &TokenSource) -> Result<String, TokenError> {
    let s = tokens.settings();
    tokens.token().await?;
    Ok(format!(
        "obtained an access token from {} ({} flow)",
        match s.flow {
            Flow::Command => "the token command".to_string(),
            _ => s.token_url.clone(),
        },
        s.flow.name()
    ))
}

/// The cause of a failure somewhere in `e`'s chain, when a token could not be had: so a
/// mailbox or sending outage can say "the client secret has expired" rather than only
/// "cannot log in". Outage tracking (`alert_after`) uses this to name the cause in the
/// partners' alert.
pub fn token_failure(e: &anyhow::Error) -> Option<&TokenError> {
    e.chain().find_map(|c| {
        c.downcast_ref::<TokenError>().or_else(|| {
            c.downcast_ref::<imap::ImapAuthError>()
                .and_then(imap::ImapAuthError::token_error)
        })
    })
}
