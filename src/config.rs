//! The TOML config: strict (unknown keys are errors), explained (every problem at once,
//! named by its key), overridable from the environment, secrets never printed.
//!
//! Environment overrides: `KLACHTPOST__SECTION__KEY=value` sets `[section] key`, e.g.
//! `KLACHTPOST__DATABASE__URL=sqlite:///srv/klachtpost.db`. Values are read as TOML
//! when they parse as a number or boolean, else as a string.
//!
//! Relative paths (database file, maildir, outbox, templates, CA and password files) are
//! taken from the folder of the config file, so the daemon starts from any working
//! directory.
//!
//! Secrets are read when the config is loaded for work that needs them
//! ([`Secrets::Read`]); commands that only read the register load it with
//! [`Secrets::Skip`] and need no mailbox or SMTP password.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use secrecy::SecretString;
use serde::Deserialize;

use crate::calendar::{Calendar, CalendarSettings};
use crate::deadlines::DeadlineSettings;

/// The default config file, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/klachtpost.toml";

/// Whether loading a config reads the mailbox and SMTP secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Read them; a missing one is a problem (the daemon, `check-config`).
    Read,
    /// Leave them unread (commands that only read or change the register).
    Skip,
}

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
    /// `[database]`: the URL (SQLite by default, or `postgres://`) with the PostgreSQL
    /// password and CA; shown without the password.
    pub database_url: crate::store::DatabaseUrl,
    pub mailbox: Mailbox,
    pub outgoing: Outgoing,
    pub calendar: Calendar,
    pub calendar_settings: CalendarSettings,
    pub deadlines: DeadlineSettings,
    pub templates: Templates,
    pub intake: IntakeSettings,
    /// `[run]`: how `klachtpost run` uses the machine.
    pub run: RunSettings,
    pub alerts: AlertSettings,
    /// `[mailbox] quarantine_folder`: where a mail that cannot be taken in is moved (IMAP:
    /// a folder, created if missing; Maildir: the Maildir++ subfolder `.<name>`).
    pub quarantine_folder: String,
    pub retention: crate::retention::RetentionSettings,
    /// `[oauth2]`, when given: the token source the mailbox and the sender share.
    pub oauth2: Option<crate::oauth2::TokenSource>,
    /// Assignment, reminders, digest ([`crate::partners`]).
    pub partners: crate::partners::Settings,
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
    /// Who is recorded in the history for a command without `--by` (else the OS user).
    pub operator: Option<String>,
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
    /// How long one network step may go without progress before the connection is given
    /// up (`timeout_secs`, default 60).
    pub timeout: std::time::Duration,
    /// How to log in (`auth`): with the password, or with an OAuth2 token.
    pub auth: Auth,
}

/// `auth = "password" | "oauth2"` of `[mailbox]` and `[outgoing]`.
#[derive(Debug, Clone)]
pub enum Auth {
    Password,
    /// SASL XOAUTH2 / OAUTHBEARER with a token from `[oauth2]` (shared cache).
    OAuth2(crate::oauth2::TokenSource),
}

#[derive(Debug, Clone)]
pub enum Mailbox {
    Imap {
        server: ServerSettings,
        folder: String,
        processed_folder: String,
        /// Seconds between polls when the server has no IDLE, and the longest IDLE wait.
        poll_interval_secs: u64,
        /// A folder that gets a copy of every mail klachtpost sends (appended over IMAP,
        /// marked read); never read by klachtpost.
        sent_folder: Option<String>,
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
    /// `[outgoing.fallback]`: a second transport, used only to tell the partners that the
    /// main one has been down for `alert_after`.
    pub fallback: Option<Transport>,
    /// How long the main transport may be down before the partners are told.
    pub alert_after: chrono::Duration,
    /// No automatic mail to an address that bounced hard within this period.
    pub bounce_block: chrono::Duration,
    /// At most this many automatic mails per outside address per hour, and per day.
    pub max_auto_per_hour: u32,
    pub max_auto_per_day: u32,
}

/// `[templates]`: where the firm's own templates are and which language to write in.
#[derive(Debug, Clone)]
pub struct Templates {
    /// A folder whose files override the built-in templates of the same name (taken
    /// from the config file's folder when relative). None: the built-in templates only.
    pub dir: Option<PathBuf>,
    pub language: crate::compose::LanguageSetting,
    /// Older configs: one file for the acknowledgement's text, in every language.
    pub acknowledgement: Option<PathBuf>,
    /// Older configs: one file for the extension mail's text, in every language.
    pub extension: Option<PathBuf>,
}

impl Templates {
    /// Read and compile every template (built-ins, the firm's files over them); every
    /// problem at once, each naming its file and line.
    pub fn load(&self) -> Result<crate::compose::TemplateSet, crate::compose::TemplateError> {
        self.load_all()
            .map_err(|problems| crate::compose::TemplateError {
                problem: problems.join("\n"),
            })
    }

