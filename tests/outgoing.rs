//! The outgoing side against real servers: flood limits (smtp-sink), an SMTP server that
//! refuses our login (Postfix + Dovecot: an outage, not a verdict on each mail), one
//! recipient refused at RCPT (Postfix: that mail fails, the partner gets one obligation
//! mail from the acknowledgement watchdog, the address is blocked), and a server that
//! refuses the session (smtp-sink).

mod support;

use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use klachtpost::clock::{Clock, ManualClock};
use klachtpost::config::Config;
use klachtpost::intake::Pipeline;
use klachtpost::outbox::{self, Drained};
use klachtpost::partners::scheduler;
use klachtpost::send::{Next, Sender};
use support::{Dovecot, DovecotOptions, Postfix, SmtpSink, TestConfig};

const WAIT: Duration = Duration::from_secs(20);

/// `[outgoing]` for a plain SMTP server on loopback at `port`.
fn plain_smtp(port: u16) -> String {
    format!("kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"")
}

fn config(dir: &Path, outgoing: &str, password: Option<&str>) -> Config {
    let config =
        TestConfig::new(dir).outgoing(&format!("from = \"klachten@firma.nl\"\n{outgoing}"));
    match password {
        Some(password) => config.env("KP_SMTP_PW", password),
        None => config,
    }
    .build()
}

fn complaint(from: &str, n: usize) -> Vec<u8> {
    format!(
        "From: Klager <{from}>\r\nTo: klachten@firma.nl\r\nSubject: Klacht nummer {n}\r\nDate: Thu, 19 Nov 2026 10:00:00 +0100\r\nMessage-ID: <c{n}.{from}>\r\n\r\nDe factuur klopt niet en ik ben het er niet mee eens.\r\n"
    )
    .into_bytes()
}

/// Log lines at info and above, captured for the test's thread.
///
/// One global subscriber routes each event to the buffer of the thread that emitted it (a
/// thread-local default subscriber would race with other tests over tracing's per-callsite
/// interest cache and miss events). The tests run on current-thread runtimes, so all their
/// events come from the test's own thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Logs>> = const { std::cell::RefCell::new(None) };
}

/// Writes into the current thread's [`Logs`], if any.
struct Route;

