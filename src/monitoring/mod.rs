//! Prometheus metrics: what the server counts, and the text exposition of it.
//!
//! Every series is registered with this server's own recorder (never the process-wide one, so
//! that several servers in one process, as in the tests, count apart) and its handle kept, so
//! the hot path is an atomic increment on a handle looked up by index: no lock, no map lookup,
//! no label built per request. Label values come from fixed lists (route templates, grant
//! types, reasons); never a client id, a user id or a raw path. Values that are cheaper to read
//! than to track (the database pool, the signing key's age, the dynamic client count) are read
//! when `/metrics` is scraped.

mod http;
pub mod recent;
mod upstream;

use std::sync::Arc;

use metrics::{
    Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub use http::{HttpMetrics, RouteTable};
pub use upstream::MeteredUpstream;

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The system's time, for the recent window (the metrics know no [`crate::clock::Clock`]; the
/// window only needs the hour).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Histogram buckets for request latencies, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The grant types of the token endpoint, as label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    TokenExchange,
}

impl GrantType {
    const ALL: [GrantType; 3] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::TokenExchange,
    ];

    fn label(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::TokenExchange => "token_exchange",
        }
    }
}

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationRefusal {
    InvalidMetadata,
    InvalidToken,
    RateLimited,
    CapReached,
    ServerError,
}

impl RegistrationRefusal {
    const ALL: [RegistrationRefusal; 5] = [
        RegistrationRefusal::InvalidMetadata,
        RegistrationRefusal::InvalidToken,
        RegistrationRefusal::RateLimited,
        RegistrationRefusal::CapReached,
        RegistrationRefusal::ServerError,
    ];

    fn label(self) -> &'static str {
        match self {
            RegistrationRefusal::InvalidMetadata => "invalid_metadata",
            RegistrationRefusal::InvalidToken => "invalid_token",
            RegistrationRefusal::RateLimited => "rate_limited",
            RegistrationRefusal::CapReached => "cap_reached",
            RegistrationRefusal::ServerError => "server_error",
        }
    }
}

/// Why a login failed after the user was sent upstream (or on the way back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// The callback's state is unknown, used, expired or from another browser.
    InvalidState,
    /// The upstream reported an error on the callback (the user cancelled, …).
    UpstreamDenied,
    /// The upstream could not be reached or answered 5xx during the code exchange.
    UpstreamUnavailable,
    /// The upstream refused the code exchange.
    UpstreamRefused,
    /// The upstream's answer was unusable (no token, no user).
    UpstreamMalformed,
    /// Our own storage or vault failed.
    ServerError,
}

impl LoginFailure {
    const ALL: [LoginFailure; 6] = [
        LoginFailure::InvalidState,
        LoginFailure::UpstreamDenied,
        LoginFailure::UpstreamUnavailable,
        LoginFailure::UpstreamRefused,
        LoginFailure::UpstreamMalformed,
        LoginFailure::ServerError,
    ];

    fn label(self) -> &'static str {
        match self {
            LoginFailure::InvalidState => "invalid_state",
            LoginFailure::UpstreamDenied => "upstream_denied",
            LoginFailure::UpstreamUnavailable => "upstream_unavailable",
            LoginFailure::UpstreamRefused => "upstream_refused",
            LoginFailure::UpstreamMalformed => "upstream_malformed",
            LoginFailure::ServerError => "server_error",
        }
    }
}

/// Values read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub pool_in_use: f64,
    pub pool_idle: f64,
    pub pool_max: f64,
    /// How long the scrape waited for a database connection.
    pub pool_acquire_seconds: f64,
    /// Seconds since the signing key that signs now was created; absent when none signs.
    pub active_key_age_seconds: Option<f64>,
    pub dynamic_clients: f64,
    pub dynamic_clients_max: f64,
}

/// This server's metrics.
pub struct Metrics {
    handle: PrometheusHandle,
    pub http: HttpMetrics,
    tokens_issued: [Counter; 3],
    token_exchanges: [Counter; 2],
    refresh_reuse: Counter,
    refresh_grace_replays: Counter,
    registrations_created: Counter,
    registrations_deduplicated: Counter,
    registrations_refused: [Counter; 5],
    logins_started: Counter,
    logins_completed: Counter,
    logins_failed: [Counter; 6],
    upstream: upstream::UpstreamMetrics,
    pool_in_use: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
    pool_acquire: Gauge,
    key_age: Gauge,
    dynamic_clients: Gauge,
    dynamic_clients_max: Gauge,
    /// The last 24 hours of tokens issued, failed logins and failed upstream calls.
    recent: recent::RecentWindow,
}

