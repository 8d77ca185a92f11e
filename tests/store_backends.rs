//! The store's one API on both databases: what SQLite and PostgreSQL store differently
//! (times, yes/no columns, 32-bit UIDs) reads back the same; instances that open one
//! database at once all come up and their writes keep one history chain and gap-free case
//! numbers; on PostgreSQL the password comes from the config and is never shown, and
//! `ca_file` makes the connection TLS with the server's certificate checked.
//!
//! PostgreSQL is the test harness's server ([`Postgres::shared`]), a fresh database per test;
//! the TLS test starts a private one with the test CA's certificate ([`Postgres::private`]).

mod support;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use klachtpost::case::{self, Actor};
use klachtpost::store::register::Column;
use klachtpost::store::{self, DatabaseUrl, NewCase, Sql, Store, StoreRow, history};
use secrecy::SecretString;
use support::{PgDatabase, PgOptions, Postgres};

/// One property of the store, a test on each database.
macro_rules! on_both {
    ($(#[$attr:meta])* $property:ident => $sqlite:ident, $postgres:ident) => {
        $(#[$attr])*
        async fn $sqlite() {
            $property(Db::sqlite().await).await;
        }

        $(#[$attr])*
        async fn $postgres() {
            $property(Db::postgres().await).await;
        }
    };
}

/// One database to test on: a SQLite file, or a fresh database on the harness's PostgreSQL.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(PgDatabase),
}

impl Db {
    async fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().unwrap())
    }

    async fn postgres() -> Db {
        Db::Postgres(Postgres::shared().create_database())
    }

    fn url(&self) -> DatabaseUrl {
        match self {
            Db::Sqlite(dir) => {
                DatabaseUrl::new(format!("sqlite://{}", dir.path().join("k.db").display()))
            }
            Db::Postgres(db) => pg_url(db),
        }
    }
}

/// `db`'s URL (without a password) and its password, as a config gives them.
fn pg_url(db: &PgDatabase) -> DatabaseUrl {
    let mut url = DatabaseUrl::new(db.url.clone());
    url.password = Some(SecretString::from(db.password.clone()));
    url
}

fn new_case<'a>(reference: &'a str, at: DateTime<Utc>, flags: &'a [String]) -> NewCase<'a> {
    NewCase {
        reference,
        channel: "email",
        complainant_name: Some("Jan de Vries"),
        complainant_address: Some("jan@client.example"),
        complainant_phone: None,
        complainant_source: "from",
        subject: "Klacht",
        received_at: at,
        opened_at: at,
        partner_name: "Anna",
        partner_email: "anna@firma.nl",
        staff_address: None,
        ack_due_at: at + Duration::days(1),
        response_due_at: at + Duration::days(5),
        resolution_due_at: at + Duration::days(10),
        deadline_explanation: "test",
        flags,
        language: None,
    }
}

/// Open a case the way intake does: a sequence number and the case, in one transaction.
async fn open_case(store: &Store, at: DateTime<Utc>) -> String {
    let mut tx = store.begin().await.unwrap();
    let seq = store::next_sequence(&mut tx, 2026).await.unwrap();
    let reference = format!("KL-2026-{seq:04}");
    case::open(
        &mut tx,
        &new_case(&reference, at, &[]),
        Actor::system(at),
        "opened by the test",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    reference
}

async fn round_trip(db: Db) {
    let store = Store::open(db.url()).await.unwrap();
    // UIDVALIDITY and UIDs are unsigned 32-bit: they do not fit a PostgreSQL INTEGER.
    let t = Utc.with_ymd_and_hms(2026, 11, 19, 9, 20, 7).unwrap() + Duration::milliseconds(750);
    store
        .set_checkpoint("INBOX", u32::MAX, u32::MAX - 1, t)
        .await
        .unwrap();
    assert_eq!(
        store.checkpoint("INBOX").await.unwrap(),
        Some((u32::MAX, u32::MAX - 1))
    );

    // Times go in with milliseconds and come out as the store's one text format, whole
    // seconds, on both databases.
    let reference = open_case(&store, t).await;
    let cases = store.list_cases().await.unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].reference, reference);
    assert_eq!(cases[0].received_at, "2026-11-19T09:20:07Z");
    assert_eq!(cases[0].ack_due_at, "2026-11-20T09:20:07Z");
    assert_eq!(cases[0].structural_fault, None);
    assert_eq!(cases[0].closed_at, None);

    // The history chain hashes the time as text: it verifies on both.
    let v = history::verify(store.pool()).await.unwrap();
    assert_eq!((v.entries, v.broken.map(|b| b.problem)), (1, None));

    // Yes/no and time columns through the case rows' update (as the case commands write).
    let mut tx = store.begin().await.unwrap();
    let id = store::case_id_by_reference(&mut tx, &reference)
        .await
        .unwrap()
        .unwrap();
    store::register::update(
        &mut tx,
        id,
        &[
            (Column::StructuralFault, Some("yes".into())),
            (Column::ClientSatisfied, Some("no".into())),
            (Column::ClosedAt, Some(store::ts(t + Duration::days(3)))),
        ],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let c = &store.list_cases().await.unwrap()[0];
    assert_eq!(c.structural_fault, Some(true));
    assert_eq!(c.client_satisfied, Some(false));
    assert_eq!(c.closed_at.as_deref(), Some("2026-11-22T09:20:07Z"));

    // The outbox's due time: an aggregate over a time column.
    assert_eq!(store.outbox_next_due(t).await.unwrap(), None);
    let detail = store.case(&reference).await.unwrap().unwrap();
    assert_eq!(detail.events.len(), 1);
    assert_eq!(detail.events[0].at, "2026-11-19T09:20:07Z");
    assert!(!detail.events[0].content_purged);
    assert_eq!(
        t.trunc_subsecs(0),
        store::parse_ts(&detail.events[0].at).unwrap()
    );
}

on_both!(
    #[tokio::test]
    round_trip => sqlite_keeps_times_flags_and_32_bit_uids,
    postgres_keeps_times_flags_and_32_bit_uids
);

/// How many years of `case_sequences` from 3001 on the transaction sees.
async fn test_years(tx: &mut store::Tx) -> i64 {
    Sql::new("SELECT COUNT(*) FROM case_sequences WHERE year >= $1")
        .bind(3001_i64)
        .fetch_one(tx)
        .await
        .unwrap()
        .col(0)
        .unwrap()
}

