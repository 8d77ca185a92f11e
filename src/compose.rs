//! Builds the messages klachtpost sends, from templates a firm can edit.
//!
//! A template is a text file: optional header lines (`Subject: …`), a blank line, then the
//! body. Placeholders in braces are filled in: `{reference}`, `{firm}`, `{name}` (the
//! complainant's name, or empty), `{greeting_name}` (the name, or a neutral fallback),
//! `{subject}` (the original subject), `{received}`, `{respond_by}`, `{resolve_by}` (dates
//! in Dutch, the firm's time zone), `{partner}`. An unknown placeholder is an error at
//! start-up, not a surprise in a client's mailbox.
//!
//! Acknowledgements are auto-replies in the sense of RFC 3834: `Auto-Submitted:
//! auto-replied` (§5) and `X-Auto-Response-Suppress: All` (Exchange) so that other
//! responders do not answer them, and `In-Reply-To`/`References` (RFC 5322 §3.6.4) so the
//! complainant's client threads them under the complaint. The envelope sender is
//! `outgoing.from`, not the null path RFC 3834 §3.3 allows, on purpose: a bounce of an
//! acknowledgement must come back to the mailbox so the partner learns the complainant was
//! not reached.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, SinglePart};

/// A template could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot read the template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template {path}: {problem}")]
    Template { path: String, problem: String },
    #[error("cannot build the message: {0}")]
    Build(String),
}

const PLACEHOLDERS: &[&str] = &[
    "reference",
    "firm",
    "name",
    "greeting_name",
    "subject",
    "received",
    "respond_by",
    "resolve_by",
    "partner",
    "previous",
    "reason",
];

/// A parsed template: a subject line and a body, both with placeholders.
#[derive(Debug, Clone)]
pub struct Template {
    pub subject: String,
    pub body: String,
}

impl Template {
    /// Read and check a template file.
    pub fn load(path: &Path) -> Result<Template, ComposeError> {
        let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|problem| ComposeError::Template {
            path: path.display().to_string(),
            problem,
        })
    }

    pub fn parse(text: &str) -> Result<Template, String> {
        let text = text.replace("\r\n", "\n");
        let (head, body) = match text.split_once("\n\n") {
            Some((h, b)) if h.lines().all(|l| l.contains(':')) && h.starts_with("Subject:") => {
                (h.to_string(), b.to_string())
            }
            _ => (String::new(), text.clone()),
        };
        let subject = head
            .lines()
            .find_map(|l| l.strip_prefix("Subject:"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "[{reference}] Ontvangstbevestiging: {subject}".to_string());
        for part in [&subject, &body] {
            for name in placeholders(part) {
                if !PLACEHOLDERS.contains(&name.as_str()) {
                    return Err(format!(
                        "unknown placeholder {{{name}}} (known: {})",
                        PLACEHOLDERS.join(", ")
                    ));
                }
            }
        }
        if body.trim().is_empty() {
            return Err("the body is empty".into());
        }
        Ok(Template { subject, body })
    }

    fn render(&self, values: &[(&str, String)]) -> (String, String) {
        let fill = |s: &str| {
            let mut out = s.to_string();
            for (k, v) in values {
                out = out.replace(&format!("{{{k}}}"), v);
            }
            out
        };
        (fill(&self.subject), fill(&self.body))
    }
}

