//! Public holidays by rule: one replaceable piece of the calendar.
//!
//! [`HolidayRules`] is what the [`Calendar`](super::Calendar) asks: "which days of this year
//! are public holidays the firm does not work on?". [`DutchHolidays`] answers it for the
//! Netherlands; other countries can be added as further implementations.
//!
//! # Dutch rules
//!
//! Every year: New Year's Day (1 Jan), Easter Sunday and Easter Monday, King's Day,
//! Ascension Day (Easter + 39 days), Pentecost (Whit Sunday, Easter + 49) and Pentecost
//! Monday (Easter + 50), Christmas Day (25 Dec) and the Second Day of Christmas (26 Dec).
//! Easter is computed with the anonymous Gregorian algorithm (Meeus/Jones/Butcher).
//!
//! King's Day and its predecessors (as python-holidays has them):
//! - from 2014, King's Day: 27 April, or 26 April when the 27th is a Sunday;
//! - 1980–2013, Queen's Day: 30 April, or 29 April when the 30th is a Sunday;
//! - 1949–1979, Queen's Day: 30 April, or 1 May when the 30th is a Sunday;
//! - 1891–1948, Queen's Day: 31 August, or 1 September when the 31st is a Sunday;
//! - before 1891: none.
//!
//! Firm options: Good Friday (Easter − 2) is off only when [`DutchHolidays::good_friday`]
//! is set; Liberation Day (5 May, from 1945) follows [`LiberationDay`].
//!
//! There are no substitute days in the Netherlands: a holiday on a weekend is not moved.

use std::fmt;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// One public holiday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Holiday {
    pub date: NaiveDate,
    /// The English name, e.g. "King's Day".
    pub name: &'static str,
    /// The name in the country's language, e.g. "Koningsdag".
    pub local_name: &'static str,
}

/// A country's (or region's) public holidays, as observed by the firm.
pub trait HolidayRules: fmt::Debug + Send + Sync {
    /// A short code for messages, e.g. "nl".
    fn country(&self) -> &'static str;

    /// The holidays of `year` that the firm does not work on, sorted by date.
    fn holidays(&self, year: i32) -> Vec<Holiday>;

    /// The holiday on `date`, if the firm does not work on it.
    fn holiday(&self, date: NaiveDate) -> Option<Holiday> {
        self.holidays(date.year())
            .into_iter()
            .find(|h| h.date == date)
    }
}

/// Whether the firm is closed on Liberation Day (5 May).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiberationDay {
    /// Closed every year.
    EveryYear,
    /// Closed only in lustrum years (divisible by 5: 2025, 2030, ...), as at most firms.
    #[default]
    Lustrum,
    /// Never closed.
    Never,
}

impl LiberationDay {
    /// The config spellings, in order.
    pub const NAMES: [&'static str; 3] = ["every_year", "lustrum", "never"];

    /// Parse the config spelling ("every_year", "lustrum", "never").
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "every_year" => Some(Self::EveryYear),
            "lustrum" => Some(Self::Lustrum),
            "never" => Some(Self::Never),
            _ => None,
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EveryYear => "every_year",
            Self::Lustrum => "lustrum",
            Self::Never => "never",
        }
    }

    /// Whether the firm is closed on 5 May of `year`.
    pub fn is_off(self, year: i32) -> bool {
        year >= 1945
            && match self {
                Self::EveryYear => true,
                Self::Lustrum => year.rem_euclid(5) == 0,
                Self::Never => false,
            }
    }
}

/// The Dutch public holidays, with the firm's options for Good Friday and Liberation Day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DutchHolidays {
    /// Closed on Good Friday (default: no, it is a working day).
    pub good_friday: bool,
    /// When closed on Liberation Day (default: lustrum years only).
    pub liberation_day: LiberationDay,
}

