//! `GET /upstream/callback`: the upstream sends the user back here. The state is consumed
//! once (one conditional update), the code is exchanged server to server, and the user, the
//! grant with its sealed upstream tokens, and our authorization code are written in one
//! transaction before the user is sent back to the client with `code`, `state` and `iss`.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};
use serde_json::json;

use super::AppState;
use super::authorize::{
    error_page, error_redirect, redirect, redirect_uri_with, stored_redirect_uri,
};
use super::registration::request_address;
use crate::grants::upstream_tokens::{SealedUpstreamTokens, seal_plaintext};
use crate::monitoring::LoginFailure;
use crate::oauth::authorize::AuthorizeQuery;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::routes::CALLBACK_PATH;
use crate::store::audit::{AuditRecord, actors};
use crate::store::login::{CodeRow, CompletedLogin};
use crate::telemetry::untrusted;
use crate::tokens::opaque;
use crate::upstream::{UpstreamError, UpstreamTokens};
use crate::vault::context;

#[handler]
pub async fn upstream_callback(request: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let query = AuthorizeQuery::parse(request.uri().query().unwrap_or_default());
    let unusable = || {
        state.metrics.login_failed(LoginFailure::InvalidState);
        error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in cannot be completed",
            "The sign-in link has expired, was already used, or was started in another browser. Go back to the app and connect again.",
        )
    };
    let (Some(upstream_state), Some(browser)) =
        (query.get("state"), state.cookies.browser_value(request))
    else {
        return unusable();
    };
    if !query.repeated().is_empty() {
        return unusable();
    }
    let now = state.clock.now();
    let state_hash = opaque::hash(upstream_state);
    let row = match state
        .store
        .consume_upstream_state(&state_hash, &opaque::hash(&browser), now)
        .await
    {
        Ok(Some(row)) => row,
        Ok(None) => {
            tracing::warn!(
                "upstream callback with an unknown, used, expired or other-browser state"
            );
            return unusable();
        }
        Err(error) => {
            tracing::error!(%error, "could not consume the upstream state");
            state.metrics.login_failed(LoginFailure::ServerError);
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please go back to the app and try again.",
            );
        }
    };
    let client_uri = stored_redirect_uri(&row);
    let fail = |reason: LoginFailure, code: ErrorCode, description: &str| {
        state.metrics.login_failed(reason);
        error_redirect(
            state,
            &client_uri,
            &OAuthError::new(code, description),
            row.state.as_deref(),
        )
    };

    if let Some(error) = query.get("error") {
        tracing::info!(upstream_error = %untrusted(error), "the upstream reported a failed login");
        return match error {
            "temporarily_unavailable" | "server_error" => fail(
                LoginFailure::UpstreamUnavailable,
                ErrorCode::TemporarilyUnavailable,
                "the sign-in service is unavailable; try again",
            ),
            _ => fail(
                LoginFailure::UpstreamDenied,
                ErrorCode::AccessDenied,
                "the sign-in at the upstream was not completed",
            ),
        };
    }
    let Some(code) = query.get("code") else {
        return fail(
            LoginFailure::UpstreamMalformed,
            ErrorCode::AccessDenied,
            "the sign-in service returned no authorization code",
        );
    };
    let verifier = match &row.upstream_pkce_verifier {
        Some(sealed) => match state
            .vault
            .open(sealed, &context::upstream_pkce(&state_hash))
        {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(error) => {
                tracing::error!(%error, "could not open the upstream PKCE verifier");
                return fail(
                    LoginFailure::ServerError,
                    ErrorCode::ServerError,
                    "the sign-in could not be completed",
                );
            }
        },
        None => None,
    };

    let callback = state.issuer.endpoint(CALLBACK_PATH);
    let tokens = match state
        .upstream
        .exchange_code(code, &callback, verifier.as_deref())
        .await
    {
        Ok(tokens) => tokens,
        Err(UpstreamError::Unavailable(reason)) => {
            tracing::warn!(reason = %untrusted(&reason), "upstream unavailable during the code exchange");
            return fail(
                LoginFailure::UpstreamUnavailable,
                ErrorCode::TemporarilyUnavailable,
                "the sign-in service is unavailable; try again",
            );
        }
        Err(UpstreamError::Refused { code, .. }) => {
            tracing::warn!(upstream_error = %untrusted(&code), "the upstream refused the code exchange");
            return fail(
                LoginFailure::UpstreamRefused,
                ErrorCode::AccessDenied,
                "the sign-in service refused the login",
            );
        }
        Err(UpstreamError::Malformed(reason)) => {
            tracing::error!(reason = %untrusted(&reason), "unusable answer from the upstream token endpoint");
            return fail(
                LoginFailure::UpstreamMalformed,
                ErrorCode::ServerError,
                "the sign-in service did not identify the user",
            );
        }
    };
    if tokens.subject.is_empty() {
        tracing::error!("the upstream answered without a user identifier");
        return fail(
            LoginFailure::UpstreamMalformed,
            ErrorCode::ServerError,
            "the sign-in service did not identify the user",
        );
    }

    let our_code = opaque::generate("code");
    match record_login(
        state,
        &row.client_id,
        &row.resource,
        &row.scope,
        &tokens,
        code_row(state, &row, &our_code, now),
        now,
    )
    .await
    {
        Ok((user_id, grant_id)) => {
            tracing::info!(client_id = %row.client_id, %user_id, %grant_id, provider = state.upstream.name(), "login completed; code issued");
            state.metrics.login_completed();
            let summary = json!({
                "grant_id": grant_id,
                "user_id": user_id,
                "resource": row.resource,
                "scope": row.scope,
            });
            let address = request_address(request, state.config.registration.trust_forwarded_for);
            let record = AuditRecord::new(now, actors::USER, "grant.create", &summary)
                .client(&row.client_id)
                .source(address.as_deref());
            if let Err(error) = state.store.record_change(record).await {
                tracing::error!(%error, "could not audit a new grant");
            }
            super::consent::record_consent_user(state, &row.request_hash, &user_id).await;
        }
        Err(error) => {
            tracing::error!(%error, "could not record the login");
            return fail(
                LoginFailure::ServerError,
                ErrorCode::ServerError,
                "the sign-in could not be recorded",
            );
        }
    }
    let mut params = vec![("code", our_code.as_str())];
    if let Some(client_state) = row.state.as_deref() {
        params.push(("state", client_state));
    }
    params.push(("iss", state.issuer.as_str()));
    redirect(&redirect_uri_with(&client_uri, &params), &[])
}

