//! Postfix's `smtp-sink` as a test SMTP server: it accepts mail on 127.0.0.1 and writes each
//! message with its envelope to a file, which [`SmtpSink::messages`] reads back. Fault
//! options make it answer 4xx/5xx or hang up on chosen commands. It speaks no TLS (its EHLO
//! offers no STARTTLS); see `postfix.rs` for SMTP over TLS.
//!
//! Fault options (`man smtp-sink`; command names are case-insensitive and comma-separated,
//! e.g. `"rcpt"`, `"mail,rcpt"`, `"."` for the end of DATA, `"connect"` for the greeting):
//! - `-r CMDS`: reject with 450 4.3.0 (transient). `-b TEXT` changes that reply.
//! - `-f CMDS`: reject with 500 5.3.0 (permanent). `-B TEXT` changes that reply.
//! - `-Q CMDS`: reply 421 and disconnect.
//! - `-q CMDS`: disconnect without replying.
//! - `-w SECS`: wait before answering DATA; `-W CMD:SECS`: wait before answering CMD.
//! - `-A SECS`: after DATA, wait, then abort with 550 before the client sends ".".
//! - `-M N` / `-n N`: exit after N messages / N sessions.
//!
//! smtp-sink offers PIPELINING, so the sender pipelines MAIL FROM, RCPT TO and DATA to it;
//! `-p` stops the offer, and `-r` and `-f` imply `-p`: faults injected with them are met
//! on the step-by-step path. For refusals on the pipelined path use the Postfix harness
//! (restrictions in main.cf, see `tests/outgoing.rs`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;

use super::process::{self, Listening, SystemUser};

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";
const SETPRIV: &str = "/usr/bin/setpriv";

/// One message as smtp-sink received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The reverse path from MAIL FROM, without `<>` (empty for a null sender).
    pub mail_from: String,
    /// The forward paths of the accepted RCPT TOs, without `<>`, in order.
    pub rcpt_to: Vec<String>,
    /// The message as sent in DATA, dot-unstuffed, every line ending in CRLF.
    ///
    /// smtp-sink stores lines with LF endings, so CRLF is restored here; this is exact for
    /// any well-formed message (SMTP requires CRLF; a bare CR or LF would not survive).
    pub data: Vec<u8>,
    /// The full MAIL FROM arguments, e.g. `<a@example.org> BODY=8BITMIME SIZE=123`.
    pub mail_args: String,
    /// The EHLO/HELO argument, if the client sent one.
    pub helo: Option<String>,
    /// The file smtp-sink wrote.
    pub path: PathBuf,
}

/// A running smtp-sink on 127.0.0.1. Killed on drop.
#[derive(Debug)]
pub struct SmtpSink {
    /// Always `"127.0.0.1"`.
    pub host: &'static str,
    pub port: u16,
    /// The instance's directory; messages are in `dir/dump`, its output in `dir/stderr`.
    pub dir: PathBuf,
    child: Child,
    /// Released after the server is stopped (fields drop after `Drop::drop`).
    _lease: process::PortLease,
    _tmp: TempDir,
}

