//! The partners' job in the daemon: reminders, escalations, acknowledgement warnings and
//! the digest, queued through the outbox exactly once.
//!
//! [`plan`] reads the register and says what is due at a moment and not yet claimed (the
//! preview commands print it); [`step`] claims each item's key in the same transaction as
//! the queued mail, so whatever restarts happen each is sent once. The loop ([`run`]) has
//! the mox shape: do what is due, then wait for a kick (intake took mail in), shutdown,
//! or the earliest next due time ([`next_wake`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Notify, watch};

use super::digest::{self, Digest, Standing};
use super::mail::{self, AckCause, Envelope, ReminderLine, Style};
use super::reminders::{self, DeadlineKind, OpenDeadline, working_days_between};
use crate::case::{self, Actor};
use crate::clock::Clock;
use crate::compose::{Rendered, TemplateSet};
use crate::config::Config;
use crate::store::partners::{self as sp, OpenCase};
use crate::store::{self, Store};

/// Acknowledgement warnings are not raised for cases whose deadline passed this long ago
/// (old cases from before this feature).
const ACK_WARNING_HORIZON_DAYS: i64 = 7;
/// The longest the loop sleeps without looking.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// One thing a partner is told, with its once-only key.
#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    pub key: String,
    pub kind: &'static str,
    #[serde(skip)]
    pub case_id: Option<i64>,
    pub case: Option<String>,
}

/// One mail that is due.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    /// reminder | ack_warning | digest
    pub purpose: &'static str,
    pub to: String,
    pub cases: Vec<String>,
    pub claims: Vec<Claim>,
    #[serde(skip)]
    content: Content,
}

#[derive(Debug, Clone)]
enum Content {
    Daily {
        partner_name: String,
        day: DateTime<Utc>,
        // (claim index, line, escalation)
        lines: Vec<(usize, ReminderLine, bool)>,
    },
    AckWarning {
        partner_name: String,
        complainant: String,
        phone: Option<String>,
        cause: AckCause,
        error: Option<String>,
        deadline: DateTime<Utc>,
    },
    Digest(Box<Digest>),
}

impl Draft {
    /// The mail, with only the items whose claim is in `kept` (all for a preview).
    pub fn render(
        &self,
        config: &Config,
        templates: &TemplateSet,
        kept: &[bool],
    ) -> Result<Rendered> {
        let style = Style::new(config, templates);
        Ok(match &self.content {
            Content::Daily {
                partner_name,
                day,
                lines,
            } => {
                let pick = |esc: bool| {
                    lines
                        .iter()
                        .filter(|(i, _, e)| *e == esc && kept.get(*i).copied().unwrap_or(true))
                        .map(|(_, l, _)| l.clone())
                        .collect()
                };
                mail::Daily {
                    partner_name,
                    day: *day,
                    reminders: pick(false),
                    escalations: pick(true),
                }
                .render(&style)?
            }
            Content::AckWarning {
                partner_name,
                complainant,
                phone,
                cause,
                error,
                deadline,
            } => mail::AckWarning {
                reference: self.cases.first().map(String::as_str).unwrap_or_default(),
                partner_name,
                complainant,
                phone: phone.as_deref(),
                cause: *cause,
                error: error.as_deref(),
                deadline: *deadline,
            }
            .render(&style)?,
            Content::Digest(d) => d.render(&style, &config.calendar)?,
        })
    }

    /// Render everything (for previews), with the config's templates.
    pub fn render_all(&self, config: &Config) -> Result<Rendered> {
        let templates = config.templates.load()?;
        self.render(config, &templates, &vec![true; self.claims.len()])
    }
}

/// Why the acknowledgement did not reach the complainant for good, if it did not: no
/// usable address, refused by the outgoing server, bounced (or held back because the
/// address bounced before). Not once the partner recorded one made another way.
pub fn ack_failure(c: &OpenCase) -> Option<AckCause> {
    if c.acknowledged_by.is_some() {
        return None;
    }
    let bounced = c
        .flags
        .lines()
        .any(|l| l.starts_with("acknowledgement bounced"));
    if c.complainant_address.is_none()
        || !c.ack_queued
        || c.flags.lines().any(|l| l == crate::classify::UNANSWERABLE)
    {
        Some(AckCause::NoAddress)
    } else if c.ack_failed && c.acknowledged_at.is_none() {
        Some(AckCause::SendFailed)
    } else if bounced || (c.ack_held_bounced && c.acknowledged_at.is_none()) {
        Some(AckCause::Bounced)
    } else {
        None
    }
}

