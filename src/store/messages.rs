//! Storing a message (`messages` and its raw bytes in `message_raw`) and queueing what
//! klachtpost sends (`outbox`), in the caller's transaction.

use super::{Result, Sql, StoreRow, Ts, Tx, blob};
use chrono::{DateTime, Utc};

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub case_id: Option<i64>,
    pub direction: &'a str,
    pub kind: &'a str,
    pub source_key: Option<&'a str>,
    /// What the mail is ([`crate::intake::identity`]); `None` for what klachtpost sends.
    pub identity: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub from_name: Option<&'a str>,
    pub from_address: Option<&'a str>,
    pub subject: &'a str,
    pub date_header: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub text: &'a str,
    pub decision_reason: &'a str,
    pub flags: &'a [String],
    pub raw: &'a [u8],
    pub created_at: DateTime<Utc>,
}

/// An outbox row for a stored message: how it is sent.
struct Queue<'a> {
    case_id: Option<i64>,
    purpose: &'a str,
    envelope_from: &'a str,
    recipients: String,
    /// The message's `Auto-Submitted` value when it is automatic mail (what the loop and
    /// flood rules count).
    auto_submitted: Option<String>,
    now: DateTime<Utc>,
}

/// Insert a message and its raw bytes (`message_raw`, migration 0012), in the caller's
/// transaction. A large raw mail is written in pieces on SQLite ([`blob::insert_raw`]).
pub async fn insert_message(tx: &mut Tx, m: &NewMessage<'_>) -> Result<i64> {
    Ok(insert(tx, m, None).await?.0)
}

/// Store a message klachtpost sends and queue it for delivery, in the caller's
/// transaction. `purpose` is both the message's kind and the outbox purpose
/// (acknowledgement, extension, notice).
#[allow(clippy::too_many_arguments)]
pub async fn queue_outgoing(
    tx: &mut Tx,
    case_id: Option<i64>,
    purpose: &str,
    from_name: Option<&str>,
    from: &str,
    to: &str,
    out: &crate::compose::Outgoing,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let to = [to.to_string()];
    let (_, outbox) =
        queue_outgoing_to_all(tx, case_id, purpose, from_name, from, &to, out, reason, now).await?;
    Ok(outbox)
}

/// [`queue_outgoing`] to several recipients at once (one mail, one outbox row): the one
/// way a mail is stored and queued. Returns the message row and the outbox row.
#[allow(clippy::too_many_arguments)]
pub async fn queue_outgoing_to_all(
    tx: &mut Tx,
    case_id: Option<i64>,
    purpose: &str,
    from_name: Option<&str>,
    from: &str,
    to: &[String],
    out: &crate::compose::Outgoing,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(i64, i64)> {
    let message = NewMessage {
        case_id,
        direction: "outbound",
        kind: purpose,
        source_key: None,
        identity: None,
        message_id: Some(&out.message_id),
        from_name,
        from_address: Some(from),
        subject: &out.subject,
        date_header: Some(now),
        received_at: now,
        text: &out.text,
        decision_reason: reason,
        flags: &[],
        raw: &out.raw,
        created_at: now,
    };
    let queue = Queue {
        case_id,
        purpose,
        envelope_from: from,
        recipients: to.join("\n"),
        auto_submitted: crate::compose::auto_submitted(&out.raw),
        now,
    };
    let (row, outbox) = insert(tx, &message, Some(&queue)).await?;
    // `insert` returns the outbox row whenever it is given one to queue.
    Ok((row, outbox.unwrap_or_default()))
}

/// Store an internal notice (to a partner or staff member) and queue it.
pub async fn queue_notice(
    tx: &mut Tx,
    case_id: Option<i64>,
    to: &str,
    out: &crate::compose::Outgoing,
    from: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    queue_outgoing(
        tx,
        case_id,
        "notice",
        Some("klachtpost"),
        from,
        to,
        out,
        "internal notice",
        now,
    )
    .await
}

/// Write a message, its raw bytes and, given `queue`, its outbox row. Returns the message
/// row and the outbox row.
async fn insert(
    tx: &mut Tx,
    m: &NewMessage<'_>,
    queue: Option<&Queue<'_>>,
) -> Result<(i64, Option<i64>)> {
    let row = Sql::new(
        "INSERT INTO messages (case_id, direction, kind, source_key, message_id, from_name, from_address, subject,
                               date_header, received_at, text, decision_reason, flags, size, created_at, identity)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
    )
    .bind(m.case_id)
    .bind(m.direction)
    .bind(m.kind)
    .bind(m.source_key)
    .bind(m.message_id)
    .bind(m.from_name)
    .bind(m.from_address.map(str::to_ascii_lowercase))
    .bind(m.subject)
    .bind(m.date_header.map(Ts))
    .bind(Ts(m.received_at))
    .bind(m.text)
    .bind(m.decision_reason)
    .bind(m.flags.join("\n"))
    .bind(m.raw.len() as i64)
    .bind(Ts(m.created_at))
    .bind(m.identity)
    .fetch_one(tx)
    .await?;
    let id: i64 = row.col(0)?;
    blob::insert_raw(tx, id, m.raw).await?;
    let outbox = match queue {
        Some(o) => Some(enqueue(tx, id, o).await?),
        None => None,
    };
    Ok((id, outbox))
}

/// Queue a stored message (its `messages` row) for delivery.
async fn enqueue(tx: &mut Tx, message_row: i64, o: &Queue<'_>) -> Result<i64> {
    let row = Sql::new(
        "INSERT INTO outbox (message_id, case_id, purpose, envelope_from, recipients, status, attempts, next_attempt_at, created_at, auto_submitted)
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6, $7) RETURNING id",
    )
    .bind(message_row)
    .bind(o.case_id)
    .bind(o.purpose)
    .bind(o.envelope_from)
    .bind(&o.recipients)
    .bind(Ts(o.now))
    .bind(o.auto_submitted.as_deref())
    .fetch_one(tx)
    .await?;
    Ok(row.col(0)?)
}
