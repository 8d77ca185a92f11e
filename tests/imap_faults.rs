//! Intake against a real Dovecot that misbehaves: stopped during IDLE and started again, a
//! FETCH that never gets an answer (a freezing proxy in between), no MOVE (and no UIDPLUS),
//! a mail someone else already read, and an outage long enough to tell the partners.
//!
//! The daemon runs as the real binary where its log and exit matter (`klachtpost run`,
//! stderr captured), in-process (`run_with`, `once`) where only the result does. Network
//! limits are real time, kept short through the config (`timeout_secs = 2`).

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use klachtpost::clock::{Clock, SystemClock};
use klachtpost::config::Config;
use klachtpost::daemon::run_with;
use klachtpost::store::Store;
use support::{
    Daemon, Dovecot, DovecotOptions, FIRM_TWO_PARTNERS, FreezingProxy, TestConfig, WITHOUT_MOVE,
    WITHOUT_MOVE_OR_UIDPLUS,
};

const WAIT: Duration = Duration::from_secs(20);
const PASSWORD_ENV: &str = "KP_TEST_IMAP_PASSWORD";

fn test_config(dir: &Path, port: u16, alert_after: &str) -> TestConfig {
    TestConfig::new(dir)
        .firm(FIRM_TWO_PARTNERS)
        .mailbox(&format!(
            r#"kind = "imap"
host = "127.0.0.1"
port = {port}
security = "none"
username = "{user}"
password_env = "{PASSWORD_ENV}"
poll_interval_secs = 1
timeout_secs = 2"#,
            user = support::MAIN_USER,
        ))
        .outgoing(&format!(
            "kind = \"file\"\ndir = \"{}\"\nfrom = \"klachten@firma.nl\"",
            dir.join("outbox").display()
        ))
        .templates(&["acknowledgement", "extension"])
        .section("alerts", &format!("alert_after = \"{alert_after}\""))
}

/// The config as a file, for `klachtpost run` (see [`Daemon::start`]).
fn config_text(dir: &Path, port: u16, alert_after: &str) -> String {
    test_config(dir, port, alert_after).file_text()
}

fn config(dir: &Path, imap: &Dovecot) -> Config {
    test_config(dir, imap.imap_port, "30 min")
        .env(PASSWORD_ENV, &imap.password)
        .build()
}

fn complaint(id: &str) -> Vec<u8> {
    format!(
        "From: Marieke Jansen <marieke@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht {id}\r\nDate: Thu, 19 Nov 2026 16:55:00 +0100\r\nMessage-ID: <{id}@client.example>\r\n\r\nHet advies klopte niet.\r\n"
    )
    .into_bytes()
}

async fn never() {
    std::future::pending::<()>().await
}

async fn wait_for_cases(store: &Store, n: usize, timeout: Duration, daemon: &Daemon) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = store.list_cases().await.unwrap().len();
        if got == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{got} case(s), not {n}, within {timeout:?}; daemon log:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Outage and recovery notices written by the file transport, as (subject, recipients).
