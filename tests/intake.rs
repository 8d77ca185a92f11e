//! Intake end to end on the embedded default (Maildir in, file outbox out, SQLite file),
//! with a manual clock: what is stored, what is queued, what is sent, and that nothing is
//! taken in twice.

mod support;

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use klachtpost::clock::{Clock, ManualClock};
use klachtpost::config::Config;
use klachtpost::daemon::intake_pass;
use klachtpost::fetch::Mailbox;
use klachtpost::intake::Pipeline;
use klachtpost::outbox;
use klachtpost::send::Sender;
use support::{Backend, FIRM_TWO_PARTNERS, TestConfig, TestDatabase};

fn config(dir: &Path) -> Config {
    TestConfig::new(dir)
        .firm(FIRM_TWO_PARTNERS)
        .templates(&["acknowledgement"])
        .build()
}

fn deliver(dir: &Path, name: &str, raw: &[u8]) {
    let md = dir.join("mailbox");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    std::fs::write(md.join("tmp").join(name), raw).unwrap();
    std::fs::rename(md.join("tmp").join(name), md.join("new").join(name)).unwrap();
}

const COMPLAINT: &[u8] = b"From: \"Jan de Vries\" <Jan@Example.nl>\r\nTo: klachten@firma.nl\r\nSubject: Klacht over de factuur\r\nDate: Thu, 19 Nov 2026 10:15:00 +0100\r\nMessage-ID: <c1@example.nl>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDe factuur klopt niet.\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"factuur.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";

#[tokio::test]
async fn a_complaint_becomes_a_case_with_one_acknowledgement_and_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = config(dir);
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    let store = support::open_store(&config).await;
    let sender = Sender::from_config(&config).unwrap();
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    let mut mailbox = Mailbox::open(&config).await.unwrap();

    deliver(dir, "1.complaint", COMPLAINT);
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 1);
    // Processed mail left new/ for cur/.
    assert_eq!(
        std::fs::read_dir(dir.join("mailbox/new")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(dir.join("mailbox/cur")).unwrap().count(),
        1
    );

    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 1);
    let case = &cases[0];
    assert_eq!(case.reference, "KL-2026-0001");
    assert_eq!(case.complainant_address.as_deref(), Some("jan@example.nl"));
    assert_eq!(case.complainant_name.as_deref(), Some("Jan de Vries"));
    assert_eq!(case.channel, "email");
    assert_eq!(case.partner_name, "Anna Partner");

    let detail = store.case("KL-2026-0001").await.unwrap().unwrap();
    let complaint = detail
        .messages
        .iter()
        .find(|m| m.kind == "complaint")
        .unwrap();
    assert_eq!(complaint.attachments, 1);
    assert_eq!(
        store.raw_message(complaint.id).await.unwrap().unwrap(),
        COMPLAINT,
        "raw kept byte for byte"
    );
    let ack = detail
        .messages
        .iter()
        .find(|m| m.kind == "acknowledgement")
        .unwrap();
    assert_eq!(ack.delivery.as_deref(), Some("queued"));

    // The sender writes exactly one acknowledgement file (and the partner's notice).
    let drained = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    assert_eq!(
        drained,
        outbox::Drained {
            sent: 2,
            retried: 0,
            failed: 0,
            ..Default::default()
        }
    );
    let files: Vec<_> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2);
    let sent = files
        .iter()
        .map(|f| klachtpost::parse::parse(&std::fs::read(f).unwrap()))
        .find(|m| m.subject.contains("Ontvangstbevestiging"))
        .expect("the acknowledgement");
    assert_eq!(
        sent.subject,
        "[KL-2026-0001] Ontvangstbevestiging: Klacht over de factuur"
    );
    assert_eq!(sent.to[0].address, "Jan@Example.nl");
    assert_eq!(sent.in_reply_to, vec!["c1@example.nl"]);
    assert_eq!(sent.header("Auto-Submitted"), Some("auto-replied"));
    assert_eq!(sent.header("X-Auto-Response-Suppress"), Some("All"));
    assert!(sent.message_id.as_deref().unwrap().ends_with("@firma.nl"));
    assert!(sent.text.contains("KL-2026-0001"));
    // Nothing more is due.
    assert_eq!(
        outbox::drain_once(&store, &sender, &clock, &config)
            .await
            .unwrap(),
        outbox::Drained::default()
    );

    // The same mail fetched again (a crash before the move) is not taken in twice.
    let again = pipeline
        .take_in(Some("maildir:1.complaint"), COMPLAINT, clock.now())
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(store.list_cases().await.unwrap().len(), 1);

    // The complainant answers the acknowledgement: threaded, not a new case, no new ack.
    let reply = format!(
        "From: Jan de Vries <jan@example.nl>\r\nTo: klachten@firma.nl\r\nSubject: Re: {}\r\nMessage-ID: <r1@example.nl>\r\nIn-Reply-To: <{}>\r\n\r\nDank u.\r\n",
        sent.subject,
        sent.message_id.as_deref().unwrap()
    );
    deliver(dir, "2.reply", reply.as_bytes());
    clock.advance(chrono::Duration::hours(1));
    intake_pass(&mut mailbox, &pipeline).await.unwrap();
    assert_eq!(store.list_cases().await.unwrap().len(), 1);
    let detail = store.case("KL-2026-0001").await.unwrap().unwrap();
    assert_eq!(
        detail.messages.iter().filter(|m| m.kind == "reply").count(),
        1
    );
    assert_eq!(
        outbox::drain_once(&store, &sender, &clock, &config)
            .await
            .unwrap()
            .sent,
        0
    );

    // A second complaint gets the next number and the less busy partner.
    deliver(dir, "3.complaint", &COMPLAINT.to_vec().replace_id());
    intake_pass(&mut mailbox, &pipeline).await.unwrap();
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases[0].reference, "KL-2026-0002");
    assert_eq!(cases[0].partner_name, "Bob Partner");
}

