//! Start-up steps shared by `serve` and the operator commands, each a named function that
//! `app::Application::build` calls in order: [`open_store`] (connect, migrate), [`open_vault`]
//! (the configured keys, or the development key file), [`check_vault`] (the key opens this
//! database's data), [`load_signing_keys`], [`rewrap_grant_tokens`] and [`cookie_key`] (both
//! write: they re-seal under the current key after an encryption-key rotation), and
//! [`login_parts`] (the upstream provider and webhook credentials; writes nothing).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{Config, ConfigError, ProviderKind, Secret};
use crate::ids::GrantId;
use crate::oauth::issuer::Issuer;
use crate::store::{Store, StoreError, default_sqlite_url};
use crate::tokens::keyring::{KeyError, KeyTiming, SigningKeys};
use crate::upstream::UpstreamProvider;
use crate::upstream::dev::DevProvider;
use crate::upstream::oauth2::OAuth2Provider;
use crate::upstream::ownerrez::OwnerRezProvider;
use crate::vault::context::{COOKIE_KEY, VAULT_CHECK};
use crate::vault::{self, KEY_LEN, Vault};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("could not listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// The parts of the login that start-up assembles (they need secrets and the database).
pub struct LoginParts {
    pub vault: Arc<Vault>,
    pub upstream: Arc<dyn UpstreamProvider>,
    /// Set when the provider is `dev`: its login page is then served.
    pub dev: Option<Arc<DevProvider>>,
    /// The server key that signs browser cookies and CSRF tokens.
    pub cookie_key: [u8; 32],
    pub webhook: Option<WebhookCredentials>,
}

/// The configured credentials of the upstream's webhook (HTTP Basic).
#[derive(Clone)]
pub struct WebhookCredentials {
    pub user: String,
    pub password: String,
}

/// Name of the development encryption key file inside the data directory.
pub const DEV_KEY_FILE: &str = "encryption.key";

/// The known value, sealed by the vault into the setting `VAULT_CHECK`, that proves the
/// configured encryption key is the one the database was written with.
const VAULT_CHECK_PLAINTEXT: &[u8] = b"authbridge vault check";

/// The database URL: configured, or the SQLite file in the data directory.
pub fn database_url(config: &Config) -> String {
    config
        .database
        .url
        .clone()
        .unwrap_or_else(|| default_sqlite_url(&config.data_dir))
}

/// Applies pending migrations, then connects the pool the server uses.
///
/// The migrations run on a pool of their own, closed before the server's pool opens: an SQLite
/// connection that read the schema before a migration keeps that copy, and when it cannot
/// re-check it while preparing a statement (a read briefly busy under a checkpoint), the
/// statement is compiled against the old schema and fails, for example "ON CONFLICT clause
/// does not match any PRIMARY KEY or UNIQUE constraint" for an index a migration just made.
/// An in-memory SQLite database lives only as long as its pool, so there it is the same pool.
pub async fn open_store(config: &Config) -> Result<Store, StartupError> {
    let url = database_url(config);
    let database = &config.database;
    let migrating =
        Store::open(&url, database.max_connections, database.sqlite_synchronous).await?;
    migrating.migrate().await?;
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(migrating);
    }
    migrating.close().await?;
    Ok(Store::open(&url, database.max_connections, database.sqlite_synchronous).await?)
}

/// Builds the vault from the configured keys. In development mode without a configured key,
/// a key is generated once into the data directory (mode 0600) and reused afterwards.
pub fn open_vault(config: &Config) -> Result<Vault, StartupError> {
    let encryption = &config.encryption;
    let current = match (&encryption.key, &encryption.key_file) {
        (Some(key), _) => {
            vault::parse_key(key.expose()).map_err(|e| ConfigError::new("encryption.key", e))?
        }
        (None, Some(path)) => read_key_file("encryption.key_file", path)?,
        (None, None) if config.is_dev_mode() => dev_key(&config.data_dir)?,
        (None, None) => {
            return Err(
                ConfigError::new("encryption.key", "is required outside development mode").into(),
            );
        }
    };
    let previous = match (
        &encryption.previous_key_id,
        &encryption.previous_key,
        &encryption.previous_key_file,
    ) {
        (Some(id), Some(key), _) => Some((
            id.clone(),
            vault::parse_key(key.expose())
                .map_err(|e| ConfigError::new("encryption.previous_key", e))?,
        )),
        (Some(id), None, Some(path)) => Some((
            id.clone(),
            read_key_file("encryption.previous_key_file", path)?,
        )),
        _ => None,
    };
    Ok(Vault::new((encryption.key_id.clone(), current), previous))
}

