//! The durable outbox's policy. Rows are written by intake inside the transaction that
//! opens the case; [`drain_once`] delivers what is due.
//!
//! - A transient failure (4xx to the mail) is retried with exponential backoff (1 min
//!   doubling, capped at 1 h, with jitter so a queue that failed together does not retry
//!   together); a permanent one (5xx to a recipient or the message), or running out of
//!   attempts, marks the row failed — kept, flagged on the case, logged at warn. A failed
//!   acknowledgement is told to the responsible partner once, by the acknowledgement
//!   watchdog ([`crate::partners::scheduler`]: "acknowledge by phone or letter", with the
//!   server's answer), not from here. A recipient refused with 5xx is recorded as a hard
//!   bounce.
//! - An outage of the transport (no connection, TLS, AUTH refused, our sender refused) is
//!   no verdict on any mail: the drain stops, every row stays queued with its attempts
//!   untouched, the outage is logged at error once, and the transport is tried again with
//!   its own backoff (30 s doubling to 10 min). After `outgoing.alert_after` the partners
//!   are told through `[outgoing.fallback]`, if one is configured. The outage is also
//!   recorded in [`crate::health`] (`Channel::Outgoing`), so `klachtpost status` shows it.
//! - Loop and flood protection, for automatic mail (`Auto-Submitted`): never to the firm's
//!   own mailbox address, never to an outside address that bounced hard within
//!   `outgoing.bounce_block`, and at most `outgoing.max_auto_per_address` per outside
//!   address per hour and per day. A row stopped by these rules is `held`: never sent,
//!   kept, the case flagged, and the partner told: for a flood once a day per address; an
//!   acknowledgement held for a bounced address by the acknowledgement watchdog.
//!   Mail to the firm's own people (staff domains, partners) is not limited.
//!
//! Nothing is dropped, and no log line carries an address (SMTP replies are redacted).

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};

use crate::case::{self, Actor};
use crate::clock::Clock;
use crate::compose::{self, NoticeHead};
use crate::config::Config;
use crate::health::{self, Channel};
use crate::send::{Outage, SendError, Sender};
use crate::store::{self, OutboxItem, Store};

/// What one drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Stopped by the loop and flood rules.
    pub held: usize,
    /// The transport is down: the drain stopped (or did not start) and rows wait.
    pub outage: bool,
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

/// When to try a transport that is down again, after `failures` failed tries.
pub fn next_outage_try(now: DateTime<Utc>, failures: u32) -> DateTime<Utc> {
    let secs = (30i64 << failures.saturating_sub(1).min(5)).min(600); // 30 s … 10 min
    now + Duration::seconds(secs)
}

/// At start-up, before anything is sent: rows a crashed run had claimed (handed to the
/// server or about to be) go back to the queue and are sent again as the same message,
/// with the same Message-ID. Returns how many.
pub async fn recover_claims(store: &Store, clock: &dyn Clock) -> Result<u64> {
    // First what the server had accepted (the confirmation journal): those are sent.
    let folded = fold_confirmations(store).await?;
    if folded > 0 {
        tracing::info!(
            event = "outbox.confirmations_folded",
            count = folded,
            "sends an earlier run had confirmed are marked sent"
        );
    }
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
    let mut report = Drained::default();
    if let Some(retry_at) = sender.retry_at()
        && clock.now() < retry_at
    {
        report.outage = true;
        return Ok(report);
    }
    // Confirmations a failed drain left in the journal, before their claims could lapse.
    fold_confirmations(store).await?;
    let result = drain_claimed(store, sender, clock, config, &mut report).await;
    // The connection kept open for the batch is closed before the sender waits.
    sender.close_idle().await;
    result.map(|()| report)
}

/// How many rows the sender claims at a time: each batch costs a claim (a synchronous
/// commit) and a fold (on the daemon's deferred handle it does not wait for the disk). With
/// intake's batches now committed 200 mails (400 messages) at a time, claims were full: 2,000
/// mails made 293 `fsync`/`fdatasync` calls with 50, 110 with 200 (`strace -c`; 72 since
/// folds do not wait).
const SEND_BATCH: i64 = 200;

