//! The partners' side: who is responsible for a case, what they are told and when, and
//! what they can answer.
//!
//! - [`assign`]: the responsible partner from `[[assignment]]` rules, else round-robin,
//!   least open cases or `firm.default_partner`; never a partner named in the complaint
//!   (pure).
//! - [`reminders`]: which reminders, escalations and acknowledgement warnings are due on a
//!   working day, each with an idempotency key (pure).
//! - [`digest`]: the schedule of the partners' meeting digest and its content (pure).
//! - [`commands`]: the `#command` lines at the top of a partner's reply (pure parser).
//! - [`mail`]: what every mail to partners says, as plain data structs rendered from their
//!   templates (`config/templates/`, [`crate::compose::templates`]), and the message.
//! - [`scheduler`]: the daemon's job: one [`scheduler::step`] (tests call it with a manual
//!   clock) that queues what is due through the outbox, exactly once per key.
//! - [`reply`]: intake's hand-off for a reply to one of these mails: runs the commands
//!   through the case commands ([`crate::case`]), confirms, keeps the reply as an internal
//!   note.
//!
//! Config: `[[assignment]]`, `firm.assignment`, `firm.default_partner`, `[reminders]`,
//! `[digest]` ([`Settings`]).

pub mod assign;
pub mod commands;
pub mod digest;
pub mod mail;
pub mod reminders;
pub mod reply;
pub mod scheduler;

use chrono::{NaiveDate, NaiveTime, Weekday};
use serde::Deserialize;

use crate::config::Partner;

/// Everything the partners' side reads from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub assignment: assign::Rules,
    pub reminders: ReminderSettings,
    pub digest: DigestSchedule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderSettings {
    /// Working days before a deadline on which its partner is reminded (0 = the day itself).
    pub before: Vec<u32>,
    /// Working days overdue after which every partner is told (once per deadline).
    pub escalate_after: u32,
    /// Local time of day the daily mail goes out (on working days only).
    pub send_at: NaiveTime,
    /// Working minutes before the acknowledgement deadline by which the acknowledgement
    /// must have been accepted by the outgoing server, else the partner is warned.
    pub ack_margin_minutes: u32,
}

impl Default for ReminderSettings {
    fn default() -> Self {
        ReminderSettings {
            before: vec![3, 1, 0],
            escalate_after: 2,
            send_at: NaiveTime::from_hms_opt(8, 30, 0).unwrap_or_default(),
            ack_margin_minutes: 120,
        }
    }
}

/// When the digest for the partners' meeting goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestSchedule {
    Weekly(Weekday, NaiveTime),
    Dates(Vec<(NaiveDate, NaiveTime)>),
    Never,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReminders {
    before: Option<Vec<String>>,
    escalate_after: Option<String>,
    send_at: Option<String>,
    ack_margin: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDigest {
    schedule: Option<String>,
    dates: Option<Vec<String>>,
}

/// "3 working days", "1 working day", "0 working days" (also Dutch "werkdag(en)").
pub fn parse_working_days(s: &str) -> Result<u32, String> {
    let norm = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let (n, unit) = norm
        .split_once(' ')
        .ok_or_else(|| format!("{s:?}: write \"N working days\""))?;
    let n: u32 = n
        .parse()
        .map_err(|_| format!("{s:?}: {n:?} is not a whole number"))?;
    match unit {
        "working day" | "working days" | "werkdag" | "werkdagen" if n <= 60 => Ok(n),
        "working day" | "working days" | "werkdag" | "werkdagen" => {
            Err(format!("{s:?}: at most 60 working days"))
        }
        _ => Err(format!("{s:?}: write \"N working days\"")),
    }
}

/// "2 working hours", "90 working minutes" → minutes.
pub fn parse_working_time(s: &str) -> Result<u32, String> {
    let norm = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let hint = "write \"N working hours\" or \"N working minutes\"";
    let (n, unit) = norm
        .split_once(' ')
        .ok_or_else(|| format!("{s:?}: {hint}"))?;
    let n: u32 = n
        .parse()
        .map_err(|_| format!("{s:?}: {n:?} is not a whole number"))?;
    let minutes = match unit {
        "working hour" | "working hours" | "werkuur" | "werkuren" => n * 60,
        "working minute" | "working minutes" | "werkminuten" => n,
        _ => return Err(format!("{s:?}: {hint}")),
    };
    if minutes > 24 * 60 {
        return Err(format!("{s:?}: at most 24 working hours"));
    }
    Ok(minutes)
}

fn parse_time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| format!("{s:?}: write \"HH:MM\""))
}

