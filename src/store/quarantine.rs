//! The quarantine: mail that could not be taken in, kept raw with why, until a retry takes
//! it in. Rows are never deleted: a resolved item stays as the record that it was
//! quarantined, linked to the message it became. Retention empties an item's content
//! after `keep_unattached` ([`crate::retention`]); the row stays.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Result, Sql, Store, StoreRow, TimeText, Ts, Tx, on, queue_outgoing_to_all};

/// The reference partners see: `Q-0007`.
pub fn reference(id: i64) -> String {
    format!("Q-{id:04}")
}

/// Read a reference as typed: `Q-0007`, `q-7` or `7`.
pub fn parse_reference(s: &str) -> Option<i64> {
    let s = s.trim();
    let digits = s
        .strip_prefix("Q-")
        .or_else(|| s.strip_prefix("q-"))
        .unwrap_or(s);
    digits.parse::<i64>().ok().filter(|id| *id > 0)
}

/// A mail to put in quarantine.
#[derive(Debug, Clone)]
pub struct NewQuarantine<'a> {
    pub source_key: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub identity: &'a str,
    pub received_at: DateTime<Utc>,
    pub reason: &'a str,
    /// The mail's size; `raw` is empty only when the bytes themselves could not be stored.
    pub size: usize,
    pub raw: &'a [u8],
    pub now: DateTime<Utc>,
}

/// Insert a quarantine row in the caller's transaction; returns its id.
pub async fn insert_quarantine(tx: &mut Tx, q: &NewQuarantine<'_>) -> Result<i64> {
    let row = Sql::new(
        "INSERT INTO quarantine (source_key, message_id, identity, received_at, quarantined_at, reason, size, raw, status, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'quarantined', 0) RETURNING id",
    )
    .bind(q.source_key)
    .bind(q.message_id)
    .bind(q.identity)
    .bind(Ts(q.received_at))
    .bind(Ts(q.now))
    .bind(q.reason)
    .bind(q.size as i64)
    .bind(q.raw)
    .fetch_one(tx)
    .await?;
    Ok(row.col(0)?)
}

/// Store an internal notice to several people (the partners) and queue it, in the
/// caller's transaction; link it to quarantine row `id`. Returns the message row.
pub async fn queue_quarantine_notice(
    tx: &mut Tx,
    id: i64,
    recipients: &[String],
    out: &crate::compose::Outgoing,
    from: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let (row, _) = queue_outgoing_to_all(
        tx,
        None,
        "notice",
        Some("klachtpost"),
        from,
        recipients,
        out,
        "internal notice: a mail is in quarantine",
        now,
    )
    .await?;
    Sql::new("UPDATE quarantine SET notice_row = $1 WHERE id = $2")
        .bind(row)
        .bind(id)
        .execute(tx)
        .await?;
    Ok(row)
}

/// Mark an item resolved in the caller's transaction: `taken_in` (it became
/// `message_row`) or `duplicate` (`message_row` is the original it duplicated).
pub async fn resolve_quarantine(
    tx: &mut Tx,
    id: i64,
    status: &str,
    message_row: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    Sql::new(
        "UPDATE quarantine SET status = $1, message_row = $2, resolved_at = $3, attempts = attempts + 1, last_attempt_at = $3
         WHERE id = $4",
    )
    .bind(status)
    .bind(message_row)
    .bind(Ts(now))
    .bind(id)
    .execute(tx)
    .await?;
    Ok(())
}

impl Store {
    /// How many items wait in quarantine (not yet taken in or resolved, not purged).
    pub async fn quarantine_open_count(&self) -> Result<i64> {
        on!(self.pool(), |c| {
            let row = sqlx::query(
                "SELECT COUNT(*) FROM quarantine WHERE status = 'quarantined' AND identity <> ''",
            )
            .fetch_one(c)
            .await?;
            Ok(row.try_get(0)?)
        })
    }

