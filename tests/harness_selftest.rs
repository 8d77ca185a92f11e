//! Proves the real-server harness in `tests/support` works: Dovecot over plain, STARTTLS and
//! implicit TLS, byte-exact APPEND/FETCH, smtp-sink with lettre, and fault injection.

mod support;

use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use support::{Dovecot, ImapStream, Security, SmtpSink};

/// A message with what tends to break byte-exactness: 8-bit UTF-8 in a header and the body,
/// a line starting with "." (dot-stuffed in SMTP), empty lines, a long line, trailing spaces.
fn tricky_message() -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(b"From: Jos \xc3\xa9\xc3\xa9n <jos@example.org>\r\n");
    m.extend_from_slice(b"To: klachten@example.com\r\n");
    m.extend_from_slice(b"Subject: Klacht over bestelling \xe2\x82\xac 12,50\r\n");
    m.extend_from_slice(b"Message-ID: <selftest-1@example.org>\r\n");
    m.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    m.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n");
    m.extend_from_slice(b"\r\n");
    m.extend_from_slice(b"Geachte heer/mevrouw,  \r\n");
    m.extend_from_slice(b"\r\n");
    m.extend_from_slice(b".Een regel met een punt vooraan.\r\n");
    m.extend_from_slice(b"..en twee.\r\n");
    m.extend_from_slice(b".\r\n");
    m.extend_from_slice(&[b'x'; 900]);
    m.extend_from_slice(b"\r\n\r\n\r\nMet vriendelijke groet, \xc3\xa9\r\n");
    m
}

#[tokio::test]
async fn dovecot_logs_in_over_plain_starttls_and_tls() {
    let started = Instant::now();
    let dovecot = Dovecot::start();
    eprintln!("Dovecot ready after {:?}", started.elapsed());

    for security in [Security::Plain, Security::StartTls, Security::Tls] {
        let mut session = dovecot
            .login(security)
            .await
            .unwrap_or_else(|e| panic!("{security:?} login: {e}\n{}", dovecot.log()));
        let is_tls = matches!(session.get_ref(), ImapStream::Tls(_));
        assert_eq!(is_tls, security != Security::Plain, "{security:?}");
        let inbox = session.select("INBOX").await.expect("SELECT INBOX");
        assert_eq!(inbox.exists, 0);
        session.logout().await.expect("LOGOUT");
    }

    // The log confirms what the server saw: one plaintext and two TLS logins.
    let log = dovecot
        .wait_for_log("Login: user=<complaints>", 3, Duration::from_secs(2))
        .await;
    assert_eq!(log.matches("Login: user=<complaints>").count(), 3, "{log}");
    assert_eq!(log.matches(", TLS, session=").count(), 2, "{log}");

    // A wrong password is refused, without Dovecot's default 2 s delay (it answers failures
    // on a 0.5 s timer).
    let started = Instant::now();
    let client = dovecot.connect(Security::Plain).await.expect("connect");
    let refused = client.login(&dovecot.user, "wrong").await;
    assert!(refused.is_err());
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn the_test_ca_is_trusted_for_localhost_and_refused_without_it() {
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::pki_types::ServerName;

    let dovecot = Dovecot::start();
    let tcp = tokio::net::TcpStream::connect((dovecot.host, dovecot.imaps_port))
        .await
        .unwrap();
    let connector = TlsConnector::from(support::client_config(&dovecot.ca_pem));
    let name = ServerName::try_from("localhost").unwrap();
    connector
        .connect(name, tcp)
        .await
        .expect("the leaf names localhost too");

    // With only the public web roots, the handshake must fail: the harness really checks.
    let roots = tokio_rustls::rustls::RootCertStore::from_iter(
        webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
    );
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let untrusting = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect((dovecot.host, dovecot.imaps_port))
        .await
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let refused = TlsConnector::from(std::sync::Arc::new(untrusting))
        .connect(name, tcp)
        .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn append_and_fetch_round_trip_bytes_exactly() {
    let dovecot = Dovecot::start();
    let first = tricky_message();
    let second = b"Subject: tweede\r\n\r\nkort\r\n".to_vec();

    dovecot.append("INBOX", &first).await;
    dovecot.append("INBOX", &second).await;
    assert_eq!(dovecot.count("INBOX").await, 2);
    assert_eq!(
        dovecot.fetch_all("INBOX").await,
        vec![first.clone(), second]
    );

    // Folders: '/' is the separator, and '.' is allowed in names (sdbox).
    dovecot.create_folder("Klachten").await;
    dovecot.create_folder("Klachten/Afgehandeld 2024.1").await;
    dovecot.append("Klachten/Afgehandeld 2024.1", &first).await;
    assert_eq!(dovecot.count("Klachten").await, 0);
    assert_eq!(
        dovecot.fetch_all("Klachten/Afgehandeld 2024.1").await,
        vec![first]
    );
    // fetch_all peeks: nothing became \Seen.
    let mut session = dovecot.login(Security::Plain).await.unwrap();
    session.select("INBOX").await.unwrap();
    let unseen = session.search("UNSEEN").await.unwrap();
    assert_eq!(unseen.len(), 2);
    session.logout().await.unwrap();
}

#[tokio::test]
async fn wait_for_count_sees_mail_that_arrives_later() {
    let dovecot = std::sync::Arc::new(Dovecot::start());
    let writer = dovecot.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        writer.create_folder("Later").await;
        writer.append("Later", b"Subject: later\r\n\r\n.\r\n").await;
    });
    // The folder does not exist yet when polling starts.
    let started = Instant::now();
    dovecot
        .wait_for_count("Later", 1, Duration::from_secs(5))
        .await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    dovecot
        .wait_for_count("INBOX", 0, Duration::from_secs(1))
        .await;
}

