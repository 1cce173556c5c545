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
use crate::grants::upstream_login::{self, LoginRefusal};
use crate::grants::upstream_tokens::{SealedUpstreamTokens, seal_plaintext};
use crate::ids::{GrantId, TokenHash, UserId};
use crate::monitoring::LoginFailure;
use crate::oauth::authorize::AuthorizeQuery;
use crate::routes::CALLBACK_PATH;
use crate::store::audit::{AuditRecord, actors};
use crate::store::login::{CodeRow, CompletedLogin, LoginAudit, RequestRow, SealTokens};
use crate::telemetry::untrusted;
use crate::tokens::opaque;
use crate::upstream::{UpstreamError, UpstreamTokens};
use crate::vault::context;

#[handler]
pub async fn upstream_callback(request: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let query = AuthorizeQuery::parse(request.uri().query().unwrap_or_default());
    let now = state.clock.now();
    let (row, state_hash) = match consume_callback_state(state, request, &query, now).await {
        Ok(Consumed::Login(row, state_hash)) => (*row, state_hash),
        Ok(Consumed::WebSignIn(sign_in)) => {
            return super::session_callback::complete_web_sign_in(state, request, &query, sign_in)
                .await;
        }
        Err(page) => return page,
    };
    // The stored request names a verified redirect URI, so from here on failures go back to
    // the client.
    let client_uri = stored_redirect_uri(&row);
    match complete_login(state, request, &query, &row, &state_hash, now).await {
        Ok(our_code) => {
            let mut params = vec![("code", our_code.as_str())];
            if let Some(client_state) = row.state.as_deref() {
                params.push(("state", client_state));
            }
            params.push(("iss", state.issuer.as_str()));
            redirect(&redirect_uri_with(&client_uri, &params), &[])
        }
        Err(refusal) => {
            state.metrics.login_failed(refusal.reason);
            error_redirect(
                state,
                &client_uri,
                &refusal.to_oauth_error(),
                row.state.as_deref(),
            )
        }
    }
}

/// The page for a callback that cannot be tied to a request: nothing says which client to
/// tell, so the browser stays here.
fn unusable_callback_page(state: &AppState) -> Response {
    state.metrics.login_failed(LoginFailure::InvalidState);
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in cannot be completed",
        "The sign-in link has expired, was already used, or was started in another browser. Go back to the app and connect again.",
    )
}

/// What a callback's `state` was issued for.
enum Consumed {
    /// An approved authorization request, and the state's hash (the context its PKCE verifier
    /// is sealed under).
    Login(Box<RequestRow>, String),
    /// A sign-in to the console or the connected-apps page.
    WebSignIn(super::session_callback::ConsumedSignIn),
}

/// Consumes the upstream state once, and only from the browser that started the login: an
/// authorization request's, else a web sign-in's (told apart by the table that holds it).
async fn consume_callback_state(
    state: &AppState,
    request: &Request,
    query: &AuthorizeQuery,
    now: i64,
) -> Result<Consumed, Response> {
    let (Some(upstream_state), Some(browser)) =
        (query.get("state"), state.cookies.browser_value(request))
    else {
        return Err(unusable_callback_page(state));
    };
    if !query.repeated().is_empty() {
        return Err(unusable_callback_page(state));
    }
    let state_hash = opaque::hash(upstream_state);
    let browser_hash = opaque::hash(&browser);
    let consumed = match state
        .store
        .consume_upstream_state(&state_hash, &browser_hash, now)
        .await
    {
        Ok(Some(row)) => Ok(Some(Consumed::Login(Box::new(row), state_hash))),
        Ok(None) => super::session_callback::consume_sign_in(state, state_hash, &browser_hash)
            .await
            .map(|found| found.map(Consumed::WebSignIn)),
        Err(error) => Err(error),
    };
    match consumed {
        Ok(Some(consumed)) => Ok(consumed),
        Ok(None) => {
            tracing::warn!(
                "upstream callback with an unknown, used, expired or other-browser state"
            );
            Err(unusable_callback_page(state))
        }
        Err(error) => {
            tracing::error!(%error, "could not consume the upstream state");
            state.metrics.login_failed(LoginFailure::ServerError);
            Err(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please go back to the app and try again.",
            ))
        }
    }
}

/// Turns the upstream's answer for a consumed request into our authorization code.
async fn complete_login(
    state: &AppState,
    request: &Request,
    query: &AuthorizeQuery,
    row: &RequestRow,
    state_hash: &str,
    now: i64,
) -> Result<String, LoginRefusal> {
    let code = upstream_code(query)?;
    let verifier = open_upstream_verifier(state, row, state_hash)?;
    let tokens = exchange_upstream_code(state, code, verifier.as_deref()).await?;
    issue_our_code(state, request, row, &tokens, now).await
}

/// The upstream's authorization code, or why the user did not get one.
pub(super) fn upstream_code(query: &AuthorizeQuery) -> Result<&str, LoginRefusal> {
    let error = query.get("error");
    if let Some(error) = error {
        tracing::info!(upstream_error = %untrusted(error), "the upstream reported a failed login");
    }
    upstream_login::upstream_code(error, query.get("code"))
}

