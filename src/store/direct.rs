//! SQLite statements run on the calling thread, in a write transaction ([`super::Tx`])
//! (issue 8).
//!
//! sqlx runs every SQLite query on the connection's own thread: each statement is handed
//! over and its result handed back, a pair of context switches or more. A complaint's
//! dozen statements cost two dozen switches, a fifth of a backlog's CPU time with sqlx's
//! own channels and copies. So a [`super::Tx`] on SQLite takes the connection from sqlx's
//! thread once ([`Direct::lock`]: sqlx's `lock_handle`, the way it offers for direct
//! calls) and runs the statements of [`super::Sql`] here, each prepared once per
//! transaction and kept; the thread waits, parked, until the transaction gives the
//! connection back: before any statement sqlx runs on it ([`super::Tx::backend`]), and
//! at commit or rollback.
//!
//! A statement's `$n` is its n-th bound value (as sqlx binds them), in each statement of a
//! list of statements (`INSERT …; INSERT …`), which runs in order and returns the rows of
//! all of them. A failed statement is a [`sqlx::Error::Database`] with SQLite's extended
//! result code, as sqlx reports it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int};
use std::ptr::NonNull;
use std::sync::Arc;

use libsqlite3_sys as ffi;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::sqlite::LockedSqliteHandle;

use super::value::Arg;
use super::{Ts, parse_ts, ts};

/// The connection of a transaction, taken from sqlx's thread, with the statements run on
/// it so far, prepared.
pub(super) struct Direct {
    /// Dropped first (fields drop in order): finalized while the connection is still ours.
    statements: HashMap<Box<str>, Vec<Statement>>,
    db: NonNull<ffi::sqlite3>,
    /// The lock on the connection; dropping it gives the connection back to sqlx's thread.
    _handle: LockedSqliteHandle<'static>,
}

// SAFETY: the connection is locked for this `Direct` alone (sqlx's thread waits for the
// lock), and `db` and the statements are used only through `&mut Direct`, so by one thread
// at a time: what SQLite's multi-thread mode, in which sqlx opens its connections
// (SQLITE_OPEN_NOMUTEX), allows from any thread.
unsafe impl Send for Direct {}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("statements", &self.statements.len())
            .finish()
    }
}

impl Direct {
    /// Take `conn` from sqlx's thread until the `Direct` is dropped.
    ///
    /// The caller keeps the `Direct` beside the connection and drops it first, and runs
    /// nothing through sqlx on the connection meanwhile (sqlx's thread would wait for the
    /// lock, and the caller for sqlx's thread). [`super::Tx`] does both.
    pub(super) async fn lock(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<Direct> {
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle();
        // SAFETY: the lock guards the connection's state, which lives in a shared
        // allocation that the connection and sqlx's thread both hold, not in `conn`
        // itself, so moving `conn` does not move it; the caller drops the `Direct` before
        // the connection (see above), so the lock never outlives what it points to.
        let handle: LockedSqliteHandle<'static> = unsafe { std::mem::transmute(handle) };
        Ok(Direct {
            statements: HashMap::new(),
            db,
            _handle: handle,
        })
    }

    /// The connection's handle, for SQLite calls of its own ([`super::blob`]).
    pub(super) fn db(&mut self) -> *mut ffi::sqlite3 {
        self.db.as_ptr()
    }

    /// Run `sql` (one statement or a list of them) with `values` bound: the rows it
    /// returns and how many rows it changed.
    pub(super) fn run(&mut self, sql: &str, values: &[Arg<'_>]) -> sqlx::Result<Output> {
        let db = self.db;
        let list = match self.statements.get(sql) {
            Some(list) => list,
            None => self
                .statements
                .entry(sql.into())
                .or_insert(prepare(db, sql)?),
        };
        let mut out = Output::default();
        for statement in list {
            statement.run(db, values, &mut out)?;
        }
        Ok(out)
    }
}

/// What a statement (or a list) gave back.
#[derive(Debug, Default)]
pub(super) struct Output {
    pub rows: Vec<DirectRow>,
    /// Rows inserted, changed or deleted, summed over the list.
    pub changed: u64,
}

/// One prepared statement of a list, with where its parameters' values come from.
struct Statement {
    raw: NonNull<ffi::sqlite3_stmt>,
    /// For parameter i + 1, the index of its value: `$n` is value n - 1, a bare `?` its
    /// own position.
    values: Vec<usize>,
    columns: Arc<[Box<str>]>,
    read_only: bool,
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: prepared by `prepare` and finalized only here.
        unsafe { ffi::sqlite3_finalize(self.raw.as_ptr()) };
    }
}

/// Prepare every statement of `sql`, in order (kept: `SQLITE_PREPARE_PERSISTENT`).
fn prepare(db: NonNull<ffi::sqlite3>, sql: &str) -> sqlx::Result<Vec<Statement>> {
    let mut list = Vec::new();
    let mut rest = sql.as_bytes();
    while !rest.iter().all(u8::is_ascii_whitespace) {
        let len = c_int::try_from(rest.len())
            .map_err(|_| database_error(ffi::SQLITE_TOOBIG, "statement too long".into()))?;
        let mut raw: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
        let mut tail: *const c_char = std::ptr::null();
        // SAFETY: `db` is locked for us; `rest` is valid for `len` bytes (not
        // NUL-terminated, which the length allows); `raw` and `tail` are out-parameters.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                rest.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut raw,
                &mut tail,
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error_of(db, rc));
        }
        // SAFETY: SQLite sets `tail` to the end of the statement it read, within `rest`.
        let used = unsafe { tail.cast::<u8>().offset_from(rest.as_ptr()) } as usize;
        rest = &rest[used.min(rest.len())..];
        match NonNull::new(raw) {
            Some(raw) => list.push(Statement::new(raw)),
            // Only a comment was left.
            None => break,
        }
    }
    Ok(list)
}