impl Metrics {
    /// Registers every series of a server whose routes are `routes`.
    pub fn new(routes: RouteTable) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("the latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let recorder = Arc::new(recorder);
        let r = Registrar(&recorder);
        r.describe_all();
        let build = r.gauge(
            "authbridge_build_info",
            &[(
                "version",
                SharedString::const_str(env!("CARGO_PKG_VERSION")),
            )],
        );
        build.set(1.0);
        Self {
            http: HttpMetrics::new(recorder.clone(), routes),
            tokens_issued: GrantType::ALL.map(|g| {
                r.counter(
                    "authbridge_tokens_issued_total",
                    &[("grant_type", g.label().into())],
                )
            }),
            token_exchanges: ["issued", "refused"].map(|outcome| {
                r.counter(
                    "authbridge_token_exchanges_total",
                    &[("outcome", outcome.into())],
                )
            }),
            refresh_reuse: r.counter("authbridge_refresh_token_reuse_detected_total", &[]),
            refresh_grace_replays: r.counter("authbridge_refresh_token_grace_replays_total", &[]),
            registrations_created: r.counter(
                "authbridge_registrations_total",
                &[("outcome", "created".into())],
            ),
            registrations_deduplicated: r.counter(
                "authbridge_registrations_total",
                &[("outcome", "deduplicated".into())],
            ),
            registrations_refused: RegistrationRefusal::ALL.map(|reason| {
                r.counter(
                    "authbridge_registrations_refused_total",
                    &[("reason", reason.label().into())],
                )
            }),
            logins_started: r.counter("authbridge_logins_started_total", &[]),
            logins_completed: r.counter("authbridge_logins_completed_total", &[]),
            logins_failed: LoginFailure::ALL.map(|reason| {
                r.counter(
                    "authbridge_logins_failed_total",
                    &[("reason", reason.label().into())],
                )
            }),
            upstream: upstream::UpstreamMetrics::new(&r),
            pool_in_use: r.gauge(
                "authbridge_db_pool_connections",
                &[("state", "in_use".into())],
            ),
            pool_idle: r.gauge(
                "authbridge_db_pool_connections",
                &[("state", "idle".into())],
            ),
            pool_max: r.gauge("authbridge_db_pool_max_connections", &[]),
            pool_acquire: r.gauge("authbridge_db_pool_acquire_seconds", &[]),
            key_age: r.gauge("authbridge_signing_key_age_seconds", &[]),
            dynamic_clients: r.gauge("authbridge_dynamic_clients", &[]),
            dynamic_clients_max: r.gauge("authbridge_dynamic_clients_max", &[]),
            recent: recent::RecentWindow::default(),
            handle,
        }
    }

    pub fn token_issued(&self, grant: GrantType) {
        self.tokens_issued[grant as usize].increment(1);
        self.recent
            .record(recent::RecentEvent::TokenIssued, unix_now());
    }

    fn recent_upstream_failure(&self, endpoint: usize) {
        self.recent
            .record(recent::RecentEvent::UpstreamFailed(endpoint), unix_now());
    }

    /// Tokens issued, failed logins by reason and failed upstream calls by endpoint, in the
    /// last 24 hours, on this instance.
    pub fn recent(&self) -> recent::RecentCounts {
        self.recent.counts(
            unix_now(),
            LoginFailure::ALL.map(LoginFailure::label),
            upstream::ENDPOINTS.map(upstream::Endpoint::label),
        )
    }

    /// A token exchange (RFC 8693) answered with the user's upstream token, or refused.
    pub fn token_exchange(&self, issued: bool) {
        self.token_exchanges[usize::from(!issued)].increment(1);
    }

    pub fn refresh_reuse_detected(&self) {
        self.refresh_reuse.increment(1);
    }

    pub fn refresh_grace_replay(&self) {
        self.refresh_grace_replays.increment(1);
    }

    /// A registration that made a client (`created`) or returned an identical recent one.
    pub fn registration(&self, created: bool) {
        if created {
            self.registrations_created.increment(1);
        } else {
            self.registrations_deduplicated.increment(1);
        }
    }

    pub fn registration_refused(&self, reason: RegistrationRefusal) {
        self.registrations_refused[reason as usize].increment(1);
    }

    pub fn login_started(&self) {
        self.logins_started.increment(1);
    }

    pub fn login_completed(&self) {
        self.logins_completed.increment(1);
    }

    pub fn login_failed(&self, reason: LoginFailure) {
        self.logins_failed[reason as usize].increment(1);
        self.recent.record(
            recent::RecentEvent::LoginFailed(reason as usize),
            unix_now(),
        );
    }

