//! Mail no person wrote: auto-replies, mailing lists, delivery and disposition reports,
//! abuse reports, and bounces, including the many bounces that carry none of the standard
//! headers.
//!
//! Signals, strongest first:
//! - `multipart/report` (RFC 6522): `delivery-status` (RFC 3464; `Action: failed` is a
//!   bounce, `delayed`/`delivered`/`relayed`/`expanded` are not), `disposition-notification`
//!   (RFC 8098), `feedback-report` (RFC 5965 abuse reports);
//! - `Auto-Submitted` other than `no` (RFC 3834 §5);
//! - `X-Autoreply`, `X-Autorespond` and kin; `Precedence: bulk/junk/list/auto_reply`;
//!   list headers (RFC 2369 `List-*`, RFC 2919 `List-Id`);
//! - an empty Return-Path (the null reverse-path of RFC 5321 §4.5.5, used for reports);
//! - mailer-daemon / postmaster senders;
//! - failure wording in the subject ("Undeliverable", "Mail delivery failed",
//!   "Onbestelbaar", "Unzustellbar", …) or the body ("could not be delivered",
//!   "Diagnostic-Code:", SMTP 5xx codes, …), and report parts (message/delivery-status,
//!   text/rfc822-headers);
//! - auto-reply subjects ("Automatic reply:", "Automatisch antwoord:", "Out of Office", …).
//!
//! A delivery failure is a bounce; everything else here is "automatic". Neither is ever
//! acknowledged nor opens a case.

use crate::parse::ParsedMail;

use super::address;
use super::reference;

/// What kind of machine mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoKind {
    /// A delivery failure.
    Bounce,
    /// Auto-replies, lists, delivery successes and delays, read receipts, abuse reports.
    Automatic,
}

/// The verdict and the evidence, in one short phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auto {
    pub kind: AutoKind,
    pub why: String,
}

/// Subject wording only mail systems use for delivery failures (lower-case).
const FAILURE_SUBJECT_STRONG: &[&str] = &[
    "undeliverable",
    "undelivered mail",
    "delivery status notification (failure)",
    "delivery status notification",
    "delivery failure",
    "failed delivery",
    "mail delivery failed",
    "delivery has failed",
    "returned mail:",
    "returning message to sender",
    "failure notice",
    "message not delivered",
    "non-delivery",
    "nondeliverable",
    "non remis",
    "non recapitabile",
    "unzustellbar",
    "nicht zustellbar",
    "onbestelbaar",
    "could not be delivered",
    "postmaster notify",
    "notice: mail delivery status",
    "bounce notification",
    "mail system error",
];

/// Subject wording that suggests a failure but that a person might also write.
const FAILURE_SUBJECT_WEAK: &[&str] = &[
    "undelivered",
    "delivery failed",
    "returned mail",
    "returned to sender",
    "return to sender",
    "not be delivered",
    "couldn't be delivered",
    "niet bezorgd",
    "niet afgeleverd",
    "kan niet worden bezorgd",
    "delivery problem",
    "mail failed",
    "email bounce",
    "delivery notification",
    "message you sent blocked",
    "unable to deliver",
    "delivery error",
    "delivery report",
    "warning: message",
    "message delivery",
    "rejected",
    "sorry, your message",
    "mail could not",
    "permanent error",
    "delivery notice",
    "error sending",
    "mail delivery",
    "mail failure",
];

/// Body wording of delivery failures (lower-case).
const FAILURE_BODY: &[&str] = &[
    "could not be delivered",
    "couldn't be delivered",
    "could not deliver",
    "was not delivered",
    "wasn't able to deliver",
    "was unable to deliver",
    "unable to deliver",
    "undeliverable",
    "delivery has failed",
    "delivery to the following recipient",
    "delivery failed",
    "failed permanently",
    "permanent fatal error",
    "permanent error",
    "mail delivery failed",
    "message could not be",
    "user unknown",
    "unknown user",
    "no such user",
    "mailbox unavailable",
    "mailbox is full",
    "mailbox full",
    "quota exceeded",
    "recipient address rejected",
    "address rejected",
    "host not found",
    "unrouteable address",
    "this is the mail system at host",
    "mail delivery software",
    "returned mail",
    "diagnostic-code:",
    "final-recipient:",
    "status: 5.",
    "status: 4.",
    "smtp error",
    "did not reach the following recipient",
    "your message did not reach",
    "message was rejected",
    "was rejected",
    "kon niet worden afgeleverd",
    "kon niet worden bezorgd",
    "niet afgeleverd",
    "onbestelbaar",
    "konnte nicht zugestellt werden",
    "unzustellbar",
    "n'a pas pu être remis",
    "non è stato possibile recapitare",
    "delivery status notification",
    "the following addresses had",
    "message delivery to",
    "failed recipient",
    "bounced",
    "delivery to the following",
    "invalid user address",
    "requested action not taken",
    "recipient addresses that were",
];

