//! Confidential by default: a full flow (intake, sending, the form's commands, an
//! extension, closing, retention) with tracing captured at info; the complainants' names,
//! addresses, subjects and text appear nowhere in it. Its own test binary, so no other
//! test's threads race the capturing subscriber.

use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use klachtpost::clock::{Clock, ManualClock};

mod register_fixture;
mod support;
use register_fixture::register;

/// Collects what tracing writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

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
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let tmp = tempfile::tempdir().unwrap();
    // The whole flow: intake (three complaints), sending, form, extension, close,
    // retention two years on.
    let (config, store, refs) = register(tmp.path()).await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2029, 6, 1, 9, 0, 0).unwrap());
    klachtpost::retention::purge(&store, &config, clock.now(), "klachtpost", false)
        .await
        .unwrap();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
