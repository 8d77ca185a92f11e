//! Issue 12 against real servers: a private Dovecot (IMAP in) and Postfix's smtp-sink (SMTP
//! out), klachtpost's real intake and outbox in between (`run_with`, one pass per step).
//!
//! - complaints whose subjects use auto-reply words are cases and acknowledged;
//! - a stranger cannot join a case (an auto-reply quoting its reference, then an ordinary
//!   mail with it): nothing attached, the partner told, nothing sent to the stranger;
//! - automatic mail is attached (and a bounce flags the case) only by References to a
//!   message klachtpost sent, never by the subject tag alone;
//! - the complainant's new mail naming the reference only in its text, and a Cc'd party's
//!   reply, join the case; a reply to a closed case is kept and the partner told;
//! - a forged staff From, with and without the firm's server's Authentication-Results.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use klachtpost::clock::{Clock, SystemClock};
use klachtpost::config::Config;
use klachtpost::daemon::run_with;
use klachtpost::store::{CaseDetail, Store};
use support::{Dovecot, Received, SmtpSink, TestConfig};

const WAIT: Duration = Duration::from_secs(20);
const PARTNER: &str = "anna@firma.nl";

fn config(dir: &Path, imap: &Dovecot, smtp_port: u16, authserv: Option<&str>) -> Config {
    let authserv = authserv
        .map(|a| format!("\ntrusted_authserv_id = \"{a}\""))
        .unwrap_or_default();
    TestConfig::new(dir)
        .firm(&format!(
            r#"name = "Adviesbureau Test"
address = "klachten@firma.nl"
staff_domains = ["firma.nl"]
partners = [{{ name = "Anna Partner", email = "{PARTNER}" }}]{authserv}"#
        ))
        .mailbox(&format!(
            r#"kind = "imap"
host = "127.0.0.1"
port = {port}
security = "none"
username = "{user}"
password_env = "KP_TEST_IMAP_PASSWORD"
poll_interval_secs = 1"#,
            port = imap.imap_port,
            user = imap.user,
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
        .env("KP_TEST_IMAP_PASSWORD", &imap.password)
        .build()
}

/// The servers, the store and the config of one test.
struct World {
    imap: Dovecot,
    smtp: SmtpSink,
    store: Store,
    config: Config,
    _tmp: tempfile::TempDir,
    taken: u32,
}

impl World {
    async fn start(authserv: Option<&str>) -> World {
        let imap = Dovecot::start();
        let smtp = SmtpSink::start(&[]);
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path(), &imap, smtp.port, authserv);
        let store = support::open_store(&config).await;
        World {
            imap,
            smtp,
            store,
            config,
            _tmp: tmp,
            taken: 0,
        }
    }

    /// Append mails to INBOX and run one intake and outbox pass.
    async fn deliver(&mut self, mails: &[String]) {
        for m in mails {
            self.imap
                .append(
                    "INBOX",
                    m.replace("\r\n", "\n").replace('\n', "\r\n").as_bytes(),
                )
                .await;
        }
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        run_with(
            self.config.clone(),
            self.store.clone(),
            clock,
            true,
            std::future::pending::<()>(),
        )
        .await
        .unwrap();
        self.taken += mails.len() as u32;
        self.imap
            .wait_for_count("Processed", self.taken, WAIT)
            .await;
        assert_eq!(self.imap.count("INBOX").await, 0);
    }

    async fn case(&self, reference: &str) -> CaseDetail {
        self.store.case(reference).await.unwrap().unwrap()
    }

    fn sent_to(&self, rcpt: &str) -> Vec<Received> {
        self.smtp
            .messages()
            .into_iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r == rcpt))
            .collect()
    }
}

/// The partners' "new complaint" notice (issue 11), sent for every case opened (for
/// several that came in together, one: "N nieuwe klachten voor u").
fn is_new_complaint_notice(m: &Received) -> bool {
    let subject = klachtpost::parse::parse(&m.data).subject;
    subject.contains("Nieuwe klacht") || subject.contains("nieuwe klachten")
}

fn complaint(from: &str, id: &str, subject: &str, extra: &str) -> String {
    format!(
        "From: {from}\nTo: klachten@firma.nl\n{extra}Subject: {subject}\nDate: Thu, 19 Nov 2026 10:00:00 +0100\nMessage-ID: <{id}>\nContent-Type: text/plain; charset=utf-8\n\nDe training begon een uur te laat. Ik wil een reactie.\n"
    )
}