impl std::io::Write for Route {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CURRENT.with(|c| {
            if let Some(logs) = c.borrow().as_ref() {
                logs.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Capturing;

impl Drop for Capturing {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

impl Logs {
    fn capture() -> (Logs, Capturing) {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(|| Route)
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        });
        let logs = Logs::default();
        CURRENT.with(|c| *c.borrow_mut() = Some(logs.clone()));
        (logs, Capturing)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

#[tokio::test]
async fn fifty_complaints_from_one_address_get_five_acknowledgements_and_one_notice() {
    let (logs, _guard) = Logs::capture();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), &plain_smtp(smtp.port), None);
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap());
    let store = support::open_store(&config).await;
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    let sender = Sender::from_config(&config).unwrap();

    // 50 complaints in ten minutes, the sender draining as the daemon would.
    let mut total = Drained::default();
    for i in 0..50 {
        let raw = complaint("flood@client.example", i);
        let outcome = pipeline
            .take_in(Some(&format!("flood-{i}")), &raw, clock.now())
            .await
            .unwrap();
        assert!(outcome.ack_queued);
        clock.advance(chrono::Duration::seconds(12));
        if i % 10 == 9 {
            let d = outbox::drain_once(&store, &sender, &clock, &config)
                .await
                .unwrap();
            total.sent += d.sent;
            total.held += d.held;
        }
    }
    assert_eq!(
        (total.sent, total.held),
        (56, 45),
        "5 acknowledgements, 1 flood notice and 50 new-complaint notices to the partner \
         (staff, not limited); 45 held"
    );

    let sent = smtp.wait_for(56, WAIT).await;
    assert_eq!(sent.len(), 56);
    let to_complainant: Vec<_> = sent
        .iter()
        .filter(|m| m.rcpt_to == ["flood@client.example"])
        .collect();
    assert_eq!(to_complainant.len(), 5);
    let to_partner: Vec<_> = sent
        .iter()
        .filter(|m| m.rcpt_to == ["anna@firma.nl"])
        .filter(|m| {
            klachtpost::parse::parse(&m.data)
                .subject
                .contains("tegengehouden")
        })
        .collect();
    assert_eq!(to_partner.len(), 1, "the partner is told once");
    assert_eq!(
        sent.iter()
            .filter(|m| m.rcpt_to == ["anna@firma.nl"])
            .count(),
        51,
        "50 new-complaint notices and the one flood notice"
    );
    let notice = klachtpost::parse::parse(&to_partner[0].data);
    assert!(
        notice.subject.contains("tegengehouden"),
        "{}",
        notice.subject
    );
    assert_eq!(notice.header("Auto-Submitted"), Some("auto-generated"));
    for m in &to_complainant {
        let ack = klachtpost::parse::parse(&m.data);
        assert_eq!(ack.header("Auto-Submitted"), Some("auto-replied"));
        assert_eq!(ack.header("X-Auto-Response-Suppress"), Some("All"));
        assert!(ack.message_id.as_deref().unwrap().ends_with("@firma.nl"));
    }
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(
        counts,
        vec![("held".to_string(), 45), ("sent".to_string(), 56)]
    );
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 50, "every complaint is a case");
    let flagged = cases
        .iter()
        .filter(|c| c.flags.iter().any(|f| f.contains("held back")))
        .count();
    assert_eq!(flagged, 45);

    // An hour later the limit per hour allows mail again (the day limit is 20); the
    // partner is not told again.
    clock.advance(chrono::Duration::minutes(61));
    pipeline
        .take_in(
            Some("flood-late"),
            &complaint("flood@client.example", 99),
            clock.now(),
        )
        .await
        .unwrap();
    let d = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    assert_eq!(
        (d.sent, d.held),
        (2, 0),
        "the acknowledgement and the new-complaint notice"
    );
    let sent = smtp.wait_for(58, WAIT).await;
    assert_eq!(sent.len(), 58);
    assert_eq!(
        sent.iter()
            .filter(|m| m.rcpt_to == ["flood@client.example"])
            .count(),
        6
    );
    assert_eq!(
        sent.iter()
            .filter(|m| klachtpost::parse::parse(&m.data)
                .subject
                .contains("tegengehouden"))
            .count(),
        1,
        "the partner is not told about the flood again"
    );

    let log = logs.text();
    assert!(log.contains("outbox.held"), "{log}");
    assert!(
        !log.contains("flood@client.example"),
        "no address in the log: {log}"
    );
}

/// Writes `user:{PLAIN}password` into the Dovecot's passwd-file. Dovecot rereads it when
/// its modification time changes, which it sees in whole seconds: the new file gets a
/// time two seconds after the old one.
fn set_password(dovecot: &Dovecot, user: &str, password: &str) {
    let path = dovecot.dir.join("passwd");
    let old = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!("{user}:{{PLAIN}}{password}\n"));
    let tmp = dovecot.dir.join("passwd.new");
    let mut file = std::fs::File::create(&tmp).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file.set_modified(old + Duration::from_secs(2)).unwrap();
    drop(file);
    std::fs::set_permissions(&tmp, std::fs::metadata(&path).unwrap().permissions()).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

#[tokio::test]
async fn a_refused_login_is_an_outage_mail_stays_queued_and_goes_out_when_it_works() {
    let (logs, _guard) = Logs::capture();
    let dovecot = Dovecot::start_with(DovecotOptions::for_postfix());
    let postfix = Postfix::start(&dovecot);
    let marieke = dovecot.add_user("marieke");
    let tmp = tempfile::tempdir().unwrap();
    let fallback = tmp.path().join("fallback");
    let config = config(
        tmp.path(),
        &format!(
            "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"tls\"\nusername = \"sender\"\npassword_env = \"KP_SMTP_PW\"\nca_file = \"{}\"\nalert_after = \"10 minutes\"\n[outgoing.fallback]\nkind = \"file\"\ndir = \"{}\"",
            postfix.submissions_port,
            dovecot.ca_pem.display(),
            fallback.display()
        ),
        Some("rotated-password"),
    );
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap());
    let store = support::open_store(&config).await;
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    let sender = Sender::from_config(&config).unwrap();
    for i in 0..3 {
        pipeline
            .take_in(
                Some(&format!("auth-{i}")),
                &complaint("marieke@client.example", i),
                clock.now(),
            )
            .await
            .unwrap();
    }

    // The user "sender" does not exist yet: 535 at AUTH.
    let d = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    assert!(d.outage, "{d:?}");
    assert_eq!((d.sent, d.failed, d.retried), (0, 0, 0));
    let outage = sender.outage().expect("an outage is recorded");
    assert!(outage.last_error.contains("535"), "{}", outage.last_error);
    // Not due again before the transport's own backoff.
    assert_eq!(
        outbox::drain_once(&store, &sender, &clock, &config)
            .await
            .unwrap(),
        Drained {
            outage: true,
            ..Drained::default()
        }
    );
    // Still down after alert_after: the partners are told once, through the fallback.
    for _ in 0..4 {
        clock.advance(chrono::Duration::minutes(5));
        let d = outbox::drain_once(&store, &sender, &clock, &config)
            .await
            .unwrap();
        assert!(d.outage);
    }
    let alerts: Vec<_> = std::fs::read_dir(&fallback)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(alerts.len(), 1, "one alert for the one partner: {alerts:?}");
    let alert = klachtpost::parse::parse(&std::fs::read(&alerts[0]).unwrap());
    assert_eq!(alert.subject, "klachtpost kan geen mail verzenden");
    assert!(
        // 3 acknowledgements and the partner's 3 new-complaint notices.
        alert.text.contains("6 bericht(en) staan klaar"),
        "{}",
        alert.text
    );

    // `klachtpost status` shows the outage, and that the partners were told.
    let outgoing_state = |status: klachtpost::health::Status| {
        status
            .channels
            .into_iter()
            .find(|c| c.channel == "outgoing")
            .expect("the outgoing channel is tracked")
            .state
    };
    let state = outgoing_state(klachtpost::health::status(&store).await.unwrap());
    assert_eq!(
        state.failing_since,
        Some(Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap())
    );
    assert!(state.alerted_at.is_some(), "{state:?}");
    assert!(
        state.last_error.as_deref().unwrap_or("").contains("535"),
        "{state:?}"
    );

    // Nothing failed, nothing flagged, attempts untouched; no alert was queued into the
    // outbox that is down (only the three acknowledgements wait).
    assert_eq!(
        store.outbox_counts().await.unwrap(),
        vec![("queued".to_string(), 6)]
    );
    for case in store.list_cases().await.unwrap() {
        assert!(case.flags.is_empty(), "{:?}", case.flags);
    }

