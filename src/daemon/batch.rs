//! Intake over one mailbox connection, batch by batch: each batch taken in, made durable,
//! then moved away; on a backlog the batches overlap, so the mail server and the disk work
//! while klachtpost does.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::fetch::{Destination, Fetched, Mailbox};
use crate::intake::{Disposition, Pipeline, TakenIn};
use crate::store::{Tx, dialect};

/// How many mails one intake pass (one batch, one synchronous commit, one UID MOVE) takes
/// before it lets the sender run.
pub const INTAKE_BATCH: usize = 200;

/// One pass over the mailbox, complete: what is new taken in ([`Intake::pass`]), made
/// durable and moved away ([`Intake::settle`]). Returns how many mails made progress (as
/// [`Intake::settle`]). For one look at the mailbox (tests, the demo); the daemon keeps an
/// [`Intake`], so that on a backlog one batch's disk and mailbox work overlaps the next.
pub async fn intake_pass(mailbox: &mut Mailbox, pipeline: &Pipeline<'_>) -> Result<usize> {
    let mut intake = Intake::new(pipeline);
    intake.pass(mailbox).await?;
    intake.settle(mailbox).await
}

/// A mail of a batch once it is handled.
struct Handled {
    fetched: Fetched,
    destination: Destination,
    duplicate: bool,
    /// What to log once the batch is durable.
    taken: Option<TakenIn>,
}

/// What one batch's take-in left: the mails handled, the open transaction (SQLite: the
/// whole batch's), and the error that stopped the batch early, if any.
struct TakeIn {
    handled: Vec<Handled>,
    tx: Option<Tx>,
    failure: Option<anyhow::Error>,
    took: Duration,
}

/// Intake over one mailbox connection.
///
/// A batch is taken in in ONE transaction on SQLite (each mail in a transaction of its own
/// on PostgreSQL: [`dialect::intake_batch_is_one_transaction`]), each mail behind a
/// savepoint of its own ([`Pipeline::handle_in`]: one mail never stops the batch, it is
/// rolled back alone and goes to quarantine). After the commit the batch is made durable
/// with one synchronous commit ([`crate::store::Store::batch_durable`]), and only then are
/// its mails moved away (IMAP: one UID MOVE per destination) and the checkpoint advanced.
/// One transaction, not one per mail (issue 8): the pages every mail touches (index tails,
/// the history's end, the outbox's end) go to the log once per batch instead of once per
/// mail, and no other connection's commit empties the page cache between two mails.
///
/// On a backlog the steps of two batches overlap ([`Intake::pass`]): the next batch is
/// fetched while the last one is made durable (the disk's sync beside the server's FETCH),
/// and taken in while the last one is moved (the server's MOVE beside klachtpost's own
/// work). Meanwhile the last batch is "in flight": committed, not yet moved, and never
/// fetched again ([`Mailbox::fetch_new`] skips it). Nothing leaves the mailbox before it is
/// durable; a batch in flight that is dropped (an error, a crash) stays in the mailbox and
/// is fetched again, known as a duplicate, and moved then.
pub struct Intake<'p, 'a> {
    pipeline: &'p Pipeline<'a>,
    /// The last batch: committed, not yet durable nor moved.
    in_flight: Vec<Handled>,
}

impl<'p, 'a> Intake<'p, 'a> {
    pub fn new(pipeline: &'p Pipeline<'a>) -> Self {
        Intake {
            pipeline,
            in_flight: Vec::new(),
        }
    }

