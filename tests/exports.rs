//! What the register gives out: the CSV export against a golden file, the registration
//! form rendered by a real headless Chromium, a person's export.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use klachtpost::case::{self, Actor, Closing, FormUpdate, Satisfied};
use klachtpost::clock::ManualClock;
use klachtpost::config::Config;
use klachtpost::intake::Pipeline;
use klachtpost::outbox;
use klachtpost::send::Sender;
use klachtpost::store::Store;

fn config(dir: &Path) -> Config {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = format!(
        r#"
[firm]
name = "Adviesbureau Test"
address = "klachten@example-firm.nl"
staff_domains = ["example-firm.nl"]
partners = [{{ name = "Anna Partner", email = "anna@example-firm.nl" }}, {{ name = "Bob Partner", email = "bob@example-firm.nl" }}]
[database]
url = "sqlite://{db}"
[mailbox]
kind = "maildir"
path = "{maildir}"
[outgoing]
kind = "file"
dir = "{outbox}"
[templates]
acknowledgement = "{ack}"
extension = "{ext}"
"#,
        db = dir.join("k.db").display(),
        maildir = dir.join("mailbox").display(),
        outbox = dir.join("outbox").display(),
        ack = root
            .join("config/templates/acknowledgement.nl.txt")
            .display(),
        ext = root.join("config/templates/extension.nl.txt").display(),
    );
    Config::from_toml(Path::new("test.toml"), &text, &[], &|_| None).expect("valid test config")
}

fn complaint(n: u32, name: &str, address: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: \"{name}\" <{address}>\r\nTo: klachten@example-firm.nl\r\nSubject: {subject}\r\nDate: Thu, 19 Nov 2026 10:15:00 +0100\r\nMessage-ID: <c{n}@client.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"factuur.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )
    .into_bytes()
}

fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
}

/// Three cases with fixed times: one handled in time (with a measure that looks like a
/// formula), one extended and closed late, one open.
async fn register(dir: &Path) -> (Config, Store, Vec<String>) {
    let config = config(dir);
    let store = Store::open(&config.database_url).await.unwrap();
    let clock = ManualClock::new(t(2, 9, 0));
    let mut refs = Vec::new();
    for (n, (name, addr, subject, at)) in [
        (
            "Jan de Vries",
            "jan@client.example",
            "Klacht over de factuur <script>alert(1)</script>",
            t(2, 9, 0),
        ),
        (
            "Marie Jansen",
            "marie@client.example",
            "Training te laat begonnen",
            t(3, 14, 30),
        ),
        (
            "Piet Bakker",
            "piet@client.example",
            "Geen reactie",
            t(5, 11, 0),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        clock.set(at);
        let pipeline = Pipeline::new(&config, &store, &clock).unwrap();
        let raw = complaint(
            n as u32,
            name,
            addr,
            subject,
            "De factuur klopt niet & is te hoog.",
        );
        let out = pipeline.take_in(None, &raw, at).await.unwrap();
        refs.push(out.case.unwrap());
    }
    let sender = Sender::from_config(&config).unwrap();
    clock.set(t(2, 9, 5));
    outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .unwrap();

    let mut tx = store.begin().await.unwrap();
    let anna = Actor::new("Anna Partner", t(10, 15, 0));
    case::record(
        &mut tx,
        &refs[0],
        &FormUpdate {
            cause: Some("Uurtarief verkeerd ingevoerd".into()),
            structural: Some(true),
            measure: Some("=HYPERLINK(\"http://evil.example\",\"klik\")".into()),
            handling: Some("Factuur gecorrigeerd, excuses aangeboden".into()),
            result: Some("Creditnota verstuurd".into()),
            evaluation: Some("Goed verlopen; tarieven voortaan dubbel gecontroleerd".into()),
        },
        anna,
    )
    .await
    .unwrap();
    case::close(
        &mut tx,
        &refs[0],
        Closing::Handled(Satisfied::Yes),
        anna,
        None,
    )
    .await
    .unwrap();
    let c = store_case(&mut tx, &refs[1]).await;
    let ext = klachtpost::deadlines::Extension {
        previous: c,
        resolution: Utc.with_ymd_and_hms(2027, 1, 15, 16, 0, 0).unwrap(),
        reason: "Wachten op het verslag van de trainer".into(),
    };
    case::extend(
        &mut tx,
        &refs[1],
        &ext,
        "resolution extended to Fri 15 Jan 2027",
        anna,
    )
    .await
    .unwrap();
    case::record(
        &mut tx,
        &refs[1],
        &FormUpdate {
            structural: Some(false),
            measure: Some("-".into()),
            ..Default::default()
        },
        anna,
    )
    .await
    .unwrap();
    case::close(
        &mut tx,
        &refs[1],
        Closing::Handled(Satisfied::Unknown),
        Actor::new(
            "Bob Partner",
            Utc.with_ymd_and_hms(2027, 1, 20, 10, 0, 0).unwrap(),
        ),
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (config, store, refs)
}

async fn store_case(tx: &mut klachtpost::store::Tx, reference: &str) -> DateTime<Utc> {
    let c = case::find(tx, reference).await.unwrap();
    klachtpost::store::parse_ts(&c.resolution_due_at).unwrap()
}

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
