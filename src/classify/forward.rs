//! Forwards: a staff member passes a client's mail on to the complaints mailbox.
//!
//! Recognised forms:
//! - attached as `message/rfc822` ("forward as attachment");
//! - inline, as the mail clients write it: a separator line (`---------- Forwarded message
//!   ---------`, `-------- Doorgestuurd bericht --------`, `-----Original Message-----`,
//!   `----- Weitergeleitete Nachricht -----`, …) or an intro line (`Begin forwarded
//!   message:`, `Begin doorgestuurd bericht:`, …) or a rule of underscores, followed by a
//!   header block (`Van:/Verzonden:/Aan:/Onderwerp:`, `From:/Sent:/To:/Subject:`,
//!   `Von:/Gesendet:/An:/Betreff:`, `De :/Envoyé :/À :/Objet :` and more languages), with or
//!   without `>` quote markers, `*bold*` labels, Yahoo's one-line blocks;
//! - a header block without separator (new Outlook) with From and at least two other fields;
//! - an attribution line ("On … John Doe <john@…> wrote:", "Op … heeft … geschreven:") when
//!   the subject says it is a forward (Outlook for Mac forwards that way).
//!
//! A header block is not a forward when the subject is a reply ("Re:", "Antw:") and no
//! forward separator or intro line stands above it: that is the quoted history of a reply.
//!
//! Nested forwards are all returned, outermost first; the caller picks the first whose
//! sender is not staff.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::parse::{Address, ParsedMail};

use super::labels::{self, Field};
use super::{address, dates, quote, reference};

/// How the forward was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// Attached as message/rfc822.
    Attached,
    /// Inline, below a separator line; the separator's words.
    Separator(String),
    /// Inline, below an intro line such as "Begin forwarded message:".
    Intro(String),
    /// Inline, an Outlook header block (after a rule of underscores or bare).
    HeaderBlock,
    /// Inline, below an attribution line, with a forward subject.
    Attribution,
}

impl Form {
    /// For the reason sentence.
    pub fn describe(&self) -> String {
        match self {
            Form::Attached => "attached as a message (message/rfc822)".into(),
            Form::Separator(w) => format!("inline, below a \"{w}\" separator"),
            Form::Intro(w) => format!("inline, below \"{w}\""),
            Form::HeaderBlock => "inline, as an Outlook-style header block".into(),
            Form::Attribution => "inline, below an \"… wrote:\" line with a forward subject".into(),
        }
    }
}

/// One forwarded message.
#[derive(Debug, Clone)]
pub struct Forward {
    pub form: Form,
    /// The original sender, when an address was found.
    pub sender: Option<Address>,
    /// The original sender's name when no address was given.
    pub sender_name: Option<String>,
    /// The original date as written, and as read.
    pub date_text: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    /// The forwarded message's text.
    pub text: String,
    /// What the forwarder wrote above it.
    pub comment: String,
}

/// Every forwarded message in a mail, outermost first. `tz` reads dates without a zone.
pub fn find(mail: &ParsedMail, tz: Tz) -> Vec<Forward> {
    let mut out: Vec<Forward> = mail
        .attached_messages()
        .filter(|m| m.problem.is_none() && (m.from.is_some() || !m.text.trim().is_empty()))
        .map(|m| Forward {
            form: Form::Attached,
            sender: m.from.clone(),
            sender_name: None,
            date_text: m.header("Date").map(str::to_string),
            date: m.date,
            subject: Some(m.subject.clone()).filter(|s| !s.is_empty()),
            message_id: m.message_id.clone(),
            text: m.text.clone(),
            comment: quote::new_part(&mail.text),
        })
        .collect();
    out.extend(inline(&mail.text, &mail.subject, tz));
    out
}

/// How many nested forwards are read at most.
const MAX_FORWARDS: usize = 20;

