//! The database: connection, migrations and the queries the domain needs. This is the only
//! module that speaks SQL; it knows nothing of HTTP, and of protocol rules only the value types
//! its columns hold (`column_types`).
//!
//! One schema runs unchanged on SQLite (the embedded default) and PostgreSQL. Timestamps are
//! Unix seconds in `BIGINT` columns, so comparisons are plain integer comparisons on both.

pub mod audit;
pub mod client_documents;
pub mod clients;
mod column_types;
pub mod consents;
pub mod counters;
mod eviction;
pub mod grants;
pub mod live_grant;
pub mod login;
mod postgres_pool;
pub mod rate_limits;
pub mod reads;
pub mod refresh_state;
pub mod revocation;
pub mod settings;
pub mod signing_keys;
pub mod tokens;
pub mod web_sessions;
pub mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::SqliteConnectOptions;
use sea_orm::{
    ActiveModelTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    DbErr, EntityTrait,
};

use reads::{Reader, SqliteReads};
pub use writer::SqliteSynchronous;
use writer::{JobFuture, Writer};

/// A handle on the database, cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads, and the writes that are not on the request path.
    db: DatabaseConnection,
    /// Write transactions of the request path (see [`writer`]).
    writer: Writer,
    /// SQLite's writer connection, closed with the store (`None` when it is `db` itself).
    writer_db: Option<DatabaseConnection>,
    /// SQLite file: the hot reads' connections, outside sqlx's pool (see [`reads`]).
    reads: Option<SqliteReads>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// A grouped write was not committed (see [`writer`]); nothing of it is in the database.
    #[error("database write not committed: {0}")]
    Group(String),
    #[error("could not create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

impl Store {
    /// Connects to `url` with the default `synchronous` setting ([`Store::open`]).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::open(url, max_connections, SqliteSynchronous::default()).await
    }

    /// Connects to `url`. For SQLite the file and its directory are created when missing, and
    /// each connection is set up for a server: WAL journal, `synchronous` as given, foreign
    /// keys enforced, and a busy timeout so that writers outside the request path wait instead
    /// of failing. The request path's write transactions go to one writer connection of their
    /// own, which groups them into shared commits ([`writer`]); the request path's reads use
    /// `max_connections` read-only connections that skip sqlx's pool ([`reads`]), the other
    /// statements the pool of `max_connections`. On PostgreSQL every statement uses the pool,
    /// whose connections are pinged only after sitting idle (see `postgres_pool`).
    pub async fn open(
        url: &str,
        max_connections: u32,
        synchronous: SqliteSynchronous,
    ) -> Result<Self, StoreError> {
        if !url.starts_with("sqlite:") {
            let db = postgres_pool::postgres_pool(url, max_connections).await?;
            return Ok(Self {
                writer: Writer::Pool(db.clone()),
                db,
                writer_db: None,
                reads: None,
            });
        }
        if let Some(path) = sqlite_file(url)
            && let Some(dir) = Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let db = Database::connect(options(url, max_connections, synchronous)).await?;
        // An in-memory database exists once per connection: its writer must be the pool.
        let in_memory = sqlite_file(url).is_none() || url.contains("mode=memory");
        let writer_db = match in_memory {
            true => db.clone(),
            false => Database::connect(options(url, 1, synchronous)).await?,
        };
        let reads = match in_memory {
            true => None,
            false => Some(SqliteReads::new(
                read_options(url, synchronous)?,
                max_connections,
            )),
        };
        Ok(Self {
            writer: Writer::grouped(writer_db.clone()),
            db,
            writer_db: (!in_memory).then_some(writer_db),
            reads,
        })
    }

    /// Runs `work` as one write transaction (see [`writer`]): on SQLite grouped with the
    /// concurrent ones into one commit, on PostgreSQL on its own. Answers only once its
    /// writes are committed, or undone when it returned [`writer::Step::Undo`].
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t sea_orm::DatabaseTransaction) -> JobFuture<'t, T> + Send + 'static,
    {
        self.writer.write(work).await
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// Whether the database answers (used by `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    pub async fn close(self) -> Result<(), StoreError> {
        if let Some(reads) = &self.reads {
            reads.close().await;
        }
        self.db.close().await?;
        if let Some(writer) = self.writer_db {
            writer.close().await?;
        }
        Ok(())
    }

    pub(crate) fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Where the request path's reads run: on an SQLite file, connections of their own that
    /// skip sqlx's pool (see [`reads`]); otherwise the pool. Not for writes.
    pub(crate) fn reader(&self) -> Reader<'_> {
        match &self.reads {
            Some(reads) => Reader::Direct(reads, &self.db),
            None => Reader::Pool(&self.db),
        }
    }

    /// The connection pool as sqlx reports it, for metrics.
    pub fn pool_status(&self) -> PoolStatus {
        let (size, idle) = match self.db.get_database_backend() {
            DbBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DbBackend::MySql => (0, 0),
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
        PoolStatus {
            in_use: size - idle,
            idle,
        }
    }

    /// How long acquiring a connection from the pool takes now (a probe: sqlx does not report
    /// how long other queries waited), capped at `limit`.
    pub async fn probe_acquire(&self, limit: Duration) -> Duration {
        let started = std::time::Instant::now();
        let _ = tokio::time::timeout(limit, async {
            match self.db.get_database_backend() {
                DbBackend::Sqlite => self
                    .db
                    .get_sqlite_connection_pool()
                    .acquire()
                    .await
                    .map(drop),
                DbBackend::Postgres => self
                    .db
                    .get_postgres_connection_pool()
                    .acquire()
                    .await
                    .map(drop),
                DbBackend::MySql => Ok(()),
            }
        })
        .await;
        started.elapsed()
    }
}

