//! OAuth2 sign-in against real servers: a private Dovecot whose own `oauth2` passdb checks
//! bearer tokens by introspection at a token server the test runs (tests/support/oauth2.rs),
//! and a Postfix whose SMTP AUTH goes through that same Dovecot. Each flow logs in; an
//! expired token during a long IDLE session is replaced at the next login without losing
//! mail; a refused token is replaced once; a revoked client secret is named as such; a
//! rotated refresh token is saved (owner-only) and used; the device-code flow stores the
//! first refresh token; an acknowledgement goes out over SMTP with XOAUTH2.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use klachtpost::clock::{Clock, SystemClock};
use klachtpost::config::Config;
use klachtpost::daemon::run_with;
use klachtpost::oauth2::sasl::Mechanism;
use klachtpost::oauth2::{Flow, OAuth2Settings, Provider, TokenSource};
use klachtpost::store::Store;
use support::oauth2::CLIENT_ID;
use support::{Dovecot, DovecotOptions, Postfix, Security, TestCa, TestConfig, TokenServer};

const WAIT: Duration = Duration::from_secs(20);

fn oauth2_dovecot(server: &TokenServer, postfix: bool) -> Dovecot {
    let mut options = if postfix {
        DovecotOptions::for_postfix()
    } else {
        DovecotOptions::default()
    };
    options.oauth2_introspection_url = Some(server.introspection_url());
    Dovecot::start_with(options)
}

/// The `[oauth2]` lines for a flow.
fn oauth2_section(server: &TokenServer, flow: &str, extra: &str) -> String {
    format!(
        r#"[oauth2]
provider = "generic"
client_id = "{CLIENT_ID}"
flow = "{flow}"
token_url = "{token_url}"
device_url = "{device_url}"
scope = "https://outlook.office365.com/.default"
{extra}
"#,
        token_url = server.token_url(),
        device_url = server.device_url(),
    )
}

/// The config as text; a PostgreSQL password (`KLACHTPOST_TEST_DATABASE`) comes from a file,
/// so [`load`] and the binary read it alike.
fn config_text(dir: &Path, imap: &Dovecot, outgoing: &str, oauth2: &str) -> String {
    TestConfig::new(dir)
        .mailbox(&format!(
            r#"kind = "imap"
host = "127.0.0.1"
port = {imaps}
security = "tls"
auth = "oauth2"
username = "{user}"
ca_file = "{ca}"
poll_interval_secs = 60"#,
            imaps = imap.imaps_port,
            user = imap.user,
            ca = imap.ca_pem.display(),
        ))
        .outgoing(outgoing)
        .templates(&["acknowledgement"])
        .append(oauth2)
        .file_text()
}

fn file_outgoing(dir: &Path) -> String {
    format!(
        "kind = \"file\"\ndir = \"{}\"\nfrom = \"klachten@firma.nl\"",
        dir.join("outbox").display()
    )
}

fn load(text: &str, secret: &str) -> Config {
    let secret = secret.to_string();
    Config::from_toml(Path::new("oauth2.toml"), text, &[], &move |n| {
        (n == "KP_CLIENT_SECRET").then(|| secret.clone())
    })
    .unwrap_or_else(|e| panic!("valid config: {e}"))
}

fn complaint(id: &str) -> Vec<u8> {
    format!(
        "From: \"Marieke Jansen\" <marieke@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht over project X\r\nDate: Thu, 19 Nov 2026 16:55:00 +0100\r\nMessage-ID: <{id}>\r\n\r\nHet advies kwam te laat.\r\n"
    )
    .into_bytes()
}

async fn never() {
    std::future::pending::<()>().await
}

async fn run_once(config: &Config) -> Store {
    let store = support::open_store(config).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    run_with(config.clone(), store.clone(), clock, true, never())
        .await
        .unwrap();
    store
}

