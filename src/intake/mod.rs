//! Intake: one fetched mail in, one transaction (or one savepoint of a batch's) out.
//!
//! For each mail: skip it if it was seen before, by where it sat (its source key: a
//! re-fetch after a crash) or by what it is ([`identity`]: the same mail after a
//! UIDVALIDITY change, a folder rename, a second APPEND, an alias and a Cc), recording it
//! as a duplicate; parse it, ask the store what the classifier needs, classify, then
//! store the raw message and its attachments, open the case (reference, partner,
//! deadlines) or attach to one, and queue the acknowledgement in the outbox: all of it,
//! reads included, in the caller's transaction. [`Pipeline::take_in`] gives a mail a
//! transaction of its own; the daemon takes mail in batches
//! ([`crate::daemon::intake_pass`]): one transaction per batch, each mail behind a
//! savepoint ([`Pipeline::handle_in`]), so a mail sees the batch's earlier ones (a
//! duplicate, a reply to a case opened a moment before) and one that fails is undone
//! alone. Only after the commit is durable may the mailbox move the mail away (the batch
//! is made durable by one synchronous commit, `store::batches`). A crash anywhere means a
//! re-fetch, never a duplicate and never a lost mail.
//!
//! No mail stops intake ([`quarantine`]): whatever goes wrong with one mail, what it wrote
//! is rolled back, it is kept raw in quarantine, the partners are told its reference, and
//! intake goes on with the next. A complaint whose sender cannot be answered still
//! opens a case, flagged, and its partner is told to acknowledge it another way.

pub mod identity;
pub mod quarantine;

pub use quarantine::{Disposition, Handled, Retried};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Datelike, Utc};

use crate::case::{self, Actor};
use crate::classify::{self, Context, Decision, Direction, Kind};
use crate::clock::Clock;
use crate::compose::{self, Lang, TemplateSet};
use crate::config::Config;
use crate::deadlines;
use crate::parse::{self, ParsedMail};
use crate::partners::assign;
use crate::partners::scheduler::NewCaseNotice;
use crate::store::{self, NewCase, NewMessage, Seen, Store};
use identity::Identity;

/// The flag on a case whose complainant's address cannot be answered.
pub use crate::classify::UNANSWERABLE as UNANSWERABLE_FLAG;

/// A mail intake will not take in as it is; it goes to quarantine.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "the mail is {size} bytes, over intake.max_message_bytes ({max}); raise the limit to take it in"
    )]
    TooLarge { size: usize, max: usize },
    #[error("the mail cannot be read: {0}")]
    Unreadable(String),
}

/// Everything intake needs, built once at start-up.
pub struct Pipeline<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    pub clock: &'a dyn Clock,
    pub templates: TemplateSet,
    /// The partners' open cases for assignment, counted once per intake batch
    /// ([`Pipeline::new_batch`]) and kept up to date by the batch's own new cases: counting
    /// them for every complaint read all open cases, so a backlog slowed down as it went
    /// (846 µs a mail at 10,000 open cases). Forgotten after any mail that did not open a
    /// case (a partner's command may close or move one); what other processes change
    /// meanwhile (`klachtpost cases close`) counts from the next batch on.
    load: std::sync::Mutex<Option<assign::Load>>,
}

/// What happened to one mail.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Seen before (same source key or same identity): only a duplicate record was
    /// written.
    pub duplicate: bool,
    /// For a duplicate: its stored original.
    pub original: Option<Seen>,
    pub decision: Option<Decision>,
    /// The case opened or threaded to.
    pub case: Option<String>,
    pub opened: bool,
    pub ack_queued: bool,
    pub message_row: Option<i64>,
    /// The new case's partner, to be told before the transaction commits
    /// ([`Pipeline::tell_partners`]: a batch's new cases together).
    pub notice: Option<NewCaseNotice>,
}

/// What the log says of a mail taken in, kept until its transaction is committed (a
/// batch's: until it is durable, [`crate::daemon::intake_pass`]), so the log never reports
/// a mail the register does not hold. Logs carry the kind, the case and the source, never
/// names, addresses or text.
#[derive(Debug, Clone)]
pub struct TakenIn {
    kind: Kind,
    case: Option<String>,
    opened: bool,
    ack_queued: bool,
}

