//! The database: SQLite (WAL, foreign keys) by default, PostgreSQL when `[database] url`
//! says `postgres://`; one API over both ([`db`]: the pool and transaction types and the
//! `on!` macro that runs each query on either; [`dialect`]: the SQL that differs).
//!
//! Times are bound and read as [`Ts`]: RFC 3339 UTC text of one fixed format ([`ts`]) on
//! SQLite, so they sort and compare as text, TIMESTAMPTZ on PostgreSQL. Readers hand
//! times out as [`ts`] text.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::classify::{CaseInfo, Known, Lookups};

mod batches;
mod blob;
mod checkpoint;
mod confirmations;
pub mod copy;
mod db;
pub mod dialect;
mod direct;
mod duplicates;
pub mod health;
pub mod history;
pub mod jobs;
pub mod lease;
mod messages;
mod outbox;
mod outgoing;
mod parties;
pub mod partners;
pub mod person;
mod quarantine;
mod receipt;
pub mod register;
pub mod retention;
mod sql;
mod time;
mod unfiled;
mod value;

pub use blob::STREAM_RAW_BYTES;
pub use confirmations::{Confirmations, outbox_confirm_sent};
pub(crate) use db::on;
pub use db::{
    Backend, Column, DatabaseUrl, Kind, Pool, StoreRow, Tx, Value, pg_options, redact_url,
};
pub use direct::{DirectError, DirectRow, DirectValue};
pub use duplicates::{Duplicate, MatchedBy, Seen, record_duplicate, seen};
pub use messages::{
    NewMessage, insert_message, queue_notice, queue_outgoing, queue_outgoing_to_all,
};
pub use outbox::{CLAIM_LEASE, OutboxListener};
pub use outgoing::*;
pub use parties::add_party;
pub use quarantine::{
    NewQuarantine, QuarantineItem, insert_quarantine,
    parse_reference as parse_quarantine_reference, queue_quarantine_notice,
    reference as quarantine_reference, resolve_quarantine,
};
pub use receipt::add_message_note;
pub use sql::Row as SqlRow;
pub use sql::Sql;
pub use time::{TimeText, Ts, parse_ts, ts};
pub use unfiled::UnfiledMail;
pub use value::{Arg, Bind, Null};

/// A database error, with the action that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `url` is shown without its password ([`redact_url`]).
    #[error("cannot open the database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot create the database folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored time {0:?} is not RFC 3339")]
    Time(String),
    #[error("cannot copy the register: {0}")]
    Copy(String),
    #[error("cannot write a large mail into the database: {message} (SQLite {code})")]
    Blob { code: i32, message: String },
    #[error("cannot use the confirmation journal {path}: {source}")]
    Journal {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The handle to the database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// This process's name among the instances on the database ([`lease::instance_id`]):
    /// the holder of its leases and of its outbox claims.
    instance: std::sync::Arc<str>,
    /// The confirmation journal beside a SQLite file ([`confirmations`]); none in memory
    /// and on PostgreSQL.
    journal: Option<std::sync::Arc<confirmations::Journal>>,
    /// How to open [`Store::deferred`]'s connections; none in memory, read-only, or on a
    /// deferred handle itself.
    reopen: Option<db::Reopen>,
    /// On a [`Store::deferred`] handle: the synchronous pool, for [`Store::batch_durable`].
    durable: Option<Pool>,
}

impl Store {
    /// Open (on SQLite creating the file and its folder if needed) and migrate. Takes a
    /// URL (`&str`) or the config's [`DatabaseUrl`] (with its password and CA).
    pub async fn open(url: impl Into<DatabaseUrl>) -> Result<Store> {
        let url = url.into();
        let (pool, reopen) = match url.kind() {
            Kind::Sqlite => db::open_sqlite(&url, false).await?,
            Kind::Postgres => db::open_postgres(&url, false).await?,
        };
        dialect::migrate(&pool).await?;
        history::seal_legacy(&pool).await?;
        // The journal is SQLite's: on PostgreSQL marking a row sent waits for no disk
        // behind intake (see `confirmations`).
        let journal = reopen
            .as_ref()
            .and_then(db::Reopen::sqlite_file)
            .map(confirmations::Journal::beside);
        Ok(Store {
            pool,
            instance: lease::instance_id().into(),
            journal,
            reopen,
            durable: None,
        })
    }

