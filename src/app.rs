//! Builds the server from its parts. The only place that wires modules together.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::endpoint::BoxEndpoint;
use poem::{EndpointExt, IntoResponse, Route, get, post};
use poem_openapi::OpenApiService;
use tokio::task::JoinHandle;

use crate::bootstrap::{self, StartupError};
use crate::clock::Clock;
use crate::config::{Config, MetricsExposure};
use crate::gateway::{Gateway, GatewayRouter};
use crate::housekeeping::Housekeeping;
use crate::http::AppState;
use crate::http::admin::AdminApi;
use crate::http::admin_keys::AdminKeysApi;
use crate::http::admin_lifetimes::AdminLifetimesApi;
use crate::http::admin_users::AdminUsersApi;
use crate::http::authorize;
use crate::http::discovery::DiscoveryApi;
use crate::http::errors::JsonErrors;
use crate::http::health::HealthApi;
use crate::http::metrics::{self, RequestMetrics};
use crate::http::middleware::{
    AuthorizeSourceLimit, BodyLimit, PublicCors, RequestLog, StrictTransportSecurity,
};
use crate::http::oauth_api::OAuthApi;
use crate::http::registration::RegistrationApi;
use crate::http::server::{self, ServeOptions};
use crate::http::session;
use crate::http::{account, callback, consent, console, dev_upstream, webhook};
use crate::monitoring::{Metrics, RouteTable};
use crate::oauth::issuer::Issuer;
use crate::routes::{
    ACCOUNT_DISCONNECT_PATH, ACCOUNT_PATH, ACCOUNT_SIGN_IN_PATH, ACCOUNT_SIGN_OUT_PATH,
    AUTHORIZE_PATH, CALLBACK_PATH, CONSENT_PATH, CONSOLE_AUDIT_PATH, CONSOLE_CLIENT_ACTION_PATH,
    CONSOLE_CLIENT_PATH, CONSOLE_CLIENTS_PATH, CONSOLE_GRANT_REVOKE_PATH, CONSOLE_KEYS_PATH,
    CONSOLE_KEYS_ROTATE_PATH, CONSOLE_NEW_CLIENT_PATH, CONSOLE_PATH, CONSOLE_SIGN_IN_PATH,
    CONSOLE_SIGN_IN_TOKEN_PATH, CONSOLE_SIGN_IN_UPSTREAM_PATH, CONSOLE_SIGN_OUT_PATH,
    CONSOLE_USER_PATH, CONSOLE_USERS_PATH, DEV_AUTHORIZE_PATH, JWKS_PATH, METRICS_PATH,
    REGISTER_PATH, REVOKE_PATH, TOKEN_PATH, WEBHOOK_PATH,
};
use crate::tokens::keyring::SigningKeys;

/// A server bound to its port, ready to run.
pub struct Application {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    /// The separate listener of `/metrics`, when configured.
    metrics_listener: Option<(tokio::net::TcpListener, SocketAddr)>,
    state: Arc<AppState>,
    endpoint: BoxEndpoint<'static>,
    housekeeping: Arc<Housekeeping>,
}

impl Application {
    /// Binds the listener, then the start-up steps, in order: open and migrate the database,
    /// check the encryption key against it, load the signing keys (re-sealing them after a key
    /// rotation), re-wrap the grants' upstream tokens after a key rotation, load or create the
    /// cookie key, and assemble the login. Nothing is served until [`Application::run_until`].
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartupError> {
        config.validate()?;
        let (listener, local_addr) = bind(config.listen_addr()?, &config.server.listen)?;
        let exposure = config.metrics.exposure()?;
        let metrics_listener = match &exposure {
            MetricsExposure::Listener(addr) => Some(bind(*addr, &addr.to_string())?),
            _ => None,
        };
        let issuer = config.issuer(local_addr)?;

        let store = bootstrap::open_store(&config).await?;
        let vault = Arc::new(bootstrap::open_vault(&config)?);
        bootstrap::check_vault(&store, &vault, clock.now()).await?;
        let keys = Arc::new(
            bootstrap::load_signing_keys(&config, &store, vault.clone(), clock.clone()).await?,
        );
        bootstrap::rewrap_grant_tokens(&store, &vault).await?;
        let cookie_key = bootstrap::cookie_key(&store, &vault, clock.now()).await?;
        let login = bootstrap::login_parts(&config, &issuer, vault, cookie_key, clock.clone())?;

        let templates = route_templates(&issuer, login.dev.is_some(), &exposure);
        let metrics = Arc::new(Metrics::new(RouteTable::new(templates)));
        let state = Arc::new(AppState::new(
            config, issuer, store, keys, clock, login, metrics,
        ));
        let gateway = Gateway::new(
            &state.config,
            &state.issuer,
            state.store.clone(),
            state.keys.clone(),
            state.tokens.upstream_tokens(),
        )?;
        let endpoint = routes(state.clone(), Arc::new(gateway));
        let housekeeping = Arc::new(Housekeeping::new(&state.config, state.registry.clone()));
        Ok(Self {
            listener,
            local_addr,
            metrics_listener,
            state,
            endpoint,
            housekeeping,
        })
    }

