//! A note about how a stored message's receipt time was found, when the server did not say
//! (no INTERNALDATE), on the message's flags. The case's history entry is intake's
//! ([`crate::intake::note_receipt_time`]), through the case commands.

use super::{Result, Sql, StoreRow, Tx};

/// Add `note` to message `row`'s flags. Returns the message's case, if it is on one.
pub async fn add_message_note(tx: &mut Tx, row: i64, note: &str) -> Result<Option<i64>> {
    let found = Sql::new("SELECT case_id, flags FROM messages WHERE id = $1")
        .bind(row)
        .fetch_optional(tx)
        .await?;
    let Some(found) = found else {
        return Ok(None);
    };
    let case_id: Option<i64> = found.col(0)?;
    let flags: String = found.col(1)?;
    let flags = if flags.is_empty() {
        note.to_string()
    } else {
        format!("{flags}\n{note}")
    };
    Sql::new("UPDATE messages SET flags = $1 WHERE id = $2")
        .bind(flags)
        .bind(row)
        .execute(tx)
        .await?;
    Ok(case_id)
}
