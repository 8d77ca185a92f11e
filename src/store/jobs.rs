//! Periodic work as due rows (`jobs`): when a job is next due, when it last ran and how.
//! A restart loses nothing: a job missed while klachtpost was down runs at the next start.

use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool};

use super::{Result, parse_ts, ts};

/// When the job is next due (`None`: never run, so due now).
pub async fn due_at(pool: &SqlitePool, name: &str) -> Result<Option<DateTime<Utc>>> {
    let row = sqlx::query("SELECT due_at FROM jobs WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.map(|r| parse_ts(&r.try_get::<String, _>(0)?))
        .transpose()
}

/// Record a run and the next due time.
pub async fn set_done(
    pool: &SqlitePool,
    name: &str,
    ran_at: DateTime<Utc>,
    next: DateTime<Utc>,
    result: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (name, due_at, last_run_at, last_result) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET due_at = excluded.due_at, last_run_at = excluded.last_run_at,
                                          last_result = excluded.last_result",
    )
    .bind(name)
    .bind(ts(next))
    .bind(ts(ran_at))
    .bind(result)
    .execute(pool)
    .await?;
    Ok(())
}
