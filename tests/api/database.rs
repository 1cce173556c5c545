//! The connection pool on PostgreSQL: a pooled connection is pinged before use only after it
//! sat idle, so one the server cut meanwhile is never handed to a query. (SQLite's connections
//! are files and cannot be cut; these tests run only when TEST_POSTGRES_URL is set.)

use std::time::Duration;

use authbridge::store::Store;
use sea_orm::{ConnectionTrait, Database, Statement};

use crate::helpers::TestDb;

/// Longer than the store's idle window (one second), after which a connection is pinged.
const IDLE_PAST_THE_WINDOW: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn a_pooled_connection_the_server_cut_is_not_used_after_sitting_idle() {
    let db = TestDb::new().await;
    if db.is_sqlite() {
        return;
    }
    let store = Store::connect(&db.url, 4).await.unwrap();
    store.migrate().await.unwrap();
    // Several connections in the pool, all proven alive.
    let reads = futures_util::future::join_all((0..4).map(|_| store.signing_keys())).await;
    assert!(reads.iter().all(Result::is_ok), "{reads:?}");

    // The server ends every other session on the test database, as a restart would.
    let admin = Database::connect(&db.url).await.unwrap();
    let ended = admin
        .query_all(Statement::from_string(
            admin.get_database_backend(),
            "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        ))
        .await
        .unwrap();
    assert!(!ended.is_empty(), "the store's connections were ended");
    admin.close().await.unwrap();
    tokio::time::sleep(IDLE_PAST_THE_WINDOW).await;

    // Each idle connection is pinged, found dead and replaced: no query sees the cut.
    store
        .signing_keys()
        .await
        .expect("the first query after the cut");
    let reads = futures_util::future::join_all((0..4).map(|_| store.signing_keys())).await;
    assert!(reads.iter().all(Result::is_ok), "{reads:?}");
    store.close().await.unwrap();
}
