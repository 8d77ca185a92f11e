//! The partners' side's SQL: the once-only keys of what partners were told, the mails a
//! partner may answer with commands, and the reads the reminders, the acknowledgement
//! watchdog and the digest need. Case state is changed only by [`crate::case`].

use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use sqlx::Row;

use super::{Pool, Result, Sql, StoreRow, Ts, Tx, on};

/// Claim a key in the caller's transaction: true when it is new (so the thing it names
/// may be sent now), false when it was claimed before.
pub async fn claim(
    tx: &mut Tx,
    key: &str,
    kind: &str,
    case_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let claimed = Sql::new(
        "INSERT INTO partner_notices (key, kind, case_id, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(kind)
    .bind(case_id)
    .bind(Ts(now))
    .execute(tx)
    .await?;
    Ok(claimed == 1)
}

/// Whether a key was claimed.
pub async fn claimed(pool: &Pool, key: &str) -> Result<bool> {
    on!(pool, |c| {
        Ok(sqlx::query("SELECT 1 FROM partner_notices WHERE key = $1")
            .bind(key)
            .fetch_optional(c)
            .await?
            .is_some())
    })
}

/// When the last key of a kind was claimed (the last digest).
pub async fn last_of_kind(pool: &Pool, kind: &str) -> Result<Option<DateTime<Utc>>> {
    on!(pool, |c| {
        let row = sqlx::query("SELECT MAX(created_at) FROM partner_notices WHERE kind = $1")
            .bind(kind)
            .fetch_one(c)
            .await?;
        Ok(row.try_get::<Option<Ts>, _>(0)?.map(|t| t.0))
    })
}

/// Remember a mail sent to a partner, so a reply to it is recognised.
pub async fn record_mail(
    tx: &mut Tx,
    message_id: &str,
    purpose: &str,
    cases: &[String],
    recipient: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    Sql::new(
        "INSERT INTO partner_mail (message_id, purpose, cases, recipient, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(message_id)
    .bind(purpose)
    .bind(cases.join("\n"))
    .bind(recipient)
    .bind(Ts(now))
    .execute(tx)
    .await?;
    Ok(())
}

/// A mail of ours a reply answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub message_id: String,
    pub purpose: String,
    /// The cases it is about.
    pub cases: Vec<String>,
}

/// The first of these Message-IDs (In-Reply-To first, then References newest first) that
/// is a mail klachtpost sent to a partner or staff member: a partner mail, or an internal
/// notice on a case (triage, send failures, staff confirmations).
pub async fn answered(tx: &mut Tx, ids: &[String]) -> Result<Option<Answered>> {
    for id in ids {
        if let Some(r) = Sql::new("SELECT purpose, cases FROM partner_mail WHERE message_id = $1")
            .bind(id)
            .fetch_optional(tx)
            .await?
        {
            return Ok(Some(Answered {
                message_id: id.clone(),
                purpose: r.col(0)?,
                cases: r
                    .col::<String>(1)?
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect(),
            }));
        }
        if let Some(r) = Sql::new(
            "SELECT c.reference FROM messages m JOIN cases c ON c.id = m.case_id
             WHERE m.message_id = $1 AND m.direction = 'outbound' AND m.kind = 'notice' LIMIT 1",
        )
        .bind(id)
        .fetch_optional(tx)
        .await?
        {
            return Ok(Some(Answered {
                message_id: id.clone(),
                purpose: "notice".into(),
                cases: vec![r.col(0)?],
            }));
        }
    }
    Ok(None)
}

/// Open cases per partner address and the partner of the newest case (for assignment),
/// in one query (intake asks once per batch, in the batch's transaction).
pub async fn load(tx: &mut Tx) -> Result<crate::partners::assign::Load> {
    let mut load = crate::partners::assign::Load::default();
    for r in Sql::new(
        "SELECT partner_email, COUNT(*), FALSE FROM cases
         WHERE status NOT IN ('closed', 'not_a_complaint') GROUP BY partner_email
         UNION ALL
         SELECT partner_email, 0, TRUE
         FROM (SELECT partner_email FROM cases ORDER BY id DESC LIMIT 1) AS newest",
    )
    .fetch_all(tx)
    .await?
    {
        if r.col::<bool>(2)? {
            load.last_assigned = Some(r.col(0)?);
        } else {
            load.open.insert(r.col(0)?, r.col(1)?);
        }
    }
    Ok(load)
}

/// An open case as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct OpenCase {
    pub id: i64,
    pub reference: String,
    pub status: String,
    pub partner_name: String,
    pub partner_email: String,
    pub complainant_name: Option<String>,
    pub complainant_address: Option<String>,
    pub complainant_phone: Option<String>,
    pub received_at: DateTime<Utc>,
    pub ack_due_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub response_due_at: DateTime<Utc>,
    pub response_met_at: Option<DateTime<Utc>>,
    pub resolution_due_at: DateTime<Utc>,
    pub flags: String,
    /// An acknowledgement was queued for this case.
    pub ack_queued: bool,
    /// An acknowledgement was given up on (permanent error or attempts used up).
    pub ack_failed: bool,
    /// An acknowledgement was held back because the address bounced hard before
    /// (`outgoing.bounce_block`).
    pub ack_held_bounced: bool,
    /// The outgoing server's last answer (redacted) to a failed acknowledgement.
    pub ack_error: Option<String>,
}