/// Forwards written inline in a text.
pub fn inline(text: &str, subject: &str, tz: Tz) -> Vec<Forward> {
    let prepared = prepare(text);
    let lines: Vec<&str> = prepared.iter().map(String::as_str).collect();
    let reply_subject = reference::is_reply_subject(subject);
    let forward_subject = reference::is_forward_subject(subject);

    let mut out = Vec::new();
    let mut comment_from = 0;
    let mut i = 0;
    while i < lines.len() {
        match block_at(&lines, i, reply_subject, forward_subject) {
            Some(found) => {
                let comment = join(&lines[comment_from..i]);
                let body_lines: Vec<&str> = lines[found.end..]
                    .iter()
                    .map(|l| labels::unquote(l))
                    .collect();
                let mut fwd = found.forward;
                fwd.comment = comment;
                fwd.text = join(&body_lines);
                if let Some(t) = &fwd.date_text {
                    fwd.date = dates::parse(t, tz).map(|d| d.at);
                }
                out.push(fwd);
                // Deeply nested chains: the outer ones decide; keep the work bounded.
                if out.len() >= MAX_FORWARDS {
                    break;
                }
                comment_from = found.end;
                i = found.end.max(i + 1);
            }
            None => i += 1,
        }
    }
    out
}

struct Found {
    forward: Forward,
    /// First line after the header block.
    end: usize,
}

/// A forward starting at line `i`.
fn block_at(lines: &[&str], i: usize, reply_subject: bool, forward_subject: bool) -> Option<Found> {
    let line = lines[i];
    let clean = labels::clean_line(line);
    if clean.is_empty() {
        return None;
    }

    // A separator line, then a header block.
    if let Some(words) = labels::dash_separator(line) {
        let original = labels::is_original_message_words(words);
        if reply_subject && original {
            return None; // "-----Original Message-----" in a reply: quoted history.
        }
        let start = next_non_empty(lines, i + 1, 2)?;
        return from_block(lines, start, 2, Form::Separator(words.to_string()));
    }
    // Outlook's underscore rule, then a header block.
    if labels::is_underscore_rule(line) {
        if reply_subject {
            return None;
        }
        let start = next_non_empty(lines, i + 1, 2)?;
        return from_block(lines, start, 2, Form::HeaderBlock);
    }
    // An intro line ("Begin forwarded message:"), then a header block.
    if is_intro(clean) {
        if reply_subject && !is_forward_words(clean) {
            return None;
        }
        let start = next_non_empty(lines, i + 1, 2)?;
        if let Some(found) = from_block(lines, start, 2, Form::Intro(intro_words(clean))) {
            return Some(found);
        }
    }
    // A bare header block (new Outlook).
    if !reply_subject
        && labels::header_line(line).is_some()
        && let Some(found) = from_block(lines, i, 3, Form::HeaderBlock)
    {
        return Some(found);
    }
    // An attribution line with a forward subject (Outlook for Mac).
    if forward_subject && let Some(n) = quote::attribution_at(lines, i) {
        let joined: Vec<&str> = lines[i..i + n]
            .iter()
            .map(|l| labels::clean_line(l))
            .collect();
        let joined = joined.join(" ");
        // The text before the address is the whole "On … heeft" phrase, not a name.
        let sender = address::first_address(&joined)
            .map(|a| Address::new(attribution_name(&joined).as_deref(), &a.address));
        if sender.is_some() {
            return Some(Found {
                forward: Forward {
                    form: Form::Attribution,
                    sender,
                    sender_name: None,
                    date_text: None,
                    date: None,
                    subject: None,
                    message_id: None,
                    text: String::new(),
                    comment: String::new(),
                },
                end: i + n,
            });
        }
    }
    None
}