fn read_key_file(key: &str, path: &Path) -> Result<[u8; KEY_LEN], ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", path.display())))?;
    vault::parse_key(&text).map_err(|e| ConfigError::new(key, format!("{}: {e}", path.display())))
}

fn dev_key(data_dir: &Path) -> Result<[u8; KEY_LEN], ConfigError> {
    let path = data_dir.join(DEV_KEY_FILE);
    let key_error = |e: std::io::Error| {
        ConfigError::new(
            "encryption.key",
            format!("development key file {}: {e}", path.display()),
        )
    };
    if !path.exists() {
        std::fs::create_dir_all(data_dir).map_err(key_error)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut file) => {
                file.write_all(vault::generate_key().as_bytes())
                    .map_err(key_error)?;
                file.sync_all().map_err(key_error)?;
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(key_error(e)),
        }
    }
    tracing::warn!(
        path = %path.display(),
        "DEVELOPMENT MODE: data at rest is encrypted with a key generated into the data directory; \
         production needs AUTHBRIDGE_ENCRYPTION__KEY (or encryption.key_file) and a real upstream"
    );
    read_key_file("encryption.key", &path)
}

/// Refuses to start when the configured encryption key is not the one the database was
/// written with, instead of failing later on the first encrypted value. On a fresh database
/// the check value is written with the current key.
pub async fn check_vault(store: &Store, vault: &Vault, now: i64) -> Result<(), StartupError> {
    let candidate = vault.seal(VAULT_CHECK_PLAINTEXT, VAULT_CHECK);
    let stored = store.setting_or_insert(VAULT_CHECK, candidate, now).await?;
    match vault.open(&stored, VAULT_CHECK) {
        Ok(plain) if plain == VAULT_CHECK_PLAINTEXT => {
            if vault.is_sealed_with_old_key(&stored) {
                store.put_setting(VAULT_CHECK, vault.seal(VAULT_CHECK_PLAINTEXT, VAULT_CHECK), now).await?;
            }
            Ok(())
        }
        Ok(_) | Err(_) => Err(ConfigError::new(
            "encryption.key",
            "does not decrypt this database's data: it is not the key the database was written with \
             (to change keys, set the old one as encryption.previous_key with its encryption.previous_key_id)",
        )
        .into()),
    }
}

/// Loads (and on a fresh database creates) the signing keys.
pub async fn load_signing_keys(
    config: &Config,
    store: &Store,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
) -> Result<SigningKeys, StartupError> {
    let timing = key_timing(config);
    Ok(SigningKeys::load(store.clone(), vault, clock, timing).await?)
}

/// The key lifecycle timing from configuration. A retired key stays published for the
/// longest access-token lifetime (per-client ones included) plus a minute of clock skew,
/// unless configured longer.
pub fn key_timing(config: &Config) -> KeyTiming {
    let days = config.keys.rotate_every_days as i64;
    KeyTiming {
        activation_delay: config.keys.activation_delay_secs as i64,
        retire_for: config.retired_key_published_secs() as i64,
        rotate_every: (days > 0).then_some(days * 86_400),
    }
}

/// The server's cookie-signing key: created once and shared by every instance through the
/// database (sealed by the vault); re-sealed under the current encryption key after a rotation.
pub async fn cookie_key(store: &Store, vault: &Vault, now: i64) -> Result<[u8; 32], StartupError> {
    let candidate = vault.seal(&crate::random::random_key(), COOKIE_KEY);
    let mut stored = store.setting_or_insert(COOKIE_KEY, candidate, now).await?;
    if vault.is_sealed_with_old_key(&stored) {
        let plain = vault.open(&stored, COOKIE_KEY).map_err(|_| {
            ConfigError::new(
                "encryption.previous_key",
                "does not open the stored cookie key",
            )
        })?;
        stored = vault.seal(&plain, COOKIE_KEY);
        store.put_setting(COOKIE_KEY, stored.clone(), now).await?;
    }
    let cookie_key = vault
        .open(&stored, COOKIE_KEY)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| ConfigError::new("encryption.key", "does not open the stored cookie key"))?;
    Ok(cookie_key)
}

