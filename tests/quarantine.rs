//! No mail stops intake, and no mail is taken in twice: fault cases against the real
//! Dovecot and smtp-sink of the test harness.
//!
//! - a poison mail between two good ones, with the daemon running: both good ones become
//!   cases, the poison mail is in quarantine (database and server folder), the partners'
//!   notice goes out, the daemon logs in once (no reconnect loop); after the fix a retry
//!   takes it in;
//! - the same bytes appended twice: one case, one acknowledgement, one duplicate record;
//! - UIDVALIDITY changed under a mail still in the folder, or the folder renamed: no second
//!   case;
//! - a kill between commit and MOVE, then the server reached under another host name:
//!   no second case;
//! - the same mail through an alias and as a Cc (other trace fields): one case;
//! - `From: Jan <jan>`: a flagged case, no acknowledgement, the partner is told.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use klachtpost::clock::{Clock, SystemClock};
use klachtpost::config::Config;
use klachtpost::daemon::run_with;
use klachtpost::fetch::Mailbox;
use klachtpost::intake::{Pipeline, Retried, UNANSWERABLE_FLAG};
use klachtpost::store::{MatchedBy, Store};
use support::{
    Backend, Dovecot, FIRM_TWO_PARTNERS, Received, Security, SmtpSink, TestConfig, TestDatabase,
};

const WAIT: Duration = Duration::from_secs(20);

struct Imap<'a> {
    server: &'a Dovecot,
    security: &'a str,
    host: &'a str,
    folder: &'a str,
}

/// The partners' "new complaint" notice (issue 11), sent for every case opened (for
/// several that came in together, one: "N nieuwe klachten voor u").
fn is_new_complaint_notice(m: &Received) -> bool {
    let subject = klachtpost::parse::parse(&m.data).subject;
    subject.contains("Nieuwe klacht") || subject.contains("nieuwe klachten")
}

fn config(dir: &Path, imap: &Imap<'_>, smtp_port: u16) -> Config {
    let port = if imap.security == "tls" {
        imap.server.imaps_port
    } else {
        imap.server.imap_port
    };
    TestConfig::new(dir)
        .firm(FIRM_TWO_PARTNERS)
        .mailbox(&format!(
            r#"kind = "imap"
host = "{host}"
port = {port}
security = "{security}"
username = "{user}"
password_env = "KP_TEST_IMAP_PASSWORD"
ca_file = "{ca}"
folder = "{folder}"
poll_interval_secs = 1"#,
            host = imap.host,
            security = imap.security,
            user = imap.server.user,
            ca = imap.server.ca_pem.display(),
            folder = imap.folder,
        ))
        .outgoing(&format!(
            r#"kind = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "klachten@firma.nl""#
        ))
        .templates(&["acknowledgement"])
        .section("digest", "schedule = \"never\"")
        .env("KP_TEST_IMAP_PASSWORD", &imap.server.password)
        .build()
}

fn plain<'a>(server: &'a Dovecot) -> Imap<'a> {
    Imap {
        server,
        security: "none",
        host: "127.0.0.1",
        folder: "INBOX",
    }
}

fn complaint(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: \"Marieke Jansen\" <marieke@client.example>\r\nTo: klachten@firma.nl\r\nSubject: {subject}\r\nDate: Thu, 19 Nov 2026 16:55:00 +0100\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHet advies kwam te laat en klopte niet ({id}).\r\n"
    )
    .into_bytes()
}

async fn never() {
    std::future::pending::<()>().await
}

async fn run_once(config: &Config, store: &Store) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    run_with(config.clone(), store.clone(), clock, true, never())
        .await
        .expect("run --once");
}

/// (purpose, status) of every outbox row.
async fn outbox(dir: &Path) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT purpose, status, recipients FROM outbox ORDER BY id")
        .fetch_all(&TestDatabase::for_dir(dir).connect().await)
        .await
        .unwrap()
}

