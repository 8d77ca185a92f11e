//! Claiming outbox rows, so an acknowledgement goes out once as far as SMTP allows:
//! [`Store::claim_due`] marks rows `sending` before they are handed to the server,
//! `outbox::mark_sent` confirms one right after the server's 250 in a short transaction of
//! its own ([`super::outbox_mark_sent`] and the case's history), and
//! [`Store::release_claims`] hands rows a crashed run had claimed back to the queue at
//! start-up (they are resent as the same stored message, so with the same Message-ID).

use chrono::{DateTime, Duration, Utc};

use super::{
    OutboxItem, Result, Store, Ts, dialect, on, outbox_item_columns, outbox_item_from_row,
};

/// A claim older than this is taken to be abandoned (its run is gone without a restart)
/// and the row is claimed again. Far longer than one SMTP transaction may take.
pub const CLAIM_LEASE: Duration = Duration::minutes(10);

impl Store {
    /// Claim up to `limit` rows due at `now` (oldest first) for sending: they become
    /// `sending` with `claimed_at = now`. Rows whose claim is older than [`CLAIM_LEASE`]
    /// are claimed again. On PostgreSQL the rows are locked `FOR UPDATE SKIP LOCKED` in a
    /// transaction of their own, not under the write lock ([`dialect::claim_due`]): a claim
    /// neither waits for intake's writes nor takes a row another claim holds.
    pub async fn claim_due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxItem>> {
        let mut tx = self.pool().begin_claim().await?;
        let tx_kind = tx.kind();
        let items = on!(tx, |c| {
            let ids: Vec<i64> = sqlx::query_scalar(dialect::claim_due(tx_kind))
                .bind(Ts(now))
                .bind(Ts(now - CLAIM_LEASE))
                .bind(limit)
                .fetch_all(&mut *c)
                .await?;
            let mut items = Vec::with_capacity(ids.len());
            for id in ids {
                sqlx::query("UPDATE outbox SET status = 'sending', claimed_at = $1 WHERE id = $2")
                    .bind(Ts(now))
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
                let r = sqlx::query(concat!(
                    "SELECT ",
                    outbox_item_columns!(),
                    " FROM outbox o JOIN messages m ON m.id = o.message_id LEFT JOIN cases c ON c.id = o.case_id
                     WHERE o.id = $1"
                ))
                .bind(id)
                .fetch_one(&mut *c)
                .await?;
                items.push(outbox_item_from_row(&r)?);
            }
            items
        });
        tx.commit().await?;
        Ok(items)
    }

    /// At start-up: rows a previous run claimed but never confirmed go back to the queue,
    /// due now. Returns how many. Only one klachtpost may send from one database at a time.
    pub async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64> {
        on!(self.pool(), |c| {
            let done = sqlx::query(
                "UPDATE outbox SET status = 'queued', next_attempt_at = $1, claimed_at = NULL
                 WHERE status = 'sending'",
            )
            .bind(Ts(now))
            .execute(c)
            .await?;
            Ok(done.rows_affected())
        })
    }
}
