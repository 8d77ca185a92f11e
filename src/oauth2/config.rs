//! The `[oauth2]` section: which provider, which flow, where the secrets are. Validated at
//! load like the rest of the config (every problem at once, named by its key); the secrets
//! are read from the environment or a file and held as [`SecretString`], never printed.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

/// Who issues the tokens; decides the default endpoints and scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Microsoft Entra ID (Microsoft 365 / Exchange Online).
    Microsoft,
    /// Google (Gmail, Google Workspace).
    Google,
    /// Any RFC 6749 server; `token_url` and `scope` must be given.
    Generic,
}

/// How klachtpost gets an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// RFC 6749 §4.4, the app-only flow: the app's own id and secret, no person's token.
    ClientCredentials,
    /// RFC 6749 §6: a stored refresh token (from `klachtpost oauth2 authorize`).
    RefreshToken,
    /// An outside command prints the access token (or a JSON token response).
    Command,
}

impl Flow {
    pub fn name(self) -> &'static str {
        match self {
            Flow::ClientCredentials => "client_credentials",
            Flow::RefreshToken => "refresh_token",
            Flow::Command => "command",
        }
    }
}

/// The validated `[oauth2]` section. `Debug` shows where secrets come from, never them.
#[derive(Clone)]
pub struct OAuth2Settings {
    pub provider: Provider,
    pub tenant: Option<String>,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub flow: Flow,
    pub refresh_token_file: Option<PathBuf>,
    pub command: Option<String>,
    pub token_url: String,
    /// Where `oauth2 authorize` starts the device-code flow (RFC 8628).
    pub device_url: Option<String>,
    pub scope: String,
    /// An extra CA for the token endpoint (a firm's proxy, a test server).
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for OAuth2Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Settings")
            .field("provider", &self.provider)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("flow", &self.flow)
            .field("refresh_token_file", &self.refresh_token_file)
            .field("command", &self.command.as_ref().map(|_| "[set]"))
            .field("token_url", &self.token_url)
            .field("device_url", &self.device_url)
            .field("scope", &self.scope)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `[oauth2]` as written.
#[derive(Debug, Default, Deserialize)]
pub struct RawOAuth2 {
    provider: Option<String>,
    tenant: Option<String>,
    client_id: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    flow: Option<String>,
    refresh_token_file: Option<PathBuf>,
    command: Option<String>,
    token_url: Option<String>,
    device_url: Option<String>,
    scope: Option<String>,
    ca_file: Option<PathBuf>,
}

/// Validate `[oauth2]`; problems are pushed with their key, `None` when unusable.
/// Relative paths are taken from `base` (the config file's folder). Without
/// `read_secrets` (commands that only use the register) the client secret is not read.
pub fn validate(
    mut raw: RawOAuth2,
    base: &Path,
    getenv: &dyn Fn(&str) -> Option<String>,
    read_secrets: bool,
    problems: &mut Vec<String>,
) -> Option<OAuth2Settings> {
    let before = problems.len();
    for path in [
        &mut raw.client_secret_file,
        &mut raw.refresh_token_file,
        &mut raw.ca_file,
    ]
    .into_iter()
    .flatten()
    {
        *path = base.join(&*path);
    }
    let provider = match raw.provider.as_deref() {
        Some("microsoft") => Provider::Microsoft,
        Some("google") => Provider::Google,
        Some("generic") => Provider::Generic,
        Some(other) => {
            problems.push(format!(
                "oauth2.provider: {other:?} is not one of \"microsoft\", \"google\", \"generic\""
            ));
            Provider::Generic
        }
        None => {
            problems
                .push("oauth2.provider: missing (\"microsoft\", \"google\" or \"generic\")".into());
            Provider::Generic
        }
    };
    let flow = match raw.flow.as_deref() {
        Some("client_credentials") | None => Flow::ClientCredentials,
        Some("refresh_token") => Flow::RefreshToken,
        Some("command") => Flow::Command,
        Some(other) => {
            problems.push(format!(
                "oauth2.flow: {other:?} is not one of \"client_credentials\", \"refresh_token\", \"command\""
            ));
            Flow::ClientCredentials
        }
    };
    let tenant = raw
        .tenant
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(t) = tenant
        && !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        problems.push(format!(
            "oauth2.tenant: {t:?} is not a tenant id or domain (e.g. \"voorbeeld.onmicrosoft.com\")"
        ));
    }
    if provider == Provider::Microsoft && tenant.is_none() && raw.token_url.is_none() {
        problems.push(
            "oauth2.tenant: missing (the directory (tenant) id or the firm's onmicrosoft.com domain)"
                .into(),
        );
    }
    if provider == Provider::Google && flow == Flow::ClientCredentials {
        problems.push(
            "oauth2.flow: Google has no client-credentials grant for Gmail; use \"refresh_token\" or \"command\""
                .into(),
        );
    }
    let client_id = raw.client_id.clone().unwrap_or_default().trim().to_string();
    if client_id.is_empty() && flow != Flow::Command {
        problems.push("oauth2.client_id: missing (the application (client) id)".into());
    }

