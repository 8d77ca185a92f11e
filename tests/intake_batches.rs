//! Intake in batches (issue 8): a backlog is taken in a batch at a time — one transaction
//! per batch, each mail behind a savepoint of its own, one synchronous commit per batch,
//! then the batch moved away —
//! and a mail that fails inside a batch goes to quarantine alone while the rest of the
//! batch is taken in. A large mail is stored once, byte for byte, written in pieces.

mod support;

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use klachtpost::clock::{Clock, ManualClock, SystemClock};
use klachtpost::config::Config;
use klachtpost::daemon::{INTAKE_BATCH, Intake, intake_pass, run_with};
use klachtpost::fetch::Mailbox;
use klachtpost::intake::Pipeline;
use klachtpost::store::Store;
use support::{Dovecot, TestConfig};

fn config(dir: &Path) -> Config {
    TestConfig::new(dir)
        .section("intake", "max_message_bytes = 100000")
        .templates(&["acknowledgement"])
        .build()
}

/// What a test takes in with, as the daemon has it: the register, intake's handle on it
/// whose commits are made durable once per batch, and a fixed clock.
struct Intaking {
    config: Config,
    clock: ManualClock,
    store: Store,
    intake_store: Store,
}

impl Intaking {
    async fn new(config: Config) -> Intaking {
        let store = support::open_store(&config).await;
        Intaking {
            clock: ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap()),
            intake_store: store.deferred(),
            store,
            config,
        }
    }

    fn pipeline(&self) -> Pipeline<'_> {
        Pipeline::new(&self.config, &self.intake_store, &self.clock).unwrap()
    }
}

fn deliver(dir: &Path, name: &str, raw: &[u8], age_secs: u64) {
    let md = dir.join("mailbox");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    let path = md.join("new").join(name);
    std::fs::write(&path, raw).unwrap();
    // Maildir order is the file time: oldest first.
    // A fixed time: only the order matters.
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000 - age_secs);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn complaint(i: usize) -> Vec<u8> {
    format!(
        "From: Klant {i} <klant{i}@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht {i}\r\nDate: Thu, 19 Nov 2026 10:15:00 +0100\r\nMessage-ID: <batch-{i}@client.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDe factuur klopt niet.\r\n"
    )
    .into_bytes()
}

fn count(dir: &Path, sub: &str) -> usize {
    std::fs::read_dir(dir.join(sub))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_backlog_is_one_batch_and_a_mail_failing_in_it_goes_to_quarantine_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let setup = Intaking::new(config(dir)).await;
    let (config, store) = (&setup.config, &setup.store);
    let pipeline = setup.pipeline();
    let mut mailbox = Mailbox::open(config).await.unwrap();

    // 30 complaints; the 11th is over intake.max_message_bytes (it fails inside the
    // batch), and the 21st is the 1st again (a duplicate within the same batch).
    for i in 0..30 {
        let raw = match i {
            10 => {
                let mut r = complaint(i);
                r.extend(std::iter::repeat_n(b'x', 200_000));
                r
            }
            20 => complaint(0),
            _ => complaint(i),
        };
        deliver(dir, &format!("{i:02}.mail"), &raw, 1000 - i as u64);
    }
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 30);

    // One batch: every mail left new/ — 29 to cur/, the failing one to quarantine.
    assert_eq!(count(dir, "mailbox/new"), 0);
    assert_eq!(count(dir, "mailbox/cur"), 29);
    assert_eq!(count(dir, "mailbox/.Quarantine/cur"), 1);
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 28, "28 distinct complaints became cases");
    let db = &support::TestDatabase::for_dir(dir).connect().await;
    let (batches, mails): (i64, i64) = sqlx::query_as("SELECT batches, mails FROM intake_batches")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(
        (batches, mails),
        (1, 30),
        "one synchronous commit for the batch"
    );
    let quarantined: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quarantine")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(quarantined, 1, "the failing mail alone");
    let duplicates: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM duplicates")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(
        duplicates, 1,
        "the copy in the same batch is seen as a duplicate"
    );

    // Nothing left: the next pass takes nothing.
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 0);
}

/// A clock that counts how often it is read: intake reads it several times a mail, so the
/// count says how far intake got.
#[derive(Debug)]
struct CountingClock {
    inner: ManualClock,
    reads: std::sync::atomic::AtomicUsize,
}

