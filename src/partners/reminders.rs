//! Which reminders are due on a working day (pure).
//!
//! For every open deadline of an open case — **response** (inform the client of the
//! outcome) until a message from the firm reached the complainant, **resolution** (settle)
//! until the case is closed — the responsible partner is reminded on the working days
//! `[reminders] before` it (default 3, 1 and 0 working days: the day itself), then on every
//! working day while it is overdue. Once a deadline is `escalate_after` working days
//! overdue (default 2), every partner is told, once per deadline.
//!
//! Everything goes out at `send_at` (default 08:30, the firm's time zone) on working days
//! only, gathered into one mail per partner per day. Each item has a key — (case,
//! deadline, its due time, offset, day) — that the store keeps UNIQUE, so a restart, a
//! second step or a second instance never sends it twice. A day on which klachtpost did
//! not run at all is not made up later (the next day's reminder says the same, newer).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::ReminderSettings;
use crate::calendar::{Calendar, local_to_utc};

/// The two deadlines partners are reminded of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    Response,
    Resolution,
}

impl DeadlineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::Response => "response",
            DeadlineKind::Resolution => "resolution",
        }
    }
}

/// An open deadline of an open case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenDeadline {
    pub case: String,
    pub partner_email: String,
    pub kind: DeadlineKind,
    pub due: DateTime<Utc>,
}

/// One reminder or escalation due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub case: String,
    pub kind: DeadlineKind,
    pub due: DateTime<Utc>,
    /// Working days until the deadline (0: today); negative: working days overdue.
    pub offset: i64,
    /// For every partner, not only the responsible one.
    pub escalation: bool,
    /// The responsible partner.
    pub partner_email: String,
    /// Unique per thing told: the store refuses a second one.
    pub key: String,
}

fn previous_working_day(cal: &Calendar, date: NaiveDate) -> NaiveDate {
    let mut d = date;
    for _ in 0..400 {
        match d.pred_opt() {
            Some(p) => d = p,
            None => return d,
        }
        if cal.is_working_day(d) {
            return d;
        }
    }
    date
}

/// Working days from `from` to `to`: the working days in `(from, to]`, negative when `to`
/// is before `from` (then the working days in `(to, from]`).
pub fn working_days_between(cal: &Calendar, from: NaiveDate, to: NaiveDate) -> i64 {
    let (a, b, sign) = if from <= to {
        (from, to, 1)
    } else {
        (to, from, -1)
    };
    let mut n = 0i64;
    let mut d = a;
    // Bounded: deadlines are at most a year and a bit away.
    for _ in 0..800 {
        match d.succ_opt() {
            Some(next) if next <= b => d = next,
            _ => break,
        }
        if cal.is_working_day(d) {
            n += 1;
        }
    }
    sign * n
}

/// When the daily mail goes out on `day`: `None` on a non-working day.
pub fn send_time(cal: &Calendar, s: &ReminderSettings, day: NaiveDate) -> Option<DateTime<Utc>> {
    cal.is_working_day(day)
        .then(|| local_to_utc(cal.timezone(), day.and_time(s.send_at)))
}

/// The first send time strictly after `now`.
pub fn next_send_time(cal: &Calendar, s: &ReminderSettings, now: DateTime<Utc>) -> DateTime<Utc> {
    let mut day = cal.local_date(now);
    for _ in 0..400 {
        if let Some(t) = send_time(cal, s, day)
            && t > now
        {
            return t;
        }
        day = cal.next_working_day(day);
    }
    now + Duration::days(1)
}

/// The moment `minutes` working minutes before `due` (working hours on working days).
pub fn working_minutes_before(cal: &Calendar, due: DateTime<Utc>, minutes: u32) -> DateTime<Utc> {
    let mut t = due;
    let mut left = Duration::minutes(i64::from(minutes));
    for _ in 0..400 {
        let date = cal.local_date(t);
        if cal.is_working_day(date) {
            let start = cal.start_of_working_day(date);
            let end = cal.end_of_working_day(date);
            let t_in = t.min(end);
            let available = (t_in - start).max(Duration::zero());
            if available >= left {
                return t_in - left;
            }
            left -= available;
        }
        let prev = previous_working_day(cal, date);
        if prev == date {
            break;
        }
        t = cal.end_of_working_day(prev);
    }
    t
}

