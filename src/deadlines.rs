//! The complaint clock: deadlines computed once, at intake, from the receipt time.
//!
//! The deadlines are stored on the case with a one-line explanation and are never
//! recomputed: changing a case's status does not reset them. Only an explicit
//! [`extend`]ion (with a reason) moves the resolution deadline, and only later.
//!
//! # Rules
//!
//! All in the firm's time zone, with the working days of the [`Calendar`]; "the receipt
//! date" is the local date of the receipt time, also when the mail arrived on a non-working
//! day or after working hours.
//!
//! - **acknowledge**: by the end of the next working day, i.e. the end of the working hours
//!   (default 17:00) on the first working day strictly after the receipt date. Received on
//!   Friday 17:55 or on Saturday: by the end of Monday (when that is a working day).
//! - **response** (inform the client of the outcome) and **resolution** (settled): after a
//!   [`Period`] from the receipt date:
//!   - `N weeks`: the same weekday N×7 calendar days later; when that is not a working day,
//!     the next working day after it;
//!   - `N working days`: the Nth working day after the receipt date;
//!
//!   the deadline is the end of the working hours on that day.
//!
//! So a deadline is always the end of a working day, never before the receipt, and a later
//! receipt never gives an earlier deadline. (One caveat: in a time zone whose clocks go back
//! across midnight the local date itself steps back for an hour; the Netherlands change at
//! 03:00 and are not affected.)
//!
//! # Config: `[deadlines]`
//!
//! ```toml
//! [deadlines]
//! # Inform the client of the outcome within this period after receipt:
//! # "N weeks" or "N working days" (also "1 week", "1 working day", Dutch "weken"/"werkdagen").
//! response = "2 weeks"
//! # The complaint is settled within this period after receipt (it can be extended per case,
//! # with a reason).
//! resolution = "4 weeks"
//! ```
//!
//! Periods are at least 1 and at most 52 weeks or 260 working days; when both are in the
//! same unit the resolution may not come before the response.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, DayOff, fmt_date, fmt_date_short};

/// The longest period accepted in weeks.
pub const MAX_WEEKS: u32 = 52;
/// The longest period accepted in working days.
pub const MAX_WORKING_DAYS: u32 = 260;

/// `[deadlines]` in the config. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadlineSettings {
    /// Inform the client of the outcome within this period, e.g. "2 weeks".
    pub response: String,
    /// Settle the complaint within this period, e.g. "4 weeks".
    pub resolution: String,
}

impl Default for DeadlineSettings {
    fn default() -> Self {
        Self {
            response: Self::DEFAULT_RESPONSE.to_string(),
            resolution: Self::DEFAULT_RESOLUTION.to_string(),
        }
    }
}

impl DeadlineSettings {
    pub const DEFAULT_RESPONSE: Period = Period::Weeks(2);
    pub const DEFAULT_RESOLUTION: Period = Period::Weeks(4);

    pub fn response_period(&self) -> Result<Period, String> {
        self.response.parse()
    }

    pub fn resolution_period(&self) -> Result<Period, String> {
        self.resolution.parse()
    }

    /// Every problem, as `key: message` sentences (keys relative to `[deadlines]`).
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let response = self.response_period();
        let resolution = self.resolution_period();
        if let Err(e) = &response {
            problems.push(format!("response: {e}"));
        }
        if let Err(e) = &resolution {
            problems.push(format!("resolution: {e}"));
        }
        if let (Ok(a), Ok(b)) = (response, resolution) {
            let earlier = match (a, b) {
                (Period::Weeks(a), Period::Weeks(b)) => b < a,
                (Period::WorkingDays(a), Period::WorkingDays(b)) => b < a,
                _ => false,
            };
            if earlier {
                problems.push(format!(
                    "resolution: \"{b}\" ends before the response period \"{a}\"; the complaint \
                     cannot be settled before the client is informed"
                ));
            }
        }
        problems
    }
}

/// A period after receipt, as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// Count this many working days after the receipt date.
    WorkingDays(u32),
    /// This many weeks (7 calendar days each) after the receipt date, then to a working day.
    Weeks(u32),
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::WorkingDays(1) => f.write_str("1 working day"),
            Period::WorkingDays(n) => write!(f, "{n} working days"),
            Period::Weeks(1) => f.write_str("1 week"),
            Period::Weeks(n) => write!(f, "{n} weeks"),
        }
    }
}

impl FromStr for Period {
    type Err = String;

