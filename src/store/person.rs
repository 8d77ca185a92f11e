//! Everything stored about one mail address (a data subject access request).

use serde::Serialize;
use sqlx::Row;

use super::{Pool, Result, TimeText, on};

/// A stored message that came from or went to the address.
#[derive(Debug, Clone, Serialize)]
pub struct PersonMessage {
    pub id: i64,
    pub case: Option<String>,
    pub direction: String,
    pub kind: String,
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub subject: String,
    pub received_at: String,
    pub text: String,
    #[serde(skip)]
    pub raw: Vec<u8>,
}

/// The references of the cases where the address is the complainant.
pub async fn cases_of(pool: &Pool, address: &str) -> Result<Vec<String>> {
    on!(pool, |c| {
        let rows =
            sqlx::query("SELECT reference FROM cases WHERE complainant_address = $1 ORDER BY id")
                .bind(address.trim().to_ascii_lowercase())
                .fetch_all(c)
                .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    })
}

/// Messages from the address, or sent to it, oldest first.
pub async fn messages_of(pool: &Pool, address: &str) -> Result<Vec<PersonMessage>> {
    on!(pool, |c| {
        let a = address.trim().to_ascii_lowercase();
        // Recipients are one address per line; matched exactly in code (LIKE would treat
        // `_` in an address as a wildcard and hand out someone else's mail).
        let mut ids: Vec<i64> = Vec::new();
        for r in sqlx::query("SELECT message_id, recipients FROM outbox")
            .fetch_all(c)
            .await?
        {
            let recipients: String = r.try_get(1)?;
            if recipients
                .lines()
                .any(|l| l.trim().eq_ignore_ascii_case(&a))
            {
                ids.push(r.try_get(0)?);
            }
        }
        for r in sqlx::query("SELECT id FROM messages WHERE from_address = $1")
            .bind(&a)
            .fetch_all(c)
            .await?
        {
            ids.push(r.try_get(0)?);
        }
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::new();
        for id in ids {
            let r = sqlx::query(
                "SELECT m.id, c.reference, m.direction, m.kind, m.from_name, m.from_address, m.subject,
                        m.received_at, m.text, r.raw
                 FROM messages m JOIN message_raw r ON r.message_id = m.id
                 LEFT JOIN cases c ON c.id = m.case_id WHERE m.id = $1",
            )
            .bind(id)
            .fetch_one(c)
            .await?;
            out.push(PersonMessage {
                id: r.try_get(0)?,
                case: r.try_get(1)?,
                direction: r.try_get(2)?,
                kind: r.try_get(3)?,
                from_name: r.try_get(4)?,
                from_address: r.try_get(5)?,
                subject: r.try_get(6)?,
                received_at: r.try_get::<TimeText, _>(7)?.0,
                text: r.try_get(8)?,
                raw: r.try_get(9)?,
            });
        }
        out.sort_by(|x, y| x.received_at.cmp(&y.received_at).then(x.id.cmp(&y.id)));
        Ok(out)
    })
}
