//! The admin API's signing keys: list them, start a rotation.

use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use serde_json::json;

use super::AppState;
use super::admin::AdminToken;
use super::errors::{ErrorBody, error_body};
use crate::store::audit::{Actor, AuditRecord};
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

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_keys_request")]
pub enum KeysResponse {
    #[oai(status = 200)]
    Keys(Json<SigningKeyList>),
    /// The new key: published now, signing from `activates_at`.
    #[oai(status = 201)]
    Rotated(Json<SigningKey>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// A rotation is already waiting for its key to activate.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    #[oai(status = 500)]
    ServerError(Json<ErrorBody>),
}

fn bad_keys_request(error: poem::Error) -> KeysResponse {
    if error.status() == poem::http::StatusCode::UNAUTHORIZED {
        KeysResponse::Unauthorized(
            error_body("invalid_token", "a valid admin bearer token is required"),
            r#"Bearer error="invalid_token""#.into(),
        )
    } else {
        KeysResponse::BadRequest(error_body("invalid_request", error.to_string()))
    }
}

pub struct AdminKeysApi {
    pub state: Arc<AppState>,
}

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminKeyTags::AdminKeys")]
impl AdminKeysApi {
    /// The published signing keys and their states.
    #[oai(path = "/keys", method = "get")]
    async fn list_keys(&self, _token: AdminToken) -> KeysResponse {
        KeysResponse::Keys(Json(SigningKeyList {
            keys: self
                .state
                .keys
                .summaries()
                .into_iter()
                .map(Into::into)
                .collect(),
        }))
    }

    /// Start a rotation: a new key is published now and signs after `keys.activation_delay_secs`.
    #[oai(path = "/keys/rotate", method = "post")]
    async fn rotate(&self, token: AdminToken) -> KeysResponse {
        match self.state.keys.rotate().await {
            Ok(key) => {
                let summary = json!({"kid": key.kid, "activates_at": key.activates_at});
                let actor = Actor::from(&token.0);
                let record =
                    AuditRecord::new(self.state.clock.now(), actor.name, "keys.rotate", &summary)
                        .source(actor.source);
                if let Err(error) = self.state.store.record_change(record).await {
                    tracing::error!(%error, "could not audit a key rotation");
                }
                KeysResponse::Rotated(Json(key.into()))
            }
            Err(error @ KeyError::RotationPending { .. }) => {
                KeysResponse::Conflict(error_body("conflict", error.to_string()))
            }
            Err(error) => {
                tracing::error!(%error, "key rotation failed");
                KeysResponse::ServerError(error_body(
                    "server_error",
                    "the server could not complete the request",
                ))
            }
        }
    }
}
