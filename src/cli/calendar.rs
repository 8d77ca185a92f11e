//! `klachtpost calendar` and `klachtpost deadlines explain`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use chrono::{DateTime, LocalResult, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;

use crate::calendar::{Calendar, CalendarSettings, DayOffKind, LiberationDay, fmt_date};
use crate::config::{Config, Secrets};
use crate::deadlines::{self, Deadline};

/// The years `calendar --year` accepts.
const YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

/// `klachtpost calendar --year Y [--json]`: the public holidays and closing days the firm
/// does not work on, weekends included.
pub fn calendar(config: &Path, year: i32, json: bool) -> Result<ExitCode> {
    if !YEARS.contains(&year) {
        bail!(
            "--year: {year} is out of range ({}–{})",
            YEARS.start(),
            YEARS.end()
        );
    }
    let config = Config::load_with(config, Secrets::Skip)?;
    let cal = &config.calendar;
    let days = cal.days_off(year);
    if json {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            date: String,
            name: &'a str,
        }
        let list: Vec<Json> = days
            .iter()
            .map(|d| Json {
                date: d.date.format("%Y-%m-%d").to_string(),
                name: &d.name,
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!(
        "{}",
        calendar_text(&config.firm.name, cal, &config.calendar_settings, year)
    );
    Ok(ExitCode::SUCCESS)
}

fn calendar_text(firm: &str, cal: &Calendar, settings: &CalendarSettings, year: i32) -> String {
    use std::fmt::Write;
    let days = cal.days_off(year);
    let mut out = String::new();
    let (start, end) = cal.working_hours();
    let weekdays: Vec<String> = cal
        .working_weekdays()
        .iter()
        .map(|d| d.to_string())
        .collect();
    let _ = writeln!(out, "Days off in {year} for {firm} ({})", cal.timezone());
    let _ = writeln!(
        out,
        "Working days {}, {}–{}.",
        weekdays.join(", "),
        start.format("%H:%M"),
        end.format("%H:%M")
    );
    let liberation = LiberationDay::parse(settings.liberation_day.trim()).unwrap_or_default();
    let _ = writeln!(
        out,
        "Good Friday: {}. Liberation Day (5 May): {}.",
        if settings.good_friday {
            "closed"
        } else {
            "a working day"
        },
        match (liberation, liberation.is_off(year)) {
            (LiberationDay::Lustrum, true) => "closed (a lustrum year)",
            (LiberationDay::Lustrum, false) => "a working day (closed in lustrum years only)",
            (_, true) => "closed",
            (_, false) => "a working day",
        }
    );
    out.push('\n');
    if days.is_empty() {
        out.push_str("  (none)\n");
    }
    let mut on_working_weekdays = 0;
    for d in &days {
        let weekend = !cal.is_working_weekday(chrono::Datelike::weekday(&d.date));
        if !weekend {
            on_working_weekdays += 1;
        }
        let mut label = d.label();
        if d.kind == DayOffKind::ClosingDay && d.name != "closing day" {
            label.push_str(" (closing day)");
        }
        if let Some(c) = &d.also_closing {
            label.push_str(&format!("; also closing: {c}"));
        }
        if weekend {
            label.push_str("  [not a working weekday anyway]");
        }
        let _ = writeln!(out, "  {:<16} {label}", fmt_date(d.date));
    }
    let _ = writeln!(
        out,
        "\n{} day(s) off, {on_working_weekdays} of them on working weekdays.",
        days.len()
    );
    out
}

/// A receipt time given on the command line, as an instant, with a note when the local
/// time was ambiguous.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

/// Parse "YYYY-MM-DD HH:MM" as local time in `tz`. A time skipped by a daylight-saving
/// change is an error; a time that happens twice is taken as the earlier one, with a note.
pub fn parse_received(tz: Tz, s: &str) -> Result<Received, String> {
    let t = s.trim();
    let local = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
        .map_err(|_| {
            format!("--received: {s:?} is not a local time \"YYYY-MM-DD HH:MM\" (e.g. \"2026-04-02 17:55\")")
        })?;
    let shown = local.format("%Y-%m-%d %H:%M");
    match tz.from_local_datetime(&local) {
        LocalResult::Single(x) => Ok(Received {
            at: x.with_timezone(&Utc),
            note: None,
        }),
        LocalResult::Ambiguous(a, b) => Ok(Received {
            at: a.with_timezone(&Utc),
            note: Some(format!(
                "{shown} happens twice in {tz} (the clocks go back that night); the earlier one is \
                 used: {} (the later one is {})",
                a.to_rfc3339_opts(SecondsFormat::Secs, false),
                b.to_rfc3339_opts(SecondsFormat::Secs, false)
            )),
        }),
        LocalResult::None => Err(format!(
            "--received: {shown} does not exist in {tz}: the clocks skip that time when they go \
             forward for summer time"
        )),
    }
}

/// `klachtpost deadlines explain --received "YYYY-MM-DD HH:MM" [--json]`.
pub fn deadlines_explain(config: &Path, received: &str, json: bool) -> Result<ExitCode> {
    let config = Config::load_with(config, Secrets::Skip)?;
    let cal = &config.calendar;
    let tz = cal.timezone();
    let received = parse_received(tz, received).map_err(anyhow::Error::msg)?;
    let c = deadlines::explain(cal, &config.deadlines, received.at);
    let at = |t: DateTime<Utc>| {
        t.with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    };
    if json {
        if let Some(note) = &received.note {
            eprintln!("note: {note}");
        }
        // A struct, not json!, so the keys come in deadline order.
        #[derive(serde::Serialize)]
        struct Json {
            acknowledge: String,
            response: String,
            resolution: String,
        }
        let value = Json {
            acknowledge: at(c.acknowledge.due),
            response: at(c.response.due),
            resolution: at(c.resolution.due),
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(note) = &received.note {
        println!("Note: {note}.\n");
    }
    let when = |t: DateTime<Utc>| {
        let l = t.with_timezone(&tz);
        format!("{} {}", fmt_date(l.date_naive()), l.format("%H:%M %Z"))
    };
    println!("Received:     {} ({tz})", when(c.received));
    let year = chrono::Datelike::year(&c.received_date);
    for (label, d) in [
        ("Acknowledge:", &c.acknowledge),
        ("Response:", &c.response),
        ("Resolution:", &c.resolution),
    ] {
        print_deadline(cal, year, label, d, &when);
    }
    println!("\nExplanation stored on the case:\n  {}", c.explanation);
    Ok(ExitCode::SUCCESS)
}

fn print_deadline(
    cal: &Calendar,
    year: i32,
    label: &str,
    d: &Deadline,
    when: &dyn Fn(DateTime<Utc>) -> String,
) {
    println!("{label:<13} {}", when(d.due));
    println!("{:<13} {}", "", deadlines::describe(cal, year, d));
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Amsterdam;

    #[test]
    fn received_times_in_the_gap_and_the_fold() {
        let r = parse_received(Amsterdam, "2026-04-02 17:55").unwrap();
        assert_eq!(r.at.to_rfc3339(), "2026-04-02T15:55:00+00:00");
        assert_eq!(r.note, None);
        assert_eq!(
            parse_received(Amsterdam, "2026-04-02T17:55").unwrap().at,
            r.at
        );
        let e = parse_received(Amsterdam, "2026-03-29 02:30").unwrap_err();
        assert!(e.contains("does not exist in Europe/Amsterdam"), "{e}");
        let r = parse_received(Amsterdam, "2026-10-25 02:30").unwrap();
        assert_eq!(r.at.to_rfc3339(), "2026-10-25T00:30:00+00:00");
        let note = r.note.unwrap();
        assert!(note.contains("happens twice"), "{note}");
        assert!(note.contains("2026-10-25T02:30:00+02:00"), "{note}");
        for bad in [
            "2026-04-02",
            "17:55",
            "2026-04-02 17:55:00",
            "02-04-2026 17:55",
            "",
        ] {
            let e = parse_received(Amsterdam, bad).unwrap_err();
            assert!(e.starts_with("--received:"), "{e}");
        }
    }

    #[test]
    fn the_calendar_text_lists_weekend_holidays_too() {
        let cal = Calendar::new(Amsterdam);
        let text = calendar_text("Firma", &cal, &CalendarSettings::default(), 2027);
        assert!(text.contains("Fri 1 Jan 2027"), "{text}");
        assert!(text.contains("King's Day (Koningsdag)"), "{text}");
        assert!(text.contains("Sun 28 Mar 2027"), "{text}");
        assert!(text.contains("[not a working weekday anyway]"), "{text}");
        assert!(text.contains("Good Friday: a working day"), "{text}");
        assert!(
            text.contains("Liberation Day (5 May): a working day (closed in lustrum years only)"),
            "{text}"
        );
        assert!(!text.contains("Good Friday ("), "{text}");
        let text = calendar_text("Firma", &cal, &CalendarSettings::default(), 2025);
        assert!(text.contains("closed (a lustrum year)"), "{text}");
        assert!(text.contains("Liberation Day (Bevrijdingsdag)"), "{text}");
    }
}