/// [`drain_once`]'s loop: claim a batch, send it, fold its confirmations; until nothing is
/// due or the transport is down.
async fn drain_claimed(
    store: &Store,
    sender: &Sender,
    clock: &dyn Clock,
    config: &Config,
    report: &mut Drained,
) -> Result<()> {
    let max_attempts = config.outgoing.max_attempts;
    loop {
        let now = clock.now();
        let due = store.claim_due(now, SEND_BATCH).await?;
        if due.is_empty() {
            if report.sent + report.retried + report.failed > 0 {
                // The transport answered about a mail: it works (`klachtpost status`).
                health::succeeded(store, config, clock, Channel::Outgoing, None).await?;
            }
            return Ok(());
        }
        let sent = send_claimed(store, sender, clock, config, report, max_attempts, due).await;
        // What the server accepted is marked sent (one transaction) whatever happened next.
        fold_confirmations(store).await?;
        if sent? {
            return Ok(());
        }
    }
}

/// Send one claimed batch. `Ok(true)` when the transport went down (the drain stops).
async fn send_claimed(
    store: &Store,
    sender: &Sender,
    clock: &dyn Clock,
    config: &Config,
    report: &mut Drained,
    max_attempts: u32,
    due: Vec<OutboxItem>,
) -> Result<bool> {
    let now = clock.now();
    // What the loop and flood rules know of the batch's recipients, asked once: the
    // outbox as it was folded before the batch (a bounce recorded while the batch is sent
    // counts from the next one). Not for the firm's own people, whom the rules leave out
    // ([`hold_reason`]): counting a partner's notices read every one sent that day, per
    // batch (in a backlog 5,000 a partner by the end).
    let out = &config.outgoing;
    let mut asked: Vec<String> = due
        .iter()
        .filter(|item| item.auto_submitted.is_some())
        .flat_map(|item| item.recipients.iter().map(|r| r.to_ascii_lowercase()))
        .filter(|r| !config.firm.is_staff(r))
        .collect();
    asked.sort_unstable();
    asked.dedup();
    let records = store
        .recipient_records(
            &asked,
            now - out.bounce_block,
            now - Duration::hours(1),
            now - Duration::days(1),
        )
        .await?;
    // Automatic mail this batch sent per recipient, for the flood rules on top of those
    // records.
    let mut sent_in_batch: std::collections::HashMap<String, i64> =
        std::collections::HashMap::new();
    {
        let mut due = due.into_iter().peekable();
        while let Some(item) = due.next() {
            if let Some(hold) = hold_reason(config, &item, &records, &sent_in_batch) {
                held(store, clock, config, &item, &hold).await?;
                report.held += 1;
                continue;
            }
            let stem = format!(
                "{}-{}-{}",
                now.format("%Y%m%dT%H%M%S"),
                item.case_reference.as_deref().unwrap_or("nocase"),
                item.id
            );
            // The mail after this one, unless it is to be held: its commands can go out
            // behind this message (SMTP PIPELINING).
            let next = due
                .peek()
                .filter(|n| hold_reason(config, n, &records, &sent_in_batch).is_none())
                .map(|n| crate::send::Next {
                    from: &n.envelope_from,
                    recipients: &n.recipients,
                    raw: &n.raw,
                });
            match sender
                .send_before(
                    &item.envelope_from,
                    &item.recipients,
                    &item.raw,
                    &stem,
                    next,
                )
                .await
            {
                Ok(()) => {
                    // The 250 is recorded before anything else, outside the write lock
                    // (see `store::confirmations`); folded into the row after the batch.
                    // In memory: the row is marked at once.
                    let at = clock.now();
                    if item.auto_submitted.is_some() {
                        for r in &item.recipients {
                            *sent_in_batch.entry(r.to_ascii_lowercase()).or_default() += 1;
                        }
                    }
                    match store.confirm_sent(item.id, at).await {
                        Ok(true) => {}
                        Ok(false) => mark_sent(store, item.id, at).await?,
                        Err(e) => {
                            tracing::warn!(event = "outbox.journal_failed", outbox = item.id, error = %e, "cannot journal the confirmation; marking the row directly");
                            mark_sent(store, item.id, at).await?;
                        }
                    }
                    recovered(sender, clock.now());
                    crate::send::copy_to_sent_folder(config, &item.raw).await;
                    report.sent += 1;
                    tracing::info!(
                        event = "outbox.sent",
                        outbox = item.id,
                        purpose = item.purpose.as_str(),
                        case = item.case_reference.as_deref().unwrap_or("-"),
                        "message sent"
                    );
                }
                Err(SendError::Outage(e)) => {
                    // This drain's other claims wait for the server like everything else
                    // (what it accepted before is marked sent first).
                    fold_confirmations(store).await?;
                    store.release_own_claims(clock.now()).await?;
                    outage(store, sender, clock, config, &e).await?;
                    report.outage = true;
                    return Ok(true);
                }
                Err(SendError::Transient(e)) if item.attempts + 1 < max_attempts => {
                    recovered(sender, clock.now());
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
                    recovered(sender, clock.now());
                    let why = match &e {
                        SendError::Transient(m) => {
                            format!("gave up after {} attempts: {m}", item.attempts + 1)
                        }
                        SendError::Permanent(m) | SendError::RecipientRefused(m) => m.clone(),
                        SendError::Outage(m) => m.clone(),
                    };
                    if matches!(e, SendError::RecipientRefused(_)) {
                        for r in &item.recipients {
                            if !config.firm.is_staff(r) {
                                store.record_bounce(r, clock.now(), "smtp").await?;
                            }
                        }
                    }
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
                    // A failed acknowledgement is the partner's to make by phone or letter:
                    // the acknowledgement watchdog (`partners::scheduler`) tells them once,
                    // with this answer; no second mail from here.
                }
            }
        }
    }
    Ok(false)
}

