//! The case history (`case_events`) as a hash chain: every entry carries the hash of the
//! entry before it, over the whole register, in id order.
//!
//! An entry's **content** (its detail text, the list of changed fields with old and new
//! values, the reason) is hashed into `content_hash`; the entry's `hash` covers its fixed
//! fields (id, case, time, actor, event), `content_hash` and `prev_hash`. Purging a case
//! empties the content of its entries but keeps `content_hash`, so the chain still
//! verifies after the personal data is gone. [`verify`] walks the chain and names the
//! first entry that does not fit: a changed, deleted or inserted row shows there. It then
//! replays each case's recorded changes: a `cases` row whose status, partner, form fields,
//! deadlines or hold differ from what its history last set was changed behind our back.
//!
//! The chain is not keyed: someone who can write the database file *and* recomputes every
//! later hash can rewrite history. `klachtpost audit verify` prints the head hash so an
//! operator can note it elsewhere and compare.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Pool, Result, Sql, StoreRow, TimeText, Ts, Tx, on, ts};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One changed field of a case: its stored name and the value before and after, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub case_id: i64,
    pub at: DateTime<Utc>,
    /// Who made the change: a person's name, or `klachtpost` for what the daemon does.
    pub actor: &'a str,
    /// What happened, as an event name (`case.opened`, `case.status`, …).
    pub event: &'a str,
    /// A short description for people.
    pub detail: &'a str,
    pub changes: &'a [Change],
    /// Why, when the person said so.
    pub reason: Option<&'a str>,
}

/// A stored entry, as read back.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub event: String,
    pub detail: String,
    pub changes: Vec<Change>,
    pub reason: Option<String>,
    pub content_purged: bool,
    pub hash: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Length-prefixed fields, so no two different entries hash the same input.
fn feed(h: &mut Sha256, field: Option<&str>) {
    match field {
        Some(s) => {
            h.update(b"s");
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
        None => h.update(b"n"),
    }
}

/// The hash of an entry's content.
pub fn content_hash(detail: &str, changes_json: &str, reason: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(b"klachtpost-history-content-v1");
    feed(&mut h, Some(detail));
    feed(&mut h, Some(changes_json));
    feed(&mut h, reason);
    hex(&h.finalize())
}

/// The hash of an entry.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    id: i64,
    case_id: i64,
    at: &str,
    actor: &str,
    event: &str,
    content_hash: &str,
    prev_hash: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(b"klachtpost-history-entry-v1");
    feed(&mut h, Some(&id.to_string()));
    feed(&mut h, Some(&case_id.to_string()));
    feed(&mut h, Some(at));
    feed(&mut h, Some(actor));
    feed(&mut h, Some(event));
    feed(&mut h, Some(content_hash));
    feed(&mut h, Some(prev_hash));
    hex(&h.finalize())
}

/// The chain's last entry: its id (0 for none) and hash ([`GENESIS`] for none). Read only
/// while the transaction holds no unwritten entry (its first append, or the first after a
/// savepoint rolled back to an unknown head), so the table is the whole chain.
async fn head(tx: &mut Tx) -> Result<(i64, String)> {
    debug_assert!(tx.history.unwritten.is_empty());
    let head = Sql::new("SELECT id, hash FROM case_events ORDER BY id DESC LIMIT 1")
        .fetch_optional(tx)
        .await?;
    Ok(match head {
        Some(row) => (
            row.col(0)?,
            row.col::<Option<String>>(1)?
                .unwrap_or_else(|| GENESIS.to_string()),
        ),
        None => (0, GENESIS.to_string()),
    })
}

/// The history as one transaction sees it: the chain's head as the transaction left it,
/// and the entries it appended that are not written yet.
///
/// An entry written by an INSERT of its own cost a complaint four statements at intake and
/// two more when its mail was sent (each, through sqlx, a hand-off to SQLite's connection
/// thread and back, before a transaction's statements ran on the calling thread,
/// [`super::direct`]). So [`append`] only computes the entry (its id and hashes follow from
/// the head) and keeps it here, and [`write`] writes what is kept in multi-row INSERTs
/// ([`ROWS_PER_INSERT`] entries each: a complaint's in one). The transaction ([`Tx`])
/// calls [`write`] wherever the entries must be in the
/// table: in [`Tx::commit`] and [`Tx::release`] (the write is part of both, so nothing is
/// committed or kept without its entries) and in [`Tx::savepoint`] (so what
/// is unwritten at a rollback to the savepoint is the piece's own, and is dropped with it,
/// [`Pending::back_to_mark`]). Nothing else reads `case_events` in a transaction: only this
/// module names the table, and its readers on a transaction ([`purge_content`]) write first.
/// A transaction dropped or rolled back drops its unwritten entries with its other work.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// The chain's last entry (id, hash), unwritten ones included: read by the first append
    /// (under the write lock), then kept up to date, so an entry needs no read.
    head: Option<(i64, String)>,
    /// Appended, not yet written, in id order.
    unwritten: Vec<Unwritten>,
    /// The head at [`Tx::savepoint`], put back by a rollback to it.
    saved_head: Option<Option<(i64, String)>>,
}

