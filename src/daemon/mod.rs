//! The loops of `klachtpost run`: an intake task (mailbox → [`intake`](crate::intake)), the
//! partners' job ([`partners::scheduler`](crate::partners::scheduler)) and a
//! sender task (outbox → [`send`](crate::send)), each with the same shape: do what is due,
//! then wait for new work, a kick, a timer or shutdown. Shutdown (SIGINT/SIGTERM) is in two
//! phases: stop taking work, then a bounded grace period for what is under way.
//!
//! Nothing spins: every retry waits with [`Backoff`] (1 s doubling to 5 min, jittered),
//! reset only after a pass that worked, so a server that accepts the login and then fails
//! every command is not hammered. Each task runs under [`supervise`]: a task that fails
//! (error or panic) is logged at error and restarted with backoff; one that keeps failing
//! stops the daemon with an error, so the process exits non-zero and systemd restarts it.
//! Every pass of the intake task is recorded in [`health`](crate::health), which tells the
//! partners about a long outage.

mod batch;
mod process;
mod supervise;

pub use batch::{INTAKE_BATCH, Intake, intake_pass};
pub use process::{init_tracing, shutdown_signal};
pub use supervise::{Backoff, Supervision, jitter, supervise};

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{Notify, watch};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Cpus};
use crate::fetch::Mailbox;
use crate::health::{self, Channel};
use crate::intake::Pipeline;
use crate::lease;
use crate::outbox;
use crate::send::Sender;
use crate::store::Store;

/// The longest a loop waits before looking again even without a signal.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// How long tasks get to finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(10);

/// `klachtpost run`. With `once`, process the mailbox and the outbox until nothing is due
/// now, then return.
pub async fn run(config: Config, once: bool) -> Result<()> {
    let shutdown = shutdown_signal();
    if config.run.cpus == Cpus::One {
        process::keep_to_one_cpu();
    }
    let store = Store::open(&config.database_url).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    run_with(config, store, clock, once, shutdown).await
}