/// Assembles the login: the upstream provider with its secret and the webhook credentials,
/// around the vault and the cookie key. Reads configuration and secret files only; writes
/// nothing.
pub fn login_parts(
    config: &Config,
    issuer: &Issuer,
    vault: Arc<Vault>,
    cookie_key: [u8; 32],
    clock: Arc<dyn Clock>,
) -> Result<LoginParts, StartupError> {
    let timeout = std::time::Duration::from_millis(config.upstream.timeout_ms);
    let upstream = &config.upstream;
    let mut dev = None;
    let provider: Arc<dyn UpstreamProvider> = match upstream.provider {
        ProviderKind::Dev => {
            // A key of its own, derived so that dev codes cannot be confused with cookies.
            let dev_key = aws_lc_rs::hmac::sign(
                &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &cookie_key),
                b"dev upstream",
            );
            let provider = Arc::new(DevProvider::new(
                issuer.clone(),
                dev_key.as_ref(),
                clock.clone(),
            ));
            dev = Some(provider.clone());
            provider
        }
        ProviderKind::Ownerrez => {
            let o = &upstream.ownerrez;
            let secret = read_secret(
                "upstream.ownerrez.client_secret",
                o.client_secret.as_ref(),
                o.client_secret_file.as_deref(),
            )?;
            Arc::new(OwnerRezProvider::new(o, secret, timeout, clock.clone()))
        }
        ProviderKind::Oauth2 => {
            let o = &upstream.oauth2;
            let secret = read_secret(
                "upstream.oauth2.client_secret",
                o.client_secret.as_ref(),
                o.client_secret_file.as_deref(),
            )?;
            Arc::new(OAuth2Provider::new(o, secret, timeout, clock.clone()))
        }
    };
    let o = &upstream.ownerrez;
    let webhook = match &o.webhook_user {
        Some(user) => {
            let key = "upstream.ownerrez.webhook_password";
            let password = read_secret(
                key,
                o.webhook_password.as_ref(),
                o.webhook_password_file.as_deref(),
            )?;
            crate::config::check_webhook_password(key, &password)?;
            Some(WebhookCredentials {
                user: user.clone(),
                password,
            })
        }
        None => None,
    };
    Ok(LoginParts {
        vault,
        upstream: provider,
        dev,
        cookie_key,
        webhook,
    })
}

/// Grants read per page by [`rewrap_grant_tokens`].
const REWRAP_PAGE: u64 = 500;

/// After an encryption-key rotation, re-wraps every grant's data key under the new key (the
/// tokens themselves are not re-encrypted). Only while a previous key is configured: without
/// one nothing sealed under another key could be opened, so there is nothing to do, and a
/// start-up does not read every grant. The walk goes page by page, so memory stays flat
/// however many grants there are.
pub async fn rewrap_grant_tokens(store: &Store, vault: &Vault) -> Result<(), StartupError> {
    if !vault.has_previous_key() {
        return Ok(());
    }
    let mut count = 0;
    let mut after: Option<GrantId> = None;
    loop {
        let page = store
            .sealed_grant_tokens_after(after.as_ref(), REWRAP_PAGE)
            .await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (grant_id, sealed) in page {
            if rewrap_one_grant(store, vault, &grant_id, &sealed).await? {
                count += 1;
            }
        }
    }
    if count > 0 {
        tracing::info!(
            count,
            key_id = vault.current_key_id(),
            "re-wrapped grant data keys under the current encryption key"
        );
    }
    Ok(())
}

/// Re-wraps one grant's data key when it is wrapped under a previous key; whether it did
/// (a concurrent refresh that re-sealed the tokens first wins, and is already current).
async fn rewrap_one_grant(
    store: &Store,
    vault: &Vault,
    grant_id: &GrantId,
    sealed: &str,
) -> Result<bool, StartupError> {
    if !vault.envelope_needs_rewrap(sealed) {
        return Ok(false);
    }
    let context = crate::vault::context::grant_tokens(grant_id);
    let rewrapped = vault.rewrap_envelope(sealed, &context).map_err(|e| {
        ConfigError::new(
            "encryption.previous_key",
            format!("cannot re-wrap grant {grant_id}: {e}"),
        )
    })?;
    Ok(store
        .replace_sealed_grant_tokens(grant_id, sealed, rewrapped)
        .await?)
}

/// A secret from the environment (`value`) or from the file the operator named.
fn read_secret(
    key: &str,
    value: Option<&Secret>,
    file: Option<&Path>,
) -> Result<String, ConfigError> {
    match (value, file) {
        (Some(secret), _) => Ok(secret.expose().to_owned()),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .map_err(|e| {
                ConfigError::new(
                    format!("{key}_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            }),
        (None, None) => Err(ConfigError::new(key, "is required")),
    }
}
