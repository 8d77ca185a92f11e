//! The durable outbox's policy. Rows are written by intake inside the transaction that
//! opens the case; [`drain_once`] delivers what is due. A transient failure is retried
//! with exponential backoff (1 min doubling, capped at 1 h, with jitter so a queue that
//! failed together does not retry together); a permanent failure, or running out of
//! attempts, marks the row failed — kept, flagged on the case, logged at warn, and the
//! responsible partner is told by mail. Nothing is dropped.

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};

use crate::case::{self, Actor};
use crate::clock::Clock;
use crate::compose;
use crate::config::Config;
use crate::send::{SendError, Sender};
use crate::store::{self, Store};

/// What one drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

/// When to try again after `attempts` failed tries (1 = the first failed).
pub fn next_attempt(now: DateTime<Utc>, attempts: u32, id: i64) -> DateTime<Utc> {
    let base_secs = 60i64 << attempts.saturating_sub(1).min(6); // 1, 2, 4 … 64 min
    let base_secs = base_secs.min(3600);
    // Deterministic jitter in [-20 %, +20 %], from the row id and attempt.
    let spread = (base_secs / 5).max(1);
    let h = (id.wrapping_mul(2_654_435_761) ^ i64::from(attempts).wrapping_mul(40_503))
        .rem_euclid(2 * spread + 1);
    now + Duration::seconds(base_secs - spread + h)
}

/// At start-up, before anything is sent: rows a crashed run had claimed (handed to the
/// server or about to be) go back to the queue and are sent again as the same message,
/// with the same Message-ID. Returns how many.
pub async fn recover_claims(store: &Store, clock: &dyn Clock) -> Result<u64> {
    let n = store.release_claims(clock.now()).await?;
    if n > 0 {
        tracing::info!(
            event = "outbox.claims_released",
            count = n,
            "unconfirmed sends of an earlier run will be sent again"
        );
    }
    Ok(n)
}

/// Deliver every row due now, once. Each row is claimed before it is handed to the
/// server and marked sent right after the server accepts it. Returns what happened; errors only on store failure.
pub async fn drain_once(
    store: &Store,
    sender: &Sender,
    clock: &dyn Clock,
    config: &Config,
) -> Result<Drained> {
    let max_attempts = config.outgoing.max_attempts;
    let mut report = Drained::default();
    loop {
        let now = clock.now();
        let due = store.claim_due(now, 50).await?;
        if due.is_empty() {
            return Ok(report);
        }
        for item in due {
            let stem = format!(
                "{}-{}-{}",
                now.format("%Y%m%dT%H%M%S"),
                item.case_reference.as_deref().unwrap_or("nocase"),
                item.id
            );
            match sender
                .send(&item.envelope_from, &item.recipients, &item.raw, &stem)
                .await
            {
                Ok(()) => {
                    mark_sent(store, item.id, clock.now()).await?;
                    report.sent += 1;
                    tracing::info!(
                        event = "outbox.sent",
                        outbox = item.id,
                        purpose = item.purpose.as_str(),
                        case = item.case_reference.as_deref().unwrap_or("-"),
                        "message sent"
                    );
                }
                Err(SendError::Transient(e)) if item.attempts + 1 < max_attempts => {
                    let next = next_attempt(clock.now(), item.attempts + 1, item.id);
                    store.outbox_retry(item.id, next, &e).await?;
                    report.retried += 1;
                    tracing::warn!(
                        event = "outbox.retry",
                        outbox = item.id,
                        attempt = item.attempts + 1,
                        next = %next,
                        error = %e,
                        "sending failed, will retry"
                    );
                }
                Err(e) => {
                    let why = match &e {
                        SendError::Transient(m) => {
                            format!("gave up after {} attempts: {m}", item.attempts + 1)
                        }
                        SendError::Permanent(m) => m.clone(),
                    };
                    mark_failed(store, item.id, clock.now(), &why).await?;
                    report.failed += 1;
                    tracing::warn!(
                        event = "outbox.failed",
                        outbox = item.id,
                        purpose = item.purpose.as_str(),
                        case = item.case_reference.as_deref().unwrap_or("-"),
                        error = %why,
                        "sending failed for good; the case is flagged"
                    );
                    if item.purpose == "acknowledgement"
                        && let Some(reference) = &item.case_reference
                    {
                        tell_partner(store, clock, config, reference, &why).await?;
                    }
                }
            }
        }
    }
}

/// A row was delivered: mark it and record it on its case (the acknowledgement moves the
/// case to `acknowledged`), in one transaction.
async fn mark_sent(store: &Store, id: i64, now: DateTime<Utc>) -> Result<()> {
    let mut tx = store.begin().await?;
    let (case_id, purpose) = store::outbox_mark_sent(&mut tx, id, now).await?;
    if let Some(case_id) = case_id {
        let who = Actor::system(now);
        if purpose == "acknowledgement" {
            case::acknowledged(&mut tx, case_id, who).await?;
        } else {
            case::log(
                &mut tx,
                case_id,
                &format!("{purpose}.sent"),
                "delivered to the outgoing server",
                who,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// A row is given up on: it stays as failed and its case is flagged, in one transaction.
async fn mark_failed(store: &Store, id: i64, now: DateTime<Utc>, error: &str) -> Result<()> {
    let mut tx = store.begin().await?;
    let (case_id, purpose) = store::outbox_mark_failed(&mut tx, id, error).await?;
    if let Some(case_id) = case_id {
        case::flag(
            &mut tx,
            case_id,
            &format!("{purpose}.send_failed"),
            &format!("{purpose} could not be sent: {error}"),
            Actor::system(now),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The acknowledgement of a case could not be delivered: the procedure still requires the
/// complainant to hear from the firm, so the responsible partner is told to reach them
/// another way. (A failed notice is not noticed again: no loops.)
async fn tell_partner(
    store: &Store,
    clock: &dyn Clock,
    config: &Config,
    reference: &str,
    why: &str,
) -> Result<()> {
    let Some((name, email)) = store.case_partner(reference).await? else {
        return Ok(());
    };
    let body = format!(
        "Beste {name},\n\nDe ontvangstbevestiging van klacht {reference} kon niet worden verzonden:\n{why}\n\n\
         Neem op een andere manier contact op met de klager, zodat de ontvangst tijdig wordt bevestigd.\n\
         Bekijk de zaak met: klachtpost cases show {reference}\n\n-- klachtpost\n"
    );
    let out = compose::notice(
        &config.firm.name,
        config.firm.domain(),
        &config.outgoing.from,
        &email,
        reference,
        &format!("[{reference}] Ontvangstbevestiging niet verzonden"),
        &body,
        clock.now(),
    )?;
    store
        .queue_notice(reference, &email, &out, &config.outgoing.from, clock.now())
        .await?;
    tracing::info!(
        event = "notice.queued",
        case = reference,
        "the responsible partner is told"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let d = |a, id| (next_attempt(now, a, id) - now).num_seconds();
        assert!((48..=72).contains(&d(1, 7)), "{}", d(1, 7));
        assert!((96..=144).contains(&d(2, 7)), "{}", d(2, 7));
        for a in 7..40 {
            assert!((2880..=4320).contains(&d(a, 7)), "{}", d(a, 7));
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|id| d(3, id)).collect();
        assert!(
            spread.len() > 10,
            "jitter should spread retries: {spread:?}"
        );
    }
}
