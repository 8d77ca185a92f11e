//! A case's parties: who may write on it besides staff. Recorded when klachtpost decides
//! someone is one (the complainant when the case opens; whom the complainant's own mail or
//! the firm's answer addresses), never because someone's mail was attached to the case.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Ts, Tx, on};

/// Record `address` as a party to a case (once; the first reason stays).
pub async fn add_party(
    tx: &mut Tx,
    case_id: i64,
    address: &str,
    role: &str,
    message_row: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    on!(tx, |c| {
        let done = sqlx::query(
            "INSERT INTO case_parties (case_id, address, role, added_at, message_id) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (case_id, address) DO NOTHING",
        )
        .bind(case_id)
        .bind(address.to_ascii_lowercase())
        .bind(role)
        .bind(Ts(now))
        .bind(message_row)
        .execute(&mut *c)
        .await?;
        Ok(done.rows_affected() > 0)
    })
}

/// The parties of a case other than its complainant, lower-cased, sorted.
pub(super) async fn of_case(tx: &mut Tx, case_id: i64) -> Result<Vec<String>> {
    on!(tx, |c| {
        let rows = sqlx::query(
            "SELECT address FROM case_parties WHERE case_id = $1 AND role <> 'complainant' ORDER BY address",
        )
        .bind(case_id)
        .fetch_all(&mut *c)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>(0)?))
            .collect()
    })
}
