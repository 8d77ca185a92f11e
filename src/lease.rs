//! Several instances on one database: who watches the mailbox, and who is alive.
//!
//! Each mailbox is watched by one instance at a time. The instance that holds the
//! mailbox's lease (`mailbox:<which>`, a row in `leases`, see [`crate::store::lease`])
//! renews it every [`RENEW_EVERY`] for [`TTL`]; the others try to take it every
//! [`RENEW_EVERY`] (jittered), which succeeds once it has expired. So when the holder is
//! killed another instance takes the mailbox over within `TTL + RENEW_EVERY` (25 s).
//! A holder that cannot renew (the database is unreachable, or another instance took the
//! lease) stops its mailbox work [`MARGIN`] before its lease could expire, measured on
//! its own monotonic clock from the start of its last renewal that worked: the work is
//! dropped where it is, which is as safe as a crash (a mail leaves the mailbox only after
//! it is stored, and one stored twice is known by its identity).
//!
//! Besides, every running instance holds `instance:<id>` ([`keep_presence`]): outbox rows
//! claimed by an instance without it are taken again at once ([`crate::store::Store::claim_due`]).
//! On SQLite (one process per file) it is the same code on one row.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::{Config, Mailbox};
use crate::daemon::jitter;
use crate::store::Store;
use crate::store::lease::{INSTANCE, PRESENCE};

/// How often a lease is renewed, and how often an instance without it tries to take it.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How long a lease holds without renewal (the store's [`PRESENCE`] too).
pub const TTL: Duration = Duration::from_secs(PRESENCE.num_seconds() as u64);
/// A holder that could not renew stops this long before its lease could expire.
pub const MARGIN: Duration = Duration::from_secs(5);
/// After a failed renewal, the next try comes this soon.
const RETRY: Duration = Duration::from_secs(1);

/// The lease name of the configured mailbox: the server, account and folder (IMAP) or
/// the path (Maildir), so instances configured for the same mailbox share one lease and
/// different mailboxes on one database have their own.
pub fn mailbox_lease(config: &Config) -> String {
    match &config.mailbox {
        Mailbox::Imap { server, folder, .. } => format!(
            "mailbox:imap://{}@{}:{}/{}",
            server.username.as_deref().unwrap_or(""),
            server.host,
            server.port,
            folder
        ),
        Mailbox::Maildir { path } => format!("mailbox:maildir:{}", path.display()),
    }
}

/// The lease that says this instance is alive.
pub fn presence_lease(store: &Store) -> String {
    format!("{INSTANCE}{}", store.instance())
}

fn ttl() -> chrono::Duration {
    PRESENCE
}

/// Take or renew `name` now; `Ok(Some(deadline))` when held, with the moment (monotonic,
/// from the start of this attempt) this instance must stop relying on it.
async fn take(store: &Store, clock: &dyn Clock, name: &str) -> Result<Option<Instant>> {
    let started = Instant::now();
    let now = clock.now();
    Ok(store
        .lease_take(name, now, now + ttl())
        .await?
        .then(|| started + TTL - MARGIN))
}

/// Say that this instance is alive (at start-up, before its outbox claims are looked at).
/// Leases expired longer ago than a day (instances gone) are removed meanwhile.
pub async fn announce(store: &Store, clock: &dyn Clock) -> Result<()> {
    take(store, clock, &presence_lease(store)).await?;
    store
        .leases_sweep(clock.now() - chrono::Duration::days(1))
        .await?;
    Ok(())
}