#[tokio::test]
async fn more_users_have_their_own_mailboxes() {
    let dovecot = Dovecot::start();
    let klager = dovecot.add_user("klager");
    let as_klager = dovecot.as_user(&klager);
    as_klager
        .append("INBOX", b"Subject: ontvangstbevestiging\r\n\r\nDank u.\r\n")
        .await;
    assert_eq!(as_klager.count("INBOX").await, 1);
    assert_eq!(dovecot.count("INBOX").await, 0);

    // user@domain logs in to the same mailbox (username_format=%n).
    let with_domain = support::Account {
        user: "klager@example.org".into(),
        password: klager.password.clone(),
    };
    assert_eq!(dovecot.as_user(&with_domain).count("INBOX").await, 1);
}

#[test]
fn two_dovecots_in_parallel_do_not_collide() {
    let started = Instant::now();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(Dovecot::start);
        let b = s.spawn(Dovecot::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    eprintln!("two Dovecots ready after {:?}", started.elapsed());
    let ports = [a.imap_port, a.imaps_port, b.imap_port, b.imaps_port];
    let distinct: std::collections::HashSet<_> = ports.iter().collect();
    assert_eq!(distinct.len(), 4, "{ports:?}");
    assert_ne!(a.dir, b.dir);
    assert_ne!(a.password, b.password);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        a.append("INBOX", b"Subject: a\r\n\r\na\r\n").await;
        assert_eq!(a.count("INBOX").await, 1);
        assert_eq!(b.count("INBOX").await, 0);
        // Each one's password only works on its own server.
        let client = b.connect(Security::Plain).await.unwrap();
        assert!(client.login(&a.user, &a.password).await.is_err());
    });

    let stopping = Instant::now();
    drop(a);
    drop(b);
    eprintln!("two Dovecots stopped after {:?}", stopping.elapsed());
}