/// [`run`] with the store, clock and shutdown injected (tests, demo).
pub async fn run_with(
    config: Config,
    store: Store,
    clock: Arc<dyn Clock>,
    once: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let sender = Sender::from_config(&config)?;
    // Check the template before touching any mail.
    Pipeline::new(&config, &store, clock.as_ref())?;
    // Rows stored before mail had identities get theirs, so nothing is taken in twice.
    let filled = store
        .fill_identities(|raw| crate::intake::identity::of(raw).sha256)
        .await?;
    if filled > 0 {
        tracing::info!(
            event = "store.identities_filled",
            rows = filled,
            "stored mail given its identity"
        );
    }
    // Alive before the outbox's claims are looked at: only those of instances that are
    // gone go back to the queue (`crate::lease`).
    lease::announce(&store, clock.as_ref()).await?;
    outbox::recover_claims(&store, clock.as_ref()).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let presence = tokio::spawn(lease::keep_presence(
        store.clone(),
        clock.clone(),
        stop_rx.clone(),
    ));
    let mailbox_lease = lease::mailbox_lease(&config);
    let config = Arc::new(config);
    let sender = Arc::new(sender);
    if once {
        let result = run_once(&config, &store, &clock, &sender, &mailbox_lease).await;
        let _ = stop_tx.send(true);
        let _ = presence.await;
        return result;
    }

    let kick = Arc::new(Notify::new());
    // Another instance's outbox inserts wake this sender (PostgreSQL LISTEN/NOTIFY).
    let wakeups = tokio::spawn(outbox_wakeups(store.clone(), kick.clone(), stop_rx.clone()));
    // The partners' job's own wake-up: the sender rings it when an acknowledgement failed
    // or was held, so the partner's "acknowledge by phone or letter" mail goes out now
    // rather than at the job's next timer.
    let partners_kick = Arc::new(Notify::new());

    let intake = tokio::spawn({
        let (config, store, clock, kick, stop) = (
            config.clone(),
            store.clone(),
            clock.clone(),
            kick.clone(),
            stop_rx.clone(),
        );
        // Only while this instance holds the mailbox's lease (`crate::lease`).
        supervise("intake", Supervision::DAEMON, stop_rx.clone(), move || {
            let (config, store, clock, kick, stop, name) = (
                config.clone(),
                store.clone(),
                clock.clone(),
                kick.clone(),
                stop.clone(),
                mailbox_lease.clone(),
            );
            async move {
                let ended = lease::while_held(&store, clock.as_ref(), &name, false, stop, |stop| {
                    intake_loop(
                        config.clone(),
                        store.clone(),
                        clock.clone(),
                        kick.clone(),
                        stop,
                    )
                })
                .await?;
                match ended {
                    lease::Ended::Stopped => Ok(()),
                    _ => anyhow::bail!("the intake loop ended without being asked to"),
                }
            }
        })
    });
    // The partners' job wakes at its own due times (the next send time, digest or
    // acknowledgement margin, at most 5 minutes apart) and kicks the sender when it queued.
    let partners = tokio::spawn({
        let (config, store, clock, kick, stop) = (
            config.clone(),
            store.clone(),
            clock.clone(),
            kick.clone(),
            stop_rx.clone(),
        );
        let own_kick = partners_kick.clone();
        supervise(
            "partners",
            Supervision::DAEMON,
            stop_rx.clone(),
            move || {
                let (config, store, clock, kick, stop, own_kick) = (
                    config.clone(),
                    store.clone(),
                    clock.clone(),
                    kick.clone(),
                    stop.clone(),
                    own_kick.clone(),
                );
                async move {
                    crate::partners::scheduler::run(config, store, clock, own_kick, kick, stop)
                        .await;
                    Ok(())
                }
            },
        )
    });
    let sending = tokio::spawn({
        let (config, store, clock, sender, stop) = (
            config.clone(),
            store.clone(),
            clock.clone(),
            sender,
            stop_rx.clone(),
        );
        supervise("sender", Supervision::DAEMON, stop_rx.clone(), move || {
            sender_loop(
                config.clone(),
                store.clone(),
                clock.clone(),
                sender.clone(),
                Kicks {
                    outbox: kick.clone(),
                    partners: partners_kick.clone(),
                },
                stop.clone(),
            )
        })
    });
    let retention = tokio::spawn({
        let (config, store, clock, stop) = (
            config.clone(),
            store.clone(),
            clock.clone(),
            stop_rx.clone(),
        );
        supervise(
            "retention",
            Supervision::DAEMON,
            stop_rx.clone(),
            move || retention_loop(config.clone(), store.clone(), clock.clone(), stop.clone()),
        )
    });
    tracing::info!(event = "daemon.started", "klachtpost is running");

    // Runs until a shutdown signal, or until a task could not be kept running: then the
    // daemon stops as a whole and exits non-zero, so that systemd restarts it. It never
    // runs on with one task dead.
    let mut tasks = [
        ("intake", Some(intake)),
        ("sender", Some(sending)),
        ("retention", Some(retention)),
        ("partners", Some(partners)),
    ];
    tokio::pin!(shutdown);
    let failure: Option<anyhow::Error> = {
        let [(_, Some(a)), (_, Some(b)), (_, Some(c)), (_, Some(d))] = &mut tasks else {
            unreachable!("the tasks were just started")
        };
        tokio::select! {
            _ = &mut shutdown => None,
            r = a => Some(task_end("intake", r).err().unwrap_or_else(|| anyhow::anyhow!("the intake task ended"))),
            r = b => Some(task_end("sender", r).err().unwrap_or_else(|| anyhow::anyhow!("the sender task ended"))),
            r = c => Some(task_end("retention", r).err().unwrap_or_else(|| anyhow::anyhow!("the retention task ended"))),
            r = d => Some(task_end("partners", r).err().unwrap_or_else(|| anyhow::anyhow!("the partners task ended"))),
        }
    };
    // A finished JoinHandle must not be awaited again.
    for (_, handle) in tasks.iter_mut() {
        if handle.as_ref().is_some_and(|h| h.is_finished()) {
            handle.take();
        }
    }
    match &failure {
        None => tracing::info!(
            event = "daemon.stopping",
            "shutting down: no new work is taken"
        ),
        Some(e) => tracing::error!(
            event = "daemon.stopping",
            error = %format!("{e:#}"),
            "a task cannot be kept running: stopping the daemon"
        ),
    }
    let _ = stop_tx.send(true);
    let rest = async {
        for (name, handle) in tasks.iter_mut() {
            if let Some(h) = handle.take()
                && let Err(e) = task_end(name, h.await)
            {
                tracing::error!(event = "daemon.task_failed", task = *name, error = %format!("{e:#}"), "task ended abnormally");
            }
        }
    };
    if tokio::time::timeout(GRACE, rest).await.is_err() {
        tracing::warn!(
            event = "daemon.grace_expired",
            "tasks did not finish within {GRACE:?}; stopping anyway"
        );
    }
    let _ = wakeups.await;
    let _ = presence.await;
    tracing::info!(event = "daemon.stopped", "klachtpost stopped");
    match failure {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// `run --once`: the mailbox (when no other instance watches it), the partners' job, the
/// outbox and the retention job, each until nothing is due now.
async fn run_once(
    config: &Arc<Config>,
    store: &Store,
    clock: &Arc<dyn Clock>,
    sender: &Arc<Sender>,
    mailbox_lease: &str,
) -> Result<()> {
    let (config_arc, clock_arc) = (config, clock);
    let (config, clock): (&Config, &dyn Clock) = (config, clock.as_ref());
    let (_stop_tx, stop_rx) = watch::channel(false);
    // Each batch taken in wakes the sender, which sends its acknowledgements while intake
    // goes on with the next batch (as the daemon does): a backlog's mail goes out as it
    // comes in, and intake's waits for the mail server and the sender's for the SMTP
    // server overlap. The sender is a task of its own, as in the daemon: with `[run] cpus
    // = "all"` it runs on the other CPU (a 10,000-mail backlog in 5.0 s instead of 5.8 s
    // when intake and sender took turns in one task).
    let batch_in = Arc::new(Notify::new());
    let (intake_done, mut intake_running) = watch::channel(false);
    // The sender marks rows sent without waiting for the disk; each claim waits
    // (`store::confirmations`), as in the daemon.
    let sender_store = store.deferred();
    let intake = async {
        let ended = lease::while_held(store, clock, mailbox_lease, true, stop_rx, |_| async {
            // Intake's commits wait for the disk once per batch (`store::batches`).
            let intake_store = store.deferred();
            let pipeline = Pipeline::new(config, &intake_store, clock)?;
            let mut mailbox = Mailbox::open(config).await?;
            let mut intake = Intake::new(&pipeline);
            let started = std::time::Instant::now();
            let mut mails = 0;
            loop {
                let n = intake.pass(&mut mailbox).await?;
                mails += n;
                if n == 0 && !intake.in_flight() {
                    break;
                }
                batch_in.notify_one();
            }
            // The mailbox is empty and every case committed: what `run --once` from cron
            // did, and (`scripts/bench-backlog`) how long a backlog took to come in.
            tracing::info!(
                event = "run.taken_in",
                mails,
                secs = started.elapsed().as_secs_f64(),
                "the mailbox is taken in; sending what is queued"
            );
            // For `status`: when intake last worked (a run from cron counts too).
            health::succeeded(store, config, clock, Channel::Mailbox, mailbox.waiting()).await?;
            mailbox.close().await;
            Ok(())
        })
        .await;
        let _ = intake_done.send(true);
        ended
    };
    let sender_beside = tokio::spawn({
        let (batch_in, sender_store, sender, clock, config) = (
            batch_in.clone(),
            sender_store.clone(),
            sender.clone(),
            clock_arc.clone(),
            config_arc.clone(),
        );
        async move {
            loop {
                tokio::select! {
                    _ = batch_in.notified() => {}
                    _ = intake_running.changed() => return Ok::<(), anyhow::Error>(()),
                }
                // An outage waits for its retry time (`drain_once` returns at once until then).
                outbox::drain_once(&sender_store, &sender, clock.as_ref(), &config).await?;
            }
        }
    });
    let ended = intake.await;
    let sent = sender_beside.await;
    let ended = ended?;
    sent??;
    if ended == lease::Ended::NotHeld {
        tracing::info!(
            event = "lease.skipped",
            "another instance watches the mailbox; this run leaves it to that one"
        );
    }
    // What was taken in is sent either way; a run whose lease was lost says so.
    crate::partners::scheduler::step(store, config, clock).await?;
    outbox::drain_once(&sender_store, sender, clock, config).await?;
    crate::retention::daily_job(store, config, clock.now()).await?;
    if ended == lease::Ended::Lost {
        anyhow::bail!(
            "the mailbox lease was lost during the run: intake stopped there, and what it did not reach stays in the mailbox for the next run"
        );
    }
    Ok(())
}

/// Wake the sender when any instance queues outgoing mail (PostgreSQL: LISTEN on the
/// outbox's channel; SQLite: one process, its own kicks suffice). A lost connection is
/// logged and listened to again after a backoff; until then the sender's own timers hold.
async fn outbox_wakeups(store: Store, kick: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::reconnect();
    loop {
        let mut listener = match store.listen_outbox().await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(event = "outbox.listen_failed", error = %format!("{e:#}"), retry_in = ?delay, "cannot listen for outgoing mail of other instances");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        loop {
            tokio::select! {
                r = listener.next() => match r {
                    Ok(()) => {
                        backoff.reset();
                        kick.notify_one();
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(event = "outbox.listen_failed", error = %format!("{e:#}"), retry_in = ?delay, "lost the outbox's wake-ups; listening again");
                        // Whatever was queued meanwhile is looked at now.
                        kick.notify_one();
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => break,
                            _ = stop.changed() => return,
                        }
                    }
                },
                _ = stop.changed() => return,
            }
        }
    }
}

/// How a supervisor's task ended, as an error (`Ok(())` only when it was asked to stop).
fn task_end(name: &str, r: Result<Result<()>, tokio::task::JoinError>) -> Result<()> {
    match r {
        Ok(r) => r.with_context(|| format!("the {name} task failed")),
        Err(e) => Err(anyhow::anyhow!(
            "the {name} supervisor ended abnormally: {e}"
        )),
    }
}

async fn intake_loop(
    config: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    kick: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    // Intake's commits wait for the disk once per batch (`store::batches`).
    let intake_store = store.deferred();
    let pipeline = Pipeline::new(&config, &intake_store, clock.as_ref())?;
    // Reset only after a pass that worked: a server that accepts the login and then fails
    // the first command must not be hammered.
    let mut backoff = Backoff::reconnect();
    let failed = |error: anyhow::Error, event: &'static str, what: &'static str| {
        let (store, config, clock, kick) = (&store, &config, &clock, &kick);
        async move {
            let error = format!("{error:#}");
            tracing::warn!(event, error = %error, "{what}");
            match health::failed(store, config, clock.as_ref(), Channel::Mailbox, &error).await {
                Ok(true) => kick.notify_one(),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(event = "health.write_failed", error = %format!("{e:#}"), "cannot record the mailbox outage");
                }
            }
        }
    };
    'connect: while !*stop.borrow() {
        let mut mailbox = match Mailbox::open(&config).await {
            Ok(m) => {
                tracing::info!(event = "mailbox.connected", "mailbox opened");
                m
            }
            Err(e) => {
                failed(e, "mailbox.unreachable", "cannot open the mailbox").await;
                if pause(&mut backoff, &mut stop).await {
                    break 'connect;
                }
                continue;
            }
        };
        // Batches in flight do not outlive the connection: after an error they are fetched
        // again (duplicates) and moved then.
        let mut intake = Intake::new(&pipeline);
        loop {
            if *stop.borrow() {
                // What is taken in leaves the mailbox before klachtpost stops.
                if let Err(e) = intake.settle(&mut mailbox).await {
                    tracing::warn!(event = "intake.failed", error = %format!("{e:#}"), "intake pass failed while stopping");
                }
                mailbox.close().await;
                break 'connect;
            }
            match intake.pass(&mut mailbox).await {
                Ok(n) => {
                    backoff.reset();
                    let waiting = mailbox.waiting();
                    match health::succeeded(
                        &store,
                        &config,
                        clock.as_ref(),
                        Channel::Mailbox,
                        waiting,
                    )
                    .await
                    {
                        Ok(true) => kick.notify_one(),
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(event = "health.write_failed", error = %format!("{e:#}"), "cannot record the intake pass");
                        }
                    }
                    // A batch in flight has queued acknowledgements, and the next pass
                    // moves it: on at once. Nothing new and nothing in flight: wait.
                    if n > 0 || intake.in_flight() {
                        kick.notify_one();
                        continue;
                    }
                }
                Err(e) => {
                    failed(e, "intake.failed", "intake pass failed; reconnecting").await;
                    if pause(&mut backoff, &mut stop).await {
                        break 'connect;
                    }
                    continue 'connect;
                }
            }
            tokio::select! {
                r = mailbox.wait(MAX_WAIT) => {
                    if let Err(e) = r {
                        failed(e, "mailbox.lost", "mailbox connection lost; reconnecting").await;
                        if pause(&mut backoff, &mut stop).await {
                            break 'connect;
                        }
                        continue 'connect;
                    }
                }
                _ = stop.changed() => {
                    // The mailbox is mid-IDLE: drop it rather than wait for the server.
                    break 'connect;
                }
            }
        }
    }
    tracing::info!(event = "intake.stopped", "intake stopped");
    Ok(())
}

