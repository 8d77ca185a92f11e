//! The classification stage on the project's own fixture mails (tests/fixtures/mail):
//! one per path of issue 3, with `Known` built by hand where a case must exist.

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};

use klachtpost::classify::{
    self, CaseInfo, Channel, ComplainantSource, Context, Decision, Direction, Kind, Known,
    ReceivedAtSource, ThreadVia,
};
use klachtpost::config::{Firm, Partner};
use klachtpost::parse::{ParsedMail, parse};

fn firm() -> Firm {
    Firm {
        name: "Voorbeeld Advies".into(),
        timezone: chrono_tz::Europe::Amsterdam,
        address: "klachten@example-firm.nl".into(),
        staff_domains: vec!["example-firm.nl".into()],
        partners: vec![Partner {
            name: "Anna Partner".into(),
            email: "anna@example-firm.nl".into(),
        }],
        operator: None,
        trusted_authserv_id: None,
    }
}

fn arrival() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 16, 0, 0).unwrap()
}

fn mail(name: &str) -> ParsedMail {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mail")
        .join(name);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let m = parse(&raw);
    assert!(m.problem.is_none(), "{name}: {:?}", m.problem);
    m
}

fn decide_with(name: &str, known: &Known) -> Decision {
    let firm = firm();
    let ctx = Context {
        firm: &firm,
        own_addresses: vec!["klachten@example-firm.nl".into()],
        received_at: arrival(),
    };
    classify::classify(&mail(name), &ctx, known)
}

fn decide(name: &str) -> Decision {
    decide_with(name, &Known::default())
}

fn case42() -> CaseInfo {
    CaseInfo {
        reference: "KL-2026-0042".into(),
        complainant: Some("jan.devries@example.nl".into()),
        parties: vec![
            "jan.devries@example.nl".into(),
            "klachten@example-firm.nl".into(),
        ],
        ..CaseInfo::default()
    }
}

/// What the store knows: case 42 (complaint and acknowledgement) and case 43 (an
/// acknowledgement to Karin Bakker).
fn known() -> Known {
    let mut k = Known::default();
    for id in ["complaint-1@example.nl", "ack-KL-2026-0042@example-firm.nl"] {
        k.by_message_id.insert(id.into(), case42());
    }
    k.by_reference.insert("KL-2026-0042".into(), case42());
    let case43 = CaseInfo {
        reference: "KL-2026-0043".into(),
        complainant: Some("karin.bakker@klant.example.nl".into()),
        parties: vec!["karin.bakker@klant.example.nl".into()],
        ..CaseInfo::default()
    };
    k.by_message_id
        .insert("ack-KL-2026-0043@example-firm.nl".into(), case43.clone());
    k.by_reference.insert("KL-2026-0043".into(), case43);
    for id in [
        "ack-KL-2026-0042@example-firm.nl",
        "ack-KL-2026-0043@example-firm.nl",
    ] {
        k.acknowledgements.insert(id.into());
        k.ours.insert(id.into());
    }
    k
}