impl TakenIn {
    pub fn log(&self, source_key: Option<&str>) {
        tracing::info!(
            event = "mail.taken_in",
            kind = self.kind.as_str(),
            case = self.case.as_deref().unwrap_or("-"),
            opened = self.opened,
            ack_queued = self.ack_queued,
            source = source_key.unwrap_or("-"),
            "mail stored and classified"
        );
    }
}

impl Outcome {
    /// What to log once the mail is committed; nothing for a duplicate (logged as one) or
    /// a partner's reply (the partners' side logs it).
    pub fn taken_in(&self) -> Option<TakenIn> {
        let decision = self.decision.as_ref().filter(|_| !self.duplicate)?;
        Some(TakenIn {
            kind: decision.kind,
            case: self.case.clone(),
            opened: self.opened,
            ack_queued: self.ack_queued,
        })
    }
}

impl<'a> Pipeline<'a> {
    pub fn new(config: &'a Config, store: &'a Store, clock: &'a dyn Clock) -> Result<Self> {
        let templates = config.templates.load()?;
        Ok(Pipeline {
            config,
            store,
            clock,
            templates,
            load: std::sync::Mutex::new(None),
        })
    }

    /// A new intake batch: the partners' open cases are counted again.
    pub fn new_batch(&self) {
        *self.load.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Commit intake's transaction (a mail's own, or a batch's). When the commit fails its
    /// new cases are not there: the partners' open cases are counted again.
    pub async fn commit(&self, tx: store::Tx) -> Result<()> {
        tx.commit().await.map_err(|e| {
            self.new_batch();
            e.into()
        })
    }

    /// Tell the responsible partners of new cases, in the transaction that opened them,
    /// just before it commits: a batch's new cases together, one mail per partner
    /// ([`crate::partners::scheduler::tell_new_cases`]). A mail that cannot be made (a
    /// firm's template failing on a value) does not undo the cases: that partner's cases
    /// are told one by one, and a case whose notice still fails says so in its history and
    /// the log (its partner sees it in the reminders and the digest). An error only when
    /// the store cannot be written.
    pub async fn tell_partners(&self, tx: &mut store::Tx, cases: Vec<NewCaseNotice>) -> Result<()> {
        if cases.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let tell = async |tx: &mut store::Tx, cases: &[NewCaseNotice]| -> Result<()> {
            tx.savepoint().await?;
            let told = crate::partners::scheduler::tell_new_cases(
                tx,
                self.config,
                &self.templates,
                cases,
                now,
            )
            .await;
            // As a mail's savepoint (`handle_in`): a release that fails is undone too.
            let kept = match told {
                Ok(()) => tx.release().await.map_err(Into::into),
                Err(e) => Err(e),
            };
            if kept.is_err() {
                tx.rollback_to().await?;
            }
            kept
        };
        for group in crate::partners::scheduler::by_partner(cases) {
            let Err(e) = tell(tx, &group).await else {
                continue;
            };
            if quarantine::store_unavailable(&e) || group.len() == 1 {
                self.not_told(tx, &group, e).await?;
                continue;
            }
            for case in group.chunks(1) {
                if let Err(e) = tell(tx, case).await {
                    self.not_told(tx, case, e).await?;
                }
            }
        }
        Ok(())
    }

    /// A case whose partner could not be told: in its history and the log; an error when
    /// the store cannot be written.
    async fn not_told(
        &self,
        tx: &mut store::Tx,
        cases: &[NewCaseNotice],
        error: anyhow::Error,
    ) -> Result<()> {
        if quarantine::store_unavailable(&error) {
            return Err(error);
        }
        let now = self.clock.now();
        for c in cases {
            tracing::warn!(
                event = "partners.notice_failed",
                case = c.reference.as_str(),
                error = %format!("{error:#}"),
                "the responsible partner could not be told of the new case; the reminders and the digest list it"
            );
            case::log(
                tx,
                c.case_id,
                "partners.new_complaint_failed",
                &format!("the responsible partner could not be told: {error:#}"),
                Actor::system(now),
            )
            .await?;
        }
        Ok(())
    }

    /// The partners' open cases: counted, or as counted for this batch plus its new cases.
    async fn partner_load(&self, tx: &mut store::Tx) -> Result<assign::Load> {
        if let Some(load) = self.load.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(load);
        }
        let load = store::partners::load(tx).await?;
        *self.load.lock().unwrap_or_else(|e| e.into_inner()) = Some(load.clone());
        Ok(load)
    }

