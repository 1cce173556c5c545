//! SQLite reads on connections of our own, outside sqlx's pool.
//!
//! sqlx runs each SQLite connection on a thread of its own: every statement is a round trip to
//! that thread (two context switches). Its pool adds one more on every return of a connection,
//! an unconditional `ping` (sqlx 0.8, `return_to_pool`), so a read through it costs two round
//! trips. [`SqliteReads`] keeps up to `max_connections` connections itself and hands them out
//! behind a semaphore, with no ping: an SQLite connection is a file handle that cannot go
//! stale. What can leave one in an unknown state is a statement that did not run to its end
//! (the request was cancelled mid-way, or the statement failed): that connection is dropped
//! (closed) instead of going back, and a fresh one is opened on the next demand.
//!
//! [`Reader`] is what the store's hot reads run on: these connections for an SQLite file,
//! the pool otherwise (PostgreSQL, in-memory SQLite). Writes never go through these
//! connections: a [`Reader`] hands `execute` to the pool, so a misuse stays correct.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sea_orm::sqlx::{ConnectOptions, Connection};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr,
    Statement,
};
use sea_query_binder::SqlxValues;
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a read waits for a free connection before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Up to `max_connections` SQLite connections for reads, opened on demand; cheap to clone.
#[derive(Clone)]
pub struct SqliteReads {
    inner: Arc<Inner>,
}

struct Inner {
    options: SqliteConnectOptions,
    /// One permit per connection that may exist.
    permits: Semaphore,
    /// Connections whose last statement ran to its end.
    idle: Mutex<Vec<SqliteConnection>>,
}

impl std::fmt::Debug for SqliteReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReads")
            .field("available", &self.inner.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl SqliteReads {
    /// Read connections opened with `options`, at most `max_connections` (at least one).
    pub(crate) fn new(options: SqliteConnectOptions, max_connections: u32) -> Self {
        let size = usize::try_from(max_connections.max(1)).unwrap_or(1);
        Self {
            inner: Arc::new(Inner {
                options,
                permits: Semaphore::new(size),
                idle: Mutex::new(Vec::with_capacity(size)),
            }),
        }
    }

    /// The first row `statement` yields, if any.
    pub async fn query_one(&self, mut statement: Statement) -> Result<Option<QueryResult>, DbErr> {
        let mut lease = self.lease().await?;
        let row = sqlx_query(&mut statement)
            .fetch_optional(lease.connection())
            .await
            .map_err(query_error)?;
        lease.give_back();
        Ok(row.map(QueryResult::from))
    }

    /// Every row `statement` yields.
    pub async fn query_all(&self, mut statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut lease = self.lease().await?;
        let rows = sqlx_query(&mut statement)
            .fetch_all(lease.connection())
            .await
            .map_err(query_error)?;
        lease.give_back();
        Ok(rows.into_iter().map(QueryResult::from).collect())
    }

    /// Closes the idle connections (those in use are closed when dropped).
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle());
        for connection in idle {
            // Closing only tidies up: the connection is gone either way.
            let _ = connection.close().await;
        }
    }

    /// A connection of its own for one statement: an idle one, or a new one.
    async fn lease(&self) -> Result<Lease<'_>, DbErr> {
        // As long as the pool waits for a connection (`acquire_timeout` in `store::options`).
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.inner.permits.acquire())
            .await
            .map_err(|_| DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout))?
            .map_err(|_| DbErr::Custom("the read connections are closed".into()))?;
        let idle = self.idle().pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self
                .inner
                .options
                .connect()
                .await
                .map_err(|error| DbErr::Conn(RuntimeErr::SqlxError(error)))?,
        };
        Ok(Lease {
            reads: self,
            connection: Some(connection),
            _permit: permit,
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
        // The list stays whole whatever panicked while holding it: a push or a pop.
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle().len()
    }
}

/// A connection lent for one statement, with its permit. Dropped without
/// [`Lease::give_back`] (the statement failed or its future was dropped), it closes the
/// connection, which may be mid-statement.
struct Lease<'a> {
    reads: &'a SqliteReads,
    connection: Option<SqliteConnection>,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    fn connection(&mut self) -> &mut SqliteConnection {
        self.connection
            .as_mut()
            .expect("a lease holds its connection until given back")
    }

    /// Returns the connection, its statement complete, to the idle ones.
    fn give_back(mut self) {
        if let Some(connection) = self.connection.take() {
            self.reads.idle().push(connection);
        }
    }
}

/// `statement` for sqlx, its values bound as sea-orm binds them.
fn sqlx_query(
    statement: &mut Statement,
) -> sea_orm::sqlx::query::Query<'_, sea_orm::sqlx::Sqlite, SqlxValues> {
    let values = statement
        .values
        .take()
        .unwrap_or(sea_orm::Values(Vec::new()));
    sea_orm::sqlx::query_with(&statement.sql, SqlxValues(values))
}

fn query_error(error: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(error))
}

/// Where the store's hot reads run: [`SqliteReads`] for an SQLite file, the pool otherwise.
#[derive(Debug, Clone, Copy)]
pub enum Reader<'a> {
    Pool(&'a DatabaseConnection),
    /// The read connections, and the pool for anything that is not a read.
    Direct(&'a SqliteReads, &'a DatabaseConnection),
}

