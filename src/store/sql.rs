//! [`Sql`]: a statement run in a [`Tx`], written once for both databases: on SQLite on the
//! calling thread ([`super::direct`]), on PostgreSQL through sqlx.
//!
//! ```ignore
//! let row = Sql::new("INSERT INTO case_parties (case_id, address) VALUES ($1, $2) RETURNING id")
//!     .bind(case_id)
//!     .bind(address)
//!     .fetch_one(tx)
//!     .await?;
//! let id: i64 = row.col(0)?;
//! ```
//!
//! Values are those both databases take ([`Bind`]: `i64`, `bool`, `f64`, text, bytes,
//! [`Ts`], and `Option`s of them, [`super::value`]); rows are read with [`StoreRow::col`].

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Postgres, query::Query};

use super::direct::DirectRow;
use super::value::{Arg, Bind, Null};
use super::{Column, StoreRow, Ts, Tx, Value};

/// A statement and its values, `$1` the first.
#[must_use = "a statement does nothing until it is run"]
#[derive(Debug)]
pub struct Sql<'a> {
    text: &'a str,
    args: Vec<Arg<'a>>,
}

impl<'a> Sql<'a> {
    pub fn new(text: &'a str) -> Sql<'a> {
        Sql {
            text,
            args: Vec::new(),
        }
    }

    /// Bind the next value (`$1`, then `$2`, …).
    pub fn bind(mut self, value: impl Bind<'a>) -> Sql<'a> {
        self.args.push(value.arg());
        self
    }

    /// Run it; how many rows it inserted, changed or deleted.
    pub async fn execute(self, tx: &mut Tx) -> sqlx::Result<u64> {
        match tx.direct().await? {
            Some(direct) => Ok(direct.run(self.text, &self.args)?.changed),
            None => {
                let result = self.postgres().execute(tx.pg_connection()).await?;
                Ok(result.rows_affected())
            }
        }
    }

    /// Run it; every row it returns.
    pub async fn fetch_all(self, tx: &mut Tx) -> sqlx::Result<Vec<Row>> {
        match tx.direct().await? {
            Some(direct) => Ok(direct
                .run(self.text, &self.args)?
                .rows
                .into_iter()
                .map(Row::Direct)
                .collect()),
            None => Ok(self
                .postgres()
                .fetch_all(tx.pg_connection())
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect()),
        }
    }

    /// Run it; its first row, if any (on SQLite every row is read: ask for one).
    pub async fn fetch_optional(self, tx: &mut Tx) -> sqlx::Result<Option<Row>> {
        match tx.direct().await? {
            Some(direct) => Ok(direct
                .run(self.text, &self.args)?
                .rows
                .into_iter()
                .next()
                .map(Row::Direct)),
            None => Ok(self
                .postgres()
                .fetch_optional(tx.pg_connection())
                .await?
                .map(Row::Postgres)),
        }
    }

    /// Run it; its first row ([`sqlx::Error::RowNotFound`] when it returns none).
    pub async fn fetch_one(self, tx: &mut Tx) -> sqlx::Result<Row> {
        self.fetch_optional(tx)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    fn postgres(&self) -> Query<'_, Postgres, PgArguments> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.text));
        for arg in &self.args {
            q = match arg {
                Arg::Null(Null::Int) => q.bind(None::<i64>),
                Arg::Null(Null::Bool) => q.bind(None::<bool>),
                Arg::Null(Null::Real) => q.bind(None::<f64>),
                Arg::Null(Null::Text) => q.bind(None::<&str>),
                Arg::Null(Null::Bytes) => q.bind(None::<&[u8]>),
                Arg::Null(Null::Time) => q.bind(None::<Ts>),
                Arg::Int(v) => q.bind(*v),
                Arg::Bool(v) => q.bind(*v),
                Arg::Real(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_ref()),
                Arg::Bytes(v) => q.bind(*v),
                Arg::Time(v) => q.bind(*v),
            };
        }
        q
    }
}

/// A row [`Sql`] read.
#[derive(Debug)]
pub enum Row {
    Direct(DirectRow),
    Postgres(PgRow),
}

impl StoreRow for Row {
    fn col<T: Value>(&self, index: impl Column) -> sqlx::Result<T> {
        match self {
            Row::Direct(r) => r.col(index),
            Row::Postgres(r) => r.col(index),
        }
    }
}

impl StoreRow for DirectRow {
    fn col<T: Value>(&self, index: impl Column) -> sqlx::Result<T> {
        let value = self.value(&index)?;
        T::from_direct(value).map_err(|e| sqlx::Error::ColumnDecode {
            index: index.describe(),
            source: e.into(),
        })
    }
}
