//! What the servers have in common: ports, starting and stopping child processes, and the
//! system user they run as.
//!
//! Linux only (it reads `/proc` and `/etc/passwd` and uses `prctl`), like the CI machines.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How often readiness checks are repeated while a server starts.
pub(crate) const POLL: Duration = Duration::from_millis(5);

/// How long a server may take to become ready before the start counts as failed.
/// Dovecot and smtp-sink need a few tens of milliseconds; the margin is for a loaded CI box.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(15);

/// How many times a start is retried with fresh ports after a bind failure.
pub(crate) const START_ATTEMPTS: u32 = 6;

/// Ports come from 20000..32000: below Linux's default ephemeral range (32768..60999), so
/// the kernel does not hand them out as source ports of outgoing connections.
const PORT_LOW: u32 = 20_000;
const PORT_SPAN: u32 = 12_000;
static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

/// A port on 127.0.0.1 reserved for one server of this process: a lock on byte `port` of
/// `$TMPDIR/klachtpost-test-ports.lock`, held until the lease is dropped, so test processes
/// using this harness (parallel test binaries, nextest, other worktrees on the machine) never
/// hand out the same port twice, even for the instant between choosing it and the server
/// binding it. The kernel drops the lock when the process dies, so nothing stale is left.
#[derive(Debug)]
pub(crate) struct PortLease {
    pub port: u16,
    _lock: Option<File>,
}

/// Reserves a port on 127.0.0.1 that is free right now.
///
/// Each process walks the range from its own pid-derived offset and skips ports another
/// process has leased or that something has bound. Processes outside this harness may still
/// take the port before the server binds it, so callers also detect a failed (or, for
/// Postfix's SO_REUSEPORT listeners, shared) bind and retry with new ports.
pub(crate) fn pick_port() -> PortLease {
    if let Some(port) = FORCED_PORTS.with(|forced| forced.borrow_mut().pop_front()) {
        return PortLease { port, _lock: None };
    }
    // Knuth's multiplicative hash spreads neighbouring pids over the range.
    let offset = std::process::id().wrapping_mul(2_654_435_761) % PORT_SPAN;
    for _ in 0..PORT_SPAN {
        let n = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        let port = (PORT_LOW + (offset + n) % PORT_SPAN) as u16;
        let lock = match lock_port(port) {
            PortLock::Held(file) => Some(file),
            PortLock::Busy => continue,
            // No usable lock file (read-only temp dir?): bind checks and retries still work.
            PortLock::Unavailable => None,
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return PortLease { port, _lock: lock };
        }
    }
    panic!(
        "no free port in 127.0.0.1:{PORT_LOW}..{}",
        PORT_LOW + PORT_SPAN
    );
}

enum PortLock {
    /// The file holds the lock.
    Held(File),
    /// Another process, or another server of ours, holds it.
    Busy,
    Unavailable,
}

/// Locks byte `port` of one lock file shared by all users of the machine (an open file
/// description lock: per descriptor, so it also separates threads of one process).
fn lock_port(port: u16) -> PortLock {
    let path = std::env::temp_dir().join("klachtpost-test-ports.lock");
    // Open an existing file without O_CREAT: in a sticky /tmp, fs.protected_regular forbids
    // O_CREAT on another user's file.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(_) => {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path);
            let Ok(file) = file else {
                return PortLock::Unavailable;
            };
            // World-writable, so root in CI and users on a dev box share it.
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666));
            file
        }
    };
    // SAFETY: an all-zero `flock` is a valid value; the fields set below describe one byte.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = libc::F_WRLCK as libc::c_short;
    range.l_whence = libc::SEEK_SET as libc::c_short;
    range.l_start = libc::off_t::from(port);
    range.l_len = 1;
    // SAFETY: fcntl(2) with a valid descriptor and a pointer to a live `flock`.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &range) } == 0 {
        PortLock::Held(file)
    } else {
        PortLock::Busy
    }
}

thread_local! {
    static FORCED_PORTS: RefCell<VecDeque<u16>> = const { RefCell::new(VecDeque::new()) };
}

/// Makes the next `pick_port` calls on this thread return `ports`, unchecked: lets the
/// harness's self-test hand a server a port that is taken, to prove the start retries.
pub fn force_next_ports(ports: &[u16]) {
    FORCED_PORTS.with(|forced| forced.borrow_mut().extend(ports));
}

/// A random token, for passwords and for recognising our own server's greeting.
pub(crate) fn random_token() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// Starts `cmd` so that it is killed (SIGTERM) when the test process dies, even by SIGKILL
/// or a panic in another thread, instead of lingering on a shared machine.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process.
/// Test threads end with each test (and tokio's blocking threads after 10 s idle), so all
/// servers are forked from one thread that lives as long as the process.
///
/// With `new_group` the child leads a new process group, so `terminate` can stop it together
/// with the processes it forks (Dovecot's services). Postfix's master makes itself a session
/// (and group) leader, which fails if it already leads a group: pass `false` for it.
///
/// stdin must be set by the caller to `/dev/null` and stdout/stderr to files: Dovecot's
/// master keeps inherited descriptors open for good, and a caller waiting for EOF on a pipe
/// would hang.
pub(crate) fn spawn(mut cmd: Command, new_group: bool) -> io::Result<Child> {
    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();

    if new_group {
        cmd.process_group(0);
    }
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (prctl, getppid); it allocates nothing on the success path.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then no signal would come.
            if libc::getppid() != parent {
                return Err(io::Error::other("test process exited during spawn"));
            }
            Ok(())
        });
    }

    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("support-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the spawner thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread is gone"))?
}