impl Reader<'_> {
    fn pool(&self) -> &DatabaseConnection {
        match self {
            Self::Pool(pool) | Self::Direct(_, pool) => pool,
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Reader<'_> {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Self::Pool(pool) => pool.get_database_backend(),
            Self::Direct(..) => DbBackend::Sqlite,
        }
    }

    async fn execute(&self, statement: Statement) -> Result<ExecResult, DbErr> {
        self.pool().execute(statement).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.pool().execute_unprepared(sql).await
    }

    async fn query_one(&self, statement: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Self::Pool(pool) => pool.query_one(statement).await,
            Self::Direct(reads, _) => reads.query_one(statement).await,
        }
    }

    async fn query_all(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Self::Pool(pool) => pool.query_all(statement).await,
            Self::Direct(reads, _) => reads.query_all(statement).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::writer::Step;
    use crate::store::{SqliteSynchronous, Store};

    const CONNECTIONS: u32 = 4;

    async fn file_store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
        let store = Store::open(&url, CONNECTIONS, SqliteSynchronous::Normal)
            .await
            .unwrap();
        // The writer keeps its counters in the schema.
        store.migrate().await.unwrap();
        store
            .conn()
            .execute_unprepared("CREATE TABLE t (x INTEGER NOT NULL)")
            .await
            .unwrap();
        store
    }

    fn reads(store: &Store) -> &SqliteReads {
        store.reads.as_ref().expect("a file store reads directly")
    }

    fn sql(text: &str) -> Statement {
        Statement::from_string(DbBackend::Sqlite, text)
    }

    /// Counts to `n` in SQLite: a statement that takes a while.
    fn slow(n: u32) -> Statement {
        sql(&format!(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n}) \
             SELECT max(i) AS x FROM c"
        ))
    }

    async fn insert(store: &Store, x: i64) {
        store
            .write(move |txn| {
                Box::pin(async move {
                    txn.execute_unprepared(&format!("INSERT INTO t (x) VALUES ({x})"))
                        .await?;
                    Ok(Step::Commit(()))
                })
            })
            .await
            .unwrap();
    }

    async fn max_x(reader: Reader<'_>) -> Option<i64> {
        let row = reader
            .query_one(sql("SELECT max(x) AS x FROM t"))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "x").unwrap()
    }

    #[tokio::test]
    async fn a_read_sees_what_the_writer_committed_just_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        assert!(matches!(store.reader(), Reader::Direct(..)));
        assert_eq!(max_x(store.reader()).await, None);
        for x in 1..=5 {
            insert(&store, x).await;
            assert_eq!(max_x(store.reader()).await, Some(x));
        }
        let all = store.reader().query_all(sql("SELECT x FROM t")).await;
        assert_eq!(all.unwrap().len(), 5);
        // The connection went back after each read: one was enough.
        assert_eq!(reads(&store).idle_count(), 1);
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_cancelled_read_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        insert(&store, 7).await;
        assert_eq!(max_x(store.reader()).await, Some(7));
        assert_eq!(reads(&store).idle_count(), 1);

        let reader = store.reader();
        let cancelled = tokio::time::timeout(Duration::ZERO, reader.query_one(slow(2_000_000)));
        assert!(cancelled.await.is_err(), "the read was cut short");
        // Its connection, mid-statement, was closed rather than given back.
        assert_eq!(reads(&store).idle_count(), 0);

        assert_eq!(max_x(store.reader()).await, Some(7));
        assert_eq!(reads(&store).idle_count(), 1);
    }

    #[tokio::test]
    async fn more_concurrent_reads_than_connections_all_complete() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..=CONNECTIONS {
            let store = store.clone();
            tasks.spawn(async move {
                let row = store.reader().query_one(slow(20_000)).await.unwrap();
                row.unwrap().try_get::<i64>("", "x").unwrap()
            });
        }
        let finished = tokio::time::timeout(Duration::from_secs(30), tasks.join_all());
        let counts = finished.await.expect("every read completes");
        assert_eq!(counts, vec![20_000; CONNECTIONS as usize + 1]);
        assert!(reads(&store).idle_count() <= CONNECTIONS as usize);
    }

    #[tokio::test]
    async fn a_failed_read_is_an_error_and_the_next_read_works() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        insert(&store, 3).await;
        let failed = store.reader().query_one(sql("SELECT nope FROM t")).await;
        assert!(matches!(failed, Err(DbErr::Query(_))), "{failed:?}");
        assert_eq!(max_x(store.reader()).await, Some(3));
        // The read connections cannot write; a write through a reader goes to the pool.
        let write = reads(&store)
            .query_all(sql("INSERT INTO t (x) VALUES (4)"))
            .await;
        assert!(write.is_err(), "read-only: {write:?}");
        store
            .reader()
            .execute_unprepared("INSERT INTO t (x) VALUES (5)")
            .await
            .unwrap();
        assert_eq!(max_x(store.reader()).await, Some(5));
    }
}