    /// "10 working days", "1 working day", "2 weeks", "1 week", "10 werkdagen", "2 weken".
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = s.split_whitespace().collect::<Vec<_>>().join(" ");
        let norm = norm.to_lowercase();
        let hint =
            "write \"N weeks\" or \"N working days\" (e.g. \"2 weeks\", \"10 working days\")";
        let (number, unit) = norm
            .split_once(' ')
            .ok_or_else(|| format!("{s:?} is not a period; {hint}"))?;
        let n: u32 = number.parse().map_err(|_| {
            format!("{s:?} is not a period: {number:?} is not a whole number; {hint}")
        })?;
        let period = match unit {
            "working day" | "working days" | "werkdag" | "werkdagen" => Period::WorkingDays(n),
            "week" | "weeks" | "weken" => Period::Weeks(n),
            "day" | "days" | "dag" | "dagen" | "calendar days" => {
                return Err(format!("{s:?}: plain days are not supported; {hint}"));
            }
            _ => return Err(format!("{s:?} is not a period; {hint}")),
        };
        match period {
            Period::WorkingDays(0) | Period::Weeks(0) => {
                Err(format!("{s:?}: a period must be at least 1"))
            }
            Period::Weeks(n) if n > MAX_WEEKS => Err(format!(
                "{s:?}: at most {MAX_WEEKS} weeks (a complaint procedure of more than a year?)"
            )),
            Period::WorkingDays(n) if n > MAX_WORKING_DAYS => Err(format!(
                "{s:?}: at most {MAX_WORKING_DAYS} working days (a complaint procedure of more \
                 than a year?)"
            )),
            p => Ok(p),
        }
    }
}

/// The deadlines of one case, with how they were computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deadlines {
    pub acknowledge: DateTime<Utc>,
    pub response: DateTime<Utc>,
    pub resolution: DateTime<Utc>,
    /// One line: how these were computed.
    pub explanation: String,
}

/// One deadline and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// The instant: the end of the working hours on `date`.
    pub due: DateTime<Utc>,
    /// The working day it falls on, local.
    pub date: NaiveDate,
    /// The rule, e.g. "end of next working day", "2 weeks", "10 working days".
    pub rule: String,
    /// When a period ended on a non-working day: that day and why it is not worked.
    pub moved_from: Option<(NaiveDate, String)>,
    /// Holidays and closing days (on working weekdays) that were skipped on the way.
    pub skipped: Vec<DayOff>,
}

/// The full computation: the deadlines, each with its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computation {
    pub received: DateTime<Utc>,
    /// The local date of receipt, from which everything counts.
    pub received_date: NaiveDate,
    pub acknowledge: Deadline,
    pub response: Deadline,
    pub resolution: Deadline,
    /// The one-line explanation stored on the case.
    pub explanation: String,
}

impl Computation {
    pub fn deadlines(&self) -> Deadlines {
        Deadlines {
            acknowledge: self.acknowledge.due,
            response: self.response.due,
            resolution: self.resolution.due,
            explanation: self.explanation.clone(),
        }
    }
}

/// Compute the deadlines for a complaint received at `received`.
///
/// Invalid periods in `settings` (which [`DeadlineSettings::validate`] reports when the
/// config is loaded) fall back to the defaults, 2 and 4 weeks.
pub fn compute(cal: &Calendar, settings: &DeadlineSettings, received: DateTime<Utc>) -> Deadlines {
    explain(cal, settings, received).deadlines()
}

/// [`compute`], with the reasons for each deadline.
pub fn explain(
    cal: &Calendar,
    settings: &DeadlineSettings,
    received: DateTime<Utc>,
) -> Computation {
    let response_period = settings
        .response_period()
        .unwrap_or(DeadlineSettings::DEFAULT_RESPONSE);
    let resolution_period = settings
        .resolution_period()
        .unwrap_or(DeadlineSettings::DEFAULT_RESOLUTION);
    let date = cal.local_date(received);

    let ack_date = cal.next_working_day(date);
    let acknowledge = Deadline {
        due: cal.end_of_working_day(ack_date),
        date: ack_date,
        rule: "end of next working day".into(),
        moved_from: None,
        skipped: skipped(cal, date, ack_date),
    };
    let response = period_deadline(cal, date, response_period);
    let resolution = period_deadline(cal, date, resolution_period);

    let local = cal.local(received);
    let mut line = format!(
        "received {} {} ({})",
        fmt_date(date),
        local.format("%H:%M %Z"),
        cal.timezone()
    );
    for (label, d) in [
        ("acknowledge by", &acknowledge),
        ("response", &response),
        ("resolution", &resolution),
    ] {
        line.push_str("; ");
        line.push_str(label);
        line.push(' ');
        line.push_str(&describe(cal, date.year(), d));
    }

    Computation {
        received,
        received_date: date,
        acknowledge,
        response,
        resolution,
        explanation: line,
    }
}

fn period_deadline(cal: &Calendar, from: NaiveDate, period: Period) -> Deadline {
    let (date, moved_from, skipped_from) = match period {
        Period::WorkingDays(n) => (cal.add_working_days(from, n), None, from),
        Period::Weeks(n) => {
            let target = from
                .checked_add_days(chrono::Days::new(7 * u64::from(n)))
                .unwrap_or(from);
            let date = cal.working_day_on_or_after(target);
            let moved = (date != target).then(|| {
                (
                    target,
                    cal.why_not_working(target)
                        .unwrap_or_else(|| "not a working day".into()),
                )
            });
            (date, moved, target)
        }
    };
    Deadline {
        due: cal.end_of_working_day(date),
        date,
        rule: period.to_string(),
        moved_from,
        skipped: skipped(cal, skipped_from, date),
    }
}

