//! `corpus-check DIR`: runs the classifier over the outside mail corpora in DIR (the
//! project's `../shared/corpora`; they are never copied into the project) as whole
//! folders, prints a table per corpus and asserts the rates issue 3 names:
//!
//! - `bounces-sisimai/maildir/bsd`: no acknowledgement and no case opened, for all files;
//!   a bounce that returns a known Message-ID is attached to that case;
//! - `bounces-sisimai/maildir/{not,tmp}`: not bounces (with the documented exceptions in
//!   `tests/corpus-allowlist.toml`, asserted exactly as written there);
//! - `forwards-crisp`: every fixture `expectations.json` marks as forwarded, sent by a
//!   staff member, is a forward whose complainant is the original sender; no other is a
//!   forward;
//! - `crisp-email-reply-parser` and `talon`: the new part of a reply as expected
//!   (whitespace-normalised), at or above the thresholds below;
//! - `stalwart-mail-parser`: every message is taken in without a panic and yields a
//!   decision with the explain JSON keys.
//!
//! Exit status 1 when any check fails. The last line is `corpus-check: N passed, M failed`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use klachtpost::classify::{self, CaseInfo, Context, Decision, Kind, Known, quote};
use klachtpost::config::{Firm, Partner};
use klachtpost::parse::{ParsedMail, parse};

/// Reply corpora: share of assessable fixtures whose new part must match. Measured:
/// see docs/classification.md ("Corpus figures"); the thresholds sit at what is achieved
/// so a regression fails.
const CRISP_REPLY_THRESHOLD: f64 = 0.95;
const TALON_THRESHOLD: f64 = 1.0;

const ALLOWLIST: &str = include_str!("../tests/corpus-allowlist.toml");

const MAILBOX: &str = "klachten@example-firm.nl";
const STAFF: &str = "Piet Medewerker <piet@example-firm.nl>";

fn firm() -> Firm {
    Firm {
        name: "Voorbeeld Advies".into(),
        timezone: chrono_tz::Europe::Amsterdam,
        address: MAILBOX.into(),
        staff_domains: vec!["example-firm.nl".into()],
        partners: vec![Partner {
            name: "Anna Partner".into(),
            email: "anna@example-firm.nl".into(),
        }],
        operator: None,
        trusted_authserv_id: None,
    }
}

fn default_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

fn decide(firm: &Firm, mail: &ParsedMail, known: &Known) -> Decision {
    let ctx = Context {
        firm,
        own_addresses: vec![MAILBOX.into()],
        received_at: mail.date.unwrap_or_else(default_time),
    };
    classify::classify(mail, &ctx, known)
}

/// One assertion.
struct Check {
    name: String,
    passed: bool,
    detail: String,
}

/// One row of the table.
struct Row {
    corpus: String,
    files: usize,
    expected: usize,
    got: usize,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    checks: Vec<Check>,
    verbose: bool,
}

impl Report {
    fn row(&mut self, corpus: &str, files: usize, expected: usize, got: usize) {
        self.rows.push(Row {
            corpus: corpus.into(),
            files,
            expected,
            got,
        });
    }

