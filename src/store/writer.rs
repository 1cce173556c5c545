//! Write transactions, and on SQLite the one connection that runs them all with group commit.
//!
//! SQLite lets one connection write at a time. Writers on a pool of connections queue inside
//! SQLite's busy handler (sleeping and polling), and a deferred transaction that read before
//! it wrote fails outright when another committed meanwhile, so it has to run again from the
//! start. Here every write transaction of the request path is a *job* handed to one writer
//! task that owns one connection: it takes whatever jobs are waiting (up to
//! [`MAX_GROUP`]), opens one transaction, runs each job under a savepoint of its own (a job
//! that fails or decides to write nothing is rolled back alone), commits once, and only then
//! answers every job. Jobs arriving while a group commits form the next group, so the writes
//! of concurrent requests share one commit, and no job ever waits on a lock or runs twice.
//!
//! What a job is told is decided by the commit: when the commit fails, or the group cannot
//! be run to the end, every job in it fails, including those that had decided to write
//! nothing (their decision may have rested on a write of the same group). So no answer is
//! given for a write that is not in the database file, which a `kill -9` cannot undo under
//! any [`SqliteSynchronous`] setting (what they add is safety against power loss).
//!
//! The group is an optimisation of SQLite only. On PostgreSQL each job is its own
//! transaction on the pool: several instances write at once there, and every guarantee of a
//! job rests on its own conditional statements and row locks, never on the writer being
//! alone. This module must never make a job's correctness depend on its neighbours.

use std::future::Future;
use std::pin::Pin;

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// SQLite's `synchronous` setting (`database.sqlite_synchronous`), with the WAL journal.
///
/// SQLite: "Transactions are durable across application crashes regardless of the synchronous
/// setting or journal mode." A committed transaction is in the WAL file (the operating
/// system's cache of it) before `COMMIT` returns, so a `kill -9` of the server loses nothing
/// it acknowledged under any of these. They differ on power loss and operating-system crashes:
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// No `fsync` at commit, only at checkpoints: the database stays consistent after a power
    /// loss, but the last transactions before it may be rolled back. The default: the
    /// guarantee this server gives is against a crash of its process.
    #[default]
    Normal,
    /// `fsync` of the WAL at every commit (one per group of writes, see the module): also a
    /// power loss keeps every acknowledged write.
    Full,
    /// As `full`, and the directory is synced too when a journal file is removed.
    Extra,
}

impl SqliteSynchronous {
    pub(crate) fn sqlx(self) -> sea_orm::sqlx::sqlite::SqliteSynchronous {
        use sea_orm::sqlx::sqlite::SqliteSynchronous as Sqlx;
        match self {
            Self::Normal => Sqlx::Normal,
            Self::Full => Sqlx::Full,
            Self::Extra => Sqlx::Extra,
        }
    }
}

/// The most jobs one commit takes; more wait for the next.
pub const MAX_GROUP: usize = 256;

/// How many jobs may wait for the writer before callers wait to hand theirs over.
const QUEUE: usize = 4096;

/// What a job decided: keep its writes, or undo them (for example a conditional `UPDATE`
/// that matched no row). Either way the value reaches the caller once the group committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<T> {
    Commit(T),
    Undo(T),
}

/// The future a job's work returns, borrowing the transaction it runs in.
pub type JobFuture<'t, T> = Pin<Box<dyn Future<Output = Result<Step<T>, StoreError>> + Send + 't>>;

/// A job's work: statements on the transaction it is given, nothing else (no waiting on other
/// requests, no network): the whole group waits for it.
pub type Work<T> = Box<dyn for<'t> FnOnce(&'t DatabaseTransaction) -> JobFuture<'t, T> + Send>;

/// Where write transactions run.
#[derive(Debug, Clone)]
pub(crate) enum Writer {
    /// Each job in a transaction of its own on the pool (PostgreSQL).
    Pool(DatabaseConnection),
    /// Jobs handed to the SQLite writer task.
    Grouped(mpsc::Sender<Box<dyn Job>>),
}

impl Writer {
    /// The SQLite writer on `connection` (a pool of one), running until every `Writer` handle
    /// is dropped.
    pub(crate) fn grouped(connection: DatabaseConnection) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run_writer(connection, receiver));
        Self::Grouped(sender)
    }

    /// Runs `work` in a write transaction and answers once it is committed (or undone).
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> JobFuture<'t, T> + Send + 'static,
    {
        let work: Work<T> = Box::new(work);
        match self {
            Self::Pool(db) => run_alone(db, work).await,
            Self::Grouped(sender) => {
                let (reply, answer) = oneshot::channel();
                let job = Box::new(TypedJob {
                    work: Some(work),
                    outcome: None,
                    reply,
                });
                sender.send(job).await.map_err(|_| writer_gone())?;
                answer.await.map_err(|_| writer_gone())?
            }
        }
    }
}