/// The PKCE verifier sent upstream with this request, when the provider takes PKCE.
fn open_upstream_verifier(
    state: &AppState,
    row: &RequestRow,
    state_hash: &str,
) -> Result<Option<String>, LoginRefusal> {
    let Some(sealed) = &row.upstream_pkce_verifier else {
        return Ok(None);
    };
    match state
        .vault
        .open(sealed, &context::upstream_pkce(state_hash))
    {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(error) => {
            tracing::error!(%error, "could not open the upstream PKCE verifier");
            Err(LoginRefusal::server_error(
                "the sign-in could not be completed",
            ))
        }
    }
}

/// Exchanges the upstream's code server to server; an answer without a user identifier is
/// refused, since a grant must belong to someone.
pub(super) async fn exchange_upstream_code(
    state: &AppState,
    code: &str,
    verifier: Option<&str>,
) -> Result<UpstreamTokens, LoginRefusal> {
    let callback = state.issuer.endpoint(CALLBACK_PATH);
    let answer = state
        .upstream
        .exchange_code(code, &callback, verifier)
        .await;
    match &answer {
        Err(UpstreamError::Unavailable(reason)) => {
            tracing::warn!(reason = %untrusted(reason), "upstream unavailable during the code exchange");
        }
        Err(UpstreamError::Refused { code, .. }) => {
            tracing::warn!(upstream_error = %untrusted(code), "the upstream refused the code exchange");
        }
        Err(UpstreamError::Malformed(reason)) => {
            tracing::error!(reason = %untrusted(reason), "unusable answer from the upstream token endpoint");
        }
        Ok(tokens) if tokens.subject.is_empty() => {
            tracing::error!("the upstream answered without a user identifier");
        }
        Ok(_) => {}
    }
    let tokens = answer.map_err(|error| upstream_login::exchange_refusal(&error))?;
    upstream_login::check_identified(&tokens)?;
    Ok(tokens)
}

/// Records the user, the grant, our code, the audit entry and the remembered approval's user,
/// in one transaction.
async fn issue_our_code(
    state: &AppState,
    request: &Request,
    row: &RequestRow,
    tokens: &UpstreamTokens,
    now: i64,
) -> Result<String, LoginRefusal> {
    let our_code = opaque::generate("code");
    let address = request_address(request, state.config.registration.trust_forwarded_for);
    let (client_id, resource, scope) = (
        row.client_id.clone(),
        row.resource.to_string(),
        row.scope.to_string(),
    );
    let audit: LoginAudit = Arc::new(move |user_id, grant_id| {
        let summary = json!({
            "grant_id": grant_id,
            "user_id": user_id,
            "resource": resource,
            "scope": scope,
        });
        AuditRecord::new(now, actors::USER, "grant.create", &summary)
            .client(&client_id)
            .source(address.as_deref())
    });
    let (user_id, grant_id) = match record_login(state, row, tokens, &our_code, audit, now).await {
        Ok(ids) => ids,
        Err(error) => {
            tracing::error!(%error, "could not record the login");
            return Err(LoginRefusal::server_error(
                "the sign-in could not be recorded",
            ));
        }
    };
    tracing::info!(client_id = %row.client_id, %user_id, %grant_id, provider = state.upstream.name(), "login completed; code issued");
    state.metrics.login_completed();
    Ok(our_code)
}

/// The code's row, bound to the user and grant a first login creates; the store binds it to
/// the existing ones when the user or the grant already exists (`Store::complete_login`).
fn code_row(
    state: &AppState,
    row: &RequestRow,
    code: &str,
    ids: (&UserId, &GrantId),
    now: i64,
) -> CodeRow {
    let (user_id, grant_id) = ids;
    CodeRow {
        code_hash: TokenHash::of(code),
        grant_id: grant_id.clone(),
        client_id: row.client_id.clone(),
        user_id: user_id.clone(),
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
    row: &RequestRow,
    tokens: &UpstreamTokens,
    our_code: &str,
    audit: LoginAudit,
    now: i64,
) -> Result<(UserId, GrantId), crate::store::StoreError> {
    let plaintext = SealedUpstreamTokens::from_upstream(tokens).to_plaintext();
    let new_user_id = UserId::generate();
    let new_grant_id = GrantId::generate();
    let code = code_row(state, row, our_code, (&new_user_id, &new_grant_id), now);
    let login = CompletedLogin {
        provider: state.upstream.name().to_owned(),
        subject: tokens.subject.clone(),
        display_name: tokens.display_name.clone(),
        new_user_id,
        new_grant_id,
        client_id: row.client_id.clone(),
        resource: row.resource.clone(),
        scope: row.scope.clone(),
        upstream_expires_at: tokens.expires_at,
        code,
        now,
        request_hash: row.request_hash.clone(),
        audit,
    };
    let vault = state.vault.clone();
    let seal: SealTokens = Arc::new(move |grant_id| seal_plaintext(&vault, &plaintext, grant_id));
    state.store.complete_login(login, seal).await
}
