//! What retention deletes, as SQL: a purged case's mail, mail that never opened a case,
//! and the space they leave in the file (`secure_delete` is on for every connection, see
//! [`super::Store::open`]; [`reclaim`] gives freed pages back).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Pool, Result, Sql, TimeText, Ts, Tx, on};

/// Delete a case's messages (raw and text), their attachments and outbox rows.
/// Returns (messages, attachments, outbox rows).
pub async fn delete_case_mail(tx: &mut Tx, case_id: i64) -> Result<(u64, u64, u64)> {
    let attachments = Sql::new(
        "DELETE FROM attachments WHERE message_id IN (SELECT id FROM messages WHERE case_id = $1)",
    )
    .bind(case_id)
    .execute(tx)
    .await?;
    // The raw mails (explicitly, not only by the foreign key's ON DELETE CASCADE, which a
    // connection without foreign keys would skip).
    Sql::new(
        "DELETE FROM message_raw WHERE message_id IN (SELECT id FROM messages WHERE case_id = $1)",
    )
    .bind(case_id)
    .execute(tx)
    .await?;
    let outbox = Sql::new(
        "DELETE FROM outbox WHERE case_id = $1 OR message_id IN (SELECT id FROM messages WHERE case_id = $1)",
    )
    .bind(case_id)
    .execute(tx)
    .await?;
    unlink_messages(tx, "SELECT id FROM messages WHERE case_id = $1", case_id).await?;
    // Parties are addresses (personal) and point at the case's messages.
    Sql::new("DELETE FROM case_parties WHERE case_id = $1")
        .bind(case_id)
        .execute(tx)
        .await?;
    let messages = Sql::new("DELETE FROM messages WHERE case_id = $1")
        .bind(case_id)
        .execute(tx)
        .await?;
    Ok((messages, attachments, outbox))
}

/// What points at messages about to be deleted (`select` gives their ids from `$1`): a
/// quarantine item keeps its record without the link, the duplicate sightings of a purged
/// mail go with it.
/// `select` is always one of this module's literals, never input.
async fn unlink_messages(tx: &mut Tx, select: &'static str, arg: i64) -> Result<()> {
    for sql in [
        format!("UPDATE quarantine SET message_row = NULL WHERE message_row IN ({select})"),
        format!("UPDATE quarantine SET notice_row = NULL WHERE notice_row IN ({select})"),
        format!("DELETE FROM duplicates WHERE message_row IN ({select})"),
    ] {
        Sql::new(&sql).bind(arg).execute(tx).await?;
    }
    Ok(())
}

/// A case whose retention has run out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Due {
    pub reference: String,
    pub closed_at: String,
    pub held: bool,
}

/// Closed, unpurged cases closed before `cutoff` (held ones too, marked, so a dry run
/// can show them).
pub async fn cases_due(pool: &Pool, cutoff: DateTime<Utc>) -> Result<Vec<Due>> {
    on!(pool, |c| {
        let rows = sqlx::query(
            "SELECT reference, closed_at, hold_reason IS NOT NULL FROM cases
             WHERE purged_at IS NULL AND closed_at IS NOT NULL AND closed_at < $1
               AND status IN ('closed', 'not_a_complaint')
             ORDER BY closed_at, id",
        )
        .bind(Ts(cutoff))
        .fetch_all(c)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Due {
                    reference: r.try_get(0)?,
                    closed_at: r.try_get::<TimeText, _>(1)?.0,
                    held: r.try_get(2)?,
                })
            })
            .collect()
    })
}

/// A message without a case past `keep_unattached`.
#[derive(Debug, Clone)]
pub struct Unattached {
    pub id: i64,
    pub source_key: Option<String>,
    pub message_id: Option<String>,
    /// Sent by klachtpost (a copy may be in the sent folder), else received.
    pub outbound: bool,
}

/// Mail that never joined a case (auto-replies, bounces, triage, notices klachtpost sent)
/// received before `cutoff` and no longer waiting in the outbox.
pub async fn unattached_due(pool: &Pool, cutoff: DateTime<Utc>) -> Result<Vec<Unattached>> {
    on!(pool, |c| {
        let rows = sqlx::query(
            "SELECT m.id, m.source_key, m.message_id, m.direction = 'outbound' FROM messages m
             WHERE m.case_id IS NULL AND m.received_at < $1
               AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id AND o.status = 'queued')
             ORDER BY m.id",
        )
        .bind(Ts(cutoff))
        .fetch_all(c)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Unattached {
                    id: r.try_get(0)?,
                    source_key: r.try_get(1)?,
                    message_id: r.try_get(2)?,
                    outbound: r.try_get(3)?,
                })
            })
            .collect()
    })
}

/// A quarantine item past `keep_unattached` whose bytes are still kept, with where its
/// mailbox copies are: (source key, Message-ID) of the item and of its duplicates.
#[derive(Debug, Clone)]
pub struct QuarantineDue {
    pub id: i64,
    pub copies: Vec<(Option<String>, Option<String>)>,
}