    fn load_all(&self) -> Result<crate::compose::TemplateSet, Vec<String>> {
        let mut legacy = Vec::new();
        if let Some(p) = &self.acknowledgement {
            legacy.push(("acknowledgement", p.clone()));
        }
        if let Some(p) = &self.extension {
            legacy.push(("extension", p.clone()));
        }
        crate::compose::TemplateSet::load(self.dir.as_deref(), &legacy)
    }
}

#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// The largest mail taken in, in bytes; larger ones go to quarantine, raw, not parsed.
    pub max_message_bytes: usize,
}

/// `[run] cpus`: on how many CPUs `klachtpost run` keeps its threads. The default follows
/// the database ([`Cpus::for_database`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cpus {
    /// One CPU (the default on SQLite): intake, the sender and SQLite's connection threads
    /// hand each mail to one another dozens of times; on one CPU a hand-off is a context
    /// switch, across CPUs a wake-up of another (in a VM, often halted) CPU, which costs
    /// several times more; as batch work (`SCHED_BATCH`), so a thread woken by another
    /// does not take the CPU from it mid-turn (`crate::daemon::keep_to_one_cpu`). One
    /// thread runs on any CPU all the same: SQLite's checkpoints (`store/checkpoint.rs`),
    /// which hand nothing to the others.
    #[default]
    One,
    /// Wherever the operating system puts them (the default on PostgreSQL).
    All,
}