fn fixture(name: &str) -> String {
    String::from_utf8(
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/mail")
                .join(name),
        )
        .unwrap(),
    )
    .unwrap()
}

/// Open one case for Marieke; its reference and our acknowledgement's Message-ID, as sent.
async fn open_case(w: &mut World, extra: &str) -> (String, String) {
    w.deliver(&[complaint(
        "Marieke Jansen <marieke@client.example>",
        "c1@client.example",
        "Klacht over de training",
        extra,
    )])
    .await;
    // The acknowledgement, and the partner's new-complaint notice.
    w.smtp.wait_for(2, WAIT).await;
    let sent = w.sent_to("marieke@client.example");
    assert_eq!(sent.len(), 1);
    let ack = klachtpost::parse::parse(&sent[0].data);
    let reference = w.store.list_cases().await.unwrap()[0].reference.clone();
    (reference, ack.message_id.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaints_with_auto_reply_words_over_imap_are_cases_and_acknowledged() {
    let mut w = World::start(None).await;
    let names = [
        "words-adviseur-afwezig.eml",
        "words-out-of-office-training.eml",
        "words-automatisch-antwoord-ontbrak.eml",
        "words-afwezig-prefix.eml",
        "words-mail-delivery-failed.eml",
    ];
    w.deliver(&names.map(fixture)).await;
    assert_eq!(w.store.list_cases().await.unwrap().len(), names.len());
    // Each acknowledged, and the partner told of each (not counted here: the cases that
    // came in together are told in one mail).
    let deadline = std::time::Instant::now() + WAIT;
    let mut rcpts: Vec<String> = loop {
        let rcpts: Vec<String> = w
            .smtp
            .messages()
            .iter()
            .flat_map(|m| m.rcpt_to.clone())
            .filter(|r| r != PARTNER)
            .collect();
        if rcpts.len() >= names.len() || std::time::Instant::now() > deadline {
            break rcpts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    rcpts.sort();
    assert_eq!(
        rcpts,
        [
            "anja.vos@example.nl",
            "els.smit@example.nl",
            "karel@dewit.example",
            "marieke.jansen@example.nl",
            "tom.baker@example.org",
        ]
    );
    assert!(w.store.unfiled(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_join_a_case_and_automatic_mail_attaches_only_by_our_message_id() {
    let mut w = World::start(None).await;
    let (reference, ack_id) = open_case(&mut w, "").await;

    // 1. The stranger's auto-reply quoting the reference in its subject: not attached.
    w.deliver(&[format!(
        "From: Iemand <iemand@elders.example>\nTo: klachten@firma.nl\nSubject: Automatisch antwoord: [{reference}] Ontvangstbevestiging\nMessage-ID: <s1@elders.example>\nAuto-Submitted: auto-replied\n\nIk ben afwezig tot en met maandag.\n"
    )])
    .await;
    // 2. The stranger's ordinary mail with the same tag: a triage item, not a reply.
    w.deliver(&[format!(
        "From: Iemand <iemand@elders.example>\nTo: klachten@firma.nl\nSubject: Re: [{reference}] Ontvangstbevestiging\nMessage-ID: <s2@elders.example>\n\nWat is de stand van zaken? Stuur mij het dossier.\n"
    )])
    .await;
    // 3. A forged bounce naming the case in its subject: neither attached nor flagged.
    w.deliver(&[format!(
        "From: Mail Delivery System <MAILER-DAEMON@elders.example>\nTo: klachten@firma.nl\nSubject: Undeliverable: [{reference}] Ontvangstbevestiging\nMessage-ID: <s3@elders.example>\n\n550 5.1.1 User unknown\n"
    )])
    .await;

    let case = w.case(&reference).await;
    assert!(
        case.messages.iter().all(
            |m| m.from_address.as_deref() != Some("iemand@elders.example")
                && !m.kind.contains("bounce")
        ),
        "nothing of the stranger is on the case"
    );
    assert!(case.case.flags.is_empty(), "{:?}", case.case.flags);
    assert!(case.events.iter().any(|e| e.event == "message.triage"));
    // The partner is told about the triage item, the stranger gets nothing.
    // (The acknowledgement, the new-complaint notice, the triage notice.)
    w.smtp.wait_for(3, WAIT).await;
    let told: Vec<_> = w
        .sent_to(PARTNER)
        .into_iter()
        .filter(|m| !is_new_complaint_notice(m))
        .collect();
    assert_eq!(told.len(), 1, "one triage notice");
    let notice = klachtpost::parse::parse(&told[0].data);
    assert!(
        notice.subject.contains("ter beoordeling"),
        "{}",
        notice.subject
    );
    assert!(w.sent_to("iemand@elders.example").is_empty());
    let unfiled = w.store.unfiled(None).await.unwrap();
    let kinds: Vec<&str> = unfiled.iter().map(|u| u.kind.as_str()).collect();
    assert_eq!(kinds, ["bounce", "triage", "automatic"]);
    assert!(unfiled.iter().all(|u| u.case.is_none()));
    assert!(
        unfiled[2].reason.contains("not attached"),
        "{}",
        unfiled[2].reason
    );

    // An auto-reply whose References point at our acknowledgement: attached, and its
    // sender still no party.
    w.deliver(&[format!(
        "From: Iemand <iemand@elders.example>\nTo: klachten@firma.nl\nSubject: Out of Office\nMessage-ID: <s4@elders.example>\nReferences: <c1@client.example> <{ack_id}>\nAuto-Submitted: auto-replied\n\nAway.\n"
    )])
    .await;
    let case = w.case(&reference).await;
    assert!(case.messages.iter().any(
        |m| m.kind == "automatic" && m.from_address.as_deref() == Some("iemand@elders.example")
    ));
    w.deliver(&[format!(
        "From: Iemand <iemand@elders.example>\nTo: klachten@firma.nl\nSubject: Re: [{reference}] x\nMessage-ID: <s5@elders.example>\n\nEn nu?\n"
    )])
    .await;
    let d = w.store.unfiled(None).await.unwrap();
    assert_eq!(d[0].kind, "triage", "still no party");

    // A bounce returning our acknowledgement (its References): attached and flagged.
    w.deliver(&[format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.client.example>\nTo: klachten@firma.nl\nSubject: Undeliverable: [{reference}] Ontvangstbevestiging\nMessage-ID: <b1@mx.client.example>\nIn-Reply-To: <{ack_id}>\nReferences: <{ack_id}>\n\nYour message could not be delivered.\n550 5.1.1 User unknown\n"
    )])
    .await;
    let case = w.case(&reference).await;
    assert!(case.messages.iter().any(|m| m.kind == "bounce"));
    assert!(
        case.case
            .flags
            .iter()
            .any(|f| f.contains("acknowledgement bounced")),
        "{:?}",
        case.case.flags
    );
    assert_eq!(w.store.list_cases().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_join_by_the_reference_in_the_text_and_by_cc_and_a_closed_case_keeps_its_mail() {
    let mut w = World::start(None).await;
    let (reference, _) = open_case(&mut w, "Cc: Mr. Advocaat <advocaat@kantoor.example>\n").await;

    // The complainant's new mail naming the reference only in its text joins the case.
    w.deliver(&[format!(
        "From: Marieke Jansen <marieke@client.example>\nTo: klachten@firma.nl\nSubject: Nog een vraag\nMessage-ID: <c2@client.example>\n\nOver mijn klacht {reference}: wanneer hoor ik iets?\n"
    )])
    .await;
    // The Cc'd lawyer's reply joins it too.
    w.deliver(&[format!(
        "From: Mr. Advocaat <advocaat@kantoor.example>\nTo: klachten@firma.nl\nSubject: Re: [{reference}] Klacht over de training\nMessage-ID: <l1@kantoor.example>\n\nNamens cliënte: graag een reactie.\n"
    )])
    .await;
    assert_eq!(
        w.store.list_cases().await.unwrap().len(),
        1,
        "no second case"
    );
    let case = w.case(&reference).await;
    let replies: Vec<&str> = case
        .messages
        .iter()
        .filter(|m| m.kind == "reply")
        .filter_map(|m| m.from_address.as_deref())
        .collect();
    assert_eq!(
        replies,
        ["marieke@client.example", "advocaat@kantoor.example"]
    );
    assert!(w.store.unfiled(None).await.unwrap().is_empty());
    assert_eq!(
        w.smtp.messages().len(),
        2,
        "replies are not acknowledged (the acknowledgement and the partner's notice)"
    );

    // A reply to the closed case: kept on it, the case stays closed, the partner is told.
    let mut tx = w.store.begin().await.unwrap();
    klachtpost::case::close(
        &mut tx,
        &reference,
        klachtpost::case::Closing::Handled(klachtpost::case::Satisfied::Yes),
        klachtpost::case::Actor::new("Anna Partner", SystemClock.now()),
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    w.deliver(&[format!(
        "From: Marieke Jansen <marieke@client.example>\nTo: klachten@firma.nl\nSubject: Re: [{reference}] Klacht over de training\nMessage-ID: <c3@client.example>\n\nToch nog iets: de map is nooit gekomen.\n"
    )])
    .await;
    let case = w.case(&reference).await;
    assert_eq!(case.case.status, "closed");
    assert_eq!(
        case.messages.iter().filter(|m| m.kind == "reply").count(),
        3
    );
    w.smtp.wait_for(3, WAIT).await;
    let told: Vec<_> = w
        .sent_to(PARTNER)
        .into_iter()
        .filter(|m| !is_new_complaint_notice(m))
        .collect();
    assert_eq!(told.len(), 1);
    let notice = klachtpost::parse::parse(&told[0].data);
    assert!(
        notice.subject.contains("gesloten zaak"),
        "{}",
        notice.subject
    );
    assert!(notice.subject.contains(&reference));
}

const AUTH_PASS: &str = "Authentication-Results: mx.firma.nl; spf=pass smtp.mailfrom=firma.nl;\n dkim=pass header.d=firma.nl header.s=sel; dmarc=pass (p=reject dis=none) header.from=firma.nl\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_staff_from_is_an_outside_mail_and_the_partner_is_told() {
    let mut w = World::start(Some("mx.firma.nl")).await;
    let (reference, _) = open_case(&mut w, "").await;
    let forward = fixture("forward-outlook-nl.eml").replace("example-firm.nl", "firma.nl");
    let answer = format!(
        "From: Anna Partner <{PARTNER}>\nTo: Marieke Jansen <marieke@client.example>\nCc: klachten@firma.nl\nSubject: RE: [{reference}] Klacht over de training\nMessage-ID: <a1@firma.nl>\nIn-Reply-To: <c1@client.example>\n\nBeste mevrouw Jansen, wij bellen u morgen.\n"
    );

    // Without Authentication-Results (or with another server's): no forward, no answer.
    // (Another mail, with its own Message-ID: the same mail again would be a duplicate,
    // whatever trace fields were added on the way.)
    let other_server = format!(
        "Authentication-Results: mx.elders.example; dmarc=pass header.from=firma.nl\n{}",
        forward.replace("Message-ID: <", "Message-ID: <elsewhere-")
    );
    w.deliver(&[forward.clone(), answer.clone(), other_server])
        .await;
    assert_eq!(
        w.store.list_cases().await.unwrap().len(),
        1,
        "no case from a forged forward"
    );
    let case = w.case(&reference).await;
    assert!(
        case.case.response_met_at.is_none(),
        "a forged answer meets no deadline"
    );
    assert!(!case.messages.iter().any(|m| m.kind == "reply"));
    let unfiled = w.store.unfiled(None).await.unwrap();
    assert_eq!(unfiled.len(), 3);
    assert!(
        unfiled
            .iter()
            .all(|u| u.kind == "triage"
                && u.flags.iter().any(|f| f.contains("did not authenticate")))
    );
    w.smtp.wait_for(5, WAIT).await;
    assert_eq!(
        w.sent_to(PARTNER)
            .iter()
            .filter(|m| !is_new_complaint_notice(m))
            .count(),
        3,
        "the partner is told of each"
    );
    assert!(w.sent_to("piet@firma.nl").is_empty());

    // With the firm's server's dmarc=pass on top: a forward (case, acknowledgement to the
    // client, confirmation to the staff member) and an answer that meets the deadline.
    let forward2 = forward.replace("Message-ID: <", "Message-ID: <signed-");
    let answer2 = answer.replace("<a1@firma.nl>", "<a2@firma.nl>");
    w.deliver(&[
        format!("{AUTH_PASS}{forward2}"),
        format!("{AUTH_PASS}{answer2}"),
    ])
    .await;
    assert_eq!(w.store.list_cases().await.unwrap().len(), 2);
    let case = w.case(&reference).await;
    assert!(case.case.response_met_at.is_some());
    assert!(
        case.messages
            .iter()
            .any(|m| m.kind == "reply" && m.direction == "outbound")
    );
    w.smtp.wait_for(8, WAIT).await;
    assert_eq!(
        w.sent_to("piet@firma.nl").len(),
        1,
        "the staff confirmation"
    );
}
