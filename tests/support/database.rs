//! Which database the integration tests run on, and the tests' own access to it.
//!
//! `KLACHTPOST_TEST_DATABASE=postgres` runs them on PostgreSQL (a fresh database on the
//! process's private server, see [`Postgres`](super::postgres::Postgres)); unset or `sqlite`,
//! on an SQLite file `k.db` in the test's temp dir, as before. `scripts/test` runs the suite
//! once each way.
//!
//! Tests reach the database behind klachtpost's back in two ways, both backend-neutral:
//! [`TestDatabase::connect`] (an sqlx `AnyPool`, for counting rows or setting up a fault)
//! and [`TestDatabase::tool`] (the database's own command-line client, `sqlite3` or `psql`,
//! as an administrator tampering with the register would).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, Once};

use sqlx::AnyPool;

use super::postgres::{PgDatabase, Postgres};

/// Chooses the database: `sqlite` (the default) or `postgres`.
pub const BACKEND_ENV: &str = "KLACHTPOST_TEST_DATABASE";

/// The environment variable that carries the PostgreSQL password in configs that use
/// `password_env` (see [`Secret`]).
pub const PASSWORD_ENV: &str = "KP_TEST_DATABASE_PASSWORD";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// From [`BACKEND_ENV`]; panics on a value it does not know, so a typo does not quietly
    /// run the SQLite pass twice.
    pub fn from_env() -> Backend {
        match std::env::var(BACKEND_ENV).as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
            Ok("postgres") | Ok("postgresql") => Backend::Postgres,
            Ok(other) => panic!("{BACKEND_ENV}={other:?}: expected sqlite or postgres"),
        }
    }
}

/// How a PostgreSQL password reaches klachtpost: both paths are exercised, `Env` by configs
/// parsed in the test process, `File` by config files that the binary reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secret {
    Env,
    File,
}

/// One test's database.
#[derive(Clone, Debug)]
pub enum TestDatabase {
    Sqlite { file: PathBuf },
    Postgres(PgDatabase),
}

impl TestDatabase {
    /// The database of the test whose files are in `dir`, on the backend of
    /// [`BACKEND_ENV`]: the same database for every call with the same dir (a test that
    /// builds a second config for a restart sees its register again).
    pub fn for_dir(dir: &Path) -> TestDatabase {
        match Backend::from_env() {
            Backend::Sqlite => TestDatabase::Sqlite {
                file: dir.join("k.db"),
            },
            Backend::Postgres => {
                static BY_DIR: Mutex<Option<HashMap<PathBuf, PgDatabase>>> = Mutex::new(None);
                let mut by_dir = BY_DIR.lock().unwrap_or_else(|p| p.into_inner());
                let db = by_dir
                    .get_or_insert_with(HashMap::new)
                    .entry(dir.to_owned())
                    .or_insert_with(|| Postgres::shared().create_database());
                TestDatabase::Postgres(db.clone())
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            TestDatabase::Sqlite { .. } => Backend::Sqlite,
            TestDatabase::Postgres(_) => Backend::Postgres,
        }
    }

    /// The body of the config's `[database]` section.
    pub fn section(&self, secret: Secret) -> String {
        match (self, secret) {
            (TestDatabase::Sqlite { file }, _) => format!("url = \"sqlite://{}\"", file.display()),
            (TestDatabase::Postgres(db), Secret::Env) => {
                format!("url = \"{}\"\npassword_env = \"{PASSWORD_ENV}\"", db.url)
            }
            (TestDatabase::Postgres(db), Secret::File) => format!(
                "url = \"{}\"\npassword_file = \"{}\"",
                db.url,
                db.password_file.display()
            ),
        }
    }

    /// Points a copy of the shipped `config/klachtpost.toml` at this database: on PostgreSQL
    /// its `url = "sqlite://…"` line becomes the test database (password from a file, so the
    /// binary needs no extra environment); on SQLite the file is left as shipped.
    pub fn point_shipped_config(&self, config: &Path) {
        let TestDatabase::Postgres(_) = self else {
            return;
        };
        let text = std::fs::read_to_string(config).expect("read the shipped config");
        let shipped = "url = \"sqlite://../var/klachtpost.db\"";
        assert!(
            text.contains(shipped),
            "{} has no {shipped} line any more",
            config.display()
        );
        std::fs::write(
            config,
            text.replacen(shipped, &self.section(Secret::File), 1),
        )
        .expect("write the config");
    }

    /// What [`Secret::Env`] configs need in the environment.
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            TestDatabase::Sqlite { .. } => Vec::new(),
            TestDatabase::Postgres(db) => vec![(PASSWORD_ENV.to_owned(), db.password.clone())],
        }
    }

    /// A URL for the tests' own connections (password included).
    pub fn url(&self) -> String {
        match self {
            TestDatabase::Sqlite { file } => format!("sqlite://{}", file.display()),
            TestDatabase::Postgres(db) => db.url_with_password(),
        }
    }

    /// A pool of the test's own, behind klachtpost's back. On SQLite the file must exist
    /// (open the store first): a typo in a test does not create an empty database.
    pub async fn connect(&self) -> AnyPool {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        AnyPool::connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("connect to the test database {}: {e}", self.name()))
    }

    /// Runs `sql` with the database's own command-line client (`sqlite3 FILE`, or `psql` as
    /// the database's owner); returns its output, trimmed. Panics with the tool's error.
    pub fn tool(&self, sql: &str) -> String {
        match self {
            TestDatabase::Sqlite { file } => {
                let out = Command::new("sqlite3")
                    .arg(file)
                    .arg(sql)
                    .output()
                    .expect("the sqlite3 tool (scripts/install-deps installs it)");
                assert!(
                    out.status.success(),
                    "sqlite3 {sql}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            }
            TestDatabase::Postgres(db) => Postgres::shared()
                .psql_as(&db.user, &db.password, &db.name, sql)
                .unwrap_or_else(|e| panic!("psql {sql}: {e}")),
        }
    }

    /// Everything the database holds, as named byte strings to search: the SQLite file and
    /// its WAL, or a `pg_dump` of the PostgreSQL database (its live rows: PostgreSQL keeps
    /// deleted rows in its files until VACUUM, which a test cannot see from here).
    pub fn contents(&self) -> Vec<(String, Vec<u8>)> {
        match self {
            TestDatabase::Sqlite { file } => {
                let wal = PathBuf::from(format!("{}-wal", file.display()));
                vec![
                    (
                        "db".into(),
                        std::fs::read(file).expect("read the SQLite file"),
                    ),
                    ("wal".into(), std::fs::read(wal).unwrap_or_default()),
                ]
            }
            TestDatabase::Postgres(db) => {
                vec![("pg_dump".into(), Postgres::shared().dump(&db.name))]
            }
        }
    }

    /// The SQL of `sqlite` or of `postgres`, for the few statements that differ (triggers,
    /// time formatting).
    pub fn pick<'a>(&self, sqlite: &'a str, postgres: &'a str) -> &'a str {
        match self {
            TestDatabase::Sqlite { .. } => sqlite,
            TestDatabase::Postgres(_) => postgres,
        }
    }

    fn name(&self) -> String {
        match self {
            TestDatabase::Sqlite { file } => file.display().to_string(),
            TestDatabase::Postgres(db) => db.name.clone(),
        }
    }
}