    // The password is set on the server: at a next try everything goes out, once. (Dovecot
    // looks at its passwd-file at most once a second, so the first try after the change
    // may still be refused: polled with a deadline.)
    set_password(&dovecot, "sender", "rotated-password");
    let deadline = std::time::Instant::now() + WAIT;
    let d = loop {
        clock.advance(chrono::Duration::minutes(10));
        let d = outbox::drain_once(&store, &sender, &clock, &config)
            .await
            .unwrap();
        if !d.outage || std::time::Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (d.sent, d.failed, d.outage),
        (6, 0, false),
        "{d:?} {:?}\n{}",
        sender.outage(),
        dovecot.log()
    );
    assert!(sender.outage().is_none());
    dovecot
        .as_user(&marieke)
        .wait_for_count("INBOX", 3, WAIT)
        .await;
    postfix.wait_for_log("status=sent", 3, WAIT).await;
    // The outage is over in `klachtpost status` too, and no all-clear went into the outbox.
    assert_eq!(
        store.outbox_counts().await.unwrap(),
        vec![("sent".to_string(), 6)]
    );
    let state = outgoing_state(klachtpost::health::status(&store).await.unwrap());
    assert_eq!(state.failing_since, None, "{state:?}");
    assert_eq!(state.last_success_at, Some(clock.now()), "{state:?}");

    let log = logs.text();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("ERROR") && l.contains("outbox.outage"))
            .count(),
        1,
        "the outage is logged at error once: {log}"
    );
    assert_eq!(log.matches("outbox.recovered").count(), 1, "{log}");
    assert!(!log.contains("marieke@"), "no address in the log: {log}");
}

#[tokio::test]
async fn a_recipient_refused_at_rcpt_fails_only_that_mail_and_blocks_the_address() {
    let dovecot = Dovecot::start_with(DovecotOptions::for_postfix());
    let postfix = Postfix::start_with(
        &dovecot,
        "smtpd_recipient_restrictions = check_recipient_access inline:{nobody@client.example=REJECT}",
    );
    let marieke = dovecot.add_user("marieke");
    let anna = dovecot.add_user("anna");
    let tmp = tempfile::tempdir().unwrap();
    let config = config(
        tmp.path(),
        &format!(
            "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"starttls\"\nca_file = \"{}\"",
            postfix.smtp_port,
            dovecot.ca_pem.display(),
        ),
        None,
    );
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap());
    let store = support::open_store(&config).await;
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    let sender = Sender::from_config(&config).unwrap();
    let refused = pipeline
        .take_in(
            Some("r-1"),
            &complaint("nobody@client.example", 1),
            clock.now(),
        )
        .await
        .unwrap()
        .case
        .unwrap();
    pipeline
        .take_in(
            Some("r-2"),
            &complaint("marieke@client.example", 2),
            clock.now(),
        )
        .await
        .unwrap();

    let d = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    // The refused acknowledgement failed; the other one and the partner's two
    // new-complaint notices went out. The outbox itself tells the partner nothing more.
    assert_eq!((d.failed, d.sent, d.outage), (1, 3, false), "{d:?}");
    assert!(sender.outage().is_none());
    dovecot
        .as_user(&marieke)
        .wait_for_count("INBOX", 1, WAIT)
        .await;
    // The acknowledgement watchdog does, once: the one obligation mail for it.
    let step = scheduler::step(&store, &config, &clock).await.unwrap();
    assert_eq!(step.ack_warnings, 1, "{step:?}");
    let d = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    assert_eq!((d.failed, d.sent), (0, 1), "{d:?}");
    assert_eq!(
        scheduler::step(&store, &config, &clock).await.unwrap(),
        scheduler::Report::default(),
        "told once"
    );
    let anna_mail = || async {
        dovecot
            .as_user(&anna)
            .fetch_all("INBOX")
            .await
            .iter()
            .map(|m| klachtpost::parse::parse(m))
            .collect::<Vec<_>>()
    };
    dovecot
        .as_user(&anna)
        .wait_for_count("INBOX", 3, WAIT)
        .await;
    let about_refused: Vec<String> = anna_mail()
        .await
        .into_iter()
        .filter(|m| m.subject.starts_with(&format!("[{refused}]")))
        .map(|m| m.subject)
        .collect();
    assert_eq!(
        about_refused.len(),
        2,
        "the new-complaint notice and one obligation mail: {about_refused:?}"
    );
    let notice = anna_mail()
        .await
        .into_iter()
        .find(|m| m.subject.contains("per telefoon of brief"))
        .expect("the watchdog's notice");
    assert!(
        notice.subject.starts_with(&format!(
            "[{refused}] Bevestig de ontvangst per telefoon of brief vóór"
        )),
        "{}",
        notice.subject
    );
    assert!(
        notice
            .text
            .contains("de ontvangstbevestiging kon niet worden verzonden"),
        "{}",
        notice.text
    );
    // The server's answer is there, without the address it echoed.
    let answer = notice
        .text
        .lines()
        .find(|l| l.starts_with("Melding van de mailserver:"))
        .expect("the server's answer");
    assert!(
        answer.contains("554") && answer.contains("<redacted>"),
        "{answer}"
    );
    assert!(!answer.contains("nobody@"), "{answer}");
    let case = store.case(&refused).await.unwrap().unwrap();
    assert!(
        case.case
            .flags
            .iter()
            .any(|f| f.contains("could not be sent") && f.contains("554")),
        "{:?}",
        case.case.flags
    );

    // The address bounced hard: the next acknowledgement to it is held, and the partner
    // is told once, by the watchdog again.
    clock.advance(chrono::Duration::hours(2));
    let again = pipeline
        .take_in(
            Some("r-3"),
            &complaint("nobody@client.example", 3),
            clock.now(),
        )
        .await
        .unwrap()
        .case
        .unwrap();
    let d = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    // Only the new-complaint notice goes to the partner from here.
    assert_eq!((d.held, d.sent, d.failed), (1, 1, 0), "{d:?}");
    let case = store.case(&again).await.unwrap().unwrap();
    assert!(
        case.case.flags.iter().any(|f| f.contains("bounced")),
        "{:?}",
        case.case.flags
    );
    assert_eq!(
        scheduler::step(&store, &config, &clock)
            .await
            .unwrap()
            .ack_warnings,
        1
    );
    outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    dovecot
        .as_user(&anna)
        .wait_for_count("INBOX", 5, WAIT)
        .await;
    let about_again: Vec<String> = anna_mail()
        .await
        .into_iter()
        .filter(|m| m.subject.starts_with(&format!("[{again}]")))
        .map(|m| m.subject)
        .collect();
    assert_eq!(about_again.len(), 2, "{about_again:?}");
    assert!(
        about_again
            .iter()
            .any(|s| s.contains("per telefoon of brief")),
        "{about_again:?}"
    );
    assert_eq!(anna_mail().await.len(), 5, "nothing else to the partner");
}

