//! What the admin API's client and audit operations accept and return (`http::admin`).

use poem_openapi::Object;
use serde_json::Value;

use crate::clients::admin::ClientView;

#[derive(Debug, Object)]
pub struct CreateClientRequest {
    /// A chosen client id (e.g. for a host configured with a static id); generated when absent.
    pub client_id: Option<String>,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    /// `none` (public), `client_secret_basic` (the default) or `client_secret_post`.
    pub token_endpoint_auth_method: Option<String>,
}

#[derive(Debug, Object)]
pub struct CreatedClient {
    pub client: ClientView,
    /// The client secret, shown only here. Absent for public clients.
    #[oai(skip_serializing_if_is_none)]
    pub client_secret: Option<String>,
}

#[derive(Debug, Object)]
pub struct UpdateClientRequest {
    pub client_name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    /// A disabled client cannot log users in or obtain tokens. Disabling revokes its grants and
    /// every token issued in them; enabling it again brings none back.
    pub disabled: Option<bool>,
}

#[derive(Debug, Object)]
pub struct ResourceServerRequest {
    /// A configured resource's URI.
    pub resource: String,
}

#[derive(Debug, Object)]
pub struct ClientPage {
    pub clients: Vec<ClientView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct ClientSecret {
    /// The new secret, shown only here.
    pub client_secret: String,
}

#[derive(Debug, Object)]
pub struct AuditEntry {
    pub id: i32,
    /// Unix seconds.
    pub at: i64,
    /// Who made the change: the name of the admin token used, `cli`, `registrant` (a client
    /// through RFC 7591/7592), `client` (at the token or revocation endpoint), `user` (a
    /// login), `upstream` (its webhook, or a refusal of the user's upstream token), `reaper`,
    /// `housekeeping` or `server`.
    pub actor: String,
    pub action: String,
    pub client_id: Option<crate::ids::ClientId>,
    /// The address of the request that made the change, when a request made it.
    pub source_address: Option<String>,
    /// What changed: `before` and `after` summaries. Never a secret.
    pub summary: Value,
}

#[derive(Debug, Object)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for older entries; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_before: Option<i32>,
}
