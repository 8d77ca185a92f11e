//! A private PostgreSQL for the tests: one server per test process, started on first use,
//! shared by its tests, stopped when the process exits; a fresh database for each test.
//!
//! `initdb` once per machine into a template cluster (see `template_cluster`), copied for
//! each test process, and `postgres` on a leased loopback port, run as an unprivileged system
//! user when we are root (PostgreSQL refuses to run as root). Clusters live in memory
//! (`/dev/shm`) where there is one. The server is started directly rather than through
//! `pg_ctl start`, which would detach it: as our child it gets the harness's parent-death
//! signal (see `process::spawn`), so a killed test process does not leave it running, and
//! the next start sweeps away the files it left. On a normal exit an `atexit` hook stops it
//! at once (SIGQUIT, PostgreSQL's immediate shutdown) and removes its directory.
//!
//! Tuned for tests, not durability: fsync, full-page writes and synchronous commit are off,
//! shared buffers are small, WAL is minimal, no autovacuum. Every test database belongs to a
//! login role with a password (SCRAM over TCP, no trust), so clients go through
//! `password_env` / `password_file` like a real deployment.
//!
//! ```ignore
//! let pg = Postgres::shared();
//! let db = pg.create_database();
//! // config: url = db.url, password_file = pg.password_file (or the password via an env var)
//! assert_eq!(pg.psql(&db.name, "SELECT 1"), "1");
//! ```
//!
//! A test that needs a server set up differently (TLS with the test CA's certificate) starts
//! a private one the same way, from the same template, with [`Postgres::private`]; it is
//! stopped and its directory removed when dropped:
//!
//! ```ignore
//! let ca = TestCa::new();
//! let pg = Postgres::private(PgOptions { tls: Some(&ca) });
//! let db = pg.create_database();
//! ```

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::certs::TestCa;
use super::process::{self, PortLease, SystemUser};

/// The role that owns the test databases (what klachtpost logs in as).
pub const USER: &str = "klachtpost";
/// The cluster's superuser (creates the databases).
pub const SUPERUSER: &str = "postgres";

/// How long PostgreSQL may take to stop at exit before its processes are killed.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

pub struct Postgres {
    pub host: &'static str,
    pub port: u16,
    /// The password of [`USER`]; also in `password_file`.
    pub password: String,
    /// A file holding the password of [`USER`] (for `password_file` in a config).
    pub password_file: PathBuf,
    superuser_password: String,
    bin: PathBuf,
    dir: PathBuf,
    pid: u32,
    databases: AtomicU32,
    /// The server and its directory; taken when stopped.
    running: Mutex<Option<(Child, tempfile::TempDir)>>,
    _lease: PortLease,
}

/// How a private server ([`Postgres::private`]) differs from the shared one.
#[derive(Clone, Copy, Default)]
pub struct PgOptions<'a> {
    /// TLS on (`ssl=on`) with this CA's `localhost`/`127.0.0.1` certificate; plain TCP
    /// connections are still accepted.
    pub tls: Option<&'a TestCa>,
}

/// One test's database on a server.
#[derive(Clone, Debug)]
pub struct PgDatabase {
    pub name: String,
    /// `postgres://klachtpost@127.0.0.1:PORT/NAME`: no password in it.
    pub url: String,
    pub user: String,
    pub password: String,
    pub password_file: PathBuf,
}

impl PgDatabase {
    /// The URL with the password in it, for the tests' own connections.
    pub fn url_with_password(&self) -> String {
        self.url.replacen(
            &format!("//{}@", self.user),
            &format!("//{}:{}@", self.user, self.password),
            1,
        )
    }
}

static SHARED: OnceLock<Postgres> = OnceLock::new();