/// Why the acknowledgement needs a partner, if it does, and from when they are told.
///
/// This is the one obligation mail per acknowledgement that did not reach the complainant:
/// the outbox does not tell the partner itself when an acknowledgement fails or is held
/// back for a bounced address; this watchdog does, once (key `ack:REF`), with the server's
/// answer.
fn ack_problem(
    config: &Config,
    c: &OpenCase,
    now: DateTime<Utc>,
) -> Option<(AckCause, DateTime<Utc>)> {
    // Intake already told the partner about an address that cannot be answered
    // (`compose::unanswerable_notice`): not twice.
    if c.acknowledged_by.is_some() || c.flags.lines().any(|l| l == crate::classify::UNANSWERABLE) {
        return None;
    }
    if now > c.ack_due_at + chrono::Duration::days(ACK_WARNING_HORIZON_DAYS) {
        return None;
    }
    let cal = &config.calendar;
    let (cause, from) = match ack_failure(c) {
        Some(cause) => (cause, c.received_at),
        None if c.acknowledged_at.is_none() => (
            AckCause::NotAccepted,
            reminders::working_minutes_before(
                cal,
                c.ack_due_at,
                config.partners.reminders.ack_margin_minutes,
            ),
        ),
        None => return None,
    };
    // Partners are told in working hours.
    Some((cause, cal.next_working_moment(from)))
}

/// Everything due at `now` that was not told yet.
pub async fn plan(store: &Store, config: &Config, now: DateTime<Utc>) -> Result<Vec<Draft>> {
    let pool = store.pool();
    let cal = &config.calendar;
    let settings = &config.partners.reminders;
    let cases = sp::open_cases(pool).await?;
    let by_ref: BTreeMap<&str, &OpenCase> =
        cases.iter().map(|c| (c.reference.as_str(), c)).collect();
    let mut drafts = Vec::new();

    // Acknowledgement warnings, at once (in working hours).
    for c in &cases {
        if let Some((cause, at)) = ack_problem(config, c, now)
            && at <= now
        {
            let key = format!("ack:{}", c.reference);
            if sp::claimed(pool, &key).await? {
                continue;
            }
            drafts.push(Draft {
                purpose: "ack_warning",
                to: c.partner_email.clone(),
                cases: vec![c.reference.clone()],
                claims: vec![Claim {
                    key,
                    kind: "ack_warning",
                    case_id: Some(c.id),
                    case: Some(c.reference.clone()),
                }],
                content: Content::AckWarning {
                    partner_name: c.partner_name.clone(),
                    complainant: c.complainant(),
                    phone: c.complainant_phone.clone(),
                    cause,
                    error: c
                        .ack_error
                        .clone()
                        .filter(|_| cause == AckCause::SendFailed),
                    deadline: c.ack_due_at,
                },
            });
        }
    }

    // The daily reminders, at send_at on working days.
    let today = cal.local_date(now);
    if reminders::send_time(cal, settings, today).is_some_and(|t| t <= now) {
        let deadlines: Vec<OpenDeadline> = cases
            .iter()
            .flat_map(|c| {
                let mut v = Vec::new();
                if c.response_met_at.is_none() {
                    v.push(OpenDeadline {
                        case: c.reference.clone(),
                        partner_email: c.partner_email.clone(),
                        kind: DeadlineKind::Response,
                        due: c.response_due_at,
                    });
                }
                v.push(OpenDeadline {
                    case: c.reference.clone(),
                    partner_email: c.partner_email.clone(),
                    kind: DeadlineKind::Resolution,
                    due: c.resolution_due_at,
                });
                v
            })
            .collect();
        let items = reminders::due_on(cal, settings, today, &deadlines);
        for p in &config.firm.partners {
            let mut claims = Vec::new();
            let mut lines = Vec::new();
            for item in &items {
                let mine = item.partner_email == p.email;
                if !(item.escalation || mine) {
                    continue;
                }
                let key = if item.escalation {
                    format!("{}:{}", item.key, p.email)
                } else {
                    item.key.clone()
                };
                if sp::claimed(pool, &key).await? {
                    continue;
                }
                let Some(c) = by_ref.get(item.case.as_str()) else {
                    continue;
                };
                lines.push((
                    claims.len(),
                    ReminderLine {
                        reference: c.reference.clone(),
                        complainant: c.complainant(),
                        partner: c.partner_name.clone(),
                        kind: item.kind,
                        due: item.due,
                        offset: item.offset,
                    },
                    item.escalation,
                ));
                claims.push(Claim {
                    key,
                    kind: if item.escalation {
                        "escalation"
                    } else {
                        "reminder"
                    },
                    case_id: Some(c.id),
                    case: Some(c.reference.clone()),
                });
            }
            if claims.is_empty() {
                continue;
            }
            let mut refs: Vec<String> = claims.iter().filter_map(|c| c.case.clone()).collect();
            refs.sort();
            refs.dedup();
            drafts.push(Draft {
                purpose: "reminder",
                to: p.email.clone(),
                cases: refs,
                claims,
                content: Content::Daily {
                    partner_name: p.name.clone(),
                    day: now,
                    lines,
                },
            });
        }
    }

    // The digest.
    for occ in digest::due(cal, &config.partners.digest, now) {
        let mut pending = Vec::new();
        for p in &config.firm.partners {
            let key = format!("digest:{}:{}", occ.scheduled, p.email);
            if !sp::claimed(pool, &key).await? {
                pending.push((p, key));
            }
        }
        if pending.is_empty() {
            continue;
        }
        let d = build_digest(store, config, &cases, now).await?;
        for (p, key) in pending {
            drafts.push(Draft {
                purpose: "digest",
                to: p.email.clone(),
                cases: d.open.iter().map(|c| c.reference.clone()).collect(),
                claims: vec![Claim {
                    key,
                    kind: "digest",
                    case_id: None,
                    case: None,
                }],
                content: Content::Digest(Box::new(d.clone())),
            });
        }
    }
    Ok(drafts)
}

