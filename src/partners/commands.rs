//! The command lines at the top of a partner's reply (pure).
//!
//! A partner answers any klachtpost notice, reminder or digest and starts the reply with
//! lines beginning with `#` (blank lines between them are fine); the first other line ends
//! the commands. English and Dutch words:
//!
//! | command | Dutch | does |
//! | --- | --- | --- |
//! | `#assign <partner name or address>` | `#toewijzen` | another partner becomes responsible |
//! | `#status <status>` | `#status` | new, acknowledged, investigating, responded (`nieuw`, `bevestigd`, `onderzoek`, `beantwoord`) |
//! | `#extend <date> <reason>` | `#verlengen` | extend the resolution deadline to a working day (`YYYY-MM-DD` or `DD-MM-YYYY`) |
//! | `#close satisfied\|unsatisfied\|unknown\|not-a-complaint` | `#sluiten tevreden\|ontevreden\|onbekend\|geen-klacht` | close the case |
//! | `#note <text>` | `#notitie` | a note in the case's history |
//! | `#record cause\|measure\|handling\|result\|evaluation <text>` | `#vastleggen oorzaak\|maatregel\|afhandeling\|resultaat\|evaluatie` | fill in the form |
//! | `#structural yes\|no` | `#structureel ja\|nee` | whether the cause is a structural fault |
//!
//! A command names its case when the mail answered is about one case; otherwise (a daily
//! reminder, the digest) the reference comes first: `#close KL-2026-0042 satisfied`.

use chrono::NaiveDate;

use crate::case::{Closing, FormUpdate, Satisfied, Status};

/// What a command does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Assign(String),
    Status(Status),
    Extend { until: NaiveDate, reason: String },
    Close(Closing),
    Note(String),
    Record(FormUpdate),
}

/// One understood command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The reference given on the line, if any.
    pub case: Option<String>,
    pub action: Action,
    /// The line as written (for the confirmation).
    pub line: String,
}

/// A `#` line that was not understood, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUnderstood {
    pub line: String,
    pub why: String,
}

/// The `#` lines at the top of `text`: understood ones and the others.
pub fn parse(text: &str) -> (Vec<Command>, Vec<NotUnderstood>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some(rest) = line.strip_prefix('#') else {
            break;
        };
        match parse_line(rest) {
            Ok((case, action)) => ok.push(Command {
                case,
                action,
                line: line.to_string(),
            }),
            Err(why) => bad.push(NotUnderstood {
                line: line.to_string(),
                why,
            }),
        }
    }
    (ok, bad)
}

/// Whether `s` looks like a case reference (KL-2026-0042).
pub fn is_reference(s: &str) -> bool {
    let mut parts = s.split('-');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(k), Some(y), Some(n), None)
            if k.eq_ignore_ascii_case("kl")
                && y.len() == 4
                && y.chars().all(|c| c.is_ascii_digit())
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
    )
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.split_once(char::is_whitespace) {
        Some((a, b)) => (a, b.trim()),
        None => (s, ""),
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%d-%m-%Y"))
        .ok()
}

fn parse_status(s: &str) -> Result<Status, String> {
    let dutch = match s.trim().to_lowercase().as_str() {
        "nieuw" => Some(Status::New),
        "bevestigd" | "ontvangen" => Some(Status::Acknowledged),
        "onderzoek" | "in-onderzoek" | "in_onderzoek" => Some(Status::Investigating),
        "beantwoord" => Some(Status::Responded),
        _ => None,
    };
    match dutch {
        Some(s) => Ok(s),
        None => s.parse::<Status>(),
    }
}