impl Postgres {
    /// The server of this test process, started on first use (panics with its log if it
    /// cannot start).
    pub fn shared() -> &'static Postgres {
        SHARED.get_or_init(|| {
            let pg = Postgres::start(&PgOptions::default());
            // SAFETY: registers a plain `extern "C" fn` with no arguments.
            let registered = unsafe { libc::atexit(stop_shared_at_exit) };
            assert_eq!(registered, 0, "register the PostgreSQL stop hook");
            pg
        })
    }

    /// A server of the calling test's own, set up as `options` say, started like the shared
    /// one (template copy, leased port, parent-death signal, the [`USER`] role with a
    /// password); stopped and its directory removed when dropped.
    pub fn private(options: PgOptions<'_>) -> Postgres {
        Postgres::start(&options)
    }

    fn start(options: &PgOptions<'_>) -> Postgres {
        let bin = bin_dir();
        sweep_stale_clusters();
        let tmp = tempfile::Builder::new()
            .prefix(CLUSTER_PREFIX)
            .tempdir_in(scratch_dir())
            .expect("create a temp dir for PostgreSQL");
        let dir = tmp.path().to_owned();
        std::fs::write(dir.join("owner"), std::process::id().to_string())
            .expect("write the owner file");
        // As root, PostgreSQL's own system user; otherwise ourselves.
        let user = SystemUser::for_server(&["postgres", "nobody"]);
        process::hand_over(&dir, &user).expect("chown the PostgreSQL dir");

        let password = format!("kp-{}", process::random_token());
        let password_file = dir.join("klachtpost-password");
        std::fs::write(&password_file, format!("{password}\n")).expect("write the password file");

        // A copy of the machine's initdb'd cluster (initdb takes a second or more; a copy,
        // milliseconds).
        let template = template_cluster(&bin, &user);
        let superuser_password = std::fs::read_to_string(template.join("superuser-password"))
            .expect("read the template's superuser password")
            .trim()
            .to_owned();
        let data = dir.join("data");
        let copied = as_user(Command::new("cp"), &user, &dir)
            .arg("-a")
            .arg(template.join("data"))
            .arg(&data)
            .status()
            .expect("run cp");
        assert!(copied.success(), "cannot copy the template cluster");
        let mut settings: Vec<String> = SETTINGS.iter().map(|s| s.to_string()).collect();
        if let Some(ca) = options.tls {
            settings.extend(tls_settings(ca, &dir, &user));
        }

        let mut last_error = String::new();
        for _attempt in 0..process::START_ATTEMPTS {
            let lease = process::pick_port();
            let port = lease.port;
            let log = dir.join("postgres.log");
            let mut cmd = as_user(Command::new(bin.join("postgres")), &user, &dir);
            cmd.arg("-D").arg(&data).arg("-p").arg(port.to_string());
            for setting in &settings {
                cmd.arg("-c").arg(setting);
            }
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("create postgres.log"));
            let mut child = process::spawn(cmd, true).expect("start postgres");
            match wait_ready(&mut child, &log, port) {
                Ok(()) => {
                    let pg = Postgres {
                        host: "127.0.0.1",
                        port,
                        password,
                        password_file,
                        superuser_password,
                        bin,
                        dir,
                        pid: child.id(),
                        databases: AtomicU32::new(0),
                        running: Mutex::new(Some((child, tmp))),
                        _lease: lease,
                    };
                    pg.psql(
                        "postgres",
                        &format!("CREATE ROLE {USER} LOGIN PASSWORD '{}'", pg.password),
                    );
                    return pg;
                }
                Err(Start::PortInUse(msg)) => {
                    process::terminate(&mut child);
                    last_error = msg;
                }
                Err(Start::Failed(msg)) => {
                    process::terminate(&mut child);
                    panic!(
                        "PostgreSQL did not start: {msg}\n--- postgres.log ---\n{}",
                        process::tail(&log, 4000)
                    );
                }
            }
        }
        panic!(
            "PostgreSQL could not bind a free port in {} attempts; last error: {last_error}",
            process::START_ATTEMPTS
        );
    }

    /// A new, empty database owned by [`USER`].
    pub fn create_database(&self) -> PgDatabase {
        let n = self.databases.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!("test_{n}");
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {USER}"));
        PgDatabase {
            url: format!("postgres://{USER}@{}:{}/{name}", self.host, self.port),
            name,
            user: USER.to_owned(),
            password: self.password.clone(),
            password_file: self.password_file.clone(),
        }
    }

    /// Runs `sql` in `database` as the superuser with `psql`; returns its unaligned, tuples-only
    /// output (`|` between fields), trimmed. Panics with psql's error.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.psql_as(SUPERUSER, &self.superuser_password, database, sql)
            .unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
    }

    /// Runs `sql` in `database` as `user` with `password`: `Err` holds psql's error.
    pub fn psql_as(
        &self,
        user: &str,
        password: &str,
        database: &str,
        sql: &str,
    ) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", self.host, "-p", &self.port.to_string()])
            .args(["-U", user, "-d", database, "-c", sql])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGSERVICEFILE")
            .stdin(Stdio::null())
            .output()
            .expect("run psql (scripts/install-deps installs postgresql)");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// `pg_dump` of `database` (schema and data, plain SQL), as the superuser.
    pub fn dump(&self, database: &str) -> Vec<u8> {
        let out = Command::new(self.bin.join("pg_dump"))
            .args(["-h", self.host, "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, "-d", database])
            .env("PGPASSWORD", &self.superuser_password)
            .stdin(Stdio::null())
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump {database}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's directory (data, log, password files); removed when it stops.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        process::tail(&self.dir.join("postgres.log"), usize::MAX)
    }

    /// Immediate shutdown (SIGQUIT), then SIGKILL to the group if it takes too long; removes
    /// the directory. Idempotent.
    fn stop(&self) {
        let mut running = match self.running.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some((mut child, tmp)) = running.take() else {
            return;
        };
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGQUIT) };
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(process::POLL);
        }
        // Reaped already: a no-op; otherwise the whole group goes.
        process::terminate(&mut child);
        drop(tmp);
    }
}

