//! `klachtpost explain FILE.eml --json` as administrators run it: a real config, the real
//! binary, the JSON keys the stage is checked by.

use std::path::{Path, PathBuf};
use std::process::Command;

fn config(dir: &Path) -> PathBuf {
    let ack = dir.join("ack.txt");
    std::fs::write(&ack, "Geachte {greeting_name},\n").unwrap();
    let text = format!(
        r#"
[firm]
name = "Voorbeeld Advies"
address = "klachten@example-firm.nl"
staff_domains = ["example-firm.nl"]
partners = [{{ name = "Anna Partner", email = "anna@example-firm.nl" }}]
[mailbox]
kind = "maildir"
path = "{mailbox}"
[outgoing]
kind = "file"
dir = "{outbox}"
[templates]
acknowledgement = "{ack}"
"#,
        mailbox = dir.join("mailbox").display(),
        outbox = dir.join("outbox").display(),
        ack = ack.display(),
    );
    let path = dir.join("klachtpost.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mail")
        .join(name)
}

fn explain(config: &Path, file: &Path, json: bool) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_klachtpost"));
    cmd.arg("--config").arg(config).arg("explain").arg(file);
    if json {
        cmd.arg("--json");
    }
    cmd.env_remove("KLACHTPOST_CONFIG")
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

#[test]
fn explain_json_has_the_checked_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let out = explain(&config, &fixture("forward-outlook-nl.eml"), true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "forward");
    assert!(v["case"].is_null());
    assert_eq!(v["complainant"]["address"], "karin.bakker@klant.example.nl");
    assert_eq!(v["complainant"]["name"], "Karin Bakker");
    assert_eq!(v["channel"], "forwarded");
    assert_eq!(v["received_at"], "2026-11-19T09:15:00Z");
    assert_eq!(v["acknowledge"], true);
    assert!(v["reason"].as_str().unwrap().len() > 20);
    assert_eq!(v["arrival"]["from"], "the mail's Date header");
    assert_eq!(v["store_consulted"], false);
}

#[test]
fn explain_json_for_a_bounce_and_a_complaint() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let v: serde_json::Value =
        serde_json::from_slice(&explain(&config, &fixture("bounce-of-ack.eml"), true).stdout)
            .unwrap();
    assert_eq!(v["kind"], "bounce");
    assert_eq!(v["acknowledge"], false);
    assert!(v["complainant"].is_null());
    assert!(
        v["lookups"]["message_ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|id| id == "ack-KL-2026-0043@example-firm.nl")
    );
    let v: serde_json::Value =
        serde_json::from_slice(&explain(&config, &fixture("complaint-plain-nl.eml"), true).stdout)
            .unwrap();
    assert_eq!(v["kind"], "complaint");
    assert_eq!(v["channel"], "email");
    assert_eq!(v["acknowledge"], true);
    assert_eq!(v["received_at"], "2026-11-19T09:15:00Z");
}

#[test]
fn explain_text_and_a_mail_without_date() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let out = explain(&config, &fixture("note-with-address.eml"), false);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kind:         note"), "{text}");
    assert!(text.contains("acknowledge:  yes"), "{text}");

    let undated = dir.path().join("undated.eml");
    std::fs::write(
        &undated,
        "From: a@example.org\r\nTo: klachten@example-firm.nl\r\nSubject: x\r\n\r\nKlacht.\r\n",
    )
    .unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&explain(&config, &undated, true).stdout).unwrap();
    assert_eq!(v["kind"], "complaint");
    assert!(
        v["arrival"]["from"]
            .as_str()
            .unwrap()
            .contains("modification time")
    );
}

#[test]
fn garbage_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let garbage = dir.path().join("garbage.eml");
    std::fs::write(&garbage, b"\x00\x01\x02\xff not a mail").unwrap();
    let out = explain(&config, &garbage, true);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "complaint");
    assert_eq!(v["acknowledge"], false);
    assert!(!v["flags"].as_array().unwrap().is_empty());

    let out = explain(&config, &dir.path().join("missing.eml"), true);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("cannot read"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
