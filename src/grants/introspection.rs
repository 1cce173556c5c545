//! Token introspection (RFC 7662), for resource-server clients only: `active` and the token's
//! claims when it is a valid access token for that client's resource whose grant is live and
//! which is not deny-listed; `{"active": false}` for anything else, so an answer says nothing
//! about why a token is not usable.

use crate::clients::authenticate::AuthenticatedClient;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::StoreError;
use crate::tokens::access::AccessClaims;
use crate::tokens::verify::verify_access_token;

use super::service::TokenService;

// The body `/introspect` serves, serialised by the derive that documents it (`http::oauth_api`).
/// An introspection answer (RFC 7662 §2.2): `{"active": false}` or the token's claims.
#[derive(Debug, Default, Clone, PartialEq, Eq, poem_openapi::Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Introspection {
    pub active: bool,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<String>,
    pub iss: Option<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
    pub token_type: Option<String>,
}

/// What the store says about a verified access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredAccess {
    /// Its `jti` is deny-listed (revoked by its client, its family or its grant).
    pub denied: bool,
    /// A live grant exists for its user, client and resource.
    pub grant_live: bool,
}

/// Only a confidential client an operator marked as a resource server may introspect, and only
/// tokens for its own resource: returns that resource.
pub fn introspecting_resource(client: &AuthenticatedClient) -> Result<&str, OAuthError> {
    client
        .resource_server_for
        .as_deref()
        .filter(|_| !client.public)
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidClient,
                "only a confidential client marked as a resource server may introspect",
            )
        })
}

/// The answer for a token whose signature, issuer, audience and lifetime were checked
/// (`claims`, `None` when they failed), given what the store holds about it.
pub fn decide_introspection(
    claims: Option<AccessClaims>,
    stored: Option<StoredAccess>,
) -> Introspection {
    match (claims, stored) {
        (
            Some(claims),
            Some(StoredAccess {
                denied: false,
                grant_live: true,
            }),
        ) => Introspection {
            active: true,
            scope: Some(claims.scope),
            client_id: Some(claims.client_id),
            sub: Some(claims.sub),
            aud: Some(claims.aud),
            iss: Some(claims.iss),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            jti: Some(claims.jti),
            token_type: Some("Bearer".into()),
        },
        _ => Introspection::default(),
    }
}

impl TokenService {
    /// Introspects `token` for `client` (RFC 7662 §2).
    pub async fn introspect(
        &self,
        client: &AuthenticatedClient,
        token: Option<&str>,
    ) -> Result<Introspection, OAuthError> {
        let resource = introspecting_resource(client)?;
        let token =
            token.ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "token is required"))?;
        let now = self.clock.now();
        let claims = verify_access_token(
            &self.keys,
            token,
            self.issuer.as_str(),
            Some(resource),
            now,
            0,
        )
        .ok();
        let stored = match &claims {
            Some(claims) => Some(self.load_access(claims).await.map_err(|error| {
                tracing::error!(%error, "introspection failed");
                OAuthError::new(
                    ErrorCode::ServerError,
                    "the server could not complete the request",
                )
            })?),
            None => None,
        };
        Ok(decide_introspection(claims, stored))
    }

    async fn load_access(&self, claims: &AccessClaims) -> Result<StoredAccess, StoreError> {
        let denied = self.store.is_access_token_denied(&claims.jti).await?;
        let grant_live = !denied
            && self
                .store
                .live_grant_for(&claims.user_id(), &claims.client(), &claims.aud)
                .await?
                .is_some();
        Ok(StoredAccess { denied, grant_live })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "https://as.example".into(),
            sub: "usr_1".into(),
            aud: "https://mcp.example/mcp".into(),
            client_id: "client_1".into(),
            scope: "mcp".into(),
            iat: 1,
            exp: 50,
            jti: "jti_1".into(),
            auth_time: 1,
        }
    }

    #[test]
    fn decisions() {
        let live = StoredAccess {
            denied: false,
            grant_live: true,
        };
        let cases = [
            (
                "a verified token with a live grant is active",
                Some(claims()),
                Some(live),
                true,
            ),
            ("a token that did not verify is inactive", None, None, false),
            (
                "a deny-listed token is inactive",
                Some(claims()),
                Some(StoredAccess {
                    denied: true,
                    grant_live: true,
                }),
                false,
            ),
            (
                "a token of a revoked grant is inactive",
                Some(claims()),
                Some(StoredAccess {
                    denied: false,
                    grant_live: false,
                }),
                false,
            ),
        ];
        for (name, claims, stored, active) in cases {
            let answer = decide_introspection(claims, stored);
            assert_eq!(answer.active, active, "{name}");
            if !active {
                assert_eq!(answer, Introspection::default(), "{name}: nothing leaks");
            }
        }
        let active = decide_introspection(Some(claims()), Some(live));
        assert_eq!(active.jti.as_deref(), Some("jti_1"));
        assert_eq!(active.token_type.as_deref(), Some("Bearer"));
    }

    #[test]
    fn only_confidential_resource_servers_introspect() {
        let cases = [
            (
                "a confidential resource server",
                false,
                Some("https://h/mcp"),
                true,
            ),
            (
                "a public client marked as resource server",
                true,
                Some("https://h/mcp"),
                false,
            ),
            (
                "a confidential client that serves no resource",
                false,
                None,
                false,
            ),
        ];
        for (name, public, resource, allowed) in cases {
            let client = AuthenticatedClient::for_tests(public, resource);
            let answer = introspecting_resource(&client);
            assert_eq!(answer.is_ok(), allowed, "{name}");
            if let Err(error) = answer {
                assert_eq!(error.code, ErrorCode::InvalidClient, "{name}");
            }
        }
    }
}
