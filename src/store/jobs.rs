//! Periodic work as due rows (`jobs`): when a job is next due, when it last ran and how.
//! A restart loses nothing: a job missed while klachtpost was down runs at the next start.
//! With several instances on one database each due moment is run by one of them: the
//! one whose [`claim`] moved the due time on.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Pool, Result, Sql, Ts, on};

/// When the job is next due (`None`: never run, so due now).
pub async fn due_at(pool: &Pool, name: &str) -> Result<Option<DateTime<Utc>>> {
    on!(pool, |c| {
        let row = sqlx::query("SELECT due_at FROM jobs WHERE name = $1")
            .bind(name)
            .fetch_optional(c)
            .await?;
        row.map(|r| Ok(r.try_get::<Ts, _>(0)?.0)).transpose()
    })
}

/// Record a run and the next due time.
pub async fn set_done(
    pool: &Pool,
    name: &str,
    ran_at: DateTime<Utc>,
    next: DateTime<Utc>,
    result: &str,
) -> Result<()> {
    let mut tx = pool.begin_plain().await?;
    Sql::new(
        "INSERT INTO jobs (name, due_at, last_run_at, last_result) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET due_at = excluded.due_at, last_run_at = excluded.last_run_at,
                                          last_result = excluded.last_result",
    )
    .bind(name)
    .bind(Ts(next))
    .bind(Ts(ran_at))
    .bind(result)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Claim the job's run due at `now`: its due time moves to `hold_until` (a run that dies
/// is tried again from then on) in one statement, so of several instances that find it
/// due at once exactly one gets `true`. `false`: not due, or another instance claimed it.
pub async fn claim(
    pool: &Pool,
    name: &str,
    now: DateTime<Utc>,
    hold_until: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = pool.begin_plain().await?;
    let claimed = Sql::new(
        "INSERT INTO jobs (name, due_at) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET due_at = excluded.due_at
         WHERE jobs.due_at <= $3",
    )
    .bind(name)
    .bind(Ts(hold_until))
    .bind(Ts(now))
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(claimed == 1)
}