impl Clock for CountingClock {
    fn now(&self) -> chrono::DateTime<Utc> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.now()
    }
}

/// On SQLite a mail's statements run on intake's own thread without waiting for anything
/// (`store::direct`); a batch still lets the work joined beside it (the last batch's MOVE
/// runs beside the next batch's take-in) and the other tasks run between two mails, or
/// the MOVE would only start once the whole batch was taken in.
#[tokio::test]
async fn a_batch_lets_the_work_beside_it_run_between_two_mails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = config(dir);
    let store = support::open_store(&config).await;
    let intake_store = store.deferred();
    let clock = CountingClock {
        inner: ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap()),
        reads: Default::default(),
    };
    let pipeline = Pipeline::new(&config, &intake_store, &clock).unwrap();
    let mut mailbox = Mailbox::open(&config).await.unwrap();
    let mut intake = Intake::new(&pipeline);
    let n = 40;
    for i in 0..n {
        deliver(dir, &format!("{i:02}.mail"), &complaint(i), 1000 - i as u64);
    }
    // Beside the pass, in the same task: a future that is ready to go on at every poll and
    // notes how far intake got (the clock's reads) each time the pass lets it run.
    let done = std::cell::Cell::new(false);
    let seen = std::cell::RefCell::new(Vec::new());
    let beside = std::future::poll_fn(|cx| {
        seen.borrow_mut()
            .push(clock.reads.load(std::sync::atomic::Ordering::SeqCst));
        if done.get() {
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    });
    let pass = async {
        let taken = intake.pass(&mut mailbox).await;
        done.set(true);
        taken
    };
    let (taken, ()) = tokio::join!(pass, beside);
    assert_eq!(taken.unwrap(), 0, "taken in, in flight");
    assert_eq!(store.list_cases().await.unwrap().len(), n);
    // The most intake did without letting the other run: a mail's worth, not the batch's.
    let seen = seen.into_inner();
    let longest = seen.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    let total = seen.last().unwrap() - seen.first().unwrap();
    assert!(
        longest * 10 < total,
        "the longest run without a turn for the work beside: {longest} of {total} clock reads"
    );
}

/// A mail's history entries are written when its savepoint is released, in one INSERT
/// (`store::history`): should the database refuse them there, the mail is undone and goes
/// to quarantine alone, as when any other statement of it fails; the batch goes on, and the
/// chain holds, its ids dense (the next mail's entries follow the last entry kept).
#[tokio::test]
async fn a_mail_whose_history_is_refused_goes_to_quarantine_alone_and_the_chain_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let setup = Intaking::new(config(dir)).await;
    let (config, store) = (&setup.config, &setup.store);
    let pipeline = setup.pipeline();
    let mut mailbox = Mailbox::open(config).await.unwrap();
    // The history of the 4th complaint (its entries name its sender) is refused, as any
    // constraint would.
    let database = support::TestDatabase::for_dir(dir);
    let statements: &[&'static str] = match database.backend() {
        support::Backend::Sqlite => &["CREATE TRIGGER refuse_history BEFORE INSERT ON case_events
             WHEN NEW.changes LIKE '%klant3@client.example%'
             BEGIN SELECT RAISE(ABORT, 'the test database refuses this history'); END"],
        support::Backend::Postgres => &[
            "CREATE FUNCTION refuse_history() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN RAISE EXCEPTION 'the test database refuses this history'; END $$",
            "CREATE TRIGGER refuse_history BEFORE INSERT ON case_events FOR EACH ROW
             WHEN (NEW.changes LIKE '%klant3@client.example%') EXECUTE FUNCTION refuse_history()",
        ],
    };
    let db = &database.connect().await;
    for statement in statements {
        sqlx::query(*statement).execute(db).await.unwrap();
    }
    for i in 0..6 {
        deliver(dir, &format!("{i:02}.mail"), &complaint(i), 1000 - i as u64);
    }
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 6);

    assert_eq!(count(dir, "mailbox/cur"), 5);
    assert_eq!(count(dir, "mailbox/.Quarantine/cur"), 1);
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 5);
    assert!(
        cases
            .iter()
            .all(|c| c.complainant_address.as_deref() != Some("klant3@client.example"))
    );
    let items = store.quarantine_items(false).await.unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(
        items[0].message_id.as_deref(),
        Some("batch-3@client.example")
    );
    assert!(
        items[0].reason.contains("refuses this history"),
        "{}",
        items[0].reason
    );
    let chain = klachtpost::store::history::verify(store.pool())
        .await
        .unwrap();
    assert!(chain.broken.is_none(), "{:?}", chain.broken);
    let (entries, last): (i64, i64) = sqlx::query_as("SELECT COUNT(*), MAX(id) FROM case_events")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(entries as u64, chain.entries);
    assert_eq!(
        entries, last,
        "ids dense: {entries} entries, the last {last}"
    );
    assert_eq!(
        entries % 5,
        0,
        "each of the five cases the same entries: {entries}"
    );
}