    let keys = ("oauth2.client_secret_env", "oauth2.client_secret_file");
    let client_secret = if read_secrets {
        crate::config::secret_from(
            keys,
            raw.client_secret_env.as_deref(),
            raw.client_secret_file.as_deref(),
            getenv,
            problems,
        )
    } else {
        if raw.client_secret_env.is_some() && raw.client_secret_file.is_some() {
            problems.push(format!("{}, {}: give one, not both", keys.0, keys.1));
        }
        None
    };
    let secret_given = raw.client_secret_env.is_some() || raw.client_secret_file.is_some();
    match flow {
        Flow::ClientCredentials if !secret_given => problems.push(
            "oauth2.client_secret_env or oauth2.client_secret_file: the client-credentials flow needs the app's client secret".into(),
        ),
        Flow::RefreshToken if raw.refresh_token_file.is_none() => problems.push(
            "oauth2.refresh_token_file: missing (where `klachtpost oauth2 authorize` stores the refresh token)".into(),
        ),
        Flow::Command if raw.command.as_deref().is_none_or(|c| c.trim().is_empty()) => {
            problems.push("oauth2.command: missing (a command that prints an access token)".into())
        }
        _ => {}
    }
    if flow != Flow::RefreshToken && raw.refresh_token_file.is_some() {
        problems.push(format!(
            "oauth2.refresh_token_file: not used with flow = \"{}\"",
            flow.name()
        ));
    }
    if flow != Flow::Command && raw.command.is_some() {
        problems.push(format!(
            "oauth2.command: not used with flow = \"{}\"",
            flow.name()
        ));
    }

