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
use subtle::ConstantTimeEq;

use super::AppState;
use super::admin_types::{
    AdminClient, AuditEntry, AuditPage, ClientPage, ClientSecret, CreateClientRequest,
    CreatedClient, ResourceServerRequest, UpdateClientRequest,
};
use super::errors::{ErrorBody, error_body};
use crate::clients::admin::{AdminError, ClientChanges, NewClient};
use crate::store::clients::ClientFilter;
use crate::tokens::opaque;

#[derive(Tags)]
pub(super) enum AdminTags {
    /// Operator management of OAuth clients.
    AdminClients,
    /// What operators changed.
    AdminAudit,
}

/// A bearer admin token; the value is the token's configured name.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_admin_token")]
pub struct AdminToken(pub String);

async fn check_admin_token(request: &Request, bearer: Bearer) -> Option<String> {
    let state = request.data::<Arc<AppState>>()?;
    let presented = opaque::hash(&bearer.token);
    let mut found = None;
    // Every configured hash is compared, in constant time, whatever matched earlier.
    for token in &state.config.admin.tokens {
        let matches: bool = presented
            .as_bytes()
            .ct_eq(token.sha256.to_ascii_lowercase().as_bytes())
            .into();
        if matches {
            found = Some(token.name.clone());
        }
    }
    found
}

