//! Issue 3 through intake and the store: the classifier's decisions acted on — replies and
//! staff answers threaded (the latter meets the response deadline), strangers quoting a
//! case number turned into a partner's triage item without touching the case, staff
//! forwards opening a case for the real complainant with a confirmation to the staff
//! member, and a bounce of our acknowledgement attached to its case and flagged.

mod support;

use std::path::Path;

use chrono::{TimeZone, Utc};
use klachtpost::clock::{Clock, ManualClock};
use klachtpost::config::Config;
use klachtpost::intake::Pipeline;
use support::TestConfig;

fn config(dir: &Path) -> Config {
    TestConfig::new(dir)
        .firm(EXAMPLE_FIRM)
        .mailbox(&format!(
            "kind = \"maildir\"\npath = \"{}\"",
            dir.join("md").display()
        ))
        .outgoing(&format!(
            "kind = \"file\"\ndir = \"{}\"",
            dir.join("out").display()
        ))
        .templates(&["acknowledgement", "extension"])
        .build()
}

const EXAMPLE_FIRM: &str = r#"name = "Voorbeeld Advies"
address = "klachten@example-firm.nl"
staff_domains = ["example-firm.nl"]
partners = [{ name = "Anna Partner", email = "anna@example-firm.nl" }]"#;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mail")
            .join(name),
    )
    .unwrap()
}

fn replace(raw: Vec<u8>, from: &str, to: &str) -> Vec<u8> {
    String::from_utf8(raw)
        .unwrap()
        .replace(from, to)
        .into_bytes()
}

#[tokio::test]
async fn every_kind_of_mail_lands_in_the_right_place() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path());
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 10, 0, 0).unwrap());
    let store = support::open_store(&config).await;
    let p = Pipeline::new(&config, &store, &clock).unwrap();

    // A client's complaint opens KL-2026-0001.
    let o = p
        .take_in(Some("1"), &fixture("complaint-plain-nl.eml"), clock.now())
        .await
        .unwrap();
    assert_eq!(o.case.as_deref(), Some("KL-2026-0001"));
    assert!(o.ack_queued);
    let ack_id = store
        .case("KL-2026-0001")
        .await
        .unwrap()
        .unwrap()
        .messages
        .iter()
        .find(|m| m.kind == "acknowledgement")
        .unwrap()
        .message_id
        .clone()
        .unwrap();

    // A partner's answer to the client with the mailbox in Cc: correspondence, outbound,
    // and the response deadline is met.
    let o = p
        .take_in(Some("2"), &fixture("staff-answer-cc.eml"), clock.now())
        .await
        .unwrap();
    let d = o.decision.unwrap();
    assert_eq!(
        (d.kind.as_str(), o.case.as_deref(), o.opened, o.ack_queued),
        ("reply", Some("KL-2026-0001"), false, false)
    );
    let case = store.case("KL-2026-0001").await.unwrap().unwrap();
    assert!(case.case.response_met_at.is_some());
    assert!(
        case.messages
            .iter()
            .any(|m| m.kind == "reply" && m.direction == "outbound")
    );

    // A stranger quoting the case number: triage. Not on the case, no acknowledgement, the
    // partner is told; nothing goes to the stranger.
    let stranger = replace(
        fixture("reply-subject-tag-stranger.eml"),
        "KL-2026-0042",
        "KL-2026-0001",
    );
    let o = p.take_in(Some("3"), &stranger, clock.now()).await.unwrap();
    assert_eq!(o.decision.as_ref().unwrap().kind.as_str(), "triage");
    assert!(!o.ack_queued && !o.opened);
    let case = store.case("KL-2026-0001").await.unwrap().unwrap();
    assert!(
        !case
            .messages
            .iter()
            .any(|m| m.from_address.as_deref() == Some("iemand@elders.example"))
    );
    assert!(case.events.iter().any(|e| e.event == "message.triage"));
    let notice = case
        .messages
        .iter()
        .find(|m| m.kind == "notice")
        .expect("partner notice");
    assert!(notice.subject.contains("ter beoordeling"));
    let due = store.outbox_due(clock.now(), 100).await.unwrap();
    assert!(
        due.iter()
            .all(|i| !i.recipients.contains(&"iemand@elders.example".to_string()))
    );
    assert!(due.iter().any(|i| i.recipients == ["anna@example-firm.nl"]));

    // A staff member forwards a client's mail (Dutch Outlook): a case for the client, the
    // acknowledgement to the client, a confirmation to the staff member.
    let o = p
        .take_in(Some("4"), &fixture("forward-outlook-nl.eml"), clock.now())
        .await
        .unwrap();
    assert_eq!(o.case.as_deref(), Some("KL-2026-0002"));
    assert!(o.ack_queued);
    let case = store.case("KL-2026-0002").await.unwrap().unwrap();
    assert_eq!(case.case.channel, "forwarded");
    assert_eq!(
        case.case.staff_address.as_deref(),
        Some("piet@example-firm.nl")
    );
    let complainant = case.case.complainant_address.clone().unwrap();
    assert!(!complainant.ends_with("@example-firm.nl"), "{complainant}");
    let due = store.outbox_due(clock.now(), 100).await.unwrap();
    assert!(
        due.iter()
            .any(|i| i.purpose == "acknowledgement" && i.recipients == [complainant.clone()])
    );
    let confirm = due
        .iter()
        .find(|i| i.purpose == "notice" && i.recipients == ["piet@example-firm.nl"])
        .expect("staff confirmation");
    let text = klachtpost::parse::parse(&confirm.raw).text;
    assert!(
        text.contains("KL-2026-0002") && text.contains(&complainant),
        "{text}"
    );

    // Our acknowledgement bounced: attached to its case and flagged, never answered.
    let bounce = replace(
        fixture("bounce-of-ack.eml"),
        "ack-KL-2026-0043@example-firm.nl",
        &ack_id,
    );
    let bounce = replace(bounce, "KL-2026-0043", "KL-2026-0001");
    let o = p.take_in(Some("5"), &bounce, clock.now()).await.unwrap();
    assert_eq!(o.decision.as_ref().unwrap().kind.as_str(), "bounce");
    assert_eq!(o.case.as_deref(), Some("KL-2026-0001"));
    assert!(!o.ack_queued && !o.opened);
    let case = store.case("KL-2026-0001").await.unwrap().unwrap();
    assert!(case.messages.iter().any(|m| m.kind == "bounce"));
    assert!(!case.case.flags.is_empty(), "bounce must flag the case");
    assert_eq!(store.list_cases().await.unwrap().len(), 2);
}
