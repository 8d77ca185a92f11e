//! Acknowledgements exactly once as far as SMTP allows (issue 8): an outbox row is claimed
//! before it is handed to the server and marked sent right after the 250; a row a crashed
//! run had claimed is sent again at start-up as the same stored message (same Message-ID),
//! and a claim is never handed out twice while it holds. Against a real smtp-sink.

mod support;

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use klachtpost::clock::{Clock, ManualClock};
use klachtpost::config::Config;
use klachtpost::intake::Pipeline;
use klachtpost::outbox;
use klachtpost::send::Sender;
use klachtpost::store::CLAIM_LEASE;
use klachtpost::store::lease::PRESENCE;
use support::{SmtpSink, TestConfig};

const WAIT: Duration = Duration::from_secs(20);

fn config(dir: &Path, smtp_port: u16) -> Config {
    TestConfig::new(dir)
        .mailbox(&format!("kind = \"maildir\"\npath = \"{}\"", dir.join("md").display()))
        .outgoing(&format!(
            "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {smtp_port}\nsecurity = \"none\"\nfrom = \"klachten@firma.nl\""
        ))
        .templates(&["acknowledgement"])
        .build()
}

/// A new complaint (`drain-<key>@client.example`) taken in, then the outbox drained on
/// `handle`: what the drain did.
async fn complain_and_drain(
    p: &Pipeline<'_>,
    key: &str,
    handle: &klachtpost::store::Store,
    sender: &Sender,
    clock: &ManualClock,
    config: &klachtpost::config::Config,
) -> outbox::Drained {
    p.take_in(
        Some(key),
        &complaint(&format!("drain-{key}@client.example")),
        clock.now(),
    )
    .await
    .unwrap();
    outbox::drain_once(handle, sender, clock, config)
        .await
        .unwrap()
}

fn complaint(id: &str) -> Vec<u8> {
    format!(
        "From: \"Marieke Jansen\" <marieke@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht\r\nDate: Thu, 19 Nov 2026 16:55:00 +0100\r\nMessage-ID: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHet advies kwam te laat.\r\n"
    )
    .into_bytes()
}

fn header(data: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let prefix = format!("{}:", name.to_ascii_lowercase());
    text.lines()
        .take_while(|l| !l.is_empty())
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_string())
}

fn count(counts: &[(String, i64)], status: &str) -> i64 {
    counts
        .iter()
        .find(|(s, _)| s == status)
        .map(|(_, n)| *n)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_the_crash_left_unconfirmed_is_resent_once_with_the_same_message_id() {
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), smtp.port);
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 17, 0, 0).unwrap());
    let sender = Sender::from_config(&config).unwrap();

    // The run that crashes: it claims the acknowledgement, the server accepts it (250), and
    // the process dies before the row is marked sent.
    {
        let store = support::open_store(&config).await;
        let p = Pipeline::new(&config, &store, &clock).unwrap();
        let o = p
            .take_in(Some("1"), &complaint("c1@client.example"), clock.now())
            .await
            .unwrap();
        assert!(o.ack_queued);
        // The acknowledgement and the partner's new-complaint notice.
        let claimed = store.claim_due(clock.now(), 50).await.unwrap();
        assert_eq!(claimed.len(), 2);
        // A claimed row is not handed out again while the claim holds.
        assert!(store.claim_due(clock.now(), 50).await.unwrap().is_empty());
        assert_eq!(count(&store.outbox_counts().await.unwrap(), "sending"), 2);
        let item = claimed
            .iter()
            .find(|c| c.purpose == "acknowledgement")
            .expect("the acknowledgement is claimed");
        sender
            .send(&item.envelope_from, &item.recipients, &item.raw, "x")
            .await
            .unwrap();
        smtp.wait_for(1, WAIT).await;
        store.pool().close().await;
    }

    // The restart (after the crashed run's presence, renewed by its claim, has lapsed):
    // the unconfirmed claim goes back to the queue and is sent again, as the same message;
    // after that nothing more is sent.
    clock.advance(PRESENCE);
    let store = support::open_store(&config).await;
    assert_eq!(
        outbox::recover_claims(&store, &clock).await.unwrap(),
        2,
        "the crashed run's claims are released"
    );
    let drained = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    assert_eq!(drained.sent, 2);
    let got = smtp.wait_for(3, WAIT).await;
    let acks: Vec<_> = got
        .iter()
        .filter(|m| header(&m.data, "In-Reply-To").as_deref() == Some("<c1@client.example>"))
        .map(|m| header(&m.data, "Message-ID").expect("a Message-ID"))
        .collect();
    assert_eq!(acks.len(), 2, "the acknowledgement, and its resend");
    assert_eq!(acks[0], acks[1], "the resend carries the same Message-ID");
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(count(&counts, "sent"), 2, "{counts:?}");
    assert_eq!(count(&counts, "sending"), 0, "{counts:?}");
    assert_eq!(outbox::recover_claims(&store, &clock).await.unwrap(), 0);
    let again = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    assert_eq!(again.sent, 0, "a confirmed row is never sent again");
}

