//! The admin API's per-client access-token lifetime: for a host that never refreshes, its
//! client's tokens may live longer than the default (up to `tokens.max_access_token_ttl_secs`).

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::AppState;
use super::admin::{AdminIdentity, AdminTags, AdminToken};
use super::admin_response::AdminResult;
use crate::clients::admin::{ClientView, named_client_id};
use crate::ids::ClientId;

pub struct AdminLifetimesApi {
    pub state: Arc<AppState>,
}

#[derive(Debug, Object)]
pub struct AccessTokenLifetimeRequest {
    /// Seconds, from 60 to `tokens.max_access_token_ttl_secs`. A JWT is verified offline and
    /// lives until it expires: revoking the grant stops it at once only for resource servers
    /// that introspect or sit behind the gateway.
    pub access_token_ttl_secs: i64,
}

#[OpenApi(prefix_path = "/admin/v1")]
impl AdminLifetimesApi {
    /// Give a client its own access-token lifetime. It wins over `[[token_lifetimes]]` and
    /// `tokens.access_token_ttl_secs` from the client's next code exchange or refresh.
    #[oai(
        path = "/clients/:client_id/access-token-lifetime",
        method = "put",
        tag = "AdminTags::AdminClients"
    )]
    async fn set_access_token_lifetime(
        &self,
        token: AdminToken,
        client_id: Path<String>,
        body: Json<AccessTokenLifetimeRequest>,
    ) -> AdminResult<Json<ClientView>> {
        let client_id = match named_client_id(&client_id) {
            Ok(client_id) => client_id,
            Err(error) => return Err::<Json<ClientView>, _>(error).into(),
        };
        self.set(&token.0, &client_id, Some(body.0.access_token_ttl_secs))
            .await
    }

    /// Take a client's own access-token lifetime away: the configured one applies again.
    #[oai(
        path = "/clients/:client_id/access-token-lifetime",
        method = "delete",
        tag = "AdminTags::AdminClients"
    )]
    async fn clear_access_token_lifetime(
        &self,
        token: AdminToken,
        client_id: Path<String>,
    ) -> AdminResult<Json<ClientView>> {
        let client_id = match named_client_id(&client_id) {
            Ok(client_id) => client_id,
            Err(error) => return Err::<Json<ClientView>, _>(error).into(),
        };
        self.set(&token.0, &client_id, None).await
    }
}

impl AdminLifetimesApi {
    async fn set(
        &self,
        actor: &AdminIdentity,
        client_id: &ClientId,
        secs: Option<i64>,
    ) -> AdminResult<Json<ClientView>> {
        let max = self.state.tokens.lifetimes.max_secs();
        let client = self
            .state
            .registry
            .admin_set_access_token_ttl(actor, client_id, secs, max)
            .await;
        client.map(Json).into()
    }
}
