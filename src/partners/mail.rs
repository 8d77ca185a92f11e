//! The mail partners get: the new-complaint notice, the daily reminders, the
//! acknowledgement warning, the confirmation of reply commands (and the digest,
//! [`super::digest`]).
//!
//! Each is a plain struct whose values go into its template (`config/templates/`:
//! `new_complaint`, `new_complaints`, `reminders`, `ack_warning`, `command_reply`, `digest`;
//! [`crate::compose::templates`]) in the language of the firm's internal mail. Every mail
//! carries `Auto-Submitted: auto-generated` (RFC 3834 §5) so auto-responders stay quiet,
//! and the case reference in the subject and in `X-Klachtpost-Case` when it is about one
//! case. Partners reply to these mails with commands ([`super::commands`]).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use minijinja::context;
use minijinja::value::Value;
use serde::Serialize;

use super::assign::Reason;
use super::reminders::DeadlineKind;
use crate::compose::{
    ComposeError, Lang, Outgoing, Rendered, TemplateSet, format_date, format_datetime,
    make_message_id, one_line,
};
use crate::config::Config;

/// How many characters of the complaint's text the new-complaint notice shows.
pub const EXCERPT_CHARS: usize = 600;

/// The first part of a complaint's text, cut at a word.
pub fn excerpt(text: &str) -> String {
    excerpt_of(text, EXCERPT_CHARS)
}

/// The first `chars` characters of `text`, cut at a word.
fn excerpt_of(text: &str, chars: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let cut: String = text.chars().take(chars).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > chars / 2 => cut[..i].to_string(),
        _ => cut,
    };
    format!("{} …", cut.trim_end())
}

/// What every partner mail is rendered with: the templates, the firm, its time zone and
/// the language of internal mail (`[templates] language`; Dutch for `auto`).
pub struct Style<'a> {
    pub templates: &'a TemplateSet,
    pub firm: &'a str,
    pub tz: Tz,
    pub lang: Lang,
}

impl<'a> Style<'a> {
    pub fn new(config: &'a Config, templates: &'a TemplateSet) -> Style<'a> {
        Style {
            templates,
            firm: &config.firm.name,
            tz: config.firm.timezone,
            lang: config.templates.language.internal(),
        }
    }

    /// "donderdag 19 november 2026 om 10:15" / "Thursday 19 November 2026 at 10:15".
    pub fn datetime(&self, t: DateTime<Utc>) -> String {
        format_datetime(t, self.tz, self.lang)
    }

    pub fn date(&self, t: DateTime<Utc>) -> String {
        format_date(t, self.tz, self.lang)
    }

    /// Render the mail `kind` with `vars` (and `firm`).
    pub fn render(&self, kind: &str, vars: Value) -> Result<Rendered, ComposeError> {
        let vars = context! { firm => one_line(self.firm), ..vars };
        Ok(self.templates.render(kind, self.lang, vars)?)
    }
}

/// "A new complaint is yours."
#[derive(Debug, Clone, Serialize)]
pub struct NewComplaint<'a> {
    pub reference: &'a str,
    pub partner_name: &'a str,
    /// Name and address as known; empty when nothing is known.
    pub complainant: &'a str,
    /// email | forwarded | verbal
    pub channel: &'a str,
    pub subject: &'a str,
    pub received: DateTime<Utc>,
    pub acknowledge_by: DateTime<Utc>,
    pub respond_by: DateTime<Utc>,
    pub resolve_by: DateTime<Utc>,
    pub excerpt: &'a str,
    /// Why this partner (the assignment rule, and who was passed over).
    pub assigned: &'a Reason,
    /// Whether the acknowledgement was queued (else the partner must acknowledge).
    pub acknowledged: bool,
}

