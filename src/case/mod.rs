//! The one place where a case changes.
//!
//! Every change to a case — open, assign, status, a form field, a note, an extension,
//! close, reopen, hold, release, purge, and what the daemon notices (acknowledgement sent,
//! first response, a message threaded in, a flag) — is a command here. Each runs in the
//! transaction its caller provides (so intake can open a case and queue its
//! acknowledgement atomically, and the CLI can extend and queue the mail together),
//! changes the row through [`store::register`], and appends exactly one entry to the
//! hash-chained history ([`store::history`]): who, when, which fields changed old → new,
//! and why. Nothing else writes case state.
//!
//! The commands check the procedure's rules (a closed case takes no form changes until
//! reopened; a held case is not purged; statuses are a closed set, [`Status`]).

mod types;

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::store::Tx;
use chrono::{DateTime, Utc};

pub use types::{Closing, FormUpdate, Satisfied, Status, parse_yes_no};

use crate::store::history::{self, Change, NewEntry};
use crate::store::register::{self, CaseKey, CaseRow, Column};
use crate::store::{self, StoreError, ts};

/// Who does what the daemon does by itself.
pub const SYSTEM: &str = "klachtpost";

/// A case command that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("there is no case {0}")]
    NotFound(String),
    #[error("cannot change case {0}: it is closed (reopen it first)")]
    Closed(String),
    #[error("cannot {action} case {reference}: it is not closed")]
    NotClosed {
        reference: String,
        action: &'static str,
    },
    #[error("cannot change case {0}: it was purged")]
    Purged(String),
    #[error("cannot purge case {0}: it is on hold")]
    Held(String),
    #[error("cannot release case {0}: it is not on hold")]
    NotHeld(String),
    #[error("cannot set the status of {reference} to {status}: {why}")]
    Status {
        reference: String,
        status: Status,
        why: &'static str,
    },
    #[error("cannot read the stored status of {reference}: {why}")]
    StoredStatus { reference: String, why: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CaseError {
    fn from(e: sqlx::Error) -> Self {
        CaseError::Store(StoreError::Sql(e))
    }
}

pub type Result<T, E = CaseError> = std::result::Result<T, E>;

/// Who made a change, when, and (optionally) why.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub by: &'a str,
    pub at: DateTime<Utc>,
}

impl<'a> Actor<'a> {
    pub fn new(by: &'a str, at: DateTime<Utc>) -> Self {
        Actor { by, at }
    }

    pub fn system(at: DateTime<Utc>) -> Actor<'static> {
        Actor { by: SYSTEM, at }
    }
}

/// Load a case by reference, for a command.
pub async fn find(tx: &mut Tx, reference: &str) -> Result<CaseRow> {
    register::load(tx, CaseKey::Reference(reference))
        .await?
        .ok_or_else(|| CaseError::NotFound(reference.to_string()))
}

async fn by_id(tx: &mut Tx, id: i64) -> Result<CaseRow> {
    register::load(tx, CaseKey::Id(id))
        .await?
        .ok_or_else(|| CaseError::NotFound(format!("#{id}")))
}

/// The typed status of a loaded case.
pub fn status_of(c: &CaseRow) -> Result<Status> {
    c.status.parse().map_err(|why| CaseError::StoredStatus {
        reference: c.reference.clone(),
        why,
    })
}

fn yes_no(b: Option<bool>) -> Option<String> {
    b.map(|b| if b { "yes" } else { "no" }.to_string())
}

/// Collects the changed columns of one command, skipping values that stay the same.
#[derive(Default)]
struct Changes {
    set: Vec<(Column, Option<String>)>,
    log: Vec<Change>,
}

impl Changes {
    fn put(&mut self, column: Column, old: Option<String>, new: Option<String>) {
        if old == new {
            return;
        }
        self.log.push(Change {
            field: column.name().to_string(),
            old,
            new: new.clone(),
        });
        self.set.push((column, new));
    }

    /// Record a value as it is set at opening (no old value).
    fn initial(&mut self, column: Column, new: Option<String>) {
        if new.is_some() {
            self.log.push(Change {
                field: column.name().to_string(),
                old: None,
                new,
            });
        }
    }

