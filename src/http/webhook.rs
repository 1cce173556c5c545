//! `POST /upstream/webhook`: OwnerRez's webhooks, authenticated with HTTP Basic.
//! `application_authorization_revoked` (the user disconnected the app) revokes every grant of
//! that user at once; `webhook_test` and other actions are acknowledged. Answers fast: nothing
//! here calls the upstream.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};
use subtle::ConstantTimeEq;

use serde_json::json;

use super::AppState;
use super::errors::json_error;
use super::registration::request_address;
use crate::bootstrap::WebhookCredentials;
use crate::store::audit::{AuditRecord, actors};
use crate::store::login::GrantRow;
use crate::telemetry::untrusted;

/// Whether the request's Basic credentials equal the configured ones (constant time).
fn authenticated(request: &Request, expected: &WebhookCredentials) -> bool {
    let Some(encoded) = request
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
        })
    else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", expected.user, expected.password);
    decoded.ct_eq(expected.as_bytes()).into()
}

#[handler]
pub async fn ownerrez_webhook(
    request: &Request,
    body: String,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let Some(credentials) = &state.webhook else {
        return json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "webhooks are not configured",
        );
    };
    if !authenticated(request, credentials) {
        let mut response = json_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "webhook credentials are missing or wrong",
        );
        response.headers_mut().insert(
            "www-authenticate",
            poem::http::HeaderValue::from_static(r#"Basic realm="authbridge webhook""#),
        );
        return response;
    }
    let Ok(event) = serde_json::from_str::<serde_json::Value>(&body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be a JSON object",
        );
    };
    let action = event
        .get("action")
        .and_then(|a| a.as_str())
        .unwrap_or_default();
    match action {
        "application_authorization_revoked" => {
            // OwnerRez's user_id is a JSON number; accept a string too.
            let user_id = match event.get("user_id") {
                Some(serde_json::Value::Number(n)) => n.to_string(),
                Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
                _ => {
                    return json_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "user_id is missing",
                    );
                }
            };
            match state
                .store
                .revoke_grants_of_upstream_user(state.upstream.name(), &user_id, state.clock.now())
                .await
            {
                Ok(revoked) => {
                    tracing::info!(upstream_user = %untrusted(&user_id), grants = revoked.len(), "upstream deauthorization: grants revoked");
                    audit_revocations(state, request, &revoked).await;
                    Response::builder().status(StatusCode::OK).finish()
                }
                Err(error) => {
                    tracing::error!(%error, "could not revoke grants for a deauthorization");
                    json_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "the revocation could not be recorded; retry",
                    )
                }
            }
        }
        other => {
            tracing::info!(action = %untrusted(other), "webhook acknowledged");
            Response::builder().status(StatusCode::OK).finish()
        }
    }
}

/// One audit entry per revoked grant. A failure is logged: the revocation stands, and a retried
/// webhook would find nothing left to revoke.
async fn audit_revocations(state: &AppState, request: &Request, revoked: &[GrantRow]) {
    if revoked.is_empty() {
        return;
    }
    let now = state.clock.now();
    let address = request_address(request, state.config.registration.trust_forwarded_for);
    let records = revoked
        .iter()
        .map(|grant| {
            let summary = json!({
                "grant_id": grant.grant_id,
                "user_id": grant.user_id,
                "reason": "the user disconnected the app at the upstream (webhook application_authorization_revoked)",
            });
            AuditRecord::new(now, actors::UPSTREAM, "grant.revoke", &summary)
                .client(&grant.client_id)
                .source(address.as_deref())
        })
        .collect();
    if let Err(error) = state.store.record_audits(records).await {
        tracing::error!(%error, "could not audit an upstream deauthorization");
    }
}