#[tokio::test]
async fn a_server_that_refuses_the_session_is_an_outage_not_a_failed_mail() {
    for faults in [&["-Q", "connect"][..], &["-f", "helo,ehlo"][..]] {
        let smtp = SmtpSink::start(faults);
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path(), &plain_smtp(smtp.port), None);
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap());
        let store = support::open_store(&config).await;
        let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
        let sender = Sender::from_config(&config).unwrap();
        pipeline
            .take_in(
                Some("s-1"),
                &complaint("jan@client.example", 1),
                clock.now(),
            )
            .await
            .unwrap();
        let d = outbox::drain_once(&store, &sender, &clock, &config)
            .await
            .unwrap();
        assert!(d.outage, "{faults:?}: {d:?}");
        assert_eq!(
            store.outbox_counts().await.unwrap(),
            vec![("queued".to_string(), 2)],
            "{faults:?}: the acknowledgement and the partner's new-complaint notice"
        );
        assert!(store.list_cases().await.unwrap()[0].flags.is_empty());
    }

    // Nothing listening at all.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), &plain_smtp(port), None);
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap());
    let store = support::open_store(&config).await;
    let sender = Sender::from_config(&config).unwrap();
    Pipeline::new(&config, &store, &clock)
        .unwrap()
        .take_in(
            Some("n-1"),
            &complaint("jan@client.example", 1),
            clock.now(),
        )
        .await
        .unwrap();
    let d = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    assert!(d.outage);
    assert!(
        sender
            .outage()
            .unwrap()
            .last_error
            .contains("cannot connect")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_each_sent_mail_lands_in_the_sent_folder_and_is_never_taken_in() {
    let imap = Dovecot::start();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = TestConfig::new(tmp.path())
        .mailbox(&format!(
            r#"kind = "imap"
host = "127.0.0.1"
port = {port}
security = "tls"
username = "{user}"
password_env = "KP_IMAP_PW"
ca_file = "{ca}"
sent_folder = "Sent""#,
            port = imap.imaps_port,
            user = imap.user,
            ca = imap.ca_pem.display(),
        ))
        .outgoing(&plain_smtp(smtp.port))
        .env("KP_IMAP_PW", &imap.password)
        .build();
    imap.append("INBOX", &complaint("marieke@client.example", 1))
        .await;
    let store = support::open_store(&config).await;
    let clock: Arc<dyn Clock> = Arc::new(klachtpost::clock::SystemClock);
    let never = || std::future::pending::<()>();
    klachtpost::daemon::run_with(config.clone(), store.clone(), clock.clone(), true, never())
        .await
        .unwrap();

    // The acknowledgement and the partner's new-complaint notice: a copy of each.
    let sent = smtp.wait_for(2, WAIT).await;
    imap.wait_for_count("Sent", 2, WAIT).await;
    let copies = imap.fetch_all("Sent").await;
    assert_eq!(copies.len(), 2);
    let ack = sent
        .iter()
        .find(|m| m.rcpt_to == ["marieke@client.example"])
        .map(|m| klachtpost::parse::parse(&m.data))
        .expect("the acknowledgement was sent");
    let copy = copies
        .iter()
        .map(|c| klachtpost::parse::parse(c))
        .find(|c| c.message_id == ack.message_id)
        .expect("a copy of the acknowledgement is in Sent");
    assert!(
        copy.subject.contains("Ontvangstbevestiging"),
        "{}",
        copy.subject
    );

    // Another pass takes nothing in from the sent folder: still one case, one message in.
    klachtpost::daemon::run_with(config, store.clone(), clock, true, never())
        .await
        .unwrap();
    assert_eq!(store.list_cases().await.unwrap().len(), 1);
    assert_eq!(imap.count("Sent").await, 2);
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test]
async fn a_delivery_failure_report_blocks_automatic_mail_to_that_address() {
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), &plain_smtp(smtp.port), None);
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap());
    let store = support::open_store(&config).await;
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    let sender = Sender::from_config(&config).unwrap();
    let first = pipeline
        .take_in(
            Some("b-1"),
            &complaint("karin@klant.example", 1),
            clock.now(),
        )
        .await
        .unwrap()
        .case
        .unwrap();
    assert_eq!(
        outbox::drain_once(&store, &sender, &clock, &config)
            .await
            .unwrap()
            .sent,
        2,
        "the acknowledgement and the partner's new-complaint notice"
    );
    let ack_id = store
        .case(&first)
        .await
        .unwrap()
        .unwrap()
        .messages
        .into_iter()
        .find(|m| m.kind == "acknowledgement")
        .and_then(|m| m.message_id)
        .unwrap();

    // The complainant's server bounces the acknowledgement later, by a report.
    clock.advance(chrono::Duration::minutes(5));
    let report = format!(
        "Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.firma.nl>\r\nTo: klachten@firma.nl\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@mx.firma.nl>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"DSN\"\r\n\r\n--DSN\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n--DSN\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.firma.nl\r\n\r\nFinal-Recipient: rfc822; karin@klant.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--DSN\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Adviesbureau Test <klachten@firma.nl>\r\nTo: karin@klant.example\r\nSubject: [{first}] Ontvangstbevestiging\r\nMessage-ID: <{ack_id}>\r\n\r\n--DSN--\r\n"
    );
    let outcome = pipeline
        .take_in(Some("b-dsn"), report.as_bytes(), clock.now())
        .await
        .unwrap();
    assert_eq!(outcome.decision.unwrap().kind.as_str(), "bounce");
    assert!(!outcome.ack_queued);

    // A new complaint from the same address: its acknowledgement is held.
    clock.advance(chrono::Duration::hours(2));
    let second = pipeline
        .take_in(
            Some("b-2"),
            &complaint("karin@klant.example", 2),
            clock.now(),
        )
        .await
        .unwrap()
        .case
        .unwrap();
    let d = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    // Sent: the new-complaint notice to the partner; the outbox adds no notice of its own.
    assert_eq!((d.held, d.sent), (1, 1), "{d:?}");
    // The acknowledgement watchdog tells the partner once per acknowledgement that did
    // not reach the complainant (the bounced one and the held one), and never again.
    let step = scheduler::step(&store, &config, &clock).await.unwrap();
    assert_eq!(step.ack_warnings, 2, "{step:?}");
    let d = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    assert_eq!(d.sent, 2, "{d:?}");
    clock.advance(chrono::Duration::hours(1));
    assert_eq!(
        scheduler::step(&store, &config, &clock).await.unwrap(),
        scheduler::Report::default()
    );
    let sent = smtp.wait_for(5, WAIT).await;
    assert_eq!(sent.len(), 5);
    assert!(
        sent[2..].iter().all(|m| m.rcpt_to == ["anna@firma.nl"]),
        "nothing more to the complainant"
    );
    let to_partner: Vec<String> = sent
        .iter()
        .filter(|m| m.rcpt_to == ["anna@firma.nl"])
        .map(|m| klachtpost::parse::parse(&m.data).subject)
        .collect();
    for case in [&first, &second] {
        let about: Vec<&String> = to_partner
            .iter()
            .filter(|s| s.starts_with(&format!("[{case}]")))
            .collect();
        assert_eq!(about.len(), 2, "notice and one obligation mail: {about:?}");
        assert!(
            about[1].starts_with(&format!(
                "[{case}] Bevestig de ontvangst per telefoon of brief"
            )),
            "{about:?}"
        );
    }
    let warning = sent
        .iter()
        .map(|m| klachtpost::parse::parse(&m.data))
        .find(|m| m.subject.starts_with(&format!("[{second}] Bevestig")))
        .unwrap();
    assert!(
        warning.text.contains("onbestelbaar teruggekomen"),
        "{}",
        warning.text
    );
    // After bounce_block (60 days) the address gets mail again.
    clock.advance(chrono::Duration::days(61));
    pipeline
        .take_in(
            Some("b-3"),
            &complaint("karin@klant.example", 3),
            clock.now(),
        )
        .await
        .unwrap();
    let d = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();
    assert_eq!((d.held, d.sent), (0, 2), "{d:?}");
    let sent = smtp.wait_for(7, WAIT).await;
    assert_eq!(
        sent[5..]
            .iter()
            .filter(|m| m.rcpt_to == ["karin@klant.example"])
            .count(),
        1,
        "the acknowledgement goes out again"
    );
}

