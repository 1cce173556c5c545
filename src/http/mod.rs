//! HTTP endpoints: one module per endpoint group. Handlers parse the request, call the domain,
//! and map the result; protocol rules live in `oauth`, SQL in `store`.

pub mod admin;
pub mod discovery;
pub mod errors;
pub mod health;
pub mod middleware;
pub mod precomputed;
pub mod registration;

use std::sync::Arc;

use crate::clients::registry::Registry;
use crate::clock::Clock;
use crate::config::Config;
use crate::oauth::issuer::Issuer;
use crate::store::Store;
use crate::tokens::keyring::SigningKeys;

/// What the handlers share.
pub struct AppState {
    pub config: Config,
    pub issuer: Issuer,
    pub store: Store,
    pub keys: Arc<SigningKeys>,
    pub clock: Arc<dyn Clock>,
    pub registry: Arc<Registry>,
}

impl AppState {
    pub fn new(
        config: Config,
        issuer: Issuer,
        store: Store,
        keys: Arc<SigningKeys>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let registry = Arc::new(Registry::new(
            store.clone(),
            clock.clone(),
            issuer.clone(),
            config.registration.clone(),
        ));
        Self {
            config,
            issuer,
            store,
            keys,
            clock,
            registry,
        }
    }
}
