//! The TOML config: strict (unknown keys are errors), explained (every problem at once,
//! named by its key), overridable from the environment, secrets never printed.
//!
//! Environment overrides: `KLACHTPOST__SECTION__KEY=value` sets `[section] key`, e.g.
//! `KLACHTPOST__DATABASE__URL=sqlite:///srv/klachtpost.db`. Values are read as TOML
//! when they parse as a number or boolean, else as a string.
//!
//! Relative paths (database file, maildir, outbox, templates, CA files) are taken from
//! the working directory.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use secrecy::SecretString;
use serde::Deserialize;

use crate::calendar::{Calendar, CalendarSettings};
use crate::deadlines::DeadlineSettings;

/// The default config file, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/klachtpost.toml";

/// Everything wrong with a config, one sentence per problem.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in {}:\n  - {}", .problems.len(), .path.display(), .problems.join("\n  - "))]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<String>,
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub firm: Firm,
    pub database_url: String,
    pub mailbox: Mailbox,
    pub outgoing: Outgoing,
    pub calendar: Calendar,
    pub calendar_settings: CalendarSettings,
    pub deadlines: DeadlineSettings,
    pub templates: Templates,
    pub intake: IntakeSettings,
}

#[derive(Debug, Clone)]
pub struct Firm {
    pub name: String,
    pub timezone: Tz,
    /// The complaints mailbox address, lower-cased.
    pub address: String,
    /// Domains whose senders are staff, lower-cased.
    pub staff_domains: Vec<String>,
    pub partners: Vec<Partner>,
    /// The authserv-id of the firm's own inbound mail server (RFC 8601), lower-cased.
    /// When set, a mail counts as from staff or a partner only when that server's
    /// Authentication-Results vouch for its From domain; see `classify::authres`.
    pub trusted_authserv_id: Option<String>,
}

impl Firm {
    /// The domain of the complaints address (Message-IDs are made under it).
    pub fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("localhost")
    }

    /// Whether an address is staff: in a staff domain, or a partner.
    pub fn is_staff(&self, address: &str) -> bool {
        let a = address.to_ascii_lowercase();
        let domain = a.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        self.staff_domains.iter().any(|d| d == domain) || self.partners.iter().any(|p| p.email == a)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Partner {
    pub name: String,
    pub email: String,
}

/// TLS mode of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Implicit TLS from the first byte (IMAPS 993, submissions 465).
    Tls,
    /// Plain connection upgraded with STARTTLS; refused if the server does not offer it.
    Starttls,
    /// No TLS. Only sensible on loopback.
    None,
}

/// Where to reach a server and how to log in.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub enum Mailbox {
    Imap {
        server: ServerSettings,
        folder: String,
        processed_folder: String,
        /// Seconds between polls when the server has no IDLE, and the longest IDLE wait.
        poll_interval_secs: u64,
    },
    Maildir {
        path: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub enum Transport {
    Smtp(ServerSettings),
    Sendmail { command: PathBuf },
    File { dir: PathBuf },
}

#[derive(Debug, Clone)]
pub struct Outgoing {
    pub transport: Transport,
    /// The address klachtpost's mail comes from.
    pub from: String,
    /// Give up on a message after this many failed attempts (then the partners are told).
    pub max_attempts: u32,
}

#[derive(Debug, Clone)]
pub struct Templates {
    pub acknowledgement: PathBuf,
    pub extension: PathBuf,
}

#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// The largest mail taken in, in bytes; larger ones are stored raw and flagged, not parsed.
    pub max_message_bytes: usize,
}

