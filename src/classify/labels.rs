//! Header labels as mail clients write them above a forwarded or quoted message, in the
//! languages the firm's staff and clients use (Dutch and English first, and the others
//! Outlook, Gmail, Apple Mail, Thunderbird and Yahoo translate them into).
//!
//! Used by [`super::forward`] (the forwarded message's headers) and [`super::quote`]
//! (where the quoted history of a reply starts).

/// A header field of a forwarded or quoted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    From,
    Date,
    To,
    Cc,
    Subject,
    ReplyTo,
}

/// Labels per field, lower-case, without the colon. Longer labels first where one is a
/// prefix of another ("de la" before "de").
const LABELS: &[(Field, &[&str])] = &[
    (
        Field::From,
        &[
            "from",
            "van",
            "afzender",
            "von",
            "absender",
            "de la",
            "de",
            "da",
            "fra",
            "från",
            "od",
            "от",
            "від кого",
            "від",
            "отправитель",
            "kimden",
            "gönderen",
            "lähettäjä",
            "feladó",
            "šalje",
            "mittente",
            "nadawca",
            "expéditeur",
            "remitente",
            "odesílatel",
            "sender",
        ],
    ),
    (
        Field::Date,
        &[
            "date",
            "datum",
            "sent",
            "verzonden",
            "verstuurd",
            "gesendet",
            "envoyé",
            "enviado",
            "enviada",
            "inviato",
            "data",
            "dato",
            "päivämäärä",
            "lähetetty",
            "dátum",
            "tarih",
            "дата",
            "skickat",
            "sendt",
            "wysłano",
            "trimis",
            "отправлено",
            "gönderilen",
            "gönderildi",
            "dată",
            "poslano",
            "odesláno",
            "odoslané",
            "elküldve",
            "fecha",
        ],
    ),
    (
        Field::To,
        &[
            "to",
            "aan",
            "an",
            "à",
            "a",
            "para",
            "til",
            "till",
            "do",
            "komu",
            "кому",
            "kime",
            "vastaanottaja",
            "címzett",
            "prima",
            "pre",
            "adresat",
            "către",
            "destinataire",
            "destinatario",
            "empfänger",
            "destinatário",
        ],
    ),
    (
        Field::Cc,
        &[
            "cc",
            "bcc",
            "kopie",
            "kopia",
            "kopi",
            "kopio",
            "копия",
            "копія",
            "bilgi",
            "másolat",
            "dw",
            "kópia",
            "cópia",
            "kópie",
            "copie",
        ],
    ),
    (
        Field::Subject,
        &[
            "subject",
            "onderwerp",
            "betreft",
            "betreff",
            "objet",
            "asunto",
            "oggetto",
            "assunto",
            "emne",
            "ämne",
            "temat",
            "předmět",
            "predmet",
            "тема",
            "konu",
            "aihe",
            "tárgy",
            "subiect",
            "sujet",
        ],
    ),
    (
        Field::ReplyTo,
        &[
            "reply-to",
            "antwoord aan",
            "antwort an",
            "répondre à",
            "responder a",
        ],
    ),
];

/// Strip what clients put before a header line: quote markers (`>`), indentation, bold
/// markers (`*From:*`), a byte-order mark, non-breaking spaces.
pub fn clean_line(line: &str) -> &str {
    let mut s = line.trim_start_matches(['\u{feff}', ' ', '\t', '\u{a0}']);
    loop {
        let t = s.trim_start_matches(['>', ' ', '\t', '\u{a0}']);
        if t.len() == s.len() {
            break;
        }
        s = t;
    }
    s.trim_start_matches('*').trim_end()
}

/// Strip only quote markers and the space after them.
pub fn unquote(line: &str) -> &str {
    let mut s = line;
    loop {
        let t = s.trim_start_matches([' ', '\t']);
        match t.strip_prefix('>') {
            Some(rest) => s = rest.strip_prefix(' ').unwrap_or(rest),
            None => return if s.len() == line.len() { line } else { s },
        }
    }
}

/// Whether a line is quoted (starts with `>`).
pub fn is_quoted(line: &str) -> bool {
    line.trim_start_matches([' ', '\t', '\u{feff}'])
        .starts_with('>')
}

/// `Label: value` → the field and the value, if the label is a known one. Accepts the
/// French space before the colon, tabs after it, and `*bold*` labels.
pub fn header_line(line: &str) -> Option<(Field, &str)> {
    let s = clean_line(line);
    let colon = s.find(':')?;
    // A label is short; "http://..." and sentences are not labels.
    if colon == 0 || colon > 24 {
        return None;
    }
    let label = s[..colon].trim_end_matches(['*', ' ', '\u{a0}']).trim();
    if label.is_empty() {
        return None;
    }
    let lower = label.to_lowercase();
    let field = field_of(&lower)?;
    let value = s[colon + 1..]
        .trim_start_matches(['*', ' ', '\t', '\u{a0}'])
        .trim_end();
    Some((field, value))
}

