//! SQLite's log copied back into the database on a thread of its own, not by the commit
//! that fills it.
//!
//! In WAL mode every commit appends its pages to the log (`-wal`); a checkpoint copies them
//! into the database file and syncs it, so the log can start again from its beginning.
//! SQLite's own automatic checkpoint runs inside the commit that takes the log past its
//! limit, so that commit waits for tens of megabytes to be read, written and synced: on a
//! backlog, an intake batch waited ~110 ms each time (after every other mail with a 20 MB
//! attachment), and checkpoints were 7 % of the 10,000-mail backlog's CPU (issue 8).
//!
//! Here each read-write connection's commit hook ([`watch`], SQLite's `wal_hook`, which
//! replaces the automatic checkpoint) only asks for a checkpoint once the log holds
//! [`CHECKPOINT_PAGES`]; a thread with a connection of its own runs it (`PASSIVE`: it
//! copies what no reader still needs, never waiting for a writer nor holding one up) while
//! the writer goes on. The thread runs on any CPU, also with `[run] cpus = "one"`: it hands
//! nothing to the other threads, and its copying and syncing is disk work that the mail
//! server's CPU has room for. Once the thread is gone (its handle dropped) the commits
//! checkpoint themselves from [`CHECKPOINT_PAGES`], as SQLite would; past [`INLINE_PAGES`]
//! they do also with it (so that the log starts again, see there): the log stays bounded
//! whatever happens to the thread.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

use libsqlite3_sys as ffi;

/// From this many pages in the log (32 MiB), a checkpoint is asked for: what SQLite's
/// automatic checkpoint did at `wal_autocheckpoint = 8000` before (see [`super::db`]).
pub const CHECKPOINT_PAGES: c_int = 8000;
/// From this many pages in the log (64 MiB), the commit checkpoints itself. Also with the
/// thread keeping up: the log starts again from its beginning only when a write
/// transaction begins with every page of it copied, and intake's next batch usually
/// begins while the thread still copies; the commit's own checkpoint then copies the few
/// pages left, and the next batch starts the log again.
pub const INLINE_PAGES: c_int = 2 * CHECKPOINT_PAGES;

/// What a commit hook and the checkpoint thread share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    due: bool,
    stop: bool,
    /// Checkpoints run (read by the tests only).
    #[cfg(test)]
    runs: u64,
}

/// The checkpoint thread of one SQLite file; told to stop when dropped (the pools that
/// [`watch`] through it hold it). It is not waited for: a checkpoint under way ends first
/// (SQLite's checkpoints survive being cut off, too).
pub struct Checkpointer {
    id: usize,
    shared: Arc<Shared>,
}

/// The commit hooks find their checkpointer by number: a hook outlives nothing it points
/// to (a connection may close after its pool's checkpointer is gone).
fn registry() -> &'static Mutex<HashMap<usize, Weak<Shared>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<usize, Weak<Shared>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

impl Checkpointer {
    /// Open a connection of its own to the SQLite file at `path` and start the thread.
    pub fn start(path: &Path) -> std::io::Result<Arc<Checkpointer>> {
        let connection = Connection::open(path)?;
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared::default());
        {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("kp-checkpoint".into())
                .spawn(move || run(connection, &shared))?;
        }
        registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::downgrade(&shared));
        Ok(Arc::new(Checkpointer { id, shared }))
    }

    /// Set `db`'s commit hook: past [`CHECKPOINT_PAGES`] it asks this thread for a
    /// checkpoint instead of running one (SQLite's automatic checkpoint is replaced).
    ///
    /// # Safety
    /// `db` is an open connection that no other thread uses during the call.
    pub unsafe fn watch(&self, db: *mut ffi::sqlite3) {
        // SAFETY: per the caller; `on_commit` reads its argument as a number only.
        unsafe { ffi::sqlite3_wal_hook(db, Some(on_commit), self.id as *mut c_void) };
    }

    /// How many checkpoints the thread has run.
    #[cfg(test)]
    fn runs(&self) -> u64 {
        self.shared.state.lock().map(|s| s.runs).unwrap_or(0)
    }
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // From now on the commits checkpoint themselves.
        if let Ok(mut registry) = registry().lock() {
            registry.remove(&self.id);
        }
        if let Ok(mut state) = self.shared.state.lock() {
            state.stop = true;
        }
        self.shared.wake.notify_one();
    }
}

/// The commit hook: `frames` pages are in the log after this commit.
extern "C" fn on_commit(
    id: *mut c_void,
    db: *mut ffi::sqlite3,
    name: *const c_char,
    frames: c_int,
) -> c_int {
    if frames < CHECKPOINT_PAGES {
        return ffi::SQLITE_OK;
    }
    let shared = registry()
        .lock()
        .ok()
        .and_then(|r| r.get(&(id as usize)).and_then(Weak::upgrade));
    match shared {
        Some(shared) if frames < INLINE_PAGES => {
            if let Ok(mut state) = shared.state.lock() {
                state.due = true;
            }
            shared.wake.notify_one();
        }
        _ => {
            // As SQLite's own hook does. Its result is not the commit's: the commit stands.
            // SAFETY: called by SQLite on `db`, for database `name`, in its commit.
            unsafe { ffi::sqlite3_wal_checkpoint(db, name) };
        }
    }
    ffi::SQLITE_OK
}

