//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662): the client is authenticated
//! here, the flows' rules live in `grants::token_revocation` and `grants::introspection`.

use poem::Request;

use super::AppState;
use super::errors::OAuthFailure;
use super::oauth_api::{JsonBody, Revoked};
use super::registration::request_address;
use super::token::authenticate_form;
use crate::grants::introspection::Introspection;

/// RFC 7009: revokes a refresh token (its whole family) or an access token (by `jti`, until it
/// expires); every other token gets the same 200.
pub async fn revoke(
    state: &AppState,
    request: &Request,
    body: &str,
) -> Result<Revoked, OAuthFailure> {
    let (form, client) = authenticate_form(state, request, body).await?;
    let address = request_address(request, state.config.registration.trust_forwarded_for);
    state
        .tokens
        .revoke_token(&client, form.get("token"), address.as_deref())
        .await?;
    Ok(Revoked)
}

/// RFC 7662, for resource-server clients only.
pub async fn introspect(
    state: &AppState,
    request: &Request,
    body: &str,
) -> Result<JsonBody<Introspection>, OAuthFailure> {
    let (form, client) = authenticate_form(state, request, body).await?;
    let answer = state.tokens.introspect(&client, form.get("token")).await?;
    Ok(JsonBody(answer))
}
