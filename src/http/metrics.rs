//! `GET /metrics`: the Prometheus exposition, on a listener of its own or on the main listener
//! behind a bearer token (`[metrics]` in the configuration), and the middleware that counts
//! every request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::Data;
use poem::{Endpoint, Middleware, Request, Response, handler};
use subtle::ConstantTimeEq;

use super::AppState;
use super::errors::json_error;
use crate::monitoring::{Metrics, Snapshot};
use crate::store::counters::DYNAMIC_CLIENTS;
use crate::tokens::opaque;

/// The content type of the Prometheus text format.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The longest a scrape waits for a database connection to measure the wait.
const ACQUIRE_PROBE_LIMIT: Duration = Duration::from_secs(2);

/// The exposition, without authentication (the separate listener).
#[handler]
pub async fn metrics_open(Data(state): Data<&Arc<AppState>>) -> Response {
    exposition(state).await
}

/// The exposition on the main listener: only for the configured bearer token.
#[handler]
pub async fn metrics_with_token(request: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let Some(expected) = &state.metrics_token_sha256 else {
        return json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "metrics are not served here",
        );
    };
    if !bearer_matches(request, expected) {
        let mut response = json_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "a valid metrics bearer token is required",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="authbridge metrics""#),
        );
        return response;
    }
    exposition(state).await
}

/// Whether the request carries `Authorization: Bearer <token>` whose SHA-256 is `expected`,
/// compared in constant time.
fn bearer_matches(request: &Request, expected: &str) -> bool {
    let Some(token) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    opaque::hash(token.trim())
        .as_bytes()
        .ct_eq(expected.as_bytes())
        .into()
}

async fn exposition(state: &AppState) -> Response {
    let snapshot = snapshot(state).await;
    Response::builder()
        .status(StatusCode::OK)
        .content_type(EXPOSITION)
        .header(header::CACHE_CONTROL, "no-store")
        .body(state.metrics.render(&snapshot))
}

/// The values read at scrape time.
async fn snapshot(state: &AppState) -> Snapshot {
    let pool = state.store.pool_status();
    let acquire = state.store.probe_acquire(ACQUIRE_PROBE_LIMIT).await;
    let now = state.clock.now();
    let active_key_age_seconds = state
        .keys
        .summaries()
        .into_iter()
        .filter(|key| key.state == "active")
        .map(|key| (now - key.created_at).max(0) as f64)
        .next();
    let dynamic_clients = match state.store.counter(DYNAMIC_CLIENTS).await {
        Ok(count) => count as f64,
        Err(error) => {
            tracing::warn!(%error, "could not read the dynamic client count for metrics");
            f64::NAN
        }
    };
    Snapshot {
        pool_in_use: f64::from(pool.in_use),
        pool_idle: f64::from(pool.idle),
        pool_max: f64::from(state.config.database.max_connections),
        pool_acquire_seconds: acquire.as_secs_f64(),
        active_key_age_seconds,
        dynamic_clients,
        dynamic_clients_max: state.config.registration.max_dynamic_clients as f64,
    }
}

/// Counts every request by route template, method and status, and times it.
pub struct RequestMetrics {
    pub metrics: Arc<Metrics>,
}

impl<E: Endpoint<Output = Response>> Middleware<E> for RequestMetrics {
    type Output = RequestMetricsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestMetricsEndpoint {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

pub struct RequestMetricsEndpoint<E> {
    inner: E,
    metrics: Arc<Metrics>,
}

impl<E: Endpoint<Output = Response>> Endpoint for RequestMetricsEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let started = Instant::now();
        // The path is matched after the answer, from the request's own URI: nothing is copied.
        let uri = request.uri().clone();
        let method = request.method().clone();
        let result = self.inner.call(request).await;
        let status = match &result {
            Ok(response) => response.status(),
            Err(error) => error.status(),
        };
        self.metrics.http.record(
            uri.path(),
            method.as_str(),
            status.as_u16(),
            started.elapsed(),
        );
        result
    }
}
