//! The calendar and the complaint clock through the public API, wired from a config.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use klachtpost::calendar::{Calendar, DutchHolidays, HolidayRules, LiberationDay};
use klachtpost::config::{Config, ConfigError};
use klachtpost::deadlines;

const BASE: &str = r#"
[firm]
name = "Adviesbureau Test"
timezone = "Europe/Amsterdam"
address = "klachten@firma.nl"
partners = [{ name = "Anna Partner", email = "anna@firma.nl" }]
[mailbox]
kind = "maildir"
path = "var/mailbox"
[outgoing]
kind = "file"
dir = "var/outbox"
[templates]
acknowledgement = "Cargo.toml"
"#;

fn load(extra: &str) -> Result<Config, ConfigError> {
    Config::from_toml(
        Path::new("test.toml"),
        &format!("{BASE}{extra}"),
        &[],
        &|_| None,
    )
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn local(cal: &Calendar, t: DateTime<Utc>) -> String {
    cal.local(t).to_rfc3339_opts(SecondsFormat::Secs, false)
}

#[test]
fn the_config_sections_drive_the_clock() {
    let c = load(
        r#"
[calendar]
working_days = ["ma", "di", "wo", "do"]
working_hours = "08:00-16:00"
good_friday = true
liberation_day = "every_year"
closing_days = [{ date = "2026-07-20..2026-07-31", name = "Zomersluiting" }]
[deadlines]
response = "5 werkdagen"
resolution = "3 weken"
"#,
    )
    .unwrap();
    let cal = &c.calendar;
    assert_eq!(cal.timezone(), c.firm.timezone);
    // Thursday 16 July 2026, 18:00 CEST: Friday is not worked, then two weeks closed.
    let d = deadlines::compute(cal, &c.deadlines, utc("2026-07-16T16:00:00Z"));
    assert_eq!(local(cal, d.acknowledge), "2026-08-03T16:00:00+02:00");
    // 5 working days: 3, 4, 5, 6 Aug, 10 Aug.
    assert_eq!(local(cal, d.response), "2026-08-10T16:00:00+02:00");
    // 3 weeks: Thu 6 Aug.
    assert_eq!(local(cal, d.resolution), "2026-08-06T16:00:00+02:00");
    assert!(
        d.explanation
            .contains("Mon 20 Jul–Thu 30 Jul Zomersluiting"),
        "{}",
        d.explanation
    );
    assert!(!cal.is_working_day("2026-05-05".parse().unwrap()));
}

#[test]
fn config_problems_are_named_by_key_all_at_once() {
    let e = load(
        r#"
[calendar]
working_days = ["mon", "tue", "xyz"]
working_hours = "17:00-09:00"
liberation_day = "lustra"
closing_days = ["2026-12-31..2026-12-01", { date = "2027-01-04", name = "" }]
[deadlines]
response = "3 weeks"
resolution = "2 weeks"
"#,
    )
    .unwrap_err();
    let all = e.problems.join("\n");
    for needle in [
        "calendar.working_days[2]: \"xyz\" is not a day of the week",
        "calendar.working_hours: \"17:00-09:00\"",
        "calendar.liberation_day: \"lustra\"",
        "calendar.closing_days[0]: \"2026-12-31..2026-12-01\": the range ends before it starts",
        "calendar.closing_days[1].name: empty",
        "deadlines.resolution: \"2 weeks\" ends before the response period \"3 weeks\"",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert_eq!(e.problems.len(), 6, "{all}");

    let e = load("[calendar]\nweekend = [\"sat\"]\n").unwrap_err();
    assert!(e.problems.join("\n").contains("weekend"), "{e}");
    let e = load("[deadlines]\nreminder = \"1 week\"\n").unwrap_err();
    assert!(e.problems.join("\n").contains("reminder"), "{e}");
}

#[test]
fn defaults_without_the_sections() {
    let c = load("").unwrap();
    let d = deadlines::compute(&c.calendar, &c.deadlines, utc("2026-04-02T15:55:00Z"));
    assert_eq!(
        local(&c.calendar, d.acknowledge),
        "2026-04-03T17:00:00+02:00"
    );
    assert_eq!(local(&c.calendar, d.response), "2026-04-16T17:00:00+02:00");
    assert_eq!(
        local(&c.calendar, d.resolution),
        "2026-04-30T17:00:00+02:00"
    );
}

#[test]
fn the_holiday_rules_are_usable_on_their_own() {
    let rules = DutchHolidays {
        good_friday: false,
        liberation_day: LiberationDay::Never,
    };
    let names: Vec<&str> = rules.holidays(2026).iter().map(|h| h.name).collect();
    assert_eq!(
        names,
        [
            "New Year's Day",
            "Easter Sunday",
            "Easter Monday",
            "King's Day",
            "Ascension Day",
            "Pentecost",
            "Pentecost Monday",
            "Christmas Day",
            "Second Day of Christmas"
        ]
    );
}
