//! Client authentication at the token, revocation and introspection endpoints: the presented
//! credentials against the registered client. Every failure is `invalid_client` (401), the
//! answer on which hosts register again.

use super::cimd::is_client_id_url;
use crate::oauth::client_auth::{PresentedClient, check_auth_method};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::Store;
use crate::tokens::opaque;

/// A client whose credentials checked out.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client_id: String,
    /// A client without a secret (PKCE is its only proof).
    pub public: bool,
    /// The resource this client serves, when an operator marked it as a resource server.
    pub resource_server_for: Option<String>,
    /// The access-token lifetime an operator set for this client.
    pub access_token_ttl_secs: Option<i64>,
}

#[cfg(test)]
impl AuthenticatedClient {
    /// A client `rs` for tests: public or confidential, serving `resource` or none.
    pub fn for_tests(public: bool, resource: Option<&str>) -> Self {
        Self {
            client_id: "rs".into(),
            public,
            resource_server_for: resource.map(str::to_owned),
            access_token_ttl_secs: None,
        }
    }
}

/// Checks `presented` against the client it names. Public clients present no secret;
/// confidential ones present theirs with the method they registered, `client_secret_basic` or
/// `client_secret_post`.
pub async fn authenticate_client(
    store: &Store,
    presented: &PresentedClient,
    documents_enabled: bool,
    allow_http_loopback: bool,
) -> Result<AuthenticatedClient, OAuthError> {
    let refuse = |m: &str| OAuthError::new(ErrorCode::InvalidClient, m);
    let client_id = presented.client_id();
    if documents_enabled && is_client_id_url(client_id, allow_http_loopback) {
        // A metadata-document client is public: it has no secret to present.
        return match presented {
            PresentedClient::Public { .. } => Ok(AuthenticatedClient {
                client_id: client_id.to_owned(),
                public: true,
                resource_server_for: None,
                access_token_ttl_secs: None,
            }),
            _ => Err(refuse(
                "a client identified by a metadata document has no secret",
            )),
        };
    }
    let row = store
        .client(client_id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "client lookup failed");
            OAuthError::new(ErrorCode::ServerError, "the client could not be looked up")
        })?
        .ok_or_else(|| {
            refuse("unknown client: it may have been deleted or expired; register again")
        })?;
    if row.disabled {
        return Err(refuse("this client has been disabled"));
    }
    match (&row.secret_hash, presented.secret()) {
        (None, None) => {}
        (None, Some(_)) => return Err(refuse("this client is public and has no secret")),
        (Some(_), None) => return Err(refuse("this client must authenticate with its secret")),
        (Some(hash), Some(secret)) => {
            if !opaque::verify(secret, hash) {
                return Err(refuse("the client secret is wrong"));
            }
        }
    }
    check_auth_method(&row.token_endpoint_auth_method, presented)?;
    Ok(AuthenticatedClient {
        client_id: row.client_id,
        public: row.secret_hash.is_none(),
        resource_server_for: row.resource_server_for,
        access_token_ttl_secs: row.access_token_ttl_secs,
    })
}
