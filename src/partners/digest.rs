//! The digest for the partners' meeting: when it goes out and what it says (pure).
//!
//! `[digest] schedule = "mon 08:00"` (a weekday and a local time; the default) or
//! `dates = ["2026-12-07 08:00", …]` (the meeting dates), or `schedule = "never"`. A
//! scheduled day that is not a working day moves to the next working day, same time. One
//! mail to all partners: every open case (reference, complainant, partner, age in working
//! days, status, next deadline and whether it is at risk or overdue), the cases closed
//! since the last digest with their form's structural/measure fields, and the intake
//! problems ([`Problems`]: open outages of the mailbox or of outgoing mail, mail waiting in
//! quarantine, acknowledgements that failed, mail that opened no case since the last
//! digest, other mail that could not be sent). The content is a plain struct
//! ([`Digest`], which `digest preview --json` prints); the mail is its template
//! (`digest.LANG.txt` with `digest.LANG.html`).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use minijinja::context;
use minijinja::value::Value;

use super::DigestSchedule;
use super::mail::Style;
use crate::calendar::{Calendar, local_to_utc};
use crate::compose::{ComposeError, Rendered, one_line};

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

/// An outage of a channel that is still open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenOutage {
    /// mailbox | outgoing
    pub channel: String,
    pub since: DateTime<Utc>,
    pub error: String,
}

/// A mail waiting in quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    /// `Q-0007`.
    pub reference: String,
    pub received: DateTime<Utc>,
    pub reason: String,
}

/// An open case whose acknowledgement did not reach the complainant and that the partner
/// has not recorded as made another way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedAcknowledgement {
    pub reference: String,
    pub partner: String,
    /// no_address | send_failed | bounced
    pub cause: String,
    /// The outgoing server's answer (redacted), if any.
    pub error: Option<String>,
}

/// A mail that opened no case since the last digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unfiled {
    /// The stored message's number (`klachtpost mail list --unfiled`).
    pub number: i64,
    pub received: DateTime<Utc>,
    /// automatic, bounce, triage, …
    pub kind: String,
    pub case: Option<String>,
    pub sender: Option<String>,
    /// Why it opened no case, as `explain` gives it.
    pub reason: String,
}

/// Other mail given up on since the last digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotSent {
    pub purpose: String,
    pub reference: Option<String>,
}

/// At most this many mails that opened no case are listed one by one.
pub const UNFILED_LISTED: usize = 50;

/// Problems receiving and sending mail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Problems {
    pub outages: Vec<OpenOutage>,
    pub quarantined: Vec<Quarantined>,
    pub acknowledgements: Vec<FailedAcknowledgement>,
    /// The oldest [`UNFILED_LISTED`] of them.
    pub unfiled: Vec<Unfiled>,
    /// How many more opened no case (a flood of automatic mail must not make the digest
    /// unreadable; `klachtpost mail list --unfiled` has them all).
    pub unfiled_more: usize,
    pub not_sent: Vec<NotSent>,
    /// Mail since the last digest that could not be read (kept raw).
    pub unparseable: i64,
}

/// Everything one digest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Digest {
    pub firm: String,
    pub at: DateTime<Utc>,
    pub since: Option<DateTime<Utc>>,
    pub open: Vec<OpenCase>,
    pub closed: Vec<ClosedCase>,
    pub problems: Problems,
}

impl Digest {
    /// The mail (`digest.LANG.txt`, `digest.LANG.html`).
    pub fn render(&self, style: &Style<'_>, cal: &Calendar) -> Result<Rendered, ComposeError> {
        let t = |t: DateTime<Utc>| style.datetime(t);
        let open: Vec<Value> = self
            .open
            .iter()
            .map(|c| {
                context! {
                    reference => c.reference,
                    complainant => one_line(&c.complainant),
                    partner => c.partner,
                    age => c.age_working_days,
                    status => c.status,
                    deadline => c.next_deadline,
                    due => t(c.next_due),
                    standing => Value::from_serialize(c.standing),
                }
            })
            .collect();
        let closed: Vec<Value> = self
            .closed
            .iter()
            .map(|c| {
                context! {
                    reference => c.reference,
                    partner => c.partner,
                    status => c.status,
                    closed_at => t(c.closed_at),
                    satisfied => c.client_satisfied,
                    structural => c.structural,
                    measure => c.measure,
                }
            })
            .collect();
        let p = &self.problems;
        let problems = context! {
            outages => p.outages.iter().map(|o| context! {
                channel => o.channel, since => t(o.since), error => o.error,
            }).collect::<Vec<_>>(),
            quarantined => p.quarantined.iter().map(|q| context! {
                reference => q.reference, received => t(q.received), reason => q.reason,
            }).collect::<Vec<_>>(),
            acknowledgements => p.acknowledgements.iter().map(|a| context! {
                reference => a.reference, partner => a.partner, cause => a.cause,
                error => a.error.clone().unwrap_or_default(),
            }).collect::<Vec<_>>(),
            unfiled => p.unfiled.iter().map(|u| context! {
                number => u.number, received => t(u.received), kind => u.kind,
                case => u.case, sender => u.sender, reason => one_line(&u.reason),
            }).collect::<Vec<_>>(),
            unfiled_more => p.unfiled_more,
            not_sent => p.not_sent.iter().map(|n| context! {
                purpose => n.purpose, reference => n.reference,
            }).collect::<Vec<_>>(),
            unparseable => p.unparseable,
        };
        style.render(
            "digest",
            context! {
                date => cal.local_date(self.at).format("%d-%m-%Y").to_string(),
                at => t(self.at),
                since => self.since.map(t).unwrap_or_default(),
                open,
                closed,
                problems,
            },
        )
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
}
