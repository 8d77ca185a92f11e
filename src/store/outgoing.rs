//! The outgoing side's records: a case's language, the flood counts per recipient, hard
//! bounces, and rows held back by the loop and flood rules.

use chrono::{DateTime, Utc};
use sqlx::Row;

use std::collections::HashMap;

use super::{Result, Sql, Store, StoreRow, Ts, Tx, on};
use crate::compose::Lang;

impl Store {
    /// The language of a case (Dutch for cases opened before languages were recorded).
    pub async fn case_language(&self, reference: &str) -> Result<Lang> {
        on!(self.pool(), |c| {
            let row = sqlx::query("SELECT language FROM cases WHERE reference = $1")
                .bind(reference)
                .fetch_optional(c)
                .await?;
            let code: Option<String> = match row {
                Some(r) => r.try_get(0)?,
                None => None,
            };
            Ok(code
                .as_deref()
                .and_then(Lang::from_code)
                .unwrap_or(Lang::Nl))
        })
    }

    /// What the loop and flood rules need to know of each of `addresses` (lowercase), a
    /// query per [`RECORDS_PER_QUERY`] of them (the sender asks once per claimed batch, not
    /// once per message: a query is a hand-off to the connection's thread and back):
    /// whether it bounced hard since `bounced_since`, and how many automatic mails went to
    /// it since `hour_since` and since `day_since` (the earlier of the two).
    pub async fn recipient_records(
        &self,
        addresses: &[String],
        bounced_since: DateTime<Utc>,
        hour_since: DateTime<Utc>,
        day_since: DateTime<Utc>,
    ) -> Result<HashMap<String, RecipientRecord>> {
        let mut records = HashMap::with_capacity(addresses.len());
        for chunk in addresses.chunks(RECORDS_PER_QUERY) {
            let sql = recipient_records_sql(chunk.len());
            on!(self.pool(), |c| {
                // Safe: fixed SQL with numbered placeholders; every address is bound.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(Ts(bounced_since))
                    .bind(Ts(hour_since))
                    .bind(Ts(day_since));
                for a in chunk {
                    q = q.bind(a);
                }
                for row in q.fetch_all(c).await? {
                    records.insert(
                        row.try_get::<String, _>(0)?,
                        RecipientRecord {
                            bounced: row.try_get(1)?,
                            automatic_last_hour: row.try_get(2)?,
                            automatic_last_day: row.try_get(3)?,
                        },
                    );
                }
            });
        }
        Ok(records)
    }

    /// Whether a row to `address` was held for the flood limits since `since` (other than
    /// `except`): the partner has been told then.
    pub async fn flood_held_since(
        &self,
        address: &str,
        since: DateTime<Utc>,
        except: i64,
    ) -> Result<bool> {
        on!(self.pool(), |c| {
            let row = sqlx::query(
                "SELECT 1 FROM outbox WHERE lower(recipients) = $1 AND status = 'held'
                 AND last_error LIKE 'flood:%' AND next_attempt_at > $2 AND id <> $3 LIMIT 1",
            )
            .bind(address.to_ascii_lowercase())
            .bind(Ts(since))
            .bind(except)
            .fetch_optional(c)
            .await?;
            Ok(row.is_some())
        })
    }

    /// Record a hard bounce of `address`.
    pub async fn record_bounce(
        &self,
        address: &str,
        at: DateTime<Utc>,
        source: &str,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        record_bounce(&mut tx, address, at, source).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The recipients of the message we sent with this Message-ID, if it is ours, in the
/// caller's transaction.
pub async fn sent_recipients(tx: &mut Tx, message_id: &str) -> Result<Vec<String>> {
    let rows = Sql::new(
        "SELECT o.recipients FROM outbox o JOIN messages m ON m.id = o.message_id
         WHERE m.message_id = $1 AND m.direction = 'outbound'",
    )
    .bind(message_id)
    .fetch_all(tx)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.col::<String>(0).ok())
        .flat_map(|r| r.lines().map(str::to_ascii_lowercase).collect::<Vec<_>>())
        .collect())
}

/// Record a hard bounce of `address`, in the caller's transaction.
pub async fn record_bounce(
    tx: &mut Tx,
    address: &str,
    at: DateTime<Utc>,
    source: &str,
) -> Result<()> {
    Sql::new("INSERT INTO bounces (address, at, source) VALUES ($1, $2, $3)")
        .bind(address.to_ascii_lowercase())
        .bind(Ts(at))
        .bind(source)
        .execute(tx)
        .await?;
    Ok(())
}

/// Hold a row back: never sent, kept with the reason. Returns its case and purpose, for
/// the case's flag (written by the caller through [`crate::case`]).
pub async fn outbox_mark_held(
    tx: &mut Tx,
    id: i64,
    now: DateTime<Utc>,
    why: &str,
) -> Result<(Option<i64>, String)> {
    let row = Sql::new(
        "UPDATE outbox SET status = 'held', last_error = $1, next_attempt_at = $2 WHERE id = $3
         RETURNING case_id, purpose",
    )
    .bind(why)
    .bind(Ts(now))
    .bind(id)
    .fetch_one(tx)
    .await?;
    Ok((row.col(0)?, row.col(1)?))
}

/// How many addresses one [`Store::recipient_records`] query asks about.
const RECORDS_PER_QUERY: usize = 100;

/// [`Store::recipient_records`]' query for `n` addresses (`$4`…): each address with its
/// hard bounces since `$1` and its automatic mail sent since `$2` and since `$3`.
fn recipient_records_sql(n: usize) -> String {
    let addresses: Vec<String> = (0..n).map(|i| format!("(${})", i + 4)).collect();
    format!(
        "WITH asked (address) AS (VALUES {})
         SELECT asked.address,
                EXISTS (SELECT 1 FROM bounces b WHERE b.address = asked.address AND b.at > $1),
                COALESCE((SELECT SUM(CASE WHEN o.sent_at > $2 THEN 1 ELSE 0 END) FROM outbox o
                          WHERE lower(o.recipients) = asked.address AND o.status = 'sent'
                            AND o.auto_submitted IS NOT NULL AND o.sent_at > $3), 0),
                (SELECT COUNT(*) FROM outbox o
                 WHERE lower(o.recipients) = asked.address AND o.status = 'sent'
                   AND o.auto_submitted IS NOT NULL AND o.sent_at > $3)
         FROM asked",
        addresses.join(", ")
    )
}

/// See [`Store::recipient_records`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecipientRecord {
    pub bounced: bool,
    pub automatic_last_hour: i64,
    pub automatic_last_day: i64,
}