fn placeholders(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end)
                if after[..end]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                out.push(after[..end].to_string());
                rest = &after[end + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

/// What an acknowledgement says.
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

/// Build an acknowledgement from the template.
pub fn acknowledgement(t: &Template, a: &Acknowledgement<'_>) -> Result<Outgoing, ComposeError> {
    case_mail(t, a, None)
}

/// Tell the complainant the resolution deadline was extended (`a.resolve_by` is the new
/// one). Sent on a partner's action, so not marked as an auto-reply.
pub fn extension(
    t: &Template,
    a: &Acknowledgement<'_>,
    e: &ExtensionText<'_>,
) -> Result<Outgoing, ComposeError> {
    case_mail(t, a, Some(e))
}

fn case_mail(
    t: &Template,
    a: &Acknowledgement<'_>,
    ext: Option<&ExtensionText<'_>>,
) -> Result<Outgoing, ComposeError> {
    let subject_clean = if a.original_subject.trim().is_empty() {
        "(geen onderwerp)".to_string()
    } else {
        a.original_subject.trim().to_string()
    };
    let values = [
        ("reference", a.reference.to_string()),
        ("firm", a.firm_name.to_string()),
        ("name", a.to_name.unwrap_or_default().to_string()),
        (
            "greeting_name",
            a.to_name.unwrap_or("heer, mevrouw").to_string(),
        ),
        ("subject", subject_clean),
        ("received", dutch_datetime(a.received, a.timezone)),
        ("respond_by", dutch_date(a.respond_by, a.timezone)),
        ("resolve_by", dutch_date(a.resolve_by, a.timezone)),
        ("partner", a.partner_name.to_string()),
        (
            "previous",
            ext.map(|e| dutch_date(e.previous, a.timezone))
                .unwrap_or_default(),
        ),
        (
            "reason",
            ext.map(|e| e.reason.to_string()).unwrap_or_default(),
        ),
    ];
    let (subject, body) = t.render(&values);
    let kind = if ext.is_some() { "ext" } else { "ack" };
    let message_id = make_message_id(kind, a.reference, a.now, a.firm_domain);
    build(a, &subject, &body, &message_id, ext.is_none()).map(|raw| Outgoing {
        message_id,
        subject,
        text: body,
        raw,
    })
}

/// A short internal notice (to a partner or staff member), plain text, auto-generated.
#[allow(clippy::too_many_arguments)]
pub fn notice(
    firm_name: &str,
    firm_domain: &str,
    from: &str,
    to: &str,
    reference: &str,
    subject: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Outgoing, ComposeError> {
    notice_to_all(
        firm_name,
        firm_domain,
        from,
        &[to],
        reference,
        subject,
        body,
        now,
    )
}

/// [`notice`] to several people at once (one mail, every one of them in `To`).
#[allow(clippy::too_many_arguments)]
fn notice_to_all(
    firm_name: &str,
    firm_domain: &str,
    from: &str,
    to: &[&str],
    reference: &str,
    subject: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Outgoing, ComposeError> {
    let err = |e: &dyn std::fmt::Display| ComposeError::Build(e.to_string());
    let message_id = make_message_id("notice", reference, now, firm_domain);
    let mut builder = lettre::Message::builder().from(Mailbox::new(
        Some(format!("klachtpost ({firm_name})")),
        from.parse().map_err(|e| err(&e))?,
    ));
    for to in to {
        builder = builder.to(Mailbox::new(None, to.parse().map_err(|e| err(&e))?));
    }
    let message = builder
        .subject(subject)
        .date(now.into())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(raw_header("Auto-Submitted", "auto-generated")?)
        .raw_header(raw_header("X-Auto-Response-Suppress", "All")?)
        .raw_header(raw_header("X-Klachtpost-Case", reference)?)
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(body.to_string()),
        )
        .map_err(|e| err(&e))?;
    Ok(Outgoing {
        message_id,
        subject: subject.to_string(),
        text: body.to_string(),
        raw: message.formatted(),
    })
}

/// A channel klachtpost depends on was out, or is back (see [`crate::health`]). All of
/// its text is here, in one place.
#[derive(Debug, Clone)]
pub struct ChannelNotice<'a> {
    pub firm_name: &'a str,
    pub firm_domain: &'a str,
    pub from: &'a str,
    /// Every partner.
    pub to: &'a [String],
    /// `mailbox` or `outgoing`.
    pub channel: &'a str,
    /// When the outage began.
    pub since: DateTime<Utc>,
    /// The last error (one line, no mail content); for an outage notice.
    pub error: &'a str,
    /// `false`: the outage notice; `true`: the all-clear.
    pub recovered: bool,
    pub timezone: Tz,
    pub now: DateTime<Utc>,
}

/// The notice to the partners that a channel is out (once per outage) or back.
pub fn channel_notice(n: &ChannelNotice<'_>) -> Result<Outgoing, ComposeError> {
    let what = match n.channel {
        "mailbox" => "de klachtenmailbox",
        "outgoing" => "het verzenden van mail",
        other => other,
    };
    let since = dutch_datetime(n.since, n.timezone);
    let (subject, body) = if n.recovered {
        (
            format!("klachtpost: {what} werkt weer"),
            format!(
                "Beste partners,\n\n{what} werkt weer sinds {} (storing sinds {since}).\n\
                 Wat in de tussentijd binnenkwam wordt nu verwerkt, met de oorspronkelijke ontvangsttijd.\n\
                 Controleer met: klachtpost status\n\n-- klachtpost\n",
                dutch_datetime(n.now, n.timezone)
            ),
        )
    } else {
        (
            format!("klachtpost: storing, {what} werkt niet"),
            format!(
                "Beste partners,\n\nklachtpost kan {what} sinds {since} niet gebruiken.\n\
                 Laatste fout: {}\n\n\
                 Zolang dit duurt worden nieuwe klachten niet geregistreerd en niet bevestigd; \
                 klachtpost blijft het proberen en meldt het wanneer het weer werkt. \
                 Controleer de server, het wachtwoord en de map, en bekijk: klachtpost status\n\n-- klachtpost\n",
                n.error
            ),
        )
    };
    let err = |e: &dyn std::fmt::Display| ComposeError::Build(e.to_string());
    let kind = if n.recovered { "recovered" } else { "outage" };
    let message_id = make_message_id(kind, n.channel, n.now, n.firm_domain);
    let mut builder = lettre::Message::builder()
        .from(Mailbox::new(
            Some(format!("klachtpost ({})", n.firm_name)),
            n.from.parse().map_err(|e| err(&e))?,
        ))
        .subject(subject.as_str())
        .date(n.now.into())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(raw_header("Auto-Submitted", "auto-generated")?)
        .raw_header(raw_header("X-Auto-Response-Suppress", "All")?);
    for to in n.to {
        builder = builder.to(Mailbox::new(None, to.parse().map_err(|e| err(&e))?));
    }
    let message = builder
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(body.clone()),
        )
        .map_err(|e| err(&e))?;
    Ok(Outgoing {
        message_id,
        subject,
        text: body,
        raw: message.formatted(),
    })
}