impl SmtpSink {
    /// Starts smtp-sink with extra options for fault injection, e.g. `&["-r", "rcpt"]` to
    /// answer every RCPT TO with 450 (see the module docs). `&[]` accepts all mail.
    ///
    /// Ports are picked fresh for each attempt, and a start that fails to bind is retried
    /// with another port. Ready means: the process is alive and holds a socket listening on
    /// the port (read from /proc, so no probe connection disturbs `-n` or CONNECT faults).
    pub fn start(faults: &[&str]) -> SmtpSink {
        let tmp = tempfile::Builder::new()
            .prefix("klachtpost-smtp-sink-")
            .tempdir()
            .expect("create a temp dir for smtp-sink");
        let dir = tmp.path().to_owned();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the smtp-sink dir");
        let dump = dir.join("dump");
        std::fs::create_dir(&dump).expect("create the dump dir");
        // smtp-sink refuses to run as root; as root it runs as nobody and writes there.
        let user = SystemUser::for_server(&["nobody"]);
        process::hand_over(&dump, &user).expect("chown the dump dir");

        let mut last_error = String::new();
        for _attempt in 0..process::START_ATTEMPTS {
            let lease = process::pick_port();
            let port = lease.port;
            let mut child = spawn_sink(&dir, &user, faults, port);
            match wait_listening(&mut child, &dir, port) {
                Ok(()) => {
                    return SmtpSink {
                        host: "127.0.0.1",
                        port,
                        dir,
                        child,
                        _lease: lease,
                        _tmp: tmp,
                    };
                }
                Err(stderr) if stderr.contains("Address already in use") => {
                    process::terminate(&mut child);
                    last_error = stderr;
                }
                Err(stderr) => {
                    process::terminate(&mut child);
                    panic!("smtp-sink {faults:?} did not start: {stderr}");
                }
            }
        }
        panic!(
            "smtp-sink could not bind a free port in {} attempts; last error: {last_error}",
            process::START_ATTEMPTS
        );
    }

    /// The messages received so far, oldest first. A message still being received is left
    /// out: smtp-sink keeps its file open until the final "." and closes it before it
    /// replies, so once the client has its 250 the message is here.
    pub fn messages(&self) -> Vec<Received> {
        let listed: Vec<PathBuf> = std::fs::read_dir(self.dir.join("dump"))
            .expect("read the dump dir")
            .filter_map(|entry| Some(entry.ok()?.path()))
            .collect();
        // Only after listing: a file created after a look at the open files would seem done.
        let open = open_files(self.child.id());
        let mut files: Vec<(SystemTime, PathBuf)> = listed
            .into_iter()
            .filter(|path| !open.contains(path))
            .filter_map(|path| Some((std::fs::metadata(&path).ok()?.modified().ok()?, path)))
            .collect();
        // Oldest first: the mtime is the time of the final ".".
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| {
                let raw =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                parse_dump(&raw, path)
            })
            .collect()
    }

    /// Polls (every 10 ms) until at least `n` messages have arrived and returns them all;
    /// panics after `timeout`. Async so the code under test keeps running on the same
    /// runtime while this waits.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if Instant::now() >= deadline {
                panic!(
                    "smtp-sink received {} of {n} messages within {timeout:?}; its output: {}",
                    messages.len(),
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// smtp-sink's stdout and stderr so far (fatal errors; `-v` conversations).
    pub fn output(&self) -> String {
        process::tail(&self.dir.join("stderr"), 8000)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        process::terminate(&mut self.child);
    }
}

fn spawn_sink(dir: &Path, user: &SystemUser, faults: &[&str], port: u16) -> Child {
    let stderr = std::fs::File::create(dir.join("stderr")).expect("create smtp-sink's log");
    let mut cmd;
    if process::is_root() && Path::new(SETPRIV).exists() {
        // smtp-sink's own `-u` would drop root itself, and a change of credentials clears
        // the parent-death signal `process::spawn` sets. setpriv drops root first and then
        // sets the signal again.
        cmd = Command::new(SETPRIV);
        cmd.arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={}", user.gid))
            .arg("--clear-groups")
            .arg("--pdeathsig=TERM")
            .arg("--")
            .arg(SMTP_SINK);
    } else {
        cmd = Command::new(SMTP_SINK);
        if process::is_root() {
            cmd.arg("-u").arg(&user.name);
        }
    }
    // The template is expanded with strftime and a random hex suffix is appended.
    let template = dir.join("dump").join("%Y%m%d%H%M%S.");
    cmd.arg("-d")
        .arg(template)
        .args(faults)
        .arg(format!("127.0.0.1:{port}"))
        // listen(2) backlog
        .arg("100")
        .stdin(Stdio::null())
        .stdout(stderr.try_clone().expect("dup the log file"))
        .stderr(stderr);
    process::spawn(cmd, true).unwrap_or_else(|e| {
        panic!("cannot run {SMTP_SINK}: {e} (install postfix with scripts/install-deps)")
    })
}