impl OpenCase {
    /// The complainant as partners see them: name and address, or what is known (empty
    /// when nothing is: the templates say "unknown").
    pub fn complainant(&self) -> String {
        match (&self.complainant_name, &self.complainant_address) {
            (Some(n), Some(a)) => format!("{n} <{a}>"),
            (Some(n), None) => n.clone(),
            (None, Some(a)) => a.clone(),
            (None, None) => String::new(),
        }
    }
}

fn opt_ts(v: Option<Ts>) -> Result<Option<DateTime<Utc>>> {
    Ok(v.map(|t| t.0))
}

/// [`open_cases`]' query. Its four lookups per case in the outbox go by the index
/// `outbox_case` (migration 0013): without it each read the whole outbox.
const OPEN_CASES: &str = "SELECT c.id, c.reference, c.status, c.partner_name, c.partner_email, c.complainant_name,
                    c.complainant_address, c.complainant_phone, c.received_at, c.ack_due_at,
                    c.acknowledged_at, c.acknowledged_by, c.response_due_at, c.response_met_at,
                    c.resolution_due_at, c.flags,
                    EXISTS (SELECT 1 FROM outbox o WHERE o.case_id = c.id AND o.purpose = 'acknowledgement'),
                    EXISTS (SELECT 1 FROM outbox o WHERE o.case_id = c.id AND o.purpose = 'acknowledgement'
                            AND o.status = 'failed'),
                    EXISTS (SELECT 1 FROM outbox o WHERE o.case_id = c.id AND o.purpose = 'acknowledgement'
                            AND o.status = 'held' AND o.last_error LIKE 'bounced:%'),
                    (SELECT o.last_error FROM outbox o WHERE o.case_id = c.id AND o.purpose = 'acknowledgement'
                            AND o.status = 'failed' ORDER BY o.id DESC LIMIT 1)
             FROM cases c
             WHERE c.status NOT IN ('closed', 'not_a_complaint') AND c.purged_at IS NULL
             ORDER BY c.received_at, c.id";

/// Every open case (not closed, not purged), oldest first. Read row by row: a register
/// with many open cases is held once, as [`OpenCase`]s, not also as the driver's rows
/// (10,000 open cases: +40 MiB at the end of a backlog's `run --once`, issue 8).
pub async fn open_cases(pool: &Pool) -> Result<Vec<OpenCase>> {
    on!(pool, |c| {
        let mut rows = sqlx::query(OPEN_CASES).fetch(c);
        let mut cases = Vec::new();
        while let Some(r) = rows.try_next().await? {
            cases.push(open_case(&r)?);
        }
        Ok(cases)
    })
}