impl Statement {
    fn new(raw: NonNull<ffi::sqlite3_stmt>) -> Statement {
        let stmt = raw.as_ptr();
        // SAFETY: `stmt` is a prepared statement; the names SQLite returns are
        // NUL-terminated and valid until it is finalized, copied here at once.
        unsafe {
            let params = ffi::sqlite3_bind_parameter_count(stmt);
            let values = (1..=params)
                .map(|i| {
                    let name = ffi::sqlite3_bind_parameter_name(stmt, i);
                    let number = (!name.is_null())
                        .then(|| CStr::from_ptr(name).to_bytes())
                        .and_then(|n| std::str::from_utf8(n.get(1..)?).ok())
                        .and_then(|n| n.parse::<usize>().ok());
                    match number {
                        Some(n) => n.saturating_sub(1),
                        None => (i - 1) as usize,
                    }
                })
                .collect();
            let columns = (0..ffi::sqlite3_column_count(stmt))
                .map(|i| {
                    let name = ffi::sqlite3_column_name(stmt, i);
                    if name.is_null() {
                        Box::from("")
                    } else {
                        Box::from(CStr::from_ptr(name).to_string_lossy().as_ref())
                    }
                })
                .collect();
            Statement {
                raw,
                values,
                columns,
                read_only: ffi::sqlite3_stmt_readonly(stmt) != 0,
            }
        }
    }