/// Everything due on working day `day` for these deadlines (nothing on a non-working day).
pub fn due_on(
    cal: &Calendar,
    s: &ReminderSettings,
    day: NaiveDate,
    deadlines: &[OpenDeadline],
) -> Vec<Item> {
    if !cal.is_working_day(day) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for d in deadlines {
        let due_date = cal.local_date(d.due);
        let offset = working_days_between(cal, day, due_date);
        let due_ts = crate::store::ts(d.due);
        let base = format!("{}:{}:{due_ts}", d.case, d.kind.as_str());
        let item = |escalation: bool, key: String| Item {
            case: d.case.clone(),
            kind: d.kind,
            due: d.due,
            offset,
            escalation,
            partner_email: d.partner_email.clone(),
            key,
        };
        if offset >= 0 {
            if s.before.contains(&(offset as u32)) {
                out.push(item(false, format!("reminder:{base}:{offset}:{day}")));
            }
        } else {
            out.push(item(false, format!("reminder:{base}:{offset}:{day}")));
            if -offset >= i64::from(s.escalate_after) {
                out.push(item(true, format!("escalation:{base}")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::CalendarSettings;
    use chrono_tz::Europe::Amsterdam;

    fn cal() -> Calendar {
        Calendar::from_settings(&CalendarSettings::default(), Amsterdam).unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn local(s: &str) -> DateTime<Utc> {
        local_to_utc(
            Amsterdam,
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap(),
        )
    }

    #[test]
    fn distance_in_working_days_skips_weekends_and_holidays() {
        let c = cal();
        // Thu 24 Dec 2026 → Mon 28 Dec: Christmas (Fri) and Boxing Day (Sat), Sunday.
        assert_eq!(
            working_days_between(&c, d("2026-12-24"), d("2026-12-28")),
            1
        );
        assert_eq!(
            working_days_between(&c, d("2026-12-28"), d("2026-12-24")),
            -1
        );
        assert_eq!(
            working_days_between(&c, d("2026-12-07"), d("2026-12-07")),
            0
        );
        assert_eq!(
            working_days_between(&c, d("2026-12-04"), d("2026-12-09")),
            3
        );
    }

    #[test]
    fn reminders_before_then_daily_overdue_then_one_escalation() {
        let c = cal();
        let s = ReminderSettings::default();
        // Due Wednesday 9 December 2026, 17:00.
        let dl = [OpenDeadline {
            case: "KL-2026-0001".into(),
            partner_email: "anna@voorbeeld.nl".into(),
            kind: DeadlineKind::Response,
            due: local("2026-12-09 17:00"),
        }];
        let days: Vec<(NaiveDate, Vec<(i64, bool)>)> = (0..12)
            .map(|i| d("2026-12-03") + Duration::days(i))
            .map(|day| {
                (
                    day,
                    due_on(&c, &s, day, &dl)
                        .into_iter()
                        .map(|i| (i.offset, i.escalation))
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, v)| !v.is_empty())
            .collect();
        assert_eq!(
            days,
            vec![
                (d("2026-12-04"), vec![(3, false)]), // Friday: 3 working days before
                (d("2026-12-08"), vec![(1, false)]),
                (d("2026-12-09"), vec![(0, false)]),
                (d("2026-12-10"), vec![(-1, false)]),
                (d("2026-12-11"), vec![(-2, false), (-2, true)]),
                // weekend: nothing
                (d("2026-12-14"), vec![(-3, false), (-3, true)]),
            ]
        );
        // The escalation key is the same every day: the store lets it through once.
        let a = due_on(&c, &s, d("2026-12-11"), &dl);
        let b = due_on(&c, &s, d("2026-12-14"), &dl);
        assert_eq!(a[1].key, b[1].key);
        assert_ne!(a[0].key, b[0].key);
    }

    #[test]
    fn send_times_only_on_working_days() {
        let c = cal();
        let s = ReminderSettings::default();
        assert_eq!(send_time(&c, &s, d("2026-12-05")), None); // Saturday
        assert_eq!(
            send_time(&c, &s, d("2026-12-07")),
            Some(local("2026-12-07 08:30"))
        );
        // Friday 24 Dec 2026 after 08:30: next is Monday 28 Dec (Christmas, Boxing Day,
        // Sunday in between).
        assert_eq!(
            next_send_time(&c, &s, local("2026-12-24 09:00")),
            local("2026-12-28 08:30")
        );
        assert_eq!(
            next_send_time(&c, &s, local("2026-12-24 08:00")),
            local("2026-12-24 08:30")
        );
    }

    #[test]
    fn ack_margin_counts_working_minutes_back() {
        let c = cal();
        assert_eq!(
            working_minutes_before(&c, local("2026-12-07 17:00"), 120),
            local("2026-12-07 15:00")
        );
        // 10 working hours before Monday 17:00: 8 on Monday, 2 on Friday.
        assert_eq!(
            working_minutes_before(&c, local("2026-12-07 17:00"), 600),
            local("2026-12-04 15:00")
        );
    }
}