/// A short plain message for the transport tests below.
fn plain(n: usize) -> Vec<u8> {
    format!(
        "From: klachten@firma.nl\r\nTo: marieke@client.example\r\nSubject: Bericht {n}\r\nMessage-ID: <t{n}@firma.nl>\r\n\r\nRegel een.\r\n.punt aan het begin\r\n"
    )
    .into_bytes()
}

/// The subjects of `mails`, sorted.
fn sorted_subjects(mails: &[Vec<u8>]) -> Vec<String> {
    let mut subjects: Vec<String> = mails
        .iter()
        .map(|m| klachtpost::parse::parse(m).subject)
        .collect();
    subjects.sort();
    subjects
}

/// The kind of a send's outcome, to compare in tests.
fn outcome(result: &Result<(), klachtpost::send::SendError>) -> &'static str {
    use klachtpost::send::SendError;
    match result {
        Ok(()) => "sent",
        Err(SendError::Outage(_)) => "outage",
        Err(SendError::Transient(_)) => "transient",
        Err(SendError::RecipientRefused(_)) => "recipient refused",
        Err(SendError::Permanent(_)) => "permanent",
    }
}

/// smtp-sink offers PIPELINING unless told not to (`-p`): mail goes out alike both ways, one
/// session after another message, with every recipient and the dot-stuffed body intact;
/// pipelined, each next mail's commands go out behind the message before
/// (`Sender::send_before`).
#[tokio::test]
async fn mail_goes_out_alike_with_and_without_pipelining() {
    for faults in [&[][..], &["-p"][..]] {
        let smtp = SmtpSink::start(faults);
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path(), &plain_smtp(smtp.port), None);
        let sender = Sender::from_config(&config).unwrap();
        let both = [
            "marieke@client.example".to_string(),
            "anna@firma.nl".to_string(),
        ];
        let raws: Vec<Vec<u8>> = (0..3).map(plain).collect();
        for n in 0..3 {
            let next = raws.get(n + 1).map(|raw| Next {
                from: "klachten@firma.nl",
                recipients: &both[..1 + (n + 1) % 2],
                raw,
            });
            let result = sender
                .send_before("klachten@firma.nl", &both[..1 + n % 2], &raws[n], "t", next)
                .await;
            assert_eq!(outcome(&result), "sent", "{faults:?}: {result:?}");
        }
        sender.close_idle().await;
        let got = smtp.wait_for(3, WAIT).await;
        assert_eq!(got.len(), 3, "{faults:?}");
        for n in 0..3 {
            // In any order: the files' times are too coarse to tell. (lettre ends DATA
            // with CRLF.CRLF after the message's own last CRLF: one empty line more.)
            let m = got
                .iter()
                .find(|m| m.data.starts_with(&plain(n)) && m.data.len() == plain(n).len() + 2)
                .unwrap_or_else(|| panic!("{faults:?}: message {n} intact: {got:?}"));
            assert_eq!(m.mail_from, "klachten@firma.nl", "{faults:?}");
            assert_eq!(m.rcpt_to, both[..1 + n % 2], "{faults:?}");
        }
    }
}

