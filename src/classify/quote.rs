//! The new part of a reply: the text above the quoted history, without the signature.
//!
//! The full text is always stored; this is for display in the case's correspondence.
//!
//! Where the quoted history starts (the first of these):
//! - an attribution line, possibly wrapped over up to three lines, ending in a colon and
//!   naming a date or an address: "On … wrote:", "Op … schreef …:", "Op … heeft … geschreven:",
//!   "Am … schrieb …:", "Le … a écrit :", "El … escribió:", "Il … ha scritto:", "… kirjoitti:",
//!   "W dniu … napisał:", "… skrev:", …;
//! - an Outlook header block ("From:/Van: …" with "Sent:/Verzonden:", "To:/Aan:",
//!   "Subject:/Onderwerp:" …), also after a rule of underscores;
//! - a separator such as "-----Original Message-----", "-----Oorspronkelijk bericht-----",
//!   "---------- Forwarded message ---------";
//! - a line starting with ">".
//!
//! When the reply is written below or between the quotes (nothing above the first quote),
//! the new part is every line that is not quoted.
//!
//! The signature cut: a "-- " (or "--") delimiter line and everything below it, and a
//! mobile signature ("Sent from my iPhone", "Verzonden vanaf mijn iPhone",
//! "Von meinem iPhone gesendet", "Get Outlook for iOS", …) among the last lines.
//! A closing formula ("Met vriendelijke groet,", "Kind regards,") followed only by a few
//! short lines (name, title, company) starts the signature too. The signature is kept in
//! [`Split::signature`]; the full text is always stored.

use super::labels::{self, Field};

/// A reply cut in parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    /// The new text: no quoted history, no signature.
    pub new_part: String,
    /// The signature cut off the new text, if any.
    pub signature: Option<String>,
    /// The quoted history, if any.
    pub quoted: Option<String>,
}

impl Split {
    /// The new text with its signature (only the quoted history cut).
    pub fn without_quote(&self) -> String {
        match &self.signature {
            Some(sig) if self.new_part.is_empty() => sig.clone(),
            Some(sig) => format!("{}\n\n{}", self.new_part, sig),
            None => self.new_part.clone(),
        }
    }
}

/// Verbs of attribution lines, lower-case.
const WROTE: &[&str] = &[
    "wrote",
    "writes",
    "schreef",
    "geschreven",
    "schrieb",
    "geschrieben",
    "écrit",
    "escribió",
    "escreveu",
    "scritto",
    "skrev",
    "skriver",
    "kirjoitti",
    "napisał",
    "napisała",
    "napisal",
    "napsal",
    "napísal",
    "написал",
    "написала",
    "пишет",
    "написав",
    "написала",
    "yazdı",
    "írta",
    "a scris",
    "pisze",
];

/// Mobile and client signatures, lower-case line starts.
const MOBILE: &[&str] = &[
    "sent from my ",
    "sent from outlook",
    "sent from mail for windows",
    "sent from yahoo mail",
    "sent from samsung",
    "sent from the all new aol",
    "sent via ",
    "get outlook for ",
    "verzonden vanaf mijn ",
    "verzonden vanaf ",
    "verzonden met ",
    "verstuurd vanaf mijn ",
    "verstuurd vanaf ",
    "verstuurd met ",
    "outlook voor ios",
    "outlook voor android",
    "von meinem ",
    "gesendet von meinem ",
    "gesendet von outlook",
    "envoyé à partir de ",
    "verzonden vanuit ",
    "verstuurd vanuit ",
    "gesendet mit ",
    "envoyé de mon ",
    "envoyé depuis ",
    "enviado desde mi ",
    "enviado do meu ",
    "inviato da ",
    "skickat från min ",
    "sendt fra min ",
    "wysłane z ",
    "odesláno z ",
    "отправлено с ",
];

/// Closing formulas that start a signature when only a few short lines (name, title,
/// company) follow them (lower-case, without trailing punctuation).
const CLOSINGS: &[&str] = &[
    "regards",
    "best regards",
    "kind regards",
    "warm regards",
    "with kind regards",
    "sincerely",
    "yours sincerely",
    "met vriendelijke groet",
    "met vriendelijke groeten",
    "vriendelijke groet",
    "vriendelijke groeten",
    "hartelijke groet",
    "hartelijke groeten",
    "met hartelijke groet",
    "groet",
    "groeten",
    "mvg",
    "mit freundlichen grüßen",
    "freundliche grüße",
    "viele grüße",
    "cordialement",
    "bien à vous",
];

