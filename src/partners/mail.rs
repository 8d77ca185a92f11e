//! The mail partners get: the new-complaint notice, the daily reminders, the
//! acknowledgement warning, the confirmation of reply commands, the digest.
//!
//! Each is rendered from a plain `Serialize` struct into subject and text (and HTML for
//! the digest), in Dutch like the other internal notices, so moving them to the template
//! engine is a matter of writing the same text as a template over the same struct. Every
//! mail carries `Auto-Submitted: auto-generated` (RFC 3834 §5) so auto-responders stay
//! quiet, and the case reference in the subject and in `X-Klachtpost-Case` when it is
//! about one case. Partners reply to these mails with commands ([`super::commands`]).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use serde::Serialize;

use super::reminders::{DeadlineKind, dutch_offset};
use crate::compose::{ComposeError, Outgoing, dutch_date, dutch_datetime, make_message_id};

/// How many characters of the complaint's text the new-complaint notice shows.
pub const EXCERPT_CHARS: usize = 600;

/// The lines every mail ends with: how to answer with commands.
pub fn command_footer(several_cases: bool) -> String {
    let mut s = String::from(
        "Antwoord op deze mail met opdrachten bovenaan (één per regel), bijvoorbeeld:\n\
         #status onderzoek | #notitie <tekst> | #toewijzen <partner> | #verlengen <datum> <reden>\n\
         #sluiten tevreden|ontevreden|geen-klacht | #vastleggen oorzaak|maatregel|resultaat|evaluatie <tekst>\n\
         #structureel ja|nee   (Engels mag ook: #assign, #status, #extend, #close, #note, #record, #structural)",
    );
    if several_cases {
        s.push_str("\nDeze mail gaat over meer zaken: zet het zaaknummer vooraan, bv. #sluiten KL-2026-0042 tevreden");
    }
    s.push_str("\nUw antwoord blijft intern: het gaat nooit naar de klager.");
    s
}

/// The first part of a complaint's text, cut at a word.
pub fn excerpt(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= EXCERPT_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(EXCERPT_CHARS).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > EXCERPT_CHARS / 2 => cut[..i].to_string(),
        _ => cut,
    };
    format!("{} …", cut.trim_end())
}

/// A rendered mail: subject, text, and an HTML alternative when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// "A new complaint is yours."
#[derive(Debug, Clone, Serialize)]
pub struct NewComplaint<'a> {
    pub reference: &'a str,
    pub partner_name: &'a str,
    pub complainant: &'a str,
    pub channel: &'a str,
    pub subject: &'a str,
    pub received: DateTime<Utc>,
    pub acknowledge_by: DateTime<Utc>,
    pub respond_by: DateTime<Utc>,
    pub resolve_by: DateTime<Utc>,
    pub excerpt: &'a str,
    /// Why this partner (the assignment rule, and who was passed over).
    pub why: &'a str,
    /// Whether the acknowledgement was queued (else the partner must acknowledge).
    pub acknowledged: bool,
}

fn channel_dutch(channel: &str) -> &str {
    match channel {
        "email" => "e-mail aan de klachtenmailbox",
        "forwarded" => "doorgestuurd door een medewerker",
        "verbal" => "mondeling/telefonisch (notitie van een medewerker)",
        other => other,
    }
}

pub fn new_complaint(n: &NewComplaint<'_>, tz: Tz) -> Rendered {
    let ack = if n.acknowledged {
        "De ontvangstbevestiging aan de klager is verstuurd (of staat klaar)."
    } else {
        "LET OP: er gaat geen automatische ontvangstbevestiging uit (geen bruikbaar adres).\nBevestig de ontvangst per telefoon of brief."
    };
    let text = format!(
        "Beste {partner},\n\n\
         Er is een nieuwe klacht binnengekomen; u bent verantwoordelijk partner.\n\n\
         Zaak:        {reference}\n\
         Klager:      {complainant}\n\
         Kanaal:      {channel}\n\
         Onderwerp:   {subject}\n\
         Ontvangen:   {received}\n\n\
         Termijnen:\n\
         - ontvangst bevestigen uiterlijk {ack_by}\n\
         - klager informeren over de uitkomst uiterlijk {respond_by}\n\
         - klacht afgehandeld uiterlijk {resolve_by}\n\n\
         {ack}\n\
         Toegewezen: {why}.\n\n\
         Begin van de klacht:\n\
         ----------------------------------------\n\
         {excerpt}\n\
         ----------------------------------------\n\n\
         {footer}\n\n-- klachtpost\n",
        partner = n.partner_name,
        reference = n.reference,
        complainant = n.complainant,
        channel = channel_dutch(n.channel),
        subject = n.subject,
        received = dutch_datetime(n.received, tz),
        ack_by = dutch_datetime(n.acknowledge_by, tz),
        respond_by = dutch_datetime(n.respond_by, tz),
        resolve_by = dutch_datetime(n.resolve_by, tz),
        why = n.why,
        excerpt = n.excerpt,
        footer = command_footer(false),
    );
    Rendered {
        subject: format!("[{}] Nieuwe klacht: {}", n.reference, n.subject),
        text,
        html: None,
    }
}

