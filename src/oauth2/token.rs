//! The token client: obtains access tokens by the configured flow, keeps the current one in
//! memory, and gets a new one before it expires (5 minutes before, or at half its lifetime
//! for tokens that live less than 10 minutes). One [`TokenSource`] is shared by the mailbox
//! and the sender (cloning shares the cache), and one refresh runs at a time, so a rotated
//! refresh token is never used twice.
//!
//! Time: expiry is measured on tokio's monotonic clock (`tokio::time::Instant`), which tests
//! can pause and advance; wall-clock time plays no part.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::config::{Flow, OAuth2Settings};
use super::error::{Cause, TokenError, classify, first_line};
use super::http;

/// How long a token from the command flow is assumed to live when the command prints
/// only the token.
const COMMAND_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Used when a token response has no `expires_in` (RFC 6749 §5.1 makes it optional).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// Refresh this long before expiry (or at half the lifetime, whichever is earlier).
const MARGIN: Duration = Duration::from_secs(5 * 60);
/// The longest the token command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// An access token. Neither `Debug` nor `Display` shows it.
#[derive(Clone)]
pub struct AccessToken(SecretString);

impl AccessToken {
    pub fn new(token: String) -> AccessToken {
        AccessToken(SecretString::from(token))
    }
    /// The token itself, for the SASL string only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

struct Inner {
    settings: OAuth2Settings,
    cache: Mutex<Option<Cached>>,
    /// The last attempt's failure, until an attempt succeeds (see [`TokenSource::failure`]).
    failure: std::sync::Mutex<Option<(Cause, String)>>,
}

/// The configured way to obtain tokens, with its in-memory cache.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// When to get a new token: `MARGIN` before expiry, or at half the lifetime when that is
/// earlier (a 2-minute token is renewed after one minute).
pub fn refresh_after(lifetime: Duration) -> Duration {
    lifetime - MARGIN.min(lifetime / 2)
}

impl TokenSource {
    pub fn new(settings: OAuth2Settings) -> TokenSource {
        TokenSource {
            inner: Arc::new(Inner {
                settings,
                cache: Mutex::new(None),
                failure: std::sync::Mutex::new(None),
            }),
        }
    }

    pub fn settings(&self) -> &OAuth2Settings {
        &self.inner.settings
    }

    /// A token that is not about to expire: the cached one, or a new one.
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        let mut cache = self.inner.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let fresh = self.obtain().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// The server refused `rejected`: get a new token, unless another task already did.
    pub async fn refresh_after_rejection(
        &self,
        rejected: &AccessToken,
    ) -> Result<AccessToken, TokenError> {
        let mut cache = self.inner.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && c.token.expose() != rejected.expose()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        tracing::info!(
            event = "oauth2.token_rejected",
            flow = self.inner.settings.flow.name(),
            "the server refused the access token; getting a new one"
        );
        *cache = None;
        let fresh = self.obtain().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// Why the last attempt to obtain a token failed (its cause and the whole message, free
    /// of secrets), or `None` once one worked. The hook for outage tracking of the channel
    /// that is not logging in right now (e.g. sending, when the mailbox is fine).
    pub fn failure(&self) -> Option<(Cause, String)> {
        self.inner
            .failure
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default()
    }

    /// Forget the cached token (the next [`token`](Self::token) obtains a new one).
    pub async fn forget(&self) {
        *self.inner.cache.lock().await = None;
    }

    async fn obtain(&self) -> Result<Cached, TokenError> {
        let s = &self.inner.settings;
        let result = match s.flow {
            Flow::ClientCredentials => self.client_credentials().await,
            Flow::RefreshToken => self.refresh_token().await,
            Flow::Command => self.command().await,
        };
        match &result {
            Ok((_, lifetime)) => tracing::info!(
                event = "oauth2.token_obtained",
                flow = s.flow.name(),
                lifetime_secs = lifetime.as_secs(),
                "obtained an access token"
            ),
            Err(e) => tracing::warn!(
                event = "oauth2.token_failed",
                flow = s.flow.name(),
                cause = e.cause.name(),
                error = %e,
                "cannot obtain an access token"
            ),
        }
        if let Ok(mut failure) = self.inner.failure.lock() {
            *failure = result.as_ref().err().map(|e| (e.cause, e.to_string()));
        }
        let (token, lifetime) = result?;
        Ok(Cached {
            token,
            refresh_at: Instant::now() + refresh_after(lifetime),
        })
    }

    async fn client_credentials(&self) -> Result<(AccessToken, Duration), TokenError> {
        let s = &self.inner.settings;
        let secret = s
            .client_secret
            .as_ref()
            .map(|x| x.expose_secret())
            .unwrap_or_default();
        let answer = request(
            s,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &s.client_id),
                ("client_secret", secret),
                ("scope", &s.scope),
            ],
        )
        .await?;
        Ok((answer.access_token, answer.lifetime))
    }

