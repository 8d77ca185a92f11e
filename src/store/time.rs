//! Times as the store keeps them: [`Ts`] is bound and read the same way on both databases
//! and stored each database's way. On SQLite as RFC 3339 UTC text of one fixed format
//! ([`ts`], "2026-11-21T10:00:00Z", as every existing register holds them), so they sort
//! and compare as text; on PostgreSQL as TIMESTAMPTZ. Both keep whole seconds, so a time
//! reads back as the text it was hashed as (the history chain hashes [`ts`] text).

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use sqlx::decode::Decode;
use sqlx::encode::{Encode, IsNull};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Postgres, Sqlite, Type};

use super::{Result, StoreError};

/// Format a time the one way the store shows it (and keeps it, on SQLite).
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Read a time shown by [`ts`].
pub fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Time(s.to_string()))
}

/// A stored time (whole seconds, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub DateTime<Utc>);

impl Ts {
    /// As [`ts`] text.
    pub fn text(self) -> String {
        ts(self.0)
    }
}

/// A stored time read as [`ts`] text, for the readers that hand times out as text. On
/// SQLite the stored text as it is (so a register keeps reading exactly as before); on
/// PostgreSQL the TIMESTAMPTZ shown by [`ts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeText(pub String);

impl TimeText {
    pub fn opt(t: Option<TimeText>) -> Option<String> {
        t.map(|t| t.0)
    }
}

impl Type<Sqlite> for TimeText {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Sqlite> for TimeText {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(TimeText(<String as Decode<Sqlite>>::decode(value)?))
    }
}

impl Type<Postgres> for TimeText {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for TimeText {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(TimeText(ts(<DateTime<Utc> as Decode<Postgres>>::decode(
            value,
        )?)))
    }
}

impl From<DateTime<Utc>> for Ts {
    fn from(t: DateTime<Utc>) -> Self {
        Ts(t)
    }
}

impl std::fmt::Display for Ts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&ts(self.0))
    }
}

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Ts {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        <String as Encode<Sqlite>>::encode(ts(self.0), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(Ts(parse_ts(text)?))
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<Postgres>>::encode(self.0.trunc_subsecs(0), buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Ts(<DateTime<Utc> as Decode<Postgres>>::decode(value)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_in_the_one_stored_format() {
        let t = DateTime::parse_from_rfc3339("2026-11-21T10:00:00.750+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(Ts(t).text(), "2026-11-21T09:00:00Z");
        assert_eq!(
            parse_ts("2026-11-21T09:00:00Z").unwrap(),
            t.trunc_subsecs(0)
        );
        assert!(parse_ts("yesterday").is_err());
    }
}