/// An appended entry as it will be stored.
#[derive(Debug)]
struct Unwritten {
    id: i64,
    case_id: i64,
    at: DateTime<Utc>,
    event: String,
    detail: String,
    actor: String,
    changes: String,
    reason: Option<String>,
    content_hash: String,
    prev_hash: String,
    hash: String,
}

impl Pending {
    /// A savepoint was set, with nothing unwritten before it ([`write`] first).
    pub(super) fn mark(&mut self) {
        debug_assert!(self.unwritten.is_empty());
        self.saved_head = Some(self.head.clone());
    }

    /// The savepoint was released: its entries are written and stay.
    pub(super) fn unmark(&mut self) {
        self.saved_head = None;
    }

    /// The transaction was rolled back to the savepoint: the piece's entries are gone,
    /// those written and those not, and the chain ends where it did at the savepoint.
    pub(super) fn back_to_mark(&mut self) {
        self.unwritten.clear();
        if let Some(head) = self.saved_head.take() {
            self.head = head;
        }
    }
}

/// The columns of an entry's row, in the order [`write`] binds them.
const COLUMNS: usize = 11;

/// Entries per INSERT, at most. Few, because SQLite's cost of a statement's parameters
/// grows with their square: each `$n` is looked up by name among the statement's
/// parameters when it is prepared (and, through sqlx, again for every value bound). A
/// fold's 200 entries as one INSERT of 2,200 parameters cost more CPU than the 199
/// statements it saved; as INSERTs of 16 (176 parameters) they cost 13 statements and
/// little besides. A transaction keeps each size it used prepared: 16 statements, no more.
const ROWS_PER_INSERT: usize = 16;

/// `INSERT INTO case_events … VALUES (…), (…)` for `rows` entries.
fn insert_sql(rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::from(
        "INSERT INTO case_events (id, case_id, at, event, detail, actor, changes, reason, content_hash, prev_hash, hash) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 1..=COLUMNS {
            if column > 1 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", row * COLUMNS + column);
        }
        sql.push(')');
    }
    sql
}

/// Write the transaction's unwritten entries (see [`Pending`]); nothing when there are
/// none. Should it fail they stay unwritten: a commit tries them again, and fails on the
/// id of any entry the failed write did insert (an earlier INSERT of a long list), so a
/// chain with a gap or a fork is never committed. (Called by [`Tx`]; on an error the
/// caller rolls back, to the savepoint or the whole transaction.)
pub(super) async fn write(tx: &mut Tx) -> sqlx::Result<()> {
    if tx.history.unwritten.is_empty() {
        return Ok(());
    }
    let entries = std::mem::take(&mut tx.history.unwritten);
    let written = write_rows(tx, &entries).await;
    if written.is_err() {
        tx.history.unwritten = entries;
    }
    written
}

async fn write_rows(tx: &mut Tx, entries: &[Unwritten]) -> sqlx::Result<()> {
    for chunk in entries.chunks(ROWS_PER_INSERT) {
        // The SQL is the fixed column list and numbered placeholders; every value is bound.
        let sql = insert_sql(chunk.len());
        let mut q = Sql::new(&sql);
        for e in chunk {
            q = q
                .bind(e.id)
                .bind(e.case_id)
                .bind(Ts(e.at))
                .bind(&e.event)
                .bind(&e.detail)
                .bind(&e.actor)
                .bind(&e.changes)
                .bind(&e.reason)
                .bind(&e.content_hash)
                .bind(&e.prev_hash)
                .bind(&e.hash);
        }
        q.execute(tx).await?;
    }
    Ok(())
}