impl Drop for Postgres {
    /// A private server stops with its owner (the shared one lives in a static, which is
    /// never dropped: the exit hook stops it).
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `-c` settings that turn TLS on with `ca`'s server certificate, copied into `dir` for
/// the server user (PostgreSQL wants its key readable by that user alone).
fn tls_settings(ca: &TestCa, dir: &Path, user: &SystemUser) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut settings = vec!["ssl=on".to_owned()];
    for (from, name, setting) in [
        (&ca.cert_pem, "server.crt", "ssl_cert_file"),
        (&ca.key_pem, "server.key", "ssl_key_file"),
    ] {
        let to = dir.join(name);
        std::fs::copy(from, &to).expect("copy the test CA's server certificate");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))
            .expect("chmod the server certificate");
        process::hand_over(&to, user).expect("chown the server certificate");
        settings.push(format!("{setting}={}", to.display()));
    }
    settings
}

extern "C" fn stop_shared_at_exit() {
    if let Some(pg) = SHARED.get() {
        pg.stop();
    }
}

/// An initdb'd cluster to copy, made once per machine, PostgreSQL version and server user:
/// `$TMPDIR/klachtpost-postgres-template-VERSION-UID/` holding `data/` and
/// `superuser-password` (superuser [`SUPERUSER`], SCRAM logins only). Built in a private
/// directory and renamed into place under a lock, so processes starting at once never see
/// half of one nor build two.
fn template_cluster(bin: &Path, user: &SystemUser) -> PathBuf {
    let version = bin
        .parent()
        .and_then(|v| v.file_name())
        .and_then(|v| v.to_str())
        .unwrap_or("unknown");
    let template = scratch_dir().join(format!(
        "klachtpost-postgres-template-{version}-{}",
        user.uid
    ));
    let complete = |dir: &Path| {
        dir.join("data/PG_VERSION").exists() && dir.join("superuser-password").exists()
    };
    if complete(&template) {
        return template;
    }
    // One builder at a time (the lock goes with the file when this function returns).
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(template.with_extension("lock"))
        .expect("open the template lock file");
    // SAFETY: flock(2) on a descriptor we own; blocks until the lock is ours.
    let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "lock the template cluster");
    if complete(&template) {
        return template;
    }
    // Left half-made (a temp cleaner?): no reader uses an incomplete one.
    let _ = std::fs::remove_dir_all(&template);
    let building = tempfile::Builder::new()
        .prefix("klachtpost-postgres-template-building-")
        .tempdir_in(scratch_dir())
        .expect("create a temp dir for the template cluster");
    let dir = building.path();
    process::hand_over(dir, user).expect("chown the template dir");
    let password_file = dir.join("superuser-password");
    std::fs::write(&password_file, format!("{}\n", process::random_token()))
        .expect("write the superuser password file");
    process::hand_over(&password_file, user).expect("chown the superuser password file");
    let err = dir.join("initdb.err");
    let status = as_user(Command::new(bin.join("initdb")), user, dir)
        .arg("--pgdata")
        .arg(dir.join("data"))
        .args(["--username", SUPERUSER, "--auth", "scram-sha-256"])
        .arg(format!("--pwfile={}", password_file.display()))
        .args([
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-sync",
            "--wal-segsize=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).expect("create initdb.err"))
        .status()
        .expect("run initdb (scripts/install-deps installs postgresql)");
    assert!(
        status.success(),
        "initdb failed: {}",
        process::tail(&err, 4000)
    );
    std::fs::rename(building.keep(), &template).expect("move the template cluster into place");
    assert!(
        complete(&template),
        "no template cluster in {}",
        template.display()
    );
    template
}

/// The per-process cluster dirs' name prefix (the template's name does not start with it).
const CLUSTER_PREFIX: &str = "klachtpost-postgres-run-";

/// Removes the clusters of test processes that died without their exit hook (killed, or
/// interrupted with Ctrl-C): their server stopped by the parent-death signal, but their
/// files stay, in memory when under /dev/shm. Only when neither the owner nor the server
/// is alive; a dir whose owner is unknown is left alone.
pub fn sweep_stale_clusters() {
    let alive = |pid: &str| {
        pid.trim().parse::<libc::pid_t>().is_ok_and(|pid| {
            // SAFETY: kill(2) with signal 0 only checks that the process exists.
            let exists = unsafe { libc::kill(pid, 0) == 0 };
            exists || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
        })
    };
    let Ok(entries) = std::fs::read_dir(scratch_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let named = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(CLUSTER_PREFIX));
        let Ok(owner) = std::fs::read_to_string(dir.join("owner")) else {
            continue;
        };
        let server = std::fs::read_to_string(dir.join("data/postmaster.pid")).unwrap_or_default();
        let server = server.lines().next().unwrap_or("");
        if named && !alive(&owner) && (server.is_empty() || !alive(server)) {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Where clusters live: memory (`/dev/shm`) where there is one, since a test's data need not
/// survive it and disks on a loaded CI machine are slow; otherwise the temp dir.
fn scratch_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let usable =
        std::fs::metadata(shm).is_ok_and(|m| m.is_dir()) && tempfile::tempdir_in(shm).is_ok();
    if usable {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// `-c` settings: loopback TCP only, fast and small.
const SETTINGS: &[&str] = &[
    "listen_addresses=127.0.0.1",
    "unix_socket_directories=",
    "max_connections=300",
    "shared_buffers=16MB",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "wal_level=minimal",
    "max_wal_senders=0",
    "autovacuum=off",
];

/// The newest PostgreSQL under /usr/lib/postgresql (Debian's layout).
fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    std::fs::read_dir(root)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| {
            panic!(
                "no PostgreSQL in {}: scripts/install-deps installs it",
                root.display()
            )
        })
}

/// `cmd` run as `user` (when we are root) from `dir` (a directory it can enter).
fn as_user(mut cmd: Command, user: &SystemUser, dir: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    if process::is_root() {
        cmd.uid(user.uid).gid(user.gid);
    }
    cmd.current_dir(dir).env_remove("PGDATA");
    cmd
}

enum Start {
    PortInUse(String),
    Failed(String),
}

/// Waits until the server says it accepts connections and holds the port alone.
fn wait_ready(child: &mut Child, log: &Path, port: u16) -> Result<(), Start> {
    let deadline = Instant::now() + process::START_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = process::tail(log, 4000);
            return Err(
                if text.contains("could not bind") || text.contains("Address already in use") {
                    Start::PortInUse(text)
                } else {
                    Start::Failed(format!("postgres exited with {status}"))
                },
            );
        }
        let ready = process::tail(log, usize::MAX).contains("ready to accept connections");
        if ready {
            match process::listening(child.id(), port) {
                process::Listening::Alone => return Ok(()),
                process::Listening::Shared => {
                    return Err(Start::PortInUse(format!("port {port} is shared")));
                }
                process::Listening::NotYet => {}
            }
        }
        if Instant::now() >= deadline {
            return Err(Start::Failed(format!(
                "not ready within {:?}",
                process::START_DEADLINE
            )));
        }
        std::thread::sleep(process::POLL);
    }
}