/// Holidays and closing days on working weekdays strictly between `from` and `to`.
fn skipped(cal: &Calendar, from: NaiveDate, to: NaiveDate) -> Vec<DayOff> {
    from.iter_days()
        .skip(1)
        .take_while(|d| *d < to)
        .filter(|d| cal.is_working_weekday(d.weekday()))
        .filter_map(|d| cal.day_off(d))
        .collect()
}

/// A date in the explanation: the year only when it differs from the receipt's.
fn fmt_day(date: NaiveDate, year: i32) -> String {
    if date.year() == year {
        fmt_date_short(date)
    } else {
        fmt_date(date)
    }
}

/// "2 weeks → Sat 18 Apr is not a working day → Mon 20 Apr 17:00 (skipped: ...)".
pub fn describe(cal: &Calendar, year: i32, d: &Deadline) -> String {
    let mut s = d.rule.clone();
    if let Some((from, why)) = &d.moved_from {
        s.push_str(" → ");
        s.push_str(&fmt_day(*from, year));
        if why.ends_with("not a working day") {
            s.push_str(" is not a working day");
        } else if why == "closing day" {
            s.push_str(" is a closing day");
        } else {
            s.push_str(&format!(" is {why}"));
        }
    }
    s.push_str(&format!(
        " → {} {}",
        fmt_day(d.date, year),
        cal.local(d.due).format("%H:%M")
    ));
    if !d.skipped.is_empty() {
        s.push_str(&format!(
            " (skipped: {})",
            group_days_off(cal, &d.skipped, year)
        ));
    }
    s
}