#[test]
fn a_taken_port_makes_the_start_retry_with_others() {
    // Held for the whole test: whoever binds it fails.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();

    let free = || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    // First attempt: the IMAP port is taken. Second: the IMAPS port. Third: fresh ports.
    support::force_next_ports(&[taken_port, free(), free(), taken_port]);
    let dovecot = Dovecot::start();
    assert_ne!(dovecot.imap_port, taken_port);
    assert_ne!(dovecot.imaps_port, taken_port);

    support::force_next_ports(&[taken_port]);
    let sink = SmtpSink::start(&[]);
    assert_ne!(sink.port, taken_port);

    // smtp-sink sets SO_REUSEPORT, so a second one on the same port binds without error
    // and would get half the connections: the harness must notice and move it.
    support::force_next_ports(&[sink.port]);
    let second = SmtpSink::start(&[]);
    assert_ne!(second.port, sink.port);
}

fn lettre_to(sink: &SmtpSink) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(sink.host)
        .port(sink.port)
        .timeout(Some(Duration::from_secs(5)))
        .build()
}

#[tokio::test]
async fn smtp_sink_keeps_envelope_and_exact_data() {
    let started = Instant::now();
    let sink = SmtpSink::start(&[]);
    eprintln!("smtp-sink ready after {:?}", started.elapsed());
    let mailer = lettre_to(&sink);
    let envelope = Envelope::new(
        Some("klachten@example.com".parse().unwrap()),
        vec![
            "jos@example.org".parse().unwrap(),
            "archief@example.com".parse().unwrap(),
        ],
    )
    .unwrap();
    let data = tricky_message();
    mailer.send_raw(&envelope, &data).await.expect("send");
    // Without a final CRLF, what lettre sends is the message plus that CRLF.
    let second = b"Subject: nog een\r\n\r\nx".to_vec();
    let only_jos = Envelope::new(None, vec!["jos@example.org".parse().unwrap()]).unwrap();
    mailer.send_raw(&only_jos, &second).await.expect("send");

    // Sent means stored: no waiting needed once the client has its 250.
    let got = sink.messages();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].mail_from, "klachten@example.com");
    assert_eq!(got[0].rcpt_to, ["jos@example.org", "archief@example.com"]);
    // lettre always ends DATA with "\r\n.\r\n", even after a final CRLF, so the server
    // receives one more empty line than was passed to send_raw (RFC 5321 §4.1.1.4 counts
    // the first CRLF of the terminator as the end of the last line).
    let mut received = data.clone();
    received.extend_from_slice(b"\r\n");
    assert_eq!(got[0].data, received);
    assert!(got[0].helo.is_some());
    assert_eq!(got[1].mail_from, "");
    assert_eq!(got[1].rcpt_to, ["jos@example.org"]);
    assert_eq!(got[1].data, b"Subject: nog een\r\n\r\nx\r\n");
    assert_eq!(sink.wait_for(2, Duration::from_secs(1)).await, got);
}

#[tokio::test]
async fn wait_for_sees_mail_sent_concurrently() {
    let sink = SmtpSink::start(&[]);
    let mailer = lettre_to(&sink);
    let envelope = Envelope::new(
        Some("a@example.com".parse().unwrap()),
        vec!["b@example.org".parse().unwrap()],
    )
    .unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        mailer
            .send_raw(&envelope, b"Subject: x\r\n\r\ny")
            .await
            .unwrap();
    });
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].data, b"Subject: x\r\n\r\ny\r\n");
}

#[tokio::test]
async fn smtp_sink_faults_are_transient_or_permanent() {
    let envelope = Envelope::new(
        Some("klachten@example.com".parse().unwrap()),
        vec!["jos@example.org".parse().unwrap()],
    )
    .unwrap();
    let data = b"Subject: x\r\n\r\ny\r\n";

    let soft = SmtpSink::start(&["-r", "rcpt"]);
    let err = lettre_to(&soft)
        .send_raw(&envelope, data)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.status().map(|c| c.to_string()), Some("450".into()));
    assert!(soft.messages().is_empty());

    let hard = SmtpSink::start(&["-f", "rcpt"]);
    let err = lettre_to(&hard)
        .send_raw(&envelope, data)
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert!(hard.messages().is_empty());

    // Rejecting the final "." is a transient failure after all data was sent.
    let after_data = SmtpSink::start(&["-r", "."]);
    let err = lettre_to(&after_data)
        .send_raw(&envelope, data)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");

    // Hanging up without a reply is neither: no SMTP status at all.
    let hangup = SmtpSink::start(&["-q", "data"]);
    let err = lettre_to(&hangup)
        .send_raw(&envelope, data)
        .await
        .unwrap_err();
    assert!(!err.is_transient() && !err.is_permanent(), "{err:?}");
    assert!(hangup.messages().is_empty());
}