fn parse_line(rest: &str) -> Result<(Option<String>, Action), String> {
    let (word, args) = split_word(rest);
    let word = word.to_lowercase();
    let (case, args) = {
        let (first, after) = split_word(args);
        if is_reference(first) {
            (Some(first.to_ascii_uppercase()), after)
        } else {
            (None, args)
        }
    };
    let need = |what: &str| -> Result<&str, String> {
        if args.is_empty() {
            Err(format!("#{word} needs {what}"))
        } else {
            Ok(args)
        }
    };
    let action = match word.as_str() {
        "assign" | "toewijzen" => Action::Assign(need("a partner's name or address")?.into()),
        "status" => Action::Status(parse_status(need("a status")?)?),
        "extend" | "verlengen" => {
            let (date, reason) = split_word(need("a date and a reason")?);
            let until = parse_date(date)
                .ok_or_else(|| format!("{date:?} is not a date (YYYY-MM-DD or DD-MM-YYYY)"))?;
            if reason.is_empty() {
                return Err(format!("#{word} needs a reason after the date"));
            }
            Action::Extend {
                until,
                reason: reason.into(),
            }
        }
        "close" | "sluiten" => {
            match need("how: satisfied, unsatisfied, unknown or not-a-complaint")?
                .to_lowercase()
                .as_str()
            {
                "satisfied" | "tevreden" => Action::Close(Closing::Handled(Satisfied::Yes)),
                "unsatisfied" | "ontevreden" => Action::Close(Closing::Handled(Satisfied::No)),
                "unknown" | "onbekend" => Action::Close(Closing::Handled(Satisfied::Unknown)),
                "not-a-complaint" | "geen-klacht" | "not_a_complaint" | "geen_klacht" => {
                    Action::Close(Closing::NotAComplaint)
                }
                other => {
                    return Err(format!(
                        "{other:?}: close with satisfied, unsatisfied, unknown or not-a-complaint"
                    ));
                }
            }
        }
        "note" | "notitie" | "notities" => Action::Note(need("a text")?.into()),
        "record" | "vastleggen" => {
            let (field, text) = split_word(need("a field and a text")?);
            if text.is_empty() {
                return Err(format!("#{word} {field} needs a text"));
            }
            let mut form = FormUpdate::default();
            let text = Some(text.to_string());
            match field.to_lowercase().as_str() {
                "cause" | "oorzaak" => form.cause = text,
                "measure" | "maatregel" => form.measure = text,
                "handling" | "afhandeling" => form.handling = text,
                "result" | "resultaat" => form.result = text,
                "evaluation" | "evaluatie" => form.evaluation = text,
                other => {
                    return Err(format!(
                        "{other:?}: record cause, measure, handling, result or evaluation"
                    ));
                }
            }
            Action::Record(form)
        }
        "structural" | "structureel" => {
            let yes = crate::case::parse_yes_no(need("yes or no")?)?;
            Action::Record(FormUpdate {
                structural: Some(yes),
                ..Default::default()
            })
        }
        "" => return Err("a # without a command".into()),
        other => return Err(format!("#{other} is not a command")),
    };
    Ok((case, action))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Result<Command, NotUnderstood> {
        let (mut ok, mut bad) = parse(line);
        match (ok.pop(), bad.pop()) {
            (Some(c), None) => Ok(c),
            (None, Some(b)) => Err(b),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn english_and_dutch_commands() {
        assert_eq!(
            one("#assign Bram Visser").unwrap().action,
            Action::Assign("Bram Visser".into())
        );
        assert_eq!(
            one("#toewijzen bram@voorbeeld.nl").unwrap().action,
            Action::Assign("bram@voorbeeld.nl".into())
        );
        assert_eq!(
            one("#status onderzoek").unwrap().action,
            Action::Status(Status::Investigating)
        );
        assert_eq!(
            one("#status investigating").unwrap().action,
            Action::Status(Status::Investigating)
        );
        assert_eq!(
            one("#verlengen 15-01-2027 wacht op stukken van de klant")
                .unwrap()
                .action,
            Action::Extend {
                until: "2027-01-15".parse().unwrap(),
                reason: "wacht op stukken van de klant".into()
            }
        );
        assert_eq!(
            one("#sluiten tevreden").unwrap().action,
            Action::Close(Closing::Handled(Satisfied::Yes))
        );
        assert_eq!(
            one("#close not-a-complaint").unwrap().action,
            Action::Close(Closing::NotAComplaint)
        );
        assert_eq!(
            one("#notitie Klant gebeld, belt terug").unwrap().action,
            Action::Note("Klant gebeld, belt terug".into())
        );
        let Action::Record(f) = one("#record cause Planning te krap").unwrap().action else {
            panic!()
        };
        assert_eq!(f.cause.as_deref(), Some("Planning te krap"));
        let Action::Record(f) = one("#vastleggen maatregel Extra controle").unwrap().action else {
            panic!()
        };
        assert_eq!(f.measure.as_deref(), Some("Extra controle"));
        let Action::Record(f) = one("#structureel ja").unwrap().action else {
            panic!()
        };
        assert_eq!(f.structural, Some(true));
    }

    #[test]
    fn a_reference_first_names_the_case() {
        let c = one("#close kl-2026-0042 unsatisfied").unwrap();
        assert_eq!(c.case.as_deref(), Some("KL-2026-0042"));
        assert_eq!(c.action, Action::Close(Closing::Handled(Satisfied::No)));
    }

    #[test]
    fn commands_stop_at_the_first_other_line() {
        let (ok, bad) = parse(
            "\n#note eerste\n\n#status responded\nBeste allen,\n#close satisfied\n> #close x",
        );
        assert_eq!(ok.len(), 2);
        assert!(bad.is_empty());
        let (ok, _) = parse("Dank je.\n#close satisfied");
        assert!(ok.is_empty());
    }

    #[test]
    fn what_is_not_understood_says_why() {
        assert!(
            one("#sluit tevreden")
                .unwrap_err()
                .why
                .contains("not a command")
        );
        assert!(one("#close happy").unwrap_err().why.contains("close with"));
        assert!(
            one("#extend tomorrow later")
                .unwrap_err()
                .why
                .contains("not a date")
        );
        assert!(
            one("#extend 2027-01-15")
                .unwrap_err()
                .why
                .contains("reason")
        );
        assert!(
            one("#status open")
                .unwrap_err()
                .why
                .contains("unknown status")
        );
        assert!(
            one("#record mood bad")
                .unwrap_err()
                .why
                .contains("record cause")
        );
        assert!(one("#assign").unwrap_err().why.contains("needs"));
    }
}
