//! A message's raw bytes into `message_raw` (migration 0012); a large one written in pieces
//! (SQLite incremental blob I/O).
//!
//! Bound as a statement parameter, a mail's bytes are copied three times more on the way
//! in (sqlx's argument, SQLite's bound value, the record it builds): for a mail with a
//! 20 MB attachment that alone was over 100 MB (issue 8). From [`STREAM_RAW_BYTES`] on,
//! the row is inserted with `zeroblob(size)`, which SQLite writes as a count without
//! allocating it, because `raw` is the record's last column (it was not in `messages`,
//! where SQLite expanded it: the reason for the table of its own), and the mail is written
//! into it [`PIECE`] at a time, in the caller's transaction. Only on SQLite
//! ([`super::dialect::streams_raw`]): PostgreSQL binds the bytes in the `INSERT` (its
//! protocol sends them once, with no bound-value copy in a library of ours).

use std::ffi::{CStr, c_int};

use super::{Result, Sql, StoreError, Tx, dialect};
use libsqlite3_sys as ffi;

/// From this size on, a raw mail is written into its row in pieces (on SQLite).
pub const STREAM_RAW_BYTES: usize = 1024 * 1024;
/// How much of a mail one blob write takes.
const PIECE: usize = 256 * 1024;

/// Store `raw` as the raw mail of message `row` (its `message_raw` row), in the caller's
/// transaction, never holding another copy of a large one (on SQLite).
pub async fn insert_raw(tx: &mut Tx, row: i64, raw: &[u8]) -> Result<()> {
    if !dialect::streams_raw(tx.kind(), raw.len()) {
        Sql::new("INSERT INTO message_raw (message_id, raw) VALUES ($1, $2)")
            .bind(row)
            .bind(raw)
            .execute(tx)
            .await?;
        return Ok(());
    }
    let len = i64::try_from(raw.len()).map_err(|_| blob_error(ffi::SQLITE_TOOBIG, "too large"))?;
    Sql::new("INSERT INTO message_raw (message_id, raw) VALUES ($1, zeroblob($2))")
        .bind(row)
        .bind(len)
        .execute(tx)
        .await?;
    let Some(direct) = tx.direct().await? else {
        return Err(blob_error(
            ffi::SQLITE_MISUSE,
            "pieces are written on SQLite only",
        ));
    };
    let db = direct.db();
    let mut blob: *mut ffi::sqlite3_blob = std::ptr::null_mut();
    // SAFETY: `db` is this transaction's connection, taken from sqlx's thread for us (no
    // other thread uses it while `direct` lives); the names are NUL-terminated; `blob` is
    // closed below.
    let rc = unsafe {
        ffi::sqlite3_blob_open(
            db,
            c"main".as_ptr(),
            c"message_raw".as_ptr(),
            c"raw".as_ptr(),
            row,
            1,
            &mut blob,
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(error_of(db, rc));
    }
    let mut result = Ok(());
    for (i, piece) in raw.chunks(PIECE).enumerate() {
        // PIECE and the mail's length fit a C int: SQLite refuses blobs over 2 GB anyway.
        let (n, offset) = (piece.len() as c_int, (i * PIECE) as c_int);
        // SAFETY: `blob` is open; `piece` is valid for `n` bytes.
        let rc = unsafe { ffi::sqlite3_blob_write(blob, piece.as_ptr().cast(), n, offset) };
        if rc != ffi::SQLITE_OK {
            result = Err(error_of(db, rc));
            break;
        }
    }
    // SAFETY: `blob` is open and not used after this.
    let rc = unsafe { ffi::sqlite3_blob_close(blob) };
    if result.is_ok() && rc != ffi::SQLITE_OK {
        result = Err(error_of(db, rc));
    }
    result
}

fn error_of(db: *mut ffi::sqlite3, code: c_int) -> StoreError {
    // SAFETY: `db` is an open handle; sqlite3_errmsg returns a NUL-terminated string it
    // owns, copied here at once.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned();
    blob_error(code, &message)
}

fn blob_error(code: c_int, message: &str) -> StoreError {
    StoreError::Blob {
        code,
        message: message.to_string(),
    }
}