// ---- the file as written ----------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct RawFirm {
    name: Option<String>,
    timezone: Option<String>,
    address: Option<String>,
    #[serde(default)]
    staff_domains: Vec<String>,
    #[serde(default)]
    partners: Vec<Partner>,
    trusted_authserv_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawDatabase {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawServer {
    kind: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    security: Option<Security>,
    username: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    // mailbox
    folder: Option<String>,
    processed_folder: Option<String>,
    poll_interval_secs: Option<u64>,
    path: Option<PathBuf>,
    // outgoing
    dir: Option<PathBuf>,
    command: Option<PathBuf>,
    from: Option<String>,
    max_attempts: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct RawTemplates {
    acknowledgement: Option<PathBuf>,
    extension: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct RawIntake {
    max_message_bytes: Option<usize>,
}

const SECTIONS: &[&str] = &[
    "firm",
    "database",
    "mailbox",
    "outgoing",
    "calendar",
    "deadlines",
    "templates",
    "intake",
];

/// Keys valid per kind, so `dir` under an IMAP mailbox is reported, not ignored.
const MAILBOX_IMAP_KEYS: &[&str] = &[
    "kind",
    "host",
    "port",
    "security",
    "username",
    "password_env",
    "password_file",
    "ca_file",
    "folder",
    "processed_folder",
    "poll_interval_secs",
];
const MAILBOX_MAILDIR_KEYS: &[&str] = &["kind", "path"];
const OUTGOING_SMTP_KEYS: &[&str] = &[
    "kind",
    "host",
    "port",
    "security",
    "username",
    "password_env",
    "password_file",
    "ca_file",
    "from",
    "max_attempts",
];
const OUTGOING_FILE_KEYS: &[&str] = &["kind", "dir", "from", "max_attempts"];
const OUTGOING_SENDMAIL_KEYS: &[&str] = &["kind", "command", "from", "max_attempts"];

impl Config {
    /// Read, override from the process environment, and validate.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            problems: vec![format!("cannot read the config file: {e}")],
        })?;
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::from_toml(path, &text, &env, &|name| std::env::var(name).ok())
    }

    /// Parse and validate. `env` is the environment for overrides, `getenv` the lookup
    /// for `password_env`; both injected so tests need not touch the process environment.
    pub fn from_toml(
        path: &Path,
        text: &str,
        env: &[(String, String)],
        getenv: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let err = |problems: Vec<String>| ConfigError {
            path: path.to_path_buf(),
            problems,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| {
            err(vec![format!(
                "not valid TOML: {}",
                e.to_string().trim().replace('\n', " ")
            )])
        })?;
        apply_env_overrides(&mut table, env, &mut problems);

        for key in table.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                problems.push(format!(
                    "[{key}]: unknown section (known: {})",
                    SECTIONS.join(", ")
                ));
            }
        }

        let firm: RawFirm = section(&table, "firm", &mut problems);
        let database: RawDatabase = section(&table, "database", &mut problems);
        let mailbox: RawServer = section(&table, "mailbox", &mut problems);
        let outgoing: RawServer = section(&table, "outgoing", &mut problems);
        let calendar_settings: CalendarSettings = section(&table, "calendar", &mut problems);
        let deadlines: DeadlineSettings = section(&table, "deadlines", &mut problems);
        let templates: RawTemplates = section(&table, "templates", &mut problems);
        let intake: RawIntake = section(&table, "intake", &mut problems);

        // [firm]
        let timezone = match firm
            .timezone
            .as_deref()
            .unwrap_or("Europe/Amsterdam")
            .parse::<Tz>()
        {
            Ok(tz) => tz,
            Err(_) => {
                problems.push(format!(
                    "firm.timezone: {:?} is not an IANA time zone (e.g. \"Europe/Amsterdam\")",
                    firm.timezone.as_deref().unwrap_or_default()
                ));
                chrono_tz::Europe::Amsterdam
            }
        };
        let address = match firm.address.as_deref().map(str::trim) {
            Some(a) if is_address(a) => a.to_ascii_lowercase(),
            Some(a) => {
                problems.push(format!("firm.address: {a:?} is not a mail address"));
                String::new()
            }
            None => {
                problems.push("firm.address: missing (the complaints mailbox address)".into());
                String::new()
            }
        };
        let name = firm.name.unwrap_or_default();
        if name.trim().is_empty() {
            problems.push("firm.name: missing (used in the mail klachtpost sends)".into());
        }
        let mut partners = Vec::new();
        for (i, p) in firm.partners.into_iter().enumerate() {
            if !is_address(&p.email) {
                problems.push(format!(
                    "firm.partners[{i}].email: {:?} is not a mail address",
                    p.email
                ));
            }
            if p.name.trim().is_empty() {
                problems.push(format!("firm.partners[{i}].name: empty"));
            }
            partners.push(Partner {
                name: p.name.trim().to_string(),
                email: p.email.trim().to_ascii_lowercase(),
            });
        }
        if partners.is_empty() {
            problems.push(
                "firm.partners: at least one partner is needed (every case gets a responsible partner)"
                    .into(),
            );
        }
        let staff_domains = firm
            .staff_domains
            .iter()
            .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
            .collect();

        // [database]
        let database_url = database
            .url
            .unwrap_or_else(|| "sqlite://var/klachtpost.db".into());
        if !(database_url.starts_with("sqlite:")) {
            problems.push(format!(
                "database.url: only sqlite: URLs are supported in this version (got a {:?} URL)",
                database_url.split(':').next().unwrap_or_default()
            ));
        }

        // [mailbox]
        let mailbox = match mailbox.kind.as_deref() {
            Some("imap") => {
                check_keys(
                    &table,
                    "mailbox",
                    MAILBOX_IMAP_KEYS,
                    "kind = \"imap\"",
                    &mut problems,
                );
                let server = server_settings("mailbox", &mailbox, 993, getenv, &mut problems);
                Mailbox::Imap {
                    server,
                    folder: mailbox.folder.clone().unwrap_or_else(|| "INBOX".into()),
                    processed_folder: mailbox
                        .processed_folder
                        .clone()
                        .unwrap_or_else(|| "Processed".into()),
                    poll_interval_secs: mailbox.poll_interval_secs.unwrap_or(60).max(1),
                }
            }
            Some("maildir") => {
                check_keys(
                    &table,
                    "mailbox",
                    MAILBOX_MAILDIR_KEYS,
                    "kind = \"maildir\"",
                    &mut problems,
                );
                Mailbox::Maildir {
                    path: mailbox.path.clone().unwrap_or_else(|| "var/mailbox".into()),
                }
            }
            Some(other) => {
                problems.push(format!(
                    "mailbox.kind: {other:?} is not one of \"imap\", \"maildir\""
                ));
                Mailbox::Maildir {
                    path: "var/mailbox".into(),
                }
            }
            None => {
                problems.push("mailbox.kind: missing (\"imap\" or \"maildir\")".into());
                Mailbox::Maildir {
                    path: "var/mailbox".into(),
                }
            }
        };

        // [outgoing]
        let transport = match outgoing.kind.as_deref() {
            Some("smtp") => {
                check_keys(
                    &table,
                    "outgoing",
                    OUTGOING_SMTP_KEYS,
                    "kind = \"smtp\"",
                    &mut problems,
                );
                Transport::Smtp(server_settings(
                    "outgoing",
                    &outgoing,
                    587,
                    getenv,
                    &mut problems,
                ))
            }
            Some("file") => {
                check_keys(
                    &table,
                    "outgoing",
                    OUTGOING_FILE_KEYS,
                    "kind = \"file\"",
                    &mut problems,
                );
                Transport::File {
                    dir: outgoing.dir.clone().unwrap_or_else(|| "var/outbox".into()),
                }
            }
            Some("sendmail") => {
                check_keys(
                    &table,
                    "outgoing",
                    OUTGOING_SENDMAIL_KEYS,
                    "kind = \"sendmail\"",
                    &mut problems,
                );
                Transport::Sendmail {
                    command: outgoing
                        .command
                        .clone()
                        .unwrap_or_else(|| "/usr/sbin/sendmail".into()),
                }
            }
            Some(other) => {
                problems.push(format!(
                    "outgoing.kind: {other:?} is not one of \"smtp\", \"sendmail\", \"file\""
                ));
                Transport::File {
                    dir: "var/outbox".into(),
                }
            }
            None => {
                problems.push("outgoing.kind: missing (\"smtp\", \"sendmail\" or \"file\")".into());
                Transport::File {
                    dir: "var/outbox".into(),
                }
            }
        };
        let from = match outgoing.from.as_deref().map(str::trim) {
            Some(f) if is_address(f) => f.to_string(),
            Some(f) => {
                problems.push(format!("outgoing.from: {f:?} is not a mail address"));
                String::new()
            }
            None => address.clone(),
        };
        let max_attempts = outgoing.max_attempts.unwrap_or(12);
        if max_attempts == 0 {
            problems.push("outgoing.max_attempts: must be at least 1".into());
        }

        // [calendar], [deadlines]
        let calendar = match Calendar::from_settings(&calendar_settings, timezone) {
            Ok(c) => Some(c),
            Err(ps) => {
                problems.extend(ps.into_iter().map(|p| format!("calendar.{p}")));
                None
            }
        };
        problems.extend(
            deadlines
                .validate()
                .into_iter()
                .map(|p| format!("deadlines.{p}")),
        );

        // [templates]
        let acknowledgement = templates
            .acknowledgement
            .unwrap_or_else(|| "config/templates/acknowledgement.nl.txt".into());
        let extension = templates
            .extension
            .unwrap_or_else(|| "config/templates/extension.nl.txt".into());
        for (key, path) in [
            ("acknowledgement", &acknowledgement),
            ("extension", &extension),
        ] {
            if let Err(e) = crate::compose::Template::load(path) {
                problems.push(format!("templates.{key}: {e}"));
            }
        }

        let max_message_bytes = intake.max_message_bytes.unwrap_or(50 * 1024 * 1024);

        match calendar {
            Some(calendar) if problems.is_empty() => Ok(Config {
                path: path.to_path_buf(),
                firm: Firm {
                    name: name.trim().to_string(),
                    timezone,
                    address,
                    staff_domains,
                    partners,
                    trusted_authserv_id: firm
                        .trusted_authserv_id
                        .as_deref()
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty()),
                },
                database_url,
                mailbox,
                outgoing: Outgoing {
                    transport,
                    from,
                    max_attempts,
                },
                calendar,
                calendar_settings,
                deadlines,
                templates: Templates {
                    acknowledgement,
                    extension,
                },
                intake: IntakeSettings { max_message_bytes },
            }),
            _ => Err(err(problems)),
        }
    }
}