#[tokio::test]
async fn an_abandoned_claim_is_taken_again_only_after_the_lease() {
    let tmp = tempfile::tempdir().unwrap();
    // No server needed: nothing is sent here.
    let config = config(tmp.path(), 9);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 19, 17, 0, 0).unwrap();
    let clock = ManualClock::new(t0);
    let store = support::open_store(&config).await;
    let p = Pipeline::new(&config, &store, &clock).unwrap();
    p.take_in(Some("1"), &complaint("c2@client.example"), clock.now())
        .await
        .unwrap();
    // The acknowledgement and the partner's new-complaint notice.
    let first = store.claim_due(t0, 50).await.unwrap();
    assert_eq!(first.len(), 2);
    let almost = t0 + CLAIM_LEASE - chrono::Duration::seconds(1);
    assert!(store.claim_due(almost, 50).await.unwrap().is_empty());
    let again = store.claim_due(t0 + CLAIM_LEASE, 50).await.unwrap();
    assert_eq!(again.len(), 2);
    let by_id = |rows: &[klachtpost::store::OutboxItem]| {
        let mut v: Vec<(i64, Vec<u8>)> = rows.iter().map(|r| (r.id, r.raw.clone())).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(
        by_id(&again),
        by_id(&first),
        "the same rows, the same stored messages"
    );
    // Released at a restart (a new instance, once the claimer's presence, which its last
    // claim renewed, has lapsed), they are due at once and claimed again.
    let restart = t0 + CLAIM_LEASE + PRESENCE;
    let restarted = support::open_store(&config).await;
    assert_eq!(restarted.release_claims(restart).await.unwrap(), 2);
    let released = restarted.claim_due(restart, 50).await.unwrap();
    assert_eq!(released.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_the_server_confirmed_before_the_crash_is_not_sent_again() {
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), smtp.port);
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 17, 0, 0).unwrap());
    let sender = Sender::from_config(&config).unwrap();

    // The run that crashes: the server accepts the acknowledgement (250) while intake holds
    // the write lock (SQLite's, PostgreSQL's advisory lock); the 250 is recorded all the same
    // (SQLite: the journal file; PostgreSQL: the row's confirmed_at, no advisory lock), and
    // the process dies before it is folded into the row.
    let ack_id = {
        let store = support::open_store(&config).await;
        let p = Pipeline::new(&config, &store, &clock).unwrap();
        p.take_in(Some("1"), &complaint("c3@client.example"), clock.now())
            .await
            .unwrap();
        let claimed = store.claim_due(clock.now(), 50).await.unwrap();
        assert_eq!(claimed.len(), 2);
        let item = claimed
            .iter()
            .find(|c| c.purpose == "acknowledgement")
            .expect("the acknowledgement is claimed");
        sender
            .send(&item.envelope_from, &item.recipients, &item.raw, "x")
            .await
            .unwrap();
        let intake = store.begin().await.unwrap();
        assert!(
            store.confirm_sent(item.id, clock.now()).await.unwrap(),
            "journaled while another writer holds the database"
        );
        drop(intake);
        smtp.wait_for(1, WAIT).await;
        store.pool().close().await;
        item.id
    };

    // The restart (a new instance, once the crashed run's presence has lapsed) folds the
    // journal first: the acknowledgement is sent (and its case acknowledged); only the
    // partner's notice, never handed over, is released.
    clock.advance(PRESENCE);
    let store = support::open_store(&config).await;
    assert_eq!(store.read_confirmations().await.unwrap().rows.len(), 1);
    assert_eq!(
        outbox::recover_claims(&store, &clock).await.unwrap(),
        1,
        "only the claim without a 250 is released"
    );
    assert!(
        store.read_confirmations().await.unwrap().rows.is_empty(),
        "the journal is emptied once folded"
    );
    let case = &store.list_cases().await.unwrap()[0];
    assert_eq!(
        case.status, "acknowledged",
        "the fold records it on the case"
    );
    let drained = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    assert_eq!(drained.sent, 1, "the partner's notice only");
    let got = smtp.wait_for(2, WAIT).await;
    let acks = got
        .iter()
        .filter(|m| header(&m.data, "In-Reply-To").as_deref() == Some("<c3@client.example>"))
        .count();
    assert_eq!(acks, 1, "the acknowledgement went out exactly once");
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(count(&counts, "sent"), 2, "{counts:?}");
    assert_eq!(count(&counts, "sending"), 0, "{counts:?}");
    // Folding again changes nothing (a row is marked once).
    store.confirm_sent(ack_id, clock.now()).await.unwrap();
    assert_eq!(outbox::fold_confirmations(&store).await.unwrap(), 0);
    // A drain journals what it sends and folds it itself: nothing is left in the journal.
    let p = Pipeline::new(&config, &store, &clock).unwrap();
    let drained = complain_and_drain(&p, "2", &store, &sender, &clock, &config).await;
    assert_eq!(drained.sent, 2);
    assert!(store.read_confirmations().await.unwrap().rows.is_empty());
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(count(&counts, "sent"), 4, "{counts:?}");

    // The daemon's sender writes on a handle whose commits do not wait for the disk: its
    // fold is not durable yet, so the journal keeps what it folded until the next claim (a
    // synchronous commit) has made it so; meanwhile a fold reads on after it (nothing read
    // twice, nothing skipped).
    let journal = match support::TestDatabase::for_dir(tmp.path()) {
        support::TestDatabase::Sqlite { file } => {
            let mut name = file.into_os_string();
            name.push("-sent");
            Some(std::path::PathBuf::from(name))
        }
        support::TestDatabase::Postgres(_) => None, // confirmed_at on the row, no journal
    };
    let journal_lines = || {
        journal.as_ref().map(|j| {
            std::fs::read_to_string(j)
                .unwrap_or_default()
                .lines()
                .count()
        })
    };
    let sender_store = store.deferred();
    let drained = complain_and_drain(&p, "3", &sender_store, &sender, &clock, &config).await;
    assert_eq!(drained.sent, 2);
    assert_eq!(count(&store.outbox_counts().await.unwrap(), "sent"), 6);
    if journal.is_some() {
        assert_eq!(
            journal_lines(),
            Some(2),
            "kept until a sync covers the fold"
        );
    }
    assert!(
        sender_store
            .read_confirmations()
            .await
            .unwrap()
            .rows
            .is_empty(),
        "what was folded is not read again"
    );
    let drained = complain_and_drain(&p, "4", &sender_store, &sender, &clock, &config).await;
    assert_eq!(drained.sent, 2);
    if journal.is_some() {
        assert_eq!(
            journal_lines(),
            Some(2),
            "the claim emptied the first drain's lines; the second's wait for the next"
        );
    }
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(count(&counts, "sent"), 8, "{counts:?}");
    assert_eq!(count(&counts, "sending"), 0, "{counts:?}");
    let got = smtp.wait_for(8, WAIT).await;
    assert_eq!(got.len(), 8, "each message sent once");
}

