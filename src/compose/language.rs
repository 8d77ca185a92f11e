//! Which language a complainant is answered in.
//!
//! `[templates] language = "auto"` answers in English when the complaint is in English,
//! else in Dutch. The heuristic is deliberately simple and documented: count common
//! function words of each language ("the", "and", "you", … against "de", "het", "u", …) in
//! the subject and the first 4,000 characters of the text, skipping quoted lines (`>`).
//! English wins when it has at least three such words and at least twice as many as
//! Dutch; anything unclear is answered in Dutch, the firm's own language.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Serialize;

/// A language klachtpost writes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Lang {
    /// Dutch.
    Nl,
    /// English.
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Nl, Lang::En];

    /// The code used in template file names and stored on a case: `nl`, `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// `[templates] language`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LanguageSetting {
    Fixed(Lang),
    /// English for English complaints, Dutch otherwise.
    Auto,
}

impl LanguageSetting {
    pub fn parse(s: &str) -> Option<LanguageSetting> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(LanguageSetting::Auto),
            other => Lang::from_code(other).map(LanguageSetting::Fixed),
        }
    }

    /// The language to answer a complaint with this subject and text in.
    pub fn for_complaint(self, subject: &str, text: &str) -> Lang {
        match self {
            LanguageSetting::Fixed(lang) => lang,
            LanguageSetting::Auto => detect(subject, text),
        }
    }

    /// The language of mail to the firm's own people (partners, staff): the fixed
    /// language, or Dutch with `auto`.
    pub fn internal(self) -> Lang {
        match self {
            LanguageSetting::Fixed(lang) => lang,
            LanguageSetting::Auto => Lang::Nl,
        }
    }
}

const ENGLISH: &[&str] = &[
    "the",
    "and",
    "you",
    "your",
    "my",
    "i",
    "we",
    "our",
    "was",
    "were",
    "have",
    "has",
    "not",
    "with",
    "this",
    "that",
    "for",
    "of",
    "to",
    "please",
    "dear",
    "regards",
    "would",
    "about",
    "complaint",
    "it",
    "be",
    "are",
    "from",
    "been",
    "which",
    "they",
];
const DUTCH: &[&str] = &[
    "de", "het", "een", "en", "ik", "u", "uw", "je", "mijn", "wij", "we", "ons", "niet", "met",
    "dit", "dat", "voor", "van", "naar", "zijn", "heb", "hebben", "is", "geachte", "groet",
    "klacht", "graag", "over", "ook", "maar", "er", "bij", "op", "te",
];

/// The longest word in [`ENGLISH`] and [`DUTCH`], in characters.
const LONGEST: usize = 9;

/// Each listed word and the lists it is on (English, Dutch): one look-up per word of a
/// complaint instead of a walk through both lists (85 µs for a 5 KB complaint, ~6 % of
/// intake's time for it, issue 8).
type Words = HashMap<&'static str, (bool, bool), foldhash::fast::FixedState>;
static FUNCTION_WORDS: LazyLock<Words> = LazyLock::new(|| {
    let mut words = Words::default();
    for w in ENGLISH {
        words.entry(w).or_default().0 = true;
    }
    for w in DUTCH {
        words.entry(w).or_default().1 = true;
    }
    words
});

/// How many characters of a complaint's unquoted text are read.
const BODY_CHARS: usize = 4000;

/// The language of a complaint, by the heuristic in the module docs.
pub fn detect(subject: &str, text: &str) -> Lang {
    let (en, nl) = function_words(subject, text);
    if en >= 3 && en >= 2 * nl {
        Lang::En
    } else {
        Lang::Nl
    }
}

/// How many English and Dutch function words the subject and the text's first unquoted
/// characters hold.
fn function_words(subject: &str, text: &str) -> (usize, usize) {
    let (mut en, mut nl) = (0usize, 0usize);
    let mut lower = String::new();
    let mut count = |word: &str| {
        // Lowercasing never shortens a word in characters: a longer one is no function word.
        if word.len() > LONGEST && word.chars().nth(LONGEST).is_some() {
            return;
        }
        lower.clear();
        if word.is_ascii() {
            lower.push_str(word);
            lower.make_ascii_lowercase();
        } else {
            lower.extend(word.chars().flat_map(char::to_lowercase));
        }
        // "we" is both; counted for neither.
        if lower == "we" {
            return;
        }
        if let Some(&(english, dutch)) = FUNCTION_WORDS.get(lower.as_str()) {
            en += usize::from(english);
            nl += usize::from(dutch);
        }
    };
    for_each_word(subject, &mut count);
    // The first BODY_CHARS characters of the unquoted lines as if joined by line breaks,
    // read where they are: no copy of the text (a 5 KB complaint was copied twice, issue 8).
    let mut left = BODY_CHARS;
    let unquoted = text.lines().filter(|l| !l.trim_start().starts_with('>'));
    for (i, line) in unquoted.enumerate() {
        if i > 0 {
            // The line break before it.
            let Some(after) = left.checked_sub(1) else {
                break;
            };
            left = after;
        }
        match line.char_indices().nth(left) {
            Some((end, _)) => {
                for_each_word(&line[..end], &mut count);
                break;
            }
            None => {
                for_each_word(line, &mut count);
                left -= line.chars().count();
            }
        }
    }
    (en, nl)
}