#[tokio::test]
async fn a_large_mail_is_its_own_batch_and_stored_once_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut config = config(dir);
    config.intake.max_message_bytes = 50 * 1024 * 1024;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    let store = support::open_store(&config).await;
    let intake_store = store.deferred();
    let pipeline = Pipeline::new(&config, &intake_store, &clock).unwrap();
    let mut mailbox = Mailbox::open(&config).await.unwrap();

    // A 6 MB mail (a 4.5 MB attachment) between two small ones.
    let mut big = b"From: Klant <groot@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht met bijlage\r\nDate: Thu, 19 Nov 2026 10:15:00 +0100\r\nMessage-ID: <groot@client.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nZie de bijlage.\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"groot.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    let line = b"JVBERi0xLjQKJVBERi0xLjQKJVBERi0xLjQKJVBERi0xLjQKJVBERi0xLjQKJVBERi0xLjQKJVBE\r\n";
    for _ in 0..(6 * 1024 * 1024 / line.len()) {
        big.extend_from_slice(line);
    }
    big.extend_from_slice(b"--b--\r\n");
    deliver(dir, "1.mail", &complaint(1), 30);
    deliver(dir, "2.mail", &big, 20);
    deliver(dir, "3.mail", &complaint(3), 10);

    // The small one first; the large one ends that batch and comes alone; then the rest.
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 1);
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 1);
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 1);
    assert_eq!(count(dir, "mailbox/new"), 0);

    let case = store
        .list_cases()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.subject == "Klacht met bijlage")
        .expect("the large mail is a case");
    let detail = store.case(&case.reference).await.unwrap().unwrap();
    let m = detail
        .messages
        .iter()
        .find(|m| m.kind == "complaint")
        .unwrap();
    assert_eq!(
        store.raw_message(m.id).await.unwrap().unwrap(),
        big,
        "raw kept byte for byte"
    );
    let files = store.attachments_of(m.id).await.unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].size > 4_000_000, "{:?}", files[0].size);
    // The attachment's bytes are in the raw mail only, not stored a second time.
    let db = &support::TestDatabase::for_dir(dir).connect().await;
    let stored: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM attachments")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    let size: i64 = sqlx::query_scalar("SELECT size FROM messages WHERE id = $1")
        .bind(m.id)
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(size as usize, big.len());
}