fn addr(d: &Decision) -> Option<String> {
    d.complainant.as_ref().map(|a| a.address.to_lowercase())
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn plain_complaint_dutch() {
    let d = decide("complaint-plain-nl.eml");
    assert_eq!(d.kind, Kind::Complaint);
    assert!(d.kind.opens_case());
    assert_eq!(addr(&d).as_deref(), Some("jan.devries@example.nl"));
    assert_eq!(
        d.complainant.as_ref().unwrap().name.as_deref(),
        Some("Jan de Vries")
    );
    assert_eq!(d.complainant_source, Some(ComplainantSource::From));
    assert_eq!(d.channel, Channel::Email);
    assert_eq!(d.received_at, arrival());
    assert!(d.acknowledge);
    assert!(d.flags.is_empty(), "{:?}", d.flags);
    assert!(d.new_part.starts_with("Geachte heer, mevrouw,"));
    assert!(!d.new_part.contains("Met vriendelijke groet"));
    assert_eq!(
        d.original_subject.as_deref(),
        Some("Klacht over de training van 12 november")
    );
}

#[test]
fn plain_complaint_english() {
    let d = decide("complaint-plain-en.eml");
    assert_eq!(d.kind, Kind::Complaint);
    assert_eq!(addr(&d).as_deref(), Some("mary@example.co.uk"));
    assert!(d.acknowledge);
}

#[test]
fn reply_by_in_reply_to() {
    let d = decide_with("reply-in-reply-to.eml", &known());
    assert_eq!(d.kind, Kind::Reply);
    assert_eq!(d.case.as_deref(), Some("KL-2026-0042"));
    assert_eq!(
        d.thread_evidence.as_ref().unwrap().via,
        ThreadVia::InReplyTo
    );
    assert!(!d.acknowledge);
    assert!(!d.kind.opens_case());
    assert_eq!(d.direction, Direction::Inbound);
    assert_eq!(
        d.new_part,
        "Dank u. Ik ben dinsdag en donderdag telefonisch bereikbaar."
    );
    // Without the store (as `explain` runs today) it would be a new complaint.
    assert_eq!(decide("reply-in-reply-to.eml").kind, Kind::Complaint);
}

#[test]
fn reply_by_subject_tag_from_the_complainant() {
    let m = mail("reply-subject-tag-complainant.eml");
    assert_eq!(classify::lookups(&m).references, vec!["KL-2026-0042"]);
    let d = decide_with("reply-subject-tag-complainant.eml", &known());
    assert_eq!(d.kind, Kind::Reply);
    assert_eq!(d.case.as_deref(), Some("KL-2026-0042"));
    let ev = d.thread_evidence.unwrap();
    assert_eq!(ev.via, ThreadVia::SubjectReference);
    assert_eq!(ev.value, "KL-2026-0042");
    assert!(!d.acknowledge);
    assert_eq!(
        d.new_part,
        "Nog een aanvulling: ook de lunch was niet verzorgd."
    );
}

#[test]
fn reply_by_subject_tag_from_a_stranger_is_triage() {
    let d = decide_with("reply-subject-tag-stranger.eml", &known());
    assert_eq!(d.kind, Kind::Triage);
    assert_eq!(d.case.as_deref(), Some("KL-2026-0042"));
    assert!(!d.acknowledge);
    assert!(!d.kind.opens_case());
    assert!(d.complainant.is_none());
    assert!(d.reason.contains("not a party"));
}

#[test]
fn dutch_outlook_forward() {
    let d = decide("forward-outlook-nl.eml");
    assert_eq!(d.kind, Kind::Forward);
    assert!(d.kind.opens_case());
    assert_eq!(addr(&d).as_deref(), Some("karin.bakker@klant.example.nl"));
    assert_eq!(
        d.complainant.as_ref().unwrap().name.as_deref(),
        Some("Karin Bakker")
    );
    assert_eq!(
        d.complainant_source,
        Some(ComplainantSource::ForwardedOriginal)
    );
    assert_eq!(d.channel, Channel::Forwarded);
    assert_eq!(d.received_at, utc("2026-11-19T09:15:00Z"));
    assert_eq!(d.received_at_source, ReceivedAtSource::ForwardedDate);
    assert!(d.acknowledge);
    assert_eq!(d.staff.as_ref().unwrap().address, "piet@example-firm.nl");
    assert!(
        d.staff_comment
            .as_deref()
            .unwrap()
            .contains("graag als klacht")
    );
    assert_eq!(
        d.original_subject.as_deref(),
        Some("Slechte ervaring met de cursus")
    );
    assert!(
        d.complaint_text
            .as_deref()
            .unwrap()
            .contains("niet voorbereid")
    );
    let summary = d.staff_summary.unwrap();
    assert!(summary.contains("Karin Bakker"), "{summary}");
    assert!(summary.contains("19-11-2026 10:15"), "{summary}");
}

#[test]
fn gmail_forward_by_a_partner() {
    let d = decide("forward-gmail-en.eml");
    assert_eq!(d.kind, Kind::Forward);
    assert_eq!(addr(&d).as_deref(), Some("tom.baker@client.example.com"));
    assert_eq!(d.received_at, utc("2026-11-19T09:15:00Z"));
    assert_eq!(d.staff.as_ref().unwrap().address, "anna@example-firm.nl");
    assert_eq!(d.original_subject.as_deref(), Some("Invoice dispute"));
}

#[test]
fn apple_mail_forward_quoted() {
    let d = decide("forward-apple-nl.eml");
    assert_eq!(d.kind, Kind::Forward);
    assert_eq!(addr(&d).as_deref(), Some("a.elamrani@example.org"));
    assert_eq!(
        d.complainant.as_ref().unwrap().name.as_deref(),
        Some("Ahmed el Amrani")
    );
    assert_eq!(d.received_at, utc("2026-11-19T09:15:08Z"));
    assert_eq!(
        d.complaint_text.as_deref(),
        Some("Het adviesrapport is drie weken te laat geleverd.")
    );
}

#[test]
fn forward_as_attachment() {
    let d = decide("forward-attached.eml");
    assert_eq!(d.kind, Kind::Forward);
    assert_eq!(addr(&d).as_deref(), Some("els.visser@example.com"));
    assert_eq!(
        d.original_message_id.as_deref(),
        Some("original-els@example.com")
    );
    assert_eq!(d.received_at, utc("2026-11-19T09:15:00Z"));
    assert!(d.acknowledge);
}

#[test]
fn outlook_original_message_forward_with_mailto_form() {
    let d = decide("forward-outlook-original-message-en.eml");
    assert_eq!(d.kind, Kind::Forward);
    assert_eq!(addr(&d).as_deref(), Some("bram@peters.example.be"));
    assert_eq!(
        d.complainant.as_ref().unwrap().name.as_deref(),
        Some("Bram Peters")
    );
    // A naive time is the firm's local time.
    assert_eq!(d.received_at, utc("2026-11-19T09:15:00Z"));
}

#[test]
fn verbal_note_with_address() {
    let d = decide("note-with-address.eml");
    assert_eq!(d.kind, Kind::Note);
    assert!(d.kind.opens_case());
    assert_eq!(addr(&d).as_deref(), Some("henk.jansen@example.nl"));
    assert_eq!(d.complainant_source, Some(ComplainantSource::Note));
    assert_eq!(d.channel, Channel::Verbal);
    assert_eq!(d.channel_detail.as_deref(), Some("telefoon"));
    assert_eq!(d.complainant_phone.as_deref(), Some("06-12345678"));
    assert_eq!(d.received_at, utc("2026-11-20T13:10:00Z"));
    assert_eq!(d.received_at_source, ReceivedAtSource::NoteDate);
    assert!(d.acknowledge);
    assert_eq!(d.staff.as_ref().unwrap().address, "piet@example-firm.nl");
    assert!(
        d.complaint_text
            .as_deref()
            .unwrap()
            .starts_with("Meneer Jansen belde")
    );
    assert!(d.staff_summary.unwrap().contains("Henk Jansen"));
}

#[test]
fn verbal_note_without_address() {
    let d = decide("note-without-address.eml");
    assert_eq!(d.kind, Kind::Note);
    assert!(d.complainant.is_none());
    assert_eq!(d.complainant_name.as_deref(), Some("Mevrouw Smit"));
    assert_eq!(d.complainant_phone.as_deref(), Some("020-1234567"));
    assert_eq!(d.channel_detail.as_deref(), Some("gesprek"));
    assert!(!d.acknowledge);
    assert_eq!(d.received_at, arrival());
    assert!(d.flags.iter().any(|f| f.contains("no mail address")));
    let json = d.to_json();
    assert_eq!(json["complainant"]["name"], "Mevrouw Smit");
    assert!(json["complainant"]["address"].is_null());
}

#[test]
fn staff_answer_with_the_mailbox_in_cc() {
    let d = decide_with("staff-answer-cc.eml", &known());
    assert_eq!(d.kind, Kind::Reply);
    assert_eq!(d.case.as_deref(), Some("KL-2026-0042"));
    assert_eq!(d.direction, Direction::Outbound);
    assert!(!d.acknowledge);
    // Matching no case: correspondence copied to the mailbox, for a partner to place.
    let d = decide("staff-answer-cc.eml");
    assert_eq!(d.kind, Kind::Triage);
    assert_eq!(d.direction, Direction::Outbound);
    assert!(!d.kind.opens_case());
    assert!(!d.acknowledge);
}

#[test]
fn out_of_office_is_automatic() {
    let d = decide("out-of-office.eml");
    assert_eq!(d.kind, Kind::Automatic);
    assert!(!d.acknowledge);
    assert!(!d.kind.opens_case());
    let d = decide_with("out-of-office.eml", &known());
    assert_eq!(d.kind, Kind::Automatic);
    assert_eq!(d.case.as_deref(), Some("KL-2026-0042"));
    assert!(!d.acknowledge);
}

#[test]
fn bounce_without_automatic_headers() {
    let m = mail("bounce-no-headers.eml");
    assert!(!m.has_header("Auto-Submitted"));
    let d = decide("bounce-no-headers.eml");
    assert_eq!(d.kind, Kind::Bounce);
    assert!(!d.acknowledge);
    assert!(!d.kind.opens_case());
}

#[test]
fn bounce_of_our_acknowledgement() {
    let m = mail("bounce-of-ack.eml");
    assert!(
        classify::lookups(&m)
            .message_ids
            .contains(&"ack-KL-2026-0043@example-firm.nl".to_string())
    );
    let d = decide_with("bounce-of-ack.eml", &known());
    assert_eq!(d.kind, Kind::Bounce);
    assert_eq!(d.case.as_deref(), Some("KL-2026-0043"));
    assert_eq!(
        d.thread_evidence.as_ref().unwrap().via,
        ThreadVia::ReturnedMessage
    );
    assert!(!d.acknowledge);
    assert!(
        d.flags
            .iter()
            .any(|f| f.contains("acknowledgement bounced")),
        "{:?}",
        d.flags
    );
    // Without the store: still a bounce, never acknowledged.
    let d = decide("bounce-of-ack.eml");
    assert_eq!(d.kind, Kind::Bounce);
    assert!(!d.acknowledge);
}

#[test]
fn list_mail_is_automatic() {
    let d = decide("list-mail.eml");
    assert_eq!(d.kind, Kind::Automatic);
    assert!(!d.acknowledge);
}

#[test]
fn no_reply_from_with_reply_to() {
    let d = decide("noreply-reply-to.eml");
    assert_eq!(d.kind, Kind::Complaint);
    assert_eq!(addr(&d).as_deref(), Some("sanne.mulder@example.nl"));
    assert_eq!(d.complainant_source, Some(ComplainantSource::ReplyTo));
    assert!(d.acknowledge);
}

#[test]
fn our_own_address_is_never_acknowledged() {
    let d = decide("own-address.eml");
    assert_eq!(d.kind, Kind::Automatic);
    assert!(!d.acknowledge);
    assert!(!d.kind.opens_case());
}

#[test]
fn staff_mail_that_is_neither_forward_nor_note() {
    let d = decide("staff-plain.eml");
    assert_eq!(d.kind, Kind::Note);
    assert!(d.kind.opens_case());
    assert!(d.complainant.is_none());
    assert!(!d.acknowledge);
    assert!(
        d.flags
            .iter()
            .any(|f| f.contains("no complainant recognised"))
    );
    assert!(d.staff.is_some());
    assert!(d.staff_summary.unwrap().contains("geen klager herkend"));
}

#[test]
fn unparseable_mail_is_a_flagged_complaint() {
    let firm = firm();
    let ctx = Context {
        firm: &firm,
        own_addresses: vec![],
        received_at: arrival(),
    };
    let d = classify::classify(&parse(b"\x00\x01\x02"), &ctx, &Known::default());
    assert_eq!(d.kind, Kind::Complaint);
    assert!(!d.acknowledge);
    assert!(d.flags.iter().any(|f| f.starts_with("unparseable")));
}

#[test]
fn a_sender_address_that_cannot_be_answered_opens_a_flagged_case_without_acknowledgement() {
    let firm = firm();
    let ctx = Context {
        firm: &firm,
        own_addresses: vec!["klachten@example-firm.nl".into()],
        received_at: arrival(),
    };
    let jan = parse(
        b"From: Jan <jan>\r\nTo: klachten@example-firm.nl\r\nSubject: Klacht\r\nMessage-ID: <j1@x.example>\r\n\r\nSlecht advies.\r\n",
    );
    let d = classify::classify(&jan, &ctx, &Known::default());
    assert_eq!(d.kind, Kind::Complaint);
    assert!(d.kind.opens_case());
    assert!(!d.acknowledge);
    assert_eq!(d.complainant.as_ref().unwrap().address, "jan");
    assert!(
        d.flags.iter().any(|f| f == classify::UNANSWERABLE),
        "{:?}",
        d.flags
    );
    assert!(!d.reason.contains("jan"), "{}", d.reason);

    // No sender at all: flagged the same way. A usable address: acknowledged, no flag.
    let nobody =
        parse(b"To: klachten@example-firm.nl\r\nSubject: Klacht\r\n\r\nSlecht advies.\r\n");
    let d = classify::classify(&nobody, &ctx, &Known::default());
    assert!(!d.acknowledge);
    assert!(
        d.flags.iter().any(|f| f == classify::UNANSWERABLE),
        "{:?}",
        d.flags
    );
    let d = decide("complaint-plain-nl.eml");
    assert!(d.acknowledge);
    assert!(!d.flags.iter().any(|f| f == classify::UNANSWERABLE));
}

#[test]
fn every_fixture_has_the_explain_keys_and_no_personal_data_in_reason() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for k in [Known::default(), known()] {
            let d = decide_with(&name, &k);
            let json = d.to_json();
            for key in [
                "kind",
                "case",
                "complainant",
                "channel",
                "received_at",
                "acknowledge",
                "reason",
            ] {
                assert!(json.get(key).is_some(), "{name}: no {key}");
            }
            assert!(DateTime::parse_from_rfc3339(json["received_at"].as_str().unwrap()).is_ok());
            assert!(!d.reason.contains('@'), "{name}: {}", d.reason);
            assert!(
                d.flags.iter().all(|f| !f.contains('@')),
                "{name}: {:?}",
                d.flags
            );
            // Only new cases can be acknowledged.
            assert!(!d.acknowledge || d.kind.opens_case(), "{name}");
        }
        n += 1;
    }
    assert!(n >= 19);
}

