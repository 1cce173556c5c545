//! Token exchange (RFC 8693) for the MCP server: it trades a user's access token (ours) for
//! that user's upstream access token, so it can call the upstream API as the user.
//!
//! An upstream token that has expired, or is about to, is refreshed first, under the grant's
//! lease (`grants::upstream_refresh`, shared with the gateway): one refresh however many exchanges
//! arrive at once; only `invalid_grant` from the upstream revokes the grant, anything else
//! answers `temporarily_unavailable` and keeps it.

use serde::{Deserialize, Serialize};

use super::upstream_refresh::{UpstreamTokenError, UpstreamTokenKeeper};
use crate::clients::authenticate::AuthenticatedClient;
use crate::grants::service::TokenService;
use crate::ids::GrantId;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::StoreError;
use crate::store::login::GrantRow;
use crate::tokens::verify::{VerifyError, verify_access_token};

pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

// The body `/token` serves, serialised by the derive that documents it (`http::oauth_api`).
/// A token exchange's answer (RFC 8693 §2.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Object)]
pub struct ExchangeResponse {
    /// The user's upstream access token.
    pub access_token: String,
    /// `urn:ietf:params:oauth:token-type:access_token`.
    pub issued_token_type: String,
    /// `Bearer`.
    pub token_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub expires_in: Option<i64>,
}

fn server_error(error: StoreError) -> OAuthError {
    tracing::error!(%error, "token exchange storage failure");
    OAuthError::new(
        ErrorCode::ServerError,
        "the server could not complete the request",
    )
}

fn unavailable() -> OAuthError {
    OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        "the upstream is unavailable; retry shortly",
    )
}

/// The parameters of a token-exchange request, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExchangeRequest<'a> {
    pub subject_token: Option<&'a str>,
    pub subject_token_type: Option<&'a str>,
    pub requested_token_type: Option<&'a str>,
}

/// Who may exchange and what: a confidential resource-server client, an access token as the
/// subject, an access token as the result. Returns the client's resource and the subject token.
pub fn check_exchange_request<'a>(
    client: &'a AuthenticatedClient,
    request: &ExchangeRequest<'a>,
) -> Result<(&'a str, &'a str), OAuthError> {
    let invalid = |m: &str| OAuthError::new(ErrorCode::InvalidRequest, m);
    let resource = match (&client.resource_server_for, client.public) {
        (Some(resource), false) => resource.as_str(),
        _ => {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "only a confidential client marked as a resource server may exchange tokens",
            ));
        }
    };
    let subject_token = request
        .subject_token
        .ok_or_else(|| invalid("subject_token is required"))?;
    if request.subject_token_type != Some(TOKEN_TYPE_ACCESS_TOKEN) {
        return Err(invalid(
            "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    if request
        .requested_token_type
        .is_some_and(|t| t != TOKEN_TYPE_ACCESS_TOKEN)
    {
        return Err(invalid("only an access token can be requested"));
    }
    Ok((resource, subject_token))
}

/// RFC 8693 §2.2.2: an invalid or unacceptable subject token is `invalid_request`.
pub fn unacceptable_subject(error: &VerifyError) -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidRequest,
        format!("subject_token is not acceptable: {error}"),
    )
}

/// What the store holds about a verified subject token.
#[derive(Debug, Clone, Copy)]
pub struct StoredSubject<'a> {
    /// The live grant of its user, client and resource, if any.
    pub grant: Option<&'a GrantRow>,
    /// Its `jti` is deny-listed.
    pub denied: bool,
}

/// Decides on an exchange of a verified subject token: the grant and its sealed upstream
/// tokens, or why not. With no live grant the user must connect again (`invalid_grant`); a
/// live grant may be a newer one than the token's, so a deny-listed token is refused even then
/// (every token of a revoked grant or family is deny-listed in the revocation's transaction).
pub fn decide_exchange<'a>(
    stored: StoredSubject<'a>,
) -> Result<(&'a GrantRow, &'a str), OAuthError> {
    let grant = stored.grant.ok_or_else(revoked)?;
    if stored.denied {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "subject_token has been revoked",
        ));
    }
    let sealed = grant.upstream_tokens.as_deref().ok_or_else(revoked)?;
    Ok((grant, sealed))
}