impl NewComplaint<'_> {
    pub fn render(&self, style: &Style<'_>) -> Result<Rendered, ComposeError> {
        style.render(
            "new_complaint",
            context! {
                partner => one_line(self.partner_name),
                ..self.values(style, self.excerpt.to_string())
            },
        )
    }

    /// The case's values, as `new_complaint` has them and each of `new_complaints`' cases.
    fn values(&self, style: &Style<'_>, excerpt: String) -> Value {
        context! {
            reference => one_line(self.reference),
            complainant => one_line(self.complainant),
            channel => self.channel,
            subject => one_line(self.subject),
            received => style.datetime(self.received),
            acknowledge_by => style.datetime(self.acknowledge_by),
            respond_by => style.datetime(self.respond_by),
            resolve_by => style.datetime(self.resolve_by),
            excerpt,
            // `assigned_because` is the history's English line, kept for the firms'
            // templates that use it; `assigned` lets a template word it in its language.
            assigned_because => self.assigned.why(),
            assigned => self.assigned,
            acknowledged => self.acknowledged,
        }
    }
}

/// How many characters of each complaint `new_complaints` shows, on one line.
pub const SHORT_EXCERPT_CHARS: usize = 200;

/// "These new complaints are yours": the new cases one batch of intake gave one partner,
/// in one mail (a backlog of 10,000 complaints told a partner 5,000 times, issue 8). One
/// new case is told by [`NewComplaint`] alone.
#[derive(Debug, Clone)]
pub struct NewComplaints<'a> {
    pub partner_name: &'a str,
    pub cases: &'a [NewComplaint<'a>],
}

impl NewComplaints<'_> {
    pub fn render(&self, style: &Style<'_>) -> Result<Rendered, ComposeError> {
        let cases: Vec<Value> = self
            .cases
            .iter()
            .map(|c| c.values(style, one_line(&excerpt_of(c.excerpt, SHORT_EXCERPT_CHARS))))
            .collect();
        style.render(
            "new_complaints",
            context! {
                partner => one_line(self.partner_name),
                count => cases.len(),
                cases,
            },
        )
    }
}

/// One line of a daily reminder mail.
#[derive(Debug, Clone, Serialize)]
pub struct ReminderLine {
    pub reference: String,
    /// Empty when unknown.
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

impl Daily<'_> {
    pub fn render(&self, style: &Style<'_>) -> Result<Rendered, ComposeError> {
        let lines = |v: &[ReminderLine]| -> Vec<Value> {
            v.iter()
                .map(|l| {
                    context! {
                        reference => l.reference,
                        complainant => l.complainant,
                        partner => l.partner,
                        deadline => l.kind.as_str(),
                        due => style.datetime(l.due),
                        offset => l.offset,
                    }
                })
                .collect()
        };
        style.render(
            "reminders",
            context! {
                partner => one_line(self.partner_name),
                day => style.date(self.day),
                reminders => lines(&self.reminders),
                escalations => lines(&self.escalations),
            },
        )
    }
}

/// Why the acknowledgement needs the partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckCause {
    /// No usable address: no acknowledgement could be queued.
    NoAddress,
    /// The outgoing server refused it for good (or it ran out of attempts).
    SendFailed,
    /// It bounced, or was held back because the address bounced hard before.
    Bounced,
    /// Not accepted by the outgoing server `ack_margin` before the deadline.
    NotAccepted,
}

impl AckCause {
    pub fn as_str(self) -> &'static str {
        match self {
            AckCause::NoAddress => "no_address",
            AckCause::SendFailed => "send_failed",
            AckCause::Bounced => "bounced",
            AckCause::NotAccepted => "not_accepted",
        }
    }
}

/// "Acknowledge by phone or letter."
#[derive(Debug, Clone, Serialize)]
pub struct AckWarning<'a> {
    pub reference: &'a str,
    pub partner_name: &'a str,
    pub complainant: &'a str,
    pub phone: Option<&'a str>,
    pub cause: AckCause,
    /// The outgoing server's answer (redacted), when it refused the acknowledgement.
    pub error: Option<&'a str>,
    pub deadline: DateTime<Utc>,
}