async fn wait_for_cases(store: &Store, n: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = store.list_cases().await.unwrap().len();
        if got == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{got} cases, not {n}, within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn xoauth2_logins(imap: &Dovecot) -> usize {
    imap.log()
        .lines()
        .filter(|l| l.contains("Login: user=<complaints>") && l.contains("method=XOAUTH2"))
        .count()
}

/// Polls until Dovecot has logged `n` XOAUTH2 logins: its log process writes a login line
/// a moment after the session is already in use, so a mail can be taken in first.
async fn wait_for_xoauth2_logins(imap: &Dovecot, n: usize) {
    let deadline = Instant::now() + WAIT;
    while xoauth2_logins(imap) < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} XOAUTH2 logins:\n{}",
            imap.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_only_client_credentials_flow_logs_in_to_imap() {
    let server = TokenServer::start("complaints", Duration::from_secs(3600));
    let imap = oauth2_dovecot(&server, false);
    let tmp = tempfile::tempdir().unwrap();
    let text = config_text(
        tmp.path(),
        &imap,
        &file_outgoing(tmp.path()),
        &oauth2_section(
            &server,
            "client_credentials",
            "client_secret_env = \"KP_CLIENT_SECRET\"",
        ),
    );
    let config = load(&text, &server.client_secret);
    assert!(!format!("{config:?}").contains(&server.client_secret));
    imap.append("INBOX", &complaint("cc-1@client.example"))
        .await;

    let store = run_once(&config).await;
    assert_eq!(store.list_cases().await.unwrap().len(), 1);
    assert_eq!(imap.count("INBOX").await, 0);
    assert_eq!(server.grants(), vec!["client_credentials"]);
    wait_for_xoauth2_logins(&imap, 1).await;
    assert_eq!(xoauth2_logins(&imap), 1, "{}", imap.log());

    // A second connection reuses the cached token: no new grant.
    imap.append("INBOX", &complaint("cc-2@client.example"))
        .await;
    run_with(config, store.clone(), Arc::new(SystemClock), true, never())
        .await
        .unwrap();
    assert_eq!(store.list_cases().await.unwrap().len(), 2);
    assert_eq!(server.grants(), vec!["client_credentials"]);
    wait_for_xoauth2_logins(&imap, 2).await;
    assert_eq!(xoauth2_logins(&imap), 2);
}

/// Real providers are HTTPS: the token endpoint's certificate is checked against the web
/// roots plus `[oauth2] ca_file`, and a server the client does not trust is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_over_https_is_trusted_through_ca_file() {
    let ca = TestCa::new();
    let server = TokenServer::start_tls("complaints", Duration::from_secs(3600), &ca);
    assert!(server.token_url().starts_with("https://127.0.0.1:"));
    let imap = oauth2_dovecot(&TokenServer::start("complaints", Duration::ZERO), false);
    let tmp = tempfile::tempdir().unwrap();
    let section = |ca_line: &str| {
        oauth2_section(
            &server,
            "client_credentials",
            &format!("client_secret_env = \"KP_CLIENT_SECRET\"\n{ca_line}"),
        )
    };
    let trusted = load(
        &config_text(
            tmp.path(),
            &imap,
            &file_outgoing(tmp.path()),
            &section(&format!("ca_file = \"{}\"", ca.ca_pem.display())),
        ),
        &server.client_secret,
    );
    let what = klachtpost::oauth2::check(trusted.oauth2.as_ref().unwrap())
        .await
        .unwrap();
    assert!(what.contains("https://127.0.0.1:"), "{what}");
    assert_eq!(server.grants(), vec!["client_credentials"]);

    let untrusted = load(
        &config_text(tmp.path(), &imap, &file_outgoing(tmp.path()), &section("")),
        &server.client_secret,
    );
    let e = klachtpost::oauth2::check(untrusted.oauth2.as_ref().unwrap())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("TLS handshake"), "{e}");
    assert_eq!(server.grants().len(), 1);
}

