//! The partners' side end to end, through the real intake, the scheduler step and the file
//! outbox, with a manual clock over simulated weeks: notices and reminders on the right
//! working days at the right time and nothing on weekends or holidays, each exactly once
//! across restarts, escalation, the acknowledgement watchdog, reply commands (from a
//! partner: carried out and confirmed; from anyone else: refused), assignment rules, and
//! the digest against a golden file (`KLACHTPOST_BLESS=1` rewrites it).

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Europe::Amsterdam;
use klachtpost::calendar::local_to_utc;
use klachtpost::clock::{Clock, ManualClock};
use klachtpost::config::Config;
use klachtpost::intake::Pipeline;
use klachtpost::outbox;
use klachtpost::partners::scheduler;
use klachtpost::send::Sender;
use klachtpost::store::Store;
use sqlx::Row;
use support::{FIRM_TWO_PARTNERS, TestConfig, TestDatabase};

fn config(dir: &Path, extra: &str) -> Config {
    test_config(dir, extra).build()
}

/// The same config as a file, for the binary.
fn config_text(dir: &Path, extra: &str) -> String {
    test_config(dir, extra).file_text()
}

fn test_config(dir: &Path, extra: &str) -> TestConfig {
    TestConfig::new(dir)
        .firm(&format!("{FIRM_TWO_PARTNERS}\n{extra}"))
        .templates(&["acknowledgement"])
        .section(
            "deadlines",
            "response = \"4 working days\"\nresolution = \"8 working days\"",
        )
}

/// A local Amsterdam time.
fn local(s: &str) -> DateTime<Utc> {
    local_to_utc(
        Amsterdam,
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap(),
    )
}

fn show(t: DateTime<Utc>) -> String {
    t.with_timezone(&Amsterdam)
        .format("%a %Y-%m-%d %H:%M")
        .to_string()
}

fn complaint(id: &str, from: &str, subject: &str, text: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: klachten@firma.nl\r\nSubject: {subject}\r\nDate: Fri, 26 Mar 2027 15:00:00 +0100\r\nMessage-ID: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    )
    .into_bytes()
}

/// A reply to one of our mails, with `body` on top.
fn reply(from: &str, to_id: &str, subject: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: klachten@firma.nl\r\nSubject: Re: {subject}\r\nMessage-ID: <{id}>\r\nIn-Reply-To: <{to_id}>\r\nReferences: <{to_id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\r\nOp vrijdag schreef klachtpost:\r\n> #close satisfied\r\n> oude tekst\r\n"
    )
    .into_bytes()
}

/// One sent row of the outbox.
#[derive(Debug, Clone)]
struct Sent {
    purpose: String,
    to: String,
    at: DateTime<Utc>,
    subject: String,
    text: String,
    message_id: String,
}

async fn sent(world: &World) -> Vec<Sent> {
    let database = TestDatabase::for_dir(world._tmp.path());
    // Times as text the same way on both (RFC 3339, UTC).
    let query = database.pick(
        "SELECT o.purpose, o.recipients, o.sent_at, m.subject, m.text, m.message_id
         FROM outbox o JOIN messages m ON m.id = o.message_id WHERE o.status = 'sent' ORDER BY o.id",
        "SELECT o.purpose, o.recipients,
                to_char(o.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                m.subject, m.text, m.message_id
         FROM outbox o JOIN messages m ON m.id = o.message_id WHERE o.status = 'sent' ORDER BY o.id",
    );
    sqlx::query(query)
        .fetch_all(&database.connect().await)
        .await
        .unwrap()
        .iter()
        .map(|r| Sent {
            purpose: r.get(0),
            to: r.get(1),
            at: klachtpost::store::parse_ts(&r.get::<String, _>(2)).unwrap(),
            subject: r.get(3),
            text: r.get(4),
            message_id: r.get(5),
        })
        .collect()
}

struct World {
    _tmp: tempfile::TempDir,
    config: Config,
    store: Store,
    clock: ManualClock,
    sender: Sender,
}

impl World {
    async fn new(start: &str, extra: &str) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path(), extra);
        let store = support::open_store(&config).await;
        let sender = Sender::from_config(&config).unwrap();
        World {
            _tmp: tmp,
            config,
            store,
            clock: ManualClock::new(local(start)),
            sender,
        }
    }

    async fn take_in(&self, key: &str, raw: &[u8]) -> klachtpost::intake::Outcome {
        let pipeline = Pipeline::new(&self.config, &self.store, &self.clock).unwrap();
        pipeline
            .take_in(Some(key), raw, self.clock.now())
            .await
            .unwrap()
    }

    /// The daemon's work at this moment: the partners' step, then the outbox.
    async fn work(&self) -> scheduler::Report {
        let r = scheduler::step(&self.store, &self.config, &self.clock)
            .await
            .unwrap();
        outbox::drain_once(&self.store, &self.sender, &self.clock, &self.config)
            .await
            .unwrap();
        r
    }

    /// A restart: a fresh store handle (as a new process would open) steps again at the
    /// same moment; nothing may be queued twice.
    async fn restart_and_step(&self) -> scheduler::Report {
        let again = support::open_store(&self.config).await;
        scheduler::step(&again, &self.config, &self.clock)
            .await
            .unwrap()
    }

    async fn status(&self, reference: &str) -> String {
        self.store
            .case(reference)
            .await
            .unwrap()
            .unwrap()
            .case
            .status
    }
}

