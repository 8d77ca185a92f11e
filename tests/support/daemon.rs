//! `klachtpost run` as a real process (the binary under test), its log in a file: for tests
//! that kill it, restart it, or read what it logs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long [`Daemon::stop`] waits for the process to exit after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(20);

/// A running `klachtpost run`; killed when dropped.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Writes `config_text` to `dir/klachtpost.toml` and starts `klachtpost run` on it, at
    /// log level info, with `password` in the environment variable `password_env`.
    pub fn start(dir: &Path, config_text: &str, password_env: &str, password: &str) -> Daemon {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("klachtpost.toml");
        std::fs::write(&path, config_text).unwrap();
        let log = dir.join("daemon.log");
        let child = Command::new(env!("CARGO_BIN_EXE_klachtpost"))
            .arg("run")
            .arg("--config")
            .arg(&path)
            .env(password_env, password)
            .env("KLACHTPOST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start klachtpost run");
        Daemon { child, log }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How often `needle` is in the log so far.
    pub fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// Polls until `needle` is in the log `n` times; panics with the log after `timeout`.
    pub async fn wait_for_log(&self, needle: &str, n: usize, timeout: Duration) {
        super::process::wait_for_log(&self.log, needle, n, timeout).await;
    }

    /// SIGKILL, as a crash: nothing of it runs after this.
    pub fn sigkill(&mut self) {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status, within a deadline.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_WITHIN;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the daemon did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
