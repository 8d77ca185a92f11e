//! A private, full Postfix for SMTP over TLS, delivering every message into a test Dovecot
//! over LMTP: a test can then read what the daemon sent "in the complainant's mailbox".
//!
//! smtp-sink speaks no TLS, so this is the server for STARTTLS / implicit TLS / AUTH tests.
//! It accepts mail for any domain from 127.0.0.1 (no relay checks beyond that), offers
//! STARTTLS on `smtp_port` and implicit TLS on `submissions_port`, and AUTH PLAIN/LOGIN over
//! TLS against the Dovecot's users. Recipient `alice@anything` lands in Dovecot user `alice`.
//!
//! Needs root: Postfix's master refuses to run otherwise (as in CI and this project's
//! machines). Startup takes a few tens of milliseconds.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;

use super::dovecot::Dovecot;
use super::process::{self, Listening, SystemUser};

const MASTER: &str = "/usr/lib/postfix/sbin/master";

/// A running Postfix in front of a [`Dovecot`]. Stopped (with all its processes) on drop.
#[derive(Debug)]
pub struct Postfix {
    /// Always `"127.0.0.1"`.
    pub host: &'static str,
    /// SMTP with STARTTLS offered (not required); AUTH is offered after STARTTLS.
    pub smtp_port: u16,
    /// SMTP over implicit TLS (like port 465); AUTH offered.
    pub submissions_port: u16,
    /// The CA that signed the server certificate (the Dovecot's CA).
    pub ca_pem: PathBuf,
    /// The instance's directory: `conf/`, `queue/`, `maillog`.
    pub dir: PathBuf,
    child: Child,
    /// Kills the master's process group when the test process dies (see `spawn_watchdog`).
    watchdog: Child,
    /// Released after the server is stopped (fields drop after `Drop::drop`).
    _leases: Vec<process::PortLease>,
    _tmp: TempDir,
}

impl Postfix {
    /// Starts a Postfix that delivers into `dovecot` and authenticates against it, which must
    /// have been started with [`super::DovecotOptions::for_postfix`]. Panics (with the mail
    /// log) if it cannot start.
    pub fn start(dovecot: &Dovecot) -> Postfix {
        Self::start_with(dovecot, "")
    }

    /// [`Postfix::start`] with `extra` lines appended to main.cf (later settings win), e.g.
    /// `smtpd_recipient_restrictions = check_recipient_access inline:{ a@b.example=REJECT }`
    /// to refuse one recipient with 554 at RCPT.
    pub fn start_with(dovecot: &Dovecot, extra: &str) -> Postfix {
        assert!(
            process::is_root(),
            "Postfix's master runs only as root; run this test as root (as CI does)"
        );
        assert!(
            Path::new(MASTER).exists(),
            "{MASTER} is missing: install postfix with scripts/install-deps"
        );
        let (Some(lmtp_port), Some(auth_port)) = (dovecot.lmtp_port, dovecot.auth_port) else {
            panic!("start the Dovecot with DovecotOptions::for_postfix() (LMTP and SASL)")
        };

        let tmp = tempfile::Builder::new()
            .prefix("klachtpost-postfix-")
            .tempdir()
            .expect("create a temp dir for Postfix");
        let dir = tmp.path().to_owned();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the Postfix dir");
        make_queue(&dir);
        std::fs::create_dir(dir.join("conf")).expect("create the conf dir");
        // The certificate the Dovecot uses (signed by its CA) serves here too.
        for file in ["cert.pem", "key.pem"] {
            std::fs::copy(dovecot.dir.join(file), dir.join(file)).expect("copy the certificate");
        }

        let mut last_error = String::new();
        for _attempt in 0..process::START_ATTEMPTS {
            let smtp = process::pick_port();
            let submissions = process::pick_port();
            let (smtp_port, submissions_port) = (smtp.port, submissions.port);
            let conf = dir.join("conf");
            write_config(
                &conf.join("main.cf"),
                &format!("{}\n{extra}\n", main_cf(&dir, lmtp_port, auth_port)),
            );
            write_config(
                &conf.join("master.cf"),
                &master_cf(smtp_port, submissions_port),
            );

            let mut child = spawn_master(&dir);
            match wait_listening(&mut child, &[smtp_port, submissions_port]) {
                Ok(()) => {
                    let watchdog = spawn_watchdog(child.id());
                    return Postfix {
                        host: "127.0.0.1",
                        smtp_port,
                        submissions_port,
                        ca_pem: dovecot.ca_pem.clone(),
                        dir,
                        child,
                        watchdog,
                        _leases: vec![smtp, submissions],
                        _tmp: tmp,
                    };
                }
                Err(StartError::PortInUse) => {
                    process::terminate(&mut child);
                    last_error = format!("ports {smtp_port}, {submissions_port}");
                }
                Err(StartError::Failed(msg)) => {
                    process::terminate(&mut child);
                    panic!(
                        "Postfix did not start: {msg}\n--- output ---\n{}\n--- maillog ---\n{}",
                        process::tail(&dir.join("stderr"), 4000),
                        process::tail(&dir.join("maillog"), 4000)
                    );
                }
            }
        }
        panic!(
            "Postfix could not bind free ports in {} attempts; last: {last_error}",
            process::START_ATTEMPTS
        );
    }