/// Whether mail can be sent to `address`; intake checks it before it queues an
/// acknowledgement, so `jan` (no domain) opens a flagged case instead of failing the mail.
pub use crate::classify::is_answerable;

/// What a quarantine notice says about the mail: never its content.
#[derive(Debug, Clone)]
pub struct QuarantineFacts<'a> {
    /// `Q-0007`.
    pub reference: &'a str,
    /// Why it could not be taken in.
    pub reason: &'a str,
    pub received: DateTime<Utc>,
    pub size: usize,
    /// Where it now is in the mailbox.
    pub folder: &'a str,
    pub timezone: Tz,
}

/// The one mail to the partners that a mail is in quarantine: its reference, why and
/// what to do; never its sender, subject or text.
pub fn quarantine_notice(
    firm_name: &str,
    firm_domain: &str,
    from: &str,
    partners: &[&str],
    q: &QuarantineFacts<'_>,
    now: DateTime<Utc>,
) -> Result<Outgoing, ComposeError> {
    let reference = q.reference;
    let subject = format!("[{reference}] Bericht in quarantaine: niet automatisch verwerkt");
    let body = format!(
        "Een bericht in de klachtenbus kon niet automatisch worden verwerkt. Het staat in\n\
         quarantaine onder nummer {reference}.\n\n\
         Waarom: {reason}\n\
         Ontvangen: {received}\n\
         Grootte: {size} bytes\n\n\
         Het bericht is ongewijzigd bewaard en staat in de map \"{folder}\" van de\n\
         klachtenbus. Er is geen zaak geopend en niemand heeft een ontvangstbevestiging\n\
         gekregen. Bekijk het bericht; is het een klacht, laat dan de oorzaak verhelpen en\n\
         neem het opnieuw in met\n\n    klachtpost quarantine retry {reference}\n\n\
         `klachtpost quarantine list` toont alles wat in quarantaine staat.\n\n-- klachtpost\n",
        reason = q.reason,
        received = dutch_datetime(q.received, q.timezone),
        size = q.size,
        folder = q.folder,
    );
    notice_to_all(
        firm_name,
        firm_domain,
        from,
        partners,
        reference,
        &subject,
        &body,
        now,
    )
}

