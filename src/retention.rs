//! Retention: complaints are kept for `[retention] keep` (default 2 years) after they are
//! closed, then purged to a tombstone ([`crate::case::purge`]); a case on hold is kept.
//! Mail that never opened a case (auto-replies, bounces, triage) goes after
//! `keep_unattached` (default 90 days), and so does a quarantine item's content (its raw
//! bytes and its copy in the quarantine folder; the row stays as the record). Every other
//! copy goes with what it copies: the processed-folder and sent-folder copies, files in a
//! file outbox. The daemon runs [`purge`] once a day as a due row
//! in the `jobs` table (see [`daily_job`]), so a restart neither skips nor repeats it;
//! `klachtpost purge [--dry-run]` runs it by hand.

use std::fmt;

use chrono::{DateTime, Duration, Months, Utc};
use serde::Serialize;

use anyhow::Context as _;

use crate::case::{self, Actor};
use crate::config::{Config, Transport};
use crate::fetch::{self, CopyFolder, MailCopy};
use crate::store::{self, Store};

/// A retention period: "2 years", "18 months", "90 days", "6 weeks" (Dutch "jaar",
/// "jaren", "maanden", "weken", "dagen" too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Months(u32),
    Days(u32),
}

impl Span {
    pub const DEFAULT_KEEP: Span = Span::Months(24);
    pub const DEFAULT_KEEP_UNATTACHED: Span = Span::Days(90);

    pub fn parse(s: &str) -> Result<Span, String> {
        let t = s.trim().to_lowercase();
        let (n, unit) = t.split_once(char::is_whitespace).ok_or_else(|| {
            format!("{s:?}: expected \"N years\", \"N months\", \"N weeks\" or \"N days\"")
        })?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: {n:?} is not a whole number"))?;
        if n == 0 || n > 100 * 366 {
            return Err(format!("{s:?}: out of range"));
        }
        match unit.trim() {
            "year" | "years" | "jaar" | "jaren" => Ok(Span::Months(n * 12)),
            "month" | "months" | "maand" | "maanden" => Ok(Span::Months(n)),
            "week" | "weeks" | "week " | "weken" => Ok(Span::Days(n * 7)),
            "day" | "days" | "dag" | "dagen" => Ok(Span::Days(n)),
            other => Err(format!(
                "{s:?}: unknown unit {other:?} (years, months, weeks or days)"
            )),
        }
    }

    /// The moment `self` before `now`: what was closed before it is past retention.
    pub fn before(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Span::Months(m) => now.checked_sub_months(Months::new(m)).unwrap_or(now),
            Span::Days(d) => now - Duration::days(i64::from(d)),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Span::Months(m) if m % 12 == 0 => write!(f, "{} years", m / 12),
            Span::Months(m) => write!(f, "{m} months"),
            Span::Days(d) => write!(f, "{d} days"),
        }
    }
}

/// `[retention]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// How long a closed case is kept.
    pub keep: Span,
    /// How long mail that never joined a case is kept.
    pub keep_unattached: Span,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            keep: Span::DEFAULT_KEEP,
            keep_unattached: Span::DEFAULT_KEEP_UNATTACHED,
        }
    }
}

/// What a purge did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub dry_run: bool,
    /// Cases purged (or due).
    pub cases: Vec<String>,
    /// Cases past retention but on hold: kept.
    pub held: Vec<String>,
    pub messages: u64,
    pub attachments: u64,
    pub unattached_messages: u64,
    /// Copies removed from the mailbox (IMAP processed folder, Maildir `cur/`).
    pub mailbox_copies: usize,
    /// Quarantine items whose bytes were purged (the rows stay as the record).
    pub quarantine_items: u64,
    /// Copies removed from the quarantine folder.
    pub quarantine_copies: usize,
    /// Copies removed from `[mailbox] sent_folder`.
    pub sent_copies: usize,
    /// Files removed from a file outbox.
    pub outbox_files: usize,
}