fn large_mail(id: &str, mb: usize) -> Vec<u8> {
    let mut big = format!("From: Klant <groot@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht met bijlage\r\nDate: Thu, 19 Nov 2026 10:15:00 +0100\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nZie de bijlage.\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"groot.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n").into_bytes();
    // Not a multiple of a fetch piece, and different from line to line.
    let mut n = 0u32;
    while big.len() < mb * 1024 * 1024 + 12_345 {
        big.extend_from_slice(format!("JVBERi0xLjQK{n:064}\r\n").as_bytes());
        n += 1;
    }
    big.extend_from_slice(b"--b--\r\n");
    big
}

/// Intake from `imap`'s main account over plain IMAP on loopback, acknowledgements only.
fn imap_config(imap: &Dovecot, dir: &Path) -> Config {
    const PASSWORD_ENV: &str = "KP_TEST_IMAP_PASSWORD";
    TestConfig::new(dir)
        .mailbox(&format!(
            "kind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nusername = \"{}\"\npassword_env = \"{PASSWORD_ENV}\"\ntimeout_secs = 5",
            imap.imap_port,
            support::MAIN_USER
        ))
        .env(PASSWORD_ENV, &imap.password)
        .templates(&["acknowledgement"])
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_imap_a_backlog_comes_in_batches_by_size_and_a_large_mail_alone_in_pieces() {
    let imap = Dovecot::start();
    let tmp = tempfile::tempdir().unwrap();
    let config = imap_config(&imap, tmp.path());

    // Three small mails, a 6 MB one, two small ones.
    let big = large_mail("groot-imap@client.example", 6);
    for i in 0..3 {
        imap.append("INBOX", &complaint(i)).await;
    }
    imap.append("INBOX", &big).await;
    for i in 3..5 {
        imap.append("INBOX", &complaint(i)).await;
    }
    let store = support::open_store(&config).await;
    run_with(
        config,
        store.clone(),
        Arc::new(SystemClock),
        true,
        std::future::pending(),
    )
    .await
    .unwrap();

    assert_eq!(imap.count("INBOX").await, 0);
    assert_eq!(imap.count("Processed").await, 6);
    assert_eq!(store.list_cases().await.unwrap().len(), 6);
    let db = &support::TestDatabase::for_dir(tmp.path()).connect().await;
    // The small ones up to the large one, the large one alone, then the rest: three
    // batches, each made durable by one synchronous commit and moved by one UID MOVE.
    let (batches, mails): (i64, i64) = sqlx::query_as("SELECT batches, mails FROM intake_batches")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!((batches, mails), (3, 6));
    let row: i64 = sqlx::query_scalar("SELECT id FROM messages WHERE message_id = $1")
        .bind("groot-imap@client.example")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(
        store.raw_message(row).await.unwrap().unwrap(),
        big,
        "fetched in pieces, stored byte for byte"
    );
}

/// A large mail is held once while it is taken in: fetched in pieces into one buffer of
/// exactly its size (RFC822.SIZE), not grown piece by piece (a growing `Vec` doubles, and
/// for a 28 MiB mail would hold up to 32 MiB, with the old and the new buffer both there at
/// each step). That buffer on top of the heap is a run's peak memory (issue 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_imap_a_large_mail_is_fetched_into_one_buffer_of_its_size() {
    const PASSWORD_ENV: &str = "KP_TEST_IMAP_PASSWORD";
    let imap = Dovecot::start();
    let tmp = tempfile::tempdir().unwrap();
    let config = TestConfig::new(tmp.path())
        .mailbox(&format!(
            "kind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nusername = \"{}\"\npassword_env = \"{PASSWORD_ENV}\"\ntimeout_secs = 5",
            imap.imap_port,
            support::MAIN_USER
        ))
        .env(PASSWORD_ENV, &imap.password)
        .build();
    let big = large_mail("groot-buffer@client.example", 6);
    imap.append("INBOX", &big).await;
    let store = support::open_store(&config).await;
    let mut mailbox = Mailbox::open(&config).await.unwrap();

    let fetched = mailbox
        .fetch_new(&store, INTAKE_BATCH, SystemClock.now(), &[])
        .await
        .unwrap();

    assert_eq!(fetched.len(), 1);
    assert!(fetched[0].raw == big, "fetched in pieces, byte for byte");
    assert_eq!(
        fetched[0].raw.capacity(),
        big.len(),
        "one buffer of the mail's size: never grown, no slack"
    );
    mailbox.close().await;
}

/// Intake counts the partners' open cases once per batch and adds the batch's own new
/// cases (least open cases first, the default): a batch is shared out as if counted for
/// every mail, and the next batch counts again, seeing cases closed meanwhile.
#[tokio::test]
async fn a_batch_shares_complaints_out_by_open_cases_and_the_next_batch_counts_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = TestConfig::new(dir)
        .firm(support::FIRM_TWO_PARTNERS)
        .templates(&["acknowledgement"])
        .build();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    let store = support::open_store(&config).await;
    let intake_store = store.deferred();
    let pipeline = Pipeline::new(&config, &intake_store, &clock).unwrap();
    let mut mailbox = Mailbox::open(&config).await.unwrap();
    let partners = |cases: &[klachtpost::store::CaseSummary]| {
        let mut anna = Vec::new();
        let mut bob = Vec::new();
        for c in cases {
            match c.partner_email.as_str() {
                "anna@firma.nl" => anna.push(c.reference.clone()),
                _ => bob.push(c.reference.clone()),
            }
        }
        (anna, bob)
    };

    for i in 0..6 {
        deliver(dir, &format!("{i:02}.mail"), &complaint(i), 1000 - i as u64);
    }
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 6);
    let (anna, bob) = partners(&store.list_cases().await.unwrap());
    assert_eq!((anna.len(), bob.len()), (3, 3), "{anna:?} {bob:?}");

    // Anna's three cases are closed outside intake; the next batch counts again: Anna has
    // none open, Bob three, so Anna gets the next three.
    for reference in &anna {
        let mut tx = store.begin().await.unwrap();
        klachtpost::case::close(
            &mut tx,
            reference,
            klachtpost::case::Closing::NotAComplaint,
            klachtpost::case::Actor::new("Anna Partner", clock.now()),
            None,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    for i in 6..9 {
        deliver(dir, &format!("{i:02}.mail"), &complaint(i), 1000 - i as u64);
    }
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 3);
    let (anna_now, bob_now) = partners(&store.list_cases().await.unwrap());
    assert_eq!(
        (anna_now.len(), bob_now.len()),
        (6, 3),
        "{anna_now:?} {bob_now:?}"
    );
}