    /// The address of the separate `/metrics` listener, when there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// The background housekeeping, to run once by hand (tests, maintenance).
    pub fn housekeeping(&self) -> Arc<Housekeeping> {
        self.housekeeping.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn issuer(&self) -> &Issuer {
        &self.state.issuer
    }

    pub fn keys(&self) -> Arc<SigningKeys> {
        self.state.keys.clone()
    }

    pub fn registry(&self) -> Arc<crate::clients::registry::Registry> {
        self.state.registry.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting connections and lets in-flight
    /// requests finish (up to `server.shutdown_grace_secs`).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let config = &self.state.config.server;
        let options = ServeOptions {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
        };
        let refresher = spawn_key_refresher(&self.state);
        let upkeep = spawn_metrics_upkeep(self.state.metrics.clone());
        let reaper = spawn_housekeeping(
            self.housekeeping,
            Duration::from_secs(self.state.config.registration.reap_interval_secs),
        );
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_server = self.metrics_listener.map(|(listener, _)| {
            let endpoint = metrics_routes(self.state.clone());
            tokio::spawn(server::serve(listener, endpoint, options, async {
                metrics_stopped.await.ok();
            }))
        });
        let result = server::serve(self.listener, self.endpoint, options, shutdown).await;
        drop(stop_metrics);
        if let Some(metrics_server) = metrics_server
            && let Ok(Err(error)) = metrics_server.await
        {
            tracing::error!(%error, "the metrics listener failed");
        }
        refresher.abort();
        reaper.abort();
        upkeep.abort();
        self.state.store.clone().close().await.ok();
        result
    }
}

/// Re-reads the signing keys every `keys.refresh_interval_secs`, so rotations made by another
/// instance (or the CLI) are picked up, and removed keys leave the JWKS; and starts the
/// scheduled rotation when it is due (`keys.rotate_every_days`), which the database lets
/// exactly one instance do.
fn spawn_key_refresher(state: &Arc<AppState>) -> JoinHandle<()> {
    let keys = state.keys.clone();
    let interval = Duration::from_secs(state.config.keys.refresh_interval_secs);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(error) = keys.refresh().await {
                tracing::error!(%error, "could not refresh signing keys; serving the last loaded ones");
            }
            match keys.rotate_if_due().await {
                Ok(Some(key)) => {
                    tracing::info!(kid = %key.kid, activates_at = key.activates_at, "scheduled signing key rotation")
                }
                Ok(None) => {}
                Err(error) => tracing::error!(%error, "scheduled key rotation failed"),
            }
        }
    })
}

/// How often the latency samples are folded into their histograms.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Folds the latency samples into their histograms every few seconds, so that they never pile
/// up between scrapes (or forever, when nobody scrapes).
fn spawn_metrics_upkeep(metrics: Arc<Metrics>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
        loop {
            ticker.tick().await;
            metrics.run_upkeep();
        }
    })
}

/// Runs housekeeping every `registration.reap_interval_secs` (see [`Housekeeping`]), the first
/// time one interval after start: not during start-up, when every instance of a restarted
/// deployment would purge at once, and not racing whatever a test does first with its clock.
fn spawn_housekeeping(housekeeping: Arc<Housekeeping>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let first = tokio::time::Instant::now() + interval;
        let mut ticker = tokio::time::interval_at(first, interval);
        loop {
            ticker.tick().await;
            housekeeping.run_once().await;
        }
    })
}

/// Binds a listener; `named` is the address as the configuration spells it, for errors.
fn bind(
    addr: SocketAddr,
    named: &str,
) -> Result<(tokio::net::TcpListener, SocketAddr), StartupError> {
    let error = |source| StartupError::Listen {
        addr: named.to_owned(),
        source,
    };
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(error)?;
    let local_addr = listener.local_addr().map_err(error)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(error)?;
    Ok((listener, local_addr))
}

type Apis = (
    DiscoveryApi,
    HealthApi,
    RegistrationApi,
    AdminApi,
    AdminUsersApi,
    AdminKeysApi,
    AdminLifetimesApi,
    OAuthApi,
);