/// A statement in a transaction (`store::Sql`: on SQLite run on the calling thread, on
/// PostgreSQL through sqlx): every kind of value comes back as bound, `$n` is the n-th value
/// wherever it stands, a statement run again takes its new values, a statement through
/// sqlx in between sees and stays in the same transaction, a transaction dropped undone
/// leaves its connection usable, and a refused statement is reported as sqlx reports it.
async fn statements_in_a_transaction(db: Db) {
    use store::Ts;
    let store = Store::open(db.url()).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
    // Past what one SQLite page or one sqlx argument buffer holds, every byte value.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024 + 7).collect();
    let mut tx = store.begin().await.unwrap();
    let row = Sql::new("SELECT $2, $1, $3, $4, $5, $6, $2 AS again")
        .bind(7_i64)
        .bind("tekst met é, ü en ✓")
        .bind(true)
        .bind(&bytes[..])
        .bind(Ts(at))
        .bind(None::<&str>)
        .fetch_one(&mut tx)
        .await
        .unwrap();
    assert_eq!(row.col::<String>(0).unwrap(), "tekst met é, ü en ✓");
    assert_eq!(row.col::<i64>(1).unwrap(), 7);
    assert!(row.col::<bool>(2).unwrap());
    assert!(row.col::<Vec<u8>>(3).unwrap() == bytes, "the bytes differ");
    assert_eq!(row.col::<Ts>(4).unwrap(), Ts(at));
    assert_eq!(row.col::<Option<String>>(5).unwrap(), None);
    assert_eq!(row.col::<String>("again").unwrap(), "tekst met é, ü en ✓");

    // One statement run again with new values: each run inserts its own year.
    for year in 3001..=3003_i64 {
        let changed = Sql::new("INSERT INTO case_sequences (year, last) VALUES ($1, $2)")
            .bind(year)
            .bind(year - 3000)
            .execute(&mut tx)
            .await
            .unwrap();
        assert_eq!(changed, 1);
    }
    // Through sqlx, in the same transaction: it sees the rows above, and they see it.
    macro_rules! through_sqlx {
        ($c:expr) => {{
            sqlx::query("INSERT INTO case_sequences (year, last) VALUES (3004, 4)")
                .execute(&mut *$c)
                .await
                .unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM case_sequences WHERE year >= 3001")
                .fetch_one(&mut *$c)
                .await
                .unwrap()
        }};
    }
    let sqlx_count: i64 = match tx.backend() {
        store::Backend::Sqlite(c) => through_sqlx!(c),
        store::Backend::Postgres(c) => through_sqlx!(c),
    };
    assert_eq!(sqlx_count, 4);
    assert_eq!(test_years(&mut tx).await, 4);
    let lasts: Vec<i64> =
        Sql::new("SELECT last FROM case_sequences WHERE year >= $1 ORDER BY year")
            .bind(3001_i64)
            .fetch_all(&mut tx)
            .await
            .unwrap()
            .iter()
            .map(|r| r.col("last").unwrap())
            .collect();
    assert_eq!(lasts, [1, 2, 3, 4]);
    tx.commit().await.unwrap();

    // Dropped without a commit, again and again (the pool's every connection): nothing is
    // kept, and the next transaction neither waits for a connection left taken nor fails.
    for round in 0..6_i64 {
        let mut tx = tokio::time::timeout(std::time::Duration::from_secs(20), store.begin())
            .await
            .expect("a dropped transaction left its connection taken")
            .unwrap();
        assert_eq!(test_years(&mut tx).await, 4, "round {round}");
        Sql::new("INSERT INTO case_sequences (year, last) VALUES ($1, 1)")
            .bind(3100 + round)
            .execute(&mut tx)
            .await
            .unwrap();
        assert_eq!(test_years(&mut tx).await, 5);
        drop(tx);
    }

    let mut tx = store.begin().await.unwrap();
    if tx.kind() == store::Kind::Sqlite {
        // A list of statements (SQLite): each runs in order, `$n` the n-th value in each.
        let rows = Sql::new(
            "INSERT INTO case_sequences (year, last) VALUES ($2, $1);
             INSERT INTO case_sequences (year, last) VALUES ($3, $1) RETURNING year, last",
        )
        .bind(9_i64)
        .bind(3201_i64)
        .bind(3202_i64)
        .fetch_all(&mut tx)
        .await
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].col::<i64>(0).unwrap(), 3202);
        assert_eq!(rows[0].col::<i64>("last").unwrap(), 9);
        assert_eq!(test_years(&mut tx).await, 6);
    }
    // A value missing is an error, not a NULL.
    let missing = Sql::new("SELECT $2").bind(1_i64).fetch_one(&mut tx).await;
    assert!(missing.is_err(), "{missing:?}");
    tx.rollback().await.unwrap();

    // A refused statement: the database's error, told apart as sqlx's are.
    let mut tx = store.begin().await.unwrap();
    let refused = Sql::new("INSERT INTO case_sequences (year, last) VALUES ($1, 1)")
        .bind(3001_i64)
        .execute(&mut tx)
        .await
        .unwrap_err();
    let sqlx::Error::Database(e) = &refused else {
        panic!("not a database error: {refused:?}");
    };
    assert!(e.is_unique_violation(), "{e:?}");
    let code = e.code().unwrap().to_string();
    // SQLite's extended code for a primary key (1555), as sqlx gives it; PostgreSQL's SQLSTATE.
    assert!(code == "1555" || code == "23505", "{code}");
    tx.rollback().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(test_years(&mut tx).await, 4);
    tx.commit().await.unwrap();
}

on_both!(
    #[tokio::test]
    statements_in_a_transaction => sqlite_statements_in_a_transaction,
    postgres_statements_in_a_transaction
);

/// Four instances open a new database at the same moment, then write cases from all four
/// at once: every open succeeds (the migrations run once, under a lock), case numbers are
/// unique and gap-free, and the history is one unbroken chain.
async fn instances_at_once(db: Db) {
    let url = db.url();
    let opens = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { Store::open(url).await })
    });
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().expect("every instance comes up"));
    }
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    // Cases opened from all instances at once: numbers unique and gap-free.
    let writers = stores.iter().cloned().map(|store| {
        tokio::spawn(async move {
            let mut references = Vec::new();
            for _ in 0..5 {
                references.push(open_case(&store, at).await);
            }
            references
        })
    });
    let mut references = BTreeSet::new();
    for writer in writers {
        for reference in writer.await.unwrap() {
            assert!(
                references.insert(reference),
                "a case number handed out twice"
            );
        }
    }
    let expected: BTreeSet<String> = (1..=20).map(|n| format!("KL-2026-{n:04}")).collect();
    assert_eq!(references, expected, "gap-free");
    // Notes on different cases from all instances at once: each appends to the one chain
    // (read its head, insert after it), which must not interleave.
    let notes = stores.into_iter().enumerate().map(|(i, store)| {
        tokio::spawn(async move {
            let reference = format!("KL-2026-{:04}", i + 1);
            for n in 0..10 {
                let mut tx = store.begin().await.unwrap();
                case::note(
                    &mut tx,
                    &reference,
                    &format!("note {n}"),
                    Actor::new("Anna", at),
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        })
    });
    for n in notes {
        n.await.unwrap();
    }
    let store = Store::open(url.clone()).await.unwrap();
    let v = history::verify(store.pool()).await.unwrap();
    assert_eq!(v.broken.map(|b| b.problem), None);
    assert_eq!(v.entries, 20 + 40);

    // One writer at a time, across instances: while one instance's write transaction is
    // open, another's cannot begin; it begins once the first commits.
    let other = Store::open(url).await.unwrap();
    let first = store.begin().await.unwrap();
    let second = tokio::spawn(async move {
        let tx = other.begin().await.unwrap();
        tx.commit().await.unwrap();
    });
    let waited = tokio::time::timeout(std::time::Duration::from_millis(500), async {
        while !second.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        waited.is_err(),
        "a second writer began while the first was open"
    );
    first.commit().await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), second)
        .await
        .expect("the second writer begins once the first commits")
        .unwrap();
}

on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    instances_at_once => sqlite_instances_opening_at_once_all_come_up_and_keep_one_chain,
    postgres_instances_opening_at_once_all_come_up_and_keep_one_chain
);

