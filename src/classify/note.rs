//! Notes about verbal complaints: a staff member mails the mailbox a few `Key: value`
//! lines at the top of the body, then the complaint in their own words.
//!
//! ```text
//! Klant: Jan de Vries <jan@example.nl>
//! Telefoon: 06-12345678
//! Datum: 20-11-2026 14:10
//! Kanaal: telefoon
//!
//! Meneer de Vries belde: de training van 12 november begon een uur te laat …
//! ```
//!
//! Forgiving: keys are Dutch or English, any case, with `:` or `=`, optionally bulleted
//! (`-`, `*`, `•`); blank lines between key lines are allowed; unknown keys end the block;
//! one or two short greeting lines ("Hoi,") may stand above the key lines.
//!
//! | what | keys |
//! | --- | --- |
//! | complainant | `Klant`, `Cliënt`, `Client`, `Klager`, `Klaagster`, `Melder`, `Naam`, `Complainant`, `Customer`, `Name`, `Contact` |
//! | mail address | `E-mail`, `Email`, `Mail`, `E-mailadres`, `Mailadres`, `Email address` |
//! | phone | `Telefoon`, `Tel`, `Telefoonnummer`, `Mobiel`, `GSM`, `Phone`, `Telephone`, `Mobile` |
//! | date | `Datum`, `Date`, `Wanneer`, `Ontvangen`, `When`, `Received` |
//! | channel | `Kanaal`, `Channel`, `Via`, `Medium` |
//! | subject | `Onderwerp`, `Betreft`, `Subject`, `About` |
//!
//! The complainant line takes `Naam <adres>`, `Naam, adres`, `Naam adres`, `adres`, a name
//! alone, and a phone number after a comma. Dates as in [`super::dates`]: `20-11-2026 14:10`,
//! `20-11-2026`, `2026-11-20 14:10`, `20 november 2026 14:10`, …
//!
//! A block is a note when it names a complainant, a mail address or a phone number.

use chrono_tz::Tz;

use crate::parse::Address;

use super::address;
use super::dates::{self, LooseDate};

/// A note as read.
#[derive(Debug, Clone, Default)]
pub struct Note {
    /// The complainant with a mail address, if one was given.
    pub complainant: Option<Address>,
    /// The complainant's name when no address was given.
    pub name: Option<String>,
    pub phone: Option<String>,
    /// The date as written, and as read (`None` if it could not be read).
    pub date_text: Option<String>,
    pub date: Option<LooseDate>,
    /// The channel as written ("telefoon", "gesprek", …).
    pub channel: Option<String>,
    pub subject: Option<String>,
    /// The text below the key lines.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Complainant,
    Email,
    Phone,
    Date,
    Channel,
    Subject,
}

const KEYS: &[(Key, &[&str])] = &[
    (
        Key::Complainant,
        &[
            "klant",
            "klantnaam",
            "naam klant",
            "cliënt",
            "client",
            "klager",
            "klaagster",
            "melder",
            "naam",
            "complainant",
            "customer",
            "name",
            "contact",
            "contactpersoon",
        ],
    ),
    (
        Key::Email,
        &[
            "e-mail",
            "email",
            "mail",
            "e-mailadres",
            "emailadres",
            "mailadres",
            "e-mail adres",
            "email address",
            "e-mail address",
        ],
    ),
    (
        Key::Phone,
        &[
            "telefoon",
            "telefoonnummer",
            "tel",
            "telnr",
            "tel.nr",
            "mobiel",
            "gsm",
            "phone",
            "telephone",
            "phone number",
            "mobile",
        ],
    ),
    (
        Key::Date,
        &[
            "datum",
            "date",
            "datum/tijd",
            "wanneer",
            "ontvangen",
            "when",
            "received",
            "date/time",
        ],
    ),
    (Key::Channel, &["kanaal", "channel", "via", "medium"]),
    (Key::Subject, &["onderwerp", "betreft", "subject", "about"]),
];

/// `Key: value` → the key and the value.
fn key_line(line: &str) -> Option<(Key, &str)> {
    let t = line
        .trim()
        .trim_start_matches(['-', '*', '•', '·'])
        .trim_start();
    let sep = t.find([':', '='])?;
    let key = t[..sep].trim().trim_end_matches('.').to_lowercase();
    if key.is_empty() || key.chars().count() > 20 {
        return None;
    }
    let (k, _) = KEYS
        .iter()
        .find(|(_, names)| names.contains(&key.as_str()))?;
    Some((*k, t[sep + 1..].trim()))
}