    fn is_empty(&self) -> bool {
        self.log.is_empty()
    }
}

/// Apply the changes and append the one history entry.
async fn commit(
    tx: &mut Tx,
    case_id: i64,
    who: Actor<'_>,
    event: &str,
    detail: &str,
    changes: Changes,
    reason: Option<&str>,
) -> Result<i64> {
    register::update(tx, case_id, &changes.set).await?;
    Ok(history::append(
        tx,
        &NewEntry {
            case_id,
            at: who.at,
            actor: who.by,
            event,
            detail,
            changes: &changes.log,
            reason,
        },
    )
    .await?)
}

fn ensure_changeable(c: &CaseRow) -> Result<Status> {
    if c.purged_at.is_some() {
        return Err(CaseError::Purged(c.reference.clone()));
    }
    let s = status_of(c)?;
    if !s.is_open() {
        return Err(CaseError::Closed(c.reference.clone()));
    }
    Ok(s)
}

// ---- opening ----

/// Open a case (intake): insert it with status `new` and record its first entry.
pub async fn open(
    tx: &mut Tx,
    new: &store::NewCase<'_>,
    who: Actor<'_>,
    detail: &str,
) -> Result<i64> {
    let id = store::insert_case(tx, new, Status::New.as_str()).await?;
    let mut ch = Changes::default();
    ch.initial(Column::Status, Some(Status::New.as_str().into()));
    ch.initial(Column::PartnerEmail, Some(new.partner_email.into()));
    ch.initial(
        Column::ComplainantName,
        new.complainant_name.map(Into::into),
    );
    ch.initial(
        Column::ComplainantAddress,
        new.complainant_address.map(str::to_ascii_lowercase),
    );
    ch.initial(
        Column::ComplainantPhone,
        new.complainant_phone.map(Into::into),
    );
    ch.initial(Column::ResolutionDueAt, Some(ts(new.resolution_due_at)));
    history::append(
        tx,
        &NewEntry {
            case_id: id,
            at: who.at,
            actor: who.by,
            event: "case.opened",
            detail,
            changes: &ch.log,
            reason: None,
        },
    )
    .await?;
    Ok(id)
}

// ---- what people do ----

/// Make another partner responsible.
pub async fn assign(
    tx: &mut Tx,
    reference: &str,
    partner: &crate::config::Partner,
    who: Actor<'_>,
    reason: Option<&str>,
) -> Result<bool> {
    let c = find(tx, reference).await?;
    ensure_changeable(&c)?;
    let mut ch = Changes::default();
    ch.put(
        Column::PartnerEmail,
        Some(c.partner_email.clone()),
        Some(partner.email.clone()),
    );
    ch.put(
        Column::PartnerName,
        Some(c.partner_name.clone()),
        Some(partner.name.clone()),
    );
    if ch.is_empty() {
        return Ok(false);
    }
    let detail = format!("responsible partner now {}", partner.name);
    commit(tx, c.id, who, "case.assigned", &detail, ch, reason).await?;
    Ok(true)
}

/// Move an open case to another open status. Closing takes [`close`] (it records whether
/// the client was satisfied).
pub async fn set_status(
    tx: &mut Tx,
    reference: &str,
    status: Status,
    who: Actor<'_>,
    reason: Option<&str>,
) -> Result<bool> {
    let c = find(tx, reference).await?;
    let old = ensure_changeable(&c)?;
    if !status.is_open() {
        return Err(CaseError::Status {
            reference: c.reference,
            status,
            why: "close a case with `cases close`",
        });
    }
    if old == status {
        return Ok(false);
    }
    let mut ch = Changes::default();
    ch.put(
        Column::Status,
        Some(old.as_str().into()),
        Some(status.as_str().into()),
    );
    let detail = format!("status {old} → {status}");
    commit(tx, c.id, who, "case.status", &detail, ch, reason).await?;
    Ok(true)
}

