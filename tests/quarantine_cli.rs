//! `klachtpost quarantine list|retry` as a partner uses them, on the Maildir mailbox:
//! a mail over `intake.max_message_bytes` is quarantined (`.Quarantine/` subfolder), the
//! mail behind it and a second copy of it are handled, the limit is raised, and a retry
//! takes the quarantined mail in.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::TestConfig;

fn bin(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klachtpost"))
        .args(args)
        .arg("--config")
        .arg(dir.join("k.toml"))
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write_config(dir: &Path, max_message_bytes: usize) {
    TestConfig::new(dir)
        .mailbox(&format!(
            "kind = \"maildir\"\npath = \"{}/mailbox\"\nquarantine_folder = \"Apart\"",
            dir.display()
        ))
        .templates(&["acknowledgement", "extension"])
        .section(
            "intake",
            &format!("max_message_bytes = {max_message_bytes}"),
        )
        .section("digest", "schedule = \"never\"")
        .write(&dir.join("k.toml"));
}

fn deliver(dir: &Path, name: &str, raw: &[u8]) {
    let md = dir.join("mailbox");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    std::fs::write(md.join("tmp").join(name), raw).unwrap();
    std::fs::rename(md.join("tmp").join(name), md.join("new").join(name)).unwrap();
}

fn complaint(id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Marieke Jansen <marieke@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht\r\nDate: Thu, 19 Nov 2026 16:55:00 +0100\r\nMessage-ID: <{id}>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_quarantined_mail_is_listed_and_taken_in_by_a_retry_after_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_config(dir, 2000);
    let big = complaint("big-1@client.example", &"Bijlage. ".repeat(400));
    let good = complaint("good-1@client.example", "Het advies kwam te laat.");
    deliver(dir, "1.big", &big);
    deliver(dir, "2.good", &good);
    deliver(dir, "3.good-again", &good);

    let run = bin(dir, &["run", "--once"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(files(&dir.join("mailbox/new")), 0, "nothing left behind");
    // One line says when the mailbox was taken in, and how many mails made progress (the
    // big one into quarantine, the good one, its copy as a duplicate).
    let log = String::from_utf8_lossy(&run.stderr);
    let line = log
        .lines()
        .find(|l| l.contains("event=\"run.taken_in\""))
        .unwrap_or_else(|| panic!("no run.taken_in line: {log}"));
    assert!(line.contains(" mails=3 "), "{line}");
    assert_eq!(
        files(&dir.join("mailbox/cur")),
        2,
        "the good one and its copy"
    );
    assert_eq!(files(&dir.join("mailbox/.Apart/cur")), 1, "the big one");

    let list = bin(dir, &["quarantine", "list", "--json"]);
    assert!(list.status.success());
    let items: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["reference"], "Q-0001");
    assert_eq!(items[0]["status"], "quarantined");
    assert_eq!(items[0]["size"], big.len());
    assert!(
        items[0]["reason"]
            .as_str()
            .unwrap()
            .contains("max_message_bytes")
    );
    let text = stdout(&bin(dir, &["quarantine", "list"]));
    assert!(text.contains("Q-0001"), "{text}");
    // `klachtpost status` counts it.
    let status: serde_json::Value =
        serde_json::from_slice(&bin(dir, &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["quarantined"], 1, "{status}");
    let status = stdout(&bin(dir, &["status"]));
    assert!(
        status.contains("quarantine:       1 mail(s) waiting"),
        "{status}"
    );
    assert!(text.contains("1 duplicate(s)"), "{text}");
    // The copy of the good mail opened no case: `mail list --unfiled` names its original.
    let unfiled: serde_json::Value =
        serde_json::from_slice(&bin(dir, &["mail", "list", "--unfiled", "--json"]).stdout).unwrap();
    let copies: Vec<_> = unfiled
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "duplicate")
        .collect();
    assert_eq!(copies.len(), 1, "{unfiled}");
    let reason = copies[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("duplicate of #{} (case KL-", copies[0]["id"])),
        "{reason}"
    );
    let text = stdout(&bin(dir, &["mail", "list", "--unfiled"]));
    assert!(text.contains("why:     duplicate of #"), "{text}");

    // The partner was told (one notice) and the good mail acknowledged (one, not two).
    let outbox: Vec<String> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| String::from_utf8(std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    // (And the partner's new-complaint notice, issue 11.)
    assert_eq!(outbox.len(), 3, "{outbox:?}");
    assert_eq!(outbox.iter().filter(|m| m.contains("[Q-0001]")).count(), 1);
    assert!(
        outbox.iter().all(|m| !m.contains("Bijlage")),
        "never the content"
    );

    // Before the fix a retry fails and says why (exit 1).
    let retry = bin(dir, &["quarantine", "retry", "Q-0001"]);
    assert!(!retry.status.success());
    assert!(
        stdout(&retry).contains("Q-0001: still cannot be taken in"),
        "{}",
        stdout(&retry)
    );
    // Both an item and --all, or neither: refused.
    assert!(
        !bin(dir, &["quarantine", "retry", "Q-0001", "--all"])
            .status
            .success()
    );
    assert!(!bin(dir, &["quarantine", "retry"]).status.success());

    // The fix: a larger limit. The retry takes it in as a case.
    write_config(dir, 1_000_000);
    let retry = bin(dir, &["quarantine", "retry", "--all"]);
    assert!(
        retry.status.success(),
        "{}{}",
        stdout(&retry),
        String::from_utf8_lossy(&retry.stderr)
    );
    assert!(
        stdout(&retry).contains("Q-0001: taken in, case KL-"),
        "{}",
        stdout(&retry)
    );
    assert!(stdout(&bin(dir, &["quarantine", "list"])).contains("Nothing in quarantine."));
    let status: serde_json::Value =
        serde_json::from_slice(&bin(dir, &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["quarantined"], 0, "{status}");
    let all: serde_json::Value =
        serde_json::from_slice(&bin(dir, &["quarantine", "list", "--all", "--json"]).stdout)
            .unwrap();
    assert_eq!(all[0]["status"], "taken_in");
    assert!(all[0]["case"].as_str().unwrap().starts_with("KL-"));
    let cases: serde_json::Value =
        serde_json::from_slice(&bin(dir, &["cases", "list", "--json"]).stdout).unwrap();
    assert_eq!(cases.as_array().unwrap().len(), 2);
    // Nothing left to retry.
    let again = bin(dir, &["quarantine", "retry", "--all"]);
    assert!(again.status.success());
    assert!(stdout(&again).contains("Nothing in quarantine."));
}