    /// Open an existing database read-only, without migrating (for `explain`, which must
    /// change nothing). `None` when there is no database yet (a SQLite file not created).
    pub async fn open_read_only(url: impl Into<DatabaseUrl>) -> Result<Option<Store>> {
        let url = url.into();
        let (pool, _) = match url.kind() {
            Kind::Sqlite if !db::sqlite_exists(&url)? => return Ok(None),
            Kind::Sqlite => db::open_sqlite(&url, true).await?,
            Kind::Postgres => db::open_postgres(&url, true).await?,
        };
        Ok(Some(Store {
            pool,
            instance: lease::instance_id().into(),
            journal: None,
            reopen: None,
            durable: None,
        }))
    }

    /// Whether the register exists: a SQLite file that is there (PostgreSQL: always; its
    /// database is created by the administrator).
    pub fn exists(url: &DatabaseUrl) -> Result<bool> {
        Ok(match url.kind() {
            Kind::Sqlite => db::sqlite_exists(url)?,
            Kind::Postgres => true,
        })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// This process's instance id (host, pid, start time and a random part).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Which database the store is on.
    pub fn kind(&self) -> Kind {
        self.pool.kind()
    }

    /// A write transaction, one writer at a time from its first statement: the history
    /// chain reads its head and appends, which must not interleave with another writer
    /// ([`dialect::SQLITE_BEGIN_WRITE`], [`dialect::pg_write_lock`]).
    pub async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }

    /// Whether a fetched message (by its mailbox key) is already stored.
    pub async fn source_seen(&self, source_key: &str) -> Result<bool> {
        let row = on!(self.pool, |c| sqlx::query(
            "SELECT 1 FROM messages WHERE source_key = $1"
        )
        .bind(source_key)
        .fetch_optional(c)
        .await?
        .is_some());
        Ok(row)
    }

    /// Answer the classifier's questions (in a read transaction of its own; intake asks
    /// in its batch's transaction, [`known`]).
    pub async fn known(&self, lookups: &Lookups) -> Result<Known> {
        let mut tx = self.pool.begin_read().await?;
        let known = known(&mut tx, lookups).await?;
        tx.rollback().await?;
        Ok(known)
    }

