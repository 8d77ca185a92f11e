//! Working days, Dutch public holidays and the firm's closing days, in the firm's time zone.
//!
//! Pure: no clock, no I/O. Everything is computed from the config and the dates asked about;
//! holidays are computed by rule for any year (see [`holidays`]), never typed in by hand.
//!
//! # Definitions
//!
//! - **Local date** of an instant: its calendar date in the firm's time zone
//!   (`[firm] timezone`, DST-aware via chrono-tz), never the UTC date. Mail received on
//!   Friday 00:30 in Amsterdam (Thursday 22:30 UTC) was received on Friday.
//! - **Working day**: a date whose weekday is one of `working_days`, that is not a public
//!   holiday the firm observes, and not one of the firm's `closing_days`.
//! - **Working hours**: `working_hours`, e.g. 09:00–17:00, local time, on working days.
//! - **End of a working day**: the end of the working hours (default 17:00) local time on that
//!   date, converted to an instant with the offset in force then (so 17:00 is 15:00 UTC in
//!   summer and 16:00 UTC in winter). If that local time is ambiguous (the repeated hour when
//!   the clocks go back) the earlier instant is taken; if it does not exist (the skipped hour
//!   when the clocks go forward) the first local minute after the gap is taken. With the usual
//!   working hours neither happens: the Dutch changes are at 02:00/03:00 on Sundays.
//! - **Next working day** after a date: the first working day strictly after it. The receipt
//!   date counts as the local date even when it is not a working day or the mail came in
//!   after hours: a complaint received on Saturday, or on Friday at 17:55, is to be
//!   acknowledged by the end of Monday (when Monday is a working day).
//!
//! # Config: `[calendar]`
//!
//! ```toml
//! [calendar]
//! # Country of the public-holiday rules. Only "nl" (the Netherlands) for now.
//! country = "nl"
//! # Days of the week the firm works: "mon" "tue" "wed" "thu" "fri" "sat" "sun"
//! # (full English names and Dutch "ma".."zo" / "maandag".."zondag" are accepted too).
//! working_days = ["mon", "tue", "wed", "thu", "fri"]
//! # Working hours, local time; a deadline "by the end of a working day" is at the end time.
//! working_hours = "09:00-17:00"
//! # Closed on Good Friday? Default false: Good Friday is a working day.
//! good_friday = false
//! # Closed on Liberation Day (5 May): "every_year", "lustrum" (2025, 2030, ...) or "never".
//! liberation_day = "lustrum"
//! # The firm's own closing days: "YYYY-MM-DD" or a range "YYYY-MM-DD..YYYY-MM-DD"
//! # (inclusive, at most 366 days), optionally as a table with a name.
//! closing_days = [
//!   { date = "2026-12-28..2026-12-31", name = "Kerstsluiting" },
//!   "2027-05-14",
//! ]
//! ```
//!
//! Every invalid value is reported at once, as `key: message` sentences naming the key.

pub mod holidays;
#[cfg(test)]
mod testdata;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use holidays::{DutchHolidays, Holiday, HolidayRules, LiberationDay, easter_sunday};

/// The longest closing period accepted, in days; a longer one is almost surely a typo.
pub const MAX_CLOSING_PERIOD_DAYS: i64 = 366;

/// `[calendar]` in the config. See the module docs for the keys and their meaning.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarSettings {
    /// Country of the public-holiday rules: only "nl".
    pub country: String,
    /// Days of the week the firm works, e.g. `["mon", "tue", "wed", "thu", "fri"]`.
    pub working_days: Vec<String>,
    /// Working hours, "HH:MM-HH:MM" local time.
    pub working_hours: String,
    /// Closed on Good Friday.
    pub good_friday: bool,
    /// Closed on Liberation Day: "every_year", "lustrum" or "never".
    pub liberation_day: String,
    /// The firm's own closing days.
    pub closing_days: Vec<ClosingDaySetting>,
}

