//! Whether the firm's own inbound server vouches for a sender: the `Authentication-Results`
//! header (RFC 8601) it adds.
//!
//! Anyone can write a staff address in From. With `[firm] trusted_authserv_id` set to the
//! authserv-id the firm's server writes (e.g. `mx.firma.nl`), a mail counts as from staff
//! or a partner only when that server says `dmarc=pass` for the From domain, or
//! `dkim=pass` with a signing domain aligned with it (RFC 7489 §3.1.1, relaxed).
//!
//! Which headers count:
//! - only `Authentication-Results` headers whose authserv-id is the configured one
//!   (RFC 8601 §5: others are not ours to believe);
//! - only the topmost block of them: the first such header from the top and the ones
//!   directly below it (server-added trace fields such as `Received-SPF`, `DKIM-Filter`,
//!   `ARC-*` or `X-Spam-*` may stand between them). A header further down was in the
//!   mail before the firm's server saw it — possibly written by the sender to look like
//!   ours;
//! - per method the topmost result decides, and a `fail` for the From domain anywhere in
//!   the block wins over a `pass`.
//!
//! The firm's server should also remove incoming headers that carry its authserv-id
//! (RFC 8601 §5); Postfix with OpenDMARC, Exchange Online and Gmail do.

use crate::parse::ParsedMail;

/// The verdict on a staff From.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub pass: bool,
    /// One phrase: why (no addresses).
    pub why: String,
}

/// One `method=result` with its properties, from one header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Result {
    method: String,
    result: String,
    /// `ptype.property` → value, lower-cased.
    props: Vec<(String, String)>,
}

