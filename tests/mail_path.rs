//! The mail path against real servers started by the test: a private Dovecot (IMAP over
//! implicit TLS, STARTTLS or plain) and Postfix's smtp-sink. A complaint is APPENDed to the
//! mailbox; klachtpost must open a case, keep the original byte for byte, move the mail to
//! the processed folder, and send exactly one acknowledgement with the right headers.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use klachtpost::clock::{Clock, ManualClock, SystemClock};
use klachtpost::config::Config;
use klachtpost::daemon::run_with;
use klachtpost::outbox;
use klachtpost::partners::scheduler;
use klachtpost::send::Sender;
use support::{Dovecot, DovecotOptions, Postfix, SmtpSink, TestConfig};

const WAIT: Duration = Duration::from_secs(20);

fn imap_config(
    dir: &Path,
    imap: &Dovecot,
    security: &str,
    smtp_port: u16,
    max_attempts: u32,
) -> Config {
    let port = if security == "tls" {
        imap.imaps_port
    } else {
        imap.imap_port
    };
    TestConfig::new(dir)
        .mailbox(&format!(
            r#"kind = "imap"
host = "localhost"
port = {port}
security = "{security}"
username = "{user}"
password_env = "KP_TEST_IMAP_PASSWORD"
ca_file = "{ca}"
poll_interval_secs = 1"#,
            user = imap.user,
            ca = imap.ca_pem.display(),
        ))
        .outgoing(&format!(
            r#"kind = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "klachten@firma.nl"
max_attempts = {max_attempts}"#
        ))
        .templates(&["acknowledgement"])
        .section("digest", "schedule = \"never\"")
        .env("KP_TEST_IMAP_PASSWORD", &imap.password)
        .build()
}

fn complaint(id: &str) -> Vec<u8> {
    format!(
        "From: \"Marieke Jansen\" <marieke@client.example>\r\nTo: klachten@firma.nl\r\nSubject: =?utf-8?q?Klacht_over_het_advies_=E2=80=94_project_X?=\r\nDate: Thu, 19 Nov 2026 16:55:00 +0100\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHet advies kwam te laat en klopte niet.\r\nGroet, Marieke\r\n"
    )
    .into_bytes()
}

