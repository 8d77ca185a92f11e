//! Dates as people and mail clients write them in forward headers and notes: RFC 2822,
//! ISO 8601, `20-11-2026 14:10`, `donderdag 19 november 2026 10:15`,
//! `Thu, Nov 19, 2026 at 10:15 AM`, `19 nov. 2026 om 10:15`, `Mi., 27. Okt. 2021 um 09:31`,
//! `ke 27. lokak. 2021 klo 9.31`, … Month names in the European languages Outlook and
//! Gmail write; weekday names are skipped. A time without a zone is the firm's local time;
//! a date without a time is taken as 12:00 local time.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A date read from free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LooseDate {
    pub at: DateTime<Utc>,
    /// Whether a time of day was given (else 12:00 local was assumed).
    pub had_time: bool,
}

/// Month-name stems (lower-case) → month. A token is a month when it starts with a stem;
/// the longest matching stem wins.
const MONTHS: &[(&str, u32)] = &[
    // en / nl / de / fr / es / it / pt / scandinavian / ro / hu / sk share many stems
    ("jan", 1),
    ("jän", 1),
    ("ene", 1),
    ("gen", 1),
    ("ian", 1),
    ("tammi", 1),
    ("stycz", 1),
    ("sty", 1),
    ("led", 1),
    ("siječ", 1),
    ("янв", 1),
    ("січ", 1),
    ("oca", 1),
    ("feb", 2),
    ("fév", 2),
    ("fev", 2),
    ("helmi", 2),
    ("lut", 2),
    ("úno", 2),
    ("velj", 2),
    ("фев", 2),
    ("лют", 2),
    ("şub", 2),
    ("mar", 3),
    ("mär", 3),
    ("mrz", 3),
    ("mrt", 3),
    ("maart", 3),
    ("maalis", 3),
    ("bře", 3),
    ("ožu", 3),
    ("мар", 3),
    ("бер", 3),
    ("apr", 4),
    ("avr", 4),
    ("abr", 4),
    ("ápr", 4),
    ("huhti", 4),
    ("kwi", 4),
    ("dub", 4),
    ("trav", 4),
    ("апр", 4),
    ("кві", 4),
    ("nis", 4),
    ("may", 5),
    ("mei", 5),
    ("mai", 5),
    ("mag", 5),
    ("maj", 5),
    ("máj", 5),
    ("touko", 5),
    ("kvě", 5),
    ("svib", 5),
    ("мая", 5),
    ("май", 5),
    ("тра", 5),
    ("jun", 6),
    ("jún", 6),
    ("juin", 6),
    ("giu", 6),
    ("iun", 6),
    ("kesä", 6),
    ("cze", 6),
    ("červen", 6),
    ("června", 6),
    ("lipn", 6),
    ("lipa", 6),
    ("июн", 6),
    ("чер", 6),
    ("haz", 6),
    ("jul", 7),
    ("júl", 7),
    ("juil", 7),
    ("lug", 7),
    ("iul", 7),
    ("heinä", 7),
    ("lip", 7),
    ("červenec", 7),
    ("července", 7),
    ("июл", 7),
    ("лип", 7),
    ("tem", 7),
    ("aug", 8),
    ("août", 8),
    ("aout", 8),
    ("ago", 8),
    ("elo", 8),
    ("sie", 8),
    ("srp", 8),
    ("kol", 8),
    ("авг", 8),
    ("сер", 8),
    ("ağu", 8),
    ("sep", 9),
    ("set", 9),
    ("sze", 9),
    ("syys", 9),
    ("wrz", 9),
    ("zář", 9),
    ("ruj", 9),
    ("сен", 9),
    ("вер", 9),
    ("eyl", 9),
    ("oct", 10),
    ("okt", 10),
    ("ott", 10),
    ("out", 10),
    ("loka", 10),
    ("paź", 10),
    ("říj", 10),
    ("окт", 10),
    ("жов", 10),
    ("eki", 10),
    ("nov", 11),
    ("noi", 11),
    ("marras", 11),
    ("lis", 11),
    ("stud", 11),
    ("ноя", 11),
    ("лис", 11),
    ("kas", 11),
    ("dec", 12),
    ("dez", 12),
    ("déc", 12),
    ("dic", 12),
    ("des", 12),
    ("joulu", 12),
    ("gru", 12),
    ("pro", 12),
    ("дек", 12),
    ("гру", 12),
    ("ara", 12),
];

