//! The command line as a newcomer uses it: the demo on the shipped default config, the
//! register commands, and check-config's reporting.

mod support;

use std::path::Path;
use std::process::Command;

use support::TestDatabase;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_klachtpost"))
}

/// A working directory holding a copy of the shipped `config/`, as in a fresh checkout (its
/// register on the test database, see `support::database`).
fn checkout_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    copy_dir(&src, &tmp.path().join("config"));
    TestDatabase::for_dir(tmp.path())
        .point_shipped_config(&tmp.path().join("config/klachtpost.toml"));
    tmp
}

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

#[test]
fn demo_shows_the_whole_flow_on_the_default_config() {
    let dir = checkout_copy();
    let out = bin().arg("demo").current_dir(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Ontvangstbevestiging"), "{stdout}");

    // Two acknowledgements were written, none for the out-of-office reply, and each
    // responsible partner was told of the new complaint.
    let ems: Vec<_> = std::fs::read_dir(dir.path().join("var/outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(ems.len(), 4, "{ems:?}");
    let notices = ems
        .iter()
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("Auto-Submitted: auto-generated")
        })
        .count();
    assert_eq!(notices, 2, "{ems:?}");

    // The register, as JSON.
    let out = bin()
        .args(["cases", "list", "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let cases: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 2);
    let jan = cases
        .iter()
        .find(|c| c["complainant_address"] == "jan.devries@client-example.nl")
        .expect("Jan's case");
    let reference = jan["reference"].as_str().unwrap();
    assert!(
        reference.starts_with("KL-") && reference.len() == "KL-2026-0001".len(),
        "{reference}"
    );

    let out = bin()
        .args(["cases", "show", reference, "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let case: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = case["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "reply").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "acknowledgement").count(),
        1,
        "{kinds:?}"
    );

    // explain consults the register read-only: a reply by the subject tag threads to the case.
    let reply = format!(
        "From: Jan de Vries <jan.devries@client-example.nl>\r\nTo: klachten@voorbeeld.nl\r\nSubject: Antw: [{reference}] nog een vraag\r\nDate: Fri, 20 Nov 2026 10:00:00 +0100\r\nMessage-ID: <q@client-example.nl>\r\n\r\nNog een vraag.\r\n"
    );
    std::fs::write(dir.path().join("reply.eml"), reply).unwrap();
    let out = bin()
        .args(["explain", "reply.eml", "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["kind"], "reply");
    assert_eq!(d["case"], reference);
    assert_eq!(d["acknowledge"], false);

    // The out-of-office reply opened no case: it is listed with its reason, not lost.
    let out = bin()
        .args(["mail", "list", "--unfiled", "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unfiled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let unfiled = unfiled.as_array().unwrap();
    assert_eq!(unfiled.len(), 1, "{unfiled:?}");
    assert_eq!(unfiled[0]["kind"], "automatic");
    assert_eq!(unfiled[0]["subject"], "Afwezig: uw bericht");
    assert!(
        unfiled[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("automatic mail: Auto-Submitted"),
        "{}",
        unfiled[0]["reason"]
    );
    let out = bin()
        .args(["mail", "list", "--unfiled"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("automatic") && text.contains("why:"),
        "{text}"
    );
    let out = bin()
        .args(["mail", "list", "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        all.as_array().unwrap().len(),
        4,
        "three complaints/replies and the auto-reply"
    );

    // A partner extends the resolution deadline: recorded, and the complainant is told.
    let out = bin()
        .args([
            "cases",
            "extend",
            reference,
            "--until",
            "2035-03-06",
            "--reason",
            "Wij wachten op het verslag van de trainer.",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without a reason, or to a non-working day, it is refused.
    let out = bin()
        .args([
            "cases",
            "extend",
            reference,
            "--until",
            "2035-03-08",
            "--reason",
            " ",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = bin()
        .args([
            "cases",
            "extend",
            reference,
            "--until",
            "2035-12-25",
            "--reason",
            "x",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a working day"));
    let out = bin()
        .args(["cases", "close", reference, "--satisfied", "ja"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bin()
        .args(["cases", "show", reference, "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let case: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(case["status"], "closed");
    assert_eq!(case["client_satisfied"], true);
    assert_eq!(case["resolution_due_at"], "2035-03-06T16:00:00Z");
    assert!(case["original_resolution_due_at"].is_string());
    assert_eq!(
        case["extension_reason"],
        "Wij wachten op het verslag van de trainer."
    );
    let events: Vec<&str> = case["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"deadline.extended") && events.contains(&"case.closed"),
        "{events:?}"
    );
    let ext = case["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "extension")
        .expect("extension mail");
    assert_eq!(ext["delivery"], "queued");

    // Text output and an unknown reference.
    let out = bin()
        .args(["cases", "show", reference])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("correspondence"));
    let out = bin()
        .args(["cases", "show", "KL-1999-0001"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no case KL-1999-0001"));
}

#[test]
fn check_config_reports_every_problem_and_never_a_password() {
    let dir = checkout_copy();
    let bad = r#"
[firm]
name = "X"
address = "not-an-address"
partners = []
bogus = 1
[mailbox]
kind = "imap"
host = "127.0.0.1"
username = "u"
password_env = "KP_SECRET_FOR_TEST"
[outgoing]
kind = "file"
"#;
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let out = bin()
        .args(["check-config", "--config", "bad.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "firm.address",
        "firm.partners",
        "firm.bogus: unknown key",
        "KP_SECRET_FOR_TEST is not set",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }

    // The shipped default is valid and usable offline.
    let out = bin()
        .args(["check-config"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("outbox"));

    // A password given through the environment is never echoed.
    let good = std::fs::read_to_string(dir.path().join("config/klachtpost.toml"))
        .unwrap()
        .replace("kind = \"maildir\"\npath = \"../var/mailbox\"", "kind = \"imap\"\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\nusername = \"u\"\npassword_env = \"KP_SECRET_FOR_TEST\"");
    assert!(
        good.contains("kind = \"imap\""),
        "the shipped config changed shape"
    );
    std::fs::write(dir.path().join("config/imap.toml"), good).unwrap();
    let out = bin()
        .args(["check-config", "--config", "config/imap.toml"])
        .env("KP_SECRET_FOR_TEST", "s3cr3t-value")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "port 9 should not answer: {all}");
    assert!(all.contains("cannot connect"), "{all}");
    assert!(!all.contains("s3cr3t-value"), "{all}");
}

/// The shipped config with an IMAP mailbox whose password comes from `KP_UNSET_SECRET`.
fn imap_config(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(dir.join("config/klachtpost.toml"))
        .unwrap()
        .replace(
            "kind = \"maildir\"\npath = \"../var/mailbox\"",
            "kind = \"imap\"\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\nusername = \"u\"\npassword_env = \"KP_UNSET_SECRET\"",
        );
    assert!(
        text.contains("kind = \"imap\""),
        "the shipped config changed shape"
    );
    let path = dir.join("config/imap.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_daemon_starts_from_any_working_directory() {
    let dir = checkout_copy();
    let config = dir.path().join("config/klachtpost.toml");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("--config")
        .arg(&config)
        .args(["run", "--once"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Relative paths were taken from the config's folder, not the working directory.
    if let TestDatabase::Sqlite { .. } = TestDatabase::for_dir(dir.path()) {
        assert!(dir.path().join("var/klachtpost.db").exists());
    }
    assert!(dir.path().join("var/mailbox/new").is_dir());
    assert!(!elsewhere.path().join("var").exists());
}

#[test]
fn register_commands_need_no_mailbox_secret() {
    let dir = checkout_copy();
    let config = imap_config(dir.path());
    for args in [
        &["cases", "list"][..],
        &["cases", "list", "--json"],
        &["calendar", "--year", "2027"],
        &["deadlines", "explain", "--received", "2026-04-02 17:55"],
    ] {
        let out = bin()
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("KP_UNSET_SECRET")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The daemon does need it, and says which variable is missing.
    let out = bin()
        .arg("--config")
        .arg(&config)
        .args(["run", "--once"])
        .env_remove("KP_UNSET_SECRET")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KP_UNSET_SECRET is not set"), "{err}");
}

#[test]
fn processes_started_at_once_on_a_new_database_all_come_up() {
    // The daemon and a partner's `cases list` starting together used to race each
    // other's migrations ("table case_sequences already exists").
    for round in 0..3 {
        let dir = checkout_copy();
        let children: Vec<_> = (0..8)
            .map(|_| {
                bin()
                    .args(["cases", "list", "--json"])
                    .current_dir(dir.path())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
        }
    }
}

/// Each thread of process `pid`: its name and the CPUs it may run on (`Name`,
/// `Cpus_allowed_list` per task).
fn threads_cpus(pid: u32) -> Vec<(String, String)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .filter_map(|s| {
            let field = |name: &str| {
                s.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
            };
            Some((field("Name:")?, field("Cpus_allowed_list:")?))
        })
        .collect()
}

/// The scheduling policy of each thread of process `pid` (`stat`'s 41st field: 0 normal,
/// 3 batch).
fn threads_policies(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter_map(|s| {
            // The fields after the command name in parentheses, which may hold spaces:
            // the 3rd field (state) is the first of them.
            let rest = &s[s.rfind(')')? + 2..];
            rest.split(' ').nth(41 - 3)?.parse().ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klachtpost_run_keeps_its_threads_on_one_cpu_on_sqlite_unless_told_otherwise() {
    let own = threads_cpus(std::process::id())[0].1.clone();
    // The default follows the database: one CPU on SQLite, all on PostgreSQL.
    let probe = tempfile::tempdir().unwrap();
    let sqlite = matches!(
        TestDatabase::for_dir(probe.path()),
        TestDatabase::Sqlite { .. }
    );
    for (setting, one) in [
        (None, sqlite),
        (Some("cpus = \"all\""), false),
        (Some("cpus = \"one\""), true),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = support::TestConfig::new(tmp.path());
        if let Some(s) = setting {
            config = config.section("run", s);
        }
        let daemon = support::Daemon::start(tmp.path(), &config.file_text(), "KP_UNUSED", "-");
        daemon
            .wait_for_log(
                "klachtpost is running",
                1,
                std::time::Duration::from_secs(20),
            )
            .await;
        let threads = threads_cpus(daemon.pid());
        // SQLite's checkpoint thread runs on any CPU (it hands nothing to the others).
        let (checkpoint, rest): (Vec<_>, Vec<_>) = threads
            .into_iter()
            .partition(|(name, _)| name == "kp-checkpoint");
        assert_eq!(checkpoint.len(), usize::from(sqlite), "{checkpoint:?}");
        assert!(checkpoint.iter().all(|(_, c)| *c == own), "{checkpoint:?}");
        let cpus: Vec<String> = rest.into_iter().map(|(_, c)| c).collect();
        // The runtime's workers, the database's connection threads, the signal thread.
        assert!(cpus.len() >= 3, "{setting:?}: {cpus:?}");
        if one {
            let first = &cpus[0];
            assert!(
                first.parse::<usize>().is_ok(),
                "one CPU, not {first}; log:\n{}",
                daemon.log()
            );
            assert!(cpus.iter().all(|c| c == first), "{cpus:?}");
            assert_eq!(daemon.count("event=\"run.one_cpu\""), 1, "{}", daemon.log());
            // As batch work (SCHED_BATCH), every thread, those started later too.
            // Read a moment later: a thread may have started meanwhile (the runtime's
            // blocking pool), never one less.
            let policies = threads_policies(daemon.pid());
            assert!(
                policies.len() >= cpus.len() + checkpoint.len(),
                "{policies:?}"
            );
            assert!(policies.iter().all(|p| *p == 3), "{policies:?}");
        } else {
            assert!(cpus.iter().all(|c| *c == own), "{cpus:?} vs {own}");
            let policies = threads_policies(daemon.pid());
            assert!(policies.iter().all(|p| *p == 0), "{policies:?}");
            assert_eq!(daemon.count("run.one_cpu"), 0, "{}", daemon.log());
        }
        let log = daemon.log();
        let status = daemon.stop().await;
        assert!(status.success(), "{status:?}; log:\n{log}");
    }
}
