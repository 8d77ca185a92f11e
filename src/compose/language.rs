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

/// The language of a complaint, by the heuristic in the module docs.
pub fn detect(subject: &str, text: &str) -> Lang {
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('>'))
        .collect::<Vec<_>>()
        .join("\n");
    let body = match body.char_indices().nth(4000) {
        Some((end, _)) => &body[..end],
        None => &body,
    };
    let (mut en, mut nl) = (0usize, 0usize);
    let mut lower = String::new();
    for word in subject
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .chain(body.split(|c: char| !c.is_alphanumeric() && c != '\''))
    {
        // Lowercasing never shortens a word in characters: a longer one is no function word.
        if word.is_empty() || word.chars().nth(LONGEST).is_some() {
            continue;
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
            continue;
        }
        if let Some(&(english, dutch)) = FUNCTION_WORDS.get(lower.as_str()) {
            en += usize::from(english);
            nl += usize::from(dutch);
        }
    }
    if en >= 3 && en >= 2 * nl {
        Lang::En
    } else {
        Lang::Nl
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
