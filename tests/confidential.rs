//! Confidential by default: a full flow (intake, sending, the form's commands, an
//! extension, closing, retention) with tracing captured at info; the complainants' names,
//! addresses, subjects and text appear nowhere in it; and intake in batches logs each mail
//! once it is durable. Its own test binary, and every test in it captures: a thread without
//! a subscriber could race the capturing one (a log line first reached there is cached as
//! never wanted).

use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use klachtpost::clock::{Clock, ManualClock};

mod register_fixture;
mod support;
use register_fixture::register;

/// Collects what tracing writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Capture this thread's logs at info until the guard is dropped.
    fn at_info() -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_at_info_carry_no_name_address_or_subject_through_a_full_flow() {
    let (captured, _guard) = Captured::at_info();

    let tmp = tempfile::tempdir().unwrap();
    // The whole flow: intake (three complaints), sending, form, extension, close,
    // retention two years on.
    let (config, store, refs) = register(tmp.path()).await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2029, 6, 1, 9, 0, 0).unwrap());
    klachtpost::retention::purge(&store, &config, clock.now(), "klachtpost", false)
        .await
        .unwrap();
    let logs = captured.text();
    assert!(
        logs.contains("mail.taken_in"),
        "the flow was logged: {logs}"
    );
    assert!(logs.contains(&refs[0]), "references may be logged");
    for secret in [
        "Jan de Vries",
        "jan@client.example",
        "Klacht over de factuur",
        "Marie Jansen",
        "marie@client.example",
        "Training te laat begonnen",
        "De factuur klopt niet",
    ] {
        assert!(!logs.contains(secret), "{secret:?} in the logs:\n{logs}");
    }
}

/// Intake in batches says "taken in" once per mail, once the batch is durable (not while
/// it is still in its transaction), and without names, addresses or subjects.
#[tokio::test]
async fn a_batch_logs_each_mail_taken_in_once_and_nothing_of_its_content() {
    let (captured, _guard) = Captured::at_info();

    let tmp = tempfile::tempdir().unwrap();
    let config = support::TestConfig::new(tmp.path())
        .templates(&["acknowledgement"])
        .build();
    let md = tmp.path().join("mailbox");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    // Five complaints and the third again (a duplicate in the same batch).
    for (name, i) in [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 3)] {
        let raw = format!(
            "From: Marie Jansen {i} <marie{i}@client.example>\r\nTo: klachten@firma.nl\r\nSubject: De factuur klopt niet {i}\r\nDate: Thu, 19 Nov 2026 10:15:00 +0100\r\nMessage-ID: <conf-{i}@client.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDe factuur klopt niet.\r\n"
        );
        std::fs::write(md.join("new").join(format!("{name}.mail")), raw).unwrap();
    }
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    let store = support::open_store(&config).await;
    let intake_store = store.deferred();
    let pipeline = klachtpost::intake::Pipeline::new(&config, &intake_store, &clock).unwrap();
    let mut mailbox = klachtpost::fetch::Mailbox::open(&config).await.unwrap();
    assert_eq!(
        klachtpost::daemon::intake_pass(&mut mailbox, &pipeline)
            .await
            .unwrap(),
        6
    );
    let logs = captured.text();
    assert_eq!(logs.matches("mail.taken_in").count(), 5, "{logs}");
    assert_eq!(logs.matches("mail.duplicate").count(), 1, "{logs}");
    for secret in [
        "Marie Jansen",
        "marie1@client.example",
        "De factuur klopt niet",
    ] {
        assert!(!logs.contains(secret), "{secret:?} in the logs:\n{logs}");
    }
}