    async fn refresh_token(&self) -> Result<(AccessToken, Duration), TokenError> {
        let s = &self.inner.settings;
        let Some(path) = &s.refresh_token_file else {
            return Err(TokenError::new(
                Cause::Local,
                "no refresh_token_file is configured",
            ));
        };
        let current = read_refresh_token(path)?;
        let mut fields = vec![
            ("grant_type", "refresh_token"),
            ("client_id", s.client_id.as_str()),
            ("refresh_token", current.expose_secret()),
            ("scope", s.scope.as_str()),
        ];
        if let Some(secret) = &s.client_secret {
            fields.push(("client_secret", secret.expose_secret()));
        }
        let answer = request(s, &fields).await?;
        if let Some(new) = answer.refresh_token
            && new.expose_secret() != current.expose_secret()
        {
            // The old one may already be invalid (Microsoft, Google and RFC 9700 §4.14
            // rotate): losing the new one would lock the mailbox out until someone
            // authorizes again, so a failed write is an error now.
            write_secret_file(path, new.expose_secret()).map_err(|e| {
                TokenError::new(
                    Cause::Local,
                    format!(
                        "cannot save the new refresh token to {}: {e}",
                        path.display()
                    ),
                )
            })?;
            tracing::info!(
                event = "oauth2.refresh_token_rotated",
                file = %path.display(),
                "saved the new refresh token the provider handed out"
            );
        }
        Ok((answer.access_token, answer.lifetime))
    }

    async fn command(&self) -> Result<(AccessToken, Duration), TokenError> {
        let s = &self.inner.settings;
        let command = s.command.as_deref().unwrap_or_default();
        let run = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(COMMAND_TIMEOUT, run)
            .await
            .map_err(|_| {
                TokenError::new(
                    Cause::Local,
                    format!("the token command did not finish within {COMMAND_TIMEOUT:?}"),
                )
            })?
            .map_err(|e| {
                TokenError::new(Cause::Local, format!("cannot run the token command: {e}"))
            })?;
        if !output.status.success() {
            return Err(TokenError::new(
                Cause::Local,
                format!("the token command failed ({})", output.status),
            ));
        }
        let text = String::from_utf8(output.stdout).map_err(|_| {
            TokenError::new(
                Cause::Local,
                "the token command printed something not UTF-8",
            )
        })?;
        let text = text.trim();
        if text.starts_with('{') {
            let answer = parse_token_answer(text.as_bytes())?;
            return Ok((answer.access_token, answer.lifetime));
        }
        if text.is_empty() || text.contains(char::is_whitespace) {
            return Err(TokenError::new(
                Cause::Local,
                "the token command did not print one access token",
            ));
        }
        Ok((AccessToken::new(text.to_string()), COMMAND_TOKEN_LIFETIME))
    }
}

/// A successful token response (RFC 6749 §5.1).
pub struct TokenAnswer {
    pub access_token: AccessToken,
    pub lifetime: Duration,
    pub refresh_token: Option<SecretString>,
}

/// POST to the token endpoint and read the answer, classifying a failure.
pub(super) async fn request(
    s: &OAuth2Settings,
    fields: &[(&str, &str)],
) -> Result<TokenAnswer, TokenError> {
    let response = http::post_form(&s.token_url, fields, s.ca_file.as_deref())
        .await
        .map_err(|e| match e {
            http::HttpError::Url(_) | http::HttpError::Tls(_) => {
                TokenError::new(Cause::Local, e.to_string())
            }
            _ => TokenError::new(Cause::Network, e.to_string()),
        })?;
    if response.status != 200 {
        return Err(error_answer(response.status, &response.body));
    }
    parse_token_answer(&response.body)
}

