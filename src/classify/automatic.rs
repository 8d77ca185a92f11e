//! Mail no person wrote: auto-replies, mailing lists, delivery and disposition reports,
//! abuse reports, and bounces, including the many bounces that carry none of the standard
//! headers.
//!
//! A complaint must never be taken for machine mail: a complaint that vanishes unseen is the
//! worst failure a complaint procedure can have, an extra acknowledgement to an auto-reply a
//! small one. So words are weak evidence and never decide on their own.
//!
//! Signals that decide (headers and MIME structure, which a person's mail program does not
//! produce):
//! - `multipart/report` (RFC 6522): `delivery-status` (RFC 3464; `Action: failed` is a
//!   bounce, `delayed`/`delivered`/`relayed`/`expanded` are not), `disposition-notification`
//!   (RFC 8098), `feedback-report` (RFC 5965 abuse reports); report parts
//!   (`message/delivery-status`, `text/rfc822-headers`, …) anywhere in the mail;
//! - `Auto-Submitted` other than `no` (RFC 3834 §5);
//! - `X-Autoreply`, `X-Autorespond` and kin; `Precedence: bulk/junk/list/auto_reply`;
//!   list headers (RFC 2369 `List-*`, RFC 2919 `List-Id`);
//! - an empty Return-Path (the null reverse-path of RFC 5321 §4.5.5, used for reports);
//! - mailer-daemon / postmaster senders.
//!
//! With none of these, only a subject that *starts* with what mail systems and
//! auto-responders put there, together with a text of the matching shape, decides:
//! - a delivery-failure subject ("Undeliverable:", "Mail delivery failed", "Returned mail:",
//!   "Onbestelbaar:", "Unzustellbar:", …) with a text only a mail system writes (an SMTP
//!   reply with an enhanced status code such as `550 5.1.1`, DSN fields such as
//!   `Diagnostic-Code:`, "This is the mail system at host …", the returned message);
//! - an auto-reply subject ("Automatisch antwoord:", "Automatic reply:", "Out of Office:",
//!   "Afwezig:", "Autosvar:", …) with a short text that says its writer is away or that
//!   it was sent automatically ("ik ben afwezig tot en met …", "I am out of the office
//!   until …").
//!
//! So "Klacht: adviseur afwezig bij afspraak", "Out of office during my training -
//! complaint" or a complaint whose text says "mail delivery failed" stay complaints.
//! When a header signal is present, wording only decides *which* kind: a delivery failure
//! is a bounce; everything else here is "automatic". Neither is ever acknowledged nor
//! opens a case.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

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

/// What auto-responders put at the start of a subject (lower-case), before a colon or
/// as the whole subject.
const AUTO_REPLY_PREFIX: &[&str] = &[
    "automatic reply",
    "automatisch antwoord",
    "automatisch bericht",
    "automatische antwoord",
    "auto reply",
    "auto-reply",
    "autoreply",
    "autoresponse",
    "auto response",
    "auto-response",
    "out of office",
    "out of the office",
    "out of office autoreply",
    "out of office reply",
    "afwezig",
    "afwezigheid",
    "afwezigheidsbericht",
    "niet aanwezig",
    "abwesenheitsnotiz",
    "abwesend",
    "automatische antwort",
    "réponse automatique",
    "absence",
    "risposta automatica",
    "respuesta automática",
    "resposta automática",
    "autosvar",
    "automatisk svar",
    "fraværende",
    "vacation reply",
    "away from the office",
];

/// What the text of an auto-reply says (lower-case, apostrophes straightened): its writer
/// is away, or it was sent automatically. Whole phrases, never a single word such as
/// "afwezig" or "vakantie", which complaints use as well.
const AUTO_REPLY_TEXT: &[&str] = &[
    "ben afwezig",
    "ben momenteel afwezig",
    "ben tot en met",
    "ben niet aanwezig",
    "ben niet op kantoor",
    "ben met vakantie",
    "ben op vakantie",
    "ben weer aanwezig",
    "ben weer op kantoor",
    "beperkt bereikbaar",
    "niet bereikbaar tot",
    "lees mijn mail niet",
    "lees mijn e-mail niet",
    "mijn e-mail wordt niet",
    "mijn mail wordt niet",
    "in dringende gevallen",
    "voor dringende zaken",
    "dit is een automatisch",
    "automatisch gegenereerd",
    "automatisch verzonden",
    "na mijn terugkeer",
    "i am out of the office",
    "i am currently out of",
    "i'm out of the office",
    "i'm currently out of",
    "i am out of office",
    "i'm out of office",
    "i am away",
    "i'm away",
    "i am on vacation",
    "i'm on vacation",
    "i am on holiday",
    "i'm on holiday",
    "i am on leave",
    "i'm on leave",
    "i will be out of",
    "i will be back",
    "i'll be back",
    "i will return",
    "i will be returning",
    "back in the office",
    "limited access to",
    "no access to e",
    "upon my return",
    "when i return",
    "on my return",
    "for urgent matters",
    "in urgent cases",
    "if your matter is urgent",
    "this is an automatic",
    "this is an automated",
    "automatically generated",
    "auto-generated",
    "bin abwesend",
    "nicht im büro",
    "bin ich wieder",
    "je suis absent",
    "sono assente",
    "estoy fuera",
    "är ledig",
    "er ikke på kontoret",
];