/// The sender of an instance that lives on wakes when a dead instance's claims can be
/// taken over, not only when something is queued: a claimed row is due at its claim plus
/// PRESENCE (the holder's presence, renewed by that claim, has lapsed by then), and a live
/// holder's long send is looked at again a quarter of PRESENCE later, not in a loop.
#[tokio::test]
async fn a_claimed_row_makes_the_outbox_due_when_its_claim_can_be_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), 9);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 19, 17, 0, 0).unwrap();
    let clock = ManualClock::new(t0);
    let dead = support::open_store(&config).await;
    let p = Pipeline::new(&config, &dead, &clock).unwrap();
    p.take_in(Some("1"), &complaint("c3@client.example"), clock.now())
        .await
        .unwrap();
    let survivor = support::open_store(&config).await;
    assert_eq!(survivor.outbox_next_due(t0).await.unwrap(), Some(t0));
    // The other instance claims both rows and dies before it sends them.
    assert_eq!(dead.claim_due(t0, 50).await.unwrap().len(), 2);
    assert_eq!(
        survivor.outbox_next_due(t0).await.unwrap(),
        Some(t0 + PRESENCE),
        "nothing queued, but the claims can be taken over then"
    );
    assert_eq!(
        survivor.claim_due(t0 + PRESENCE, 50).await.unwrap().len(),
        2
    );
    // Still claimed long after (as by a live instance's slow send): looked at now and then.
    let later = t0 + PRESENCE * 3;
    assert_eq!(
        survivor.outbox_next_due(later).await.unwrap(),
        Some(later + PRESENCE / 4)
    );
}