trait ReplaceId {
    fn replace_id(self) -> Vec<u8>;
}
impl ReplaceId for Vec<u8> {
    fn replace_id(self) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace("<c1@example.nl>", "<c2@example.nl>")
            .into_bytes()
    }
}

#[tokio::test]
async fn garbage_is_quarantined_raw_never_acknowledged_and_the_partners_are_told() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = config(dir);
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    let store = support::open_store(&config).await;
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    let mut mailbox = Mailbox::open(&config).await.unwrap();
    let raw = b"\x00\x01\x02\xff\xfe this is no mail at all";
    // Taken in directly, it is refused: nothing is written.
    let refused = pipeline
        .take_in(Some("test:garbage"), raw, clock.now())
        .await
        .unwrap_err();
    assert!(
        format!("{refused:#}").contains("cannot be read"),
        "{refused:#}"
    );
    assert!(store.quarantine_items(true).await.unwrap().is_empty());

    // Fetched from the mailbox, it goes to quarantine, raw, and the partners are told.
    deliver(dir, "1.garbage", raw);
    assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 1);
    let items = store.quarantine_items(false).await.unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].reference, "Q-0001");
    assert!(
        items[0].reason.contains("cannot be read"),
        "{}",
        items[0].reason
    );
    let (_, stored) = store.quarantine_item(items[0].id).await.unwrap().unwrap();
    assert_eq!(stored, raw);
    assert!(store.list_cases().await.unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.join("mailbox/.Quarantine/cur"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        std::fs::read_dir(dir.join("mailbox/new")).unwrap().count(),
        0
    );
    // One notice, to both partners, naming the reference; no acknowledgement.
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(counts, vec![("queued".to_string(), 1)]);
    let sender = Sender::from_config(&config).unwrap();
    outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let notice = klachtpost::parse::parse(&std::fs::read(&files[0]).unwrap());
    assert!(notice.subject.starts_with("[Q-0001]"), "{}", notice.subject);
    let to: Vec<_> = notice.to.iter().map(|a| a.address.as_str()).collect();
    assert_eq!(to, ["anna@firma.nl", "bob@firma.nl"]);
    assert!(notice.text.contains("klachtpost quarantine retry Q-0001"));
    assert!(!notice.text.contains("no mail at all"), "never the content");
}

#[tokio::test]
async fn sequence_restarts_each_year_and_survives_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = config(dir);
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 12, 31, 22, 30, 0).unwrap(),
    ));
    {
        let store = support::open_store(&config).await;
        let pipeline = Pipeline::new(&config, &store, clock.as_ref()).unwrap();
        let o = pipeline
            .take_in(Some("k1"), COMPLAINT, clock.now())
            .await
            .unwrap();
        assert_eq!(o.case.as_deref(), Some("KL-2026-0001"));
    }
    // 23:30 UTC on 31 December is already 2027 in Amsterdam.
    clock.set(Utc.with_ymd_and_hms(2026, 12, 31, 23, 30, 0).unwrap());
    let store = support::open_store(&config).await;
    let pipeline = Pipeline::new(&config, &store, clock.as_ref()).unwrap();
    let raw2 = COMPLAINT.to_vec().replace_id();
    let o = pipeline
        .take_in(Some("k2"), &raw2, clock.now())
        .await
        .unwrap();
    assert_eq!(o.case.as_deref(), Some("KL-2027-0001"));
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mail")
            .join(name),
    )
    .unwrap()
}