impl Cpus {
    /// The default for a database: one CPU on SQLite, whose statements run on threads of
    /// this process; all on PostgreSQL, whose statements run in the server's processes:
    /// on one CPU klachtpost's threads and the server's backend took turns, and a
    /// 2,000-mail backlog took 44 s instead of 22 (`scripts/bench-backlog --database
    /// postgres --cpus one|all`).
    pub fn for_database(kind: crate::store::Kind) -> Cpus {
        match kind {
            crate::store::Kind::Sqlite => Cpus::One,
            crate::store::Kind::Postgres => Cpus::All,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunSettings {
    pub cpus: Cpus,
}

#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// How long a channel (the mailbox; later outgoing mail) may fail before the partners
    /// are told (`alert_after`, default 30 minutes).
    pub alert_after: std::time::Duration,
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
    operator: Option<String>,
    /// "least_open" or "round_robin" ([`crate::partners::assign`]).
    assignment: Option<String>,
    default_partner: Option<String>,
    trusted_authserv_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawDatabase {
    url: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
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
    timeout_secs: Option<u64>,
    auth: Option<String>,
    // mailbox
    folder: Option<String>,
    processed_folder: Option<String>,
    quarantine_folder: Option<String>,
    poll_interval_secs: Option<u64>,
    sent_folder: Option<String>,
    path: Option<PathBuf>,
    // outgoing
    dir: Option<PathBuf>,
    command: Option<PathBuf>,
    from: Option<String>,
    max_attempts: Option<u32>,
    alert_after: Option<String>,
    bounce_block: Option<String>,
    max_auto_per_address: Option<AutoLimits>,
    fallback: Option<toml::Table>,
}

/// `max_auto_per_address = { hour = 5, day = 20 }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoLimits {
    hour: Option<u32>,
    day: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct RawTemplates {
    dir: Option<PathBuf>,
    language: Option<String>,
    acknowledgement: Option<PathBuf>,
    extension: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct RawAlerts {
    alert_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRetention {
    keep: Option<String>,
    keep_unattached: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawIntake {
    max_message_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRun {
    cpus: Option<String>,
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
    "run",
    "alerts",
    "retention",
    "oauth2",
    "assignment",
    "reminders",
    "digest",
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
    "timeout_secs",
    "auth",
    "folder",
    "processed_folder",
    "quarantine_folder",
    "poll_interval_secs",
    "sent_folder",
];
const MAILBOX_MAILDIR_KEYS: &[&str] = &["kind", "path", "quarantine_folder"];
const OUTGOING_SMTP_KEYS: &[&str] = &[
    "kind",
    "host",
    "port",
    "security",
    "username",
    "password_env",
    "password_file",
    "ca_file",
    "timeout_secs",
    "auth",
    "from",
    "max_attempts",
    "alert_after",
    "bounce_block",
    "max_auto_per_address",
    "fallback",
];
const OUTGOING_FILE_KEYS: &[&str] = &[
    "kind",
    "dir",
    "from",
    "max_attempts",
    "alert_after",
    "bounce_block",
    "max_auto_per_address",
    "fallback",
];
const OUTGOING_SENDMAIL_KEYS: &[&str] = &[
    "kind",
    "command",
    "from",
    "max_attempts",
    "alert_after",
    "bounce_block",
    "max_auto_per_address",
    "fallback",
];
/// The keys of `[outgoing.fallback]`: a transport only.
const FALLBACK_KEYS: &[&str] = &[
    "kind",
    "host",
    "port",
    "security",
    "username",
    "password_env",
    "password_file",
    "ca_file",
    "dir",
    "command",
];

impl Config {
    /// Read, override from the process environment, and validate, secrets included.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with(path, Secrets::Read)
    }

    /// [`Config::load`], choosing whether the secrets are read.
    pub fn load_with(path: &Path, secrets: Secrets) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            problems: vec![format!("cannot read the config file: {e}")],
        })?;
        let env: Vec<(String, String)> = std::env::vars().collect();
        let getenv = |name: &str| std::env::var(name).ok();
        match secrets {
            Secrets::Read => Self::from_toml(path, &text, &env, &getenv),
            // The mail servers' and OAuth2 secrets are left unread (`Skip`); the database's
            // password is read all the same, since every command opens the register.
            Secrets::Skip => Self::parse(path, &text, &env, &getenv, Secrets::Skip),
        }
    }

    /// Parse and validate. `env` is the environment for overrides, `getenv` the lookup
    /// for `password_env`; both injected so tests need not touch the process environment.
    pub fn from_toml(
        path: &Path,
        text: &str,
        env: &[(String, String)],
        getenv: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Self::parse(path, text, env, getenv, Secrets::Read)
    }

    fn parse(
        path: &Path,
        text: &str,
        env: &[(String, String)],
        getenv: &dyn Fn(&str) -> Option<String>,
        secrets: Secrets,
    ) -> Result<Config, ConfigError> {
        let base = path.parent().unwrap_or(Path::new(""));
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
        let run: RawRun = section(&table, "run", &mut problems);
        let alerts: RawAlerts = section(&table, "alerts", &mut problems);
        let retention: RawRetention = section(&table, "retention", &mut problems);
        let oauth2 = table.contains_key("oauth2").then(|| {
            let raw = section(&table, "oauth2", &mut problems);
            crate::oauth2::config::validate(
                raw,
                base,
                getenv,
                secrets == Secrets::Read,
                &mut problems,
            )
            .map(crate::oauth2::TokenSource::new)
        });
        let oauth2_ok = oauth2.clone().flatten();
        let assignment: Vec<crate::partners::assign::RawRule> =
            section(&table, "assignment", &mut problems);
        let reminders: crate::partners::RawReminders = section(&table, "reminders", &mut problems);
        let digest: crate::partners::RawDigest = section(&table, "digest", &mut problems);

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
        let database_url = database_from(base, database, getenv, &mut problems);

        // [mailbox]
        let quarantine_folder = mailbox
            .quarantine_folder
            .clone()
            .unwrap_or_else(|| "Quarantine".into());
        let mailbox = match mailbox.kind.as_deref() {
            Some("imap") => {
                check_keys(
                    &table,
                    "mailbox",
                    MAILBOX_IMAP_KEYS,
                    "kind = \"imap\"",
                    &mut problems,
                );
                let server = server_settings(
                    "mailbox",
                    &mailbox,
                    ServerContext {
                        default_tls_port: 993,
                        base,
                        getenv,
                        secrets,
                        oauth2: &oauth2,
                    },
                    &mut problems,
                );
                Mailbox::Imap {
                    server,
                    folder: mailbox.folder.clone().unwrap_or_else(|| "INBOX".into()),
                    processed_folder: mailbox
                        .processed_folder
                        .clone()
                        .unwrap_or_else(|| "Processed".into()),
                    poll_interval_secs: mailbox.poll_interval_secs.unwrap_or(60).max(1),
                    sent_folder: match mailbox.sent_folder.as_deref().map(str::trim) {
                        Some(f) if f == mailbox.folder.as_deref().unwrap_or("INBOX") => {
                            problems.push(format!(
                                "mailbox.sent_folder: {f:?} is the folder klachtpost reads; sent mail would come back in"
                            ));
                            None
                        }
                        Some("") | None => None,
                        Some(f) => Some(f.to_string()),
                    },
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
                    path: base.join(mailbox.path.clone().unwrap_or_else(|| "var/mailbox".into())),
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

        match &mailbox {
            _ if quarantine_folder.trim().is_empty() => {
                problems.push("mailbox.quarantine_folder: empty".into());
            }
            Mailbox::Imap {
                folder,
                processed_folder,
                ..
            } if quarantine_folder == *folder || quarantine_folder == *processed_folder => {
                problems.push(format!(
                    "mailbox.quarantine_folder: {quarantine_folder:?} must differ from folder and processed_folder"
                ));
            }
            Mailbox::Maildir { .. }
                if quarantine_folder.contains(['/', '\\'])
                    || quarantine_folder.starts_with('.')
                    || ["new", "cur", "tmp"].contains(&quarantine_folder.as_str()) =>
            {
                problems.push(format!(
                    "mailbox.quarantine_folder: {quarantine_folder:?} cannot be a Maildir++ folder name (no '/', no leading '.', not new/cur/tmp)"
                ));
            }
            _ => {}
        }

        // [outgoing]
        let section_keys = |t: Option<&toml::Value>| match t {
            Some(toml::Value::Table(t)) => t.keys().cloned().collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        let outgoing_context = || ServerContext {
            default_tls_port: 587,
            base,
            getenv,
            secrets,
            oauth2: &oauth2,
        };
        let main_transport = transport(
            "outgoing",
            &outgoing,
            &section_keys(table.get("outgoing")),
            None,
            outgoing_context(),
            &mut problems,
        );
        let fallback = outgoing.fallback.as_ref().map(|t| {
            let raw: RawServer = section(
                &toml::Table::from_iter([(
                    "outgoing.fallback".to_string(),
                    toml::Value::Table(t.clone()),
                )]),
                "outgoing.fallback",
                &mut problems,
            );
            transport(
                "outgoing.fallback",
                &raw,
                &t.keys().cloned().collect::<Vec<_>>(),
                Some(FALLBACK_KEYS),
                outgoing_context(),
                &mut problems,
            )
        });
        let mut duration_key = |key: &str, value: &Option<String>, default: &str| {
            let text = value.as_deref().unwrap_or(default);
            parse_period(text).unwrap_or_else(|e| {
                problems.push(format!("outgoing.{key}: {e}"));
                chrono::Duration::zero()
            })
        };
        // Unset: the same as `[alerts] alert_after` (below).
        let outgoing_alert_after = outgoing
            .alert_after
            .is_some()
            .then(|| duration_key("alert_after", &outgoing.alert_after, "30 minutes"));
        let bounce_block = duration_key("bounce_block", &outgoing.bounce_block, "60 days");
        let limits = outgoing.max_auto_per_address.unwrap_or_default();
        let (max_auto_per_hour, max_auto_per_day) =
            (limits.hour.unwrap_or(5), limits.day.unwrap_or(20));
        if max_auto_per_hour == 0 || max_auto_per_day < max_auto_per_hour {
            problems.push(format!(
                "outgoing.max_auto_per_address: hour = {max_auto_per_hour}, day = {max_auto_per_day}: the hour limit must be at least 1 and the day limit at least the hour limit"
            ));
        }
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
        let language = match templates.language.as_deref() {
            None => crate::compose::LanguageSetting::Auto,
            Some(l) => crate::compose::LanguageSetting::parse(l).unwrap_or_else(|| {
                problems.push(format!(
                    "templates.language: {l:?} is not one of \"nl\", \"en\", \"auto\""
                ));
                crate::compose::LanguageSetting::Auto
            }),
        };
        let templates = Templates {
            dir: templates.dir.map(|d| base.join(d)),
            language,
            acknowledgement: templates.acknowledgement.map(|p| base.join(p)),
            extension: templates.extension.map(|p| base.join(p)),
        };
        match templates.load_all() {
            Ok(set) => problems.extend(set.check().into_iter().map(|p| format!("templates: {p}"))),
            Err(ps) => problems.extend(ps.into_iter().map(|p| format!("templates: {p}"))),
        }

        let max_message_bytes = intake.max_message_bytes.unwrap_or(50 * 1024 * 1024);
        let cpus = match run.cpus.as_deref() {
            None => Cpus::for_database(database_url.kind()),
            Some("one") => Cpus::One,
            Some("all") => Cpus::All,
            Some(other) => {
                problems.push(format!(
                    "run.cpus: \"{other}\" is not known (\"one\", the default on SQLite, or \"all\", the default on PostgreSQL)"
                ));
                Cpus::One
            }
        };

        // [alerts]
        let alert_after = match alerts.alert_after.as_deref().map(parse_period) {
            None => std::time::Duration::from_secs(30 * 60),
            Some(Ok(d)) if d > chrono::Duration::zero() => d.to_std().unwrap_or_default(),
            Some(Ok(_)) => {
                problems.push("alerts.alert_after: must be longer than zero".into());
                std::time::Duration::from_secs(30 * 60)
            }
            Some(Err(e)) => {
                problems.push(format!("alerts.alert_after: {e}"));
                std::time::Duration::from_secs(30 * 60)
            }
        };
        // [retention]
        let mut span = |key: &str, value: Option<&str>, default: crate::retention::Span| match value
            .map(crate::retention::Span::parse)
        {
            None => default,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                problems.push(format!("retention.{key}: {e}"));
                default
            }
        };
        let retention = crate::retention::RetentionSettings {
            keep: span(
                "keep",
                retention.keep.as_deref(),
                crate::retention::Span::DEFAULT_KEEP,
            ),
            keep_unattached: span(
                "keep_unattached",
                retention.keep_unattached.as_deref(),
                crate::retention::Span::DEFAULT_KEEP_UNATTACHED,
            ),
        };
        let operator = firm
            .operator
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);

        let partner_settings = crate::partners::settings_from(
            assignment,
            firm.assignment.as_deref(),
            firm.default_partner.as_deref(),
            reminders,
            digest,
            &partners,
            &mut problems,
        );

        match calendar {
            Some(calendar) if problems.is_empty() => Ok(Config {
                path: path.to_path_buf(),
                firm: Firm {
                    name: name.trim().to_string(),
                    timezone,
                    address,
                    staff_domains,
                    partners,
                    operator,
                    trusted_authserv_id: firm
                        .trusted_authserv_id
                        .as_deref()
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty()),
                },
                database_url,
                mailbox,
                outgoing: Outgoing {
                    transport: main_transport,
                    from,
                    max_attempts,
                    fallback,
                    alert_after: outgoing_alert_after.unwrap_or_else(|| {
                        chrono::Duration::from_std(alert_after)
                            .unwrap_or_else(|_| chrono::Duration::minutes(30))
                    }),
                    bounce_block,
                    max_auto_per_hour,
                    max_auto_per_day,
                },
                calendar,
                calendar_settings,
                deadlines,
                templates,
                intake: IntakeSettings { max_message_bytes },
                run: RunSettings { cpus },
                alerts: AlertSettings { alert_after },
                quarantine_folder,
                retention,
                oauth2: oauth2_ok,
                partners: partner_settings,
            }),
            _ => Err(err(problems)),
        }
    }
}

/// A transport section (`[outgoing]`, `[outgoing.fallback]`) with its listed `keys`.
fn transport(
    name: &str,
    raw: &RawServer,
    keys: &[String],
    only: Option<&[&str]>,
    cx: ServerContext<'_>,
    problems: &mut Vec<String>,
) -> Transport {
    let base = cx.base;
    match raw.kind.as_deref() {
        Some("smtp") => {
            check_listed(
                name,
                keys,
                only.unwrap_or(OUTGOING_SMTP_KEYS),
                "kind = \"smtp\"",
                problems,
            );
            Transport::Smtp(server_settings(name, raw, cx, problems))
        }
        Some("file") => {
            check_listed(
                name,
                keys,
                only.unwrap_or(OUTGOING_FILE_KEYS),
                "kind = \"file\"",
                problems,
            );
            Transport::File {
                dir: base.join(raw.dir.clone().unwrap_or_else(|| "var/outbox".into())),
            }
        }
        Some("sendmail") => {
            check_listed(
                name,
                keys,
                only.unwrap_or(OUTGOING_SENDMAIL_KEYS),
                "kind = \"sendmail\"",
                problems,
            );
            Transport::Sendmail {
                command: raw
                    .command
                    .clone()
                    .unwrap_or_else(|| "/usr/sbin/sendmail".into()),
            }
        }
        Some(other) => {
            problems.push(format!(
                "{name}.kind: {other:?} is not one of \"smtp\", \"sendmail\", \"file\""
            ));
            Transport::File {
                dir: "var/outbox".into(),
            }
        }
        None => {
            problems.push(format!(
                "{name}.kind: missing (\"smtp\", \"sendmail\" or \"file\")"
            ));
            Transport::File {
                dir: "var/outbox".into(),
            }
        }
    }
}

fn check_listed(
    name: &str,
    keys: &[String],
    allowed: &[&str],
    kind: &str,
    problems: &mut Vec<String>,
) {
    for key in keys {
        if !allowed.contains(&key.as_str()) {
            problems.push(format!("{name}.{key}: not used with {kind}"));
        }
    }
}

/// A period of real time as people write it: "30 minutes", "2 hours", "1 h 30 min",
/// "60 days", "1 week" (also "s", "min", "h", "d", and Dutch "minuten", "uur", "dagen",
/// "weken"). Zero is allowed here; a key that needs more says so itself.
pub fn parse_period(text: &str) -> Result<chrono::Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a period such as \"30 minutes\", \"2 hours\" or \"60 days\" (units: s, min, h, days, weeks)"
        )
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return Err(bad());
    }
    let mut seconds: i64 = 0;
    for pair in words.chunks(2) {
        let n: u32 = pair[0].parse().map_err(|_| bad())?;
        let unit: i64 = match pair[1].to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" | "seconde" | "seconden" => 1,
            "min" | "mins" | "minute" | "minutes" | "minuut" | "minuten" => 60,
            "h" | "hour" | "hours" | "uur" | "uren" => 3600,
            "d" | "day" | "days" | "dag" | "dagen" => 86_400,
            "week" | "weeks" | "weken" => 7 * 86_400,
            _ => return Err(bad()),
        };
        seconds = seconds.saturating_add(i64::from(n) * unit);
    }
    chrono::Duration::try_seconds(seconds).ok_or_else(bad)
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

/// What [`server_settings`] needs besides the section itself.
struct ServerContext<'a> {
    default_tls_port: u16,
    /// The config file's folder: relative paths are taken from it.
    base: &'a Path,
    getenv: &'a dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
    /// `[oauth2]`: `None` without the section, `Some(None)` when it has problems.
    oauth2: &'a Option<Option<crate::oauth2::TokenSource>>,
}