/// A token is used while fresh and renewed before it expires: with a 4 s lifetime, after
/// half of it (short tokens), while the old one still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_is_renewed_before_it_expires() {
    let server = TokenServer::start("complaints", Duration::from_secs(4));
    let tokens = TokenSource::new(OAuth2Settings {
        provider: Provider::Generic,
        tenant: None,
        client_id: CLIENT_ID.into(),
        client_secret: Some(server.client_secret.clone().into()),
        flow: Flow::ClientCredentials,
        refresh_token_file: None,
        command: None,
        token_url: server.token_url(),
        device_url: None,
        scope: "mail".into(),
        ca_file: None,
    });
    let started = Instant::now();
    let first = tokens.token().await.unwrap();
    assert_eq!(tokens.token().await.unwrap().expose(), first.expose());
    assert_eq!(server.grants().len(), 1, "the second call used the cache");
    let renewed = loop {
        let t = tokens.token().await.unwrap();
        if t.expose() != first.expose() {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "not renewed before expiry"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(
        renewed >= Duration::from_millis(1900),
        "renewed too early: {renewed:?}"
    );
    assert_eq!(
        server.live_tokens(),
        2,
        "the old token was still alive when replaced"
    );
    assert_eq!(server.grants().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_flow_logs_in_with_the_printed_token() {
    let server = TokenServer::start("complaints", Duration::from_secs(3600));
    let imap = oauth2_dovecot(&server, false);
    let tmp = tempfile::tempdir().unwrap();
    let token = server.new_access_token();
    let text = config_text(
        tmp.path(),
        &imap,
        &file_outgoing(tmp.path()),
        &format!(
            "[oauth2]\nprovider = \"generic\"\nflow = \"command\"\ncommand = \"printf '%s\\\\n' {token}\"\n"
        ),
    );
    let config = load(&text, "");
    imap.append("INBOX", &complaint("cmd-1@client.example"))
        .await;
    let store = run_once(&config).await;
    assert_eq!(store.list_cases().await.unwrap().len(), 1);
    assert!(
        server.grants().is_empty(),
        "no grant: the command gave the token"
    );
    wait_for_xoauth2_logins(&imap, 1).await;
    assert_eq!(xoauth2_logins(&imap), 1, "{}", imap.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_saved_owner_only_and_used() {
    let server = TokenServer::start("complaints", Duration::from_secs(3600));
    server.set_rotation(true);
    let imap = oauth2_dovecot(&server, false);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("refresh-token");
    let first = server.new_refresh_token();
    std::fs::write(&file, format!("{first}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = config_text(
        tmp.path(),
        &imap,
        &file_outgoing(tmp.path()),
        &oauth2_section(
            &server,
            "refresh_token",
            &format!("refresh_token_file = \"{}\"", file.display()),
        ),
    );
    imap.append("INBOX", &complaint("rt-1@client.example"))
        .await;
    let store = run_once(&load(&text, "")).await;
    assert_eq!(store.list_cases().await.unwrap().len(), 1);

    // The provider handed out a new refresh token and invalidated the old one: saved.
    let second = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert_ne!(second, first);
    assert!(!server.is_refresh_token_valid(&first));
    assert!(server.is_refresh_token_valid(&second));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A new process (fresh cache) uses the saved one.
    imap.append("INBOX", &complaint("rt-2@client.example"))
        .await;
    run_with(
        load(&text, ""),
        store.clone(),
        Arc::new(SystemClock),
        true,
        never(),
    )
    .await
    .unwrap();
    assert_eq!(store.list_cases().await.unwrap().len(), 2);
    assert_eq!(server.grants(), vec!["refresh_token", "refresh_token"]);
    let third = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(server.is_refresh_token_valid(&third) && third != second);
}

/// The token lives 3 s; the daemon sits in IDLE past that. The session goes on (Dovecot
/// checks the token only at login) until the server ends it; the next login must use a new
/// token, and mail that arrived meanwhile is taken in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_during_idle_is_replaced_at_the_next_login_without_losing_mail() {
    let server = TokenServer::start("complaints", Duration::from_secs(3));
    let imap = oauth2_dovecot(&server, false);
    let tmp = tempfile::tempdir().unwrap();
    let text = config_text(
        tmp.path(),
        &imap,
        &file_outgoing(tmp.path()),
        &oauth2_section(
            &server,
            "client_credentials",
            "client_secret_env = \"KP_CLIENT_SECRET\"",
        ),
    );
    let config = load(&text, &server.client_secret);
    let store = support::open_store(&config).await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run_with(
        config,
        store.clone(),
        Arc::new(SystemClock),
        false,
        async move {
            let _ = stop_rx.await;
        },
    ));
    imap.append("INBOX", &complaint("idle-1@client.example"))
        .await;
    wait_for_cases(&store, 1).await;
    assert_eq!(server.grants().len(), 1);

    // Wait until the first token is dead for Dovecot too (an introspection says inactive).
    let first_token_dead = Instant::now() + WAIT;
    loop {
        if server.live_tokens() == 0 {
            break;
        }
        assert!(Instant::now() < first_token_dead, "the token never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    imap.kick("complaints");
    imap.append("INBOX", &complaint("idle-2@client.example"))
        .await;
    wait_for_cases(&store, 2).await;
    assert!(server.grants().len() >= 2, "a new token was obtained");
    wait_for_xoauth2_logins(&imap, 2).await;
    // The case is committed before its batch is moved out of INBOX: wait for the move.
    imap.wait_for_count("INBOX", 0, WAIT).await;

    stop_tx.send(()).unwrap();
    tokio::time::timeout(WAIT, daemon)
        .await
        .expect("the daemon stops")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_replaced_once_and_oauthbearer_works_too() {
    let server = TokenServer::start("complaints", Duration::from_secs(3600));
    let imap = oauth2_dovecot(&server, false);
    let tmp = tempfile::tempdir().unwrap();
    let text = config_text(
        tmp.path(),
        &imap,
        &file_outgoing(tmp.path()),
        &oauth2_section(
            &server,
            "client_credentials",
            "client_secret_env = \"KP_CLIENT_SECRET\"",
        ),
    );
    let config = load(&text, &server.client_secret);
    let tokens = config.oauth2.clone().unwrap();

    // OAUTHBEARER (RFC 7628), chosen explicitly.
    let client = imap.connect(Security::Tls).await.unwrap();
    let mut session = klachtpost::oauth2::imap::authenticate_with(
        client,
        Mechanism::OAuthBearer,
        "complaints",
        "127.0.0.1",
        imap.imaps_port,
        &tokens,
        WAIT,
    )
    .await
    .unwrap();
    session.noop().await.unwrap();
    session.logout().await.unwrap();
    assert!(imap.log().contains("method=OAUTHBEARER"), "{}", imap.log());

    // The provider revokes the token early: the login is refused, a new token obtained,
    // and the login tried again on the same connection.
    server.revoke_access_tokens();
    let client = imap.connect(Security::Tls).await.unwrap();
    let mut session = klachtpost::oauth2::imap::authenticate(
        client,
        "complaints",
        "127.0.0.1",
        imap.imaps_port,
        &tokens,
        WAIT,
    )
    .await
    .unwrap();
    session.noop().await.unwrap();
    assert_eq!(server.grants().len(), 2);
    assert_eq!(server.introspections().1, 1, "one refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_reports_each_step_and_names_a_revoked_client_secret() {
    let server = TokenServer::start("complaints", Duration::from_secs(3600));
    let imap = oauth2_dovecot(&server, true);
    let postfix = Postfix::start(&imap);
    let tmp = tempfile::tempdir().unwrap();
    let outgoing = format!(
        "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"starttls\"\nauth = \"oauth2\"\nusername = \"{}\"\nca_file = \"{}\"\nfrom = \"klachten@firma.nl\"",
        postfix.smtp_port,
        imap.user,
        imap.ca_pem.display()
    );
    let text = config_text(
        tmp.path(),
        &imap,
        &outgoing,
        &oauth2_section(
            &server,
            "client_credentials",
            "client_secret_env = \"KP_CLIENT_SECRET\"",
        ),
    );
    let path = tmp.path().join("klachtpost.toml");
    std::fs::write(&path, &text).unwrap();
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_klachtpost"))
            .args(["check-config", "--config"])
            .arg(&path)
            .env("KP_CLIENT_SECRET", &server.client_secret)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(&server.client_secret), "{all}");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };

    let (ok, stdout) = check();
    assert!(ok, "{stdout}\n{}\n{}", imap.log(), postfix.log());
    assert!(
        stdout.contains("oauth2: obtained an access token"),
        "{stdout}"
    );
    assert!(stdout.contains("mailbox: logged in"), "{stdout}");
    assert!(
        stdout.contains("outgoing: connected") && stdout.contains("logged in with OAuth2"),
        "{stdout}"
    );
    // Postfix counts the successful AUTH (check-config sends no mail).
    // Postfix writes its log through postlogd, a moment after the session.
    postfix.wait_for_log("auth=1", 1, WAIT).await;

    // The administrator deleted the client secret in Entra: every step says why.
    server.revoke_client_secret();
    let (ok, stdout) = check();
    assert!(!ok);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("oauth2:"))
        .unwrap_or_default();
    assert!(line.contains("(client_secret)"), "{stdout}");
    assert!(
        line.contains("client secret is wrong or has expired"),
        "{stdout}"
    );
    assert!(line.contains("AADSTS7000215"), "{stdout}");
    for edge in ["mailbox:", "outgoing:"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(edge))
            .unwrap_or_default();
        assert!(line.contains("client secret is wrong"), "{edge} {stdout}");
    }
}

/// The daemon with a client secret that no longer works: the log says why (the cause by
/// name), never shows the secret, and the daemon keeps trying with backoff. It is a
/// mailbox outage like any other: once it has lasted `alert_after`, the partners are told
/// once, with the cause, and `klachtpost status` shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_client_secret_is_logged_by_cause_and_reported_to_the_partners_once() {
    let server = TokenServer::start("complaints", Duration::from_secs(3600));
    let imap = oauth2_dovecot(&server, false);
    let tmp = tempfile::tempdir().unwrap();
    let text = config_text(
        tmp.path(),
        &imap,
        &file_outgoing(tmp.path()),
        &oauth2_section(
            &server,
            "client_credentials",
            "client_secret_env = \"KP_CLIENT_SECRET\"",
        ),
    ) + "\n[alerts]\nalert_after = \"1 s\"\n";
    let path = tmp.path().join("klachtpost.toml");
    std::fs::write(&path, &text).unwrap();
    let old_secret = server.client_secret.clone();
    server.revoke_client_secret();
    let log = tmp.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_klachtpost"))
        .args(["run", "--config"])
        .arg(&path)
        .env("KP_CLIENT_SECRET", &old_secret)
        .env("KLACHTPOST_LOG", "info")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let outbox = tmp.path().join("outbox");
    let deadline = Instant::now() + WAIT;
    let notice = loop {
        let notices = partner_notices(&outbox);
        let failures = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("oauth2.token_failed")
            .count();
        // The notice, and a further failed attempt after it (so a second notice would show).
        if notices.len() == 1 && failures >= 3 {
            break notices.into_iter().next().unwrap();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!(
                "{} notice(s), {failures} failure(s) within {WAIT:?}:\n{}",
                notices.len(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let status = Command::new(env!("CARGO_BIN_EXE_klachtpost"))
        .args(["status", "--config"])
        .arg(&path)
        .env("KP_CLIENT_SECRET", &old_secret)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();

    let line = text
        .lines()
        .find(|l| l.contains("oauth2.token_failed"))
        .unwrap();
    assert!(line.contains("cause=\"client_secret\""), "{line}");
    assert!(line.contains("AADSTS7000215"), "{line}");
    assert!(!text.contains(&old_secret), "{text}");
    assert!(server.grants().is_empty());

    assert_eq!(partner_notices(&outbox).len(), 1, "told once");
    assert_eq!(
        notice.subject,
        "klachtpost: storing, de klachtenmailbox werkt niet"
    );
    assert!(
        notice
            .text
            .contains("client secret is wrong or has expired"),
        "{}",
        notice.text
    );
    assert!(!notice.text.contains(&old_secret));
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("mailbox failing since"), "{status}");
}

/// The partners' outage and recovery notices the file transport wrote.
fn partner_notices(outbox: &Path) -> Vec<klachtpost::parse::ParsedMail> {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| klachtpost::parse::parse(&std::fs::read(e.path()).unwrap()))
        .filter(|m| m.subject.starts_with("klachtpost:"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_is_sent_through_postfix_with_xoauth2() {
    let server = TokenServer::start("complaints", Duration::from_secs(3600));
    let imap = oauth2_dovecot(&server, true);
    let postfix = Postfix::start(&imap);
    let marieke = imap.add_user("marieke");
    let tmp = tempfile::tempdir().unwrap();
    let outgoing = format!(
        "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"tls\"\nauth = \"oauth2\"\nusername = \"{}\"\nca_file = \"{}\"\nfrom = \"klachten@firma.nl\"",
        postfix.submissions_port,
        imap.user,
        imap.ca_pem.display()
    );
    let text = config_text(
        tmp.path(),
        &imap,
        &outgoing,
        &oauth2_section(
            &server,
            "client_credentials",
            "client_secret_env = \"KP_CLIENT_SECRET\"",
        ),
    );
    let config = load(&text, &server.client_secret);
    imap.append("INBOX", &complaint("smtp-1@client.example"))
        .await;
    let store = run_once(&config).await;
    assert_eq!(store.list_cases().await.unwrap().len(), 1);

    let inbox = imap.as_user(&marieke);
    inbox.wait_for_count("INBOX", 1, WAIT).await;
    let ack = klachtpost::parse::parse(&inbox.fetch_all("INBOX").await[0]);
    assert!(
        ack.subject.contains("Ontvangstbevestiging"),
        "{}",
        ack.subject
    );
    let log = postfix.log();
    assert!(
        log.contains("sasl_method=XOAUTH2, sasl_username=complaints"),
        "{log}"
    );
    // One token served both the mailbox and the sender.
    assert_eq!(server.grants(), vec!["client_credentials"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_runs_the_device_code_flow_and_stores_the_refresh_token() {
    let server = TokenServer::start("complaints", Duration::from_secs(3600));
    let imap = oauth2_dovecot(&server, false);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("state/refresh-token");
    std::fs::create_dir(tmp.path().join("state")).unwrap();
    let text = config_text(
        tmp.path(),
        &imap,
        &file_outgoing(tmp.path()),
        &oauth2_section(
            &server,
            "refresh_token",
            &format!("refresh_token_file = \"{}\"", file.display()),
        ),
    );
    let path = tmp.path().join("klachtpost.toml");
    std::fs::write(&path, &text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_klachtpost"))
        .args(["oauth2", "authorize", "--config"])
        .arg(&path)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The person opens the URL and enters the code once it is shown.
    let deadline = Instant::now() + WAIT;
    while server.pending_devices() == 0 {
        assert!(Instant::now() < deadline, "no device code was asked for");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.approve_devices();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("https://microsoft.com/devicelogin"),
        "{stdout}"
    );
    assert!(stdout.contains("KLACHT-42"), "{stdout}");
    let stored = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(server.is_refresh_token_valid(&stored));
    assert!(!stdout.contains(&stored), "the token is not printed");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // And the daemon logs in with it.
    imap.append("INBOX", &complaint("dev-1@client.example"))
        .await;
    let store = run_once(&load(&text, "")).await;
    assert_eq!(store.list_cases().await.unwrap().len(), 1);
    assert_eq!(server.grants(), vec!["device_code", "refresh_token"]);
}
