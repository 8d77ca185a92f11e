//! Retention reaches the IMAP folders of a real Dovecot: a purged case's mail is expunged
//! from the processed folder and its acknowledgement from the sent folder, a held case's
//! stay; a quarantined mail leaves the quarantine folder after `keep_unattached`.

mod support;

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, Months, TimeZone, Utc};
use klachtpost::case::{self, Actor, Closing, Satisfied};
use klachtpost::clock::{Clock, SystemClock};
use klachtpost::config::Config;
use klachtpost::daemon::run_with;
use klachtpost::store::history;
use support::{Dovecot, SmtpSink, TestConfig};

fn imap_config(dir: &Path, imap: &Dovecot, smtp_port: u16) -> Config {
    TestConfig::new(dir)
        .mailbox(&format!(
            r#"kind = "imap"
host = "localhost"
port = {port}
security = "tls"
username = "{user}"
password_env = "KP_TEST_IMAP_PASSWORD"
ca_file = "{ca}"
poll_interval_secs = 1
sent_folder = "Sent""#,
            port = imap.imaps_port,
            user = imap.user,
            ca = imap.ca_pem.display(),
        ))
        .outgoing(&format!(
            r#"kind = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "klachten@firma.nl""#
        ))
        .templates(&["acknowledgement"])
        .env("KP_TEST_IMAP_PASSWORD", &imap.password)
        .build()
}

fn complaint(who: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {who} <{who}@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht\r\nDate: Thu, 19 Nov 2026 16:55:00 +0100\r\nMessage-ID: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHet advies klopte niet.\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_case_leaves_the_imap_processed_folder_and_a_held_one_stays() {
    let imap = Dovecot::start();
    let smtp = SmtpSink::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = imap_config(tmp.path(), &imap, smtp.port);
    imap.append("INBOX", &complaint("marieke", "purge-1@client.example"))
        .await;
    imap.append("INBOX", &complaint("henk", "keep-1@client.example"))
        .await;
    let store = support::open_store(&config).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    run_with(
        config.clone(),
        store.clone(),
        clock,
        true,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(imap.count("Processed").await, 2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // Each case's acknowledgement, and the partner's new-complaint notice: on SQLite one
    // for both (they came in together, as one batch), kept as mail without a case.
    let together = support::TestDatabase::for_dir(tmp.path()).backend() == support::Backend::Sqlite;
    let notices: u32 = if together { 1 } else { 2 };
    while imap.count("Sent").await < 2 + notices {
        assert!(std::time::Instant::now() < deadline, "no sent copies");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A mail in quarantine: its copy in the quarantine folder, its bytes in the row.
    let odd = complaint("kees", "odd-1@client.example");
    imap.append("Quarantine", &odd).await;
    let pipeline = klachtpost::intake::Pipeline::new(&config, &store, &SystemClock).unwrap();
    let q = pipeline
        .quarantine(None, &odd, SystemClock.now(), "cannot parse")
        .await
        .unwrap();
    let cases = store.list_cases().await.unwrap();
    let reference = |who: &str| {
        cases
            .iter()
            .find(|c| c.complainant_address.as_deref() == Some(&format!("{who}@client.example")))
            .unwrap()
            .reference
            .clone()
    };
    let (gone, kept) = (reference("marieke"), reference("henk"));

    let closed = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
    let who = Actor::new("Anna Partner", closed);
    let mut tx = store.begin().await.unwrap();
    for r in [&gone, &kept] {
        case::close(&mut tx, r, Closing::Handled(Satisfied::Yes), who, None)
            .await
            .unwrap();
    }
    case::hold(&mut tx, &kept, "Claim", who).await.unwrap();
    tx.commit().await.unwrap();

    let later = closed.checked_add_months(Months::new(24)).unwrap() + Duration::days(1);
    let report = klachtpost::retention::purge(&store, &config, later, "klachtpost", false)
        .await
        .unwrap();
    assert_eq!(report.cases, vec![gone.clone()]);
    assert_eq!(report.mailbox_copies, 1);
    let left = imap.fetch_all("Processed").await;
    assert_eq!(left.len(), 1);
    assert!(String::from_utf8_lossy(&left[0]).contains("keep-1@client.example"));
    // The purged case's mail (acknowledgement and partner notice) left the sent folder;
    // the held case's stays: its acknowledgement, and on PostgreSQL its own notice. On
    // SQLite the notice of both is mail without a case, past `keep_unattached` by now: it
    // went too.
    assert_eq!(report.sent_copies, 2, "{report:?}");
    let sent = imap.fetch_all("Sent").await;
    assert_eq!(sent.len(), if together { 1 } else { 2 });
    assert!(
        sent.iter()
            .any(|m| String::from_utf8_lossy(m).contains("henk@client.example"))
    );
    assert!(
        !sent
            .iter()
            .any(|m| String::from_utf8_lossy(m).contains("marieke@client.example"))
    );
    // The quarantined mail is gone from the quarantine folder; its row stays, emptied.
    assert_eq!(report.quarantine_items, 1);
    assert_eq!(report.quarantine_copies, 1);
    assert_eq!(imap.count("Quarantine").await, 0);
    let (item, raw) = store.quarantine_item(q).await.unwrap().unwrap();
    assert!(raw.is_empty() && item.purged && item.message_id.is_none());
    let v = history::verify(store.pool()).await.unwrap();
    assert!(v.broken.is_none(), "{v:?}");
}
