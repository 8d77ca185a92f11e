//! SMTP AUTH with a bearer token (lettre's XOAUTH2: the token as the "password"). lettre
//! has no OAUTHBEARER, and Microsoft 365 and Gmail both take XOAUTH2 for SMTP.
//!
//! The SMTP session itself is driven in [`crate::send`] (step by step, so an outage is told
//! from a refused mail); it logs in with the current token and, when the server refuses
//! it, replaces it once and tries again on a new connection.

use lettre::transport::smtp::Error as SmtpError;

/// Whether lettre's error is the server refusing the login. A refused XOAUTH2 login ends
/// in 535 (or 530/534); Postfix with Dovecot SASL first relays Dovecot's JSON error as a
/// `334` challenge, which lettre's XOAUTH2 cannot answer and reports as a client error.
pub fn is_auth_rejection(e: &SmtpError) -> bool {
    let code = e.status().map(|c| c.to_string());
    matches!(code.as_deref(), Some("530" | "534" | "535"))
        || (e.is_client() && e.to_string().contains("challenge"))
}
