//! The SQL that differs between SQLite and PostgreSQL, all of it. Everything else is
//! written once: `$n` placeholders (sqlx's SQLite driver takes them too), `RETURNING`,
//! `ON CONFLICT … DO NOTHING / DO UPDATE`, `TRUE`/`FALSE`, times bound and read as
//! [`super::Ts`] (RFC 3339 text on SQLite, TIMESTAMPTZ on PostgreSQL).

use sqlx::PgConnection;

use super::{Kind, Pool, Result};

/// SQLite: a write transaction takes the database's write lock at `BEGIN`, so the
/// history chain's read-the-head-then-append cannot interleave with another writer (a
/// deferred transaction would fail with SQLITE_BUSY instead of waiting).
pub const SQLITE_BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// The advisory lock key of write transactions on PostgreSQL ("klachtpo" in ASCII).
const PG_WRITE_LOCK: i64 = 0x6b6c_6163_6874_706f;
/// The advisory lock key of migrations on PostgreSQL.
const PG_MIGRATE_LOCK: i64 = PG_WRITE_LOCK + 1;

/// PostgreSQL: what `BEGIN IMMEDIATE` gives SQLite, one writer at a time, as a
/// transaction-scoped advisory lock taken first (released at commit or rollback). Every
/// instance on the database takes the same lock, so the history chain stays one chain and
/// case numbers stay gap-free across instances.
pub async fn pg_write_lock(tx: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PG_WRITE_LOCK)
        .execute(tx)
        .await?;
    Ok(())
}

/// Whether an outbox row's claim belongs to an instance that is gone: claimed by none
/// (before claims were named), or by another instance than `$me` (the caller) that holds
/// no live `instance:` lease at `$now` (the placeholders are given). Such a claim is taken
/// again at once, not only after [`super::CLAIM_LEASE`].
///
/// Only a claim made at least [`super::lease::PRESENCE`] before `$now` (`$presence_ago`)
/// can be a gone instance's: the claim renewed its holder's presence that long. Said
/// outright because on PostgreSQL a claim that another instance has just committed is
/// checked again, `FOR UPDATE`, against the newly claimed row but with the lease subquery
/// of the statement's older snapshot, where the holder's new presence is not there yet:
/// two instances starting together handed their first rows out twice.
macro_rules! claim_holder_gone {
    ($now:literal, $me:literal, $presence_ago:literal) => {
        concat!(
            "(claimed_by IS NULL OR (claimed_by <> ",
            $me,
            " AND claimed_at <= ",
            $presence_ago,
            " AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.name = 'instance:' || outbox.claimed_by AND l.expires_at > ",
            $now,
            ")))"
        )
    };
}
pub(crate) use claim_holder_gone;

/// PostgreSQL: this transaction's commit waits until its WAL (and every commit's before
/// it) is flushed, whatever the server's or the session's `synchronous_commit`: what
/// SQLite's `synchronous = FULL` connections give [`super::Store::batch_durable`].
pub async fn pg_synchronous_commit(tx: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SET LOCAL synchronous_commit = on")
        .execute(tx)
        .await?;
    Ok(())
}

/// PostgreSQL: this transaction's commit returns once the server has it, without waiting
/// for its WAL to reach the disk (the server's WAL writer flushes it within moments, or
/// the next synchronous commit does): for a record that, like SQLite's confirmation
/// journal in the page cache, must survive klachtpost being killed but may be lost with
/// the server or the machine ([`super::Store::confirm_sent`]: then a message is sent
/// again, never lost).
pub async fn pg_asynchronous_commit(tx: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(tx)
        .await?;
    Ok(())
}

