//! What the refresh grant decides on, read in one statement: the presented refresh token, its
//! family and the family's grant (primary-key lookups joined, so the cost does not grow with
//! the tables). Deciding from this read is safe because the rotation that follows is a
//! conditional `UPDATE` that re-checks in its own transaction (`store::tokens`).

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Alias, JoinType, Query, SelectStatement};
use sea_orm::{ConnectionTrait, FromQueryResult, Iterable};

use super::login::grant;
use super::tokens::{FamilyRow, family, refresh};
use super::{Store, StoreError};
use crate::ids::TokenHash;
use crate::store::login::GrantRow;
use crate::store::tokens::RefreshRow;

/// A refresh token with its family and (while it exists) the family's grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    pub token: RefreshRow,
    pub family: FamilyRow,
    pub grant: Option<GrantRow>,
}

const TOKEN: &str = "t_";
const FAMILY: &str = "f_";
const GRANT: &str = "g_";

/// Adds every column of `E` to `select`, aliased with `prefix` (what
/// `FromQueryResult::from_query_result(row, prefix)` reads back).
fn columns_of<E: EntityTrait>(select: &mut SelectStatement, prefix: &str) {
    for column in E::Column::iter() {
        select.expr_as(
            Expr::col((E::default(), column)),
            Alias::new(format!("{prefix}{}", column.as_str())),
        );
    }
}

impl Store {
    /// The refresh token with this hash, its family and its grant; `None` when the token or
    /// its family is unknown.
    pub async fn refresh_state(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<RefreshState>, StoreError> {
        let mut select = Query::select();
        columns_of::<refresh::Entity>(&mut select, TOKEN);
        columns_of::<family::Entity>(&mut select, FAMILY);
        columns_of::<grant::Entity>(&mut select, GRANT);
        select
            .from(refresh::Entity)
            .join(
                JoinType::InnerJoin,
                family::Entity,
                Expr::col((family::Entity, family::Column::FamilyId))
                    .equals((refresh::Entity, refresh::Column::FamilyId)),
            )
            .join(
                JoinType::LeftJoin,
                grant::Entity,
                Expr::col((grant::Entity, grant::Column::GrantId))
                    .equals((family::Entity, family::Column::GrantId)),
            )
            .and_where(Expr::col((refresh::Entity, refresh::Column::TokenHash)).eq(token_hash));
        let db = self.reader();
        let Some(row) = db
            .query_one(db.get_database_backend().build(&select))
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(RefreshState {
            token: refresh::Model::from_query_result(&row, TOKEN)?,
            family: family::Model::from_query_result(&row, FAMILY)?,
            grant: grant::Model::from_query_result_optional(&row, GRANT)?,
        }))
    }
}