impl AckWarning<'_> {
    pub fn render(&self, style: &Style<'_>) -> Result<Rendered, ComposeError> {
        style.render(
            "ack_warning",
            context! {
                reference => one_line(self.reference),
                partner => one_line(self.partner_name),
                complainant => one_line(self.complainant),
                phone => self.phone.map(one_line).unwrap_or_default(),
                cause => self.cause.as_str(),
                error => self.error.unwrap_or_default(),
                acknowledge_by => style.datetime(self.deadline),
            },
        )
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

impl Confirmation {
    /// The answer to a mail with subject `original_subject` ("Re: " once).
    pub fn render(
        &self,
        style: &Style<'_>,
        original_subject: &str,
    ) -> Result<Rendered, ComposeError> {
        let mut subject = one_line(original_subject);
        while subject.to_lowercase().starts_with("re:") {
            subject = subject[3..].trim_start().to_string();
        }
        style.render(
            "command_reply",
            context! {
                subject,
                refused => self.refused,
                done => self.done,
                failed => self.failed,
                not_understood => self.not_understood,
            },
        )
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
    use crate::partners::assign::{How, PassedOver};

    fn style(templates: &TemplateSet, lang: Lang) -> Style<'_> {
        Style {
            templates,
            firm: "F",
            tz: chrono_tz::Europe::Amsterdam,
            lang,
        }
    }

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
        let t = TemplateSet::builtin().unwrap();
        let c = Confirmation {
            not_understood: vec!["#sluit: not a command".into()],
            ..Default::default()
        };
        let r = c
            .render(&style(&t, Lang::Nl), "RE: [KL-2026-0001] Nieuwe klacht")
            .unwrap();
        assert_eq!(r.subject, "Re: [KL-2026-0001] Nieuwe klacht");
        assert!(r.text.contains("Niet begrepen:\n- #sluit: not a command"));
        assert!(
            r.text.contains("#verlengen <JJJJ-MM-DD> <reden>"),
            "{}",
            r.text
        );
        assert!(!r.text.contains("Alleen partners"));
        let r = Confirmation {
            refused: true,
            ..Default::default()
        }
        .render(&style(&t, Lang::En), "x")
        .unwrap();
        assert!(r.text.starts_with("Only partners"), "{}", r.text);
        assert!(!r.text.contains("#extend"), "no command list: {}", r.text);
    }

    #[test]
    fn the_reminder_subject_names_the_case_when_there_is_one() {
        let t = TemplateSet::builtin().unwrap();
        let day = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 7, 7, 30, 0).unwrap();
        let line = |offset| ReminderLine {
            reference: "KL-2026-0001".into(),
            complainant: String::new(),
            partner: "Anna".into(),
            kind: DeadlineKind::Response,
            due: day,
            offset,
        };
        let one = Daily {
            partner_name: "Anna",
            day,
            reminders: vec![line(-3)],
            escalations: vec![],
        };
        let r = one.render(&style(&t, Lang::Nl)).unwrap();
        assert_eq!(
            r.subject,
            "[KL-2026-0001] Herinnering: de klager informeren over de uitkomst 3 werkdagen te laat"
        );
        assert!(r.text.contains("klager onbekend"), "{}", r.text);
        assert!(!r.text.contains("zaaknummer vooraan"), "{}", r.text);
        let two = Daily {
            escalations: vec![line(-3)],
            ..one
        };
        let r = two.render(&style(&t, Lang::En)).unwrap();
        assert_eq!(
            r.subject,
            "Complaint deadlines Monday 7 December 2026: 1 reminder(s), 1 escalation(s)"
        );
        assert!(r.text.contains("put the reference first"), "{}", r.text);
        let html = r.html.unwrap();
        assert!(
            html.contains("<strong>KL-2026-0001</strong> (partner Anna)"),
            "{html}"
        );
    }

    #[test]
    fn the_new_complaint_notice_inserts_values_literally_and_escapes_html() {
        let t = TemplateSet::builtin().unwrap();
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 19, 9, 15, 0).unwrap();
        let n = NewComplaint {
            reference: "KL-2026-0001",
            partner_name: "Anna",
            complainant: "{{ partner }} {partner} <jan@example.nl>",
            channel: "verbal",
            subject: "Over {% if 1 %}x{% endif %}\r\nBcc: x@example.org",
            received: at,
            acknowledge_by: at,
            respond_by: at,
            resolve_by: at,
            excerpt: "<script>alert(1)</script>",
            assigned: &Reason {
                how: How::RoundRobin,
                passed: vec![],
            },
            acknowledged: false,
        };
        let r = n.render(&style(&t, Lang::Nl)).unwrap();
        assert_eq!(
            r.subject,
            "[KL-2026-0001] Nieuwe klacht: Over {% if 1 %}x{% endif %} Bcc: x@example.org"
        );
        assert!(
            r.text
                .contains("Klager:      {{ partner }} {partner} <jan@example.nl>"),
            "{}",
            r.text
        );
        assert!(r.text.contains("mondeling/telefonisch"), "{}", r.text);
        assert!(r.text.contains("LET OP"), "{}", r.text);
        let html = r.html.unwrap();
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("{{ partner }} {partner} &lt;jan@"), "{html}");
    }

    fn notice(assigned: &Reason) -> NewComplaint<'_> {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 19, 9, 15, 0).unwrap();
        NewComplaint {
            reference: "KL-2026-0001",
            partner_name: "Carla Smit",
            complainant: "Jan <jan@example.nl>",
            channel: "email",
            subject: "Factuur",
            received: at,
            acknowledge_by: at,
            respond_by: at,
            resolve_by: at,
            excerpt: "De factuur klopt niet.",
            assigned,
            acknowledged: true,
        }
    }

    /// The line of the notice that says why this partner.
    fn assigned_line(text: &str) -> &str {
        text.lines()
            .find(|l| l.starts_with("Toegewezen:") || l.starts_with("Assigned:"))
            .unwrap_or_else(|| panic!("no assignment line in {text}"))
    }

    #[test]
    fn the_dutch_notice_says_in_dutch_why_the_partner_was_assigned() {
        let t = TemplateSet::builtin().unwrap();
        for (how, line) in [
            (How::Rule(2), "Toegewezen: volgens toewijzingsregel 2."),
            (How::DefaultPartner, "Toegewezen: de standaardpartner."),
            (
                How::LeastOpen,
                "Toegewezen: de partner met de minste openstaande zaken.",
            ),
            (How::RoundRobin, "Toegewezen: op volgorde (round robin)."),
        ] {
            let reason = Reason {
                how,
                passed: vec![],
            };
            let r = notice(&reason).render(&style(&t, Lang::Nl)).unwrap();
            assert_eq!(assigned_line(&r.text), line);
            assert!(r.html.unwrap().contains(&format!("<p>{line}</p>")));
        }
    }

    #[test]
    fn the_dutch_notice_names_the_partners_passed_over_in_dutch_and_escapes_them() {
        let t = TemplateSet::builtin().unwrap();
        let reason = Reason {
            how: How::LeastOpen,
            passed: vec![
                PassedOver {
                    name: "Anna de Boer".into(),
                    rule: Some(1),
                },
                PassedOver {
                    name: "Bram <Visser> & Co".into(),
                    rule: None,
                },
            ],
        };
        let r = notice(&reason).render(&style(&t, Lang::Nl)).unwrap();
        assert_eq!(
            assigned_line(&r.text),
            "Toegewezen: de partner met de minste openstaande zaken; \
             Anna de Boer (regel 1) wordt in de klacht genoemd en krijgt de zaak daarom niet; \
             Bram <Visser> & Co (standaardpartner) wordt in de klacht genoemd en krijgt de zaak \
             daarom niet."
        );
        let html = r.html.unwrap();
        assert!(
            html.contains("; Bram &lt;Visser&gt; &amp; Co (standaardpartner) wordt"),
            "{html}"
        );
        for english in [
            "fewest",
            "named in the complaint",
            "not assigned",
            "default partner",
            "assignment rule",
        ] {
            assert!(!r.text.contains(english), "{english}: {}", r.text);
            assert!(!html.contains(english), "{english}: {html}");
        }
        // English mail keeps the history's line, word for word.
        let r = notice(&reason).render(&style(&t, Lang::En)).unwrap();
        assert_eq!(
            assigned_line(&r.text),
            format!("Assigned: {}.", reason.why())
        );
    }

    #[test]
    fn a_firms_template_with_assigned_because_still_works() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("new_complaint.nl.txt"),
            "Subject: {{ reference }}\n\nWaarom: {{ assigned_because }}\n",
        )
        .unwrap();
        let t = TemplateSet::load(Some(dir.path()), &[]).unwrap();
        assert_eq!(t.check(), Vec::<String>::new());
        let reason = Reason {
            how: How::Rule(1),
            passed: vec![],
        };
        let r = notice(&reason).render(&style(&t, Lang::Nl)).unwrap();
        assert_eq!(r.text, "Waarom: assignment rule 1 matched\n");
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
