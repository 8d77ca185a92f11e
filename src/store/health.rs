//! The `channel_health` table (migration 0004): per channel, the last success, the open
//! outage and whether the partners were told. The decisions are in [`crate::health`].

use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection};

use super::{Result, Store, parse_ts, ts};
use crate::health::ChannelState;

fn opt_ts(v: Option<String>) -> Result<Option<DateTime<Utc>>> {
    v.as_deref().map(parse_ts).transpose()
}

fn state_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<ChannelState> {
    Ok(ChannelState {
        last_success_at: opt_ts(r.try_get("last_success_at")?)?,
        failing_since: opt_ts(r.try_get("failing_since")?)?,
        last_failure_at: opt_ts(r.try_get("last_failure_at")?)?,
        last_error: r.try_get("last_error")?,
        alerted_at: opt_ts(r.try_get("alerted_at")?)?,
        backlog: r.try_get("backlog")?,
    })
}

macro_rules! columns {
    () => {
        "channel, last_success_at, failing_since, last_failure_at, last_error, alerted_at, backlog"
    };
}

/// The stored state of one channel (the default, healthy and unknown, when never written).
pub async fn channel_state(tx: &mut SqliteConnection, channel: &str) -> Result<ChannelState> {
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM channel_health WHERE channel = $1"
    ))
    .bind(channel)
    .fetch_optional(&mut *tx)
    .await?;
    match row {
        Some(r) => state_from_row(&r),
        None => Ok(ChannelState::default()),
    }
}

/// Write one channel's state.
pub async fn set_channel_state(
    tx: &mut SqliteConnection,
    channel: &str,
    s: &ChannelState,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO channel_health (channel, last_success_at, failing_since, last_failure_at, last_error, alerted_at, backlog, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (channel) DO UPDATE SET last_success_at = excluded.last_success_at,
           failing_since = excluded.failing_since, last_failure_at = excluded.last_failure_at,
           last_error = excluded.last_error, alerted_at = excluded.alerted_at,
           backlog = excluded.backlog, updated_at = excluded.updated_at",
    )
    .bind(channel)
    .bind(s.last_success_at.map(ts))
    .bind(s.failing_since.map(ts))
    .bind(s.last_failure_at.map(ts))
    .bind(s.last_error.as_deref())
    .bind(s.alerted_at.map(ts))
    .bind(s.backlog)
    .bind(ts(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Store {
    /// Every channel written so far, by name.
    pub async fn channel_states(&self) -> Result<Vec<(String, ChannelState)>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM channel_health ORDER BY channel"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("channel")?, state_from_row(r)?)))
            .collect()
    }
}
