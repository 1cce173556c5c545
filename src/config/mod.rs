//! Typed configuration, its layering and its validation.
//!
//! Layers, later ones winning: the defaults in [`Config::default`] (documented key by key in
//! `config/default.toml`), the TOML file given with `--config`, then environment variables
//! `AUTHBRIDGE_SECTION__KEY`. Unknown keys are errors. Secrets are never accepted from a
//! configuration file: they come from the environment or from a file the operator names.
//! Validation runs once at start; every error names the key it is about.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod defaults;
mod error;
mod lifetimes;
mod operations;
mod password;
mod proxy;
mod validate;
mod validate_registration;
mod validate_upstream;
mod web;
pub use crate::store::SqliteSynchronous;
use error::describe_figment_error;
pub use error::{CONFIG_FILE_VARIABLE, ConfigError, Origin, Origins};
pub use lifetimes::TokenLifetimeConfig;
pub use operations::{AuditConfig, MetricsConfig, MetricsExposure};
pub use password::check_webhook_password;
pub use proxy::{ProxyConfig, TRANSPORT_HEADERS};
pub use web::{AccountConfig, ConsoleConfig};

use crate::oauth::issuer::Issuer;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "AUTHBRIDGE_";

/// Seconds a JWKS response may be cached by resource servers (`Cache-Control: max-age`).
/// A new signing key must be published for at least this long before it signs.
pub const JWKS_MAX_AGE_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory for the SQLite database and the development encryption key.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub encryption: EncryptionConfig,
    pub tokens: TokenConfig,
    pub keys: KeyConfig,
    pub log: LogConfig,
    pub upstream: UpstreamConfig,
    pub registration: RegistrationConfig,
    pub client_metadata_documents: ClientMetadataDocumentConfig,
    pub admin: AdminConfig,
    pub login: LoginConfig,
    pub metrics: MetricsConfig,
    pub audit: AuditConfig,
    pub console: ConsoleConfig,
    pub account: AccountConfig,
    pub resources: Vec<ResourceConfig>,
    /// Access-token lifetimes by redirect-URI pattern (the first match wins).
    pub token_lifetimes: Vec<TokenLifetimeConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// How long a user has from `/authorize` to finishing the upstream login.
    pub pending_request_ttl_secs: u64,
    /// How long an approval the user asked to remember lasts (at most a year); 0 never
    /// remembers.
    pub remember_consent_secs: u64,
    /// Authorization requests one source (an IPv4 address or an IPv6 /64) may make per window;
    /// each one stores a pending request.
    pub per_source_limit: u32,
    pub per_source_window_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Whether `POST /register` needs an initial access token (RFC 7591 §3).
    pub require_initial_access_token: bool,
    /// SHA-256 (hex) of the accepted initial access tokens.
    pub initial_access_token_hashes: Vec<String>,
    /// The most dynamic clients that may exist at once. When the cap is reached, the oldest
    /// client no user has ever authorized makes room; only authorized clients can fill it.
    pub max_dynamic_clients: u64,
    /// New dynamic clients one source may create per window.
    pub per_source_limit: u32,
    pub per_source_window_secs: u64,
    /// An identical public-client registration from the same source within this window
    /// returns the existing client.
    pub dedupe_window_secs: u64,
    pub max_redirect_uris: usize,
    pub max_redirect_uri_length: usize,
    /// When non-empty, every redirect URI must match one of these patterns.
    pub redirect_uri_allowlist: Vec<String>,
    /// Private-use redirect URI schemes accepted besides the reverse-domain ones
    /// (RFC 8252 §7.1): the known MCP hosts' schemes.
    pub custom_redirect_schemes: Vec<String>,
    /// Dynamic clients that never completed an authorization are deleted after this long.
    pub reap_unauthorized_after_secs: u64,
    /// Dynamic clients unused for this many days are deleted.
    pub reap_unused_after_days: u64,
    /// How often the reaper runs.
    pub reap_interval_secs: u64,
    /// Use the last address of `X-Forwarded-For` as the source (behind a reverse proxy).
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientMetadataDocumentConfig {
    /// Accept `client_id`s that are https URLs of Client ID Metadata Documents.
    pub enabled: bool,
    /// Allow http documents on loopback hosts. For tests only.
    pub allow_http_loopback: bool,
    pub timeout_ms: u64,
    pub max_bytes: usize,
    /// Bounds on how long a fetched document is cached (from its Cache-Control).
    pub min_cache_secs: u64,
    pub max_cache_secs: u64,
    /// How long a failed fetch or an invalid document is remembered, so that a bad URL is not
    /// fetched on every request; 0 never remembers a failure.
    pub failure_cache_secs: u64,
    /// The most cached documents (and remembered failures) at once; beyond it, documents are
    /// used without being cached.
    pub max_cached_documents: u64,
    /// Fetches one instance makes to one host at once; more wait for a turn.
    pub max_concurrent_fetches_per_host: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Admin API bearer tokens, by SHA-256: `authbridge admin-token` makes one.
    pub tokens: Vec<AdminTokenConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenConfig {
    /// Who holds the token; written to the audit trail.
    pub name: String,
    /// SHA-256 of the token, in hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    /// Public issuer URL; derived from `listen` when absent (loopback only).
    pub issuer: Option<String>,
    pub body_limit_bytes: usize,
    pub shutdown_grace_secs: u64,
    /// How long a client has to send a request's head (line and headers), counted from when
    /// the server starts waiting for it, including the wait between kept-alive requests.
    pub header_read_timeout_secs: u64,
    /// How long a client has to send a request's body once its head arrived.
    pub body_read_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`; absent means `<data_dir>/authbridge.db`.
    pub url: Option<String>,
    pub max_connections: u32,
    /// SQLite's `synchronous` setting; see [`SqliteSynchronous`].
    pub sqlite_synchronous: SqliteSynchronous,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    pub key_id: String,
    pub key: Option<Secret>,
    pub key_file: Option<PathBuf>,
    pub previous_key_id: Option<String>,
    pub previous_key: Option<Secret>,
    pub previous_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    pub access_token_ttl_secs: u64,
    /// The longest access-token lifetime a client or a redirect-URI pattern may be given.
    pub max_access_token_ttl_secs: u64,
    pub authorization_code_ttl_secs: u64,
    pub refresh_token_idle_ttl_secs: u64,
    pub refresh_token_absolute_ttl_secs: u64,
    pub refresh_token_grace_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyConfig {
    /// How long a new signing key is published before it signs.
    pub activation_delay_secs: u64,
    /// How often each instance re-reads the signing keys from the database.
    pub refresh_interval_secs: u64,
    /// Days a key signs before it is rotated by the server itself; 0 rotates only on request.
    pub rotate_every_days: u64,
    /// How long a retired key stays published; absent: the longest access-token lifetime
    /// (`tokens.max_access_token_ttl_secs`) plus a minute of clock skew.
    pub retired_key_published_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `authbridge=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Dev,
    Ownerrez,
    Oauth2,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    pub provider: ProviderKind,
    /// Allows the `dev` provider with a non-loopback issuer. Never set this in production.
    pub force_dev: bool,
    /// Timeout of every request to the upstream, in milliseconds.
    pub timeout_ms: u64,
    pub ownerrez: OwnerRezConfig,
    pub oauth2: OAuth2Config,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OwnerRezConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<PathBuf>,
    pub authorize_url: String,
    pub token_url: String,
    pub api_base_url: String,
    pub user_agent: String,
    /// Send `redirect_uri` with the code exchange (one client reports OwnerRez refusing it).
    pub send_redirect_uri_on_exchange: bool,
    /// Send PKCE upstream. Unproven with OwnerRez, so off.
    pub use_pkce: bool,
    /// After login, call `/v2/users/me` as a liveness check of the new token.
    pub check_user: bool,
    /// HTTP Basic credentials OwnerRez sends with webhooks.
    pub webhook_user: Option<String>,
    pub webhook_password: Option<Secret>,
    pub webhook_password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuth2Config {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<PathBuf>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub revocation_url: Option<String>,
    /// `client_secret_basic` or `client_secret_post`.
    pub client_auth_method: String,
    pub use_pkce: bool,
    /// Scopes requested upstream (the host's scopes are never forwarded).
    pub scopes: Vec<String>,
    /// Where the user's stable id comes from: `token_response` or `userinfo`.
    pub subject_source: String,
    /// Dotted path of the subject in that JSON (e.g. `sub` or `user.id`).
    pub subject_path: String,
    /// Dotted path of a display name, if any.
    pub display_name_path: Option<String>,
    pub user_agent: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Canonical URI of the protected resource (the MCP server), used as the token audience.
    pub uri: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub default_scopes: Vec<String>,
    /// Gateway mode: authbridge serves `uri` itself and forwards to this backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
}

/// A secret value: never printed, never serialised in the clear.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// Keys whose values are secrets and so may only come from the environment.
const SECRET_KEYS: &[&str] = &[
    "encryption.key",
    "encryption.previous_key",
    "upstream.ownerrez.client_secret",
    "upstream.ownerrez.webhook_password",
    "upstream.oauth2.client_secret",
];

impl Config {
    /// Loads defaults, then `file`, then the environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_origins(file).map(|(config, _)| config)
    }

    /// Like [`Config::load`], and also tells which keys the operator set, and where.
    pub fn load_with_origins(file: Option<&Path>) -> Result<(Self, Origins), ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::new(
                    "--config",
                    format!("{} is not a readable file", file.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(error::environment());
        let config = Self::from_figment(&figment)?;
        Ok((config, Origins::new(figment)))
    }

    /// Extracts and validates a configuration from any set of providers (tests use this).
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(describe_figment_error)?;
        let origins = Origins::new(figment.clone());
        for key in SECRET_KEYS {
            if let Some(origin @ Origin::File { .. }) = origins.of(key) {
                return Err(ConfigError::new(
                    *key,
                    format!(
                        "secrets may not be written in a configuration file; set {} or name a file with `{key}_file`",
                        env_var_name(key)
                    ),
                )
                .at(Some(origin)));
            }
        }
        config.validate().map_err(|error| {
            let origin = origins.of(&error.key);
            error.at(origin)
        })?;
        Ok(config)
    }

    /// Development mode: the simulated upstream. Only then may the encryption key be generated.
    pub fn is_dev_mode(&self) -> bool {
        self.upstream.provider == ProviderKind::Dev
    }

    /// The listen address, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|_| {
            ConfigError::new(
                "server.listen",
                format!(
                    "`{}` is not an address such as 127.0.0.1:8080",
                    self.server.listen
                ),
            )
        })
    }

    /// The issuer: the configured one, or `http://<listen address>` for a loopback listener.
    /// `bound` is the address actually bound (it differs from `listen` when the port is 0).
    pub fn issuer(&self, bound: SocketAddr) -> Result<Issuer, ConfigError> {
        match &self.server.issuer {
            Some(issuer) => Issuer::parse(issuer).map_err(|e| ConfigError::new("server.issuer", e)),
            None if bound.ip().is_loopback() => Issuer::parse(&format!("http://{bound}"))
                .map_err(|e| ConfigError::new("server.issuer", e)),
            None => Err(ConfigError::new(
                "server.issuer",
                "must be set when server.listen is not a loopback address",
            )),
        }
    }
}

/// The environment variable that sets a dotted configuration key.
pub fn env_var_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

#[cfg(test)]
mod tests;