/// One line of a daily reminder mail.
#[derive(Debug, Clone, Serialize)]
pub struct ReminderLine {
    pub reference: String,
    pub complainant: String,
    pub partner: String,
    pub kind: DeadlineKind,
    pub due: DateTime<Utc>,
    pub offset: i64,
}

/// The daily mail to one partner.
#[derive(Debug, Clone, Serialize)]
pub struct Daily<'a> {
    pub partner_name: &'a str,
    pub day: DateTime<Utc>,
    pub reminders: Vec<ReminderLine>,
    pub escalations: Vec<ReminderLine>,
}

fn line(l: &ReminderLine, tz: Tz, with_partner: bool) -> String {
    let partner = if with_partner {
        format!(" (partner {})", l.partner)
    } else {
        String::new()
    };
    format!(
        "- {}{partner}: {} uiterlijk {} — {} — klager {}\n",
        l.reference,
        l.kind.dutch(),
        dutch_datetime(l.due, tz),
        dutch_offset(l.offset),
        l.complainant
    )
}

pub fn daily(d: &Daily<'_>, tz: Tz) -> Rendered {
    let mut text = format!("Beste {},\n\n", d.partner_name);
    if !d.reminders.is_empty() {
        text.push_str("Termijnen van uw klachten:\n");
        for l in &d.reminders {
            text.push_str(&line(l, tz, false));
        }
        text.push('\n');
    }
    if !d.escalations.is_empty() {
        text.push_str(
            "ESCALATIE — deze termijnen zijn ruim verstreken; alle partners krijgen dit bericht:\n",
        );
        for l in &d.escalations {
            text.push_str(&line(l, tz, true));
        }
        text.push('\n');
    }
    let several = d.reminders.len() + d.escalations.len() > 1;
    text.push_str(&format!("{}\n\n-- klachtpost\n", command_footer(several)));
    let subject = match (d.reminders.as_slice(), d.escalations.is_empty()) {
        ([one], true) => format!(
            "[{}] Herinnering: {} {}",
            one.reference,
            one.kind.dutch(),
            dutch_offset(one.offset)
        ),
        _ => format!(
            "Klachttermijnen {}: {} herinnering(en){}",
            dutch_date(d.day, tz),
            d.reminders.len(),
            if d.escalations.is_empty() {
                String::new()
            } else {
                format!(", {} escalatie(s)", d.escalations.len())
            }
        ),
    };
    Rendered {
        subject,
        text,
        html: None,
    }
}

/// "Acknowledge by phone or letter."
#[derive(Debug, Clone, Serialize)]
pub struct AckWarning<'a> {
    pub reference: &'a str,
    pub partner_name: &'a str,
    pub complainant: &'a str,
    pub phone: Option<&'a str>,
    /// Why (no address, bounced, failed, not sent in time), in Dutch.
    pub why: &'a str,
    pub deadline: DateTime<Utc>,
}

pub fn ack_warning(a: &AckWarning<'_>, tz: Tz) -> Rendered {
    let phone = a
        .phone
        .map(|p| format!("Telefoon:  {p}\n"))
        .unwrap_or_default();
    let text = format!(
        "Beste {partner},\n\n\
         Bevestig de ontvangst van klacht {reference} per telefoon of brief vóór {deadline}.\n\n\
         Reden: {why}.\n\n\
         Klager:    {complainant}\n{phone}\n\
         Leg daarna vast hoe het is gedaan:\n\
         klachtpost cases record {reference} --acknowledged-by phone|letter|in-person\n\n\
         {footer}\n\n-- klachtpost\n",
        partner = a.partner_name,
        reference = a.reference,
        deadline = dutch_datetime(a.deadline, tz),
        why = a.why,
        complainant = a.complainant,
        footer = command_footer(false),
    );
    Rendered {
        subject: format!(
            "[{}] Bevestig de ontvangst per telefoon of brief vóór {}",
            a.reference,
            dutch_datetime(a.deadline, tz)
        ),
        text,
        html: None,
    }
}

/// The answer to a reply with commands.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Confirmation {
    /// What changed, one line each.
    pub done: Vec<String>,
    /// Commands refused or failed, with why.
    pub failed: Vec<String>,
    /// Lines not understood, with why.
    pub not_understood: Vec<String>,
    /// The sender may not give commands.
    pub refused: bool,
}