fn server_settings(
    name: &str,
    raw: &RawServer,
    cx: ServerContext<'_>,
    problems: &mut Vec<String>,
) -> ServerSettings {
    let ServerContext {
        default_tls_port,
        base,
        getenv,
        secrets,
        oauth2,
    } = cx;
    let auth = server_auth(name, raw, oauth2, problems);
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
    let password_file = raw.password_file.as_ref().map(|f| base.join(f));
    let ca_file = raw.ca_file.as_ref().map(|f| base.join(f));
    let password = if secrets == Secrets::Skip {
        // Still say when both are given: that is wrong whatever the command.
        if raw.password_env.is_some() && password_file.is_some() {
            problems.push(format!(
                "{name}.password_env, {name}.password_file: give one, not both"
            ));
        }
        None
    } else {
        secret_from(
            (
                &format!("{name}.password_env"),
                &format!("{name}.password_file"),
            ),
            raw.password_env.as_deref(),
            password_file.as_deref(),
            getenv,
            problems,
        )
    };
    if matches!(auth, Auth::Password)
        && raw.username.is_some()
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
    if let Some(ca) = &ca_file
        && let Err(e) = std::fs::metadata(ca)
    {
        problems.push(format!("{name}.ca_file: cannot read {}: {e}", ca.display()));
    }
    let timeout_secs = raw.timeout_secs.unwrap_or(60);
    if timeout_secs == 0 {
        problems.push(format!("{name}.timeout_secs: must be at least 1"));
    }
    ServerSettings {
        host: host.trim().to_string(),
        port,
        security,
        username: raw.username.clone(),
        password,
        ca_file,
        timeout: std::time::Duration::from_secs(timeout_secs.max(1)),
        auth,
    }
}

