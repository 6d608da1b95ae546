//! The aggregator's persistence: everything that must survive a restart —
//! the watcher's cursor per base chain, posted sequences and their batch
//! data, executor snapshots and witnesses, proof tasks,
//! finished proofs, and the outbox of chain transactions.
//!
//! One diesel code path serves two backends: [`AnyConnection`] is a
//! `MultiConnection` over SQLite (bundled, the zero-setup default) and
//! PostgreSQL, chosen by the URL ([`DbUrl`]). Each backend has its own
//! embedded migrations (`migrations/sqlite`, `migrations/postgres`), which
//! [`Db::connect`] applies. The few statements `MultiConnection` cannot
//! express (`ON CONFLICT`) are written once and dispatched to the concrete
//! connection by a macro, so no query exists in two versions.
//!
//! Storage conventions:
//! - timestamps are BIGINT unix milliseconds ([`Millis`]), passed in by the
//!   caller so tests control time;
//! - hashes and state roots are 32-byte BLOB/BYTEA values ([`Hash32`]);
//!   roots are big-endian field elements, the word the contract stores;
//! - batch and block numbers are `u64` in the API and BIGINT in the table;
//!   values above `i64::MAX` are refused rather than wrapped;
//! - structured values (witnesses, account snapshots, public inputs, prover
//!   shapes) are JSON in TEXT columns;
//! - enums are lowercase TEXT guarded by CHECK constraints.
//!
//! The queries live in one data-access module per table group: [`chain`]
//! (watcher cursors), [`sequences`] (sequences, batches, witnesses),
//! [`state`] (executor snapshots), [`tasks`] (proof tasks and proofs),
//! [`outbox`] (submissions, transactions, booked rewards and penalties) and
//! [`lease`] (the failover lease). Each is a plain blocking function on
//! `&mut AnyConnection`, and those that write run in [`transaction`], so
//! they also compose into a caller's transaction. From async code wrap it in [`Db::run`], which moves it to
//! tokio's blocking pool; from blocking code use [`Db::with_conn`]. Both
//! time the call (`zkpow_db_query_duration_seconds`, `zkpow_db_pool_wait_seconds`);
//! [`Db::run_op`] and [`Db::with_conn_op`] name the operation in the metric. Every
//! query that changes state runs in a transaction ([`transaction`]), and
//! those transactions nest, so a caller can combine several queries
//! atomically.

pub mod chain;
mod error;
pub mod lease;
pub mod models;
pub mod outbox;
pub mod schema;
pub mod sequences;
pub mod state;
pub mod tasks;

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use error::DbError;
// The types every data-access module speaks; the queries themselves are
// reached through their module (`db::sequences::get_sequence`).
pub use models::{
    now_ms, task_id, Addr20, Batch, ChainCursor, ChainTx, Completion, Hash32, Inserted, Millis, NewBatch, NewProof,
    NewSequence, NewTask, Proof, ProofTask, Rewind, RollupState, Sequence, SequenceState, Submission, SubmissionStatus,
    TaskKind, TaskStatus, TxPurpose, TxStatus,
};