    /// Quarantine items, oldest first: only those still waiting (and not purged), or
    /// (`all`) every one ever quarantined.
    pub async fn quarantine_items(&self, all: bool) -> Result<Vec<QuarantineItem>> {
        on!(self.pool(), |c| {
            let rows = sqlx::query(
                "SELECT q.id, q.source_key, q.message_id, q.identity, q.received_at, q.quarantined_at, q.reason, q.size,
                        q.status, q.attempts, q.last_attempt_at, q.resolved_at, q.message_row, c.reference, q.identity = ''
                 FROM quarantine q LEFT JOIN messages m ON m.id = q.message_row LEFT JOIN cases c ON c.id = m.case_id
                 WHERE $1 OR (q.status = 'quarantined' AND q.identity <> '') ORDER BY q.id",
            )
            .bind(all)
            .fetch_all(c)
            .await?;
            rows.iter().map(item_from_row).collect()
        })
    }

    /// One item and its raw bytes.
    pub async fn quarantine_item(&self, id: i64) -> Result<Option<(QuarantineItem, Vec<u8>)>> {
        on!(self.pool(), |c| {
            let row = sqlx::query(
                "SELECT q.id, q.source_key, q.message_id, q.identity, q.received_at, q.quarantined_at, q.reason, q.size,
                        q.status, q.attempts, q.last_attempt_at, q.resolved_at, q.message_row, c.reference, q.identity = '', q.raw
                 FROM quarantine q LEFT JOIN messages m ON m.id = q.message_row LEFT JOIN cases c ON c.id = m.case_id
                 WHERE q.id = $1",
            )
            .bind(id)
            .fetch_optional(c)
            .await?;
            row.map(|r| Ok((item_from_row(&r)?, r.try_get("raw")?)))
                .transpose()
        })
    }

    /// A retry failed again: count it, keep why.
    pub async fn quarantine_retry_failed(
        &self,
        id: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool().begin_plain().await?;
        Sql::new(
            "UPDATE quarantine SET attempts = attempts + 1, last_attempt_at = $1, reason = $2 WHERE id = $3",
        )
        .bind(Ts(now))
        .bind(reason)
        .bind(id)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Resolve an item outside intake's transaction (a retry that found a duplicate).
    pub async fn quarantine_resolve(
        &self,
        id: i64,
        status: &str,
        message_row: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        resolve_quarantine(&mut tx, id, status, message_row, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn item_from_row(r: &impl StoreRow) -> Result<QuarantineItem> {
    let id: i64 = r.col(0)?;
    Ok(QuarantineItem {
        reference: reference(id),
        id,
        source_key: r.col(1)?,
        message_id: r.col(2)?,
        identity: r.col(3)?,
        received_at: r.col::<TimeText>(4)?.0,
        quarantined_at: r.col::<TimeText>(5)?.0,
        reason: r.col(6)?,
        size: r.col(7)?,
        status: r.col(8)?,
        attempts: r.col(9)?,
        last_attempt_at: TimeText::opt(r.col(10)?),
        resolved_at: TimeText::opt(r.col(11)?),
        message_row: r.col(12)?,
        case: r.col(13)?,
        purged: r.col(14)?,
    })
}

/// One quarantined mail (without its raw bytes).
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineItem {
    pub id: i64,
    /// `Q-0007`.
    pub reference: String,
    pub source_key: Option<String>,
    pub message_id: Option<String>,
    pub identity: String,
    pub received_at: String,
    pub quarantined_at: String,
    /// Why it could not be taken in (the last attempt's reason).
    pub reason: String,
    pub size: i64,
    /// quarantined | taken_in | duplicate
    pub status: String,
    pub attempts: i64,
    pub last_attempt_at: Option<String>,
    pub resolved_at: Option<String>,
    /// The message it became (or duplicated) once resolved.
    pub message_row: Option<i64>,
    /// That message's case, if any.
    pub case: Option<String>,
    /// Its content was purged by retention (`keep_unattached` after it was quarantined):
    /// no bytes, Message-ID or mailbox copy are left, the row is the record.
    pub purged: bool,
}
