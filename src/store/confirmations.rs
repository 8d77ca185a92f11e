//! The confirmation journal: an outgoing server's 250, recorded outside the write lock.
//!
//! SQLite has one writer. Marking an outbox row `sent` in a transaction right after the
//! server's 250 queued behind intake's transactions, and a crash in that wait sent the
//! acknowledgement again at the next start (issue 8). So the 250 is first appended to a
//! small file next to the database, `<database>-sent`, one line `<outbox id> <time>` per
//! accepted message: one `write(2)` to an `O_APPEND` file, which no lock delays and which
//! survives the process being killed the moment it returns (it is in the kernel's page
//! cache).
//!
//! The sender folds the journal into the outbox rows (`outbox::fold_confirmations`) after
//! each batch of sends (at most 200, `outbox::SEND_BATCH`) in one transaction, and at
//! start-up before claimed rows are released. The daemon's sender writes on a handle whose
//! commits do not wait for the disk ([`Store::deferred`]): the journal is emptied only once
//! a synchronous commit has made the fold durable, its next claim ([`Store::folded`]; the
//! fold's own sync and the emptying's were a third of a backlog's syncs, issue 8). The
//! journal is not synced line by line: a power loss (not a crash) forgets at most the
//! confirmations since the last synchronous commit, and those rows are sent again, as
//! before this journal: never lost. An in-memory database (tests, the demo) has no
//! journal: its rows are marked sent directly.
//!
//! PostgreSQL has no journal file (several instances share one database but no file
//! system): the 250 sets the row's `confirmed_at` (migration 0014) in a transaction of its
//! own, committed without waiting for the disk (as the journal's line is not synced) and
//! without the history's advisory lock that intake's transactions hold, so it waits for
//! none of them (it used to mark the row sent and acknowledge the case at once, behind that
//! lock: a kill in the wait sent the acknowledgement again). [`Store::read_confirmations`]
//! reads the confirmed rows not yet marked, the same fold marks them, and a confirmed row is
//! never claimed or released again.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{Pool, Result, Sql, Store, StoreError, StoreRow, Ts, Tx, parse_ts, ts};
use chrono::{DateTime, Utc};

/// The open journal of one database.
#[derive(Debug)]
pub(super) struct Journal {
    path: PathBuf,
    file: Mutex<Option<File>>,
    /// How long the journal was when a fold that did not wait for the disk read it: it
    /// is emptied once a synchronous commit has made that fold durable.
    folded: Mutex<Option<u64>>,
}

/// What [`Store::read_confirmations`] found: the confirmed rows, and how long the file was
/// (it is emptied only if nothing was appended since).
#[derive(Debug, Default)]
pub struct Confirmations {
    pub rows: Vec<(i64, DateTime<Utc>)>,
    len: u64,
}

impl Journal {
    pub(super) fn beside(database: &Path) -> Arc<Journal> {
        let mut name = database.as_os_str().to_owned();
        name.push("-sent");
        Arc::new(Journal {
            path: PathBuf::from(name),
            file: Mutex::new(None),
            folded: Mutex::new(None),
        })
    }