/// A header block at `start` with a From field and at least `min_fields` distinct fields.
fn from_block(lines: &[&str], start: usize, min_fields: usize, form: Form) -> Option<Found> {
    let (fields, end) = labels::header_block(lines, start)?;
    let (distinct, has_from) = labels::block_shape(&fields);
    if !has_from || distinct < min_fields {
        return None;
    }
    let get = |f: Field| {
        fields
            .iter()
            .find(|(g, _)| *g == f)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let from = get(Field::From).unwrap_or_default();
    let sender = address::first_address(&from);
    let sender_name = if sender.is_none() {
        address::name_only(&from)
    } else {
        None
    };
    Some(Found {
        forward: Forward {
            form,
            sender,
            sender_name,
            date_text: get(Field::Date),
            date: None,
            subject: get(Field::Subject),
            message_id: None,
            text: String::new(),
            comment: String::new(),
        },
        end,
    })
}

fn next_non_empty(lines: &[&str], from: usize, max_skip: usize) -> Option<usize> {
    (from..lines.len().min(from + max_skip + 1)).find(|&j| !labels::clean_line(lines[j]).is_empty())
}

/// A short line ending in a colon that is no header line: "Begin forwarded message:".
fn is_intro(clean: &str) -> bool {
    let t = clean.trim();
    t.ends_with(':')
        && t.chars().count() <= 60
        && !t.contains('@')
        && labels::header_line(t).is_none()
        && !quote::is_attribution(t)
}

fn intro_words(clean: &str) -> String {
    clean.trim().trim_end_matches(':').trim().to_string()
}

fn is_forward_words(s: &str) -> bool {
    let w = s.to_lowercase();
    [
        "forward",
        "doorgestuurd",
        "doorgestuurde",
        "weitergeleitet",
        "transféré",
        "réexpédié",
        "reenviado",
        "inoltrato",
        "encaminhada",
        "reencaminhada",
        "videresend",
        "vidarebefordrat",
    ]
    .iter()
    .any(|k| w.contains(k))
}

/// The sender's name in an attribution line: a quoted name before the address, or the
/// capitalised words right before it ("… heeft John Doe <john@…> geschreven:").
fn attribution_name(line: &str) -> Option<String> {
    let (start, _, _) = address::find_all(line).into_iter().next()?;
    let before = line[..start].trim_end_matches(['<', '(', '[', ' ', '\u{a0}']);
    // Quoted: "John Doe" or « John Doe ».
    for (open, close) in [('"', '"'), ('«', '»'), ('“', '”')] {
        if let Some(stripped) = before.trim_end().strip_suffix(close)
            && let Some(o) = stripped.rfind(open)
        {
            return address::clean_name(&stripped[o + open.len_utf8()..]);
        }
    }
    let particles = [
        "de", "van", "der", "den", "ten", "ter", "von", "le", "la", "da", "di",
    ];
    let mut words: Vec<&str> = Vec::new();
    for w in before.split_whitespace().rev() {
        let w = w.trim_end_matches(',');
        let first = w.chars().next().unwrap_or(' ');
        let namey = first.is_uppercase() && !w.chars().any(|c| c.is_ascii_digit());
        if namey || (!words.is_empty() && particles.contains(&w)) {
            words.push(w);
            if words.len() >= 5 {
                break;
            }
        } else {
            break;
        }
    }
    while words.last().is_some_and(|w| particles.contains(w)) {
        words.pop();
    }
    words.reverse();
    address::clean_name(&words.join(" "))
}

fn join(lines: &[&str]) -> String {
    let mut v: Vec<&str> = lines.iter().map(|l| l.trim_end()).collect();
    while v.first().is_some_and(|l| labels::clean_line(l).is_empty()) {
        v.remove(0);
    }
    while v.last().is_some_and(|l| labels::clean_line(l).is_empty()) {
        v.pop();
    }
    v.join("\n")
}

/// Lines of the text, with Yahoo's one-line header blocks ("----- Forwarded Message -----
/// From: A <a@b>To: c@dSent: …Subject: x") split into one line per header.
fn prepare(text: &str) -> Vec<String> {
    let text = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\u{feff}', "");
    let mut out = Vec::new();
    for line in text.split('\n') {
        match split_inline_block(line) {
            Some(parts) => out.extend(parts),
            None => out.push(line.to_string()),
        }
    }
    out
}

/// `----- Doorgestuurd bericht ----- Van: …Aan: …` → separator line and header lines.
fn split_inline_block(line: &str) -> Option<Vec<String>> {
    let t = labels::clean_line(line).trim();
    if !t.starts_with("--") {
        return None;
    }
    let after_lead = t.trim_start_matches('-');
    let close = after_lead.find("--")?;
    let words = after_lead[..close].trim();
    let rest = after_lead[close..].trim_start_matches('-').trim();
    if words.is_empty() || rest.is_empty() || labels::header_line(rest).is_none() {
        return None;
    }
    let mut parts = vec![format!("----- {words} -----")];
    // Split before every known label written with a capital and followed by a colon
    // ("…<a@b>Aan: …CETOnderwerp: …").
    let labels: Vec<&str> = labels::splittable_labels().collect();
    let mut cuts: Vec<usize> = vec![0];
    for (at, c) in rest.char_indices().skip(1) {
        if !c.is_uppercase() {
            continue;
        }
        let tail = &rest[at..];
        let is_label = labels.iter().any(|label| {
            let n = label.chars().count();
            let head: String = tail.chars().take(n).collect::<String>().to_lowercase();
            // "Cc: …", and French "Objet : …".
            let after: String = tail.chars().skip(n).take(2).collect();
            head == *label && (after.starts_with(':') || after == " :" || after == "\u{a0}:")
        });
        if is_label {
            cuts.push(at);
        }
    }
    for w in cuts.windows(2) {
        parts.push(rest[w[0]..w[1]].trim().to_string());
    }
    if let Some(last) = cuts.last() {
        parts.push(rest[*last..].trim().to_string());
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMS: Tz = chrono_tz::Europe::Amsterdam;

    fn first(text: &str, subject: &str) -> Option<Forward> {
        inline(text, subject, AMS).into_iter().next()
    }

    #[test]
    fn dutch_outlook_forward() {
        let t = "Zie hieronder, graag oppakken.\n\nMet vriendelijke groet,\nPiet\n\nVan: Jan de Vries <jan@example.nl>\nVerzonden: donderdag 19 november 2026 10:15\nAan: Piet <piet@firma.nl>\nOnderwerp: Klacht over de training\n\nIk ben niet tevreden.\n";
        let f = first(t, "FW: Klacht over de training").unwrap();
        let s = f.sender.unwrap();
        assert_eq!(s.address, "jan@example.nl");
        assert_eq!(s.name.as_deref(), Some("Jan de Vries"));
        assert_eq!(f.subject.as_deref(), Some("Klacht over de training"));
        assert_eq!(f.date.unwrap().to_rfc3339(), "2026-11-19T09:15:00+00:00");
        assert!(f.comment.starts_with("Zie hieronder"));
        assert_eq!(f.text, "Ik ben niet tevreden.");
    }

    #[test]
    fn yahoo_one_line_block() {
        let t = "   ----- Doorgestuurd bericht ----- Van: John Doe <john.doe@acme.com>Aan: \"b@acme.com\" <b@acme.com>Verzonden: dinsdag 2 november 2021 09:26:50 CETOnderwerp: Integer\n Body.";
        let f = first(t, "").unwrap();
        assert_eq!(f.sender.unwrap().address, "john.doe@acme.com");
        assert_eq!(f.subject.as_deref(), Some("Integer"));
        assert_eq!(f.date.unwrap().to_rfc3339(), "2021-11-02T08:26:50+00:00");
    }

    #[test]
    fn reply_with_outlook_block_is_no_forward() {
        let t = "That's true!\n\n________________________________\nFrom: John Doe <john.doe@acme.com>\nSent: Wednesday, October 27, 2021 15:14\nTo: n@globex.corp\nSubject: x\n\ny";
        assert!(first(t, "Re: x").is_none());
        assert!(first(t, "").is_some());
    }

    #[test]
    fn attribution_only_with_forward_subject() {
        let t = "\u{feff}Op 28/10/2021 12:46 heeft John Doe <john.doe@acme.com> geschreven:\n\n    Body";
        assert!(first(t, "").is_none());
        let f = first(t, "FW: x").unwrap();
        let s = f.sender.unwrap();
        assert_eq!(s.address, "john.doe@acme.com");
        assert_eq!(s.name.as_deref(), Some("John Doe"));
    }

    #[test]
    fn name_only_sender() {
        let t = "-----Original Message-----\nFrom: John Doe\nSent: 23 July 2022 07:53\nTo: Bessie\nSubject: x\n\nBody";
        let f = first(t, "FW: x").unwrap();
        assert!(f.sender.is_none());
        assert_eq!(f.sender_name.as_deref(), Some("John Doe"));
    }
}
