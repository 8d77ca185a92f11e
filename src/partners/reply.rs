//! A reply to a mail klachtpost sent a partner (a notice, a reminder, the digest, a
//! confirmation): intake hands it here before classifying, so it never becomes
//! correspondence with the complainant and never counts as the response.
//!
//! The reply is stored on the case as an internal note (kind `internal_note`, never sent
//! on). When the sender is a partner, the `#` command lines at its top
//! ([`super::commands`]) run through the case commands ([`crate::case`]), each with the
//! partner as the actor, and a short reply says what changed, what failed and what was not
//! understood (with the list of commands). Anyone else's commands are refused and nothing
//! changes. A reply from staff without commands goes through normal classification (the
//! staff confirmation asks staff to answer with corrections); a partner's reply without
//! commands is kept as a note.

use crate::store::Tx;
use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};

use super::commands::{self, Action, Command};
use super::mail::{self, Confirmation, Envelope, Style};
use crate::case::{self, Actor, CaseError};
use crate::compose;
use crate::config::{Config, Partner};
use crate::deadlines::{self, Deadlines};
use crate::intake::{Outcome, Pipeline};
use crate::parse::ParsedMail;
use crate::store::partners::{self as sp, Answered};
use crate::store::{self, NewMessage, parse_ts};

/// The partner who sent this mail, if a partner really did: the From address is a
/// configured partner's and, with `firm.trusted_authserv_id` set, the firm's own server
/// vouches for it (Authentication-Results, [`crate::classify::authres`]) — the same test
/// classification uses for staff, so a forged From cannot command.
pub fn sending_partner<'c>(config: &'c Config, mail: &ParsedMail) -> Option<&'c Partner> {
    let from = mail.from.as_ref()?;
    let address = from.address.to_ascii_lowercase();
    let partner = config.firm.partners.iter().find(|p| p.email == address)?;
    if let Some(id) = &config.firm.trusted_authserv_id {
        let domain = from.domain().unwrap_or_default();
        if !crate::classify::authres::check(mail, id, &domain).pass {
            return None;
        }
    }
    Some(partner)
}

/// The Message-IDs a reply answers: In-Reply-To, then References newest first.
fn answered_ids(mail: &ParsedMail) -> Vec<String> {
    let mut ids = mail.in_reply_to.clone();
    ids.extend(mail.references.iter().rev().cloned());
    ids
}