    fn error(&self, source: std::io::Error) -> StoreError {
        StoreError::Journal {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Run `f` on the open file, opening (creating, owner-only) it first if needed.
    fn with_file<T>(&self, f: impl FnOnce(&mut File) -> std::io::Result<T>) -> Result<T> {
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let mut file = match guard.take() {
            Some(file) => file,
            None => {
                let mut o = std::fs::OpenOptions::new();
                o.read(true).append(true).create(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
                o.open(&self.path).map_err(|e| self.error(e))?
            }
        };
        let result = f(&mut file).map_err(|e| self.error(e));
        *guard = Some(file);
        result
    }
}

impl Store {
    /// The server accepted outbox row `id` at `at`: record it where no write lock delays it.
    /// SQLite: append it to the journal, in one `write(2)`. PostgreSQL: set the row's
    /// `confirmed_at` (migration 0014) in a transaction of its own without the history's
    /// advisory lock, so it does not wait for intake's transactions. In memory nothing is
    /// written and the caller marks the row directly. Returns whether it was recorded.
    pub async fn confirm_sent(&self, id: i64, at: DateTime<Utc>) -> Result<bool> {
        if let Some(journal) = &self.journal {
            let line = format!("{id} {}\n", ts(at));
            journal.with_file(|f| f.write_all(line.as_bytes()))?;
            return Ok(true);
        }
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(false);
        };
        // Not waiting for the disk, as the journal's line is not synced: a confirmation lost
        // with the server or the power means the message is sent again, never lost. Waiting
        // cost a WAL flush per message sent (4,000 for a 2,000-mail backlog).
        let mut pg = pool.begin().await?;
        super::dialect::pg_asynchronous_commit(&mut pg).await?;
        let mut tx = Tx::postgres(pg);
        Sql::new("UPDATE outbox SET confirmed_at = $1 WHERE id = $2 AND status = 'sending'")
            .bind(Ts(at))
            .bind(id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every confirmation in the journal (a torn last line, from a crash mid-write, is
    /// ignored: its row is sent again).
    /// On PostgreSQL: the rows confirmed but not yet marked sent.
    pub async fn read_confirmations(&self) -> Result<Confirmations> {
        let Some(journal) = &self.journal else {
            let Pool::Postgres(pool) = &self.pool else {
                return Ok(Confirmations::default());
            };
            let rows: Vec<(i64, Ts)> = sqlx::query_as(
                "SELECT id, confirmed_at FROM outbox
                 WHERE confirmed_at IS NOT NULL AND status = 'sending' ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            return Ok(Confirmations {
                rows: rows.into_iter().map(|(id, at)| (id, at.0)).collect(),
                len: 0,
            });
        };
        if !journal.path.exists() {
            return Ok(Confirmations::default());
        }
        // What a fold not yet made durable read is folded already (committed): read on
        // from there.
        let folded = journal
            .folded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(0);
        let (from, text) = journal.with_file(|f| {
            let from = if f.metadata()?.len() >= folded {
                folded
            } else {
                0
            };
            f.seek(SeekFrom::Start(from))?;
            let mut s = String::new();
            f.read_to_string(&mut s)?;
            Ok((from, s))
        })?;
        let mut rows = Vec::new();
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let mut parts = line.trim_end().splitn(2, ' ');
            let (Some(id), Some(at)) = (parts.next(), parts.next()) else {
                continue;
            };
            if let (Ok(id), Ok(at)) = (id.parse::<i64>(), parse_ts(at)) {
                rows.push((id, at));
            }
        }
        Ok(Confirmations {
            rows,
            len: from + text.len() as u64,
        })
    }

    /// What `read` found is folded into the database (committed). On a handle whose
    /// commits wait for the disk the journal is emptied now; on a [`Store::deferred`] one
    /// (the sender's) once a synchronous commit has made the fold durable: the sender's next
    /// claim ([`Store::claim_due`]). Until then a power loss could take the fold back, and
    /// the journal still holds what it folded. (PostgreSQL: nothing to empty; a folded row
    /// is `sent` and no longer read.)
    pub fn folded(&self, read: &Confirmations) -> Result<()> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        if self.commits_are_synchronous() {
            return journal.empty_if_unchanged(read.len);
        }
        *journal.folded.lock().unwrap_or_else(|e| e.into_inner()) = Some(read.len);
        Ok(())
    }

    /// A fold not yet made durable: the journal's length it read. Taken before a
    /// synchronous commit, which then covers that fold.
    pub(super) fn folded_not_synced(&self) -> Option<u64> {
        let journal = self.journal.as_ref()?;
        *journal.folded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A synchronous commit made the fold `folded` (from [`Store::folded_not_synced`]
    /// before it) durable: empty the journal it read.
    pub(super) fn clear_folded(&self, folded: Option<u64>) -> Result<()> {
        let (Some(journal), Some(len)) = (&self.journal, folded) else {
            return Ok(());
        };
        journal.empty_if_unchanged(len)
    }
}

impl Journal {
    /// Empty the journal if it is still `len` long. Left as it is when something was
    /// appended since (a batch being sent, or another process sending from the same
    /// database): folding it again later changes nothing. Not synced: should the power
    /// take the emptying back, the lines are folded again, which changes nothing either.
    /// Emptied, it has no fold waiting for a sync any more: the next read starts at 0.
    fn empty_if_unchanged(&self, len: u64) -> Result<()> {
        self.with_file(|f| {
            if f.metadata()?.len() == len {
                f.set_len(0)?;
                *self.folded.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            Ok(())
        })
    }
}

/// Rows per UPDATE of [`outbox_confirm_sent`], at most: two parameters each. Not more,
/// because SQLite's cost of a statement's parameters grows with their square (see
/// `history::ROWS_PER_INSERT`).
const ROWS_PER_UPDATE: usize = 32;

/// Mark journaled rows sent (`(outbox id, when the server accepted it)`, as
/// [`Store::read_confirmations`] gives them), in the caller's transaction, each unless it is
/// marked already (folded before) or gone (purged). Returns the rows marked now, in the
/// order given, with their time, case and purpose; a row given twice (journaled again
/// before its first line was folded) counts with its first time, as when each line was
/// folded on its own.
///
/// One UPDATE for [`ROWS_PER_UPDATE`] rows, the times joined in from a `VALUES` list,
/// rather than one per row: every statement is a hand-off to SQLite's
/// connection thread (see `history::Pending`), and a fold marks up to a send batch's
/// rows. (`column1`, `column2`: the names both databases give the columns of `VALUES`.)
pub async fn outbox_confirm_sent(
    tx: &mut Tx,
    rows: &[(i64, DateTime<Utc>)],
) -> Result<Vec<(i64, DateTime<Utc>, Option<i64>, String)>> {
    let mut given = std::collections::HashSet::new();
    let rows: Vec<(i64, DateTime<Utc>)> = rows
        .iter()
        .filter(|(id, _)| given.insert(*id))
        .copied()
        .collect();
    let mut marked: std::collections::HashMap<i64, (Option<i64>, String)> =
        std::collections::HashMap::new();
    for chunk in rows.chunks(ROWS_PER_UPDATE) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = v.column2, last_error = NULL, claimed_at = NULL
             FROM (VALUES {}) AS v
             WHERE outbox.id = v.column1 AND outbox.status IN ('sending', 'queued')
             RETURNING outbox.id, outbox.case_id, outbox.purpose",
            values.join(", ")
        );
        // Placeholders only; the ids and times are bound.
        let mut q = Sql::new(&sql);
        for (id, at) in chunk {
            q = q.bind(*id).bind(Ts(*at));
        }
        for r in q.fetch_all(tx).await? {
            marked.insert(r.col(0)?, (r.col(1)?, r.col(2)?));
        }
    }
    Ok(rows
        .into_iter()
        .filter_map(|(id, at)| {
            marked
                .remove(&id)
                .map(|(case_id, purpose)| (id, at, case_id, purpose))
        })
        .collect())
}
