//! The complaint register: each case command's effect on the store and its one history
//! entry, the hash chain and `audit verify` against tampering with the database's own tool
//! (`sqlite3` or `psql`), the
//! migration of an older register, and retention with a manual clock.

mod support;

use std::path::Path;
use std::process::Command;

use chrono::{Duration, TimeZone, Utc};
use klachtpost::case::{self, Actor, Closing, FormUpdate, Satisfied, Status};
use klachtpost::clock::{Clock, ManualClock};
use klachtpost::config::Config;
use klachtpost::daemon::intake_pass;
use klachtpost::fetch::Mailbox;
use klachtpost::intake::Pipeline;
use klachtpost::outbox;
use klachtpost::send::Sender;
use klachtpost::store::{Store, history};
use support::{TestConfig, TestDatabase};

fn config(dir: &Path) -> Config {
    TestConfig::new(dir)
        .firm(&format!(
            "{FIRM}\npartners = [{{ name = \"Anna Partner\", email = \"anna@example-firm.nl\" }}, {{ name = \"Bob Partner\", email = \"bob@example-firm.nl\" }}]"
        ))
        .templates(&["acknowledgement", "extension"])
        .section("retention", "keep = \"2 years\"\nkeep_unattached = \"90 days\"")
        .build()
}

/// The test firm, without its partners.
const FIRM: &str = r#"name = "Adviesbureau Test"
address = "klachten@example-firm.nl"
staff_domains = ["example-firm.nl"]
operator = "Olga Operator""#;

fn deliver(dir: &Path, name: &str, raw: &[u8]) {
    let md = dir.join("mailbox");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    std::fs::write(md.join("tmp").join(name), raw).unwrap();
    std::fs::rename(md.join("tmp").join(name), md.join("new").join(name)).unwrap();
}

pub const COMPLAINT: &[u8] = b"From: \"Jan de Vries\" <jan@client.example>\r\nTo: klachten@example-firm.nl\r\nSubject: Klacht over de factuur\r\nDate: Thu, 19 Nov 2026 10:15:00 +0100\r\nMessage-ID: <c1@client.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDe factuur klopt niet.\r\n";

struct Setup {
    _tmp: tempfile::TempDir,
    config: Config,
    store: Store,
    clock: ManualClock,
}

async fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path());
    let store = support::open_store(&config).await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    Setup {
        _tmp: tmp,
        config,
        store,
        clock,
    }
}

impl Setup {
    fn dir(&self) -> &Path {
        self._tmp.path()
    }

    /// Take in one mail through intake; returns the case it opened or joined.
    async fn take_in(&self, name: &str, raw: &[u8]) -> Option<String> {
        deliver(self.dir(), name, raw);
        let pipeline = Pipeline::new(&self.config, &self.store, &self.clock).unwrap();
        let mut mailbox = Mailbox::open(&self.config).await.unwrap();
        assert_eq!(intake_pass(&mut mailbox, &pipeline).await.unwrap(), 1);
        let cases = self.store.list_cases().await.unwrap();
        cases.first().map(|c| c.reference.clone())
    }

    async fn history(&self, reference: &str) -> Vec<history::Entry> {
        self.store.case(reference).await.unwrap().unwrap().events
    }
}

fn field<'a>(e: &'a history::Entry, name: &str) -> &'a history::Change {
    e.changes
        .iter()
        .find(|c| c.field == name)
        .unwrap_or_else(|| panic!("no change of {name} in {e:?}"))
}

