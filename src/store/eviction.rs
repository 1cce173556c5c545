//! Making room under the dynamic-client cap, and the superseded clients that may go.
//!
//! When the cap is full, a registration deletes in its own transaction first the oldest
//! client no user ever authorized, then the client superseded longest ago: a registration a
//! host made before registering itself again, which its only user has moved on from. A client
//! is marked superseded when that user completes a login through a newer registration of the
//! same software (`clients.software_id`), and loses the mark on its next use.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Query;
use sea_orm::{Condition, DatabaseTransaction, QueryOrder, QuerySelect};

use super::StoreError;
use super::clients::{ClientKind, client, registration_token};
use super::login::grant;
use crate::ids::{ClientId, UserId};

/// Deletes, within `txn`, one dynamic client to make room (see the module); its slot of the
/// counter passes to the caller. `None` when no client may go.
pub(super) async fn make_room(
    txn: &DatabaseTransaction,
    now: i64,
) -> Result<Option<ClientId>, StoreError> {
    let never_authorized = Condition::all().add(client::Column::FirstAuthorizedAt.is_null());
    if let Some(evicted) =
        evict_first(txn, never_authorized, client::Column::CreatedAt, now).await?
    {
        return Ok(Some(evicted));
    }
    let superseded = Condition::all().add(client::Column::SupersededAt.is_not_null());
    evict_first(txn, superseded, client::Column::SupersededAt, now).await
}

/// Deletes, within `txn`, the first dynamic client by `order` (ties by id) that matches
/// `condition`, with its registration tokens and its grants (revoked with everything issued in
/// them, as when a client is deleted). The condition is in the delete itself, so a client that
/// stopped matching meanwhile (a login completed, a use) stays. Concurrent registrations see
/// the same first clients, so each goes down a short list until it deletes one itself, and
/// reads a fresh list when others got them all first. `None` only when no such client is left
/// (or, under a flood, after a few lists).
async fn evict_first(
    txn: &DatabaseTransaction,
    condition: Condition,
    order: client::Column,
    now: i64,
) -> Result<Option<ClientId>, StoreError> {
    const CANDIDATES: u64 = 8;
    const LISTS: usize = 4;
    for _ in 0..LISTS {
        let first: Vec<ClientId> = client::Entity::find()
            .select_only()
            .column(client::Column::ClientId)
            .filter(client::Column::Kind.eq(ClientKind::Dynamic))
            .filter(condition.clone())
            .order_by_asc(order)
            .order_by_asc(client::Column::ClientId)
            .limit(CANDIDATES)
            .into_tuple()
            .all(txn)
            .await?;
        if first.is_empty() {
            return Ok(None);
        }
        for client_id in first {
            let deleted = client::Entity::delete_many()
                .filter(client::Column::ClientId.eq(&client_id))
                .filter(client::Column::Kind.eq(ClientKind::Dynamic))
                .filter(condition.clone())
                .exec(txn)
                .await?;
            if deleted.rows_affected == 1 {
                registration_token::Entity::delete_many()
                    .filter(registration_token::Column::ClientId.eq(&client_id))
                    .exec(txn)
                    .await?;
                let grants = Condition::all().add(grant::Column::ClientId.eq(&client_id));
                super::revocation::revoke_grants_in(txn, grants.clone(), now).await?;
                grant::Entity::delete_many()
                    .filter(grants)
                    .exec(txn)
                    .await?;
                return Ok(Some(client_id));
            }
        }
    }
    Ok(None)
}

/// Inside `txn`, once `user_id` completed a login through `client_id`: the client is in use
/// (no longer superseded), and older dynamic clients of the same software that no other user
/// ever authorized and that this user did are marked superseded: the host registered itself
/// again and its user moved on. A superseded client is used no differently, and loses the mark
/// on its next use; it only makes room, after never-authorized clients, when the cap is full.
pub(super) async fn mark_superseded_by(
    txn: &DatabaseTransaction,
    client_id: &ClientId,
    user_id: &UserId,
    now: i64,
) -> Result<(), StoreError> {
    client::Entity::update_many()
        .col_expr(
            client::Column::SupersededAt,
            Expr::value(Option::<i64>::None),
        )
        .filter(client::Column::ClientId.eq(client_id))
        .filter(client::Column::SupersededAt.is_not_null())
        .exec(txn)
        .await?;
    let Some(newer) = client::Entity::find_by_id(client_id.clone())
        .one(txn)
        .await?
    else {
        return Ok(());
    };
    let (Some(software), ClientKind::Dynamic) = (newer.software_id, newer.kind) else {
        return Ok(());
    };
    let grants_of_the_client = || {
        Query::select()
            .expr(Expr::val(1))
            .from(grant::Entity)
            .and_where(
                Expr::col((grant::Entity, grant::Column::ClientId))
                    .equals((client::Entity, client::Column::ClientId)),
            )
            .to_owned()
    };
    let authorized_by_the_user = grants_of_the_client()
        .and_where(grant::Column::UserId.eq(user_id))
        .to_owned();
    let authorized_by_another = grants_of_the_client()
        .and_where(grant::Column::UserId.ne(user_id))
        .to_owned();
    client::Entity::update_many()
        .col_expr(client::Column::SupersededAt, Expr::value(now))
        .filter(client::Column::Kind.eq(ClientKind::Dynamic))
        .filter(client::Column::SoftwareId.eq(software))
        .filter(client::Column::ClientId.ne(client_id))
        .filter(client::Column::CreatedAt.lte(newer.created_at))
        .filter(client::Column::SupersededAt.is_null())
        .filter(Expr::exists(authorized_by_the_user))
        .filter(Expr::exists(authorized_by_another).not())
        .exec(txn)
        .await?;
    Ok(())
}
