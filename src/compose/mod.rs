//! Builds the messages klachtpost sends, from templates a firm can edit
//! ([`templates`]: minijinja, built-in defaults, a firm's files over them, Dutch and
//! English, plain text with an HTML alternative).
//!
//! Every automatic mail is marked as such (RFC 3834): acknowledgements carry
//! `Auto-Submitted: auto-replied` (§5), notices to partners and staff
//! `Auto-Submitted: auto-generated`, both `X-Auto-Response-Suppress: All` (Exchange) so
//! that other responders do not answer them, and a Message-ID under the firm's domain that
//! is stored with the message. Acknowledgements carry `In-Reply-To`/`References` (RFC 5322
//! §3.6.4) so the complainant's client threads them under the complaint. The envelope
//! sender is `outgoing.from`, not the null path RFC 3834 §3.3 allows, on purpose: a bounce
//! of an acknowledgement must come back to the mailbox so the partner learns the
//! complainant was not reached.

pub mod language;
pub mod templates;

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use minijinja::context;
use minijinja::value::Value;

pub use language::{Lang, LanguageSetting};
pub use templates::{Rendered, TemplateError, TemplateSet};

/// A message could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot render the mail: {0}")]
    Template(#[from] TemplateError),
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// What an acknowledgement (or another mail to the complainant about a case) says.
#[derive(Debug, Clone)]
pub struct Acknowledgement<'a> {
    pub firm_name: &'a str,
    pub firm_domain: &'a str,
    pub from: &'a str,
    pub to_name: Option<&'a str>,
    pub to_address: &'a str,
    pub reference: &'a str,
    pub original_subject: &'a str,
    /// The complaint's Message-ID (without brackets), to thread under.
    pub in_reply_to: Option<&'a str>,
    /// The complaint's own References, oldest first.
    pub references: &'a [String],
    pub received: DateTime<Utc>,
    pub respond_by: DateTime<Utc>,
    pub resolve_by: DateTime<Utc>,
    pub partner_name: &'a str,
    pub timezone: Tz,
    pub now: DateTime<Utc>,
    /// The language to write in (the case's).
    pub lang: Lang,
}

/// What an extension notice adds to a case mail.
#[derive(Debug, Clone)]
pub struct ExtensionText<'a> {
    pub previous: DateTime<Utc>,
    pub reason: &'a str,
}

/// A message ready to store and queue.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub message_id: String,
    pub subject: String,
    /// The plain text.
    pub text: String,
    pub raw: Vec<u8>,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A Message-ID under the firm's domain, unique per process run and time.
pub fn make_message_id(kind: &str, reference: &str, now: DateTime<Utc>, domain: &str) -> String {
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!(
        "{kind}.{reference}.{}.{n}@{domain}",
        now.timestamp_nanos_opt().unwrap_or_else(|| now.timestamp())
    )
}

/// A value for a header line or a subject: control characters (line breaks above all)
/// become spaces, so no value can add a header or end the subject line.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Build an acknowledgement (`acknowledgement.LANG.txt` / `.html`).
pub fn acknowledgement(t: &TemplateSet, a: &Acknowledgement<'_>) -> Result<Outgoing, ComposeError> {
    case_mail(t, a, None)
}

/// Tell the complainant the resolution deadline was extended (`a.resolve_by` is the new
/// one). Sent on a partner's action, so not marked as an auto-reply.
pub fn extension(
    t: &TemplateSet,
    a: &Acknowledgement<'_>,
    e: &ExtensionText<'_>,
) -> Result<Outgoing, ComposeError> {
    case_mail(t, a, Some(e))
}

fn case_mail(
    t: &TemplateSet,
    a: &Acknowledgement<'_>,
    ext: Option<&ExtensionText<'_>>,
) -> Result<Outgoing, ComposeError> {
    let tz = a.timezone;
    let vars = context! {
        firm => one_line(a.firm_name),
        reference => one_line(a.reference),
        name => one_line(a.to_name.unwrap_or_default()),
        subject => one_line(a.original_subject),
        received => format_datetime(a.received, tz, a.lang),
        respond_by => format_date(a.respond_by, tz, a.lang),
        resolve_by => format_date(a.resolve_by, tz, a.lang),
        partner => one_line(a.partner_name),
        previous => ext.map(|e| format_date(e.previous, tz, a.lang)).unwrap_or_default(),
        reason => ext.map(|e| e.reason.to_string()).unwrap_or_default(),
    };
    let (kind, id_kind) = match ext {
        Some(_) => ("extension", "ext"),
        None => ("acknowledgement", "ack"),
    };
    let rendered = t.render(kind, a.lang, vars)?;
    let message_id = make_message_id(id_kind, a.reference, a.now, a.firm_domain);
    let from = Mailbox::new(Some(one_line(a.firm_name)), parse_address(a.from)?);
    let to = Mailbox::new(a.to_name.map(one_line), parse_address(a.to_address)?);
    let threading = a.in_reply_to.map(|parent| {
        let mut refs: Vec<String> = a.references.iter().map(|r| format!("<{r}>")).collect();
        refs.push(format!("<{parent}>"));
        refs.dedup();
        (format!("<{parent}>"), refs.join(" "))
    });
    let raw = build(
        from,
        &[to],
        &rendered,
        &message_id,
        a.now,
        a.reference,
        ext.is_none().then_some("auto-replied"),
        threading,
    )?;
    Ok(Outgoing {
        message_id,
        subject: rendered.subject,
        text: rendered.text,
        raw,
    })
}

