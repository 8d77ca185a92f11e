//! Knowing a mail seen before: by where it sat (`source_key`, exact and cheap) and by what
//! it is (`identity`, see [`crate::intake::identity`]); and the small record kept of each
//! duplicate (no second raw copy).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Result, Sql, Store, StoreRow, TimeText, Ts, Tx, on};

/// How a mail was recognised as seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The same mailbox position (a re-fetch after a crash between commit and move).
    SourceKey,
    /// The same mail elsewhere (renumbered UIDs, a renamed folder, a second copy).
    Identity,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::SourceKey => "source_key",
            MatchedBy::Identity => "identity",
        }
    }
}

/// The stored original of a mail seen again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub matched_by: MatchedBy,
    /// The original's `messages` row, when it was taken in.
    pub message_row: Option<i64>,
    /// The original's `quarantine` row, when it is (still) in quarantine.
    pub quarantine_row: Option<i64>,
}

impl Seen {
    /// Whether the original sits in quarantine (then a copy follows it there).
    pub fn in_quarantine(&self) -> bool {
        self.message_row.is_none() && self.quarantine_row.is_some()
    }
}

/// Whether a mail was seen before: first by its mailbox position, then by its identity.
/// `except_quarantine` leaves one quarantine row out (the one being retried). One query
/// (intake asks for every mail): the four lookups, each an index search, ranked.
pub async fn seen(
    tx: &mut Tx,
    source_key: Option<&str>,
    identity: &str,
    except_quarantine: Option<i64>,
) -> Result<Option<Seen>> {
    let row = Sql::new(
        // Only what is still in quarantine counts by identity: a resolved item's mail is
        // in `messages`.
        "SELECT rank, message_row, quarantine_row FROM (
             SELECT 1 AS rank, id AS message_row, NULL AS quarantine_row
             FROM messages WHERE source_key = $1
             UNION ALL
             SELECT 2, message_row, id FROM (SELECT id, message_row FROM quarantine
                 WHERE source_key = $1 AND id <> $2 ORDER BY id LIMIT 1) AS q
             UNION ALL
             SELECT 3, id, NULL FROM (SELECT id FROM messages
                 WHERE identity = $3 ORDER BY id LIMIT 1) AS m
             UNION ALL
             SELECT 4, NULL, id FROM (SELECT id FROM quarantine
                 WHERE identity = $3 AND status = 'quarantined' AND id <> $2
                 ORDER BY id LIMIT 1) AS qi
         ) AS seen ORDER BY rank LIMIT 1",
    )
    .bind(source_key)
    .bind(except_quarantine.unwrap_or(-1))
    .bind(identity)
    .fetch_optional(tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let rank: i32 = row.col(0)?;
    Ok(Some(Seen {
        matched_by: if rank <= 2 {
            MatchedBy::SourceKey
        } else {
            MatchedBy::Identity
        },
        message_row: row.col(1)?,
        quarantine_row: row.col(2)?,
    }))
}

/// Record a duplicate: one row per mailbox position, counting how often it was seen.
pub async fn record_duplicate(
    tx: &mut Tx,
    source_key: Option<&str>,
    identity: &str,
    seen: &Seen,
    now: DateTime<Utc>,
) -> Result<()> {
    Sql::new(
        "INSERT INTO duplicates (source_key, identity, message_row, quarantine_row, matched_by, first_seen_at, last_seen_at, times)
         VALUES ($1, $2, $3, $4, $5, $6, $6, 1)
         ON CONFLICT (source_key) DO UPDATE SET last_seen_at = excluded.last_seen_at, times = duplicates.times + 1",
    )
    .bind(source_key)
    .bind(identity)
    .bind(seen.message_row)
    .bind(seen.quarantine_row)
    .bind(seen.matched_by.as_str())
    .bind(Ts(now))
    .execute(tx)
    .await?;
    Ok(())
}

impl Store {
    /// Every duplicate recorded, newest first.
    pub async fn duplicates(&self) -> Result<Vec<Duplicate>> {
        on!(self.pool(), |c| {
            let rows = sqlx::query(
                "SELECT id, source_key, identity, message_row, quarantine_row, matched_by, first_seen_at, last_seen_at, times
                 FROM duplicates ORDER BY id DESC",
            )
            .fetch_all(c)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Duplicate {
                        id: r.try_get(0)?,
                        source_key: r.try_get(1)?,
                        identity: r.try_get(2)?,
                        message_row: r.try_get(3)?,
                        quarantine_row: r.try_get(4)?,
                        matched_by: r.try_get(5)?,
                        first_seen_at: r.try_get::<TimeText, _>(6)?.0,
                        last_seen_at: r.try_get::<TimeText, _>(7)?.0,
                        times: r.try_get(8)?,
                    })
                })
                .collect()
        })
    }

    /// Give rows stored before identities existed (migration 0003) theirs, so a mail
    /// fetched again after the upgrade is still known. `identity` computes it from the raw
    /// bytes. Returns how many rows were filled; a no-op once done.
    pub async fn fill_identities(&self, identity: fn(&[u8]) -> String) -> Result<u64> {
        let mut filled = 0;
        loop {
            let rows: Vec<(i64, Vec<u8>)> = on!(self.pool(), |c| {
                sqlx::query_as(
                    "SELECT m.id, r.raw FROM messages m JOIN message_raw r ON r.message_id = m.id
                 WHERE m.identity IS NULL AND m.source_key IS NOT NULL ORDER BY m.id LIMIT 50",
                )
                .fetch_all(c)
                .await?
            });
            if rows.is_empty() {
                return Ok(filled);
            }
            let mut tx = self.begin().await?;
            for (id, raw) in &rows {
                Sql::new("UPDATE messages SET identity = $1 WHERE id = $2")
                    .bind(identity(raw))
                    .bind(*id)
                    .execute(&mut tx)
                    .await?;
                filled += 1;
            }
            tx.commit().await?;
        }
    }
}

/// One recorded duplicate.
#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    pub id: i64,
    pub source_key: Option<String>,
    pub identity: String,
    pub message_row: Option<i64>,
    pub quarantine_row: Option<i64>,
    pub matched_by: String,
    pub first_seen_at: String,
    pub last_seen_at: String,
    pub times: i64,
}
