//! The PostgreSQL connection pool, built with sqlx directly so that a pooled connection is
//! pinged only after it sat idle, not before every statement. It owns connecting and checking
//! connections, never what runs on them.

use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::{ConnectOptions as _, Connection as _};
use sea_orm::{DatabaseConnection, DbErr, RuntimeErr, SqlxPostgresConnector};

/// How long a pooled connection may have been idle and still be handed out without a ping
/// first. A connection in continuous use was just proven alive by its last statement, so a
/// ping before each statement would only add a round trip (and its client CPU) to every grant,
/// introspection and gateway request. One that sat idle longer may have been cut meanwhile (a
/// restarted server, a firewall or NAT dropping the flow), so it is checked before use; sqlx
/// discards it when the ping fails and takes another. HikariCP's `aliveBypassWindowMs` is the
/// same idea at 500 ms.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How long a request waits for a pooled connection, opening a new one included.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of at most `max_connections` (at least one kept open) to the PostgreSQL server at
/// `url`, for sea-orm. Statements are not logged by sqlx (what sea-orm's `sqlx_logging(false)`
/// sets), and an idle connection is pinged before use ([`PING_AFTER_IDLE`]).
pub(super) async fn postgres_pool(
    url: &str,
    max_connections: u32,
) -> Result<DatabaseConnection, DbErr> {
    let connect = url
        .parse::<PgConnectOptions>()
        .map_err(connection_error)?
        .disable_statement_logging();
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_AFTER_IDLE {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(connect)
        .await
        .map_err(connection_error)?;
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
}

/// The error sea-orm's own connector gives for a failed connection.
fn connection_error(error: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(error))
}