/// Split a reply's text.
pub fn split(text: &str) -> Split {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalized.split('\n').collect();

    let (mut body, quoted): (Vec<&str>, Option<String>) = match quote_start(&lines) {
        Some(q) => {
            let q = extend_upwards(&lines, q);
            let above: Vec<&str> = lines[..q].to_vec();
            let quoted = join_trimmed(&lines[q..]);
            if is_blank(&above) {
                // Written below or between the quotes: keep what is not quoted.
                (unquoted_lines(&lines), Some(quoted))
            } else {
                (above, Some(quoted))
            }
        }
        None => (lines.clone(), None),
    };

    let signature = match signature_start(&body) {
        Some(s) => {
            let sig = join_trimmed(&body[s..]);
            body.truncate(s);
            Some(sig).filter(|s| !s.is_empty())
        }
        None => None,
    };
    Split {
        new_part: join_trimmed(&body),
        signature,
        quoted: quoted.filter(|q| !q.is_empty()),
    }
}

/// The new part only.
pub fn new_part(text: &str) -> String {
    split(text).new_part
}

fn is_blank(lines: &[&str]) -> bool {
    lines.iter().all(|l| labels::clean_line(l).is_empty())
}

fn join_trimmed(lines: &[&str]) -> String {
    let mut v: Vec<&str> = lines.iter().map(|l| l.trim_end()).collect();
    while v.first().is_some_and(|l| l.trim().is_empty()) {
        v.remove(0);
    }
    while v.last().is_some_and(|l| l.trim().is_empty()) {
        v.pop();
    }
    v.join("\n").trim_start_matches('\u{feff}').to_string()
}

/// Lines that are neither quoted nor an attribution line.
fn unquoted_lines<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if labels::is_quoted(lines[i]) {
            i += 1;
            continue;
        }
        if let Some(n) = attribution_at(lines, i) {
            i += n;
            continue;
        }
        out.push(lines[i]);
        i += 1;
    }
    out
}

/// The index of the first line of the quoted history.
pub fn quote_start(lines: &[&str]) -> Option<usize> {
    for i in 0..lines.len() {
        let line = lines[i];
        let clean = labels::clean_line(line);
        if clean.is_empty() {
            continue;
        }
        if labels::is_quoted(line) {
            return Some(i);
        }
        if attribution_at(lines, i).is_some() {
            return Some(i);
        }
        if let Some(words) = labels::dash_separator(line)
            && (is_message_separator(words) || next_is_header(lines, i))
        {
            return Some(i);
        }
        if labels::is_underscore_rule(line) && next_is_header(lines, i) {
            return Some(i);
        }
        if header_block_at(lines, i) {
            return Some(i);
        }
    }
    None
}

/// Move the start of the quoted history up over what belongs to it: rules of `=`, `-`,
/// `_` or `*`, and a short line with a date above a header block ("Message du : 12/12/2016
/// 13:20").
fn extend_upwards(lines: &[&str], q: usize) -> usize {
    let mut q = q;
    for _ in 0..3 {
        let Some(prev) = (0..q).rev().find(|&j| !lines[j].trim().is_empty()) else {
            break;
        };
        let t = lines[prev].trim();
        let rule = t.chars().count() >= 3 && t.chars().all(|c| "=-_*~".contains(c));
        let dated = t.chars().count() <= 60
            && t.contains(':')
            && t.chars().filter(char::is_ascii_digit).count() >= 4
            && labels::header_line(lines[q]).is_some();
        if rule || dated {
            q = prev;
        } else {
            break;
        }
    }
    q
}

fn is_message_separator(words: &str) -> bool {
    let w = words.to_lowercase();
    labels::is_original_message_words(words)
        || [
            "forward",
            "doorgestuurd",
            "weitergeleitet",
            "transféré",
            "reenviado",
            "inoltrato",
            "encaminhada",
            "reply message",
            "antwoord",
        ]
        .iter()
        .any(|k| w.contains(k))
}