    /// Postfix's log so far (each message's `status=sent`/`deferred` line is here).
    pub fn log(&self) -> String {
        process::tail(&self.dir.join("maillog"), usize::MAX)
    }
}

impl Postfix {
    /// Waits until `needle` occurs `n` times in the mail log (e.g. `"status=sent"`) and
    /// returns the log. Panics after `timeout`.
    pub async fn wait_for_log(&self, needle: &str, n: usize, timeout: Duration) -> String {
        process::wait_for_log(&self.dir.join("maillog"), needle, n, timeout).await
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        // The master makes itself a session leader, so its pid is its process group.
        process::terminate(&mut self.child);
        process::terminate(&mut self.watchdog);
    }
}

/// The queue directories with the owners and modes `postfix set-permissions` would give.
fn make_queue(dir: &Path) {
    let postfix = SystemUser::for_server(&["postfix"]);
    let postdrop_gid = group_id("postdrop").unwrap_or(postfix.gid);
    let queue = dir.join("queue");
    std::fs::create_dir(&queue).expect("create the queue dir");
    let private = [
        "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "private",
        "saved", "trace",
    ];
    for name in private {
        make_dir(&queue.join(name), postfix.uid, postfix.gid, 0o700);
    }
    make_dir(&queue.join("maildrop"), postfix.uid, postdrop_gid, 0o1730);
    make_dir(&queue.join("public"), postfix.uid, postdrop_gid, 0o2710);
    make_dir(&queue.join("pid"), 0, 0, 0o755);
    make_dir(&dir.join("data"), postfix.uid, postfix.gid, 0o700);
}

fn make_dir(path: &Path, uid: u32, gid: u32, mode: u32) {
    std::fs::create_dir(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn group_id(name: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        let _password = fields.next()?;
        fields.next()?.parse().ok()
    })
}

/// Writes a config file with an old modification time. Postfix rereads a file whose mtime
/// is not at least a second in the past (every 300 ms, in case it is still being written),
/// which made each start take 1.5 to 2.5 s.
fn write_config(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000); // 2001
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(old))
        .unwrap_or_else(|e| panic!("set the mtime of {}: {e}", path.display()));
}