async fn never() {
    std::future::pending::<()>().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_over_imap_tls_is_a_case_and_acknowledged_over_smtp() {
    let imap = Dovecot::start();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = imap_config(tmp.path(), &imap, "tls", smtp.port, 12);
    let raw = complaint("tls-1@client.example");
    imap.append("INBOX", &raw).await;

    let store = support::open_store(&config).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    run_with(config.clone(), store.clone(), clock.clone(), true, never())
        .await
        .unwrap();

    // The case, with the original byte for byte.
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 1);
    let case = &cases[0];
    assert!(case.reference.starts_with("KL-20"), "{}", case.reference);
    assert_eq!(
        case.complainant_address.as_deref(),
        Some("marieke@client.example")
    );
    assert_eq!(case.subject, "Klacht over het advies — project X");
    let detail = store.case(&case.reference).await.unwrap().unwrap();
    let original = detail
        .messages
        .iter()
        .find(|m| m.kind == "complaint")
        .unwrap();
    assert_eq!(store.raw_message(original.id).await.unwrap().unwrap(), raw);

    // Moved to the processed folder (created by klachtpost), gone from INBOX.
    assert_eq!(imap.count("INBOX").await, 0);
    assert_eq!(imap.fetch_all("Processed").await, vec![raw.clone()]);

    // Exactly one acknowledgement reached the SMTP server, and the partner's notice.
    let sent = smtp.wait_for(2, WAIT).await;
    assert_eq!(sent.len(), 2);
    let to_client: Vec<_> = sent
        .iter()
        .filter(|m| m.rcpt_to == vec!["marieke@client.example"])
        .collect();
    assert_eq!(to_client.len(), 1);
    assert_eq!(to_client[0].mail_from, "klachten@firma.nl");
    let ack = klachtpost::parse::parse(&to_client[0].data);
    assert_eq!(
        ack.subject,
        format!(
            "[{}] Ontvangstbevestiging: Klacht over het advies — project X",
            case.reference
        )
    );
    assert_eq!(ack.in_reply_to, vec!["tls-1@client.example"]);
    assert_eq!(ack.references, vec!["tls-1@client.example"]);
    assert_eq!(ack.header("Auto-Submitted"), Some("auto-replied"));
    assert_eq!(ack.header("X-Auto-Response-Suppress"), Some("All"));
    assert!(ack.message_id.as_deref().unwrap().ends_with("@firma.nl"));
    assert!(ack.text.contains(&case.reference));

    // A second run finds nothing new: no second case, no second acknowledgement.
    run_with(config, store.clone(), clock, true, never())
        .await
        .unwrap();
    assert_eq!(store.list_cases().await.unwrap().len(), 1);
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_daemon_sees_new_mail_over_starttls_and_threads_the_reply() {
    let imap = Dovecot::start();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = imap_config(tmp.path(), &imap, "starttls", smtp.port, 12);
    let store = support::open_store(&config).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run_with(config, store.clone(), clock, false, async move {
        let _ = stop_rx.await;
    }));

    // Mail arriving while the daemon waits (IDLE) is taken in and acknowledged.
    imap.append("INBOX", &complaint("live-1@client.example"))
        .await;
    let sent = smtp.wait_for(2, WAIT).await;
    let ack = sent
        .iter()
        .find(|m| m.rcpt_to == vec!["marieke@client.example"])
        .map(|m| klachtpost::parse::parse(&m.data))
        .expect("the acknowledgement");
    let reference = store.list_cases().await.unwrap()[0].reference.clone();

    // The complainant answers the acknowledgement: threaded, no second acknowledgement.
    let reply = format!(
        "From: Marieke Jansen <marieke@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Re: {}\r\nMessage-ID: <live-2@client.example>\r\nIn-Reply-To: <{}>\r\n\r\nAanvulling: het ging om project X.\r\n",
        ack.subject,
        ack.message_id.as_deref().unwrap()
    );
    imap.append("INBOX", reply.as_bytes()).await;
    imap.wait_for_count("Processed", 2, WAIT).await;
    let detail = store.case(&reference).await.unwrap().unwrap();
    assert_eq!(
        detail.messages.iter().filter(|m| m.kind == "reply").count(),
        1
    );
    assert_eq!(store.list_cases().await.unwrap().len(), 1);

    stop_tx.send(()).unwrap();
    tokio::time::timeout(WAIT, daemon)
        .await
        .expect("daemon stops")
        .unwrap()
        .unwrap();
    assert_eq!(
        smtp.messages().len(),
        2,
        "no acknowledgement for the reply (the other mail is the partner's notice)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_retried_and_a_5xx_is_reported_to_the_partner_never_dropped() {
    let imap = Dovecot::start();
    // 450 on every RCPT TO: temporary.
    let soft = SmtpSink::start(&["-r", "rcpt"]);
    let tmp = tempfile::tempdir().unwrap();
    let config = imap_config(tmp.path(), &imap, "none", soft.port, 3);
    let store = support::open_store(&config).await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 16, 0, 0).unwrap());
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    imap.append("INBOX", &complaint("retry-1@client.example"))
        .await;
    run_with(config.clone(), store.clone(), shared, true, never())
        .await
        .unwrap();

    let sender = Sender::from_config(&config).unwrap();
    // The first attempt (inside run) failed; it is queued again for later.
    // (The acknowledgement and the partner's new-complaint notice.)
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(counts, vec![("queued".to_string(), 2)]);
    // Not due yet: nothing is tried.
    assert_eq!(
        outbox::drain_once(&store, &sender, &clock, &config)
            .await
            .unwrap(),
        outbox::Drained::default()
    );
    // Due after the backoff: the second attempt fails again and is rescheduled.
    clock.advance(chrono::Duration::minutes(2));
    let d = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    assert_eq!(d.retried, 2);
    // The third and last attempt (max_attempts = 3) gives up: failed, flagged, partner told.
    clock.advance(chrono::Duration::minutes(5));
    let d = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    assert_eq!(d.failed, 2);
    let case = &store.list_cases().await.unwrap()[0];
    assert!(
        case.flags.iter().any(|f| f.contains("could not be sent")),
        "{:?}",
        case.flags
    );
    let detail = store.case(&case.reference).await.unwrap().unwrap();
    let ack = detail
        .messages
        .iter()
        .find(|m| m.kind == "acknowledgement")
        .unwrap();
    assert_eq!(ack.delivery.as_deref(), Some("failed"));
    // The partner is told once, by the acknowledgement watchdog, in working hours after
    // the complaint was received (the mailbox's receipt time: the real one).
    assert!(!detail.messages.iter().any(|m| m.kind == "notice"));
    clock.set(klachtpost::store::parse_ts(&detail.case.received_at).unwrap());
    let mut warnings = 0;
    for _ in 0..(5 * 24) {
        warnings += scheduler::step(&store, &config, &clock)
            .await
            .unwrap()
            .ack_warnings;
        clock.advance(chrono::Duration::hours(1));
    }
    assert_eq!(warnings, 1);
    let detail = store.case(&case.reference).await.unwrap().unwrap();
    let warning = detail
        .messages
        .iter()
        .find(|m| m.kind == "ack_warning")
        .expect("the partner is told");
    assert_eq!(warning.delivery.as_deref(), Some("queued"));
    assert!(
        warning.text.contains("kon niet worden verzonden"),
        "{}",
        warning.text
    );
    assert!(soft.messages().is_empty());

    // 5xx: permanent at once, no retry.
    let hard = SmtpSink::start(&["-f", "rcpt"]);
    let tmp2 = tempfile::tempdir().unwrap();
    let config2 = imap_config(tmp2.path(), &imap, "none", hard.port, 12);
    let store2 = support::open_store(&config2).await;
    imap.append("INBOX", &complaint("hard-1@client.example"))
        .await;
    // Back before the mail arrived (the mailbox's receipt time is the real one), so the
    // watchdog has nothing to say yet.
    clock.set(Utc.with_ymd_and_hms(2026, 11, 19, 16, 10, 0).unwrap());
    let shared2: Arc<dyn Clock> = Arc::new(clock.clone());
    run_with(config2, store2.clone(), shared2, true, never())
        .await
        .unwrap();
    // The acknowledgement and the new-complaint notice were refused for good (the same
    // server refuses every recipient); both stay in the outbox as failed. The outbox
    // queues no notice of its own (the watchdog tells the partner, as above).
    let counts = store2.outbox_counts().await.unwrap();
    assert_eq!(counts, vec![("failed".to_string(), 2)]);
    let sql = "SELECT purpose FROM outbox ORDER BY id";
    let purposes: Vec<String> = match store2.pool() {
        klachtpost::store::Pool::Sqlite(p, _) => sqlx::query_scalar(sql).fetch_all(p).await,
        klachtpost::store::Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
    }
    .unwrap();
    assert_eq!(
        purposes,
        ["acknowledgement", "new_complaint"],
        "{purposes:?}"
    );
    assert!(hard.messages().is_empty());
}