/// Tell a case's partner that its complaint could not be acknowledged by mail because the
/// sender's address cannot be answered, so it must be acknowledged another way.
#[allow(clippy::too_many_arguments)]
pub fn unanswerable_notice(
    firm_name: &str,
    firm_domain: &str,
    from: &str,
    partner: &str,
    reference: &str,
    acknowledge_by: DateTime<Utc>,
    timezone: Tz,
    now: DateTime<Utc>,
) -> Result<Outgoing, ComposeError> {
    let subject = format!("[{reference}] Ontvangst niet bevestigd: geen bruikbaar adres");
    let body = format!(
        "Zaak {reference} is geopend, maar het adres van de afzender is geen bruikbaar\n\
         e-mailadres. Er is daarom geen ontvangstbevestiging verstuurd.\n\n\
         Bevestig de ontvangst op een andere manier (telefoon, post of een ander\n\
         e-mailadres van de klager), uiterlijk {by}.\n\n\
         `klachtpost cases show {reference}` toont de zaak.\n\n-- klachtpost\n",
        by = dutch_date(acknowledge_by, timezone),
    );
    notice(
        firm_name,
        firm_domain,
        from,
        partner,
        reference,
        &subject,
        &body,
        now,
    )
}

fn build(
    a: &Acknowledgement<'_>,
    subject: &str,
    body: &str,
    message_id: &str,
    auto_reply: bool,
) -> Result<Vec<u8>, ComposeError> {
    let err = |e: &dyn std::fmt::Display| ComposeError::Build(e.to_string());
    let from: Mailbox = Mailbox::new(
        Some(a.firm_name.to_string()),
        a.from.parse().map_err(|e| err(&e))?,
    );
    let to = Mailbox::new(
        a.to_name.map(str::to_string),
        a.to_address.parse().map_err(|e| err(&e))?,
    );
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .date(a.now.into())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(raw_header("X-Klachtpost-Case", a.reference)?);
    if auto_reply {
        builder = builder
            .raw_header(raw_header("Auto-Submitted", "auto-replied")?)
            .raw_header(raw_header("X-Auto-Response-Suppress", "All")?);
    }
    if let Some(parent) = a.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
        let mut refs: Vec<String> = a.references.iter().map(|r| format!("<{r}>")).collect();
        refs.push(format!("<{parent}>"));
        refs.dedup();
        builder = builder.references(refs.join(" "));
    }
    let message = builder
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(body.replace("\r\n", "\n")),
        )
        .map_err(|e| err(&e))?;
    Ok(message.formatted())
}

fn raw_header(name: &str, value: &str) -> Result<HeaderValue, ComposeError> {
    let name = HeaderName::new_from_ascii(name.to_string())
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(HeaderValue::new(name, value.to_string()))
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

/// "donderdag 19 november 2026", in the firm's time zone.
pub fn dutch_date(t: DateTime<Utc>, tz: Tz) -> String {
    let l = t.with_timezone(&tz);
    format!(
        "{} {} {} {}",
        WEEKDAYS[l.weekday().num_days_from_monday() as usize],
        l.day(),
        MONTHS[l.month0() as usize],
        l.year()
    )
}

/// "donderdag 19 november 2026 om 10:15", in the firm's time zone.
pub fn dutch_datetime(t: DateTime<Utc>, tz: Tz) -> String {
    let l = t.with_timezone(&tz);
    format!("{} om {:02}:{:02}", dutch_date(t, tz), l.hour(), l.minute())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ack<'a>(refs: &'a [String]) -> Acknowledgement<'a> {
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
        }
    }

    #[test]
    fn acknowledgement_has_the_threading_and_auto_reply_headers() {
        let t = Template::parse("Subject: [{reference}] Ontvangstbevestiging: {subject}\n\nBeste {greeting_name},\n\nUw klacht {reference} is op {received} ontvangen. Wij reageren uiterlijk {respond_by}.\n").unwrap();
        let refs = vec!["root@example.nl".to_string()];
        let out = acknowledgement(&t, &ack(&refs)).unwrap();
        let parsed = crate::parse::parse(&out.raw);
        assert_eq!(
            parsed.subject,
            "[KL-2026-0001] Ontvangstbevestiging: Factuur klopt niet"
        );
        assert_eq!(parsed.in_reply_to, vec!["abc@example.nl"]);
        assert_eq!(parsed.references, vec!["root@example.nl", "abc@example.nl"]);
        assert_eq!(parsed.header("Auto-Submitted"), Some("auto-replied"));
        assert_eq!(parsed.header("X-Auto-Response-Suppress"), Some("All"));
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
    }

    #[test]
    fn unknown_placeholders_are_refused() {
        let e = Template::parse("Subject: {reference}\n\nHallo {naam}\n").unwrap_err();
        assert!(e.contains("{naam}"), "{e}");
    }
}
