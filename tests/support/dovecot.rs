//! A private Dovecot IMAP server per test, plus IMAP helpers that go through the real protocol
//! (async-imap as the client, tokio-rustls for TLS).
//!
//! Each instance has its own temp dir holding its config, certificates, passwd-file, runtime
//! sockets, log and mail, and listens on 127.0.0.1 only: an IMAP port (plain and STARTTLS)
//! and an IMAPS port (implicit TLS). It starts in a few tens of milliseconds and is stopped
//! when the value is dropped.

use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream as StdTcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::{IpAddr, ServerName};

use super::certs::{self, TestCa};
use super::process::{self, Listening, SystemUser};

const DOVECOT: &str = "/usr/sbin/dovecot";
const DOVECOT_LMTP: &str = "/usr/lib/dovecot/lmtp";

/// The account every instance starts with: the mailbox the daemon under test watches.
pub const MAIN_USER: &str = "complaints";

/// A user and password Dovecot accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub password: String,
}

/// How an IMAP client connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain TCP on `imap_port` (fine on loopback; Dovecot allows plaintext LOGIN here).
    Plain,
    /// `STARTTLS` on `imap_port`, then TLS.
    StartTls,
    /// Implicit TLS on `imaps_port`.
    Tls,
}

/// Options for [`Dovecot::start_with`].
#[derive(Clone, Debug, Default)]
pub struct DovecotOptions {
    /// Also listen for LMTP on 127.0.0.1 (needs the `dovecot-lmtpd` package), so an MTA
    /// can deliver into the mailboxes. See [`Dovecot::lmtp_port`].
    pub lmtp: bool,
    /// Also offer Dovecot's authentication service on a TCP port, so an MTA can check SMTP
    /// AUTH against the same users (Postfix's `smtpd_sasl_type = dovecot`).
    pub sasl: bool,
    /// Also accept OAuth2 bearer tokens (SASL XOAUTH2 and OAUTHBEARER, for IMAP and, with
    /// `sasl`, for Postfix), checked by Dovecot's own `oauth2` passdb against this RFC 7662
    /// introspection URL (see `super::oauth2::TokenServer`). Password logins keep working.
    /// Failed logins are not slowed down (no auth penalty), so tests of bad tokens are quick.
    pub oauth2_introspection_url: Option<String>,
    /// Replace the capabilities IMAP advertises after login (Dovecot's `imap_capability`),
    /// e.g. [`WITHOUT_MOVE`] to test a server that has no MOVE. The commands still work;
    /// only what a client is told changes, which is what a client decides by.
    pub imap_capability: Option<&'static str>,
}

/// Dovecot 2.3's own capabilities less MOVE (RFC 6851); UIDPLUS (RFC 4315) stays.
pub const WITHOUT_MOVE: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY SPECIAL-USE";
/// Without MOVE and without UIDPLUS: a server where a client cannot expunge one message.
pub const WITHOUT_MOVE_OR_UIDPLUS: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT THREAD=REFERENCES MULTIAPPEND UNSELECT CHILDREN NAMESPACE LIST-EXTENDED I18NLEVEL=1 ESEARCH SEARCHRES WITHIN LIST-STATUS SPECIAL-USE";

impl DovecotOptions {
    /// What [`super::Postfix`] needs: LMTP and SASL.
    pub fn for_postfix() -> DovecotOptions {
        DovecotOptions {
            lmtp: true,
            sasl: true,
            ..DovecotOptions::default()
        }
    }
}