/// Connections of the pool, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub in_use: u32,
    pub idle: u32,
}

/// Runs `attempt` again when SQLite reports the database busy. A deferred SQLite transaction
/// that reads before it writes fails at once (without waiting for the busy timeout) when
/// another writer committed in between; the whole transaction is then simply retried. Other
/// errors, and PostgreSQL, pass straight through.
pub(crate) async fn retry_when_busy<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut delay = Duration::from_millis(2);
    for _ in 0..20 {
        match attempt().await {
            Err(StoreError::Db(error)) if is_busy(&error) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
    attempt().await
}

/// Runs `attempt`, a transaction that looks a row up and inserts it when missing, again when it
/// lost a race: a concurrent transaction inserted the same row first, so a unique index refused
/// this one's insert and the transaction rolled back whole. Run again, it finds the winner's row
/// and builds on it. Busy SQLite is retried as by [`retry_when_busy`].
pub(crate) async fn retry_when_raced<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    for _ in 0..3 {
        match retry_when_busy(&mut attempt).await {
            Err(StoreError::Db(error)) if is_unique_violation(&error) => {
                tracing::debug!(%error, "a concurrent transaction inserted the row first; again");
            }
            other => return other,
        }
    }
    retry_when_busy(&mut attempt).await
}

fn is_unique_violation(error: &DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

fn is_busy(error: &DbErr) -> bool {
    let text = error.to_string();
    text.contains("database is locked")
        || text.contains("(code: 5)")
        || text.contains("(code: 517)")
}

/// Inserts one row and reads nothing back. sea-orm's `ActiveModel::insert` returns the stored
/// row: on SQLite it follows the `INSERT` with a `SELECT` of it (one more statement, and one more
/// hand-off to the connection's thread), on PostgreSQL it adds `RETURNING` every column. No
/// caller here reads that row, so every insert goes through this instead.
pub(crate) async fn insert_row<A>(db: &impl ConnectionTrait, row: A) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
    <A::Entity as EntityTrait>::Model: sea_orm::IntoActiveModel<A>,
{
    <A::Entity as EntityTrait>::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The pool options for the SQLite database at `url`, its pragmas included.
fn options(url: &str, max_connections: u32, synchronous: SqliteSynchronous) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    // An SQLite connection is a file handle that cannot go stale: pinging it before every
    // query only adds a round trip (a large part of a gateway request's cost).
    options.test_before_acquire(false);
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |opts| with_pragmas(opts.create_if_missing(true), synchronous));
    options
}

/// Every SQLite connection's setup for a server: WAL journal, `synchronous` as given, foreign
/// keys enforced, and a busy timeout so that writers outside the request path wait instead of
/// failing.
fn with_pragmas(
    options: SqliteConnectOptions,
    synchronous: SqliteSynchronous,
) -> SqliteConnectOptions {
    options
        .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(synchronous.sqlx())
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
}

/// The read connections' options for the SQLite file at `url` (created by the pool first):
/// the pool's pragmas, read-only.
fn read_options(url: &str, synchronous: SqliteSynchronous) -> Result<SqliteConnectOptions, DbErr> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|error| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(error)))?;
    let options = with_pragmas(options, synchronous).read_only(true);
    // As the pool (`sqlx_logging(false)`): no statement in the log.
    Ok(sea_orm::sqlx::ConnectOptions::disable_statement_logging(
        options,
    ))
}

/// The file path in an SQLite URL, if it names a file (not `:memory:`).
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then_some(path)
}

/// The SQLite URL for the default database file in `data_dir`.
pub fn default_sqlite_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("authbridge.db").display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_file_paths() {
        assert_eq!(
            sqlite_file("sqlite://./data/a.db?mode=rwc"),
            Some("./data/a.db")
        );
        assert_eq!(sqlite_file("sqlite:///tmp/a.db"), Some("/tmp/a.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://x/y"), None);
    }
}