/// Fill in the form's analysis fields. Returns false (and writes nothing) when nothing
/// changes.
pub async fn record(
    tx: &mut Tx,
    reference: &str,
    form: &FormUpdate,
    who: Actor<'_>,
) -> Result<bool> {
    if form.is_empty() {
        return Err(CaseError::Invalid(
            "nothing to record: give at least one field".into(),
        ));
    }
    let c = find(tx, reference).await?;
    ensure_changeable(&c)?;
    let mut ch = Changes::default();
    let text = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_string());
    if form.cause.is_some() {
        ch.put(Column::Cause, c.cause.clone(), text(&form.cause));
    }
    if form.structural.is_some() {
        ch.put(
            Column::StructuralFault,
            yes_no(c.structural_fault),
            yes_no(form.structural),
        );
    }
    if form.measure.is_some() {
        ch.put(
            Column::ImprovementMeasure,
            c.improvement_measure.clone(),
            text(&form.measure),
        );
    }
    if form.handling.is_some() {
        ch.put(Column::Handling, c.handling.clone(), text(&form.handling));
    }
    if form.result.is_some() {
        ch.put(Column::Result, c.result.clone(), text(&form.result));
    }
    if form.evaluation.is_some() {
        ch.put(
            Column::Evaluation,
            c.evaluation.clone(),
            text(&form.evaluation),
        );
    }
    if ch.is_empty() {
        return Ok(false);
    }
    let fields: Vec<&str> = ch.log.iter().map(|c| c.field.as_str()).collect();
    let detail = format!("form: {}", fields.join(", "));
    commit(tx, c.id, who, "case.recorded", &detail, ch, None).await?;
    Ok(true)
}

/// A note on the case (text only in the history; it is purged with the case).
pub async fn note(tx: &mut Tx, reference: &str, text: &str, who: Actor<'_>) -> Result<()> {
    let text = text.trim();
    if text.is_empty() {
        return Err(CaseError::Invalid("an empty note".into()));
    }
    let c = find(tx, reference).await?;
    if c.purged_at.is_some() {
        return Err(CaseError::Purged(c.reference));
    }
    commit(tx, c.id, who, "case.note", text, Changes::default(), None).await?;
    Ok(())
}

/// Extend the resolution deadline; the stored explanation gets the extension appended so
/// it stays current.
pub async fn extend(
    tx: &mut Tx,
    reference: &str,
    ext: &crate::deadlines::Extension,
    described: &str,
    who: Actor<'_>,
) -> Result<()> {
    let c = find(tx, reference).await?;
    ensure_changeable(&c)?;
    if ext.reason.trim().is_empty() {
        return Err(CaseError::Invalid("an extension needs a reason".into()));
    }
    let mut ch = Changes::default();
    ch.put(
        Column::OriginalResolutionDueAt,
        c.original_resolution_due_at.clone(),
        Some(
            c.original_resolution_due_at
                .clone()
                .unwrap_or_else(|| c.resolution_due_at.clone()),
        ),
    );
    ch.put(
        Column::ResolutionDueAt,
        Some(c.resolution_due_at.clone()),
        Some(ts(ext.resolution)),
    );
    ch.put(
        Column::ExtensionReason,
        c.extension_reason.clone(),
        Some(ext.reason.trim().to_string()),
    );
    ch.put(Column::ExtendedAt, None, Some(ts(who.at)));
    // The explanation's first line(s) say how the deadlines were computed; each extension
    // adds a line, so the stored text always explains the current resolution deadline.
    let explanation = format!("{}\n{described}", c.deadline_explanation.trim_end());
    ch.put(
        Column::DeadlineExplanation,
        Some(c.deadline_explanation.clone()),
        Some(explanation),
    );
    commit(
        tx,
        c.id,
        who,
        "deadline.extended",
        described,
        ch,
        Some(ext.reason.trim()),
    )
    .await?;
    Ok(())
}