/// The error half of every admin response.
macro_rules! admin_errors {
    ($name:ident, $bad_request_handler:ident) => {
        /// Requests that fail before the handler: no valid admin token (401), or a body, path
        /// or query that does not parse (400).
        fn $bad_request_handler(error: poem::Error) -> $name {
            if error.status() == poem::http::StatusCode::UNAUTHORIZED {
                $name::Unauthorized(
                    error_body("invalid_token", "a valid admin bearer token is required"),
                    r#"Bearer error="invalid_token""#.into(),
                )
            } else {
                $name::BadRequest(error_body("invalid_request", error.to_string()))
            }
        }

        impl From<AdminError> for $name {
            fn from(error: AdminError) -> Self {
                match error {
                    AdminError::NotFound(_) => Self::NotFound(error_body("not_found", error.to_string())),
                    AdminError::Conflict(_) => Self::Conflict(error_body("conflict", error.to_string())),
                    AdminError::Invalid(message) => Self::BadRequest(error_body("invalid_request", message)),
                    AdminError::Store(error) => {
                        tracing::error!(%error, "admin request failed");
                        Self::ServerError(error_body("server_error", "the server could not complete the request"))
                    }
                }
            }
        }
    };
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_client_request")]
pub enum ClientResponse {
    #[oai(status = 200)]
    Ok(Json<AdminClient>),
    #[oai(status = 201)]
    Created(Json<CreatedClient>, #[oai(header = "Cache-Control")] String),
    #[oai(status = 204)]
    Deleted,
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `invalid_token`: no admin token, or an unknown one.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    #[oai(status = 500)]
    ServerError(Json<ErrorBody>),
}
admin_errors!(ClientResponse, bad_client_request);

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_list_request")]
pub enum ClientListResponse {
    #[oai(status = 200)]
    Ok(Json<ClientPage>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `invalid_token`: no admin token, or an unknown one.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    #[oai(status = 500)]
    ServerError(Json<ErrorBody>),
}
admin_errors!(ClientListResponse, bad_list_request);

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_secret_request")]
pub enum SecretResponse {
    #[oai(status = 200)]
    Ok(Json<ClientSecret>, #[oai(header = "Cache-Control")] String),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `invalid_token`: no admin token, or an unknown one.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    #[oai(status = 500)]
    ServerError(Json<ErrorBody>),
}
admin_errors!(SecretResponse, bad_secret_request);

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_audit_request")]
pub enum AuditResponse {
    #[oai(status = 200)]
    Ok(Json<AuditPage>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `invalid_token`: no admin token, or an unknown one.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    #[oai(status = 500)]
    ServerError(Json<ErrorBody>),
}
admin_errors!(AuditResponse, bad_audit_request);

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
    ) -> ClientResponse {
        let body = body.0;
        let new = NewClient {
            client_id: body.client_id,
            client_name: body.client_name,
            redirect_uris: body.redirect_uris,
            token_endpoint_auth_method: body.token_endpoint_auth_method,
        };
        match self.state.registry.admin_create(&token.0, new).await {
            Ok((client, client_secret)) => ClientResponse::Created(
                Json(CreatedClient {
                    client: client.into(),
                    client_secret,
                }),
                "no-store".into(),
            ),
            Err(error) => error.into(),
        }
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
    ) -> ClientListResponse {
        if let Some(kind) = kind.0.as_deref()
            && kind != "dynamic"
            && kind != "admin"
        {
            return ClientListResponse::BadRequest(error_body(
                "invalid_request",
                "kind must be dynamic or admin",
            ));
        }
        let filter = ClientFilter {
            kind: kind.0,
            name_contains: name.0,
            created_after: created_after.0,
            created_before: created_before.0,
            used_after: used_after.0,
            used_before: used_before.0,
            after_client_id: cursor.0,
            limit: limit.0.unwrap_or(50),
        };
        match self.state.registry.admin_list(filter).await {
            Ok((clients, next_cursor)) => ClientListResponse::Ok(Json(ClientPage {
                clients: clients.into_iter().map(Into::into).collect(),
                next_cursor,
            })),
            Err(error) => error.into(),
        }
    }

    /// Get one client.
    #[oai(
        path = "/clients/:client_id",
        method = "get",
        tag = "AdminTags::AdminClients"
    )]
    async fn get_client(&self, _token: AdminToken, client_id: Path<String>) -> ClientResponse {
        match self.state.registry.admin_get(&client_id).await {
            Ok(client) => ClientResponse::Ok(Json(client.into())),
            Err(error) => error.into(),
        }
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
    ) -> ClientResponse {
        let changes = ClientChanges {
            client_name: body.0.client_name,
            redirect_uris: body.0.redirect_uris,
            disabled: body.0.disabled,
        };
        match self
            .state
            .registry
            .admin_update(&token.0, &client_id, changes)
            .await
        {
            Ok(client) => ClientResponse::Ok(Json(client.into())),
            Err(error) => error.into(),
        }
    }

    /// Delete a client. It is unusable at once.
    #[oai(
        path = "/clients/:client_id",
        method = "delete",
        tag = "AdminTags::AdminClients"
    )]
    async fn delete_client(&self, token: AdminToken, client_id: Path<String>) -> ClientResponse {
        match self.state.registry.admin_delete(&token.0, &client_id).await {
            Ok(()) => ClientResponse::Deleted,
            Err(error) => error.into(),
        }
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
    ) -> ClientResponse {
        let configured: Vec<String> = self
            .state
            .resources
            .iter()
            .map(|r| r.uri.as_str().to_owned())
            .collect();
        match self
            .state
            .registry
            .admin_set_resource_server(&token.0, &client_id, Some(&body.0.resource), &configured)
            .await
        {
            Ok(client) => ClientResponse::Ok(Json(client.into())),
            Err(error) => error.into(),
        }
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
    ) -> ClientResponse {
        match self
            .state
            .registry
            .admin_set_resource_server(&token.0, &client_id, None, &[])
            .await
        {
            Ok(client) => ClientResponse::Ok(Json(client.into())),
            Err(error) => error.into(),
        }
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
    ) -> ClientResponse {
        match self
            .state
            .registry
            .admin_revoke_client_tokens(&token.0, &client_id)
            .await
        {
            Ok(()) => ClientResponse::Deleted,
            Err(error) => error.into(),
        }
    }

    /// Replace a confidential client's secret. The new secret is in this response only.
    #[oai(
        path = "/clients/:client_id/secret",
        method = "post",
        tag = "AdminTags::AdminClients"
    )]
    async fn rotate_secret(&self, token: AdminToken, client_id: Path<String>) -> SecretResponse {
        match self
            .state
            .registry
            .admin_rotate_secret(&token.0, &client_id)
            .await
        {
            Ok(client_secret) => {
                SecretResponse::Ok(Json(ClientSecret { client_secret }), "no-store".into())
            }
            Err(error) => error.into(),
        }
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
    ) -> AuditResponse {
        let limit = limit.0.unwrap_or(50);
        match self.state.registry.admin_audit(before.0, limit).await {
            Ok(rows) => {
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
                        summary: serde_json::from_str(&r.summary).unwrap_or(Value::Null),
                    })
                    .collect();
                AuditResponse::Ok(Json(AuditPage {
                    entries,
                    next_before,
                }))
            }
            Err(error) => error.into(),
        }
    }
}