/// Whether a header line follows within the next two non-empty lines.
fn next_is_header(lines: &[&str], i: usize) -> bool {
    lines[i + 1..]
        .iter()
        .filter(|l| !labels::clean_line(l).is_empty())
        .take(2)
        .any(|l| labels::header_line(l).is_some())
}

/// An Outlook-style header block (From plus at least one of Sent/Date, To, Subject)
/// starting at `i`.
fn header_block_at(lines: &[&str], i: usize) -> bool {
    let Some((f, _)) = labels::header_line(lines[i]) else {
        return false;
    };
    if !matches!(f, Field::From | Field::Date | Field::Subject) {
        return false;
    }
    match labels::header_block(lines, i) {
        Some((fields, _)) => {
            let (distinct, has_from) = labels::block_shape(&fields);
            has_from && distinct >= 2
        }
        None => false,
    }
}

/// An attribution line ("On … wrote:") at `i`, possibly wrapped over up to three lines:
/// how many lines it takes.
pub fn attribution_at(lines: &[&str], i: usize) -> Option<usize> {
    let first = labels::clean_line(lines[i]).trim();
    if first.is_empty() || first.len() > 400 {
        return None;
    }
    if is_attribution(first) {
        return Some(1);
    }
    // Wrapped: only when the first line already looks like the start of one (a date or
    // an address) and does not end a sentence.
    if !first.chars().any(|c| c.is_ascii_digit() || c == '@') || first.ends_with(['.', '!', '?']) {
        return None;
    }
    let mut joined = first.to_string();
    for n in 1..3 {
        let raw_next = lines.get(i + n)?.trim();
        // Gmail may wrap the closing ">:" of the address onto its own line.
        let next = if raw_next == ">:" {
            raw_next
        } else {
            labels::clean_line(raw_next).trim()
        };
        if next.is_empty() || (labels::is_quoted(raw_next) && next != ">:") {
            return None;
        }
        joined.push(' ');
        joined.push_str(next);
        if is_attribution(&joined) {
            return Some(n + 1);
        }
    }
    None
}

/// Whether one (joined) line is an attribution line.
pub fn is_attribution(line: &str) -> bool {
    // Zoho writes "---- On … wrote ----".
    let s = line
        .trim()
        .trim_start_matches('\u{feff}')
        .trim_matches(|c: char| c == '-' || c.is_whitespace());
    if s.len() > 400 || s.is_empty() {
        return false;
    }
    let has_anchor = s.chars().any(|c| c.is_ascii_digit() || c == '@');
    let colon = s.ends_with(':');
    // Every form below ends in a colon or has a date or an address: most lines of a text
    // are neither, and are let go before anything is lowercased.
    if !colon && !has_anchor {
        return false;
    }
    let lower = s.to_lowercase();
    let body = lower.trim_end_matches([':', ' ']);
    let has_verb = WROTE.iter().any(|v| lower.contains(v));
    if colon && has_verb && has_anchor {
        return true;
    }
    // "On Wed, 14 Nov 2018 08:14:43 -0200 John Doe <john@doe.com> wrote" (no colon).
    if has_verb && has_anchor && WROTE.iter().any(|v| body.ends_with(v)) {
        return true;
    }
    // "30.09.2017, 18.30, "John Doe" <john@x.com>:" (no verb): a date and an address that
    // ends the line.
    if colon && s.chars().filter(char::is_ascii_digit).count() >= 4 {
        let before_colon = s.trim_end_matches(':').trim_end();
        if let Some((_, end, _)) = super::address::find_all(before_colon).into_iter().last() {
            let tail = before_colon[end..].trim();
            if tail.is_empty() || tail == ">" || tail == ")" || tail == ">)" {
                return true;
            }
        }
    }
    // "Jan de Vries wrote:" alone: a name and the verb, nothing else.
    if colon && has_verb {
        let words: Vec<&str> = body.split_whitespace().collect();
        let particles = ["de", "van", "der", "den", "von", "le", "la"];
        let original: Vec<&str> = s.trim_end_matches(':').split_whitespace().collect();
        return words.len() <= 6
            && WROTE.iter().any(|v| body.ends_with(v))
            && original[..original.len().saturating_sub(1)]
                .iter()
                .all(|w| w.starts_with(char::is_uppercase) || particles.contains(w));
    }
    false
}

