//! Who is responsible for a new case (pure).
//!
//! `[[assignment]]` rules are tried in order and the first that matches wins. A rule gives
//! `partner` (name or address) and one or more criteria; it matches when every criterion
//! it gives matches (a list matches when any of its items does):
//!
//! - `domains`: the complainant's address is in one of these domains;
//! - `addresses`: the complainant's address is one of these;
//! - `words`: one of these words or phrases is in the subject or the text (whole words,
//!   any case);
//! - `staff`: the staff member who forwarded the complaint or wrote the note.
//!
//! Without a matching rule: `firm.default_partner` when set, else `firm.assignment`:
//! `"least_open"` (default: the partner with the fewest open cases, ties in config order)
//! or `"round_robin"` (the partner after the one who got the last case).
//!
//! **A partner named in the complaint** (their full name or address in the subject, the
//! text or as complainant) is never assigned it: a rule or default naming them is passed
//! over and the next choice is taken from the other partners; the reason goes into the
//! case's history and the partner's notice ([`Reason`]). Only when every partner is named
//! does the strategy choose among all, and the case is flagged.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::config::Partner;

/// One `[[assignment]]` entry as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub partner: String,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub words: Vec<String>,
    #[serde(default)]
    pub staff: Vec<String>,
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Index into the firm's partners.
    pub partner: usize,
    pub domains: Vec<String>,
    pub addresses: Vec<String>,
    pub words: Vec<String>,
    pub staff: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    LeastOpen,
    RoundRobin,
}

/// The assignment config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub rules: Vec<Rule>,
    pub strategy: Strategy,
    /// Index into the firm's partners.
    pub default_partner: Option<usize>,
}

/// Find a partner by name or address (any case).
pub fn find_partner(partners: &[Partner], who: &str) -> Option<usize> {
    let w = who.trim().to_lowercase();
    partners
        .iter()
        .position(|p| p.email == w || p.name.to_lowercase() == w)
}

fn lower_list(v: Vec<String>, trim_at: bool) -> Vec<String> {
    v.into_iter()
        .map(|s| {
            let s = s.trim().to_lowercase();
            if trim_at {
                s.trim_start_matches('@').to_string()
            } else {
                s
            }
        })
        .filter(|s| !s.is_empty())
        .collect()
}

impl Rules {
    pub(crate) fn from_raw(
        raw: Vec<RawRule>,
        strategy: Option<&str>,
        default_partner: Option<&str>,
        partners: &[Partner],
        problems: &mut Vec<String>,
    ) -> Rules {
        let mut rules = Vec::new();
        for (i, r) in raw.into_iter().enumerate() {
            let Some(partner) = find_partner(partners, &r.partner) else {
                problems.push(format!(
                    "assignment[{i}].partner: {:?} is not one of firm.partners (name or email)",
                    r.partner
                ));
                continue;
            };
            let rule = Rule {
                partner,
                domains: lower_list(r.domains, true),
                addresses: lower_list(r.addresses, false),
                words: lower_list(r.words, false),
                staff: lower_list(r.staff, false),
            };
            if rule.domains.is_empty()
                && rule.addresses.is_empty()
                && rule.words.is_empty()
                && rule.staff.is_empty()
            {
                problems.push(format!(
                    "assignment[{i}]: give at least one of domains, addresses, words, staff"
                ));
                continue;
            }
            rules.push(rule);
        }
        let strategy = match strategy.map(str::trim) {
            None | Some("least_open") => Strategy::LeastOpen,
            Some("round_robin") => Strategy::RoundRobin,
            Some(other) => {
                problems.push(format!(
                    "firm.assignment: {other:?} is not one of \"least_open\", \"round_robin\""
                ));
                Strategy::LeastOpen
            }
        };
        let default_partner = default_partner.and_then(|d| {
            let found = find_partner(partners, d);
            if found.is_none() {
                problems.push(format!(
                    "firm.default_partner: {d:?} is not one of firm.partners (name or email)"
                ));
            }
            found
        });
        Rules {
            rules,
            strategy,
            default_partner,
        }
    }
}

/// What the rules look at in a new complaint.
#[derive(Debug, Clone, Copy, Default)]
pub struct Complaint<'a> {
    pub complainant_address: Option<&'a str>,
    pub complainant_name: Option<&'a str>,
    pub subject: &'a str,
    pub text: &'a str,
    /// The staff member who forwarded it or wrote the note.
    pub staff: Option<&'a str>,
}