impl Result {
    fn prop(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Remove RFC 5322 comments `( … )` (nested) and fold to lower case.
fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.to_lowercase()
}

/// The authserv-id and the results of one header value.
fn parse_header(value: &str) -> (String, Vec<Result>) {
    let clean = strip_comments(value);
    let mut parts = clean.split(';');
    let authserv = parts
        .next()
        .and_then(|p| p.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    let mut results = Vec::new();
    for part in parts {
        let mut tokens = part.split_whitespace();
        let Some((method, result)) = tokens.next().and_then(|t| t.split_once('=')) else {
            continue;
        };
        let method = method.split('/').next().unwrap_or(method).to_string();
        let props = tokens
            .filter_map(|t| t.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        results.push(Result {
            method,
            result: result.to_string(),
            props,
        });
    }
    (authserv, results)
}

/// Trace fields a receiving server adds next to its Authentication-Results.
fn is_server_trace(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "received-spf"
        || n == "dkim-filter"
        || n == "x-ms-exchange-authentication-results"
        || n.starts_with("arc-")
        || n.starts_with("x-spam")
        || n.starts_with("x-virus")
}

/// The results of the topmost block of Authentication-Results headers of `authserv_id`.
fn trusted_results(mail: &ParsedMail, authserv_id: &str) -> Vec<Result> {
    let id = authserv_id.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut in_block = false;
    for (name, value) in &mail.headers {
        if name.eq_ignore_ascii_case("Authentication-Results") {
            let (authserv, results) = parse_header(value);
            if authserv == id {
                in_block = true;
                out.extend(results);
                continue;
            }
            if in_block {
                break;
            }
        } else if in_block && !is_server_trace(name) {
            break;
        }
    }
    out
}

/// Whether `signer` (a DKIM d= domain) is aligned with `from` (relaxed: the same, or one
/// a subdomain of the other).
fn aligned(signer: &str, from: &str) -> bool {
    let signer = signer.trim_start_matches('@');
    let signer = signer.rsplit_once('@').map_or(signer, |(_, d)| d);
    signer == from
        || from.ends_with(&format!(".{signer}")) && signer.contains('.')
        || signer.ends_with(&format!(".{from}"))
}

/// Whether the firm's server (authserv-id `authserv_id`) authenticated the From domain
/// `from_domain` of this mail.
pub fn check(mail: &ParsedMail, authserv_id: &str, from_domain: &str) -> Verdict {
    let from = from_domain.to_ascii_lowercase();
    let results = trusted_results(mail, authserv_id);
    if results.is_empty() {
        return Verdict {
            pass: false,
            why: "the firm's mail server added no Authentication-Results for it".into(),
        };
    }
    let dmarc: Vec<&Result> = results
        .iter()
        .filter(|r| r.method == "dmarc" && r.prop("header.from").is_none_or(|d| d == from))
        .collect();
    let dkim: Vec<&Result> = results
        .iter()
        .filter(|r| {
            r.method == "dkim"
                && r.prop("header.d")
                    .or_else(|| r.prop("header.i"))
                    .is_some_and(|d| aligned(d, &from))
        })
        .collect();
    if dmarc.iter().any(|r| r.result != "pass") {
        return Verdict {
            pass: false,
            why: "the firm's mail server says DMARC did not pass for the sender's domain".into(),
        };
    }
    if dmarc
        .first()
        .is_some_and(|r| r.prop("header.from") == Some(from.as_str()))
    {
        return Verdict {
            pass: true,
            why: "the firm's mail server says dmarc=pass for the sender's domain".into(),
        };
    }
    if dkim.first().is_some_and(|r| r.result == "pass") {
        return Verdict {
            pass: true,
            why: "the firm's mail server says dkim=pass with a signature aligned with the sender's domain".into(),
        };
    }
    Verdict {
        pass: false,
        why: "the firm's mail server's Authentication-Results show no DMARC or aligned DKIM pass for the sender's domain".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn verdict(headers: &str) -> bool {
        let raw = format!(
            "{headers}From: Piet <piet@firma.nl>\r\nTo: klachten@firma.nl\r\nSubject: x\r\n\r\nx\r\n"
        );
        check(&parse(raw.as_bytes()), "mx.firma.nl", "firma.nl").pass
    }

    #[test]
    fn dmarc_pass_from_the_trusted_server() {
        assert!(verdict(
            "Authentication-Results: mx.firma.nl; dkim=none; dmarc=pass (p=reject dis=none) header.from=firma.nl\r\n"
        ));
        assert!(verdict(
            "Received: from a by mx.firma.nl\r\nAuthentication-Results: MX.Firma.nl 1; dmarc=pass header.from=firma.nl\r\n"
        ));
    }

    #[test]
    fn aligned_dkim_pass() {
        assert!(verdict(
            "Authentication-Results: mx.firma.nl;\r\n\tdkim=pass (2048-bit key) header.d=firma.nl header.s=sel header.b=abc\r\n"
        ));
        assert!(verdict(
            "Authentication-Results: mx.firma.nl; dkim=pass header.i=@mail.firma.nl\r\n"
        ));
        assert!(!verdict(
            "Authentication-Results: mx.firma.nl; dkim=pass header.d=elders.example\r\n"
        ));
    }

    #[test]
    fn other_servers_and_lower_headers_do_not_count() {
        // Another authserv-id.
        assert!(!verdict(
            "Authentication-Results: mx.elders.example; dmarc=pass header.from=firma.nl\r\n"
        ));
        // None at all.
        assert!(!verdict("Received: from a by b\r\n"));
        // The trusted server's own header says fail; a forged pass below it is ignored.
        assert!(!verdict(
            "Authentication-Results: mx.firma.nl; dmarc=fail header.from=firma.nl\r\nAuthentication-Results: mx.firma.nl; dmarc=pass header.from=firma.nl\r\n"
        ));
        // A pass further down, below the sender's own headers.
        assert!(!verdict(
            "Authentication-Results: mx.firma.nl; spf=fail smtp.mailfrom=elders.example\r\nReceived: from x by y\r\nAuthentication-Results: mx.firma.nl; dmarc=pass header.from=firma.nl\r\n"
        ));
        // A pass for another domain.
        assert!(!verdict(
            "Authentication-Results: mx.firma.nl; dmarc=pass header.from=elders.example\r\n"
        ));
        // A comment that looks like a result.
        assert!(!verdict(
            "Authentication-Results: mx.firma.nl; dmarc=fail (dmarc=pass header.from=firma.nl) header.from=firma.nl\r\n"
        ));
    }
}