    /// One pass: fetch the next batch (at most [`INTAKE_BATCH`] mails and
    /// [`crate::fetch::BATCH_BYTES`]; a larger mail alone) while the batch in flight is made
    /// durable; take it in and commit it while the batch in flight is moved away; it is then
    /// the batch in flight. A single new mail is a batch of one, taken in at once.
    ///
    /// Returns how many mails of the batch that was in flight made progress (as
    /// [`Intake::settle`]). The mailbox is taken in once a pass finds nothing new and
    /// leaves nothing in flight ([`Intake::in_flight`]). An error only when the mailbox
    /// cannot be read or the store not written at all: what the batch took in before it is
    /// committed, made durable and moved first; a batch in flight that cannot be made
    /// durable stays in the mailbox.
    pub async fn pass(&mut self, mailbox: &mut Mailbox) -> Result<usize> {
        let pipeline = self.pipeline;
        pipeline.new_batch();
        // Where a batch's time goes, at debug level (wall time, not the injected clock).
        let started = Instant::now();
        let key = mailbox.key();
        let in_flight: Vec<&Fetched> = self.in_flight.iter().map(|h| &h.fetched).collect();
        let (fetched, durable) = tokio::join!(
            mailbox.fetch_new(
                pipeline.store,
                INTAKE_BATCH,
                pipeline.clock.now(),
                &in_flight
            ),
            self.make_durable(&key),
        );
        drop(in_flight);
        let fetched = match durable.and(fetched) {
            Ok(fetched) => fetched,
            Err(e) => {
                // Not moved: fetched again after reconnecting, known as duplicates.
                self.in_flight.clear();
                return Err(e);
            }
        };
        if fetched.is_empty() {
            return self.move_durable(mailbox).await;
        }
        let fetched_in = started.elapsed();
        let last = std::mem::take(&mut self.in_flight);
        let now = pipeline.clock.now();
        let ((moved, move_took), mut taken) = tokio::join!(
            async {
                let begun = Instant::now();
                let moves: Vec<(&Fetched, Destination)> =
                    last.iter().map(|h| (&h.fetched, h.destination)).collect();
                (mailbox.move_batch(&moves).await, begun.elapsed())
            },
            take_in(pipeline, fetched),
        );
        let progress = count_progress(&last, moved);
        let committed = match taken.tx.take() {
            Some(tx) if !taken.handled.is_empty() => pipeline.commit(tx).await,
            _ => Ok(()),
        };
        // The last batch's moves, past which the checkpoint goes even if some failed: its
        // mails are stored and must not be fetched again.
        let checkpoint = if last.is_empty() {
            Ok(())
        } else {
            mailbox.save_checkpoint(pipeline.store, now).await
        };
        if let Err(e) = committed {
            // Nothing of the batch is stored: it all stays in the mailbox.
            // What stopped the batch first, if anything, is what the operator needs to see.
            let stopped = taken
                .failure
                .map(|f| format!(" (stopped by: {f:#})"))
                .unwrap_or_default();
            return Err(e.context(format!("cannot commit the intake batch{stopped}")));
        }
        checkpoint.context("cannot store the mailbox checkpoint")?;
        let handled = taken.handled.len();
        self.in_flight = taken.handled;
        tracing::debug!(
            event = "intake.batch",
            mails = handled,
            moved_before = last.len(),
            fetch_ms = fetched_in.as_millis() as u64,
            take_in_ms = taken.took.as_millis() as u64,
            move_ms = move_took.as_millis() as u64,
            pass_ms = started.elapsed().as_millis() as u64,
            "batch taken in"
        );
        if let Some(e) = taken.failure {
            // What came before the failure leaves the mailbox now; the failed mail stays.
            self.settle(mailbox).await?;
            return Err(e);
        }
        Ok(progress)
    }

    /// Whether a batch is in flight: taken in, not yet moved (a pass, or
    /// [`Intake::settle`], moves it).
    pub fn in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// The batch in flight, if any, made durable and moved away: before waiting for new
    /// mail, before stopping, or for a single look at the mailbox ([`intake_pass`]).
    /// Returns how many of its mails made progress; a duplicate that could not be moved
    /// out of the folder does not count, so a folder the mailbox cannot change does not
    /// make the caller spin.
    pub async fn settle(&mut self, mailbox: &mut Mailbox) -> Result<usize> {
        if let Err(e) = self.make_durable(&mailbox.key()).await {
            self.in_flight.clear();
            return Err(e);
        }
        self.move_durable(mailbox).await
    }

    /// Make the batch in flight durable; then, and only then, its mails are logged as
    /// taken in.
    async fn make_durable(&self, mailbox_key: &str) -> Result<()> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let pipeline = self.pipeline;
        pipeline
            .store
            .batch_durable(mailbox_key, self.in_flight.len(), pipeline.clock.now())
            .await
            .context("cannot make the batch durable")?;
        for h in &self.in_flight {
            if let Some(taken) = &h.taken {
                taken.log(Some(&h.fetched.source_key));
            }
        }
        Ok(())
    }

    /// Move the batch in flight (durable by now) away and advance the checkpoint past it.
    async fn move_durable(&mut self, mailbox: &mut Mailbox) -> Result<usize> {
        let last = std::mem::take(&mut self.in_flight);
        if last.is_empty() {
            return Ok(0);
        }
        let moves: Vec<(&Fetched, Destination)> =
            last.iter().map(|h| (&h.fetched, h.destination)).collect();
        let moved = mailbox.move_batch(&moves).await;
        let progress = count_progress(&last, moved);
        mailbox
            .save_checkpoint(self.pipeline.store, self.pipeline.clock.now())
            .await
            .context("cannot store the mailbox checkpoint")?;
        Ok(progress)
    }
}

