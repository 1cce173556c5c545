//! Upstream calls: a count by endpoint and outcome and a latency histogram by endpoint, taken by
//! wrapping the provider, so every call is measured whoever makes it.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use metrics::{Counter, Histogram};

use super::{Metrics, Registrar};
use crate::upstream::{AuthorizationRedirect, UpstreamError, UpstreamProvider, UpstreamTokens};

#[derive(Debug, Clone, Copy)]
pub(super) enum Endpoint {
    CodeExchange,
    Refresh,
    Revoke,
}

pub(super) const ENDPOINTS: [Endpoint; 3] =
    [Endpoint::CodeExchange, Endpoint::Refresh, Endpoint::Revoke];
const OUTCOMES: [&str; 4] = ["ok", "refused", "unavailable", "malformed"];

impl Endpoint {
    pub(super) fn label(self) -> &'static str {
        match self {
            Endpoint::CodeExchange => "code_exchange",
            Endpoint::Refresh => "refresh",
            Endpoint::Revoke => "revoke",
        }
    }
}

fn outcome_index<T>(result: &Result<T, UpstreamError>) -> usize {
    match result {
        Ok(_) => 0,
        Err(UpstreamError::Refused { .. }) => 1,
        Err(UpstreamError::Unavailable(_)) => 2,
        Err(UpstreamError::Malformed(_)) => 3,
    }
}

pub(super) struct UpstreamMetrics {
    /// By endpoint × outcome.
    requests: [[Counter; 4]; 3],
    durations: [Histogram; 3],
    /// By outcome.
    refreshes: [Counter; 4],
}

impl UpstreamMetrics {
    pub(super) fn new(r: &Registrar<'_>) -> Self {
        Self {
            requests: ENDPOINTS.map(|endpoint| {
                OUTCOMES.map(|outcome| {
                    r.counter(
                        "authbridge_upstream_requests_total",
                        &[
                            ("endpoint", endpoint.label().into()),
                            ("outcome", outcome.into()),
                        ],
                    )
                })
            }),
            durations: ENDPOINTS.map(|endpoint| {
                r.histogram(
                    "authbridge_upstream_request_duration_seconds",
                    &[("endpoint", endpoint.label().into())],
                )
            }),
            refreshes: OUTCOMES.map(|outcome| {
                r.counter(
                    "authbridge_upstream_refreshes_total",
                    &[("outcome", outcome.into())],
                )
            }),
        }
    }

    fn record<T>(&self, endpoint: Endpoint, started: Instant, result: &Result<T, UpstreamError>) {
        let outcome = outcome_index(result);
        self.requests[endpoint as usize][outcome].increment(1);
        self.durations[endpoint as usize].record(started.elapsed().as_secs_f64());
        if matches!(endpoint, Endpoint::Refresh) {
            self.refreshes[outcome].increment(1);
        }
    }
}

/// A provider whose calls are counted and timed.
pub struct MeteredUpstream {
    inner: Arc<dyn UpstreamProvider>,
    metrics: Arc<Metrics>,
}

impl MeteredUpstream {
    pub fn wrap(
        inner: Arc<dyn UpstreamProvider>,
        metrics: Arc<Metrics>,
    ) -> Arc<dyn UpstreamProvider> {
        Arc::new(Self { inner, metrics })
    }
}

#[async_trait]
impl UpstreamProvider for MeteredUpstream {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn uses_pkce(&self) -> bool {
        self.inner.uses_pkce()
    }

    fn authorization_url(&self, request: &AuthorizationRedirect<'_>) -> String {
        self.inner.authorization_url(request)
    }

    async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<UpstreamTokens, UpstreamError> {
        let started = Instant::now();
        let result = self
            .inner
            .exchange_code(code, redirect_uri, code_verifier)
            .await;
        self.metrics
            .upstream
            .record(Endpoint::CodeExchange, started, &result);
        if result.is_err() {
            self.metrics
                .recent_upstream_failure(Endpoint::CodeExchange as usize);
        }
        result
    }

    async fn refresh(&self, refresh_token: &str) -> Result<UpstreamTokens, UpstreamError> {
        let started = Instant::now();
        let result = self.inner.refresh(refresh_token).await;
        self.metrics
            .upstream
            .record(Endpoint::Refresh, started, &result);
        if result.is_err() {
            self.metrics
                .recent_upstream_failure(Endpoint::Refresh as usize);
        }
        result
    }

    async fn revoke(&self, access_token: &str) -> Result<(), UpstreamError> {
        let started = Instant::now();
        let result = self.inner.revoke(access_token).await;
        self.metrics
            .upstream
            .record(Endpoint::Revoke, started, &result);
        if result.is_err() {
            self.metrics
                .recent_upstream_failure(Endpoint::Revoke as usize);
        }
        result
    }
}