/// Subjects of auto-replies (lower-case, after reply prefixes are stripped or not).
const AUTO_REPLY_SUBJECT: &[&str] = &[
    "automatic reply",
    "automatisch antwoord",
    "automatisch bericht",
    "auto reply",
    "auto-reply",
    "autoreply",
    "autoresponse",
    "auto response",
    "auto-response",
    "out of office",
    "out of the office",
    "afwezig",
    "afwezigheid",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "risposta automatica",
    "respuesta automática",
    "resposta automática",
    "autosvar",
    "automatisk svar",
    "vacation reply",
    "away from",
];

/// Detect machine mail. `None`: a person wrote it (as far as can be told).
pub fn detect(mail: &ParsedMail) -> Option<Auto> {
    let failure = failure_evidence(mail);
    let by = |kind: AutoKind, why: &str| {
        Some(Auto {
            kind,
            why: why.to_string(),
        })
    };
    let bounce_or = |why: &str| {
        if let Some(f) = &failure {
            Some(Auto {
                kind: AutoKind::Bounce,
                why: format!("{why}, and {}", f.what),
            })
        } else {
            by(AutoKind::Automatic, why)
        }
    };

    // RFC 6522 reports.
    let ct = mail.content_type.as_str();
    if ct.starts_with("multipart/report") {
        if ct.contains("disposition-notification") {
            return by(
                AutoKind::Automatic,
                "it is a read receipt (multipart/report; disposition-notification, RFC 8098)",
            );
        }
        if ct.contains("feedback-report") {
            return by(
                AutoKind::Automatic,
                "it is an abuse report (multipart/report; feedback-report, RFC 5965)",
            );
        }
        return match dsn_action(mail).as_deref() {
            Some("failed") => by(
                AutoKind::Bounce,
                "it is a delivery status report saying delivery failed (RFC 3464 Action: failed)",
            ),
            Some(action @ ("delayed" | "delivered" | "relayed" | "expanded")) => Some(Auto {
                kind: AutoKind::Automatic,
                why: format!(
                    "it is a delivery status report (RFC 3464 Action: {action}), not a failure"
                ),
            }),
            _ => bounce_or("it is a multipart/report (RFC 6522)"),
        };
    }
    if has_part(mail, "message/delivery-status") {
        return bounce_or("it carries a delivery status part (message/delivery-status)");
    }
    if has_part(mail, "message/disposition-notification") {
        return by(AutoKind::Automatic, "it carries a read receipt part");
    }
    if has_part(mail, "message/feedback-report") {
        return by(AutoKind::Automatic, "it carries an abuse report part");
    }

    if let Some(v) = mail.header("Auto-Submitted") {
        let v = v.to_ascii_lowercase();
        if !v.starts_with("no") {
            if v.contains("failure") {
                return by(
                    AutoKind::Bounce,
                    "Auto-Submitted says it is a failure report (RFC 3834)",
                );
            }
            return bounce_or("Auto-Submitted says it was sent automatically (RFC 3834)");
        }
    }
    for h in [
        "X-Autoreply",
        "X-Autorespond",
        "X-Autoresponder",
        "X-Auto-Reply",
        "X-Autoresponse",
        "X-Mail-Autoreply",
        "X-Autogenerated",
        "X-AutoReply-From",
    ] {
        if mail.has_header(h) {
            return bounce_or(&format!("it has an {h} header"));
        }
    }
    if let Some(v) = mail.header("Precedence") {
        let v = v.to_ascii_lowercase();
        if ["bulk", "junk", "list", "auto_reply", "auto-reply"]
            .iter()
            .any(|p| v.contains(p))
        {
            return bounce_or(&format!("Precedence: {v} marks it as bulk or automatic"));
        }
    }
    if let Some(v) = mail.header("X-Precedence")
        && v.to_ascii_lowercase().contains("auto")
    {
        return bounce_or("X-Precedence marks it as automatic");
    }
    for h in [
        "List-Id",
        "List-Unsubscribe",
        "List-Post",
        "List-Help",
        "X-Mailing-List",
        "Mailing-List",
        "X-Mailman-Version",
        "X-MLServer",
        "X-ML-Name",
        "X-Listname",
        "X-Loop",
    ] {
        if mail.has_header(h) {
            return bounce_or(&format!(
                "it has a {h} header: mailing-list, bulk or looping mail (RFC 2369/2919)"
            ));
        }
    }
    if mail.has_header("X-Amz-Sns-Message-Id") {
        return bounce_or("it is a machine notification (X-Amz-Sns-Message-Id)");
    }
    if mail
        .header("X-Apple-Action")
        .is_some_and(|v| v.eq_ignore_ascii_case("vacation"))
    {
        return by(
            AutoKind::Automatic,
            "it is a vacation reply (X-Apple-Action)",
        );
    }
    if let Some(rp) = mail.return_path() {
        if rp.is_empty() || rp.eq_ignore_ascii_case("null") {
            return bounce_or("its Return-Path is empty (the null sender of reports, RFC 5321)");
        }
        if address::is_mail_system(&rp) {
            return bounce_or("its Return-Path is a mail system address");
        }
    }
    if is_mail_system_sender(mail) {
        return bounce_or("it comes from a mail system (mailer-daemon/postmaster)");
    }
    if let Some(f) = failure.as_ref().filter(|f| f.strong) {
        return by(AutoKind::Bounce, &f.what);
    }
    let subject = mail.subject.to_lowercase();
    if !reference::is_forward_subject(&mail.subject)
        && AUTO_REPLY_SUBJECT.iter().any(|p| subject.contains(p))
    {
        return by(
            AutoKind::Automatic,
            "the subject says it is an automatic reply",
        );
    }
    if is_abuse_report(mail) {
        return by(
            AutoKind::Automatic,
            "it is an abuse report about a message sent from an IP address",
        );
    }
    if let Some(f) = &failure {
        // Body wording alone, with a machine-looking sender: no-reply senders.
        if mail
            .from
            .as_ref()
            .is_some_and(|a| address::is_no_reply(&a.address))
        {
            return by(
                AutoKind::Bounce,
                &format!("it comes from a no-reply sender and {}", f.what),
            );
        }
    }
    None
}