fn open_case(r: &impl StoreRow) -> Result<OpenCase> {
    Ok(OpenCase {
        id: r.col(0)?,
        reference: r.col(1)?,
        status: r.col(2)?,
        partner_name: r.col(3)?,
        partner_email: r.col(4)?,
        complainant_name: r.col(5)?,
        complainant_address: r.col(6)?,
        complainant_phone: r.col(7)?,
        received_at: r.col::<Ts>(8)?.0,
        ack_due_at: r.col::<Ts>(9)?.0,
        acknowledged_at: opt_ts(r.col(10)?)?,
        acknowledged_by: r.col(11)?,
        response_due_at: r.col::<Ts>(12)?.0,
        response_met_at: opt_ts(r.col(13)?)?,
        resolution_due_at: r.col::<Ts>(14)?.0,
        flags: r.col(15)?,
        ack_queued: r.col(16)?,
        ack_failed: r.col(17)?,
        ack_held_bounced: r.col(18)?,
        ack_error: r.col(19)?,
    })
}

/// A case closed in a period, for the digest.
#[derive(Debug, Clone)]
pub struct ClosedCase {
    pub reference: String,
    pub partner_name: String,
    pub status: String,
    pub closed_at: DateTime<Utc>,
    pub client_satisfied: Option<bool>,
    pub structural: Option<bool>,
    pub measure: Option<String>,
}

/// Cases closed after `since` (all closed cases when `None`), oldest first.
pub async fn closed_since(pool: &Pool, since: Option<DateTime<Utc>>) -> Result<Vec<ClosedCase>> {
    on!(pool, |c| {
        let since = Ts(since.unwrap_or(DateTime::UNIX_EPOCH));
        let rows = sqlx::query(
            "SELECT reference, partner_name, status, closed_at, client_satisfied, structural_fault,
                    improvement_measure
             FROM cases WHERE status IN ('closed', 'not_a_complaint') AND closed_at IS NOT NULL
                   AND closed_at > $1
             ORDER BY closed_at, id",
        )
        .bind(since)
        .fetch_all(c)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ClosedCase {
                    reference: r.try_get(0)?,
                    partner_name: r.try_get(1)?,
                    status: r.try_get(2)?,
                    closed_at: r.try_get::<Ts, _>(3)?.0,
                    client_satisfied: r.try_get(4)?,
                    structural: r.try_get(5)?,
                    measure: r.try_get(6)?,
                })
            })
            .collect()
    })
}

/// Mail other than acknowledgements (which the digest lists per case) given up on after
/// `since`: (purpose, case reference).
pub async fn not_sent_since(
    pool: &Pool,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<(String, Option<String>)>> {
    let since = Ts(since.unwrap_or(DateTime::UNIX_EPOCH));
    Ok(on!(pool, |c| sqlx::query_as(
        "SELECT o.purpose, c.reference FROM outbox o
         JOIN messages m ON m.id = o.message_id LEFT JOIN cases c ON c.id = o.case_id
         WHERE o.status = 'failed' AND o.purpose <> 'acknowledgement' AND m.created_at > $1
         ORDER BY o.id",
    )
    .bind(since)
    .fetch_all(c)
    .await?))
}

/// How many mails taken in after `since` could not be read (kept raw).
pub async fn unparseable_since(pool: &Pool, since: Option<DateTime<Utc>>) -> Result<i64> {
    let since = Ts(since.unwrap_or(DateTime::UNIX_EPOCH));
    Ok(on!(pool, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE direction = 'inbound' AND created_at > $1
         AND flags LIKE 'unparseable:%'",
    )
    .bind(since)
    .fetch_one(c)
    .await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The partners' job looks up every open case's acknowledgement in the outbox: by the
    /// index, or a backlog of 10,000 open cases took 10 s (each lookup read the outbox).
    #[tokio::test]
    async fn the_open_cases_query_reads_the_outbox_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let store = crate::store::Store::open(&url).await.unwrap();
        let Pool::Sqlite(pool, _) = store.pool() else {
            unreachable!("a SQLite store")
        };
        let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {OPEN_CASES}"
        )))
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
        .collect();
        let outbox: Vec<&String> = plan.iter().filter(|l| l.contains(" o ")).collect();
        assert_eq!(outbox.len(), 4, "{plan:#?}");
        for line in outbox {
            assert!(
                line.contains("USING INDEX outbox_case")
                    || line.contains("USING COVERING INDEX outbox_case"),
                "{plan:#?}"
            );
        }
    }
}