/// The digest's content at `now`.
pub async fn build_digest(
    store: &Store,
    config: &Config,
    cases: &[OpenCase],
    now: DateTime<Utc>,
) -> Result<Digest> {
    let pool = store.pool();
    let cal = &config.calendar;
    let today = cal.local_date(now);
    let at_risk_days = config
        .partners
        .reminders
        .before
        .iter()
        .copied()
        .max()
        .unwrap_or(0) as i64;
    let open = cases
        .iter()
        .map(|c| {
            let acked = c.acknowledged_by.is_some()
                || (c.acknowledged_at.is_some()
                    && !c
                        .flags
                        .lines()
                        .any(|l| l.starts_with("acknowledgement bounced")));
            let (next_deadline, next_due) = if !acked {
                ("acknowledge", c.ack_due_at)
            } else if c.response_met_at.is_none() {
                ("response", c.response_due_at)
            } else {
                ("resolution", c.resolution_due_at)
            };
            let standing = if next_due < now {
                Standing::Overdue
            } else if working_days_between(cal, today, cal.local_date(next_due)) <= at_risk_days {
                Standing::AtRisk
            } else {
                Standing::OnTrack
            };
            digest::OpenCase {
                reference: c.reference.clone(),
                complainant: c.complainant(),
                partner: c.partner_name.clone(),
                age_working_days: working_days_between(cal, cal.local_date(c.received_at), today)
                    .max(0),
                status: c.status.clone(),
                next_deadline: next_deadline.into(),
                next_due,
                standing,
            }
        })
        .collect();
    let since = sp::last_of_kind(pool, "digest").await?;
    let closed = sp::closed_since(pool, since)
        .await?
        .into_iter()
        .map(|c| digest::ClosedCase {
            reference: c.reference,
            partner: c.partner_name,
            status: c.status,
            closed_at: c.closed_at,
            client_satisfied: c.client_satisfied,
            structural: c.structural,
            measure: c.measure,
        })
        .collect();
    let problems = problems(store, cases, since).await?;
    Ok(Digest {
        firm: config.firm.name.clone(),
        at: now,
        since,
        open,
        closed,
        problems,
    })
}