/// Pipelined, the next mail's MAIL FROM, RCPT TO and DATA go out behind the message before
/// it (RFC 2920 allows commands after the end of data; Postfix, which drops a client that
/// sends ahead where it may not, takes them). A refusal among them is that mail's, judged as
/// ever; a session written ahead for another envelope than the next mail's is dropped (the
/// server waits for a message: no QUIT), and the mail goes out in a new session (one with
/// the same envelope takes the commands written ahead). Each accepted mail arrives once.
#[tokio::test]
async fn mail_written_ahead_is_taken_refused_or_dropped_and_arrives_once() {
    let dovecot = Dovecot::start_with(DovecotOptions::for_postfix());
    let marieke = dovecot.add_user("marieke");
    let postfix = Postfix::start_with(&dovecot, &refusing_postfix(true));
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), &plain_smtp(postfix.smtp_port), None);
    let sender = Sender::from_config(&config).unwrap();
    let ok = ["marieke@client.example".to_string()];
    let nobody = ["nobody@client.example".to_string()];
    let raws: Vec<Vec<u8>> = (0..7).map(plain).collect();
    // Mail 6 has another sender: its MAIL FROM differs from mail 5's.
    let from = |n: usize| {
        if n == 6 {
            "klachtpost@firma.nl"
        } else {
            "klachten@firma.nl"
        }
    };
    // (mail, its recipients, the mail said to come next, the outcome): mail 3's recipient
    // is refused; after mail 4 the next is said to be 5, but 6 comes (then 5).
    type Step<'a> = (usize, &'a [String], Option<(usize, &'a [String])>, &'a str);
    let steps: [Step; 6] = [
        (1, &ok, Some((2, &ok)), "sent"),
        (2, &ok, Some((3, &nobody)), "sent"),
        (3, &nobody, Some((4, &ok)), "recipient refused"),
        (4, &ok, Some((5, &ok)), "sent"),
        (6, &ok, None, "sent"),
        (5, &ok, None, "sent"),
    ];
    for (n, to, next, expected) in steps {
        let next = next.map(|(m, to)| Next {
            from: from(m),
            recipients: to,
            raw: &raws[m],
        });
        let result = sender.send_before(from(n), to, &raws[n], "t", next).await;
        assert_eq!(outcome(&result), expected, "mail {n}: {result:?}");
    }
    sender.close_idle().await;
    postfix.wait_for_log("status=sent", 5, WAIT).await;
    let log = postfix.log();
    assert!(!log.contains("improper command pipelining"), "{log}");
    // The session written ahead for mail 5 was dropped when mail 6 came instead.
    assert!(log.contains("lost connection after DATA"), "{log}");
    let inbox = dovecot.as_user(&marieke);
    inbox.wait_for_count("INBOX", 5, WAIT).await;
    assert_eq!(
        sorted_subjects(&inbox.fetch_all("INBOX").await),
        [
            "Bericht 1",
            "Bericht 2",
            "Bericht 4",
            "Bericht 5",
            "Bericht 6"
        ]
    );
}