/// A running Dovecot. Stopped (its whole process group is killed) on drop.
#[derive(Debug)]
pub struct Dovecot {
    /// Always `"127.0.0.1"`.
    pub host: &'static str,
    /// Plain IMAP with STARTTLS offered.
    pub imap_port: u16,
    /// IMAP over implicit TLS.
    pub imaps_port: u16,
    /// LMTP (plain, no auth) when started with `DovecotOptions { lmtp: true, .. }`.
    pub lmtp_port: Option<u16>,
    /// Dovecot's auth protocol for MTAs when started with `DovecotOptions { sasl: true, .. }`.
    pub auth_port: Option<u16>,
    /// The main account, [`MAIN_USER`], with a random password.
    pub user: String,
    pub password: String,
    /// The CA that signed the server certificate; clients trust this file.
    pub ca_pem: PathBuf,
    /// The instance's directory (config, `dovecot.log`, `mail/<user>`).
    pub dir: PathBuf,
    child: Child,
    greeting: String,
    stopped: bool,
    tls: Arc<ClientConfig>,
    /// Released after the server is stopped (fields drop after `Drop::drop`).
    _leases: Vec<process::PortLease>,
    _tmp: TempDir,
}

impl Dovecot {
    /// Starts a Dovecot with IMAP and IMAPS, panicking (with its log) if it cannot.
    pub fn start() -> Dovecot {
        Dovecot::start_with(DovecotOptions::default())
    }

    /// Starts a Dovecot with options, panicking (with its log) if it cannot.
    ///
    /// Ports are leased fresh for each attempt; if Dovecot cannot bind them (a process
    /// outside the harness took one in the meantime) it exits at once, and the start is
    /// retried with new ports. Ready means: our master holds the IMAP listener (seen in
    /// /proc), and a connection gets our own greeting (`login_greeting` carries a random
    /// token; imap-login only greets once the auth process answers, so LOGIN works at once).
    pub fn start_with(options: DovecotOptions) -> Dovecot {
        let tmp = tempfile::Builder::new()
            .prefix("klachtpost-dovecot-")
            .tempdir()
            .expect("create a temp dir for Dovecot");
        let dir = tmp.path().to_owned();
        // Dovecot's unprivileged processes must be able to reach the files in here.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the Dovecot dir");
        let certs = TestCa::in_dir(&dir);
        // As root, Dovecot's own system user; otherwise ourselves (see `SystemUser`).
        let user = SystemUser::for_server(&["dovecot", "nobody"]);
        let mail = dir.join("mail");
        std::fs::create_dir(&mail).expect("create the mail dir");
        process::hand_over(&mail, &user).expect("chown the mail dir to Dovecot's user");
        if options.lmtp && !Path::new(DOVECOT_LMTP).exists() {
            panic!("{DOVECOT_LMTP} is missing: install dovecot-lmtpd (scripts/install-deps)");
        }

        let password = process::random_token();
        write_passwd(&dir, &[(MAIN_USER, password.as_str())]);

        let mut last_error = String::new();
        for _attempt in 0..process::START_ATTEMPTS {
            let imap = process::pick_port();
            let imaps = process::pick_port();
            let lmtp = options.lmtp.then(process::pick_port);
            let auth = options.sasl.then(process::pick_port);
            let (imap_port, imaps_port) = (imap.port, imaps.port);
            let lmtp_port = lmtp.as_ref().map(|lease| lease.port);
            let auth_port = auth.as_ref().map(|lease| lease.port);
            let greeting = format!("klachtpost-test-{} ready.", process::random_token());
            let ports = Ports {
                imap: imap_port,
                imaps: imaps_port,
                lmtp: lmtp_port,
                auth: auth_port,
            };
            let mut conf = config(
                &dir,
                &user,
                &ports,
                &greeting,
                options.oauth2_introspection_url.as_deref(),
            );
            if let Some(caps) = options.imap_capability {
                writeln!(conf, "protocol imap {{\n  imap_capability = {caps}\n}}").unwrap();
            }
            std::fs::write(dir.join("dovecot.conf"), conf).expect("write dovecot.conf");

            let mut child = spawn_dovecot(&dir);
            match wait_ready(&mut child, &dir, imap_port, &greeting) {
                Ok(()) => {
                    let dovecot = Dovecot {
                        host: "127.0.0.1",
                        stopped: false,
                        imap_port,
                        imaps_port,
                        lmtp_port,
                        auth_port,
                        user: MAIN_USER.to_owned(),
                        password,
                        tls: certs.client_config(),
                        ca_pem: certs.ca_pem,
                        dir,
                        child,
                        greeting,
                        _leases: [Some(imap), Some(imaps), lmtp, auth]
                            .into_iter()
                            .flatten()
                            .collect(),
                        _tmp: tmp,
                    };
                    dovecot.create_inbox(MAIN_USER);
                    return dovecot;
                }
                Err(StartError::PortInUse(msg)) => last_error = msg,
                Err(StartError::Failed(msg)) => {
                    process::terminate(&mut child);
                    panic!("Dovecot did not start: {msg}\n--- dovecot.log ---\n{}", {
                        process::tail(&dir.join("dovecot.log"), 4000)
                    });
                }
            }
        }
        panic!(
            "Dovecot could not bind free ports in {} attempts; last error: {last_error}",
            process::START_ATTEMPTS
        );
    }

