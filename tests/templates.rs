//! Every mail klachtpost sends, rendered from the built-in templates in both languages,
//! against golden files in `tests/golden/`. After an intended change to a template, refresh
//! them with `KLACHTPOST_BLESS=1 cargo test --test templates` and review the diff.
//! Also: values are never read as template text, and `check-config` names a broken
//! template's file and line.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{TimeZone, Utc};
use klachtpost::compose::templates::{KINDS, sample};
use klachtpost::compose::{self, Lang, TemplateSet};
use support::TestConfig;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compare with the golden file, or write it when blessing. Returns a mismatch message.
fn check_golden(name: &str, actual: &str) -> Option<String> {
    let path = golden_dir().join(name);
    if std::env::var_os("KLACHTPOST_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return None;
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == actual => None,
        Ok(expected) => Some(format!(
            "{} differs (KLACHTPOST_BLESS=1 refreshes it)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        )),
        Err(e) => Some(format!(
            "{}: {e} (KLACHTPOST_BLESS=1 writes it)",
            path.display()
        )),
    }
}

#[test]
fn every_mail_in_both_languages_matches_its_golden_file() {
    let set = TemplateSet::builtin().unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for kind in KINDS {
        for lang in Lang::ALL {
            let r = set
                .render(kind.name, lang, sample(kind, lang))
                .unwrap_or_else(|e| panic!("{}.{}: {e}", kind.name, lang.code()));
            let text = format!("Subject: {}\n\n{}", r.subject, r.text);
            failures.extend(check_golden(
                &format!("{}.{}.txt", kind.name, lang.code()),
                &text,
            ));
            let html = r.html.expect("every mail has an HTML alternative");
            failures.extend(check_golden(
                &format!("{}.{}.html", kind.name, lang.code()),
                &html,
            ));
            checked += 2;
        }
    }
    assert_eq!(checked, KINDS.len() * 4);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // No golden file is left over from a mail that no longer exists.
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        let kind = name.split('.').next().unwrap();
        assert!(
            KINDS.iter().any(|k| k.name == kind),
            "tests/golden/{name} belongs to no mail"
        );
    }
}

#[test]
fn the_english_and_dutch_mails_differ_and_escape_html() {
    let set = TemplateSet::builtin().unwrap();
    for kind in KINDS {
        let nl = set
            .render(kind.name, Lang::Nl, sample(kind, Lang::Nl))
            .unwrap();
        let en = set
            .render(kind.name, Lang::En, sample(kind, Lang::En))
            .unwrap();
        assert_ne!(nl.subject, en.subject, "{}", kind.name);
        assert_ne!(nl.text, en.text, "{}", kind.name);
        // The sample summary holds <jan@example.nl>: escaped in HTML wherever it shows.
        for html in [nl.html.unwrap(), en.html.unwrap()] {
            assert!(!html.contains("<jan@"), "{}: {html}", kind.name);
        }
    }
}

fn acknowledgement_with(
    name: &str,
    subject: &str,
    lang: Lang,
) -> (klachtpost::parse::ParsedMail, String) {
    let set = TemplateSet::builtin().unwrap();
    let out = compose::acknowledgement(
        &set,
        &compose::Acknowledgement {
            firm_name: "Adviesbureau {{ firm }}",
            firm_domain: "voorbeeld.nl",
            from: "klachten@voorbeeld.nl",
            to_name: Some(name),
            to_address: "jan@example.nl",
            reference: "KL-2026-0007",
            original_subject: subject,
            in_reply_to: None,
            references: &[],
            received: Utc.with_ymd_and_hms(2026, 11, 19, 9, 15, 0).unwrap(),
            respond_by: Utc.with_ymd_and_hms(2026, 12, 3, 16, 0, 0).unwrap(),
            resolve_by: Utc.with_ymd_and_hms(2026, 12, 17, 16, 0, 0).unwrap(),
            partner_name: "Anna de Boer",
            timezone: chrono_tz::Europe::Amsterdam,
            now: Utc.with_ymd_and_hms(2026, 11, 19, 9, 16, 0).unwrap(),
            lang,
        },
    )
    .unwrap();
    let html = mail_parser::MessageParser::default()
        .parse(&out.raw)
        .and_then(|m| m.body_html(0).map(|h| h.to_string()))
        .expect("an HTML alternative");
    (klachtpost::parse::parse(&out.raw), html)
}

#[test]
fn a_name_or_subject_with_placeholders_comes_out_literally() {
    for lang in Lang::ALL {
        let (mail, html) = acknowledgement_with(
            "{{ partner }} {partner}",
            "Over {partner} en {{ reference }} {% raw %}",
            lang,
        );
        assert!(
            mail.subject
                .ends_with("Over {partner} en {{ reference }} {% raw %}"),
            "{}",
            mail.subject
        );
        assert!(
            mail.text.contains("{{ partner }} {partner},"),
            "{}",
            mail.text
        );
        assert!(
            mail.text.contains("Adviesbureau {{ firm }}"),
            "{}",
            mail.text
        );
        assert!(
            !mail.text.contains("Anna de Boer {partner}"),
            "{}",
            mail.text
        );
        assert!(html.contains("{{ partner }} {partner},"), "{html}");
    }
    // HTML in a name is escaped in the HTML part.
    let (_, html) = acknowledgement_with("<script>alert(1)</script>", "x", Lang::Nl);
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
}

fn write_config(dir: &Path, templates: &str) -> PathBuf {
    TestConfig::new(dir)
        .section("templates", templates)
        .write(&dir.join("klachtpost.toml"))
}

#[test]
fn check_config_renders_every_template_and_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let templates = tmp.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    // Relative to the config file's folder.
    let config = write_config(tmp.path(), "dir = \"templates\"\nlanguage = \"auto\"");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_klachtpost"))
            .args(["check-config", "--offline", "--config"])
            .arg(&config)
            .current_dir("/")
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // An unknown variable on line 4 of the firm's English acknowledgement.
    std::fs::write(
        templates.join("acknowledgement.en.txt"),
        "Subject: [{{ reference }}] Received\n\nDear {{ name }},\n\nSee you {{ respond_byy }}.\n",
    )
    .unwrap();
    let out = run();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains(&format!(
            "{}:5: undefined value",
            templates.join("acknowledgement.en.txt").display()
        )),
        "{all}"
    );

    // A syntax error in the HTML.
    std::fs::write(
        templates.join("acknowledgement.en.txt"),
        "Subject: x\n\nok\n",
    )
    .unwrap();
    std::fs::write(
        templates.join("acknowledgement.nl.html"),
        "<p>{{ name }</p>\n",
    )
    .unwrap();
    let out = run();
    let all = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains(&format!(
            "{}:1: syntax error",
            templates.join("acknowledgement.nl.html").display()
        )),
        "{all}"
    );

    // A language that does not exist.
    std::fs::remove_file(templates.join("acknowledgement.nl.html")).unwrap();
    let config = write_config(tmp.path(), "dir = \"templates\"\nlanguage = \"de\"");
    let out = Command::new(env!("CARGO_BIN_EXE_klachtpost"))
        .args(["check-config", "--offline", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(all.contains("templates.language"), "{all}");
}

#[tokio::test]
async fn an_english_complaint_is_answered_in_english_and_the_case_keeps_its_language() {
    use klachtpost::clock::{Clock, ManualClock};
    use klachtpost::config::Config;
    use klachtpost::intake::Pipeline;

    let tmp = tempfile::tempdir().unwrap();
    let path = write_config(tmp.path(), "language = \"auto\"");
    let config = Config::load(&path).unwrap();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap());
    let store = support::open_store(&config).await;
    let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
    let english = b"From: John Smith <john@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Complaint about the invoice\r\nMessage-ID: <en-1@client.example>\r\n\r\nDear Sir or Madam,\r\n\r\nI am writing to complain about the invoice you sent me. It is wrong and I would like you to correct it.\r\n\r\nRegards, John\r\n";
    let dutch = b"From: Jan de Vries <jan@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht over de factuur\r\nMessage-ID: <nl-1@client.example>\r\n\r\nGeachte heer, mevrouw,\r\n\r\nDe factuur die ik van u kreeg klopt niet. Ik wil graag een correctie.\r\n\r\nMet vriendelijke groet, Jan\r\n";
    let en = pipeline
        .take_in(Some("en"), english, clock.now())
        .await
        .unwrap()
        .case
        .unwrap();
    let nl = pipeline
        .take_in(Some("nl"), dutch, clock.now())
        .await
        .unwrap()
        .case
        .unwrap();
    assert_eq!(store.case_language(&en).await.unwrap(), Lang::En);
    assert_eq!(store.case_language(&nl).await.unwrap(), Lang::Nl);
    let ack = |reference: String| {
        let store = store.clone();
        async move {
            let detail = store.case(&reference).await.unwrap().unwrap();
            detail
                .messages
                .into_iter()
                .find(|m| m.kind == "acknowledgement")
                .unwrap()
        }
    };
    let en_ack = ack(en.clone()).await;
    assert_eq!(
        en_ack.subject,
        format!("[{en}] Acknowledgement of your complaint: Complaint about the invoice")
    );
    assert!(en_ack.text.contains("Dear John Smith,"), "{}", en_ack.text);
    let nl_ack = ack(nl.clone()).await;
    assert!(
        nl_ack.subject.contains("Ontvangstbevestiging"),
        "{}",
        nl_ack.subject
    );

    // A partner extends the English case: the mail is English too.
    let out = Command::new(env!("CARGO_BIN_EXE_klachtpost"))
        .args(["--config"])
        .arg(&path)
        .args([
            "cases",
            "extend",
            &en,
            "--until",
            "2027-02-26",
            "--reason",
            "waiting for the tax office",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let detail = store.case(&en).await.unwrap().unwrap();
    let ext = detail
        .messages
        .iter()
        .find(|m| m.kind == "extension")
        .expect("the extension mail");
    assert!(
        ext.subject.contains("Extension of the handling period"),
        "{}",
        ext.subject
    );
    assert!(
        ext.text.contains("waiting for the tax office"),
        "{}",
        ext.text
    );
}