/// Each word of `s`: a run of letters, digits and apostrophes, read byte by byte where it
/// is ASCII.
fn for_each_word(s: &str, mut f: impl FnMut(&str)) {
    let bytes = s.as_bytes();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let (in_word, len) = match bytes[i] {
            b if b.is_ascii() => (b.is_ascii_alphanumeric() || b == b'\'', 1),
            _ => {
                let c = s[i..].chars().next().unwrap_or(' ');
                (c.is_alphanumeric(), c.len_utf8())
            }
        };
        match (in_word, start) {
            (true, None) => start = Some(i),
            (false, Some(from)) => {
                f(&s[from..i]);
                start = None;
            }
            _ => {}
        }
        i += len;
    }
    if let Some(from) = start {
        f(&s[from..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_longer_than_any_listed_one_are_not_looked_up() {
        let longest = ENGLISH.iter().chain(DUTCH).map(|w| w.chars().count()).max();
        assert_eq!(longest, Some(LONGEST));
        assert_eq!(detect("", "THE AND YOU are WRITING"), Lang::En);
        assert_eq!(detect("", "Complaint, COMPLAINT, complaint"), Lang::En);
    }

    #[test]
    fn each_word_is_looked_up_in_the_lists_it_is_on() {
        for w in ENGLISH.iter().chain(DUTCH) {
            assert_eq!(
                FUNCTION_WORDS.get(w),
                Some(&(ENGLISH.contains(w), DUTCH.contains(w))),
                "{w}"
            );
        }
        assert_eq!(FUNCTION_WORDS.get("klachten"), None);
        // Lower-cased before the look-up, also beyond ASCII ("İ" lowercases to two chars).
        assert_eq!(detect("", "THE AND YOU İİ WERE"), Lang::En);
        assert_eq!(
            detect("", "The complaint: DE, HET, EEN, VAN, VOOR"),
            Lang::Nl
        );
    }

    #[test]
    fn english_complaints_are_answered_in_english() {
        assert_eq!(
            detect(
                "Complaint about the invoice",
                "Dear Sir, I am writing to complain about the invoice you sent me. It is wrong and I would like a correction. Regards, John"
            ),
            Lang::En
        );
    }

    #[test]
    fn dutch_and_unclear_complaints_are_answered_in_dutch() {
        assert_eq!(
            detect(
                "Klacht over de factuur",
                "Geachte heer, de factuur die ik van u kreeg klopt niet. Ik wil graag een correctie. Met vriendelijke groet, Jan"
            ),
            Lang::Nl
        );
        assert_eq!(detect("Factuur", "Zie bijlage."), Lang::Nl);
        assert_eq!(detect("", ""), Lang::Nl);
        // A Dutch complaint quoting an English mail stays Dutch.
        assert_eq!(
            detect(
                "Klacht",
                "Ik ben het niet eens met het antwoord van uw kantoor.\n> Dear client, the invoice is correct and we have checked it with the team for you."
            ),
            Lang::Nl
        );
    }

    /// The heuristic as it was first written (a joined copy of the unquoted lines, cut at
    /// 4,000 characters, split on every character that is no letter, digit or apostrophe).
    fn function_words_by_copy(subject: &str, text: &str) -> (usize, usize) {
        let body: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('>'))
            .collect::<Vec<_>>()
            .join("\n");
        let body = match body.char_indices().nth(BODY_CHARS) {
            Some((end, _)) => &body[..end],
            None => &body,
        };
        let (mut en, mut nl) = (0, 0);
        for word in subject
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .chain(body.split(|c: char| !c.is_alphanumeric() && c != '\''))
        {
            let lower = word.to_lowercase();
            if word.is_empty() || lower == "we" {
                continue;
            }
            en += usize::from(ENGLISH.contains(&lower.as_str()));
            nl += usize::from(DUTCH.contains(&lower.as_str()));
        }
        (en, nl)
    }

    #[test]
    fn reading_in_place_counts_as_the_joined_copy_did() {
        let english = "the and you to of it with this that for";
        let dutch = "de het een van voor met dit dat niet";
        // English words placed just before, at and after the 4,000th character, with quoted
        // lines, line breaks of both kinds and non-ASCII text around them.
        let mut cases = vec![];
        for pad in [3990usize, 3995, 3998, 3999, 4000, 4001, 4005] {
            for sep in ["\n", "\r\n"] {
                let filler = "é".repeat(pad);
                cases.push(format!("{filler}{sep}{english}{sep}{english}"));
                cases.push(format!(
                    "{dutch}{sep}> {english}{sep}{filler}{sep}{english}"
                ));
                cases.push(format!(
                    "x{sep}{}{sep}{english} {english}",
                    "a ".repeat(pad / 2)
                ));
            }
        }
        cases.push(format!("{english}\n{dutch}\n{dutch}"));
        // Many short lines: each line break counts as a character.
        for lines in [395usize, 398, 399, 400, 401] {
            for sep in ["\n", "\r\n"] {
                let filler = format!("{}{sep}", "é".repeat(9)).repeat(lines);
                cases.push(format!("{filler}{english} {english}{sep}{english}"));
                cases.push(format!("{filler}> {dutch}{sep}{english}{sep}{english}"));
            }
        }
        cases.push("ΣΟΦΟΣ THE AND YOU İİ WERE don't it's".to_string());
        for text in &cases {
            for subject in ["", "Complaint about the invoice", "Klacht over de factuur"] {
                assert_eq!(
                    function_words(subject, text),
                    function_words_by_copy(subject, text),
                    "{subject:?} {:?}",
                    &text[..text.len().min(60)]
                );
            }
        }
    }

    #[test]
    fn the_setting_parses() {
        assert_eq!(LanguageSetting::parse("auto"), Some(LanguageSetting::Auto));
        assert_eq!(
            LanguageSetting::parse("EN"),
            Some(LanguageSetting::Fixed(Lang::En))
        );
        assert_eq!(LanguageSetting::parse("de"), None);
        assert_eq!(LanguageSetting::Auto.internal(), Lang::Nl);
    }
}