/// `auth` of a server section. `oauth2` is `None` without an `[oauth2]` section and
/// `Some(None)` when that section has problems (already reported).
fn server_auth(
    name: &str,
    raw: &RawServer,
    oauth2: &Option<Option<crate::oauth2::TokenSource>>,
    problems: &mut Vec<String>,
) -> Auth {
    match raw.auth.as_deref() {
        None | Some("password") => Auth::Password,
        Some("oauth2") => {
            // The mailbox reports a missing username already.
            if name != "mailbox" && raw.username.is_none() {
                problems.push(format!(
                    "{name}.username: missing (the mailbox address to log in as with OAuth2)"
                ));
            }
            if raw.password_env.is_some() || raw.password_file.is_some() {
                problems.push(format!(
                    "{name}.password_env / password_file: not used with auth = \"oauth2\""
                ));
            }
            match oauth2 {
                Some(Some(tokens)) => Auth::OAuth2(tokens.clone()),
                Some(None) => Auth::Password,
                None => {
                    problems.push(format!(
                        "{name}.auth = \"oauth2\" needs an [oauth2] section"
                    ));
                    Auth::Password
                }
            }
        }
        Some(other) => {
            problems.push(format!(
                "{name}.auth: {other:?} is not one of \"password\", \"oauth2\""
            ));
            Auth::Password
        }
    }
}