/// Wait the next backoff delay; `true` when asked to stop meanwhile.
async fn pause(backoff: &mut Backoff, stop: &mut watch::Receiver<bool>) -> bool {
    let delay = backoff.next_delay();
    tracing::info!(event = "mailbox.retry_in", delay = ?delay, "trying again after a pause");
    tokio::select! {
        _ = tokio::time::sleep(delay) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// What the sender listens to and whom it wakes.
struct Kicks {
    /// Rung when there is new mail to send (intake, the partners' job).
    outbox: Arc<Notify>,
    /// Rung by the sender when an acknowledgement failed or was held.
    partners: Arc<Notify>,
}

async fn sender_loop(
    config: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    sender: Arc<Sender>,
    kicks: Kicks,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    // Marking rows sent does not wait for the disk; each claim does (`store::confirmations`).
    let store = store.deferred();
    let mut backoff = Backoff::reconnect();
    loop {
        if *stop.borrow() {
            break;
        }
        let wait = match outbox::drain_once(&store, &sender, clock.as_ref(), &config).await {
            Ok(drained) => {
                backoff.reset();
                if drained.failed > 0 || drained.held > 0 {
                    kicks.partners.notify_one();
                }
                // While the transport is down, its own backoff decides, not the due rows.
                let next = match (sender.retry_at(), store.outbox_next_due(clock.now()).await) {
                    (Some(retry), _) => Some(retry),
                    (None, Ok(due)) => due,
                    (None, Err(_)) => None,
                };
                match next {
                    Some(t) => (t - clock.now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(MAX_WAIT),
                    None => MAX_WAIT,
                }
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(event = "outbox.drain_failed", error = %format!("{e:#}"), retry_in = ?delay, "cannot read the outbox");
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait.max(Duration::from_millis(50))) => {}
            _ = kicks.outbox.notified() => {}
            _ = stop.changed() => break,
        }
    }
    tracing::info!(event = "sender.stopped", "sender stopped");
    Ok(())
}

/// The daily retention purge: a due row in `jobs` ([`crate::retention::daily_job`]), so a
/// restart neither skips nor repeats a day. Between runs it sleeps at most [`MAX_WAIT`].
async fn retention_loop(
    config: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut backoff = Duration::from_secs(60);
    loop {
        if *stop.borrow() {
            break;
        }
        let wait = match crate::retention::daily_job(&store, &config, clock.now()).await {
            Ok(next) => {
                backoff = Duration::from_secs(60);
                (next - clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(MAX_WAIT)
            }
            Err(e) => {
                tracing::warn!(event = "retention.job_failed", error = %format!("{e:#}"), retry_in = ?backoff, "cannot run the retention job");
                backoff = (backoff * 2).min(Duration::from_secs(3600));
                backoff
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait.max(Duration::from_secs(1))) => {}
            _ = stop.changed() => break,
        }
    }
    tracing::info!(event = "retention.stopped", "retention stopped");
    Ok(())
}
