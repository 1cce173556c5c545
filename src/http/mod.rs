//! HTTP endpoints: one module per endpoint group. Handlers parse the request, call the domain,
//! and map the result; protocol rules live in `oauth`, SQL in `store`.

pub mod account;
pub mod admin;
pub mod admin_keys;
pub mod admin_lifetimes;
pub mod admin_response;
pub mod admin_types;
pub mod admin_users;
pub mod authorize;
pub mod browser;
pub mod callback;
pub mod consent;
pub mod console;
pub mod dev_upstream;
pub mod discovery;
pub mod errors;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod oauth_api;
pub mod pages;
pub mod precomputed;
pub mod registration;
pub mod revocation;
pub mod server;
pub mod session;
pub mod session_callback;
pub mod token;
pub mod webhook;
pub mod when;

use std::sync::Arc;

use crate::bootstrap::{LoginParts, WebhookCredentials};
use crate::clients::cimd::ClientDocumentResolver;
use crate::clients::registry::Registry;
use crate::clock::Clock;
use crate::config::{Config, MetricsExposure, ProviderKind};
use crate::grants::service::TokenService;
use crate::monitoring::{MeteredUpstream, Metrics};
use crate::oauth::authorize::ResourceRule;
use crate::oauth::issuer::Issuer;
use crate::oauth::resource::ResourceUri;
use crate::store::Store;
use crate::tokens::keyring::SigningKeys;
use crate::upstream::UpstreamProvider;
use crate::upstream::dev::DevProvider;
use crate::vault::Vault;
use browser::BrowserCookies;

/// What the handlers share.
pub struct AppState {
    pub config: Config,
    pub issuer: Issuer,
    pub store: Store,
    pub keys: Arc<SigningKeys>,
    pub clock: Arc<dyn Clock>,
    pub registry: Arc<Registry>,
    pub documents: Arc<ClientDocumentResolver>,
    pub resources: Vec<ResourceRule>,
    pub vault: Arc<Vault>,
    pub upstream: Arc<dyn UpstreamProvider>,
    pub dev: Option<Arc<DevProvider>>,
    pub cookies: BrowserCookies,
    pub webhook: Option<WebhookCredentials>,
    pub tokens: TokenService,
    /// Web sessions of the console and the connected-apps page.
    pub sessions: crate::sessions::WebSessions,
    pub metrics: Arc<Metrics>,
    /// SHA-256 of the bearer token `/metrics` on the main listener requires; `None` when the
    /// main listener does not serve metrics.
    pub metrics_token_sha256: Option<String>,
}

impl AppState {
    pub fn new(
        config: Config,
        issuer: Issuer,
        store: Store,
        keys: Arc<SigningKeys>,
        clock: Arc<dyn Clock>,
        login: LoginParts,
        metrics: Arc<Metrics>,
    ) -> Self {
        // Every upstream call, from a login or a token exchange, is counted and timed.
        let upstream = MeteredUpstream::wrap(login.upstream, metrics.clone());
        let metrics_token_sha256 = match config.metrics.exposure() {
            Ok(MetricsExposure::BearerToken(hash)) => Some(hash),
            _ => None,
        };
        let registry = Arc::new(Registry::new(
            store.clone(),
            clock.clone(),
            issuer.clone(),
            config.registration.clone(),
        ));
        let documents = Arc::new(
            ClientDocumentResolver::new(
                config.client_metadata_documents.clone(),
                store.clone(),
                clock.clone(),
            )
            .with_custom_redirect_schemes(config.registration.custom_redirect_schemes.clone()),
        );
        let resources = config
            .resources
            .iter()
            .map(|r| ResourceRule {
                uri: ResourceUri::parse(&r.uri).expect("validated with the configuration"),
                name: r.name.clone(),
                scopes: r.scopes.clone(),
                default_scopes: r.default_scopes.clone(),
            })
            .collect();
        let cookies =
            BrowserCookies::new(&login.cookie_key, issuer.as_str().starts_with("https://"));
        let sessions = crate::sessions::WebSessions::new(
            &config,
            store.clone(),
            clock.clone(),
            &login.cookie_key,
        );
        let tokens = TokenService {
            store: store.clone(),
            keys: keys.clone(),
            vault: login.vault.clone(),
            clock: clock.clone(),
            issuer: issuer.clone(),
            config: config.tokens.clone(),
            lifetimes: crate::tokens::lifetime::Lifetimes::from_config(&config),
            upstream: upstream.clone(),
            metrics: metrics.clone(),
        };
        Self {
            config,
            issuer,
            store,
            keys,
            clock,
            registry,
            documents,
            resources,
            vault: login.vault,
            upstream,
            dev: login.dev,
            cookies,
            webhook: login.webhook,
            tokens,
            sessions,
            metrics,
            metrics_token_sha256,
        }
    }

    /// How the consent page names the upstream.
    pub fn upstream_display_name(&self) -> &'static str {
        match self.config.upstream.provider {
            ProviderKind::Ownerrez => "OwnerRez",
            ProviderKind::Oauth2 => "the sign-in service",
            ProviderKind::Dev => "the development login",
        }
    }
}