impl HolidayRules for DutchHolidays {
    fn country(&self) -> &'static str {
        "nl"
    }

    fn holidays(&self, year: i32) -> Vec<Holiday> {
        let mut out = Vec::with_capacity(12);
        let mut add = |date: Option<NaiveDate>, name, local_name| {
            if let Some(date) = date {
                out.push(Holiday {
                    date,
                    name,
                    local_name,
                });
            }
        };
        let ymd = |m, d| NaiveDate::from_ymd_opt(year, m, d);
        let easter = easter_sunday(year);
        let from_easter = |days: i64| {
            easter.and_then(|e| {
                if days >= 0 {
                    e.checked_add_days(Days::new(days.unsigned_abs()))
                } else {
                    e.checked_sub_days(Days::new(days.unsigned_abs()))
                }
            })
        };

        add(ymd(1, 1), "New Year's Day", "Nieuwjaarsdag");
        if self.good_friday {
            add(from_easter(-2), "Good Friday", "Goede Vrijdag");
        }
        add(from_easter(0), "Easter Sunday", "Eerste Paasdag");
        add(from_easter(1), "Easter Monday", "Tweede Paasdag");
        if let Some((date, name, local_name)) = royal_day(year) {
            add(Some(date), name, local_name);
        }
        if self.liberation_day.is_off(year) {
            add(ymd(5, 5), "Liberation Day", "Bevrijdingsdag");
        }
        add(from_easter(39), "Ascension Day", "Hemelvaartsdag");
        add(from_easter(49), "Pentecost", "Eerste Pinksterdag");
        add(from_easter(50), "Pentecost Monday", "Tweede Pinksterdag");
        add(ymd(12, 25), "Christmas Day", "Eerste Kerstdag");
        add(ymd(12, 26), "Second Day of Christmas", "Tweede Kerstdag");
        out.sort();
        out
    }
}