#[tokio::test]
async fn a_friday_afternoon_complaint_before_easter_is_reminded_on_working_days_once() {
    // Friday 26 March 2027, 15:00; Easter Monday is 29 March. Deadlines (test config):
    // acknowledge Tue 30 Mar 17:00, response 4 working days → Fri 2 Apr, resolution 8
    // working days → Thu 8 Apr. The digest is on Mondays at 08:00 (Easter Monday: moved to
    // Tuesday).
    let w = World::new("2027-03-26 15:00", "").await;
    let o = w
        .take_in(
            "maildir:c1",
            &complaint(
                "c1@client.example",
                "Jan de Vries <jan@client.example>",
                "Klacht over het advies",
                "Het advies kwam te laat en klopte niet.",
            ),
        )
        .await;
    let reference = o.case.unwrap();
    assert_eq!(reference, "KL-2027-0001");

    // Every 15 minutes for two weeks, the daemon's work; after anything was queued, a
    // restart at the same moment must queue nothing more.
    let end = local("2027-04-08 12:00");
    let mut closed = false;
    let mut restarts = 0;
    while w.clock.now() < end {
        // Wednesday 7 April 10:00: Anna closes the case by answering the day's reminder.
        if !closed && w.clock.now() >= local("2027-04-07 10:00") {
            let reminder = sent(&w)
                .await
                .into_iter()
                .rfind(|s| s.purpose == "reminder" && s.to == "anna@firma.nl")
                .unwrap();
            w.take_in(
                "maildir:close",
                &reply(
                    "Anna Partner <anna@firma.nl>",
                    &reminder.message_id,
                    &reminder.subject,
                    "close-1@firma.nl",
                    "#sluiten KL-2027-0001 tevreden",
                ),
            )
            .await;
            closed = true;
            assert_eq!(w.status(&reference).await, "closed");
        }
        let report = w.work().await;
        if report != scheduler::Report::default() {
            let again = w.restart_and_step().await;
            assert_eq!(
                again,
                scheduler::Report::default(),
                "a restart at {} queued again",
                show(w.clock.now())
            );
            restarts += 1;
        }
        w.clock.advance(Duration::minutes(15));
    }

    // Each day's reminders and the digest queue something: each was followed by a restart.
    assert!(restarts >= 8, "only {restarts} restarts after queued work");
    let all = sent(&w).await;
    let to_partners: Vec<(String, String, String)> = all
        .iter()
        .filter(|s| s.to.ends_with("@firma.nl"))
        .map(|s| (show(s.at), s.purpose.clone(), s.to.clone()))
        .collect();
    let expected: Vec<(&str, &str, &str)> = vec![
        ("Fri 2027-03-26 15:00", "new_complaint", "anna@firma.nl"),
        ("Tue 2027-03-30 08:00", "digest", "anna@firma.nl"),
        ("Tue 2027-03-30 08:00", "digest", "bob@firma.nl"),
        ("Tue 2027-03-30 08:30", "reminder", "anna@firma.nl"), // response in 3
        ("Thu 2027-04-01 08:30", "reminder", "anna@firma.nl"), // response in 1
        ("Fri 2027-04-02 08:30", "reminder", "anna@firma.nl"), // response today
        ("Mon 2027-04-05 08:00", "digest", "anna@firma.nl"),
        ("Mon 2027-04-05 08:00", "digest", "bob@firma.nl"),
        ("Mon 2027-04-05 08:30", "reminder", "anna@firma.nl"), // 1 late + resolution in 3
        ("Tue 2027-04-06 08:30", "reminder", "anna@firma.nl"), // 2 late + escalation
        ("Tue 2027-04-06 08:30", "reminder", "bob@firma.nl"),  // escalation
        ("Wed 2027-04-07 08:30", "reminder", "anna@firma.nl"), // 3 late + resolution in 1
        ("Wed 2027-04-07 10:00", "command_reply", "anna@firma.nl"),
        // Thursday 8 April: the case is closed, nothing more.
    ];
    let expected: Vec<(String, String, String)> = expected
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(to_partners, expected);

    // Gathered: Monday's mail holds both deadlines, Tuesday's the escalation too.
    let monday = all
        .iter()
        .find(|s| s.purpose == "reminder" && show(s.at).starts_with("Mon 2027-04-05"))
        .unwrap();
    assert!(monday.text.contains("1 werkdag te laat"), "{}", monday.text);
    assert!(monday.text.contains("over 3 werkdagen"), "{}", monday.text);
    let bob = all
        .iter()
        .find(|s| s.purpose == "reminder" && s.to == "bob@firma.nl")
        .unwrap();
    assert!(bob.text.contains("ESCALATIE"), "{}", bob.text);
    assert!(bob.text.contains("KL-2027-0001 (partner Anna Partner)"));
    let wednesday = all
        .iter()
        .rfind(|s| s.purpose == "reminder" && s.to == "anna@firma.nl")
        .unwrap();
    assert!(!wednesday.text.contains("ESCALATIE"), "escalated once");

    // The new-complaint notice says what a partner needs.
    let notice = &all.iter().find(|s| s.purpose == "new_complaint").unwrap();
    assert_eq!(
        notice.subject,
        "[KL-2027-0001] Nieuwe klacht: Klacht over het advies"
    );
    for needle in [
        "Jan de Vries <jan@client.example>",
        "e-mail aan de klachtenmailbox",
        "vrijdag 26 maart 2027 om 15:00",
        "ontvangst bevestigen uiterlijk dinsdag 30 maart 2027 om 17:00",
        "uitkomst uiterlijk vrijdag 2 april 2027 om 17:00",
        "afgehandeld uiterlijk donderdag 8 april 2027 om 17:00",
        "Het advies kwam te laat",
        "#sluiten tevreden",
    ] {
        assert!(
            notice.text.contains(needle),
            "{needle:?} in {}",
            notice.text
        );
    }
    // The acknowledgement went to the client once; no partner mail ever did.
    let to_client: Vec<_> = all
        .iter()
        .filter(|s| s.to == "jan@client.example")
        .collect();
    assert_eq!(to_client.len(), 1);
    assert_eq!(to_client[0].purpose, "acknowledgement");
    // The real outbox wrote one file per sent row.
    let outbox_dir = match &w.config.outgoing.transport {
        klachtpost::config::Transport::File { dir } => dir.clone(),
        _ => unreachable!(),
    };
    assert_eq!(std::fs::read_dir(outbox_dir).unwrap().count(), all.len());
}

