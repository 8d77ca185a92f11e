//! Which database: SQLite (the embedded default) or PostgreSQL, chosen from the URL when
//! the store opens. [`Pool`] and [`Tx`] are one type over both, so each query is written
//! once: in a transaction as a [`super::Sql`] statement (on SQLite run on the calling
//! thread, [`super::direct`]), on the pool (reads, and what needs no transaction) through
//! [`on!`], which runs the same sqlx query-building code on whichever it is. The SQL that
//! must differ is in [`super::dialect`].

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow, PgSslMode};
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};

use super::checkpoint::Checkpointer;
use super::direct::{Direct, DirectIndex, FromDirect};
use super::{Result, StoreError, dialect};

/// `on!(db, |c| body)`: run `body` on the database behind `db` (a [`Pool`]; a [`Tx`]
/// borrowed mutably only where sqlx itself is needed, e.g. a copy between databases: a
/// transaction's statements are [`super::Sql`]), with `c` bound to its SQLite or
/// PostgreSQL side: `&SqlitePool`/`&PgPool` for a pool,
/// `&mut SqliteConnection`/`&mut PgConnection` for a transaction (write `&mut *c`). The
/// body is compiled once per database, so it may only use what both have in common: the
/// portable SQL of CONTRIBUTING, and values of [`Ts`](super::Ts), `bool`, `i64`, text and
/// bytes.
macro_rules! on {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db.backend() {
            $crate::store::Backend::Sqlite($c) => $body,
            $crate::store::Backend::Postgres($c) => $body,
        }
    };
}
pub(crate) use on;

/// One of the two databases' handles.
#[derive(Debug)]
pub enum Backend<S, P> {
    Sqlite(S),
    Postgres(P),
}

/// A value both databases read the same way (text, `i64`, `bool`, bytes, [`Ts`](super::Ts),
/// and `Option`s of them).
pub trait Value:
    for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
    + FromDirect
{
}
impl<T> Value for T where
    T: for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
        + FromDirect
{
}

/// A column index every kind of row takes (a position or a name).
pub trait Column: sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow> + DirectIndex {}
impl<I> Column for I where I: sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow> + DirectIndex {}

/// A row of either database, for the functions that turn a row into a struct in one
/// place (inside [`on!`] a row has its database's own type).
pub trait StoreRow {
    fn col<T: Value>(&self, index: impl Column) -> sqlx::Result<T>;
}

impl StoreRow for SqliteRow {
    fn col<T: Value>(&self, index: impl Column) -> sqlx::Result<T> {
        sqlx::Row::try_get(self, index)
    }
}

impl StoreRow for PgRow {
    fn col<T: Value>(&self, index: impl Column) -> sqlx::Result<T> {
        sqlx::Row::try_get(self, index)
    }
}

/// Which database a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    /// From a database URL: `postgres://` or `postgresql://` is PostgreSQL, anything
    /// else is SQLite.
    pub fn of(url: &str) -> Kind {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Kind::Postgres
        } else {
            Kind::Sqlite
        }
    }
}

/// The connection pool. On SQLite with the process's [`WriteGate`] for the file.
#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqlitePool, WriteGate),
    Postgres(PgPool),
}

/// SQLite has one writer at a time, and a writer that finds the file locked polls for it
/// (sleeping up to 100 ms a try): against a stream of short write transactions (intake in
/// a backlog) a lone statement, such as the mailbox lease's renewal, can starve until its
/// lease lapses. So a process's write transactions on one file queue here first, in
/// arrival order, and meet SQLite's lock only when it is free (other processes on the
/// same file still meet it, and wait as before). Shared by every pool of one store.
#[derive(Debug, Clone, Default)]
pub struct WriteGate(Arc<tokio::sync::Mutex<()>>);

