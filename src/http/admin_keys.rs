//! The admin API's signing keys: list them, start a rotation.

use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::AppState;
use super::admin::AdminToken;
use super::admin_response::{AdminFailure, AdminResult};
use crate::store::audit::Actor;
use crate::tokens::keyring::{KeyError, KeySummary};

#[derive(Tags)]
enum AdminKeyTags {
    /// The issuer's signing keys.
    AdminKeys,
}

#[derive(Debug, Object)]
pub struct SigningKey {
    /// The RFC 7638 thumbprint.
    pub kid: String,
    /// `next` (published, not signing yet), `active`, or `retired` (published until its tokens expire).
    pub state: String,
    pub created_at: i64,
    /// When it starts (or started) signing.
    pub activates_at: i64,
}

#[derive(Debug, Object)]
pub struct SigningKeyList {
    pub keys: Vec<SigningKey>,
}

impl From<KeySummary> for SigningKey {
    fn from(k: KeySummary) -> Self {
        Self {
            kid: k.kid,
            state: k.state.into(),
            created_at: k.created_at,
            activates_at: k.activates_at,
        }
    }
}

/// The new key: published now, signing from `activates_at`.
#[derive(ApiResponse)]
pub enum KeyRotated {
    #[oai(status = 201)]
    Rotated(Json<SigningKey>),
}

pub struct AdminKeysApi {
    pub state: Arc<AppState>,
}

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminKeyTags::AdminKeys")]
impl AdminKeysApi {
    /// The published signing keys and their states.
    #[oai(path = "/keys", method = "get")]
    async fn list_keys(&self, _token: AdminToken) -> AdminResult<Json<SigningKeyList>> {
        AdminResult(Ok(Json(SigningKeyList {
            keys: self
                .state
                .keys
                .summaries()
                .into_iter()
                .map(Into::into)
                .collect(),
        })))
    }

    /// Start a rotation: a new key is published now and signs after `keys.activation_delay_secs`.
    #[oai(path = "/keys/rotate", method = "post")]
    async fn rotate(&self, token: AdminToken) -> AdminResult<KeyRotated> {
        AdminResult(
            match self.state.keys.rotate_as(Actor::from(&token.0)).await {
                Ok(key) => Ok(KeyRotated::Rotated(Json(key.into()))),
                Err(error @ KeyError::RotationPending { .. }) => {
                    Err(AdminFailure::conflict(error.to_string()))
                }
                Err(error) => {
                    tracing::error!(%error, "key rotation failed");
                    Err(AdminFailure::internal())
                }
            },
        )
    }
}
