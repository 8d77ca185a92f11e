//! The register's command line on the demo's register: each changing command with `--by`
//! (and the OS user as default), the list filters, the form, the exports, purge and audit.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::TestDatabase;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

struct Checkout(tempfile::TempDir);

impl Checkout {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            &tmp.path().join("config"),
        );
        TestDatabase::for_dir(tmp.path())
            .point_shipped_config(&tmp.path().join("config/klachtpost.toml"));
        let c = Checkout(tmp);
        c.ok(&["demo"]);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_klachtpost"))
            .args(args)
            .current_dir(self.0.path())
            .env("USER", "os-user")
            .env_remove("KLACHTPOST_CONFIG")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn last_entry(&self, reference: &str) -> Value {
        let case = self.json(&["cases", "show", reference, "--json"]);
        case["history"].as_array().unwrap().last().unwrap().clone()
    }
}

#[test]
fn the_changing_commands_record_who_what_and_why() {
    let k = Checkout::new();
    let cases = k.json(&["cases", "list", "--json"]);
    let jan = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["complainant_address"] == "jan.devries@client-example.nl")
        .unwrap();
    let r = jan["reference"].as_str().unwrap().to_string();
    let r = r.as_str();

    k.ok(&[
        "cases",
        "record",
        r,
        "--cause",
        "De trainer was ziek",
        "--structural",
        "no",
        "--measure",
        "Reservetrainer op de lijst",
        "--by",
        "Anna de Boer",
    ]);
    let e = k.last_entry(r);
    assert_eq!(e["event"], "case.recorded");
    assert_eq!(e["actor"], "Anna de Boer");
    let case = k.json(&["cases", "show", r, "--json"]);
    assert_eq!(case["cause"], "De trainer was ziek");
    assert_eq!(case["structural_fault"], false);

    k.ok(&[
        "cases",
        "assign",
        r,
        "bram.visser@voorbeeld.nl",
        "--by",
        "Anna de Boer",
    ]);
    assert_eq!(k.last_entry(r)["event"], "case.assigned");
    let mine = k.json(&[
        "cases",
        "list",
        "--partner",
        "bram.visser@voorbeeld.nl",
        "--json",
    ]);
    assert!(mine.as_array().unwrap().iter().any(|c| c["reference"] == r));

    // Without --by: the OS user.
    k.ok(&["cases", "status", r, "investigating"]);
    let e = k.last_entry(r);
    assert_eq!(e["actor"], "os-user");
    assert_eq!(e["changes"][0]["new"], "investigating");
    let err = k.fails(&["cases", "status", r, "open"]);
    assert!(err.contains("unknown status"), "{err}");
    let err = k.fails(&["cases", "status", r, "closed"]);
    assert!(err.contains("cases close"), "{err}");

    k.ok(&["cases", "note", r, "Klant teruggebeld", "--by", "Bram"]);
    assert_eq!(k.last_entry(r)["detail"], "Klant teruggebeld");

    let err = k.fails(&["cases", "close", r]);
    assert!(err.contains("--satisfied"), "{err}");
    k.ok(&[
        "cases",
        "close",
        r,
        "--satisfied",
        "unknown",
        "--by",
        "Bram",
    ]);
    let open = k.json(&["cases", "list", "--open", "--json"]);
    assert!(!open.as_array().unwrap().iter().any(|c| c["reference"] == r));
    let err = k.fails(&["cases", "note", "KL-1999-0001", "x"]);
    assert!(err.contains("no case KL-1999-0001"), "{err}");

    k.ok(&[
        "cases",
        "reopen",
        r,
        "--reason",
        "Klant belde terug",
        "--by",
        "Bram",
    ]);
    let e = k.last_entry(r);
    assert_eq!(e["event"], "case.reopened");
    assert_eq!(e["reason"], "Klant belde terug");
    k.ok(&["cases", "close", r, "--not-a-complaint", "--by", "Bram"]);
    assert_eq!(
        k.json(&["cases", "show", r, "--json"])["status"],
        "not_a_complaint"
    );
    k.ok(&[
        "cases",
        "hold",
        r,
        "--reason",
        "Claim aangekondigd",
        "--by",
        "Bram",
    ]);
    assert_eq!(
        k.json(&["cases", "show", r, "--json"])["hold_reason"],
        "Claim aangekondigd"
    );
    k.ok(&["cases", "release", r, "--by", "Bram"]);
    assert_eq!(k.last_entry(r)["event"], "case.released");

    // Text output shows the form and the history with who.
    let text = k.ok(&["cases", "show", r]);
    assert!(
        text.contains("Reservetrainer op de lijst") && text.contains("Bram"),
        "{text}"
    );

    // Dates filter on the day received; nothing before 2000.
    let none = k.json(&["cases", "list", "--to", "2000-01-01", "--json"]);
    assert!(none.as_array().unwrap().is_empty());
    k.fails(&["cases", "list", "--from", "gisteren"]);

    // The form, the exports, purge and the audit.
    k.ok(&["cases", "form", r, "--output", "form.html"]);
    let html = std::fs::read_to_string(k.0.path().join("form.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains(r));
    let rows = k.json(&[
        "register",
        "export",
        "--from",
        "2000-01-01",
        "--to",
        "2100-12-31",
        "--format",
        "json",
    ]);
    assert_eq!(
        rows.as_array().unwrap().len(),
        cases.as_array().unwrap().len()
    );
    let csv = k.ok(&[
        "register",
        "export",
        "--from",
        "2000-01-01",
        "--to",
        "2100-12-31",
    ]);
    assert!(csv.starts_with("\"reference\","));
    k.ok(&[
        "person",
        "export",
        "jan.devries@client-example.nl",
        "--output",
        "dsar",
    ]);
    let data: Value =
        serde_json::from_slice(&std::fs::read(k.0.path().join("dsar/data.json")).unwrap()).unwrap();
    assert_eq!(data["cases"][0]["reference"], r);
    let dry = k.json(&["purge", "--dry-run", "--json"]);
    assert_eq!(dry["dry_run"], true);
    assert!(
        dry["cases"].as_array().unwrap().is_empty(),
        "nothing is 2 years old"
    );
    let audit = k.json(&["audit", "verify", "--json"]);
    assert!(audit["broken"].is_null(), "{audit}");
    assert!(audit["entries"].as_u64().unwrap() > 10);
}