/// An error answer (RFC 6749 §5.2), classified.
pub(super) fn error_answer(status: u16, body: &[u8]) -> TokenError {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let code = json
        .get("error")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let description = json
        .get("error_description")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let cause = classify(status, code, description);
    let detail = match (code, description) {
        ("", _) => format!("HTTP {status}"),
        (c, "") => format!("HTTP {status}, {c}"),
        (c, d) => format!("HTTP {status}, {c}: {}", first_line(d)),
    };
    TokenError::new(cause, detail)
}

fn parse_token_answer(body: &[u8]) -> Result<TokenAnswer, TokenError> {
    let malformed = |what: &str| {
        TokenError::new(
            Cause::Refused,
            format!("the token endpoint's answer is not a token response: {what}"),
        )
    };
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|_| malformed("no JSON"))?;
    let access_token = json
        .get("access_token")
        .and_then(|v| v.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed("no access_token"))?;
    // Some servers send expires_in as a string.
    let expires_in = json.get("expires_in").and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    let lifetime = expires_in
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_LIFETIME);
    let refresh_token = json
        .get("refresh_token")
        .and_then(|v| v.as_str())
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::from(t.to_string()));
    Ok(TokenAnswer {
        access_token: AccessToken::new(access_token.to_string()),
        lifetime,
        refresh_token,
    })
}

fn read_refresh_token(path: &Path) -> Result<SecretString, TokenError> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => Ok(SecretString::from(t.trim().to_string())),
        Ok(_) => Err(TokenError::new(
            Cause::Local,
            format!(
                "the refresh token file {} is empty: run `klachtpost oauth2 authorize`",
                path.display()
            ),
        )),
        Err(e) => Err(TokenError::new(
            Cause::Local,
            format!(
                "cannot read the refresh token file {}: {e} (run `klachtpost oauth2 authorize`)",
                path.display()
            ),
        )),
    }
}

/// Replace `path` with `contents`, readable by the owner only (0600), atomically: a temp
/// file in the same folder, synced, renamed over the old one, and the folder synced.
pub fn write_secret_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "refresh-token".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // `mode` only applies to a new file; a stale temp file keeps its mode otherwise.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(contents.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(3300)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(120)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(4)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn token_answers_are_read_and_errors_classified() {
        let a = parse_token_answer(
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":"3599","refresh_token":"r2"}"#,
        )
        .unwrap();
        assert_eq!(a.access_token.expose(), "abc");
        assert_eq!(a.lifetime, Duration::from_secs(3599));
        assert_eq!(a.refresh_token.unwrap().expose_secret(), "r2");
        assert!(!format!("{:?}", a.access_token).contains("abc"));
        assert!(parse_token_answer(br#"{"token_type":"Bearer"}"#).is_err());

        let e = error_answer(
            401,
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}"#,
        );
        assert_eq!(e.cause, Cause::ClientSecret);
        assert!(e.detail.contains("AADSTS7000215"), "{}", e.detail);
        assert!(!e.detail.contains("Trace"), "{}", e.detail);
        assert_eq!(error_answer(502, b"<html>").cause, Cause::Network);
    }

    #[test]
    fn a_secret_file_is_replaced_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("refresh-token");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_secret_file(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn the_command_flow_takes_a_printed_token_or_json() {
        let settings = |command: &str| OAuth2Settings {
            provider: super::super::config::Provider::Generic,
            tenant: None,
            client_id: String::new(),
            client_secret: None,
            flow: Flow::Command,
            refresh_token_file: None,
            command: Some(command.to_string()),
            token_url: String::new(),
            device_url: None,
            scope: String::new(),
            ca_file: None,
        };
        let t = TokenSource::new(settings("echo tok-123"));
        assert_eq!(t.token().await.unwrap().expose(), "tok-123");
        let t = TokenSource::new(settings(
            r#"echo '{"access_token":"tok-json","expires_in":60}'"#,
        ));
        assert_eq!(t.token().await.unwrap().expose(), "tok-json");
        assert!(t.failure().is_none());
        let t = TokenSource::new(settings("exit 3"));
        let e = t.token().await.unwrap_err();
        assert_eq!(e.cause, Cause::Local);
        assert!(e.to_string().contains("failed"), "{e}");
        assert_eq!(t.failure().map(|f| f.0), Some(Cause::Local));
    }
}