/// Migrations for SQLite databases.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// Migrations for PostgreSQL databases.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend. Queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs one expression against the concrete connection inside an
/// [`AnyConnection`], for the statements `MultiConnection` cannot build
/// (`ON CONFLICT`). The body is written once and compiled per backend.
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::AnyConnection::Sqlite($c) => $body,
            $crate::db::AnyConnection::Postgres($c) => $body,
        }
    };
}
pub(crate) use per_backend;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A parsed database URL: `postgres://…` or `postgresql://…` select
/// PostgreSQL; `sqlite://path`, `sqlite:path` or a plain path select SQLite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<DbUrl, DbError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_string()));
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.is_empty() {
            return Err(DbError::InvalidUrl("no SQLite database path given".into()));
        }
        if path == ":memory:" || path.starts_with("file::memory:") {
            // Every pooled connection would open its own empty database.
            return Err(DbError::InvalidUrl("in-memory SQLite cannot back a connection pool; give a file".into()));
        }
        if let Some((scheme, _)) = path.split_once("://") {
            if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
                return Err(DbError::InvalidUrl(format!(
                    "unsupported scheme {scheme}:// (use postgres:// or sqlite://)"
                )));
            }
        }
        Ok(DbUrl::Sqlite(PathBuf::from(path)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DbUrl::Sqlite(_) => Backend::Sqlite,
            DbUrl::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted(&self) -> String {
        match self {
            DbUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DbUrl::Postgres(u) => redact_password(u),
        }
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_string() };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// Opens connections for the pool, choosing the backend from the URL rather
/// than by trial (the derived `establish` would try SQLite first and create
/// a file named after a PostgreSQL URL).
#[derive(Debug)]
pub struct AnyConnectionManager {
    url: DbUrl,
}

impl ManageConnection for AnyConnectionManager {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
        match &self.url {
            DbUrl::Sqlite(path) => SqliteConnection::establish(&sqlite_filename(path)?).map(AnyConnection::Sqlite),
            DbUrl::Postgres(url) => PgConnection::establish(url).map(AnyConnection::Postgres),
        }
        .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// diesel opens SQLite with URI parsing on, so a relative path that happens
/// to start with `file:` must not be read as a URI.
fn sqlite_filename(path: &Path) -> Result<String, diesel::ConnectionError> {
    let s = path.to_str().ok_or_else(|| {
        diesel::ConnectionError::InvalidConnectionUrl(format!("SQLite path {} is not UTF-8", path.display()))
    })?;
    Ok(if s.starts_with("file:") { format!("./{s}") } else { s.to_string() })
}

/// Per-connection SQLite settings (they are not stored in the file, except
/// WAL): WAL so readers never block the writer, a busy timeout so writers
/// queue instead of failing, foreign keys, which SQLite leaves off, and a
/// page cache of 1 MiB instead of 2: the daemon's working set is the
/// sequences in flight (a few hundred pages); a bigger cache only fills,
/// connection by connection, with settled history as the file grows, which
/// over a long run is memory for nothing.
const SQLITE_PRAGMAS: &str =
    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -1024;";

/// Per-session PostgreSQL settings. Our transactions never wait on anything
/// outside the database, so one that sits idle for seconds belongs to a hung
/// or frozen process: ending it releases its row locks, above all the
/// aggregator lease's, which a standby needs to take over.
const POSTGRES_SESSION: &str = "SET idle_in_transaction_session_timeout = '5s';";

#[derive(Debug)]
struct ConnectionSetup;

impl CustomizeConnection<AnyConnection, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), diesel::r2d2::Error> {
        match conn {
            AnyConnection::Sqlite(c) => c.batch_execute(SQLITE_PRAGMAS),
            AnyConnection::Postgres(c) => c.batch_execute(POSTGRES_SESSION),
        }
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

#[derive(Clone, Debug)]
pub struct DbOptions {
    /// Pool size; `None` picks 4 for SQLite (one writer at a time anyway)
    /// and 8 for PostgreSQL.
    pub max_connections: Option<u32>,
    /// How long a caller waits for a pooled connection before getting
    /// [`DbError::Connection`].
    pub connection_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions { max_connections: None, connection_timeout: Duration::from_secs(10) }
    }
}

/// A pooled connection, dereferencing to [`AnyConnection`].
pub type DbConn = PooledConnection<AnyConnectionManager>;

/// The database handle: a connection pool. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<AnyConnectionManager>,
    backend: Backend,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("backend", &self.backend).field("pool", &self.pool.state()).finish()
    }
}

impl Db {
    /// Opens (creating a SQLite file and its directory if needed) and
    /// migrates the database at `url`.
    pub fn connect(url: &str) -> Result<Db, DbError> {
        Db::connect_with(url, DbOptions::default())
    }