/// "Mon 28 Dec–Thu 31 Dec Kerstsluiting, Fri 1 Jan 2027 New Year's Day": runs of days with
/// the same name, consecutive but for days of the week the firm never works, are grouped.
fn group_days_off(cal: &Calendar, days: &[DayOff], year: i32) -> String {
    let mut groups: Vec<(NaiveDate, NaiveDate, &str)> = Vec::new();
    for d in days {
        match groups.last_mut() {
            Some((_, last, name))
                if *name == d.name
                    && last
                        .iter_days()
                        .skip(1)
                        .take_while(|x| *x < d.date)
                        .all(|x| !cal.is_working_weekday(x.weekday())) =>
            {
                *last = d.date;
            }
            _ => groups.push((d.date, d.date, &d.name)),
        }
    }
    groups
        .iter()
        .map(|(a, b, name)| {
            if a == b {
                format!("{} {name}", fmt_day(*a, year))
            } else {
                format!("{}–{} {name}", fmt_day(*a, year), fmt_day(*b, year))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An extension of a case's resolution deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extension {
    /// The resolution deadline before the extension.
    pub previous: DateTime<Utc>,
    /// The new resolution deadline.
    pub resolution: DateTime<Utc>,
    /// Why; the client is told.
    pub reason: String,
}

impl Extension {
    /// "resolution extended from Thu 30 Apr 2026 17:00 to Fri 15 May 2026 17:00
    /// (Europe/Amsterdam): waiting for documents".
    pub fn describe(&self, cal: &Calendar) -> String {
        let (a, b) = (cal.local(self.previous), cal.local(self.resolution));
        format!(
            "resolution extended from {} {} to {} {} ({}): {}",
            fmt_date(a.date_naive()),
            a.format("%H:%M"),
            fmt_date(b.date_naive()),
            b.format("%H:%M"),
            cal.timezone(),
            self.reason
        )
    }

    /// The deadlines with the new resolution deadline; the explanation gets the extension
    /// appended. Acknowledge and response are unchanged.
    pub fn apply(&self, current: &Deadlines, cal: &Calendar) -> Deadlines {
        Deadlines {
            resolution: self.resolution,
            explanation: format!("{}; {}", current.explanation, self.describe(cal)),
            ..current.clone()
        }
    }
}

/// Extend the resolution deadline to `new_resolution`, for `reason`. Refused when the new
/// deadline is not later than the current one, or the reason is empty.
pub fn extend(
    current: &Deadlines,
    new_resolution: DateTime<Utc>,
    reason: &str,
) -> Result<Extension, String> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err("an extension needs a reason (the client is told why)".into());
    }
    if new_resolution <= current.resolution {
        return Err(format!(
            "the new resolution deadline {} is not later than the current one {}",
            new_resolution.to_rfc3339_opts(SecondsFormat::Secs, true),
            current
                .resolution
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        ));
    }
    Ok(Extension {
        previous: current.resolution,
        resolution: new_resolution,
        reason: reason.to_string(),
    })
}

/// Extend the resolution deadline to the end of working day `date` (local). Refused when
/// `date` is not a working day, besides the refusals of [`extend`].
pub fn extend_to_date(
    cal: &Calendar,
    current: &Deadlines,
    date: NaiveDate,
    reason: &str,
) -> Result<Extension, String> {
    if let Some(why) = cal.why_not_working(date) {
        let why = if why.ends_with("not a working day") {
            String::new()
        } else {
            format!(" ({why})")
        };
        return Err(format!("{} is not a working day{why}", fmt_date(date)));
    }
    extend(current, cal.end_of_working_day(date), reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{CalendarSettings, ClosingDaySetting, LiberationDay};
    use chrono::{NaiveDateTime, TimeZone};
    use chrono_tz::Europe::Amsterdam;
    use chrono_tz::Tz;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// A local Amsterdam time "YYYY-MM-DD HH:MM" (the earlier one when ambiguous).
    fn ams(s: &str) -> DateTime<Utc> {
        let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        Amsterdam
            .from_local_datetime(&t)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn local(t: DateTime<Utc>) -> String {
        t.with_timezone(&Amsterdam)
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    }

    fn cal_with(f: impl FnOnce(&mut CalendarSettings)) -> Calendar {
        let mut s = CalendarSettings::default();
        f(&mut s);
        Calendar::from_settings(&s, Amsterdam).unwrap()
    }

    fn default_cal() -> Calendar {
        Calendar::new(Amsterdam)
    }

    fn all(c: &Calendar, s: &DeadlineSettings, received: &str) -> [String; 3] {
        let x = compute(c, s, ams(received));
        [local(x.acknowledge), local(x.response), local(x.resolution)]
    }

    fn periods(response: &str, resolution: &str) -> DeadlineSettings {
        DeadlineSettings {
            response: response.into(),
            resolution: resolution.into(),
        }
    }

    #[test]
    fn periods_parse_in_english_and_dutch() {
        for (s, p) in [
            ("2 weeks", Period::Weeks(2)),
            ("1 week", Period::Weeks(1)),
            ("  4   Weeks ", Period::Weeks(4)),
            ("3 weken", Period::Weeks(3)),
            ("10 working days", Period::WorkingDays(10)),
            ("1 working day", Period::WorkingDays(1)),
            ("10 werkdagen", Period::WorkingDays(10)),
            ("1 werkdag", Period::WorkingDays(1)),
        ] {
            assert_eq!(s.parse::<Period>(), Ok(p), "{s}");
        }
        for p in [
            Period::Weeks(1),
            Period::Weeks(2),
            Period::WorkingDays(1),
            Period::WorkingDays(10),
        ] {
            assert_eq!(p.to_string().parse::<Period>(), Ok(p));
        }
        for bad in [
            "",
            "2",
            "weeks",
            "two weeks",
            "14 days",
            "2 months",
            "-1 weeks",
            "0 weeks",
            "53 weeks",
            "261 working days",
            "2.5 weeks",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
        assert!(
            "14 days"
                .parse::<Period>()
                .unwrap_err()
                .contains("plain days are not supported")
        );
    }

    #[test]
    fn settings_problems_name_their_keys() {
        assert!(DeadlineSettings::default().validate().is_empty());
        let p = periods("2 weken", "20 werkdagen").validate();
        assert!(p.is_empty(), "{p:?}");
        let p = periods("14 days", "a month").validate();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("response: \"14 days\""), "{p:?}");
        assert!(
            p[1].starts_with("resolution: \"a month\" is not a period"),
            "{p:?}"
        );
        let p = periods("4 weeks", "2 weeks").validate();
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("resolution: \"2 weeks\" ends before"),
            "{p:?}"
        );
        // Mixed units are not compared.
        assert!(periods("10 working days", "1 week").validate().is_empty());
    }

    #[test]
    fn the_example_from_the_issue() {
        let c = explain(
            &default_cal(),
            &DeadlineSettings::default(),
            ams("2026-04-02 17:55"),
        );
        assert_eq!(local(c.acknowledge.due), "2026-04-03T17:00:00+02:00");
        assert_eq!(local(c.response.due), "2026-04-16T17:00:00+02:00");
        assert_eq!(local(c.resolution.due), "2026-04-30T17:00:00+02:00");
        assert_eq!(
            c.explanation,
            "received Thu 2 Apr 2026 17:55 CEST (Europe/Amsterdam); acknowledge by end of next \
             working day → Fri 3 Apr 17:00; response 2 weeks → Thu 16 Apr 17:00; resolution \
             4 weeks → Thu 30 Apr 17:00"
        );
        assert!(!c.explanation.contains('\n'));
        assert_eq!(
            c.deadlines(),
            compute(
                &default_cal(),
                &DeadlineSettings::default(),
                ams("2026-04-02 17:55")
            )
        );
    }

    #[test]
    fn friday_at_17_55() {
        // Fri 6 Mar 2026: acknowledge Monday; 4 weeks is Good Friday, a working day by default.
        assert_eq!(
            all(
                &default_cal(),
                &DeadlineSettings::default(),
                "2026-03-06 17:55"
            ),
            [
                "2026-03-09T17:00:00+01:00",
                "2026-03-20T17:00:00+01:00",
                "2026-04-03T17:00:00+02:00"
            ]
        );
        // With Good Friday off, 4 weeks moves past Easter Monday to Tuesday.
        let gf = cal_with(|s| s.good_friday = true);
        let c = explain(&gf, &DeadlineSettings::default(), ams("2026-03-06 17:55"));
        assert_eq!(local(c.resolution.due), "2026-04-07T17:00:00+02:00");
        assert!(
            c.explanation.ends_with(
                "resolution 4 weeks → Fri 3 Apr is Good Friday → Tue 7 Apr 17:00 \
                 (skipped: Mon 6 Apr Easter Monday)"
            ),
            "{}",
            c.explanation
        );
    }

    #[test]
    fn thursday_before_easter() {
        // Good Friday works by default.
        assert_eq!(
            all(
                &default_cal(),
                &DeadlineSettings::default(),
                "2026-04-02 17:55"
            )[0],
            "2026-04-03T17:00:00+02:00"
        );
        // With Good Friday off: Fri, Sat, Sun, Easter Monday → Tuesday.
        let gf = cal_with(|s| s.good_friday = true);
        let c = explain(&gf, &DeadlineSettings::default(), ams("2026-04-02 17:55"));
        assert_eq!(local(c.acknowledge.due), "2026-04-07T17:00:00+02:00");
        assert!(
            c.explanation.contains(
                "acknowledge by end of next working day → Tue 7 Apr 17:00 (skipped: Fri 3 Apr \
                 Good Friday, Mon 6 Apr Easter Monday)"
            ),
            "{}",
            c.explanation
        );
        // 10 working days from Thu 2 Apr 2026 with Good Friday off:
        // 7, 8, 9, 10, 13, 14, 15, 16, 17, 20 Apr; 20 working days reaches over King's Day.
        assert_eq!(
            all(
                &gf,
                &periods("10 working days", "20 working days"),
                "2026-04-02 09:00"
            ),
            [
                "2026-04-07T17:00:00+02:00",
                "2026-04-20T17:00:00+02:00",
                "2026-05-05T17:00:00+02:00"
            ]
        );
    }

    #[test]
    fn on_24_december() {
        // Thu 24 Dec 2026: Christmas, Second Day (Sat), Sunday → Monday 28 Dec.
        let c = explain(
            &default_cal(),
            &DeadlineSettings::default(),
            ams("2026-12-24 11:00"),
        );
        assert_eq!(local(c.acknowledge.due), "2026-12-28T17:00:00+01:00");
        assert_eq!(local(c.response.due), "2027-01-07T17:00:00+01:00");
        assert_eq!(local(c.resolution.due), "2027-01-21T17:00:00+01:00");
        assert!(
            c.explanation
                .contains("(skipped: Fri 25 Dec Christmas Day)"),
            "{}",
            c.explanation
        );
        assert!(
            c.explanation
                .contains("response 2 weeks → Thu 7 Jan 2027 17:00"),
            "{}",
            c.explanation
        );
        // Fri 24 Dec 2027: acknowledge Mon 27 Dec (Christmas on the weekend is not moved).
        assert_eq!(
            all(
                &default_cal(),
                &DeadlineSettings::default(),
                "2027-12-24 16:00"
            )[0],
            "2027-12-27T17:00:00+01:00"
        );
        // Thu 18 Dec 2025 + 1 week = Thu 25 Dec, Christmas; Fri 26 Dec is the Second Day of
        // Christmas; so Mon 29 Dec.
        let c = explain(
            &default_cal(),
            &periods("1 week", "4 weeks"),
            ams("2025-12-18 10:00"),
        );
        assert_eq!(local(c.response.due), "2025-12-29T17:00:00+01:00");
        assert!(
            c.explanation.contains(
                "response 1 week → Thu 25 Dec is Christmas Day → Mon 29 Dec 17:00 \
                 (skipped: Fri 26 Dec Second Day of Christmas)"
            ),
            "{}",
            c.explanation
        );
    }

    #[test]
    fn received_during_a_closing_week() {
        let cal = cal_with(|s| {
            s.closing_days = vec![ClosingDaySetting {
                date: "2026-12-28..2026-12-31".into(),
                name: Some("Kerstsluiting".into()),
            }]
        });
        // Tue 29 Dec: closed until 31 Dec, then New Year → Mon 4 Jan.
        let c = explain(
            &cal,
            &periods("2 weeks", "10 working days"),
            ams("2026-12-29 10:00"),
        );
        assert_eq!(local(c.acknowledge.due), "2027-01-04T17:00:00+01:00");
        assert_eq!(local(c.response.due), "2027-01-12T17:00:00+01:00");
        // 4, 5, 6, 7, 8, 11, 12, 13, 14, 15 Jan.
        assert_eq!(local(c.resolution.due), "2027-01-15T17:00:00+01:00");
        assert!(
            c.explanation.contains(
                "acknowledge by end of next working day → Mon 4 Jan 2027 17:00 (skipped: \
                 Wed 30 Dec–Thu 31 Dec Kerstsluiting, Fri 1 Jan 2027 New Year's Day)"
            ),
            "{}",
            c.explanation
        );
        // An unnamed closing day.
        let unnamed = cal_with(|s| {
            s.closing_days = vec![ClosingDaySetting {
                date: "2026-06-19".into(),
                name: None,
            }]
        });
        let c = explain(
            &unnamed,
            &periods("1 week", "4 weeks"),
            ams("2026-06-12 10:00"),
        );
        assert!(
            c.explanation
                .contains("response 1 week → Fri 19 Jun is a closing day → Mon 22 Jun 17:00"),
            "{}",
            c.explanation
        );
        // Received before the closing week, with 1 week ending inside it.
        let c = explain(&cal, &periods("1 week", "4 weeks"), ams("2026-12-22 10:00"));
        assert_eq!(local(c.acknowledge.due), "2026-12-23T17:00:00+01:00");
        assert_eq!(local(c.response.due), "2027-01-04T17:00:00+01:00");
        assert!(
            c.explanation.contains(
                "response 1 week → Tue 29 Dec is Kerstsluiting → Mon 4 Jan 2027 17:00 \
                 (skipped: Wed 30 Dec–Thu 31 Dec Kerstsluiting, Fri 1 Jan 2027 New Year's Day)"
            ),
            "{}",
            c.explanation
        );
    }

    #[test]
    fn across_the_change_to_summer_time() {
        let cal = default_cal();
        let s = DeadlineSettings::default();
        // Last Sunday of March 2026 is the 29th: 02:00 CET → 03:00 CEST.
        // Saturday 23:30 CET, Sunday 01:59 CET and 03:00 CEST are all weekend: Monday 17:00 CEST.
        for t in [
            "2026-03-28T22:30:00Z",
            "2026-03-29T00:59:00Z",
            "2026-03-29T01:00:00Z",
        ] {
            let x = compute(&cal, &s, utc(t));
            assert_eq!(x.acknowledge, utc("2026-03-30T15:00:00Z"), "{t}");
        }
        // Friday 27 March (CET) → 2 weeks later at 17:00 CEST, 15:00 UTC: the UTC time of
        // day differs, the local one does not.
        let x = compute(&cal, &s, ams("2026-03-27 10:00"));
        assert_eq!(x.acknowledge, utc("2026-03-30T15:00:00Z"));
        assert_eq!(x.response, utc("2026-04-10T15:00:00Z"));
        assert!(x.explanation.contains("received Fri 27 Mar 2026 10:00 CET"));
        // Thursday 26 March 17:55 CET: Friday 27th 17:00 CET.
        assert_eq!(
            all(&cal, &s, "2026-03-26 17:55")[0],
            "2026-03-27T17:00:00+01:00"
        );
    }

    #[test]
    fn across_the_change_to_winter_time() {
        let cal = default_cal();
        let s = DeadlineSettings::default();
        // Last Sunday of October 2026 is the 25th: 03:00 CEST → 02:00 CET. Both 02:30s are
        // Sunday 25 October: Monday 26th 17:00 CET = 16:00 UTC.
        for t in ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"] {
            let x = compute(&cal, &s, utc(t));
            assert_eq!(x.acknowledge, utc("2026-10-26T16:00:00Z"), "{t}");
        }
        let x = explain(&cal, &s, utc("2026-10-25T00:30:00Z"));
        assert!(x.explanation.contains("02:30 CEST"), "{}", x.explanation);
        let x = explain(&cal, &s, utc("2026-10-25T01:30:00Z"));
        assert!(x.explanation.contains("02:30 CET"), "{}", x.explanation);
        // Friday 23 October 17:55 CEST.
        assert_eq!(
            all(&cal, &s, "2026-10-23 17:55"),
            [
                "2026-10-26T17:00:00+01:00",
                "2026-11-06T17:00:00+01:00",
                "2026-11-20T17:00:00+01:00"
            ]
        );
        // Friday 16 October (CEST) + 2 weeks = Friday 30 October 17:00 CET = 16:00 UTC.
        assert_eq!(
            compute(&cal, &s, ams("2026-10-16 12:00")).response,
            utc("2026-10-30T16:00:00Z")
        );
    }

    #[test]
    fn at_23_59_and_00_00_local_time() {
        let cal = default_cal();
        let s = DeadlineSettings::default();
        // Thursday 23:59 is Thursday: Friday 17:00.
        assert_eq!(
            all(&cal, &s, "2026-06-11 23:59")[0],
            "2026-06-12T17:00:00+02:00"
        );
        // Friday 00:00 is Friday (Thursday 22:00 UTC!): Monday 17:00.
        let midnight = ams("2026-06-12 00:00");
        assert_eq!(midnight, utc("2026-06-11T22:00:00Z"));
        assert_eq!(
            local(compute(&cal, &s, midnight).acknowledge),
            "2026-06-15T17:00:00+02:00"
        );
        // New Year's Eve 23:59 and New Year 00:00 (winter time).
        assert_eq!(
            all(&cal, &s, "2026-12-31 23:59")[0],
            "2027-01-04T17:00:00+01:00"
        );
        assert_eq!(
            all(&cal, &s, "2027-01-01 00:00")[0],
            "2027-01-04T17:00:00+01:00"
        );
        assert_eq!(
            all(&cal, &s, "2027-01-03 23:59")[0],
            "2027-01-04T17:00:00+01:00"
        );
        assert_eq!(
            all(&cal, &s, "2027-01-04 00:00")[0],
            "2027-01-05T17:00:00+01:00"
        );
    }

    #[test]
    fn saturday_and_after_hours_count_from_the_receipt_date() {
        let cal = default_cal();
        let s = DeadlineSettings::default();
        // Saturday 13 June 2026 → Monday; 2 weeks → Sat 27 June → Monday 29 June.
        let c = explain(&cal, &s, ams("2026-06-13 10:00"));
        assert_eq!(local(c.acknowledge.due), "2026-06-15T17:00:00+02:00");
        assert_eq!(local(c.response.due), "2026-06-29T17:00:00+02:00");
        assert!(
            c.explanation
                .contains("response 2 weeks → Sat 27 Jun is not a working day → Mon 29 Jun 17:00"),
            "{}",
            c.explanation
        );
        // Monday 07:00, before hours: still Monday's complaint, acknowledge by Tuesday.
        assert_eq!(
            all(&cal, &s, "2026-06-15 07:00")[0],
            "2026-06-16T17:00:00+02:00"
        );
    }

    #[test]
    fn kings_day_and_liberation_day() {
        let cal = default_cal();
        // Sun 26 April 2026 → Monday 27 is King's Day → Tuesday 28.
        let c = explain(&cal, &DeadlineSettings::default(), ams("2026-04-26 12:00"));
        assert_eq!(local(c.acknowledge.due), "2026-04-28T17:00:00+02:00");
        assert!(
            c.explanation.contains("(skipped: Mon 27 Apr King's Day)"),
            "{}",
            c.explanation
        );
        // Mon 4 May 2026: Liberation Day is worked (not a lustrum year) …
        assert_eq!(
            all(&cal, &DeadlineSettings::default(), "2026-05-04 12:00")[0],
            "2026-05-05T17:00:00+02:00"
        );
        // … unless the firm is closed every year.
        let every = cal_with(|s| s.liberation_day = "every_year".into());
        assert_eq!(
            all(&every, &DeadlineSettings::default(), "2026-05-04 12:00")[0],
            "2026-05-06T17:00:00+02:00"
        );
        // Mon 5 May 2025 is off (lustrum).
        assert_eq!(
            all(&cal, &DeadlineSettings::default(), "2025-05-02 12:00")[0],
            "2025-05-06T17:00:00+02:00"
        );
    }

    #[test]
    fn other_working_hours_set_the_end_of_day() {
        let cal = cal_with(|s| s.working_hours = "08:30-16:30".into());
        assert_eq!(
            all(&cal, &DeadlineSettings::default(), "2026-04-02 17:55")[0],
            "2026-04-03T16:30:00+02:00"
        );
    }

    #[test]
    fn invalid_settings_fall_back_to_the_defaults() {
        let bad = periods("soon", "later");
        assert_eq!(
            compute(&default_cal(), &bad, ams("2026-04-02 17:55")),
            compute(
                &default_cal(),
                &DeadlineSettings::default(),
                ams("2026-04-02 17:55")
            )
        );
    }

    #[test]
    fn extensions_need_a_later_date_and_a_reason() {
        let cal = default_cal();
        let current = compute(&cal, &DeadlineSettings::default(), ams("2026-04-02 17:55"));
        let later = ams("2026-05-15 17:00");
        let e = extend(&current, later, "  waiting for the client's documents ").unwrap();
        assert_eq!(e.previous, current.resolution);
        assert_eq!(e.resolution, later);
        assert_eq!(e.reason, "waiting for the client's documents");
        assert_eq!(
            e.describe(&cal),
            "resolution extended from Thu 30 Apr 2026 17:00 to Fri 15 May 2026 17:00 \
             (Europe/Amsterdam): waiting for the client's documents"
        );
        let applied = e.apply(&current, &cal);
        assert_eq!(applied.resolution, later);
        assert_eq!(applied.acknowledge, current.acknowledge);
        assert_eq!(applied.response, current.response);
        assert!(applied.explanation.starts_with(&current.explanation));
        assert!(
            applied
                .explanation
                .ends_with("waiting for the client's documents")
        );

        assert!(
            extend(&current, later, " \n")
                .unwrap_err()
                .contains("needs a reason")
        );
        assert!(
            extend(&current, current.resolution, "x")
                .unwrap_err()
                .contains("not later")
        );
        assert!(
            extend(&current, ams("2026-04-20 17:00"), "x")
                .unwrap_err()
                .contains("not later")
        );

        let e = extend_to_date(&cal, &current, d("2026-05-15"), "reason").unwrap();
        assert_eq!(e.resolution, later);
        assert_eq!(
            extend_to_date(&cal, &current, d("2026-05-14"), "reason").unwrap_err(),
            "Thu 14 May 2026 is not a working day (Ascension Day)"
        );
        assert_eq!(
            extend_to_date(&cal, &current, d("2026-05-16"), "reason").unwrap_err(),
            "Sat 16 May 2026 is not a working day"
        );
    }

    // ---- properties ------------------------------------------------------------------

    const ZONES: [Tz; 5] = [
        chrono_tz::Europe::Amsterdam,
        chrono_tz::Europe::London,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Asia::Kolkata,
    ];

    fn arb_calendar() -> impl Strategy<Value = Calendar> {
        (
            0usize..ZONES.len(),
            1u8..128,
            any::<bool>(),
            0usize..3,
            proptest::option::of((0i64..(60 * 365), 0i64..30)),
            (6u32..12, 13u32..20),
        )
            .prop_map(|(zone, days, good_friday, lib, closing, (start, end))| {
                let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
                let base = d("2000-01-01");
                let s = CalendarSettings {
                    working_days: (0..7)
                        .filter(|i| days & (1 << i) != 0)
                        .map(|i| names[i].to_string())
                        .collect(),
                    working_hours: format!("{start:02}:00-{end:02}:00"),
                    good_friday,
                    liberation_day: LiberationDay::NAMES[lib].into(),
                    closing_days: closing
                        .map(|(from, len)| {
                            let a = base + chrono::Days::new(from as u64);
                            let b = a + chrono::Days::new(len as u64);
                            vec![ClosingDaySetting {
                                date: format!("{a}..{b}"),
                                name: None,
                            }]
                        })
                        .unwrap_or_default(),
                    ..CalendarSettings::default()
                };
                Calendar::from_settings(&s, ZONES[zone]).unwrap()
            })
    }

    fn arb_period() -> impl Strategy<Value = String> {
        prop_oneof![
            (1u32..=8).prop_map(|n| Period::Weeks(n).to_string()),
            (1u32..=40).prop_map(|n| Period::WorkingDays(n).to_string()),
        ]
    }

    /// 2000-01-01 .. 2060-01-01, in seconds.
    fn arb_instant() -> impl Strategy<Value = DateTime<Utc>> {
        (946_684_800i64..2_840_140_800).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn a_deadline_is_the_end_of_a_working_day_after_receipt(
            cal in arb_calendar(),
            response in arb_period(),
            resolution in arb_period(),
            received in arb_instant(),
        ) {
            let s = DeadlineSettings { response, resolution };
            let x = compute(&cal, &s, received);
            for due in [x.acknowledge, x.response, x.resolution] {
                let date = cal.local_date(due);
                prop_assert!(cal.is_working_day(date), "{due} on {date}");
                prop_assert!(due > received, "{due} before {received}");
                prop_assert_eq!(due, cal.end_of_working_day(date));
                prop_assert!(date > cal.local_date(received));
            }
            prop_assert!(x.acknowledge <= x.response);
            prop_assert!(x.acknowledge <= x.resolution);
            prop_assert!(!x.explanation.contains('\n'));
        }

        #[test]
        fn deadlines_are_monotonic_in_the_receipt_time(
            cal in arb_calendar(),
            response in arb_period(),
            resolution in arb_period(),
            received in arb_instant(),
            later_by in 0i64..(40 * 24 * 3600),
        ) {
            let s = DeadlineSettings { response, resolution };
            let a = compute(&cal, &s, received);
            let b = compute(&cal, &s, received + chrono::TimeDelta::seconds(later_by));
            prop_assert!(a.acknowledge <= b.acknowledge);
            prop_assert!(a.response <= b.response);
            prop_assert!(a.resolution <= b.resolution);
        }

        #[test]
        fn the_explanation_mentions_each_deadline(
            received in arb_instant(),
        ) {
            let cal = default_cal();
            let c = explain(&cal, &DeadlineSettings::default(), received);
            for dl in [&c.acknowledge, &c.response, &c.resolution] {
                let when = cal.local(dl.due).format("%H:%M").to_string();
                prop_assert!(c.explanation.contains(&when));
                prop_assert!(c.explanation.contains(&fmt_date_short(dl.date)));
            }
        }

        #[test]
        fn the_next_working_moment_is_working_time(
            cal in arb_calendar(),
            t in arb_instant(),
        ) {
            let m = cal.next_working_moment(t);
            prop_assert!(m >= t);
            prop_assert!(cal.is_working_time(m), "{t} → {m}");
        }
    }
}
