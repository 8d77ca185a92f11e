//! One intake pass over the mailbox: a batch taken in, made durable, then moved away.

use anyhow::{Context, Result};

use crate::fetch::{Destination, Fetched, Mailbox};
use crate::intake::{Disposition, Pipeline, TakenIn};
use crate::store::{Tx, dialect};

/// How many mails one intake pass (one batch, one synchronous commit, one UID MOVE) takes
/// before it lets the sender run.
pub const INTAKE_BATCH: usize = 200;

/// One intake pass, one batch: take in what is new (at most [`INTAKE_BATCH`] mails and
/// [`crate::fetch::BATCH_BYTES`]; a larger mail alone) in ONE transaction on SQLite (each
/// mail in a transaction of its own on PostgreSQL:
/// [`dialect::intake_batch_is_one_transaction`]), each mail behind a savepoint of its own
/// ([`Pipeline::handle_in`]: one mail never stops the batch, it is rolled back alone and
/// goes to quarantine); commit, make the batch durable with one
/// synchronous commit ([`crate::store::Store::batch_durable`]), and only then move the
/// mails away (IMAP: one UID MOVE per destination) and advance the checkpoint. A single new
/// mail is a batch of one, handled at once. One transaction, not one per mail (issue 8):
/// the pages every mail touches (index tails, the history's end, the outbox's end) go to
/// the log once per batch instead of once per mail, and no other connection's commit
/// empties the page cache between two mails.
/// Returns how many mails made progress; a duplicate that could not be moved out of
/// the folder does not count, so a folder the mailbox cannot change does not make the
/// caller spin. An error only when the store cannot be written at all; the mail then stays
/// in the mailbox (what the batch took in before it is committed, made durable and moved
/// first).
pub async fn intake_pass(mailbox: &mut Mailbox, pipeline: &Pipeline<'_>) -> Result<usize> {
    pipeline.new_batch();
    // Where a batch's time goes, at debug level (wall time, not the injected clock).
    let started = std::time::Instant::now();
    let fetched = mailbox
        .fetch_new(pipeline.store, INTAKE_BATCH, pipeline.clock.now())
        .await?;
    if fetched.is_empty() {
        return Ok(0);
    }
    let fetched_in = started.elapsed();
    // Each mail with where it goes, whether it was a duplicate, and what to log once the
    // batch is durable.
    let mut batch: Vec<(Fetched, Destination, bool, Option<TakenIn>)> =
        Vec::with_capacity(fetched.len());
    let mut failure = None;
    let whole_batch = dialect::intake_batch_is_one_transaction(pipeline.store.kind());
    let mut tx: Option<Tx> = None;
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
        let handled = match pipeline
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
        if !whole_batch && let Some(done) = tx.take() {
            // This mail's own transaction (PostgreSQL); not stored if it fails.
            if let Err(e) = pipeline.commit(done).await {
                failure = Some(e.context(format!("cannot commit {}", f.source_key)));
                break;
            }
        }
        let destination = match handled.disposition {
            Disposition::Processed => Destination::Processed,
            Disposition::Quarantined => Destination::Quarantine,
        };
        let duplicate = handled.outcome.as_ref().is_some_and(|o| o.duplicate);
        let taken = handled.outcome.as_ref().and_then(|o| o.taken_in());
        batch.push((f, destination, duplicate, taken));
    }
    let mut progress = 0;
    let handled_in = started.elapsed() - fetched_in;
    if let Some(tx) = tx
        && !batch.is_empty()
        && let Err(e) = pipeline.commit(tx).await
    {
        // Nothing of the batch is stored: it all stays in the mailbox.
        // What stopped the batch first, if anything, is what the operator needs to see.
        let stopped = failure
            .map(|f| format!(" (stopped by: {f:#})"))
            .unwrap_or_default();
        return Err(e.context(format!("cannot commit the intake batch{stopped}")));
    }
    if !batch.is_empty() {
        let now = pipeline.clock.now();
        // Nothing leaves the mailbox before it is on the disk.
        pipeline
            .store
            .batch_durable(&mailbox.key(), batch.len(), now)
            .await
            .context("cannot make the batch durable")?;
        for (f, _, _, taken) in &batch {
            if let Some(taken) = taken {
                taken.log(Some(&f.source_key));
            }
        }
        let durable_in = started.elapsed() - fetched_in - handled_in;
        let moves: Vec<(&Fetched, Destination)> =
            batch.iter().map(|(f, d, _, _)| (f, *d)).collect();
        let moved = mailbox.move_batch(pipeline.store, &moves, now).await;
        tracing::debug!(
            event = "intake.batch",
            mails = batch.len(),
            fetch_ms = fetched_in.as_millis() as u64,
            take_in_ms = handled_in.as_millis() as u64,
            durable_ms = durable_in.as_millis() as u64,
            move_ms = (started.elapsed() - fetched_in - handled_in - durable_in).as_millis() as u64,
            "batch taken in"
        );
        for ((f, _, duplicate, _), moved) in batch.iter().zip(moved) {
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