/// What the strategies need from the register.
#[derive(Debug, Clone, Default)]
pub struct Load {
    /// Open cases per partner address.
    pub open: HashMap<String, i64>,
    /// The partner address of the most recently opened case.
    pub last_assigned: Option<String>,
}

/// How the partner was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// The `[[assignment]]` rule of this number (1-based) matched.
    Rule(usize),
    /// `firm.default_partner`.
    DefaultPartner,
    /// `firm.assignment = "least_open"`.
    LeastOpen,
    /// `firm.assignment = "round_robin"`.
    RoundRobin,
}

/// A partner a rule or the default would have chosen, passed over because the complaint
/// names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedOver {
    pub name: String,
    /// The rule that chose them (1-based); `None`: they are the default partner.
    pub rule: Option<usize>,
}

/// Why this partner: how they were chosen, and who was passed over on the way (in order).
///
/// Kept as data rather than a sentence so that each reader words it: the case's history
/// takes [`Reason::why`] (English, as it always was: it is hash-chained), the partner's
/// notice gets it serialized as the template variable `assigned` and says it in the
/// mail's language: `how` (`"rule"`, `"default"`, `"least_open"`, `"round_robin"`),
/// `rule` (the rule's number when `how` is `"rule"`, else none) and `passed` (each with
/// `name`, `rule`: the rule's number or none, `default`: passed over as the default
/// partner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub how: How,
    pub passed: Vec<PassedOver>,
}

impl Reason {
    /// One line for the case's history (no names of the complainant, no text).
    pub fn why(&self) -> String {
        let mut why = match self.how {
            How::Rule(n) => format!("assignment rule {n} matched"),
            How::DefaultPartner => "the default partner".to_string(),
            How::LeastOpen => "the partner with the fewest open cases".to_string(),
            How::RoundRobin => "round robin".to_string(),
        };
        for p in &self.passed {
            let what = match p.rule {
                Some(n) => format!("rule {n}"),
                None => "default partner".to_string(),
            };
            why.push_str(&format!(
                "; {} ({what}) is named in the complaint and is not assigned it",
                p.name
            ));
        }
        why
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Every key is always there (none where it does not apply): templates render with
        // strict undefined, so `{% if p.rule %}` must not fail for a default partner.
        #[derive(Serialize)]
        struct Passed<'a> {
            name: &'a str,
            rule: Option<usize>,
            default: bool,
        }
        #[derive(Serialize)]
        struct Assigned<'a> {
            how: &'static str,
            rule: Option<usize>,
            passed: Vec<Passed<'a>>,
        }
        let (how, rule) = match self.how {
            How::Rule(n) => ("rule", Some(n)),
            How::DefaultPartner => ("default", None),
            How::LeastOpen => ("least_open", None),
            How::RoundRobin => ("round_robin", None),
        };
        Assigned {
            how,
            rule,
            passed: self
                .passed
                .iter()
                .map(|p| Passed {
                    name: &p.name,
                    rule: p.rule,
                    default: p.rule.is_none(),
                })
                .collect(),
        }
        .serialize(s)
    }
}

/// The choice and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Index into the firm's partners.
    pub partner: usize,
    pub reason: Reason,
    /// Every partner was named in the complaint: a partner must look.
    pub flag: Option<String>,
}

