//! The configuration's rules: everything checked once at start, each error naming its key.
//! The `upstream` section's rules are in `validate_upstream`, registration's (with metadata
//! documents and admin tokens) in `validate_registration`.

use super::{Config, ConfigError, JWKS_MAX_AGE_SECS, env_var_name};
use crate::oauth::issuer::Issuer;
use crate::oauth::resource::ResourceUri;

impl Config {
    /// Checks every rule that does not need the network or the file system.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let listen = self.listen_addr()?;
        let issuer = self.issuer(listen)?;
        if self.server.body_limit_bytes < 1024 {
            return Err(ConfigError::new(
                "server.body_limit_bytes",
                "must be at least 1024",
            ));
        }
        if let Some(url) = &self.database.url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "database.url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::new(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        self.validate_encryption()?;
        self.validate_lifetimes()?;
        self.validate_key_schedule()?;
        self.validate_timeouts()?;
        self.validate_upstream(listen, &issuer)?;
        self.validate_login()?;
        self.validate_resources(&issuer)?;
        self.validate_registration()?;
        self.metrics.exposure()?;
        self.audit.validate()?;
        self.console.validate(!self.admin.tokens.is_empty())?;
        self.account.validate()?;
        if self
            .log
            .level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return Err(ConfigError::new(
                "log.level",
                format!("`{}` is not a log filter", self.log.level),
            ));
        }
        Ok(())
    }

    fn validate_encryption(&self) -> Result<(), ConfigError> {
        let encryption = &self.encryption;
        validate_key_id("encryption.key_id", &encryption.key_id)?;
        if encryption.key.is_some() && encryption.key_file.is_some() {
            return Err(ConfigError::new(
                "encryption.key",
                "set either encryption.key or encryption.key_file, not both",
            ));
        }
        if let Some(key) = &encryption.key {
            crate::vault::parse_key(key.expose())
                .map_err(|e| ConfigError::new("encryption.key", e))?;
        }
        if encryption.key.is_none() && encryption.key_file.is_none() && !self.is_dev_mode() {
            return Err(ConfigError::new(
                "encryption.key",
                format!(
                    "an encryption key is required outside development mode; set {} to 32 random bytes in base64 (openssl rand -base64 32) or name a file with encryption.key_file",
                    env_var_name("encryption.key")
                ),
            ));
        }
        let previous_given =
            encryption.previous_key.is_some() || encryption.previous_key_file.is_some();
        match (&encryption.previous_key_id, previous_given) {
            (Some(id), true) => {
                validate_key_id("encryption.previous_key_id", id)?;
                if *id == encryption.key_id {
                    return Err(ConfigError::new(
                        "encryption.previous_key_id",
                        "must differ from encryption.key_id",
                    ));
                }
            }
            (None, true) => {
                return Err(ConfigError::new(
                    "encryption.previous_key_id",
                    "is required with a previous key",
                ));
            }
            (Some(_), false) => {
                return Err(ConfigError::new(
                    "encryption.previous_key",
                    "encryption.previous_key_id is set but no previous key is given",
                ));
            }
            (None, false) => {}
        }
        if let Some(key) = &encryption.previous_key {
            crate::vault::parse_key(key.expose())
                .map_err(|e| ConfigError::new("encryption.previous_key", e))?;
        }
        Ok(())
    }

    fn validate_lifetimes(&self) -> Result<(), ConfigError> {
        let t = &self.tokens;
        let in_range = |key: &str, value: u64, min: u64, max: u64| {
            if value < min || value > max {
                Err(ConfigError::new(
                    key,
                    format!("must be between {min} and {max} seconds, got {value}"),
                ))
            } else {
                Ok(())
            }
        };
        in_range(
            "tokens.access_token_ttl_secs",
            t.access_token_ttl_secs,
            60,
            24 * 3600,
        )?;
        in_range(
            "tokens.authorization_code_ttl_secs",
            t.authorization_code_ttl_secs,
            10,
            600,
        )?;
        in_range(
            "tokens.refresh_token_idle_ttl_secs",
            t.refresh_token_idle_ttl_secs,
            300,
            365 * 24 * 3600,
        )?;
        in_range(
            "tokens.refresh_token_absolute_ttl_secs",
            t.refresh_token_absolute_ttl_secs,
            t.refresh_token_idle_ttl_secs,
            365 * 24 * 3600,
        )?;
        in_range(
            "tokens.refresh_token_grace_secs",
            t.refresh_token_grace_secs,
            0,
            600,
        )?;
        in_range(
            "keys.refresh_interval_secs",
            self.keys.refresh_interval_secs,
            1,
            3600,
        )?;
        // A key must be in every verifier's cached JWKS before it signs: the cache may be
        // JWKS_MAX_AGE_SECS old, and another instance may learn of the key one interval late.
        let min_delay = JWKS_MAX_AGE_SECS + self.keys.refresh_interval_secs;
        in_range(
            "keys.activation_delay_secs",
            self.keys.activation_delay_secs,
            min_delay,
            7 * 24 * 3600,
        )?;
        Ok(())
    }

    fn validate_timeouts(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
            (
                "server.body_read_timeout_secs",
                self.server.body_read_timeout_secs,
            ),
        ] {
            if !(1..=300).contains(&value) {
                return Err(ConfigError::new(
                    key,
                    format!("must be between 1 and 300 seconds, got {value}"),
                ));
            }
        }
        Ok(())
    }

    /// The `login` section: the pending request's lifetime, remembered approvals, the
    /// per-source limit of `/authorize`.
    fn validate_login(&self) -> Result<(), ConfigError> {
        if self.login.pending_request_ttl_secs < 60 || self.login.pending_request_ttl_secs > 600 {
            return Err(ConfigError::new(
                "login.pending_request_ttl_secs",
                "must be between 60 and 600",
            ));
        }
        if self.login.remember_consent_secs > 365 * 24 * 3600 {
            return Err(ConfigError::new(
                "login.remember_consent_secs",
                "must be at most 31536000 (a year)",
            ));
        }
        if self.login.per_source_limit == 0 {
            return Err(ConfigError::new(
                "login.per_source_limit",
                "must be at least 1",
            ));
        }
        if self.login.per_source_window_secs == 0 {
            return Err(ConfigError::new(
                "login.per_source_window_secs",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    fn validate_resources(&self, issuer: &Issuer) -> Result<(), ConfigError> {
        if self.resources.is_empty() {
            return Err(ConfigError::new(
                "resources",
                "at least one resource must be configured",
            ));
        }
        let mut seen = Vec::new();
        for (i, resource) in self.resources.iter().enumerate() {
            let key = |field: &str| format!("resources[{i}].{field}");
            let uri =
                ResourceUri::parse(&resource.uri).map_err(|e| ConfigError::new(key("uri"), e))?;
            if seen.contains(&uri) {
                return Err(ConfigError::new(key("uri"), "is listed twice"));
            }
            super::proxy::validate_proxy(i, resource, &uri, issuer)?;
            seen.push(uri);
            if resource.name.trim().is_empty() {
                return Err(ConfigError::new(key("name"), "must not be empty"));
            }
            if resource.scopes.is_empty() {
                return Err(ConfigError::new(
                    key("scopes"),
                    "must list at least one scope",
                ));
            }
            for scope in &resource.scopes {
                if scope == crate::oauth::scope::OFFLINE_ACCESS {
                    return Err(ConfigError::new(
                        key("scopes"),
                        "offline_access is not a resource's scope: it asks for a refresh token, which every grant gets",
                    ));
                }
                if !crate::oauth::scope::is_scope_token(scope) {
                    return Err(ConfigError::new(
                        key("scopes"),
                        format!("`{scope}` is not a valid scope token"),
                    ));
                }
            }
            for scope in &resource.default_scopes {
                if !resource.scopes.contains(scope) {
                    return Err(ConfigError::new(
                        key("default_scopes"),
                        format!("`{scope}` is not one of this resource's scopes"),
                    ));
                }
            }
        }
        Ok(())
    }
}

pub(super) fn validate_sha256_hex(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            "must be a SHA-256 hash: 64 hexadecimal characters",
        ))
    }
}

fn validate_key_id(key: &str, id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            "must be 1 to 32 characters of A-Z, a-z, 0-9, - and _",
        ))
    }
}