fn is_address(s: &str) -> bool {
    let s = s.trim();
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.contains(char::is_whitespace)
                && !s.contains(['<', '>'])
        }
        None => false,
    }
}

/// Deserialize one section, collecting unknown keys and type errors as problems.
fn section<T: serde::de::DeserializeOwned + Default>(
    table: &toml::Table,
    name: &str,
    problems: &mut Vec<String>,
) -> T {
    let Some(value) = table.get(name) else {
        return T::default();
    };
    let text = match toml::to_string(&toml::Table::from_iter([(name.to_string(), value.clone())])) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("[{name}]: {e}"));
            return T::default();
        }
    };
    let inner = match toml::from_str::<toml::Table>(&text) {
        Ok(mut t) => t
            .remove(name)
            .unwrap_or(toml::Value::Table(Default::default())),
        Err(e) => {
            problems.push(format!("[{name}]: {e}"));
            return T::default();
        }
    };
    let mut ignored = Vec::new();
    let result = serde_ignored::deserialize(inner, |path| ignored.push(path.to_string()));
    for key in ignored {
        problems.push(format!("{name}.{key}: unknown key"));
    }
    match result {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!(
                "{name}: {}",
                e.to_string().trim().replace('\n', " ")
            ));
            T::default()
        }
    }
}