/// Issue 12: ordinary complaints whose subjects and texts use the words of auto-replies
/// and bounces (the `words-*.eml` fixtures) each become a case and are acknowledged; real
/// machine mail opens none and is listed as unfiled with the reason `explain` gives.
#[tokio::test]
async fn complaints_with_auto_reply_words_are_cases_and_machine_mail_is_listed_unfiled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = config(dir);
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    let store = support::open_store(&config).await;
    let sender = Sender::from_config(&config).unwrap();
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    let mut mailbox = Mailbox::open(&config).await.unwrap();

    let fixtures_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail");
    let mut names: Vec<String> = std::fs::read_dir(&fixtures_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("words-"))
        .collect();
    names.sort();
    assert!(names.len() >= 12);
    for (i, name) in names.iter().enumerate() {
        deliver(dir, &format!("{i:02}.{name}"), &fixture(name));
    }
    assert_eq!(
        intake_pass(&mut mailbox, &pipeline).await.unwrap(),
        names.len()
    );
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), names.len(), "every complaint is a case");
    assert!(store.unfiled(None).await.unwrap().is_empty());
    let drained = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    // Every complaint is acknowledged, and its partner told: on SQLite the batch's new
    // cases in one mail per partner, on PostgreSQL (a transaction per mail) one each.
    let together = support::TestDatabase::for_dir(dir).backend() == support::Backend::Sqlite;
    let notices = if together { 2 } else { names.len() };
    assert_eq!(
        drained.sent,
        names.len() + notices,
        "every complaint is acknowledged"
    );
    let acknowledged: Vec<String> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| klachtpost::parse::parse(&std::fs::read(e.unwrap().path()).unwrap()).subject)
        .collect();
    for subject in [
        "Klacht: adviseur afwezig bij afspraak",
        "Out of office during my training - complaint",
        "Automatisch antwoord ontbrak, klacht over de factuur",
    ] {
        assert!(
            acknowledged
                .iter()
                .any(|s| s.ends_with(&format!("Ontvangstbevestiging: {subject}"))),
            "{subject}: {acknowledged:?}"
        );
    }

    // Real machine mail: no case, listed with its reason.
    deliver(dir, "90.ooo", &fixture("out-of-office.eml"));
    deliver(dir, "91.bounce", &fixture("bounce-no-headers.eml"));
    deliver(dir, "92.list", &fixture("list-mail.eml"));
    intake_pass(&mut mailbox, &pipeline).await.unwrap();
    assert_eq!(store.list_cases().await.unwrap().len(), names.len());
    let unfiled = store.unfiled(None).await.unwrap();
    let mut kinds: Vec<&str> = unfiled.iter().map(|u| u.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["automatic", "automatic", "bounce"]);
    for u in &unfiled {
        assert!(u.case.is_none());
        let raw = store.raw_message(u.id).await.unwrap().unwrap();
        let m = klachtpost::parse::parse(&raw);
        let d = klachtpost::classify::classify(
            &m,
            &pipeline.context(u.received_at.parse().unwrap()),
            &store
                .known(&klachtpost::classify::lookups(&m))
                .await
                .unwrap(),
        );
        assert_eq!(u.reason, d.reason, "the reason explain gives");
    }
    assert_eq!(
        outbox::drain_once(&store, &sender, &clock, &config)
            .await
            .unwrap()
            .sent,
        0,
        "machine mail is never answered"
    );
}

#[tokio::test]
async fn a_mail_seen_again_at_the_same_place_counts_up_one_duplicate_record() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path());
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    let store = support::open_store(&config).await;
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    assert!(
        !pipeline
            .take_in(Some("maildir:1"), COMPLAINT, clock.now())
            .await
            .unwrap()
            .duplicate
    );
    for _ in 0..3 {
        let again = pipeline
            .take_in(Some("maildir:1"), COMPLAINT, clock.now())
            .await
            .unwrap();
        assert!(again.duplicate);
        assert!(again.case.is_none() && !again.ack_queued);
    }
    // A copy elsewhere is another record.
    let copy = pipeline
        .take_in(Some("maildir:2"), COMPLAINT, clock.now())
        .await
        .unwrap();
    assert!(copy.duplicate);
    let duplicates = store.duplicates().await.unwrap();
    assert_eq!(duplicates.len(), 2, "{duplicates:?}");
    let at_1 = duplicates
        .iter()
        .find(|d| d.source_key.as_deref() == Some("maildir:1"))
        .unwrap();
    assert_eq!((at_1.times, at_1.matched_by.as_str()), (3, "source_key"));
    let at_2 = duplicates
        .iter()
        .find(|d| d.source_key.as_deref() == Some("maildir:2"))
        .unwrap();
    assert_eq!((at_2.times, at_2.matched_by.as_str()), (1, "identity"));
    assert_eq!(store.list_cases().await.unwrap().len(), 1);
}