/// Zone abbreviations seen in forward headers, as offsets in hours.
const ZONES: &[(&str, i32)] = &[
    ("utc", 0),
    ("gmt", 0),
    ("ut", 0),
    ("z", 0),
    ("wet", 0),
    ("west", 1),
    ("bst", 1),
    ("cet", 1),
    ("mez", 1),
    ("cest", 2),
    ("mesz", 2),
    ("eet", 2),
    ("eest", 3),
    ("msk", 3),
    ("est", -5),
    ("edt", -4),
    ("cst", -6),
    ("cdt", -5),
    ("mst", -7),
    ("mdt", -6),
    ("pst", -8),
    ("pdt", -7),
];

fn month_of(token: &str) -> Option<u32> {
    let t = token
        .trim_matches(|c: char| !c.is_alphabetic())
        .to_lowercase();
    if t.chars().count() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .filter(|(stem, _)| t.starts_with(stem))
        .max_by_key(|(stem, _)| stem.chars().count())
        .map(|(_, m)| *m)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Year(i32),
    Num(u32),
    Month(u32),
    Date(i32, u32, u32),
    Time(u32, u32, u32),
    Am,
    Pm,
    Zone(i32), // seconds east
    Word,
}

fn zone_of(token: &str) -> Option<i32> {
    let t = token.trim_matches(|c| c == '(' || c == ')' || c == ',');
    let lower = t.to_lowercase();
    if let Some((_, h)) = ZONES.iter().find(|(z, _)| *z == lower) {
        return Some(h * 3600);
    }
    // +0100, -04:00, GMT+1, UTC+3, GMT+03:00
    let rest = lower
        .strip_prefix("gmt")
        .or_else(|| lower.strip_prefix("utc"))
        .unwrap_or(&lower);
    let (sign, digits) = match rest.chars().next()? {
        '+' => (1, &rest[1..]),
        '-' => (-1, &rest[1..]),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        3 => (
            digits[..1].parse::<i32>().ok()?,
            digits[1..].parse::<i32>().ok()?,
        ),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

fn numeric_parts<'a>(token: &'a str, seps: &[char]) -> Option<Vec<&'a str>> {
    let parts: Vec<&str> = token.split(|c| seps.contains(&c)).collect();
    if parts
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        Some(parts)
    } else {
        None
    }
}

fn classify_token(raw: &str) -> Tok {
    let t = raw.trim_matches(|c| c == ',' || c == '(' || c == ')');
    let lower = t.to_lowercase();
    match lower.as_str() {
        "am" | "a.m." | "vorm." => return Tok::Am,
        "pm" | "p.m." | "nachm." => return Tok::Pm,
        _ => {}
    }
    if let Some(z) = zone_of(t) {
        // "+0100" is a zone, "-" alone is not; plain numbers never get here (no sign).
        return Tok::Zone(z);
    }
    let t = t.trim_end_matches('.');
    // Time: 10:15, 9.31, 14:25:08, 14.25.08
    if let Some(parts) = numeric_parts(t, &[':'])
        && parts.len() >= 2
    {
        return time_tok(&parts).unwrap_or(Tok::Word);
    }
    // Numeric date: 2026-11-19, 19-11-2026, 19/11/2026, 19.11.2026, 28/10/21
    if let Some(parts) = numeric_parts(t, &['-', '/', '.']) {
        if parts.len() == 3 {
            if let Some(d) = date_tok(&parts) {
                return d;
            }
            if t.contains('.') {
                return time_tok(&parts).unwrap_or(Tok::Word);
            }
        }
        if parts.len() == 2 && t.contains('.') {
            return time_tok(&parts).unwrap_or(Tok::Word);
        }
        if parts.len() == 1 {
            let n: u32 = match parts[0].parse() {
                Ok(n) => n,
                Err(_) => return Tok::Word,
            };
            if parts[0].len() == 4 && (1900..=2100).contains(&n) {
                return Tok::Year(n as i32);
            }
            return Tok::Num(n);
        }
    }
    if let Some(m) = month_of(t) {
        return Tok::Month(m);
    }
    Tok::Word
}

