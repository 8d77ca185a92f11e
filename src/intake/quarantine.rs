//! The fault boundary: no mail can stop intake.
//!
//! [`Pipeline::handle`] takes in one fetched mail ([`Pipeline::handle_in`]: as one mail of a
//! batch's transaction, behind a savepoint of its own). Whatever goes wrong with that mail
//! — it cannot be read, it is over `intake.max_message_bytes`, a message for it cannot be
//! built, a database constraint refuses it, any other error while taking it in (what it
//! wrote is then rolled back to its savepoint, so nothing of it is half stored, and the
//! batch's other mails are kept) — the mail is stored raw in the `quarantine` table, with
//! ONE notice to the partners naming its reference (`Q-0007`) and why,
//! never its sender, subject or text. The mailbox then moves it to `quarantine_folder`,
//! and intake goes on with the next mail.
//!
//! Should the raw bytes themselves be refused (larger than the database takes), the item
//! is stored without them (identity, size, why) and the mail is kept in the quarantine
//! folder only. Only a store that cannot be written at all (the database busy beyond its
//! timeout, the disk full or gone) ends the pass with an error: then nothing can be kept,
//! the mail stays in the mailbox and is fetched again later, so nothing is lost.
//!
//! `klachtpost quarantine retry` ([`Pipeline::retry`]) runs intake again on the stored raw
//! bytes once the cause is fixed; success links the item to the message it became, in the
//! intake transaction, and the item stays as the record that it was quarantined.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};

use super::{Outcome, Pipeline, identity};
use crate::compose;
use crate::config::Mailbox as MailboxConfig;
use crate::store::{self, NewQuarantine, StoreError, Tx};

/// Where a handled mail goes in the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Taken in (or a duplicate of a mail taken in): to the processed folder.
    Processed,
    /// In quarantine (or a duplicate of a quarantined mail): to the quarantine folder.
    Quarantined,
}

/// What [`Pipeline::handle`] did with one mail.
#[derive(Debug, Clone)]
pub struct Handled {
    pub disposition: Disposition,
    /// Set when the mail was taken in or recognised as a duplicate.
    pub outcome: Option<Outcome>,
    /// The quarantine item's id, when the mail was quarantined now.
    pub quarantined: Option<i64>,
}

/// What a retry of a quarantine item came to.
#[derive(Debug, Clone)]
pub enum Retried {
    /// Taken in now: the message row, and its case if any.
    TakenIn {
        message_row: i64,
        case: Option<String>,
    },
    /// The same mail had been taken in meanwhile: the item points at that message.
    Duplicate { message_row: Option<i64> },
    /// Still cannot be taken in; why.
    StillFailing(String),
    /// Nothing to do: the item was resolved before.
    AlreadyResolved(String),
    /// Nothing to take in: retention purged its bytes (`keep_unattached` after it was
    /// quarantined, at the time given).
    Purged { quarantined_at: String },
}

