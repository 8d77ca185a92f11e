//! Confidential by default: a full flow (intake, sending, the form's commands, an
//! extension, closing, retention) with tracing captured at info; the complainants' names,
//! addresses, subjects and text appear nowhere in it. Its own test binary, so no other
//! test's threads race the capturing subscriber.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use klachtpost::case::{self, Actor, Closing, FormUpdate, Satisfied};
use klachtpost::clock::{Clock, ManualClock};
use klachtpost::config::Config;
use klachtpost::intake::Pipeline;
use klachtpost::outbox;
use klachtpost::send::Sender;
use klachtpost::store::Store;

fn config(dir: &Path) -> Config {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = format!(
        r#"
[firm]
name = "Adviesbureau Test"
address = "klachten@example-firm.nl"
staff_domains = ["example-firm.nl"]
partners = [{{ name = "Anna Partner", email = "anna@example-firm.nl" }}, {{ name = "Bob Partner", email = "bob@example-firm.nl" }}]
[database]
url = "sqlite://{db}"
[mailbox]
kind = "maildir"
path = "{maildir}"
[outgoing]
kind = "file"
dir = "{outbox}"
[templates]
acknowledgement = "{ack}"
extension = "{ext}"
"#,
        db = dir.join("k.db").display(),
        maildir = dir.join("mailbox").display(),
        outbox = dir.join("outbox").display(),
        ack = root
            .join("config/templates/acknowledgement.nl.txt")
            .display(),
        ext = root.join("config/templates/extension.nl.txt").display(),
    );
    Config::from_toml(Path::new("test.toml"), &text, &[], &|_| None).expect("valid test config")
}

fn complaint(n: u32, name: &str, address: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: \"{name}\" <{address}>\r\nTo: klachten@example-firm.nl\r\nSubject: {subject}\r\nDate: Thu, 19 Nov 2026 10:15:00 +0100\r\nMessage-ID: <c{n}@client.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"factuur.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )
    .into_bytes()
}

fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
}

/// Three cases with fixed times: one handled in time (with a measure that looks like a
/// formula), one extended and closed late, one open.
async fn register(dir: &Path) -> (Config, Store, Vec<String>) {
    let config = config(dir);
    let store = Store::open(&config.database_url).await.unwrap();
    let clock = ManualClock::new(t(2, 9, 0));
    let mut refs = Vec::new();
    for (n, (name, addr, subject, at)) in [
        (
            "Jan de Vries",
            "jan@client.example",
            "Klacht over de factuur <script>alert(1)</script>",
            t(2, 9, 0),
        ),
        (
            "Marie Jansen",
            "marie@client.example",
            "Training te laat begonnen",
            t(3, 14, 30),
        ),
        (
            "Piet Bakker",
            "piet@client.example",
            "Geen reactie",
            t(5, 11, 0),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        clock.set(at);
        let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
        let raw = complaint(
            n as u32,
            name,
            addr,
            subject,
            "De factuur klopt niet & is te hoog.",
        );
        let out = pipeline.take_in(None, &raw, at).await.unwrap();
        refs.push(out.case.unwrap());
    }
    let sender = Sender::from_config(&config).unwrap();
    clock.set(t(2, 9, 5));
    outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();

    let mut tx = store.begin().await.unwrap();
    let anna = Actor::new("Anna Partner", t(10, 15, 0));
    case::record(
        &mut tx,
        &refs[0],
        &FormUpdate {
            cause: Some("Uurtarief verkeerd ingevoerd".into()),
            structural: Some(true),
            measure: Some("=HYPERLINK(\"http://evil.example\",\"klik\")".into()),
            handling: Some("Factuur gecorrigeerd, excuses aangeboden".into()),
            result: Some("Creditnota verstuurd".into()),
            evaluation: Some("Goed verlopen; tarieven voortaan dubbel gecontroleerd".into()),
        },
        anna,
    )
    .await
    .unwrap();
    case::close(
        &mut tx,
        &refs[0],
        Closing::Handled(Satisfied::Yes),
        anna,
        None,
    )
    .await
    .unwrap();
    let c = store_case(&mut tx, &refs[1]).await;
    let ext = klachtpost::deadlines::Extension {
        previous: c,
        resolution: Utc.with_ymd_and_hms(2027, 1, 15, 16, 0, 0).unwrap(),
        reason: "Wachten op het verslag van de trainer".into(),
    };
    case::extend(
        &mut tx,
        &refs[1],
        &ext,
        "resolution extended to Fri 15 Jan 2027",
        anna,
    )
    .await
    .unwrap();
    case::record(
        &mut tx,
        &refs[1],
        &FormUpdate {
            structural: Some(false),
            measure: Some("-".into()),
            ..Default::default()
        },
        anna,
    )
    .await
    .unwrap();
    case::close(
        &mut tx,
        &refs[1],
        Closing::Handled(Satisfied::Unknown),
        Actor::new(
            "Bob Partner",
            Utc.with_ymd_and_hms(2027, 1, 20, 10, 0, 0).unwrap(),
        ),
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (config, store, refs)
}

async fn store_case(tx: &mut klachtpost::store::Tx, reference: &str) -> DateTime<Utc> {
    let c = case::find(tx, reference).await.unwrap();
    klachtpost::store::parse_ts(&c.resolution_due_at).unwrap()
}

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