/// Report keys present in a section that do not belong to its kind.
fn check_keys(
    table: &toml::Table,
    name: &str,
    allowed: &[&str],
    kind: &str,
    problems: &mut Vec<String>,
) {
    if let Some(toml::Value::Table(t)) = table.get(name) {
        for key in t.keys() {
            if !allowed.contains(&key.as_str()) {
                problems.push(format!("{name}.{key}: not used with {kind}"));
            }
        }
    }
}

fn server_settings(
    name: &str,
    raw: &RawServer,
    default_tls_port: u16,
    getenv: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> ServerSettings {
    let host = raw.host.clone().unwrap_or_default();
    if host.trim().is_empty() {
        problems.push(format!("{name}.host: missing"));
    }
    let security = raw.security.unwrap_or(Security::Tls);
    let port = raw.port.unwrap_or(match (name, security) {
        ("mailbox", Security::Tls) => default_tls_port,
        ("mailbox", _) => 143,
        (_, Security::Tls) => 465,
        _ => 587,
    });
    let password = match (&raw.password_env, &raw.password_file) {
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{name}.password_env, {name}.password_file: give one, not both"
            ));
            None
        }
        (Some(var), None) => match getenv(var) {
            Some(v) if !v.is_empty() => Some(SecretString::from(v)),
            _ => {
                problems.push(format!(
                    "{name}.password_env: the environment variable {var} is not set"
                ));
                None
            }
        },
        (None, Some(file)) => match std::fs::read_to_string(file) {
            Ok(v) => Some(SecretString::from(
                v.trim_end_matches(['\r', '\n']).to_string(),
            )),
            Err(e) => {
                problems.push(format!(
                    "{name}.password_file: cannot read {}: {e}",
                    file.display()
                ));
                None
            }
        },
        (None, None) => None,
    };
    if raw.username.is_some()
        && password.is_none()
        && raw.password_env.is_none()
        && raw.password_file.is_none()
    {
        problems.push(format!(
            "{name}.username is set but no password_env or password_file (passwords are never written in the config)"
        ));
    }
    if name == "mailbox" && raw.username.is_none() {
        problems.push(format!("{name}.username: missing"));
    }
    if let Some(ca) = &raw.ca_file
        && let Err(e) = std::fs::metadata(ca)
    {
        problems.push(format!("{name}.ca_file: cannot read {}: {e}", ca.display()));
    }
    ServerSettings {
        host: host.trim().to_string(),
        port,
        security,
        username: raw.username.clone(),
        password,
        ca_file: raw.ca_file.clone(),
    }
}