/// Take in a fetched batch, mail by mail, in the batch's transaction (SQLite) or each
/// mail's own (PostgreSQL, committed here). Stops at the first mail the store could not
/// take at all (not a mail that went to quarantine); the batch so far is kept.
async fn take_in(pipeline: &Pipeline<'_>, fetched: Vec<Fetched>) -> TakeIn {
    let begun = Instant::now();
    let mut handled: Vec<Handled> = Vec::with_capacity(fetched.len());
    let mut failure = None;
    let whole_batch = dialect::intake_batch_is_one_transaction(pipeline.store.kind());
    let mut tx: Option<Tx> = None;
    // The batch's new cases, their partners told together before the batch commits.
    let mut untold = Vec::new();
    for mut f in fetched {
        // The raw bytes are dropped as soon as the mail is handled: a batch holds each
        // mail once, and only until it is stored.
        let raw = std::mem::take(&mut f.raw);
        let open = match tx.as_mut() {
            Some(open) => open,
            None => match pipeline.store.begin().await {
                Ok(begun) => tx.insert(begun),
                Err(e) => {
                    failure = Some(anyhow::Error::from(e).context("cannot begin intake"));
                    break;
                }
            },
        };
        let mut outcome = match pipeline
            .handle_in(
                open,
                &f.source_key,
                &raw,
                f.received_at,
                f.received_note.as_deref(),
            )
            .await
            .with_context(|| format!("cannot take in {}", f.source_key))
        {
            Ok(h) => h,
            Err(e) => {
                if !whole_batch {
                    // Holds nothing but this mail's undone work.
                    tx = None;
                }
                failure = Some(e);
                break;
            }
        };
        drop(raw);
        untold.extend(outcome.outcome.as_mut().and_then(|o| o.notice.take()));
        if !whole_batch && let Some(mut done) = tx.take() {
            // This mail's own transaction (PostgreSQL); not stored if it fails.
            let told = pipeline.tell_partners(&mut done, std::mem::take(&mut untold));
            let committed = match told.await {
                Ok(()) => pipeline.commit(done).await,
                Err(e) => Err(e),
            };
            if let Err(e) = committed {
                failure = Some(e.context(format!("cannot commit {}", f.source_key)));
                break;
            }
        }
        let destination = match outcome.disposition {
            Disposition::Processed => Destination::Processed,
            Disposition::Quarantined => Destination::Quarantine,
        };
        let duplicate = outcome.outcome.as_ref().is_some_and(|o| o.duplicate);
        let taken = outcome.outcome.as_ref().and_then(|o| o.taken_in());
        handled.push(Handled {
            fetched: f,
            destination,
            duplicate,
            taken,
        });
        // On SQLite a mail's statements run on this thread without waiting for anything
        // (`store::direct`), so the batch would run to its end before the work joined
        // beside it (the last batch's MOVE, [`Intake::pass`]) or another task (the
        // sender) got a turn: let them run between two mails.
        tokio::task::yield_now().await;
    }
    if let Some(open) = tx.as_mut()
        && let Err(e) = pipeline.tell_partners(open, untold).await
    {
        // The store cannot be written: the batch is not committed without its notices (it
        // is rolled back, and all of it stays in the mailbox for the next pass).
        tx = None;
        handled.clear();
        pipeline.new_batch();
        failure = Some(e.context("cannot tell the partners of the batch's new cases"));
    }
    TakeIn {
        handled,
        tx,
        failure,
        took: begun.elapsed(),
    }
}

/// How many of a moved batch's mails made progress: every one moved, and every one
/// stored but not moved (logged) except a duplicate, which was stored before.
fn count_progress(batch: &[Handled], moved: Vec<Result<()>>) -> usize {
    let mut progress = 0;
    for (h, moved) in batch.iter().zip(moved) {
        match moved {
            Ok(()) => progress += 1,
            Err(e) => {
                // Stored is what counts; a mail left in the folder is only untidy.
                tracing::warn!(event = "mailbox.move_failed", source = h.fetched.source_key.as_str(), error = %format!("{e:#}"), "stored, but not moved");
                if !h.duplicate {
                    progress += 1;
                }
            }
        }
    }
    progress
}