/// King's Day, or Queen's Day before 2014 (see the module docs for the rules).
pub fn royal_day(year: i32) -> Option<(NaiveDate, &'static str, &'static str)> {
    let (month, day, name, local_name, sunday_shift) = match year {
        2014.. => (4, 27, "King's Day", "Koningsdag", -1),
        1980..=2013 => (4, 30, "Queen's Day", "Koninginnedag", -1),
        1949..=1979 => (4, 30, "Queen's Day", "Koninginnedag", 1),
        1891..=1948 => (8, 31, "Queen's Day", "Koninginnedag", 1),
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let date = if date.weekday() == Weekday::Sun {
        if sunday_shift < 0 {
            date.pred_opt()?
        } else {
            date.succ_opt()?
        }
    } else {
        date
    };
    Some((date, name, local_name))
}

/// Easter Sunday of a Gregorian year (anonymous Gregorian algorithm); `None` only for
/// years chrono cannot represent.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let y = i64::from(year);
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// Same options as python-holidays' NL calendar.
    const PYTHON_HOLIDAYS: DutchHolidays = DutchHolidays {
        good_friday: true,
        liberation_day: LiberationDay::Lustrum,
    };

    #[test]
    fn every_year_2020_to_2040_matches_the_reference_table() {
        let expected = super::super::testdata::NL_HOLIDAYS_2020_2040;
        let mut got = Vec::new();
        for year in 2020..=2040 {
            for h in PYTHON_HOLIDAYS.holidays(year) {
                got.push((h.date.to_string(), h.name.to_string()));
            }
        }
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(expected.len(), 215);
        for (e, g) in expected.iter().zip(&got) {
            assert_eq!(e, g);
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn easter_known_dates() {
        for (year, date) in [
            (1818, "1818-03-22"), // earliest possible
            (1943, "1943-04-25"), // latest possible
            (1961, "1961-04-02"),
            (2000, "2000-04-23"),
            (2008, "2008-03-23"),
            (2011, "2011-04-24"),
            (2019, "2019-04-21"),
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2038, "2038-04-25"),
            (2285, "2285-03-22"),
        ] {
            assert_eq!(easter_sunday(year), Some(d(date)), "{year}");
        }
    }

    #[test]
    fn easter_is_always_a_sunday_between_22_march_and_25_april() {
        for year in 1583..=4100 {
            let e = easter_sunday(year).unwrap();
            assert_eq!(e.weekday(), Weekday::Sun, "{year}");
            let (m, day) = (e.month(), e.day());
            assert!(
                (m == 3 && day >= 22) || (m == 4 && day <= 25),
                "{year}: {e}"
            );
        }
    }

    #[test]
    fn kings_day_moves_to_saturday_when_the_27th_is_a_sunday() {
        assert_eq!(royal_day(2025).unwrap().0, d("2025-04-26"));
        assert_eq!(royal_day(2014).unwrap().0, d("2014-04-26"));
        assert_eq!(royal_day(2026).unwrap().0, d("2026-04-27"));
        assert_eq!(royal_day(2031).unwrap().0, d("2031-04-26"));
        assert_eq!(royal_day(2026).unwrap().1, "King's Day");
    }

    #[test]
    fn queens_day_rules_before_2014() {
        // Beatrix: to Saturday 29 April when the 30th is a Sunday.
        assert_eq!(
            royal_day(2006).unwrap(),
            (d("2006-04-29"), "Queen's Day", "Koninginnedag")
        );
        assert_eq!(royal_day(2013).unwrap().0, d("2013-04-30"));
        assert_eq!(royal_day(1989).unwrap().0, d("1989-04-29"));
        // Juliana: to Monday 1 May when the 30th is a Sunday.
        assert_eq!(royal_day(1978).unwrap().0, d("1978-05-01"));
        assert_eq!(royal_day(1950).unwrap().0, d("1950-05-01"));
        assert_eq!(royal_day(1979).unwrap().0, d("1979-04-30"));
        // Wilhelmina: 31 August, to 1 September when a Sunday.
        assert_eq!(royal_day(1947).unwrap().0, d("1947-09-01"));
        assert_eq!(royal_day(1948).unwrap().0, d("1948-08-31"));
        assert_eq!(royal_day(1890), None);
    }

    #[test]
    fn good_friday_is_an_option() {
        let off = |rules: DutchHolidays, date| rules.holiday(d(date)).is_some();
        let default = DutchHolidays::default();
        assert!(!off(default, "2026-04-03"));
        assert!(off(PYTHON_HOLIDAYS, "2026-04-03"));
        assert_eq!(
            PYTHON_HOLIDAYS.holiday(d("2026-04-03")).unwrap().local_name,
            "Goede Vrijdag"
        );
    }

    #[test]
    fn liberation_day_options() {
        let rules = |liberation_day| DutchHolidays {
            good_friday: false,
            liberation_day,
        };
        let off = |l, date: &str| rules(l).holiday(d(date)).is_some();
        assert!(off(LiberationDay::Lustrum, "2025-05-05"));
        assert!(off(LiberationDay::Lustrum, "2030-05-05"));
        assert!(!off(LiberationDay::Lustrum, "2026-05-05"));
        assert!(off(LiberationDay::EveryYear, "2026-05-05"));
        assert!(!off(LiberationDay::Never, "2025-05-05"));
        assert!(!off(LiberationDay::EveryYear, "1940-05-05"));
        assert_eq!(LiberationDay::default(), LiberationDay::Lustrum);
        for name in LiberationDay::NAMES {
            assert_eq!(LiberationDay::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(LiberationDay::parse("sometimes"), None);
    }

    #[test]
    fn two_holidays_can_share_a_date() {
        // 5 May 2005 was both Ascension Day and (a lustrum) Liberation Day.
        let on = |date: &str| {
            PYTHON_HOLIDAYS
                .holidays(2005)
                .into_iter()
                .filter(|h| h.date == d(date))
                .map(|h| h.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(on("2005-05-05"), ["Ascension Day", "Liberation Day"]);
    }

    #[test]
    fn extreme_years_do_not_panic() {
        for year in [i32::MIN, -262_144, -1, 0, 1, 262_142, 262_143, i32::MAX] {
            let _ = DutchHolidays::default().holidays(year);
            let _ = easter_sunday(year);
        }
    }

    #[test]
    fn holidays_are_sorted_and_named_in_both_languages() {
        for year in 1900..=2100 {
            let hs = PYTHON_HOLIDAYS.holidays(year);
            assert!(hs.windows(2).all(|w| w[0].date <= w[1].date), "{year}");
            assert!(hs.iter().all(|h| h.date.year() == year));
            assert!(
                hs.iter()
                    .all(|h| !h.name.is_empty() && !h.local_name.is_empty())
            );
        }
    }
}