/// Close a case: handled (with the client's satisfaction) or not a complaint.
pub async fn close(
    tx: &mut Tx,
    reference: &str,
    how: Closing,
    who: Actor<'_>,
    reason: Option<&str>,
) -> Result<()> {
    let c = find(tx, reference).await?;
    let old = ensure_changeable(&c)?;
    let mut ch = Changes::default();
    let (status, detail) = match how {
        Closing::Handled(sat) => {
            ch.put(
                Column::ClientSatisfied,
                yes_no(c.client_satisfied),
                yes_no(sat.as_bool()),
            );
            let met = match store::parse_ts(&c.resolution_due_at) {
                Ok(due) if who.at <= due => "resolution deadline met",
                _ => "resolution deadline missed",
            };
            (
                Status::Closed,
                format!("closed; {met}; client satisfied: {}", sat.as_str()),
            )
        }
        Closing::NotAComplaint => (Status::NotAComplaint, "closed: not a complaint".into()),
    };
    ch.put(
        Column::Status,
        Some(old.as_str().into()),
        Some(status.as_str().into()),
    );
    ch.put(Column::ClosedAt, c.closed_at.clone(), Some(ts(who.at)));
    commit(tx, c.id, who, "case.closed", &detail, ch, reason).await?;
    Ok(())
}

/// Reopen a closed case: it goes back to `investigating`.
pub async fn reopen(tx: &mut Tx, reference: &str, reason: &str, who: Actor<'_>) -> Result<()> {
    let c = find(tx, reference).await?;
    if c.purged_at.is_some() {
        return Err(CaseError::Purged(c.reference));
    }
    let old = status_of(&c)?;
    if old.is_open() {
        return Err(CaseError::NotClosed {
            reference: c.reference,
            action: "reopen",
        });
    }
    if reason.trim().is_empty() {
        return Err(CaseError::Invalid("reopening needs a reason".into()));
    }
    let mut ch = Changes::default();
    ch.put(
        Column::Status,
        Some(old.as_str().into()),
        Some(Status::Investigating.as_str().into()),
    );
    ch.put(Column::ClosedAt, c.closed_at.clone(), None);
    commit(
        tx,
        c.id,
        who,
        "case.reopened",
        "reopened",
        ch,
        Some(reason.trim()),
    )
    .await?;
    Ok(())
}

/// Keep a case past retention (a dispute, a claim): it is never purged while held.
pub async fn hold(tx: &mut Tx, reference: &str, reason: &str, who: Actor<'_>) -> Result<()> {
    let c = find(tx, reference).await?;
    if c.purged_at.is_some() {
        return Err(CaseError::Purged(c.reference));
    }
    if reason.trim().is_empty() {
        return Err(CaseError::Invalid("a hold needs a reason".into()));
    }
    let mut ch = Changes::default();
    ch.put(
        Column::HoldReason,
        c.hold_reason.clone(),
        Some(reason.trim().to_string()),
    );
    commit(
        tx,
        c.id,
        who,
        "case.held",
        "on hold",
        ch,
        Some(reason.trim()),
    )
    .await?;
    Ok(())
}

/// End a hold.
pub async fn release(
    tx: &mut Tx,
    reference: &str,
    who: Actor<'_>,
    reason: Option<&str>,
) -> Result<()> {
    let c = find(tx, reference).await?;
    if c.hold_reason.is_none() {
        return Err(CaseError::NotHeld(c.reference));
    }
    let mut ch = Changes::default();
    ch.put(Column::HoldReason, c.hold_reason.clone(), None);
    commit(tx, c.id, who, "case.released", "hold released", ch, reason).await?;
    Ok(())
}

/// What a purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    pub messages: u64,
    pub attachments: u64,
    pub outbox: u64,
    pub history_entries: u64,
}

/// Purge a closed case past retention: its mails (raw and text), attachments, outgoing
/// queue rows, names, addresses and the personal form fields go; a tombstone stays with
/// the reference, dates and the non-personal fields (structural, measure, satisfied). The
/// history's content is emptied but its hashes stay, so the chain still verifies.
pub async fn purge(tx: &mut Tx, reference: &str, who: Actor<'_>) -> Result<Purged> {
    let c = find(tx, reference).await?;
    if c.purged_at.is_some() {
        return Err(CaseError::Purged(c.reference));
    }
    if status_of(&c)?.is_open() {
        return Err(CaseError::NotClosed {
            reference: c.reference,
            action: "purge",
        });
    }
    if c.hold_reason.is_some() {
        return Err(CaseError::Held(c.reference));
    }
    let (messages, attachments, outbox) = store::retention::delete_case_mail(tx, c.id).await?;
    let history_entries = history::purge_content(tx, c.id).await?;
    // The tombstone: personal columns emptied in the same command. They are not logged
    // field by field (the log would keep what the purge removes).
    let mut ch = Changes::default();
    for col in [
        Column::ComplainantName,
        Column::ComplainantAddress,
        Column::ComplainantPhone,
        Column::StaffAddress,
        Column::Cause,
        Column::Handling,
        Column::Result,
        Column::Evaluation,
        Column::ExtensionReason,
    ] {
        ch.set.push((col, None));
    }
    ch.set.push((Column::Subject, Some(String::new())));
    ch.set.push((Column::Flags, Some(String::new())));
    ch.put(Column::PurgedAt, None, Some(ts(who.at)));
    let purged = Purged {
        messages,
        attachments,
        outbox,
        history_entries,
    };
    let detail = format!(
        "purged after retention: {messages} messages, {attachments} attachments; tombstone kept"
    );
    commit(tx, c.id, who, "case.purged", &detail, ch, None).await?;
    Ok(purged)
}

