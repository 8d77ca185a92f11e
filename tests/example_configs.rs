//! Every config file that ships in `config/` is valid as shipped: `check-config --offline`
//! accepts it, run from a copy of the checkout with each `*_env` variable it names set (as
//! a firm would have them). An example that drifts from the config schema fails here.

use std::path::Path;
use std::process::Command;

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

/// The environment variables an uncommented `something_env = "NAME"` line names.
fn env_names(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.split_once('=')?;
            key.trim().ends_with("_env").then(|| {
                value
                    .split('#')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .trim_matches('"')
                    .to_string()
            })
        })
        .collect()
}

#[test]
fn every_shipped_config_passes_check_config_offline() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        &tmp.path().join("config"),
    );
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(tmp.path().join("config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_klachtpost"));
        cmd.args(["check-config", "--offline", "--config"])
            .arg(&path)
            .current_dir(tmp.path())
            .env_remove("KLACHTPOST_CONFIG");
        for name in env_names(&text) {
            cmd.env(name, "example-secret");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{} does not pass check-config --offline:\n{}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    checked.sort();
    for expected in [
        "klachtpost.example-gmail.toml",
        "klachtpost.example-imap.toml",
        "klachtpost.example-microsoft365.toml",
        "klachtpost.toml",
    ] {
        assert!(checked.iter().any(|c| c == expected), "{checked:?}");
    }
}