#[tokio::test]
async fn acknowledgement_watchdog_warns_before_the_deadline_and_for_a_client_without_address() {
    let w = World::new("2027-03-26 15:00", "").await;
    let raw = complaint(
        "c2@client.example",
        "Jan de Vries <jan@client.example>",
        "Klacht",
        "Tekst.",
    );
    let reference = w.take_in("k1", &raw).await.case.unwrap();
    // The outgoing server is unreachable: nothing is delivered (the outbox is never
    // drained), so the acknowledgement is not accepted. Before the margin: no warning.
    let mut warned_at = None;
    while w.clock.now() < local("2027-03-31 12:00") {
        let r = scheduler::step(&w.store, &w.config, &w.clock)
            .await
            .unwrap();
        if r.ack_warnings > 0 {
            assert!(warned_at.is_none(), "warned twice");
            warned_at = Some(w.clock.now());
        }
        w.clock.advance(Duration::minutes(5));
    }
    // Acknowledge by Tue 30 March 17:00; the margin is 2 working hours: 15:00.
    assert_eq!(warned_at.map(show).as_deref(), Some("Tue 2027-03-30 15:00"));
    let detail = w.store.case(&reference).await.unwrap().unwrap();
    let warning = detail
        .messages
        .iter()
        .find(|m| m.kind == "ack_warning")
        .expect("the warning is on the case");
    assert!(
        warning
            .text
            .contains(&format!("Bevestig de ontvangst van klacht {reference} per telefoon of brief vóór dinsdag 30 maart 2027 om 17:00")),
        "{}",
        warning.text
    );
    assert!(
        warning
            .text
            .contains("nog niet door de mailserver aangenomen")
    );
    assert!(
        detail
            .events
            .iter()
            .any(|e| e.event == "partners.ack_warning")
    );

    // A verbal complaint noted without an address: no acknowledgement can go out, the
    // partner is asked at once (in working hours).
    let w = World::new("2027-03-31 10:00", "").await;
    let note = b"From: Piet Medewerker <piet@firma.nl>\r\nTo: klachten@firma.nl\r\nSubject: Klacht na gesprek\r\nMessage-ID: <note-1@firma.nl>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nKlant: Mevrouw Smit\r\nTelefoon: 020-1234567\r\nKanaal: gesprek\r\n\r\nMevrouw Smit klaagde over de wachttijd.\r\n";
    let o = w.take_in("k2", note).await;
    assert!(!o.ack_queued);
    let r = w.work().await;
    assert_eq!(r.ack_warnings, 1);
    let warning = sent(&w)
        .await
        .into_iter()
        .find(|s| s.purpose == "ack_warning")
        .unwrap();
    assert_eq!(warning.at, local("2027-03-31 10:00"));
    assert!(
        warning.text.contains("geen bruikbaar e-mailadres"),
        "{}",
        warning.text
    );
    assert!(warning.text.contains("020-1234567"));
    assert_eq!(w.restart_and_step().await, scheduler::Report::default());

    // The partner phones and records it; the register says it was in time.
    let reference = o.case.unwrap();
    let dir = w._tmp.path();
    let file = dir.join("klachtpost.toml");
    std::fs::write(&file, config_text(dir, "")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_klachtpost"))
        .arg("--config")
        .arg(&file)
        .args([
            "cases",
            "record",
            &reference,
            "--acknowledged-by",
            "phone",
            "--by",
            "anna@firma.nl",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let detail = w.store.case(&reference).await.unwrap().unwrap();
    assert_eq!(detail.case.status, "acknowledged");
    assert!(detail.case.acknowledged_at.is_some());
    let recorded = detail
        .events
        .iter()
        .find(|e| e.event == "acknowledgement.recorded")
        .expect("recorded in the history");
    assert_eq!(recorded.detail, "acknowledged by phone, in time");
}

#[tokio::test]
async fn a_partners_reply_commands_take_effect_and_a_non_partner_is_refused() {
    let w = World::new("2027-03-31 10:00", "").await;
    let reference = w
        .take_in(
            "k1",
            &complaint(
                "c3@client.example",
                "Jan de Vries <jan@client.example>",
                "Klacht",
                "Tekst.",
            ),
        )
        .await
        .case
        .unwrap();
    w.work().await;
    let notice = sent(&w)
        .await
        .into_iter()
        .find(|s| s.purpose == "new_complaint")
        .unwrap();
    assert_eq!(notice.to, "anna@firma.nl");

    // A staff member who is not a partner: refused, nothing changes.
    w.clock.advance(Duration::minutes(5));
    w.take_in(
        "k2",
        &reply(
            "Piet Medewerker <piet@firma.nl>",
            &notice.message_id,
            &notice.subject,
            "r1@firma.nl",
            "#close satisfied",
        ),
    )
    .await;
    w.work().await;
    assert_eq!(w.status(&reference).await, "acknowledged");
    let refusal = sent(&w).await.into_iter().last().unwrap();
    assert_eq!(refusal.to, "piet@firma.nl");
    assert!(refusal.text.contains("Alleen partners"), "{}", refusal.text);

    // The partner: commands carried out, one not understood, confirmed.
    w.clock.advance(Duration::minutes(5));
    w.take_in(
        "k3",
        &reply(
            "Anna Partner <anna@firma.nl>",
            &notice.message_id,
            &notice.subject,
            "r2@firma.nl",
            "#status onderzoek\r\n#notitie Klant gebeld, belt terug\r\n#vastleggen oorzaak Planning te krap\r\n#structureel ja\r\n#verlengen 2027-04-23 wacht op stukken\r\n#sluit tevreden\r\n\r\nGroet, Anna",
        ),
    )
    .await;
    w.work().await;
    let detail = w.store.case(&reference).await.unwrap().unwrap();
    assert_eq!(detail.case.status, "investigating");
    assert_eq!(detail.case.resolution_due_at, "2027-04-23T15:00:00Z");
    assert_eq!(
        detail.case.response_met_at, None,
        "a reply to klachtpost is no response"
    );
    let note_events: Vec<_> = detail.events.iter().map(|e| e.event.as_str()).collect();
    for e in [
        "case.status",
        "case.note",
        "case.recorded",
        "deadline.extended",
        "partners.reply",
    ] {
        assert!(note_events.contains(&e), "{e} in {note_events:?}");
    }
    // The replies are kept as internal notes, not correspondence.
    assert_eq!(
        detail
            .messages
            .iter()
            .filter(|m| m.kind == "internal_note")
            .count(),
        2
    );
    // … and filed on their case: `mail list --unfiled` (and the digest) do not list them.
    let unfiled = w.store.unfiled(None).await.unwrap();
    assert!(
        unfiled.iter().all(|m| m.kind != "internal_note"),
        "{unfiled:?}"
    );
    let confirmation = sent(&w)
        .await
        .into_iter()
        .rfind(|s| s.purpose == "command_reply")
        .unwrap();
    assert_eq!(confirmation.to, "anna@firma.nl");
    assert!(
        confirmation.text.contains("status now investigating"),
        "{}",
        confirmation.text
    );
    assert!(confirmation.text.contains("Niet begrepen"));
    assert!(
        confirmation
            .text
            .contains("#sluit tevreden: #sluit is not a command")
    );
    // The complainant got the acknowledgement and the extension, nothing of the replies.
    let to_client: Vec<String> = sent(&w)
        .await
        .into_iter()
        .filter(|s| s.to == "jan@client.example")
        .map(|s| s.purpose)
        .collect();
    assert_eq!(to_client, vec!["acknowledgement", "extension"]);

    // Anna answers the confirmation: closing works from there too.
    w.clock.advance(Duration::minutes(5));
    w.take_in(
        "k4",
        &reply(
            "Anna Partner <anna@firma.nl>",
            &confirmation.message_id,
            &confirmation.subject,
            "r3@firma.nl",
            "#close unsatisfied",
        ),
    )
    .await;
    assert_eq!(w.status(&reference).await, "closed");
}

#[tokio::test]
async fn assignment_rules_and_never_their_own_complaint() {
    let extra = r#"assignment = "round_robin"
[[assignment]]
partner = "Bob Partner"
words = ["factuur"]
[[assignment]]
partner = "anna@firma.nl"
domains = ["bigclient.example"]"#;
    let w = World::new("2027-03-31 10:00", extra).await;
    let partner = |o: klachtpost::intake::Outcome| {
        let w = &w;
        async move {
            w.store
                .case(&o.case.unwrap())
                .await
                .unwrap()
                .unwrap()
                .case
                .partner_email
        }
    };
    let o = w
        .take_in(
            "a",
            &complaint("a@x", "X <x@bigclient.example>", "Planning", "Te laat."),
        )
        .await;
    assert_eq!(partner(o).await, "anna@firma.nl");
    let o = w
        .take_in(
            "b",
            &complaint("b@x", "Y <y@bigclient.example>", "De factuur", "Te hoog."),
        )
        .await;
    assert_eq!(
        partner(o).await,
        "bob@firma.nl",
        "the first matching rule wins"
    );
    // Bob is named in a complaint about an invoice: Bob's rule is passed over.
    let o = w
        .take_in(
            "c",
            &complaint(
                "c@x",
                "Z <z@elsewhere.example>",
                "Factuur",
                "Bob Partner heeft mijn factuur verkeerd opgesteld.",
            ),
        )
        .await;
    let reference = o.case.clone().unwrap();
    assert_eq!(partner(o).await, "anna@firma.nl");
    let detail = w.store.case(&reference).await.unwrap().unwrap();
    let opened = detail
        .events
        .iter()
        .find(|e| e.event == "case.opened")
        .unwrap();
    assert!(
        opened
            .detail
            .contains("Bob Partner (rule 1) is named in the complaint and is not assigned it"),
        "{}",
        opened.detail
    );
    // Anna's notice says the same in the firm's language (Dutch); the history stays English.
    w.work().await;
    let notice = sent(&w)
        .await
        .into_iter()
        .rfind(|s| s.purpose == "new_complaint" && s.to == "anna@firma.nl")
        .unwrap();
    assert!(
        notice.text.contains(
            "Toegewezen: op volgorde (round robin); Bob Partner (regel 1) wordt in de klacht \
             genoemd en krijgt de zaak daarom niet."
        ),
        "{}",
        notice.text
    );
    // No rule: round robin after the last assigned (Anna) → Bob, then Anna.
    let o = w
        .take_in(
            "d",
            &complaint("d@x", "Q <q@other.example>", "Iets", "Anders."),
        )
        .await;
    assert_eq!(partner(o).await, "bob@firma.nl");
    let o = w
        .take_in(
            "e",
            &complaint("e@x", "R <r@other.example>", "Iets", "Anders."),
        )
        .await;
    assert_eq!(partner(o).await, "anna@firma.nl");
}

#[tokio::test]
async fn the_digest_lists_open_and_closed_cases_and_problems_as_in_the_golden_file() {
    let w = World::new("2027-03-22 10:00", "").await;
    let c1 = w
        .take_in(
            "a",
            &complaint(
                "a@x",
                "Jan de Vries <jan@client.example>",
                "Advies",
                "Te laat.",
            ),
        )
        .await
        .case
        .unwrap();
    w.work().await;
    w.clock.set(local("2027-03-24 11:00"));
    let c2 = w
        .take_in(
            "b",
            &complaint(
                "b@x",
                "Marieke <marieke@client.example>",
                "Factuur",
                "Te hoog.",
            ),
        )
        .await
        .case
        .unwrap();
    w.work().await;
    // Case 2 is settled by Bob (its partner) by reply.
    let notice = sent(&w)
        .await
        .into_iter()
        .rfind(|s| s.purpose == "new_complaint")
        .unwrap();
    w.clock.set(local("2027-03-25 09:00"));
    w.take_in(
        "c",
        &reply(
            "Bob Partner <bob@firma.nl>",
            &notice.message_id,
            &notice.subject,
            "r@firma.nl",
            "#record measure Facturen worden dubbel gecontroleerd\n#structural yes\n#close satisfied",
        ),
    )
    .await;
    assert_eq!(w.status(&c2).await, "closed");
    assert_eq!(w.status(&c1).await, "acknowledged");
    // A staff note without an address: no acknowledgement possible.
    w.take_in(
        "d",
        b"From: Piet <piet@firma.nl>\r\nTo: klachten@firma.nl\r\nSubject: Klacht na gesprek\r\nMessage-ID: <n@firma.nl>\r\n\r\nKlant: Mevrouw Smit\r\nTelefoon: 020-1234567\r\n\r\nOver de wachttijd.\r\n",
    )
    .await;
    w.work().await;
    // Intake problems: an auto-reply (opens no case), a mail in quarantine, and the
    // mailbox down since Friday afternoon.
    w.clock.set(local("2027-03-26 14:00"));
    w.take_in(
        "e",
        b"From: Kees <kees@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Automatisch antwoord: Uw bericht\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <auto@client.example>\r\n\r\nIk ben afwezig tot maandag.\r\n",
    )
    .await;
    let pipeline = Pipeline::new(&w.config, &w.store, &w.clock).unwrap();
    pipeline
        .quarantine(
            Some("maildir:q"),
            b"not a mail",
            w.clock.now(),
            "the store refused it",
        )
        .await
        .unwrap();
    w.clock.set(local("2027-03-26 16:40"));
    klachtpost::health::failed(
        &w.store,
        &w.config,
        &w.clock,
        klachtpost::health::Channel::Mailbox,
        "cannot log in: authentication failed",
    )
    .await
    .unwrap();

    // Monday 29 March 2027 is Easter Monday: the digest goes on Tuesday 08:00.
    w.clock.set(local("2027-03-29 08:00"));
    assert_eq!(w.work().await.digests, 0);
    w.clock.set(local("2027-03-30 08:00"));
    let drafts = scheduler::plan(&w.store, &w.config, w.clock.now())
        .await
        .unwrap();
    let digest: Vec<_> = drafts.iter().filter(|d| d.purpose == "digest").collect();
    assert_eq!(digest.len(), 2, "one per partner");
    let r = digest[0].render_all(&w.config).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/partners/digest.txt");
    let golden_html =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/partners/digest.html");
    if std::env::var_os("KLACHTPOST_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &r.text).unwrap();
        std::fs::write(&golden_html, r.html.as_deref().unwrap()).unwrap();
    }
    assert_eq!(
        r.text,
        std::fs::read_to_string(&golden).unwrap(),
        "the digest text changed; KLACHTPOST_BLESS=1 rewrites the golden file"
    );
    assert_eq!(
        r.html.as_deref().unwrap(),
        std::fs::read_to_string(&golden_html).unwrap()
    );
    let report = w.work().await;
    assert_eq!(report.digests, 2);
    let digests: BTreeMap<String, Sent> = sent(&w)
        .await
        .into_iter()
        .filter(|s| s.purpose == "digest")
        .map(|s| (s.to.clone(), s))
        .collect();
    assert_eq!(
        digests.keys().cloned().collect::<Vec<_>>(),
        vec!["anna@firma.nl", "bob@firma.nl"]
    );
    // The next digest lists only what was closed since this one.
    w.clock.set(local("2027-04-05 08:00"));
    let drafts = scheduler::plan(&w.store, &w.config, w.clock.now())
        .await
        .unwrap();
    let next = drafts.iter().find(|d| d.purpose == "digest").unwrap();
    let text = next.render_all(&w.config).unwrap().text;
    assert!(
        text.contains("AFGESLOTEN sinds dinsdag 30 maart 2027 om 08:00 (0)"),
        "{text}"
    );
    // What is still open is listed again; the auto-reply came before the last digest.
    assert!(text.contains("- in quarantaine: Q-0001"), "{text}");
    assert!(text.contains("- storing: de klachtenmailbox"), "{text}");
    assert!(
        text.contains("- ontvangst niet bevestigd: KL-2027-0003"),
        "{text}"
    );
    assert!(!text.contains("geen zaak geopend"), "{text}");

    // `digest preview` shows the problems too.
    let dir = w._tmp.path();
    let file = dir.join("klachtpost.toml");
    std::fs::write(&file, config_text(dir, "")).unwrap();
    let preview = |json: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_klachtpost"));
        cmd.arg("--config").arg(&file).args(["digest", "preview"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json: serde_json::Value = serde_json::from_str(&preview(true)).unwrap();
    let problems = &json["digest"]["problems"];
    assert_eq!(problems["quarantined"][0]["reference"], "Q-0001", "{json}");
    assert_eq!(problems["outages"][0]["channel"], "mailbox", "{json}");
    assert_eq!(
        problems["acknowledgements"][0]["cause"], "no_address",
        "{json}"
    );
    let text = preview(false);
    assert!(text.contains("- in quarantaine: Q-0001"), "{text}");
}

#[tokio::test]
async fn reminders_preview_shows_what_is_due_and_to_whom_without_sending() {
    let w = World::new("2027-03-26 15:00", "").await;
    w.take_in(
        "k",
        &complaint(
            "p@x",
            "Jan de Vries <jan@client.example>",
            "Klacht",
            "Tekst.",
        ),
    )
    .await;
    w.work().await;
    let dir = w._tmp.path();
    let file = dir.join("klachtpost.toml");
    std::fs::write(&file, config_text(dir, "")).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_klachtpost"))
            .arg("--config")
            .arg(&file)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let before = sent(&w).await.len();
    let preview = || run(&["reminders", "preview", "--at", "2027-03-30 08:30", "--json"]);
    let p = preview();
    let mails: Vec<(String, String)> = p["mails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["purpose"].as_str().unwrap().to_string(),
                m["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        mails,
        vec![
            ("reminder".to_string(), "anna@firma.nl".to_string()),
            ("digest".to_string(), "anna@firma.nl".to_string()),
            ("digest".to_string(), "bob@firma.nl".to_string()),
        ]
    );
    // Nothing was sent or claimed: the same preview again.
    assert_eq!(preview(), p);
    assert_eq!(sent(&w).await.len(), before);
    // Saturday: nothing.
    let p = run(&["reminders", "preview", "--at", "2027-03-27 08:30", "--json"]);
    assert!(p["mails"].as_array().unwrap().is_empty(), "{p}");

    let d = run(&["digest", "preview", "--json"]);
    assert_eq!(
        d["to"],
        serde_json::json!(["anna@firma.nl", "bob@firma.nl"])
    );
    assert_eq!(d["digest"]["open"][0]["reference"], "KL-2027-0001");
}

#[tokio::test]
async fn a_forged_partner_from_cannot_command_when_the_firms_server_is_trusted() {
    // trusted_authserv_id goes under [firm]: the extra lines follow the partners line.
    let w = World::new("2027-03-31 10:00", "trusted_authserv_id = \"mx.firma.nl\"").await;
    let reference = w
        .take_in(
            "k1",
            &complaint(
                "f@x",
                "Jan de Vries <jan@client.example>",
                "Klacht",
                "Tekst.",
            ),
        )
        .await
        .case
        .unwrap();
    w.work().await;
    let notice = sent(&w)
        .await
        .into_iter()
        .find(|s| s.purpose == "new_complaint")
        .unwrap();
    let forged = reply(
        "Anna Partner <anna@firma.nl>",
        &notice.message_id,
        &notice.subject,
        "forged@firma.nl",
        "#status investigating",
    );
    w.take_in("k2", &forged).await;
    assert_eq!(
        w.status(&reference).await,
        "acknowledged",
        "not carried out"
    );
    let mut vouched = b"Authentication-Results: mx.firma.nl; dkim=pass header.d=firma.nl; dmarc=pass header.from=firma.nl\r\n".to_vec();
    vouched.extend(reply(
        "Anna Partner <anna@firma.nl>",
        &notice.message_id,
        &notice.subject,
        "real@firma.nl",
        "#status investigating",
    ));
    w.take_in("k3", &vouched).await;
    assert_eq!(w.status(&reference).await, "investigating");
}

#[tokio::test]
async fn a_flood_of_mail_that_opened_no_case_is_listed_up_to_a_limit() {
    let w = World::new("2027-03-31 10:00", "").await;
    for i in 0..53 {
        let raw = format!(
            "From: Robot <robot{i}@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Automatic reply: Uw bericht\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <flood-{i}@client.example>\r\n\r\nI am away.\r\n"
        );
        assert!(
            w.take_in(&format!("f{i}"), raw.as_bytes())
                .await
                .case
                .is_none()
        );
    }
    let cases = klachtpost::store::partners::open_cases(w.store.pool())
        .await
        .unwrap();
    let d = scheduler::build_digest(&w.store, &w.config, &cases, w.clock.now())
        .await
        .unwrap();
    assert_eq!(d.problems.unfiled.len(), 50);
    assert_eq!(d.problems.unfiled_more, 3);
    assert_eq!(
        d.problems.unfiled[0].sender.as_deref(),
        Some("robot0@client.example"),
        "oldest first"
    );
    let templates = w.config.templates.load().unwrap();
    let r = d
        .render(
            &klachtpost::partners::mail::Style::new(&w.config, &templates),
            &w.config.calendar,
        )
        .unwrap();
    assert!(r.subject.ends_with(", 53 problemen"), "{}", r.subject);
    assert!(
        r.text
            .contains("- en nog 3 mail(s) waarmee geen zaak is geopend"),
        "{}",
        r.text
    );
}