/// Append one entry to the chain, in the caller's transaction (which must be a write
/// transaction from its start, see [`super::Store::begin`], so no other writer can append
/// between reading the head and inserting). Returns the entry's id.
///
/// The entry's id is the head's plus one, given explicitly, so its hash is known before it
/// is written: the entry is kept in the transaction and written with the others it
/// appends, several to a statement ([`Pending`]); the transaction remembers the new head for the
/// next (a chain that someone else extended meanwhile fails the insert on the id instead
/// of forking). Every entry is written here, so ids stay dense on PostgreSQL too, whose
/// identity sequence they do not use.
pub async fn append(tx: &mut Tx, e: &NewEntry<'_>) -> Result<i64> {
    let changes = serde_json::to_string(e.changes).unwrap_or_else(|_| "[]".into());
    let content = content_hash(e.detail, &changes, e.reason);
    let (prev_id, prev) = match tx.history.head.take() {
        Some(head) => head,
        None => head(tx).await?,
    };
    let id = prev_id + 1;
    // The hash covers the time as the store shows it (whole seconds, [`ts`]).
    let hash = entry_hash(id, e.case_id, &ts(e.at), e.actor, e.event, &content, &prev);
    tx.history.head = Some((id, hash.clone()));
    tx.history.unwritten.push(Unwritten {
        id,
        case_id: e.case_id,
        at: e.at,
        event: e.event.to_string(),
        detail: e.detail.to_string(),
        actor: e.actor.to_string(),
        changes,
        reason: e.reason.map(str::to_string),
        content_hash: content,
        prev_hash: prev,
        hash,
    });
    Ok(id)
}

/// Seal the entries written before the chain existed (migration 0007 recorded up to which
/// id); run once at open, in id order, before anything is appended.
pub async fn seal_legacy(pool: &Pool) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let through: i64 = match Sql::new("SELECT legacy_through FROM history_legacy WHERE id = 1")
        .fetch_optional(&mut tx)
        .await?
    {
        Some(r) => r.col(0)?,
        None => return Ok(0),
    };
    if through == 0 {
        return Ok(0);
    }
    let rows = Sql::new(
        "SELECT id, case_id, at, event, detail, actor, changes, reason, hash FROM case_events
         WHERE id <= $1 ORDER BY id",
    )
    .bind(through)
    .fetch_all(&mut tx)
    .await?;
    let mut prev = GENESIS.to_string();
    let mut sealed = 0;
    for r in &rows {
        let id: i64 = r.col(0)?;
        if let Some(h) = r.col::<Option<String>>(8)? {
            prev = h;
            continue;
        }
        let case_id: i64 = r.col(1)?;
        let at = r.col::<TimeText>(2)?.0;
        let event: String = r.col(3)?;
        let detail: String = r.col(4)?;
        let actor: String = r.col(5)?;
        let changes: String = r.col(6)?;
        let reason: Option<String> = r.col(7)?;
        let content = content_hash(&detail, &changes, reason.as_deref());
        let hash = entry_hash(id, case_id, &at, &actor, &event, &content, &prev);
        Sql::new(
            "UPDATE case_events SET content_hash = $1, prev_hash = $2, hash = $3 WHERE id = $4",
        )
        .bind(&content)
        .bind(&prev)
        .bind(&hash)
        .bind(id)
        .execute(&mut tx)
        .await?;
        prev = hash;
        sealed += 1;
    }
    Sql::new("UPDATE history_legacy SET legacy_through = 0 WHERE id = 1")
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(sealed)
}

/// Empty the content of a case's entries (the purge); hashes stay. The transaction's
/// unwritten entries are written first, so the case's among them are emptied too.
pub async fn purge_content(tx: &mut Tx, case_id: i64) -> Result<u64> {
    write(tx).await?;
    Ok(Sql::new(
        "UPDATE case_events SET detail = '', changes = '[]', reason = NULL, content_purged = TRUE
         WHERE case_id = $1 AND NOT content_purged",
    )
    .bind(case_id)
    .execute(tx)
    .await?)
}