impl Pipeline<'_> {
    /// Take in one fetched mail, or quarantine it, in a transaction of its own. An error
    /// only when the store cannot be written at all (then the mail must stay where it is).
    pub async fn handle(
        &self,
        source_key: &str,
        raw: &[u8],
        received_at: DateTime<Utc>,
    ) -> Result<Handled> {
        let mut tx = self.store.begin().await?;
        let handled = self
            .handle_in(&mut tx, source_key, raw, received_at, None)
            .await?;
        self.commit(tx).await?;
        if let Some(taken) = handled.outcome.as_ref().and_then(|o| o.taken_in()) {
            taken.log(Some(source_key));
        }
        Ok(handled)
    }

    /// [`Pipeline::handle`] as one mail of an intake batch: in the batch's transaction,
    /// the mail's work behind a savepoint of its own, so a mail that fails is rolled back
    /// alone and quarantined, and the batch goes on. An error only when the store cannot be
    /// written at all: then what the mail wrote is rolled back, the batch's earlier mails
    /// stay in the transaction, and the caller commits them and keeps this mail in the
    /// mailbox. `received_note` says how the receipt time was found when the server gave
    /// none (recorded with the mail, [`super::note_receipt_time`]).
    pub async fn handle_in(
        &self,
        tx: &mut Tx,
        source_key: &str,
        raw: &[u8],
        received_at: DateTime<Utc>,
        received_note: Option<&str>,
    ) -> Result<Handled> {
        tx.savepoint().await?;
        let taken = match self
            .take_in_on(tx, Some(source_key), raw, received_at, None)
            .await
        {
            Ok(outcome) => match (received_note, outcome.message_row) {
                (Some(note), Some(row)) => {
                    super::note_receipt_time(tx, row, note, self.clock.now())
                        .await
                        .map(|()| {
                            tracing::warn!(
                                event = "mail.receipt_time_fallback",
                                source = source_key,
                                "no INTERNALDATE from the server; the receipt time comes from the Date header"
                            );
                            outcome
                        })
                }
                _ => Ok(outcome),
            },
            Err(e) => Err(e),
        };
        // Releasing the savepoint writes the mail's history entries (`store::history`): a
        // failure there is the mail's, undone and quarantined like any other of its
        // statements.
        let taken = match taken {
            Ok(outcome) => tx.release().await.map(|()| outcome).map_err(Into::into),
            Err(e) => Err(e),
        };
        let error = match taken {
            Ok(outcome) => {
                let disposition = match &outcome.original {
                    Some(seen) if seen.in_quarantine() => Disposition::Quarantined,
                    _ => Disposition::Processed,
                };
                return Ok(Handled {
                    disposition,
                    outcome: Some(outcome),
                    quarantined: None,
                });
            }
            Err(e) => {
                tx.rollback_to()
                    .await
                    .with_context(|| format!("cannot undo {source_key} after: {e:#}"))?;
                if store_unavailable(&e) {
                    return Err(e);
                }
                e
            }
        };
        let reason = format!("{error:#}");
        let kept = self
            .quarantine_in(tx, Some(source_key), raw, true, received_at, &reason)
            .await;
        let id = match kept {
            Ok(id) => id,
            Err(e) if store_unavailable(&e) => {
                return Err(e.context(format!("cannot quarantine {source_key} after: {reason}")));
            }
            // The bytes themselves cannot be stored (say, larger than the database takes):
            // keep the record and tell the partners all the same; the mail itself is kept
            // in the quarantine folder. Anything else would stop intake on this mail.
            Err(e) => {
                let reason = format!(
                    "{reason}; its bytes could not be stored ({e:#}), the mail is only in the quarantine folder"
                );
                self.quarantine_in(tx, Some(source_key), raw, false, received_at, &reason)
                    .await
                    .with_context(|| format!("cannot quarantine {source_key} after: {reason}"))?
            }
        };
        Ok(Handled {
            disposition: Disposition::Quarantined,
            outcome: None,
            quarantined: Some(id),
        })
    }

    /// Store a mail in quarantine and queue the notice to the partners, in one transaction.
    /// Returns the item's id.
    pub async fn quarantine(
        &self,
        source_key: Option<&str>,
        raw: &[u8],
        received_at: DateTime<Utc>,
        reason: &str,
    ) -> Result<i64> {
        let mut tx = self.store.begin().await?;
        let id = self
            .quarantine_in(&mut tx, source_key, raw, true, received_at, reason)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// [`Pipeline::quarantine`] in the caller's transaction, behind a savepoint (nothing of
    /// it stays when it fails); without `keep_raw` only the record (identity, size, why) is
    /// stored.
    async fn quarantine_in(
        &self,
        tx: &mut Tx,
        source_key: Option<&str>,
        raw: &[u8],
        keep_raw: bool,
        received_at: DateTime<Utc>,
        reason: &str,
    ) -> Result<i64> {
        tx.savepoint().await?;
        let kept = match self
            .quarantine_on(tx, source_key, raw, keep_raw, received_at, reason)
            .await
        {
            // Should releasing fail (it writes any history appended since the savepoint),
            // the item is undone as when a statement of it failed.
            Ok(id) => tx.release().await.map(|()| id).map_err(Into::into),
            Err(e) => Err(e),
        };
        match kept {
            Ok(id) => {
                // The reason is klachtpost's own error text ("cannot …"), never the mail's
                // content.
                tracing::warn!(
                    event = "mail.quarantined",
                    quarantine = store::quarantine_reference(id).as_str(),
                    source = source_key.unwrap_or("-"),
                    reason,
                    "mail could not be taken in; kept in quarantine, partners told"
                );
                Ok(id)
            }
            Err(e) => {
                tx.rollback_to().await?;
                Err(e)
            }
        }
    }

    async fn quarantine_on(
        &self,
        tx: &mut Tx,
        source_key: Option<&str>,
        raw: &[u8],
        keep_raw: bool,
        received_at: DateTime<Utc>,
        reason: &str,
    ) -> Result<i64> {
        let now = self.clock.now();
        let config = self.config;
        let identity = identity::of(raw);
        let id = store::insert_quarantine(
            tx,
            &NewQuarantine {
                source_key,
                message_id: identity.message_id.as_deref(),
                identity: &identity.sha256,
                received_at,
                reason,
                size: raw.len(),
                raw: if keep_raw { raw } else { &[] },
                now,
            },
        )
        .await?;
        let reference = store::quarantine_reference(id);
        let folder = match &config.mailbox {
            MailboxConfig::Imap { .. } => config.quarantine_folder.clone(),
            MailboxConfig::Maildir { .. } => format!(".{}", config.quarantine_folder),
        };
        let partners: Vec<&str> = config
            .firm
            .partners
            .iter()
            .map(|p| p.email.as_str())
            .collect();
        let lang = config.templates.language.internal();
        let notice = compose::notice_from_template(
            &self.templates,
            "quarantine_notice",
            lang,
            &compose::NoticeHead {
                firm_name: &config.firm.name,
                firm_domain: config.firm.domain(),
                from: &config.outgoing.from,
                to: &partners,
                reference: &reference,
                now,
            },
            minijinja::context! {
                reference => &reference,
                problem => reason,
                received => compose::format_datetime(received_at, config.firm.timezone, lang),
                size => raw.len(),
                folder => &folder,
            },
        );
        match notice {
            Ok(out) => {
                let recipients: Vec<String> = partners.iter().map(|p| p.to_string()).collect();
                store::queue_quarantine_notice(
                    tx,
                    id,
                    &recipients,
                    &out,
                    &config.outgoing.from,
                    now,
                )
                .await?;
            }
            // The mail is kept all the same; the log and `quarantine list` show it.
            Err(e) => tracing::error!(
                event = "quarantine.notice_failed",
                quarantine = reference.as_str(),
                error = %e,
                "cannot build the notice to the partners"
            ),
        }
        Ok(id)
    }

    /// Run intake again on a quarantined mail's stored bytes.
    pub async fn retry(&self, id: i64) -> Result<Retried> {
        let reference = store::quarantine_reference(id);
        let (item, raw) = self
            .store
            .quarantine_item(id)
            .await?
            .with_context(|| format!("there is no quarantine item {reference}"))?;
        if item.status != "quarantined" {
            return Ok(Retried::AlreadyResolved(item.status));
        }
        if item.purged {
            return Ok(Retried::Purged {
                quarantined_at: item.quarantined_at,
            });
        }
        let received_at = store::parse_ts(&item.received_at)?;
        let now = self.clock.now();
        match self
            .take_in_as(item.source_key.as_deref(), &raw, received_at, Some(id))
            .await
        {
            Ok(outcome) if outcome.duplicate => {
                let original = outcome.original.and_then(|s| s.message_row);
                self.store
                    .quarantine_resolve(id, "duplicate", original, now)
                    .await?;
                tracing::info!(
                    event = "quarantine.duplicate",
                    quarantine = reference.as_str(),
                    "the quarantined mail had been taken in meanwhile"
                );
                Ok(Retried::Duplicate {
                    message_row: original,
                })
            }
            Ok(outcome) => {
                tracing::info!(
                    event = "quarantine.taken_in",
                    quarantine = reference.as_str(),
                    case = outcome.case.as_deref().unwrap_or("-"),
                    "quarantined mail taken in"
                );
                Ok(Retried::TakenIn {
                    message_row: outcome
                        .message_row
                        .context("intake stored no message row")?,
                    case: outcome.case,
                })
            }
            Err(e) if store_unavailable(&e) => Err(e),
            Err(e) => {
                let reason = format!("{e:#}");
                self.store.quarantine_retry_failed(id, &reason, now).await?;
                tracing::warn!(
                    event = "quarantine.retry_failed",
                    quarantine = reference.as_str(),
                    reason = reason.as_str(),
                    "still cannot take it in"
                );
                Ok(Retried::StillFailing(reason))
            }
        }
    }
}

