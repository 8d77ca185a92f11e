//! The tests' configs, written one way: a [`TestConfig`] starts from the embedded default
//! (the test firm with partner Anna, a Maildir `mailbox/` and a file outbox `outbox/` in the
//! test's dir), each test replaces the sections it cares about, and the `[database]` section
//! comes from [`TestDatabase::for_dir`], so the same test runs on SQLite or PostgreSQL
//! (`KLACHTPOST_TEST_DATABASE`).
//!
//! ```ignore
//! let config = TestConfig::new(dir)
//!     .firm(FIRM_TWO_PARTNERS)
//!     .templates(&["acknowledgement"])
//!     .build();
//! let store = support::open_store(&config).await;
//! ```

use std::path::{Path, PathBuf};

use klachtpost::config::Config;
use klachtpost::store::Store;

use super::database::{Secret, TestDatabase};

/// The test firm with one partner.
pub const FIRM: &str = r#"name = "Adviesbureau Test"
address = "klachten@firma.nl"
staff_domains = ["firma.nl"]
partners = [{ name = "Anna Partner", email = "anna@firma.nl" }]"#;

/// The test firm with two partners.
pub const FIRM_TWO_PARTNERS: &str = r#"name = "Adviesbureau Test"
address = "klachten@firma.nl"
staff_domains = ["firma.nl"]
partners = [{ name = "Anna Partner", email = "anna@firma.nl" }, { name = "Bob Partner", email = "bob@firma.nl" }]"#;

/// A built-in template file of the checkout (`config/templates/NAME`), as a TOML string value.
pub fn template(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/templates")
        .join(name)
        .display()
        .to_string()
}

/// A test's config; see the module doc.
#[derive(Clone, Debug)]
pub struct TestConfig {
    sections: Vec<(String, String)>,
    /// TOML appended as written (whole tables with their headers).
    tail: String,
    env: Vec<(String, String)>,
    database: TestDatabase,
}

impl TestConfig {
    /// The embedded default in `dir`: [`FIRM`], Maildir `dir/mailbox`, file outbox
    /// `dir/outbox`, and the test's database.
    pub fn new(dir: &Path) -> TestConfig {
        TestConfig {
            sections: vec![
                ("firm".into(), FIRM.into()),
                (
                    "mailbox".into(),
                    format!(
                        "kind = \"maildir\"\npath = \"{}\"",
                        dir.join("mailbox").display()
                    ),
                ),
                (
                    "outgoing".into(),
                    format!(
                        "kind = \"file\"\ndir = \"{}\"",
                        dir.join("outbox").display()
                    ),
                ),
            ],
            tail: String::new(),
            env: Vec::new(),
            database: TestDatabase::for_dir(dir),
        }
    }

    /// Replaces the `[firm]` section's body.
    pub fn firm(self, body: &str) -> TestConfig {
        self.section("firm", body)
    }

    /// Replaces the `[mailbox]` section's body.
    pub fn mailbox(self, body: &str) -> TestConfig {
        self.section("mailbox", body)
    }

    /// Replaces the `[outgoing]` section's body.
    pub fn outgoing(self, body: &str) -> TestConfig {
        self.section("outgoing", body)
    }

    /// Sets section `[name]` to `body` (replacing it, or adding it at the end).
    pub fn section(mut self, name: &str, body: &str) -> TestConfig {
        match self.sections.iter_mut().find(|(n, _)| n == name) {
            Some(section) => section.1 = body.to_owned(),
            None => self.sections.push((name.to_owned(), body.to_owned())),
        }
        self
    }

    /// Appends whole tables, headers included, as written (e.g. an `[oauth2]` section that
    /// a test builds as text).
    pub fn append(mut self, toml: &str) -> TestConfig {
        self.tail.push_str(toml);
        self.tail.push('\n');
        self
    }

    /// `[templates]` naming the checkout's Dutch files of `kinds` (as `KIND = ".../KIND.nl.txt"`).
    pub fn templates(self, kinds: &[&str]) -> TestConfig {
        let body: Vec<String> = kinds
            .iter()
            .map(|kind| format!("{kind} = \"{}\"", template(&format!("{kind}.nl.txt"))))
            .collect();
        self.section("templates", &body.join("\n"))
    }

    /// An environment variable [`TestConfig::build`] lets the config see (`password_env`).
    pub fn env(mut self, name: &str, value: &str) -> TestConfig {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn database(&self) -> &TestDatabase {
        &self.database
    }

    /// The TOML, with a PostgreSQL password coming from [`PASSWORD_ENV`](super::PASSWORD_ENV)
    /// (see [`TestConfig::build`]).
    pub fn text(&self) -> String {
        self.render(Secret::Env)
    }

    /// The TOML for a config file that the binary reads: a PostgreSQL password comes from a
    /// file, so the child process needs no extra environment.
    pub fn file_text(&self) -> String {
        self.render(Secret::File)
    }

    fn render(&self, secret: Secret) -> String {
        let mut text = String::new();
        for (name, body) in &self.sections {
            text.push_str(&format!("[{name}]\n{body}\n"));
            if name == "firm" {
                text.push_str(&format!("[database]\n{}\n", self.database.section(secret)));
            }
        }
        text.push_str(&self.tail);
        text
    }

    /// Parses [`TestConfig::text`] as `test.toml`, with [`TestConfig::env`] and the
    /// database's password as the environment `password_env` reads.
    pub fn build(&self) -> Config {
        let mut env = self.env.clone();
        env.extend(self.database.env());
        Config::from_toml(Path::new("test.toml"), &self.text(), &[], &move |name| {
            env.iter()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.clone())
        })
        .unwrap_or_else(|e| panic!("invalid test config: {e}\n{}", self.text()))
    }

    /// Writes [`TestConfig::file_text`] to `path`.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.file_text()).expect("write the test config");
        path.to_owned()
    }
}

/// Opens the register of `config` as the daemon would.
pub async fn open_store(config: &Config) -> Store {
    Store::open(&config.database_url)
        .await
        .unwrap_or_else(|e| panic!("open the test register: {e:#}"))
}