/// Remove a purged case's files from a file outbox (`<time>-<reference>-<outbox id>.eml`,
/// see [`crate::send`]).
fn remove_outbox_files(
    config: &Config,
    reference: Option<&str>,
    outbox_ids: &[i64],
) -> anyhow::Result<usize> {
    let Transport::File { dir } = &config.outgoing.transport else {
        return Ok(0);
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let case = reference.unwrap_or("nocase");
    let suffixes: Vec<String> = outbox_ids
        .iter()
        .map(|id| format!("-{case}-{id}.eml"))
        .collect();
    let mut removed = 0;
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if suffixes.iter().any(|s| name.ends_with(s.as_str())) {
            std::fs::remove_file(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn mail_copies(list: Vec<(Option<String>, Option<String>)>) -> Vec<MailCopy> {
    list.into_iter()
        .map(|(source_key, message_id)| MailCopy {
            source_key,
            message_id,
        })
        .collect()
}

/// Purge everything past retention at `now` (`config.retention`): first the copies
/// outside the database (the mailbox's processed copies, file-outbox files), then the
/// case in one transaction, so a failure halfway is retried at the next run.
pub async fn purge(
    store: &Store,
    config: &Config,
    now: DateTime<Utc>,
    by: &str,
    dry_run: bool,
) -> anyhow::Result<Report> {
    let settings = &config.retention;
    let mut report = Report {
        dry_run,
        ..Default::default()
    };
    for due in store::retention::cases_due(store.pool(), settings.keep.before(now)).await? {
        if due.held {
            report.held.push(due.reference);
            continue;
        }
        if !dry_run {
            let copies = store::retention::case_copies(store.pool(), &due.reference).await?;
            let context = || format!("cannot remove the mailbox copies of {}", due.reference);
            report.mailbox_copies +=
                fetch::remove_copies(config, CopyFolder::Processed, &mail_copies(copies.received))
                    .await
                    .with_context(context)?;
            report.sent_copies +=
                fetch::remove_copies(config, CopyFolder::Sent, &mail_copies(copies.sent))
                    .await
                    .with_context(context)?;
            report.outbox_files +=
                remove_outbox_files(config, Some(&due.reference), &copies.outbox)?;
            let mut tx = store.begin().await?;
            let p = case::purge(&mut tx, &due.reference, Actor::new(by, now)).await?;
            tx.commit().await?;
            report.messages += p.messages;
            report.attachments += p.attachments;
        }
        report.cases.push(due.reference);
    }
    let unattached =
        store::retention::unattached_due(store.pool(), settings.keep_unattached.before(now))
            .await?;
    report.unattached_messages = unattached.len() as u64;
    let quarantine =
        store::retention::quarantine_due(store.pool(), settings.keep_unattached.before(now))
            .await?;
    report.quarantine_items = quarantine.len() as u64;
    if !dry_run {
        let (sent, received): (Vec<_>, Vec<_>) = unattached.iter().partition(|m| m.outbound);
        let copies = |list: Vec<&store::retention::Unattached>| {
            list.into_iter()
                .map(|m| MailCopy {
                    source_key: m.source_key.clone(),
                    message_id: m.message_id.clone(),
                })
                .collect::<Vec<_>>()
        };
        let context = "cannot remove the mailbox copies of mail without a case";
        report.mailbox_copies +=
            fetch::remove_copies(config, CopyFolder::Processed, &copies(received))
                .await
                .context(context)?;
        report.sent_copies += fetch::remove_copies(config, CopyFolder::Sent, &copies(sent))
            .await
            .context(context)?;
        for m in &unattached {
            let outbox = store::retention::outbox_ids_of(store.pool(), m.id).await?;
            report.outbox_files += remove_outbox_files(config, None, &outbox)?;
            let mut tx = store.begin().await?;
            store::retention::delete_message(&mut tx, m.id).await?;
            tx.commit().await?;
        }
        for q in &quarantine {
            report.quarantine_copies += fetch::remove_copies(
                config,
                CopyFolder::Quarantine,
                &mail_copies(q.copies.clone()),
            )
            .await
            .with_context(|| {
                format!(
                    "cannot remove the quarantine-folder copy of {}",
                    store::quarantine_reference(q.id)
                )
            })?;
            let mut tx = store.begin().await?;
            store::retention::purge_quarantine(&mut tx, q.id).await?;
            tx.commit().await?;
        }
        if !report.cases.is_empty() || !unattached.is_empty() || !quarantine.is_empty() {
            store::retention::reclaim(store.pool()).await?;
        }
    }
    tracing::info!(
        event = "retention.purged",
        dry_run,
        cases = report.cases.len(),
        held = report.held.len(),
        unattached = report.unattached_messages,
        quarantine = report.quarantine_items,
        "retention applied"
    );
    Ok(report)
}

/// The job's name in the `jobs` table.
pub const JOB: &str = "retention";

/// Run the daily purge if it is due (a due row in `jobs`, created due at first start);
/// returns when it is due next.
pub async fn daily_job(
    store: &Store,
    config: &Config,
    now: DateTime<Utc>,
) -> anyhow::Result<DateTime<Utc>> {
    let due = store::jobs::due_at(store.pool(), JOB).await?;
    if due.is_some_and(|d| d > now) {
        return Ok(due.unwrap_or(now));
    }
    // Of several instances that wake at once, one runs it (`jobs::claim`); a run that dies
    // halfway is tried again after an hour.
    let hold = now + Duration::hours(1);
    if !store::jobs::claim(store.pool(), JOB, now, hold).await? {
        return Ok(store::jobs::due_at(store.pool(), JOB)
            .await?
            .unwrap_or(hold));
    }
    let result = match purge(store, config, now, case::SYSTEM, false).await {
        Ok(r) => format!(
            "{} cases purged, {} held, {} unattached messages, {} quarantine items",
            r.cases.len(),
            r.held.len(),
            r.unattached_messages,
            r.quarantine_items
        ),
        Err(e) => {
            tracing::warn!(event = "retention.failed", error = %format!("{e:#}"), "purge failed; tried again tomorrow");
            "failed".to_string()
        }
    };
    let next = now + Duration::days(1);
    store::jobs::set_done(store.pool(), JOB, now, next, &result).await?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn spans_parse_in_english_and_dutch() {
        assert_eq!(Span::parse("2 years"), Ok(Span::Months(24)));
        assert_eq!(Span::parse("2 jaar"), Ok(Span::Months(24)));
        assert_eq!(Span::parse("90 days"), Ok(Span::Days(90)));
        assert_eq!(Span::parse("6 weken"), Ok(Span::Days(42)));
        assert!(Span::parse("2").is_err());
        assert!(Span::parse("0 days").is_err());
        assert!(Span::parse("2 fortnights").is_err());
        assert_eq!(Span::Months(24).to_string(), "2 years");
    }

    #[test]
    fn two_years_before_a_leap_day_is_the_day_before() {
        let t = Utc.with_ymd_and_hms(2028, 2, 29, 12, 0, 0).unwrap();
        assert_eq!(
            Span::Months(24).before(t),
            Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap()
        );
    }
}