// ---- what the daemon notices ----

/// Acknowledgements that reached the outgoing server, recorded on their cases: when (the
/// clock's first deadline), and a new case moved to `acknowledged`. The sender's fold
/// reads its cases together ([`Acknowledgements::load`], a query per hundred instead of one
/// each); each case is kept as it now is, so one acknowledged twice is recorded as one
/// after the other would be.
#[derive(Default)]
pub struct Acknowledgements {
    cases: HashMap<i64, CaseRow>,
}

impl Acknowledgements {
    pub async fn load(tx: &mut Tx, case_ids: &[i64]) -> Result<Self> {
        Ok(Acknowledgements {
            cases: register::load_many(tx, case_ids).await?,
        })
    }

    /// Record an acknowledgement on case `case_id` (as loaded, or read now if it was not).
    pub async fn record(&mut self, tx: &mut Tx, case_id: i64, who: Actor<'_>) -> Result<()> {
        let c = match self.cases.entry(case_id) {
            Entry::Occupied(loaded) => loaded.into_mut(),
            Entry::Vacant(not_asked) => not_asked.insert(by_id(tx, case_id).await?),
        };
        acknowledged_on(tx, c, who).await
    }
}

/// Record an acknowledgement on the loaded case `c`, and keep `c` as it now is.
async fn acknowledged_on(tx: &mut Tx, c: &mut CaseRow, who: Actor<'_>) -> Result<()> {
    let old = status_of(c)?;
    let mut ch = Changes::default();
    if c.acknowledged_at.is_none() {
        ch.put(Column::AcknowledgedAt, None, Some(ts(who.at)));
        c.acknowledged_at = Some(ts(who.at));
    }
    if old == Status::New {
        ch.put(
            Column::Status,
            Some(old.as_str().into()),
            Some(Status::Acknowledged.as_str().into()),
        );
        c.status = Status::Acknowledged.as_str().into();
    }
    commit(
        tx,
        c.id,
        who,
        "acknowledgement.sent",
        "delivered to the outgoing server",
        ch,
        None,
    )
    .await?;
    Ok(())
}

/// An acknowledgement made outside klachtpost (by phone, by letter, in person), recorded by
/// the partner who made it (`cases record REF --acknowledged-by`, issue 11's watchdog asks
/// for it): how, and when (now); a new case moves to `acknowledged`. The history says
/// whether it was in time.
pub async fn acknowledged_by(
    tx: &mut Tx,
    reference: &str,
    method: &str,
    who: Actor<'_>,
) -> Result<()> {
    let method = match method.trim().to_lowercase().as_str() {
        "phone" | "telefoon" | "telefonisch" => "phone",
        "letter" | "brief" => "letter",
        "in-person" | "in_person" | "persoonlijk" => "in-person",
        other => {
            return Err(CaseError::Invalid(format!(
                "{other:?}: acknowledged by phone, letter or in-person"
            )));
        }
    };
    let c = find(tx, reference).await?;
    let old = ensure_changeable(&c)?;
    let mut ch = Changes::default();
    ch.put(
        Column::AcknowledgedBy,
        c.acknowledged_by.clone(),
        Some(method.into()),
    );
    ch.put(
        Column::AcknowledgedAt,
        c.acknowledged_at.clone(),
        Some(ts(who.at)),
    );
    if old == Status::New {
        ch.put(
            Column::Status,
            Some(old.as_str().into()),
            Some(Status::Acknowledged.as_str().into()),
        );
    }
    let in_time = match store::parse_ts(&c.ack_due_at) {
        Ok(due) if who.at <= due => "in time",
        _ => "after the deadline",
    };
    let detail = format!("acknowledged by {method}, {in_time}");
    commit(tx, c.id, who, "acknowledgement.recorded", &detail, ch, None).await?;
    Ok(())
}

