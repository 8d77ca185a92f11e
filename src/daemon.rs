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

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{Notify, watch};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Cpus};
use crate::fetch::{Destination, Fetched, Mailbox};
use crate::health::{self, Channel};
use crate::intake::{Disposition, Pipeline};
use crate::lease;
use crate::outbox;
use crate::send::Sender;
use crate::store::Store;

/// How many mails one intake pass (one batch, one synchronous commit, one UID MOVE) takes
/// before it lets the sender run.
pub const INTAKE_BATCH: usize = 200;
/// The longest a loop waits before looking again even without a signal.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// How long tasks get to finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(10);

/// Logs go to stderr; `KLACHTPOST_LOG` sets the filter (default `info`). At info and
/// above nothing of a complaint's content, names or addresses is logged.
/// `default` is the filter when the variable is not set.
pub fn init_tracing(default: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KLACHTPOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// One intake pass, one batch: take in what is new (at most [`INTAKE_BATCH`] mails and
/// [`crate::fetch::BATCH_BYTES`]; a larger mail alone), each mail in a transaction of its
/// own ([`crate::intake::quarantine`]: one mail never stops the batch, it goes to
/// quarantine alone); then make the batch durable with one synchronous commit
/// ([`Store::batch_durable`]), and only then move it away (IMAP: one UID MOVE per
/// destination) and advance the checkpoint. A single new mail is a batch of one, handled at
/// once. Returns how many mails made progress; a duplicate that could not be moved out of
/// the folder does not count, so a folder the mailbox cannot change does not make the
/// caller spin. An error only when the store cannot be written at all; the mail then stays
/// in the mailbox (what the batch took in before it is made durable and moved first).
pub async fn intake_pass(mailbox: &mut Mailbox, pipeline: &Pipeline<'_>) -> Result<usize> {
    pipeline.new_batch();
    let fetched = mailbox
        .fetch_new(pipeline.store, INTAKE_BATCH, pipeline.clock.now())
        .await?;
    if fetched.is_empty() {
        return Ok(0);
    }
    let mut batch: Vec<(Fetched, Destination, bool)> = Vec::with_capacity(fetched.len());
    let mut failure = None;
    for mut f in fetched {
        // The raw bytes are dropped as soon as the mail is handled: a batch holds each
        // mail once, and only until it is stored.
        let raw = std::mem::take(&mut f.raw);
        let handled = match pipeline
            .handle(&f.source_key, &raw, f.received_at)
            .await
            .with_context(|| format!("cannot take in {}", f.source_key))
        {
            Ok(h) => h,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        drop(raw);
        if let (Some(note), Some(row)) = (
            &f.received_note,
            handled.outcome.as_ref().and_then(|o| o.message_row),
        ) {
            // Stored; the note is what a partner needs to judge the receipt time.
            crate::intake::note_receipt_time(pipeline.store, row, note, pipeline.clock.now())
                .await?;
            tracing::warn!(
                event = "mail.receipt_time_fallback",
                source = f.source_key.as_str(),
                "no INTERNALDATE from the server; the receipt time comes from the Date header"
            );
        }
        let destination = match handled.disposition {
            Disposition::Processed => Destination::Processed,
            Disposition::Quarantined => Destination::Quarantine,
        };
        let duplicate = handled.outcome.as_ref().is_some_and(|o| o.duplicate);
        batch.push((f, destination, duplicate));
    }
    let mut progress = 0;
    if !batch.is_empty() {
        let now = pipeline.clock.now();
        // Nothing leaves the mailbox before it is on the disk.
        pipeline
            .store
            .batch_durable(&mailbox.key(), batch.len(), now)
            .await
            .context("cannot make the batch durable")?;
        let moves: Vec<(&Fetched, Destination)> = batch.iter().map(|(f, d, _)| (f, *d)).collect();
        let moved = mailbox.move_batch(pipeline.store, &moves, now).await;
        for ((f, _, duplicate), moved) in batch.iter().zip(moved) {
            match moved {
                Ok(()) => progress += 1,
                Err(e) => {
                    // Stored is what counts; a mail left in the folder is only untidy.
                    tracing::warn!(event = "mailbox.move_failed", source = f.source_key.as_str(), error = %format!("{e:#}"), "stored, but not moved");
                    if !duplicate {
                        progress += 1;
                    }
                }
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(progress),
    }
}

/// `klachtpost run`. With `once`, process the mailbox and the outbox until nothing is due
/// now, then return.
pub async fn run(config: Config, once: bool) -> Result<()> {
    let shutdown = shutdown_signal();
    if config.run.cpus == Cpus::One {
        keep_to_one_cpu();
    }
    let store = Store::open(&config.database_url).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    run_with(config, store, clock, once, shutdown).await
}

/// Keep every thread of the process, and every thread it starts later, on the CPU this
/// one runs on (`[run] cpus = "one"`, the default).
///
/// Each mail passes between threads dozens of times: the runtime's workers, and the
/// database's connection threads (sqlx runs each SQLite statement on the connection's own
/// thread). Spread over CPUs, every pass wakes another CPU (in a virtual machine, an
/// interrupt to a halted virtual CPU); on one CPU it is a context switch. Measured with
/// `scripts/bench-backlog` on a 2-CPU VM: 2,000 mails in 22.2 s spread, 9.4 s on one CPU,
/// with a fifth of the system time. The work itself is small, so one CPU is enough; a
/// failure to pin is logged and changes nothing else.
#[cfg(target_os = "linux")]
fn keep_to_one_cpu() {
    // SAFETY: plain system calls on a zeroed cpu_set_t of our own.
    let cpu = unsafe { libc::sched_getcpu() };
    let Ok(cpu) = usize::try_from(cpu) else {
        return;
    };
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // The runtime's threads exist already: each is moved (new ones inherit the mask).
    let tasks = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut failed = 0;
    for tid in &tasks {
        // SAFETY: `set` is a valid cpu_set_t of the size given.
        let r = unsafe { libc::sched_setaffinity(*tid, std::mem::size_of_val(&set), &set) };
        if r != 0 {
            failed += 1;
        }
    }
    if failed == 0 {
        tracing::info!(
            event = "run.one_cpu",
            cpu,
            threads = tasks.len(),
            "threads kept to one CPU ([run] cpus = \"one\")"
        );
    } else {
        tracing::warn!(event = "run.one_cpu_failed", cpu, failed, error = %std::io::Error::last_os_error(), "cannot keep every thread to one CPU; running as placed");
    }
}

#[cfg(not(target_os = "linux"))]
fn keep_to_one_cpu() {}

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
    if once {
        let result = run_once(&config, &store, clock.as_ref(), &sender, &mailbox_lease).await;
        let _ = stop_tx.send(true);
        let _ = presence.await;
        return result;
    }

    let config = Arc::new(config);
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
            Arc::new(sender),
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
    config: &Config,
    store: &Store,
    clock: &dyn Clock,
    sender: &Sender,
    mailbox_lease: &str,
) -> Result<()> {
    let (_stop_tx, stop_rx) = watch::channel(false);
    // Each batch taken in wakes the sender, which sends its acknowledgements while intake
    // goes on with the next batch (as the daemon does): a backlog's mail goes out as it
    // comes in, and intake's waits for the mail server and the sender's for the SMTP
    // server overlap.
    let batch_in = Notify::new();
    let (intake_done, mut intake_running) = watch::channel(false);
    let intake = async {
        let ended = lease::while_held(store, clock, mailbox_lease, true, stop_rx, |_| async {
            // Intake's commits wait for the disk once per batch (`store::batches`).
            let intake_store = store.deferred();
            let pipeline = Pipeline::new(config, &intake_store, clock)?;
            let mut mailbox = Mailbox::open(config).await?;
            while intake_pass(&mut mailbox, &pipeline).await? > 0 {
                batch_in.notify_one();
            }
            // For `status`: when intake last worked (a run from cron counts too).
            health::succeeded(store, config, clock, Channel::Mailbox, mailbox.waiting()).await?;
            mailbox.close().await;
            Ok(())
        })
        .await;
        let _ = intake_done.send(true);
        ended
    };
    let sender_beside = async {
        loop {
            tokio::select! {
                _ = batch_in.notified() => {}
                _ = intake_running.changed() => return Ok::<(), anyhow::Error>(()),
            }
            // An outage waits for its retry time (`drain_once` returns at once until then).
            outbox::drain_once(store, sender, clock, config).await?;
        }
    };
    let (ended, sent) = tokio::join!(intake, sender_beside);
    let ended = ended?;
    sent?;
    if ended == lease::Ended::NotHeld {
        tracing::info!(
            event = "lease.skipped",
            "another instance watches the mailbox; this run leaves it to that one"
        );
    }
    // What was taken in is sent either way; a run whose lease was lost says so.
    crate::partners::scheduler::step(store, config, clock).await?;
    outbox::drain_once(store, sender, clock, config).await?;
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
        loop {
            if *stop.borrow() {
                mailbox.close().await;
                break 'connect;
            }
            match intake_pass(&mut mailbox, &pipeline).await {
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
                    if n > 0 {
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
                let next = match (sender.retry_at(), store.outbox_next_due().await) {
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

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a SIGTERM in between (right after start-up, while the store
/// is opened) would otherwise kill the process instead of stopping it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                (Ok(mut only), Err(_)) | (Err(_), Ok(mut only)) => {
                    only.recv().await;
                }
                (Err(_), Err(_)) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
