//! `POST /token` (RFC 6749 §3.2): form in, JSON out, never cached. Client authentication
//! first (401 `invalid_client` on any failure, the answer on which hosts register again), then
//! the grant.

use poem::http::StatusCode;
use poem::{Request, Response};

use super::AppState;
use super::registration::request_source;
use crate::clients::authenticate::{AuthenticatedClient, authenticate_client};
use crate::grants::code::CodeRequest;
use crate::grants::exchange::GRANT_TOKEN_EXCHANGE;
use crate::grants::refresh::RefreshRequest;
use crate::monitoring::GrantType;
use crate::oauth::authorize::AuthorizeQuery;
use crate::oauth::client_auth::presented_client;
use crate::oauth::error::{ErrorCode, OAuthError};

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";

/// A JSON response with the headers RFC 6749 §5.1 requires.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .header("cache-control", "no-store")
        .header("pragma", "no-cache")
        .body(serde_json::to_vec(body).expect("a response serialises"))
}

/// An RFC 6749 §5.2 error; `basic` adds the Basic challenge to a 401.
pub fn oauth_error_response(error: &OAuthError, basic: bool) -> Response {
    let body =
        serde_json::json!({"error": error.code.as_str(), "error_description": error.description});
    let status = StatusCode::from_u16(error.code.status()).expect("a valid status");
    let mut response = json_response(status, &body);
    if error.code == ErrorCode::InvalidClient {
        let challenge = if basic {
            r#"Basic realm="authbridge""#
        } else {
            r#"Bearer realm="authbridge""#
        };
        response.headers_mut().insert(
            "www-authenticate",
            poem::http::HeaderValue::from_static(challenge),
        );
    }
    response
}

/// Parses a form body (refusing repeated parameters) and authenticates the client.
pub async fn authenticate_form(
    state: &AppState,
    request: &Request,
    body: &str,
) -> Result<(AuthorizeQuery, AuthenticatedClient), (OAuthError, bool)> {
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
        return Err((
            OAuthError::new(
                ErrorCode::InvalidRequest,
                "the body must be application/x-www-form-urlencoded",
            ),
            false,
        ));
    }
    let form = AuthorizeQuery::parse(body);
    if let Some(name) = form.repeated().first() {
        return Err((
            OAuthError::new(
                ErrorCode::InvalidRequest,
                format!("the parameter `{name}` was sent more than once"),
            ),
            false,
        ));
    }
    let mut headers = request.headers().get_all("authorization").iter();
    let authorization = headers.next().and_then(|v| v.to_str().ok());
    if headers.next().is_some() {
        return Err((
            OAuthError::new(
                ErrorCode::InvalidRequest,
                "more than one Authorization header",
            ),
            false,
        ));
    }
    let presented = presented_client(
        authorization,
        form.get("client_id"),
        form.get("client_secret"),
    )
    .map_err(|e| (e, authorization.is_some()))?;
    let documents = &state.config.client_metadata_documents;
    let client = authenticate_client(
        &state.store,
        &presented,
        documents.enabled,
        documents.allow_http_loopback,
    )
    .await
    .map_err(|e| (e, presented.used_basic()))?;
    Ok((form, client))
}

/// `POST /token`, mounted through the OpenAPI service (`http::oauth_api`).
pub async fn token(state: &AppState, request: &Request, body: &str) -> Response {
    let (form, client) = match authenticate_form(state, request, body).await {
        Ok(authenticated) => authenticated,
        Err((error, basic)) => {
            tracing::info!(error = %error.code, "token request refused before the grant");
            return oauth_error_response(&error, basic);
        }
    };
    let tokens = &state.tokens;
    let result = match form.get("grant_type") {
        Some(GRANT_AUTHORIZATION_CODE) => {
            let code = CodeRequest {
                code: form.get("code"),
                redirect_uri: form.get("redirect_uri"),
                code_verifier: form.get("code_verifier"),
                resource: form.get("resource"),
            };
            tokens.exchange_code(&client, code).await
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
            tokens.refresh(&client, refresh).await
        }
        Some(GRANT_TOKEN_EXCHANGE) => {
            match tokens
                .exchange_token(
                    &client,
                    form.get("subject_token"),
                    form.get("subject_token_type"),
                    form.get("requested_token_type"),
                )
                .await
            {
                Ok(response) => {
                    state.metrics.token_exchange(true);
                    state.metrics.token_issued(GrantType::TokenExchange);
                    return json_response(StatusCode::OK, &response);
                }
                Err(error) => {
                    state.metrics.token_exchange(false);
                    Err(error)
                }
            }
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
    match result {
        Ok(response) => {
            let grant = if form.get("grant_type") == Some(GRANT_REFRESH_TOKEN) {
                GrantType::RefreshToken
            } else {
                GrantType::AuthorizationCode
            };
            state.metrics.token_issued(grant);
            json_response(StatusCode::OK, &response)
        }
        Err(error) => {
            tracing::info!(client_id = %client.client_id, error = %error.code, "token request refused");
            oauth_error_response(&error, false)
        }
    }
}
