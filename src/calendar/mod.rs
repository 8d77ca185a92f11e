//! Working days, Dutch public holidays and the firm's closing days. (Stub: being built, issue 4.)

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// `[calendar]` in the config.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarSettings {}

/// The firm's calendar, in its time zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: Tz,
}

impl Calendar {
    /// Build from config; every problem is returned, as `key: message` sentences.
    pub fn from_settings(_settings: &CalendarSettings, tz: Tz) -> Result<Self, Vec<String>> {
        Ok(Self { tz })
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        use chrono::Datelike;
        date.weekday().number_from_monday() <= 5
    }

    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }
}