#[test]
fn a_declared_forward_to_someone_outside_is_still_a_forward() {
    let raw = b"From: Piet <piet@example-firm.nl>\r\nTo: Extern Bureau <info@extern.example>\r\nCc: klachten@example-firm.nl\r\nSubject: FW: Klacht\r\nDate: Fri, 20 Nov 2026 10:00:00 +0100\r\n\r\nVan: Klant <klant@example.nl>\r\nVerzonden: donderdag 19 november 2026 10:15\r\nAan: Piet <piet@example-firm.nl>\r\nOnderwerp: Klacht\r\n\r\nSlecht.\r\n";
    let firm = firm();
    let ctx = Context {
        firm: &firm,
        own_addresses: vec!["klachten@example-firm.nl".into()],
        received_at: arrival(),
    };
    let d = classify::classify(&parse(raw), &ctx, &Known::default());
    assert_eq!(d.kind, Kind::Forward);
    assert_eq!(addr(&d).as_deref(), Some("klant@example.nl"));
}

// ---- issue 12: complaints that use auto-reply words; parties a stranger cannot join ----

/// Every `words-*.eml` fixture: an ordinary complaint whose subject or text uses words of
/// auto-replies and bounces (afwezig, vakantie, automatisch, niet bereikbaar, out of office,
/// undeliverable, no reply, "mail delivery failed").
fn word_fixtures() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("words-"))
        .collect();
    names.sort();
    names
}

