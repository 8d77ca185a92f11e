//! `klachtpost calendar` and `klachtpost deadlines explain`, run as the built binary with a
//! temporary config.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Setup {
    _dir: tempfile::TempDir,
    config: PathBuf,
}

/// A minimal valid config (Maildir in, files out) with extra sections appended.
fn setup(extra: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("ack.txt");
    std::fs::write(&template, "Beste klant,\n").unwrap();
    let config = dir.path().join("klachtpost.toml");
    let text = format!(
        r#"
[firm]
name = "Adviesbureau Test"
timezone = "Europe/Amsterdam"
address = "klachten@firma.nl"
staff_domains = ["firma.nl"]
partners = [{{ name = "Anna Partner", email = "anna@firma.nl" }}]
[mailbox]
kind = "maildir"
path = "{maildir}"
[outgoing]
kind = "file"
dir = "{outbox}"
[templates]
acknowledgement = "{template}"
{extra}
"#,
        maildir = toml_path(&dir.path().join("maildir")),
        outbox = toml_path(&dir.path().join("outbox")),
        template = toml_path(&template),
    );
    std::fs::write(&config, text).unwrap();
    Setup { _dir: dir, config }
}

fn toml_path(p: &Path) -> String {
    p.display().to_string().replace('\\', "\\\\")
}

fn run(setup: &Setup, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klachtpost"))
        .arg("--config")
        .arg(&setup.config)
        .args(args)
        .env_remove("KLACHTPOST_CONFIG")
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn deadlines_explain_json_gives_local_rfc3339_times() {
    let s = setup("");
    let out = stdout(&run(
        &s,
        &[
            "deadlines",
            "explain",
            "--received",
            "2026-04-02 17:55",
            "--json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (a, b, c) = (
        out.find("acknowledge").unwrap(),
        out.find("response").unwrap(),
        out.find("resolution").unwrap(),
    );
    assert!(a < b && b < c, "keys in deadline order: {out}");
    assert_eq!(
        v,
        serde_json::json!({
            "acknowledge": "2026-04-03T17:00:00+02:00",
            "response": "2026-04-16T17:00:00+02:00",
            "resolution": "2026-04-30T17:00:00+02:00",
        })
    );
}

#[test]
fn deadlines_explain_follows_the_config() {
    let s = setup(
        r#"
[calendar]
good_friday = true
working_hours = "08:30-16:30"
closing_days = [{ date = "2026-12-28..2026-12-31", name = "Kerstsluiting" }]
[deadlines]
response = "10 werkdagen"
resolution = "6 weeks"
"#,
    );
    let out = stdout(&run(
        &s,
        &[
            "deadlines",
            "explain",
            "--received",
            "2026-04-02 17:55",
            "--json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["acknowledge"], "2026-04-07T16:30:00+02:00");
    // 7, 8, 9, 10, 13, 14, 15, 16, 17, 20 April.
    assert_eq!(v["response"], "2026-04-20T16:30:00+02:00");
    // 6 weeks: Thu 14 May is Ascension Day → Fri 15 May.
    assert_eq!(v["resolution"], "2026-05-15T16:30:00+02:00");

    let text = stdout(&run(
        &s,
        &["deadlines", "explain", "--received", "2026-12-29 10:00"],
    ));
    assert!(
        text.contains("Acknowledge:  Mon 4 Jan 2027 16:30 CET"),
        "{text}"
    );
    assert!(text.contains("Kerstsluiting"), "{text}");
    assert!(
        text.contains("received Tue 29 Dec 2026 10:00 CET (Europe/Amsterdam)"),
        "{text}"
    );
}

#[test]
fn deadlines_explain_text_and_dst_edge_cases() {
    let s = setup("");
    let text = stdout(&run(
        &s,
        &["deadlines", "explain", "--received", "2026-04-02 17:55"],
    ));
    assert!(
        text.contains("Received:     Thu 2 Apr 2026 17:55 CEST (Europe/Amsterdam)"),
        "{text}"
    );
    assert!(
        text.contains("Acknowledge:  Fri 3 Apr 2026 17:00 CEST"),
        "{text}"
    );
    assert!(
        text.contains("Resolution:   Thu 30 Apr 2026 17:00 CEST"),
        "{text}"
    );
    assert!(text.contains("Explanation stored on the case:"), "{text}");

    // A local time skipped by the change to summer time is an error.
    let o = run(
        &s,
        &["deadlines", "explain", "--received", "2026-03-29 02:30"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("does not exist in Europe/Amsterdam"), "{err}");

    // A local time that happens twice: the earlier, said so (on stderr with --json).
    let o = run(
        &s,
        &[
            "deadlines",
            "explain",
            "--received",
            "2026-10-25 02:30",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["acknowledge"], "2026-10-26T17:00:00+01:00");
    assert!(String::from_utf8_lossy(&o.stderr).contains("happens twice"));
    let text = stdout(&run(
        &s,
        &["deadlines", "explain", "--received", "2026-10-25 02:30"],
    ));
    assert!(text.contains("the earlier one is used"), "{text}");

    let o = run(&s, &["deadlines", "explain", "--received", "tomorrow"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--received"));
}

#[test]
fn calendar_json_lists_holidays_and_closing_days() {
    let s = setup(
        r#"
[calendar]
closing_days = ["2027-05-14", { date = "2027-12-27..2027-12-31", name = "Kerstsluiting" }]
"#,
    );
    let out = stdout(&run(&s, &["calendar", "--year", "2027", "--json"]));
    let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let pairs: Vec<(String, String)> = v
        .iter()
        .map(|x| {
            assert_eq!(x.as_object().unwrap().len(), 2);
            (
                x["date"].as_str().unwrap().to_string(),
                x["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("2027-01-01", "New Year's Day"),
        ("2027-03-28", "Easter Sunday"),
        ("2027-03-29", "Easter Monday"),
        ("2027-04-27", "King's Day"),
        ("2027-05-06", "Ascension Day"),
        ("2027-05-14", "closing day"),
        ("2027-05-16", "Pentecost"),
        ("2027-05-17", "Pentecost Monday"),
        ("2027-12-25", "Christmas Day"),
        ("2027-12-26", "Second Day of Christmas"),
        ("2027-12-27", "Kerstsluiting"),
        ("2027-12-28", "Kerstsluiting"),
        ("2027-12-29", "Kerstsluiting"),
        ("2027-12-30", "Kerstsluiting"),
        ("2027-12-31", "Kerstsluiting"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(pairs, expected);

    let text = stdout(&run(&s, &["calendar", "--year", "2027"]));
    assert!(
        text.contains("Days off in 2027 for Adviesbureau Test"),
        "{text}"
    );
    assert!(text.contains("King's Day (Koningsdag)"), "{text}");
    assert!(text.contains("Kerstsluiting (closing day)"), "{text}");
}

#[test]
fn a_bad_calendar_config_names_every_key() {
    let s = setup(
        r#"
[calendar]
working_days = ["mon", "funday"]
working_hours = "9 to 5"
liberation_day = "sometimes"
country = "be"
closing_days = ["2027-02-30"]
[deadlines]
response = "14 days"
resolution = "a month"
"#,
    );
    let o = run(&s, &["calendar", "--year", "2027"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    for needle in [
        "calendar.working_days[1]: \"funday\"",
        "calendar.working_hours: \"9 to 5\"",
        "calendar.liberation_day: \"sometimes\"",
        "calendar.country: \"be\"",
        "calendar.closing_days[0]: \"2027-02-30\"",
        "deadlines.response: \"14 days\"",
        "deadlines.resolution: \"a month\"",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}