fn time_tok(parts: &[&str]) -> Option<Tok> {
    let h: u32 = parts.first()?.parse().ok()?;
    let m: u32 = parts.get(1)?.parse().ok()?;
    let s: u32 = parts.get(2).map_or(Some(0), |s| s.parse().ok())?;
    if parts[0].len() <= 2 && parts[1].len() == 2 && h <= 23 && m <= 59 && s <= 60 {
        Some(Tok::Time(h, m, s.min(59)))
    } else {
        None
    }
}

fn date_tok(parts: &[&str]) -> Option<Tok> {
    let n: Vec<u32> = parts
        .iter()
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let year = |v: u32, len: usize| -> Option<i32> {
        match len {
            4 => Some(v as i32),
            2 => Some(2000 + v as i32),
            _ => None,
        }
    };
    let (y, m, d) = if parts[0].len() == 4 {
        (n[0] as i32, n[1], n[2])
    } else {
        let y = year(n[2], parts[2].len())?;
        // Day first (European), unless that cannot be (then month first, US).
        if n[1] > 12 && n[0] <= 12 {
            (y, n[0], n[1])
        } else {
            (y, n[1], n[0])
        }
    };
    NaiveDate::from_ymd_opt(y, m, d).map(|_| Tok::Date(y, m, d))
}

/// Read a date from free text; `None` when no full date (day, month, year) is found.
pub fn parse(text: &str, tz: Tz) -> Option<LooseDate> {
    let text = text.trim();
    if text.is_empty() || text.len() > 200 {
        return None;
    }
    // Strict forms first.
    let no_comment = match text.find(" (") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => text,
    };
    if let Ok(d) = DateTime::parse_from_rfc2822(no_comment) {
        return Some(LooseDate {
            at: d.with_timezone(&Utc),
            had_time: true,
        });
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(text) {
        return Some(LooseDate {
            at: d.with_timezone(&Utc),
            had_time: true,
        });
    }

    // Commas and no-break spaces separate; so does ISO's "T" between date and time.
    let chars: Vec<char> = text.chars().collect();
    let spaced: String = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let iso_t = c == 'T'
                && i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if c == ',' || c == '\u{a0}' || iso_t {
                ' '
            } else {
                c
            }
        })
        .collect();
    let toks: Vec<Tok> = spaced.split_whitespace().map(classify_token).collect();

    let mut ymd: Option<(i32, u32, u32)> = toks.iter().find_map(|t| match t {
        Tok::Date(y, m, d) => Some((*y, *m, *d)),
        _ => None,
    });
    if ymd.is_none() {
        let year_at = toks.iter().position(|t| matches!(t, Tok::Year(_)))?;
        let Tok::Year(year) = toks[year_at] else {
            return None;
        };
        let months: Vec<usize> = toks
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t, Tok::Month(_)))
            .map(|(i, _)| i)
            .collect();
        let is_day = |i: usize| matches!(toks.get(i), Some(Tok::Num(n)) if (1..=31).contains(n));
        let near = |a: usize, b: usize| a.abs_diff(b) == 1;
        // Prefer the month word next to the year, then one next to a day number.
        let month_at = months
            .iter()
            .copied()
            .find(|&m| near(m, year_at))
            .or_else(|| {
                months
                    .iter()
                    .copied()
                    .find(|&m| (m > 0 && is_day(m - 1)) || is_day(m + 1))
            })
            .or_else(|| months.first().copied())?;
        let Tok::Month(month) = toks[month_at] else {
            return None;
        };
        let day_at = [month_at.wrapping_sub(1), month_at + 1, year_at + 1]
            .into_iter()
            .find(|&i| i != year_at && is_day(i))?;
        let Tok::Num(day) = toks[day_at] else {
            return None;
        };
        ymd = Some((year, month, day));
    }
    let (y, m, d) = ymd?;
    let date = NaiveDate::from_ymd_opt(y, m, d)?;

    let time = toks.iter().find_map(|t| match t {
        Tok::Time(h, mi, s) => Some((*h, *mi, *s)),
        _ => None,
    });
    let pm = toks.contains(&Tok::Pm);
    let am = toks.contains(&Tok::Am);
    let (time, had_time) = match time {
        Some((mut h, mi, s)) => {
            if pm && h < 12 {
                h += 12;
            } else if am && h == 12 {
                h = 0;
            }
            (NaiveTime::from_hms_opt(h, mi, s)?, true)
        }
        None => (NaiveTime::from_hms_opt(12, 0, 0)?, false),
    };
    let naive = NaiveDateTime::new(date, time);
    let zone = toks.iter().find_map(|t| match t {
        Tok::Zone(z) => Some(*z),
        _ => None,
    });
    let at = match zone {
        Some(secs) => FixedOffset::east_opt(secs)?
            .from_local_datetime(&naive)
            .single()?
            .with_timezone(&Utc),
        None => local(naive, tz)?,
    };
    Some(LooseDate { at, had_time })
}