#[tokio::test]
async fn every_case_command_changes_the_case_and_appends_exactly_one_history_entry() {
    let s = setup().await;
    let r = s.take_in("1.eml", COMPLAINT).await.expect("a case");
    let c = s.store.case(&r).await.unwrap().unwrap().case;
    assert_eq!(c.status, "new");
    let opened = s.history(&r).await;
    assert_eq!(opened[0].event, "case.opened");
    assert_eq!(opened[0].actor, "klachtpost");
    assert_eq!(field(&opened[0], "status").new.as_deref(), Some("new"));

    // The acknowledgement goes out: acknowledged, with when.
    let sender = Sender::from_config(&s.config).unwrap();
    outbox::drain_once(&s.store, &sender, &s.clock, &s.config)
        .await
        .unwrap();
    let c = s.store.case(&r).await.unwrap().unwrap().case;
    assert_eq!(c.status, "acknowledged");
    assert_eq!(c.acknowledged_at.as_deref(), Some("2026-11-19T09:20:00Z"));

    let t = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
    let who = Actor::new("Anna Partner", t);
    let bob = s.config.firm.partners[1].clone();

    // Each command: one entry more, the last one saying who, what and (when given) why.
    let mut n = s.history(&r).await.len();
    macro_rules! step {
        ($cmd:expr, $event:expr) => {{
            let mut tx = s.store.begin().await.unwrap();
            let out = $cmd(&mut tx).await;
            tx.commit().await.unwrap();
            let h = s.history(&r).await;
            assert_eq!(h.len(), n + 1, "one entry for {}", $event);
            n += 1;
            let last = h.last().unwrap().clone();
            assert_eq!(last.event, $event);
            assert_eq!(last.actor, "Anna Partner");
            assert_eq!(last.at, "2026-11-20T10:00:00Z");
            (out, last)
        }};
    }

    let (_, e) = step!(
        |tx| case::assign(tx, &r, &bob, who, Some("Anna is away")),
        "case.assigned"
    );
    assert_eq!(
        field(&e, "partner_email").old.as_deref(),
        Some("anna@example-firm.nl")
    );
    assert_eq!(
        field(&e, "partner_email").new.as_deref(),
        Some("bob@example-firm.nl")
    );
    assert_eq!(e.reason.as_deref(), Some("Anna is away"));

    let (_, e) = step!(
        |tx| case::set_status(tx, &r, Status::Investigating, who, None),
        "case.status"
    );
    assert_eq!(field(&e, "status").old.as_deref(), Some("acknowledged"));
    assert_eq!(field(&e, "status").new.as_deref(), Some("investigating"));

    let form = FormUpdate {
        cause: Some("Verkeerd uurtarief ingevoerd".into()),
        structural: Some(true),
        measure: Some("Tarieven worden dubbel gecontroleerd".into()),
        handling: Some("Factuur gecorrigeerd".into()),
        result: Some("Creditnota verstuurd".into()),
        evaluation: Some("Snel opgelost".into()),
    };
    let (_, e) = step!(|tx| case::record(tx, &r, &form, who), "case.recorded");
    assert_eq!(field(&e, "structural_fault").new.as_deref(), Some("yes"));
    assert_eq!(e.changes.len(), 6);

    let (_, e) = step!(
        |tx| case::note(tx, &r, "Klant gebeld, begrip getoond.", who),
        "case.note"
    );
    assert_eq!(e.detail, "Klant gebeld, begrip getoond.");

    let ext = klachtpost::deadlines::Extension {
        previous: klachtpost::store::parse_ts(&c.resolution_due_at).unwrap(),
        resolution: Utc.with_ymd_and_hms(2027, 1, 29, 16, 0, 0).unwrap(),
        reason: "Wachten op de accountant".into(),
    };
    let (_, e) = step!(
        |tx| case::extend(tx, &r, &ext, "resolution extended to Fri 29 Jan 2027", who),
        "deadline.extended"
    );
    assert_eq!(
        field(&e, "resolution_due_at").new.as_deref(),
        Some("2027-01-29T16:00:00Z")
    );
    let c = s.store.case(&r).await.unwrap().unwrap().case;
    // The stored explanation is kept current: it says how the deadline moved.
    assert!(
        c.deadline_explanation
            .ends_with("resolution extended to Fri 29 Jan 2027"),
        "{}",
        c.deadline_explanation
    );
    assert_eq!(
        c.original_resolution_due_at,
        Some(klachtpost::store::ts(ext.previous))
    );
    assert_eq!(
        c.extension_reason.as_deref(),
        Some("Wachten op de accountant")
    );

    let (_, e) = step!(
        |tx| case::close(tx, &r, Closing::Handled(Satisfied::Yes), who, None),
        "case.closed"
    );
    assert_eq!(field(&e, "status").new.as_deref(), Some("closed"));
    assert_eq!(field(&e, "client_satisfied").new.as_deref(), Some("yes"));
    let c = s.store.case(&r).await.unwrap().unwrap().case;
    assert_eq!(c.closed_at.as_deref(), Some("2026-11-20T10:00:00Z"));
    assert_eq!(c.client_satisfied, Some(true));
    assert_eq!(c.structural_fault, Some(true));

    // A closed case takes no form changes and no second close; nothing is written.
    let mut tx = s.store.begin().await.unwrap();
    let err = case::record(&mut tx, &r, &form, who).await.unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");
    let err = case::close(&mut tx, &r, Closing::NotAComplaint, who, None)
        .await
        .unwrap_err();
    assert!(matches!(err, case::CaseError::Closed(_)), "{err}");
    drop(tx);
    assert_eq!(s.history(&r).await.len(), n);

    let (_, e) = step!(
        |tx| case::reopen(tx, &r, "De klant belde terug", who),
        "case.reopened"
    );
    assert_eq!(field(&e, "status").new.as_deref(), Some("investigating"));
    assert_eq!(field(&e, "closed_at").new, None);

    let (_, e) = step!(
        |tx| case::close(tx, &r, Closing::NotAComplaint, who, None),
        "case.closed"
    );
    assert_eq!(field(&e, "status").new.as_deref(), Some("not_a_complaint"));

    let (_, e) = step!(|tx| case::hold(tx, &r, "Tuchtzaak loopt", who), "case.held");
    assert_eq!(
        field(&e, "hold_reason").new.as_deref(),
        Some("Tuchtzaak loopt")
    );
    let (_, e) = step!(|tx| case::release(tx, &r, who, None), "case.released");
    assert_eq!(field(&e, "hold_reason").new, None);

    // An unknown status is refused by the type, an unknown case by the command.
    assert!("open".parse::<Status>().is_err());
    let mut tx = s.store.begin().await.unwrap();
    assert!(matches!(
        case::note(&mut tx, "KL-1999-0001", "x", who).await,
        Err(case::CaseError::NotFound(_))
    ));
    drop(tx);

    let v = history::verify(s.store.pool()).await.unwrap();
    assert!(v.broken.is_none(), "{v:?}");
    assert!(v.entries as usize >= n);
}

