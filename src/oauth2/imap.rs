//! IMAP `AUTHENTICATE` with a bearer token (RFC 3501 §6.2.2): XOAUTH2, or OAUTHBEARER when
//! the server offers that and not XOAUTH2. A refused token is replaced once (the cache may
//! hold one the provider has revoked early) and the login tried again on the same
//! connection.

use std::fmt::Debug;
use std::time::Duration;

use async_imap::{Client, Session};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::error::TokenError;
use super::sasl::{ImapAuthenticator, Mechanism};
use super::token::{AccessToken, TokenSource};

/// Why an OAuth2 login to IMAP failed.
#[derive(Debug, thiserror::Error)]
pub enum ImapAuthError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(
        "the IMAP server refused the OAuth2 token for {user} twice ({mechanism}, status {status}): the app may lack the mailbox permission (Exchange: Add-MailboxPermission) or the IMAP permission"
    )]
    Refused {
        user: String,
        mechanism: &'static str,
        status: String,
    },
    #[error("cannot log in to IMAP with OAuth2: {0}")]
    Protocol(String),
    #[error("the IMAP login timed out")]
    Timeout,
}

impl ImapAuthError {
    /// The token could not be had (as opposed to the server refusing a token).
    pub fn token_error(&self) -> Option<&TokenError> {
        match self {
            ImapAuthError::Token(e) => Some(e),
            _ => None,
        }
    }
}

/// The mechanism to use: XOAUTH2 unless the server offers only OAUTHBEARER.
pub async fn choose_mechanism<T>(client: &mut Client<T>) -> Mechanism
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    match auth_capabilities(client).await {
        Some(caps) if caps.iter().any(|c| c == "XOAUTH2") => Mechanism::Xoauth2,
        Some(caps) if caps.iter().any(|c| c == "OAUTHBEARER") => Mechanism::OAuthBearer,
        _ => Mechanism::Xoauth2,
    }
}

/// The `AUTH=` capabilities before login, upper-cased; `None` if they cannot be read.
async fn auth_capabilities<T>(client: &mut Client<T>) -> Option<Vec<String>>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    use async_imap::imap_proto::{Capability, Response, Status};
    // async-imap offers CAPABILITY only on a session; before login it is sent by hand with
    // its own tag (the library's tags are A0001, A0002, …).
    const TAG: &str = "KPCAP";
    let stream = client.get_mut();
    stream
        .write_all(format!("{TAG} CAPABILITY\r\n").as_bytes())
        .await
        .ok()?;
    stream.flush().await.ok()?;
    let mut found = Vec::new();
    loop {
        let response = tokio::time::timeout(Duration::from_secs(30), client.read_response())
            .await
            .ok()?
            .ok()??;
        match response.parsed() {
            Response::Capabilities(caps) => {
                for c in caps {
                    if let Capability::Auth(m) = c {
                        found.push(m.to_ascii_uppercase());
                    }
                }
            }
            Response::Done { tag, status, .. } if tag.0 == TAG => {
                return (*status == Status::Ok).then_some(found);
            }
            _ => {}
        }
    }
}

/// Log in as `user` with a token from `tokens`.
pub async fn authenticate<T>(
    mut client: Client<T>,
    user: &str,
    host: &str,
    port: u16,
    tokens: &TokenSource,
    timeout: Duration,
) -> Result<Session<T>, ImapAuthError>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let mechanism = choose_mechanism(&mut client).await;
    authenticate_with(client, mechanism, user, host, port, tokens, timeout).await
}

/// [`authenticate`] with the mechanism chosen by the caller.
pub async fn authenticate_with<T>(
    client: Client<T>,
    mechanism: Mechanism,
    user: &str,
    host: &str,
    port: u16,
    tokens: &TokenSource,
    timeout: Duration,
) -> Result<Session<T>, ImapAuthError>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let token = tokens.token().await?;
    let client = match attempt(client, mechanism, user, host, port, &token, timeout).await? {
        Ok(session) => return Ok(session),
        Err((client, _status)) => client,
    };
    let token = tokens.refresh_after_rejection(&token).await?;
    match attempt(client, mechanism, user, host, port, &token, timeout).await? {
        Ok(session) => Ok(session),
        Err((_client, status)) => Err(ImapAuthError::Refused {
            user: user.to_string(),
            mechanism: mechanism.name(),
            status,
        }),
    }
}

type Attempt<T> = Result<Session<T>, (Client<T>, String)>;

/// One AUTHENTICATE: a session, or the client back with the server's refusal.
async fn attempt<T>(
    client: Client<T>,
    mechanism: Mechanism,
    user: &str,
    host: &str,
    port: u16,
    token: &AccessToken,
    timeout: Duration,
) -> Result<Attempt<T>, ImapAuthError>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let mut auth = ImapAuthenticator::new(mechanism, user, token, host, port);
    let result = tokio::time::timeout(timeout, client.authenticate(mechanism.name(), &mut auth))
        .await
        .map_err(|_| ImapAuthError::Timeout)?;
    match result {
        Ok(session) => Ok(Ok(session)),
        Err((async_imap::error::Error::No(text), client)) => {
            let status = auth.error.take().unwrap_or_else(|| first_words(&text));
            tracing::warn!(
                event = "oauth2.imap_refused",
                mechanism = mechanism.name(),
                status = status.as_str(),
                "the IMAP server refused the access token"
            );
            Ok(Err((client, status)))
        }
        Err((e, _)) => Err(ImapAuthError::Protocol(e.to_string())),
    }
}

/// A server's NO text, bounded (it never holds the token).
fn first_words(text: &str) -> String {
    text.chars().take(120).collect()
}