fn code_row(
    state: &AppState,
    row: &crate::store::login::RequestRow,
    code: &str,
    now: i64,
) -> CodeRow {
    CodeRow {
        code_hash: opaque::hash(code),
        grant_id: String::new(),
        client_id: row.client_id.clone(),
        user_id: String::new(),
        redirect_uri: row.redirect_uri.clone(),
        code_challenge: row.code_challenge.clone(),
        resource: row.resource.clone(),
        scope: row.scope.clone(),
        auth_time: now,
        created_at: now,
        expires_at: now + state.config.tokens.authorization_code_ttl_secs as i64,
        redeemed_at: None,
        access_jti: None,
    }
}

async fn record_login(
    state: &AppState,
    client_id: &str,
    resource: &str,
    scope: &str,
    tokens: &UpstreamTokens,
    code: CodeRow,
    now: i64,
) -> Result<(String, String), crate::store::StoreError> {
    let plaintext = SealedUpstreamTokens::from_upstream(tokens).to_plaintext();
    let login = CompletedLogin {
        provider: state.upstream.name(),
        subject: &tokens.subject,
        display_name: tokens.display_name.as_deref(),
        new_user_id: format!("usr_{}", opaque::random_base64url(16)),
        new_grant_id: format!("grt_{}", opaque::random_base64url(16)),
        client_id,
        resource,
        scope,
        upstream_expires_at: tokens.expires_at,
        code,
        now,
    };
    state
        .store
        .complete_login(login, |grant_id| {
            seal_plaintext(&state.vault, &plaintext, grant_id)
        })
        .await
}