#[tokio::test]
async fn the_phone_number_of_a_verbal_complaint_note_reaches_the_register() {
    let s = setup().await;
    let raw = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail/note-with-address.eml"),
    )
    .unwrap();
    let r = s.take_in("note.eml", &raw).await.expect("a case");
    let c = s.store.case(&r).await.unwrap().unwrap().case;
    assert_eq!(c.channel, "verbal");
    assert_eq!(c.complainant_phone.as_deref(), Some("06-12345678"));
    assert_eq!(c.staff_address.as_deref(), Some("piet@example-firm.nl"));
    let opened = &s.history(&r).await[0];
    assert_eq!(
        field(opened, "complainant_phone").new.as_deref(),
        Some("06-12345678")
    );
}

/// A register with a few entries, closed so the pool lets go of the file.
async fn register_with_history(dir: &Path) -> (Config, String, usize) {
    let config = config(dir);
    let store = support::open_store(&config).await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    deliver(dir, "1.eml", COMPLAINT);
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    let mut mailbox = Mailbox::open(&config).await.unwrap();
    intake_pass(&mut mailbox, &pipeline).await.unwrap();
    let r = store.list_cases().await.unwrap()[0].reference.clone();
    let who = Actor::new("Anna Partner", clock.now());
    for text in ["eerste notitie", "tweede notitie", "derde notitie"] {
        let mut tx = store.begin().await.unwrap();
        case::note(&mut tx, &r, text, who).await.unwrap();
        tx.commit().await.unwrap();
    }
    let n = store.case(&r).await.unwrap().unwrap().events.len();
    store.pool().close().await;
    (config, r, n)
}