    let tenant_or = tenant.unwrap_or("organizations");
    let token_url = match (&raw.token_url, provider) {
        (Some(u), _) => u.trim().to_string(),
        (None, Provider::Microsoft) => {
            format!("https://login.microsoftonline.com/{tenant_or}/oauth2/v2.0/token")
        }
        (None, Provider::Google) => "https://oauth2.googleapis.com/token".into(),
        (None, Provider::Generic) => {
            if flow != Flow::Command {
                problems
                    .push("oauth2.token_url: missing (needed with provider = \"generic\")".into());
            }
            String::new()
        }
    };
    if !token_url.is_empty()
        && let Err(e) = super::http::check_url(&token_url)
    {
        problems.push(format!("oauth2.token_url: {e}"));
    }
    let device_url = match (&raw.device_url, provider) {
        (Some(u), _) => Some(u.trim().to_string()),
        (None, Provider::Microsoft) => Some(format!(
            "https://login.microsoftonline.com/{tenant_or}/oauth2/v2.0/devicecode"
        )),
        (None, Provider::Google) => Some("https://oauth2.googleapis.com/device/code".into()),
        (None, Provider::Generic) => None,
    };
    if let Some(u) = &device_url
        && let Err(e) = super::http::check_url(u)
    {
        problems.push(format!("oauth2.device_url: {e}"));
    }
    let scope = match (&raw.scope, provider, flow) {
        (Some(s), _, _) => s.trim().to_string(),
        (None, Provider::Microsoft, Flow::RefreshToken) => {
            // Delegated permissions; offline_access makes the response carry a refresh token.
            "https://outlook.office365.com/IMAP.AccessAsUser.All https://outlook.office365.com/SMTP.Send offline_access".into()
        }
        // App-only: ".default" means "the application permissions the admin consented to".
        (None, Provider::Microsoft, _) => "https://outlook.office365.com/.default".into(),
        (None, Provider::Google, _) => "https://mail.google.com/".into(),
        (None, Provider::Generic, _) => {
            if flow != Flow::Command {
                problems.push("oauth2.scope: missing (needed with provider = \"generic\")".into());
            }
            String::new()
        }
    };
    if let Some(ca) = &raw.ca_file
        && let Err(e) = std::fs::metadata(ca)
    {
        problems.push(format!("oauth2.ca_file: cannot read {}: {e}", ca.display()));
    }
    (problems.len() == before).then(|| OAuth2Settings {
        provider,
        tenant: tenant.map(str::to_string),
        client_id,
        client_secret,
        flow,
        refresh_token_file: raw.refresh_token_file,
        command: raw.command,
        token_url,
        device_url,
        scope,
        ca_file: raw.ca_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawOAuth2 {
        toml::from_str(text).unwrap()
    }

    fn check(text: &str, env: &[(&str, &str)]) -> (Option<OAuth2Settings>, Vec<String>) {
        let mut problems = Vec::new();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let s = validate(
            raw(text),
            Path::new("/etc/klachtpost"),
            &|n| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()),
            true,
            &mut problems,
        );
        (s, problems)
    }

    #[test]
    fn microsoft_app_only_gets_the_default_endpoint_and_scope_and_hides_the_secret() {
        let (s, problems) = check(
            r#"provider = "microsoft"
tenant = "voorbeeld.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret_env = "KP_SECRET""#,
            &[("KP_SECRET", "zeer-geheim")],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let s = s.unwrap();
        assert_eq!(s.flow, Flow::ClientCredentials);
        assert_eq!(
            s.token_url,
            "https://login.microsoftonline.com/voorbeeld.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(s.scope, "https://outlook.office365.com/.default");
        assert!(!format!("{s:?}").contains("zeer-geheim"));
    }

    #[test]
    fn google_defaults_and_refuses_client_credentials() {
        let (s, problems) = check(
            r#"provider = "google"
client_id = "x.apps.googleusercontent.com"
client_secret_env = "KP_SECRET"
flow = "refresh_token"
refresh_token_file = "state/refresh-token""#,
            &[("KP_SECRET", "s")],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let s = s.unwrap();
        assert_eq!(
            s.refresh_token_file.as_deref(),
            Some(Path::new("/etc/klachtpost/state/refresh-token")),
            "relative to the config's folder"
        );
        assert_eq!(s.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(s.scope, "https://mail.google.com/");

        let (_, problems) = check(
            "provider = \"google\"\nclient_id = \"x\"\nclient_secret_env = \"KP_SECRET\"",
            &[("KP_SECRET", "s")],
        );
        assert!(problems.iter().any(|p| p.contains("no client-credentials")));
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let (s, problems) = check(
            r#"provider = "generic"
flow = "refresh_token"
command = "x"
token_url = "http://login.example.org/token""#,
            &[],
        );
        assert!(s.is_none());
        let all = problems.join("\n");
        for needle in [
            "oauth2.client_id: missing",
            "oauth2.refresh_token_file: missing",
            "oauth2.command: not used",
            "oauth2.scope: missing",
            "oauth2.token_url: plain http",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn plain_http_is_allowed_on_loopback_only() {
        let (s, problems) = check(
            r#"provider = "generic"
client_id = "app"
client_secret_env = "KP_SECRET"
token_url = "http://127.0.0.1:8080/token"
scope = "mail""#,
            &[("KP_SECRET", "s")],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.unwrap().token_url, "http://127.0.0.1:8080/token");
    }
}
