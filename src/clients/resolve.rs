//! Which client an authorization request names: a registered one (dynamic or admin-created)
//! or a Client ID Metadata Document URL.

use serde_json::json;

use super::cimd::{CimdError, ClientDocumentResolver, is_client_id_url};
use super::registry::ClientKind;
use super::stored::{stored_metadata, stored_redirect_uris};
use crate::ids::ClientId;
use crate::store::clients::ClientRow;
use crate::store::{Store, StoreError};
use crate::tokens::opaque;

/// How the client came to exist, for the consent page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOrigin {
    Dynamic,
    Admin,
    /// A metadata document fetched from this host.
    MetadataDocument {
        host: String,
    },
}

/// A client as the authorization endpoint needs it.
#[derive(Debug, Clone)]
pub struct ResolvedClient {
    pub client_id: ClientId,
    /// The registered name, or a fallback that names the client id.
    pub name: String,
    pub origin: ClientOrigin,
    pub redirect_uris: Vec<String>,
    /// A digest of everything stored about the client (its metadata document's content for a
    /// URL client): any edit changes it, which voids remembered approvals of the client.
    pub fingerprint: String,
    /// What software a dynamic client is (`registry::software_id`): identical registrations
    /// share it. `None` for admin-created and metadata-document clients, which are never
    /// registered again under another id.
    pub software: Option<String>,
    /// Whether an error may be sent to the client's verified redirect URI, or must be shown
    /// as a page here. RFC 9700 §4.11.2: a redirect URI nobody has vouched for turns error
    /// redirects into an open redirector, so only admin-created clients and dynamic clients a
    /// user has approved (a completed login) get them. A metadata document's URIs are chosen
    /// by whoever serves the document, so they count as unvouched too.
    pub may_redirect_errors: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("this client is not registered here (it may have been deleted); register it again")]
    Unknown,
    #[error("this client has been disabled by the operator")]
    Disabled,
    #[error("the client's metadata document could not be used: {0}")]
    Document(#[from] CimdError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Finds the client `client_id` names.
pub async fn resolve_client(
    store: &Store,
    documents: &ClientDocumentResolver,
    documents_enabled: bool,
    allow_http_loopback: bool,
    client_id: &ClientId,
) -> Result<ResolvedClient, ResolveError> {
    if documents_enabled && is_client_id_url(client_id.as_str(), allow_http_loopback) {
        let document = documents.resolve(client_id).await?;
        let host = url::Url::parse(client_id.as_str())
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let fingerprint = fingerprint(&json!(["document", document.raw]));
        return Ok(ResolvedClient {
            client_id: client_id.clone(),
            name: document.client_name.clone().unwrap_or_else(|| host.clone()),
            origin: ClientOrigin::MetadataDocument { host },
            redirect_uris: document.redirect_uris,
            fingerprint,
            software: None,
            may_redirect_errors: false,
        });
    }
    let row = store
        .client(client_id)
        .await?
        .ok_or(ResolveError::Unknown)?;
    if row.disabled {
        return Err(ResolveError::Disabled);
    }
    let redirect_uris = stored_redirect_uris(&stored_metadata(&row));
    let admin = row.kind == ClientKind::Admin;
    Ok(ResolvedClient {
        client_id: row.client_id.clone(),
        name: row
            .client_name
            .clone()
            .unwrap_or_else(|| format!("Unnamed app ({})", row.client_id)),
        origin: if admin {
            ClientOrigin::Admin
        } else {
            ClientOrigin::Dynamic
        },
        redirect_uris,
        fingerprint: stored_client_fingerprint(&row),
        software: row.software_id.clone().filter(|_| !admin),
        may_redirect_errors: vouched_for(&row),
    })
}

/// The fingerprint of a registered client as the consent page shows it: any edit changes it.
pub fn stored_client_fingerprint(row: &ClientRow) -> String {
    fingerprint(&json!([
        row.kind.as_str(),
        row.client_name,
        row.metadata,
        row.token_endpoint_auth_method,
        row.updated_at,
    ]))
}

/// `ResolvedClient::may_redirect_errors` for a request that was already verified and stored
/// (the consent form's answer): only a registered client still there, not disabled, and
/// admin-created or approved by a user. A metadata-document client never is.
pub async fn may_redirect_errors(store: &Store, client_id: &ClientId) -> Result<bool, StoreError> {
    Ok(store
        .client(client_id)
        .await?
        .is_some_and(|row| !row.disabled && vouched_for(&row)))
}

/// An admin created the client, or a user completed a login through it.
fn vouched_for(row: &ClientRow) -> bool {
    row.kind == ClientKind::Admin || row.first_authorized_at.is_some()
}

/// SHA-256 (hex) of a JSON value's serialisation: unambiguous, whatever the fields contain.
fn fingerprint(value: &serde_json::Value) -> String {
    opaque::hash(&value.to_string())
}
