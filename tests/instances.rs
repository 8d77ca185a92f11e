//! Several instances on one database (issue 13): one instance watches the mailbox at a
//! time (a lease), another takes it over when the holder is killed; each mail is taken in
//! once and acknowledged once; scheduled work runs once per due moment; only the outbox
//! claims of instances that are gone are released.
//!
//! The two-daemon test runs the real binary twice on one PostgreSQL (whatever
//! `KLACHTPOST_TEST_DATABASE` says), one Dovecot mailbox and smtp-sink. The store tests run
//! on the pass's database.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;
use klachtpost::calendar::local_to_utc;
use klachtpost::clock::{Clock, ManualClock};
use klachtpost::intake::Pipeline;
use klachtpost::partners::scheduler;
use klachtpost::store::{CLAIM_LEASE, Store, jobs};
use sqlx::Row;
use support::{Daemon, Dovecot, FIRM, FIRM_TWO_PARTNERS, SmtpSink, TestConfig};

const PASSWORD_ENV: &str = "KP_TEST_IMAP_PASSWORD";
const WAIT: Duration = Duration::from_secs(20);
/// The backlog of the two-daemon test.
const BACKLOG: usize = 1000;

fn complaint(i: usize) -> Vec<u8> {
    format!(
        "From: Klant {i} <klant{i}@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht {i}\r\nDate: Wed, 02 Dec 2026 09:00:00 +0100\r\nMessage-ID: <{i}@client.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHet advies klopte niet ({i}).\r\n"
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

/// `klachtpost status --json` with the config in `dir`.
fn status_json(dir: &Path, password: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_klachtpost"))
        .arg("status")
        .arg("--json")
        .arg("--config")
        .arg(dir.join("klachtpost.toml"))
        .env(PASSWORD_ENV, password)
        .output()
        .expect("run klachtpost status");
    assert!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

/// The instance that holds the mailbox's lease, by `status --json`, unless expired.
fn mailbox_holder(dir: &Path, password: &str) -> Option<String> {
    let status = status_json(dir, password);
    let m = status["mailboxes"].as_array()?.first()?.clone();
    if m["expired"].as_bool() == Some(true) {
        return None;
    }
    m["instance"].as_str().map(str::to_string)
}

async fn scalar(pool: &sqlx::AnyPool, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get::<i64, _>(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_take_a_backlog_once_and_the_survivor_takes_the_mailbox_over() {
    let imap = Dovecot::start();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let tc = TestConfig::new(tmp.path())
        .on_postgres()
        .firm(FIRM)
        .mailbox(&format!(
            r#"kind = "imap"
host = "127.0.0.1"
port = {port}
security = "none"
username = "{user}"
password_env = "{PASSWORD_ENV}"
poll_interval_secs = 1
timeout_secs = 5"#,
            port = imap.imap_port,
            user = support::MAIN_USER,
        ))
        .outgoing(&format!(
            "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"klachten@firma.nl\"",
            smtp.port
        ))
        .templates(&["acknowledgement"]);
    for i in 0..BACKLOG {
        imap.append("INBOX", &complaint(i)).await;
    }
    let db = tc.database().connect().await;
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));

    let mut a = Daemon::start(&dir_a, &tc.file_text(), PASSWORD_ENV, &imap.password);
    a.wait_for_log("lease.taken", 1, WAIT).await;
    let b = Daemon::start(&dir_b, &tc.file_text(), PASSWORD_ENV, &imap.password);
    b.wait_for_log("lease.waiting", 1, WAIT).await;
    let holder = mailbox_holder(&dir_b, &imap.password).expect("a holds the mailbox");
    assert!(
        holder.contains(&format!("-{}-", a.pid())),
        "the first daemon (pid {}) holds the mailbox: {holder}",
        a.pid()
    );

    // Halfway through the backlog, the holder is killed.
    let deadline = Instant::now() + Duration::from_secs(300);
    while scalar(&db, "SELECT COUNT(*) FROM cases").await < (BACKLOG / 2) as i64 {
        assert!(
            Instant::now() < deadline,
            "half the backlog not taken in:\n{}",
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.sigkill();
    let killed = Instant::now();
    let at_kill = scalar(&db, "SELECT COUNT(*) FROM cases").await;
    assert!(
        at_kill < BACKLOG as i64,
        "the backlog was done before the kill"
    );

    // The survivor takes the mailbox over within 30 s, and `status` says so.
    b.wait_for_log("lease.taken", 1, Duration::from_secs(30))
        .await;
    let took = killed.elapsed();
    assert!(took <= Duration::from_secs(30), "took over after {took:?}");
    let holder = mailbox_holder(&dir_b, &imap.password).expect("b holds the mailbox");
    assert_ne!(holder, "", "{holder}");
    assert!(
        !holder.contains(&format!("-{}-", a.pid())),
        "the killed daemon still holds the mailbox: {holder}"
    );

    // Everything is taken in and sent.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let cases = scalar(&db, "SELECT COUNT(*) FROM cases").await;
        let unsent = scalar(&db, "SELECT COUNT(*) FROM outbox WHERE status <> 'sent'").await;
        if cases >= BACKLOG as i64 && unsent == 0 && imap.count("INBOX").await == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{cases} cases, {unsent} unsent:\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // One case per complaint, references gap-free.
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM cases").await,
        BACKLOG as i64
    );
    let rows = sqlx::query("SELECT reference, subject FROM cases")
        .fetch_all(&db)
        .await
        .unwrap();
    let subjects: BTreeSet<String> = rows.iter().map(|r| r.get::<String, _>(1)).collect();
    assert_eq!(subjects.len(), BACKLOG, "a complaint with two cases");
    let mut numbers: Vec<usize> = rows
        .iter()
        .map(|r| {
            let reference: String = r.get(0);
            reference.rsplit('-').next().unwrap().parse().unwrap()
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=BACKLOG).collect::<Vec<_>>(), "gap-free");

    // One acknowledgement per case in the register, sent.
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM (SELECT c.id FROM cases c JOIN outbox o ON o.case_id = c.id
             AND o.purpose = 'acknowledgement' AND o.status = 'sent'
             GROUP BY c.id HAVING COUNT(*) = 1) x"
        )
        .await,
        BACKLOG as i64
    );
    // And at the server: each complaint's acknowledgement, one Message-ID each. A resend
    // (same Message-ID) is possible only for the one mail the killed daemon may have
    // handed to the server and not yet marked sent.
    let got = smtp.messages();
    let mut acks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &got {
        if let Some(to) = header(&m.data, "In-Reply-To") {
            acks.entry(to)
                .or_default()
                .push(header(&m.data, "Message-ID").unwrap_or_default());
        }
    }
    assert_eq!(acks.len(), BACKLOG, "every complaint acknowledged");
    let mut resent = 0;
    for (to, ids) in &acks {
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), 1, "two different acknowledgements of {to}");
        resent += ids.len() - 1;
    }
    let total = got.len();
    // The partner's new-complaint notice besides each acknowledgement.
    assert!(
        (2 * BACKLOG..=2 * BACKLOG + 1).contains(&total),
        "{total} mails for {BACKLOG} complaints"
    );
    assert!(resent <= 1, "{resent} acknowledgements sent twice");
    println!(
        "two instances: {at_kill} cases at the kill, mailbox taken over after {took:?}, {resent} resent"
    );
    assert!(b.stop().await.success());
}

