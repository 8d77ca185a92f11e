//! Mail that opened no case: automatic mail, bounces, triage items, duplicates — anything
//! taken in that is neither a new case nor correspondence on one. Listed by
//! `klachtpost mail list --unfiled` (and the partners' digest), each with the reason the
//! classifier gave, so nothing disappears unseen.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Result, Store, TimeText, Ts, on};

/// One mail taken in (in `unfiled`: one that opened no case).
#[derive(Debug, Clone, Serialize)]
pub struct UnfiledMail {
    /// The stored message's number (`cases show` and the triage notice name it).
    pub id: i64,
    pub received_at: String,
    /// automatic, bounce, triage, duplicate, …
    pub kind: String,
    /// The case it was attached to (a bounce of our acknowledgement, an auto-reply to
    /// it), if any.
    pub case: Option<String>,
    pub from_address: Option<String>,
    pub subject: String,
    /// Why it opened no case: the classifier's reason, as `explain` gives it.
    pub reason: String,
    pub flags: Vec<String>,
}

impl Store {
    /// Every mail taken in that opened no case, newest first; with `since`, only those
    /// received at or after it. The partners' digest uses this too.
    pub async fn unfiled(&self, since: Option<DateTime<Utc>>) -> Result<Vec<UnfiledMail>> {
        self.taken_in(true, since).await
    }

    /// Mail recognised as a copy of one already taken in (table `duplicates`), newest
    /// first, as `mail list --unfiled` shows it: the reason names the original. Nothing of
    /// a duplicate is stored but where it was seen, so `id`, `from_address` and `subject`
    /// are the original's (`id` 0 and no sender or subject for a copy of a quarantined
    /// mail, whose content is never shown).
    pub async fn unfiled_duplicates(&self) -> Result<Vec<UnfiledMail>> {
        on!(self.pool(), |c| {
            let rows = sqlx::query(
                "SELECT d.message_row, d.quarantine_row, d.last_seen_at, c.reference, m.from_address, m.subject, d.matched_by, d.times
                 FROM duplicates d LEFT JOIN messages m ON m.id = d.message_row LEFT JOIN cases c ON c.id = m.case_id
                 ORDER BY d.last_seen_at DESC, d.id DESC",
            )
            .fetch_all(c)
            .await?;
            rows.iter()
                .map(|r| {
                    let message_row: Option<i64> = r.try_get(0)?;
                    let quarantine_row: Option<i64> = r.try_get(1)?;
                    let case: Option<String> = r.try_get(3)?;
                    let matched_by: String = r.try_get(6)?;
                    let times: i64 = r.try_get(7)?;
                    let original = match (message_row, quarantine_row) {
                        (Some(row), _) => match &case {
                            Some(reference) => format!("#{row} (case {reference})"),
                            None => format!("#{row}"),
                        },
                        (None, Some(q)) => {
                            format!("{} (in quarantine)", super::quarantine_reference(q))
                        }
                        (None, None) => "a mail taken in before".to_string(),
                    };
                    Ok(UnfiledMail {
                        id: message_row.unwrap_or(0),
                        received_at: r.try_get::<TimeText, _>(2)?.0,
                        kind: "duplicate".to_string(),
                        case,
                        from_address: r.try_get(4)?,
                        subject: r.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
                        reason: format!(
                            "duplicate of {original}; matched by {matched_by}, seen {times} time(s)"
                        ),
                        flags: Vec::new(),
                    })
                })
                .collect()
        })
    }

    /// Every mail taken in (`only_unfiled`: only those that opened no case), newest first.
    pub async fn taken_in(
        &self,
        only_unfiled: bool,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<UnfiledMail>> {
        on!(self.pool(), |c| {
            // Taken in = not something klachtpost sent (all of which has an outbox row).
            // Filed = opened a case, is correspondence on one, or a partner's reply kept on
            // its case as an internal note.
            let rows = sqlx::query(
                "SELECT m.id, m.received_at, m.kind, c.reference, m.from_address, m.subject, m.decision_reason, m.flags
                 FROM messages m LEFT JOIN cases c ON c.id = m.case_id
                 WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id)
                   AND m.received_at >= $1
                   AND ($2 = 0 OR m.kind NOT IN ('complaint', 'forward', 'note', 'reply', 'internal_note'))
                 ORDER BY m.received_at DESC, m.id DESC",
            )
            .bind(Ts(since.unwrap_or(DateTime::UNIX_EPOCH)))
            .bind(i64::from(only_unfiled))
            .fetch_all(c)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(UnfiledMail {
                        id: r.try_get(0)?,
                        received_at: r.try_get::<TimeText, _>(1)?.0,
                        kind: r.try_get(2)?,
                        case: r.try_get(3)?,
                        from_address: r.try_get(4)?,
                        subject: r.try_get(5)?,
                        reason: r.try_get(6)?,
                        flags: r
                            .try_get::<String, _>(7)?
                            .lines()
                            .filter(|l| !l.is_empty())
                            .map(str::to_string)
                            .collect(),
                    })
                })
                .collect()
        })
    }
}