impl TokenService {
    pub async fn exchange_token(
        &self,
        client: &AuthenticatedClient,
        request: ExchangeRequest<'_>,
    ) -> Result<ExchangeResponse, OAuthError> {
        let (resource, subject_token) = check_exchange_request(client, &request)?;
        let now = self.clock.now();
        let claims = verify_access_token(
            &self.keys,
            subject_token,
            self.issuer.as_str(),
            Some(resource),
            now,
            0,
        )
        .map_err(|error| unacceptable_subject(&error))?;
        let grant = self
            .store
            .live_grant_for(&claims.user_id(), &claims.client(), &claims.aud)
            .await
            .map_err(server_error)?;
        let denied = match grant {
            Some(_) => self
                .store
                .is_access_token_denied(&claims.jti)
                .await
                .map_err(server_error)?,
            None => false,
        };
        let (grant, sealed) = decide_exchange(StoredSubject {
            grant: grant.as_ref(),
            denied,
        })?;
        let tokens = self
            .upstream_tokens()
            .usable(&grant.grant_id, sealed)
            .await
            .map_err(|error| exchange_error(error, &grant.grant_id))?
            .tokens;
        tracing::info!(client_id = %client.client_id, grant_id = %grant.grant_id, "token exchanged for the upstream token");
        Ok(ExchangeResponse {
            access_token: tokens.access_token,
            issued_token_type: TOKEN_TYPE_ACCESS_TOKEN.into(),
            token_type: "Bearer".into(),
            expires_in: tokens.expires_at.map(|at| (at - self.clock.now()).max(0)),
        })
    }

    /// The upstream tokens of grants, refreshed under the grant's lease.
    pub fn upstream_tokens(&self) -> UpstreamTokenKeeper {
        UpstreamTokenKeeper {
            store: self.store.clone(),
            vault: self.vault.clone(),
            upstream: self.upstream.clone(),
            clock: self.clock.clone(),
        }
    }
}

fn revoked() -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidGrant,
        "the user's authorization has been revoked",
    )
}

