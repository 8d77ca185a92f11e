//! What retention deletes, as SQL: a purged case's mail, mail that never opened a case,
//! and the space they leave in the file (`secure_delete` is on for every connection, see
//! [`super::Store::open`]; [`reclaim`] gives freed pages back).

use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::{Result, ts};

/// Delete a case's messages (raw and text), their attachments and outbox rows.
/// Returns (messages, attachments, outbox rows).
pub async fn delete_case_mail(tx: &mut SqliteConnection, case_id: i64) -> Result<(u64, u64, u64)> {
    let attachments = sqlx::query(
        "DELETE FROM attachments WHERE message_id IN (SELECT id FROM messages WHERE case_id = $1)",
    )
    .bind(case_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let outbox = sqlx::query(
        "DELETE FROM outbox WHERE case_id = $1 OR message_id IN (SELECT id FROM messages WHERE case_id = $1)",
    )
    .bind(case_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Parties are addresses (personal) and point at the case's messages.
    sqlx::query("DELETE FROM case_parties WHERE case_id = $1")
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
    let messages = sqlx::query("DELETE FROM messages WHERE case_id = $1")
        .bind(case_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    Ok((messages, attachments, outbox))
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
pub async fn cases_due(pool: &SqlitePool, cutoff: DateTime<Utc>) -> Result<Vec<Due>> {
    let rows = sqlx::query(
        "SELECT reference, closed_at, hold_reason IS NOT NULL FROM cases
         WHERE purged_at IS NULL AND closed_at IS NOT NULL AND closed_at < $1
           AND status IN ('closed', 'not_a_complaint')
         ORDER BY closed_at, id",
    )
    .bind(ts(cutoff))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Due {
                reference: r.try_get(0)?,
                closed_at: r.try_get(1)?,
                held: r.try_get::<i64, _>(2)? != 0,
            })
        })
        .collect()
}

/// Mail that never joined a case (auto-replies, bounces, triage) received before `cutoff`
/// and no longer waiting in the outbox: (id, source key).
pub async fn unattached_due(
    pool: &SqlitePool,
    cutoff: DateTime<Utc>,
) -> Result<Vec<(i64, Option<String>)>> {
    let rows = sqlx::query(
        "SELECT m.id, m.source_key FROM messages m
         WHERE m.case_id IS NULL AND m.received_at < $1
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id AND o.status = 'queued')
         ORDER BY m.id",
    )
    .bind(ts(cutoff))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Delete one unattached message with its attachments and outbox rows.
pub async fn delete_message(tx: &mut SqliteConnection, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM attachments WHERE message_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM outbox WHERE message_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM messages WHERE id = $1 AND case_id IS NULL")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Give the freed pages back to the file system: an incremental vacuum where the file is
/// in incremental auto-vacuum mode (every file klachtpost creates), else a full VACUUM
/// (which also switches an older file to incremental mode).
pub async fn reclaim(pool: &SqlitePool) -> Result<()> {
    let mode: i64 = sqlx::query("PRAGMA auto_vacuum")
        .fetch_one(pool)
        .await?
        .try_get(0)?;
    if mode == 2 {
        sqlx::query("PRAGMA incremental_vacuum")
            .execute(pool)
            .await?;
    } else {
        sqlx::query("PRAGMA auto_vacuum = INCREMENTAL")
            .execute(pool)
            .await?;
        sqlx::query("VACUUM").execute(pool).await?;
    }
    Ok(())
}

/// Where copies of a case's mail may be outside the database: (source key, Message-ID)
/// of its inbound mail, and the outbox ids of what was sent (file outbox names).
pub async fn case_copies(
    pool: &SqlitePool,
    reference: &str,
) -> Result<(Vec<(Option<String>, Option<String>)>, Vec<i64>)> {
    let rows = sqlx::query(
        "SELECT m.source_key, m.message_id FROM messages m JOIN cases c ON c.id = m.case_id
         WHERE c.reference = $1 AND m.direction = 'inbound' ORDER BY m.id",
    )
    .bind(reference)
    .fetch_all(pool)
    .await?;
    let mail = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<_>>>()?;
    let outbox = sqlx::query(
        "SELECT o.id FROM outbox o JOIN cases c ON c.id = o.case_id WHERE c.reference = $1",
    )
    .bind(reference)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| Ok(r.try_get(0)?))
    .collect::<Result<Vec<i64>>>()?;
    Ok((mail, outbox))
}

/// The Message-ID of a stored message.
pub async fn message_id_of(pool: &SqlitePool, id: i64) -> Result<Option<String>> {
    Ok(sqlx::query("SELECT message_id FROM messages WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .flatten())
}
