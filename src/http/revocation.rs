//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662).

use poem::http::StatusCode;
use poem::{Request, Response};
use serde_json::json;

use super::AppState;
use super::registration::request_address;
use super::token::{authenticate_form, json_response, oauth_error_response};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::audit::{AuditRecord, actors};
use crate::tokens::opaque;
use crate::tokens::verify::verify_access_token;

/// RFC 7009: revokes a refresh token (its whole family) or an access token (by `jti`, until it
/// expires). Unknown tokens, and tokens of other clients, get the same 200: a client learns
/// nothing about tokens that are not its own, and cannot revoke them.
pub async fn revoke(state: &AppState, request: &Request, body: &str) -> Response {
    let (form, client) = match authenticate_form(state, request, body).await {
        Ok(authenticated) => authenticated,
        Err((error, basic)) => return oauth_error_response(&error, basic),
    };
    let Some(token) = form.get("token") else {
        return oauth_error_response(
            &OAuthError::new(ErrorCode::InvalidRequest, "token is required"),
            false,
        );
    };
    let now = state.clock.now();
    let result = async {
        if let Some(row) = state.store.refresh_token(&opaque::hash(token)).await? {
            if let Some(family) = state.store.family(&row.family_id).await?
                && family.client_id == client.client_id
            {
                state.store.revoke_family(&family.family_id, now).await?;
                tracing::info!(client_id = %client.client_id, "refresh token revoked (family)");
                let summary = json!({
                    "grant_id": family.grant_id,
                    "family_id": family.family_id,
                    "reason": "the client revoked its refresh token (RFC 7009)",
                });
                let address =
                    request_address(request, state.config.registration.trust_forwarded_for);
                state
                    .store
                    .record_change(
                        AuditRecord::new(now, actors::CLIENT, "grant.revoke_family", &summary)
                            .client(&client.client_id)
                            .source(address.as_deref()),
                    )
                    .await?;
            }
            return Ok(());
        }
        // An access token: ours, any audience, expired or not.
        if let Ok(claims) = verify_access_token(
            &state.keys,
            token,
            state.issuer.as_str(),
            None,
            now,
            i64::MAX / 4,
        ) && claims.client_id == client.client_id
        {
            state
                .store
                .deny_access_token(&claims.jti, claims.exp)
                .await?;
            tracing::info!(client_id = %client.client_id, "access token revoked");
        }
        Ok::<(), crate::store::StoreError>(())
    }
    .await;
    match result {
        Ok(()) => Response::builder()
            .status(StatusCode::OK)
            .header("cache-control", "no-store")
            .finish(),
        Err(error) => {
            tracing::error!(%error, "revocation failed");
            oauth_error_response(
                &OAuthError::new(
                    ErrorCode::ServerError,
                    "the server could not complete the request",
                ),
                false,
            )
        }
    }
}

/// RFC 7662, for resource-server clients only: `active` and the token's claims when it is a
/// valid access token for that client's resource, `{"active": false}` for anything else.
pub async fn introspect(state: &AppState, request: &Request, body: &str) -> Response {
    let (form, client) = match authenticate_form(state, request, body).await {
        Ok(authenticated) => authenticated,
        Err((error, basic)) => return oauth_error_response(&error, basic),
    };
    let Some(resource) = client
        .resource_server_for
        .as_deref()
        .filter(|_| !client.public)
    else {
        let error = OAuthError::new(
            ErrorCode::InvalidClient,
            "only a confidential client marked as a resource server may introspect",
        );
        return oauth_error_response(&error, false);
    };
    let Some(token) = form.get("token") else {
        return oauth_error_response(
            &OAuthError::new(ErrorCode::InvalidRequest, "token is required"),
            false,
        );
    };
    let now = state.clock.now();
    let inactive = || json_response(StatusCode::OK, &json!({"active": false}));
    let Ok(claims) = verify_access_token(
        &state.keys,
        token,
        state.issuer.as_str(),
        Some(resource),
        now,
        0,
    ) else {
        return inactive();
    };
    let live = async {
        Ok::<bool, crate::store::StoreError>(
            !state.store.is_access_token_denied(&claims.jti).await?
                && state
                    .store
                    .live_grant_for(&claims.sub, &claims.client_id, &claims.aud)
                    .await?
                    .is_some(),
        )
    }
    .await;
    match live {
        Ok(true) => json_response(
            StatusCode::OK,
            &json!({
                "active": true,
                "scope": claims.scope,
                "client_id": claims.client_id,
                "sub": claims.sub,
                "aud": claims.aud,
                "iss": claims.iss,
                "exp": claims.exp,
                "iat": claims.iat,
                "jti": claims.jti,
                "token_type": "Bearer",
            }),
        ),
        Ok(false) => inactive(),
        Err(error) => {
            tracing::error!(%error, "introspection failed");
            oauth_error_response(
                &OAuthError::new(
                    ErrorCode::ServerError,
                    "the server could not complete the request",
                ),
                false,
            )
        }
    }
}