/// An auto-reply is short; a complaint that happens to start "Afwezig:" seldom is.
const AUTO_REPLY_MAX_CHARS: usize = 1500;

/// What only mail systems write in a delivery failure report (lower-case). A person
/// complaining that "mail delivery failed" writes none of these.
const FAILURE_MACHINE_TEXT: &[&str] = &[
    "diagnostic-code:",
    "final-recipient:",
    "original-recipient:",
    "reporting-mta:",
    "status: 5.",
    "status: 4.",
    "this is the mail system at host",
    "this message was created automatically by mail delivery software",
    "mail delivery software",
    "mail delivery subsystem",
    "delivery to the following recipient",
    "delivery to the following recipients failed",
    "did not reach the following recipient",
    "could not be delivered to one or more",
    "couldn't be delivered to",
    "following addresses had permanent fatal errors",
    "permanent fatal error",
    "failed permanently",
    "user unknown",
    "unknown user",
    "no such user",
    "mailbox unavailable",
    "recipient address rejected",
    "unrouteable address",
    "smtp error from remote",
    "remote host said:",
    "the following addresses had",
    "the original message was received at",
    "transcript of session follows",
    "this is a copy of the message",
    "original message follows",
    "kon niet worden afgeleverd bij de volgende",
    "heeft sommige of alle geadresseerden niet bereikt",
    "konnte nicht zugestellt werden",
    "n'a pas pu être remis",
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
    // Report parts (structure, not words).
    if let Some(f) = failure.as_ref().filter(|f| f.strong) {
        return by(AutoKind::Bounce, &f.what);
    }
    // No header signal: words alone never decide. A subject that starts the way mail
    // systems and auto-responders start theirs does, with a text of the same shape.
    if failure_prefix(&mail.subject) && machine_failure_text(mail) {
        return by(
            AutoKind::Bounce,
            "the subject starts like a delivery failure report and the text is one (an SMTP status, report fields or the returned message)",
        );
    }
    if auto_reply_prefix(&mail.subject) && auto_reply_text(mail) {
        return by(
            AutoKind::Automatic,
            "the subject starts like an automatic reply and the short text says its writer is away",
        );
    }
    if is_abuse_report(mail) {
        return by(
            AutoKind::Automatic,
            "it is an abuse report about a message sent from an IP address, with that message attached",
        );
    }
    // A no-reply sender whose text only a mail system writes.
    if failure.is_some()
        && mail
            .from
            .as_ref()
            .is_some_and(|a| address::is_no_reply(&a.address))
        && machine_failure_text(mail)
    {
        return by(
            AutoKind::Bounce,
            "it comes from a no-reply sender and its text is a delivery failure report",
        );
    }
    None
}

/// Lower-case, with typographic apostrophes straightened.
fn fold(s: &str) -> String {
    s.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'")
}

/// Whether `subject` starts with `prefix` as a word: followed by nothing, a colon, or
/// another separator a mail system puts there (" - ", "]", ")").
fn starts_with_word(subject: &str, prefix: &str) -> bool {
    let Some(rest) = subject.strip_prefix(prefix) else {
        return false;
    };
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with([':', ']', ')', '(']) || rest.starts_with("- ")
}

/// The subject with leading "[" and white space removed, lower-case.
fn subject_head(subject: &str) -> String {
    fold(subject.trim().trim_start_matches(['[', '(']).trim_start())
}

/// Whether the subject starts the way a delivery failure report's does ("Undeliverable:",
/// "Mail delivery failed: …", "Returned mail: …", "failure notice").
pub fn failure_prefix(subject: &str) -> bool {
    let head = subject_head(subject);
    FAILURE_SUBJECT_STRONG
        .iter()
        .chain(FAILURE_SUBJECT_WEAK)
        .any(|p| head.starts_with(p.trim_end_matches(':')))
}

/// Whether the subject starts the way an auto-reply's does ("Automatisch antwoord: …",
/// "Out of Office: …", "Afwezig: …", "Automatic reply: …", "Autosvar: …").
pub fn auto_reply_prefix(subject: &str) -> bool {
    let head = subject_head(subject);
    AUTO_REPLY_PREFIX.iter().any(|p| starts_with_word(&head, p))
}