impl DigestSchedule {
    /// `schedule = "mon 08:00"` (or `"never"`), `dates = ["2026-12-07 08:00", "2026-12-21"]`.
    fn parse(raw: &RawDigest, problems: &mut Vec<String>) -> DigestSchedule {
        let default_time = NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default();
        if let Some(dates) = &raw.dates {
            if raw.schedule.is_some() {
                problems.push("digest: give `schedule` or `dates`, not both".into());
            }
            let mut out = Vec::new();
            for d in dates {
                let mut parts = d.split_whitespace();
                let date = parts.next().unwrap_or_default().parse::<NaiveDate>();
                let time = parts.next().map(parse_time).unwrap_or(Ok(default_time));
                match (date, time) {
                    (Ok(date), Ok(time)) => out.push((date, time)),
                    _ => problems.push(format!(
                        "digest.dates: {d:?}: write \"YYYY-MM-DD\" or \"YYYY-MM-DD HH:MM\""
                    )),
                }
            }
            out.sort();
            return DigestSchedule::Dates(out);
        }
        let s = raw.schedule.as_deref().unwrap_or("mon 08:00").trim();
        if s.eq_ignore_ascii_case("never") {
            return DigestSchedule::Never;
        }
        let mut parts = s.split_whitespace();
        let day = parts.next().and_then(crate::calendar::parse_weekday);
        let time = parts.next().map(parse_time).unwrap_or(Ok(default_time));
        match (day, time) {
            (Some(day), Ok(time)) => DigestSchedule::Weekly(day, time),
            _ => {
                problems.push(format!(
                    "digest.schedule: {s:?}: write a weekday and a time, e.g. \"mon 08:00\", or \"never\""
                ));
                DigestSchedule::Never
            }
        }
    }
}

/// Read `[[assignment]]`, `[reminders]`, `[digest]` and the firm's assignment keys.
pub(crate) fn settings_from(
    rules: Vec<assign::RawRule>,
    strategy: Option<&str>,
    default_partner: Option<&str>,
    reminders: RawReminders,
    digest: RawDigest,
    partners: &[Partner],
    problems: &mut Vec<String>,
) -> Settings {
    let assignment = assign::Rules::from_raw(rules, strategy, default_partner, partners, problems);
    let mut r = ReminderSettings::default();
    if let Some(before) = &reminders.before {
        r.before.clear();
        for b in before {
            match parse_working_days(b) {
                Ok(n) => r.before.push(n),
                Err(e) => problems.push(format!("reminders.before: {e}")),
            }
        }
        r.before.sort_unstable();
        r.before.dedup();
    }
    if let Some(e) = &reminders.escalate_after {
        match parse_working_days(e) {
            Ok(n) if n >= 1 => r.escalate_after = n,
            Ok(_) => problems.push("reminders.escalate_after: at least \"1 working day\"".into()),
            Err(e) => problems.push(format!("reminders.escalate_after: {e}")),
        }
    }
    if let Some(t) = &reminders.send_at {
        match parse_time(t) {
            Ok(t) => r.send_at = t,
            Err(e) => problems.push(format!("reminders.send_at: {e}")),
        }
    }
    if let Some(m) = &reminders.ack_margin {
        match parse_working_time(m) {
            Ok(n) => r.ack_margin_minutes = n,
            Err(e) => problems.push(format!("reminders.ack_margin: {e}")),
        }
    }
    Settings {
        assignment,
        reminders: r,
        digest: DigestSchedule::parse(&digest, problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_times_parse_and_bad_ones_are_named() {
        assert_eq!(parse_working_days("3 working days"), Ok(3));
        assert_eq!(parse_working_days("1 werkdag"), Ok(1));
        assert_eq!(parse_working_days("0 working days"), Ok(0));
        assert!(parse_working_days("3 days").is_err());
        assert_eq!(parse_working_time("2 working hours"), Ok(120));
        assert_eq!(parse_working_time("45 working minutes"), Ok(45));
        assert!(parse_working_time("2 hours").is_err());
        let mut problems = Vec::new();
        let s = settings_from(
            vec![],
            None,
            None,
            RawReminders {
                before: Some(vec!["5 working days".into(), "nonsense".into()]),
                ..Default::default()
            },
            RawDigest {
                schedule: Some("tue 09:15".into()),
                dates: None,
            },
            &[Partner {
                name: "A".into(),
                email: "a@x.nl".into(),
            }],
            &mut problems,
        );
        assert_eq!(s.reminders.before, vec![5]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("reminders.before"));
        assert_eq!(
            s.digest,
            DigestSchedule::Weekly(Weekday::Tue, NaiveTime::from_hms_opt(9, 15, 0).unwrap())
        );
    }

    #[test]
    fn digest_dates_parse() {
        let mut problems = Vec::new();
        let d = DigestSchedule::parse(
            &RawDigest {
                schedule: None,
                dates: Some(vec!["2026-12-21".into(), "2026-12-07 07:45".into()]),
            },
            &mut problems,
        );
        assert!(problems.is_empty());
        let DigestSchedule::Dates(dates) = d else {
            panic!("dates expected")
        };
        assert_eq!(dates[0].0, "2026-12-07".parse::<NaiveDate>().unwrap());
        assert_eq!(dates[0].1, NaiveTime::from_hms_opt(7, 45, 0).unwrap());
        assert_eq!(dates[1].1, NaiveTime::from_hms_opt(8, 0, 0).unwrap());
    }
}