async fn verify(config: &Config) -> history::Verification {
    let store = support::open_store(config).await;
    let v = history::verify(store.pool()).await.unwrap();
    store.pool().close().await;
    v
}

#[tokio::test]
async fn audit_verify_names_the_first_entry_changed_deleted_or_inserted_behind_its_back() {
    for (tamper, problem) in [
        (
            "UPDATE case_events SET detail = 'niets aan de hand' WHERE detail = 'tweede notitie'",
            "content",
        ),
        (
            "UPDATE case_events SET actor = 'Mallory' WHERE detail = 'tweede notitie'",
            "fields do not match",
        ),
        (
            "UPDATE case_events SET at = '2026-11-01T00:00:00Z' WHERE detail = 'tweede notitie'",
            "fields do not match",
        ),
        (
            "DELETE FROM case_events WHERE detail = 'tweede notitie'",
            "previous-entry hash",
        ),
        (
            "UPDATE cases SET status = 'closed', client_satisfied = TRUE",
            "status is not what its history last set it to",
        ),
        (
            "UPDATE cases SET partner_email = 'mallory@example-firm.nl'",
            "partner_email is not what its history",
        ),
        (
            "INSERT INTO case_events (id, case_id, at, event, detail) SELECT id + 1000, case_id, at, 'case.note', 'ingevoegd' FROM case_events WHERE detail = 'derde notitie'",
            "no hash",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (config, reference, _) = register_with_history(tmp.path()).await;
        assert!(verify(&config).await.broken.is_none());
        TestDatabase::for_dir(tmp.path()).tool(tamper);
        let v = verify(&config).await;
        let broken = v
            .broken
            .unwrap_or_else(|| panic!("{tamper} went unnoticed"));
        assert!(
            broken.problem.contains(problem),
            "{tamper}: {}",
            broken.problem
        );
        assert_eq!(broken.case.as_deref(), Some(reference.as_str()));
    }
}

#[tokio::test]
async fn the_cli_audit_verify_fails_after_a_change_with_the_sqlite3_tool() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, _, _) = register_with_history(tmp.path()).await;
    // The same register through the binary, with a config file on disk.
    let cfg = tmp.path().join("k.toml");
    std::fs::write(&cfg, config_text(tmp.path())).unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_klachtpost"))
            .args(["audit", "verify", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));
    TestDatabase::for_dir(tmp.path())
        .tool("UPDATE case_events SET detail = 'anders' WHERE detail = 'eerste notitie'");
    let out = run();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("does NOT verify: entry"), "{stdout}");
}

/// The test config as a file (for the binary).
fn config_text(dir: &Path) -> String {
    TestConfig::new(dir)
        .firm(&format!(
            "{FIRM}\npartners = [{{ name = \"Anna Partner\", email = \"anna@example-firm.nl\" }}]"
        ))
        .templates(&["acknowledgement", "extension"])
        .file_text()
}