    /// Stops the server (its whole process group), as a crash or a maintenance window
    /// would: open connections are cut. The mail and the ports stay for [`Dovecot::restart`].
    pub fn stop(&mut self) {
        process::terminate(&mut self.child);
        self.stopped = true;
    }

    /// Starts the server again after [`Dovecot::stop`], same ports, same mail; returns once
    /// it greets.
    pub fn restart(&mut self) {
        assert!(self.stopped, "restart() after stop()");
        let deadline = Instant::now() + process::START_DEADLINE;
        loop {
            self.child = spawn_dovecot(&self.dir);
            match wait_ready(&mut self.child, &self.dir, self.imap_port, &self.greeting) {
                Ok(()) => break,
                // The old listener's socket may linger for a moment.
                Err(StartError::PortInUse(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(StartError::PortInUse(msg)) | Err(StartError::Failed(msg)) => {
                    process::terminate(&mut self.child);
                    panic!("Dovecot did not start again: {msg}\n{}", self.log());
                }
            }
        }
        self.stopped = false;
    }

    /// APPENDs `raw` to `folder` of the main account with `flags`, e.g. `"(\\Seen)"`.
    pub async fn append_flagged(&self, folder: &str, flags: &str, raw: &[u8]) {
        let user = self.main_user();
        let mut session = user.session().await;
        session
            .append(folder, Some(flags), None, raw)
            .await
            .unwrap_or_else(|e| user.fail(format!("APPEND to {folder}: {e}")));
        let _ = session.logout().await;
    }

    /// The flags of every message in `folder` of the main account, in UID order.
    pub async fn flags(&self, folder: &str) -> Vec<Vec<String>> {
        let user = self.main_user();
        let mut session = user.session().await;
        session
            .examine(folder)
            .await
            .unwrap_or_else(|e| user.fail(format!("EXAMINE {folder}: {e}")));
        let mut fetches: Vec<_> = session
            .uid_fetch("1:*", "FLAGS")
            .await
            .unwrap_or_else(|e| user.fail(format!("FETCH FLAGS in {folder}: {e}")))
            .try_collect()
            .await
            .unwrap_or_else(|e| user.fail(format!("FETCH FLAGS in {folder}: {e}")));
        fetches.sort_by_key(|f| f.uid);
        let flags = fetches
            .iter()
            .map(|f| f.flags().map(|fl| format!("{fl:?}")).collect())
            .collect();
        let _ = session.logout().await;
        flags
    }

    /// The main account.
    pub fn account(&self) -> Account {
        Account {
            user: self.user.clone(),
            password: self.password.clone(),
        }
    }

    /// Adds a user (e.g. a complainant, so a test can read what the daemon sent them) and
    /// returns its account. Dovecot rereads the passwd-file when it changes; every user's
    /// mail lives in `dir/mail/<user>` (the part before any `@`).
    pub fn add_user(&self, user: &str) -> Account {
        assert!(
            !user.is_empty() && !user.contains([':', '\n', '/', ' ']),
            "unusable user name {user:?}"
        );
        let path = self.dir.join("passwd");
        let mut passwd = std::fs::read_to_string(&path).expect("read the passwd-file");
        let password = process::random_token();
        writeln!(passwd, "{user}:{{PLAIN}}{password}").unwrap();
        write_atomically(&path, passwd.as_bytes());
        self.create_inbox(user);
        Account {
            user: user.to_owned(),
            password,
        }
    }

    /// Creates `user`'s INBOX on disk (`doveadm mailbox status` opens it, which creates it),
    /// so it exists before anyone delivers to it or asks about it. Otherwise an LMTP delivery
    /// and an IMAP STATUS that both find no INBOX both create it, and Dovecot 2.3's imap
    /// process can abort on the lost race ("Mailbox already exists", signal 6), ending the
    /// test's session with a broken pipe.
    fn create_inbox(&self, user: &str) {
        let out = Command::new("/usr/bin/doveadm")
            .arg("-c")
            .arg(self.dir.join("dovecot.conf"))
            .args(["mailbox", "status", "-u", user, "messages", "INBOX"])
            .output()
            .expect("run doveadm mailbox status");
        assert!(
            out.status.success(),
            "doveadm mailbox status -u {user} INBOX: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Ends every IMAP session of `user` (`doveadm kick`), as a server restart or an
    /// administrator would: a client must log in again, with whatever token it has now.
    pub fn kick(&self, user: &str) {
        let out = Command::new("/usr/bin/doveadm")
            .arg("-c")
            .arg(self.dir.join("dovecot.conf"))
            .arg("kick")
            .arg(user)
            .output()
            .expect("run doveadm kick");
        // doveadm kick exits 68 (EX_NOUSER) when nobody was connected.
        assert!(
            out.status.success() || out.status.code() == Some(68),
            "doveadm kick {user}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Dovecot's log so far (logins, deliveries, errors), for failure messages.
    pub fn log(&self) -> String {
        process::tail(&self.dir.join("dovecot.log"), usize::MAX)
    }

    /// Waits until `needle` occurs `n` times in the log (e.g. `"Login: user=<complaints>"`,
    /// `", TLS, session="`) and returns the log. Panics after `timeout`.
    pub async fn wait_for_log(&self, needle: &str, n: usize, timeout: Duration) -> String {
        process::wait_for_log(&self.dir.join("dovecot.log"), needle, n, timeout).await
    }

    /// The rustls client configuration that trusts this server's CA.
    pub fn tls_config(&self) -> Arc<ClientConfig> {
        self.tls.clone()
    }

    /// An IMAP client on a fresh connection, greeting read, not logged in.
    pub async fn connect(&self, security: Security) -> io::Result<ImapClient> {
        let port = match security {
            Security::Tls => self.imaps_port,
            Security::Plain | Security::StartTls => self.imap_port,
        };
        let tcp = TcpStream::connect((self.host, port)).await?;
        tcp.set_nodelay(true)?;
        let connector = TlsConnector::from(self.tls.clone());
        // The certificate names both `localhost` and `127.0.0.1`; the daemon will usually be
        // configured with the IP, so check that one.
        let server_name = ServerName::IpAddress(IpAddr::from(Ipv4Addr::LOCALHOST));
        let mut client = match security {
            Security::Tls => {
                let tls = connector.connect(server_name.clone(), tcp).await?;
                async_imap::Client::new(ImapStream::Tls(Box::new(tls)))
            }
            Security::Plain | Security::StartTls => async_imap::Client::new(ImapStream::Plain(tcp)),
        };
        read_greeting(&mut client).await?;
        if security == Security::StartTls {
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(io::Error::other)?;
            // RFC 3501 §6.2.1: no new greeting after the TLS handshake.
            let ImapStream::Plain(tcp) = client.into_inner() else {
                unreachable!("STARTTLS runs on a plain connection")
            };
            let tls = connector.connect(server_name, tcp).await?;
            client = async_imap::Client::new(ImapStream::Tls(Box::new(tls)));
        }
        Ok(client)
    }

    /// A logged-in session of the main account.
    pub async fn login(&self, security: Security) -> async_imap::error::Result<ImapSession> {
        self.login_as(&self.account(), security).await
    }

    /// A logged-in session of `account`.
    pub async fn login_as(
        &self,
        account: &Account,
        security: Security,
    ) -> async_imap::error::Result<ImapSession> {
        let client = self.connect(security).await?;
        client
            .login(&account.user, &account.password)
            .await
            .map_err(|(e, _client)| e)
    }

    /// Helpers acting as `account` (each opens its own plain connection).
    pub fn as_user(&self, account: &Account) -> UserImap<'_> {
        UserImap {
            dovecot: self,
            account: account.clone(),
        }
    }

    fn main_user(&self) -> UserImap<'_> {
        self.as_user(&self.account())
    }

    /// APPENDs `raw` to `folder` of the main account. Lines should end in CRLF (IMAP's
    /// canonical form, RFC 3501 §4.3): Dovecot stores bare LF and returns CRLF.
    pub async fn append(&self, folder: &str, raw: &[u8]) {
        self.main_user().append(folder, raw).await
    }

    /// APPENDs each of `raws` to `folder` of the main account, in order, in one session.
    pub async fn append_all(&self, folder: &str, raws: &[Vec<u8>]) {
        self.main_user().append_all(folder, raws).await
    }

    /// All messages in `folder` of the main account, in sequence order, exactly as the
    /// server returns them for `BODY.PEEK[]` (does not set `\Seen`).
    pub async fn fetch_all(&self, folder: &str) -> Vec<Vec<u8>> {
        self.main_user().fetch_all(folder).await
    }

    /// The number of messages in `folder` of the main account (STATUS MESSAGES).
    pub async fn count(&self, folder: &str) -> u32 {
        self.main_user().count(folder).await
    }

    /// Creates `folder` for the main account (fine if it exists). The hierarchy separator
    /// is `/`.
    pub async fn create_folder(&self, folder: &str) {
        self.main_user().create_folder(folder).await
    }

    /// Polls until `folder` of the main account holds exactly `n` messages; panics after
    /// `timeout` with the last count seen. A folder that does not exist counts as empty, so
    /// waiting for 1 also waits for the folder to be created.
    pub async fn wait_for_count(&self, folder: &str, n: u32, timeout: Duration) {
        self.main_user().wait_for_count(folder, n, timeout).await
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        process::terminate(&mut self.child);
    }
}

/// The IMAP helpers for one account; see [`Dovecot::as_user`]. They panic on failure, with
/// the server's answer, since they are test set-up and checks.
pub struct UserImap<'a> {
    dovecot: &'a Dovecot,
    account: Account,
}

impl UserImap<'_> {
    /// Panics with `what` and the end of Dovecot's log, which usually says why.
    fn fail(&self, what: String) -> ! {
        let log = process::tail(&self.dovecot.dir.join("dovecot.log"), 3000);
        panic!("{what}\n--- end of dovecot.log ---\n{log}")
    }

    async fn session(&self) -> ImapSession {
        self.dovecot
            .login_as(&self.account, Security::Plain)
            .await
            .unwrap_or_else(|e| self.fail(format!("IMAP login as {}: {e}", self.account.user)))
    }

    /// See [`Dovecot::append`].
    pub async fn append(&self, folder: &str, raw: &[u8]) {
        self.append_all(folder, std::slice::from_ref(&raw.to_vec()))
            .await
    }

    /// See [`Dovecot::append_all`].
    pub async fn append_all(&self, folder: &str, raws: &[Vec<u8>]) {
        let mut session = self.session().await;
        for raw in raws {
            session
                .append(folder, None, None, raw)
                .await
                .unwrap_or_else(|e| self.fail(format!("APPEND to {folder}: {e}")));
        }
        let _ = session.logout().await;
    }

    /// See [`Dovecot::fetch_all`].
    pub async fn fetch_all(&self, folder: &str) -> Vec<Vec<u8>> {
        let mut session = self.session().await;
        let mailbox = session
            .examine(folder)
            .await
            .unwrap_or_else(|e| self.fail(format!("EXAMINE {folder}: {e}")));
        let mut bodies = Vec::new();
        if mailbox.exists > 0 {
            let mut fetches: Vec<_> = session
                .fetch("1:*", "BODY.PEEK[]")
                .await
                .unwrap_or_else(|e| self.fail(format!("FETCH in {folder}: {e}")))
                .try_collect()
                .await
                .unwrap_or_else(|e| self.fail(format!("FETCH in {folder}: {e}")));
            fetches.sort_by_key(|f| f.message);
            bodies = fetches
                .iter()
                .map(|f| f.body().expect("FETCH returned BODY[]").to_vec())
                .collect();
        }
        let _ = session.logout().await;
        bodies
    }

    /// See [`Dovecot::count`].
    pub async fn count(&self, folder: &str) -> u32 {
        let mut session = self.session().await;
        let n = status_messages(&mut session, folder)
            .await
            .unwrap_or_else(|e| self.fail(format!("STATUS {folder}: {e}")));
        let _ = session.logout().await;
        n
    }

    /// See [`Dovecot::create_folder`].
    pub async fn create_folder(&self, folder: &str) {
        let mut session = self.session().await;
        match session.create(folder).await {
            Ok(()) => {}
            // Dovecot can answer this when another client's STATUS of the folder raced the
            // CREATE; the folder exists afterwards all the same (RFC 5530 §3).
            Err(async_imap::error::Error::No(text)) if text.contains("[ALREADYEXISTS]") => {}
            Err(e) => self.fail(format!("CREATE {folder}: {e}")),
        }
        let _ = session.logout().await;
    }

    /// See [`Dovecot::wait_for_count`]. Keeps one session and repeats LIST + STATUS every
    /// 20 ms.
    ///
    /// STATUS is only sent once LIST shows the folder: a STATUS that races with another
    /// client's CREATE of the same folder can make that CREATE fail with ALREADYEXISTS
    /// (seen with Dovecot 2.3 under load), which would break the code under test.
    pub async fn wait_for_count(&self, folder: &str, n: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut session = self.session().await;
        loop {
            let exists = folder_exists(&mut session, folder)
                .await
                .unwrap_or_else(|e| self.fail(format!("LIST {folder}: {e}")));
            let last = if !exists {
                "no such folder".to_owned()
            } else {
                match status_messages(&mut session, folder).await {
                    Ok(count) if count == n => break,
                    Ok(count) => format!("{count} messages"),
                    // LIST can show a folder whose CREATE is still running.
                    Err(async_imap::error::Error::No(text)) => format!("NO {text}"),
                    Err(e) => self.fail(format!("STATUS {folder}: {e}")),
                }
            };
            if !exists && n == 0 {
                break;
            }
            if Instant::now() >= deadline {
                self.fail(format!(
                    "{} did not have {n} messages in {folder} within {timeout:?}; last: {last}",
                    self.account.user
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = session.logout().await;
    }
}

async fn folder_exists(session: &mut ImapSession, folder: &str) -> async_imap::error::Result<bool> {
    let names: Vec<async_imap::types::Name> = session
        .list(Some(""), Some(folder))
        .await?
        .try_collect()
        .await?;
    let is_inbox = |name: &str| name.eq_ignore_ascii_case("INBOX");
    Ok(names
        .iter()
        .any(|name| name.name() == folder || (is_inbox(name.name()) && is_inbox(folder))))
}

async fn status_messages(
    session: &mut ImapSession,
    folder: &str,
) -> async_imap::error::Result<u32> {
    Ok(session.status(folder, "(MESSAGES)").await?.exists)
}

/// An async-imap client on a connection to the test Dovecot.
pub type ImapClient = async_imap::Client<ImapStream>;
/// A logged-in async-imap session on a connection to the test Dovecot.
pub type ImapSession = async_imap::Session<ImapStream>;

/// A connection that is plain or TLS, so one session type serves all three [`Security`]s.
#[derive(Debug)]
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

async fn read_greeting(client: &mut ImapClient) -> io::Result<()> {
    match client.read_response().await? {
        Some(_greeting) => Ok(()),
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before the IMAP greeting",
        )),
    }
}

struct Ports {
    imap: u16,
    imaps: u16,
    lmtp: Option<u16>,
    auth: Option<u16>,
}

/// The whole configuration; nothing from /etc/dovecot is read.
fn config(
    dir: &Path,
    user: &SystemUser,
    ports: &Ports,
    greeting: &str,
    oauth2: Option<&str>,
) -> String {
    let d = dir.display();
    let (imap_port, imaps_port) = (ports.imap, ports.imaps);
    let (name, group, uid, gid) = (&user.name, &user.group, user.uid, user.gid);
    let protocols = if ports.lmtp.is_some() {
        "imap lmtp"
    } else {
        "imap"
    };
    let mechanisms = if oauth2.is_some() {
        "plain login xoauth2 oauthbearer"
    } else {
        "plain login"
    };
    let (oauth2_passdb, passwd_mechanisms) = match oauth2 {
        Some(url) => {
            // RFC 7662 introspection by POST (the token as form field `token`); no cache,
            // so an expired or revoked token is refused at once.
            let ext = format!(
                "introspection_url = {url}\nintrospection_mode = post\n\
                 username_attribute = username\nactive_attribute = active\nactive_value = true\n"
            );
            std::fs::write(dir.join("dovecot-oauth2.conf.ext"), ext)
                .expect("write dovecot-oauth2.conf.ext");
            (
                format!(
                    "# Bearer tokens: checked by introspection at the test's token server.\n\
                     passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  \
                     args = {d}/dovecot-oauth2.conf.ext\n}}\n"
                ),
                "\n  mechanisms = plain login",
            )
        }
        None => (String::new(), ""),
    };
    let mut conf = format!(
        r#"# Written by tests/support/dovecot.rs for one test.
protocols = {protocols}
listen = 127.0.0.1
# Runtime sockets, state and logs stay inside the test dir (no syslog, no /run).
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
# Carries a random token, so the readiness check knows it reached this instance.
login_greeting = {greeting}

# Run every service as one unprivileged user (us, or {name} when root): Dovecot needs all
# three settings for that, and first_valid_uid/gid low enough to allow a system user.
default_internal_user = {name}
default_internal_group = {group}
default_login_user = {name}
first_valid_uid = {uid}
first_valid_gid = {gid}

# Plain LOGIN over the unencrypted port is fine on loopback, and tests of the plain mode
# need it. No added delay after a failed login (default 2 s), so wrong-password tests are
# quick; the auth process still answers failures on its 0.5 s timer.
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
auth_verbose = yes

# STARTTLS on the imap port, implicit TLS on imaps (below).
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
ssl_dh = </usr/share/dovecot/dh.pem

# sdbox: Dovecot's own format; unlike Maildir++ it allows '.' in folder names. Tests read
# mail through IMAP, so the on-disk format does not matter otherwise.
mail_location = sdbox:~/mail
namespace inbox {{
  inbox = yes
  # '/' is what most servers use.
  separator = /
}}
# The test does not survive a crash anyway; skipping fsync makes saving much faster.
mail_fsync = never
# Default 10 per user and IP: too few when a test opens many connections.
mail_max_userip_connections = 1000
# Needed by LMTP to send bounces (never happens here, but it must be set).
postmaster_address = postmaster@localhost

{oauth2_passdb}passdb {{
  driver = passwd-file
  # %n: "alice" and "alice@example.org" log in as the same user.
  args = scheme=PLAIN username_format=%n {d}/passwd{passwd_mechanisms}
}}
userdb {{
  driver = static
  # Any user the passdb knows (and any LMTP recipient) gets a mailbox under mail/.
  args = uid={uid} gid={gid} home={d}/mail/%n allow_all_users=yes
}}

service imap-login {{
  # No chroot: that needs root.
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No escalating delay (2, 4, 8, 15 s) after failed logins: tests refuse logins on
  # purpose, and a delayed SASL answer makes Postfix give up with 535 even after the
  # password is right.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth-worker {{
  # Default is root, which an unprivileged master cannot switch to.
  user = $default_internal_user
}}
"#
    );
    if let Some(auth_port) = ports.auth {
        write!(
            conf,
            r#"service auth {{
  # For Postfix's smtpd_sasl_path = inet:127.0.0.1:PORT (the default unix sockets stay).
  inet_listener sasl {{
    address = 127.0.0.1
    port = {auth_port}
  }}
}}
"#
        )
        .unwrap();
    }
    if let Some(lmtp_port) = ports.lmtp {
        write!(
            conf,
            r#"service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
protocol lmtp {{
  # Deliver to "alice@example.org" as user "alice", the same mailbox IMAP shows.
  auth_username_format = %n
}}
"#
        )
        .unwrap();
    }
    conf
}

fn write_passwd(dir: &Path, users: &[(&str, &str)]) {
    let mut passwd = String::new();
    for (user, password) in users {
        writeln!(passwd, "{user}:{{PLAIN}}{password}").unwrap();
    }
    write_atomically(&dir.join("passwd"), passwd.as_bytes());
}

/// Writes via a temporary file and rename, so Dovecot never reads half a passwd-file.
fn write_atomically(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).expect("write the passwd-file");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
        .expect("chmod the passwd-file");
    std::fs::rename(&tmp, path).expect("replace the passwd-file");
}

fn spawn_dovecot(dir: &Path) -> Child {
    let stderr = std::fs::File::create(dir.join("stderr")).expect("create Dovecot's stderr file");
    let mut cmd = Command::new(DOVECOT);
    // -F: stay in the foreground, so the master is our child: its exit (e.g. a failed bind)
    // is seen at once, and it can be stopped by pid.
    cmd.arg("-F")
        .arg("-c")
        .arg(dir.join("dovecot.conf"))
        .stdin(Stdio::null())
        .stdout(stderr.try_clone().expect("dup the stderr file"))
        .stderr(stderr);
    process::spawn(cmd, true).unwrap_or_else(|e| {
        panic!("cannot run {DOVECOT}: {e} (install it with scripts/install-deps)")
    })
}

enum StartError {
    PortInUse(String),
    Failed(String),
}

fn wait_ready(
    child: &mut Child,
    dir: &Path,
    imap_port: u16,
    greeting: &str,
) -> Result<(), StartError> {
    let deadline = Instant::now() + process::START_DEADLINE;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, imap_port));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let stderr = process::tail(&dir.join("stderr"), 4000);
            return Err(if stderr.contains("Address already in use") {
                StartError::PortInUse(stderr)
            } else {
                StartError::Failed(format!("dovecot exited with {status}: {stderr}"))
            });
        }
        // Only connect once our master holds the listening socket: a probe of a port that
        // some other process took would wait for a greeting that never comes. The master
        // binds all listeners before it starts any service (and exits if one fails), so
        // the IMAPS and LMTP ports are bound too by then.
        if process::listening(child.id(), imap_port) == Listening::Alone && greets(addr, greeting) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StartError::Failed(format!(
                "no greeting on port {imap_port} within {:?}",
                process::START_DEADLINE
            )));
        }
        std::thread::sleep(process::POLL);
    }
}

/// Whether the server on `addr` sends an IMAP greeting that contains `token`.
fn greets(addr: SocketAddr, token: &str) -> bool {
    let Ok(mut stream) = StdTcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .is_err()
    {
        return false;
    }
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") && line.len() < 1024 {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            _ => return false,
        }
    }
    let line = String::from_utf8_lossy(&line);
    line.starts_with("* OK") && line.contains(token)
}