/// Problems receiving and sending mail, for the digest: open outages and quarantine as they
/// are now, failed acknowledgements of open cases, and what happened since the last digest.
async fn problems(
    store: &Store,
    cases: &[OpenCase],
    since: Option<DateTime<Utc>>,
) -> Result<digest::Problems> {
    let pool = store.pool();
    let outages = store
        .channel_states()
        .await?
        .into_iter()
        .filter_map(|(channel, s)| {
            Some(digest::OpenOutage {
                channel,
                since: s.failing_since?,
                error: s.last_error.unwrap_or_default(),
            })
        })
        .collect();
    let quarantined = store
        .quarantine_items(false)
        .await?
        .into_iter()
        .map(|q| {
            Ok(digest::Quarantined {
                reference: q.reference,
                received: store::parse_ts(&q.received_at)?,
                reason: q.reason,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let acknowledgements = cases
        .iter()
        .filter_map(|c| {
            let cause = ack_failure(c)?;
            Some(digest::FailedAcknowledgement {
                reference: c.reference.clone(),
                partner: c.partner_name.clone(),
                cause: cause.as_str().into(),
                error: c
                    .ack_error
                    .clone()
                    .filter(|_| cause == AckCause::SendFailed),
            })
        })
        .collect();
    let mut unfiled = Vec::new();
    for m in store.unfiled(since).await? {
        unfiled.push(digest::Unfiled {
            number: m.id,
            received: store::parse_ts(&m.received_at)?,
            kind: m.kind,
            case: m.case,
            sender: m.from_address,
            reason: m.reason,
        });
    }
    unfiled.reverse(); // oldest first, like everything else in the digest
    let unfiled_more = unfiled.len().saturating_sub(digest::UNFILED_LISTED);
    unfiled.truncate(digest::UNFILED_LISTED);
    let not_sent = sp::not_sent_since(pool, since)
        .await?
        .into_iter()
        .map(|(purpose, reference)| digest::NotSent { purpose, reference })
        .collect();
    Ok(digest::Problems {
        outages,
        quarantined,
        acknowledgements,
        unfiled,
        unfiled_more,
        not_sent,
        unparseable: sp::unparseable_since(pool, since).await?,
    })
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub mails: usize,
    pub reminders: usize,
    pub escalations: usize,
    pub ack_warnings: usize,
    pub digests: usize,
}

/// Queue everything due now, each item once (its key claimed in the mail's transaction).
pub async fn step(store: &Store, config: &Config, clock: &dyn Clock) -> Result<Report> {
    let now = clock.now();
    let mut report = Report::default();
    let drafts = plan(store, config, now).await?;
    if drafts.is_empty() {
        return Ok(report);
    }
    let templates = config.templates.load()?;
    for draft in drafts {
        let mut tx = store.begin().await?;
        let mut kept = Vec::with_capacity(draft.claims.len());
        for c in &draft.claims {
            kept.push(sp::claim(&mut tx, &c.key, c.kind, c.case_id, now).await?);
        }
        if !kept.iter().any(|k| *k) {
            // Another step got there first.
            continue;
        }
        let rendered = draft.render(config, &templates, &kept)?;
        let single = (draft.cases.len() == 1).then(|| draft.cases[0].clone());
        let single_id = match &single {
            Some(r) => store::case_id_by_reference(&mut tx, r).await?,
            None => None,
        };
        let out = mail::build(
            &Envelope {
                firm_name: &config.firm.name,
                firm_domain: config.firm.domain(),
                from: &config.outgoing.from,
                to: &draft.to,
            },
            &rendered,
            draft.purpose,
            single.as_deref(),
            None,
            now,
        )?;
        store::queue_outgoing(
            &mut tx,
            if draft.purpose == "digest" {
                None
            } else {
                single_id
            },
            draft.purpose,
            Some("klachtpost"),
            &config.outgoing.from,
            &draft.to,
            &out,
            "internal mail to a partner",
            now,
        )
        .await?;
        sp::record_mail(
            &mut tx,
            &out.message_id,
            draft.purpose,
            &draft.cases,
            &draft.to,
            now,
        )
        .await?;
        for (c, k) in draft.claims.iter().zip(&kept) {
            if !k {
                continue;
            }
            match c.kind {
                "reminder" => report.reminders += 1,
                "escalation" => report.escalations += 1,
                "ack_warning" => report.ack_warnings += 1,
                _ => report.digests += 1,
            }
            if let (Some(id), "ack_warning" | "escalation") = (c.case_id, c.kind) {
                let detail = if c.kind == "ack_warning" {
                    "the responsible partner is asked to acknowledge by phone or letter"
                } else {
                    "a deadline is overdue: every partner is told"
                };
                case::log(
                    &mut tx,
                    id,
                    &format!("partners.{}", c.kind),
                    detail,
                    Actor::system(now),
                )
                .await?;
            }
        }
        tx.commit().await?;
        report.mails += 1;
        tracing::info!(
            event = "partners.queued",
            purpose = draft.purpose,
            cases = draft.cases.len(),
            "mail to a partner queued"
        );
    }
    Ok(report)
}

/// The "new complaint" notice to the responsible partner, queued in intake's transaction
/// (so it goes at once, with the case).
pub async fn queue_new_complaint(
    tx: &mut crate::store::Tx,
    config: &Config,
    case_id: i64,
    templates: &TemplateSet,
    partner: &crate::config::Partner,
    n: &mail::NewComplaint<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    let rendered = n.render(&Style::new(config, templates))?;
    queue_partner_mail(
        tx,
        config,
        partner,
        &rendered,
        "new_complaint",
        Some(case_id),
        &[n.reference.to_string()],
        "the responsible partner is told of a new complaint",
        now,
    )
    .await?;
    case::log(
        tx,
        case_id,
        "partners.new_complaint",
        "the responsible partner is told of the new complaint",
        Actor::system(now),
    )
    .await?;
    Ok(())
}

/// A mail to a partner about `references` (on the case `case_id` when it is about one),
/// queued and recorded for the partner's replies.
#[allow(clippy::too_many_arguments)]
async fn queue_partner_mail(
    tx: &mut crate::store::Tx,
    config: &Config,
    partner: &crate::config::Partner,
    rendered: &Rendered,
    kind: &str,
    case_id: Option<i64>,
    references: &[String],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let single = match references {
        [one] => Some(one.as_str()),
        _ => None,
    };
    let out = mail::build(
        &Envelope {
            firm_name: &config.firm.name,
            firm_domain: config.firm.domain(),
            from: &config.outgoing.from,
            to: &partner.email,
        },
        rendered,
        kind,
        single,
        None,
        now,
    )?;
    store::queue_outgoing(
        tx,
        case_id,
        kind,
        Some("klachtpost"),
        &config.outgoing.from,
        &partner.email,
        &out,
        reason,
        now,
    )
    .await?;
    sp::record_mail(tx, &out.message_id, kind, references, &partner.email, now).await?;
    Ok(())
}

/// A new case whose responsible partner is to be told, kept from the mail that opened it
/// until its intake transaction is about to commit ([`tell_new_cases`]).
#[derive(Debug, Clone)]
pub struct NewCaseNotice {
    pub case_id: i64,
    /// Index into the firm's partners.
    pub partner: usize,
    pub reference: String,
    /// Name and address as known; empty when nothing is known.
    pub complainant: String,
    pub channel: &'static str,
    pub subject: String,
    pub received: DateTime<Utc>,
    pub acknowledge_by: DateTime<Utc>,
    pub respond_by: DateTime<Utc>,
    pub resolve_by: DateTime<Utc>,
    pub excerpt: String,
    pub assigned: super::assign::Reason,
    /// Whether the acknowledgement was queued (else the partner must acknowledge).
    pub acknowledged: bool,
}

impl NewCaseNotice {
    fn notice<'a>(&'a self, partner_name: &'a str) -> mail::NewComplaint<'a> {
        mail::NewComplaint {
            reference: &self.reference,
            partner_name,
            complainant: &self.complainant,
            channel: self.channel,
            subject: &self.subject,
            received: self.received,
            acknowledge_by: self.acknowledge_by,
            respond_by: self.respond_by,
            resolve_by: self.resolve_by,
            excerpt: &self.excerpt,
            assigned: &self.assigned,
            acknowledged: self.acknowledged,
        }
    }
}

/// New cases grouped by their responsible partner, in the order the partners first come;
/// each group's cases in the order they came in.
pub fn by_partner(cases: Vec<NewCaseNotice>) -> Vec<Vec<NewCaseNotice>> {
    let mut groups: Vec<Vec<NewCaseNotice>> = Vec::new();
    for c in cases {
        match groups.iter_mut().find(|g| g[0].partner == c.partner) {
            Some(group) => group.push(c),
            None => groups.push(vec![c]),
        }
    }
    groups
}

/// Tell a partner of new cases that are theirs (one intake transaction's, [`by_partner`]):
/// the `new_complaint` notice for one, one `new_complaints` mail listing several. Each
/// case's history says its partner was told.
pub async fn tell_new_cases(
    tx: &mut crate::store::Tx,
    config: &Config,
    templates: &TemplateSet,
    cases: &[NewCaseNotice],
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(first) = cases.first() else {
        return Ok(());
    };
    anyhow::ensure!(
        cases.iter().all(|c| c.partner == first.partner),
        "new cases of several partners in one notice"
    );
    let partner = config
        .firm
        .partners
        .get(first.partner)
        .ok_or_else(|| anyhow::anyhow!("no partner {} in the configuration", first.partner))?;
    match cases {
        [one] => {
            let notice = one.notice(&partner.name);
            queue_new_complaint(tx, config, one.case_id, templates, partner, &notice, now).await
        }
        several => queue_new_complaints(tx, config, templates, partner, several, now).await,
    }
}

/// The `new_complaints` mail: several new cases for one partner in one mail.
async fn queue_new_complaints(
    tx: &mut crate::store::Tx,
    config: &Config,
    templates: &TemplateSet,
    partner: &crate::config::Partner,
    cases: &[NewCaseNotice],
    now: DateTime<Utc>,
) -> Result<()> {
    let notices: Vec<mail::NewComplaint<'_>> =
        cases.iter().map(|c| c.notice(&partner.name)).collect();
    let rendered = mail::NewComplaints {
        partner_name: &partner.name,
        cases: &notices,
    }
    .render(&Style::new(config, templates))?;
    // About several cases: on none of them (as a reminder to several), each case's history
    // says it was told.
    let references: Vec<String> = cases.iter().map(|c| c.reference.clone()).collect();
    queue_partner_mail(
        tx,
        config,
        partner,
        &rendered,
        "new_complaints",
        None,
        &references,
        "the responsible partner is told of new complaints",
        now,
    )
    .await?;
    let detail = format!(
        "the responsible partner is told of the new complaint, in one mail with {} others that came in with it",
        cases.len() - 1
    );
    for c in cases {
        case::log(
            tx,
            c.case_id,
            "partners.new_complaint",
            &detail,
            Actor::system(now),
        )
        .await?;
    }
    Ok(())
}

/// The next moment something may become due (a send time, a digest, an acknowledgement
/// margin), after `now`.
pub async fn next_wake(
    store: &Store,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    let cal = &config.calendar;
    let mut next = reminders::next_send_time(cal, &config.partners.reminders, now);
    if let Some(o) = digest::next(cal, &config.partners.digest, now) {
        next = next.min(o.at);
    }
    for c in sp::open_cases(store.pool()).await? {
        if let Some((_, at)) = ack_problem(config, &c, now)
            && at > now
        {
            next = next.min(at);
        }
        // The margin moment of a case not yet acknowledged.
        if c.acknowledged_at.is_none() && c.acknowledged_by.is_none() {
            let at = cal.next_working_moment(reminders::working_minutes_before(
                cal,
                c.ack_due_at,
                config.partners.reminders.ack_margin_minutes,
            ));
            if at > now {
                next = next.min(at);
            }
        }
    }
    Ok(next)
}

/// The loop: step, then wait for a kick, shutdown or the next due moment.
pub async fn run(
    config: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    kick: Arc<Notify>,
    outbox_kick: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        if *stop.borrow() {
            break;
        }
        let wait = match step(&store, &config, clock.as_ref()).await {
            Ok(r) => {
                backoff = Duration::from_secs(1);
                if r.mails > 0 {
                    outbox_kick.notify_one();
                }
                match next_wake(&store, &config, clock.now()).await {
                    Ok(t) => (t - clock.now()).to_std().unwrap_or(Duration::ZERO),
                    Err(_) => MAX_WAIT,
                }
            }
            Err(e) => {
                tracing::warn!(event = "partners.step_failed", error = %format!("{e:#}"), retry_in = ?backoff, "cannot run the partners' job");
                let b = backoff;
                backoff = (backoff * 2).min(MAX_WAIT);
                b
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait.clamp(Duration::from_millis(200), MAX_WAIT)) => {}
            _ = kick.notified() => {}
            _ = stop.changed() => break,
        }
    }
    tracing::info!(event = "partners.stopped", "partners' job stopped");
}