/// Quarantine items quarantined before `cutoff` and not purged yet (whatever their status:
/// one taken in has its own message row, which the case's retention handles).
pub async fn quarantine_due(pool: &Pool, cutoff: DateTime<Utc>) -> Result<Vec<QuarantineDue>> {
    on!(pool, |c| {
        let rows = sqlx::query(
            "SELECT id, source_key, message_id FROM quarantine
             WHERE quarantined_at < $1 AND identity <> '' ORDER BY id",
        )
        .bind(Ts(cutoff))
        .fetch_all(c)
        .await?;
        let mut due = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            let message_id: Option<String> = r.try_get(2)?;
            let mut copies = vec![(r.try_get(1)?, message_id.clone())];
            for d in sqlx::query("SELECT source_key FROM duplicates WHERE quarantine_row = $1")
                .bind(id)
                .fetch_all(c)
                .await?
            {
                copies.push((d.try_get(0)?, message_id.clone()));
            }
            due.push(QuarantineDue { id, copies });
        }
        Ok(due)
    })
}

/// Purge a quarantine item's content: the row stays as the record (reference, dates,
/// reason, size, status) without its bytes, Message-ID, mailbox position or identity
/// (an empty identity marks it purged), and its duplicate sightings go.
pub async fn purge_quarantine(tx: &mut Tx, id: i64) -> Result<()> {
    Sql::new(
        "UPDATE quarantine SET raw = $2, message_id = NULL, source_key = NULL, identity = ''
         WHERE id = $1",
    )
    .bind(id)
    .bind(&[] as &[u8])
    .execute(tx)
    .await?;
    Sql::new("DELETE FROM duplicates WHERE quarantine_row = $1")
        .bind(id)
        .execute(tx)
        .await?;
    Ok(())
}

/// The outbox ids of a message (file outbox names).
pub async fn outbox_ids_of(pool: &Pool, message: i64) -> Result<Vec<i64>> {
    on!(pool, |c| {
        sqlx::query("SELECT id FROM outbox WHERE message_id = $1")
            .bind(message)
            .fetch_all(c)
            .await?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    })
}

/// Delete one unattached message with its attachments and outbox rows.
pub async fn delete_message(tx: &mut Tx, id: i64) -> Result<()> {
    unlink_messages(
        tx,
        "SELECT id FROM messages WHERE id = $1 AND case_id IS NULL",
        id,
    )
    .await?;
    for sql in [
        "DELETE FROM attachments WHERE message_id = $1",
        "DELETE FROM message_raw WHERE message_id IN (SELECT id FROM messages WHERE id = $1 AND case_id IS NULL)",
        "DELETE FROM outbox WHERE message_id = $1",
        "DELETE FROM messages WHERE id = $1 AND case_id IS NULL",
    ] {
        Sql::new(sql).bind(id).execute(tx).await?;
    }
    Ok(())
}

/// Give the freed pages back to the file system: an incremental vacuum where the file is
/// in incremental auto-vacuum mode (every file klachtpost creates), else a full VACUUM
/// (which also switches an older file to incremental mode).
pub async fn reclaim(pool: &Pool) -> Result<()> {
    super::dialect::reclaim(pool).await
}

/// Where copies of a case's mail may be outside the database.
pub async fn case_copies(pool: &Pool, reference: &str) -> Result<CaseCopies> {
    on!(pool, |c| {
        let rows = sqlx::query(
            "SELECT m.source_key, m.message_id, m.direction = 'outbound' FROM messages m
             JOIN cases c ON c.id = m.case_id WHERE c.reference = $1 ORDER BY m.id",
        )
        .bind(reference)
        .fetch_all(c)
        .await?;
        let mut copies = CaseCopies::default();
        for r in &rows {
            let copy = (r.try_get(0)?, r.try_get(1)?);
            if r.try_get::<bool, _>(2)? {
                copies.sent.push(copy);
            } else {
                copies.received.push(copy);
            }
        }
        copies.outbox = sqlx::query(
            "SELECT o.id FROM outbox o JOIN cases c ON c.id = o.case_id WHERE c.reference = $1",
        )
        .bind(reference)
        .fetch_all(c)
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect::<Result<Vec<i64>>>()?;
        Ok(copies)
    })
}

/// Where a case's mail has copies outside the database.
#[derive(Debug, Clone, Default)]
pub struct CaseCopies {
    /// (source key, Message-ID) of its inbound mail: the processed folder.
    pub received: Vec<(Option<String>, Option<String>)>,
    /// (source key, Message-ID) of what klachtpost sent for it: the sent folder.
    pub sent: Vec<(Option<String>, Option<String>)>,
    /// The outbox ids of what was sent (file outbox names).
    pub outbox: Vec<i64>,
}
