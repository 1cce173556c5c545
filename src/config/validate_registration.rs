//! The rules of dynamic registration (`registration`), client metadata documents
//! (`client_metadata_documents`) and the admin API's tokens (`admin.tokens`).

use super::validate::validate_sha256_hex;
use super::{Config, ConfigError};
use crate::oauth::redirect_scheme::{is_forbidden_scheme, is_scheme_syntax};

impl Config {
    /// The `registration` section: initial access tokens, limits, the redirect-URI allow-list
    /// and the accepted private-use schemes; then the metadata documents and the admin tokens.
    pub(super) fn validate_registration(&self) -> Result<(), ConfigError> {
        let r = &self.registration;
        if r.require_initial_access_token && r.initial_access_token_hashes.is_empty() {
            return Err(ConfigError::new(
                "registration.initial_access_token_hashes",
                "must list at least one token hash when registration.require_initial_access_token is true",
            ));
        }
        for hash in &r.initial_access_token_hashes {
            validate_sha256_hex("registration.initial_access_token_hashes", hash)?;
        }
        for (key, value) in [
            (
                "registration.per_source_limit",
                u64::from(r.per_source_limit),
            ),
            (
                "registration.per_source_window_secs",
                r.per_source_window_secs,
            ),
            ("registration.max_redirect_uris", r.max_redirect_uris as u64),
            ("registration.reap_interval_secs", r.reap_interval_secs),
            (
                "registration.reap_unauthorized_after_secs",
                r.reap_unauthorized_after_secs,
            ),
            (
                "registration.reap_unused_after_days",
                r.reap_unused_after_days,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if r.max_redirect_uri_length < 20 {
            return Err(ConfigError::new(
                "registration.max_redirect_uri_length",
                "must be at least 20",
            ));
        }
        for (i, pattern) in r.redirect_uri_allowlist.iter().enumerate() {
            crate::oauth::redirect_uri::AllowPattern::parse(pattern).map_err(|e| {
                ConfigError::new(format!("registration.redirect_uri_allowlist[{i}]"), e)
            })?;
        }
        self.validate_custom_redirect_schemes()?;
        self.validate_client_metadata_documents()?;
        self.validate_admin_tokens()
    }

    /// `registration.custom_redirect_schemes`: schemes an app may register beyond the
    /// reverse-domain ones (RFC 8252 §7.1), never the system's or the browser's own.
    fn validate_custom_redirect_schemes(&self) -> Result<(), ConfigError> {
        for (i, scheme) in self.registration.custom_redirect_schemes.iter().enumerate() {
            let key = format!("registration.custom_redirect_schemes[{i}]");
            if !is_scheme_syntax(scheme) || matches!(scheme.as_str(), "http" | "https") {
                return Err(ConfigError::new(
                    key,
                    "must be a URI scheme in lower case without `:` (e.g. cursor), other than http and https",
                ));
            }
            if is_forbidden_scheme(scheme) {
                return Err(ConfigError::new(
                    key,
                    "belongs to the operating system or the browser and is never a redirect target",
                ));
            }
        }
        Ok(())
    }

    /// `client_metadata_documents`: the fetch's bounds and the cache's.
    fn validate_client_metadata_documents(&self) -> Result<(), ConfigError> {
        let d = &self.client_metadata_documents;
        if d.timeout_ms == 0 || d.timeout_ms > 30_000 {
            return Err(ConfigError::new(
                "client_metadata_documents.timeout_ms",
                "must be between 1 and 30000",
            ));
        }
        if d.max_bytes < 256 || d.max_bytes > 64 * 1024 {
            return Err(ConfigError::new(
                "client_metadata_documents.max_bytes",
                "must be between 256 and 65536",
            ));
        }
        if d.min_cache_secs > d.max_cache_secs {
            return Err(ConfigError::new(
                "client_metadata_documents.min_cache_secs",
                "must not exceed client_metadata_documents.max_cache_secs",
            ));
        }
        if d.failure_cache_secs > 3600 {
            return Err(ConfigError::new(
                "client_metadata_documents.failure_cache_secs",
                "must be between 0 and 3600",
            ));
        }
        if d.max_cached_documents == 0 {
            return Err(ConfigError::new(
                "client_metadata_documents.max_cached_documents",
                "must be at least 1",
            ));
        }
        if !(1..=64).contains(&d.max_concurrent_fetches_per_host) {
            return Err(ConfigError::new(
                "client_metadata_documents.max_concurrent_fetches_per_host",
                "must be between 1 and 64",
            ));
        }
        Ok(())
    }

    /// `admin.tokens`: each named once, each a SHA-256 in hex.
    fn validate_admin_tokens(&self) -> Result<(), ConfigError> {
        let mut names = Vec::new();
        for (i, token) in self.admin.tokens.iter().enumerate() {
            if token.name.trim().is_empty() || token.name.len() > 64 {
                return Err(ConfigError::new(
                    format!("admin.tokens[{i}].name"),
                    "must be 1 to 64 characters",
                ));
            }
            if names.contains(&&token.name) {
                return Err(ConfigError::new(
                    format!("admin.tokens[{i}].name"),
                    "is used twice",
                ));
            }
            names.push(&token.name);
            validate_sha256_hex(&format!("admin.tokens[{i}].sha256"), &token.sha256)?;
        }
        Ok(())
    }
}
