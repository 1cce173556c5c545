//! The `signing_keys` table: one row per RSA key, its private half sealed by the vault.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, QueryOrder};

use super::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    pub algorithm: String,
    /// The public JWK (RFC 7517) as JSON, published in the JWKS.
    pub public_jwk: String,
    /// The PKCS#8 private key, sealed by the vault with context `signing_key:<kid>`.
    pub private_key: String,
    pub created_at: i64,
    /// When the key starts signing. Until then it is only published.
    pub activates_at: i64,
    /// The key this one succeeds, when it was made by a rotation. Unique: of several rotations
    /// of the same key (instances, the scheduler, an operator), one insert wins.
    pub rotates_from: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub type SigningKeyRow = Model;

impl Store {
    /// Every stored signing key, oldest activation first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        Ok(Entity::find()
            .order_by_asc(Column::ActivatesAt)
            .order_by_asc(Column::Kid)
            .all(self.conn())
            .await?)
    }

    /// Inserts a key. A key that succeeds another (`rotates_from`) is inserted only if no key
    /// succeeds that one yet: returns whether this insert won. The unique index decides, so it
    /// holds across instances on both engines.
    pub async fn insert_signing_key(&self, row: SigningKeyRow) -> Result<bool, StoreError> {
        let model = ActiveModel {
            kid: Set(row.kid),
            algorithm: Set(row.algorithm),
            public_jwk: Set(row.public_jwk),
            private_key: Set(row.private_key),
            created_at: Set(row.created_at),
            activates_at: Set(row.activates_at),
            rotates_from: Set(row.rotates_from),
        };
        let inserted = Entity::insert(model)
            .on_conflict(
                OnConflict::column(Column::RotatesFrom)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(self.conn())
            .await?;
        Ok(inserted == 1)
    }

    /// Replaces a key's sealed private key (after the encryption key was rotated).
    pub async fn reseal_signing_key(&self, kid: &str, sealed: String) -> Result<(), StoreError> {
        Entity::update_many()
            .col_expr(Column::PrivateKey, Expr::value(sealed))
            .filter(Column::Kid.eq(kid))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Deletes keys that are no longer published. Returns how many rows went.
    pub async fn delete_signing_keys(&self, kids: &[String]) -> Result<u64, StoreError> {
        if kids.is_empty() {
            return Ok(0);
        }
        let result = Entity::delete_many()
            .filter(Column::Kid.is_in(kids.iter().cloned()))
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected)
    }
}
