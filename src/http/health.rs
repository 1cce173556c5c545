//! Liveness and readiness probes.

use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::AppState;

#[derive(Tags)]
enum HealthTags {
    /// Probes for orchestrators and load balancers.
    Health,
}

#[derive(Debug, Object)]
pub struct HealthStatus {
    /// `ok`, `ready` or `unavailable`.
    pub status: String,
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// The database answers.
    #[oai(status = 200)]
    Ready(Json<HealthStatus>),
    /// The database does not answer.
    #[oai(status = 503)]
    Unavailable(Json<HealthStatus>),
}

pub struct HealthApi {
    pub state: Arc<AppState>,
}

#[OpenApi(tag = "HealthTags::Health")]
impl HealthApi {
    /// The process is alive.
    #[oai(path = "/healthz", method = "get")]
    async fn healthz(&self) -> Json<HealthStatus> {
        Json(HealthStatus {
            status: "ok".into(),
        })
    }

    /// The server can serve requests: its database answers.
    #[oai(path = "/readyz", method = "get")]
    async fn readyz(&self) -> ReadyResponse {
        match self.state.store.ping().await {
            Ok(()) => ReadyResponse::Ready(Json(HealthStatus {
                status: "ready".into(),
            })),
            Err(error) => {
                tracing::warn!(%error, "readiness check failed");
                ReadyResponse::Unavailable(Json(HealthStatus {
                    status: "unavailable".into(),
                }))
            }
        }
    }
}