#[test]
fn complaints_with_auto_reply_words_are_complaints_and_acknowledged() {
    let names = word_fixtures();
    assert!(names.len() >= 12, "{names:?}");
    for name in &names {
        for k in [Known::default(), known()] {
            let d = decide_with(name, &k);
            assert_eq!(d.kind, Kind::Complaint, "{name}: {}", d.reason);
            assert!(d.acknowledge, "{name}: {}", d.reason);
            assert!(classify::automatic::detect(&mail(name)).is_none(), "{name}");
        }
    }
}

fn with_firm(name: &str, firm: &Firm, known: &Known) -> Decision {
    let ctx = Context {
        firm,
        own_addresses: vec!["klachten@example-firm.nl".into()],
        received_at: arrival(),
    };
    classify::classify(&mail(name), &ctx, known)
}

fn raw(text: &str) -> ParsedMail {
    parse(text.replace('\n', "\r\n").as_bytes())
}

fn decide_raw(text: &str, known: &Known) -> Decision {
    let firm = firm();
    let ctx = Context {
        firm: &firm,
        own_addresses: vec!["klachten@example-firm.nl".into()],
        received_at: arrival(),
    };
    classify::classify(&raw(text), &ctx, known)
}

#[test]
fn an_auto_reply_is_attached_only_by_a_message_we_sent() {
    // out-of-office.eml answers our acknowledgement (In-Reply-To): attached.
    let d = decide_with("out-of-office.eml", &known());
    assert_eq!(
        (d.kind, d.case.as_deref()),
        (Kind::Automatic, Some("KL-2026-0042"))
    );
    assert!(d.new_parties.is_empty());
    // The same auto-reply when the acknowledgement is not ours (the store does not say we
    // sent it): not attached, whatever its subject says.
    let mut k = known();
    k.ours.clear();
    let d = decide_with("out-of-office.eml", &k);
    assert_eq!((d.kind, d.case.as_deref()), (Kind::Automatic, None));
    assert!(d.reason.contains("not attached"), "{}", d.reason);
    // By subject tag alone: not attached, not flagged.
    let d = decide_raw(
        "From: iemand@elders.example\nTo: klachten@example-firm.nl\nSubject: Automatisch antwoord: [KL-2026-0042] Ontvangstbevestiging\nAuto-Submitted: auto-replied\n\nIk ben afwezig.\n",
        &known(),
    );
    assert_eq!((d.kind, d.case.as_deref()), (Kind::Automatic, None));
    let d = decide_raw(
        "From: MAILER-DAEMON@elders.example\nTo: klachten@example-firm.nl\nSubject: Undeliverable: [KL-2026-0042] Ontvangstbevestiging\n\nUser unknown\n",
        &known(),
    );
    assert_eq!((d.kind, d.case.as_deref()), (Kind::Bounce, None));
    assert!(d.flags.is_empty(), "{:?}", d.flags);
    // A client's own Message-ID in References is no proof either.
    let d = decide_raw(
        "From: iemand@elders.example\nTo: klachten@example-firm.nl\nSubject: Out of office\nReferences: <complaint-1@example.nl>\nAuto-Submitted: auto-replied\n\nAway.\n",
        &known(),
    );
    assert_eq!(d.case, None);
    // By References to our acknowledgement: attached.
    let d = decide_raw(
        "From: iemand@elders.example\nTo: klachten@example-firm.nl\nSubject: Out of office\nReferences: <complaint-1@example.nl> <ack-KL-2026-0042@example-firm.nl>\nAuto-Submitted: auto-replied\n\nAway.\n",
        &known(),
    );
    assert_eq!(d.case.as_deref(), Some("KL-2026-0042"));
    assert_eq!(d.thread_evidence.unwrap().via, ThreadVia::References);
}