/// `(event, content purged)` of a case's history entries, checking on the way that the
/// case's entries have dense ids (nothing appended to the chain was lost in between).
async fn events_of(store: &Store, case_id: i64) -> Vec<(String, bool)> {
    let entries = history::for_case(store.pool(), case_id).await.unwrap();
    for pair in entries.windows(2) {
        assert_eq!(
            pair[1].id,
            pair[0].id + 1,
            "a gap in the chain: {entries:?}"
        );
    }
    entries
        .into_iter()
        .map(|e| (e.event, e.content_purged))
        .collect()
}

/// The history's entries are kept in their transaction and written together (when a
/// savepoint is set or released, before a purge, at commit): a piece of work rolled back
/// to its savepoint leaves none of its entries, written or not, and the next entry
/// follows the last one kept; entries appended before the savepoint stay; more entries
/// than one INSERT holds chain in id order; a purge empties the content of the entries
/// its own transaction appended before it, too.
async fn history_kept_with_its_transaction(db: Db) {
    let store = Store::open(db.url()).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    let who = Actor::system(at);
    let reference = open_case(&store, at).await;
    let mut tx = store.begin().await.unwrap();
    let id = store::case_id_by_reference(&mut tx, &reference)
        .await
        .unwrap()
        .unwrap();
    case::log(&mut tx, id, "test.before", "before the piece", who)
        .await
        .unwrap();
    // A piece undone before anything of it was written.
    tx.savepoint().await.unwrap();
    for n in 0..2 {
        case::log(&mut tx, id, "test.undone", &format!("undone {n}"), who)
            .await
            .unwrap();
    }
    tx.rollback_to().await.unwrap();
    case::log(&mut tx, id, "test.after", "after the undone piece", who)
        .await
        .unwrap();
    // A piece kept.
    tx.savepoint().await.unwrap();
    case::log(&mut tx, id, "test.kept", "kept", who)
        .await
        .unwrap();
    tx.release().await.unwrap();
    // A piece undone after some of its entries were written (the purge writes them).
    tx.savepoint().await.unwrap();
    case::close(&mut tx, &reference, case::Closing::NotAComplaint, who, None)
        .await
        .unwrap();
    case::purge(&mut tx, &reference, who).await.unwrap();
    tx.rollback_to().await.unwrap();
    tx.commit().await.unwrap();
    let kept = ["case.opened", "test.before", "test.after", "test.kept"];
    assert_eq!(
        events_of(&store, id).await,
        kept.map(|e| (e.to_string(), false))
    );
    let v = history::verify(store.pool()).await.unwrap();
    assert_eq!((v.entries, v.broken.map(|b| b.problem)), (4, None));
    assert_eq!(store.list_cases().await.unwrap()[0].status, "new");

    // More entries at once than one INSERT takes (as a fold of a long journal).
    let mut tx = store.begin().await.unwrap();
    for n in 0..1_201 {
        case::log(&mut tx, id, "test.many", &format!("entry {n}"), who)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let v = history::verify(store.pool()).await.unwrap();
    assert_eq!((v.entries, v.broken.map(|b| b.problem)), (1_205, None));

    // A transaction dropped with unwritten entries leaves none; the next one chains on.
    let mut tx = store.begin().await.unwrap();
    case::log(&mut tx, id, "test.dropped", "dropped", who)
        .await
        .unwrap();
    drop(tx);
    // Closed and purged in one transaction: every entry before the purge is emptied,
    // those appended in it as well.
    let mut tx = store.begin().await.unwrap();
    case::note(&mut tx, &reference, "a note with personal data", who)
        .await
        .unwrap();
    case::close(&mut tx, &reference, case::Closing::NotAComplaint, who, None)
        .await
        .unwrap();
    case::purge(&mut tx, &reference, who).await.unwrap();
    tx.commit().await.unwrap();
    let events = events_of(&store, id).await;
    assert_eq!(events.len(), 1_205 + 3);
    let kept: Vec<&str> = events
        .iter()
        .filter(|(_, purged)| !purged)
        .map(|(e, _)| e.as_str())
        .collect();
    assert_eq!(kept, ["case.purged"]);
    let v = history::verify(store.pool()).await.unwrap();
    assert_eq!((v.entries, v.broken.map(|b| b.problem)), (1_208, None));
}

on_both!(
    #[tokio::test]
    history_kept_with_its_transaction => sqlite_history_entries_are_written_with_their_transaction_and_undone_with_their_piece,
    postgres_history_entries_are_written_with_their_transaction_and_undone_with_their_piece
);

/// The history costs a transaction one INSERT for up to 16 entries it appends, and a piece
/// of work behind a savepoint one: counted by PostgreSQL itself, with a trigger
/// that runs once per INSERT statement on `case_events` (SQLite has no such trigger; the
/// code that writes is the same on both).
#[tokio::test]
async fn postgres_history_entries_are_written_in_one_insert_per_transaction_or_piece() {
    let db = Db::postgres().await;
    let store = Store::open(db.url()).await.unwrap();
    let pool = store.pool().as_postgres().unwrap().clone();
    for statement in [
        "CREATE TABLE history_inserts (n BIGINT NOT NULL)",
        "INSERT INTO history_inserts (n) VALUES (0)",
        "CREATE FUNCTION count_history_insert() RETURNS trigger LANGUAGE plpgsql
         AS $$ BEGIN UPDATE history_inserts SET n = n + 1; RETURN NULL; END $$",
        "CREATE TRIGGER count_history_inserts AFTER INSERT ON case_events
         FOR EACH STATEMENT EXECUTE FUNCTION count_history_insert()",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    let inserts = || async {
        let n: i64 = sqlx::query_scalar("SELECT n FROM history_inserts")
            .fetch_one(&pool)
            .await
            .unwrap();
        n
    };
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    let who = Actor::system(at);
    // A case opened with three more entries, as intake's complaint: one INSERT.
    let mut tx = store.begin().await.unwrap();
    let seq = store::next_sequence(&mut tx, 2026).await.unwrap();
    let reference = format!("KL-2026-{seq:04}");
    let id = case::open(
        &mut tx,
        &new_case(&reference, at, &[]),
        who,
        "opened by the test",
    )
    .await
    .unwrap();
    for event in ["test.one", "test.two", "test.three"] {
        case::log(&mut tx, id, event, "an entry", who)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(inserts().await, 1);
    // Three pieces behind savepoints, the second undone: one INSERT for each one kept.
    let mut tx = store.begin().await.unwrap();
    for piece in 0..3 {
        tx.savepoint().await.unwrap();
        for _ in 0..2 {
            case::log(&mut tx, id, "test.piece", "an entry", who)
                .await
                .unwrap();
        }
        if piece == 1 {
            tx.rollback_to().await.unwrap();
        } else {
            tx.release().await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    assert_eq!(inserts().await, 3);
    // A transaction without history writes none.
    store.begin().await.unwrap().commit().await.unwrap();
    assert_eq!(inserts().await, 3);
    // 40 entries (a fold's): INSERTs of 16, 16 and 8.
    let mut tx = store.begin().await.unwrap();
    for _ in 0..40 {
        case::log(&mut tx, id, "test.many", "an entry", who)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(inserts().await, 6);
    let v = history::verify(store.pool()).await.unwrap();
    assert_eq!((v.entries, v.broken.map(|b| b.problem)), (4 + 4 + 40, None));
}

/// Intake's deferred handle: its commits wait for no disk (SQLite `synchronous = NORMAL`,
/// PostgreSQL `synchronous_commit = off`), the store's own stay synchronous (SQLite; the
/// tests' PostgreSQL is off server-wide, so there `batch_durable` sets it on for its own
/// commit), and `batch_durable` counts each batch in `intake_batches` (0011 on both).
async fn deferred_commits(db: Db) {
    let store = Store::open(db.url()).await.unwrap();
    let deferred = store.deferred();
    let setting = |store: &Store| {
        let pool = store.pool().clone();
        async move {
            match (pool.as_sqlite(), pool.as_postgres()) {
                (Some(p), _) => {
                    let n: i64 = sqlx::query_scalar("PRAGMA synchronous")
                        .fetch_one(p)
                        .await
                        .unwrap();
                    n.to_string()
                }
                (_, Some(p)) => sqlx::query_scalar("SHOW synchronous_commit")
                    .fetch_one(p)
                    .await
                    .unwrap(),
                _ => unreachable!(),
            }
        }
    };
    match db {
        Db::Sqlite(_) => {
            assert_eq!(setting(&store).await, "2", "FULL");
            assert_eq!(setting(&deferred).await, "1", "NORMAL");
        }
        Db::Postgres(_) => assert_eq!(setting(&deferred).await, "off"),
    }
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    open_case(&deferred, at).await;
    deferred.batch_durable("maildir:a", 3, at).await.unwrap();
    deferred
        .batch_durable("maildir:a", 2, at + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(store.list_cases().await.unwrap().len(), 1);
    let sql = "SELECT batches, mails FROM intake_batches WHERE mailbox = 'maildir:a'";
    let counted: (i64, i64) = match (store.pool().as_sqlite(), store.pool().as_postgres()) {
        (Some(p), _) => sqlx::query_as(sql).fetch_one(p).await.unwrap(),
        (_, Some(p)) => sqlx::query_as(sql).fetch_one(p).await.unwrap(),
        _ => unreachable!(),
    };
    assert_eq!(counted, (2, 5), "two batches, five mails");
}

on_both!(
    #[tokio::test]
    deferred_commits => sqlite_intake_commits_deferred_and_made_durable_per_batch,
    postgres_intake_commits_deferred_and_made_durable_per_batch
);

/// Queue `n` notices, due at `at`; their outbox ids.
async fn queue_notices(store: &Store, n: usize, at: DateTime<Utc>) -> BTreeSet<i64> {
    let mut ids = BTreeSet::new();
    let mut tx = store.begin().await.unwrap();
    for i in 0..n {
        let out = klachtpost::compose::Outgoing {
            message_id: format!("notice-{i}@firma.nl"),
            subject: "Bericht".into(),
            text: "Tekst".into(),
            raw: b"Subject: Bericht\r\n\r\nTekst\r\n".to_vec(),
        };
        ids.insert(
            store::queue_notice(
                &mut tx,
                None,
                "anna@firma.nl",
                &out,
                "klachten@firma.nl",
                at,
            )
            .await
            .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    ids
}

/// The sender's fold marks every row the server accepted (one UPDATE for the fold) and
/// records each on its case in the order the confirmations are read (the journal's on
/// SQLite, the rows' on PostgreSQL): an acknowledgement
/// acknowledges its case, other mail is logged; a row confirmed twice is marked once, and a
/// fold again marks nothing. The history verifies.
async fn a_fold_marks_each_confirmed_row_once_in_order(db: Db) {
    let store = Store::open(db.url()).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    let mut queued = Vec::new();
    for reference in [open_case(&store, at).await, open_case(&store, at).await] {
        let mut tx = store.begin().await.unwrap();
        let case_id = store::case_id_by_reference(&mut tx, &reference)
            .await
            .unwrap();
        for purpose in ["acknowledgement", "new_complaint"] {
            let out = klachtpost::compose::Outgoing {
                message_id: format!("{purpose}-{reference}@firma.nl"),
                subject: "Bericht".into(),
                text: "Tekst".into(),
                raw: b"Subject: Bericht\r\n\r\nTekst\r\n".to_vec(),
            };
            let id = store::queue_outgoing(
                &mut tx,
                case_id,
                purpose,
                None,
                "klachten@firma.nl",
                "jan@client.example",
                &out,
                "test",
                at,
            )
            .await
            .unwrap();
            queued.push((id, case_id.unwrap(), purpose));
        }
        tx.commit().await.unwrap();
    }
    assert_eq!(store.claim_due(at, 10).await.unwrap().len(), 4);
    // Accepted in another order than queued; the second case's acknowledgement twice.
    let order = [2, 1, 0, 3];
    for (n, &i) in order.iter().enumerate() {
        let accepted = at + Duration::seconds(n as i64 + 1);
        assert!(store.confirm_sent(queued[i].0, accepted).await.unwrap());
    }
    let again = at + Duration::seconds(60);
    store.confirm_sent(queued[2].0, again).await.unwrap();
    assert_eq!(
        klachtpost::outbox::fold_confirmations(&store)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        klachtpost::outbox::fold_confirmations(&store)
            .await
            .unwrap(),
        0
    );

    let sql = "SELECT id, status, attempts, sent_at FROM outbox ORDER BY id";
    let rows: Vec<(i64, String, i64, store::Ts)> =
        match (store.pool().as_sqlite(), store.pool().as_postgres()) {
            (Some(p), _) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
            (_, Some(p)) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
            _ => unreachable!(),
        };
    for (n, &i) in order.iter().enumerate() {
        let (id, status, attempts, sent_at) = &rows[i];
        assert_eq!((*id, status.as_str(), *attempts), (queued[i].0, "sent", 1));
        // The journal (SQLite) keeps both lines, and the first counts; PostgreSQL's row
        // keeps the last confirmation it was given.
        let expected = match (&db, i) {
            (Db::Postgres(_), 2) => again,
            _ => at + Duration::seconds(n as i64 + 1),
        };
        assert_eq!(sent_at.0, expected, "row {id}");
    }
    // Each row's entry on its case, in the order accepted, after the cases' openings.
    let mut recorded = Vec::new();
    for case_id in [queued[0].1, queued[2].1] {
        for e in history::for_case(store.pool(), case_id).await.unwrap() {
            if e.event != "case.opened" {
                recorded.push((e.id, case_id, e.event));
            }
        }
    }
    recorded.sort();
    let read_order = match db {
        Db::Sqlite(_) => order,
        Db::Postgres(_) => [0, 1, 2, 3],
    };
    let expected: Vec<(i64, i64, String)> = read_order
        .iter()
        .enumerate()
        .map(|(n, &i)| (3 + n as i64, queued[i].1, format!("{}.sent", queued[i].2)))
        .collect();
    assert_eq!(recorded, expected);
    let cases = store.list_cases().await.unwrap();
    assert!(
        cases.iter().all(|c| c.status == "acknowledged"),
        "{cases:?}"
    );
    let v = history::verify(store.pool()).await.unwrap();
    assert_eq!((v.entries, v.broken.map(|b| b.problem)), (6, None));

    // More rows than one UPDATE takes (notices without a case: no history).
    let notices = queue_notices(&store, 40, at).await;
    assert_eq!(store.claim_due(at, 50).await.unwrap().len(), 40);
    for id in &notices {
        store.confirm_sent(*id, at).await.unwrap();
    }
    assert_eq!(
        klachtpost::outbox::fold_confirmations(&store)
            .await
            .unwrap(),
        40
    );
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(counts, [("sent".to_string(), 44)]);
}

on_both!(
    #[tokio::test]
    a_fold_marks_each_confirmed_row_once_in_order => sqlite_a_fold_marks_each_confirmed_row_once_in_order,
    postgres_a_fold_marks_each_confirmed_row_once_in_order
);

/// Two instances claim the outbox side by side: every row is handed out exactly once.
async fn claims_side_by_side(db: Db) {
    let url = db.url();
    let a = Store::open(url.clone()).await.unwrap();
    let b = Store::open(url).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    let queued = queue_notices(&a, 60, at).await;
    let claim = |store: Store| {
        tokio::spawn(async move {
            let mut claimed = Vec::new();
            loop {
                let items = store.claim_due(at, 3).await.unwrap();
                if items.is_empty() {
                    return claimed;
                }
                claimed.extend(items.into_iter().map(|i| i.id));
            }
        })
    };
    let (from_a, from_b) = (claim(a.clone()), claim(b));
    let (from_a, from_b) = (from_a.await.unwrap(), from_b.await.unwrap());
    let mut all: Vec<i64> = from_a.iter().chain(&from_b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, queued.into_iter().collect::<Vec<_>>(), "each row once");
}

on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    claims_side_by_side => sqlite_claims_hand_each_outbox_row_out_once,
    postgres_claims_hand_each_outbox_row_out_once
);

/// A claim younger than an instance's presence (`PRESENCE`) is never taken as a gone
/// instance's, even where its holder's presence cannot be seen (on PostgreSQL, a claim
/// committed meanwhile is rechecked with the statement's older snapshot of the leases):
/// once that long has passed without the holder renewing it, it is.
async fn a_fresh_claim_is_not_a_gone_instances(db: Db) {
    let a = Store::open(db.url()).await.unwrap();
    let b = Store::open(db.url()).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    let queued = queue_notices(&a, 2, at).await;
    assert_eq!(a.claim_due(at, 10).await.unwrap().len(), 2);
    // The holder's presence, as a snapshot from before its claim sees it: none.
    let forget = "DELETE FROM leases";
    match (a.pool().as_sqlite(), a.pool().as_postgres()) {
        (Some(p), _) => sqlx::query(forget)
            .execute(p)
            .await
            .unwrap()
            .rows_affected(),
        (_, Some(p)) => sqlx::query(forget)
            .execute(p)
            .await
            .unwrap()
            .rows_affected(),
        _ => unreachable!(),
    };
    let soon = at + chrono::Duration::seconds(1);
    assert!(
        b.claim_due(soon, 10).await.unwrap().is_empty(),
        "claimed a second ago: its holder is not gone"
    );
    let later = at + klachtpost::store::lease::PRESENCE;
    let taken: BTreeSet<i64> = b
        .claim_due(later, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(
        taken, queued,
        "no presence for PRESENCE: the holder is gone"
    );
}

on_both!(
    #[tokio::test]
    a_fresh_claim_is_not_a_gone_instances => sqlite_a_fresh_claim_is_not_a_gone_instances,
    postgres_a_fresh_claim_is_not_a_gone_instances
);

/// On PostgreSQL a claim takes row locks, not the write lock: it goes ahead while another
/// instance's write transaction is open, and skips the rows another claim holds.
#[tokio::test]
async fn postgres_claims_skip_locked_rows_and_do_not_wait_for_writers() {
    let db = Db::postgres().await;
    let a = Store::open(db.url()).await.unwrap();
    let b = Store::open(db.url()).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    let queued = queue_notices(&a, 4, at).await;

    let writer = a.begin().await.unwrap();
    let claimed = tokio::time::timeout(std::time::Duration::from_secs(10), b.claim_due(at, 2))
        .await
        .expect("a claim waited for a writer")
        .unwrap();
    assert_eq!(claimed.len(), 2);
    writer.rollback().await.unwrap();

    // A claim in progress (its rows locked, not yet committed) is skipped, not waited for.
    let pool = a.pool().as_postgres().unwrap();
    let mut holding = pool.begin().await.unwrap();
    let held: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM outbox WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE",
    )
    .fetch_all(&mut *holding)
    .await
    .unwrap();
    let rest = tokio::time::timeout(std::time::Duration::from_secs(10), b.claim_due(at, 10))
        .await
        .expect("a claim waited for locked rows")
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert!(!held.contains(&rest[0].id));
    holding.rollback().await.unwrap();
    let last = b.claim_due(at, 10).await.unwrap();
    assert_eq!(last.iter().map(|i| i.id).collect::<Vec<_>>(), held);
    let mut all: Vec<i64> = claimed
        .iter()
        .chain(&rest)
        .chain(&last)
        .map(|i| i.id)
        .collect();
    all.sort_unstable();
    assert_eq!(all, queued.into_iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn postgres_password_comes_from_the_config_and_is_never_shown() {
    let server = Postgres::shared().create_database();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("db-password");
    std::fs::write(&password_file, format!("{}\n", server.password)).unwrap();
    let text = format!(
        r#"
[firm]
name = "Adviesbureau Test"
address = "klachten@firma.nl"
staff_domains = ["firma.nl"]
partners = [{{ name = "Anna Partner", email = "anna@firma.nl" }}]
[database]
url = "{}"
password_file = "{}"
[mailbox]
kind = "maildir"
path = "{}"
[outgoing]
kind = "file"
dir = "{}"
"#,
        server.url,
        password_file.display(),
        dir.path().join("mailbox").display(),
        dir.path().join("out").display(),
    );
    let config = klachtpost::config::Config::from_toml(
        &dir.path().join("klachtpost.toml"),
        &text,
        &[],
        &|_| None,
    )
    .unwrap();
    assert!(
        !format!("{config:?}").contains(&server.password),
        "the config's Debug shows the password"
    );
    let store = Store::open(&config.database_url).await.unwrap();
    assert_eq!(store.kind(), store::Kind::Postgres);
    assert!(store.list_cases().await.unwrap().is_empty());

    // From the environment (password_env), through the same config.
    let by_env = text.replace(
        &format!("password_file = \"{}\"", password_file.display()),
        "password_env = \"KP_STORE_TEST_PASSWORD\"",
    );
    let password = server.password.clone();
    let config = klachtpost::config::Config::from_toml(
        &dir.path().join("klachtpost.toml"),
        &by_env,
        &[],
        &move |name| (name == "KP_STORE_TEST_PASSWORD").then(|| password.clone()),
    )
    .unwrap();
    Store::open(&config.database_url).await.unwrap();

    // A wrong password, given in the URL: refused, and the message shows neither.
    let mut wrong = DatabaseUrl::new(server.url.replacen(
        "//klachtpost@",
        "//klachtpost:url-secret-1@",
        1,
    ));
    let err = Store::open(wrong.clone()).await.unwrap_err().to_string();
    assert!(err.contains("cannot open the database"), "{err}");
    assert!(!err.contains("url-secret-1"), "{err}");
    wrong.password = Some(SecretString::from("config-secret-2"));
    let err = Store::open(wrong.clone()).await.unwrap_err().to_string();
    assert!(
        !err.contains("config-secret-2") && !err.contains("url-secret-1"),
        "{err}"
    );
    let shown = format!("{wrong:?}");
    assert!(
        !shown.contains("config-secret-2") && !shown.contains("url-secret-1"),
        "{shown}"
    );
}

#[tokio::test]
async fn postgres_over_tls_checks_the_server_against_ca_file() {
    let ca = support::TestCa::new();
    let server = Postgres::private(PgOptions { tls: Some(&ca) });
    let mut url = pg_url(&server.create_database());
    url.ca_file = Some(ca.ca_pem.clone());
    let store = Store::open(url.clone()).await.unwrap();
    let pool = store.pool().as_postgres().unwrap();
    let (ssl,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(ssl, "the connection is not TLS");

    // A server certificate from another CA is refused.
    let other = support::TestCa::new();
    url.ca_file = Some(other.ca_pem.clone());
    let err = Store::open(url).await.unwrap_err().to_string();
    assert!(err.contains("cannot open the database"), "{err}");
}

/// `klachtpost migrate --from sqlite://… --to postgres://…` copies a register with its ids:
/// the copy reads the same, its history has the same head hash and verifies, and new cases
/// continue after the copied ones.
#[tokio::test]
async fn migrate_copies_a_sqlite_register_to_postgres_and_its_history_verifies() {
    let old = Db::sqlite().await;
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    let store = Store::open(old.url()).await.unwrap();
    let first = open_case(&store, at).await;
    open_case(&store, at + Duration::minutes(5)).await;
    for n in 0..3 {
        let mut tx = store.begin().await.unwrap();
        case::note(
            &mut tx,
            &first,
            &format!("note {n}"),
            Actor::new("Anna", at),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let mut tx = store.begin().await.unwrap();
    case::close(
        &mut tx,
        &first,
        case::Closing::Handled(case::Satisfied::Yes),
        Actor::new("Anna", at + Duration::days(2)),
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    queue_notices(&store, 3, at).await;
    // Raw mail (0012): a small one and one written in pieces.
    let small = mail_of(4_000, "kopie-klein");
    let big = mail_of(2 * store::STREAM_RAW_BYTES + 1, "kopie-groot");
    let small_id = store_mail(&store, &small, at).await;
    let big_id = store_mail(&store, &big, at).await;
    store
        .set_checkpoint("INBOX", u32::MAX, 7, at)
        .await
        .unwrap();
    store
        .record_bounce("jan@client.example", at, "smtp")
        .await
        .unwrap();
    let cases_before = serde_json::to_value(store.list_cases().await.unwrap()).unwrap();
    let head_before = history::verify(store.pool()).await.unwrap();
    assert!(head_before.broken.is_none());
    store.pool().close().await;

    let new = Postgres::shared().create_database();
    let password_file = old_dir(&old).join("pg-password");
    std::fs::write(&password_file, &new.password).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_klachtpost"))
        .args([
            "migrate",
            "--from",
            old.url().as_str(),
            "--to",
            new.url.as_str(),
        ])
        .arg("--password-file")
        .arg(&password_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("  cases: 2"), "{stdout}");
    assert!(stdout.contains("  outbox: 3"), "{stdout}");
    assert!(stdout.contains("  message_raw: 5"), "{stdout}");
    assert!(
        stdout.contains(&format!("Head hash: {}", head_before.head)),
        "{stdout}"
    );
    assert!(!stdout.contains(&new.password), "{stdout}");

    let copy = Store::open(pg_url(&new)).await.unwrap();
    assert_eq!(
        serde_json::to_value(copy.list_cases().await.unwrap()).unwrap(),
        cases_before
    );
    let v = history::verify(copy.pool()).await.unwrap();
    assert_eq!(
        (v.head, v.broken.map(|b| b.problem)),
        (head_before.head, None)
    );
    assert_eq!(copy.checkpoint("INBOX").await.unwrap(), Some((u32::MAX, 7)));
    assert_eq!(copy.raw_message(small_id).await.unwrap(), Some(small));
    assert!(copy.raw_message(big_id).await.unwrap() == Some(big));
    // New rows continue after the copied ids and numbers.
    assert_eq!(
        open_case(&copy, at + Duration::days(3)).await,
        "KL-2026-0003"
    );
    queue_notices(&copy, 1, at).await;
    assert!(history::verify(copy.pool()).await.unwrap().broken.is_none());

    // Into a database that already holds a register: refused, nothing changed.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_klachtpost"))
        .args([
            "migrate",
            "--from",
            old.url().as_str(),
            "--to",
            new.url.as_str(),
        ])
        .arg("--password-file")
        .arg(&password_file)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already holds a register"), "{stderr}");
    assert_eq!(copy.list_cases().await.unwrap().len(), 3);
}

fn old_dir(db: &Db) -> std::path::PathBuf {
    match db {
        Db::Sqlite(dir) => dir.path().to_owned(),
        Db::Postgres(_) => unreachable!("a SQLite register"),
    }
}

/// A mail of `len` bytes that is not all the same byte (a zeroblob left unwritten would
/// show), with `marker` in its body.
fn mail_of(len: usize, marker: &str) -> Vec<u8> {
    let mut raw = format!(
        "From: jan@client.example\r\nSubject: Klacht\r\nMessage-ID: <{marker}@client.example>\r\n\r\n{marker}\r\n"
    )
    .into_bytes();
    let mut x: u32 = 7;
    while raw.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        raw.push(b'A' + (x >> 16) as u8 % 26);
        if raw.len() % 78 == 76 {
            raw.extend_from_slice(b"\r\n");
        }
    }
    raw.truncate(len);
    raw
}

/// `raw` as an unattached inbound message.
fn inbound(raw: &[u8], at: DateTime<Utc>) -> store::NewMessage<'_> {
    store::NewMessage {
        case_id: None,
        direction: "inbound",
        kind: "automatic",
        source_key: None,
        identity: None,
        message_id: None,
        from_name: None,
        from_address: Some("jan@client.example"),
        subject: "Klacht",
        date_header: None,
        received_at: at,
        text: "",
        decision_reason: "test",
        flags: &[],
        raw,
        created_at: at,
    }
}

/// Store `raw` as an unattached inbound message, as intake does; its row id.
async fn store_mail(store: &Store, raw: &[u8], at: DateTime<Utc>) -> i64 {
    let mut tx = store.begin().await.unwrap();
    let id = store::insert_message(&mut tx, &inbound(raw, at))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

/// One number from `sql` on the store's database.
async fn count(store: &Store, sql: &'static str) -> i64 {
    match (store.pool().as_sqlite(), store.pool().as_postgres()) {
        (Some(p), _) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        (_, Some(p)) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        _ => unreachable!(),
    }
}

/// The raw mail lives in `message_raw` (0012): a small one bound, a large one (over
/// `STREAM_RAW_BYTES`, written in pieces on SQLite) byte for byte; `size` is kept on the
/// message; deleting the message (retention) deletes its raw row.
async fn raw_mail_round_trip(db: Db) {
    let store = Store::open(db.url()).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    let small = mail_of(2_000, "klein");
    let big = mail_of(3 * store::STREAM_RAW_BYTES + 12_345, "groot");
    let small_id = store_mail(&store, &small, at).await;
    let big_id = store_mail(&store, &big, at).await;
    assert_eq!(store.raw_message(small_id).await.unwrap(), Some(small));
    assert!(store.raw_message(big_id).await.unwrap() == Some(big.clone()));
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM message_raw").await,
        2,
        "one raw row per message"
    );
    assert_eq!(
        count(&store, "SELECT MAX(size) FROM messages").await,
        big.len() as i64
    );
    let mut tx = store.begin().await.unwrap();
    store::retention::delete_message(&mut tx, big_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.raw_message(big_id).await.unwrap(), None);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM message_raw").await, 1);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM messages").await, 1);
}

on_both!(
    #[tokio::test]
    raw_mail_round_trip => sqlite_keeps_raw_mail_apart_and_deletes_it_with_its_message,
    postgres_keeps_raw_mail_apart_and_deletes_it_with_its_message
);

/// A message, its raw bytes and its outbox row are written together (on SQLite one list
/// of statements, each row finding the message by the last id inserted): in one
/// transaction, inbound mail, queued mail and a large mail (written in pieces on SQLite) in
/// turn, each raw row and each outbox row belongs to its own message, with what was given.
async fn messages_and_their_rows_stay_together(db: Db) {
    let store = Store::open(db.url()).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    let outgoing = |n: usize, len: usize| klachtpost::compose::Outgoing {
        message_id: format!("uit{n}@firma.example"),
        subject: format!("Uit {n}"),
        text: format!("tekst {n}"),
        raw: mail_of(len, &format!("uit{n}")),
    };
    let big = outgoing(3, 2 * store::STREAM_RAW_BYTES + 7);
    let mut tx = store.begin().await.unwrap();
    let first = store::insert_message(&mut tx, &inbound(b"From: a@b.example\r\n\r\neen\r\n", at))
        .await
        .unwrap();
    let mut queued = Vec::new();
    for (n, out) in [
        (1, outgoing(1, 900)),
        (2, outgoing(2, 1_200)),
        (3, big.clone()),
    ] {
        let to = [
            format!("klant{n}@client.example"),
            "staf@firma.example".to_string(),
        ];
        let (row, outbox) = store::queue_outgoing_to_all(
            &mut tx,
            None,
            "notice",
            Some("klachtpost"),
            "klachten@firma.example",
            &to,
            &out,
            "test",
            at,
        )
        .await
        .unwrap();
        queued.push((row, outbox, out, to.join("\n")));
    }
    let last = store::insert_message(&mut tx, &inbound(b"From: a@b.example\r\n\r\ntwee\r\n", at))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(
        store.raw_message(first).await.unwrap().as_deref(),
        Some(&b"From: a@b.example\r\n\r\neen\r\n"[..])
    );
    assert_eq!(
        store.raw_message(last).await.unwrap().as_deref(),
        Some(&b"From: a@b.example\r\n\r\ntwee\r\n"[..])
    );
    let due = store.outbox_due(at + Duration::days(1), 10).await.unwrap();
    assert_eq!(due.len(), 3, "three outbox rows");
    for (row, outbox, out, to) in &queued {
        assert!(
            store.raw_message(*row).await.unwrap() == Some(out.raw.clone()),
            "raw of {row}"
        );
        let item = due
            .iter()
            .find(|i| i.id == *outbox)
            .expect("the outbox row");
        assert!(item.raw == out.raw, "outbox {outbox} sends its own message");
        assert_eq!(item.recipients.join("\n"), *to);
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM messages").await, 5);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM message_raw").await, 5);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM outbox WHERE status = 'queued'"
        )
        .await,
        3
    );
}

on_both!(
    #[tokio::test]
    messages_and_their_rows_stay_together => sqlite_writes_a_message_with_its_rows, postgres_writes_a_message_with_its_rows
);

/// What the loop and flood rules read of a claimed batch's recipients, in one query: per
/// address its hard bounces since the block began and the automatic mail sent to it in
/// the last hour and day (not what was only queued, nor what was not automatic); an
/// address never written to has a clean record.
async fn recipient_records_of_a_batch(db: Db) {
    let store = Store::open(db.url()).await.unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 19, 12, 0, 0).unwrap();
    let mail = |n: usize, automatic: bool| klachtpost::compose::Outgoing {
        message_id: format!("r{n}@firma.example"),
        subject: "Ontvangen".into(),
        text: "tekst".into(),
        raw: format!(
            "From: klachten@firma.example\r\n{}Subject: Ontvangen\r\n\r\ntekst\r\n",
            if automatic {
                "Auto-Submitted: auto-replied\r\n"
            } else {
                ""
            }
        )
        .into_bytes(),
    };
    // anna: automatic mail 30 minutes and 5 hours ago, one only queued, one not automatic;
    // bert: 2 days ago (outside the day) and a hard bounce 10 days ago.
    let sends = [
        (
            "anna@client.example",
            now - Duration::minutes(30),
            true,
            true,
        ),
        ("anna@client.example", now - Duration::hours(5), true, true),
        (
            "anna@client.example",
            now - Duration::minutes(5),
            true,
            false,
        ),
        (
            "anna@client.example",
            now - Duration::minutes(10),
            false,
            true,
        ),
        ("bert@client.example", now - Duration::days(2), true, true),
    ];
    let mut tx = store.begin().await.unwrap();
    for (n, (to, at, automatic, sent)) in sends.into_iter().enumerate() {
        let id = store::queue_outgoing(
            &mut tx,
            None,
            "acknowledgement",
            None,
            "klachten@firma.example",
            to,
            &mail(n, automatic),
            "test",
            at,
        )
        .await
        .unwrap();
        if sent {
            store::outbox_mark_sent(&mut tx, id, at).await.unwrap();
        }
    }
    store::record_bounce(
        &mut tx,
        "bert@client.example",
        now - Duration::days(10),
        "report",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let asked: Vec<String> = [
        "anna@client.example",
        "bert@client.example",
        "cor@client.example",
    ]
    .map(String::from)
    .into();
    let records = store
        .recipient_records(
            &asked,
            now - Duration::days(60),
            now - Duration::hours(1),
            now - Duration::days(1),
        )
        .await
        .unwrap();
    let record = |a: &str| records.get(a).copied().expect(a);
    assert_eq!(
        record("anna@client.example"),
        store::RecipientRecord {
            bounced: false,
            automatic_last_hour: 1,
            automatic_last_day: 2
        }
    );
    assert_eq!(
        record("bert@client.example"),
        store::RecipientRecord {
            bounced: true,
            automatic_last_hour: 0,
            automatic_last_day: 0
        }
    );
    assert_eq!(
        record("cor@client.example"),
        store::RecipientRecord::default()
    );
    // The bounce is older than a shorter block.
    let later = store
        .recipient_records(
            &asked[1..2],
            now - Duration::days(5),
            now - Duration::hours(1),
            now - Duration::days(1),
        )
        .await
        .unwrap();
    assert!(!later["bert@client.example"].bounced);
}

on_both!(
    #[tokio::test]
    recipient_records_of_a_batch => sqlite_reads_a_batchs_recipient_records, postgres_reads_a_batchs_recipient_records
);

/// A fold reads the acknowledged cases together and records each acknowledgement as if
/// one after the other: a case whose acknowledgement was sent twice (two rows) gets two
/// entries, only the first of which changes the case (acknowledged then, status
/// `acknowledged`); a case read along with it is acknowledged too.
async fn a_fold_acknowledges_a_case_sent_twice_once(db: Db) {
    let store = Store::open(db.url()).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    let (twice, once) = (open_case(&store, at).await, open_case(&store, at).await);
    let mut rows = Vec::new();
    let mut tx = store.begin().await.unwrap();
    for (n, reference) in [&twice, &once, &twice].into_iter().enumerate() {
        let case_id = store::case_id_by_reference(&mut tx, reference)
            .await
            .unwrap();
        let out = klachtpost::compose::Outgoing {
            message_id: format!("ack-{n}@firma.nl"),
            subject: "Ontvangen".into(),
            text: "Tekst".into(),
            raw: b"Subject: Ontvangen\r\n\r\nTekst\r\n".to_vec(),
        };
        let id = store::queue_outgoing(
            &mut tx,
            case_id,
            "acknowledgement",
            None,
            "klachten@firma.nl",
            "jan@client.example",
            &out,
            "test",
            at,
        )
        .await
        .unwrap();
        rows.push(id);
    }
    tx.commit().await.unwrap();
    assert_eq!(store.claim_due(at, 10).await.unwrap().len(), 3);
    for (n, id) in rows.iter().enumerate() {
        let sent = at + Duration::seconds(10 * (n as i64 + 1));
        assert!(store.confirm_sent(*id, sent).await.unwrap());
    }
    assert_eq!(
        klachtpost::outbox::fold_confirmations(&store)
            .await
            .unwrap(),
        3
    );
    let case = store.case(&twice).await.unwrap().expect("the case");
    assert_eq!(case.case.status, "acknowledged");
    assert_eq!(
        case.case.acknowledged_at.as_deref(),
        Some(store::ts(at + Duration::seconds(10)).as_str()),
        "acknowledged when the first was accepted"
    );
    let sent: Vec<Vec<String>> = case
        .events
        .iter()
        .filter(|e| e.event == "acknowledgement.sent")
        .map(|e| e.changes.iter().map(|c| c.field.clone()).collect())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent[0].contains(&"acknowledged_at".to_string()) && sent[0].contains(&"status".to_string()),
        "{sent:?}"
    );
    assert!(sent[1].is_empty(), "the second changes nothing: {sent:?}");
    let other = store.case(&once).await.unwrap().expect("the case");
    assert_eq!(other.case.status, "acknowledged");
    let v = history::verify(store.pool()).await.unwrap();
    assert_eq!(v.broken.map(|b| b.problem), None);
}

on_both!(
    #[tokio::test]
    a_fold_acknowledges_a_case_sent_twice_once => sqlite_fold_acknowledges_a_case_sent_twice_once, postgres_fold_acknowledges_a_case_sent_twice_once
);

/// More addresses than one records query asks about (100): every one answered, each its
/// own (the one that bounced among them, past the first query's hundred).
async fn recipient_records_past_one_query(db: Db) {
    let store = Store::open(db.url()).await.unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 19, 12, 0, 0).unwrap();
    let asked: Vec<String> = (0..250)
        .map(|i| format!("k{i:03}@client.example"))
        .collect();
    let mut tx = store.begin().await.unwrap();
    store::record_bounce(&mut tx, &asked[173], now - Duration::days(1), "report")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let records = store
        .recipient_records(
            &asked,
            now - Duration::days(60),
            now - Duration::hours(1),
            now - Duration::days(1),
        )
        .await
        .unwrap();
    assert_eq!(records.len(), 250);
    let bounced: Vec<&String> = asked.iter().filter(|a| records[*a].bounced).collect();
    assert_eq!(bounced, [&asked[173]]);
}

on_both!(
    #[tokio::test]
    recipient_records_past_one_query => sqlite_reads_recipient_records_past_one_query, postgres_reads_recipient_records_past_one_query
);

/// A register in the field before 0012 (every other migration applied, 0020 included: it
/// was applied before 0012 existed) with raw mail in `messages.raw`: opening it applies
/// 0012, which moves the bytes to `message_raw` and drops the column.
async fn migration_0012_moves_old_raw_mail(db: Db) {
    let tmp = tempfile::tempdir().unwrap();
    let sub = match db {
        Db::Sqlite(_) => "sqlite",
        Db::Postgres(_) => "postgres",
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(sub);
    let mut copied = 0;
    for f in std::fs::read_dir(&root).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().into_string().unwrap();
        if !name.starts_with("0012_") {
            std::fs::copy(f.path(), tmp.path().join(&name)).unwrap();
            copied += 1;
        }
    }
    assert!(copied >= 3, "{copied} migrations before 0012");
    let older = sqlx::migrate::Migrator::new(tmp.path()).await.unwrap();
    let small = mail_of(1_500, "oud-klein");
    let big = mail_of(2 * store::STREAM_RAW_BYTES, "oud-groot");
    let insert = "INSERT INTO messages (direction, kind, subject, received_at, text, decision_reason, flags, size, raw, created_at)
                  VALUES ('inbound', 'complaint', 'Klacht', $1, '', 'test', '', $2, $3, $1) RETURNING id";
    let mut ids: Vec<i64> = Vec::new();
    let at = Utc.with_ymd_and_hms(2026, 11, 19, 9, 0, 0).unwrap();
    match &db {
        Db::Sqlite(dir) => {
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("k.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            older.run(&pool).await.unwrap();
            for raw in [&small, &big] {
                let id = sqlx::query_scalar(insert)
                    .bind(store::ts(at))
                    .bind(raw.len() as i64)
                    .bind(raw.as_slice())
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                ids.push(id);
            }
            pool.close().await;
        }
        Db::Postgres(pg) => {
            let pool = sqlx::PgPool::connect(&pg.url_with_password())
                .await
                .unwrap();
            older.run(&pool).await.unwrap();
            for raw in [&small, &big] {
                let id = sqlx::query_scalar(insert)
                    .bind(at)
                    .bind(raw.len() as i64)
                    .bind(raw.as_slice())
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                ids.push(id);
            }
            pool.close().await;
        }
    }
    let store = Store::open(db.url()).await.unwrap();
    assert_eq!(store.raw_message(ids[0]).await.unwrap(), Some(small));
    assert!(store.raw_message(ids[1]).await.unwrap() == Some(big.clone()));
    assert_eq!(count(&store, "SELECT COUNT(*) FROM message_raw").await, 2);
    assert_eq!(
        count(&store, "SELECT MAX(size) FROM messages").await,
        big.len() as i64
    );
    // The column is gone: nothing can read a raw mail past message_raw.
    let gone = match (store.pool().as_sqlite(), store.pool().as_postgres()) {
        (Some(p), _) => sqlx::query("SELECT raw FROM messages")
            .fetch_all(p)
            .await
            .map(|_| ()),
        (_, Some(p)) => sqlx::query("SELECT raw FROM messages")
            .fetch_all(p)
            .await
            .map(|_| ()),
        _ => unreachable!(),
    };
    assert!(gone.is_err(), "messages.raw still there");
    // New mail after the migration: ids go on, raw beside it.
    let next = store_mail(&store, b"From: a@b.example\r\n\r\nna", at).await;
    assert!(next > ids[1]);
    assert_eq!(
        store.raw_message(next).await.unwrap().as_deref(),
        Some(&b"From: a@b.example\r\n\r\nna"[..])
    );
}

on_both!(
    #[tokio::test]
    migration_0012_moves_old_raw_mail => sqlite_migration_0012_moves_raw_mail_of_an_older_register,
    postgres_migration_0012_moves_raw_mail_of_an_older_register
);