impl Default for CalendarSettings {
    fn default() -> Self {
        Self {
            country: "nl".into(),
            working_days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            working_hours: "09:00-17:00".into(),
            good_friday: false,
            liberation_day: LiberationDay::default().as_str().into(),
            closing_days: Vec::new(),
        }
    }
}

/// One entry of `closing_days`: `"YYYY-MM-DD"`, `"YYYY-MM-DD..YYYY-MM-DD"`, or a table
/// `{ date = "...", name = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingDaySetting {
    /// A date or an inclusive range `first..last`.
    pub date: String,
    pub name: Option<String>,
}

impl Serialize for ClosingDaySetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        match &self.name {
            None => s.serialize_str(&self.date),
            Some(name) => {
                let mut t = s.serialize_struct("ClosingDay", 2)?;
                t.serialize_field("date", &self.date)?;
                t.serialize_field("name", name)?;
                t.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for ClosingDaySetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ClosingDaySetting;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a closing day: a date \"YYYY-MM-DD\", a range \"YYYY-MM-DD..YYYY-MM-DD\", \
                     or a table { date = \"...\", name = \"...\" }",
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ClosingDaySetting {
                    date: v.to_string(),
                    name: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut date = None;
                let mut name = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "date" => date = Some(map.next_value::<String>()?),
                        "name" => name = Some(map.next_value::<String>()?),
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown key `{other}` in a closing day \
                                 (known: date, name)"
                            )));
                        }
                    }
                }
                let date =
                    date.ok_or_else(|| de::Error::custom("a closing day table needs a `date`"))?;
                Ok(ClosingDaySetting { date, name })
            }
        }
        d.deserialize_any(V)
    }
}

/// A validated closing period (a single day has `first == last`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingPeriod {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub name: Option<String>,
}

impl ClosingPeriod {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.first <= date && date <= self.last
    }

    /// The configured name, or "closing day".
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("closing day")
    }
}

/// Why a date is off (apart from the weekly pattern of working days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayOffKind {
    PublicHoliday,
    ClosingDay,
}

/// A day the firm does not work on: a public holiday or one of its closing days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayOff {
    pub date: NaiveDate,
    /// English name of the holiday, or the closing day's configured name, or "closing day".
    pub name: String,
    /// The holiday's name in the country's language (e.g. "Koningsdag"); `None` for
    /// closing days.
    pub local_name: Option<String>,
    pub kind: DayOffKind,
    /// For a public holiday that is also in a closing period: that period's name.
    pub also_closing: Option<String>,
}

impl DayOff {
    /// "King's Day (Koningsdag)", "Kerstsluiting", "closing day".
    pub fn label(&self) -> String {
        match &self.local_name {
            Some(l) if l != &self.name => format!("{} ({l})", self.name),
            _ => self.name.clone(),
        }
    }
}

/// The firm's calendar, in its time zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: Tz,
    /// Indexed by `Weekday::num_days_from_monday`.
    working_weekdays: [bool; 7],
    hours_start: NaiveTime,
    hours_end: NaiveTime,
    rules: Arc<dyn HolidayRules>,
    closing: Vec<ClosingPeriod>,
}

const WEEKDAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// Parse a day of the week as written in the config (English or Dutch, any case).
pub fn parse_weekday(s: &str) -> Option<Weekday> {
    let s = s.trim().to_ascii_lowercase();
    let day = match s.as_str() {
        "mon" | "monday" | "ma" | "maandag" => Weekday::Mon,
        "tue" | "tuesday" | "di" | "dinsdag" => Weekday::Tue,
        "wed" | "wednesday" | "wo" | "woensdag" => Weekday::Wed,
        "thu" | "thursday" | "do" | "donderdag" => Weekday::Thu,
        "fri" | "friday" | "vr" | "vrijdag" => Weekday::Fri,
        "sat" | "saturday" | "za" | "zaterdag" => Weekday::Sat,
        "sun" | "sunday" | "zo" | "zondag" => Weekday::Sun,
        _ => return None,
    };
    Some(day)
}