    pub fn connect_with(url: &str, options: DbOptions) -> Result<Db, DbError> {
        let url = DbUrl::parse(url)?;
        if let DbUrl::Sqlite(path) = &url {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| DbError::Other(format!("creating {}: {e}", dir.display())))?;
            }
        }
        let backend = url.backend();
        let shown = url.redacted();
        let manager = AnyConnectionManager { url };

        // Migrate on a connection of our own first: a failure then names its
        // cause instead of surfacing as a pool timeout.
        let mut conn = manager.connect()?;
        ConnectionSetup.on_acquire(&mut conn)?;
        let applied = run_migrations(&mut conn)?;
        drop(conn);
        if !applied.is_empty() {
            tracing::info!(db = %shown, migrations = ?applied, "applied database migrations");
        }

        let max = options.max_connections.unwrap_or(match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        });
        let pool = Pool::builder()
            .max_size(max.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.connection_timeout)
            .connection_customizer(Box::new(ConnectionSetup))
            .build(manager)?;
        tracing::debug!(db = %shown, ?backend, pool = max, "database ready");
        Ok(Db { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A pooled connection, for blocking contexts only: it blocks while the
    /// pool is exhausted.
    pub fn conn(&self) -> Result<DbConn, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` on a pooled connection on the current thread. For blocking
    /// contexts (sync actors, `spawn_blocking`); async code uses [`Db::run`].
    pub fn with_conn<T>(&self, f: impl FnOnce(&mut AnyConnection) -> Result<T, DbError>) -> Result<T, DbError> {
        self.with_conn_op(crate::metrics::DB_OP_DEFAULT, f)
    }

    /// [`Db::with_conn`], timed under the operation label `op` (a short
    /// constant such as `"store_proof"`, never a value).
    pub fn with_conn_op<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let waiting = std::time::Instant::now();
        let mut conn = self.conn()?;
        crate::metrics::db_pool_wait(waiting.elapsed().as_secs_f64());
        let started = std::time::Instant::now();
        let result = f(&mut conn);
        crate::metrics::db_query(op, started.elapsed().as_secs_f64());
        result
    }

    /// Runs `f` on a pooled connection on tokio's blocking pool, so neither
    /// waiting for a connection nor the query stalls an executor thread.
    /// A panic inside `f` is resumed in the caller.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        self.run_op(crate::metrics::DB_OP_DEFAULT, f).await
    }

    /// [`Db::run`], timed under the operation label `op`.
    pub async fn run_op<T, F>(&self, op: &'static str, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        let db = self.clone();
        match tokio::task::spawn_blocking(move || db.with_conn_op(op, f)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(DbError::Other(format!("database task cancelled: {e}"))),
        }
    }
}

/// Applies pending migrations; returns the versions applied.
pub fn run_migrations(conn: &mut AnyConnection) -> Result<Vec<String>, DbError> {
    fn names(
        r: diesel::migration::Result<Vec<diesel::migration::MigrationVersion<'_>>>,
    ) -> Result<Vec<String>, DbError> {
        r.map(|v| v.iter().map(|m| m.to_string()).collect()).map_err(|e| DbError::Migration(e.to_string()))
    }
    match conn {
        AnyConnection::Sqlite(c) => {
            // SQLite has no advisory lock: when two processes open a new
            // file at once, the loser sees the winner's tables mid-way.
            // Retrying re-reads the applied versions and finds nothing left.
            let mut attempt = 0;
            loop {
                match names(c.run_pending_migrations(SQLITE_MIGRATIONS)) {
                    Err(e) if attempt < 20 => {
                        attempt += 1;
                        tracing::debug!(error = %e, attempt, "migration raced another process; retrying");
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    other => return other,
                }
            }
        }
        AnyConnection::Postgres(c) => {
            use diesel::RunQueryDsl;
            // Two daemons starting on one database would otherwise race to
            // create the same tables; the lock is per session, so it is
            // released even if this process dies mid-migration.
            diesel::sql_query(format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})")).execute(c)?;
            let applied = names(c.run_pending_migrations(POSTGRES_MIGRATIONS));
            let unlocked = diesel::sql_query(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})")).execute(c);
            let applied = applied?;
            unlocked?;
            Ok(applied)
        }
    }
}

/// Advisory lock key for migrations: "zkpowmig" in ASCII.
const PG_MIGRATION_LOCK: i64 = 0x7a6b_706f_776d_6967;

/// Runs `f` in a transaction, or in a savepoint when one is already open, so
/// queries compose: a caller can wrap several of them in one transaction.
///
/// On SQLite the outermost transaction is `BEGIN IMMEDIATE`: it takes the
/// write lock up front, waiting out the busy timeout, instead of failing with
/// `SQLITE_BUSY` when a read inside the transaction later turns into a write
/// while another connection is writing.
pub fn transaction<T>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    type Manager = <AnyConnection as Connection>::TransactionManager;
    match conn {
        AnyConnection::Sqlite(c) => match AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE") {
            Ok(()) => {}
            Err(diesel::result::Error::AlreadyInTransaction) => return conn.transaction(f),
            Err(e) => return Err(e.into()),
        },
        AnyConnection::Postgres(_) => return conn.transaction(f),
    }
    // From here on this mirrors diesel's `TransactionManager::transaction`.
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => match Manager::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(e),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_the_backend() {
        assert_eq!(DbUrl::parse("postgres://u@h/db").unwrap(), DbUrl::Postgres("postgres://u@h/db".into()));
        assert_eq!(DbUrl::parse("postgresql://h/db").unwrap().backend(), Backend::Postgres);
        assert_eq!(DbUrl::parse("sqlite://data/z.db").unwrap(), DbUrl::Sqlite("data/z.db".into()));
        assert_eq!(DbUrl::parse("sqlite:///abs/z.db").unwrap(), DbUrl::Sqlite("/abs/z.db".into()));
        assert_eq!(DbUrl::parse("sqlite:z.db").unwrap(), DbUrl::Sqlite("z.db".into()));
        assert_eq!(DbUrl::parse(" ./z.db ").unwrap(), DbUrl::Sqlite("./z.db".into()));
        assert!(matches!(DbUrl::parse("mysql://h/db"), Err(DbError::InvalidUrl(_))));
        assert!(matches!(DbUrl::parse("sqlite://"), Err(DbError::InvalidUrl(_))));
        assert!(matches!(DbUrl::parse(":memory:"), Err(DbError::InvalidUrl(_))));
    }

    #[test]
    fn passwords_are_redacted() {
        let u = DbUrl::parse("postgres://miner:s3cret@db:5432/zkpow").unwrap();
        assert_eq!(u.redacted(), "postgres://miner:***@db:5432/zkpow");
        assert_eq!(redact_password("postgres://miner@db/zkpow"), "postgres://miner@db/zkpow");
        assert_eq!(redact_password("postgres://db/a@b"), "postgres://db/a@b");
        assert_eq!(DbUrl::parse("z.db").unwrap().redacted(), "sqlite://z.db");
    }

    #[test]
    fn sqlite_paths_are_never_uris() {
        assert_eq!(sqlite_filename(Path::new("file:x.db")).unwrap(), "./file:x.db");
        assert_eq!(sqlite_filename(Path::new("/tmp/x.db")).unwrap(), "/tmp/x.db");
    }
}
