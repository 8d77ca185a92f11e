//! Copying a register from SQLite to PostgreSQL (`klachtpost migrate --from --to`): every
//! table, every row with its id, in one transaction on the new database, so the history
//! chain (whose hashes cover the ids and the times as text) verifies on the copy.
//!
//! The columns come from the new database's schema: each value is read from SQLite as the
//! type PostgreSQL keeps it in (times from their stored text, yes/no from 0/1), so a
//! column added by a later migration is copied without a change here; only a new *table*
//! needs its place in [`TABLES`].

use futures::TryStreamExt;
use sqlx::{PgConnection, Row, SqliteConnection};

use super::{Backend, Result, Store, StoreError, TimeText, Ts, parse_ts};

/// Every table, parents before children (foreign keys), with its identity column.
const TABLES: &[(&str, Option<&str>)] = &[
    ("case_sequences", None),
    ("cases", Some("id")),
    ("messages", Some("id")),
    // The raw mails (0012), one row per message.
    ("message_raw", None),
    ("attachments", Some("id")),
    ("outbox", Some("id")),
    ("case_events", Some("id")),
    ("mailbox_state", None),
    ("quarantine", Some("id")),
    ("duplicates", Some("id")),
    ("channel_health", None),
    ("case_parties", None),
    ("bounces", Some("id")),
    ("history_legacy", None),
    ("jobs", None),
    ("partner_notices", None),
    ("partner_mail", None),
    // Intake's batch counters (0011): figures only, but kept so `status` reads the same.
    ("intake_batches", None),
    // Not `leases` (0020): who holds a mailbox now is the running instances' state, not
    // the register's.
];

/// Rows copied per table, in [`TABLES`] order.
#[derive(Debug, Clone, Default)]
pub struct Copied {
    pub tables: Vec<(&'static str, u64)>,
}

/// The column types the copy knows (PostgreSQL's `information_schema` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Bool,
    Time,
    Bytes,
    Text,
}

fn kind_of(data_type: &str) -> Option<Kind> {
    Some(match data_type {
        "bigint" | "integer" | "smallint" => Kind::Int,
        "boolean" => Kind::Bool,
        "timestamp with time zone" => Kind::Time,
        "bytea" => Kind::Bytes,
        "text" => Kind::Text,
        _ => return None,
    })
}

fn refused(why: String) -> StoreError {
    StoreError::Copy(why)
}

/// Copy everything from `from` (SQLite) into `to` (PostgreSQL, migrated and empty).
pub async fn sqlite_to_postgres(from: &Store, to: &Store) -> Result<Copied> {
    let source = from
        .pool()
        .as_sqlite()
        .ok_or_else(|| refused("--from must be a sqlite: register".into()))?;
    if to.pool().as_postgres().is_none() {
        return Err(refused("--to must be a postgres:// database".into()));
    }
    let mut src = source.acquire().await?;
    let mut tx = to.begin().await?;
    let Backend::Postgres(dest) = tx.backend() else {
        return Err(refused("--to must be a postgres:// database".into()));
    };
    for (table, _) in TABLES {
        if *table == "history_legacy" {
            continue; // written by the migration; replaced below
        }
        let rows: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut *dest)
                .await?;
        if rows > 0 {
            return Err(refused(format!(
                "the new database already holds a register ({table} has {rows} rows)"
            )));
        }
    }
    sqlx::query("DELETE FROM history_legacy")
        .execute(&mut *dest)
        .await?;
    let mut copied = Copied::default();
    for (table, identity) in TABLES {
        let n = copy_table(&mut src, dest, table).await?;
        if let Some(column) = identity {
            // The next id after the copied ones.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                               COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
            )))
            .execute(&mut *dest)
            .await?;
        }
        copied.tables.push((table, n));
    }
    tx.commit().await?;
    Ok(copied)
}

async fn copy_table(
    src: &mut SqliteConnection,
    dest: &mut PgConnection,
    table: &str,
) -> Result<u64> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *dest)
    .await?;
    let mut kinds = Vec::with_capacity(columns.len());
    for (name, data_type) in &columns {
        kinds.push(kind_of(data_type).ok_or_else(|| {
            refused(format!(
                "{table}.{name} has the type {data_type}, which the copy does not know"
            ))
        })?);
    }
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    // Safe: table names are the constants above, column names come from the schema.
    let select = format!("SELECT {} FROM {table} ORDER BY 1", names.join(", "));
    let insert = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        placeholders.join(", ")
    );
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&mut *src);
    let mut n = 0;
    while let Some(row) = rows.try_next().await? {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
        for (i, kind) in kinds.iter().enumerate() {
            q = match kind {
                Kind::Int => q.bind(row.try_get::<Option<i64>, _>(i)?),
                Kind::Bool => q.bind(row.try_get::<Option<bool>, _>(i)?),
                Kind::Time => q.bind(
                    row.try_get::<Option<TimeText>, _>(i)?
                        .map(|t| parse_ts(&t.0).map(Ts))
                        .transpose()?,
                ),
                Kind::Bytes => q.bind(row.try_get::<Option<Vec<u8>>, _>(i)?),
                Kind::Text => q.bind(row.try_get::<Option<String>, _>(i)?),
            };
        }
        q.execute(&mut *dest).await?;
        n += 1;
    }
    Ok(n)
}
