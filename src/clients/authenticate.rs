//! Client authentication at the token, revocation and introspection endpoints: the presented
//! credentials against the registered client. Every failure is `invalid_client` (401), the
//! answer on which hosts register again.

use super::cimd::is_client_id_url;
use crate::ids::ClientId;
use crate::oauth::client_auth::{PresentedClient, check_auth_method};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::Store;
use crate::tokens::opaque;

/// A client whose credentials checked out.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client_id: ClientId,
    /// A client without a secret (PKCE is its only proof).
    pub public: bool,
    /// The resource this client serves, when an operator marked it as a resource server.
    pub resource_server_for: Option<String>,
    /// The access-token lifetime an operator set for this client.
    pub access_token_ttl_secs: Option<i64>,
    /// The client's last use as recorded (see [`AuthenticatedClient::use_to_record`]).
    pub use_recorded_at: Option<i64>,
    /// Marked superseded by a newer registration of its software (`store::eviction`); a use
    /// clears the mark.
    pub superseded: bool,
    /// Whether the client has a row to record its use on (not a metadata-document client).
    pub registered: bool,
}

/// How fresh the recorded last use of a client is kept. The reaper deletes clients unused
/// for days (`registration.reap_unused_after_days`), so a grant records a use only when the
/// recorded one is older than this: most grants write nothing for it.
pub const CLIENT_USE_RESOLUTION_SECS: i64 = 3600;

impl AuthenticatedClient {
    /// Whether a grant at `now` must record this client's use: the recorded use is older than
    /// [`CLIENT_USE_RESOLUTION_SECS`] (or missing), or the client is marked superseded.
    pub fn use_to_record(&self, now: i64) -> bool {
        self.registered
            && (self.superseded
                || self
                    .use_recorded_at
                    .is_none_or(|at| now - at >= CLIENT_USE_RESOLUTION_SECS))
    }
}

#[cfg(test)]
impl AuthenticatedClient {
    /// A client `rs` for tests: public or confidential, serving `resource` or none.
    pub fn for_tests(public: bool, resource: Option<&str>) -> Self {
        Self {
            client_id: ClientId::from_stored("rs".into()),
            public,
            resource_server_for: resource.map(str::to_owned),
            access_token_ttl_secs: None,
            use_recorded_at: None,
            superseded: false,
            registered: false,
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
    let unknown = || refuse("unknown client: it may have been deleted or expired; register again");
    // The presented id is outside input: one that does not parse names no client.
    let Ok(client_id) = presented.client_id().parse::<ClientId>() else {
        return Err(unknown());
    };
    if documents_enabled && is_client_id_url(client_id.as_str(), allow_http_loopback) {
        // A metadata-document client is public: it has no secret to present.
        return match presented {
            PresentedClient::Public { .. } => Ok(AuthenticatedClient {
                client_id,
                public: true,
                resource_server_for: None,
                access_token_ttl_secs: None,
                use_recorded_at: None,
                superseded: false,
                registered: false,
            }),
            _ => Err(refuse(
                "a client identified by a metadata document has no secret",
            )),
        };
    }
    let row = store
        .client(&client_id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "client lookup failed");
            OAuthError::new(ErrorCode::ServerError, "the client could not be looked up")
        })?
        .ok_or_else(unknown)?;
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
        use_recorded_at: row.last_used_at,
        superseded: row.superseded_at.is_some(),
        registered: true,
    })
}
