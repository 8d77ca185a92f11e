//! The two SASL mechanisms that carry a bearer token: Google's and Microsoft's `XOAUTH2`
//! and the standard `OAUTHBEARER` (RFC 7628). Both are one client message; on failure the
//! server sends a JSON error as a challenge, which the client must answer (XOAUTH2: an
//! empty response; OAUTHBEARER: a single `%x01`, RFC 7628 §3.2.3) before it gets the final
//! failure.

use super::token::AccessToken;

/// A SASL mechanism for bearer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Xoauth2,
    OAuthBearer,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Xoauth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The client's first (and only real) message, before base64.
    pub fn initial_response(
        self,
        user: &str,
        token: &AccessToken,
        host: &str,
        port: u16,
    ) -> String {
        match self {
            Mechanism::Xoauth2 => xoauth2(user, token),
            Mechanism::OAuthBearer => oauthbearer(user, token, host, port),
        }
    }

    /// The answer to the server's error challenge.
    pub fn error_acknowledgement(self) -> &'static str {
        match self {
            Mechanism::Xoauth2 => "",
            Mechanism::OAuthBearer => "\x01",
        }
    }
}

/// `user=USER^Aauth=Bearer TOKEN^A^A`.
pub fn xoauth2(user: &str, token: &AccessToken) -> String {
    format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose())
}

/// RFC 7628 §3.1: `n,a=USER,^Ahost=HOST^Aport=PORT^Aauth=Bearer TOKEN^A^A`. In the
/// authzid, `,` and `=` are escaped as `=2C` and `=3D` (RFC 5801 §4).
pub fn oauthbearer(user: &str, token: &AccessToken, host: &str, port: u16) -> String {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    format!(
        "n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        token.expose()
    )
}

/// What the server said in its error challenge: the `status` of the JSON (e.g. `"401"`,
/// `"invalid_token"`), never the token.
pub fn error_status(challenge: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(challenge).ok()?;
    json.get("status").map(|s| {
        s.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| s.to_string())
    })
}

/// An [`async_imap::Authenticator`] sending one of the mechanisms, and remembering the
/// server's error challenge if there is one.
pub struct ImapAuthenticator {
    first: Option<String>,
    mechanism: Mechanism,
    /// The server's error status, when it sent one.
    pub error: Option<String>,
}

impl ImapAuthenticator {
    pub fn new(
        mechanism: Mechanism,
        user: &str,
        token: &AccessToken,
        host: &str,
        port: u16,
    ) -> Self {
        ImapAuthenticator {
            first: Some(mechanism.initial_response(user, token, host, port)),
            mechanism,
            error: None,
        }
    }
}

impl async_imap::Authenticator for &mut ImapAuthenticator {
    type Response = String;

    fn process(&mut self, challenge: &[u8]) -> String {
        match self.first.take() {
            // The server's first continuation is empty (no SASL-IR in async-imap).
            Some(first) => first,
            None => {
                self.error = Some(error_status(challenge).unwrap_or_else(|| "unknown".into()));
                self.mechanism.error_acknowledgement().to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::Authenticator as _;

    #[test]
    fn the_strings_are_as_specified() {
        let t = AccessToken::new("ya29.tok".into());
        assert_eq!(
            xoauth2("klachten@firma.nl", &t),
            "user=klachten@firma.nl\x01auth=Bearer ya29.tok\x01\x01"
        );
        assert_eq!(
            oauthbearer("a,b=c@x", &t, "imap.x", 993),
            "n,a=a=2Cb=3Dc@x,\x01host=imap.x\x01port=993\x01auth=Bearer ya29.tok\x01\x01"
        );
    }

    #[test]
    fn an_error_challenge_is_acknowledged_and_remembered() {
        let t = AccessToken::new("tok".into());
        let mut a = ImapAuthenticator::new(Mechanism::Xoauth2, "u", &t, "h", 1);
        let mut r = &mut a;
        assert!(r.process(b"").starts_with("user=u\x01"));
        assert_eq!(
            r.process(br#"{"status":"401","schemes":"bearer","scope":"x"}"#),
            ""
        );
        assert_eq!(a.error.as_deref(), Some("401"));
        let mut b = ImapAuthenticator::new(Mechanism::OAuthBearer, "u", &t, "h", 1);
        let mut r = &mut b;
        r.process(b"");
        assert_eq!(r.process(b"{}"), "\x01");
    }
}