/// As the product is checked: klachtpost between a Dovecot and a Postfix on loopback, the
/// acknowledgement looked for in the complainant's own mailbox. SMTP with STARTTLS and
/// AUTH (password from the environment), certificates from the test CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acknowledgement_lands_in_the_complainants_mailbox_through_postfix() {
    let dovecot = Dovecot::start_with(DovecotOptions::for_postfix());
    let postfix = Postfix::start(&dovecot);
    let marieke = dovecot.add_user("marieke");
    let tmp = tempfile::tempdir().unwrap();
    let config = TestConfig::new(tmp.path())
        .mailbox(&format!(
            r#"kind = "imap"
host = "127.0.0.1"
port = {imaps}
security = "tls"
username = "{user}"
password_env = "KP_PW"
ca_file = "{ca}""#,
            imaps = dovecot.imaps_port,
            user = dovecot.user,
            ca = dovecot.ca_pem.display(),
        ))
        .outgoing(&format!(
            r#"kind = "smtp"
host = "127.0.0.1"
port = {smtp}
security = "starttls"
username = "{user}"
password_env = "KP_PW"
ca_file = "{ca}"
from = "klachten@firma.nl""#,
            smtp = postfix.smtp_port,
            user = dovecot.user,
            ca = dovecot.ca_pem.display(),
        ))
        .env("KP_PW", &dovecot.password)
        .build();
    // The complaint is from marieke@client.example; Postfix delivers to user "marieke".
    let raw = complaint("postfix-1@client.example");
    dovecot.append("INBOX", &raw).await;

    let store = support::open_store(&config).await;
    run_with(config, store.clone(), Arc::new(SystemClock), true, never())
        .await
        .unwrap();

    let inbox = dovecot.as_user(&marieke);
    inbox.wait_for_count("INBOX", 1, WAIT).await;
    let got = inbox.fetch_all("INBOX").await;
    assert_eq!(got.len(), 1, "exactly one acknowledgement");
    let ack = klachtpost::parse::parse(&got[0]);
    let reference = store.list_cases().await.unwrap()[0].reference.clone();
    assert!(
        ack.subject
            .starts_with(&format!("[{reference}] Ontvangstbevestiging")),
        "{}",
        ack.subject
    );
    assert_eq!(ack.in_reply_to, vec!["postfix-1@client.example"]);
    assert_eq!(ack.header("Auto-Submitted"), Some("auto-replied"));
    let log = postfix.log();
    assert!(log.contains("status=sent"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_daemon_tells_the_partner_at_once_when_an_acknowledgement_is_refused() {
    let imap = Dovecot::start();
    // 5xx on every RCPT TO: the acknowledgement fails for good at its first try.
    let hard = SmtpSink::start(&["-f", "rcpt"]);
    let tmp = tempfile::tempdir().unwrap();
    let config = imap_config(tmp.path(), &imap, "none", hard.port, 12);
    let store = support::open_store(&config).await;
    // The partner is told in working hours: run at the first working moment from now, so
    // the test means the same at any hour it runs. The mail's receipt time (the real one)
    // is before it, so the watchdog's moment has come once the acknowledgement fails.
    let at = config
        .calendar
        .next_working_moment(SystemClock.now() + chrono::Duration::minutes(1));
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run_with(config, store.clone(), clock, false, async move {
        let _ = stop_rx.await;
    }));

    imap.append("INBOX", &complaint("kick-1@client.example"))
        .await;
    // The partners' job's own timer is 5 minutes; the sender wakes it when the
    // acknowledgement fails, so the "acknowledge by phone or letter" mail is queued at once.
    let deadline = std::time::Instant::now() + WAIT;
    let warnings = loop {
        let warnings = match store.list_cases().await.unwrap().first() {
            Some(case) => store
                .case(&case.reference)
                .await
                .unwrap()
                .unwrap()
                .messages
                .iter()
                .filter(|m| m.kind == "ack_warning")
                .count(),
            None => 0,
        };
        if warnings > 0 || std::time::Instant::now() > deadline {
            break warnings;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        warnings, 1,
        "the partner's acknowledgement warning within {WAIT:?} of the failure"
    );

    stop_tx.send(()).unwrap();
    tokio::time::timeout(WAIT, daemon)
        .await
        .expect("daemon stops")
        .unwrap()
        .unwrap();
}
