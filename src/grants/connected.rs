//! The apps that hold access for a user, as the connected-apps page shows them: one per live
//! grant, with who the app says it is and how far that is verified, where it sends the user
//! back, what it may reach, and when it was authorized and last used. Read only; disconnecting
//! is [`super::revoke_grant`], the same revocation the admin API uses.

use serde_json::Value;

use crate::clients::cimd::is_client_id_url;
use crate::clients::stored::{stored_metadata, stored_redirect_uris};
use crate::ids::{ClientId, GrantId, UserId};
use crate::oauth::redirect_uri::match_redirect_uri;
use crate::store::clients::ClientKind;
use crate::store::login::GrantRow;
use crate::store::{Store, StoreError};

/// How far the app's name can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppIdentity {
    /// A Client ID Metadata Document: the app is whoever controls this host.
    VerifiedUrl { host: String },
    /// It registered itself (dynamic registration): nobody checked its name.
    SelfRegistered,
    /// The operator set it up.
    Operator,
    /// The app's registration is gone (deleted since).
    Unknown,
}

/// One app holding access for the user (one live grant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedApp {
    pub grant_id: GrantId,
    pub client_id: ClientId,
    /// The app's own name (untrusted text), or a description naming its id or host.
    pub name: String,
    pub identity: AppIdentity,
    /// The hosts its registered redirect URIs send the user back to (`scheme://` for an app
    /// on the device).
    pub redirect_hosts: Vec<String>,
    pub resource: String,
    pub scopes: Vec<String>,
    pub first_authorized_at: i64,
    /// The latest of its last login and its newest token.
    pub last_used_at: i64,
}

/// The user's live grants as apps, oldest first.
pub async fn connected_apps(
    store: &Store,
    user_id: &UserId,
) -> Result<Vec<ConnectedApp>, StoreError> {
    let grants = store.grants_of_user(user_id).await?;
    let mut apps = Vec::new();
    for grant in grants.into_iter().filter(|g| g.revoked_at.is_none()) {
        let last_token = store.grant_last_token_at(&grant.grant_id).await?;
        let described = describe_client(store, &grant.client_id).await?;
        apps.push(app_of(grant, described, last_token));
    }
    Ok(apps)
}

/// What is known of a client: its name, identity and redirect URIs.
struct DescribedClient {
    name: String,
    identity: AppIdentity,
    redirect_uris: Vec<String>,
}

async fn describe_client(
    store: &Store,
    client_id: &ClientId,
) -> Result<DescribedClient, StoreError> {
    if is_client_id_url(client_id.as_str(), true) {
        let host = url::Url::parse(client_id.as_str())
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let document = store
            .client_document(client_id)
            .await?
            .and_then(|row| serde_json::from_str::<Value>(&row.document).ok());
        let name = document
            .as_ref()
            .and_then(|d| d.get("client_name"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| host.clone());
        let redirect_uris = document
            .as_ref()
            .and_then(Value::as_object)
            .map(stored_redirect_uris)
            .unwrap_or_default();
        return Ok(DescribedClient {
            name,
            identity: AppIdentity::VerifiedUrl { host },
            redirect_uris,
        });
    }
    let Some(row) = store.client(client_id).await? else {
        return Ok(DescribedClient {
            name: format!("A removed app ({client_id})"),
            identity: AppIdentity::Unknown,
            redirect_uris: Vec::new(),
        });
    };
    Ok(DescribedClient {
        name: row
            .client_name
            .clone()
            .unwrap_or_else(|| format!("Unnamed app ({client_id})")),
        identity: if row.kind == ClientKind::Admin {
            AppIdentity::Operator
        } else {
            AppIdentity::SelfRegistered
        },
        redirect_uris: stored_redirect_uris(&stored_metadata(&row)),
    })
}

fn app_of(grant: GrantRow, client: DescribedClient, last_token: Option<i64>) -> ConnectedApp {
    ConnectedApp {
        redirect_hosts: redirect_hosts(&client.redirect_uris),
        scopes: grant.scope.iter().map(str::to_owned).collect(),
        first_authorized_at: grant.created_at,
        last_used_at: last_token.unwrap_or(grant.updated_at).max(grant.updated_at),
        grant_id: grant.grant_id,
        client_id: grant.client_id,
        name: client.name,
        identity: client.identity,
        resource: grant.resource.as_str().to_owned(),
    }
}

/// The distinct display hosts of redirect URIs, in their order.
fn redirect_hosts(uris: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for uri in uris {
        if let Some(verified) = match_redirect_uri([uri.as_str()], uri) {
            let host = verified.display_host();
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::resource::ResourceUri;
    use crate::oauth::scope::ScopeSet;

    #[test]
    fn redirect_hosts_are_distinct_and_ordered() {
        let uris = [
            "https://claude.ai/api/mcp/auth_callback".to_owned(),
            "https://chatgpt.com/connector/oauth/abc".to_owned(),
            "https://claude.ai/other".to_owned(),
        ];
        assert_eq!(redirect_hosts(&uris), ["claude.ai", "chatgpt.com"]);
    }

    #[test]
    fn last_use_is_the_latest_of_login_and_token() {
        let grant = GrantRow {
            grant_id: "grt_1".parse().unwrap(),
            user_id: "usr_1".parse().unwrap(),
            client_id: "c".parse().unwrap(),
            resource: ResourceUri::from_stored("https://mcp.example.com/mcp".into()),
            scope: ScopeSet::from_stored("mcp  offline_access"),
            upstream_tokens: None,
            upstream_expires_at: None,
            created_at: 100,
            updated_at: 200,
            revoked_at: None,
            refresh_lease_until: None,
        };
        let client = || DescribedClient {
            name: "App".into(),
            identity: AppIdentity::SelfRegistered,
            redirect_uris: Vec::new(),
        };
        let app = app_of(grant.clone(), client(), Some(300));
        assert_eq!((app.first_authorized_at, app.last_used_at), (100, 300));
        assert_eq!(app.scopes, ["mcp", "offline_access"]);
        assert_eq!(app_of(grant.clone(), client(), Some(150)).last_used_at, 200);
        assert_eq!(app_of(grant, client(), None).last_used_at, 200);
    }
}