/// The first message from the firm to the complainant: the response deadline is met and
/// an open case is `responded`. Returns false (no entry) when it was met before.
pub async fn response_met(
    tx: &mut Tx,
    case_id: i64,
    at: DateTime<Utc>,
    who: Actor<'_>,
) -> Result<bool> {
    let c = by_id(tx, case_id).await?;
    if c.response_met_at.is_some() {
        return Ok(false);
    }
    let old = status_of(&c)?;
    let mut ch = Changes::default();
    ch.put(Column::ResponseMetAt, None, Some(ts(at)));
    if matches!(
        old,
        Status::New | Status::Acknowledged | Status::Investigating
    ) {
        ch.put(
            Column::Status,
            Some(old.as_str().into()),
            Some(Status::Responded.as_str().into()),
        );
    }
    commit(
        tx,
        case_id,
        who,
        "deadline.response_met",
        "first message from the firm to the complainant",
        ch,
        None,
    )
    .await?;
    Ok(true)
}

/// A message was threaded onto the case; its flags join the case's.
pub async fn message_added(
    tx: &mut Tx,
    case_id: i64,
    kind: &str,
    reason: &str,
    flags: &[String],
    who: Actor<'_>,
) -> Result<()> {
    let c = by_id(tx, case_id).await?;
    let mut ch = Changes::default();
    add_flags(&mut ch, &c, flags);
    commit(
        tx,
        case_id,
        who,
        &format!("message.{kind}"),
        reason,
        ch,
        None,
    )
    .await?;
    Ok(())
}

fn add_flags(ch: &mut Changes, c: &CaseRow, flags: &[String]) {
    if flags.is_empty() {
        return;
    }
    let mut all: Vec<&str> = c.flags.lines().filter(|l| !l.trim().is_empty()).collect();
    all.extend(flags.iter().map(String::as_str));
    ch.put(Column::Flags, Some(c.flags.clone()), Some(all.join("\n")));
}

/// Something a partner must look at (e.g. an acknowledgement that could not be sent).
pub async fn flag(
    tx: &mut Tx,
    case_id: i64,
    event: &str,
    flag: &str,
    who: Actor<'_>,
) -> Result<()> {
    let c = by_id(tx, case_id).await?;
    let mut ch = Changes::default();
    add_flags(&mut ch, &c, &[flag.to_string()]);
    commit(tx, case_id, who, event, flag, ch, None).await?;
    Ok(())
}

/// Someone becomes a party to the case (may write on it): the complainant at opening, or
/// an address the complainant's mail or the firm's answer put in To or Cc. Returns false
/// (no entry) when they already were.
pub async fn add_party(
    tx: &mut Tx,
    case_id: i64,
    address: &str,
    role: &str,
    message_row: Option<i64>,
    who: Actor<'_>,
) -> Result<bool> {
    if !store::add_party(tx, case_id, address, role, message_row, who.at).await? {
        return Ok(false);
    }
    let detail = match message_row {
        Some(m) if role != "complainant" => {
            format!("message {m} addressed a new party in To or Cc")
        }
        _ => format!("party: {role}"),
    };
    let changes = Changes {
        set: Vec::new(),
        log: vec![Change {
            field: "party".into(),
            old: None,
            new: Some(address.to_ascii_lowercase()),
        }],
    };
    commit(tx, case_id, who, "party.added", &detail, changes, None).await?;
    Ok(true)
}

/// An entry that changes no field (mail queued or sent for the case, a triage item).
pub async fn log(
    tx: &mut Tx,
    case_id: i64,
    event: &str,
    detail: &str,
    who: Actor<'_>,
) -> Result<()> {
    commit(tx, case_id, who, event, detail, Changes::default(), None).await?;
    Ok(())
}