/// On a backlog the batches overlap: a batch is taken in while the one before is moved
/// away, and it is moved only once the next pass has made it durable. A batch in flight is
/// never fetched again, so the overlap records no duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_imap_a_batch_is_moved_after_it_is_durable_while_the_next_is_taken_in() {
    let imap = Dovecot::start();
    let tmp = tempfile::tempdir().unwrap();
    let config = imap_config(&imap, tmp.path());
    // Two full batches and a part of one.
    let n = 2 * INTAKE_BATCH + 50;
    imap.append_all("INBOX", &(0..n).map(complaint).collect::<Vec<_>>())
        .await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    let store = support::open_store(&config).await;
    let intake_store = store.deferred();
    let pipeline = Pipeline::new(&config, &intake_store, &clock).unwrap();
    let mut mailbox = Mailbox::open(&config).await.unwrap();
    let mut intake = Intake::new(&pipeline);
    let db = &support::TestDatabase::for_dir(tmp.path()).connect().await;
    let durable = || async {
        sqlx::query_as::<_, (i64, i64)>("SELECT batches, mails FROM intake_batches")
            .fetch_optional(db)
            .await
            .unwrap()
            .unwrap_or((0, 0))
    };
    let n = n as u32;
    let batch = INTAKE_BATCH as u32;

    // The first batch is taken in and committed, but neither durable nor moved yet.
    assert_eq!(intake.pass(&mut mailbox).await.unwrap(), 0);
    assert!(intake.in_flight());
    assert_eq!(store.list_cases().await.unwrap().len(), INTAKE_BATCH);
    assert_eq!(durable().await, (0, 0));
    assert_eq!(imap.count("INBOX").await, n);
    // The second: the first made durable while it was fetched, and moved while it was
    // taken in.
    assert_eq!(intake.pass(&mut mailbox).await.unwrap(), INTAKE_BATCH);
    assert_eq!(durable().await, (1, i64::from(batch)));
    assert_eq!(imap.count("INBOX").await, n - batch);
    assert_eq!(imap.count("Processed").await, batch);
    // The rest, then nothing new: the last batch is made durable and moved.
    assert_eq!(intake.pass(&mut mailbox).await.unwrap(), INTAKE_BATCH);
    assert_eq!(imap.count("INBOX").await, 50);
    assert_eq!(intake.pass(&mut mailbox).await.unwrap(), 50);
    assert!(!intake.in_flight());
    assert_eq!(imap.count("INBOX").await, 0);
    assert_eq!(imap.count("Processed").await, n);
    assert_eq!(durable().await, (3, i64::from(n)));
    assert_eq!(intake.pass(&mut mailbox).await.unwrap(), 0);

    assert_eq!(store.list_cases().await.unwrap().len(), n as usize);
    let duplicates: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM duplicates")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(duplicates, 0, "no batch in flight was fetched twice");
    let key = mailbox.key();
    let (_, last_uid) = store.checkpoint(&key).await.unwrap().unwrap();
    assert_eq!(last_uid, n, "the checkpoint is past every mail");
}