pub fn confirmation(c: &Confirmation, original_subject: &str) -> Rendered {
    let mut text = String::new();
    if c.refused {
        text.push_str(
            "Alleen partners kunnen zaken via een antwoord wijzigen. Er is niets gewijzigd;\n\
             uw bericht is als interne notitie bij de zaak bewaard.\n",
        );
    }
    if !c.done.is_empty() {
        text.push_str("Uitgevoerd:\n");
        for d in &c.done {
            text.push_str(&format!("- {d}\n"));
        }
    }
    if !c.failed.is_empty() {
        text.push_str("\nNiet uitgevoerd:\n");
        for d in &c.failed {
            text.push_str(&format!("- {d}\n"));
        }
    }
    if !c.not_understood.is_empty() {
        text.push_str("\nNiet begrepen:\n");
        for d in &c.not_understood {
            text.push_str(&format!("- {d}\n"));
        }
        text.push_str(&format!(
            "\nDe opdrachten (Nederlands of Engels):\n{}\n",
            super::commands::HELP
        ));
    }
    text.push_str("\nUw antwoord is als interne notitie bij de zaak bewaard; het gaat niet naar de klager.\n\n-- klachtpost\n");
    let subject = original_subject.trim();
    let subject = if subject.to_lowercase().starts_with("re:") {
        subject.to_string()
    } else {
        format!("Re: {subject}")
    };
    Rendered {
        subject,
        text,
        html: None,
    }
}

fn header(name: &str, value: &str) -> Result<HeaderValue, ComposeError> {
    let name = HeaderName::new_from_ascii(name.to_string())
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(HeaderValue::new(name, value.to_string()))
}

/// Who the mail is from and to.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub firm_name: &'a str,
    pub firm_domain: &'a str,
    pub from: &'a str,
    pub to: &'a str,
}

/// Build the message: text, or text with an HTML alternative (RFC 2046 §5.1.4).
pub fn build(
    env: &Envelope<'_>,
    r: &Rendered,
    kind: &str,
    reference: Option<&str>,
    in_reply_to: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Outgoing, ComposeError> {
    let err = |e: &dyn std::fmt::Display| ComposeError::Build(e.to_string());
    let message_id = make_message_id(kind, reference.unwrap_or("partners"), now, env.firm_domain);
    let mut b = lettre::Message::builder()
        .from(Mailbox::new(
            Some(format!("klachtpost ({})", env.firm_name)),
            env.from.parse().map_err(|e| err(&e))?,
        ))
        .to(Mailbox::new(None, env.to.parse().map_err(|e| err(&e))?))
        .subject(r.subject.clone())
        .date(now.into())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(header("Auto-Submitted", "auto-generated")?)
        .raw_header(header("X-Auto-Response-Suppress", "All")?);
    if let Some(reference) = reference {
        b = b.raw_header(header("X-Klachtpost-Case", reference)?);
    }
    if let Some(parent) = in_reply_to {
        b = b
            .in_reply_to(format!("<{parent}>"))
            .references(format!("<{parent}>"));
    }
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(r.text.clone());
    let message = match &r.html {
        Some(html) => b.multipart(
            MultiPart::alternative().singlepart(text).singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html.clone()),
            ),
        ),
        None => b.singlepart(text),
    }
    .map_err(|e| err(&e))?;
    Ok(Outgoing {
        message_id,
        subject: r.subject.clone(),
        text: r.text.clone(),
        raw: message.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_cuts_at_a_word() {
        let long = "woord ".repeat(200);
        let e = excerpt(&long);
        assert!(e.ends_with(" …"));
        assert!(e.chars().count() <= EXCERPT_CHARS + 2);
        assert_eq!(excerpt("  kort  "), "kort");
    }

    #[test]
    fn confirmation_lists_what_was_not_understood_with_the_commands() {
        let r = confirmation(
            &Confirmation {
                not_understood: vec!["#sluit: not a command".into()],
                ..Default::default()
            },
            "[KL-2026-0001] Nieuwe klacht",
        );
        assert_eq!(r.subject, "Re: [KL-2026-0001] Nieuwe klacht");
        assert!(r.text.contains("Niet begrepen"));
        assert!(r.text.contains("#extend <YYYY-MM-DD> <reason>"));
    }

    #[test]
    fn the_digest_mail_has_an_html_alternative() {
        let r = Rendered {
            subject: "s".into(),
            text: "tekst".into(),
            html: Some("<p>html</p>".into()),
        };
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 7, 7, 0, 0).unwrap();
        let out = build(
            &Envelope {
                firm_name: "F",
                firm_domain: "voorbeeld.nl",
                from: "klachten@voorbeeld.nl",
                to: "anna@voorbeeld.nl",
            },
            &r,
            "digest",
            None,
            None,
            now,
        )
        .unwrap();
        let raw = String::from_utf8(out.raw).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/html"));
        assert!(raw.contains("Auto-Submitted: auto-generated"));
    }
}