/// A secret given by `env_key` (an environment variable's name) or `file_key` (a file
/// whose content, without its final line break, is the secret): one, not both. `None`
/// when neither is given, or when the one given cannot be read (then a problem names the
/// key, never the secret).
pub(crate) fn secret_from(
    (env_key, file_key): (&str, &str),
    env: Option<&str>,
    file: Option<&Path>,
    getenv: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<SecretString> {
    match (env, file) {
        (Some(_), Some(_)) => {
            problems.push(format!("{env_key}, {file_key}: give one, not both"));
            None
        }
        (Some(var), None) => match getenv(var) {
            Some(v) if !v.is_empty() => Some(SecretString::from(v)),
            _ => {
                problems.push(format!(
                    "{env_key}: the environment variable {var} is not set"
                ));
                None
            }
        },
        (None, Some(file)) => match std::fs::read_to_string(file) {
            Ok(v) => Some(SecretString::from(
                v.trim_end_matches(['\r', '\n']).to_string(),
            )),
            Err(e) => {
                problems.push(format!("{file_key}: cannot read {}: {e}", file.display()));
                None
            }
        },
        (None, None) => None,
    }
}

/// `[database]`: a SQLite URL (relative paths from the config's folder) or a PostgreSQL
/// one, with the password from `password_env` / `password_file` (read even for commands
/// that leave the mail servers' secrets unread: every command opens the register) and
/// `ca_file` for TLS.
fn database_from(
    base: &Path,
    raw: RawDatabase,
    getenv: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> crate::store::DatabaseUrl {
    use crate::store::{DatabaseUrl, Kind};
    let url = sqlite_url_from(
        base,
        &raw.url
            .unwrap_or_else(|| "sqlite://var/klachtpost.db".into()),
    );
    let mut database = DatabaseUrl::new(url);
    let scheme = database.split(':').next().unwrap_or_default().to_string();
    match database.kind() {
        Kind::Sqlite if scheme != "sqlite" => {
            problems.push(format!(
                "database.url: a {scheme:?} URL; klachtpost takes sqlite: or postgres:// URLs"
            ));
            return database;
        }
        Kind::Sqlite => {
            for (key, given) in [
                ("password_env", raw.password_env.is_some()),
                ("password_file", raw.password_file.is_some()),
                ("ca_file", raw.ca_file.is_some()),
            ] {
                if given {
                    problems.push(format!(
                        "database.{key}: only for a postgres:// url (SQLite is a file)"
                    ));
                }
            }
            return database;
        }
        Kind::Postgres => {}
    }
    if let Err(e) = crate::store::pg_options(&database) {
        problems.push(format!("database.url: {e}"));
    }
    let password_file = raw.password_file.as_ref().map(|f| base.join(f));
    // Neither given: the URL's own password, or libpq's PGPASSWORD / ~/.pgpass.
    database.password = secret_from(
        ("database.password_env", "database.password_file"),
        raw.password_env.as_deref(),
        password_file.as_deref(),
        getenv,
        problems,
    );
    database.ca_file = raw.ca_file.as_ref().map(|f| base.join(f));
    if let Some(ca) = &database.ca_file
        && let Err(e) = std::fs::metadata(ca)
    {
        problems.push(format!(
            "database.ca_file: cannot read {}: {e}",
            ca.display()
        ));
    }
    database
}

/// A SQLite URL with its relative file path taken from `base` (the config's folder).
/// `sqlite::memory:`, absolute paths and other schemes are left as they are.
fn sqlite_url_from(base: &Path, url: &str) -> String {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return url.to_string();
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (file, query) = match rest.split_once('?') {
        Some((f, q)) => (f, Some(q)),
        None => (rest, None),
    };
    if file.is_empty() || file.starts_with(':') || Path::new(file).is_absolute() {
        return url.to_string();
    }
    let joined = base.join(file);
    let mut out = format!("sqlite://{}", joined.display());
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
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
    fn a_secret_comes_from_one_place_and_a_problem_never_shows_it() {
        use secrecy::ExposeSecret;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret with space \r\n").unwrap();
        let getenv = |name: &str| (name == "KP_SET").then(|| "from-env".to_string());
        let keys = ("x.password_env", "x.password_file");
        let mut problems = Vec::new();
        let from_file = secret_from(keys, None, Some(&file), &getenv, &mut problems).unwrap();
        assert_eq!(from_file.expose_secret(), "s3cret with space ");
        let from_env = secret_from(keys, Some("KP_SET"), None, &getenv, &mut problems).unwrap();
        assert_eq!(from_env.expose_secret(), "from-env");
        assert!(secret_from(keys, None, None, &getenv, &mut problems).is_none());
        assert!(problems.is_empty(), "{problems:?}");

        assert!(secret_from(keys, Some("KP_SET"), Some(&file), &getenv, &mut problems).is_none());
        assert!(secret_from(keys, Some("KP_UNSET"), None, &getenv, &mut problems).is_none());
        let missing = dir.path().join("absent");
        assert!(secret_from(keys, None, Some(&missing), &getenv, &mut problems).is_none());
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!(
            problems[0],
            "x.password_env, x.password_file: give one, not both"
        );
        assert!(problems[1].starts_with("x.password_env: the environment variable KP_UNSET"));
        assert!(problems[2].starts_with("x.password_file: cannot read"));
        assert!(!problems.join(" ").contains("s3cret") && !problems.join(" ").contains("from-env"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = GOOD
            .replace("port = 1143", "port = 1143\nfolderr = \"x\"\ndir = \"y\"")
            .replace("\"Adviesbureau Test\"", "\"\"")
            .replace("kind = \"file\"", "kind = \"pigeon\"")
            + "\n[extra]\nx = 1\n[run]\ncpus = \"two\"\n";
        let e = load(&text, &[]).unwrap_err();
        let all = e.problems.join("\n");
        for needle in [
            "mailbox.folderr: unknown key",
            "mailbox.dir: not used with kind = \"imap\"",
            "firm.name",
            "outgoing.kind",
            "[extra]: unknown section",
            "run.cpus: \"two\" is not known",
            "KP_TEST_PW is not set",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn relative_paths_are_taken_from_the_config_folder() {
        let base = Path::new("/etc/klachtpost");
        assert_eq!(
            sqlite_url_from(base, "sqlite://var/k.db"),
            "sqlite:///etc/klachtpost/var/k.db"
        );
        assert_eq!(
            sqlite_url_from(base, "sqlite:../k.db?mode=rwc"),
            "sqlite:///etc/klachtpost/../k.db?mode=rwc"
        );
        for kept in ["sqlite:///srv/k.db", "sqlite::memory:", "postgres://h/db"] {
            assert_eq!(sqlite_url_from(base, kept), kept);
        }
        let text = GOOD.replace("dir = \"var/outbox\"", "dir = \"out\"");
        let c = Config::from_toml(Path::new("/etc/klachtpost/k.toml"), &text, &[], &|_| {
            Some("pw".into())
        });
        // The template does not exist under /etc/klachtpost; the problem names that path.
        let e = c.unwrap_err().problems.join("\n");
        assert!(e.contains("/etc/klachtpost/config/templates"), "{e}");
    }

    #[test]
    fn skipping_secrets_needs_no_password() {
        let c = Config::parse(Path::new("t.toml"), GOOD, &[], &|_| None, Secrets::Skip).unwrap();
        match c.mailbox {
            Mailbox::Imap { server, .. } => assert!(server.password.is_none()),
            _ => panic!("imap expected"),
        }
        assert!(
            load(GOOD, &[]).is_err(),
            "reading secrets reports the missing one"
        );
    }

    #[test]
    fn periods_read_as_people_write_them() {
        use std::time::Duration;
        let secs = |t: &str| parse_period(t).map(|d| d.num_seconds());
        assert_eq!(secs("30 min"), Ok(1800));
        assert_eq!(secs("2 hours"), Ok(7200));
        assert_eq!(secs("1 h 30 min"), Ok(5400));
        assert_eq!(secs("3 s"), Ok(3));
        assert_eq!(secs("60 dagen"), Ok(60 * 86_400));
        assert_eq!(secs("1 week 2 days"), Ok(9 * 86_400));
        assert_eq!(secs("0 min"), Ok(0));
        for bad in ["", "5", "30", "min", "30 parsecs", "-1 min", "1 h 30"] {
            assert!(parse_period(bad).is_err(), "{bad:?}");
        }
        let zero = load(
            &format!("{GOOD}\n[alerts]\nalert_after = \"0 min\"\n"),
            &[("KP_TEST_PW", "x")],
        )
        .unwrap_err();
        assert!(
            zero.problems
                .join("\n")
                .contains("alerts.alert_after: must be longer than zero")
        );
        let c = load(
            &format!("{GOOD}\n[alerts]\nalert_after = \"5 min\"\n"),
            &[("KP_TEST_PW", "x")],
        )
        .unwrap();
        assert_eq!(c.alerts.alert_after, Duration::from_secs(300));
        assert_eq!(
            load(GOOD, &[("KP_TEST_PW", "x")])
                .unwrap()
                .alerts
                .alert_after,
            Duration::from_secs(1800)
        );
        let e = load(
            &format!("{GOOD}\n[alerts]\nalert_after = \"soon\"\n"),
            &[("KP_TEST_PW", "x")],
        )
        .unwrap_err();
        assert!(e.problems.join("\n").contains("alerts.alert_after"), "{e}");
    }

    #[test]
    fn outgoing_limits_fallback_and_periods() {
        let c = load(GOOD, &[("KP_TEST_PW", "x")]).unwrap();
        assert_eq!(c.outgoing.alert_after, chrono::Duration::minutes(30));
        assert_eq!(c.outgoing.bounce_block, chrono::Duration::days(60));
        assert_eq!(
            (c.outgoing.max_auto_per_hour, c.outgoing.max_auto_per_day),
            (5, 20)
        );
        assert!(c.outgoing.fallback.is_none());
        let text = GOOD.replace(
            "dir = \"var/outbox\"",
            "dir = \"var/outbox\"\nalert_after = \"2 hours\"\nbounce_block = \"7 days\"\nmax_auto_per_address = { hour = 2, day = 3 }\n[outgoing.fallback]\nkind = \"file\"\ndir = \"var/fallback\"",
        );
        let c = load(&text, &[("KP_TEST_PW", "x")]).unwrap();
        assert_eq!(c.outgoing.alert_after, chrono::Duration::hours(2));
        assert_eq!(c.outgoing.bounce_block, chrono::Duration::days(7));
        assert_eq!(
            (c.outgoing.max_auto_per_hour, c.outgoing.max_auto_per_day),
            (2, 3)
        );
        assert!(matches!(c.outgoing.fallback, Some(Transport::File { .. })));
        let bad = GOOD.replace(
            "dir = \"var/outbox\"",
            "dir = \"var/outbox\"\nalert_after = \"soon\"\nmax_auto_per_address = { hour = 0 }\n[outgoing.fallback]\nkind = \"file\"\nfolder = \"x\"",
        );
        let all = load(&bad, &[("KP_TEST_PW", "x")])
            .unwrap_err()
            .problems
            .join("\n");
        for needle in [
            "outgoing.alert_after: \"soon\"",
            "outgoing.max_auto_per_address: hour = 0",
            "outgoing.fallback.folder: not used with kind = \"file\"",
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
        assert_eq!(c.database_url.as_str(), "sqlite::memory:");
        match c.mailbox {
            Mailbox::Imap { server, .. } => assert_eq!(server.port, 2143),
            _ => panic!("imap expected"),
        }
    }

    #[test]
    fn the_quarantine_folder_has_a_default_and_is_checked() {
        let pw = [("KP_TEST_PW", "x")];
        assert_eq!(load(GOOD, &pw).unwrap().quarantine_folder, "Quarantine");
        let named = GOOD.replace("port = 1143", "port = 1143\nquarantine_folder = \"Apart\"");
        assert_eq!(load(&named, &pw).unwrap().quarantine_folder, "Apart");
        let same = GOOD.replace("port = 1143", "port = 1143\nquarantine_folder = \"INBOX\"");
        let e = load(&same, &pw).unwrap_err();
        assert!(
            e.problems.join("\n").contains("mailbox.quarantine_folder"),
            "{e}"
        );
        let maildir = |name: &str| {
            GOOD.replace(
                "kind = \"imap\"\nhost = \"127.0.0.1\"\nport = 1143\nsecurity = \"none\"\nusername = \"klachten\"\npassword_env = \"KP_TEST_PW\"",
                &format!("kind = \"maildir\"\npath = \"var/mailbox\"\nquarantine_folder = \"{name}\""),
            )
        };
        assert_eq!(
            load(&maildir("Apart"), &[]).unwrap().quarantine_folder,
            "Apart"
        );
        for bad in ["a/b", ".x", "cur", ""] {
            let e = load(&maildir(bad), &[]).unwrap_err();
            assert!(
                e.problems.join("\n").contains("mailbox.quarantine_folder"),
                "{bad:?}: {e}"
            );
        }
    }
}