/// A batch in flight that is dropped (the connection failed, klachtpost was killed) is
/// still in the mailbox: it is fetched again, recorded as duplicates (nothing taken in
/// twice) and moved then.
#[tokio::test]
async fn a_batch_in_flight_that_is_dropped_is_fetched_again_as_duplicates_and_moved() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let setup = Intaking::new(config(dir)).await;
    let (config, store) = (&setup.config, &setup.store);
    let pipeline = setup.pipeline();
    let mut mailbox = Mailbox::open(config).await.unwrap();
    let n = INTAKE_BATCH + 30;
    for i in 0..n {
        deliver(
            dir,
            &format!("{i:04}.mail"),
            &complaint(i),
            10_000 - i as u64,
        );
    }

    let mut first = Intake::new(&pipeline);
    assert_eq!(first.pass(&mut mailbox).await.unwrap(), 0);
    assert_eq!(
        count(dir, "mailbox/new"),
        n,
        "nothing moved before it is durable"
    );
    // Maildir too skips the files in flight: the next pass takes the other 30.
    assert_eq!(first.pass(&mut mailbox).await.unwrap(), INTAKE_BATCH);
    assert_eq!(count(dir, "mailbox/new"), 30);
    assert_eq!(count(dir, "mailbox/cur"), INTAKE_BATCH);
    drop(first);

    let mut second = Intake::new(&pipeline);
    assert_eq!(second.pass(&mut mailbox).await.unwrap(), 0);
    assert_eq!(second.pass(&mut mailbox).await.unwrap(), 30, "moved");
    assert_eq!(second.pass(&mut mailbox).await.unwrap(), 0);
    assert!(!second.in_flight());
    assert_eq!(count(dir, "mailbox/new"), 0);
    assert_eq!(count(dir, "mailbox/cur"), n);
    assert_eq!(store.list_cases().await.unwrap().len(), n);
    let db = &support::TestDatabase::for_dir(dir).connect().await;
    let duplicates: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM duplicates")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(duplicates, 30, "the dropped batch, seen again");
}

/// The partners' notices of a pass (`new_complaint`, `new_complaints`): purpose, recipient,
/// subject, text and Message-ID, in the order queued.
async fn partner_notices(dir: &Path) -> Vec<(String, String, String, String, String)> {
    let db = &support::TestDatabase::for_dir(dir).connect().await;
    sqlx::query_as(
        "SELECT o.purpose, o.recipients, m.subject, m.text, m.message_id
         FROM outbox o JOIN messages m ON m.id = o.message_id
         WHERE o.purpose IN ('new_complaint', 'new_complaints') ORDER BY o.id",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

/// A batch's new cases are told to their partners together: one mail per partner listing
/// its cases, not one mail per case (a backlog of 10,000 complaints told each partner
/// 5,000 times). A partner acts on one of them by its reference; a new case alone gets the
/// usual notice. On PostgreSQL each mail is a transaction of its own, and so each case
/// told alone.
#[tokio::test]
async fn a_batchs_new_cases_are_told_to_each_partner_in_one_mail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let setup = Intaking::new(
        TestConfig::new(dir)
            .firm(support::FIRM_TWO_PARTNERS)
            .templates(&["acknowledgement"])
            .build(),
    )
    .await;
    let (config, store, clock) = (&setup.config, &setup.store, &setup.clock);
    let pipeline = setup.pipeline();
    let mut mailbox = Mailbox::open(config).await.unwrap();
    let together = support::TestDatabase::for_dir(dir).backend() == support::Backend::Sqlite;

    for i in 0..5 {
        deliver(dir, &format!("{i:02}.mail"), &complaint(i), 1000 - i as u64);
    }
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 5);
    let cases = store.list_cases().await.unwrap();
    let of = |partner: &str| -> Vec<String> {
        cases
            .iter()
            .filter(|c| c.partner_email == partner)
            .map(|c| c.reference.clone())
            .collect()
    };
    let (anna, bob) = (of("anna@firma.nl"), of("bob@firma.nl"));
    assert_eq!((anna.len(), bob.len()), (3, 2), "{anna:?} {bob:?}");
    let notices = partner_notices(dir).await;
    if together {
        assert_eq!(notices.len(), 2, "{notices:?}");
        for (partner, own, other) in [
            ("anna@firma.nl", &anna, &bob),
            ("bob@firma.nl", &bob, &anna),
        ] {
            let (purpose, _, subject, text, _) = notices.iter().find(|n| n.1 == partner).unwrap();
            assert_eq!(purpose, "new_complaints");
            assert_eq!(subject, &format!("{} nieuwe klachten voor u", own.len()));
            for r in own.iter() {
                assert!(text.contains(&format!("{r}: Klacht ")), "{r} in {text}");
            }
            for r in other.iter() {
                assert!(!text.contains(r.as_str()), "{r} not in {text}");
            }
            assert!(text.contains("zet het zaaknummer vooraan"), "{text}");
        }
    } else {
        assert_eq!(notices.len(), 5, "{notices:?}");
        assert!(
            notices.iter().all(|n| n.0 == "new_complaint"),
            "{notices:?}"
        );
    }
    for c in &cases {
        let detail = store.case(&c.reference).await.unwrap().unwrap();
        let told = detail
            .events
            .iter()
            .filter(|e| e.event == "partners.new_complaint")
            .count();
        assert_eq!(told, 1, "{}", c.reference);
    }

    // Anna closes one of hers by naming it; the others stay open.
    let anna_notice = notices.iter().find(|n| n.1 == "anna@firma.nl").unwrap();
    let reply = format!(
        "From: Anna Partner <anna@firma.nl>\r\nTo: klachten@firma.nl\r\nSubject: Re: {}\r\nMessage-ID: <reply-1@firma.nl>\r\nIn-Reply-To: <{}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n#sluiten {} tevreden\r\n",
        anna_notice.2, anna_notice.4, anna[1]
    );
    pipeline
        .take_in(Some("reply-1"), reply.as_bytes(), clock.now())
        .await
        .unwrap();
    for r in &anna {
        let status = store.case(r).await.unwrap().unwrap().case.status;
        assert_eq!(status == "closed", *r == anna[1], "{r}: {status}");
    }

    // One new case alone: the usual notice, with its reference in the subject.
    deliver(dir, "05.mail", &complaint(5), 10);
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 1);
    let last = partner_notices(dir).await.pop().unwrap();
    assert_eq!(last.0, "new_complaint");
    assert!(last.2.ends_with("Nieuwe klacht: Klacht 5"), "{}", last.2);
}