#[test]
fn a_party_naming_the_reference_only_in_the_text_joins_the_case() {
    let text = "From: Jan de Vries <jan.devries@example.nl>\nTo: klachten@example-firm.nl\nSubject: Nog een vraag\n\nOver mijn klacht KL-2026-0042: wanneer hoor ik iets?\n";
    let m = raw(text);
    assert_eq!(classify::lookups(&m).references, vec!["KL-2026-0042"]);
    let d = decide_raw(text, &known());
    assert_eq!(
        (d.kind, d.case.as_deref()),
        (Kind::Reply, Some("KL-2026-0042"))
    );
    assert_eq!(d.thread_evidence.unwrap().via, ThreadVia::TextReference);
    assert!(!d.acknowledge);
    // Someone else naming it: triage, nothing revealed.
    let d = decide_raw(
        &text.replace("jan.devries@example.nl", "iemand@elders.example"),
        &known(),
    );
    assert_eq!(
        (d.kind, d.case.as_deref()),
        (Kind::Triage, Some("KL-2026-0042"))
    );
    assert!(!d.acknowledge);
    // An unknown reference in the text changes nothing: a new complaint.
    let d = decide_raw(&text.replace("KL-2026-0042", "KL-2026-0999"), &known());
    assert_eq!(d.kind, Kind::Complaint);
}