fn notices(outbox: &Path) -> Vec<(String, Vec<String>)> {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| klachtpost::parse::parse(&std::fs::read(e.path()).unwrap()))
        .filter(|m| m.subject.starts_with("klachtpost:"))
        .map(|m| {
            (
                m.subject.clone(),
                m.to.iter().map(|a| a.address.clone()).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_stopped_during_idle_and_started_again_loses_nothing_and_does_not_spin() {
    let mut imap = Dovecot::start();
    let tmp = tempfile::tempdir().unwrap();
    imap.append("INBOX", &complaint("before")).await;
    let daemon = Daemon::start(
        tmp.path(),
        &config_text(tmp.path(), imap.imap_port, "30 min"),
        PASSWORD_ENV,
        &imap.password,
    );
    // Migrations run once the daemon is up (concurrent first starts are item 6's concern).
    daemon.wait_for_log("klachtpost is running", 1, WAIT).await;
    let store = support::open_store(&config(tmp.path(), &imap)).await;
    wait_for_cases(&store, 1, WAIT, &daemon).await;
    imap.wait_for_count("Processed", 1, WAIT).await;
    // Idling now (IDLE is supported and nothing is left): stop the server under it.
    let stopped = Instant::now();
    imap.stop();
    daemon
        .wait_for_log("cannot open the mailbox", 2, WAIT)
        .await;
    imap.restart();
    let back = Instant::now();
    imap.append("INBOX", &complaint("after")).await;
    wait_for_cases(&store, 2, Duration::from_secs(10), &daemon).await;
    let resumed = back.elapsed();
    imap.wait_for_count("Processed", 2, WAIT).await;
    assert_eq!(imap.count("INBOX").await, 0);

    // Bounded retries with backoff: 1 s, 2 s, 4 s … (±20 %), not thousands of lines.
    let outage = back - stopped;
    let attempts = daemon.count("cannot open the mailbox");
    let bound = 2 + (outage.as_secs_f64() + 1.0).log2().ceil() as usize;
    assert!(
        attempts <= bound,
        "{attempts} reconnect attempts in an outage of {outage:?} (bound {bound}):\n{}",
        daemon.log()
    );
    assert!(resumed < Duration::from_secs(10), "{resumed:?}");
    let status = daemon.stop().await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_without_answer_times_out_and_the_mail_is_taken_in_after_the_thaw() {
    let imap = Dovecot::start();
    let proxy = FreezingProxy::start(imap.imap_port).await;
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        tmp.path(),
        &config_text(tmp.path(), proxy.port, "30 min"),
        PASSWORD_ENV,
        &imap.password,
    );
    // Migrations run once the daemon is up (concurrent first starts are item 6's concern).
    daemon.wait_for_log("klachtpost is running", 1, WAIT).await;
    let store = support::open_store(&config(tmp.path(), &imap)).await;
    daemon.wait_for_log("mailbox opened", 1, WAIT).await;
    // The next FETCH hangs: the proxy holds it and everything after it.
    proxy.freeze_on(b"UID FETCH");
    let raw = complaint("frozen");
    imap.append("INBOX", &raw).await;
    let deadline = Instant::now() + WAIT;
    while proxy.triggered() == 0 {
        assert!(Instant::now() < deadline, "no FETCH was sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let frozen_at = Instant::now();
    // timeout_secs = 2: the pass fails, the daemon reconnects (and times out again while
    // the proxy stays frozen).
    daemon.wait_for_log("did not answer", 1, WAIT).await;
    assert!(frozen_at.elapsed() < Duration::from_secs(8));
    assert!(store.list_cases().await.unwrap().is_empty());
    daemon
        .wait_for_log("cannot open the mailbox", 1, WAIT)
        .await;

    proxy.thaw();
    wait_for_cases(&store, 1, WAIT, &daemon).await;
    imap.wait_for_count("Processed", 1, WAIT).await;
    let case = &store.list_cases().await.unwrap()[0];
    let detail = store.case(&case.reference).await.unwrap().unwrap();
    let original = detail
        .messages
        .iter()
        .find(|m| m.kind == "complaint")
        .unwrap();
    assert_eq!(store.raw_message(original.id).await.unwrap().unwrap(), raw);
    assert!(proxy.connections() >= 2, "it reconnected");
    let status = daemon.stop().await;
    assert!(status.success(), "{status:?}");
}

/// The hot loop of issue 7: the server accepts the login and then fails the first command.
/// The backoff must not start again at every successful login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_fails_after_login_is_retried_with_backoff_not_in_a_hot_loop() {
    let imap = Dovecot::start();
    let proxy = FreezingProxy::start(imap.imap_port).await;
    proxy.cut_on(b"UID SEARCH");
    imap.append("INBOX", &complaint("after-login")).await;
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        tmp.path(),
        &config_text(tmp.path(), proxy.port, "30 min"),
        PASSWORD_ENV,
        &imap.password,
    );
    daemon.wait_for_log("intake pass failed", 1, WAIT).await;
    let first = Instant::now();
    daemon.wait_for_log("intake pass failed", 4, WAIT).await;
    // Pauses of about 1, 2 and 4 s (±20 %) between the four failures: at least 5.6 s
    // (checked with room for the log polling; a hot loop takes milliseconds).
    let took = first.elapsed();
    assert!(
        took >= Duration::from_millis(5000),
        "{took:?}:\n{}",
        daemon.log()
    );
    assert!(
        proxy.connections() <= 5,
        "{} connections:\n{}",
        proxy.connections(),
        daemon.log()
    );
    daemon.wait_for_log("klachtpost is running", 1, WAIT).await;
    let store = support::open_store(&config(tmp.path(), &imap)).await;
    assert!(store.list_cases().await.unwrap().is_empty());

    // The server behaves again: the mail is taken in at the next attempt.
    proxy.stop_cutting();
    wait_for_cases(&store, 1, WAIT, &daemon).await;
    let status = daemon.stop().await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_move_only_our_uid_is_expunged_and_a_mail_deleted_by_someone_else_survives() {
    let imap = Dovecot::start_with(DovecotOptions {
        imap_capability: Some(WITHOUT_MOVE),
        ..DovecotOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), &imap);
    let ours = complaint("ours");
    let theirs = complaint("marked-deleted-in-outlook");
    imap.append("INBOX", &ours).await;
    // Someone in Outlook marked this one deleted; it is still new mail to klachtpost. A
    // plain EXPUNGE after moving the first would destroy it before it was moved.
    imap.append_flagged("INBOX", "(\\Deleted)", &theirs).await;

    let store = support::open_store(&config).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    run_with(config.clone(), store.clone(), clock.clone(), true, never())
        .await
        .unwrap();

    assert_eq!(store.list_cases().await.unwrap().len(), 2);
    let text = |m: Vec<u8>| String::from_utf8(m).unwrap();
    let mut processed: Vec<String> = imap
        .fetch_all("Processed")
        .await
        .into_iter()
        .map(text)
        .collect();
    processed.sort();
    let mut expected = vec![text(ours), text(theirs)];
    expected.sort();
    assert_eq!(processed, expected, "both copied, nothing destroyed");
    assert_eq!(imap.count("INBOX").await, 0, "each UID expunged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_move_or_uidplus_mail_is_copied_and_marked_never_expunged() {
    let imap = Dovecot::start_with(DovecotOptions {
        imap_capability: Some(WITHOUT_MOVE_OR_UIDPLUS),
        ..DovecotOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), &imap);
    let ours = complaint("ours-2");
    let theirs = complaint("deleted-by-someone-2");
    imap.append("INBOX", &ours).await;
    imap.append_flagged("INBOX", "(\\Deleted)", &theirs).await;

    let store = support::open_store(&config).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    run_with(config.clone(), store.clone(), clock.clone(), true, never())
        .await
        .unwrap();
    assert_eq!(store.list_cases().await.unwrap().len(), 2);
    assert_eq!(imap.count("Processed").await, 2);
    // Nothing was expunged: both stay, marked deleted and read, for people to clean up.
    assert_eq!(imap.count("INBOX").await, 2);
    for flags in imap.flags("INBOX").await {
        assert!(
            flags.iter().any(|f| f == "Deleted") && flags.iter().any(|f| f == "Seen"),
            "{flags:?}"
        );
    }
    // A second run takes nothing in twice.
    run_with(config, store.clone(), clock, true, never())
        .await
        .unwrap();
    assert_eq!(store.list_cases().await.unwrap().len(), 2);
    assert_eq!(imap.count("Processed").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_someone_else_already_read_is_still_taken_in() {
    let imap = Dovecot::start();
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), &imap);
    let raw = complaint("read-in-outlook");
    imap.append_flagged("INBOX", "(\\Seen)", &raw).await;
    let store = support::open_store(&config).await;
    run_with(config, store.clone(), Arc::new(SystemClock), true, never())
        .await
        .unwrap();
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(imap.fetch_all("Processed").await, vec![raw]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_alert_after_is_reported_once_and_its_end_once() {
    let mut imap = Dovecot::start();
    imap.stop();
    let tmp = tempfile::tempdir().unwrap();
    let outbox = tmp.path().join("outbox");
    let text = config_text(tmp.path(), imap.imap_port, "2 s");
    let daemon = Daemon::start(tmp.path(), &text, PASSWORD_ENV, &imap.password);

    // The outage notice, once, to every partner.
    let deadline = Instant::now() + WAIT;
    while notices(&outbox).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no outage notice:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failures = daemon.count("cannot open the mailbox");
    daemon
        .wait_for_log("cannot open the mailbox", failures + 1, WAIT)
        .await;
    let got = notices(&outbox);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].0,
        "klachtpost: storing, de klachtenmailbox werkt niet"
    );
    assert_eq!(got[0].1, vec!["anna@firma.nl", "bob@firma.nl"]);

    // `status` shows the open outage.
    let status = status_json(tmp.path(), &imap.password);
    let mailbox = &status["channels"][0];
    assert_eq!(mailbox["channel"], "mailbox");
    assert!(mailbox["failing_since"].is_string(), "{status}");
    assert!(mailbox["alerted_at"].is_string(), "{status}");
    let plain = status_text(tmp.path(), &imap.password);
    assert!(
        plain.contains("outage:           mailbox failing since"),
        "{plain}"
    );

    // Back: one all-clear, and no second outage notice.
    imap.restart();
    let deadline = Instant::now() + Duration::from_secs(40);
    while notices(&outbox).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no recovery notice:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = notices(&outbox);
    assert_eq!(
        got.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        vec![
            "klachtpost: de klachtenmailbox werkt weer",
            "klachtpost: storing, de klachtenmailbox werkt niet",
        ]
    );
    let status = status_json(tmp.path(), &imap.password);
    let mailbox = &status["channels"][0];
    assert!(mailbox["failing_since"].is_null(), "{status}");
    assert!(mailbox["last_success_at"].is_string(), "{status}");
    assert_eq!(mailbox["backlog"], 0, "{status}");
    assert_eq!(status["outbox_failed"], 0, "{status}");
    let stopped = daemon.stop().await;
    assert!(stopped.success(), "{stopped:?}");
    // After a restart nothing is sent again.
    assert_eq!(notices(&outbox).len(), 2);
    let plain = status_text(tmp.path(), &imap.password);
    assert!(plain.contains("outages:          none"), "{plain}");
    assert!(plain.contains("backlog:          0 message(s)"), "{plain}");
}

fn status_command(dir: &Path, password: &str, json: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_klachtpost"));
    cmd.arg("status")
        .arg("--config")
        .arg(dir.join("klachtpost.toml"))
        .env(PASSWORD_ENV, password);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run klachtpost status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn status_json(dir: &Path, password: &str) -> serde_json::Value {
    serde_json::from_str(&status_command(dir, password, true)).unwrap()
}

fn status_text(dir: &Path, password: &str) -> String {
    status_command(dir, password, false)
}