/// The database refuses one mail: a trigger aborts the insert of a message with this
/// subject, as any constraint would. The fix a partner would make is dropping it.
const POISON_SUBJECT: &str = "Vergiftigd bericht";

async fn poison_the_database(dir: &Path) {
    // The subject is spelled out: SQL text is static (sqlx asks for audited strings).
    assert_eq!(POISON_SUBJECT, "Vergiftigd bericht");
    let database = TestDatabase::for_dir(dir);
    let statements: &[&'static str] = match database.backend() {
        Backend::Sqlite => &[
            "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.subject = 'Vergiftigd bericht'
             BEGIN SELECT RAISE(ABORT, 'the test database refuses this message'); END",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN RAISE EXCEPTION 'the test database refuses this message'; END $$",
            "CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW
             WHEN (NEW.subject = 'Vergiftigd bericht') EXECUTE FUNCTION refuse_poison()",
        ],
    };
    let db = database.connect().await;
    for statement in statements {
        sqlx::query(*statement).execute(&db).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_mail_between_two_good_ones_is_quarantined_and_intake_goes_on() {
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let imap = Imap {
        server: &dovecot,
        security: "tls",
        host: "localhost",
        folder: "INBOX",
    };
    let config = config(tmp.path(), &imap, smtp.port);
    let store = support::open_store(&config).await;
    poison_the_database(tmp.path()).await;
    let poison = complaint("poison-1@client.example", POISON_SUBJECT);
    dovecot
        .append("INBOX", &complaint("good-1@client.example", "Klacht een"))
        .await;
    dovecot.append("INBOX", &poison).await;
    dovecot
        .append("INBOX", &complaint("good-2@client.example", "Klacht twee"))
        .await;

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run_with(
        config.clone(),
        store.clone(),
        clock.clone(),
        false,
        async move {
            let _ = stop_rx.await;
        },
    ));

    // Both good mails become cases and move to Processed; the poison mail moves to the
    // Quarantine folder (created by klachtpost), byte for byte.
    dovecot.wait_for_count("Processed", 2, WAIT).await;
    dovecot.wait_for_count("Quarantine", 1, WAIT).await;
    assert_eq!(dovecot.count("INBOX").await, 0);
    assert_eq!(dovecot.fetch_all("Quarantine").await, vec![poison.clone()]);
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 2, "{cases:?}");
    assert!(cases.iter().all(|c| c.subject != POISON_SUBJECT));
    // The three came in one batch (one transaction) and the poison mail was undone alone,
    // back to its savepoint, after its case had been opened: its case number went back
    // (the two cases are 0001 and 0002), and the history chain holds (its entries are
    // gone, and the next mail's first entry follows the last one kept).
    let mut numbers: Vec<&str> = cases
        .iter()
        .map(|c| c.reference.rsplit('-').next().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, ["0001", "0002"]);
    let chain = klachtpost::store::history::verify(store.pool())
        .await
        .unwrap();
    assert!(chain.broken.is_none(), "{:?}", chain.broken);

    // In quarantine in the database: raw, with why, under a reference.
    let items = store.quarantine_items(false).await.unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(item.reference, "Q-0001");
    assert_eq!(item.message_id.as_deref(), Some("poison-1@client.example"));
    assert!(
        item.reason.contains("refuses this message"),
        "{}",
        item.reason
    );
    assert!(
        item.source_key
            .as_deref()
            .unwrap()
            .starts_with("imap:complaints/INBOX:")
    );
    let (_, raw) = store.quarantine_item(item.id).await.unwrap().unwrap();
    assert_eq!(raw, poison);

    // Two acknowledgements and ONE notice to both partners, naming the reference and
    // nothing of the mail.
    // (Also each good complaint's new-complaint notice to its partner, issue 11.)
    let sent = smtp.wait_for(5, WAIT).await;
    let notices: Vec<_> = sent
        .iter()
        .filter(|m| m.rcpt_to.contains(&"anna@firma.nl".to_string()) && !is_new_complaint_notice(m))
        .collect();
    assert_eq!(notices.len(), 1, "{sent:?}");
    assert_eq!(notices[0].rcpt_to, vec!["anna@firma.nl", "bob@firma.nl"]);
    let notice = klachtpost::parse::parse(&notices[0].data);
    assert!(notice.subject.starts_with("[Q-0001]"), "{}", notice.subject);
    assert!(notice.text.contains("Q-0001"));
    assert!(notice.text.contains("\"Quarantine\""));
    for secret in [POISON_SUBJECT, "marieke", "Marieke", "te laat"] {
        assert!(!notice.text.contains(secret), "the notice shows {secret:?}");
        assert!(!notice.subject.contains(secret));
    }
    let acks = sent
        .iter()
        .filter(|m| m.rcpt_to == vec!["marieke@client.example"])
        .count();
    assert_eq!(acks, 2);

    // Intake goes on: a mail arriving now is taken in on the same connection. The daemon
    // logged in once (over TLS; the test's own helpers use plain connections): the old
    // failure re-logged in thousands of times.
    dovecot
        .append("INBOX", &complaint("good-3@client.example", "Klacht drie"))
        .await;
    dovecot.wait_for_count("Processed", 3, WAIT).await;
    assert_eq!(store.list_cases().await.unwrap().len(), 3);
    let log = dovecot.log();
    let daemon_logins = log
        .lines()
        .filter(|l| l.contains("Login: user=<complaints>") && l.contains("TLS"))
        .count();
    assert_eq!(daemon_logins, 1, "{log}");

    stop_tx.send(()).unwrap();
    tokio::time::timeout(WAIT, daemon)
        .await
        .expect("the daemon stops")
        .unwrap()
        .unwrap();

    // A retry before the fix fails again and says why; the item stays.
    let pipeline = Pipeline::new(&config, &store, clock.as_ref()).unwrap();
    match pipeline.retry(item.id).await.unwrap() {
        Retried::StillFailing(why) => assert!(why.contains("refuses"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.quarantine_items(false).await.unwrap()[0].attempts, 1);

    // After the fix it is taken in: a case, linked; the record that it was quarantined
    // stays, and a second retry has nothing to do.
    let database = TestDatabase::for_dir(tmp.path());
    sqlx::query(database.pick("DROP TRIGGER poison", "DROP TRIGGER poison ON messages"))
        .execute(&database.connect().await)
        .await
        .unwrap();
    let case = match pipeline.retry(item.id).await.unwrap() {
        Retried::TakenIn {
            case: Some(case), ..
        } => case,
        other => panic!("{other:?}"),
    };
    let detail = store.case(&case).await.unwrap().unwrap();
    assert_eq!(detail.case.subject, POISON_SUBJECT);
    assert!(
        detail
            .events
            .iter()
            .any(|e| e.event == "quarantine.taken_in" && e.detail.contains("Q-0001"))
    );
    let complaint_row = detail
        .messages
        .iter()
        .find(|m| m.kind == "complaint")
        .unwrap();
    assert_eq!(
        store.raw_message(complaint_row.id).await.unwrap().unwrap(),
        poison
    );
    assert!(store.quarantine_items(false).await.unwrap().is_empty());
    let history = store.quarantine_items(true).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].status, "taken_in");
    assert_eq!(history[0].case.as_deref(), Some(case.as_str()));
    assert!(matches!(
        pipeline.retry(item.id).await.unwrap(),
        Retried::AlreadyResolved(_)
    ));
    assert_eq!(store.list_cases().await.unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bytes_appended_twice_are_one_case_and_one_acknowledgement() {
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), &plain(&dovecot), smtp.port);
    let store = support::open_store(&config).await;
    let raw = complaint("twice-1@client.example", "Klacht");
    dovecot.append("INBOX", &raw).await;
    dovecot.append("INBOX", &raw).await;

    run_once(&config, &store).await;

    assert_eq!(store.list_cases().await.unwrap().len(), 1);
    assert_eq!(dovecot.count("INBOX").await, 0);
    assert_eq!(dovecot.count("Processed").await, 2, "both moved on");
    let duplicates = store.duplicates().await.unwrap();
    assert_eq!(duplicates.len(), 1, "{duplicates:?}");
    assert_eq!(duplicates[0].matched_by, MatchedBy::Identity.as_str());
    assert_eq!(duplicates[0].times, 1);
    assert!(duplicates[0].message_row.is_some());
    assert_eq!(
        outbox(tmp.path()).await,
        vec![
            (
                "acknowledgement".to_string(),
                "sent".to_string(),
                "marieke@client.example".to_string()
            ),
            (
                "new_complaint".to_string(),
                "sent".to_string(),
                "anna@firma.nl".to_string()
            )
        ]
    );
    assert_eq!(smtp.wait_for(2, WAIT).await.len(), 2);
    // Only one raw copy is kept.
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'")
        .fetch_one(&TestDatabase::for_dir(tmp.path()).connect().await)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

async fn uidvalidity(dovecot: &Dovecot, folder: &str) -> u32 {
    let mut session = dovecot.login(Security::Plain).await.unwrap();
    let selected = session.select(folder).await.unwrap();
    let _ = session.logout().await;
    selected.uid_validity.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uidvalidity_change_under_a_mail_still_there_makes_no_second_case() {
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let imap = Imap {
        folder: "Klachten",
        ..plain(&dovecot)
    };
    let config = config(tmp.path(), &imap, smtp.port);
    let store = support::open_store(&config).await;
    let raw = complaint("uidv-1@client.example", "Klacht");
    dovecot.create_folder("Klachten").await;
    dovecot.append("Klachten", &raw).await;
    let before = uidvalidity(&dovecot, "Klachten").await;
    run_once(&config, &store).await;
    assert_eq!(store.list_cases().await.unwrap().len(), 1);

    // The folder is recreated (as a server migration or a restore does) with the same
    // mail in it: new UIDVALIDITY, the mail at UID 1 again.
    let mut session = dovecot.login(Security::Plain).await.unwrap();
    session.delete("Klachten").await.unwrap();
    let _ = session.logout().await;
    dovecot.create_folder("Klachten").await;
    dovecot.append("Klachten", &raw).await;
    let after = uidvalidity(&dovecot, "Klachten").await;
    assert_ne!(before, after, "the test must change UIDVALIDITY");

    run_once(&config, &store).await;
    assert_eq!(store.list_cases().await.unwrap().len(), 1, "no second case");
    assert_eq!(dovecot.count("Klachten").await, 0);
    assert_eq!(dovecot.count("Processed").await, 2);
    let duplicates = store.duplicates().await.unwrap();
    assert_eq!(duplicates.len(), 1);
    assert_eq!(duplicates[0].matched_by, "identity");
    assert!(
        duplicates[0]
            .source_key
            .as_deref()
            .unwrap()
            .contains(&format!(":{after}:"))
    );
    let acks: Vec<_> = outbox(tmp.path())
        .await
        .into_iter()
        .filter(|(p, _, _)| p == "acknowledgement")
        .collect();
    assert_eq!(acks.len(), 1);
    // The acknowledgement and the partner's new-complaint notice.
    assert_eq!(smtp.wait_for(2, WAIT).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_commit_and_move_then_another_host_name_makes_no_second_case() {
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let by_name = config(
        tmp.path(),
        &Imap {
            host: "localhost",
            ..plain(&dovecot)
        },
        smtp.port,
    );
    let store = support::open_store(&by_name).await;
    let raw = complaint("killed-1@client.example", "Klacht");
    dovecot.append("INBOX", &raw).await;

    // Fetched and committed, then the process dies before the MOVE (and before the
    // checkpoint moves): the mail is still in INBOX at the same UID.
    {
        let clock = SystemClock;
        let pipeline = Pipeline::new(&by_name, &store, &clock).unwrap();
        let mut mailbox = Mailbox::open(&by_name).await.unwrap();
        let fetched = mailbox
            .fetch_new(&store, 10, clock.now(), &[])
            .await
            .unwrap();
        assert_eq!(fetched.len(), 1);
        let outcome = pipeline
            .take_in(
                Some(&fetched[0].source_key),
                &fetched[0].raw,
                fetched[0].received_at,
            )
            .await
            .unwrap();
        assert!(outcome.opened);
        drop(mailbox);
    }
    assert_eq!(dovecot.count("INBOX").await, 1);

    // Restarted, and reaching the same server by its address instead of its name: the
    // mailbox key is the same, the mail is recognised at once by where it sits.
    let by_address = config(tmp.path(), &plain(&dovecot), smtp.port);
    run_once(&by_address, &store).await;
    assert_eq!(store.list_cases().await.unwrap().len(), 1, "no second case");
    assert_eq!(dovecot.count("INBOX").await, 0);
    assert_eq!(dovecot.count("Processed").await, 1);
    let duplicates = store.duplicates().await.unwrap();
    assert_eq!(duplicates.len(), 1);
    assert_eq!(duplicates[0].matched_by, "source_key");
    let (checkpoints,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM mailbox_state")
        .fetch_one(&TestDatabase::for_dir(tmp.path()).connect().await)
        .await
        .unwrap();
    assert_eq!(checkpoints, 1, "one checkpoint for one folder");
    assert_eq!(
        smtp.wait_for(2, WAIT).await.len(),
        2,
        "one acknowledgement (and the partner's notice)"
    );
    // Nothing more arrives: one more run sends nothing.
    run_once(&by_address, &store).await;
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_without_domain_opens_a_flagged_case_and_the_partner_is_told() {
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), &plain(&dovecot), smtp.port);
    let store = support::open_store(&config).await;
    dovecot
        .append(
            "INBOX",
            b"From: Jan <jan>\r\nTo: klachten@firma.nl\r\nSubject: Klacht over de factuur\r\nMessage-ID: <jan-1@client.example>\r\n\r\nDe factuur klopt niet.\r\n",
        )
        .await;
    dovecot
        .append("INBOX", &complaint("after-jan@client.example", "Klacht"))
        .await;

    let started = Instant::now();
    run_once(&config, &store).await;
    assert!(started.elapsed() < WAIT);

    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 2, "the mail behind it is taken in too");
    let jan = cases
        .iter()
        .find(|c| c.complainant_address.as_deref() == Some("jan"))
        .expect("a case for Jan's mail");
    assert!(
        jan.flags.iter().any(|f| f == UNANSWERABLE_FLAG),
        "{:?}",
        jan.flags
    );
    assert!(store.quarantine_items(true).await.unwrap().is_empty());
    assert_eq!(dovecot.count("Processed").await, 2);
    let detail = store.case(&jan.reference).await.unwrap().unwrap();
    assert!(
        !detail.messages.iter().any(|m| m.kind == "acknowledgement"),
        "no acknowledgement for jan"
    );
    assert!(
        detail
            .events
            .iter()
            .any(|e| e.event == "acknowledgement.impossible")
    );

    // The partner of that case is told, by mail; the other complaint is acknowledged.
    // (And each case's new-complaint notice to its partner, issue 11.)
    let sent = smtp.wait_for(4, WAIT).await;
    let to_partner: Vec<_> = sent
        .iter()
        .filter(|m| m.rcpt_to == vec![jan.partner_email.clone()] && !is_new_complaint_notice(m))
        .collect();
    assert_eq!(to_partner.len(), 1, "{sent:?}");
    let notice = klachtpost::parse::parse(&to_partner[0].data);
    assert!(
        notice
            .subject
            .starts_with(&format!("[{}] Ontvangst niet bevestigd", jan.reference)),
        "{}",
        notice.subject
    );
    assert!(notice.text.contains("op een andere manier"));
    assert!(
        sent.iter()
            .any(|m| m.rcpt_to == vec!["marieke@client.example"])
    );
    // The notice, the acknowledgement, and each case's new-complaint notice.
    assert_eq!(sent.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_mail_through_an_alias_and_a_cc_is_one_case() {
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), &plain(&dovecot), smtp.port);
    let store = support::open_store(&config).await;
    let mail = complaint("alias-1@client.example", "Klacht");
    // What the MTA prepends differs per copy: the envelope recipient, the hop, the time.
    let via_alias = [
        b"Return-Path: <marieke@client.example>\r\nDelivered-To: klachten@firma.nl\r\nX-Original-To: info@firma.nl\r\nReceived: from mx.client.example by mx.firma.nl with ESMTPS id 4AbC1;\r\n\tThu, 19 Nov 2026 16:55:02 +0100\r\n".as_slice(),
        &mail,
    ]
    .concat();
    let via_cc = [
        b"Return-Path: <marieke@client.example>\r\nDelivered-To: klachten@firma.nl\r\nReceived: from mx.client.example by mx.firma.nl with ESMTPS id 4AbC2;\r\n\tThu, 19 Nov 2026 16:55:03 +0100\r\nX-Spam-Status: No, score=-0.1\r\n".as_slice(),
        &mail,
    ]
    .concat();
    assert_ne!(via_alias, via_cc);
    dovecot.append("INBOX", &via_alias).await;
    dovecot.append("INBOX", &via_cc).await;

    run_once(&config, &store).await;
    assert_eq!(store.list_cases().await.unwrap().len(), 1);
    assert_eq!(dovecot.count("Processed").await, 2);
    let duplicates = store.duplicates().await.unwrap();
    assert_eq!(duplicates.len(), 1);
    assert_eq!(duplicates[0].matched_by, "identity");
    assert_eq!(smtp.wait_for(2, WAIT).await.len(), 2);
    run_once(&config, &store).await;
    assert_eq!(
        smtp.messages().len(),
        2,
        "one acknowledgement (and the partner's notice)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_folder_with_a_stored_mail_still_in_it_makes_no_second_case() {
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let before = config(
        tmp.path(),
        &Imap {
            folder: "Klachten",
            ..plain(&dovecot)
        },
        smtp.port,
    );
    let store = support::open_store(&before).await;
    let raw = complaint("renamed-1@client.example", "Klacht");
    dovecot.create_folder("Klachten").await;
    dovecot.append("Klachten", &raw).await;
    // Stored, but not moved (the process stopped in between).
    {
        let clock = SystemClock;
        let pipeline = Pipeline::new(&before, &store, &clock).unwrap();
        let mut mailbox = Mailbox::open(&before).await.unwrap();
        let fetched = mailbox
            .fetch_new(&store, 10, clock.now(), &[])
            .await
            .unwrap();
        assert_eq!(fetched.len(), 1);
        let f = &fetched[0];
        assert!(
            pipeline
                .take_in(Some(&f.source_key), &f.raw, f.received_at)
                .await
                .unwrap()
                .opened
        );
    }
    // The folder is renamed and klachtpost is pointed at its new name.
    let mut session = dovecot.login(Security::Plain).await.unwrap();
    session.rename("Klachten", "Klachten-2026").await.unwrap();
    let _ = session.logout().await;
    let after = config(
        tmp.path(),
        &Imap {
            folder: "Klachten-2026",
            ..plain(&dovecot)
        },
        smtp.port,
    );
    run_once(&after, &store).await;
    assert_eq!(store.list_cases().await.unwrap().len(), 1, "no second case");
    assert_eq!(dovecot.count("Klachten-2026").await, 0);
    assert_eq!(dovecot.count("Processed").await, 1);
    let duplicates = store.duplicates().await.unwrap();
    assert_eq!(duplicates.len(), 1);
    assert_eq!(duplicates[0].matched_by, "identity");
    assert_eq!(
        smtp.wait_for(2, WAIT).await.len(),
        2,
        "one acknowledgement (and the partner's notice)"
    );
}