#[test]
fn whom_the_complainant_addresses_becomes_a_party() {
    let d = decide_raw(
        "From: Jan de Vries <jan.devries@example.nl>\nTo: klachten@example-firm.nl, Piet <piet@example-firm.nl>\nCc: Mijn Advocaat <advocaat@kantoor.example>, noreply@x.example\nSubject: Klacht\n\nDe training was slecht.\n",
        &Known::default(),
    );
    assert_eq!(d.kind, Kind::Complaint);
    assert_eq!(
        d.new_parties,
        vec!["jan.devries@example.nl", "advocaat@kantoor.example"]
    );
    // On a reply from the complainant, new addressees join.
    let d = decide_raw(
        "From: Jan de Vries <jan.devries@example.nl>\nTo: klachten@example-firm.nl\nCc: partner@thuis.example\nSubject: Re: [KL-2026-0042] Ontvangstbevestiging\n\nMijn partner leest mee.\n",
        &known(),
    );
    assert_eq!(d.kind, Kind::Reply);
    assert_eq!(d.new_parties, vec!["partner@thuis.example"]);
    // A stranger's Cc adds nobody (and the stranger is triage).
    let d = decide_raw(
        "From: iemand@elders.example\nTo: klachten@example-firm.nl\nCc: nog.iemand@elders.example\nSubject: Re: [KL-2026-0042] x\n\nx\n",
        &known(),
    );
    assert_eq!(d.kind, Kind::Triage);
    assert!(d.new_parties.is_empty());
    // The Cc'd party's own reply is a reply.
    let mut k = known();
    for c in k.by_reference.values_mut() {
        c.parties.push("partner@thuis.example".into());
    }
    let d = decide_raw(
        "From: partner@thuis.example\nTo: klachten@example-firm.nl\nSubject: Re: [KL-2026-0042] x\n\nIk sluit mij aan.\n",
        &k,
    );
    assert_eq!(d.kind, Kind::Reply);
    assert!(d.new_parties.is_empty());
}