/// A case's entries, oldest first.
pub async fn for_case(pool: &Pool, case_id: i64) -> Result<Vec<Entry>> {
    on!(pool, |c| sqlx::query(
        "SELECT id, at, actor, event, detail, changes, reason, content_purged, hash
         FROM case_events WHERE case_id = $1 ORDER BY id",
    )
    .bind(case_id)
    .fetch_all(c)
    .await?
    .iter()
    .map(|r| {
        Ok(Entry {
            id: r.try_get(0)?,
            at: r.try_get::<TimeText, _>(1)?.0,
            actor: r.try_get(2)?,
            event: r.try_get(3)?,
            detail: r.try_get(4)?,
            changes: serde_json::from_str(&r.try_get::<String, _>(5)?).unwrap_or_default(),
            reason: r.try_get(6)?,
            content_purged: r.try_get(7)?,
            hash: r.try_get(8)?,
        })
    })
    .collect())
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub entries: u64,
    /// The last entry's hash (note it elsewhere to detect a rewritten tail).
    pub head: String,
    /// The first entry that does not fit, and why.
    pub broken: Option<Broken>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Broken {
    pub entry: i64,
    pub case: Option<String>,
    pub problem: String,
}

/// Walk the whole chain in id order.
pub async fn verify(pool: &Pool) -> Result<Verification> {
    // (entry, case, changes) of each entry, for the second pass.
    let mut recorded: Vec<(i64, i64, String)> = Vec::new();
    let walked = on!(pool, |c| {
        let rows = sqlx::query(
            "SELECT e.id, e.case_id, e.at, e.actor, e.event, e.detail, e.changes, e.reason,
                    e.content_purged, e.content_hash, e.prev_hash, e.hash, c.reference, c.purged_at
             FROM case_events e LEFT JOIN cases c ON c.id = e.case_id ORDER BY e.id",
        )
        .fetch_all(c)
        .await?;
        let mut prev = GENESIS.to_string();
        let mut n = 0u64;
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            let case_id: i64 = r.try_get(1)?;
            let at = r.try_get::<TimeText, _>(2)?.0;
            let actor: String = r.try_get(3)?;
            let event: String = r.try_get(4)?;
            let detail: String = r.try_get(5)?;
            let changes: String = r.try_get(6)?;
            let reason: Option<String> = r.try_get(7)?;
            let purged: bool = r.try_get(8)?;
            let content: Option<String> = r.try_get(9)?;
            let prev_hash: Option<String> = r.try_get(10)?;
            let hash: Option<String> = r.try_get(11)?;
            let reference: Option<String> = r.try_get(12)?;
            let case_purged: Option<Ts> = r.try_get(13)?;
            let fail = |problem: String| Verification {
                entries: n,
                head: prev.clone(),
                broken: Some(Broken {
                    entry: id,
                    case: reference.clone(),
                    problem,
                }),
            };
            let (Some(content), Some(prev_hash), Some(hash)) = (content, prev_hash, hash) else {
                return Ok(fail(
                    "it has no hash: it was not written by klachtpost".into(),
                ));
            };
            if prev_hash != prev {
                return Ok(fail(
                    "its previous-entry hash does not match the entry before it: an entry was deleted, inserted or reordered".into(),
                ));
            }
            if entry_hash(id, case_id, &at, &actor, &event, &content, &prev_hash) != hash {
                return Ok(fail(
                    "its fields do not match its hash: it was changed".into(),
                ));
            }
            if purged {
                if case_purged.is_none() {
                    return Ok(fail(
                        "its content is marked purged but its case was not purged".into(),
                    ));
                }
            } else if content_hash(&detail, &changes, reason.as_deref()) != content {
                return Ok(fail(
                    "its content (detail, changes or reason) does not match its content hash: it was changed".into(),
                ));
            }
            recorded.push((id, case_id, changes));
            prev = hash;
            n += 1;
        }
        (n, prev)
    });
    let (entries, head) = walked;
    let broken = state_matches_history(pool, &recorded).await?;
    Ok(Verification {
        entries,
        head,
        broken,
    })
}

/// How the history's changes hold a column's value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    Text,
    /// A time, as [`ts`] text.
    Time,
}

/// The case columns the history records, as the text its changes hold (yes/no for the
/// yes/no columns, [`ts`] text for times). A case's current value of each must be the last
/// value its history gave it: a change made behind klachtpost's back shows as a
/// difference. The yes/no expressions read SQLite's 0/1 and PostgreSQL's BOOLEAN alike.
const STATE: &[(&str, &str, Held)] = &[
    ("status", "status", Held::Text),
    ("partner_email", "partner_email", Held::Text),
    ("partner_name", "partner_name", Held::Text),
    ("cause", "cause", Held::Text),
    (
        "structural_fault",
        "CASE WHEN structural_fault THEN 'yes' WHEN NOT structural_fault THEN 'no' END",
        Held::Text,
    ),
    ("improvement_measure", "improvement_measure", Held::Text),
    ("handling", "handling", Held::Text),
    ("result", "result", Held::Text),
    ("evaluation", "evaluation", Held::Text),
    (
        "client_satisfied",
        "CASE WHEN client_satisfied THEN 'yes' WHEN NOT client_satisfied THEN 'no' END",
        Held::Text,
    ),
    ("resolution_due_at", "resolution_due_at", Held::Time),
    (
        "original_resolution_due_at",
        "original_resolution_due_at",
        Held::Time,
    ),
    ("extension_reason", "extension_reason", Held::Text),
    ("deadline_explanation", "deadline_explanation", Held::Text),
    ("closed_at", "closed_at", Held::Time),
    ("hold_reason", "hold_reason", Held::Text),
    ("acknowledged_at", "acknowledged_at", Held::Time),
    ("response_met_at", "response_met_at", Held::Time),
    ("flags", "flags", Held::Text),
    ("purged_at", "purged_at", Held::Time),
];