    /// Bind, step to the end, collect the rows; the statement is reset and its values
    /// cleared whatever happens (no bound text outlives this call).
    fn run(
        &self,
        db: NonNull<ffi::sqlite3>,
        values: &[Arg<'_>],
        out: &mut Output,
    ) -> sqlx::Result<()> {
        let stmt = self.raw.as_ptr();
        let result = self.bind(db, values).and_then(|()| {
            loop {
                // SAFETY: a prepared statement of the locked connection, its values bound.
                match unsafe { ffi::sqlite3_step(stmt) } {
                    ffi::SQLITE_ROW => out.rows.push(self.row()),
                    ffi::SQLITE_DONE => {
                        if !self.read_only {
                            // SAFETY: the connection is locked for us.
                            let changed = unsafe { ffi::sqlite3_changes(db.as_ptr()) };
                            out.changed += u64::try_from(changed).unwrap_or(0);
                        }
                        break Ok(());
                    }
                    rc => break Err(error_of(db, rc)),
                }
            }
        });
        // SAFETY: as above; after these the statement holds no pointer into `values`.
        unsafe {
            ffi::sqlite3_reset(stmt);
            ffi::sqlite3_clear_bindings(stmt);
        }
        result
    }

    fn bind(&self, db: NonNull<ffi::sqlite3>, values: &[Arg<'_>]) -> sqlx::Result<()> {
        let stmt = self.raw.as_ptr();
        for (i, &value) in self.values.iter().enumerate() {
            let index = (i + 1) as c_int;
            let Some(arg) = values.get(value) else {
                return Err(database_error(
                    ffi::SQLITE_RANGE,
                    format!("no value bound for ${}", value + 1),
                ));
            };
            // SAFETY: a prepared statement of the locked connection; text and bytes are
            // bound as SQLITE_STATIC: `values` outlives the step, and `run` clears the
            // bindings before it returns. A time's text is copied (SQLITE_TRANSIENT).
            let rc = unsafe {
                match arg {
                    Arg::Null(_) => ffi::sqlite3_bind_null(stmt, index),
                    Arg::Int(v) => ffi::sqlite3_bind_int64(stmt, index, *v),
                    Arg::Bool(v) => ffi::sqlite3_bind_int64(stmt, index, i64::from(*v)),
                    Arg::Real(v) => ffi::sqlite3_bind_double(stmt, index, *v),
                    Arg::Text(s) => bind_text(stmt, index, s, ffi::SQLITE_STATIC()),
                    Arg::Bytes(b) => ffi::sqlite3_bind_blob64(
                        stmt,
                        index,
                        b.as_ptr().cast(),
                        b.len() as u64,
                        ffi::SQLITE_STATIC(),
                    ),
                    Arg::Time(t) => bind_text(stmt, index, &ts(t.0), ffi::SQLITE_TRANSIENT()),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(error_of(db, rc));
            }
        }
        Ok(())
    }

    /// The current row, copied.
    fn row(&self) -> DirectRow {
        let stmt = self.raw.as_ptr();
        let values = (0..self.columns.len() as c_int)
            // SAFETY: the statement stands on a row; each pointer SQLite returns is valid
            // for the length it gives, until the next step, and copied here at once.
            .map(|i| unsafe {
                match ffi::sqlite3_column_type(stmt, i) {
                    ffi::SQLITE_INTEGER => DirectValue::Int(ffi::sqlite3_column_int64(stmt, i)),
                    ffi::SQLITE_FLOAT => DirectValue::Real(ffi::sqlite3_column_double(stmt, i)),
                    ffi::SQLITE_TEXT => {
                        let text = ffi::sqlite3_column_text(stmt, i);
                        let bytes = bytes_of(text, ffi::sqlite3_column_bytes(stmt, i));
                        DirectValue::Text(String::from_utf8_lossy(bytes).into_owned())
                    }
                    ffi::SQLITE_BLOB => {
                        let blob = ffi::sqlite3_column_blob(stmt, i);
                        DirectValue::Blob(
                            bytes_of(blob.cast(), ffi::sqlite3_column_bytes(stmt, i)).to_vec(),
                        )
                    }
                    _ => DirectValue::Null,
                }
            })
            .collect();
        DirectRow {
            columns: self.columns.clone(),
            values,
        }
    }
}

/// SAFETY: `stmt` is prepared; `destructor` tells SQLite whether `text` outlives the step.
unsafe fn bind_text(
    stmt: *mut ffi::sqlite3_stmt,
    index: c_int,
    text: &str,
    destructor: ffi::sqlite3_destructor_type,
) -> c_int {
    // SAFETY: `text` is valid UTF-8 for its length.
    unsafe {
        ffi::sqlite3_bind_text64(
            stmt,
            index,
            text.as_ptr().cast(),
            text.len() as u64,
            destructor,
            ffi::SQLITE_UTF8 as u8,
        )
    }
}

/// SAFETY: `ptr` is null or valid for `len` bytes for the returned lifetime.
unsafe fn bytes_of<'a>(ptr: *const u8, len: c_int) -> &'a [u8] {
    if ptr.is_null() || len <= 0 {
        &[]
    } else {
        // SAFETY: as the caller promised.
        unsafe { std::slice::from_raw_parts(ptr, len as usize) }
    }
}

/// A value of a row, as SQLite stored it.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A row read by a statement run here.
#[derive(Debug, Clone)]
pub struct DirectRow {
    columns: Arc<[Box<str>]>,
    values: Vec<DirectValue>,
}

impl DirectRow {
    /// The value at `index` (a position or a column name).
    pub fn value(&self, index: &impl DirectIndex) -> sqlx::Result<&DirectValue> {
        index
            .position(&self.columns)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| sqlx::Error::ColumnNotFound(index.describe()))
    }
}

/// How a column of a [`DirectRow`] is named: by position or name.
pub trait DirectIndex {
    fn position(&self, columns: &[Box<str>]) -> Option<usize>;
    fn describe(&self) -> String;
}

impl DirectIndex for usize {
    fn position(&self, columns: &[Box<str>]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl DirectIndex for &str {
    fn position(&self, columns: &[Box<str>]) -> Option<usize> {
        columns.iter().position(|c| c.as_ref() == *self)
    }
    fn describe(&self) -> String {
        (*self).to_string()
    }
}

/// A type a [`DirectRow`]'s value is read as, converted as SQLite's `sqlite3_column_*`
/// would (text from a number, a number from text that is one).
pub trait FromDirect: Sized {
    fn from_direct(value: &DirectValue) -> Result<Self, String>;
}

fn mismatch(want: &str, value: &DirectValue) -> String {
    let got = match value {
        DirectValue::Null => "NULL",
        DirectValue::Int(_) => "INTEGER",
        DirectValue::Real(_) => "REAL",
        DirectValue::Text(_) => "TEXT",
        DirectValue::Blob(_) => "BLOB",
    };
    format!("expected {want}, found {got}")
}

impl FromDirect for i64 {
    fn from_direct(value: &DirectValue) -> Result<Self, String> {
        match value {
            DirectValue::Int(v) => Ok(*v),
            DirectValue::Text(s) => s.trim().parse().map_err(|_| mismatch("INTEGER", value)),
            _ => Err(mismatch("INTEGER", value)),
        }
    }
}

impl FromDirect for i32 {
    fn from_direct(value: &DirectValue) -> Result<Self, String> {
        i32::try_from(i64::from_direct(value)?).map_err(|e| e.to_string())
    }
}

impl FromDirect for bool {
    fn from_direct(value: &DirectValue) -> Result<Self, String> {
        Ok(i64::from_direct(value)? != 0)
    }
}

impl FromDirect for f64 {
    fn from_direct(value: &DirectValue) -> Result<Self, String> {
        match value {
            DirectValue::Real(v) => Ok(*v),
            DirectValue::Int(v) => Ok(*v as f64),
            _ => Err(mismatch("REAL", value)),
        }
    }
}

impl FromDirect for String {
    fn from_direct(value: &DirectValue) -> Result<Self, String> {
        match value {
            DirectValue::Text(s) => Ok(s.clone()),
            DirectValue::Int(v) => Ok(v.to_string()),
            DirectValue::Real(v) => Ok(v.to_string()),
            DirectValue::Blob(b) => {
                String::from_utf8(b.clone()).map_err(|_| mismatch("TEXT", value))
            }
            DirectValue::Null => Err(mismatch("TEXT", value)),
        }
    }
}

impl FromDirect for Vec<u8> {
    fn from_direct(value: &DirectValue) -> Result<Self, String> {
        match value {
            DirectValue::Blob(b) => Ok(b.clone()),
            DirectValue::Text(s) => Ok(s.clone().into_bytes()),
            _ => Err(mismatch("BLOB", value)),
        }
    }
}

impl FromDirect for Ts {
    fn from_direct(value: &DirectValue) -> Result<Self, String> {
        match value {
            DirectValue::Text(s) => parse_ts(s).map(Ts).map_err(|e| e.to_string()),
            _ => Err(mismatch("TEXT (a time)", value)),
        }
    }
}

impl FromDirect for super::TimeText {
    fn from_direct(value: &DirectValue) -> Result<Self, String> {
        String::from_direct(value).map(super::TimeText)
    }
}

impl<T: FromDirect> FromDirect for Option<T> {
    fn from_direct(value: &DirectValue) -> Result<Self, String> {
        match value {
            DirectValue::Null => Ok(None),
            v => T::from_direct(v).map(Some),
        }
    }
}

/// A statement SQLite refused, reported as sqlx reports SQLite's errors (its `code` the
/// extended result code, its kind from it), so callers tell them apart the same way.
#[derive(Debug)]
pub struct DirectError {
    code: c_int,
    message: String,
}

impl std::fmt::Display for DirectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for DirectError {}

impl DatabaseError for DirectError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// A statement's error, as sqlx reports SQLite's.
pub(super) fn database_error(code: c_int, message: String) -> sqlx::Error {
    sqlx::Error::Database(Box::new(DirectError { code, message }))
}

/// The connection's last error (`rc` when it has none).
fn error_of(db: NonNull<ffi::sqlite3>, rc: c_int) -> sqlx::Error {
    // SAFETY: the connection is locked for us; sqlite3_errmsg returns a NUL-terminated
    // string it owns, copied here at once.
    let (code, message) = unsafe {
        let code = ffi::sqlite3_extended_errcode(db.as_ptr());
        let message = CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr()))
            .to_string_lossy()
            .into_owned();
        (if code == ffi::SQLITE_OK { rc } else { code }, message)
    };
    database_error(code, message)
}