/// A mail to a partner that cannot be made (here a firm's `new_complaints` template that
/// fails past two cases, which `check-config`'s sample of two does not show) undoes no
/// case: that partner's cases are told one by one with the usual notice, and the other
/// partner's mail goes as it is.
#[tokio::test]
async fn a_partners_mail_that_cannot_be_made_tells_the_cases_one_by_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("new_complaints.nl.txt"),
        "Subject: {{ count }} nieuwe klachten\n\n{% for c in cases %}{{ c.reference }}\n{% endfor %}{% if count > 2 %}{{ no_such_value }}{% endif %}\n",
    )
    .unwrap();
    let setup = Intaking::new(
        TestConfig::new(dir)
            .firm(support::FIRM_TWO_PARTNERS)
            .section(
                "templates",
                &format!("dir = \"{}\"\nlanguage = \"nl\"", templates.display()),
            )
            .build(),
    )
    .await;
    let store = &setup.store;
    let pipeline = setup.pipeline();
    let mut mailbox = Mailbox::open(&setup.config).await.unwrap();
    let together = support::TestDatabase::for_dir(dir).backend() == support::Backend::Sqlite;

    for i in 0..5 {
        deliver(dir, &format!("{i:02}.mail"), &complaint(i), 1000 - i as u64);
    }
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 5);
    assert_eq!(store.list_cases().await.unwrap().len(), 5, "no case undone");
    let notices: Vec<(String, String)> = partner_notices(dir)
        .await
        .into_iter()
        .map(|n| (n.0, n.1))
        .collect();
    let anna: Vec<&str> = notices
        .iter()
        .filter(|n| n.1 == "anna@firma.nl")
        .map(|n| n.0.as_str())
        .collect();
    let bob: Vec<&str> = notices
        .iter()
        .filter(|n| n.1 == "bob@firma.nl")
        .map(|n| n.0.as_str())
        .collect();
    assert_eq!(anna, ["new_complaint"; 3], "{notices:?}");
    if together {
        assert_eq!(bob, ["new_complaints"], "{notices:?}");
    } else {
        assert_eq!(bob, ["new_complaint"; 2], "{notices:?}");
    }
}