/// Postfix settings that refuse mail at each step, by sender or recipient address. With
/// `smtpd_forbid_unauth_pipelining` Postfix refuses (554 "SMTP protocol synchronization")
/// a client that sends ahead where RFC 2920 forbids it, e.g. the message before the 354.
fn refusing_postfix(pipelining: bool) -> String {
    format!(
        "smtpd_delay_reject = no
smtpd_sender_restrictions = check_sender_access inline:{{ refused@firma.nl=REJECT, {{ later@firma.nl = 451 4.3.0 try again later }} }}
smtpd_recipient_restrictions = check_recipient_access inline:{{ nobody@client.example=REJECT, {{ busy@client.example = 450 4.2.0 mailbox busy }} }}
smtpd_data_restrictions = check_sender_access inline:{{ nodata@firma.nl=REJECT }}
smtpd_end_of_data_restrictions = check_sender_access inline:{{ noend@firma.nl=REJECT }}
smtpd_forbid_unauth_pipelining = yes
{}",
        if pipelining {
            ""
        } else {
            "smtpd_discard_ehlo_keywords = pipelining"
        }
    )
}

/// Every refusal is judged alike whether the dialogue is pipelined (Postfix offers
/// PIPELINING) or step by step (it does not): sender refused → outage, 4xx → transient,
/// recipient 5xx → that mail fails as refused (the first refused recipient decides), DATA or
/// end of data refused → permanent. Postfix's count of the commands of each session shows
/// which way was taken: pipelined, the commands after a refused MAIL FROM or RCPT TO arrive
/// anyway (and are refused); step by step they are never sent.
#[tokio::test]
async fn each_refusal_is_judged_alike_pipelined_or_step_by_step() {
    let dovecot = Dovecot::start_with(DovecotOptions::for_postfix());
    let marieke = dovecot.add_user("marieke");
    let mut delivered = 0;
    for pipelining in [true, false] {
        let postfix = Postfix::start_with(&dovecot, &refusing_postfix(pipelining));
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path(), &plain_smtp(postfix.smtp_port), None);
        let sender = Sender::from_config(&config).unwrap();
        let ok = "marieke@client.example";
        let cases: [(&str, &[&str], &str); 9] = [
            ("klachten@firma.nl", &[ok], "sent"),
            ("refused@firma.nl", &[ok], "outage"),
            ("later@firma.nl", &[ok], "transient"),
            (
                "klachten@firma.nl",
                &["nobody@client.example"],
                "recipient refused",
            ),
            ("klachten@firma.nl", &["busy@client.example"], "transient"),
            (
                "klachten@firma.nl",
                &[ok, "nobody@client.example"],
                "recipient refused",
            ),
            ("nodata@firma.nl", &[ok], "permanent"),
            ("noend@firma.nl", &[ok], "permanent"),
            ("klachten@firma.nl", &[ok], "sent"),
        ];
        let mut sessions = Vec::new();
        for (n, (from, to, expected)) in cases.iter().enumerate() {
            let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
            let result = sender.send(from, &to, &plain(n), "t").await;
            let case = format!("pipelining {pipelining}, {from} → {to:?}");
            assert_eq!(outcome(&result), *expected, "{case}: {result:?}");
            if let Err(e) = &result {
                assert!(!e.to_string().contains("@"), "{case}: redacted: {e}");
            }
            // One session per case (a failure ends its session; a success is kept open).
            sender.close_idle().await;
            let log = postfix.wait_for_log("disconnect from", n + 1, WAIT).await;
            let line = log
                .lines()
                .filter(|l| l.contains("disconnect from"))
                .nth(n)
                .unwrap()
                .to_string();
            sessions.push((case, line));
        }
        // "… disconnect from unknown[127.0.0.1] ehlo=2 mail=1 … commands=6": the counts.
        let counts = |n: usize| {
            let (_, client) = sessions[n].1.split_once("disconnect from ").unwrap();
            client.split_once(' ').unwrap().1.to_string()
        };
        let log = postfix.log();
        assert!(!log.contains("improper command pipelining"), "{log}");
        if pipelining {
            // MAIL FROM refused: the RCPT TO and DATA came with it (and were refused).
            assert_eq!(
                counts(1),
                "ehlo=2 mail=0/1 rcpt=0/1 data=0/1 quit=1 commands=3/6"
            );
            assert_eq!(
                counts(2),
                "ehlo=2 mail=0/1 rcpt=0/1 data=0/1 quit=1 commands=3/6"
            );
            // The recipient refused: DATA came with it (and was refused: no recipient).
            assert_eq!(
                counts(3),
                "ehlo=2 mail=1 rcpt=0/1 data=0/1 quit=1 commands=4/6"
            );
            assert_eq!(
                counts(4),
                "ehlo=2 mail=1 rcpt=0/1 data=0/1 quit=1 commands=4/6"
            );
            // One of two recipients refused: the server took DATA for the other and waited
            // for the message, which never came; the connection was dropped, no QUIT.
            assert!(
                log.contains("lost connection after DATA"),
                "{}\n{log}",
                sessions[5].1
            );
            assert!(!counts(5).contains("quit"), "{}", sessions[5].1);
        } else {
            assert_eq!(counts(1), "ehlo=2 mail=0/1 quit=1 commands=3/4");
            assert_eq!(counts(2), "ehlo=2 mail=0/1 quit=1 commands=3/4");
            assert_eq!(counts(3), "ehlo=2 mail=1 rcpt=0/1 quit=1 commands=4/5");
            assert_eq!(counts(4), "ehlo=2 mail=1 rcpt=0/1 quit=1 commands=4/5");
            assert_eq!(counts(5), "ehlo=2 mail=1 rcpt=1/2 quit=1 commands=5/6");
            assert!(!log.contains("lost connection"), "{log}");
        }
        // Only the two accepted mails reach the mailbox: nothing of the half-sent one.
        delivered += 2;
        postfix.wait_for_log("status=sent", 2, WAIT).await;
        dovecot
            .as_user(&marieke)
            .wait_for_count("INBOX", delivered, WAIT)
            .await;
    }
    let subjects: Vec<String> = dovecot
        .as_user(&marieke)
        .fetch_all("INBOX")
        .await
        .iter()
        .map(|m| klachtpost::parse::parse(m).subject)
        .collect();
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    assert!(
        subjects
            .iter()
            .all(|s| s == "Bericht 0" || s == "Bericht 8"),
        "{subjects:?}"
    );
}