/// The OpenAPI service for every JSON endpoint.
pub fn api_service(state: Arc<AppState>) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            DiscoveryApi::new(state.clone()),
            HealthApi {
                state: state.clone(),
            },
            RegistrationApi {
                state: state.clone(),
            },
            AdminApi {
                state: state.clone(),
            },
            AdminUsersApi {
                state: state.clone(),
            },
            AdminKeysApi {
                state: state.clone(),
            },
            AdminLifetimesApi {
                state: state.clone(),
            },
            OAuthApi { state },
        ),
        "authbridge",
        env!("CARGO_PKG_VERSION"),
    )
    .description("OAuth 2.1 authorization server for MCP hosts")
}

/// The server's endpoints. Gateway resources are routed first, by host and path, outside the
/// authorization server's own middleware (their bodies have their own bound and their log line
/// is the gateway's); HSTS covers both.
fn routes(state: Arc<AppState>, gateway: Arc<Gateway>) -> BoxEndpoint<'static> {
    let issuer = state.issuer.clone();
    let prefix = issuer.path().to_owned();
    let body_limit = BodyLimit {
        max_bytes: state.config.server.body_limit_bytes,
        read_timeout: Duration::from_secs(state.config.server.body_read_timeout_secs),
    };
    let https = issuer.as_str().starts_with("https://");

    let api = api_service(state.clone()).server(issuer.as_str());
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let mut app = Route::new()
        .at(
            AUTHORIZE_PATH,
            get(authorize::authorize).with(AuthorizeSourceLimit::new(state.clone())),
        )
        .at(CONSENT_PATH, post(consent::consent))
        .at(CALLBACK_PATH, get(callback::upstream_callback))
        .at(WEBHOOK_PATH, post(webhook::ownerrez_webhook));
    app = web_session_routes(app);
    if state.dev.is_some() {
        app = app.at(
            DEV_AUTHORIZE_PATH,
            get(dev_upstream::login_page).post(dev_upstream::login_submit),
        );
    }
    if state.metrics_token_sha256.is_some() {
        app = app.at(METRICS_PATH, get(metrics::metrics_with_token));
    }
    let app = app
        .nest("/", api)
        .at("/openapi.json", spec)
        .nest("/docs", docs);

    let root = if prefix.is_empty() {
        Route::new().nest("/", app)
    } else {
        // RFC 8414 §3: for an issuer with a path, metadata lives at the well-known segment
        // inserted before the path. The copy inside the issuer path stays for clients that
        // append instead of inserting.
        let metadata = DiscoveryApi::new(state.clone()).metadata_response();
        let alias = poem::endpoint::make_sync(move |_| metadata.clone().into_response());
        Route::new()
            .at(issuer.metadata_path(), alias)
            .nest(prefix.clone(), app)
    };

    let public_paths = [
        issuer.metadata_path(),
        format!("{prefix}/.well-known/oauth-authorization-server"),
        format!("{prefix}{JWKS_PATH}"),
        format!("{prefix}{REGISTER_PATH}"),
        format!("{prefix}{TOKEN_PATH}"),
        format!("{prefix}{REVOKE_PATH}"),
    ];
    // With metrics off, requests are not even counted.
    let count_requests = !matches!(state.config.metrics.exposure(), Ok(MetricsExposure::Off));
    let request_metrics = RequestMetrics {
        metrics: state.metrics.clone(),
    };
    let server = root
        .data(state)
        .with(RequestLog)
        .with(body_limit)
        .with(JsonErrors)
        .with(PublicCors::new(public_paths));
    GatewayRouter::new(gateway, server)
        .with_if(https, StrictTransportSecurity)
        .with_if(count_requests, request_metrics)
        .boxed()
}

/// The connected-apps page and the sign-in and sign-out of web sessions (console pages are
/// added beside them). Each answers a page saying so while its feature is off.
fn web_session_routes(app: Route) -> Route {
    app.at(ACCOUNT_PATH, get(account::account_page))
        .at(
            ACCOUNT_SIGN_IN_PATH,
            get(account::sign_in_page).post(session::start_account_sign_in),
        )
        .at(ACCOUNT_SIGN_OUT_PATH, post(session::account_sign_out))
        .at(ACCOUNT_DISCONNECT_PATH, post(account::disconnect))
        .at(
            CONSOLE_SIGN_IN_UPSTREAM_PATH,
            post(session::start_console_sign_in),
        )
        .at(CONSOLE_SIGN_OUT_PATH, post(session::console_sign_out))
        .at(CONSOLE_SIGN_IN_PATH, get(console::sign_in::sign_in_page))
        .at(
            CONSOLE_SIGN_IN_TOKEN_PATH,
            post(console::sign_in::token_sign_in),
        )
        .at(CONSOLE_PATH, get(console::overview::overview_page))
        .at(CONSOLE_CLIENTS_PATH, get(console::clients::clients_page))
        .at(CONSOLE_CLIENT_PATH, get(console::clients::client_page))
        .at(
            CONSOLE_NEW_CLIENT_PATH,
            get(console::clients::new_client_page).post(console::clients::create_client),
        )
        .at(
            CONSOLE_CLIENT_ACTION_PATH,
            post(console::client_actions::client_action),
        )
        .at(CONSOLE_USERS_PATH, get(console::users::users_page))
        .at(CONSOLE_USER_PATH, get(console::users::user_page))
        .at(
            CONSOLE_GRANT_REVOKE_PATH,
            post(console::users::revoke_grant),
        )
        .at(CONSOLE_KEYS_PATH, get(console::keys::keys_page))
        .at(CONSOLE_KEYS_ROTATE_PATH, post(console::keys::rotate_key))
        .at(CONSOLE_AUDIT_PATH, get(console::audit::audit_page))
}