/// Keep this instance's presence lease until `stop`, then give it up. Never fails: a
/// renewal that does not work is logged and tried again soon.
pub async fn keep_presence(store: Store, clock: Arc<dyn Clock>, mut stop: watch::Receiver<bool>) {
    let name = presence_lease(&store);
    loop {
        let wait = match take(&store, clock.as_ref(), &name).await {
            Ok(_) => jitter(RENEW_EVERY, rand::random::<f64>()),
            Err(e) => {
                tracing::warn!(event = "instance.renew_failed", error = %format!("{e:#}"), "cannot renew this instance's presence");
                RETRY
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    if let Err(e) = store.lease_release(&name).await {
        tracing::warn!(event = "instance.release_failed", error = %format!("{e:#}"), "cannot give up this instance's presence");
    }
}

/// How [`while_held`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Asked to stop.
    Stopped,
    /// The work ended by itself (with `once`: done).
    Done,
    /// With `once`: another instance holds the lease, nothing was done.
    NotHeld,
    /// With `once`: the lease was lost during the work, which was stopped there (what it
    /// did not reach stays for the next run).
    Lost,
}

/// Run `work` only while this instance holds the lease `name`: wait (trying again every
/// [`RENEW_EVERY`], jittered) until it can be taken, start `work`, renew the lease every
/// [`RENEW_EVERY`] meanwhile; when it cannot be renewed in time, drop `work` and wait
/// again. `work` gets `stop`. Ends when `stop` is set (the lease is given up), when
/// `work` ends (given up too; its error is returned), or with `once` when another
/// instance holds the lease at the first try.
pub async fn while_held<F, Fut>(
    store: &Store,
    clock: &dyn Clock,
    name: &str,
    once: bool,
    mut stop: watch::Receiver<bool>,
    mut work: F,
) -> Result<Ended>
where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut waiting_logged = false;
    loop {
        if *stop.borrow() {
            return Ok(Ended::Stopped);
        }
        // Not held: try to take it.
        let mut deadline = match take(store, clock, name).await {
            Ok(Some(d)) => d,
            Ok(None) if once => return Ok(Ended::NotHeld),
            Err(e) if once => return Err(e),
            Ok(None) => {
                if !waiting_logged {
                    tracing::info!(
                        event = "lease.waiting",
                        "another instance watches the mailbox; waiting to take over"
                    );
                    waiting_logged = true;
                }
                if pause(jitter(RENEW_EVERY, rand::random::<f64>()), &mut stop).await {
                    return Ok(Ended::Stopped);
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(event = "lease.take_failed", error = %format!("{e:#}"), "cannot take the mailbox lease");
                if pause(RENEW_EVERY, &mut stop).await {
                    return Ok(Ended::Stopped);
                }
                continue;
            }
        };
        waiting_logged = false;
        tracing::info!(
            event = "lease.taken",
            instance = store.instance(),
            "this instance watches the mailbox"
        );
        let mut job = Box::pin(work(stop.clone()));
        let mut next_renew = Instant::now() + RENEW_EVERY;
        // The renewal runs beside the work, never instead of it: the work may be inside a
        // write transaction the renewal has to wait for, and a work that is not polled
        // meanwhile would never finish it (the lease then lapsed mid-backlog).
        let mut renewal = None;
        let lost = loop {
            tokio::select! {
                r = &mut job => {
                    drop(renewal);
                    if let Err(e) = store.lease_release(name).await {
                        tracing::warn!(event = "lease.release_failed", error = %format!("{e:#}"), "cannot give up the mailbox lease");
                    }
                    r?;
                    return Ok(if *stop.borrow() { Ended::Stopped } else { Ended::Done });
                }
                _ = tokio::time::sleep_until(deadline) => break "not renewed in time",
                _ = tokio::time::sleep_until(next_renew), if renewal.is_none() => {
                    renewal = Some(Box::pin(take(store, clock, name)));
                }
                renewed = async { renewal.as_mut().expect("guarded").await }, if renewal.is_some() => {
                    renewal = None;
                    match renewed {
                        Ok(Some(d)) => {
                            deadline = d;
                            next_renew = Instant::now() + RENEW_EVERY;
                        }
                        Ok(None) => break "taken by another instance",
                        Err(e) => {
                            tracing::warn!(event = "lease.renew_failed", error = %format!("{e:#}"), "cannot renew the mailbox lease");
                            next_renew = Instant::now() + RETRY;
                        }
                    }
                }
            }
        };
        drop(renewal);
        // Dropping the work stops it where it is, before the lease could expire.
        drop(job);
        tracing::warn!(
            event = "lease.lost",
            why = lost,
            "the mailbox lease was lost; the mailbox work is stopped"
        );
        if once {
            return Ok(Ended::Lost);
        }
        if pause(RENEW_EVERY, &mut stop).await {
            return Ok(Ended::Stopped);
        }
    }
}

/// Wait `d`; `true` when asked to stop meanwhile.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Who watches a mailbox, for `klachtpost status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailboxHolder {
    /// The lease's mailbox (`imap://user@host:port/folder` or `maildir:PATH`).
    pub mailbox: String,
    pub instance: String,
    /// Since when this instance holds it.
    pub since: chrono::DateTime<chrono::Utc>,
    pub renewed_at: chrono::DateTime<chrono::Utc>,
    /// Until when it holds without renewing.
    pub until: chrono::DateTime<chrono::Utc>,
    /// Expired at the time of asking: its holder is gone, another instance takes over.
    pub expired: bool,
}

/// An instance seen on the database, for `klachtpost status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceSeen {
    pub instance: String,
    pub since: chrono::DateTime<chrono::Utc>,
    pub until: chrono::DateTime<chrono::Utc>,
    /// Its presence had not expired at the time of asking.
    pub alive: bool,
}

/// The mailbox leases and the instances, at `now`.
pub async fn holders(
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<MailboxHolder>, Vec<InstanceSeen>)> {
    let mut mailboxes = Vec::new();
    let mut instances = Vec::new();
    for row in store.leases().await? {
        if let Some(mailbox) = row.name.strip_prefix("mailbox:") {
            mailboxes.push(MailboxHolder {
                mailbox: mailbox.to_string(),
                instance: row.holder,
                since: row.acquired_at,
                renewed_at: row.renewed_at,
                until: row.expires_at,
                expired: row.expires_at <= now,
            });
        } else if let Some(id) = row.name.strip_prefix(INSTANCE) {
            instances.push(InstanceSeen {
                instance: id.to_string(),
                since: row.acquired_at,
                until: row.expires_at,
                alive: row.expires_at > now,
            });
        }
    }
    Ok((mailboxes, instances))
}