/// `KLACHTPOST__SECTION__KEY=value` → `[section] key = value`.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: &[(String, String)],
    problems: &mut Vec<String>,
) {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("KLACHTPOST__") else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            problems.push(format!(
                "environment {name}: expected KLACHTPOST__SECTION__KEY"
            ));
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(|v| !matches!(v, toml::Value::Table(_)))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        match entry {
            toml::Value::Table(t) => {
                t.insert(key, parsed);
            }
            _ => problems.push(format!("environment {name}: [{section}] is not a section")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = env.clone();
        Config::from_toml(Path::new("test.toml"), text, &env, &move |n| {
            lookup.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        })
    }

    const GOOD: &str = r#"
[firm]
name = "Adviesbureau Test"
address = "klachten@firma.nl"
staff_domains = ["firma.nl"]
partners = [{ name = "Anna Partner", email = "anna@firma.nl" }]
[mailbox]
kind = "imap"
host = "127.0.0.1"
port = 1143
security = "none"
username = "klachten"
password_env = "KP_TEST_PW"
[outgoing]
kind = "file"
dir = "var/outbox"
[templates]
acknowledgement = "config/templates/acknowledgement.nl.txt"
"#;

    #[test]
    fn a_good_config_loads_and_hides_the_password() {
        let c = load(GOOD, &[("KP_TEST_PW", "geheim")]).unwrap();
        assert_eq!(c.firm.timezone, chrono_tz::Europe::Amsterdam);
        assert_eq!(c.outgoing.from, "klachten@firma.nl");
        assert!(c.firm.is_staff("Piet@Firma.nl"));
        assert!(!c.firm.is_staff("jan@example.nl"));
        assert!(!format!("{c:?}").contains("geheim"));
        match c.mailbox {
            Mailbox::Imap {
                folder,
                processed_folder,
                ..
            } => {
                assert_eq!(folder, "INBOX");
                assert_eq!(processed_folder, "Processed");
            }
            _ => panic!("imap expected"),
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = GOOD
            .replace("port = 1143", "port = 1143\nfolderr = \"x\"\ndir = \"y\"")
            .replace("\"Adviesbureau Test\"", "\"\"")
            .replace("kind = \"file\"", "kind = \"pigeon\"")
            + "\n[extra]\nx = 1\n";
        let e = load(&text, &[]).unwrap_err();
        let all = e.problems.join("\n");
        for needle in [
            "mailbox.folderr: unknown key",
            "mailbox.dir: not used with kind = \"imap\"",
            "firm.name",
            "outgoing.kind",
            "[extra]: unknown section",
            "KP_TEST_PW is not set",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn environment_overrides_a_key() {
        let c = load(
            GOOD,
            &[
                ("KP_TEST_PW", "x"),
                ("KLACHTPOST__MAILBOX__PORT", "2143"),
                ("KLACHTPOST__DATABASE__URL", "sqlite::memory:"),
            ],
        )
        .unwrap();
        assert_eq!(c.database_url, "sqlite::memory:");
        match c.mailbox {
            Mailbox::Imap { server, .. } => assert_eq!(server.port, 2143),
            _ => panic!("imap expected"),
        }
    }
}
