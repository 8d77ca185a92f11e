//! The `channel_health` table (migration 0004): per channel, the last success, the open
//! outage and whether the partners were told. The decisions are in [`crate::health`].

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Sql, Store, StoreRow, Ts, Tx, on};
use crate::health::ChannelState;

fn state_from_row(r: &impl StoreRow) -> Result<ChannelState> {
    let time = |name: &str| -> Result<Option<DateTime<Utc>>> {
        Ok(r.col::<Option<Ts>>(name)?.map(|t| t.0))
    };
    Ok(ChannelState {
        last_success_at: time("last_success_at")?,
        failing_since: time("failing_since")?,
        last_failure_at: time("last_failure_at")?,
        last_error: r.col("last_error")?,
        alerted_at: time("alerted_at")?,
        backlog: r.col("backlog")?,
    })
}

macro_rules! columns {
    () => {
        "channel, last_success_at, failing_since, last_failure_at, last_error, alerted_at, backlog"
    };
}

/// The stored state of one channel (the default, healthy and unknown, when never written).
pub async fn channel_state(tx: &mut Tx, channel: &str) -> Result<ChannelState> {
    let row = Sql::new(concat!(
        "SELECT ",
        columns!(),
        " FROM channel_health WHERE channel = $1"
    ))
    .bind(channel)
    .fetch_optional(tx)
    .await?;
    match row {
        Some(r) => state_from_row(&r),
        None => Ok(ChannelState::default()),
    }
}

/// Write one channel's state.
pub async fn set_channel_state(
    tx: &mut Tx,
    channel: &str,
    s: &ChannelState,
    now: DateTime<Utc>,
) -> Result<()> {
    Sql::new(
        "INSERT INTO channel_health (channel, last_success_at, failing_since, last_failure_at, last_error, alerted_at, backlog, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (channel) DO UPDATE SET last_success_at = excluded.last_success_at,
           failing_since = excluded.failing_since, last_failure_at = excluded.last_failure_at,
           last_error = excluded.last_error, alerted_at = excluded.alerted_at,
           backlog = excluded.backlog, updated_at = excluded.updated_at",
    )
    .bind(channel)
    .bind(s.last_success_at.map(Ts))
    .bind(s.failing_since.map(Ts))
    .bind(s.last_failure_at.map(Ts))
    .bind(s.last_error.as_deref())
    .bind(s.alerted_at.map(Ts))
    .bind(s.backlog)
    .bind(Ts(now))
    .execute(tx)
    .await?;
    Ok(())
}

impl Store {
    /// Every channel written so far, by name.
    pub async fn channel_states(&self) -> Result<Vec<(String, ChannelState)>> {
        on!(self.pool(), |c| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM channel_health ORDER BY channel"
            ))
            .fetch_all(c)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("channel")?, state_from_row(r)?)))
                .collect()
        })
    }
}