/// Read a note at the top of a text; `None` when the text does not start with one.
pub fn parse(text: &str, tz: Tz) -> Option<Note> {
    let text = text.replace("\r\n", "\n").replace('\u{feff}', "");
    let lines: Vec<&str> = text.split('\n').collect();
    // The key lines start the body; a short greeting line or two above them ("Hoi,") is
    // allowed.
    let non_blank: Vec<usize> = (0..lines.len())
        .filter(|&j| !lines[j].trim().is_empty())
        .take(3)
        .collect();
    let mut i = non_blank
        .iter()
        .take_while(|&&j| key_line(lines[j]).is_none() && lines[j].trim().chars().count() <= 40)
        .take(2)
        .last()
        .map_or(0, |j| j + 1);
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    let mut found: Vec<(Key, &str)> = Vec::new();
    while i < lines.len() {
        if let Some(kv) = key_line(lines[i]) {
            found.push(kv);
            i += 1;
            continue;
        }
        if lines[i].trim().is_empty() {
            // A blank line between key lines is allowed.
            let next = (i..lines.len()).find(|&j| !lines[j].trim().is_empty());
            match next {
                Some(j) if key_line(lines[j]).is_some() => {
                    i = j;
                    continue;
                }
                _ => break,
            }
        }
        break;
    }
    if !found
        .iter()
        .any(|(k, v)| matches!(k, Key::Complainant | Key::Email | Key::Phone) && !v.is_empty())
    {
        return None;
    }

    let mut note = Note {
        text: lines[i.min(lines.len())..].join("\n").trim().to_string(),
        ..Default::default()
    };
    let mut email: Option<String> = None;
    for (key, value) in found {
        if value.is_empty() {
            continue;
        }
        match key {
            Key::Complainant => {
                let (addr, name, phone) = complainant_value(value);
                if addr.is_some() && email.is_none() {
                    email = addr;
                }
                if note.name.is_none() {
                    note.name = name;
                }
                if note.phone.is_none() {
                    note.phone = phone;
                }
            }
            Key::Email => {
                if email.is_none() {
                    email = address::first_address(value).map(|a| a.address);
                }
            }
            Key::Phone => note.phone = note.phone.or_else(|| Some(value.to_string())),
            Key::Date => {
                note.date_text = Some(value.to_string());
                note.date = dates::parse(value, tz);
            }
            Key::Channel => note.channel = Some(value.to_lowercase()),
            Key::Subject => note.subject = Some(value.to_string()),
        }
    }
    if let Some(addr) = email {
        note.complainant = Some(Address::new(note.name.as_deref(), &addr));
    }
    Some(note)
}

/// `Naam <adres>`, `Naam, adres, 06-…`, `adres`, `Naam` → address, name, phone.
fn complainant_value(value: &str) -> (Option<String>, Option<String>, Option<String>) {
    if let Some(a) = address::first_address(value)
        && (value.contains('<') || value.contains('[') || value.contains('('))
    {
        return (Some(a.address), a.name, None);
    }
    let mut addr = None;
    let mut names: Vec<String> = Vec::new();
    let mut phone = None;
    for part in value.split([',', ';', '|']) {
        let p = part.trim();
        if p.is_empty() {
            continue;
        }
        if p.contains('@') {
            // "Jan Jansen jan@x.nl": the address and the name before it.
            if let Some((s, e, a)) = address::find_all(p).into_iter().next() {
                addr = Some(a);
                let rest = format!("{} {}", &p[..s], &p[e..]);
                names.extend(address::clean_name(&rest));
            }
        } else if is_phone(p) {
            phone = Some(p.to_string());
        } else {
            names.push(p.to_string());
        }
    }
    let name = address::clean_name(&names.join(" "));
    (addr, name, phone)
}

fn is_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    digits >= 6
        && s.chars()
            .all(|c| c.is_ascii_digit() || " +-()./".contains(c) || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMS: Tz = chrono_tz::Europe::Amsterdam;

    #[test]
    fn full_note() {
        let t = "\nKlant: Jan de Vries <jan@example.nl>\nTelefoon: 06-12345678\nDatum: 20-11-2026 14:10\nKanaal: telefoon\n\nMeneer belde over de training.\n";
        let n = parse(t, AMS).unwrap();
        let c = n.complainant.unwrap();
        assert_eq!(c.address, "jan@example.nl");
        assert_eq!(c.name.as_deref(), Some("Jan de Vries"));
        assert_eq!(n.phone.as_deref(), Some("06-12345678"));
        assert_eq!(n.date.unwrap().at.to_rfc3339(), "2026-11-20T13:10:00+00:00");
        assert_eq!(n.channel.as_deref(), Some("telefoon"));
        assert_eq!(n.text, "Meneer belde over de training.");
    }

    #[test]
    fn forgiving_forms() {
        let n = parse(
            "client = Jan Jansen, jan@x.nl\n- date: 2026-11-20 14:10\n\ntext",
            AMS,
        )
        .unwrap();
        assert_eq!(n.complainant.unwrap().name.as_deref(), Some("Jan Jansen"));
        let n = parse("KLANT: Piet Pietersen, 06 1234 5678\n\ntext", AMS).unwrap();
        assert!(n.complainant.is_none());
        assert_eq!(n.name.as_deref(), Some("Piet Pietersen"));
        assert_eq!(n.phone.as_deref(), Some("06 1234 5678"));
        let n = parse("Naam: Els\nE-mail: els@x.nl\n", AMS).unwrap();
        assert_eq!(n.complainant.unwrap().to_string(), "Els <els@x.nl>");
        let n = parse("Klager: Kees Kok kees@x.nl", AMS).unwrap();
        assert_eq!(n.complainant.unwrap().to_string(), "Kees Kok <kees@x.nl>");
    }

    #[test]
    fn not_a_note() {
        assert!(
            parse(
                "Beste collega, hieronder iets heel anders dan een notitie\n\nKlant: x",
                AMS
            )
            .is_none()
        );
        let n = parse("Hoi,\n\nKlant: Jan, jan@x.nl\n\nBelde boos.", AMS).unwrap();
        assert_eq!(n.complainant.unwrap().address, "jan@x.nl");
        assert!(parse("Datum: 20-11-2026\n\nIets", AMS).is_none());
        assert!(parse("", AMS).is_none());
    }
}