/// Whether `needle` occurs in `hay` (both lower-case) as whole words.
fn contains_words(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
    // One searcher for every look (a name of one letter is found all over a complaint).
    let finder = memchr::memmem::Finder::new(needle);
    let mut start = 0;
    while let Some(pos) = finder.find(&hay.as_bytes()[start..]) {
        let at = start + pos;
        let end = at + needle.len();
        if boundary(hay[..at].chars().next_back()) && boundary(hay[end..].chars().next()) {
            return true;
        }
        start = at + needle.chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// The complaint as [`named_in`] searches it: subject, text, complainant, lower-cased, with
/// runs of white space as one space. Made once per complaint, not once per partner.
fn searchable(c: &Complaint<'_>) -> String {
    let parts = [
        c.subject,
        c.text,
        c.complainant_name.unwrap_or_default(),
        c.complainant_address.unwrap_or_default(),
    ];
    // Word by word into one string (no lower-cased copy, no list of words): a word keeps
    // its context for lower-casing (a Greek final sigma), and white space never joins two.
    let mut hay = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for word in parts.iter().flat_map(|p| p.split_whitespace()) {
        if !hay.is_empty() {
            hay.push(' ');
        }
        if word.is_ascii() {
            let from = hay.len();
            hay.push_str(word);
            hay[from..].make_ascii_lowercase();
        } else {
            hay.push_str(&word.to_lowercase());
        }
    }
    hay
}

/// Whether the complaint (`hay`, [`searchable`]) names this partner (full name or
/// address).
fn named_in(hay: &str, p: &Partner) -> bool {
    let name = p.name.to_lowercase();
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    contains_words(hay, &p.email) || contains_words(hay, &name)
}

fn rule_matches(r: &Rule, c: &Complaint<'_>) -> bool {
    let address = c.complainant_address.map(str::to_lowercase);
    let domain = address
        .as_deref()
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.to_string());
    let text = format!("{}\n{}", c.subject, c.text).to_lowercase();
    let staff = c.staff.map(str::to_lowercase);
    (r.domains.is_empty() || domain.as_ref().is_some_and(|d| r.domains.contains(d)))
        && (r.addresses.is_empty() || address.as_ref().is_some_and(|a| r.addresses.contains(a)))
        && (r.words.is_empty() || r.words.iter().any(|w| contains_words(&text, w)))
        && (r.staff.is_empty() || staff.as_ref().is_some_and(|s| r.staff.contains(s)))
}

/// Choose the responsible partner. `partners` is never empty (the config refuses that).
pub fn choose(rules: &Rules, partners: &[Partner], c: &Complaint<'_>, load: &Load) -> Choice {
    let hay = searchable(c);
    let named: Vec<bool> = partners.iter().map(|p| named_in(&hay, p)).collect();
    let all_named = named.iter().all(|n| *n);
    let allowed = |i: usize| all_named || !named[i];
    let mut passed: Vec<PassedOver> = Vec::new();
    let note_passed = |passed: &mut Vec<PassedOver>, i: usize, rule: Option<usize>| {
        passed.push(PassedOver {
            name: partners[i].name.clone(),
            rule,
        });
    };
    let finish = |partner: usize, how: How, passed: Vec<PassedOver>| Choice {
        partner,
        reason: Reason { how, passed },
        flag: all_named.then(|| {
            "every partner is named in the complaint: the partners must decide who handles it"
                .to_string()
        }),
    };
    for (i, r) in rules.rules.iter().enumerate() {
        if rule_matches(r, c) {
            if allowed(r.partner) {
                return finish(r.partner, How::Rule(i + 1), passed);
            }
            note_passed(&mut passed, r.partner, Some(i + 1));
        }
    }
    if let Some(d) = rules.default_partner {
        if allowed(d) {
            return finish(d, How::DefaultPartner, passed);
        }
        note_passed(&mut passed, d, None);
    }
    let candidates: Vec<usize> = (0..partners.len()).filter(|i| allowed(*i)).collect();
    match rules.strategy {
        Strategy::LeastOpen => {
            let mut best = candidates[0];
            let open = |i: usize| load.open.get(&partners[i].email).copied().unwrap_or(0);
            for &i in &candidates {
                if open(i) < open(best) {
                    best = i;
                }
            }
            finish(best, How::LeastOpen, passed)
        }
        Strategy::RoundRobin => {
            let last = load
                .last_assigned
                .as_deref()
                .and_then(|l| partners.iter().position(|p| p.email == l));
            let start = last.map_or(0, |l| l + 1);
            let pick = (0..partners.len())
                .map(|k| (start + k) % partners.len())
                .find(|i| candidates.contains(i))
                .unwrap_or(candidates[0]);
            finish(pick, How::RoundRobin, passed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_searchable_text_is_the_lower_cased_words_joined_by_one_space() {
        let c = Complaint {
            complainant_address: Some("Jan@Client.Example"),
            complainant_name: Some("ΣΟΦΟΣ  de\tVries"),
            subject: "  Klacht\r\nover ",
            text: "ÉÉN   TWEE\n\ndrie ΟΔΟΣ. Anna\u{a0}de Boer",
            staff: None,
        };
        let whole = format!(
            "{}\n{}\n{}\n{}",
            c.subject,
            c.text,
            c.complainant_name.unwrap(),
            c.complainant_address.unwrap()
        )
        .to_lowercase();
        let expected = whole.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(searchable(&c), expected);
        assert!(
            searchable(&c).contains("οδος. anna de boer"),
            "{}",
            searchable(&c)
        );
        assert!(contains_words(&searchable(&c), "anna de boer"));
        assert!(!contains_words("annabel de boer", "anna de boer"));
        assert!(
            contains_words("xab ab ab", "ab ab"),
            "an overlapping later match counts"
        );
    }

    fn partners() -> Vec<Partner> {
        vec![
            Partner {
                name: "Anna de Boer".into(),
                email: "anna@voorbeeld.nl".into(),
            },
            Partner {
                name: "Bram Visser".into(),
                email: "bram@voorbeeld.nl".into(),
            },
            Partner {
                name: "Carla Smit".into(),
                email: "carla@voorbeeld.nl".into(),
            },
        ]
    }

    fn rules(raw: Vec<RawRule>, strategy: Option<&str>, default: Option<&str>) -> Rules {
        let mut problems = Vec::new();
        let r = Rules::from_raw(raw, strategy, default, &partners(), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        r
    }

    fn complaint<'a>(address: &'a str, subject: &'a str, text: &'a str) -> Complaint<'a> {
        Complaint {
            complainant_address: Some(address),
            complainant_name: None,
            subject,
            text,
            staff: None,
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let r = rules(
            vec![
                RawRule {
                    partner: "Carla Smit".into(),
                    domains: vec!["@bigclient.nl".into()],
                    ..Default::default()
                },
                RawRule {
                    partner: "bram@voorbeeld.nl".into(),
                    words: vec!["factuur".into()],
                    ..Default::default()
                },
                RawRule {
                    partner: "Anna de Boer".into(),
                    staff: vec!["secretariaat@voorbeeld.nl".into()],
                    ..Default::default()
                },
            ],
            None,
            None,
        );
        let p = partners();
        let load = Load::default();
        let c = choose(&r, &p, &complaint("x@bigclient.nl", "Factuur", ""), &load);
        assert_eq!(
            (c.partner, c.reason.why().as_str()),
            (2, "assignment rule 1 matched")
        );
        let c = choose(&r, &p, &complaint("x@a.nl", "Over de FACTUUR.", ""), &load);
        assert_eq!(c.partner, 1);
        // Whole words only: "facturen" or "factuuradres" are not "factuur".
        let c = choose(&r, &p, &complaint("x@a.nl", "factuuradres", ""), &load);
        assert_eq!(c.reason.why(), "the partner with the fewest open cases");
        let mut staffed = complaint("x@a.nl", "iets", "");
        staffed.staff = Some("Secretariaat@voorbeeld.nl");
        assert_eq!(choose(&r, &p, &staffed, &load).partner, 0);
    }

    #[test]
    fn a_named_partner_is_never_assigned_their_own_complaint() {
        let r = rules(
            vec![RawRule {
                partner: "Bram Visser".into(),
                domains: vec!["client.nl".into()],
                ..Default::default()
            }],
            None,
            None,
        );
        let p = partners();
        let mut load = Load::default();
        load.open.insert("anna@voorbeeld.nl".into(), 5);
        let c = choose(
            &r,
            &p,
            &complaint(
                "x@client.nl",
                "Klacht",
                "Ik ben niet tevreden over de heer  bram\nvisser en zijn advies.",
            ),
            &load,
        );
        assert_eq!(c.partner, 2, "{c:?}");
        assert!(
            c.reason
                .why()
                .contains("Bram Visser (rule 1) is named in the complaint"),
            "{:?}",
            c.reason
        );
        assert!(c.flag.is_none());
        // By address, and a default partner passed over too.
        let r = rules(vec![], None, Some("Anna de Boer"));
        let c = choose(
            &r,
            &p,
            &complaint("x@a.nl", "anna@voorbeeld.nl reageert niet", ""),
            &Load::default(),
        );
        assert_eq!(c.partner, 1);
        assert!(c.reason.why().contains("default partner"));
        // Everyone named: still someone, flagged.
        let c = choose(
            &r,
            &p,
            &complaint("x@a.nl", "Anna de Boer, Bram Visser en Carla Smit", ""),
            &Load::default(),
        );
        assert_eq!(c.partner, 0);
        assert!(c.flag.is_some());
    }

    #[test]
    fn the_templates_sample_reason_is_one_this_module_gives() {
        use crate::compose::{Lang, templates};
        let kind = templates::KINDS
            .iter()
            .find(|k| k.name == "new_complaint")
            .unwrap();
        let reason = Reason {
            how: How::Rule(2),
            passed: vec![PassedOver {
                name: "Bob Jansen".into(),
                rule: Some(1),
            }],
        };
        for lang in Lang::ALL {
            let sample = templates::sample(kind, lang);
            assert_eq!(
                sample.get_attr("assigned").unwrap(),
                minijinja::Value::from_serialize(&reason)
            );
            assert_eq!(
                sample.get_attr("assigned_because").unwrap(),
                minijinja::Value::from(reason.why())
            );
        }
    }

    #[test]
    fn the_reason_is_kept_as_data_and_its_history_line_is_unchanged() {
        // Bram's rule matches and Anna is the default, but the complaint names both.
        let r = rules(
            vec![RawRule {
                partner: "Bram Visser".into(),
                words: vec!["factuur".into()],
                ..Default::default()
            }],
            None,
            Some("anna@voorbeeld.nl"),
        );
        let c = choose(
            &r,
            &partners(),
            &complaint("x@a.nl", "Factuur", "Bram Visser en Anna de Boer"),
            &Load::default(),
        );
        assert_eq!(c.partner, 2);
        assert_eq!(
            c.reason,
            Reason {
                how: How::LeastOpen,
                passed: vec![
                    PassedOver {
                        name: "Bram Visser".into(),
                        rule: Some(1),
                    },
                    PassedOver {
                        name: "Anna de Boer".into(),
                        rule: None,
                    },
                ],
            }
        );
        assert_eq!(
            c.reason.why(),
            "the partner with the fewest open cases; \
             Bram Visser (rule 1) is named in the complaint and is not assigned it; \
             Anna de Boer (default partner) is named in the complaint and is not assigned it"
        );
        // What the templates get as `assigned`: every key, always.
        assert_eq!(
            serde_json::to_value(&c.reason).unwrap(),
            serde_json::json!({
                "how": "least_open",
                "rule": null,
                "passed": [
                    {"name": "Bram Visser", "rule": 1, "default": false},
                    {"name": "Anna de Boer", "rule": null, "default": true},
                ],
            })
        );
        for (how, line, key, rule) in [
            (How::Rule(3), "assignment rule 3 matched", "rule", Some(3)),
            (How::DefaultPartner, "the default partner", "default", None),
            (How::RoundRobin, "round robin", "round_robin", None),
        ] {
            let reason = Reason {
                how,
                passed: vec![],
            };
            assert_eq!(reason.why(), line);
            let value = serde_json::to_value(&reason).unwrap();
            assert_eq!(value["how"], key);
            assert_eq!(value["rule"], serde_json::json!(rule));
        }
    }

    #[test]
    fn strategies_least_open_and_round_robin() {
        let p = partners();
        let mut load = Load::default();
        load.open.insert("anna@voorbeeld.nl".into(), 2);
        load.open.insert("bram@voorbeeld.nl".into(), 1);
        load.open.insert("carla@voorbeeld.nl".into(), 1);
        let c = complaint("x@a.nl", "s", "t");
        assert_eq!(choose(&rules(vec![], None, None), &p, &c, &load).partner, 1);
        let rr = rules(vec![], Some("round_robin"), None);
        load.last_assigned = Some("carla@voorbeeld.nl".into());
        assert_eq!(choose(&rr, &p, &c, &load).partner, 0);
        load.last_assigned = Some("anna@voorbeeld.nl".into());
        assert_eq!(choose(&rr, &p, &c, &load).partner, 1);
        // Round robin skips a named partner.
        let named = complaint("x@a.nl", "Bram Visser", "");
        assert_eq!(choose(&rr, &p, &named, &load).partner, 2);
    }

    #[test]
    fn bad_rules_are_reported() {
        let mut problems = Vec::new();
        Rules::from_raw(
            vec![
                RawRule {
                    partner: "Nobody".into(),
                    words: vec!["x".into()],
                    ..Default::default()
                },
                RawRule {
                    partner: "Anna de Boer".into(),
                    ..Default::default()
                },
            ],
            Some("random"),
            Some("nobody@x.nl"),
            &partners(),
            &mut problems,
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}
