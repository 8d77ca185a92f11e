//! Case references in subjects (`[KL-2026-0042]`, also bare `KL-2026-0042`) and the
//! reply/forward prefixes mail clients put before a subject in many languages.

/// The kind of a subject prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Reply,
    Forward,
}

/// Reply prefixes (lower-case, without colon).
const REPLY: &[&str] = &[
    "re", "antw", "aw", "sv", "odp", "ynt", "vá", "vs.", "r", "rif", "res", "resp", "otv", "отв",
    "atb", "απ", "ha",
];
/// Forward prefixes. "vs" is Danish/Norwegian for forwarded (Finnish uses it for replies,
/// rarer here).
const FORWARD: &[&str] = &[
    "fwd",
    "fw",
    "doorst",
    "wg",
    "tr",
    "trs",
    "rv",
    "i",
    "enc",
    "pd",
    "vl",
    "vs",
    "vb",
    "videresend",
    "redir.",
    "redir",
    "ilt",
    "fs",
    "pq",
    "továbbítás",
    "přeposlat",
    "doorgestuurd",
];

/// The first prefix of a subject and the rest after it.
fn split_prefix(subject: &str) -> Option<(Prefix, &str)> {
    let s = subject.trim_start();
    let colon = s.find(':')?;
    let head = &s[..colon];
    // "Re[2]", "RE " and "Re(3)" are the same prefix.
    let word = head
        .trim_end()
        .trim_end_matches(|c: char| c.is_ascii_digit() || "[]() ".contains(c))
        .to_lowercase()
        // Turkish "İLT" lower-cases with a combining dot.
        .replace('\u{307}', "");
    if word.is_empty() || word.chars().count() > 12 {
        return None;
    }
    let kind = if REPLY.contains(&word.as_str()) {
        Prefix::Reply
    } else if FORWARD.contains(&word.as_str()) {
        Prefix::Forward
    } else {
        return None;
    };
    Some((kind, &s[colon + 1..]))
}

/// The prefixes of a subject, outermost first.
pub fn prefixes(subject: &str) -> Vec<Prefix> {
    let mut out = Vec::new();
    let mut s = subject;
    while let Some((p, rest)) = split_prefix(s) {
        out.push(p);
        s = rest;
    }
    out
}

/// The subject without its reply/forward prefixes.
pub fn strip_prefixes(subject: &str) -> &str {
    let mut s = subject;
    while let Some((_, rest)) = split_prefix(s) {
        s = rest;
    }
    s.trim()
}

/// Whether the subject says "forwarded" (its outermost prefix is a forward prefix).
pub fn is_forward_subject(subject: &str) -> bool {
    prefixes(subject).first() == Some(&Prefix::Forward)
}

/// Whether the subject says "reply" and not "forwarded".
pub fn is_reply_subject(subject: &str) -> bool {
    let p = prefixes(subject);
    p.first() == Some(&Prefix::Reply)
}

/// Case references in a subject, upper-cased, in order, without duplicates. The form is
/// `KL-<year>-<sequence of 4 or more digits>`, in brackets or bare, not glued to other
/// letters or digits.
pub fn in_subject(subject: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let bytes = subject.as_bytes();
    // Where the next reference may start: not inside the one found before.
    let mut next = 0;
    // Every reference has a `-` after its `KL`: a text is read for those at memchr's pace.
    for dash in memchr::memchr_iter(b'-', bytes) {
        let Some(i) = dash.checked_sub(2).filter(|&i| i >= next) else {
            continue;
        };
        let is_kl =
            bytes[i].eq_ignore_ascii_case(&b'k') && bytes[i + 1].eq_ignore_ascii_case(&b'l');
        let boundary_before = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if is_kl
            && boundary_before
            && let Some((reference, len)) = reference_at(&bytes[i..])
        {
            if !out.contains(&reference) {
                out.push(reference);
            }
            next = i + len;
        }
    }
    out
}

/// How much of a text is searched for references: a party's mail names its case near
/// the top (or quotes our acknowledgement, which names it in its first lines).
const TEXT_SCAN_CHARS: usize = 20_000;

/// Case references in a mail's text, upper-cased, in order, without duplicates.
pub fn in_text(text: &str) -> Vec<String> {
    let end = text
        .char_indices()
        .nth(TEXT_SCAN_CHARS)
        .map_or(text.len(), |(i, _)| i);
    in_subject(&text[..end])
}

/// `KL-YYYY-NNNN…` at the start of `b`: the reference and its length.
fn reference_at(b: &[u8]) -> Option<(String, usize)> {
    let year = b.get(3..7)?;
    if !year.iter().all(u8::is_ascii_digit) || b.get(7) != Some(&b'-') {
        return None;
    }
    let seq_len = b[8..].iter().take_while(|c| c.is_ascii_digit()).count();
    if seq_len < 4 {
        return None;
    }
    let end = 8 + seq_len;
    if b.get(end).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let text = std::str::from_utf8(&b[..end]).ok()?;
    Some((text.to_ascii_uppercase(), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_in_subjects() {
        assert_eq!(
            in_subject("Re: [KL-2026-0042] Uw klacht"),
            vec!["KL-2026-0042"]
        );
        assert_eq!(in_subject("Antw: kl-2026-0042"), vec!["KL-2026-0042"]);
        assert_eq!(
            in_subject("AW: KL-2026-0042 en KL-2026-12345"),
            vec!["KL-2026-0042", "KL-2026-12345"]
        );
        assert!(in_subject("XKL-2026-0042").is_empty());
        assert!(in_subject("KL-2026-042").is_empty());
        assert!(in_subject("KL-2026-0042a").is_empty());
        assert!(in_subject("KL-26-0042").is_empty());
        assert!(in_subject("").is_empty());
        assert_eq!(in_subject("Fwd:[KL-2026-0001]"), vec!["KL-2026-0001"]);
        // At the very start, after a dash, twice, and dashes that are no reference.
        assert_eq!(in_subject("KL-2026-0001"), vec!["KL-2026-0001"]);
        assert_eq!(
            in_subject("-KL-2026-0003 kl-2026-0003 a-b-KL-KL-2026-0004 L-2026-0005"),
            vec!["KL-2026-0003", "KL-2026-0004"]
        );
        assert_eq!(
            in_text("Over mijn klacht (kenmerk KL-2026-0007): nog geen antwoord."),
            vec!["KL-2026-0007"]
        );
    }

    #[test]
    fn prefixes_in_many_languages() {
        assert_eq!(strip_prefixes("Re: Fwd: Doorst: Klacht"), "Klacht");
        assert_eq!(strip_prefixes("RE[2]: AW: Klacht"), "Klacht");
        assert_eq!(strip_prefixes("Klacht: de factuur"), "Klacht: de factuur");
        assert!(is_forward_subject("FW: x"));
        assert!(is_forward_subject("Doorst: x"));
        assert!(is_forward_subject("WG: x"));
        assert!(is_forward_subject("İLT: x"));
        assert!(!is_forward_subject("Re: FW: x"));
        assert!(is_reply_subject("Re: FW: x"));
        assert!(is_reply_subject("Antw: x"));
        assert!(!is_reply_subject("x"));
    }
}