#[tokio::test]
async fn an_older_register_is_migrated_statuses_mapped_and_its_history_sealed() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("old.db");
    // The register as 0001 and 0002 left it, with cases in the old statuses.
    let old = tmp.path().join("old-migrations");
    std::fs::create_dir_all(&old).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for f in ["0001_initial.sql", "0002_deadlines_met.sql"] {
        std::fs::copy(root.join(f), old.join(f)).unwrap();
    }
    let url = format!("sqlite://{}?mode=rwc", db.display());
    {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let insert = |id: i64, status: &str, response_met: &str| {
        format!(
            "INSERT INTO cases (id, reference, status, channel, complainant_source, subject, received_at, opened_at, partner_name, partner_email, ack_due_at, response_due_at, resolution_due_at, deadline_explanation, flags, response_met_at, closed_at)
             VALUES ({id}, 'KL-2026-000{id}', '{status}', 'email', 'from', 's', '2026-01-0{id}T10:00:00Z', '2026-01-0{id}T10:00:00Z', 'A', 'a@x.nl', 't', 't', 't', 'e', '', {response_met}, {closed});
             INSERT INTO case_events (case_id, at, event, detail) VALUES ({id}, '2026-01-0{id}T10:00:00Z', 'case.opened', 'opened');",
            closed = if status == "closed" { "'2026-02-01T10:00:00Z'" } else { "NULL" }
        )
    };
    // An SQLite register by nature, whatever database this pass runs on.
    let sqlite3 = TestDatabase::Sqlite { file: db.clone() };
    sqlite3.tool(&insert(1, "open", "NULL"));
    sqlite3.tool(&insert(2, "open", "'2026-01-05T10:00:00Z'"));
    sqlite3.tool(&insert(3, "closed", "NULL"));

    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let statuses: Vec<(String, String)> = store
        .list_cases()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.reference, c.status))
        .collect();
    assert!(statuses.contains(&("KL-2026-0001".into(), "new".into())));
    assert!(statuses.contains(&("KL-2026-0002".into(), "responded".into())));
    assert!(statuses.contains(&("KL-2026-0003".into(), "closed".into())));
    // The old entries were sealed into the chain at open; new ones follow on.
    let mut tx = store.begin().await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    case::note(
        &mut tx,
        "KL-2026-0001",
        "na de migratie",
        Actor::new("x", at),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let v = history::verify(store.pool()).await.unwrap();
    assert!(v.broken.is_none(), "{v:?}");
    assert_eq!(v.entries, 4);
    // A row added later without a hash is not sealed as "legacy".
    store.pool().close().await;
    sqlite3.tool(
        "INSERT INTO case_events (case_id, at, event, detail) VALUES (1, 't', 'case.note', 'later')",
    );
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let v = history::verify(store.pool()).await.unwrap();
    assert!(v.broken.unwrap().problem.contains("no hash"));
}