/// Whether the text has the shape of an auto-reply: short, and saying that its writer is
/// away or that it was sent automatically.
pub fn auto_reply_text(mail: &ParsedMail) -> bool {
    let text = super::quote::new_part(&mail.text);
    let text = if text.trim().is_empty() {
        mail.text.clone()
    } else {
        text
    };
    if text.chars().count() > AUTO_REPLY_MAX_CHARS {
        return false;
    }
    let text = fold(&text);
    AUTO_REPLY_TEXT.iter().any(|p| text.contains(p))
}

/// Whether the text is one only a mail system writes: an SMTP reply with an enhanced
/// status code, report fields, the wording of mail system reports, or the returned
/// message itself.
pub fn machine_failure_text(mail: &ParsedMail) -> bool {
    let scan = |t: &str| {
        let t = fold(t);
        FAILURE_MACHINE_TEXT_SET.is_match(&t) || has_smtp_failure_code(&t)
    };
    let head: String = mail.text.chars().take(8000).collect();
    scan(&head)
        || mail.attachments.iter().any(|a| {
            a.is_message
                || a.content_type.ends_with("rfc822-headers")
                || (a.content_type.starts_with("text/")
                    && scan(&String::from_utf8_lossy(&a.data[..a.data.len().min(4000)])))
        })
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
    let head = first_chars(&mail.text, 8000);
    FAILURE_SUBJECT_STRONG.iter().any(|p| stripped.contains(p))
        && (failure_body(head) || has_smtp_failure_code(head))
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
    /// Enough on its own: report parts only mail systems produce (never wording).
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
        return ev(false, "the subject reports a delivery failure");
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
    let head = first_chars(&mail.text, 6000);
    if failure_body(head) || has_smtp_failure_code(head) {
        return ev(false, "the text reports a delivery failure");
    }
    // The report parts of a bounce that are not the body.
    for a in &mail.attachments {
        if a.content_type.starts_with("text/") && !a.is_message {
            let t = String::from_utf8_lossy(&a.data[..a.data.len().min(4000)]).to_lowercase();
            if failure_body(&t) || has_smtp_failure_code(&t) {
                return ev(false, "an attached part reports a delivery failure");
            }
        }
    }
    None
}

/// The phrase lists as automatons: a text is read once for all of a list's phrases (one
/// `contains` per phrase read a complaint's first 6,000 characters 50 times).
///
/// [`FAILURE_BODY`] is looked for in the text as it is, in any case: ASCII letters by the
/// automaton, the few others by listing their upper-case forms too ([`case_variants`]).
/// Every complaint is read by it, and a lower-cased copy of its first 6,000 characters
/// made for it cost ~2 % of intake's time (issue 8).
static FAILURE_BODY_SET: LazyLock<AhoCorasick> = LazyLock::new(|| {
    let phrases: Vec<String> = FAILURE_BODY.iter().flat_map(|p| case_variants(p)).collect();
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(&phrases)
        .expect("a fixed list of short phrases always fits an automaton")
});
static FAILURE_MACHINE_TEXT_SET: LazyLock<AhoCorasick> =
    LazyLock::new(|| phrase_set(FAILURE_MACHINE_TEXT));

fn phrase_set(phrases: &[&str]) -> AhoCorasick {
    AhoCorasick::new(phrases).expect("a fixed list of short phrases always fits an automaton")
}

/// The wording of a delivery failure ([`FAILURE_BODY`]) in a text, in any case.
fn failure_body(text: &str) -> bool {
    FAILURE_BODY_SET.is_match(text)
}

/// A lower-case phrase with each of its non-ASCII letters in lower and in upper case, every
/// combination ("être" and "Être"); ASCII letters are left to the automaton.
fn case_variants(phrase: &str) -> Vec<String> {
    let mut variants = vec![String::new()];
    for c in phrase.chars() {
        let mut forms = vec![c.to_string()];
        if !c.is_ascii() {
            forms.push(c.to_uppercase().collect());
            forms.dedup();
        }
        variants = variants
            .iter()
            .flat_map(|v| forms.iter().map(move |f| format!("{v}{f}")))
            .collect();
    }
    variants
}

