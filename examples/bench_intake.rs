//! Intake and outbox throughput on the embedded default (SQLite file, file outbox):
//! `scripts/bench` runs it in release mode and prints figures. Not a test: nothing here
//! asserts a time.

use std::path::Path;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use klachtpost::clock::{Clock, ManualClock};
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
name = "Bench"
address = "klachten@firma.nl"
staff_domains = ["firma.nl"]
partners = [{{ name = "A", email = "a@firma.nl" }}, {{ name = "B", email = "b@firma.nl" }}]
[database]
url = "sqlite://{db}"
[mailbox]
kind = "maildir"
path = "{md}"
[outgoing]
kind = "file"
dir = "{out}"
[templates]
acknowledgement = "{ack}"
extension = "{ext}"
"#,
        db = dir.join("b.db").display(),
        md = dir.join("md").display(),
        out = dir.join("out").display(),
        ack = root
            .join("config/templates/acknowledgement.nl.txt")
            .display(),
        ext = root.join("config/templates/extension.nl.txt").display(),
    );
    Config::from_toml(Path::new("bench.toml"), &text, &[], &|_| None).expect("bench config")
}

fn complaint(i: usize) -> Vec<u8> {
    let body = "Ik ben niet tevreden over de gang van zaken bij het project. ".repeat(60);
    format!(
        "From: Klant {i} <klant{i}@example.nl>\r\nTo: klachten@firma.nl\r\nSubject: Klacht nummer {i}\r\nDate: Thu, 19 Nov 2026 10:15:00 +0100\r\nMessage-ID: <bench-{i}@example.nl>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = config(tmp.path());
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 0).unwrap());
    let store = Store::open(&config.database_url).await.expect("store");
    let pipeline = Pipeline::new(&config, &store, &clock).expect("pipeline");
    let mails: Vec<Vec<u8>> = (0..n).map(complaint).collect();
    let bytes: usize = mails.iter().map(Vec::len).sum();

    let mut lat = Vec::with_capacity(n);
    let t0 = Instant::now();
    for (i, raw) in mails.iter().enumerate() {
        let t = Instant::now();
        let o = pipeline
            .take_in(Some(&format!("bench:{i}")), raw, clock.now())
            .await
            .expect("intake");
        assert!(o.opened);
        lat.push(t.elapsed());
    }
    let intake = t0.elapsed();
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];

    let sender = Sender::from_config(&config).expect("sender");
    let t1 = Instant::now();
    let drained = outbox::drain_once(&store, &sender, &clock, &config)
        .await
        .expect("drain");
    let send = t1.elapsed();

    println!(
        "intake: {n} complaints ({:.1} KiB each), each a case + a queued acknowledgement",
        bytes as f64 / n as f64 / 1024.0
    );
    println!(
        "  total {:.2?}, {:.0} mails/s, p50 {:.2?}, p99 {:.2?}",
        intake,
        n as f64 / intake.as_secs_f64(),
        p(0.5),
        p(0.99)
    );
    println!(
        "outbox: {} acknowledgements written as files in {:.2?}, {:.0}/s",
        drained.sent,
        send,
        drained.sent as f64 / send.as_secs_f64()
    );
    println!("peak RSS: {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
}
