//! `klachtpost oauth2 authorize`: the device authorization grant (RFC 8628), run once by
//! an administrator for the refresh-token flow. klachtpost asks for a code, the person
//! opens the URL on any device and enters it, klachtpost polls until the provider hands
//! out the tokens, and stores the refresh token (owner-only, atomically).
//!
//! Google does not grant the Gmail scope to the device flow; see the README.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::config::{Flow, OAuth2Settings, Provider};
use super::error::{Cause, TokenError, first_line};
use super::http;
use super::token::write_secret_file;

/// What the person must do.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub verification_uri: String,
    pub user_code: String,
    /// How long the code is valid.
    pub expires_in: Duration,
}

/// A started device authorization; the device code stays inside.
pub struct Pending {
    prompt: Prompt,
    device_code: secrecy::SecretString,
    interval: Duration,
}

impl Pending {
    pub fn prompt(&self) -> &Prompt {
        &self.prompt
    }
}

fn check_settings(s: &OAuth2Settings) -> Result<&str, TokenError> {
    if s.flow != Flow::RefreshToken {
        return Err(TokenError::new(
            Cause::Local,
            "oauth2 authorize is for flow = \"refresh_token\"",
        ));
    }
    if s.provider == Provider::Google && s.scope.contains("mail.google.com") {
        return Err(TokenError::new(
            Cause::Local,
            "Google does not grant the Gmail scope to the device flow: obtain the refresh token with an installed-app tool and write it into refresh_token_file (see the README)",
        ));
    }
    s.device_url.as_deref().ok_or_else(|| {
        TokenError::new(
            Cause::Local,
            "oauth2.device_url is needed for provider = \"generic\"",
        )
    })
}

/// Ask the provider for a user code (RFC 8628 §3.1–3.2).
pub async fn start(s: &OAuth2Settings) -> Result<Pending, TokenError> {
    let url = check_settings(s)?;
    let response = http::post_form(
        url,
        &[("client_id", &s.client_id), ("scope", &s.scope)],
        s.ca_file.as_deref(),
    )
    .await
    .map_err(|e| TokenError::new(Cause::Network, e.to_string()))?;
    if response.status != 200 {
        return Err(super::token::error_answer(response.status, &response.body));
    }
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let secs = |k: &str| {
        json.get(k).and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    let (Some(device_code), Some(user_code)) = (text("device_code"), text("user_code")) else {
        return Err(TokenError::new(
            Cause::Refused,
            "the device authorization answer has no device_code or user_code",
        ));
    };
    // Google says verification_url, RFC 8628 verification_uri.
    let verification_uri = text("verification_uri")
        .or_else(|| text("verification_url"))
        .unwrap_or_default();
    Ok(Pending {
        prompt: Prompt {
            verification_uri,
            user_code,
            expires_in: Duration::from_secs(secs("expires_in").unwrap_or(900)),
        },
        device_code: device_code.into(),
        interval: Duration::from_secs(secs("interval").unwrap_or(5).max(1)),
    })
}

/// Poll the token endpoint until the person has approved (RFC 8628 §3.4–3.5), then store
/// the refresh token in `refresh_token_file`.
pub async fn finish(s: &OAuth2Settings, pending: Pending) -> Result<(), TokenError> {
    let Some(path) = &s.refresh_token_file else {
        return Err(TokenError::new(
            Cause::Local,
            "no refresh_token_file is configured",
        ));
    };
    let deadline = tokio::time::Instant::now() + pending.prompt.expires_in;
    let mut interval = pending.interval;
    loop {
        tokio::time::sleep(interval).await;
        if tokio::time::Instant::now() >= deadline {
            return Err(TokenError::new(
                Cause::Local,
                "the code expired before it was entered; run `klachtpost oauth2 authorize` again",
            ));
        }
        let mut fields = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", s.client_id.as_str()),
            ("device_code", pending.device_code.expose_secret()),
        ];
        if let Some(secret) = &s.client_secret {
            fields.push(("client_secret", secret.expose_secret()));
        }
        let response = match http::post_form(&s.token_url, &fields, s.ca_file.as_deref()).await {
            Ok(r) => r,
            Err(e) => {
                // Keep polling through a network hiccup; the deadline ends it.
                tracing::warn!(event = "oauth2.device_poll_failed", error = %e, "cannot reach the token endpoint; trying again");
                continue;
            }
        };
        if response.status == 200 {
            let json: serde_json::Value =
                serde_json::from_slice(&response.body).unwrap_or_default();
            let Some(refresh) = json.get("refresh_token").and_then(|v| v.as_str()) else {
                return Err(TokenError::new(
                    Cause::Refused,
                    "the provider gave no refresh token (for Microsoft, the scope needs offline_access)",
                ));
            };
            write_secret_file(path, refresh).map_err(|e| {
                TokenError::new(
                    Cause::Local,
                    format!("cannot save the refresh token to {}: {e}", path.display()),
                )
            })?;
            return Ok(());
        }
        let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
        let code = json
            .get("error")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        match code {
            "authorization_pending" => {}
            // RFC 8628 §3.5: add 5 seconds to the interval for this and later requests.
            "slow_down" => interval += Duration::from_secs(5),
            "access_denied" => {
                return Err(TokenError::new(
                    Cause::RevokedConsent,
                    "the person declined the request",
                ));
            }
            "expired_token" => {
                return Err(TokenError::new(
                    Cause::Local,
                    "the code expired before it was entered; run `klachtpost oauth2 authorize` again",
                ));
            }
            _ => {
                let description = json
                    .get("error_description")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                let mut e = super::token::error_answer(response.status, &response.body);
                if !description.is_empty() {
                    e.detail = format!("{code}: {}", first_line(description));
                }
                return Err(e);
            }
        }
    }
}
