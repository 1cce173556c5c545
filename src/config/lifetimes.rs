//! Access-token lifetimes beyond the default, and what they mean for signing keys: every
//! lifetime is bounded by `tokens.max_access_token_ttl_secs`, and a retired key stays published
//! until the longest token it can have signed has expired.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};
use crate::oauth::redirect_uri::AllowPattern;

/// Seconds of clock skew between instances and verifiers a retired key is kept beyond the
/// longest token lifetime.
pub const CLOCK_SKEW_SECS: u64 = 60;

/// The most `tokens.max_access_token_ttl_secs` may be: a week. A JWT cannot be recalled once
/// issued, so longer lifetimes only widen the window a leaked token works in.
pub const MAX_ACCESS_TOKEN_TTL_CEILING_SECS: u64 = 7 * 24 * 3600;

/// `[[token_lifetimes]]`: the access-token lifetime of tokens issued through a redirect URI
/// matching `redirect_uri` (a pattern as in `registration.redirect_uri_allowlist`), for hosts
/// that never refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenLifetimeConfig {
    pub redirect_uri: String,
    pub access_token_ttl_secs: u64,
}

impl Config {
    /// The longest an access token issued under this configuration can live.
    pub fn longest_access_token_ttl_secs(&self) -> u64 {
        self.tokens
            .max_access_token_ttl_secs
            .max(self.tokens.access_token_ttl_secs)
    }

    /// How long a retired signing key stays published.
    pub fn retired_key_published_secs(&self) -> u64 {
        self.keys
            .retired_key_published_secs
            .unwrap_or(self.longest_access_token_ttl_secs() + CLOCK_SKEW_SECS)
    }

    /// The configured lifetime patterns, parsed (validated at start).
    pub fn lifetime_patterns(&self) -> Vec<(AllowPattern, u64)> {
        self.token_lifetimes
            .iter()
            .filter_map(|rule| {
                AllowPattern::parse(&rule.redirect_uri)
                    .ok()
                    .map(|pattern| (pattern, rule.access_token_ttl_secs))
            })
            .collect()
    }

    pub(super) fn validate_key_schedule(&self) -> Result<(), ConfigError> {
        let t = &self.tokens;
        if t.max_access_token_ttl_secs < t.access_token_ttl_secs
            || t.max_access_token_ttl_secs > MAX_ACCESS_TOKEN_TTL_CEILING_SECS
        {
            return Err(ConfigError::new(
                "tokens.max_access_token_ttl_secs",
                format!(
                    "must be between tokens.access_token_ttl_secs ({}) and {MAX_ACCESS_TOKEN_TTL_CEILING_SECS} seconds, got {}",
                    t.access_token_ttl_secs, t.max_access_token_ttl_secs
                ),
            ));
        }
        for (i, rule) in self.token_lifetimes.iter().enumerate() {
            AllowPattern::parse(&rule.redirect_uri)
                .map_err(|e| ConfigError::new(format!("token_lifetimes[{i}].redirect_uri"), e))?;
            if !(60..=t.max_access_token_ttl_secs).contains(&rule.access_token_ttl_secs) {
                return Err(ConfigError::new(
                    format!("token_lifetimes[{i}].access_token_ttl_secs"),
                    format!(
                        "must be between 60 and tokens.max_access_token_ttl_secs ({}) seconds, got {}",
                        t.max_access_token_ttl_secs, rule.access_token_ttl_secs
                    ),
                ));
            }
        }
        let k = &self.keys;
        if k.rotate_every_days > 3650 {
            return Err(ConfigError::new(
                "keys.rotate_every_days",
                "must be at most 3650 (0 rotates only on request)",
            ));
        }
        if k.rotate_every_days > 0 && k.rotate_every_days * 86_400 <= k.activation_delay_secs {
            return Err(ConfigError::new(
                "keys.rotate_every_days",
                "must be longer than keys.activation_delay_secs, or each key would be replaced before it signs",
            ));
        }
        let shortest = self.longest_access_token_ttl_secs() + CLOCK_SKEW_SECS;
        if let Some(published) = k.retired_key_published_secs
            && published < shortest
        {
            return Err(ConfigError::new(
                "keys.retired_key_published_secs",
                format!(
                    "must be at least {shortest}: the longest access-token lifetime (tokens.max_access_token_ttl_secs) plus {CLOCK_SKEW_SECS} s, or tokens it signed would stop verifying before they expire"
                ),
            ));
        }
        Ok(())
    }
}