#[tokio::test]
async fn retention_purges_at_two_years_keeps_held_cases_and_leaves_a_verifiable_tombstone() {
    let s = setup().await;
    let r1 = s.take_in("1.eml", COMPLAINT).await.unwrap();
    let second = String::from_utf8_lossy(COMPLAINT)
        .replace("c1@client.example", "c2@client.example")
        .replace("jan@client.example", "piet@client.example")
        .replace("De factuur klopt niet.", "Mijn rekening is te hoog.");
    let r2 = s.take_in("2.eml", second.as_bytes()).await.unwrap();
    assert_ne!(r1, r2);
    // An out-of-office reply: mail that never opens a case.
    let ooo = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail/out-of-office.eml"),
    )
    .unwrap();
    s.take_in("3.eml", &ooo).await;
    // A quarantined mail: its copy in the Maildir++ quarantine folder, its bytes in the
    // row, a notice to the partners (mail without a case).
    let odd = String::from_utf8_lossy(COMPLAINT).replace("c1@client.example", "q1@client.example");
    std::fs::write(
        s.dir().join("mailbox/.Quarantine/cur/q1:2,"),
        odd.as_bytes(),
    )
    .unwrap();
    let pipeline = Pipeline::new(&s.config, &s.store, &s.clock).unwrap();
    let q = pipeline
        .quarantine(
            Some("maildir:q1"),
            odd.as_bytes(),
            s.clock.now(),
            "cannot parse",
        )
        .await
        .unwrap();
    let sender = Sender::from_config(&s.config).unwrap();
    outbox::drain_once(&s.store, &sender, &s.clock, &s.config)
        .await
        .unwrap();
    let files = |sub: &str| std::fs::read_dir(s.dir().join(sub)).unwrap().count();
    assert_eq!(files("mailbox/cur"), 3);
    assert_eq!(files("mailbox/.Quarantine/cur"), 1);
    assert_eq!(
        files("outbox"),
        5,
        "two acknowledgements, the quarantine notice and the partners' two new-complaint notices"
    );

    let closed_at = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
    let who = Actor::new("Anna Partner", closed_at);
    let mut tx = s.store.begin().await.unwrap();
    let form = FormUpdate {
        cause: Some("Jan zijn factuur was fout".into()),
        structural: Some(true),
        measure: Some("Tarieven dubbel controleren".into()),
        ..Default::default()
    };
    case::record(&mut tx, &r1, &form, who).await.unwrap();
    case::close(&mut tx, &r1, Closing::Handled(Satisfied::No), who, None)
        .await
        .unwrap();
    case::close(&mut tx, &r2, Closing::Handled(Satisfied::Yes), who, None)
        .await
        .unwrap();
    case::hold(&mut tx, &r2, "Claim aangekondigd", who)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let received_before = s.store.case(&r1).await.unwrap().unwrap().case.received_at;
    // Two years minus a day: everything kept.
    let two_years = closed_at
        .checked_add_months(chrono::Months::new(24))
        .unwrap();
    let day_before = two_years - Duration::days(1);
    let report = klachtpost::retention::purge(&s.store, &s.config, day_before, "klachtpost", false)
        .await
        .unwrap();
    assert!(
        report.cases.is_empty() && report.held.is_empty(),
        "{report:?}"
    );
    // Past keep_unattached: the quarantined mail's bytes and copy are gone, its record
    // stays; the notice about it and the out-of-office reply are gone with their copies.
    assert_eq!(report.quarantine_items, 1);
    assert_eq!(report.quarantine_copies, 1);
    assert_eq!(report.unattached_messages, 2, "{report:?}");
    assert_eq!(files("mailbox/.Quarantine/cur"), 0);
    assert_eq!(files("mailbox/cur"), 2);
    assert_eq!(
        files("outbox"),
        4,
        "the quarantine notice's file went with it; the cases' mail stays"
    );
    let (item, raw) = s.store.quarantine_item(q).await.unwrap().unwrap();
    assert!(raw.is_empty() && item.purged);
    assert_eq!(item.message_id, None);
    assert_eq!(item.source_key, None);
    assert_eq!(item.status, "quarantined");
    assert_eq!(item.reason, "cannot parse");
    assert!(s.store.quarantine_items(false).await.unwrap().is_empty());
    assert_eq!(s.store.quarantine_items(true).await.unwrap().len(), 1);
    assert!(matches!(
        pipeline.retry(q).await.unwrap(),
        klachtpost::intake::Retried::Purged { .. }
    ));
    assert!(
        !s.store
            .case(&r1)
            .await
            .unwrap()
            .unwrap()
            .messages
            .is_empty()
    );

    // A dry run two years and a day later says what would go and changes nothing.
    let day_after = two_years + Duration::days(1);
    let dry = klachtpost::retention::purge(&s.store, &s.config, day_after, "klachtpost", true)
        .await
        .unwrap();
    assert_eq!(dry.cases, vec![r1.clone()]);
    assert!(
        !s.store
            .case(&r1)
            .await
            .unwrap()
            .unwrap()
            .messages
            .is_empty()
    );

    let report = klachtpost::retention::daily_job(&s.store, &s.config, day_after)
        .await
        .unwrap();
    assert_eq!(report, day_after + Duration::days(1), "next run tomorrow");
    // Run again the same day: not due, nothing happens.
    klachtpost::retention::daily_job(&s.store, &s.config, day_after + Duration::hours(1))
        .await
        .unwrap();

    // The copies outside the database went too: the Maildir copy of the complaint and of
    // the out-of-office reply, and the acknowledgement in the file outbox; the held case's
    // copies stay.
    assert_eq!(files("mailbox/cur"), 1);
    assert_eq!(
        files("outbox"),
        2,
        "the held case's acknowledgement and notice"
    );
    let d = s.store.case(&r1).await.unwrap().unwrap();
    let c = &d.case;
    assert!(c.purged_at.is_some());
    assert!(d.messages.is_empty(), "mails gone");
    assert_eq!(c.complainant_address, None);
    assert_eq!(c.complainant_name, None);
    assert_eq!(c.subject, "");
    assert_eq!(c.cause, None, "free text may name people");
    // The tombstone keeps the improvement record.
    assert_eq!(c.structural_fault, Some(true));
    assert_eq!(
        c.improvement_measure.as_deref(),
        Some("Tarieven dubbel controleren")
    );
    assert_eq!(c.client_satisfied, Some(false));
    assert_eq!(c.received_at, received_before);
    assert!(c.closed_at.is_some());
    for e in &d.events[..d.events.len() - 1] {
        assert!(e.content_purged && e.changes.is_empty() && e.detail.is_empty());
    }
    assert_eq!(d.events.last().unwrap().event, "case.purged");

    // The held case is kept whole.
    let held = s.store.case(&r2).await.unwrap().unwrap();
    assert!(held.case.purged_at.is_none());
    assert_eq!(
        held.case.complainant_address.as_deref(),
        Some("piet@client.example")
    );
    assert!(!held.messages.is_empty());

    // The purged mails' raw rows went with them (message_raw, 0012): every raw row left
    // belongs to a message left, and every message left has its raw.
    s.store.pool().close().await;
    let db = TestDatabase::for_dir(s.dir());
    assert_eq!(
        db.tool(
            "SELECT (SELECT COUNT(*) FROM message_raw) || ' ' || (SELECT COUNT(*) FROM messages) || ' ' ||
                    (SELECT COUNT(*) FROM message_raw r JOIN messages m ON m.id = r.message_id)"
        ),
        {
            let n = db.tool("SELECT COUNT(*) FROM messages");
            assert_ne!(n, "0", "the held case's mail stays");
            format!("{n} {n} {n}")
        }
    );
    // Nothing of the purged complainant is left anywhere in the database.
    let contents = db.contents();
    for needle in [
        "jan@client.example",
        "Jan zijn factuur",
        "De factuur klopt niet",
    ] {
        for (name, b) in &contents {
            assert!(
                !b.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle:?} still in the {name} file"
            );
        }
    }
    let store = support::open_store(&s.config).await;
    let v = history::verify(store.pool()).await.unwrap();
    assert!(v.broken.is_none(), "{v:?}");
    // Unattached mail is gone after 90 days (the out-of-office reply).
    assert_eq!(
        klachtpost::retention::purge(&store, &s.config, day_after, "x", true)
            .await
            .unwrap()
            .unattached_messages,
        0
    );
}