/// A person passing a delivery failure on: "Fwd: Returned mail: …" with the report inline,
/// or a forwarded bounce attached. Not itself machine mail, but no complaint either.
pub fn forwarded_failure(mail: &ParsedMail) -> bool {
    if mail
        .attached_messages()
        .any(|m| detect(&m).is_some_and(|a| a.kind == AutoKind::Bounce))
    {
        return true;
    }
    if !reference::is_forward_subject(&mail.subject) {
        return false;
    }
    let stripped = reference::strip_prefixes(&mail.subject).to_lowercase();
    let head: String = mail
        .text
        .chars()
        .take(8000)
        .collect::<String>()
        .to_lowercase();
    FAILURE_SUBJECT_STRONG.iter().any(|p| stripped.contains(p))
        && (FAILURE_BODY.iter().any(|p| head.contains(p)) || has_smtp_failure_code(&head))
}

/// Whether the From (address or display name) or Sender is a mail system.
fn is_mail_system_sender(mail: &ParsedMail) -> bool {
    let from_header = mail.header("From").unwrap_or_default();
    [mail.from.as_ref(), mail.sender.as_ref()]
        .into_iter()
        .flatten()
        .any(|a| {
            address::is_mail_system(&a.address)
                || a.name.as_deref().is_some_and(address::is_mail_system)
        })
        || (mail.from.is_none() && address::is_mail_system(from_header.trim()))
        || from_header.to_ascii_lowercase().contains("mailer-daemon")
}

/// A report part of this content type (as an attachment or nested in one).
fn has_part(mail: &ParsedMail, content_type: &str) -> bool {
    mail.attachments
        .iter()
        .any(|a| a.content_type == content_type)
}