fn main_cf(dir: &Path, lmtp_port: u16, auth_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"# Written by tests/support/postfix.rs for one test.
compatibility_level = 3.6
# Everything of this instance stays in the test dir.
queue_directory = {d}/queue
data_directory = {d}/data
# There is no syslog: log to a file (postlogd, see master.cf), which must be under an
# allowed prefix.
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
# Fixed names, so nothing depends on the machine's hostname or DNS.
myhostname = mx.klachtpost.test
mydomain = klachtpost.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtpd_peername_lookup = no
# No local delivery: every recipient domain is relayed, over LMTP, into the Dovecot.
mydestination =
local_recipient_maps =
default_transport = lmtp:inet:127.0.0.1:{lmtp_port}
relay_transport = lmtp:inet:127.0.0.1:{lmtp_port}
# Loopback clients may send anywhere, authenticated or not.
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject
# Tests want speed: no tarpit delays; retry a failed LMTP delivery within a second.
in_flow_delay = 0
smtpd_error_sleep_time = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
biff = no
# TLS with the test CA's leaf; STARTTLS offered, never required on the smtp port.
smtpd_tls_cert_file = {d}/cert.pem
smtpd_tls_key_file = {d}/key.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
# AUTH against the Dovecot's users, only once TLS is up.
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{auth_port}
smtpd_tls_auth_only = yes
"#
    )
}

/// The services Postfix needs, none chrooted (a chroot would need copies of system files).
fn master_cf(smtp_port: u16, submissions_port: u16) -> String {
    format!(
        r#"# service type private unpriv chroot wakeup maxproc command
127.0.0.1:{smtp_port} inet n - n - - smtpd
127.0.0.1:{submissions_port} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
lmtp      unix  - - n -    - lmtp
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
"#
    )
}

fn spawn_master(dir: &Path) -> Child {
    let stderr = std::fs::File::create(dir.join("stderr")).expect("create Postfix's output file");
    let mut cmd = Command::new(MASTER);
    // -c: our config dir (passed on to every service). -s: stay in the foreground, as our
    // child, without sending output to /dev/null.
    cmd.arg("-c")
        .arg(dir.join("conf"))
        .arg("-s")
        .stdin(Stdio::null())
        .stdout(stderr.try_clone().expect("dup the output file"))
        .stderr(stderr);
    process::spawn(cmd, false).unwrap_or_else(|e| panic!("cannot run {MASTER}: {e}"))
}

/// A shell that kills the master's process group when it gets SIGTERM, which
/// `process::spawn` arranges for when the test process dies.
///
/// The master itself cannot have that parent-death signal: the kernel clears it whenever a
/// process changes its effective uid, and the master briefly switches to the `postfix` user
/// at startup. A master left behind would keep its ports and the temp dir.
fn spawn_watchdog(master_pid: u32) -> Child {
    let script = format!(
        "trap 'kill -KILL -{master_pid}; kill -KILL 0' TERM; \
         while :; do sleep 3600 & wait $!; done"
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    process::spawn(cmd, true).unwrap_or_else(|e| panic!("cannot run /bin/sh: {e}"))
}

enum StartError {
    PortInUse,
    Failed(String),
}

/// Waits until the master listens on all `ports`.
///
/// The master sets SO_REUSEPORT, so another Postfix (or smtp-sink) of the same user can
/// listen on the same port: that counts as a port conflict too.
///
/// A master that cannot bind a port logs nothing anywhere (its log service is not up yet)
/// and exits with status 1 after Postfix's customary one-second pause; so an exit counts
/// as a port conflict when one of the ports is now taken by someone else.
fn wait_listening(child: &mut Child, ports: &[u16]) -> Result<(), StartError> {
    let deadline = Instant::now() + process::START_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let taken = ports
                .iter()
                .any(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
            return Err(if taken {
                StartError::PortInUse
            } else {
                StartError::Failed(format!("master exited with {status}"))
            });
        }
        let states: Vec<Listening> = ports
            .iter()
            .map(|&port| process::listening(child.id(), port))
            .collect();
        if states.contains(&Listening::Shared) {
            return Err(StartError::PortInUse);
        }
        if states.iter().all(|state| *state == Listening::Alone) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StartError::Failed(format!(
                "not listening on {ports:?} within {:?}",
                process::START_DEADLINE
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
