//! The admin API under `/admin/v1/`: client management and the audit trail. Authenticated
//! with bearer tokens whose SHA-256 hashes are configured (`admin.tokens`); the token's name is
//! recorded with every change.

use std::sync::Arc;

use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, SecurityScheme, Tags};
use serde_json::Value;

use super::AppState;
use super::admin_response::{AdminFailure, AdminResult, NoContent};
use super::admin_types::{
    AuditEntry, AuditPage, ClientPage, ClientSecret, CreateClientRequest, CreatedClient,
    ResourceServerRequest, UpdateClientRequest,
};
use super::registration::request_address;
use crate::clients::admin::{ClientChanges, ClientView, NewClient, named_client_id};
use crate::sessions::operators::admin_token_holder;
use crate::store::audit::Actor;
use crate::store::clients::{ClientFilter, ClientKind};

#[derive(Tags)]
pub(super) enum AdminTags {
    /// Operator management of OAuth clients.
    AdminClients,
    /// What operators changed.
    AdminAudit,
}

/// A bearer admin token, listed by its SHA-256 in `admin.tokens`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_admin_token")]
pub struct AdminToken(pub AdminIdentity);

/// The holder of an admin token (its configured name) and the request's source address, as
/// the audit trail records them.
#[derive(Debug, Clone)]
pub struct AdminIdentity {
    pub name: String,
    pub source: Option<String>,
}

impl<'a> From<&'a AdminIdentity> for Actor<'a> {
    fn from(identity: &'a AdminIdentity) -> Self {
        Actor {
            name: &identity.name,
            source: identity.source.as_deref(),
        }
    }
}

async fn check_admin_token(request: &Request, bearer: Bearer) -> Option<AdminIdentity> {
    let state = request.data::<Arc<AppState>>()?;
    let name = admin_token_name(state, &bearer)?;
    Some(AdminIdentity {
        name,
        source: request_address(request, state.config.registration.trust_forwarded_for),
    })
}

fn admin_token_name(state: &AppState, bearer: &Bearer) -> Option<String> {
    admin_token_holder(&state.config.admin.tokens, &bearer.token)
}

/// A created client; its secret is in this response only, so no cache may keep it.
#[derive(ApiResponse)]
pub enum ClientCreated {
    #[oai(status = 201)]
    Created(Json<CreatedClient>, #[oai(header = "Cache-Control")] String),
}

/// A new client secret, in this response only, so no cache may keep it.
#[derive(ApiResponse)]
pub enum SecretIssued {
    #[oai(status = 200)]
    Issued(Json<ClientSecret>, #[oai(header = "Cache-Control")] String),
}

pub struct AdminApi {
    pub state: Arc<AppState>,
}

#[OpenApi(prefix_path = "/admin/v1")]
impl AdminApi {
    /// Create a client. Its secret (for a confidential client) is in this response only.
    #[oai(path = "/clients", method = "post", tag = "AdminTags::AdminClients")]
    async fn create_client(
        &self,
        token: AdminToken,
        body: Json<CreateClientRequest>,
    ) -> AdminResult<ClientCreated> {
        let body = body.0;
        let new = NewClient {
            client_id: body.client_id,
            client_name: body.client_name,
            redirect_uris: body.redirect_uris,
            token_endpoint_auth_method: body.token_endpoint_auth_method,
        };
        let created = self.state.registry.admin_create(&token.0, new).await;
        created
            .map(|(client, client_secret)| {
                let body = CreatedClient {
                    client,
                    client_secret,
                };
                ClientCreated::Created(Json(body), "no-store".into())
            })
            .into()
    }

    /// List clients, ordered by client id, with optional filters.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/clients", method = "get", tag = "AdminTags::AdminClients")]
    async fn list_clients(
        &self,
        _token: AdminToken,
        /// `dynamic` or `admin`.
        kind: Query<Option<String>>,
        /// Case-insensitive part of the client name.
        name: Query<Option<String>>,
        /// Created at or after (Unix seconds).
        created_after: Query<Option<i64>>,
        /// Created before (Unix seconds).
        created_before: Query<Option<i64>>,
        /// Last used at or after (Unix seconds).
        used_after: Query<Option<i64>>,
        /// Last used before (Unix seconds).
        used_before: Query<Option<i64>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> AdminResult<Json<ClientPage>> {
        let kind = match kind.0.as_deref().map(str::parse::<ClientKind>).transpose() {
            Ok(kind) => kind,
            Err(error) => return AdminResult(Err(AdminFailure::bad_request(error.to_string()))),
        };
        let filter = ClientFilter {
            kind,
            name_contains: name.0,
            created_after: created_after.0,
            created_before: created_before.0,
            used_after: used_after.0,
            used_before: used_before.0,
            after_client_id: cursor.0,
            limit: limit.0.unwrap_or(50),
            search: None,
        };
        let listed = self.state.registry.admin_list(filter).await;
        listed
            .map(|(clients, next_cursor)| {
                Json(ClientPage {
                    clients,
                    next_cursor,
                })
            })
            .into()
    }

    /// Get one client.
    #[oai(
        path = "/clients/:client_id",
        method = "get",
        tag = "AdminTags::AdminClients"
    )]
    async fn get_client(
        &self,
        _token: AdminToken,
        client_id: Path<String>,
    ) -> AdminResult<Json<ClientView>> {
        let client = match named_client_id(&client_id) {
            Ok(client_id) => self.state.registry.admin_get(&client_id).await,
            Err(error) => Err(error),
        };
        client.map(Json).into()
    }

