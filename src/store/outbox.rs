//! Claiming outbox rows, so an acknowledgement goes out once as far as SMTP allows:
//! [`Store::claim_due`] marks rows `sending` before they are handed to the server, the
//! server's 250 is recorded at once where no write lock delays it ([`super::confirmations`]:
//! a journal file beside SQLite, the row's `confirmed_at` on PostgreSQL) and folded into the
//! row with the case's history after the batch (a confirmed row is never claimed or
//! released again), and
//! [`Store::release_claims`] hands rows a crashed run had claimed back to the queue at
//! start-up (they are resent as the same stored message, so with the same Message-ID).
//! A claim names its instance (`claimed_by`): with several instances on one database only
//! the claims of instances that are gone (no live `instance:` lease, see
//! [`super::lease`]) go back, never those another instance is sending right now.

use chrono::{DateTime, Duration, Utc};

use super::{
    OutboxItem, Result, Sql, Store, StoreRow, Ts, dialect, outbox_item_columns,
    outbox_item_from_row,
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
        // Synchronous on every handle: its sync makes intake's batch durable before one of
        // its acknowledgements leaves (`store::batches`), and the sender's folds before
        // the journal they folded is emptied.
        let folded = self.folded_not_synced();
        let mut tx = self.synchronous_pool().begin_plain().await?;
        let tx_kind = tx.kind();
        // A claim says its instance is alive (with the claims, in one commit): another
        // instance takes these rows only once that has lapsed ([`super::lease`]).
        let holder = format!("{}{}", super::lease::INSTANCE, self.instance());
        Sql::new(
            "INSERT INTO leases (name, holder, acquired_at, renewed_at, expires_at)
             VALUES ($1, $2, $3, $3, $4)
             ON CONFLICT (name) DO UPDATE SET renewed_at = excluded.renewed_at,
                 expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder AND leases.expires_at < excluded.expires_at",
        )
        .bind(&holder)
        .bind(self.instance())
        .bind(Ts(now))
        .bind(Ts(now + super::lease::PRESENCE))
        .execute(&mut tx)
        .await?;
        let ids = Sql::new(dialect::claim_due(tx_kind))
            .bind(Ts(now))
            .bind(Ts(now - CLAIM_LEASE))
            .bind(limit)
            .bind(self.instance())
            .bind(Ts(now - super::lease::PRESENCE))
            .fetch_all(&mut tx)
            .await?
            .iter()
            .map(|r| r.col::<i64>(0))
            .collect::<sqlx::Result<Vec<i64>>>()?;
        let mut items = Vec::with_capacity(ids.len());
        if !ids.is_empty() {
            // The claimed rows in one statement and read back in one, in the order picked.
            let claim_sql = format!(
                "UPDATE outbox SET status = 'sending', claimed_at = $1, claimed_by = $2
                 WHERE id IN ({})",
                id_list(3, ids.len())
            );
            let read_sql = format!(
                concat!(
                    "SELECT ",
                    outbox_item_columns!(),
                    " FROM outbox o JOIN message_raw r ON r.message_id = o.message_id LEFT JOIN cases c ON c.id = o.case_id
                     WHERE o.id IN ({})"
                ),
                id_list(1, ids.len())
            );
            let mut claim = Sql::new(&claim_sql).bind(Ts(now)).bind(self.instance());
            let mut read = Sql::new(&read_sql);
            for id in &ids {
                claim = claim.bind(*id);
                read = read.bind(*id);
            }
            claim.execute(&mut tx).await?;
            let mut rows = std::collections::HashMap::with_capacity(ids.len());
            for r in read.fetch_all(&mut tx).await? {
                let item = outbox_item_from_row(&r)?;
                rows.insert(item.id, item);
            }
            items.extend(ids.iter().filter_map(|id| rows.remove(id)));
        }
        tx.commit().await?;
        if !items.is_empty() {
            self.clear_folded(folded)?;
        }
        Ok(items)
    }

    /// At start-up: rows claimed but never confirmed by an instance that is gone (a run
    /// that crashed; no live `instance:` lease), or claimed longer ago than [`CLAIM_LEASE`],
    /// go back to the queue, due now. Returns how many. Claims of instances still running
    /// stay theirs.
    pub async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool().begin_plain().await?;
        let released = Sql::new(concat!(
            "UPDATE outbox SET status = 'queued', next_attempt_at = $1, claimed_at = NULL,
                               claimed_by = NULL
             WHERE status = 'sending' AND confirmed_at IS NULL AND (claimed_at <= $2 OR ",
            dialect::claim_holder_gone!("$1", "$3", "$4"),
            ")"
        ))
        .bind(Ts(now))
        .bind(Ts(now - CLAIM_LEASE))
        .bind(self.instance())
        .bind(Ts(now - super::lease::PRESENCE))
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(released)
    }

    /// This instance's own claims go back to the queue, due now (the transport is down:
    /// the rest of a drain waits for it like everything else). Returns how many.
    pub async fn release_own_claims(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool().begin_plain().await?;
        let released = Sql::new(
            "UPDATE outbox SET status = 'queued', next_attempt_at = $1, claimed_at = NULL,
                               claimed_by = NULL
             WHERE status = 'sending' AND claimed_by = $2 AND confirmed_at IS NULL",
        )
        .bind(Ts(now))
        .bind(self.instance())
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(released)
    }

    /// Wake-ups when any instance queues outgoing mail: on PostgreSQL a listener on the
    /// outbox's channel (a trigger notifies at every insert, migration 0020); `None` on
    /// SQLite, where one process has its own kicks.
    pub async fn listen_outbox(&self) -> Result<Option<OutboxListener>> {
        let Some(pool) = self.pool().as_postgres() else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(OUTBOX_CHANNEL).await?;
        Ok(Some(OutboxListener(listener)))
    }
}

/// The channel the outbox trigger notifies (migration 0020).
const OUTBOX_CHANNEL: &str = "klachtpost_outbox";

/// See [`Store::listen_outbox`].
pub struct OutboxListener(sqlx::postgres::PgListener);

impl OutboxListener {
    /// Wait for the next insert into the outbox (by any instance).
    pub async fn next(&mut self) -> Result<()> {
        self.0.recv().await?;
        Ok(())
    }
}

/// `$first, $first+1, …`: `n` numbered placeholders for an `IN (…)` list.
fn id_list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