/// The thread: a checkpoint each time one is due, until stopped.
fn run(connection: Connection, shared: &Shared) {
    on_any_cpu();
    loop {
        {
            let Ok(mut state) = shared.state.lock() else {
                return;
            };
            while !state.due && !state.stop {
                state = match shared.wake.wait(state) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
            if state.stop {
                return;
            }
            state.due = false;
        }
        let begun = std::time::Instant::now();
        let (rc, log, copied) = connection.checkpoint();
        #[cfg(test)]
        if let Ok(mut state) = shared.state.lock() {
            state.runs += 1;
        }
        if rc == ffi::SQLITE_BUSY {
            // Another checkpoint of the file is under way (a commit's own, past
            // INLINE_PAGES, or another process's): it copies the log.
            tracing::debug!(
                event = "store.checkpoint_busy",
                "another checkpoint is copying the log"
            );
        } else if rc == ffi::SQLITE_OK {
            tracing::debug!(
                event = "store.checkpoint",
                log,
                copied,
                ms = begun.elapsed().as_millis() as u64,
                "log copied into the database"
            );
        } else {
            // The disk, most likely: the next commit past the limit asks again; past
            // INLINE_PAGES the commits do it themselves.
            tracing::warn!(
                event = "store.checkpoint_failed",
                code = rc,
                "cannot copy the log into the database now; tried again at a later commit"
            );
        }
    }
}

/// Let this thread run on every CPU the process may use, also when `[run] cpus = "one"`
/// kept the others to one (`crate::daemon`): it only copies and syncs, beside them.
#[cfg(target_os = "linux")]
fn on_any_cpu() {
    // SAFETY: plain system calls on a cpu_set_t of our own; the kernel leaves out the CPUs
    // the process may not use.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
    }
}

#[cfg(not(target_os = "linux"))]
fn on_any_cpu() {}

/// The thread's own connection.
struct Connection(*mut ffi::sqlite3);

// SAFETY: the connection is opened on one thread and then used by the checkpoint thread
// alone (SQLite connections may move between threads when not used at once).
unsafe impl Send for Connection {}

impl Connection {
    fn open(path: &Path) -> std::io::Result<Connection> {
        let name = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut db = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; `db` is closed below on failure, or by Drop.
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                name.as_ptr(),
                &mut db,
                ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX,
                std::ptr::null(),
            )
        };
        let connection = Connection(db);
        if rc != ffi::SQLITE_OK {
            return Err(std::io::Error::other(format!(
                "cannot open the database for checkpoints (SQLite code {rc})"
            )));
        }
        Ok(connection)
    }

    /// Run `sql`, its rows (if any) unread: SQLite's result code.
    fn exec(&self, sql: &CStr) -> c_int {
        // SAFETY: an open connection used by this thread only; NUL-terminated SQL; no
        // callback.
        unsafe {
            ffi::sqlite3_exec(
                self.0,
                sql.as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        }
    }

    /// A passive checkpoint: (result code, pages in the log, pages copied).
    fn checkpoint(&self) -> (c_int, c_int, c_int) {
        // A connection finds the log when it reads: one that never read (or last read
        // before the file was put in WAL mode) would checkpoint nothing.
        let rc = self.exec(c"PRAGMA schema_version");
        if rc != ffi::SQLITE_OK {
            return (rc, 0, 0);
        }
        let (mut log, mut copied) = (0, 0);
        // SAFETY: an open connection used by this thread only; "main" is NUL-terminated.
        let rc = unsafe {
            ffi::sqlite3_wal_checkpoint_v2(
                self.0,
                c"main".as_ptr(),
                ffi::SQLITE_CHECKPOINT_PASSIVE,
                &mut log,
                &mut copied,
            )
        };
        (rc, log, copied)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: opened by sqlite3_open_v2 (even a failed open gives a handle to close);
        // nothing uses it after this.
        unsafe { ffi::sqlite3_close(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A plain connection for the test, in WAL mode, without SQLite's automatic checkpoint
    /// (so only what is under test copies the log).
    fn open(path: &Path) -> Connection {
        std::fs::File::create(path).unwrap();
        let c = Connection::open(path).unwrap();
        exec(&c, "PRAGMA journal_mode = WAL");
        exec(&c, "PRAGMA wal_autocheckpoint = 0");
        exec(&c, "CREATE TABLE t (b BLOB)");
        c
    }

    fn exec(c: &Connection, sql: &str) {
        let sql = CString::new(sql).unwrap();
        assert_eq!(c.exec(&sql), ffi::SQLITE_OK, "{sql:?}");
    }

    /// Commit a megabyte (256 pages) `n` times.
    fn write_megabytes(c: &Connection, n: usize) {
        for _ in 0..n {
            exec(c, "INSERT INTO t VALUES (randomblob(1048576))");
        }
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn a_full_log_is_copied_by_the_thread_and_by_the_commit_once_the_thread_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let c = open(&path);
        let checkpointer = Checkpointer::start(&path).unwrap();
        // SAFETY: this test's connection, used by this thread only.
        unsafe { checkpointer.watch(c.0) };
        // Under the limit: nothing is copied; the database file holds the schema only.
        write_megabytes(&c, 30);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(checkpointer.runs(), 0);
        assert!(size(&path) < 1 << 20, "{}", size(&path));
        // Past it (8,000 pages: 32 MiB): the thread copies the log into the file.
        write_megabytes(&c, 3);
        let waited = Instant::now();
        while checkpointer.runs() == 0 && waited.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(10));
        }
        // (A commit that comes while it copies asks again: one more, shorter, run.)
        assert!(checkpointer.runs() >= 1);
        assert!(size(&path) > 30 << 20, "{}", size(&path));

        // The thread gone, a commit past the limit copies the log itself.
        drop(checkpointer);
        let before = size(&path);
        write_megabytes(&c, 33);
        assert!(
            size(&path) > before + (30 << 20),
            "{before} → {}",
            size(&path)
        );
    }
}
