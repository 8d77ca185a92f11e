//! Intake in batches: commits that do not wait for the disk, made durable together.
//!
//! A batch of mails is one intake transaction (each mail behind a savepoint, so a mail that
//! fails is rolled back alone and goes to quarantine, and the next mail's reads see the
//! mails before it: `daemon::batch`); on [`Store::deferred`]'s connections its commit (and
//! any other) returns once it is in the database's log,
//! without `fsync` (SQLite `synchronous = NORMAL`, PostgreSQL `synchronous_commit = off`).
//! [`Store::batch_durable`] then makes the whole batch durable with one synchronous
//! commit: the log is synced up to there, with every commit before it (on PostgreSQL a
//! synchronous commit flushes the WAL up to its own record, asynchronous commits before it
//! included). Only after that may the batch's mails leave the mailbox, so a power loss
//! before it means a re-fetch, never a lost mail. A process that is killed loses nothing:
//! a commit is in the log (the kernel's page cache, or the PostgreSQL server) when it
//! returns.
//!
//! Whatever else commits synchronously meanwhile (the sender claiming a row) syncs the log
//! up to itself as well, so an acknowledgement is never sent for a case that a power loss
//! could still take back. The sender writes on a deferred handle too (marking rows sent,
//! their history), but its claims are always synchronous ([`Store::claim_due`]), even there.

use chrono::{DateTime, Utc};

use super::{Pool, Result, Sql, Store, Ts, Tx, dialect};

impl Store {
    /// A handle to the same database whose commits do not wait for the disk; for intake,
    /// which calls [`Store::batch_durable`] before a batch's mails leave the mailbox. An
    /// in-memory database is its own (it has no disk to wait for). Connects lazily.
    pub fn deferred(&self) -> Store {
        let Some(reopen) = &self.reopen else {
            return self.clone();
        };
        Store {
            pool: reopen.deferred(),
            instance: self.instance.clone(),
            journal: self.journal.clone(),
            reopen: None,
            durable: Some(self.pool.clone()),
        }
    }

    /// The pool whose commits wait for the disk: this handle's own, or (on a
    /// [`Store::deferred`] handle) the one it was made from.
    pub(super) fn synchronous_pool(&self) -> &Pool {
        self.durable.as_ref().unwrap_or(&self.pool)
    }

    /// Whether this handle's commits wait for the disk (not a [`Store::deferred`] one).
    pub(super) fn commits_are_synchronous(&self) -> bool {
        self.durable.is_none()
    }

    /// Make every commit so far durable, with one synchronous commit that records the
    /// batch (`mails` handled from `mailbox`); on a [`Store::deferred`] handle too.
    pub async fn batch_durable(
        &self,
        mailbox: &str,
        mails: usize,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let pool = self.synchronous_pool();
        let mut tx = match pool {
            Pool::Sqlite(..) => pool.begin().await?,
            Pool::Postgres(p) => {
                // A counter, not the history: no write lock; but synchronous whatever the
                // server's default, or the batch would not be durable when it leaves.
                let mut tx = p.begin().await?;
                dialect::pg_synchronous_commit(&mut tx).await?;
                Tx::postgres(tx)
            }
        };
        Sql::new(
            "INSERT INTO intake_batches (mailbox, batches, mails, last_at) VALUES ($1, 1, $2, $3)
             ON CONFLICT (mailbox) DO UPDATE SET batches = intake_batches.batches + 1,
                 mails = intake_batches.mails + excluded.mails, last_at = excluded.last_at",
        )
        .bind(mailbox)
        .bind(i64::try_from(mails).unwrap_or(i64::MAX))
        .bind(Ts(now))
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