mod postfix {
    use super::*;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use support::{DovecotOptions, Postfix};

    fn tls_parameters(ca_pem: &std::path::Path) -> TlsParameters {
        let ca = Certificate::from_pem(&std::fs::read(ca_pem).unwrap()).unwrap();
        TlsParameters::builder("127.0.0.1".into())
            .add_root_certificate(ca)
            .build_rustls()
            .unwrap()
    }

    fn message(subject: &str) -> Vec<u8> {
        format!(
            "From: klachten@example.com\r\nTo: jos@example.org\r\nSubject: {subject}\r\n\
             Message-ID: <{subject}@example.com>\r\n\r\nUw klacht is ontvangen.\r\n"
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn postfix_delivers_over_starttls_and_tls_into_the_complainants_mailbox() {
        let started = Instant::now();
        let dovecot = Dovecot::start_with(DovecotOptions::for_postfix());
        let postfix = Postfix::start(&dovecot);
        eprintln!("Dovecot + Postfix ready after {:?}", started.elapsed());
        let jos = dovecot.add_user("jos");
        let envelope = Envelope::new(
            Some("klachten@example.com".parse().unwrap()),
            vec!["jos@example.org".parse().unwrap()],
        )
        .unwrap();
        let credentials = Credentials::new(dovecot.user.clone(), dovecot.password.clone());

        // STARTTLS on the smtp port, with AUTH as the complaints account.
        let starttls = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(postfix.host)
            .port(postfix.smtp_port)
            .tls(Tls::Required(tls_parameters(&postfix.ca_pem)))
            .credentials(credentials.clone())
            .timeout(Some(Duration::from_secs(5)))
            .build();
        starttls
            .send_raw(&envelope, &message("starttls"))
            .await
            .unwrap_or_else(|e| panic!("send: {e}\n{}", postfix.log()));

        // Implicit TLS on the submissions port.
        let implicit = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(postfix.host)
            .port(postfix.submissions_port)
            .tls(Tls::Wrapper(tls_parameters(&postfix.ca_pem)))
            .credentials(credentials)
            .timeout(Some(Duration::from_secs(5)))
            .build();
        implicit
            .send_raw(&envelope, &message("implicit"))
            .await
            .unwrap_or_else(|e| panic!("send: {e}\n{}", postfix.log()));

        let as_jos = dovecot.as_user(&jos);
        let sent = Instant::now();
        as_jos
            .wait_for_count("INBOX", 2, Duration::from_secs(10))
            .await;
        eprintln!("both delivered {:?} after sending", sent.elapsed());
        let mut subjects: Vec<String> = as_jos
            .fetch_all("INBOX")
            .await
            .iter()
            .map(|raw| {
                let text = String::from_utf8_lossy(raw);
                let line = text.lines().find(|l| l.starts_with("Subject: ")).unwrap();
                line.trim_start_matches("Subject: ").to_owned()
            })
            .collect();
        subjects.sort();
        assert_eq!(subjects, ["implicit", "starttls"]);
        let log = postfix
            .wait_for_log("status=sent", 2, Duration::from_secs(2))
            .await;
        assert_eq!(log.matches("status=sent").count(), 2, "{log}");
        assert_eq!(log.matches("sasl_username=complaints").count(), 2, "{log}");
    }

    #[tokio::test]
    async fn postfix_refuses_a_wrong_password_permanently() {
        let dovecot = Dovecot::start_with(DovecotOptions::for_postfix());
        let postfix = Postfix::start(&dovecot);
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(postfix.host)
            .port(postfix.submissions_port)
            .tls(Tls::Wrapper(tls_parameters(&postfix.ca_pem)))
            .credentials(Credentials::new(dovecot.user.clone(), "wrong".into()))
            .timeout(Some(Duration::from_secs(5)))
            .build();
        let envelope = Envelope::new(None, vec!["jos@example.org".parse().unwrap()]).unwrap();
        let err = mailer.send_raw(&envelope, &message("x")).await.unwrap_err();
        assert!(err.is_permanent(), "{err:?}");
        assert_eq!(err.status().map(|c| c.to_string()), Some("535".into()));
    }
}

mod postgres {
    //! The private PostgreSQL and the config builder that points tests at it.

    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use sqlx::Row;

    use crate::support::{
        self, Backend, PASSWORD_ENV, PgOptions, Postgres, Secret, TestCa, TestConfig, TestDatabase,
    };

    /// Set in the child process of the exit tests: `exit` returns at once, `hang` waits to
    /// be killed.
    const CHILD_ENV: &str = "KP_SELFTEST_POSTGRES_CHILD";

    fn uid_of(pid: u32) -> u32 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Whether `pid` is (still) a PostgreSQL process.
    fn is_postgres(pid: u32) -> bool {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|cmdline| String::from_utf8_lossy(&cmdline).contains("postgres"))
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn postgres_runs_unprivileged_tuned_for_tests_with_password_logins() {
        let started = Instant::now();
        let pg = Postgres::shared();
        eprintln!("PostgreSQL ready after {:?}", started.elapsed());
        assert!(is_postgres(pg.pid()));
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            assert_ne!(
                uid_of(pg.pid()),
                0,
                "PostgreSQL refuses root; it must not run as it"
            );
        }
        assert_eq!(pg.psql("postgres", "SHOW fsync"), "off");
        assert_eq!(pg.psql("postgres", "SHOW listen_addresses"), "127.0.0.1");

        // Each test gets its own database, owned by the login role.
        let a = pg.create_database();
        let b = pg.create_database();
        assert_ne!(a.name, b.name);
        pg.psql_as(&a.user, &a.password, &a.name, "CREATE TABLE t (x BIGINT)")
            .unwrap();
        let missing = pg
            .psql_as(&b.user, &b.password, &b.name, "SELECT COUNT(*) FROM t")
            .unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");

        // Passwords are checked (SCRAM over TCP, no trust), and the URL carries none.
        let refused = pg
            .psql_as(&a.user, "wrong", &a.name, "SELECT 1")
            .unwrap_err();
        assert!(
            refused.contains("password authentication failed"),
            "{refused}"
        );
        assert!(!a.url.contains(&a.password), "{}", a.url);
        let file = std::fs::read_to_string(&a.password_file).unwrap();
        assert_eq!(file.trim_end(), a.password);

        // The tests' own access works through sqlx's Any driver and through psql alike.
        let db = TestDatabase::Postgres(a.clone());
        db.tool("INSERT INTO t VALUES (41), (1)");
        let pool = db.connect().await;
        let row = sqlx::query(
            "SELECT CAST(SUM(x) AS BIGINT) AS sum, CAST(current_user AS TEXT) AS who FROM t",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(row.get::<i64, _>("sum"), 42);
        assert_eq!(row.get::<String, _>("who"), support::postgres::USER);
    }

    /// A private server (TLS with the test CA) is a second server beside the shared one, set
    /// up the same way, and goes away with its files when dropped.
    #[test]
    fn a_private_postgres_serves_tls_and_stops_when_dropped() {
        let shared = Postgres::shared();
        let ca = TestCa::new();
        let pg = Postgres::private(PgOptions { tls: Some(&ca) });
        assert_ne!((pg.pid(), pg.port), (shared.pid(), shared.port));
        assert!(is_postgres(pg.pid()));
        assert_eq!(pg.psql("postgres", "SHOW ssl"), "on");
        assert_eq!(pg.psql("postgres", "SHOW fsync"), "off");
        assert_eq!(shared.psql("postgres", "SHOW ssl"), "off");

        // The login role with its password, and psql (sslmode=prefer) goes over TLS.
        let db = pg.create_database();
        let ssl = pg
            .psql_as(
                &db.user,
                &db.password,
                &db.name,
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            )
            .unwrap();
        assert_eq!(ssl, "t");

        let (pid, dir) = (pg.pid(), pg.dir().to_owned());
        drop(pg);
        assert!(!is_postgres(pid), "still running after the drop");
        assert!(!dir.exists(), "{} left behind", dir.display());
        // The shared server is untouched.
        assert_eq!(shared.psql("postgres", "SELECT 1"), "1");
    }

    #[test]
    fn the_database_section_follows_the_backend_and_keeps_the_password_out() {
        let tmp = tempfile::tempdir().unwrap();
        let config = TestConfig::new(tmp.path());
        // Built twice for one dir (a restart): the same database.
        let again = TestConfig::new(tmp.path());
        assert_eq!(config.text(), again.text());
        let other = tempfile::tempdir().unwrap();
        assert_ne!(config.text(), TestConfig::new(other.path()).text());
        match config.database() {
            TestDatabase::Sqlite { file } => {
                assert_eq!(Backend::from_env(), Backend::Sqlite);
                assert_eq!(file, &tmp.path().join("k.db"));
                assert!(
                    config
                        .text()
                        .contains(&format!("url = \"sqlite://{}\"", file.display()))
                );
                assert_eq!(config.text(), config.file_text());
            }
            TestDatabase::Postgres(db) => {
                assert_eq!(Backend::from_env(), Backend::Postgres);
                assert!(
                    config
                        .text()
                        .contains(&format!("password_env = \"{PASSWORD_ENV}\""))
                );
                assert!(config.file_text().contains(&format!(
                    "password_file = \"{}\"",
                    db.password_file.display()
                )));
                assert!(!config.text().contains(&db.password));
                assert!(!config.file_text().contains(&db.password));
            }
        }
        // Both ways of passing a PostgreSQL password, whatever this pass runs on.
        let pg = TestDatabase::Postgres(Postgres::shared().create_database());
        assert!(pg.section(Secret::Env).contains("password_env"));
        assert!(pg.section(Secret::File).contains("password_file"));
        assert_eq!(pg.env()[0].0, PASSWORD_ENV);
    }

    #[test]
    fn postgres_stops_when_the_test_process_exits_or_is_killed() {
        if let Ok(mode) = std::env::var(CHILD_ENV).as_deref() {
            let pg = Postgres::shared();
            println!("postgres pid={} dir={}", pg.pid(), pg.dir().display());
            if mode == "hang" {
                loop {
                    std::thread::sleep(Duration::from_secs(60));
                }
            }
            return;
        }
        for mode in ["exit", "hang"] {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "postgres::postgres_stops_when_the_test_process_exits_or_is_killed",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, mode)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let (pid, dir) = loop {
                let line = lines.next().expect("the child names its server").unwrap();
                // After libtest's "test NAME ... " on the same line.
                if let Some((_, rest)) = line.split_once("postgres pid=") {
                    let (pid, dir) = rest.split_once(" dir=").unwrap();
                    break (pid.parse::<u32>().unwrap(), dir.to_owned());
                }
            };
            assert!(is_postgres(pid));
            if mode == "exit" {
                assert!(child.wait().unwrap().success());
                // The atexit hook stopped it and removed its files before the exit.
                assert!(!is_postgres(pid), "still running after a normal exit");
                assert!(!Path::new(&dir).exists(), "{dir} left behind");
            } else {
                child.kill().unwrap();
                child.wait().unwrap();
                // The parent-death signal makes it shut down; its files stay (no hook ran)
                // until the next start sweeps them away.
                let deadline = Instant::now() + Duration::from_secs(15);
                while is_postgres(pid) {
                    assert!(
                        Instant::now() < deadline,
                        "still running 15 s after SIGKILL"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                assert!(Path::new(&dir).exists());
                support::postgres::sweep_stale_clusters();
                assert!(!Path::new(&dir).exists(), "{dir} not swept");
            }
        }
    }
}