/// RFC 8693 §2.2.2 and RFC 6749 §5.2: the user must connect again (`invalid_grant`), or retry.
fn exchange_error(error: UpstreamTokenError, grant_id: &GrantId) -> OAuthError {
    match error {
        UpstreamTokenError::GrantRevoked => revoked(),
        UpstreamTokenError::AuthorizationGone => OAuthError::new(
            ErrorCode::InvalidGrant,
            "the user's upstream authorization is gone; the user must sign in again",
        ),
        UpstreamTokenError::NotRefreshable => OAuthError::new(
            ErrorCode::InvalidGrant,
            "the user's upstream authorization has expired; the user must sign in again",
        ),
        UpstreamTokenError::Unavailable => unavailable(),
        UpstreamTokenError::Unreadable(cause) => {
            tracing::error!(%grant_id, %cause, "could not open the upstream tokens");
            OAuthError::new(
                ErrorCode::ServerError,
                "the server could not complete the request",
            )
        }
        UpstreamTokenError::Store(error) => server_error(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ExchangeRequest<'static> {
        ExchangeRequest {
            subject_token: Some("at"),
            subject_token_type: Some(TOKEN_TYPE_ACCESS_TOKEN),
            requested_token_type: None,
        }
    }

    fn grant(upstream_tokens: Option<&str>) -> GrantRow {
        GrantRow {
            grant_id: "grt_1".parse().unwrap(),
            user_id: "usr_1".parse().unwrap(),
            client_id: "client_1".parse().unwrap(),
            resource: crate::oauth::resource::ResourceUri::from_stored("https://h/mcp".into()),
            scope: crate::oauth::scope::ScopeSet::from_stored("mcp"),
            upstream_tokens: upstream_tokens.map(str::to_owned),
            upstream_expires_at: None,
            created_at: 1,
            updated_at: 1,
            revoked_at: None,
            refresh_lease_until: None,
        }
    }

    #[test]
    fn requests() {
        let rs = AuthenticatedClient::for_tests(false, Some("https://h/mcp"));
        let public = AuthenticatedClient::for_tests(true, Some("https://h/mcp"));
        let plain = AuthenticatedClient::for_tests(false, None);
        let cases = [
            (
                "a resource server asking for an access token",
                &rs,
                request(),
                None,
            ),
            (
                "asking for an access token by name",
                &rs,
                ExchangeRequest {
                    requested_token_type: Some(TOKEN_TYPE_ACCESS_TOKEN),
                    ..request()
                },
                None,
            ),
            (
                "a public client",
                &public,
                request(),
                Some(ErrorCode::UnauthorizedClient),
            ),
            (
                "a client that serves no resource",
                &plain,
                request(),
                Some(ErrorCode::UnauthorizedClient),
            ),
            (
                "no subject token",
                &rs,
                ExchangeRequest {
                    subject_token: None,
                    ..request()
                },
                Some(ErrorCode::InvalidRequest),
            ),
            (
                "another subject token type",
                &rs,
                ExchangeRequest {
                    subject_token_type: Some("urn:ietf:params:oauth:token-type:id_token"),
                    ..request()
                },
                Some(ErrorCode::InvalidRequest),
            ),
            (
                "asking for another token type",
                &rs,
                ExchangeRequest {
                    requested_token_type: Some("urn:ietf:params:oauth:token-type:jwt"),
                    ..request()
                },
                Some(ErrorCode::InvalidRequest),
            ),
        ];
        for (name, client, request, refused) in cases {
            match check_exchange_request(client, &request) {
                Ok((resource, subject)) => {
                    assert_eq!(refused, None, "{name}");
                    assert_eq!((resource, subject), ("https://h/mcp", "at"), "{name}");
                }
                Err(error) => assert_eq!(Some(error.code), refused, "{name}"),
            }
        }
    }

    #[test]
    fn decisions() {
        let live = grant(Some("sealed"));
        let emptied = grant(None);
        let cases = [
            (
                "a live grant with upstream tokens",
                Some(&live),
                false,
                None,
            ),
            ("no live grant", None, false, Some(ErrorCode::InvalidGrant)),
            (
                "no live grant, and deny-listed",
                None,
                true,
                Some(ErrorCode::InvalidGrant),
            ),
            (
                "a deny-listed token of a live grant",
                Some(&live),
                true,
                Some(ErrorCode::InvalidRequest),
            ),
            (
                "a grant without upstream tokens",
                Some(&emptied),
                false,
                Some(ErrorCode::InvalidGrant),
            ),
        ];
        for (name, grant, denied, refused) in cases {
            match decide_exchange(StoredSubject { grant, denied }) {
                Ok((grant, sealed)) => {
                    assert_eq!(refused, None, "{name}");
                    assert_eq!((grant.grant_id.as_str(), sealed), ("grt_1", "sealed"));
                }
                Err(error) => assert_eq!(Some(error.code), refused, "{name}"),
            }
        }
    }

    #[test]
    fn upstream_failures() {
        let cases = [
            (UpstreamTokenError::GrantRevoked, ErrorCode::InvalidGrant),
            (
                UpstreamTokenError::AuthorizationGone,
                ErrorCode::InvalidGrant,
            ),
            (UpstreamTokenError::NotRefreshable, ErrorCode::InvalidGrant),
            (
                UpstreamTokenError::Unavailable,
                ErrorCode::TemporarilyUnavailable,
            ),
            (
                UpstreamTokenError::Unreadable("bad".into()),
                ErrorCode::ServerError,
            ),
        ];
        for (error, expected) in cases {
            let name = error.to_string();
            assert_eq!(
                exchange_error(error, &"grt_1".parse().unwrap()).code,
                expected,
                "{name}"
            );
        }
    }
}
