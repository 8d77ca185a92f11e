//! The digest for the partners' meeting: when it goes out and what it says (pure).
//!
//! `[digest] schedule = "mon 08:00"` (a weekday and a local time; the default) or
//! `dates = ["2026-12-07 08:00", …]` (the meeting dates), or `schedule = "never"`. A
//! scheduled day that is not a working day moves to the next working day, same time. One
//! mail to all partners: every open case (reference, complainant, partner, age in working
//! days, status, next deadline and whether it is at risk or overdue), the cases closed
//! since the last digest with their form's structural/measure fields, and intake problems
//! (mail that could not be sent, triage items, unparseable mail). HTML with a plain-text
//! alternative; the content is a plain struct ([`Digest`]) so it moves to a template
//! engine unchanged.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::DigestSchedule;
use crate::calendar::{Calendar, local_to_utc};
use crate::compose::dutch_datetime;

/// A digest's scheduled day (its key) and when it goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    /// The scheduled date (before moving off a non-working day): the idempotency key.
    pub scheduled: NaiveDate,
    pub at: DateTime<Utc>,
}

fn scheduled_on(schedule: &DigestSchedule, date: NaiveDate) -> Option<chrono::NaiveTime> {
    use chrono::Datelike;
    match schedule {
        DigestSchedule::Weekly(day, time) => (date.weekday() == *day).then_some(*time),
        DigestSchedule::Dates(dates) => dates.iter().find(|(d, _)| *d == date).map(|(_, t)| *t),
        DigestSchedule::Never => None,
    }
}

fn occurrence(cal: &Calendar, schedule: &DigestSchedule, date: NaiveDate) -> Option<Occurrence> {
    let time = scheduled_on(schedule, date)?;
    let day = cal.working_day_on_or_after(date);
    Some(Occurrence {
        scheduled: date,
        at: local_to_utc(cal.timezone(), day.and_time(time)),
    })
}

/// The occurrences whose time has come by `now` and whose day is today (a digest missed
/// for a whole day is not sent late: the next one says it all again).
pub fn due(cal: &Calendar, schedule: &DigestSchedule, now: DateTime<Utc>) -> Vec<Occurrence> {
    let today = cal.local_date(now);
    (0..21)
        .filter_map(|back| today.checked_sub_signed(Duration::days(back)))
        .filter_map(|d| occurrence(cal, schedule, d))
        .filter(|o| o.at <= now && cal.local_date(o.at) == today)
        .collect()
}

/// The first occurrence strictly after `now`.
pub fn next(cal: &Calendar, schedule: &DigestSchedule, now: DateTime<Utc>) -> Option<Occurrence> {
    let today = cal.local_date(now);
    (0..400)
        .filter_map(|i| today.checked_add_signed(Duration::days(i)))
        .filter_map(|d| occurrence(cal, schedule, d))
        .find(|o| o.at > now)
}

/// How a case stands against its next deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    OnTrack,
    AtRisk,
    Overdue,
}

impl Standing {
    pub fn dutch(self) -> &'static str {
        match self {
            Standing::OnTrack => "op schema",
            Standing::AtRisk => "in gevaar",
            Standing::Overdue => "te laat",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenCase {
    pub reference: String,
    pub complainant: String,
    pub partner: String,
    pub age_working_days: i64,
    pub status: String,
    /// "acknowledge", "response" or "resolution".
    pub next_deadline: String,
    pub next_due: DateTime<Utc>,
    pub standing: Standing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClosedCase {
    pub reference: String,
    pub partner: String,
    pub status: String,
    pub closed_at: DateTime<Utc>,
    pub client_satisfied: Option<bool>,
    pub structural: Option<bool>,
    pub measure: Option<String>,
}

/// Everything one digest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Digest {
    pub firm: String,
    pub at: DateTime<Utc>,
    pub since: Option<DateTime<Utc>>,
    pub open: Vec<OpenCase>,
    pub closed: Vec<ClosedCase>,
    /// One line each, no names or text.
    pub problems: Vec<String>,
}

fn deadline_dutch(kind: &str) -> &'static str {
    match kind {
        "acknowledge" => "ontvangst bevestigen",
        "response" => "uitkomst melden",
        _ => "afhandelen",
    }
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "ja",
        Some(false) => "nee",
        None => "onbekend",
    }
}