/// A row was delivered: mark it and record it on its case (the acknowledgement moves the
/// case to `acknowledged`), in one transaction.
async fn mark_sent(store: &Store, id: i64, now: DateTime<Utc>) -> Result<()> {
    let mut tx = store.begin().await?;
    let (case_id, purpose) = store::outbox_mark_sent(&mut tx, id, now).await?;
    record_sent(
        &mut tx,
        &mut case::Acknowledgements::default(),
        case_id,
        &purpose,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A delivered row on its case: the acknowledgement moves the case to `acknowledged`,
/// anything else is logged.
async fn record_sent(
    tx: &mut store::Tx,
    acknowledged: &mut case::Acknowledgements,
    case_id: Option<i64>,
    purpose: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(case_id) = case_id {
        let who = Actor::system(now);
        if purpose == "acknowledgement" {
            acknowledged.record(tx, case_id, who).await?;
        } else {
            case::log(
                tx,
                case_id,
                &format!("{purpose}.sent"),
                "delivered to the outgoing server",
                who,
            )
            .await?;
        }
    }
    Ok(())
}

/// Fold the confirmation journal into the outbox: every row the server accepted that is
/// not marked yet is marked sent and recorded on its case, in one transaction; then the
/// journal is emptied, at once or, on a handle whose commits do not wait for the disk,
/// after the next claim ([`Store::folded`]). Returns how many rows were marked now (0 for
/// rows folded before).
pub async fn fold_confirmations(store: &Store) -> Result<usize> {
    let read = store.read_confirmations().await?;
    if read.rows.is_empty() {
        return Ok(0);
    }
    let mut tx = store.begin().await?;
    let marked = store::outbox_confirm_sent(&mut tx, &read.rows).await?;
    // The acknowledged cases are read together; each row is then recorded in order.
    let acknowledged: Vec<i64> = marked
        .iter()
        .filter(|(_, _, _, purpose)| purpose == "acknowledgement")
        .filter_map(|(_, _, case_id, _)| *case_id)
        .collect();
    let mut cases = case::Acknowledgements::load(&mut tx, &acknowledged).await?;
    for (_, at, case_id, purpose) in &marked {
        record_sent(&mut tx, &mut cases, *case_id, purpose, *at).await?;
    }
    tx.commit().await?;
    store.folded(&read)?;
    Ok(marked.len())
}

/// A row is held back by the loop and flood rules: never sent, kept with the reason, and
/// its case flagged, in one transaction.
async fn mark_held(store: &Store, id: i64, now: DateTime<Utc>, why: &str) -> Result<()> {
    let mut tx = store.begin().await?;
    let (case_id, purpose) = store::outbox_mark_held(&mut tx, id, now, why).await?;
    if let Some(case_id) = case_id {
        case::flag(
            &mut tx,
            case_id,
            &format!("{purpose}.held"),
            &format!("{purpose} held back, not sent: {why}"),
            Actor::system(now),
        )
        .await?;
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

/// The transport works (it answered about a mail): an outage is over.
fn recovered(sender: &Sender, now: DateTime<Utc>) {
    let mut guard = sender.outage.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(o) = guard.take() {
        tracing::warn!(
            event = "outbox.recovered",
            transport = sender.describe(),
            down_for = %format!("{} min", (now - o.since).num_minutes()),
            failures = o.failures,
            "the outgoing server works again; queued mail is being sent"
        );
    }
}

/// The transport failed as a whole: record the outage (logged at error once), schedule the
/// next try, and after `alert_after` tell the partners through the fallback.
async fn outage(
    store: &Store,
    sender: &Sender,
    clock: &dyn Clock,
    config: &Config,
    error: &str,
) -> Result<()> {
    let now = clock.now();
    let state = {
        let mut guard = sender.outage.lock().unwrap_or_else(|e| e.into_inner());
        let o = match guard.take() {
            None => {
                tracing::error!(
                    event = "outbox.outage",
                    transport = sender.describe(),
                    error = %error,
                    "the outgoing server cannot be used; mail stays queued and is sent when it works again"
                );
                Outage {
                    since: now,
                    last_error: error.to_string(),
                    failures: 1,
                    next_try: next_outage_try(now, 1),
                    alerted: false,
                }
            }
            Some(mut o) => {
                o.failures += 1;
                o.next_try = next_outage_try(now, o.failures);
                o.last_error = error.to_string();
                tracing::debug!(event = "outbox.outage_continues", failures = o.failures, error = %error, "still down");
                o
            }
        };
        *guard = Some(o.clone());
        o
    };
    // The same outage, for `klachtpost status`. The partners are told below, through the
    // fallback: health sends no mail about the outgoing channel (it would queue it in the
    // outbox that is down).
    health::failed(store, config, clock, Channel::Outgoing, error).await?;
    if !state.alerted && now - state.since >= config.outgoing.alert_after {
        let told = alert_partners(store, sender, config, &state, now).await?;
        let mut guard = sender.outage.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(o), true) = (guard.as_mut(), told) {
            o.alerted = true;
        }
    }
    Ok(())
}

/// Tell every partner, through `[outgoing.fallback]`, that mail cannot be sent. Returns
/// whether that is done (or cannot ever be: no fallback configured).
async fn alert_partners(
    store: &Store,
    sender: &Sender,
    config: &Config,
    state: &Outage,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(fallback) = Sender::fallback(config)? else {
        tracing::error!(
            event = "outbox.outage_unreported",
            "the outgoing server has been down for outgoing.alert_after and no [outgoing.fallback] is configured: the partners cannot be told by mail"
        );
        return Ok(true);
    };
    // Once across instances: the one whose claim marks the shared outage tells them.
    if !health::claim_alert(store, now, Channel::Outgoing).await? {
        return Ok(true);
    }
    let queued = store
        .outbox_counts()
        .await?
        .into_iter()
        .find(|(s, _)| s == "queued")
        .map(|(_, n)| n)
        .unwrap_or(0);
    let templates = config.templates.load()?;
    let lang = config.templates.language.internal();
    let mut all = true;
    for partner in &config.firm.partners {
        let out = compose::notice_from_template(
            &templates,
            "outage_alert",
            lang,
            &NoticeHead {
                firm_name: &config.firm.name,
                firm_domain: config.firm.domain(),
                from: &config.outgoing.from,
                to: &[partner.email.as_str()],
                reference: "outage",
                now,
            },
            minijinja::context! {
                partner => &partner.name,
                since => compose::format_datetime(state.since, config.firm.timezone, lang),
                transport => sender.describe(),
                error => &state.last_error,
                queued,
            },
        )?;
        if let Err(e) = fallback
            .send(
                &config.outgoing.from,
                std::slice::from_ref(&partner.email),
                &out.raw,
                &format!("{}-outage", now.format("%Y%m%dT%H%M%S")),
            )
            .await
        {
            all = false;
            tracing::error!(event = "outbox.outage_alert_failed", error = %e, "the fallback could not tell a partner");
        }
    }
    if !all {
        health::unclaim_alert(store, now, Channel::Outgoing).await?;
    } else {
        tracing::warn!(
            event = "outbox.outage_alerted",
            partners = config.firm.partners.len(),
            "the partners are told through the fallback that mail cannot be sent"
        );
    }
    Ok(all)
}

/// Why an automatic mail must not go out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hold {
    /// To the firm's own mailbox: a loop.
    OwnAddress,
    /// The address bounced hard within `bounce_block`.
    Bounced,
    /// Over `max_auto_per_address`: (the limit, the window in words).
    Flood(u32, &'static str, &'static str),
}

impl Hold {
    fn why(&self) -> String {
        match self {
            Hold::OwnAddress => "loop: addressed to the firm's own mailbox".into(),
            Hold::Bounced => {
                "bounced: the address bounced hard within outgoing.bounce_block".into()
            }
            Hold::Flood(limit, _, en) => format!(
                "flood: {limit} automatic messages were already sent to the address within {en} (outgoing.max_auto_per_address)"
            ),
        }
    }
}

/// Whether the loop and flood rules hold `item` back: `records` are its recipients' as
/// the batch began ([`Store::recipient_records`]), `sent_in_batch` what the batch sent since.
fn hold_reason(
    config: &Config,
    item: &OutboxItem,
    records: &std::collections::HashMap<String, store::RecipientRecord>,
    sent_in_batch: &std::collections::HashMap<String, i64>,
) -> Option<Hold> {
    item.auto_submitted.as_ref()?;
    let out = &config.outgoing;
    for r in &item.recipients {
        let r = r.to_ascii_lowercase();
        if r == config.firm.address || r == out.from.to_ascii_lowercase() {
            return Some(Hold::OwnAddress);
        }
        if config.firm.is_staff(&r) {
            continue;
        }
        let record = records.get(&r).copied().unwrap_or_default();
        if record.bounced {
            return Some(Hold::Bounced);
        }
        let sent = sent_in_batch.get(&r).copied().unwrap_or(0);
        if record.automatic_last_hour + sent >= i64::from(out.max_auto_per_hour) {
            return Some(Hold::Flood(out.max_auto_per_hour, "een uur", "an hour"));
        }
        if record.automatic_last_day + sent >= i64::from(out.max_auto_per_day) {
            return Some(Hold::Flood(out.max_auto_per_day, "een dag", "a day"));
        }
    }
    None
}

/// Hold a row back; tell the partner (for a flood once a day per address).
async fn held(
    store: &Store,
    clock: &dyn Clock,
    config: &Config,
    item: &OutboxItem,
    hold: &Hold,
) -> Result<()> {
    let now = clock.now();
    let why = hold.why();
    mark_held(store, item.id, now, &why).await?;
    tracing::warn!(
        event = "outbox.held",
        outbox = item.id,
        purpose = item.purpose.as_str(),
        case = item.case_reference.as_deref().unwrap_or("-"),
        rule = %why,
        "automatic mail held back, not sent; the case is flagged"
    );
    let Some(reference) = &item.case_reference else {
        return Ok(());
    };
    // An acknowledgement held for a bounced address is told by the acknowledgement
    // watchdog (`partners::scheduler`), once, like a failed one.
    let tell = match hold {
        Hold::OwnAddress | Hold::Bounced => false,
        Hold::Flood(..) => {
            let mut first = true;
            for r in &item.recipients {
                if store
                    .flood_held_since(r, now - Duration::days(1), item.id)
                    .await?
                {
                    first = false;
                }
            }
            first
        }
    };
    if tell {
        let (limit, window) = match hold {
            Hold::Flood(limit, nl, en) => (
                *limit,
                match config.templates.language.internal() {
                    compose::Lang::Nl => *nl,
                    compose::Lang::En => *en,
                },
            ),
            _ => (0, ""),
        };
        let flood = matches!(hold, Hold::Flood(..));
        tell_partner(store, clock, config, reference, "held_notice", |p| {
            minijinja::context! { reference, partner => p, why => &why, flood, limit, window }
        })
        .await?;
    }
    Ok(())
}

/// Queue a notice of `kind` to the responsible partner of a case. (A notice that fails
/// is not noticed again: no loops.)
async fn tell_partner(
    store: &Store,
    clock: &dyn Clock,
    config: &Config,
    reference: &str,
    kind: &str,
    vars: impl FnOnce(&str) -> minijinja::Value,
) -> Result<()> {
    let Some((name, email)) = store.case_partner(reference).await? else {
        return Ok(());
    };
    let templates = config.templates.load()?;
    let out = compose::notice_from_template(
        &templates,
        kind,
        config.templates.language.internal(),
        &NoticeHead {
            firm_name: &config.firm.name,
            firm_domain: config.firm.domain(),
            from: &config.outgoing.from,
            to: &[email.as_str()],
            reference,
            now: clock.now(),
        },
        vars(&name),
    )?;
    store
        .queue_notice(reference, &email, &out, &config.outgoing.from, clock.now())
        .await?;
    tracing::info!(
        event = "notice.queued",
        case = reference,
        kind,
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

    #[test]
    fn an_outage_backs_off_to_ten_minutes() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let d = |f| (next_outage_try(now, f) - now).num_seconds();
        assert_eq!((d(1), d(2), d(3)), (30, 60, 120));
        assert_eq!(d(6), 600);
        assert_eq!(d(60), 600);
    }
}
