//! The gateway's per-request check, in one statement: the token's grant is live (not revoked),
//! its client is enabled, and the token itself is not deny-listed. Index lookups only (the
//! partial index on live grants, the clients and denylist primary keys), so it costs the same
//! with a million rows as with ten.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Alias, JoinType, Query};
use sea_orm::{ConnectionTrait, QueryResult};

use crate::ids::{GrantId, UserId};

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
        client_id: &str,
        resource: &str,
        jti: &str,
    ) -> Result<Option<LiveGrant>, StoreError> {
        let g = Alias::new("g");
        let c = Alias::new("c");
        let denied = Query::select()
            .expr(Expr::val(1))
            .from(denylist::Entity)
            .and_where(denylist::Column::Jti.eq(jti))
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
            .and_where(Expr::col((g.clone(), grant::Column::UserId)).eq(user_id))
            .and_where(Expr::col((g.clone(), grant::Column::ClientId)).eq(client_id))
            .and_where(Expr::col((g.clone(), grant::Column::Resource)).eq(resource))
            .and_where(Expr::col((g.clone(), grant::Column::RevokedAt)).is_null())
            .and_where(Expr::col((c, client::Column::Disabled)).eq(false))
            .and_where(Expr::exists(denied).not())
            .limit(1)
            .to_owned();
        let backend = self.conn().get_database_backend();
        let row = self.conn().query_one(backend.build(&query)).await?;
        row.map(|row: QueryResult| {
            Ok(LiveGrant {
                grant_id: row.try_get("", "grant_id")?,
                upstream_tokens: row.try_get("", "upstream_tokens")?,
            })
        })
        .transpose()
    }
}