/// A local Amsterdam time.
fn local(s: &str) -> DateTime<Utc> {
    local_to_utc(
        Amsterdam,
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap(),
    )
}

/// Two weeks of the partners' job, every 15 minutes, on one instance or on two that wake
/// at the same moments; what it queued (purpose, to), in order.
async fn two_weeks_of_partners_work(instances: usize) -> Vec<(String, String)> {
    let tmp = tempfile::tempdir().unwrap();
    let tc = TestConfig::new(tmp.path())
        .on_postgres()
        .firm(FIRM_TWO_PARTNERS)
        .templates(&["acknowledgement"])
        .section(
            "deadlines",
            "response = \"4 working days\"\nresolution = \"8 working days\"",
        );
    let config = tc.build();
    let one = support::open_store(&config).await;
    let two = support::open_store(&config).await;
    assert_ne!(one.instance(), two.instance());
    let clock = ManualClock::new(local("2027-03-26 15:00"));
    Pipeline::new(&config, &one, &clock)
        .unwrap()
        .take_in(
            Some("maildir:c1"),
            b"From: Jan de Vries <jan@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht\r\nDate: Fri, 26 Mar 2027 15:00:00 +0100\r\nMessage-ID: <c1@client.example>\r\n\r\nHet advies kwam te laat.\r\n",
            clock.now(),
        )
        .await
        .unwrap();
    let end = local("2027-04-08 12:00");
    while clock.now() < end {
        if instances == 1 {
            scheduler::step(&one, &config, &clock).await.unwrap();
        } else {
            let (r1, r2) = tokio::join!(
                scheduler::step(&one, &config, &clock),
                scheduler::step(&two, &config, &clock)
            );
            r1.unwrap();
            r2.unwrap();
        }
        clock.advance(chrono::Duration::minutes(15));
    }
    let db = tc.database().connect().await;
    sqlx::query(
        "SELECT purpose, recipients FROM outbox WHERE purpose <> 'acknowledgement' ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_that_wake_at_once_send_each_reminder_and_digest_once() {
    let alone = two_weeks_of_partners_work(1).await;
    let side_by_side = two_weeks_of_partners_work(2).await;
    let purposes: BTreeSet<&str> = alone.iter().map(|(p, _)| p.as_str()).collect();
    for p in ["digest", "reminder"] {
        assert!(purposes.contains(p), "{alone:?}");
    }
    assert_eq!(
        side_by_side, alone,
        "two instances queue exactly what one queues"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_job_is_claimed_by_one_of_two_instances() {
    let tmp = tempfile::tempdir().unwrap();
    let config = TestConfig::new(tmp.path()).on_postgres().build();
    let one = support::open_store(&config).await;
    let two = support::open_store(&config).await;
    let t0 = Utc.with_ymd_and_hms(2026, 12, 2, 3, 0, 0).unwrap();
    let hold = t0 + chrono::Duration::hours(1);
    for round in 0..20 {
        let now = t0 + chrono::Duration::days(round);
        let hold = hold + chrono::Duration::days(round);
        let (a, b) = tokio::join!(
            jobs::claim(one.pool(), "purge", now, hold),
            jobs::claim(two.pool(), "purge", now, hold)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a ^ b, "round {round}: {a} {b}");
        // Not due again until the hold is over.
        assert!(!jobs::claim(one.pool(), "purge", now, hold).await.unwrap());
    }
}

#[tokio::test]
async fn a_lease_is_held_by_one_instance_until_it_expires() {
    let tmp = tempfile::tempdir().unwrap();
    let config = TestConfig::new(tmp.path()).build();
    let one = support::open_store(&config).await;
    let two = support::open_store(&config).await;
    let t0 = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap();
    let s = chrono::Duration::seconds;
    assert!(one.lease_take("mailbox:x", t0, t0 + s(20)).await.unwrap());
    assert!(
        !two.lease_take("mailbox:x", t0 + s(5), t0 + s(25))
            .await
            .unwrap()
    );
    // The holder renews; the other still waits.
    assert!(
        one.lease_take("mailbox:x", t0 + s(5), t0 + s(25))
            .await
            .unwrap()
    );
    assert!(
        !two.lease_take("mailbox:x", t0 + s(24), t0 + s(44))
            .await
            .unwrap()
    );
    // Not renewed: at expiry the other takes it, and the first cannot renew any more.
    assert!(
        two.lease_take("mailbox:x", t0 + s(25), t0 + s(45))
            .await
            .unwrap()
    );
    assert!(
        !one.lease_take("mailbox:x", t0 + s(26), t0 + s(46))
            .await
            .unwrap()
    );
    let leases = two.leases().await.unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].holder, two.instance());
    assert_eq!(leases[0].acquired_at, t0 + s(25));
    // Given up: free at once.
    two.lease_release("mailbox:x").await.unwrap();
    assert!(
        one.lease_take("mailbox:x", t0 + s(27), t0 + s(47))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn only_the_claims_of_an_instance_that_is_gone_are_released() {
    let tmp = tempfile::tempdir().unwrap();
    let config = TestConfig::new(tmp.path())
        .templates(&["acknowledgement"])
        .build();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 19, 17, 0, 0).unwrap();
    let clock = ManualClock::new(t0);
    let running = support::open_store(&config).await;
    let starting = support::open_store(&config).await;
    Pipeline::new(&config, &running, &clock)
        .unwrap()
        .take_in(
            Some("1"),
            b"From: Marieke <marieke@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht\r\nMessage-ID: <c1@client.example>\r\n\r\nTe laat.\r\n",
            t0,
        )
        .await
        .unwrap();
    // The running instance is alive and sending (its presence lease holds).
    klachtpost::lease::announce(&running, &clock).await.unwrap();
    assert_eq!(running.claim_due(t0, 50).await.unwrap().len(), 2);
    // Another instance starts: the running one's claims stay its own…
    let later = t0 + chrono::Duration::seconds(10);
    assert_eq!(starting.release_claims(later).await.unwrap(), 0);
    assert!(starting.claim_due(later, 50).await.unwrap().is_empty());
    // …until it is gone: its presence expired, its claims are taken at once (not only after
    // CLAIM_LEASE).
    let gone = t0 + chrono::Duration::seconds(30);
    assert!(gone < t0 + CLAIM_LEASE);
    assert_eq!(starting.claim_due(gone, 50).await.unwrap().len(), 2);
    let _: &Store = &starting;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_work_stops_when_the_lease_is_lost_and_starts_again_when_it_is_free() {
    use klachtpost::lease::{self, Ended, RENEW_EVERY};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Set when the work's future is dropped (stopped where it was).
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    let tmp = tempfile::tempdir().unwrap();
    let tc = TestConfig::new(tmp.path());
    let store = support::open_store(&tc.build()).await;
    let db = tc.database().connect().await;
    let started = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let holder = tokio::spawn({
        let (store, started, dropped) = (store.clone(), started.clone(), dropped.clone());
        async move {
            let clock = klachtpost::clock::SystemClock;
            lease::while_held(&store, &clock, "mailbox:t", false, stop_rx, |mut stop| {
                started.fetch_add(1, Ordering::SeqCst);
                let guard = Dropped(dropped.clone());
                async move {
                    let _guard = guard;
                    let _ = stop.changed().await;
                    Ok(())
                }
            })
            .await
        }
    });
    let wait_until = |what: &'static str, timeout: Duration, ok: Box<dyn Fn() -> bool + Send>| async move {
        let deadline = Instant::now() + timeout;
        while !ok() {
            assert!(Instant::now() < deadline, "{what} not within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let s = started.clone();
    wait_until(
        "started",
        WAIT,
        Box::new(move || s.load(Ordering::SeqCst) == 1),
    )
    .await;

    // Another instance has the lease now (as after this one failed to renew in time).
    sqlx::query("UPDATE leases SET holder = 'someone-else' WHERE name = 'mailbox:t'")
        .execute(&db)
        .await
        .unwrap();
    let taken = Instant::now();
    let d = dropped.clone();
    wait_until(
        "the work dropped",
        RENEW_EVERY + Duration::from_secs(3),
        Box::new(move || d.load(Ordering::SeqCst)),
    )
    .await;
    assert!(taken.elapsed() <= RENEW_EVERY + Duration::from_secs(3));
    assert_eq!(started.load(Ordering::SeqCst), 1);

    // Free again: taken and the work started again.
    sqlx::query("DELETE FROM leases WHERE name = 'mailbox:t'")
        .execute(&db)
        .await
        .unwrap();
    let s = started.clone();
    wait_until(
        "started again",
        2 * RENEW_EVERY + Duration::from_secs(3),
        Box::new(move || s.load(Ordering::SeqCst) == 2),
    )
    .await;
    stop_tx.send(true).unwrap();
    assert_eq!(holder.await.unwrap().unwrap(), Ended::Stopped);
    assert!(
        store.leases().await.unwrap().is_empty(),
        "given up at the stop"
    );
}

/// Intake in a backlog is almost always inside a write transaction. The renewal, which
/// must wait for that transaction, runs beside the work: the work goes on, ends its
/// transaction, and the renewal gets its turn (it once ran instead of the work, which
/// then could not end its transaction, and the lease lapsed mid-backlog on both
/// databases).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_that_is_always_inside_a_write_transaction_keeps_the_lease() {
    use klachtpost::lease::{self, Ended, RENEW_EVERY, TTL};

    let tmp = tempfile::tempdir().unwrap();
    let tc = TestConfig::new(tmp.path());
    let store = support::open_store(&tc.build()).await;
    let intake = store.deferred();
    let clock = klachtpost::clock::SystemClock;
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Longer than the lease lives: it holds only if renewed while the work runs.
    let until = Instant::now() + TTL + RENEW_EVERY;
    let transactions = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let ended = lease::while_held(&store, &clock, "mailbox:busy", true, stop_rx, |_| {
        let (intake, transactions) = (intake.clone(), transactions.clone());
        async move {
            while Instant::now() < until {
                let tx = intake.begin().await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
                tx.commit().await?;
                transactions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Ok(())
        }
    })
    .await
    .unwrap();
    assert_eq!(ended, Ended::Done, "the lease held to the end of the work");
    let transactions = transactions.load(std::sync::atomic::Ordering::SeqCst);
    assert!(transactions > 50, "{transactions}");
}