#[tokio::test]
async fn the_database_file_and_raw_mail_folders_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", tmp.path().join("new/folder/k.db").display());
    let store = Store::open(&url).await.unwrap();
    drop(store);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&tmp.path().join("new/folder/k.db")), 0o600);
    assert_eq!(mode(&tmp.path().join("new/folder")), 0o700);
    assert_eq!(mode(&tmp.path().join("new")), 0o700);

    // The Maildir folders and the file outbox klachtpost creates, and its files.
    let s = setup().await;
    Mailbox::open(&s.config).await.unwrap();
    for sub in ["", "/new", "/cur", "/tmp"] {
        assert_eq!(mode(&s.dir().join(format!("mailbox{sub}"))), 0o700, "{sub}");
    }
    s.take_in("1.eml", COMPLAINT).await;
    let sender = Sender::from_config(&s.config).unwrap();
    outbox::drain_once(&s.store, &sender, &s.clock, &s.config)
        .await
        .unwrap();
    assert_eq!(mode(&s.dir().join("outbox")), 0o700);
    for f in std::fs::read_dir(s.dir().join("outbox")).unwrap() {
        assert_eq!(mode(&f.unwrap().path()), 0o600);
    }
    if let TestDatabase::Sqlite { file } = TestDatabase::for_dir(s.dir()) {
        assert_eq!(mode(&file), 0o600);
    }
}
