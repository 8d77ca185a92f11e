//! A small register for the register's tests: a config on the embedded default (Maildir,
//! file outbox, the test database: SQLite or PostgreSQL, see `support::database`) with two partners, and three complaints taken in
//! through real intake and taken through the case commands (form fields, extension,
//! closing), so exports and the confidentiality check look at a realistic register.
//!
//! Include it with `mod support;` and `mod register_fixture;`.
#![allow(dead_code)]

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use klachtpost::case::{self, Actor, Closing, FormUpdate, Satisfied};
use klachtpost::clock::ManualClock;
use klachtpost::config::Config;
use klachtpost::intake::Pipeline;
use klachtpost::outbox;
use klachtpost::send::Sender;
use klachtpost::store::Store;

use crate::support::TestConfig;

pub fn config(dir: &Path) -> Config {
    TestConfig::new(dir)
        .firm(EXAMPLE_FIRM)
        .templates(&["acknowledgement", "extension"])
        .build()
}

/// The firm of the register's tests, with two partners.
pub const EXAMPLE_FIRM: &str = r#"name = "Adviesbureau Test"
address = "klachten@example-firm.nl"
staff_domains = ["example-firm.nl"]
partners = [{ name = "Anna Partner", email = "anna@example-firm.nl" }, { name = "Bob Partner", email = "bob@example-firm.nl" }]"#;

pub fn complaint(n: u32, name: &str, address: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: \"{name}\" <{address}>\r\nTo: klachten@example-firm.nl\r\nSubject: {subject}\r\nDate: Thu, 19 Nov 2026 10:15:00 +0100\r\nMessage-ID: <c{n}@client.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"factuur.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )
    .into_bytes()
}

pub fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
}

/// Three cases with fixed times: one handled in time (with a measure that looks like a
/// formula), one extended and closed late, one open.
pub async fn register(dir: &Path) -> (Config, Store, Vec<String>) {
    let config = config(dir);
    let store = crate::support::open_store(&config).await;
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

/// The resolution deadline of a case, read back.
pub async fn store_case(tx: &mut klachtpost::store::Tx, reference: &str) -> DateTime<Utc> {
    let c = case::find(tx, reference).await.unwrap();
    klachtpost::store::parse_ts(&c.resolution_due_at).unwrap()
}