/// The outbox rows due for sending (`$1` now, `$2` the oldest claim still held, `$3` how
/// many, `$4` this instance). SQLite's write transaction already keeps everyone else out;
/// PostgreSQL locks the rows it picks and skips those another claim holds, so claims run
/// side by side and never hand one row out twice. A row another instance claimed is taken
/// again once that claim is older than the lease or the instance is gone.
pub fn claim_due(kind: Kind) -> &'static str {
    match kind {
        Kind::Sqlite => concat!(
            "SELECT id FROM outbox
             WHERE (status = 'queued' AND next_attempt_at <= $1)
                OR (status = 'sending' AND confirmed_at IS NULL AND (claimed_at <= $2 OR ",
            claim_holder_gone!("$1", "$4", "$5"),
            "))
             ORDER BY next_attempt_at, id LIMIT $3"
        ),
        Kind::Postgres => concat!(
            "SELECT id FROM outbox
             WHERE (status = 'queued' AND next_attempt_at <= $1)
                OR (status = 'sending' AND confirmed_at IS NULL AND (claimed_at <= $2 OR ",
            claim_holder_gone!("$1", "$4", "$5"),
            "))
             ORDER BY next_attempt_at, id LIMIT $3
             FOR UPDATE SKIP LOCKED"
        ),
    }
}

/// Whether a raw mail of `len` bytes is written into its row in pieces
/// ([`super::blob::insert_raw`], SQLite's incremental blob I/O) instead of bound: on SQLite
/// from [`super::STREAM_RAW_BYTES`] on; never on PostgreSQL, which binds the bytes.
pub fn streams_raw(kind: Kind, len: usize) -> bool {
    kind == Kind::Sqlite && len >= super::STREAM_RAW_BYTES
}

/// Whether intake takes a whole batch of mails in one transaction (each mail behind a
/// savepoint) or each mail in a transaction of its own. SQLite: the batch (a commit there
/// writes every page it touched to the log again: one per mail wrote ~50 pages, 200 KiB,
/// for a 5 KB mail). PostgreSQL: each mail. Its commits are cheap with
/// `synchronous_commit = off`, and a batch would hold the history's write lock for the
/// whole batch, so the sender's marking rows sent waited for it: a 2,000-mail backlog came
/// in sooner (16.3 s against 20.6 s) but was sent later (28.1 s against 21.6 s in all,
/// `scripts/bench-backlog --database postgres --cpus all`).
pub fn intake_batch_is_one_transaction(kind: Kind) -> bool {
    kind == Kind::Sqlite
}

/// Apply the migrations of the store's database under a lock, so any number of processes
/// may start at once on a new or an older database: the first applies what is missing,
/// the others wait for it and then find everything applied. SQLite: inside a write
/// transaction (sqlx takes no lock for SQLite; without one two processes both saw an
/// empty database and both created its tables). PostgreSQL: under a session advisory lock
/// on one connection (sqlx's migrator takes its own as well). `run_direct` is `run` on one
/// connection; `run`'s generic `Acquire` would make `Store::open` a future that cannot be
/// spawned onto another task ("implementation of `Acquire` is not general enough").
pub async fn migrate(pool: &Pool) -> Result<()> {
    match pool {
        Pool::Sqlite(p, _) => {
            let mut tx = p.begin_with(SQLITE_BEGIN_WRITE).await?;
            sqlx::migrate!("./migrations/sqlite")
                .run_direct(None, &mut *tx, false)
                .await?;
            tx.commit().await?;
        }
        Pool::Postgres(p) => {
            let mut conn = p.acquire().await?;
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(PG_MIGRATE_LOCK)
                .execute(&mut *conn)
                .await?;
            let result = sqlx::migrate!("./migrations/postgres")
                .run_direct(None, &mut *conn, false)
                .await;
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(PG_MIGRATE_LOCK)
                .execute(&mut *conn)
                .await?;
            result?;
        }
    }
    Ok(())
}

/// Give the space of deleted rows back. SQLite: an incremental vacuum where the file is
/// in incremental auto-vacuum mode (every file klachtpost creates), else a full VACUUM
/// that switches it to that mode. PostgreSQL: nothing; its autovacuum reuses the space
/// (and a full VACUUM would lock the tables other instances work on).
pub async fn reclaim(pool: &Pool) -> Result<()> {
    let Pool::Sqlite(pool, _) = pool else {
        return Ok(());
    };
    let mode: i64 =
        sqlx::Row::try_get(&sqlx::query("PRAGMA auto_vacuum").fetch_one(pool).await?, 0)?;
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
