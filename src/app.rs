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
use crate::config::Config;
use crate::http::AppState;
use crate::http::admin::AdminApi;
use crate::http::admin_keys::AdminKeysApi;
use crate::http::admin_users::AdminUsersApi;
use crate::http::authorize;
use crate::http::discovery::DiscoveryApi;
use crate::http::errors::JsonErrors;
use crate::http::health::HealthApi;
use crate::http::middleware::{
    AuthorizeSourceLimit, BodyLimit, PublicCors, RequestLog, StrictTransportSecurity,
};
use crate::http::oauth_api::OAuthApi;
use crate::http::registration::RegistrationApi;
use crate::http::server::{self, ServeOptions};
use crate::http::{callback, consent, dev_upstream, webhook};
use crate::oauth::issuer::Issuer;
use crate::routes::{
    AUTHORIZE_PATH, CALLBACK_PATH, CONSENT_PATH, DEV_AUTHORIZE_PATH, JWKS_PATH, REGISTER_PATH,
    REVOKE_PATH, TOKEN_PATH, WEBHOOK_PATH,
};
use crate::tokens::keyring::SigningKeys;

/// A server bound to its port, ready to run.
pub struct Application {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    state: Arc<AppState>,
    endpoint: BoxEndpoint<'static>,
}

impl Application {
    /// Binds the listener, then the start-up steps, in order: open and migrate the database,
    /// check the encryption key against it, load the signing keys (re-sealing them after a key
    /// rotation), re-wrap the grants' upstream tokens after a key rotation, load or create the
    /// cookie key, and assemble the login. Nothing is served until [`Application::run_until`].
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartupError> {
        config.validate()?;
        let listen = config.listen_addr()?;
        let listener = std::net::TcpListener::bind(listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| StartupError::Listen {
                addr: config.server.listen.clone(),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                addr: config.server.listen.clone(),
                source,
            })?;
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|source| StartupError::Listen {
                addr: config.server.listen.clone(),
                source,
            })?;
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

        let state = Arc::new(AppState::new(config, issuer, store, keys, clock, login));
        let endpoint = routes(state.clone());
        Ok(Self {
            listener,
            local_addr,
            state,
            endpoint,
        })
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
        let reaper = spawn_client_reaper(&self.state);
        let result = server::serve(self.listener, self.endpoint, options, shutdown).await;
        refresher.abort();
        reaper.abort();
        self.state.store.clone().close().await.ok();
        result
    }
}

/// Re-reads the signing keys every `keys.refresh_interval_secs`, so rotations made by another
/// instance (or the CLI) are picked up, and removed keys leave the JWKS.
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
        }
    })
}

/// Every `registration.reap_interval_secs`: deletes abandoned dynamic clients, stale
/// rate-limit windows and expired metadata documents, and expired codes, pending requests,
/// denylist entries, refresh families and remembered approvals (see `Store::delete_expired`).
fn spawn_client_reaper(state: &Arc<AppState>) -> JoinHandle<()> {
    let registry = state.registry.clone();
    let interval = Duration::from_secs(state.config.registration.reap_interval_secs);
    // An approval whose login has not completed within the pending request's lifetime never
    // will.
    let login_ttl = state.config.login.pending_request_ttl_secs as i64;
    // A rate-limit row is dead once its window has passed; the longest window decides.
    let longest_window = state
        .config
        .registration
        .per_source_window_secs
        .max(state.config.login.per_source_window_secs);
    let tokens = state.config.tokens.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            if let Err(error) = registry.reap().await {
                tracing::error!(%error, "could not reap abandoned clients");
            }
            match registry.purge_outsider_rows(longest_window).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(
                    count,
                    "housekeeping: deleted stale rate limits and expired metadata documents"
                ),
                Err(error) => tracing::error!(%error, "housekeeping of outsider rows failed"),
            }
            let cutoffs = crate::grants::housekeeping_cutoffs(&tokens, registry.now());
            match registry.store().delete_expired(&cutoffs).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(
                    count,
                    "housekeeping: deleted expired codes, requests and tokens"
                ),
                Err(error) => tracing::error!(%error, "housekeeping failed"),
            }
            let now = registry.now();
            match registry
                .store()
                .purge_remembered_consents(now, now - login_ttl)
                .await
            {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "housekeeping: deleted remembered approvals"),
                Err(error) => {
                    tracing::error!(%error, "housekeeping of remembered approvals failed")
                }
            }
        }
    })
}

type Apis = (
    DiscoveryApi,
    HealthApi,
    RegistrationApi,
    AdminApi,
    AdminUsersApi,
    AdminKeysApi,
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
            OAuthApi { state },
        ),
        "authbridge",
        env!("CARGO_PKG_VERSION"),
    )
    .description("OAuth 2.1 authorization server for MCP hosts")
}

fn routes(state: Arc<AppState>) -> BoxEndpoint<'static> {
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
            get(authorize::authorize).with(AuthorizeSourceLimit {
                state: state.clone(),
            }),
        )
        .at(CONSENT_PATH, post(consent::consent))
        .at(CALLBACK_PATH, get(callback::upstream_callback))
        .at(WEBHOOK_PATH, post(webhook::ownerrez_webhook));
    if state.dev.is_some() {
        app = app.at(
            DEV_AUTHORIZE_PATH,
            get(dev_upstream::login_page).post(dev_upstream::login_submit),
        );
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
    root.data(state)
        .with(RequestLog)
        .with(body_limit)
        .with(JsonErrors)
        .with(PublicCors::new(public_paths))
        .with_if(https, StrictTransportSecurity)
        .boxed()
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
    let state = Arc::new(AppState::new(config, issuer, store, keys, clock, login));
    Ok(api_service(state).spec())
}
