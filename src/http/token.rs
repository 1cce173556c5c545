//! `POST /token` (RFC 6749 §3.2): form in, JSON out, never cached. Client authentication
//! first (401 `invalid_client` on any failure, the answer on which hosts register again), then
//! the grant.

use poem::Request;

use super::AppState;
use super::oauth_api::{JsonBody, TokenAnswer};
use super::registration::request_source;
use crate::clients::authenticate::{AuthenticatedClient, authenticate_client};
use crate::grants::code::CodeRequest;
use crate::grants::exchange::{ExchangeRequest, GRANT_TOKEN_EXCHANGE};
use crate::grants::refresh::RefreshRequest;
use crate::monitoring::GrantType;
use crate::oauth::authorize::AuthorizeQuery;
use crate::oauth::client_auth::presented_client;
use crate::oauth::error::{ErrorCode, OAuthError};

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";

/// Parses a form body (refusing repeated parameters) and authenticates the client.
pub async fn authenticate_form(
    state: &AppState,
    request: &Request,
    body: &str,
) -> Result<(AuthorizeQuery, AuthenticatedClient), OAuthError> {
    let is_form = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let form = AuthorizeQuery::parse(body);
    if let Some(name) = form.repeated().first() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            format!("the parameter `{name}` was sent more than once"),
        ));
    }
    let mut headers = request.headers().get_all("authorization").iter();
    let authorization = headers.next().and_then(|v| v.to_str().ok());
    if headers.next().is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "more than one Authorization header",
        ));
    }
    let presented = presented_client(
        authorization,
        form.get("client_id"),
        form.get("client_secret"),
    )?;
    let documents = &state.config.client_metadata_documents;
    let client = authenticate_client(
        &state.store,
        &presented,
        documents.enabled,
        documents.allow_http_loopback,
    )
    .await?;
    Ok((form, client))
}

/// `POST /token`, mounted through the OpenAPI service (`http::oauth_api`).
pub async fn token(
    state: &AppState,
    request: &Request,
    body: &str,
) -> Result<JsonBody<TokenAnswer>, OAuthError> {
    let (form, client) = authenticate_form(state, request, body)
        .await
        .inspect_err(|error| {
            tracing::info!(error = %error.code, "token request refused before the grant");
        })?;
    let tokens = &state.tokens;
    let result = match form.get("grant_type") {
        Some(GRANT_AUTHORIZATION_CODE) => {
            let code = CodeRequest {
                code: form.get("code"),
                redirect_uri: form.get("redirect_uri"),
                code_verifier: form.get("code_verifier"),
                resource: form.get("resource"),
            };
            tokens
                .exchange_code(&client, code)
                .await
                .map(TokenAnswer::Tokens)
        }
        Some(GRANT_REFRESH_TOKEN) => {
            let source = request_source(request, state.config.registration.trust_forwarded_for);
            let refresh = RefreshRequest {
                refresh_token: form.get("refresh_token"),
                scope: form.get("scope"),
                resource: form.get("resource"),
                source: &source,
                user_agent: request
                    .headers()
                    .get("user-agent")
                    .and_then(|v| v.to_str().ok()),
            };
            tokens
                .refresh(&client, refresh)
                .await
                .map(TokenAnswer::Tokens)
        }
        Some(GRANT_TOKEN_EXCHANGE) => {
            let exchanged = tokens
                .exchange_token(
                    &client,
                    ExchangeRequest {
                        subject_token: form.get("subject_token"),
                        subject_token_type: form.get("subject_token_type"),
                        requested_token_type: form.get("requested_token_type"),
                    },
                )
                .await;
            state.metrics.token_exchange(exchanged.is_ok());
            exchanged.map(TokenAnswer::Exchange)
        }
        Some(other) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type `{other}` is not supported"),
        )),
        None => Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "grant_type is required",
        )),
    };
    match &result {
        Ok(TokenAnswer::Exchange(_)) => state.metrics.token_issued(GrantType::TokenExchange),
        Ok(TokenAnswer::Tokens(_)) if form.get("grant_type") == Some(GRANT_REFRESH_TOKEN) => {
            state.metrics.token_issued(GrantType::RefreshToken)
        }
        Ok(TokenAnswer::Tokens(_)) => state.metrics.token_issued(GrantType::AuthorizationCode),
        Err(error) => {
            tracing::info!(client_id = %client.client_id, error = %error.code, "token request refused");
        }
    }
    result.map(JsonBody)
}