/// Stops a server and everything it started, at once: SIGKILL to its process group (see
/// `spawn`), then reaps it. Dovecot's master takes about a second to shut down cleanly on
/// SIGTERM, which would add a second to every test; a test's server has nothing to save.
pub(crate) fn terminate(child: &mut Child) {
    // Once reaped, the pid (and so the group id) may belong to someone else: leave it.
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    // SAFETY: killpg(2) on the group our unreaped child leads; no memory is involved.
    let killed = unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) } == 0;
    if !killed {
        // Not a group leader (yet): Postfix's master before its setsid().
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Who listens on 127.0.0.1:`port`, as seen from process `pid`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Listening {
    /// `pid` does not (yet) hold a listening socket on the port.
    NotYet,
    /// Only `pid` does.
    Alone,
    /// `pid` does, and so does someone else: Postfix's programs (smtp-sink, master) set
    /// SO_REUSEPORT, so two of them can listen on one port and the kernel spreads the
    /// connections between them. The server must be restarted on another port.
    Shared,
}

/// Whether process `pid` listens on 127.0.0.1:`port`, and alone. Read from /proc, so the
/// server is not disturbed by a probe connection (which would count as a session for
/// smtp-sink's `-n`, and be refused or dropped in its CONNECT fault modes).
pub(crate) fn listening(pid: u32, port: u16) -> Listening {
    let ours: HashSet<String> = match std::fs::read_dir(format!("/proc/{pid}/fd")) {
        Ok(fds) => fds
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter_map(|target| {
                let target = target.to_str()?;
                Some(
                    target
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .to_owned(),
                )
            })
            .collect(),
        Err(_) => return Listening::NotYet,
    };
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return Listening::NotYet;
    };
    // 127.0.0.1 or 0.0.0.0 (a wildcard listener with SO_REUSEPORT shares the port too).
    let addresses = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    let listeners: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            (fields.len() > 9 && addresses.iter().any(|a| a == fields[1]) && fields[3] == "0A")
                .then(|| fields[9])
        })
        .collect();
    let mine = listeners
        .iter()
        .filter(|inode| ours.contains(**inode))
        .count();
    match (mine, listeners.len() - mine) {
        (0, _) => Listening::NotYet,
        (_, 0) => Listening::Alone,
        _ => Listening::Shared,
    }
}

/// A system user the servers run as.
#[derive(Clone, Debug)]
pub(crate) struct SystemUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The name of the primary group (Dovecot's settings want names, and nobody's group
    /// is `nogroup` on Debian).
    pub group: String,
}

impl SystemUser {
    /// The user a server should run as: the current user, or when we are root (as in CI), an
    /// unprivileged system user from `candidates` (the first one that exists). Dovecot refuses
    /// to run mail processes as root, and smtp-sink refuses to run as root at all.
    pub fn for_server(candidates: &[&str]) -> SystemUser {
        if is_root() {
            candidates
                .iter()
                .find_map(|name| passwd_lookup(|n, _| n == *name))
                .unwrap_or_else(|| panic!("none of the users {candidates:?} exists"))
        } else {
            // SAFETY: getuid cannot fail.
            let uid = unsafe { libc::getuid() };
            passwd_lookup(|_, u| u == uid)
                .unwrap_or_else(|| panic!("uid {uid} has no entry in /etc/passwd"))
        }
    }
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn passwd_lookup(matches: impl Fn(&str, u32) -> bool) -> Option<SystemUser> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        matches(name, uid).then(|| SystemUser {
            name: name.to_owned(),
            uid,
            gid,
            group: group_name(gid).unwrap_or_else(|| name.to_owned()),
        })
    })
}

fn group_name(gid: u32) -> Option<String> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        (fields.next()?.parse::<u32>().ok()? == gid).then(|| name.to_owned())
    })
}

/// Makes `dir` usable by `user` (the servers write there after dropping privileges).
/// Only root can and needs to hand it over; otherwise the user already owns it.
pub(crate) fn hand_over(dir: &Path, user: &SystemUser) -> io::Result<()> {
    if is_root() {
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))?;
    }
    Ok(())
}

/// The last `max` bytes of a log file, for failure messages.
pub(crate) fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// Polls the log file at `path` (every 10 ms) until `needle` occurs at least `n` times, and
/// returns the log; panics after `timeout` with the log. Log lines are written by a separate
/// process (Dovecot's log service, Postfix's postlogd), so they can trail the event a bit.
pub(crate) async fn wait_for_log(path: &Path, needle: &str, n: usize, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = tail(path, usize::MAX);
        if log.matches(needle).count() >= n {
            return log;
        }
        if Instant::now() >= deadline {
            panic!(
                "{needle:?} not {n} times in {} within {timeout:?}:\n{log}",
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
