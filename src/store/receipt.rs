//! A note about how a stored message's receipt time was found, when the server did not say
//! (no INTERNALDATE): on the message's flags and in its case's history.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, add_event};

impl Store {
    /// Add `note` to message `row`'s flags and, when it is on a case, to the case's history.
    pub async fn note_receipt_time(&self, row: i64, note: &str, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin().await?;
        let found = sqlx::query("SELECT case_id, flags FROM messages WHERE id = $1")
            .bind(row)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(found) = found else {
            return Ok(());
        };
        let case_id: Option<i64> = found.try_get(0)?;
        let flags: String = found.try_get(1)?;
        let flags = if flags.is_empty() {
            note.to_string()
        } else {
            format!("{flags}\n{note}")
        };
        sqlx::query("UPDATE messages SET flags = $1 WHERE id = $2")
            .bind(flags)
            .bind(row)
            .execute(&mut *tx)
            .await?;
        if let Some(case_id) = case_id {
            add_event(&mut tx, case_id, now, "message.receipt_time", note).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