/// Take in a reply to one of our partner mails, or `None` when the mail is not one (then
/// intake classifies it as usual).
pub async fn handle(
    p: &Pipeline<'_>,
    tx: &mut Tx,
    source_key: Option<&str>,
    raw: &[u8],
    received_at: DateTime<Utc>,
    mail: &ParsedMail,
) -> Result<Option<Outcome>> {
    let config = p.config;
    let Some(from) = mail.from.as_ref() else {
        return Ok(None);
    };
    if !config.firm.is_staff(&from.address) {
        return Ok(None);
    }
    let ids = answered_ids(mail);
    if ids.is_empty() {
        return Ok(None);
    }
    let Some(answered) = sp::answered(tx, &ids).await? else {
        return Ok(None);
    };
    let partner = sending_partner(config, mail);
    let (cmds, not_understood) = commands::parse(&mail.text);
    if partner.is_none() && cmds.is_empty() && not_understood.is_empty() {
        return Ok(None);
    }
    let now = p.clock.now();
    let home = match answered.cases.as_slice() {
        [one] => Some(one.clone()),
        _ => cmds.iter().find_map(|c| c.case.clone()),
    };
    let home_id = match &home {
        Some(r) => store::case_id_by_reference(tx, r).await?,
        None => None,
    };
    let message_row = store::insert_message(
        tx,
        &NewMessage {
            case_id: home_id,
            direction: "inbound",
            kind: "internal_note",
            source_key,
            message_id: mail.message_id.as_deref(),
            from_name: from.name.as_deref(),
            from_address: Some(&from.address),
            subject: &mail.subject,
            date_header: mail.date,
            received_at,
            text: &mail.text,
            decision_reason: "a reply to klachtpost's mail to a partner: kept as an internal note, never sent to the complainant",
            flags: &[],
            raw,
            created_at: now,
            identity: Some(&crate::intake::identity::of(raw).sha256),
        },
    )
    .await?;
    for a in &mail.attachments {
        store::insert_attachment(
            tx,
            message_row,
            a.filename.as_deref(),
            &a.content_type,
            a.size,
        )
        .await?;
    }

    let mut confirmation = Confirmation {
        refused: partner.is_none(),
        not_understood: not_understood
            .iter()
            .map(|n| format!("{}: {}", n.line, n.why))
            .collect(),
        ..Default::default()
    };
    let mut touched: Vec<String> = home.iter().cloned().collect();
    if let Some(partner) = partner {
        for cmd in &cmds {
            let Some(reference) = cmd
                .case
                .clone()
                .or_else(|| match answered.cases.as_slice() {
                    [one] => Some(one.clone()),
                    _ => None,
                })
            else {
                confirmation.failed.push(format!(
                    "{}: this mail is about several cases; put the reference first, e.g. #close KL-2026-0042 satisfied",
                    cmd.line
                ));
                continue;
            };
            let who = Actor::new(&partner.email, now);
            match run(tx, config, &reference, cmd, who).await {
                Ok(said) => {
                    confirmation.done.push(format!("{reference}: {said}"));
                    if !touched.contains(&reference) {
                        touched.push(reference);
                    }
                }
                Err(Failure::Case(e)) => confirmation.failed.push(format!("{}: {e}", cmd.line)),
                Err(Failure::Other(e)) => return Err(e),
            }
        }
    }
    for reference in &touched {
        if let Some(id) = store::case_id_by_reference(tx, reference).await? {
            case::log(
                tx,
                id,
                "partners.reply",
                &format!(
                    "reply from {} to klachtpost's {} kept as internal note (message {message_row}); {} command(s) carried out{}",
                    if partner.is_some() { "a partner" } else { "staff (not a partner: commands refused)" },
                    answered.purpose,
                    confirmation.done.len(),
                    if confirmation.failed.is_empty() && confirmation.not_understood.is_empty() { "" } else { ", some not" }
                ),
                Actor::new(&from.address.to_ascii_lowercase(), now),
            )
            .await?;
        }
    }
    if !(cmds.is_empty() && not_understood.is_empty()) {
        queue_confirmation(
            tx,
            config,
            &p.templates,
            &from.address,
            mail,
            &answered,
            &confirmation,
            home_id,
            now,
        )
        .await?;
    }
    tracing::info!(
        event = "partners.reply",
        case = home.as_deref().unwrap_or("-"),
        partner = partner.is_some(),
        done = confirmation.done.len(),
        failed = confirmation.failed.len(),
        not_understood = confirmation.not_understood.len(),
        source = source_key.unwrap_or("-"),
        "reply to a partner mail taken in"
    );
    Ok(Some(Outcome {
        duplicate: false,
        original: None,
        decision: None,
        case: home,
        opened: false,
        ack_queued: false,
        message_row: Some(message_row),
        notice: None,
    }))
}

#[allow(clippy::too_many_arguments)]
async fn queue_confirmation(
    tx: &mut Tx,
    config: &Config,
    templates: &crate::compose::TemplateSet,
    to: &str,
    mail: &ParsedMail,
    answered: &Answered,
    confirmation: &Confirmation,
    case_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    let rendered = confirmation.render(&Style::new(config, templates), &mail.subject)?;
    let reference = match answered.cases.as_slice() {
        [one] => Some(one.as_str()),
        _ => None,
    };
    let out = mail::build(
        &Envelope {
            firm_name: &config.firm.name,
            firm_domain: config.firm.domain(),
            from: &config.outgoing.from,
            to,
        },
        &rendered,
        "command_reply",
        reference,
        mail.message_id.as_deref(),
        now,
    )?;
    store::queue_outgoing(
        tx,
        case_id,
        "command_reply",
        Some("klachtpost"),
        &config.outgoing.from,
        to,
        &out,
        "confirmation of reply commands",
        now,
    )
    .await?;
    sp::record_mail(
        tx,
        &out.message_id,
        "command_reply",
        &answered.cases,
        to,
        now,
    )
    .await?;
    Ok(())
}

enum Failure {
    /// The command was refused (closed case, unknown partner …): said in the reply.
    Case(String),
    /// The store failed: the whole mail is retried.
    Other(anyhow::Error),
}

impl From<CaseError> for Failure {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Store(s) => Failure::Other(s.into()),
            other => Failure::Case(other.to_string()),
        }
    }
}