/// The first `n` characters of `text`, without a copy.
fn first_chars(text: &str, n: usize) -> &str {
    // No more bytes than characters wanted: all of it (the usual case, no walk).
    if text.len() <= n {
        return text;
    }
    match text.char_indices().nth(n) {
        Some((end, _)) => &text[..end],
        None => text,
    }
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
    // The reported message must be attached: a person may well complain about spam from
    // an IP address in the subject.
    if !mail.attachments.iter().any(|a| a.is_message) {
        return false;
    }
    let s = mail.subject.to_lowercase();
    ((s.contains("abuse") || s.contains("complaint about message") || s.contains("spam"))
        && has_ip(&s))
        || s.contains("abuse report")
        || s.contains("feedback report")
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

    #[test]
    fn each_phrase_is_found_by_its_automaton_and_nothing_else_is() {
        for (set, phrases) in [
            (&FAILURE_BODY_SET, FAILURE_BODY),
            (&FAILURE_MACHINE_TEXT_SET, FAILURE_MACHINE_TEXT),
        ] {
            for p in phrases {
                assert!(set.is_match(&format!("dear sir, {p} and so on")), "{p}");
            }
            assert!(!set.is_match("ik ben niet tevreden over de gang van zaken"));
        }
    }

    #[test]
    fn the_delivery_failure_wording_is_found_in_any_case_without_a_lowercased_copy() {
        for p in FAILURE_BODY {
            for text in [p.to_string(), p.to_uppercase(), capitalized(p)] {
                assert!(
                    failure_body(&format!("Dear Sir, {text} and so on")),
                    "{text}"
                );
            }
        }
        assert!(failure_body("Le message N'A PAS PU ÊTRE REMIS"));
        assert!(failure_body("Le message n'a pas pu Être remis"));
        assert!(
            !failure_body("Le message N'A PAS PU ETRE REMIS"),
            "ê is not e"
        );
        assert_eq!(first_chars("één twee", 3), "één");
        assert_eq!(first_chars("één", 5), "één");
        assert_eq!(first_chars("abc", 2), "ab");
    }

    fn capitalized(p: &str) -> String {
        let mut c = p.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default()
    }
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
    fn words_alone_never_decide() {
        for subject in [
            "Klacht: adviseur afwezig bij afspraak",
            "Out of office during my training - complaint",
            "Automatisch antwoord ontbrak, klacht over de factuur",
            "Afwezig: de adviseur kwam niet",
            "Undeliverable invoice - complaint",
            "Mail delivery failed - ik kan niemand bereiken",
            "Abuse: spam from 192.0.2.1",
        ] {
            let raw = format!(
                "From: jan@x.nl\r\nTo: k@f.nl\r\nSubject: {subject}\r\n\r\nDe adviseur was afwezig en ik kreeg alleen 'mail delivery failed' terug. Ik wil een reactie.\r\n"
            );
            assert_eq!(det(&raw), None, "{subject}");
        }
    }

    #[test]
    fn an_auto_reply_prefix_with_an_auto_reply_text() {
        for (subject, body) in [
            (
                "Automatisch antwoord: Uw klacht",
                "Ik ben afwezig tot en met 30 november. In dringende gevallen kunt u bellen.",
            ),
            (
                "Out of Office: Re: your complaint",
                "I am out of the office until Monday with limited access to email.",
            ),
            ("Afwezig: Re: klacht", "Ik ben met vakantie tot 1 december."),
            (
                "Automatic reply: KL-2026-0001",
                "I\u{2019}m away until 3 December.",
            ),
            (
                "Autosvar: klagomål",
                "Jag är ledig till måndag. This is an automatic reply.",
            ),
            ("[Auto-Reply] Uw klacht", "This is an automated response."),
        ] {
            let raw = format!(
                "From: jan@x.nl\r\nTo: k@f.nl\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
            );
            assert_eq!(
                det(&raw).map(|d| d.0),
                Some(AutoKind::Automatic),
                "{subject}"
            );
        }
        // The same prefix on a long complaint is a complaint.
        let long = "Ik ben afwezig geweest maar dit is een klacht. ".repeat(60);
        let raw =
            format!("From: jan@x.nl\r\nTo: k@f.nl\r\nSubject: Afwezig: adviseur\r\n\r\n{long}\r\n");
        assert_eq!(det(&raw), None);
    }

    #[test]
    fn a_failure_prefix_with_a_mail_system_text() {
        let raw = "From: admin@mx.x.nl\r\nTo: k@f.nl\r\nSubject: Undeliverable: Ontvangstbevestiging\r\n\r\nDelivery has failed to these recipients or groups:\r\n\r\njan@x.nl\r\nRemote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'\r\n";
        assert_eq!(det(raw).map(|d| d.0), Some(AutoKind::Bounce));
        let raw = "From: jan@x.nl\r\nTo: k@f.nl\r\nSubject: Undeliverable: mijn klacht\r\n\r\nMijn brief was onbestelbaar en de delivery failed.\r\n";
        assert_eq!(det(raw), None);
    }

    #[test]
    fn smtp_codes() {
        assert!(has_smtp_failure_code("said: 550 5.1.1 <x>: user unknown"));
        assert!(!has_smtp_failure_code("version 5.1.1 released"));
    }
}
