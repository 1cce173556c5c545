//! Revocation that sticks: a user's grant for a client and resource is unique only among live
//! grants, so a login after a revocation creates a new grant instead of reviving the revoked one
//! (and with it the tokens issued before the revocation). Families of grants revoked (or deleted)
//! before this migration are revoked now and their access tokens deny-listed, as revocation does
//! from now on. Plus the indexes housekeeping needs to purge without scanning.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Grants {
    Table,
    UserId,
    ClientId,
    Resource,
    RevokedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    IdleExpiresAt,
    RotatedAt,
    Successor,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    GrantId,
}

/// Deny-lists the access tokens of live families whose grant is revoked or gone.
const DENY_ORPHANED_ACCESS_TOKENS: &str = "\
INSERT INTO revoked_access_tokens (jti, expires_at) \
SELECT t.access_jti, t.access_expires_at FROM refresh_tokens t \
JOIN refresh_families f ON f.family_id = t.family_id \
WHERE f.revoked_at IS NULL \
AND f.grant_id NOT IN (SELECT g.grant_id FROM grants g WHERE g.revoked_at IS NULL) \
ON CONFLICT (jti) DO NOTHING";

/// Revokes the live families whose grant is revoked (as of the grant's revocation) or gone (as
/// of the family's creation: the deletion time is not known).
const REVOKE_ORPHANED_FAMILIES: &str = "\
UPDATE refresh_families SET revoked_at = COALESCE(\
(SELECT g.revoked_at FROM grants g WHERE g.grant_id = refresh_families.grant_id), created_at) \
WHERE revoked_at IS NULL \
AND grant_id NOT IN (SELECT g.grant_id FROM grants g WHERE g.revoked_at IS NULL)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("grants_user_client_resource")
                    .table(Grants::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("grants_live_user_client_resource")
                    .table(Grants::Table)
                    .col(Grants::UserId)
                    .col(Grants::ClientId)
                    .col(Grants::Resource)
                    .unique()
                    .and_where(Expr::col(Grants::RevokedAt).is_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("grants_user")
                    .table(Grants::Table)
                    .col(Grants::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("authorization_codes_grant")
                    .table(AuthorizationCodes::Table)
                    .col(AuthorizationCodes::GrantId)
                    .to_owned(),
            )
            .await?;
        // Housekeeping: rotated tokens past their idle expiry, and sealed rotation responses
        // (a handful at any time: only those inside the grace window).
        manager
            .create_index(
                Index::create()
                    .name("refresh_tokens_idle_expiry")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::IdleExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("refresh_tokens_successor")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::RotatedAt)
                    .and_where(Expr::col(RefreshTokens::Successor).is_not_null())
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(DENY_ORPHANED_ACCESS_TOKENS).await?;
        db.execute_unprepared(REVOKE_ORPHANED_FAMILIES).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("refresh_tokens_successor", RefreshTokens::Table.into_iden()),
            (
                "refresh_tokens_idle_expiry",
                RefreshTokens::Table.into_iden(),
            ),
            (
                "authorization_codes_grant",
                AuthorizationCodes::Table.into_iden(),
            ),
            ("grants_user", Grants::Table.into_iden()),
            (
                "grants_live_user_client_resource",
                Grants::Table.into_iden(),
            ),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        // Fails when a user has several grants for one client and resource (a revoked one and
        // its successor): the older schema cannot hold that history.
        manager
            .create_index(
                Index::create()
                    .name("grants_user_client_resource")
                    .table(Grants::Table)
                    .col(Grants::UserId)
                    .col(Grants::ClientId)
                    .col(Grants::Resource)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