impl WriteGate {
    /// Wait for the turn to write; as long as SQLite's busy timeout at most.
    async fn enter(&self) -> sqlx::Result<tokio::sync::OwnedMutexGuard<()>> {
        tokio::time::timeout(BUSY_TIMEOUT, self.0.clone().lock_owned())
            .await
            // As for a connection that does not come: the database is busy, not the work
            // wrong (intake keeps the mail for later instead of setting it aside).
            .map_err(|_| sqlx::Error::PoolTimedOut)
    }
}

/// How long a writer waits for its turn (the gate, then SQLite's lock).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Pool {
    pub fn backend(&self) -> Backend<&SqlitePool, &PgPool> {
        match self {
            Pool::Sqlite(p, _) => Backend::Sqlite(p),
            Pool::Postgres(p) => Backend::Postgres(p),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Pool::Sqlite(..) => Kind::Sqlite,
            Pool::Postgres(_) => Kind::Postgres,
        }
    }

    /// The SQLite pool, when the store is on SQLite (tests that reach into the file).
    pub fn as_sqlite(&self) -> Option<&SqlitePool> {
        match self {
            Pool::Sqlite(p, _) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, when the store is on PostgreSQL.
    pub fn as_postgres(&self) -> Option<&PgPool> {
        match self {
            Pool::Sqlite(..) => None,
            Pool::Postgres(p) => Some(p),
        }
    }

    /// A write transaction: one writer at a time, from its first statement (see
    /// [`dialect::begin_write`]; on SQLite after its turn at the [`WriteGate`]).
    pub async fn begin(&self) -> sqlx::Result<Tx> {
        match self {
            Pool::Sqlite(p, gate) => {
                let turn = gate.enter().await?;
                let tx = p.begin_with(dialect::SQLITE_BEGIN_WRITE).await?;
                Ok(Tx::sqlite(tx, Some(turn)))
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                dialect::pg_write_lock(&mut tx).await?;
                Ok(Tx::postgres(tx))
            }
        }
    }

    /// A transaction that never writes the history (claiming outbox rows, a lease, a job's
    /// due time, a count): on SQLite a write transaction as [`Pool::begin`], so even a lone
    /// statement takes its turn at the [`WriteGate`] instead of starving behind a backlog;
    /// on PostgreSQL a plain one, without the write lock, whose row locks (e.g.
    /// [`dialect::claim_due`]) keep writers apart: it need not wait for the one writer.
    pub async fn begin_plain(&self) -> sqlx::Result<Tx> {
        match self {
            Pool::Sqlite(..) => self.begin().await,
            Pool::Postgres(p) => Ok(Tx::postgres(p.begin().await?)),
        }
    }

    /// A transaction that only reads (one consistent view; also on a read-only store): no
    /// turn at the [`WriteGate`], no write lock.
    pub async fn begin_read(&self) -> sqlx::Result<Tx> {
        match self {
            Pool::Sqlite(p, _) => Ok(Tx::sqlite(p.begin().await?, None)),
            Pool::Postgres(p) => Ok(Tx::postgres(p.begin().await?)),
        }
    }

    pub async fn close(&self) {
        match self {
            Pool::Sqlite(p, _) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// An open transaction; everything intake writes for one mail goes through one.
#[derive(Debug)]
pub struct Tx {
    /// SQLite: the connection taken from sqlx's thread while [`super::Sql`] runs
    /// statements here ([`super::direct`]); given back before sqlx runs one. First, so it
    /// is dropped before the connection.
    direct: Option<Direct>,
    conn: TxConn,
    /// SQLite: this transaction's turn at the [`WriteGate`], given back when it ends.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The history as this transaction left it: the chain's head and the entries appended
    /// but not yet written ([`super::history::Pending`]), written by [`Tx::commit`],
    /// [`Tx::release`] and [`Tx::savepoint`].
    pub(super) history: super::history::Pending,
}

#[derive(Debug)]
enum TxConn {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    fn sqlite(
        tx: sqlx::Transaction<'static, Sqlite>,
        turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> Tx {
        Tx {
            direct: None,
            conn: TxConn::Sqlite(tx),
            _turn: turn,
            history: Default::default(),
        }
    }

    pub(super) fn postgres(tx: sqlx::Transaction<'static, Postgres>) -> Tx {
        Tx {
            direct: None,
            conn: TxConn::Postgres(tx),
            _turn: None,
            history: Default::default(),
        }
    }

    /// The connection, for a query through sqlx (on SQLite given back to sqlx's thread
    /// first).
    pub fn backend(&mut self) -> Backend<&mut SqliteConnection, &mut PgConnection> {
        self.direct = None;
        match &mut self.conn {
            TxConn::Sqlite(t) => Backend::Sqlite(&mut **t),
            TxConn::Postgres(t) => Backend::Postgres(&mut **t),
        }
    }

    pub fn kind(&self) -> Kind {
        match self.conn {
            TxConn::Sqlite(_) => Kind::Sqlite,
            TxConn::Postgres(_) => Kind::Postgres,
        }
    }

    /// Mark where one piece of work (one mail of an intake batch) starts, so that it alone
    /// can be undone ([`Tx::rollback_to`]) or kept ([`Tx::release`]). One at a time.
    ///
    /// History entries appended before it are written first, so those unwritten at a
    /// rollback to it are the piece's own (intake's mails start with none: the mail before
    /// was released or rolled back).
    pub async fn savepoint(&mut self) -> sqlx::Result<()> {
        super::history::write(self).await?;
        self.run("SAVEPOINT piece").await?;
        self.history.mark();
        Ok(())
    }

    /// Keep what was done since [`Tx::savepoint`] (it commits with the transaction): its
    /// history entries are written first, so a piece is kept whole or not at all. On an
    /// error the savepoint is still there: the caller rolls back to it
    /// ([`Tx::rollback_to`]), and the piece's failure is its own, as when a statement of it
    /// failed.
    pub async fn release(&mut self) -> sqlx::Result<()> {
        super::history::write(self).await?;
        self.run("RELEASE SAVEPOINT piece").await?;
        self.history.unmark();
        Ok(())
    }

    /// Undo what was done since [`Tx::savepoint`], and only that; on PostgreSQL also after
    /// a statement failed (which leaves the rest of the transaction usable again). The
    /// piece's history entries go with it, written or not, and the chain's head is put
    /// back.
    pub async fn rollback_to(&mut self) -> sqlx::Result<()> {
        self.run("ROLLBACK TO SAVEPOINT piece").await?;
        self.history.back_to_mark();
        self.run("RELEASE SAVEPOINT piece").await?;
        Ok(())
    }

    pub(super) async fn run(&mut self, sql: &'static str) -> sqlx::Result<()> {
        super::Sql::new(sql).execute(self).await.map(drop)
    }

    /// SQLite: the connection for statements run on this thread, taken from sqlx's
    /// thread if it is not yet. PostgreSQL: none.
    pub(super) async fn direct(&mut self) -> sqlx::Result<Option<&mut Direct>> {
        let TxConn::Sqlite(t) = &mut self.conn else {
            return Ok(None);
        };
        if self.direct.is_none() {
            self.direct = Some(Direct::lock(t).await?);
        }
        Ok(self.direct.as_mut())
    }

    /// The PostgreSQL connection ([`super::Sql`] after [`Tx::direct`] found none).
    pub(super) fn pg_connection(&mut self) -> &mut PgConnection {
        match self.backend() {
            Backend::Postgres(c) => c,
            Backend::Sqlite(_) => unreachable!("SQLite runs statements directly"),
        }
    }

    /// Commit, the history entries appended in the transaction written first (the only way
    /// to commit a [`Tx`], so none is ever left out).
    pub async fn commit(mut self) -> sqlx::Result<()> {
        super::history::write(&mut self).await?;
        self.direct = None;
        match self.conn {
            TxConn::Sqlite(t) => t.commit().await,
            TxConn::Postgres(t) => t.commit().await,
        }
    }

    /// Roll back; unwritten history entries are dropped with the rest.
    pub async fn rollback(mut self) -> sqlx::Result<()> {
        self.direct = None;
        match self.conn {
            TxConn::Sqlite(t) => t.rollback().await,
            TxConn::Postgres(t) => t.rollback().await,
        }
    }
}

/// Where the register is: `[database] url` with what connecting needs besides it. The
/// URL may hold a password (`postgres://user:secret@host/db`), so it is never shown whole:
/// `Debug` and [`DatabaseUrl::redacted`] leave the password out.
#[derive(Clone, Default)]
pub struct DatabaseUrl {
    url: String,
    /// `password_env` / `password_file` (PostgreSQL); over one in the URL.
    pub password: Option<SecretString>,
    /// `ca_file`: the CA that signed the PostgreSQL server's certificate. With it the
    /// connection is TLS with the server's name checked (`sslmode=verify-full`).
    pub ca_file: Option<PathBuf>,
}

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl {
            url: url.into(),
            password: None,
            ca_file: None,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    pub fn kind(&self) -> Kind {
        Kind::of(&self.url)
    }

    /// The URL without its password, for messages and logs.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseUrl")
            .field("url", &self.redacted())
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl PartialEq<&str> for DatabaseUrl {
    fn eq(&self, other: &&str) -> bool {
        self.url == *other
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        DatabaseUrl::new(url)
    }
}

impl From<&String> for DatabaseUrl {
    fn from(url: &String) -> Self {
        DatabaseUrl::new(url.clone())
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        DatabaseUrl::new(url)
    }
}

impl From<&DatabaseUrl> for DatabaseUrl {
    fn from(url: &DatabaseUrl) -> Self {
        url.clone()
    }
}

/// `scheme://user:password@host/…` → `scheme://user:***@host/…`; also a `password=`
/// query parameter.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

fn open_error(url: &DatabaseUrl) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |source| StoreError::Open {
        url: url.redacted(),
        source,
    }
}

/// Whether a SQLite URL names a file that exists (an in-memory database never does).
pub(super) fn sqlite_exists(url: &DatabaseUrl) -> Result<bool> {
    let options = SqliteConnectOptions::from_str(url).map_err(open_error(url))?;
    Ok(!url.contains(":memory:") && options.get_filename().exists())
}

/// How a store's database was opened, to open [`Reopen::deferred`] connections to it.
#[derive(Debug, Clone)]
pub(super) enum Reopen {
    Sqlite(SqliteConnectOptions, WriteGate, Option<Arc<Checkpointer>>),
    Postgres(PgConnectOptions),
}

impl Reopen {
    /// The SQLite file (the confirmation journal lies beside it).
    pub(super) fn sqlite_file(&self) -> Option<&std::path::Path> {
        match self {
            Reopen::Sqlite(o, ..) => Some(o.get_filename()),
            Reopen::Postgres(_) => None,
        }
    }

    /// A pool of two connections (intake's transaction and a read beside it), connected
    /// lazily, whose commits return without waiting for the disk: SQLite
    /// `synchronous = NORMAL` (in WAL mode a commit is in the log, synced at the next
    /// checkpoint or FULL commit), PostgreSQL `synchronous_commit = off` (a commit's WAL is
    /// flushed by the next synchronous commit or the WAL writer). A process that is killed
    /// loses none of them; a power loss may lose the last ones.
    ///
    /// On SQLite, intake's savepoint per mail copies the pages the mail changes to a
    /// sub-journal (to roll back that mail alone). Here it is kept in memory
    /// (`temp_store = MEMORY`); as a temporary file it was written for every mail, 7 % of
    /// a backlog's time (issue 8). It holds one mail's pages at a time: it is emptied when
    /// the mail's savepoint is released.
    pub(super) fn deferred(&self) -> Pool {
        match self {
            Reopen::Sqlite(o, gate, checkpointer) => Pool::Sqlite(
                watched(SqlitePoolOptions::new().max_connections(2), checkpointer)
                    .connect_lazy_with(
                        o.clone()
                            .synchronous(SqliteSynchronous::Normal)
                            .pragma("temp_store", "MEMORY"),
                    ),
                gate.clone(),
            ),
            Reopen::Postgres(o) => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_lazy_with(o.clone().options([("synchronous_commit", "off")])),
            ),
        }
    }
}

/// Open a SQLite pool (read-write: creating the file and its folder if needed), with how
/// to reopen it (none read-only or in memory).
pub(super) async fn open_sqlite(
    url: &DatabaseUrl,
    read_only: bool,
) -> Result<(Pool, Option<Reopen>)> {
    let options = SqliteConnectOptions::from_str(url).map_err(open_error(url))?;
    let in_memory = url.contains(":memory:");
    let options = if read_only {
        options.read_only(true).create_if_missing(false)
    } else {
        options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Once a mail leaves INBOX its case must survive a power loss: in WAL mode
            // FULL syncs the log at every commit (NORMAL could lose the last commits).
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // Deleted content is overwritten, not left in free pages (retention).
            .pragma("secure_delete", "ON")
            // New files give freed pages back with `PRAGMA incremental_vacuum`.
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            // Copy the log back into the database every 8,000 pages (32 MiB) rather than
            // SQLite's 1,000: a complaint's commit writes ~50 pages, so a backlog
            // checkpointed every 20 mails, copying (and syncing) the same hot index pages
            // again each time (6 % of a backlog's time, issue 8). The log is reused from
            // its start after each checkpoint, and cut back to 32 MiB when larger. The
            // checkpoint thread (`checkpoint.rs`) takes this over on read-write pools, at
            // the same size; this stays for a connection without it.
            .pragma("wal_autocheckpoint", "8000")
            .pragma("journal_size_limit", "33554432")
    };
    if !read_only && !in_memory {
        super::private_file(options.get_filename())?;
    }
    let checkpointer = if read_only || in_memory {
        None
    } else {
        match Checkpointer::start(options.get_filename()) {
            Ok(c) => Some(c),
            Err(e) => {
                // SQLite's automatic checkpoint stays (`wal_autocheckpoint`): only slower.
                tracing::warn!(event = "store.checkpointer_failed", error = %e, "cannot start the checkpoint thread; commits checkpoint the log themselves");
                None
            }
        }
    };
    let pool = retry_busy(|| {
        // An in-memory database lives in one connection.
        let size = if in_memory || read_only { 1 } else { 4 };
        watched(
            SqlitePoolOptions::new().max_connections(size),
            &checkpointer,
        )
        .connect_with(options.clone())
    })
    .await
    .map_err(open_error(url))?;
    let gate = WriteGate::default();
    let reopen =
        (!read_only && !in_memory).then(|| Reopen::Sqlite(options, gate.clone(), checkpointer));
    Ok((Pool::Sqlite(pool, gate), reopen))
}

/// `options` whose connections' commits ask `checkpointer` for checkpoints, when there is
/// one ([`Checkpointer::watch`]).
fn watched(
    options: SqlitePoolOptions,
    checkpointer: &Option<Arc<Checkpointer>>,
) -> SqlitePoolOptions {
    let Some(checkpointer) = checkpointer.clone() else {
        return options;
    };
    options.after_connect(move |conn, _| {
        let checkpointer = checkpointer.clone();
        Box::pin(async move {
            let mut handle = conn.lock_handle().await?;
            // SAFETY: the handle is locked for us: no other thread uses the connection.
            unsafe { checkpointer.watch(handle.as_raw_handle().as_ptr()) };
            Ok(())
        })
    })
}

/// Run `attempt` again while SQLite answers "database is locked" (or "table is locked"),
/// for as long as a writer waits its turn ([`BUSY_TIMEOUT`]), pausing 10 ms, then twice as
/// long each time (at most 0.5 s). SQLite answers so at once, without waiting its busy
/// timeout, where waiting could deadlock: processes that open a new file together each set
/// it up (journal mode, auto-vacuum) as they connect, and one of them can be told so (seen
/// once in CI, among eight `klachtpost` processes started at once on a new register).
async fn retry_busy<T, F, Fut>(mut attempt: F) -> sqlx::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<T>>,
{
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        match attempt().await {
            Err(e) if is_busy(&e) && started.elapsed() + pause < BUSY_TIMEOUT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            result => return result,
        }
    }
}

/// SQLite's "database is locked" (BUSY, 5) or "table is locked" (LOCKED, 6), extended codes
/// included.
fn is_busy(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    db.code()
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// The PostgreSQL connection settings: the URL (and libpq's `PG…` environment, which
/// sqlx reads), the password from `password_env`/`password_file` over both, and TLS with
/// the server's certificate checked against `ca_file`.
pub fn pg_options(url: &DatabaseUrl) -> Result<PgConnectOptions> {
    let mut options = PgConnectOptions::from_str(url).map_err(open_error(url))?;
    if let Some(password) = &url.password {
        options = options.password(password.expose_secret());
    }
    if let Some(ca) = &url.ca_file {
        options = options.ssl_mode(PgSslMode::VerifyFull).ssl_root_cert(ca);
    }
    Ok(options)
}

/// Open a PostgreSQL pool, with how to reopen it (none read-only).
pub(super) async fn open_postgres(
    url: &DatabaseUrl,
    read_only: bool,
) -> Result<(Pool, Option<Reopen>)> {
    let mut options = pg_options(url)?;
    if read_only {
        // `explain` must change nothing: every transaction of these connections is
        // refused a write.
        options = options.options([("default_transaction_read_only", "on")]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(if read_only { 1 } else { 4 })
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options.clone())
        .await
        .map_err(open_error(url))?;
    let reopen = (!read_only).then_some(Reopen::Postgres(options));
    Ok((Pool::Postgres(pool), reopen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact_url("postgres://klacht:s3cret@db.example:5432/register?sslmode=require"),
            "postgres://klacht:***@db.example:5432/register?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db.example/register?user=k&password=s3cret"),
            "postgres://db.example/register?user=k&password=***"
        );
        assert_eq!(
            redact_url("sqlite://var/klachtpost.db"),
            "sqlite://var/klachtpost.db"
        );
        let mut url = DatabaseUrl::new("postgres://k:s3cret@h/db");
        url.password = Some(SecretString::from("other-secret"));
        let shown = format!("{url:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("other-secret"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn opening_is_tried_again_while_the_database_is_locked_and_only_then() {
        use super::super::direct::database_error;
        let attempts = std::cell::Cell::new(0);
        let opened = retry_busy(|| {
            attempts.set(attempts.get() + 1);
            let n = attempts.get();
            async move {
                match n {
                    1 => Err(database_error(5, "database is locked".into())),
                    // An extended code: SQLITE_BUSY_RECOVERY.
                    2 => Err(database_error(261, "database is locked".into())),
                    _ => Ok("open"),
                }
            }
        })
        .await;
        assert_eq!(opened.unwrap(), "open");
        assert_eq!(attempts.get(), 3);

        // Anything else is the answer at once.
        attempts.set(0);
        let refused: sqlx::Result<()> = retry_busy(|| {
            attempts.set(attempts.get() + 1);
            async { Err(database_error(14, "unable to open database file".into())) }
        })
        .await;
        assert!(refused.is_err());
        assert_eq!(attempts.get(), 1);
    }

    #[test]
    fn the_url_chooses_the_database() {
        assert_eq!(Kind::of("postgres://h/db"), Kind::Postgres);
        assert_eq!(Kind::of("postgresql://h/db"), Kind::Postgres);
        assert_eq!(Kind::of("sqlite://var/k.db"), Kind::Sqlite);
        assert_eq!(Kind::of("sqlite::memory:"), Kind::Sqlite);
    }
}