    fn check(&mut self, name: &str, passed: bool, detail: String) {
        self.checks.push(Check {
            name: name.into(),
            passed,
            detail,
        });
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v" || a == "--verbose");
    let root = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/corpora"));
    if !root.is_dir() {
        eprintln!(
            "corpus-check: {} is not a directory (give the corpora root, e.g. ../shared/corpora)",
            root.display()
        );
        println!("corpus-check: 0 passed, 1 failed");
        return ExitCode::FAILURE;
    }
    let allow = match Allowlist::load() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("corpus-check: tests/corpus-allowlist.toml: {e}");
            println!("corpus-check: 0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    let firm = firm();
    let mut report = Report {
        verbose,
        ..Default::default()
    };

    bounces(&root, &firm, &allow, &mut report);
    forwards(&root, &firm, &allow, &mut report);
    crisp_replies(&root, &firm, &mut report);
    talon(&root, &mut report);
    stalwart(&root, &firm, &mut report);

    println!();
    println!(
        "{:<58} {:>6} {:>9} {:>6} {:>8}",
        "corpus", "files", "expected", "got", "rate"
    );
    for r in &report.rows {
        let rate = if r.expected == 0 {
            100.0
        } else {
            100.0 * r.got as f64 / r.expected as f64
        };
        println!(
            "{:<58} {:>6} {:>9} {:>6} {:>7.1}%",
            r.corpus, r.files, r.expected, r.got, rate
        );
    }
    println!();
    let mut passed = 0;
    let mut failed = 0;
    for c in &report.checks {
        if c.passed {
            passed += 1;
            println!("PASS  {}: {}", c.name, c.detail);
        } else {
            failed += 1;
            println!("FAIL  {}: {}", c.name, c.detail);
        }
    }
    println!("corpus-check: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---- the allow-list ----------------------------------------------------------------------

#[derive(Debug, serde::Deserialize)]
struct AllowEntry {
    corpus: String,
    file: String,
    /// What the corpus README says.
    #[allow(dead_code)]
    readme_says: String,
    /// What klachtpost does instead (a kind), asserted exactly.
    we_say: String,
    #[allow(dead_code)]
    reason: String,
}

#[derive(Debug, serde::Deserialize)]
struct Allowlist {
    #[serde(default)]
    entry: Vec<AllowEntry>,
}

impl Allowlist {
    fn load() -> Result<Self, String> {
        toml::from_str(ALLOWLIST).map_err(|e| e.to_string())
    }

    fn get(&self, corpus: &str, file: &str) -> Option<&AllowEntry> {
        self.entry
            .iter()
            .find(|e| e.corpus == corpus && e.file == file)
    }
}

// ---- helpers -----------------------------------------------------------------------------

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    let shown: Vec<&str> = v.iter().take(12).map(String::as_str).collect();
    let more = if v.len() > 12 {
        format!(" … and {} more", v.len() - 12)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

// ---- bounces -----------------------------------------------------------------------------

fn bounces(root: &Path, firm: &Firm, allow: &Allowlist, report: &mut Report) {
    let base = root.join("bounces-sisimai/maildir");
    let bsd = files_in(&base.join("bsd"));
    if bsd.is_empty() {
        report.check(
            "bounces-sisimai/maildir/bsd",
            false,
            format!("no files in {}", base.join("bsd").display()),
        );
        return;
    }
    let mut acknowledged = Vec::new();
    let mut opened = Vec::new();
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut with_returned = 0;
    let mut attached = 0;
    let mut not_attached = Vec::new();
    for path in &bsd {
        let raw = std::fs::read(path).unwrap_or_default();
        let mail = parse(&raw);
        let d = decide(firm, &mail, &Known::default());
        *kinds.entry(d.kind.as_str()).or_default() += 1;
        if d.acknowledge {
            acknowledged.push(name_of(path));
        }
        if d.kind.opens_case() {
            opened.push(name_of(path));
            if report.verbose {
                eprintln!("opens a case: {} — {}", name_of(path), d.reason);
            }
        }
        // A bounce of "our" mail: pretend the returned message is a known acknowledgement.
        if d.kind == Kind::Bounce {
            let ids = classify::lookups(&mail).message_ids;
            if let Some(id) = ids.first() {
                with_returned += 1;
                let mut known = Known::default();
                for id in &ids {
                    known.by_message_id.insert(
                        id.clone(),
                        CaseInfo {
                            reference: "KL-2026-0001".into(),
                            complainant: Some("client@example.org".into()),
                            ..CaseInfo::default()
                        },
                    );
                    // Messages klachtpost sent: the only ones a bounce is attached by.
                    known.ours.insert(id.clone());
                }
                known.acknowledgements.insert(id.clone());
                let d2 = decide(firm, &mail, &known);
                if d2.kind == Kind::Bounce
                    && d2.case.as_deref() == Some("KL-2026-0001")
                    && !d2.acknowledge
                    && !d2.flags.is_empty()
                {
                    attached += 1;
                } else {
                    not_attached.push(name_of(path));
                }
            }
        }
    }
    let n = bsd.len();
    report.row(
        "bounces-sisimai/maildir/bsd: not acknowledged",
        n,
        n,
        n - acknowledged.len(),
    );
    report.row(
        "bounces-sisimai/maildir/bsd: no case opened",
        n,
        n,
        n - opened.len(),
    );
    report.row(
        "bounces-sisimai/maildir/bsd: bounce of our mail attached",
        n,
        with_returned,
        attached,
    );
    let kinds_s = kinds
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    report.check(
        "bsd: 0 acknowledged",
        acknowledged.is_empty(),
        format!(
            "{} of {n} acknowledged ({kinds_s}); acknowledged: {}",
            acknowledged.len(),
            list(&acknowledged)
        ),
    );
    report.check(
        "bsd: no case opened",
        opened.is_empty(),
        format!("{} of {n} open a case: {}", opened.len(), list(&opened)),
    );
    report.check(
        "bsd: a bounce returning a known Message-ID is attached to its case and flagged",
        not_attached.is_empty(),
        format!(
            "{attached} of {with_returned} bounces that name a returned Message-ID; not attached: {}",
            list(&not_attached)
        ),
    );

    // sisimai's maildir/mac and maildir/dos repeat the *-01 files with CR and CRLF line
    // endings; those folders are not in the corpora, so the same is done here in memory.
    let mut variants = 0;
    let mut variant_wrong = Vec::new();
    for path in bsd.iter().filter(|p| name_of(p).ends_with("-01.eml")) {
        let raw = std::fs::read(path).unwrap_or_default();
        let lf: Vec<u8> = raw.iter().copied().filter(|b| *b != b'\r').collect();
        let cr: Vec<u8> = lf
            .iter()
            .map(|b| if *b == b'\n' { b'\r' } else { *b })
            .collect();
        let mut crlf = Vec::with_capacity(lf.len() + lf.len() / 20);
        for b in &lf {
            if *b == b'\n' {
                crlf.push(b'\r');
            }
            crlf.push(*b);
        }
        for (ending, bytes) in [("cr", cr), ("crlf", crlf)] {
            variants += 1;
            let d = decide(firm, &parse(&bytes), &Known::default());
            if d.acknowledge || d.kind.opens_case() {
                variant_wrong.push(format!("{} ({ending}, {})", name_of(path), d.kind.as_str()));
            }
        }
    }
    report.row(
        "bounces-sisimai/maildir/bsd *-01 as CR and CRLF: neither",
        variants,
        variants,
        variants - variant_wrong.len(),
    );
    report.check(
        "bsd *-01 with CR and CRLF line endings: none acknowledged, none opens a case",
        variant_wrong.is_empty() && variants > 0,
        format!(
            "{} of {variants}; wrong: {}",
            variants - variant_wrong.len(),
            list(&variant_wrong)
        ),
    );

    // maildir/not and maildir/tmp: not bounces, except the documented ones.
    for sub in ["not", "tmp"] {
        let corpus = format!("bounces-sisimai/maildir/{sub}");
        let files = files_in(&base.join(sub));
        let mut ok = 0;
        let mut wrong = Vec::new();
        let mut excepted = 0;
        for path in &files {
            let raw = std::fs::read(path).unwrap_or_default();
            let d = decide(firm, &parse(&raw), &Known::default());
            let name = name_of(path);
            let good = match allow.get(&corpus, &name) {
                Some(e) => {
                    excepted += 1;
                    d.kind.as_str() == e.we_say && !d.acknowledge
                }
                None => d.kind == Kind::Complaint && d.acknowledge,
            };
            if good {
                ok += 1;
            } else {
                wrong.push(format!("{name} ({})", d.kind.as_str()));
            }
        }
        report.row(
            &format!("{corpus}: as expected"),
            files.len(),
            files.len(),
            ok,
        );
        report.check(
            &format!("{sub}: ordinary mail is a complaint, documented exceptions as listed"),
            wrong.is_empty() && !files.is_empty(),
            format!(
                "{ok} of {} ({excepted} per tests/corpus-allowlist.toml); wrong: {}",
                files.len(),
                list(&wrong)
            ),
        );
    }
}

// ---- forwards ----------------------------------------------------------------------------

fn staff_mail(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {STAFF}\r\nTo: {MAILBOX}\r\nSubject: {subject}\r\nDate: Fri, 20 Nov 2026 11:00:00 +0100\r\nMessage-ID: <fwd-check@example-firm.nl>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    )
    .into_bytes()
}

fn forwards(root: &Path, firm: &Firm, allow: &Allowlist, report: &mut Report) {
    let corpus = "forwards-crisp";
    let base = root.join(corpus);
    let exp: Value = match std::fs::read_to_string(base.join("expectations.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
    {
        Some(v) => v,
        None => {
            report.check(
                corpus,
                false,
                format!("cannot read {}", base.join("expectations.json").display()),
            );
            return;
        }
    };
    let cases = exp["cases"].as_array().cloned().unwrap_or_default();
    let mut positives = 0;
    let mut recognised = 0;
    let mut names_ok = 0;
    let mut negatives = 0;
    let mut negatives_ok = 0;
    let mut missed = Vec::new();
    let mut false_forwards = Vec::new();
    let mut wrong_names = Vec::new();
    for c in &cases {
        let body_file = c["body_file"].as_str().unwrap_or_default();
        let label = format!(
            "{}{}",
            body_file.rsplit('/').next().unwrap_or(body_file),
            c["subject_file"]
                .as_str()
                .map(|s| format!("+{}", s.rsplit('/').next().unwrap_or(s)))
                .unwrap_or_default()
        );
        let body = std::fs::read_to_string(base.join(body_file)).unwrap_or_default();
        let subject = c["subject_file"]
            .as_str()
            .and_then(|s| std::fs::read_to_string(base.join(s)).ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let mail = parse(&staff_mail(&subject, &body));
        let d = decide(firm, &mail, &Known::default());
        let e = &c["expected"];
        let forwarded = e["forwarded"].as_bool().unwrap_or(false);
        if let Some(entry) = allow.get(corpus, &label) {
            // Documented exception: asserted exactly as written.
            let ok = d.kind.as_str() == entry.we_say;
            if forwarded {
                positives += 1;
                if ok {
                    recognised += 1;
                    names_ok += 1;
                } else {
                    missed.push(label);
                }
            } else {
                negatives += 1;
                if ok {
                    negatives_ok += 1;
                } else {
                    false_forwards.push(label);
                }
            }
            continue;
        }
        if forwarded {
            positives += 1;
            let want_addr = e["from"]["address"].as_str();
            let want_name = e["from"]["name"].as_str();
            let got_addr = d.complainant.as_ref().map(|a| a.address.as_str());
            let ok = d.kind == Kind::Forward
                && match want_addr {
                    Some(w) => got_addr.is_some_and(|g| g.eq_ignore_ascii_case(w)),
                    None => {
                        got_addr.is_none()
                            && d.complainant_name.as_deref().map(str::to_lowercase)
                                == want_name.map(str::to_lowercase)
                    }
                };
            if ok {
                recognised += 1;
            } else {
                missed.push(format!("{label} ({} {:?})", d.kind.as_str(), got_addr));
            }
            let got_name = d
                .complainant
                .as_ref()
                .and_then(|a| a.name.clone())
                .or_else(|| d.complainant_name.clone());
            if got_name.as_deref().map(str::to_lowercase) == want_name.map(str::to_lowercase) {
                names_ok += 1;
            } else {
                wrong_names.push(format!("{label} ({got_name:?})"));
            }
        } else {
            negatives += 1;
            if d.kind != Kind::Forward {
                negatives_ok += 1;
            } else {
                false_forwards.push(label);
            }
        }
    }
    report.row(
        "forwards-crisp: original sender recognised",
        cases.len(),
        positives,
        recognised,
    );
    report.row(
        "forwards-crisp: original sender's name",
        cases.len(),
        positives,
        names_ok,
    );
    report.row(
        "forwards-crisp: not forwards stay not forwards",
        cases.len(),
        negatives,
        negatives_ok,
    );
    report.check(
        "forwards: original sender recognised in every forward",
        missed.is_empty() && positives > 0,
        format!("{recognised} of {positives}; missed: {}", list(&missed)),
    );
    report.check(
        "forwards: the original sender's name recognised in every forward",
        wrong_names.is_empty() && positives > 0,
        format!("{names_ok} of {positives}; wrong: {}", list(&wrong_names)),
    );
    report.check(
        "forwards: no non-forward taken for a forward",
        false_forwards.is_empty() && negatives > 0,
        format!(
            "{negatives_ok} of {negatives}; taken for a forward: {}",
            list(&false_forwards)
        ),
    );
}

// ---- replies: crisp ----------------------------------------------------------------------

fn client_reply(body: &str) -> Vec<u8> {
    format!(
        "From: Client <client@example.org>\r\nTo: {MAILBOX}\r\nSubject: Re: [KL-2026-0001] Uw klacht\r\nDate: Fri, 20 Nov 2026 11:00:00 +0100\r\nMessage-ID: <reply-check@example.org>\r\nIn-Reply-To: <ack-1@example-firm.nl>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    )
    .into_bytes()
}

fn known_case() -> Known {
    let mut known = Known::default();
    known.by_message_id.insert(
        "ack-1@example-firm.nl".into(),
        CaseInfo {
            reference: "KL-2026-0001".into(),
            complainant: Some("client@example.org".into()),
            parties: vec!["client@example.org".into()],
            ..CaseInfo::default()
        },
    );
    known
}

/// A literal pattern from the derived expectations ("^Awesome", "https:\/\/example\.com").
fn pattern_matches(text: &str, pattern: &str) -> bool {
    let (anchored, p) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let mut lit = String::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                lit.push(n);
            }
        } else {
            lit.push(c);
        }
    }
    if anchored {
        text.trim_start().starts_with(&lit)
    } else {
        text.contains(&lit)
    }
}

fn crisp_replies(root: &Path, firm: &Firm, report: &mut Report) {
    let corpus = "crisp-email-reply-parser";
    let base = root.join(corpus);
    let exp: Value = match std::fs::read_to_string(base.join("expectations.derived.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
    {
        Some(v) => v,
        None => {
            report.check(
                corpus,
                false,
                "cannot read expectations.derived.json".into(),
            );
            return;
        }
    };
    let common = exp["COMMON_FIRST_FRAGMENT"].as_str().unwrap_or_default();
    let cases = exp["cases"].as_array().cloned().unwrap_or_default();
    let known = known_case();
    let mut assessable = 0;
    let mut ok = 0;
    let mut wrong = Vec::new();
    let mut not_replies = Vec::new();
    for c in &cases {
        let Some(e) = c["expected"].as_object() else {
            continue; // "other assertions": nothing to compare.
        };
        for fixture in c["fixtures"].as_array().cloned().unwrap_or_default() {
            let f = fixture.as_str().unwrap_or_default();
            let Ok(text) = std::fs::read_to_string(base.join(f)) else {
                wrong.push(format!("{f} (unreadable)"));
                assessable += 1;
                continue;
            };
            let mail = parse(&client_reply(&text));
            let d = decide(firm, &mail, &known);
            if d.kind != Kind::Reply {
                not_replies.push(f.to_string());
            }
            let split = quote::split(&mail.text);
            let got = normalize(&d.new_part);
            let mut checks: Vec<bool> = Vec::new();
            for (k, v) in e {
                match k.as_str() {
                    "first_fragment_equals" | "visible_text_equals" | "reply_text_equals" => {
                        checks.push(got == normalize(v.as_str().unwrap_or_default()));
                    }
                    "first_fragment_trimmed_equals" => {
                        let want = match v.as_str() {
                            Some("COMMON_FIRST_FRAGMENT") => common,
                            Some(s) => s,
                            None => "",
                        };
                        checks.push(got == normalize(want));
                    }
                    "first_fragment_matches_regex" => {
                        for p in v.as_array().cloned().unwrap_or_default() {
                            checks.push(pattern_matches(&d.new_part, p.as_str().unwrap_or("")));
                        }
                    }
                    "quoted_part_matches_regex" => {
                        let q = split.quoted.clone().unwrap_or_default();
                        for p in v.as_array().cloned().unwrap_or_default() {
                            checks.push(pattern_matches(&q, p.as_str().unwrap_or("")));
                        }
                    }
                    "fragment_count" => {
                        // One fragment: nothing to cut. More: something was cut.
                        let whole = normalize(&mail.text);
                        let cut = got != whole;
                        checks.push(if v.as_u64() == Some(1) { !cut } else { cut });
                    }
                    _ => {}
                }
            }
            if checks.is_empty() {
                continue;
            }
            assessable += 1;
            if checks.iter().all(|b| *b) {
                ok += 1;
            } else {
                wrong.push(f.rsplit('/').next().unwrap_or(f).to_string());
                if report.verbose {
                    eprintln!("--- {f}\n{}\n---", d.new_part);
                }
            }
        }
    }
    let rate = if assessable == 0 {
        0.0
    } else {
        ok as f64 / assessable as f64
    };
    report.row(
        "crisp-email-reply-parser: expected new part",
        assessable,
        assessable,
        ok,
    );
    report.check(
        &format!(
            "replies (crisp): new part as expected in ≥ {:.0}%",
            CRISP_REPLY_THRESHOLD * 100.0
        ),
        rate >= CRISP_REPLY_THRESHOLD && assessable > 0,
        format!(
            "{ok} of {assessable} ({:.1}%); wrong: {}",
            rate * 100.0,
            list(&wrong)
        ),
    );
    report.check(
        "replies (crisp): every reply threads to its case as a reply",
        not_replies.is_empty(),
        format!("not a reply: {}", list(&not_replies)),
    );
}

// ---- replies: talon ----------------------------------------------------------------------

fn talon(root: &Path, report: &mut Report) {
    let base = root.join("talon/tests/fixtures");
    let mut n = 0;
    let mut ok = 0;
    let mut wrong = Vec::new();
    // standard_replies/*.eml: expected "<name>_reply_text", else "Hello". Talon keeps the
    // signature in the reply text, so compare with the quote-cut text before the signature cut.
    for path in files_in(&base.join("standard_replies")) {
        let name = name_of(&path);
        let Some(stem) = name.strip_suffix(".eml") else {
            continue;
        };
        n += 1;
        let expected =
            std::fs::read_to_string(base.join(format!("standard_replies/{stem}_reply_text")))
                .unwrap_or_else(|_| "Hello".into());
        let mail = parse(&std::fs::read(&path).unwrap_or_default());
        let got = quote::split(&mail.text).without_quote();
        if normalize(&got) == normalize(&expected) {
            ok += 1;
        } else {
            wrong.push(name.clone());
            if report.verbose {
                eprintln!("--- talon {name}: got\n{got}\n--- text\n{}\n---", mail.text);
            }
        }
    }
    // html_replies/*.html: expected "Hi. I am fine.\n\nThanks,\nAlex".
    for path in files_in(&base.join("html_replies")) {
        let name = name_of(&path);
        n += 1;
        let html = std::fs::read(&path).unwrap_or_default();
        let mut raw = b"From: Client <client@example.org>\r\nTo: klachten@example-firm.nl\r\nSubject: Re: x\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n".to_vec();
        raw.extend_from_slice(&html);
        let mail = parse(&raw);
        let got = quote::split(&mail.text).without_quote();
        if normalize(&got) == normalize("Hi. I am fine.\n\nThanks,\nAlex") {
            ok += 1;
        } else {
            wrong.push(format!("html_replies/{name}"));
            if report.verbose {
                eprintln!("--- talon {name}: got\n{got}\n--- text\n{}\n---", mail.text);
            }
        }
    }
    let rate = if n == 0 { 0.0 } else { ok as f64 / n as f64 };
    report.row("talon: expected reply text", n, n, ok);
    report.check(
        &format!(
            "replies (talon): reply text as expected in ≥ {:.0}%",
            TALON_THRESHOLD * 100.0
        ),
        rate >= TALON_THRESHOLD && n > 0,
        format!(
            "{ok} of {n} ({:.1}%); wrong: {}",
            rate * 100.0,
            list(&wrong)
        ),
    );
}

// ---- stalwart ----------------------------------------------------------------------------

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn stalwart(root: &Path, firm: &Firm, report: &mut Report) {
    let base = root.join("stalwart-mail-parser/resources");
    let mut files = Vec::new();
    walk(&base.join("eml"), &mut files);
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    let mut maildir = Vec::new();
    walk(&base.join("maildir"), &mut maildir);
    files.extend(maildir);
    let n = files.len();
    let mut ok = 0;
    let mut failed = Vec::new();
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for path in &files {
        let raw = std::fs::read(path).unwrap_or_default();
        let result = std::panic::catch_unwind(|| {
            let mail = parse(&raw);
            let _ = classify::lookups(&mail);
            let d = decide(firm, &mail, &Known::default());
            let json = d.to_json();
            let keys_ok = [
                "kind",
                "case",
                "complainant",
                "channel",
                "received_at",
                "acknowledge",
                "reason",
            ]
            .iter()
            .all(|k| json.get(k).is_some());
            (d.kind.as_str(), keys_ok)
        });
        match result {
            Ok((kind, true)) => {
                ok += 1;
                *kinds.entry(kind).or_default() += 1;
            }
            Ok((_, false)) => failed.push(format!("{} (JSON keys missing)", name_of(path))),
            Err(_) => failed.push(format!("{} (panic)", name_of(path))),
        }
    }
    std::panic::set_hook(default_hook);
    report.row("stalwart-mail-parser: taken in without panic", n, n, ok);
    let kinds_s = kinds
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    report.check(
        "stalwart: every message taken in without a panic, with a decision",
        failed.is_empty() && n > 0,
        format!("{ok} of {n} ({kinds_s}); failed: {}", list(&failed)),
    );
}
