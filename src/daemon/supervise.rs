//! Retries and restarts: [`Backoff`] (exponential, capped, jittered) and [`supervise`],
//! which restarts a failed task and gives up on one that keeps failing.

use std::time::Duration;

use anyhow::Result;
use tokio::sync::watch;

/// Reconnect and retry delays: exponential, capped, with jitter so that many clients (or
/// several tasks) that failed together do not come back together.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// 1 s doubling to 5 min: for reconnecting to a server.
    pub fn reconnect() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(300))
    }

    /// The delay before the next attempt (the base doubles each call), jittered by
    /// ±20 %.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        jitter(base, rand::random::<f64>())
    }

    /// After an attempt that really worked: start again from the first delay.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// `base` scaled into [80 %, 120 %] by `r` in [0, 1).
pub fn jitter(base: Duration, r: f64) -> Duration {
    base.mul_f64(0.8 + 0.4 * r.clamp(0.0, 1.0))
}

/// How a supervisor restarts a task.
#[derive(Debug, Clone, Copy)]
pub struct Supervision {
    /// Restart delays: from `first`, doubling to `max`.
    pub first: Duration,
    pub max: Duration,
    /// A run at least this long counts as a success: the count of failures starts again.
    pub stable_after: Duration,
    /// Give up (and stop the daemon) after this many short runs in a row.
    pub max_failures: u32,
}

impl Supervision {
    pub const DAEMON: Supervision = Supervision {
        first: Duration::from_secs(1),
        max: Duration::from_secs(60),
        stable_after: Duration::from_secs(300),
        max_failures: 5,
    };
}

/// Run a task until `stop`; when it fails (returns an error, panics, or ends without being
/// asked to) it is logged at error and started again after a backoff. After
/// `max_failures` failures in a row that each ran shorter than `stable_after`, give up
/// with an error.
pub async fn supervise<F, Fut>(
    name: &'static str,
    policy: Supervision,
    stop: watch::Receiver<bool>,
    mut make: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let mut stop = stop;
    let mut backoff = Backoff::new(policy.first, policy.max);
    let mut failures = 0u32;
    loop {
        let started = tokio::time::Instant::now();
        let ended = tokio::spawn(make()).await;
        if *stop.borrow() {
            return match ended {
                Ok(r) => r,
                Err(e) => Err(anyhow::anyhow!("the {name} task {}", join_error(e))),
            };
        }
        let why = match ended {
            Ok(Ok(())) => "ended without being asked to".to_string(),
            Ok(Err(e)) => format!("{e:#}"),
            Err(e) => join_error(e),
        };
        if started.elapsed() >= policy.stable_after {
            failures = 0;
            backoff.reset();
        }
        failures += 1;
        if failures >= policy.max_failures {
            tracing::error!(event = "daemon.task_gave_up", task = name, failures, error = %why, "the task keeps failing; giving up");
            anyhow::bail!("the {name} task failed {failures} times in a row; last: {why}");
        }
        let delay = backoff.next_delay();
        tracing::error!(event = "daemon.task_failed", task = name, failures, error = %why, restart_in = ?delay, "task failed; restarting it");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

fn join_error(e: tokio::task::JoinError) -> String {
    if e.is_panic() {
        let p = e.into_panic();
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("panicked: {msg}")
    } else {
        "was cancelled".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_and_resets() {
        let mut b = Backoff::reconnect();
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let base = Duration::from_secs((1u64 << i.min(9)).min(300));
            assert!(
                *d >= base.mul_f64(0.8) && *d <= base.mul_f64(1.2),
                "attempt {i}: {d:?} vs base {base:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1200));
        assert_eq!(jitter(Duration::from_secs(10), 0.0), Duration::from_secs(8));
        assert_eq!(
            jitter(Duration::from_secs(10), 1.0),
            Duration::from_secs(12)
        );
    }

    const QUICK: Supervision = Supervision {
        first: Duration::from_millis(10),
        max: Duration::from_millis(40),
        stable_after: Duration::from_secs(60),
        max_failures: 4,
    };

    #[tokio::test]
    async fn a_task_that_keeps_failing_is_restarted_with_backoff_then_given_up() {
        let (_stop_tx, stop_rx) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let started = std::time::Instant::now();
        let r = supervise("test", QUICK, stop_rx, move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n.is_multiple_of(2) {
                    panic!("boom {n}");
                }
                anyhow::bail!("cannot do it {n}")
            }
        })
        .await;
        let e = r.expect_err("gives up");
        assert!(format!("{e:#}").contains("failed 4 times"), "{e:#}");
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        // Three pauses: about 10 + 20 + 40 ms, never a hot loop.
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_failed_task_is_restarted_and_stops_when_asked() {
        let (stop_tx, stop_rx) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let stop_for_task = stop_rx.clone();
        let sup = tokio::spawn(supervise("test", QUICK, stop_rx, move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let mut stop = stop_for_task.clone();
            async move {
                if n == 0 {
                    panic!("first run fails");
                }
                let _ = stop.changed().await;
                Ok(())
            }
        }));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while runs.load(Ordering::SeqCst) < 2 {
            assert!(std::time::Instant::now() < deadline, "not restarted");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop_tx.send(true).unwrap();
        sup.await.unwrap().expect("a clean stop");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