    /// Change a client's name, redirect URIs or disabled flag.
    #[oai(
        path = "/clients/:client_id",
        method = "patch",
        tag = "AdminTags::AdminClients"
    )]
    async fn update_client(
        &self,
        token: AdminToken,
        client_id: Path<String>,
        body: Json<UpdateClientRequest>,
    ) -> AdminResult<Json<ClientView>> {
        let changes = ClientChanges {
            client_name: body.0.client_name,
            redirect_uris: body.0.redirect_uris,
            disabled: body.0.disabled,
        };
        let client = match named_client_id(&client_id) {
            Ok(client_id) => {
                self.state
                    .registry
                    .admin_update(&token.0, &client_id, changes)
                    .await
            }
            Err(error) => Err(error),
        };
        client.map(Json).into()
    }

    /// Delete a client. It is unusable at once.
    #[oai(
        path = "/clients/:client_id",
        method = "delete",
        tag = "AdminTags::AdminClients"
    )]
    async fn delete_client(
        &self,
        token: AdminToken,
        client_id: Path<String>,
    ) -> AdminResult<NoContent> {
        let deleted = match named_client_id(&client_id) {
            Ok(client_id) => self.state.registry.admin_delete(&token.0, &client_id).await,
            Err(error) => Err(error),
        };
        deleted.map(|()| NoContent::Done).into()
    }

    /// Mark a confidential client as the resource server of a configured resource: it may then
    /// exchange users' access tokens for their upstream tokens, and introspect tokens.
    #[oai(
        path = "/clients/:client_id/resource-server",
        method = "put",
        tag = "AdminTags::AdminClients"
    )]
    async fn mark_resource_server(
        &self,
        token: AdminToken,
        client_id: Path<String>,
        body: Json<ResourceServerRequest>,
    ) -> AdminResult<Json<ClientView>> {
        let configured: Vec<String> = self
            .state
            .resources
            .iter()
            .map(|r| r.uri.as_str().to_owned())
            .collect();
        let client = match named_client_id(&client_id) {
            Ok(client_id) => {
                self.state
                    .registry
                    .admin_set_resource_server(
                        &token.0,
                        &client_id,
                        Some(&body.0.resource),
                        &configured,
                    )
                    .await
            }
            Err(error) => Err(error),
        };
        client.map(Json).into()
    }

    /// Unmark a client as a resource server.
    #[oai(
        path = "/clients/:client_id/resource-server",
        method = "delete",
        tag = "AdminTags::AdminClients"
    )]
    async fn unmark_resource_server(
        &self,
        token: AdminToken,
        client_id: Path<String>,
    ) -> AdminResult<Json<ClientView>> {
        let client = match named_client_id(&client_id) {
            Ok(client_id) => {
                self.state
                    .registry
                    .admin_set_resource_server(&token.0, &client_id, None, &[])
                    .await
            }
            Err(error) => Err(error),
        };
        client.map(Json).into()
    }

    /// Revoke every grant of a client: its codes, refresh tokens and the access tokens issued
    /// with them. Its users log in again.
    #[oai(
        path = "/clients/:client_id/revoke-tokens",
        method = "post",
        tag = "AdminTags::AdminClients"
    )]
    async fn revoke_client_tokens(
        &self,
        token: AdminToken,
        client_id: Path<String>,
    ) -> AdminResult<NoContent> {
        let revoked = match named_client_id(&client_id) {
            Ok(client_id) => {
                self.state
                    .registry
                    .admin_revoke_client_tokens(&token.0, &client_id)
                    .await
            }
            Err(error) => Err(error),
        };
        revoked.map(|()| NoContent::Done).into()
    }

    /// Replace a confidential client's secret. The new secret is in this response only.
    #[oai(
        path = "/clients/:client_id/secret",
        method = "post",
        tag = "AdminTags::AdminClients"
    )]
    async fn rotate_secret(
        &self,
        token: AdminToken,
        client_id: Path<String>,
    ) -> AdminResult<SecretIssued> {
        let rotated = match named_client_id(&client_id) {
            Ok(client_id) => {
                self.state
                    .registry
                    .admin_rotate_secret(&token.0, &client_id)
                    .await
            }
            Err(error) => Err(error),
        };
        rotated
            .map(|client_secret| {
                SecretIssued::Issued(Json(ClientSecret { client_secret }), "no-store".into())
            })
            .into()
    }

    /// The audit trail, newest first.
    #[oai(path = "/audit", method = "get", tag = "AdminTags::AdminAudit")]
    async fn audit(
        &self,
        _token: AdminToken,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u64>>,
        /// `next_before` of the previous page.
        before: Query<Option<i32>>,
    ) -> AdminResult<Json<AuditPage>> {
        let limit = limit.0.unwrap_or(50);
        let listed = self.state.registry.admin_audit(before.0, limit).await;
        listed
            .map(|rows| {
                let next_before = (rows.len() as u64 == limit.clamp(1, 200))
                    .then(|| rows.last().map(|r| r.id))
                    .flatten();
                let entries = rows
                    .into_iter()
                    .map(|r| AuditEntry {
                        id: r.id,
                        at: r.at,
                        actor: r.actor,
                        action: r.action,
                        client_id: r.client_id,
                        source_address: r.source_address,
                        summary: serde_json::from_str(&r.summary).unwrap_or(Value::Null),
                    })
                    .collect();
                Json(AuditPage {
                    entries,
                    next_before,
                })
            })
            .into()
    }
}