/// The `Action:` of the first recipient in a delivery status part (RFC 3464 §2.3.3).
fn dsn_action(mail: &ParsedMail) -> Option<String> {
    let mut actions: Vec<String> = Vec::new();
    let mut scan = |text: &str| {
        for line in text.lines() {
            let l = line.trim();
            if let Some(value) = strip_label(l, "action:") {
                actions.push(value.trim().to_ascii_lowercase());
            }
        }
    };
    for a in &mail.attachments {
        if a.content_type.contains("delivery-status") || a.content_type == "text/plain" {
            scan(&String::from_utf8_lossy(&a.data));
        }
    }
    scan(&mail.text);
    // Any failure counts: a report for two recipients may have one failed.
    if actions.iter().any(|a| a.starts_with("failed")) {
        return Some("failed".into());
    }
    actions
        .into_iter()
        .next()
        .map(|a| a.split_whitespace().next().unwrap_or_default().to_string())
}

/// Evidence that a mail reports a delivery failure.
#[derive(Debug, Clone)]
struct Evidence {
    /// Enough on its own (wording or parts only mail systems produce).
    strong: bool,
    what: String,
}

/// Evidence that the mail reports a delivery failure; `None` if none.
fn failure_evidence(mail: &ParsedMail) -> Option<Evidence> {
    let ev = |strong: bool, what: &str| {
        Some(Evidence {
            strong,
            what: what.to_string(),
        })
    };
    let subject = mail.subject.to_lowercase();
    // "Fwd: Undeliverable: …" is a person passing a bounce on, not a bounce.
    let forwarded_by_person = reference::is_forward_subject(&mail.subject);
    let not_failure = [
        "(delay)",
        "(success)",
        "(relay)",
        "delayed",
        "warning: delay",
    ]
    .iter()
    .any(|p| subject.contains(p));
    if !forwarded_by_person
        && !not_failure
        && FAILURE_SUBJECT_STRONG.iter().any(|p| subject.contains(p))
    {
        return ev(true, "the subject reports a delivery failure");
    }
    if has_part(mail, "text/rfc822-headers") || has_part(mail, "message/rfc822-headers") {
        return ev(
            true,
            "it returns the headers of an undelivered message (a report part)",
        );
    }
    if !forwarded_by_person
        && !not_failure
        && FAILURE_SUBJECT_WEAK.iter().any(|p| subject.contains(p))
    {
        return ev(false, "the subject suggests a delivery failure");
    }
    let head: String = mail
        .text
        .chars()
        .take(6000)
        .collect::<String>()
        .to_lowercase();
    if FAILURE_BODY.iter().any(|p| head.contains(p)) || has_smtp_failure_code(&head) {
        return ev(false, "the text reports a delivery failure");
    }
    // The report parts of a bounce that are not the body.
    for a in &mail.attachments {
        if a.content_type.starts_with("text/") && !a.is_message {
            let t = String::from_utf8_lossy(&a.data[..a.data.len().min(4000)]).to_lowercase();
            if FAILURE_BODY.iter().any(|p| t.contains(p)) || has_smtp_failure_code(&t) {
                return ev(false, "an attached part reports a delivery failure");
            }
        }
    }
    None
}

/// An SMTP reply code with an enhanced status (RFC 3463), e.g. "550 5.1.1" or "#5.1.1".
fn has_smtp_failure_code(text: &str) -> bool {
    let b = text.as_bytes();
    for i in 0..b.len().saturating_sub(5) {
        // x.y.z with x in 4/5, preceded by a space, '#', '(' or start.
        if (b[i] == b'5' || b[i] == b'4')
            && b[i + 1] == b'.'
            && b[i + 2].is_ascii_digit()
            && (i == 0 || matches!(b[i - 1], b' ' | b'#' | b'(' | b'\t'))
        {
            let rest = &b[i + 2..];
            let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            if rest.get(digits) == Some(&b'.')
                && rest.get(digits + 1).is_some_and(u8::is_ascii_digit)
                && i >= 4
                && b[i - 4..i - 1].iter().all(u8::is_ascii_digit)
            {
                return true;
            }
        }
    }
    false
}

/// Hotmail/Outlook junk-mail reports and the like: a mail about "a message from 192.0.2.1"
/// with that message attached.
fn is_abuse_report(mail: &ParsedMail) -> bool {
    let has_ip = |s: &str| {
        s.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .any(|t| t.split('.').count() == 4 && t.split('.').all(|p| p.parse::<u8>().is_ok()))
    };
    let s = mail.subject.to_lowercase();
    ((s.contains("abuse") || s.contains("complaint about message") || s.contains("spam"))
        && has_ip(&s))
        || ((s.contains("abuse report") || s.contains("feedback report"))
            && !mail.attachments.is_empty())
}

