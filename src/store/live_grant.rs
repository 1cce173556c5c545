//! The gateway's per-request check, in one statement: the token's grant is live (not revoked),
//! its client is enabled, and the token itself is not deny-listed. Index lookups only (the
//! partial index on live grants, the clients and denylist primary keys), so it costs the same
//! with a million rows as with ten.

use std::sync::LazyLock;

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Alias, JoinType, Query};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

use crate::ids::{ClientId, GrantId, UserId};

use super::clients::client;
use super::login::grant;
use super::tokens::denylist;
use super::{Store, StoreError};

/// A live grant as the gateway needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveGrant {
    pub grant_id: GrantId,
    /// The sealed upstream tokens; `None` once they were dropped.
    pub upstream_tokens: Option<String>,
}

impl Store {
    /// The live grant of `user_id` and `client_id` at `resource`, when its client is enabled
    /// and the access token `jti` is not deny-listed.
    pub async fn live_grant_for_token(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        resource: &str,
        jti: &str,
    ) -> Result<Option<LiveGrant>, StoreError> {
        let reader = self.reader();
        let backend = reader.get_database_backend();
        // Built once per backend: building it took more CPU than running it. The values
        // follow the placeholders in the order the query names them.
        let values = [user_id.as_str(), client_id.as_str(), resource]
            .into_iter()
            .map(Value::from)
            .chain([Value::from(false), Value::from(jti)]);
        let statement = Statement::from_sql_and_values(backend, live_grant_sql(backend), values);
        let row = reader.query_one(statement).await?;
        row.map(|row: QueryResult| {
            Ok(LiveGrant {
                grant_id: row.try_get("", "grant_id")?,
                upstream_tokens: row.try_get("", "upstream_tokens")?,
            })
        })
        .transpose()
    }
}

/// The statement's SQL on `backend`.
fn live_grant_sql(backend: DbBackend) -> &'static str {
    static SQLITE: LazyLock<String> = LazyLock::new(|| build_sql(DbBackend::Sqlite));
    static POSTGRES: LazyLock<String> = LazyLock::new(|| build_sql(DbBackend::Postgres));
    match backend {
        DbBackend::Postgres => &POSTGRES,
        _ => &SQLITE,
    }
}

fn build_sql(backend: DbBackend) -> String {
    let g = Alias::new("g");
    let c = Alias::new("c");
    let denied = Query::select()
        .expr(Expr::cust("1"))
        .from(denylist::Entity)
        .and_where(denylist::Column::Jti.eq(""))
        .to_owned();
    let query = Query::select()
        .column((g.clone(), grant::Column::GrantId))
        .column((g.clone(), grant::Column::UpstreamTokens))
        .from_as(grant::Entity, g.clone())
        .join_as(
            JoinType::InnerJoin,
            client::Entity,
            c.clone(),
            Expr::col((c.clone(), client::Column::ClientId))
                .equals((g.clone(), grant::Column::ClientId)),
        )
        .and_where(Expr::col((g.clone(), grant::Column::UserId)).eq(""))
        .and_where(Expr::col((g.clone(), grant::Column::ClientId)).eq(""))
        .and_where(Expr::col((g.clone(), grant::Column::Resource)).eq(""))
        .and_where(Expr::col((g.clone(), grant::Column::RevokedAt)).is_null())
        .and_where(Expr::col((c, client::Column::Disabled)).eq(false))
        .and_where(Expr::exists(denied).not())
        .to_owned();
    // No LIMIT: the partial unique index on live grants allows one row at most.
    let statement = backend.build(&query);
    assert_eq!(
        statement.values.map(|values| values.0.len()),
        Some(5),
        "live_grant_for_token binds user, client, resource, disabled and jti"
    );
    statement.sql
}