#[test]
fn mail_on_a_closed_case_is_kept_and_flagged() {
    let mut k = known();
    for c in k
        .by_reference
        .values_mut()
        .chain(k.by_message_id.values_mut())
    {
        c.closed = true;
    }
    let d = decide_with("reply-subject-tag-complainant.eml", &k);
    assert_eq!(
        (d.kind, d.case.as_deref()),
        (Kind::Reply, Some("KL-2026-0042"))
    );
    assert!(d.case_closed);
    assert!(
        d.flags.iter().any(|f| f.contains("closed case")),
        "{:?}",
        d.flags
    );
    assert!(!decide_with("reply-subject-tag-complainant.eml", &known()).case_closed);
}

#[test]
fn a_staff_from_counts_only_when_the_firms_server_vouches_for_it() {
    let mut firm = firm();
    firm.trusted_authserv_id = Some("mx.example-firm.nl".into());
    // Without Authentication-Results: a forged staff From. No forward, a triage item.
    let d = with_firm("forward-outlook-nl.eml", &firm, &Known::default());
    assert_eq!(d.kind, Kind::Triage, "{}", d.reason);
    assert!(!d.from_staff && !d.acknowledge);
    assert!(d.flags.iter().any(|f| f.contains("did not authenticate")));
    // A staff answer on a case without it: triage, the response deadline is not met.
    let d = with_firm("staff-answer-cc.eml", &firm, &known());
    assert_eq!(
        (d.kind, d.case.as_deref()),
        (Kind::Triage, Some("KL-2026-0042"))
    );
    assert!(!d.from_staff);
    // With the firm's server's dmarc=pass on top: a forward, a reply.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail");
    for (name, kind) in [
        ("forward-outlook-nl.eml", Kind::Forward),
        ("staff-answer-cc.eml", Kind::Reply),
    ] {
        let original = std::fs::read(path.join(name)).unwrap();
        let mut signed = b"Authentication-Results: mx.example-firm.nl; spf=pass smtp.mailfrom=example-firm.nl;\r\n dkim=pass header.d=example-firm.nl; dmarc=pass (p=reject) header.from=example-firm.nl\r\n".to_vec();
        signed.extend_from_slice(&original);
        let ctx = Context {
            firm: &firm,
            own_addresses: vec!["klachten@example-firm.nl".into()],
            received_at: arrival(),
        };
        let d = classify::classify(&parse(&signed), &ctx, &known());
        assert_eq!(d.kind, kind, "{name}: {}", d.reason);
        assert!(d.from_staff);
        // Another server's word does not count.
        let mut other = b"Authentication-Results: mx.elders.example; dmarc=pass header.from=example-firm.nl\r\n".to_vec();
        other.extend_from_slice(&original);
        let d = classify::classify(&parse(&other), &ctx, &known());
        assert_eq!(d.kind, Kind::Triage, "{name}");
    }
    // Without the key: as before, a staff From is believed.
    let d = decide("forward-outlook-nl.eml");
    assert_eq!(d.kind, Kind::Forward);
    assert!(d.from_staff);
}

#[test]
fn only_staff_writing_to_the_complainant_meets_the_response_deadline() {
    let d = decide_with("staff-answer-cc.eml", &known());
    assert_eq!(d.kind, Kind::Reply);
    assert!(d.answers_complainant);
    // A partner answering klachtpost's internal notice (to the mailbox only): on the
    // case, but no answer to the client.
    let d = decide_raw(
        "From: Anna Partner <anna@example-firm.nl>\nTo: klachten@example-firm.nl\nSubject: Re: [KL-2026-0042] Bericht ter beoordeling\n\nIk bel hem.\n",
        &known(),
    );
    assert_eq!((d.kind, d.direction), (Kind::Reply, Direction::Outbound));
    assert!(!d.answers_complainant);
}