/// The field a (lower-case) label names.
pub fn field_of(label: &str) -> Option<Field> {
    LABELS
        .iter()
        .find(|(_, labels)| labels.contains(&label))
        .map(|(f, _)| *f)
}

/// Every known label of two characters or more, with its field, for splitting Yahoo's
/// one-line header blocks ("Van: A <a@b>Aan: c@d").
pub fn splittable_labels() -> impl Iterator<Item = &'static str> {
    LABELS
        .iter()
        .flat_map(|(_, l)| l.iter().copied())
        .filter(|l| l.chars().count() >= 2 && !l.contains(' '))
}

/// A run of header lines starting at `start`: the fields found and the index of the first
/// line after the block. Lines that are no header but continue a long value (a wrapped
/// address list) are allowed between header lines.
pub fn header_block(lines: &[&str], start: usize) -> Option<(Vec<(Field, String)>, usize)> {
    let mut fields: Vec<(Field, String)> = Vec::new();
    let mut i = start;
    while i < lines.len() {
        match header_line(lines[i]) {
            Some((f, v)) => {
                fields.push((f, v.to_string()));
                i += 1;
            }
            None => {
                // A wrapped value: a non-empty line, followed by another header line.
                let next_is_header = lines.get(i + 1).is_some_and(|l| header_line(l).is_some());
                if !fields.is_empty()
                    && !clean_line(lines[i]).is_empty()
                    && next_is_header
                    && fields.len() < 6
                {
                    if let Some(last) = fields.last_mut() {
                        last.1.push(' ');
                        last.1.push_str(clean_line(lines[i]));
                    }
                    i += 1;
                } else {
                    break;
                }
            }
        }
    }
    if fields.is_empty() {
        None
    } else {
        Some((fields, i))
    }
}

/// How many distinct fields a block has, and whether one is From.
pub fn block_shape(fields: &[(Field, String)]) -> (usize, bool) {
    let mut seen: Vec<Field> = Vec::new();
    for (f, _) in fields {
        if !seen.contains(f) {
            seen.push(*f);
        }
    }
    (seen.len(), seen.contains(&Field::From))
}

/// A separator line of dashes around words, e.g. `---------- Forwarded message ---------`,
/// `-----Oorspronkelijk bericht-----`, `-------- Doorgestuurd bericht --------`: the words.
pub fn dash_separator(line: &str) -> Option<&str> {
    let s = clean_line(line).trim();
    let inner = s.strip_prefix("--")?.trim_start_matches('-');
    let end = inner.trim_end();
    let inner = end.strip_suffix("--")?.trim_end_matches('-').trim();
    let words = inner.trim_matches([' ', '-']);
    if words.chars().any(char::is_alphabetic) && words.chars().count() <= 60 {
        Some(words)
    } else {
        None
    }
}

/// Whether separator words say "original message" (a quote in a reply) rather than
/// "forwarded message".
pub fn is_original_message_words(words: &str) -> bool {
    let w = words.to_lowercase();
    [
        "original",
        "oorspronkelijk",
        "origineel",
        "ursprüngliche",
        "d'origine",
        "originale",
        "oprindelig",
        "opprinnelig",
        "ursprungligt",
        "alkuperäinen",
        "oryginalna",
        "původní",
        "исходное",
    ]
    .iter()
    .any(|k| w.contains(k))
}

/// Outlook's rule above a quoted or forwarded header block: a line of underscores.
pub fn is_underscore_rule(line: &str) -> bool {
    let s = clean_line(line).trim();
    s.len() >= 10 && s.chars().all(|c| c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_in_several_languages() {
        assert_eq!(
            header_line("Van: Jan <jan@x.nl>"),
            Some((Field::From, "Jan <jan@x.nl>"))
        );
        assert_eq!(
            header_line("> Onderwerp: Klacht"),
            Some((Field::Subject, "Klacht"))
        );
        assert_eq!(
            header_line("*From:* John Doe"),
            Some((Field::From, "John Doe"))
        );
        assert_eq!(header_line("De : Jean"), Some((Field::From, "Jean")));
        assert_eq!(
            header_line("Subject: \tHello"),
            Some((Field::Subject, "Hello"))
        );
        assert_eq!(header_line("Let op: dit is geen kop"), None);
        assert_eq!(header_line("https://example.com/x"), None);
    }

    #[test]
    fn separators() {
        assert_eq!(
            dash_separator("---------- Forwarded message ---------"),
            Some("Forwarded message")
        );
        assert_eq!(
            dash_separator("-----Oorspronkelijk bericht-----"),
            Some("Oorspronkelijk bericht")
        );
        assert_eq!(dash_separator("----"), None);
        assert_eq!(dash_separator("-- "), None);
        assert!(is_original_message_words("Original Message"));
        assert!(!is_original_message_words("Doorgestuurd bericht"));
        assert!(is_underscore_rule("________________________________"));
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote("> > hallo"), "hallo");
        assert_eq!(unquote(">hallo"), "hallo");
        assert_eq!(unquote("hallo > x"), "hallo > x");
    }
}
