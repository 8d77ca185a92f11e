//! A case's parties: who may write on it besides staff. Recorded when klachtpost decides
//! someone is one (the complainant when the case opens; whom the complainant's own mail or
//! the firm's answer addresses), never because someone's mail was attached to the case.

use super::{Result, Sql, StoreRow, Ts, Tx};
use chrono::{DateTime, Utc};

/// Record `address` as a party to a case (once; the first reason stays).
pub async fn add_party(
    tx: &mut Tx,
    case_id: i64,
    address: &str,
    role: &str,
    message_row: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let added = Sql::new(
        "INSERT INTO case_parties (case_id, address, role, added_at, message_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (case_id, address) DO NOTHING",
    )
    .bind(case_id)
    .bind(address.to_ascii_lowercase())
    .bind(role)
    .bind(Ts(now))
    .bind(message_row)
    .execute(tx)
    .await?;
    Ok(added > 0)
}

/// The parties of a case other than its complainant, lower-cased, sorted.
pub(super) async fn of_case(tx: &mut Tx, case_id: i64) -> Result<Vec<String>> {
    let rows = Sql::new(
        "SELECT address FROM case_parties WHERE case_id = $1 AND role <> 'complainant' ORDER BY address",
    )
    .bind(case_id)
    .fetch_all(tx)
    .await?;
    rows.iter().map(|r| Ok(r.col::<String>(0)?)).collect()
}