    /// The partner with the fewest open cases (ties: the first in the config).
    pub async fn least_loaded_partner<'p>(
        &self,
        partners: &'p [crate::config::Partner],
    ) -> Result<Option<&'p crate::config::Partner>> {
        let mut best: Option<(&crate::config::Partner, i64)> = None;
        for p in partners {
            let (n,): (i64,) = on!(self.pool, |c| {
                sqlx::query_as(
                "SELECT COUNT(*) FROM cases WHERE partner_email = $1 AND status NOT IN ('closed', 'not_a_complaint')",
            )
            .bind(&p.email)
            .fetch_one(c)
            .await?
            });
            if best.is_none_or(|(_, m)| n < m) {
                best = Some((p, n));
            }
        }
        Ok(best.map(|(p, _)| p))
    }

    // ---- the mailbox checkpoint ----

    /// (uidvalidity, last_uid) stored for a mailbox folder.
    pub async fn checkpoint(&self, mailbox: &str) -> Result<Option<(u32, u32)>> {
        let row: Option<(i64, i64)> = on!(self.pool, |c| sqlx::query_as(
            "SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = $1"
        )
        .bind(mailbox)
        .fetch_optional(c)
        .await?);
        Ok(row.map(|(v, u)| (v as u32, u as u32)))
    }

    pub async fn set_checkpoint(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        last_uid: u32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on!(self.pool, |c| {
            sqlx::query(
            "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, updated_at = excluded.updated_at",
        )
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .bind(i64::from(last_uid))
        .bind(Ts(now))
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    // ---- the outbox ----

    /// Queued rows due at `now`, oldest first.
    pub async fn outbox_due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxItem>> {
        on!(self.pool, |c| {
            sqlx::query(concat!(
            "SELECT ",
            outbox_item_columns!(),
            " FROM outbox o JOIN message_raw r ON r.message_id = o.message_id LEFT JOIN cases c ON c.id = o.case_id
             WHERE o.status = 'queued' AND o.next_attempt_at <= $1
             ORDER BY o.next_attempt_at, o.id LIMIT $2"
        ))
        .bind(Ts(now))
        .bind(limit)
        .fetch_all(c)
        .await?
        .iter()
        .map(outbox_item_from_row)
        .collect()
        })
    }

    /// When the next queued row is due, if any.
    /// When the sender should look at the outbox again (`None`: when woken): the earliest
    /// next attempt of a queued row; or, for a row claimed and not yet confirmed (another
    /// instance's, or one that died), the moment its claim could be taken over if its
    /// holder is gone (`claimed_at` + [`lease::PRESENCE`], as [`Store::claim_due`] decides),
    /// but not before `now` + a quarter of that, so a live instance's long send is looked
    /// at now and then, not in a loop. Without the claimed rows, a survivor that had nothing
    /// else to do slept its longest wait before it sent what a dead instance had claimed.
    pub async fn outbox_next_due(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let (queued, claimed): (Option<Ts>, Option<Ts>) = on!(self.pool, |c| sqlx::query_as(
            "SELECT MIN(CASE WHEN status = 'queued' THEN next_attempt_at END),
                    MIN(CASE WHEN status = 'sending' AND confirmed_at IS NULL THEN claimed_at END)
             FROM outbox WHERE status IN ('queued', 'sending')"
        )
        .fetch_one(c)
        .await?);
        let takeover = claimed.map(|t| (t.0 + lease::PRESENCE).max(now + lease::PRESENCE / 4));
        Ok(match (queued.map(|t| t.0), takeover) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    pub async fn outbox_retry(&self, id: i64, next: DateTime<Utc>, error: &str) -> Result<()> {
        on!(self.pool, |c| {
            sqlx::query("UPDATE outbox SET status = 'queued', claimed_at = NULL, attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3")
            .bind(Ts(next))
            .bind(error)
            .bind(id)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Queue an internal notice about a case (to its partner), in one transaction.
    pub async fn queue_notice(
        &self,
        reference: &str,
        to: &str,
        out: &crate::compose::Outgoing,
        from: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        let case_id = case_id_by_reference(&mut tx, reference).await?;
        let id = queue_notice(&mut tx, case_id, to, out, from, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The responsible partner of a case: (name, email).
    pub async fn case_partner(&self, reference: &str) -> Result<Option<(String, String)>> {
        Ok(on!(self.pool, |c| sqlx::query_as(
            "SELECT partner_name, partner_email FROM cases WHERE reference = $1"
        )
        .bind(reference)
        .fetch_optional(c)
        .await?))
    }

    /// Counts per outbox status, for the demo and for operators.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(on!(self.pool, |c| sqlx::query_as(
            "SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status"
        )
        .fetch_all(c)
        .await?))
    }

    // ---- reading cases ----

    pub async fn list_cases(&self) -> Result<Vec<CaseSummary>> {
        on!(self.pool, |c| sqlx::query(concat!(
            "SELECT ",
            case_columns!(),
            " FROM cases ORDER BY id DESC"
        ))
        .fetch_all(c)
        .await?
        .iter()
        .map(case_from_row)
        .collect())
    }

    pub async fn case(&self, reference: &str) -> Result<Option<CaseDetail>> {
        let found = on!(self.pool, |c| match sqlx::query(concat!(
            "SELECT ",
            case_columns!(),
            ", id FROM cases WHERE reference = $1"
        ))
        .bind(reference)
        .fetch_optional(c)
        .await?
        {
            Some(row) => Some((case_from_row(&row)?, row.try_get::<i64, _>("id")?)),
            None => None,
        });
        let Some((summary, id)) = found else {
            return Ok(None);
        };
        let mut messages = on!(self.pool, |c| {
            sqlx::query(
            "SELECT m.id, m.direction, m.kind, m.from_name, m.from_address, m.subject, m.received_at, m.text, m.size, m.flags,
                    (SELECT COUNT(*) FROM attachments a WHERE a.message_id = m.id),
                    (SELECT o.status FROM outbox o WHERE o.message_id = m.id),
                    m.message_id
             FROM messages m WHERE m.case_id = $1 ORDER BY m.received_at, m.id",
        )
        .bind(id)
        .fetch_all(c)
        .await?
        .iter()
        .map(|r| {
            Ok(CaseMessage {
                id: r.try_get(0)?,
                direction: r.try_get(1)?,
                kind: r.try_get(2)?,
                from_name: r.try_get(3)?,
                from_address: r.try_get(4)?,
                subject: r.try_get(5)?,
                received_at: r.try_get::<TimeText, _>(6)?.0,
                text: r.try_get(7)?,
                size: r.try_get(8)?,
                flags: split_lines(&r.try_get::<String, _>(9)?),
                attachments: r.try_get(10)?,
                delivery: r.try_get(11)?,
                message_id: r.try_get(12)?,
                attachment_files: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>>>()?
        });
        for m in &mut messages {
            if m.attachments > 0 {
                m.attachment_files = self.attachments_of(m.id).await?;
            }
        }
        let events = history::for_case(&self.pool, id).await?;
        Ok(Some(CaseDetail {
            case: summary,
            messages,
            events,
        }))
    }

    /// The attachments of a stored message (names, types and sizes; not the bytes).
    pub async fn attachments_of(&self, message_id: i64) -> Result<Vec<AttachmentInfo>> {
        let rows: Vec<(Option<String>, String, i64)> = on!(self.pool, |c| {
            sqlx::query_as(
            "SELECT filename, content_type, size FROM attachments WHERE message_id = $1 ORDER BY id",
        )
        .bind(message_id)
        .fetch_all(c)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|(filename, content_type, size)| AttachmentInfo {
                filename,
                content_type,
                size,
            })
            .collect())
    }

    /// The raw bytes of a stored message.
    pub async fn raw_message(&self, id: i64) -> Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = on!(self.pool, |c| sqlx::query_as(
            "SELECT raw FROM message_raw WHERE message_id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await?);
        Ok(row.map(|(raw,)| raw))
    }
}

/// The columns [`outbox_item_from_row`] reads, from `outbox o JOIN message_raw r LEFT JOIN
/// cases c`.
/// Answer the classifier's questions, in the caller's transaction (so an intake batch sees
/// its own earlier mails).
pub async fn known(tx: &mut Tx, lookups: &Lookups) -> Result<Known> {
    let mut known = Known::default();
    let mut infos: HashMap<i64, CaseInfo> = HashMap::new();
    for id in &lookups.message_ids {
        // `sent`: klachtpost itself sent it (everything it sends goes through the outbox).
        let row = Sql::new(
            "SELECT m.case_id, m.kind, EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id)
             FROM messages m WHERE m.message_id = $1 AND m.case_id IS NOT NULL ORDER BY m.id LIMIT 1",
        )
        .bind(id)
        .fetch_optional(tx)
        .await?;
        if let Some(row) = row {
            let case_id: i64 = row.col(0)?;
            if row.col::<String>(1)? == "acknowledgement" {
                known.acknowledgements.insert(id.clone());
            }
            if row.col::<bool>(2)? {
                known.ours.insert(id.clone());
            }
            let info = case_info(tx, case_id, &mut infos).await?;
            known.by_message_id.insert(id.clone(), info);
        }
    }
    for reference in &lookups.references {
        if let Some(case_id) = case_id_by_reference(tx, reference).await? {
            let info = case_info(tx, case_id, &mut infos).await?;
            known.by_reference.insert(reference.clone(), info);
        }
    }
    Ok(known)
}

async fn case_info(
    tx: &mut Tx,
    case_id: i64,
    cache: &mut HashMap<i64, CaseInfo>,
) -> Result<CaseInfo> {
    if let Some(info) = cache.get(&case_id) {
        return Ok(info.clone());
    }
    let row = Sql::new("SELECT reference, complainant_address, status FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_one(tx)
        .await?;
    let status: String = row.col(2)?;
    let info = CaseInfo {
        reference: row.col(0)?,
        complainant: row.col(1)?,
        parties: parties::of_case(tx, case_id).await?,
        closed: status == "closed" || status == "not_a_complaint",
    };
    cache.insert(case_id, info.clone());
    Ok(info)
}

macro_rules! outbox_item_columns {
    () => {
        "o.id, o.envelope_from, o.recipients, o.attempts, o.purpose, r.raw, c.reference, o.auto_submitted"
    };
}
pub(crate) use outbox_item_columns;

pub(crate) fn outbox_item_from_row(r: &impl StoreRow) -> Result<OutboxItem> {
    Ok(OutboxItem {
        id: r.col(0)?,
        envelope_from: r.col(1)?,
        recipients: r.col::<String>(2)?.lines().map(str::to_string).collect(),
        attempts: r.col::<i64>(3)? as u32,
        purpose: r.col(4)?,
        raw: r.col(5)?,
        case_reference: r.col(6)?,
        auto_submitted: r.col(7)?,
    })
}

/// The columns [`case_from_row`] reads (a macro so queries stay `&'static str`).
macro_rules! case_columns {
    () => {
        "reference, status, channel, complainant_name, complainant_address, complainant_source, subject, received_at, opened_at, partner_name, partner_email, staff_address, ack_due_at, response_due_at, resolution_due_at, deadline_explanation, flags, closed_at, response_met_at, original_resolution_due_at, extension_reason, client_satisfied, complainant_phone, acknowledged_at, extended_at, hold_reason, purged_at, cause, structural_fault, improvement_measure, handling, result, evaluation"
    };
}
use case_columns;

fn split_lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn case_from_row(r: &impl StoreRow) -> Result<CaseSummary> {
    let time = |name: &str| -> Result<String> { Ok(r.col::<TimeText>(name)?.0) };
    let opt_time = |name: &str| -> Result<Option<String>> { Ok(TimeText::opt(r.col(name)?)) };
    Ok(CaseSummary {
        reference: r.col("reference")?,
        status: r.col("status")?,
        channel: r.col("channel")?,
        complainant_name: r.col("complainant_name")?,
        complainant_address: r.col("complainant_address")?,
        complainant_source: r.col("complainant_source")?,
        subject: r.col("subject")?,
        received_at: time("received_at")?,
        opened_at: time("opened_at")?,
        partner_name: r.col("partner_name")?,
        partner_email: r.col("partner_email")?,
        staff_address: r.col("staff_address")?,
        ack_due_at: time("ack_due_at")?,
        response_due_at: time("response_due_at")?,
        resolution_due_at: time("resolution_due_at")?,
        deadline_explanation: r.col("deadline_explanation")?,
        flags: split_lines(&r.col::<String>("flags")?),
        closed_at: opt_time("closed_at")?,
        response_met_at: opt_time("response_met_at")?,
        original_resolution_due_at: opt_time("original_resolution_due_at")?,
        extension_reason: r.col("extension_reason")?,
        client_satisfied: r.col("client_satisfied")?,
        complainant_phone: r.col("complainant_phone")?,
        acknowledged_at: opt_time("acknowledged_at")?,
        extended_at: opt_time("extended_at")?,
        hold_reason: r.col("hold_reason")?,
        purged_at: opt_time("purged_at")?,
        cause: r.col("cause")?,
        structural_fault: r.col("structural_fault")?,
        improvement_measure: r.col("improvement_measure")?,
        handling: r.col("handling")?,
        result: r.col("result")?,
        evaluation: r.col("evaluation")?,
    })
}

/// One queued outgoing message.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub attempts: u32,
    pub purpose: String,
    pub raw: Vec<u8>,
    pub case_reference: Option<String>,
    /// `Auto-Submitted` of the message: automatic mail, subject to the loop and flood rules.
    pub auto_submitted: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub reference: String,
    pub status: String,
    pub channel: String,
    pub complainant_name: Option<String>,
    pub complainant_address: Option<String>,
    pub complainant_source: String,
    pub subject: String,
    pub received_at: String,
    pub opened_at: String,
    pub partner_name: String,
    pub partner_email: String,
    pub staff_address: Option<String>,
    pub ack_due_at: String,
    pub response_due_at: String,
    pub resolution_due_at: String,
    pub deadline_explanation: String,
    pub flags: Vec<String>,
    pub closed_at: Option<String>,
    /// When staff or a partner first wrote to the complainant (the response deadline met).
    pub response_met_at: Option<String>,
    /// The resolution deadline before the first extension.
    pub original_resolution_due_at: Option<String>,
    pub extension_reason: Option<String>,
    pub client_satisfied: Option<bool>,
    /// From a verbal-complaint note.
    pub complainant_phone: Option<String>,
    /// When the acknowledgement reached the outgoing server.
    pub acknowledged_at: Option<String>,
    pub extended_at: Option<String>,
    /// Set while the case is on hold (kept past retention).
    pub hold_reason: Option<String>,
    /// Set on a tombstone.
    pub purged_at: Option<String>,
    // The registration form.
    pub cause: Option<String>,
    pub structural_fault: Option<bool>,
    pub improvement_measure: Option<String>,
    pub handling: Option<String>,
    pub result: Option<String>,
    pub evaluation: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseMessage {
    pub id: i64,
    pub direction: String,
    pub kind: String,
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub subject: String,
    pub received_at: String,
    pub text: String,
    pub size: i64,
    pub flags: Vec<String>,
    pub attachments: i64,
    /// For outgoing mail: queued, sent or failed.
    pub delivery: Option<String>,
    pub message_id: Option<String>,
    pub attachment_files: Vec<AttachmentInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentInfo {
    pub filename: Option<String>,
    pub content_type: String,
    pub size: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub case: CaseSummary,
    pub messages: Vec<CaseMessage>,
    /// The history, oldest first.
    pub events: Vec<history::Entry>,
}

// ---- writing, inside a transaction ----

/// Record an attachment of a stored message: its name, type and decoded size. Its bytes are
/// not stored again: they are in the message's raw mail, stored once (issue 8: a 20 MB
/// attachment was kept twice, raw and decoded); `data` stays empty.
pub async fn insert_attachment(
    tx: &mut Tx,
    message_id: i64,
    filename: Option<&str>,
    content_type: &str,
    size: usize,
) -> Result<()> {
    Sql::new(
        "INSERT INTO attachments (message_id, filename, content_type, size, data) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(message_id)
    .bind(filename)
    .bind(content_type)
    .bind(i64::try_from(size).unwrap_or(i64::MAX))
    .bind(&[][..] as &[u8])
    .execute(tx)
    .await?;
    Ok(())
}

/// Hand out the next sequence number of a year, atomically.
pub async fn next_sequence(tx: &mut Tx, year: i32) -> Result<i64> {
    let row = Sql::new(
        "INSERT INTO case_sequences (year, last) VALUES ($1, 1)
         ON CONFLICT (year) DO UPDATE SET last = case_sequences.last + 1 RETURNING last",
    )
    .bind(i64::from(year))
    .fetch_one(tx)
    .await?;
    Ok(row.col(0)?)
}

/// A case to open.
#[derive(Debug, Clone)]
pub struct NewCase<'a> {
    pub reference: &'a str,
    pub channel: &'a str,
    pub complainant_name: Option<&'a str>,
    pub complainant_address: Option<&'a str>,
    pub complainant_phone: Option<&'a str>,
    pub complainant_source: &'a str,
    pub subject: &'a str,
    pub received_at: DateTime<Utc>,
    pub opened_at: DateTime<Utc>,
    pub partner_name: &'a str,
    pub partner_email: &'a str,
    pub staff_address: Option<&'a str>,
    pub ack_due_at: DateTime<Utc>,
    pub response_due_at: DateTime<Utc>,
    pub resolution_due_at: DateTime<Utc>,
    pub deadline_explanation: &'a str,
    pub flags: &'a [String],
    /// The language the case is written in, when known (intake detects it).
    pub language: Option<crate::compose::Lang>,
}

/// Insert a case row; only [`crate::case::open`] calls this.
pub async fn insert_case(tx: &mut Tx, c: &NewCase<'_>, status: &str) -> Result<i64> {
    let row = Sql::new(
        "INSERT INTO cases (reference, status, channel, complainant_name, complainant_address, complainant_source,
                            subject, received_at, opened_at, partner_name, partner_email, staff_address,
                            ack_due_at, response_due_at, resolution_due_at, deadline_explanation, flags, complainant_phone, language)
         VALUES ($1, $17, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $18, $19) RETURNING id",
    )
    .bind(c.reference)
    .bind(c.channel)
    .bind(c.complainant_name)
    .bind(c.complainant_address.map(str::to_ascii_lowercase))
    .bind(c.complainant_source)
    .bind(c.subject)
    .bind(Ts(c.received_at))
    .bind(Ts(c.opened_at))
    .bind(c.partner_name)
    .bind(c.partner_email)
    .bind(c.staff_address)
    .bind(Ts(c.ack_due_at))
    .bind(Ts(c.response_due_at))
    .bind(Ts(c.resolution_due_at))
    .bind(c.deadline_explanation)
    .bind(c.flags.join("\n"))
    .bind(status)
    .bind(c.complainant_phone)
    .bind(c.language.map(|l| l.code()))
    .fetch_one(tx)
    .await?;
    Ok(row.col(0)?)
}

pub async fn case_id_by_reference(tx: &mut Tx, reference: &str) -> Result<Option<i64>> {
    let row = Sql::new("SELECT id FROM cases WHERE reference = $1")
        .bind(reference)
        .fetch_optional(tx)
        .await?;
    Ok(row.map(|r| r.col(0)).transpose()?)
}

pub async fn case_partner_email(tx: &mut Tx, reference: &str) -> Result<Option<String>> {
    let row = Sql::new("SELECT partner_email FROM cases WHERE reference = $1")
        .bind(reference)
        .fetch_optional(tx)
        .await?;
    Ok(row.map(|r| r.col(0)).transpose()?)
}

/// Mark an outbox row sent, in the caller's transaction; returns its case and purpose so
/// the caller can record it on the case ([`crate::case`]).
pub async fn outbox_mark_sent(
    tx: &mut Tx,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(Option<i64>, String)> {
    let row = Sql::new(
        "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = $1, last_error = NULL, claimed_at = NULL
         WHERE id = $2 RETURNING case_id, purpose",
    )
    .bind(Ts(now))
    .bind(id)
    .fetch_one(tx)
    .await?;
    Ok((row.col(0)?, row.col(1)?))
}

/// Give up on an outbox row: it stays in the table as failed. Returns its case and
/// purpose (the caller flags the case).
pub async fn outbox_mark_failed(
    tx: &mut Tx,
    id: i64,
    error: &str,
) -> Result<(Option<i64>, String)> {
    let row = Sql::new(
        "UPDATE outbox SET status = 'failed', claimed_at = NULL, attempts = attempts + 1, last_error = $1
         WHERE id = $2 RETURNING case_id, purpose",
    )
    .bind(error)
    .bind(id)
    .fetch_one(tx)
    .await?;
    Ok((row.col(0)?, row.col(1)?))
}

/// Make the database file (and its folder) owner-only before SQLite creates it: the
/// register is confidential. SQLite gives its -wal and -shm files the same mode.
fn private_file(path: &std::path::Path) -> Result<()> {
    let folder_err = |source| StoreError::Folder {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        create_private_dir(dir).map_err(folder_err)?;
    }
    if !path.exists() {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        match o.open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(folder_err(e)),
        }
    }
    Ok(())
}

/// Create a folder (and its parents) readable by the owner only.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

#[cfg(test)]
mod tests {
    fn assert_send<T: Send>(_: T) {}

    /// Opening a store is a future another task can run (an instance's supervisor may
    /// open it there), and so are a write transaction and its commit.
    #[allow(dead_code)]
    fn store_futures_are_send(url: super::DatabaseUrl, pool: super::Pool) {
        assert_send(super::Store::open(url));
        assert_send(async move {
            let tx = pool.begin().await?;
            tx.commit().await
        });
    }
}