/// Whether an intake error says the database cannot be written at all right now (busy
/// beyond its timeout, locked, out of space, I/O), as opposed to a problem with the mail.
pub(crate) fn store_unavailable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let sql = cause
            .downcast_ref::<StoreError>()
            .and_then(|e| match e {
                StoreError::Sql(sql) => Some(sql),
                _ => None,
            })
            .or_else(|| cause.downcast_ref::<sqlx::Error>());
        match sql {
            Some(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            // SQLite primary result codes (the low byte of an extended code): BUSY 5,
            // LOCKED 6, IOERR 10, FULL 13, CANTOPEN 14, READONLY 8.
            Some(sqlx::Error::Database(db)) => db
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .is_some_and(|c| matches!(c & 0xff, 5 | 6 | 8 | 10 | 13 | 14)),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refusal_by_the_database_is_the_mails_problem_a_busy_database_is_not() {
        let store = store::Store::open("sqlite::memory:").await.unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE INSERT ON case_sequences BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .execute(store.pool().as_sqlite().unwrap())
        .await
        .unwrap();
        let mut tx = store.begin().await.unwrap();
        let refused = store::next_sequence(&mut tx, 2026).await.unwrap_err();
        let refused = anyhow::Error::from(refused).context("cannot take in x");
        assert!(!store_unavailable(&refused), "{refused:#}");
        let constraint = anyhow::Error::from(StoreError::Time("x".into()));
        assert!(!store_unavailable(&constraint));

        let busy = anyhow::Error::from(StoreError::Sql(sqlx::Error::PoolTimedOut))
            .context("cannot take in y");
        assert!(store_unavailable(&busy));
        let io = anyhow::Error::from(sqlx::Error::Io(std::io::Error::other("disk gone")));
        assert!(store_unavailable(&io));
    }
}
