//! The loops of `klachtpost run`: an intake task (mailbox → [`intake`](crate::intake)) and a
//! sender task (outbox → [`send`](crate::send)), each with the same shape: do what is due,
//! then wait for new work, a kick, a timer or shutdown. Shutdown (SIGINT/SIGTERM) is in two
//! phases: stop taking work, then a bounded grace period for what is under way.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{Notify, watch};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::fetch::Mailbox;
use crate::intake::Pipeline;
use crate::outbox;
use crate::send::Sender;
use crate::store::Store;

/// How many mails one intake pass takes before it lets the sender run.
const INTAKE_BATCH: usize = 100;
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

/// One intake pass: take in everything new (up to a batch), moving each mail away once
/// stored. Returns how many mails were handled.
pub async fn intake_pass(mailbox: &mut Mailbox, pipeline: &Pipeline<'_>) -> Result<usize> {
    let fetched = mailbox.fetch_new(pipeline.store, INTAKE_BATCH).await?;
    let n = fetched.len();
    for f in fetched {
        let outcome = pipeline
            .take_in(Some(&f.source_key), &f.raw, f.received_at)
            .await
            .with_context(|| format!("cannot take in {}", f.source_key))?;
        if outcome.duplicate {
            tracing::info!(
                event = "mail.duplicate",
                source = f.source_key.as_str(),
                "already stored; moving it"
            );
        }
        if let Err(e) = mailbox
            .processed(pipeline.store, &f, pipeline.clock.now())
            .await
        {
            // Stored is what counts; a mail left in the folder is only untidy.
            tracing::warn!(event = "mailbox.move_failed", source = f.source_key.as_str(), error = %format!("{e:#}"), "stored, but not moved");
        }
    }
    Ok(n)
}

/// `klachtpost run`. With `once`, process the mailbox and the outbox until nothing is due
/// now, then return.
pub async fn run(config: Config, once: bool) -> Result<()> {
    let store = Store::open(&config.database_url).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    run_with(config, store, clock, once, shutdown_signal()).await
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
    outbox::recover_claims(&store, clock.as_ref()).await?;
    if once {
        let pipeline = Pipeline::new(&config, &store, clock.as_ref())?;
        let mut mailbox = Mailbox::open(&config).await?;
        while intake_pass(&mut mailbox, &pipeline).await? > 0 {}
        mailbox.close().await;
        outbox::drain_once(&store, &sender, clock.as_ref(), &config).await?;
        return Ok(());
    }

    let config = Arc::new(config);
    let kick = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);

    let intake = tokio::spawn(intake_loop(
        config.clone(),
        store.clone(),
        clock.clone(),
        kick.clone(),
        stop_rx.clone(),
    ));
    let sending = tokio::spawn(sender_loop(
        config.clone(),
        store.clone(),
        clock.clone(),
        sender,
        kick,
        stop_rx,
    ));
    tracing::info!(event = "daemon.started", "klachtpost is running");

    shutdown.await;
    tracing::info!(
        event = "daemon.stopping",
        "shutting down: no new work is taken"
    );
    let _ = stop_tx.send(true);
    let both = async {
        let (a, b) = tokio::join!(intake, sending);
        if let Err(e) = a {
            tracing::error!(event = "daemon.task_failed", task = "intake", error = %e, "task ended abnormally");
        }
        if let Err(e) = b {
            tracing::error!(event = "daemon.task_failed", task = "sender", error = %e, "task ended abnormally");
        }
    };
    if tokio::time::timeout(GRACE, both).await.is_err() {
        tracing::warn!(
            event = "daemon.grace_expired",
            "tasks did not finish within {GRACE:?}; stopping anyway"
        );
    }
    tracing::info!(event = "daemon.stopped", "klachtpost stopped");
    Ok(())
}

async fn intake_loop(
    config: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    kick: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let pipeline = match Pipeline::new(&config, &store, clock.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(event = "intake.stopped", error = %format!("{e:#}"), "intake cannot start");
            return;
        }
    };
    let mut backoff = Duration::from_secs(1);
    'connect: while !*stop.borrow() {
        let mut mailbox = match Mailbox::open(&config).await {
            Ok(m) => {
                backoff = Duration::from_secs(1);
                tracing::info!(event = "mailbox.connected", "mailbox opened");
                m
            }
            Err(e) => {
                tracing::warn!(event = "mailbox.unreachable", error = %format!("{e:#}"), retry_in = ?backoff, "cannot open the mailbox");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => break 'connect,
                }
                backoff = (backoff * 2).min(Duration::from_secs(300));
                continue;
            }
        };
        loop {
            if *stop.borrow() {
                mailbox.close().await;
                break 'connect;
            }
            match intake_pass(&mut mailbox, &pipeline).await {
                Ok(n) if n > 0 => {
                    kick.notify_one();
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(event = "intake.failed", error = %format!("{e:#}"), "intake pass failed; reconnecting");
                    continue 'connect;
                }
            }
            tokio::select! {
                r = mailbox.wait(MAX_WAIT) => {
                    if let Err(e) = r {
                        tracing::warn!(event = "mailbox.lost", error = %format!("{e:#}"), "mailbox connection lost; reconnecting");
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
}

async fn sender_loop(
    config: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    sender: Sender,
    kick: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            break;
        }
        if let Err(e) = outbox::drain_once(&store, &sender, clock.as_ref(), &config).await {
            tracing::warn!(event = "outbox.drain_failed", error = %format!("{e:#}"), "cannot read the outbox");
        }
        let wait = match store.outbox_next_due().await {
            Ok(Some(t)) => (t - clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_WAIT),
            _ => MAX_WAIT,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait.max(Duration::from_millis(50))) => {}
            _ = kick.notified() => {}
            _ = stop.changed() => break,
        }
    }
    tracing::info!(event = "sender.stopped", "sender stopped");
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