/// The console's pages and forms, for the `route` label of the HTTP metrics.
const CONSOLE_ROUTES: [&str; 15] = [
    CONSOLE_SIGN_IN_PATH,
    CONSOLE_SIGN_IN_TOKEN_PATH,
    CONSOLE_SIGN_IN_UPSTREAM_PATH,
    CONSOLE_SIGN_OUT_PATH,
    CONSOLE_PATH,
    CONSOLE_CLIENTS_PATH,
    CONSOLE_CLIENT_PATH,
    CONSOLE_NEW_CLIENT_PATH,
    CONSOLE_CLIENT_ACTION_PATH,
    CONSOLE_USERS_PATH,
    CONSOLE_USER_PATH,
    CONSOLE_GRANT_REVOKE_PATH,
    CONSOLE_KEYS_PATH,
    CONSOLE_KEYS_ROTATE_PATH,
    CONSOLE_AUDIT_PATH,
];

/// The separate metrics listener: `/metrics` and nothing else.
fn metrics_routes(state: Arc<AppState>) -> BoxEndpoint<'static> {
    Route::new()
        .at(METRICS_PATH, get(metrics::metrics_open))
        .data(state)
        .boxed()
}

/// Every route template the main listener serves, for the `route` label of the HTTP metrics:
/// the OpenAPI operations' paths and the pages, below the issuer's path.
fn route_templates(issuer: &Issuer, dev: bool, exposure: &MetricsExposure) -> Vec<String> {
    let prefix = issuer.path();
    let operations = <Apis as poem_openapi::OpenApi>::meta()
        .into_iter()
        .flat_map(|api| api.paths)
        .map(|path| path.path);
    let mut pages = vec![
        AUTHORIZE_PATH.to_owned(),
        CONSENT_PATH.to_owned(),
        CALLBACK_PATH.to_owned(),
        WEBHOOK_PATH.to_owned(),
        ACCOUNT_PATH.to_owned(),
        ACCOUNT_SIGN_IN_PATH.to_owned(),
        ACCOUNT_SIGN_OUT_PATH.to_owned(),
        ACCOUNT_DISCONNECT_PATH.to_owned(),
        "/openapi.json".to_owned(),
        "/docs".to_owned(),
        "/docs/*".to_owned(),
    ];
    pages.extend(CONSOLE_ROUTES.map(str::to_owned));
    if dev {
        pages.push(DEV_AUTHORIZE_PATH.to_owned());
    }
    if matches!(exposure, MetricsExposure::BearerToken(_)) {
        pages.push(METRICS_PATH.to_owned());
    }
    let mut templates: Vec<String> = operations
        .chain(pages)
        .map(|path| format!("{prefix}{path}"))
        .collect();
    if !prefix.is_empty() {
        templates.push(issuer.metadata_path());
    }
    templates
}

/// The OpenAPI document, built from a throw-away in-memory server so that it depends on no
/// configuration, database or key. `authbridge openapi` prints it; `openapi/openapi.json` is
/// its committed copy.
pub async fn openapi_document() -> Result<String, StartupError> {
    let mut config = Config::default();
    config.database.url = Some("sqlite::memory:".into());
    config.database.max_connections = 1;
    config.encryption.key = Some(crate::config::Secret::new(crate::vault::generate_key()));
    config.server.listen = "127.0.0.1:0".into();
    let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
    let store = bootstrap::open_store(&config).await?;
    let vault = Arc::new(bootstrap::open_vault(&config)?);
    let keys = Arc::new(
        bootstrap::load_signing_keys(&config, &store, vault.clone(), clock.clone()).await?,
    );
    let issuer = Issuer::parse("http://127.0.0.1:8080").expect("a valid issuer");
    let cookie_key = bootstrap::cookie_key(&store, &vault, clock.now()).await?;
    let login = bootstrap::login_parts(&config, &issuer, vault, cookie_key, clock.clone())?;
    let metrics = Arc::new(Metrics::new(RouteTable::new([])));
    let state = Arc::new(AppState::new(
        config, issuer, store, keys, clock, login, metrics,
    ));
    Ok(api_service(state).spec())
}
