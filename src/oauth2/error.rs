//! Why a token could not be had, classified so the log, `check-config` and the partners'
//! alert can say what to do. Messages never carry a secret: the token endpoint's answer is
//! reduced to its error code and the first line of its description (RFC 6749 §5.2).

/// What is wrong, in the terms an administrator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// `invalid_grant`: consent revoked, refresh token expired or used up, or (app-only)
    /// admin consent missing.
    RevokedConsent,
    /// `invalid_client`: the client secret is wrong or has expired (Entra secrets expire
    /// after at most two years), or the client id is unknown.
    ClientSecret,
    /// The tenant (directory) does not exist, or the app is not registered in it.
    UnknownTenant,
    /// The token endpoint could not be reached or did not answer (DNS, TCP, TLS, timeout,
    /// or an HTTP 5xx): worth retrying later.
    Network,
    /// The server refused for another reason (e.g. `invalid_scope`, `unauthorized_client`).
    Refused,
    /// The local side: the refresh-token file, the token command, a malformed answer.
    Local,
}

impl Cause {
    /// The value of the `cause` field in logs.
    pub fn name(self) -> &'static str {
        match self {
            Cause::RevokedConsent => "revoked_consent",
            Cause::ClientSecret => "client_secret",
            Cause::UnknownTenant => "unknown_tenant",
            Cause::Network => "network",
            Cause::Refused => "refused",
            Cause::Local => "local",
        }
    }

    /// What it means and what to do, one sentence.
    pub fn explain(self) -> &'static str {
        match self {
            Cause::RevokedConsent => {
                "the grant was revoked or has expired (consent withdrawn, refresh token expired or revoked, or admin consent missing): grant consent again, and for the refresh-token flow run `klachtpost oauth2 authorize`"
            }
            Cause::ClientSecret => {
                "the client secret is wrong or has expired, or the client id is unknown: create a new client secret for the app and put it where client_secret_env / client_secret_file points"
            }
            Cause::UnknownTenant => {
                "the tenant is wrong: it does not exist, or the app is not registered in it; check oauth2.tenant and oauth2.client_id"
            }
            Cause::Network => "the token endpoint could not be reached; klachtpost tries again",
            Cause::Refused => "the token endpoint refused the request",
            Cause::Local => "the token could not be obtained on this machine",
        }
    }

    /// Whether trying again later, unchanged, may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Cause::Network)
    }
}

/// A failed attempt to obtain an access token.
#[derive(Debug, thiserror::Error)]
#[error("cannot obtain an OAuth2 token ({}): {}{}", .cause.name(), .cause.explain(), if .detail.is_empty() { String::new() } else { format!(" [{}]", .detail) })]
pub struct TokenError {
    pub cause: Cause,
    /// The server's error code and description, or the local failure; never a secret.
    pub detail: String,
}

impl TokenError {
    pub fn new(cause: Cause, detail: impl Into<String>) -> TokenError {
        TokenError {
            cause,
            detail: detail.into(),
        }
    }
}

/// Classify a token endpoint's error answer (RFC 6749 §5.2) by its code and, for
/// Microsoft Entra ID, the AADSTS number in the description.
pub fn classify(status: u16, code: &str, description: &str) -> Cause {
    let aadsts = |n: &str| description.contains(&format!("AADSTS{n}"));
    // AADSTS90002: tenant not found; 90023: invalid tenant; 700016: app not found in the
    // directory (wrong tenant or client id); 900023: the tenant is not a valid tenant name.
    if aadsts("90002") || aadsts("90023") || aadsts("700016") || aadsts("900023") {
        return Cause::UnknownTenant;
    }
    // AADSTS7000215 invalid secret, 7000222 expired secret.
    if aadsts("7000215") || aadsts("7000222") {
        return Cause::ClientSecret;
    }
    match code {
        "invalid_grant" | "consent_required" | "interaction_required" => Cause::RevokedConsent,
        "invalid_client" => Cause::ClientSecret,
        "invalid_tenant" => Cause::UnknownTenant,
        "temporarily_unavailable" | "server_error" => Cause::Network,
        _ if status >= 500 => Cause::Network,
        // A token endpoint path that does not exist: for Microsoft that is a tenant typo.
        _ if status == 404 => Cause::UnknownTenant,
        _ => Cause::Refused,
    }
}

/// The first line of a server's error description, bounded, for messages.
pub fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default().trim();
    let mut out: String = line.chars().take(200).collect();
    if line.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_and_rfc_errors_are_classified() {
        assert_eq!(
            classify(
                400,
                "invalid_grant",
                "AADSTS70008: The refresh token has expired"
            ),
            Cause::RevokedConsent
        );
        assert_eq!(
            classify(
                401,
                "invalid_client",
                "AADSTS7000222: The provided client secret keys are expired."
            ),
            Cause::ClientSecret
        );
        assert_eq!(classify(401, "invalid_client", ""), Cause::ClientSecret);
        assert_eq!(
            classify(400, "invalid_request", "AADSTS90002: Tenant 'x' not found."),
            Cause::UnknownTenant
        );
        assert_eq!(
            classify(
                400,
                "unauthorized_client",
                "AADSTS700016: Application with identifier 'y' was not found in the directory 'z'."
            ),
            Cause::UnknownTenant
        );
        assert_eq!(classify(503, "", ""), Cause::Network);
        assert_eq!(classify(400, "invalid_scope", ""), Cause::Refused);
    }

    #[test]
    fn the_message_names_the_cause() {
        let e = TokenError::new(Cause::ClientSecret, "invalid_client: bad secret");
        let s = e.to_string();
        assert!(s.contains("client_secret"), "{s}");
        assert!(s.contains("client secret is wrong or has expired"), "{s}");
        assert!(s.contains("[invalid_client: bad secret]"), "{s}");
    }
}