#[cfg(test)]
impl Writer {
    /// Jobs waiting for the writer.
    pub(crate) fn queued(&self) -> usize {
        match self {
            Self::Pool(_) => 0,
            Self::Grouped(sender) => QUEUE - sender.capacity(),
        }
    }
}

fn writer_gone() -> StoreError {
    StoreError::Group("the database writer stopped before answering".into())
}

async fn run_alone<T>(db: &DatabaseConnection, work: Work<T>) -> Result<T, StoreError> {
    let txn = db.begin().await?;
    match work(&txn).await {
        Ok(Step::Commit(value)) => {
            txn.commit().await?;
            Ok(value)
        }
        Ok(Step::Undo(value)) => {
            txn.rollback().await?;
            Ok(value)
        }
        Err(error) => {
            txn.rollback().await.ok();
            Err(error)
        }
    }
}

/// A job with its result type erased, as the writer task holds it.
pub(crate) trait Job: Send {
    /// Runs the work on `txn`; returns whether its writes are to be kept.
    fn run<'t>(
        &'t mut self,
        txn: &'t DatabaseTransaction,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 't>>;
    /// Answers the caller: what the work returned when `committed` is `Ok`, else the failure.
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

impl std::fmt::Debug for dyn Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

struct TypedJob<T> {
    work: Option<Work<T>>,
    outcome: Option<Result<Step<T>, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send + 'static> Job for TypedJob<T> {
    fn run<'t>(
        &'t mut self,
        txn: &'t DatabaseTransaction,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 't>> {
        Box::pin(async move {
            let Some(work) = self.work.take() else {
                return false;
            };
            let outcome = work(txn).await;
            let keep = matches!(outcome, Ok(Step::Commit(_)));
            self.outcome = Some(outcome);
            keep
        })
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let answer = match (self.outcome, committed) {
            (Some(Err(error)), _) => Err(error),
            (Some(Ok(Step::Commit(value) | Step::Undo(value))), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(why)) | (None, Err(why)) => Err(StoreError::Group(why)),
            (None, Ok(())) => Err(StoreError::Group("the job did not run".into())),
        };
        // The caller may have gone (its request was cancelled); the write stands regardless.
        let _ = self.reply.send(answer);
    }
}

async fn run_writer(connection: DatabaseConnection, mut jobs: mpsc::Receiver<Box<dyn Job>>) {
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    while jobs.recv_many(&mut group, MAX_GROUP).await > 0 {
        let batch = std::mem::take(&mut group);
        // A group of its own task: a job that panics fails its group (every reply is dropped
        // unanswered, which callers see as an error), not the writer.
        let connection = connection.clone();
        if let Err(error) = tokio::spawn(run_group(connection, batch)).await {
            tracing::error!(%error, "a group of database writes failed");
        }
    }
}

/// Runs one group: one transaction, a savepoint per job, one commit, then the answers.
async fn run_group(connection: DatabaseConnection, mut batch: Vec<Box<dyn Job>>) {
    let committed = match run_jobs(&connection, &mut batch).await {
        Ok(()) => Ok(()),
        Err(error) => {
            tracing::error!(%error, jobs = batch.len(), "group commit failed: every write in it is refused");
            Err(format!("the group commit failed: {error}"))
        }
    };
    for job in batch {
        job.finish(committed.clone());
    }
}

async fn run_jobs(
    connection: &DatabaseConnection,
    batch: &mut [Box<dyn Job>],
) -> Result<(), DbErr> {
    let txn = connection.begin().await?;
    // A deferred transaction takes SQLite's write lock at its first write, and one that read
    // first fails without waiting when another connection (the CLI, housekeeping) committed
    // meanwhile. Writing first makes it wait in the busy handler instead, before any job runs.
    txn.execute_unprepared("UPDATE counters SET value = value WHERE name = ''")
        .await?;
    if let [job] = batch {
        // Alone: no savepoint needed, the transaction is the job's.
        if !job.run(&txn).await {
            txn.rollback().await?;
            return Ok(());
        }
    } else {
        for job in batch.iter_mut() {
            let savepoint = txn.begin().await?;
            if job.run(&savepoint).await {
                savepoint.commit().await?;
            } else {
                // Succeeds only while the outer transaction is alive: a failure SQLite rolled
                // back whole (a full disk, an I/O error) fails the group here.
                savepoint.rollback().await?;
            }
        }
    }
    txn.commit().await
}

#[cfg(test)]
mod tests;