/// Waits until `child` listens on `port`; on exit returns its output as the error.
fn wait_listening(child: &mut Child, dir: &Path, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + process::START_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let output = process::tail(&dir.join("stderr"), 4000);
            return Err(format!("exited with {status}: {output}"));
        }
        // Postfix programs sleep a second after a fatal error before they exit; the message
        // comes at once, so a failed bind is seen without that wait.
        let output = process::tail(&dir.join("stderr"), 4000);
        if output.contains("fatal:") {
            process::terminate(child);
            return Err(output);
        }
        match process::listening(child.id(), port) {
            Listening::Alone => return Ok(()),
            Listening::Shared => {
                process::terminate(child);
                return Err(format!(
                    "port {port}: Address already in use (SO_REUSEPORT)"
                ));
            }
            Listening::NotYet => {}
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "not listening on port {port} within {:?}",
                process::START_DEADLINE
            ));
        }
        std::thread::sleep(process::POLL);
    }
}

/// The files process `pid` has open.
fn open_files(pid: u32) -> Vec<PathBuf> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .collect()
}

/// Parses one dump file (`man smtp-sink`, DUMP FILE FORMAT): `X-Client-Addr`,
/// `X-Client-Proto`, optional `X-Helo-Args`, `X-Mail-Args`, one `X-Rcpt-Args` per RCPT, a
/// three-line `Received:` header, then the message with LF line endings, then one empty line.
fn parse_dump(raw: &[u8], path: PathBuf) -> Received {
    let bad = |why: &str| -> ! { panic!("{}: {why}", path.display()) };
    let mut rest = raw;
    let next_line = |rest: &mut &[u8]| -> Vec<u8> {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or_else(|| bad("unterminated line in the envelope"));
        let line = rest[..end].to_vec();
        *rest = &rest[end + 1..];
        line
    };

    let mut mail_args = None;
    let mut helo = None;
    let mut rcpt_to = Vec::new();
    loop {
        let line = String::from_utf8(next_line(&mut rest))
            .unwrap_or_else(|_| bad("envelope line is not UTF-8"));
        let (name, value) = line
            .split_once(": ")
            .unwrap_or_else(|| bad("envelope line without a colon"));
        match name {
            "X-Client-Addr" | "X-Client-Proto" => {}
            "X-Helo-Args" => helo = Some(value.to_owned()),
            "X-Mail-Args" => mail_args = Some(value.to_owned()),
            "X-Rcpt-Args" => rcpt_to.push(address(value)),
            "Received" => break,
            _ => bad(&format!("unexpected envelope line {line:?}")),
        }
    }
    // The rest of smtp-sink's Received header: "\tby HOST (smtp-sink) with ..." and "\tDATE".
    for _ in 0..2 {
        if !next_line(&mut rest).starts_with(b"\t") {
            bad("smtp-sink's Received header is not three lines");
        }
    }
    let body = rest
        .strip_suffix(b"\n")
        .unwrap_or_else(|| bad("missing the final empty line"));
    let mut data = Vec::with_capacity(body.len() + body.len() / 32);
    for &b in body {
        if b == b'\n' {
            data.extend_from_slice(b"\r\n");
        } else {
            data.push(b);
        }
    }
    let mail_args = mail_args.unwrap_or_else(|| bad("no X-Mail-Args"));
    Received {
        mail_from: address(&mail_args),
        rcpt_to,
        data,
        mail_args,
        helo,
        path,
    }
}

/// The address in `<addr> PARAM=...`, without the angle brackets.
fn address(args: &str) -> String {
    let first = args.split_whitespace().next().unwrap_or("");
    first
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(first)
        .to_owned()
}