/// A local time in the firm's zone; in the autumn overlap the earlier instant, in the
/// spring gap the instant an hour later.
pub fn local(naive: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
        chrono::LocalResult::None => tz
            .from_local_datetime(&(naive + chrono::Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMS: Tz = chrono_tz::Europe::Amsterdam;

    fn p(s: &str) -> String {
        parse(s, AMS)
            .map(|d| d.at.to_rfc3339())
            .unwrap_or_else(|| "none".into())
    }

    #[test]
    fn dutch_and_english_forms() {
        // 10:15 in Amsterdam in November is 09:15 UTC.
        let want = "2026-11-19T09:15:00+00:00";
        assert_eq!(p("donderdag 19 november 2026 10:15"), want);
        assert_eq!(p("Thu, Nov 19, 2026 at 10:15 AM"), want);
        assert_eq!(p("19 nov. 2026 om 10:15"), want);
        assert_eq!(p("2026-11-19 10:15"), want);
        assert_eq!(p("19-11-2026 10:15"), want);
        assert_eq!(p("19/11/2026 10:15"), want);
        assert_eq!(p("donderdag, 19 november 2026 om 10:15"), want);
        assert_eq!(p("Thursday, November 19, 2026 10:15"), want);
        assert_eq!(p("Thu, 19 Nov 2026 10:15:00 +0100"), want);
        assert_eq!(p("Thu, 19 Nov 2026 10:15:00 +0100 (CET)"), want);
        assert_eq!(p("19 November 2026 at 10:15:00 CET"), want);
        assert_eq!(p("Thursday, November 19, 2026, 4:15:00 AM -0500"), want);
        assert_eq!(p("Thu, Nov 19, 2026 at 1:15 PM GMT+4"), want);
    }

    #[test]
    fn other_languages() {
        assert_eq!(
            p("Mi., 27. Okt. 2021 um 09:31 Uhr"),
            "2021-10-27T07:31:00+00:00"
        );
        assert_eq!(
            p("ke 27. lokak. 2021 klo 9.31"),
            "2021-10-27T07:31:00+00:00"
        );
        assert_eq!(p("mer. 27 oct. 2021 à 09:31"), "2021-10-27T07:31:00+00:00");
        assert_eq!(
            p("mié, 27 oct 2021 a las 9:31"),
            "2021-10-27T07:31:00+00:00"
        );
        assert_eq!(
            p("martedì 2 novembre 2021, 09:26:50 CET"),
            "2021-11-02T08:26:50+00:00"
        );
        assert_eq!(
            p("2021. október 26. 14:25:08 EEST"),
            "2021-10-26T11:25:08+00:00"
        );
        assert_eq!(
            p("четверг, 28 октября 2021 г. в 12:46"),
            "2021-10-28T10:46:00+00:00"
        );
    }

    #[test]
    fn date_only_is_noon_local() {
        let d = parse("20-11-2026", AMS).unwrap();
        assert!(!d.had_time);
        assert_eq!(d.at.to_rfc3339(), "2026-11-20T11:00:00+00:00");
        assert_eq!(p("20 november 2026 14:10"), "2026-11-20T13:10:00+00:00");
    }

    #[test]
    fn not_dates() {
        assert_eq!(p("gisteren"), "none");
        assert_eq!(p("31-02-2026"), "none");
        assert_eq!(p(""), "none");
        assert_eq!(p("om 10:15"), "none");
    }
}