    /// Moves the latency samples recorded since the last call into their histograms' buckets.
    /// Until then each sample is held on its own (recording one is a lock-free append), so this
    /// must run regularly whether or not anyone scrapes.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The exposition in the Prometheus text format (version 0.0.4), after setting the values
    /// read at scrape time.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        self.pool_in_use.set(snapshot.pool_in_use);
        self.pool_idle.set(snapshot.pool_idle);
        self.pool_max.set(snapshot.pool_max);
        self.pool_acquire.set(snapshot.pool_acquire_seconds);
        // No key signs (all are still waiting to activate): the age is 0, not stale.
        self.key_age
            .set(snapshot.active_key_age_seconds.unwrap_or(0.0));
        self.dynamic_clients.set(snapshot.dynamic_clients);
        self.dynamic_clients_max.set(snapshot.dynamic_clients_max);
        self.handle.render()
    }
}

/// Registers series on one recorder.
struct Registrar<'a>(&'a PrometheusRecorder);

impl Registrar<'_> {
    fn key(name: &'static str, labels: &[(&'static str, SharedString)]) -> Key {
        let labels: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label::new(*k, v.clone()))
            .collect();
        Key::from_parts(name, labels)
    }

    fn counter(&self, name: &'static str, labels: &[(&'static str, SharedString)]) -> Counter {
        self.0.register_counter(&Self::key(name, labels), &METADATA)
    }

    fn gauge(&self, name: &'static str, labels: &[(&'static str, SharedString)]) -> Gauge {
        self.0.register_gauge(&Self::key(name, labels), &METADATA)
    }

    fn histogram(&self, name: &'static str, labels: &[(&'static str, SharedString)]) -> Histogram {
        self.0
            .register_histogram(&Self::key(name, labels), &METADATA)
    }

    fn describe_all(&self) {
        use Unit::{Count, Seconds};
        let counters: [(&'static str, &'static str); 11] = [
            (
                "authbridge_http_requests_total",
                "HTTP requests by route template, method and status.",
            ),
            (
                "authbridge_tokens_issued_total",
                "Token responses issued by the token endpoint, by grant type.",
            ),
            (
                "authbridge_token_exchanges_total",
                "RFC 8693 token exchanges, issued or refused.",
            ),
            (
                "authbridge_refresh_token_reuse_detected_total",
                "Rotated refresh tokens presented again after the grace window: the family was revoked.",
            ),
            (
                "authbridge_refresh_token_grace_replays_total",
                "Rotated refresh tokens presented again within the grace window.",
            ),
            (
                "authbridge_registrations_total",
                "Dynamic client registrations that made a client or returned an identical recent one.",
            ),
            (
                "authbridge_registrations_refused_total",
                "Dynamic client registrations refused, by reason.",
            ),
            (
                "authbridge_logins_started_total",
                "Users sent to the upstream to log in.",
            ),
            (
                "authbridge_logins_completed_total",
                "Logins completed: the upstream identified the user and a code was issued.",
            ),
            (
                "authbridge_logins_failed_total",
                "Logins that failed on the way back from the upstream, by reason.",
            ),
            (
                "authbridge_upstream_requests_total",
                "Calls to the upstream by endpoint and outcome.",
            ),
        ];
        for (name, help) in counters {
            self.0
                .describe_counter(name.into(), Some(Count), help.into());
        }
        self.0.describe_counter(
            "authbridge_upstream_refreshes_total".into(),
            Some(Count),
            "Upstream token refreshes (before a token exchange), by outcome.".into(),
        );
        for (name, help) in [
            (
                "authbridge_http_request_duration_seconds",
                "Time to answer an HTTP request, by route template.",
            ),
            (
                "authbridge_upstream_request_duration_seconds",
                "Time of a call to the upstream, by endpoint.",
            ),
        ] {
            self.0
                .describe_histogram(name.into(), Some(Seconds), help.into());
        }
        let gauges: [(&'static str, Option<Unit>, &'static str); 7] = [
            (
                "authbridge_build_info",
                None,
                "The running version (always 1).",
            ),
            (
                "authbridge_db_pool_connections",
                Some(Count),
                "Database connections of this instance's pool, in use or idle.",
            ),
            (
                "authbridge_db_pool_max_connections",
                Some(Count),
                "The pool's configured maximum (database.max_connections).",
            ),
            (
                "authbridge_db_pool_acquire_seconds",
                Some(Seconds),
                "How long the last scrape waited to acquire a database connection (a probe: sqlx does not expose the wait of other queries).",
            ),
            (
                "authbridge_signing_key_age_seconds",
                Some(Seconds),
                "Age of the signing key that signs now.",
            ),
            (
                "authbridge_dynamic_clients",
                Some(Count),
                "Live dynamically registered clients.",
            ),
            (
                "authbridge_dynamic_clients_max",
                Some(Count),
                "The cap on dynamic clients (registration.max_dynamic_clients).",
            ),
        ];
        for (name, unit, help) in gauges {
            self.0.describe_gauge(name.into(), unit, help.into());
        }
    }
}