/// A session kept open for the next message that the server has ended meanwhile (Postfix's
/// idle timeout: 421, then it hangs up) is replaced by a new one, and the mail goes out
/// without an error, also when the next mail's commands were written ahead on it: there
/// Postfix waited for the message after its 354 and the 421 meets the message (the server
/// took nothing of it); without them the pipelined group fails before MAIL FROM is
/// accepted. Two sessions each time, and each mail arrives once.
#[tokio::test]
async fn a_kept_session_the_server_ended_is_replaced_by_a_new_one() {
    for ahead in [false, true] {
        let dovecot = Dovecot::start_with(DovecotOptions::for_postfix());
        let marieke = dovecot.add_user("marieke");
        let postfix = Postfix::start_with(&dovecot, "smtpd_timeout = 1s");
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path(), &plain_smtp(postfix.smtp_port), None);
        let sender = Sender::from_config(&config).unwrap();
        let to = ["marieke@client.example".to_string()];
        let raws: Vec<Vec<u8>> = (0..2).map(plain).collect();
        let next = ahead.then(|| Next {
            from: "klachten@firma.nl",
            recipients: &to,
            raw: &raws[1],
        });
        let first = sender
            .send_before("klachten@firma.nl", &to, &raws[0], "t", next)
            .await;
        assert_eq!(outcome(&first), "sent", "ahead {ahead}: {first:?}");
        // Postfix ends the idle session after a second, well within the 5 s it is kept.
        let waited = if ahead { "DATA" } else { "END-OF-MESSAGE" };
        postfix
            .wait_for_log(&format!("timeout after {waited}"), 1, WAIT)
            .await;
        let second = sender
            .send_before("klachten@firma.nl", &to, &raws[1], "t", None)
            .await;
        assert_eq!(outcome(&second), "sent", "ahead {ahead}: {second:?}");
        sender.close_idle().await;
        let log = postfix.wait_for_log("disconnect from", 2, WAIT).await;
        assert_eq!(
            log.matches(": connect from").count(),
            2,
            "ahead {ahead}: two sessions: {log}"
        );
        let inbox = dovecot.as_user(&marieke);
        inbox.wait_for_count("INBOX", 2, WAIT).await;
        // Nothing more comes.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            sorted_subjects(&inbox.fetch_all("INBOX").await),
            ["Bericht 0", "Bericht 1"],
            "ahead {ahead}"
        );
    }
}

/// The message goes out after DATA dot-stuffed with its end mark in one write (text), or
/// through lettre's own writer (not UTF-8): either way the server gets it byte for byte,
/// lines that begin with a dot included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_arrives_byte_for_byte_with_its_dotted_lines() {
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), &plain_smtp(smtp.port), None);
    let sender = Sender::from_config(&config).unwrap();
    let head = |n: u8| {
        format!("From: klachten@firma.nl\r\nTo: karin@klant.example\r\nSubject: punt {n}\r\n\r\n")
    };
    let text = format!(
        "{}.verborgen\r\n..twee\r\n.\r\nmidden . punt\r\nslot",
        head(1)
    );
    let utf8 = format!("{}.één\r\nü", head(2));
    let mut not_utf8 = format!("{}.x\r\n", head(3)).into_bytes();
    not_utf8.extend_from_slice(b"\xff\xfe latin\r\n.y");
    let to = vec!["karin@klant.example".to_string()];
    for raw in [text.as_bytes(), utf8.as_bytes(), &not_utf8] {
        sender
            .send("klachten@firma.nl", &to, raw, "x")
            .await
            .unwrap();
    }
    let got = smtp.wait_for(3, WAIT).await;
    // smtp-sink's files are ordered by time, to the second: matched by subject instead.
    let mut got: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8_lossy(&r.data).into_owned())
        .collect();
    got.sort();
    let mut expected: Vec<String> = [text.as_bytes(), utf8.as_bytes(), &not_utf8]
        .iter()
        // What follows the message is the end mark's CRLF.
        .map(|sent| format!("{}\r\n", String::from_utf8_lossy(sent)))
        .collect();
    expected.sort();
    assert_eq!(got, expected);
}