/// Where the signature starts in the new text, if it has one.
fn signature_start(lines: &[&str]) -> Option<usize> {
    // Non-empty lines after each line, counted once (long texts stay linear).
    let mut after = vec![0usize; lines.len() + 1];
    for i in (0..lines.len()).rev() {
        after[i] = after[i + 1] + usize::from(!lines[i].trim().is_empty());
    }
    let non_empty_after = |i: usize| after[i + 1];
    let short_after = |i: usize, max: usize| {
        let after: Vec<&&str> = lines[i + 1..]
            .iter()
            .filter(|l| !l.trim().is_empty())
            .collect();
        after.len() <= max && after.iter().all(|l| l.trim().chars().count() <= 60)
    };
    for (i, line) in lines.iter().enumerate() {
        let has_text_above = lines[..i].iter().any(|l| !l.trim().is_empty());
        if !has_text_above {
            continue;
        }
        let t = line.trim();
        // "-- " (RFC 3676 §4.3), and the bare "--" many clients write.
        if *line == "-- " || t == "--" {
            return Some(i);
        }
        // A rule of underscores above a short footer (mailing lists).
        if t.chars().count() >= 2 && t.chars().all(|c| c == '_') && non_empty_after(i) <= 10 {
            return Some(i);
        }
        let lower = t.to_lowercase();
        if lower.chars().count() <= 80
            && MOBILE.iter().any(|m| lower.starts_with(m))
            && non_empty_after(i) <= 3
        {
            return Some(i);
        }
        let closing = lower.trim_end_matches([',', '!', '.', ' ']);
        if CLOSINGS.contains(&closing) && short_after(i, 4) {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_gmail_style() {
        let t = "Dank voor uw antwoord.\n\nOp do 19 nov. 2026 om 10:15 schreef Klachten <klachten@firma.nl>:\n\n> Geachte heer,\n> Wij hebben uw klacht ontvangen.\n";
        let s = split(t);
        assert_eq!(s.new_part, "Dank voor uw antwoord.");
        assert!(s.quoted.unwrap().contains("Wij hebben"));
    }

    #[test]
    fn cuts_outlook_dutch_header_block_and_mobile_signature() {
        let t = "Prima, dat is goed.\n\nVerzonden vanaf mijn iPhone\n\nVan: Klachten <klachten@firma.nl>\nVerzonden: donderdag 19 november 2026 10:15\nAan: Jan <jan@x.nl>\nOnderwerp: [KL-2026-0042] Ontvangstbevestiging\n\nGeachte heer,";
        let s = split(t);
        assert_eq!(s.new_part, "Prima, dat is goed.");
        assert_eq!(s.signature.as_deref(), Some("Verzonden vanaf mijn iPhone"));
    }

    #[test]
    fn wrapped_attribution_and_sig_delimiter() {
        let t = "I get it.\n\n-- \nJan\n\nOn Dec 16, 2011, at 12:47 PM, Corey\n<reply@x.com>\nwrote:\n\n> old";
        let s = split(t);
        assert_eq!(s.new_part, "I get it.");
        assert_eq!(s.signature.as_deref(), Some("--\nJan"));
        assert_eq!(s.without_quote(), "I get it.\n\n--\nJan");
    }

    #[test]
    fn original_message_separator() {
        let t = "Ja.\n\n-----Oorspronkelijk bericht-----\nVan: x\nOnderwerp: y\n\nz";
        assert_eq!(new_part(t), "Ja.");
    }

    #[test]
    fn inline_reply_keeps_unquoted_lines() {
        let t = "On Dec 15, 2024, at 2:00 PM, Jane <jane@example.com> wrote:\n> Option A?\n\nA is great.\n\n> B?\n\nB not.";
        assert_eq!(new_part(t), "A is great.\n\n\nB not.");
    }

    #[test]
    fn content_that_looks_like_quotes_is_kept() {
        let t = "On the surface, this looks like a quote header but it's not.\n\nOn average, fine.\n\nThe notification was sent from my iPhone app to all users.";
        assert_eq!(new_part(t), t);
        let t = "Hello,\n\nI'm writing you because of:\n-- first point\n-- second point\n\nThanks!";
        assert_eq!(new_part(t), t);
    }
}