/// Message-IDs of the original message a bounce or report returns: from an attached
/// message or its headers, and from `Message-ID:` lines in the text.
pub fn returned_message_ids(mail: &ParsedMail) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut push = |id: String| {
        let id = id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim()
            .to_string();
        if !id.is_empty() && id.contains('@') && !ids.contains(&id) {
            ids.push(id);
        }
    };
    for a in &mail.attachments {
        let is_headers = a.content_type.ends_with("rfc822-headers");
        if a.is_message || is_headers {
            let inner = crate::parse::parse(&a.data);
            if let Some(id) = inner.message_id {
                push(id);
            }
        }
        if is_headers || a.content_type.starts_with("text/") {
            for id in message_id_lines(&String::from_utf8_lossy(&a.data)) {
                push(id);
            }
        }
    }
    for id in message_id_lines(&mail.text) {
        push(id);
    }
    if let Some(own) = &mail.message_id {
        ids.retain(|i| i != own);
    }
    ids
}

/// The rest of a line after an ASCII label, compared without case.
fn strip_label<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    let head = line.get(..label.len())?;
    if head.eq_ignore_ascii_case(label) {
        line.get(label.len()..)
    } else {
        None
    }
}

/// Values of `Message-ID: <…>` lines anywhere in a text (quoted headers of a returned
/// message).
fn message_id_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let l = line.trim_start_matches(['>', ' ', '\t']);
        if let Some(value) = strip_label(l, "message-id:") {
            let mut v = value.trim().to_string();
            // Folded onto the next line.
            if v.is_empty()
                && let Some(next) = lines.get(i + 1)
            {
                v = next.trim().to_string();
            }
            if let (Some(s), Some(e)) = (v.find('<'), v.find('>'))
                && s < e
            {
                out.push(v[s + 1..e].to_string());
                continue;
            }
            if let Some(first) = v.split_whitespace().next() {
                out.push(first.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn det(raw: &str) -> Option<(AutoKind, String)> {
        detect(&parse(raw.as_bytes())).map(|a| (a.kind, a.why))
    }

    #[test]
    fn headers() {
        let base = "From: jan@x.nl\r\nTo: k@f.nl\r\nSubject: Hallo\r\n";
        assert_eq!(det(&format!("{base}\r\nIk heb een klacht.\r\n")), None);
        assert_eq!(
            det(&format!(
                "{base}Auto-Submitted: no\r\n\r\nIk heb een klacht.\r\n"
            )),
            None
        );
        for h in [
            "Auto-Submitted: auto-replied",
            "Precedence: bulk",
            "List-Id: <x.lists.example.org>",
            "X-Autoreply: yes",
            "Return-Path: <>",
        ] {
            let r = det(&format!("{base}{h}\r\n\r\nIk ben afwezig.\r\n")).unwrap();
            assert_eq!(r.0, AutoKind::Automatic, "{h}");
        }
    }

    #[test]
    fn headerless_bounce() {
        let raw = "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nTo: k@f.nl\r\nSubject: Mail delivery failed: returning message to sender\r\n\r\nThis message was created automatically by mail delivery software.\r\n\r\nA message that you sent could not be delivered to one or more of its\r\nrecipients.\r\n\r\n  jan@x.nl\r\n    SMTP error from remote mail server after RCPT TO:<jan@x.nl>:\r\n    550 5.1.1 User unknown\r\n\r\n------ This is a copy of the message, including all the headers. ------\r\n\r\nMessage-ID: <ack-1@f.nl>\r\nSubject: Ontvangstbevestiging\r\n";
        let m = parse(raw.as_bytes());
        assert_eq!(detect(&m).unwrap().kind, AutoKind::Bounce);
        assert_eq!(returned_message_ids(&m), vec!["ack-1@f.nl"]);
    }

    #[test]
    fn a_person_forwarding_a_bounce_is_not_a_bounce_by_subject() {
        let raw = "From: jan@x.nl\r\nTo: k@f.nl\r\nSubject: Fwd: Undeliverable: mijn klacht\r\n\r\nIk kan jullie niet bereiken, zie hieronder.\r\n";
        assert_eq!(det(raw), None);
    }

    #[test]
    fn smtp_codes() {
        assert!(has_smtp_failure_code("said: 550 5.1.1 <x>: user unknown"));
        assert!(!has_smtp_failure_code("version 5.1.1 released"));
    }
}
