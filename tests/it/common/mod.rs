//! Shared fixtures for the integration tests: a local anvil chain, and
//! fresh databases on both backends.

pub mod anvil;
pub mod net;
pub mod procs;
pub mod proxy;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use diesel::{Connection, PgConnection, RunQueryDsl};
use tempfile::TempDir;
use zkpow::db::Db;

/// Admin connection for creating and dropping test databases.
pub const PG_URL_ENV: &str = "ZKPOW_TEST_PG_URL";
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh SQLite database in a temporary directory, removed with it.
pub fn sqlite_db() -> (Db, TempDir) {
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let db = Db::connect(&sqlite_url(&dir)).expect("opening a fresh SQLite database");
    (db, dir)
}

/// The URL of the database [`sqlite_db`] made in `dir`, to reopen it.
pub fn sqlite_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("zkpow.db").display())
}

/// A fresh, uniquely named PostgreSQL database, dropped with this value.
pub struct TestPg {
    db: Option<Db>,
    name: String,
    url: String,
    admin_url: String,
}

impl TestPg {
    pub fn db(&self) -> &Db {
        self.db.as_ref().expect("the test database is open")
    }

    /// Connection URL of the test database, to reconnect to it.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        // Close the pool first so the database has no sessions of ours.
        self.db.take();
        let dropped = PgConnection::establish(&self.admin_url).and_then(|mut admin| {
            diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name))
                .execute(&mut admin)
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
        });
        if let Err(e) = dropped {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

/// Creates a fresh database on the PostgreSQL server named by
/// `ZKPOW_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
/// and connects to it. Panics, failing the test, if the server is not
/// reachable: these tests must run, not skip.
pub fn postgres_db() -> TestPg {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let admin_url = std::env::var(PG_URL_ENV).unwrap_or_else(|_| DEFAULT_PG_URL.to_string());
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let name = format!(
        "zkpow_it_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos ^ 0x5bd1_e995
    );

    let mut admin = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is required for these tests and is not reachable at {admin_url}: {e}\n\
             Start it, or point {PG_URL_ENV} at a server where this user may create databases."
        )
    });
    diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .unwrap_or_else(|e| panic!("creating test database {name} via {admin_url}: {e}"));
    drop(admin);

    let url = database_url(&admin_url, &name);
    let db = Db::connect(&url).unwrap_or_else(|e| panic!("connecting to fresh test database {name}: {e}"));
    TestPg { db: Some(db), name, url, admin_url }
}

/// `admin_url` with its database path replaced by `name`, keeping any query
/// string (sslmode and the like).
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..].find('/').map(|i| scheme_end + i).unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

#[test]
fn database_url_replaces_only_the_path() {
    assert_eq!(database_url("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
    assert_eq!(database_url("postgres://u@h:5432", "x"), "postgres://u@h:5432/x");
    assert_eq!(database_url("postgresql://h/test?sslmode=disable", "x"), "postgresql://h/x?sslmode=disable");
}