    /// After a mail's transaction is committed: count its new case, or forget the counts
    /// when it did something else.
    fn count_new_case(&self, opened_for: Option<&str>) {
        let mut load = self.load.lock().unwrap_or_else(|e| e.into_inner());
        match (opened_for, load.as_mut()) {
            (Some(partner), Some(l)) => {
                *l.open.entry(partner.to_string()).or_default() += 1;
                l.last_assigned = Some(partner.to_string());
            }
            _ => *load = None,
        }
    }

    /// The classifier's context for a mail received at `received_at`.
    pub fn context(&self, received_at: DateTime<Utc>) -> Context<'a> {
        let mut own = vec![
            self.config.firm.address.clone(),
            self.config.outgoing.from.to_ascii_lowercase(),
        ];
        own.dedup();
        Context {
            firm: &self.config.firm,
            own_addresses: own,
            received_at,
        }
    }

    /// Take in one mail, in a transaction of its own. `source_key` identifies it in its
    /// mailbox (None: known by its identity only). An error means nothing was written;
    /// [`Pipeline::handle`] turns it into a quarantine item.
    pub async fn take_in(
        &self,
        source_key: Option<&str>,
        raw: &[u8],
        received_at: DateTime<Utc>,
    ) -> Result<Outcome> {
        self.take_in_as(source_key, raw, received_at, None).await
    }

    /// [`Pipeline::take_in`]; `retry_of` is the quarantine item being retried (it is not
    /// its own duplicate, and is resolved in the intake transaction).
    async fn take_in_as(
        &self,
        source_key: Option<&str>,
        raw: &[u8],
        received_at: DateTime<Utc>,
        retry_of: Option<i64>,
    ) -> Result<Outcome> {
        let mut tx = self.store.begin().await?;
        let mut outcome = self
            .take_in_on(&mut tx, source_key, raw, received_at, retry_of)
            .await?;
        self.tell_partners(&mut tx, outcome.notice.take().into_iter().collect())
            .await?;
        self.commit(tx).await?;
        if let Some(taken) = outcome.taken_in() {
            taken.log(source_key);
        }
        Ok(outcome)
    }

    /// Take in one mail in the caller's transaction: everything it reads and writes goes
    /// through `tx`, so a batch's later mails see its earlier ones (a duplicate, a reply to
    /// a case opened a moment ago). On an error the caller rolls back what it wrote (the
    /// transaction, or the mail's savepoint in a batch, [`Pipeline::handle_in`]).
    async fn take_in_on(
        &self,
        tx: &mut store::Tx,
        source_key: Option<&str>,
        raw: &[u8],
        received_at: DateTime<Utc>,
        retry_of: Option<i64>,
    ) -> Result<Outcome> {
        let identity = off_runtime(raw.len(), || identity::of(raw));
        if let Some(seen) = store::seen(tx, source_key, &identity.sha256, retry_of).await? {
            store::record_duplicate(tx, source_key, &identity.sha256, &seen, self.clock.now())
                .await?;
            tracing::info!(
                event = "mail.duplicate",
                source = source_key.unwrap_or("-"),
                matched_by = seen.matched_by.as_str(),
                original = seen.message_row.unwrap_or(-1),
                quarantine = seen
                    .quarantine_row
                    .map(store::quarantine_reference)
                    .as_deref()
                    .unwrap_or("-"),
                "seen before; recorded as a duplicate, not taken in again"
            );
            return Ok(Outcome {
                duplicate: true,
                original: Some(seen),
                decision: None,
                case: None,
                opened: false,
                ack_queued: false,
                message_row: None,
                notice: None,
            });
        }
        let max = self.config.intake.max_message_bytes;
        if raw.len() > max {
            return Err(Refused::TooLarge {
                size: raw.len(),
                max,
            }
            .into());
        }
        let mail = off_runtime(raw.len(), || parse::parse(raw));
        if let Some(problem) = &mail.problem {
            return Err(Refused::Unreadable(problem.clone()).into());
        }
        // A reply to klachtpost's mail to a partner (commands, notes) is not correspondence
        // with the complainant: the partners' side takes it.
        if let Some(outcome) =
            crate::partners::reply::handle(self, tx, source_key, raw, received_at, &mail).await?
        {
            // A command may have closed or moved a case: count again.
            self.count_new_case(None);
            return Ok(outcome);
        }
        let lookups = classify::lookups(&mail);
        let known = store::known(tx, &lookups).await?;
        let decision =
            classify::classify_looked_up(&mail, &self.context(received_at), &lookups, &known);
        let source = Source {
            key: source_key,
            identity: &identity,
            retry_of,
        };
        self.record(tx, &source, raw, received_at, &mail, decision)
            .await
    }

    async fn record(
        &self,
        tx: &mut store::Tx,
        source: &Source<'_>,
        raw: &[u8],
        received_at: DateTime<Utc>,
        mail: &ParsedMail,
        mut decision: Decision,
    ) -> Result<Outcome> {
        let source_key = source.key;
        let now = self.clock.now();
        let config = self.config;
        // An acknowledgement needs an address mail can be sent to (`From: Jan <jan>` has
        // none): the classifier flags such a case; checked here again before anything is
        // queued, since a failed acknowledgement would fail the whole mail.
        if decision.acknowledge
            && decision
                .complainant
                .as_ref()
                .is_some_and(|c| !compose::is_answerable(&c.address))
        {
            decision.acknowledge = false;
            decision.flags.push(UNANSWERABLE_FLAG.to_string());
        }
        let unanswerable =
            decision.kind.opens_case() && decision.flags.iter().any(|f| f == UNANSWERABLE_FLAG);
        let complaint_text = decision.complaint_text.as_deref().unwrap_or(&mail.text);
        let subject = decision
            .original_subject
            .as_deref()
            .unwrap_or(&mail.subject);
        let choice = if decision.kind.opens_case()
            || (decision.kind == Kind::Triage && decision.case.is_none())
        {
            let load = self.partner_load(tx).await?;
            let complainant = decision.complainant.as_ref();
            Some(assign::choose(
                &config.partners.assignment,
                &config.firm.partners,
                &assign::Complaint {
                    complainant_address: complainant.map(|c| c.address.as_str()),
                    complainant_name: complainant
                        .and_then(|c| c.name.as_deref())
                        .or(decision.complainant_name.as_deref()),
                    subject,
                    text: complaint_text,
                    staff: decision.staff.as_ref().map(|s| s.address.as_str()),
                },
                &load,
            ))
        } else {
            None
        };
        let partner = match &choice {
            Some(c) => Some(
                config
                    .firm
                    .partners
                    .get(c.partner)
                    .context("no partner configured")?
                    .clone(),
            ),
            None => None,
        };
        let mut case_flags = decision.flags.clone();
        if let Some(flag) = choice.as_ref().and_then(|c| c.flag.clone()) {
            case_flags.push(flag);
        }
        let assigned_why = choice.as_ref().map(|c| c.reason.why()).unwrap_or_default();

        let mut outcome = Outcome {
            duplicate: false,
            original: None,
            decision: None,
            case: decision.case.clone(),
            opened: false,
            ack_queued: false,
            message_row: None,
            notice: None,
        };

        let case_id = if let (Some(partner), true) = (&partner, decision.kind.opens_case()) {
            let local_year = now.with_timezone(&config.firm.timezone).year();
            let seq = store::next_sequence(tx, local_year).await?;
            let reference = format!("KL-{local_year}-{seq:04}");
            let d = deadlines::compute(&config.calendar, &config.deadlines, decision.received_at);
            let complainant = decision.complainant.as_ref();
            let source = decision
                .complainant_source
                .map(|s| s.describe())
                .unwrap_or("none recognised");
            let lang = config.templates.language.for_complaint(
                subject,
                decision.complaint_text.as_deref().unwrap_or(&mail.text),
            );
            let id = case::open(
                tx,
                &NewCase {
                    reference: &reference,
                    channel: decision.channel.as_str(),
                    complainant_name: complainant
                        .and_then(|c| c.name.as_deref())
                        .or(decision.complainant_name.as_deref()),
                    complainant_address: complainant.map(|c| c.address.as_str()),
                    complainant_phone: decision.complainant_phone.as_deref(),
                    complainant_source: source,
                    subject,
                    received_at: decision.received_at,
                    opened_at: now,
                    partner_name: &partner.name,
                    partner_email: &partner.email,
                    staff_address: decision.staff.as_ref().map(|s| s.address.as_str()),
                    ack_due_at: d.acknowledge,
                    response_due_at: d.response,
                    resolution_due_at: d.resolution,
                    deadline_explanation: &d.explanation,
                    flags: &case_flags,
                    language: Some(lang),
                },
                Actor::system(now),
                &format!(
                    "{} via {}; responsible partner {} ({assigned_why})",
                    decision.kind.as_str(),
                    decision.channel.as_str(),
                    partner.name
                ),
            )
            .await?;
            outcome.case = Some(reference.clone());
            outcome.opened = true;
            Some((id, reference, d, lang))
        } else {
            None
        };

        let threaded_case_id = match (&case_id, &decision.case) {
            (Some((id, _, _, _)), _) => Some(*id),
            // A triage item is not correspondence: attaching it would make its sender a
            // party to the case. The case gets an event; the partner is told.
            (None, Some(_)) if decision.kind == Kind::Triage => None,
            (None, Some(reference)) => store::case_id_by_reference(tx, reference).await?,
            (None, None) => None,
        };

        let from = mail.from.as_ref();
        let message_row = store::insert_message(
            tx,
            &NewMessage {
                case_id: threaded_case_id,
                direction: match decision.direction {
                    Direction::Inbound => "inbound",
                    Direction::Outbound => "outbound",
                },
                kind: decision.kind.as_str(),
                source_key,
                identity: Some(&source.identity.sha256),
                message_id: mail.message_id.as_deref(),
                from_name: from.and_then(|f| f.name.as_deref()),
                from_address: from.map(|f| f.address.as_str()),
                subject: &mail.subject,
                date_header: mail.date,
                received_at,
                text: &mail.text,
                decision_reason: &decision.reason,
                flags: &decision.flags,
                raw,
                created_at: now,
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
        outcome.message_row = Some(message_row);

        if let (None, Some(id)) = (&case_id, threaded_case_id) {
            case::message_added(
                tx,
                id,
                decision.kind.as_str(),
                &decision.reason,
                &decision.flags,
                Actor::system(now),
            )
            .await?;
            // Only staff the firm's server vouched for (when it is asked to), writing to
            // the complainant, meet the response deadline.
            if decision.direction == Direction::Outbound && decision.answers_complainant {
                case::response_met(tx, id, received_at, Actor::system(now)).await?;
            }
        }

        // Who may write on the case from now on: decided by the classifier (the
        // complainant, and whom the complainant's own mail or the firm's answer
        // addressed); automatic mail never adds anyone.
        if let Some(id) = threaded_case_id {
            let complainant = decision.complainant.as_ref().map(|c| c.normalized());
            for address in &decision.new_parties {
                let role = if outcome.opened && complainant.as_deref() == Some(address.as_str()) {
                    "complainant"
                } else {
                    "addressed"
                };
                case::add_party(tx, id, address, role, Some(message_row), Actor::system(now))
                    .await?;
            }
        }

        if let (Some((id, reference, d, lang)), true) = (&case_id, decision.acknowledge)
            && let Some(to) = decision.complainant.as_ref()
        {
            let partner_name = partner
                .as_ref()
                .map(|p| p.name.as_str())
                .unwrap_or_default();
            let ack = compose::acknowledgement(
                &self.templates,
                &compose::Acknowledgement {
                    firm_name: &config.firm.name,
                    firm_domain: config.firm.domain(),
                    from: &config.outgoing.from,
                    to_name: to.name.as_deref(),
                    to_address: &to.address,
                    reference,
                    original_subject: &mail.subject,
                    in_reply_to: mail.message_id.as_deref(),
                    references: &mail.references,
                    received: decision.received_at,
                    respond_by: d.response,
                    resolve_by: d.resolution,
                    partner_name,
                    timezone: config.firm.timezone,
                    now,
                    lang: *lang,
                },
            )?;
            store::queue_outgoing(
                tx,
                Some(*id),
                "acknowledgement",
                Some(&config.firm.name),
                &config.outgoing.from,
                &to.address,
                &ack,
                "acknowledgement of a new complaint",
                now,
            )
            .await?;
            case::log(
                tx,
                *id,
                "acknowledgement.queued",
                "acknowledgement queued for sending",
                Actor::system(now),
            )
            .await?;
            outcome.ack_queued = true;
        }
        if let (Some((id, reference, d, _)), Some(_), Some(choice)) = (&case_id, &partner, &choice)
        {
            let complainant = decision.complainant.as_ref();
            let name = complainant
                .and_then(|c| c.name.as_deref())
                .or(decision.complainant_name.as_deref());
            let who = match (name, complainant.map(|c| c.address.as_str())) {
                (Some(n), Some(a)) => format!("{n} <{a}>"),
                (Some(n), None) => n.to_string(),
                (None, Some(a)) => a.to_string(),
                (None, None) => String::new(),
            };
            outcome.notice = Some(NewCaseNotice {
                case_id: *id,
                partner: choice.partner,
                reference: reference.clone(),
                complainant: who,
                channel: decision.channel.as_str(),
                subject: subject.to_string(),
                received: decision.received_at,
                acknowledge_by: d.acknowledge,
                respond_by: d.response,
                resolve_by: d.resolution,
                excerpt: crate::partners::mail::excerpt(complaint_text),
                assigned: choice.reason.clone(),
                acknowledged: outcome.ack_queued,
            });
        }
        if let (Some((id, reference, d, _)), true, Some(partner)) =
            (&case_id, unanswerable, partner.as_ref())
        {
            let lang = config.templates.language.internal();
            let out = compose::notice_from_template(
                &self.templates,
                "unanswerable_notice",
                lang,
                &compose::NoticeHead {
                    firm_name: &config.firm.name,
                    firm_domain: config.firm.domain(),
                    from: &config.outgoing.from,
                    to: &[partner.email.as_str()],
                    reference,
                    now,
                },
                minijinja::context! {
                    reference,
                    partner => &partner.name,
                    acknowledge_by => compose::format_date(d.acknowledge, config.firm.timezone, lang),
                },
            )?;
            store::queue_notice(
                tx,
                Some(*id),
                &partner.email,
                &out,
                &config.outgoing.from,
                now,
            )
            .await?;
            case::log(
                tx,
                *id,
                "acknowledgement.impossible",
                "the sender's address cannot be answered; the partner is told to acknowledge another way",
                Actor::system(now),
            )
            .await?;
        }
        if let Some(q) = source.retry_of {
            store::resolve_quarantine(tx, q, "taken_in", Some(message_row), now).await?;
            if let Some(id) = threaded_case_id {
                case::log(
                    tx,
                    id,
                    "quarantine.taken_in",
                    &format!(
                        "taken in from quarantine {} on a retry",
                        store::quarantine_reference(q)
                    ),
                    Actor::system(now),
                )
                .await?;
            }
        }
        self.queue_notices(
            tx,
            &decision,
            case_id.as_ref().map(|(id, r, _, _)| (*id, r.as_str())),
            partner.as_ref(),
            message_row,
            now,
        )
        .await?;
        self.count_new_case(
            outcome
                .opened
                .then(|| partner.as_ref().map(|p| p.email.as_str()))
                .flatten(),
        );

        // A delivery failure of a message we sent: its outside recipients bounced hard, and
        // get no automatic mail for outgoing.bounce_block.
        if decision.kind == Kind::Bounce
            && let Some(ev) = &decision.thread_evidence
            && ev.via != classify::ThreadVia::SubjectReference
        {
            for r in store::sent_recipients(tx, &ev.value).await? {
                if !config.firm.is_staff(&r) {
                    store::record_bounce(tx, &r, now, "report").await?;
                }
            }
        }

        if decision.kind == Kind::Triage {
            tracing::warn!(
                event = "mail.triage",
                source = source_key.unwrap_or("-"),
                "mail needs a partner's look"
            );
        }
        if unanswerable {
            tracing::warn!(
                event = "ack.impossible",
                case = outcome.case.as_deref().unwrap_or("-"),
                source = source_key.unwrap_or("-"),
                "the sender's address cannot be answered; the partner is told"
            );
        }
        outcome.decision = Some(decision);
        Ok(outcome)
    }
}

/// From this size on, hashing and parsing a mail take long enough (tens of milliseconds) to
/// hold up the other tasks of the runtime (IDLE, the sender, timers).
const HEAVY_BYTES: usize = 256 * 1024;

/// Run `work` on a mail of `size` bytes. A heavy one runs with the runtime's worker handed
/// over to the other tasks first (`block_in_place`: like `spawn_blocking`, but without a
/// copy of the mail, which for a 20 MB attachment is what memory cannot afford). On a
/// single-threaded runtime (tests, `run --once` in a current-thread runtime) it simply runs.
fn off_runtime<T>(size: usize, work: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if size >= HEAVY_BYTES && multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// Where a mail came from and what it is, for [`Pipeline::record`].
struct Source<'a> {
    key: Option<&'a str>,
    identity: &'a Identity,
    retry_of: Option<i64>,
}

impl Pipeline<'_> {
    /// The internal mail a decision calls for, queued in the intake transaction: the staff
    /// member who forwarded a complaint or wrote a note is told what was recognised; a
    /// partner is told about a triage item. Never the sender of a triage item.
    async fn queue_notices(
        &self,
        tx: &mut store::Tx,
        decision: &Decision,
        opened: Option<(i64, &str)>,
        partner: Option<&crate::config::Partner>,
        message_row: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let config = self.config;
        let lang: Lang = config.templates.language.internal();
        let notice = |to: &str, reference: &str, kind: &str, vars: minijinja::Value| {
            compose::notice_from_template(
                &self.templates,
                kind,
                lang,
                &compose::NoticeHead {
                    firm_name: &config.firm.name,
                    firm_domain: config.firm.domain(),
                    from: &config.outgoing.from,
                    to: &[to],
                    reference,
                    now,
                },
                vars,
            )
        };
        if let (Some((case_id, reference)), Some(staff)) = (opened, decision.staff.as_ref()) {
            let summary = decision.staff_summary.clone().unwrap_or_default();
            let out = notice(
                &staff.address,
                reference,
                "staff_confirmation",
                minijinja::context! {
                    reference,
                    partner => partner.map(|p| p.name.as_str()).unwrap_or_default(),
                    summary,
                },
            )?;
            store::queue_notice(
                tx,
                Some(case_id),
                &staff.address,
                &out,
                &config.outgoing.from,
                now,
            )
            .await?;
            case::log(
                tx,
                case_id,
                "staff.confirmation_queued",
                "the staff member is told what was recognised",
                Actor::system(now),
            )
            .await?;
        }
        if decision.kind == Kind::Reply
            && decision.case_closed
            && let Some(reference) = &decision.case
            && let Some(to) = store::case_partner_email(tx, reference).await?
        {
            let case_id = store::case_id_by_reference(tx, reference).await?;
            let out = notice(
                &to,
                reference,
                "closed_case_notice",
                minijinja::context! { reference, message_row },
            )?;
            store::queue_notice(tx, case_id, &to, &out, &config.outgoing.from, now).await?;
            if let Some(id) = case_id {
                case::log(
                    tx,
                    id,
                    "partner.told_closed_case_mail",
                    &format!(
                        "message {message_row} arrived on the closed case; the partner is told"
                    ),
                    Actor::system(now),
                )
                .await?;
            }
        }
        if decision.kind == Kind::Triage {
            let (case_id, reference, to) = match &decision.case {
                Some(reference) => {
                    let id = store::case_id_by_reference(tx, reference).await?;
                    let partner = store::case_partner_email(tx, reference).await?;
                    (id, reference.clone(), partner)
                }
                None => (None, "triage".to_string(), partner.map(|p| p.email.clone())),
            };
            if let Some(to) = to {
                let out = notice(
                    &to,
                    &reference,
                    "triage_notice",
                    minijinja::context! {
                        reference => &reference,
                        case_known => case_id.is_some(),
                        reason => &decision.reason,
                        message_row,
                    },
                )?;
                store::queue_notice(tx, case_id, &to, &out, &config.outgoing.from, now).await?;
                if let Some(id) = case_id {
                    case::log(
                        tx,
                        id,
                        "message.triage",
                        &format!(
                            "message {message_row} needs a partner's look: {}",
                            decision.reason
                        ),
                        Actor::system(now),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }
}

/// Record how a stored message's receipt time was found when the server gave no
/// INTERNALDATE: on the message's flags and, when it is on a case, in the case's history;
/// in the caller's transaction (intake's batch).
pub async fn note_receipt_time(
    tx: &mut store::Tx,
    row: i64,
    note: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(case_id) = store::add_message_note(tx, row, note).await? {
        case::log(
            tx,
            case_id,
            "message.receipt_time",
            note,
            Actor::system(now),
        )
        .await?;
    }
    Ok(())
}