/// Parse working hours "HH:MM-HH:MM" (the end after the start).
pub fn parse_working_hours(s: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let bad = || format!("{s:?} is not \"HH:MM-HH:MM\" (e.g. \"09:00-17:00\")");
    let (a, b) = s.split_once(['-', '–']).ok_or_else(bad)?;
    let time = |t: &str| {
        let t = t.trim();
        if t.len() != 5 {
            return None;
        }
        NaiveTime::parse_from_str(t, "%H:%M").ok()
    };
    let (start, end) = (time(a).ok_or_else(bad)?, time(b).ok_or_else(bad)?);
    if end <= start {
        return Err(format!(
            "{s:?}: the end of the working hours must be after the start"
        ));
    }
    Ok((start, end))
}

/// Parse one closing day or range, "YYYY-MM-DD" or "YYYY-MM-DD..YYYY-MM-DD".
pub fn parse_closing_range(s: &str) -> Result<(NaiveDate, NaiveDate), String> {
    let date = |t: &str| {
        let t = t.trim();
        NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .filter(|_| t.len() == 10)
    };
    let bad =
        || format!("{s:?} is not a date \"YYYY-MM-DD\" or a range \"YYYY-MM-DD..YYYY-MM-DD\"");
    let (first, last) = match s.split_once("..") {
        Some((a, b)) => (date(a).ok_or_else(bad)?, date(b).ok_or_else(bad)?),
        None => {
            let d = date(s).ok_or_else(bad)?;
            (d, d)
        }
    };
    if last < first {
        return Err(format!("{s:?}: the range ends before it starts"));
    }
    if (last - first).num_days() >= MAX_CLOSING_PERIOD_DAYS {
        return Err(format!(
            "{s:?}: a closing period of more than {MAX_CLOSING_PERIOD_DAYS} days is not accepted \
             (a typo in the year?)"
        ));
    }
    Ok((first, last))
}

/// A local date-time as an instant in `tz`: the earlier instant when ambiguous, the first
/// local minute after the gap when it does not exist.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    for minutes in 0..=(48 * 60) {
        let t = local + TimeDelta::minutes(minutes);
        if let Some(x) = tz.from_local_datetime(&t).earliest() {
            return x.with_timezone(&Utc);
        }
    }
    // No zone has a gap of two days; treat as UTC rather than panic.
    local.and_utc()
}

/// "Thu 2 Apr 2026".
pub fn fmt_date(date: NaiveDate) -> String {
    date.format("%a %-d %b %Y").to_string()
}

/// "Thu 2 Apr" (the year left out).
pub fn fmt_date_short(date: NaiveDate) -> String {
    date.format("%a %-d %b").to_string()
}

impl Calendar {
    /// The default calendar (Monday–Friday, 09:00–17:00, Dutch holidays with the default
    /// options, no closing days) in `tz`.
    pub fn new(tz: Tz) -> Self {
        Self {
            tz,
            working_weekdays: [true, true, true, true, true, false, false],
            hours_start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
            hours_end: NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default(),
            rules: Arc::new(DutchHolidays::default()),
            closing: Vec::new(),
        }
    }

    /// Build from config; every problem is returned, as `key: message` sentences (the key
    /// relative to `[calendar]`).
    pub fn from_settings(settings: &CalendarSettings, tz: Tz) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut cal = Self::new(tz);

        if !settings.country.trim().eq_ignore_ascii_case("nl") {
            problems.push(format!(
                "country: {:?} is not supported; only \"nl\" (the Netherlands) for now",
                settings.country
            ));
        }

        let mut weekdays = [false; 7];
        for (i, s) in settings.working_days.iter().enumerate() {
            match parse_weekday(s) {
                Some(day) => {
                    let slot = &mut weekdays[day.num_days_from_monday() as usize];
                    if *slot {
                        problems.push(format!("working_days[{i}]: {s:?} is listed twice"));
                    }
                    *slot = true;
                }
                None => problems.push(format!(
                    "working_days[{i}]: {s:?} is not a day of the week \
                     (use \"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\")"
                )),
            }
        }
        if settings.working_days.is_empty() {
            problems.push("working_days: at least one working day is needed".into());
        }
        cal.working_weekdays = weekdays;