#[tokio::test]
async fn mail_stored_before_identities_existed_gets_one_and_is_still_recognised() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path());
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    let store = support::open_store(&config).await;
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    pipeline
        .take_in(Some("imap:old@host:993/INBOX:1:1"), COMPLAINT, clock.now())
        .await
        .unwrap();
    // As a row written before migration 0003.
    let db = TestDatabase::for_dir(tmp.path()).connect().await;
    sqlx::query("UPDATE messages SET identity = NULL")
        .execute(&db)
        .await
        .unwrap();
    let fill = |raw: &[u8]| klachtpost::intake::identity::of(raw).sha256;
    assert_eq!(store.fill_identities(fill).await.unwrap(), 1);
    assert_eq!(store.fill_identities(fill).await.unwrap(), 0, "done once");
    let again = pipeline
        .take_in(Some("imap:old/INBOX:1:1"), COMPLAINT, clock.now())
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(store.list_cases().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_mail_whose_bytes_cannot_be_stored_is_still_quarantined_and_intake_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = config(dir);
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    let store = support::open_store(&config).await;
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    let mut mailbox = Mailbox::open(&config).await.unwrap();
    // The database refuses this mail as a message, and refuses its bytes in quarantine too
    // (as a blob over the database's size limit would be refused).
    let database = TestDatabase::for_dir(dir);
    let db = database.connect().await;
    let triggers: &[&'static str] = match database.backend() {
        Backend::Sqlite => &[
            "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.subject = 'Vergiftigd'
             BEGIN SELECT RAISE(ABORT, 'refused as a message'); END",
            "CREATE TRIGGER too_big BEFORE INSERT ON quarantine WHEN length(NEW.raw) > 0
             BEGIN SELECT RAISE(ABORT, 'refused as bytes'); END",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse_message() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN RAISE EXCEPTION 'refused as a message'; END $$",
            "CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW
             WHEN (NEW.subject = 'Vergiftigd') EXECUTE FUNCTION refuse_message()",
            "CREATE FUNCTION refuse_bytes() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN RAISE EXCEPTION 'refused as bytes'; END $$",
            "CREATE TRIGGER too_big BEFORE INSERT ON quarantine FOR EACH ROW
             WHEN (length(NEW.raw) > 0) EXECUTE FUNCTION refuse_bytes()",
        ],
    };
    for trigger in triggers {
        sqlx::query(*trigger).execute(&db).await.unwrap();
    }
    let poison = String::from_utf8(COMPLAINT.to_vec().replace_id())
        .unwrap()
        .replace("Subject: Klacht over de factuur", "Subject: Vergiftigd")
        .into_bytes();
    deliver(dir, "1.poison", &poison);
    deliver(dir, "2.good", COMPLAINT);
    while intake_pass(&mut mailbox, &pipeline).await.unwrap() > 0 {}

    assert_eq!(store.list_cases().await.unwrap().len(), 1, "the good one");
    let items = store.quarantine_items(false).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].size, poison.len() as i64);
    assert!(
        items[0].reason.contains("only in the quarantine folder"),
        "{}",
        items[0].reason
    );
    assert_eq!(
        std::fs::read_dir(dir.join("mailbox/.Quarantine/cur"))
            .unwrap()
            .count(),
        1
    );
    let notices: Vec<(String,)> =
        sqlx::query_as("SELECT recipients FROM outbox WHERE purpose = 'notice'")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(notices, vec![("anna@firma.nl\nbob@firma.nl".to_string(),)]);
}

#[tokio::test]
async fn a_receipt_time_note_is_kept_with_the_mail_and_in_its_case_history() {
    // A server that gives no INTERNALDATE: the receipt time came from the Date header, and
    // the mail's own savepoint records how (on the message and in the case's history).
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path());
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    let store = support::open_store(&config).await;
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    let note = "receipt time: the server gave no INTERNALDATE; the Date header was used";
    let mut tx = store.begin().await.unwrap();
    let handled = pipeline
        .handle_in(
            &mut tx,
            "imap:x/INBOX:1:1",
            COMPLAINT,
            clock.now(),
            Some(note),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let outcome = handled.outcome.unwrap();
    let detail = store
        .case(outcome.case.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    let message = detail
        .messages
        .iter()
        .find(|m| Some(m.id) == outcome.message_row)
        .unwrap();
    assert!(
        message.flags.iter().any(|f| f == note),
        "{:?}",
        message.flags
    );
    assert!(
        detail
            .events
            .iter()
            .any(|e| e.event == "message.receipt_time" && e.detail == note),
        "{:?}",
        detail.events
    );
}