async fn state_matches_history(
    pool: &Pool,
    recorded: &[(i64, i64, String)],
) -> Result<Option<Broken>> {
    use std::collections::BTreeMap;
    // case id → field → (value, entry that set it)
    let mut expected: BTreeMap<i64, BTreeMap<String, (Option<String>, i64)>> = BTreeMap::new();
    for (id, case_id, changes) in recorded {
        let changes: Vec<Change> = serde_json::from_str(changes).unwrap_or_default();
        for c in changes {
            if STATE.iter().any(|(f, _, _)| *f == c.field) {
                expected
                    .entry(*case_id)
                    .or_default()
                    .insert(c.field, (c.new, *id));
            }
        }
    }
    let columns: Vec<&str> = STATE.iter().map(|(_, expr, _)| *expr).collect();
    let sql = format!(
        "SELECT reference, {} FROM cases WHERE id = $1",
        columns.join(", ")
    );
    for (case_id, fields) in expected {
        // Safe: the expressions are the constants above; the id is bound.
        let row: Option<(String, Vec<Option<String>>)> = on!(pool, |c| {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(case_id)
                .fetch_optional(c)
                .await?
            {
                Some(row) => {
                    let mut values = Vec::with_capacity(STATE.len());
                    for (i, (_, _, held)) in STATE.iter().enumerate() {
                        values.push(match held {
                            Held::Text => row.try_get::<Option<String>, _>(i + 1)?,
                            Held::Time => TimeText::opt(row.try_get(i + 1)?),
                        });
                    }
                    Some((row.try_get(0)?, values))
                }
                None => None,
            }
        });
        let Some((reference, values)) = row else {
            let (_, entry) = fields.values().next().cloned().unwrap_or((None, 0));
            return Ok(Some(Broken {
                entry,
                case: None,
                problem: format!("its case (id {case_id}) is missing: it was deleted"),
            }));
        };
        for ((field, _, _), have) in STATE.iter().zip(values) {
            let Some((want, entry)) = fields.get(*field) else {
                continue;
            };
            if &have != want {
                return Ok(Some(Broken {
                    entry: *entry,
                    case: Some(reference),
                    problem: format!(
                        "the case's {field} is not what its history last set it to: the case was changed behind klachtpost's back"
                    ),
                }));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_separate_their_fields() {
        // "ab" + "c" and "a" + "bc" must not collide.
        assert_ne!(content_hash("ab", "c", None), content_hash("a", "bc", None));
        assert_ne!(
            content_hash("a", "b", None),
            content_hash("a", "b", Some(""))
        );
        let h = entry_hash(1, 2, "t", "x", "e", "c", GENESIS);
        assert_eq!(h.len(), 64);
        assert_ne!(h, entry_hash(1, 2, "t", "x", "e", "c", &h));
    }

    #[test]
    fn hex_is_two_lowercase_digits_a_byte_as_the_chain_was_written() {
        let every: Vec<u8> = (0..=255).collect();
        let written: String = every.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&every), written);
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn one_insert_holds_many_entries_numbered_in_order() {
        assert_eq!(
            insert_sql(1),
            "INSERT INTO case_events (id, case_id, at, event, detail, actor, changes, reason, content_hash, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        assert!(insert_sql(3).ends_with(
            "($12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22), ($23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33)"
        ));
    }

    /// A transaction keeps its entries unwritten until [`write`] ([`Pending`]): a statement
    /// on `case_events` elsewhere would not see them. Only this module names the table
    /// (and `copy.rs`, which copies whole tables between databases, outside any
    /// transaction that appends).
    #[test]
    fn only_the_history_names_its_table() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("store/history.rs")
                    && !path.ends_with("store/copy.rs")
                    && std::fs::read_to_string(&path)
                        .unwrap()
                        .contains("case_events")
                {
                    found.push(path.display().to_string());
                }
            }
        }
        let mut found = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        assert!(found.is_empty(), "case_events named in {found:?}");
    }
}