impl From<store::StoreError> for Failure {
    fn from(e: store::StoreError) -> Self {
        Failure::Other(e.into())
    }
}

/// Carry out one command; returns what changed, in a few words.
async fn run(
    tx: &mut Tx,
    config: &Config,
    reference: &str,
    cmd: &Command,
    who: Actor<'_>,
) -> Result<String, Failure> {
    let reason = Some("by reply");
    Ok(match &cmd.action {
        Action::Assign(name) => {
            let Some(i) = super::assign::find_partner(&config.firm.partners, name) else {
                return Err(Failure::Case(format!(
                    "{name:?} is not a partner (give a partner's name or address)"
                )));
            };
            let p = &config.firm.partners[i];
            if case::assign(tx, reference, p, who, reason).await? {
                format!("responsible partner now {}", p.name)
            } else {
                format!("{} was already responsible", p.name)
            }
        }
        Action::Status(s) => {
            if case::set_status(tx, reference, *s, who, reason).await? {
                format!("status now {s}")
            } else {
                format!("status was already {s}")
            }
        }
        Action::Close(how) => {
            case::close(tx, reference, *how, who, reason).await?;
            match how {
                case::Closing::Handled(s) => format!("closed; client satisfied: {}", s.as_str()),
                case::Closing::NotAComplaint => "closed: not a complaint".into(),
            }
        }
        Action::Note(text) => {
            case::note(tx, reference, text, who).await?;
            "note added".into()
        }
        Action::Record(form) => {
            if case::record(tx, reference, form, who).await? {
                "form updated".into()
            } else {
                "form unchanged (same value)".into()
            }
        }
        Action::Extend { until, reason } => extend(tx, config, reference, *until, reason, who)
            .await
            .map_err(|e| match e.downcast::<CaseError>() {
                Ok(c) => Failure::from(c),
                Err(e) => match e.downcast::<store::StoreError>() {
                    Ok(s) => Failure::from(s),
                    Err(e) => Failure::Case(format!("{e:#}")),
                },
            })?,
    })
}

/// `#extend`: the resolution deadline moves (case command) and the complainant is told by
/// mail, as `cases extend` does.
async fn extend(
    tx: &mut Tx,
    config: &Config,
    reference: &str,
    until: chrono::NaiveDate,
    reason: &str,
    who: Actor<'_>,
) -> Result<String> {
    {
        let c = case::find(tx, reference).await?;
        let current = Deadlines {
            acknowledge: parse_ts(&c.ack_due_at)?,
            response: parse_ts(&c.response_due_at)?,
            resolution: parse_ts(&c.resolution_due_at)?,
            explanation: c.deadline_explanation.clone(),
        };
        let ext = deadlines::extend_to_date(&config.calendar, &current, until, reason)
            .map_err(|e| anyhow::anyhow!(e))?;
        let described = ext.describe(&config.calendar);
        case::extend(tx, reference, &ext, &described, who).await?;
        let store::register::Contact {
            address: to,
            name,
            subject,
            received_at: received,
            language,
        } = store::register::contact(tx, c.id)
            .await
            .context("cannot read the case")?;
        let Some(to) = to else {
            return Ok(format!(
                "{described}; no complainant address is known: tell the complainant another way"
            ));
        };
        let templates = config.templates.load()?;
        let out = compose::extension(
            &templates,
            &compose::Acknowledgement {
                firm_name: &config.firm.name,
                firm_domain: config.firm.domain(),
                from: &config.outgoing.from,
                to_name: name.as_deref(),
                to_address: &to,
                reference,
                original_subject: &subject,
                in_reply_to: None,
                references: &[],
                received,
                respond_by: current.response,
                resolve_by: ext.resolution,
                partner_name: &c.partner_name,
                timezone: config.firm.timezone,
                now: who.at,
                lang: language
                    .as_deref()
                    .and_then(compose::Lang::from_code)
                    .unwrap_or(compose::Lang::Nl),
            },
            &compose::ExtensionText {
                previous: ext.previous,
                reason: &ext.reason,
            },
        )?;
        store::queue_outgoing(
            tx,
            Some(c.id),
            "extension",
            None,
            &config.outgoing.from,
            &to,
            &out,
            "extension of the resolution deadline",
            who.at,
        )
        .await?;
        Ok(format!("{described}; the complainant is told by mail"))
    }
}