/// Who an internal notice goes to, and about what.
#[derive(Debug, Clone)]
pub struct NoticeHead<'a> {
    pub firm_name: &'a str,
    pub firm_domain: &'a str,
    pub from: &'a str,
    /// Everyone it goes to (one mail, all of them in `To`): a partner, a staff member, or
    /// every partner.
    pub to: &'a [&'a str],
    /// The case reference (or a word such as "triage"), for the Message-ID and the
    /// `X-Klachtpost-Case` header.
    pub reference: &'a str,
    pub now: DateTime<Utc>,
}

/// An internal notice (to a partner or staff member) from the template of `kind`, marked
/// `Auto-Submitted: auto-generated`. `vars` holds the kind's variables
/// ([`templates::MailKind::vars`]); `firm` is added here.
pub fn notice_from_template(
    t: &TemplateSet,
    kind: &str,
    lang: Lang,
    head: &NoticeHead<'_>,
    vars: Value,
) -> Result<Outgoing, ComposeError> {
    let vars = context! { firm => one_line(head.firm_name), ..vars };
    let rendered = t.render(kind, lang, vars)?;
    let message_id = make_message_id("notice", head.reference, head.now, head.firm_domain);
    let from = Mailbox::new(
        Some(format!("klachtpost ({})", one_line(head.firm_name))),
        parse_address(head.from)?,
    );
    let to = head
        .to
        .iter()
        .map(|a| Ok(Mailbox::new(None, parse_address(a)?)))
        .collect::<Result<Vec<_>, ComposeError>>()?;
    let raw = build(
        from,
        &to,
        &rendered,
        &message_id,
        head.now,
        head.reference,
        Some("auto-generated"),
        None,
    )?;
    Ok(Outgoing {
        message_id,
        subject: rendered.subject,
        text: rendered.text,
        raw,
    })
}

/// Whether mail can be sent to `address`; intake checks it before it queues an
/// acknowledgement, so `jan` (no domain) opens a flagged case instead of failing the mail.
pub use crate::classify::is_answerable;

fn parse_address(a: &str) -> Result<lettre::Address, ComposeError> {
    a.parse()
        .map_err(|e: lettre::address::AddressError| ComposeError::Build(e.to_string()))
}

/// The message: plain text, or plain text with its HTML alternative.
#[allow(clippy::too_many_arguments)]
fn build(
    from: Mailbox,
    to: &[Mailbox],
    rendered: &Rendered,
    message_id: &str,
    now: DateTime<Utc>,
    reference: &str,
    auto_submitted: Option<&str>,
    threading: Option<(String, String)>,
) -> Result<Vec<u8>, ComposeError> {
    let err = |e: &dyn std::fmt::Display| ComposeError::Build(e.to_string());
    let mut builder = lettre::Message::builder().from(from);
    for to in to {
        builder = builder.to(to.clone());
    }
    let mut builder = builder
        .subject(rendered.subject.clone())
        .date(now.into())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(raw_header("X-Klachtpost-Case", &one_line(reference))?);
    if let Some(auto) = auto_submitted {
        builder = builder
            .raw_header(raw_header("Auto-Submitted", auto)?)
            .raw_header(raw_header("X-Auto-Response-Suppress", "All")?);
    }
    if let Some((in_reply_to, references)) = threading {
        builder = builder.in_reply_to(in_reply_to).references(references);
    }
    let text = rendered.text.replace("\r\n", "\n");
    let message = match &rendered.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(text, html.clone())),
        None => builder.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(text),
        ),
    }
    .map_err(|e| err(&e))?;
    Ok(message.formatted())
}

fn raw_header(name: &str, value: &str) -> Result<HeaderValue, ComposeError> {
    let name = HeaderName::new_from_ascii(name.to_string())
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(HeaderValue::new(name, value.to_string()))
}

/// The `Auto-Submitted` value of a message klachtpost composed, if any (RFC 3834 §5).
pub fn auto_submitted(raw: &[u8]) -> Option<String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..end]);
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("Auto-Submitted")
            .then(|| value.trim().to_ascii_lowercase())
            .filter(|v| v != "no")
    })
}

const WEEKDAYS: [&str; 7] = [
    "maandag",
    "dinsdag",
    "woensdag",
    "donderdag",
    "vrijdag",
    "zaterdag",
    "zondag",
];
const MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];

const WEEKDAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "donderdag 19 november 2026" / "Thursday 19 November 2026", in the firm's time zone.
pub fn format_date(t: DateTime<Utc>, tz: Tz, lang: Lang) -> String {
    let l = t.with_timezone(&tz);
    let (weekdays, months) = match lang {
        Lang::Nl => (WEEKDAYS, MONTHS),
        Lang::En => (WEEKDAYS_EN, MONTHS_EN),
    };
    format!(
        "{} {} {} {}",
        weekdays[l.weekday().num_days_from_monday() as usize],
        l.day(),
        months[l.month0() as usize],
        l.year()
    )
}

/// "donderdag 19 november 2026 om 10:15" / "Thursday 19 November 2026 at 10:15".
pub fn format_datetime(t: DateTime<Utc>, tz: Tz, lang: Lang) -> String {
    let l = t.with_timezone(&tz);
    let at = match lang {
        Lang::Nl => "om",
        Lang::En => "at",
    };
    format!(
        "{} {at} {:02}:{:02}",
        format_date(t, tz, lang),
        l.hour(),
        l.minute()
    )
}

/// "donderdag 19 november 2026 om 10:15", in the firm's time zone.
pub fn dutch_datetime(t: DateTime<Utc>, tz: Tz) -> String {
    format_datetime(t, tz, Lang::Nl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ack<'a>(refs: &'a [String], lang: Lang) -> Acknowledgement<'a> {
        Acknowledgement {
            firm_name: "Adviesbureau Voorbeeld",
            firm_domain: "voorbeeld.nl",
            from: "klachten@voorbeeld.nl",
            to_name: Some("Jan de Vries"),
            to_address: "jan@example.nl",
            reference: "KL-2026-0001",
            original_subject: "Factuur klopt niet",
            in_reply_to: Some("abc@example.nl"),
            references: refs,
            received: Utc.with_ymd_and_hms(2026, 11, 19, 9, 15, 0).unwrap(),
            respond_by: Utc.with_ymd_and_hms(2026, 12, 3, 16, 0, 0).unwrap(),
            resolve_by: Utc.with_ymd_and_hms(2026, 12, 17, 16, 0, 0).unwrap(),
            partner_name: "Anna",
            timezone: chrono_tz::Europe::Amsterdam,
            now: Utc.with_ymd_and_hms(2026, 11, 19, 9, 16, 0).unwrap(),
            lang,
        }
    }

    #[test]
    fn acknowledgement_has_the_threading_and_auto_reply_headers() {
        let t = TemplateSet::builtin().unwrap();
        let refs = vec!["root@example.nl".to_string()];
        let out = acknowledgement(&t, &ack(&refs, Lang::Nl)).unwrap();
        let parsed = crate::parse::parse(&out.raw);
        assert_eq!(
            parsed.subject,
            "[KL-2026-0001] Ontvangstbevestiging: Factuur klopt niet"
        );
        assert_eq!(parsed.in_reply_to, vec!["abc@example.nl"]);
        assert_eq!(parsed.references, vec!["root@example.nl", "abc@example.nl"]);
        assert_eq!(parsed.header("Auto-Submitted"), Some("auto-replied"));
        assert_eq!(parsed.header("X-Auto-Response-Suppress"), Some("All"));
        assert_eq!(auto_submitted(&out.raw).as_deref(), Some("auto-replied"));
        assert_eq!(parsed.message_id.as_deref(), Some(out.message_id.as_str()));
        assert!(out.message_id.ends_with("@voorbeeld.nl"));
        assert!(
            parsed.text.contains("donderdag 19 november 2026 om 10:15"),
            "{}",
            parsed.text
        );
        assert!(
            parsed.text.contains("donderdag 3 december 2026"),
            "{}",
            parsed.text
        );
        let raw = String::from_utf8_lossy(&out.raw);
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/html"), "{raw}");
    }

    #[test]
    fn english_acknowledgement_and_extension_are_not_auto_replies() {
        let t = TemplateSet::builtin().unwrap();
        let out = acknowledgement(&t, &ack(&[], Lang::En)).unwrap();
        assert!(
            out.subject
                .starts_with("[KL-2026-0001] Acknowledgement of your complaint")
        );
        assert!(
            out.text.contains("Thursday 19 November 2026 at 10:15"),
            "{}",
            out.text
        );
        let ext = extension(
            &t,
            &ack(&[], Lang::Nl),
            &ExtensionText {
                previous: Utc.with_ymd_and_hms(2026, 12, 10, 16, 0, 0).unwrap(),
                reason: "stukken",
            },
        )
        .unwrap();
        assert_eq!(auto_submitted(&ext.raw), None);
        assert!(ext.text.contains("De reden: stukken"), "{}", ext.text);
    }

    #[test]
    fn a_name_with_a_line_break_cannot_add_a_header() {
        let t = TemplateSet::builtin().unwrap();
        let mut a = ack(&[], Lang::Nl);
        a.original_subject = "Klacht\r\nBcc: everyone@example.org";
        let out = acknowledgement(&t, &a).unwrap();
        let parsed = crate::parse::parse(&out.raw);
        assert_eq!(parsed.header("Bcc"), None);
        assert!(
            parsed.subject.ends_with("Klacht Bcc: everyone@example.org"),
            "{}",
            parsed.subject
        );
    }
}
