//! Leases (`leases`): a named row that one instance holds until `expires_at` and renews
//! before then. `mailbox:<which>` is the right to watch that mailbox; `instance:<id>` says
//! that instance is alive (its outbox claims are its own, see [`super::Store::claim_due`]).
//! Taking and renewing is one statement, so two instances that try at once never both
//! hold a lease: the row is created, or it is changed only when its holder is the caller
//! or it has expired. The policy (how long, how often) is in [`crate::lease`].

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::Clock as _;

use super::{Result, Sql, Store, StoreRow, Ts, on};

/// The prefix of the lease that says an instance is alive.
pub const INSTANCE: &str = "instance:";

/// How long an instance counts as alive after it said so (renewed every few seconds by
/// [`crate::lease::keep_presence`], and by each of its outbox claims).
pub const PRESENCE: chrono::Duration = chrono::Duration::seconds(20);

/// One lease row, for `klachtpost status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A name for this process among the instances on one database: host, pid, start time
/// (Unix seconds) and a random part (a pid is reused after a restart, in a container
/// often at once).
pub fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_string());
    let started = crate::clock::SystemClock.now().timestamp();
    format!(
        "{host}-{}-{started}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

impl Store {
    /// Take the lease `name` for this instance until `until`, or renew it when this
    /// instance holds it already. `true` when it holds the lease now; `false` when another
    /// instance holds it and it has not expired at `now`.
    pub async fn lease_take(
        &self,
        name: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let holder = self.instance();
        let mut tx = self.pool().begin_plain().await?;
        let taken = Sql::new(
            "INSERT INTO leases (name, holder, acquired_at, renewed_at, expires_at)
             VALUES ($1, $2, $3, $3, $4)
             ON CONFLICT (name) DO UPDATE SET
                 acquired_at = CASE WHEN leases.holder = excluded.holder
                                    THEN leases.acquired_at ELSE excluded.acquired_at END,
                 holder = excluded.holder,
                 renewed_at = excluded.renewed_at,
                 expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $3",
        )
        .bind(name)
        .bind(holder)
        .bind(Ts(now))
        .bind(Ts(until))
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(taken == 1)
    }

    /// Give the lease `name` up, if this instance holds it (a clean shutdown: another
    /// instance need not wait for it to expire).
    pub async fn lease_release(&self, name: &str) -> Result<()> {
        let mut tx = self.pool().begin_plain().await?;
        Sql::new("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(self.instance())
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every lease, by name; expired ones too (`status` shows when).
    pub async fn leases(&self) -> Result<Vec<LeaseRow>> {
        on!(self.pool(), |c| {
            let rows = sqlx::query(
                "SELECT name, holder, acquired_at, renewed_at, expires_at FROM leases ORDER BY name",
            )
            .fetch_all(c)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(LeaseRow {
                        name: r.col(0)?,
                        holder: r.col(1)?,
                        acquired_at: r.col::<Ts>(2)?.0,
                        renewed_at: r.col::<Ts>(3)?.0,
                        expires_at: r.col::<Ts>(4)?.0,
                    })
                })
                .collect()
        })
    }

    /// Remove leases that expired before `before` (instances gone long ago), so the table
    /// stays small. Returns how many.
    pub async fn leases_sweep(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool().begin_plain().await?;
        let swept = Sql::new("DELETE FROM leases WHERE expires_at < $1")
            .bind(Ts(before))
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    /// Intake in a backlog writes one transaction after another with hardly a gap; a
    /// lease renewal beside it must still get its turn at once (it once starved for
    /// SQLite's whole busy timeout, and the mailbox work stopped with mail left in INBOX).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_renewal_is_not_starved_by_a_stream_of_write_transactions() {
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 2, 12, 0, 0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let store = Store::open(&url).await.unwrap();
        let intake = store.deferred();
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let writer = tokio::spawn({
            let (stop, written) = (stop.clone(), written.clone());
            async move {
                while !stop.load(Ordering::SeqCst) {
                    let mut tx = intake.begin().await.unwrap();
                    Sql::new(
                        "INSERT INTO jobs (name, due_at) VALUES ('busy', $1)
                         ON CONFLICT (name) DO UPDATE SET due_at = excluded.due_at",
                    )
                    .bind(Ts(now))
                    .execute(&mut tx)
                    .await
                    .unwrap();
                    // The lock is held a while, as by a mail's transaction.
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    tx.commit().await.unwrap();
                    written.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        while written.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let before = written.load(Ordering::SeqCst);
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let started = Instant::now();
            assert!(
                store
                    .lease_take("mailbox:test", now, now + chrono::Duration::seconds(20))
                    .await
                    .unwrap()
            );
            slowest = slowest.max(started.elapsed());
        }
        let during = written.load(Ordering::SeqCst) - before;
        stop.store(true, Ordering::SeqCst);
        writer.await.unwrap();
        // Turns alternate: about one transaction of the writer per renewal.
        assert!(during >= 10, "the writer wrote {during} meanwhile");
        assert!(
            slowest < Duration::from_millis(500),
            "a renewal waited {slowest:?}"
        );
    }
}