        match parse_working_hours(&settings.working_hours) {
            Ok((start, end)) => {
                cal.hours_start = start;
                cal.hours_end = end;
            }
            Err(e) => problems.push(format!("working_hours: {e}")),
        }

        let liberation_day =
            LiberationDay::parse(settings.liberation_day.trim()).unwrap_or_else(|| {
                problems.push(format!(
                    "liberation_day: {:?} is not one of \"every_year\", \"lustrum\", \"never\"",
                    settings.liberation_day
                ));
                LiberationDay::default()
            });
        cal.rules = Arc::new(DutchHolidays {
            good_friday: settings.good_friday,
            liberation_day,
        });

        for (i, c) in settings.closing_days.iter().enumerate() {
            let name = match c.name.as_deref().map(str::trim) {
                Some("") => {
                    problems.push(format!(
                        "closing_days[{i}].name: empty (leave the name out, or write one)"
                    ));
                    None
                }
                other => other.map(String::from),
            };
            match parse_closing_range(&c.date) {
                Ok((first, last)) => cal.closing.push(ClosingPeriod { first, last, name }),
                Err(e) => problems.push(format!("closing_days[{i}]: {e}")),
            }
        }

        if problems.is_empty() {
            Ok(cal)
        } else {
            Err(problems)
        }
    }

    /// Replace the public-holiday rules (another country, or a test double).
    pub fn with_holiday_rules(mut self, rules: Arc<dyn HolidayRules>) -> Self {
        self.rules = rules;
        self
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Start and end of the working hours, local time.
    pub fn working_hours(&self) -> (NaiveTime, NaiveTime) {
        (self.hours_start, self.hours_end)
    }

    /// The days of the week the firm works, Monday first.
    pub fn working_weekdays(&self) -> Vec<Weekday> {
        WEEKDAYS
            .into_iter()
            .filter(|d| self.is_working_weekday(*d))
            .collect()
    }

    pub fn holiday_rules(&self) -> &dyn HolidayRules {
        self.rules.as_ref()
    }

    pub fn closing_periods(&self) -> &[ClosingPeriod] {
        &self.closing
    }

    /// Whether the firm works on this day of the week (holidays aside).
    pub fn is_working_weekday(&self, day: Weekday) -> bool {
        self.working_weekdays[day.num_days_from_monday() as usize]
    }

    /// The public holiday (observed by the firm) or closing day on `date`, if any; the
    /// weekly pattern of working days is not considered. A holiday wins over a closing day.
    pub fn day_off(&self, date: NaiveDate) -> Option<DayOff> {
        let closing = self.closing.iter().find(|c| c.contains(date));
        if let Some(h) = self.rules.holiday(date) {
            return Some(DayOff {
                date,
                name: h.name.to_string(),
                local_name: Some(h.local_name.to_string()),
                kind: DayOffKind::PublicHoliday,
                also_closing: closing.map(|c| c.name().to_string()),
            });
        }
        closing.map(|c| DayOff {
            date,
            name: c.name().to_string(),
            local_name: None,
            kind: DayOffKind::ClosingDay,
            also_closing: None,
        })
    }

    /// Whether `date` is a working day: a working weekday, no public holiday the firm
    /// observes, no closing day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        self.is_working_weekday(date.weekday())
            && !self.closing.iter().any(|c| c.contains(date))
            && self.rules.holiday(date).is_none()
    }

    /// Why `date` is not a working day ("Sat is not a working day", "King's Day",
    /// "Kerstsluiting"), or `None` when it is one.
    pub fn why_not_working(&self, date: NaiveDate) -> Option<String> {
        if let Some(off) = self.day_off(date) {
            return Some(off.name);
        }
        if !self.is_working_weekday(date.weekday()) {
            return Some(format!("{} is not a working day", date.format("%a")));
        }
        None
    }

    /// The public holidays the firm observes and its closing days in `year`, by date, one
    /// entry per date (a holiday wins over a closing day), weekends included.
    pub fn days_off(&self, year: i32) -> Vec<DayOff> {
        let mut days: BTreeMap<NaiveDate, DayOff> = BTreeMap::new();
        for h in self.rules.holidays(year) {
            if let Some(off) = self.day_off(h.date) {
                days.entry(h.date).or_insert(off);
            }
        }
        for c in &self.closing {
            let mut d = c
                .first
                .max(NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(c.first));
            while d <= c.last && d.year() <= year {
                if d.year() == year
                    && let Some(off) = self.day_off(d)
                {
                    days.entry(d).or_insert(off);
                }
                match d.succ_opt() {
                    Some(n) => d = n,
                    None => break,
                }
            }
        }
        days.into_values().collect()
    }

    /// The local date of an instant, in the firm's time zone.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    /// An instant in the firm's time zone.
    pub fn local(&self, t: DateTime<Utc>) -> DateTime<Tz> {
        t.with_timezone(&self.tz)
    }

    /// The first working day on or after `date`.
    pub fn working_day_on_or_after(&self, date: NaiveDate) -> NaiveDate {
        let mut d = date;
        // Terminates: at least one weekday works (from_settings refuses none; the guard
        // below keeps even such a calendar from looping) and closing periods are finite.
        if !self.working_weekdays.iter().any(|w| *w) {
            return date;
        }
        while !self.is_working_day(d) {
            match d.succ_opt() {
                Some(n) => d = n,
                None => return d,
            }
        }
        d
    }

    /// The first working day strictly after `date`.
    pub fn next_working_day(&self, date: NaiveDate) -> NaiveDate {
        match date.succ_opt() {
            Some(n) => self.working_day_on_or_after(n),
            None => date,
        }
    }

    /// The `n`th working day after `date` (`n = 0`: `date` itself).
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        (0..n).fold(date, |d, _| self.next_working_day(d))
    }

    /// The end of the working hours on `date`, as an instant (see the module docs).
    pub fn end_of_working_day(&self, date: NaiveDate) -> DateTime<Utc> {
        local_to_utc(self.tz, date.and_time(self.hours_end))
    }

    /// The start of the working hours on `date`, as an instant.
    pub fn start_of_working_day(&self, date: NaiveDate) -> DateTime<Utc> {
        local_to_utc(self.tz, date.and_time(self.hours_start))
    }

    /// Whether `t` falls within working hours on a working day.
    pub fn is_working_time(&self, t: DateTime<Utc>) -> bool {
        let date = self.local_date(t);
        self.is_working_day(date)
            && self.start_of_working_day(date) <= t
            && t < self.end_of_working_day(date)
    }

    /// `t` itself when it is working time, else the next start of working hours: when to
    /// send something to the firm's people (never at midnight or on a Sunday).
    pub fn next_working_moment(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let date = self.local_date(t);
        if self.is_working_day(date) {
            if t < self.start_of_working_day(date) {
                return self.start_of_working_day(date);
            }
            if t < self.end_of_working_day(date) {
                return t;
            }
        }
        self.start_of_working_day(self.next_working_day(date))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Amsterdam;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn settings(f: impl FnOnce(&mut CalendarSettings)) -> CalendarSettings {
        let mut s = CalendarSettings::default();
        f(&mut s);
        s
    }

    fn closing(date: &str, name: Option<&str>) -> ClosingDaySetting {
        ClosingDaySetting {
            date: date.into(),
            name: name.map(String::from),
        }
    }

    #[test]
    fn the_defaults_are_monday_to_friday_nine_to_five() {
        let cal = Calendar::from_settings(&CalendarSettings::default(), Amsterdam).unwrap();
        assert_eq!(
            cal.working_weekdays(),
            [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri
            ]
        );
        assert_eq!(
            cal.working_hours(),
            (
                NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                NaiveTime::from_hms_opt(17, 0, 0).unwrap()
            )
        );
        assert!(cal.is_working_day(d("2026-04-03")), "Good Friday works");
        assert!(!cal.is_working_day(d("2026-04-06")), "Easter Monday");
        assert!(!cal.is_working_day(d("2026-04-27")), "King's Day");
        assert!(cal.is_working_day(d("2026-05-05")), "not a lustrum year");
        assert!(!cal.is_working_day(d("2025-05-05")), "lustrum year");
        assert!(!cal.is_working_day(d("2026-04-04")), "Saturday");
        assert!(cal.is_working_day(d("2026-04-07")));
        assert_eq!(cal.holiday_rules().country(), "nl");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let s = CalendarSettings {
            country: "de".into(),
            working_days: vec!["mon".into(), "fry".into(), "Mon".into()],
            working_hours: "17:00-09:00".into(),
            good_friday: true,
            liberation_day: "sometimes".into(),
            closing_days: vec![
                closing("2026-12-31..2026-12-28", None),
                closing("2026-13-01", None),
                closing("2026-12-24", Some("  ")),
                closing("2026-01-01..2028-01-01", None),
            ],
        };
        let problems = Calendar::from_settings(&s, Amsterdam).unwrap_err();
        let all = problems.join("\n");
        for needle in [
            "country: \"de\" is not supported",
            "working_days[1]: \"fry\" is not a day of the week",
            "working_days[2]: \"Mon\" is listed twice",
            "working_hours: \"17:00-09:00\": the end of the working hours must be after the start",
            "liberation_day: \"sometimes\" is not one of",
            "closing_days[0]: \"2026-12-31..2026-12-28\": the range ends before it starts",
            "closing_days[1]: \"2026-13-01\" is not a date",
            "closing_days[2].name: empty",
            "closing_days[3]: \"2026-01-01..2028-01-01\": a closing period of more than 366 days",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert_eq!(problems.len(), 9, "{all}");
    }

    #[test]
    fn bad_working_hours_and_days() {
        for bad in [
            "9-17",
            "09:00",
            "09:00-25:00",
            "0900-1700",
            "09:00-17:00-18:00",
            "",
        ] {
            assert!(parse_working_hours(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_working_hours("08:30 - 16:45").unwrap(),
            (
                NaiveTime::from_hms_opt(8, 30, 0).unwrap(),
                NaiveTime::from_hms_opt(16, 45, 0).unwrap()
            )
        );
        let e =
            Calendar::from_settings(&settings(|s| s.working_days.clear()), Amsterdam).unwrap_err();
        assert_eq!(e, ["working_days: at least one working day is needed"]);
        for (s, day) in [
            ("ma", Weekday::Mon),
            ("Vrijdag", Weekday::Fri),
            ("SUN", Weekday::Sun),
            ("thursday", Weekday::Thu),
        ] {
            assert_eq!(parse_weekday(s), Some(day));
        }
        assert_eq!(parse_weekday("weekday"), None);
    }

    #[test]
    fn a_different_working_week() {
        let cal = Calendar::from_settings(
            &settings(|s| {
                s.working_days = vec!["di".into(), "wed".into(), "Thursday".into(), "sat".into()]
            }),
            Amsterdam,
        )
        .unwrap();
        assert!(!cal.is_working_day(d("2026-06-08")), "Monday");
        assert!(cal.is_working_day(d("2026-06-13")), "Saturday");
        assert_eq!(cal.next_working_day(d("2026-06-13")), d("2026-06-16"));
        assert_eq!(
            cal.why_not_working(d("2026-06-08")).unwrap(),
            "Mon is not a working day"
        );
    }

    #[test]
    fn closing_days_with_and_without_names() {
        let cal = Calendar::from_settings(
            &settings(|s| {
                s.closing_days = vec![
                    closing("2026-12-24..2027-01-01", Some("Kerstsluiting")),
                    closing("2027-05-14", None),
                ]
            }),
            Amsterdam,
        )
        .unwrap();
        assert!(!cal.is_working_day(d("2026-12-28")));
        assert!(!cal.is_working_day(d("2027-05-14")));
        assert!(cal.is_working_day(d("2027-05-13")));
        assert_eq!(
            cal.why_not_working(d("2026-12-29")).unwrap(),
            "Kerstsluiting"
        );
        assert_eq!(cal.why_not_working(d("2027-05-14")).unwrap(), "closing day");
        // A holiday inside a closing period keeps its own name.
        let xmas = cal.day_off(d("2026-12-25")).unwrap();
        assert_eq!(xmas.kind, DayOffKind::PublicHoliday);
        assert_eq!(xmas.label(), "Christmas Day (Eerste Kerstdag)");
        assert_eq!(xmas.also_closing.as_deref(), Some("Kerstsluiting"));
        // Days off of 2026: the holidays, and 24 Dec–31 Dec of the closing period.
        let off = cal.days_off(2026);
        let dates: Vec<String> = off.iter().map(|o| o.date.to_string()).collect();
        assert!(dates.contains(&"2026-12-24".into()));
        assert!(
            dates.contains(&"2026-12-27".into()),
            "a Sunday is listed too"
        );
        assert!(!dates.contains(&"2027-01-01".into()));
        assert!(!dates.contains(&"2026-04-03".into()), "Good Friday works");
        assert!(!dates.contains(&"2026-05-05".into()), "not a lustrum year");
        assert_eq!(
            dates.iter().filter(|x| x.starts_with("2026-12-2")).count(),
            6 // 24..29
        );
        assert!(
            dates.windows(2).all(|w| w[0] < w[1]),
            "sorted, one per date"
        );
        // 2027: New Year from the holidays (it is also in the closing period), 14 May.
        let off27 = cal.days_off(2027);
        assert_eq!(off27[0].date, d("2027-01-01"));
        assert_eq!(off27[0].name, "New Year's Day");
        assert!(
            off27
                .iter()
                .any(|o| o.date == d("2027-05-14") && o.name == "closing day")
        );
    }

    #[test]
    fn closing_day_settings_deserialize_from_strings_and_tables() {
        let s: CalendarSettings = toml::from_str(
            r#"
            working_days = ["mon", "tue"]
            closing_days = ["2027-05-14", { date = "2026-12-28..2026-12-31", name = "Kerst" }]
            "#,
        )
        .unwrap();
        assert_eq!(
            s.closing_days,
            [
                closing("2027-05-14", None),
                closing("2026-12-28..2026-12-31", Some("Kerst"))
            ]
        );
        assert_eq!(s.working_hours, "09:00-17:00", "defaults fill in");
        let back: CalendarSettings = toml::from_str(&toml::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let e = toml::from_str::<CalendarSettings>(r#"closing_days = [{ dat = "2027-01-01" }]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `dat`"), "{e}");
        let e = toml::from_str::<CalendarSettings>(r#"closing_days = [{ name = "x" }]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs a `date`"), "{e}");
        let e = toml::from_str::<CalendarSettings>("weekend = [\"sat\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("weekend"), "{e}");
    }

    #[test]
    fn local_date_is_the_firms_date_not_utcs() {
        let cal = Calendar::new(Amsterdam);
        // Friday 00:30 in Amsterdam is Thursday 22:30 UTC.
        assert_eq!(cal.local_date(utc("2026-04-02T22:30:00Z")), d("2026-04-03"));
        assert_eq!(cal.local_date(utc("2026-04-02T21:59:00Z")), d("2026-04-02"));
        assert_eq!(cal.local_date(utc("2026-01-01T23:00:00Z")), d("2026-01-02"));
    }

    #[test]
    fn end_of_working_day_follows_daylight_saving_time() {
        let cal = Calendar::new(Amsterdam);
        assert_eq!(
            cal.end_of_working_day(d("2026-03-27")),
            utc("2026-03-27T16:00:00Z")
        );
        assert_eq!(
            cal.end_of_working_day(d("2026-03-30")),
            utc("2026-03-30T15:00:00Z")
        );
        assert_eq!(
            cal.end_of_working_day(d("2026-10-26")),
            utc("2026-10-26T16:00:00Z")
        );
    }

    #[test]
    fn local_times_in_the_gap_and_the_fold() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        // 02:30 does not exist on 29 March 2026: the first minute after the gap is 03:00 CEST.
        assert_eq!(
            local_to_utc(Amsterdam, at("2026-03-29 02:30")),
            utc("2026-03-29T01:00:00Z")
        );
        // 02:30 happens twice on 25 October 2026: the earlier is 02:30 CEST.
        assert_eq!(
            local_to_utc(Amsterdam, at("2026-10-25 02:30")),
            utc("2026-10-25T00:30:00Z")
        );
        // Working hours that end in the gap, on a Sunday that is a working day.
        let cal = Calendar::from_settings(
            &settings(|s| {
                s.working_days = vec!["sun".into()];
                s.working_hours = "00:30-02:30".into();
            }),
            Amsterdam,
        )
        .unwrap();
        assert_eq!(
            cal.end_of_working_day(d("2026-03-29")),
            utc("2026-03-29T01:00:00Z")
        );
    }

    #[test]
    fn next_working_day_and_counting() {
        let cal = Calendar::new(Amsterdam);
        // Thursday before Easter 2026: Friday works (default).
        assert_eq!(cal.next_working_day(d("2026-04-02")), d("2026-04-03"));
        // Friday before Easter: Monday is Easter Monday.
        assert_eq!(cal.next_working_day(d("2026-04-03")), d("2026-04-07"));
        // Saturday: Monday.
        assert_eq!(cal.next_working_day(d("2026-06-13")), d("2026-06-15"));
        assert_eq!(
            cal.working_day_on_or_after(d("2026-06-15")),
            d("2026-06-15")
        );
        assert_eq!(cal.add_working_days(d("2026-04-02"), 0), d("2026-04-02"));
        // 10 working days from Thu 2 Apr 2026: 3, 7, 8, 9, 10, 13, 14, 15, 16, 17 Apr.
        assert_eq!(cal.add_working_days(d("2026-04-02"), 10), d("2026-04-17"));
        // Ascension Thursday 14 May 2026, Pentecost Monday 25 May.
        assert_eq!(cal.next_working_day(d("2026-05-13")), d("2026-05-15"));
        assert_eq!(cal.next_working_day(d("2026-05-22")), d("2026-05-26"));
    }

    #[test]
    fn working_time_and_the_next_working_moment() {
        let cal = Calendar::new(Amsterdam);
        // Saturday night → Monday 09:00 CEST.
        assert_eq!(
            cal.next_working_moment(utc("2026-06-13T22:00:00Z")),
            utc("2026-06-15T07:00:00Z")
        );
        // Monday 08:00 CEST → 09:00.
        assert_eq!(
            cal.next_working_moment(utc("2026-06-15T06:00:00Z")),
            utc("2026-06-15T07:00:00Z")
        );
        // Monday 10:00: now.
        let t = utc("2026-06-15T08:00:00Z");
        assert!(cal.is_working_time(t));
        assert_eq!(cal.next_working_moment(t), t);
        // Monday 17:00 exactly is after hours → Tuesday 09:00.
        let t = utc("2026-06-15T15:00:00Z");
        assert!(!cal.is_working_time(t));
        assert_eq!(cal.next_working_moment(t), utc("2026-06-16T07:00:00Z"));
        // Midnight before King's Day → Tuesday.
        assert_eq!(
            cal.next_working_moment(utc("2026-04-26T22:00:00Z")),
            utc("2026-04-28T07:00:00Z")
        );
    }

    #[derive(Debug)]
    struct NoHolidays;
    impl HolidayRules for NoHolidays {
        fn country(&self) -> &'static str {
            "none"
        }
        fn holidays(&self, _year: i32) -> Vec<Holiday> {
            Vec::new()
        }
    }

    #[test]
    fn holiday_rules_are_replaceable() {
        let cal = Calendar::new(Amsterdam).with_holiday_rules(Arc::new(NoHolidays));
        assert!(cal.is_working_day(d("2026-04-27")));
        assert!(cal.days_off(2026).is_empty());
        assert_eq!(cal.holiday_rules().country(), "none");
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_date(d("2026-04-02")), "Thu 2 Apr 2026");
        assert_eq!(fmt_date_short(d("2026-04-27")), "Mon 27 Apr");
    }
}
