//! What the register gives out: the CSV export against a golden file, the registration
//! form rendered by a real headless Chromium, a person's export.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{NaiveDate, TimeZone, Utc};

mod register_fixture;
mod support;
use register_fixture::register;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[tokio::test]
async fn the_register_export_matches_the_golden_csv_and_defuses_formulas() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, store, _) = register(tmp.path()).await;
    let rows = klachtpost::export::register::rows(
        &store.list_cases().await.unwrap(),
        NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        config.firm.timezone,
        Utc.with_ymd_and_hms(2027, 2, 1, 12, 0, 0).unwrap(),
    );
    let csv = klachtpost::export::register::to_csv(&rows);
    let path = golden("register-export.csv");
    if std::env::var_os("KLACHTPOST_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &csv).unwrap();
    }
    let want =
        std::fs::read_to_string(&path).expect("golden file (KLACHTPOST_UPDATE_GOLDEN=1 writes it)");
    assert_eq!(csv, want);
    // What the golden file shows, asserted so a regenerated file cannot hide a regression.
    assert!(csv.starts_with("\"reference\",\"received\",\"channel\""));
    assert!(csv.contains("\"'=HYPERLINK("), "formula defused: {csv}");
    assert!(csv.contains(",\"'-\","), "a lone dash is defused too");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].acknowledged_in_time, "yes");
    assert_eq!(rows[0].resolved_in_time, "yes");
    assert_eq!(rows[0].satisfied, "yes");
    assert_eq!(rows[1].extended, "yes");
    assert_eq!(rows[1].resolved_in_time, "no");
    assert_eq!(rows[1].satisfied, "unknown");
    assert_eq!(rows[2].status, "new");
    assert_eq!(rows[2].acknowledged_in_time, "no", "never sent, past due");
    // Nothing personal in the auditor's export.
    for needle in [
        "Jan de Vries",
        "jan@client.example",
        "Klacht over de factuur",
    ] {
        assert!(!csv.contains(needle), "{needle}");
    }
}

#[tokio::test]
async fn the_form_is_one_self_contained_escaped_page_that_chromium_renders() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, store, refs) = register(tmp.path()).await;
    let d = store.case(&refs[0]).await.unwrap().unwrap();
    let html = klachtpost::export::form::render(
        &d,
        &config.firm.name,
        config.firm.timezone,
        Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap(),
    );
    // Self-contained: no scripts, no external assets; values escaped.
    assert!(!html.to_lowercase().contains("<script"), "{html}");
    for bad in ["src=", "href=", "@import", "url("] {
        assert!(!html.contains(bad), "{bad} in the form");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("De factuur klopt niet &amp; is te hoog."));
    for want in [
        "Uurtarief verkeerd ingevoerd",
        "Creditnota verstuurd",
        "Structurele fout</th><td>ja",
        "Klant tevreden</th><td>ja",
        "Bijlage: factuur.pdf",
        "Anna Partner",
        "Correspondentie",
        "Verloop",
    ] {
        assert!(html.contains(want), "{want} missing");
    }

    // A real browser opens it: the DOM it builds has the case, and a screenshot is drawn.
    let page = tmp.path().join("form.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());
    let chromium = |args: &[&str]| {
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!(
                "--user-data-dir={}",
                tmp.path().join("chromium-profile").display()
            ))
            .args(args)
            .arg(&url)
            .output()
            .expect("chromium (scripts/install-deps installs it)")
    };
    let out = chromium(&["--dump-dom"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains(&format!("Klachtregistratieformulier {}", refs[0])),
        "{dom}"
    );
    assert!(dom.contains("Uurtarief verkeerd ingevoerd"));
    let shot = tmp.path().join("form.png");
    let out = chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1000,2600",
        "--hide-scrollbars",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Some(dir) = std::env::var_os("KLACHTPOST_SCREENSHOT_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&shot, Path::new(&dir).join("register-form.png")).unwrap();
    }
}

#[tokio::test]
async fn a_person_export_holds_their_cases_messages_and_raw_mails_and_nobody_elses() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, store, refs) = register(tmp.path()).await;
    let address = "JAN@client.example";
    let mut cases = Vec::new();
    for r in klachtpost::store::person::cases_of(store.pool(), address)
        .await
        .unwrap()
    {
        cases.push(store.case(&r).await.unwrap().unwrap());
    }
    let messages = klachtpost::store::person::messages_of(store.pool(), address)
        .await
        .unwrap();
    let out = tmp.path().join("export");
    klachtpost::export::person::write(&out, "jan@client.example", "now".into(), &cases, &messages)
        .unwrap();
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("data.json")).unwrap()).unwrap();
    assert_eq!(data["cases"].as_array().unwrap().len(), 1);
    assert_eq!(data["cases"][0]["reference"], refs[0].as_str());
    let kinds: Vec<&str> = data["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["complaint", "acknowledgement"],
        "their mail and ours to them"
    );
    let raw_file = data["messages"][0]["raw_file"].as_str().unwrap();
    let raw = std::fs::read(out.join(raw_file)).unwrap();
    assert!(String::from_utf8_lossy(&raw).contains("Message-ID: <c0@client.example>"));
    let text = std::fs::read_to_string(out.join("data.json")).unwrap();
    assert!(!text.contains("marie@client.example") && !text.contains("piet@client.example"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(out.join("data.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}