/// Escape text for HTML (element content and attribute values).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Digest {
    pub fn subject(&self, cal: &Calendar) -> String {
        format!(
            "Klachtenoverzicht {}: {} open, {} afgesloten",
            cal.local_date(self.at).format("%d-%m-%Y"),
            self.open.len(),
            self.closed.len()
        )
    }

    /// The plain-text part.
    pub fn text(&self, cal: &Calendar) -> String {
        let tz = cal.timezone();
        let mut t = format!(
            "Klachtenoverzicht voor het partneroverleg — {}\n{}\n\n",
            self.firm,
            dutch_datetime(self.at, tz)
        );
        t.push_str(&format!("OPEN KLACHTEN ({})\n", self.open.len()));
        if self.open.is_empty() {
            t.push_str("  geen\n");
        }
        for c in &self.open {
            t.push_str(&format!(
                "- {} | {} | partner {} | {} werkdagen | {} | volgende termijn: {} {} | {}\n",
                c.reference,
                c.complainant,
                c.partner,
                c.age_working_days,
                c.status,
                deadline_dutch(&c.next_deadline),
                dutch_datetime(c.next_due, tz),
                c.standing.dutch().to_uppercase()
            ));
        }
        let since = self
            .since
            .map(|s| format!(" sinds {}", dutch_datetime(s, tz)))
            .unwrap_or_default();
        t.push_str(&format!("\nAFGESLOTEN{since} ({})\n", self.closed.len()));
        if self.closed.is_empty() {
            t.push_str("  geen\n");
        }
        for c in &self.closed {
            t.push_str(&format!(
                "- {} | partner {} | {} op {} | tevreden: {} | structureel: {} | maatregel: {}\n",
                c.reference,
                c.partner,
                c.status,
                dutch_datetime(c.closed_at, tz),
                yes_no(c.client_satisfied),
                yes_no(c.structural),
                c.measure.as_deref().unwrap_or("-")
            ));
        }
        t.push_str(&format!(
            "\nPROBLEMEN BIJ ONTVANGST EN VERZENDING ({})\n",
            self.problems.len()
        ));
        if self.problems.is_empty() {
            t.push_str("  geen\n");
        }
        for p in &self.problems {
            t.push_str(&format!("- {p}\n"));
        }
        t.push_str(&format!("\n{}\n", super::mail::command_footer(true)));
        t
    }

    /// The HTML part: one self-contained page, inline styles, no scripts or outside assets.
    pub fn html(&self, cal: &Calendar) -> String {
        let tz = cal.timezone();
        let e = html_escape;
        let mut h = String::from(
            "<!DOCTYPE html>\n<html lang=\"nl\"><head><meta charset=\"utf-8\"><title>Klachtenoverzicht</title></head>\n<body style=\"font-family:sans-serif\">\n",
        );
        h.push_str(&format!(
            "<h1>Klachtenoverzicht — {}</h1>\n<p>{}</p>\n",
            e(&self.firm),
            e(&dutch_datetime(self.at, tz))
        ));
        h.push_str(&format!("<h2>Open klachten ({})</h2>\n", self.open.len()));
        h.push_str("<table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse\">\n<tr><th>Zaak</th><th>Klager</th><th>Partner</th><th>Werkdagen</th><th>Status</th><th>Volgende termijn</th><th></th></tr>\n");
        for c in &self.open {
            let colour = match c.standing {
                Standing::OnTrack => "",
                Standing::AtRisk => " style=\"background:#fff3c4\"",
                Standing::Overdue => " style=\"background:#f8c8c8\"",
            };
            h.push_str(&format!(
                "<tr{colour}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>\n",
                e(&c.reference),
                e(&c.complainant),
                e(&c.partner),
                c.age_working_days,
                e(&c.status),
                deadline_dutch(&c.next_deadline),
                e(&dutch_datetime(c.next_due, tz)),
                c.standing.dutch()
            ));
        }
        h.push_str("</table>\n");
        h.push_str(&format!(
            "<h2>Afgesloten ({})</h2>\n<ul>\n",
            self.closed.len()
        ));
        for c in &self.closed {
            h.push_str(&format!(
                "<li>{} — partner {} — {} op {} — tevreden: {}, structureel: {}, maatregel: {}</li>\n",
                e(&c.reference),
                e(&c.partner),
                e(&c.status),
                e(&dutch_datetime(c.closed_at, tz)),
                yes_no(c.client_satisfied),
                yes_no(c.structural),
                e(c.measure.as_deref().unwrap_or("-"))
            ));
        }
        h.push_str("</ul>\n");
        h.push_str(&format!(
            "<h2>Problemen bij ontvangst en verzending ({})</h2>\n<ul>\n",
            self.problems.len()
        ));
        for p in &self.problems {
            h.push_str(&format!("<li>{}</li>\n", e(p)));
        }
        h.push_str("</ul>\n");
        h.push_str(&format!(
            "<pre>{}</pre>\n</body></html>\n",
            e(&super::mail::command_footer(true))
        ));
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::CalendarSettings;
    use chrono::{NaiveTime, Weekday};
    use chrono_tz::Europe::Amsterdam;

    fn cal() -> Calendar {
        Calendar::from_settings(&CalendarSettings::default(), Amsterdam).unwrap()
    }

    fn local(s: &str) -> DateTime<Utc> {
        local_to_utc(
            Amsterdam,
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap(),
        )
    }

    #[test]
    fn weekly_digest_due_on_its_day_after_its_time_and_moved_off_holidays() {
        let c = cal();
        let s = DigestSchedule::Weekly(Weekday::Mon, NaiveTime::from_hms_opt(8, 0, 0).unwrap());
        assert!(due(&c, &s, local("2026-12-07 07:59")).is_empty());
        let d = due(&c, &s, local("2026-12-07 08:00"));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].scheduled, "2026-12-07".parse::<NaiveDate>().unwrap());
        assert!(due(&c, &s, local("2026-12-08 08:00")).is_empty());
        // Easter Monday 2027 (29 March): the digest goes on Tuesday.
        let n = next(&c, &s, local("2027-03-27 12:00")).unwrap();
        assert_eq!(n.at, local("2027-03-30 08:00"));
        assert_eq!(n.scheduled, "2027-03-29".parse::<NaiveDate>().unwrap());
        assert_eq!(due(&c, &s, local("2027-03-30 09:00")).len(), 1);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(html_escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}
