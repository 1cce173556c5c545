//! The operator's side of the server: Prometheus metrics and the audit trail's retention, and
//! their rules.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::validate::validate_sha256_hex;

/// Prometheus metrics at `/metrics`. Off by default; when on, served either on a separate
/// listener of their own (`listen`) or on the main listener to requests bearing a token
/// (`token_sha256`), never both and never openly on the main listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// A separate address (`127.0.0.1:9090`) that serves only `/metrics`, without a token.
    pub listen: Option<String>,
    /// SHA-256 (hex) of the bearer token that `/metrics` on the main listener requires.
    pub token_sha256: Option<String>,
}

/// Where `/metrics` is served, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsExposure {
    Off,
    Listener(SocketAddr),
    /// On the main listener, to requests bearing the token with this SHA-256 (lowercase hex).
    BearerToken(String),
}

impl MetricsConfig {
    /// Checks the section and says where the metrics are served.
    pub fn exposure(&self) -> Result<MetricsExposure, ConfigError> {
        if !self.enabled {
            return Ok(MetricsExposure::Off);
        }
        match (&self.listen, &self.token_sha256) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                "metrics.token_sha256",
                "set either metrics.listen (a separate listener) or metrics.token_sha256 (the main listener with a bearer token), not both",
            )),
            (None, None) => Err(ConfigError::new(
                "metrics.listen",
                "metrics are enabled but not exposed: set metrics.listen (a separate address such as 127.0.0.1:9090) or metrics.token_sha256 (serve /metrics on the main listener to a bearer token; `authbridge admin-token prometheus` makes one)",
            )),
            (Some(listen), None) => listen.parse().map(MetricsExposure::Listener).map_err(|_| {
                ConfigError::new(
                    "metrics.listen",
                    format!("`{listen}` is not an address such as 127.0.0.1:9090"),
                )
            }),
            (None, Some(hash)) => {
                validate_sha256_hex("metrics.token_sha256", hash)?;
                Ok(MetricsExposure::BearerToken(hash.to_ascii_lowercase()))
            }
        }
    }
}

/// The audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Entries older than this many days are deleted by housekeeping; 0 keeps them forever.
    pub retention_days: u64,
}

/// The longest retention that is not "forever": a hundred years.
const MAX_RETENTION_DAYS: u64 = 36_500;

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 365,
        }
    }
}

impl AuditConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.retention_days > MAX_RETENTION_DAYS {
            return Err(ConfigError::new(
                "audit.retention_days",
                format!(
                    "must be at most {MAX_RETENTION_DAYS} days (0 keeps entries forever), got {}",
                    self.retention_days
                ),
            ));
        }
        Ok(())
    }

    /// Entries recorded before this time (Unix seconds) may be deleted at `now`; `None` keeps
    /// everything.
    pub fn purge_before(&self, now: i64) -> Option<i64> {
        (self.retention_days > 0).then(|| now - (self.retention_days as i64) * 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn metrics(listen: Option<&str>, token: Option<&str>) -> MetricsConfig {
        MetricsConfig {
            enabled: true,
            listen: listen.map(str::to_owned),
            token_sha256: token.map(str::to_owned),
        }
    }

    #[test]
    fn metrics_exposure_is_exactly_one_choice() {
        assert_eq!(
            MetricsConfig::default().exposure().unwrap(),
            MetricsExposure::Off
        );
        assert_eq!(
            metrics(Some("127.0.0.1:9090"), None).exposure().unwrap(),
            MetricsExposure::Listener("127.0.0.1:9090".parse().unwrap())
        );
        assert_eq!(
            metrics(None, Some(&HASH.to_uppercase()))
                .exposure()
                .unwrap(),
            MetricsExposure::BearerToken(HASH.into())
        );
        let cases = [
            (
                "enabled without an exposure",
                metrics(None, None),
                "metrics.listen",
            ),
            (
                "both exposures",
                metrics(Some("127.0.0.1:9090"), Some(HASH)),
                "metrics.token_sha256",
            ),
            (
                "a listen that is no address",
                metrics(Some("localhost"), None),
                "metrics.listen",
            ),
            (
                "a token that is no hash",
                metrics(None, Some("secret")),
                "metrics.token_sha256",
            ),
        ];
        for (name, config, key) in cases {
            assert_eq!(config.exposure().unwrap_err().key, key, "{name}");
        }
    }

    #[test]
    fn audit_retention() {
        let days = |retention_days| AuditConfig { retention_days };
        assert_eq!(days(0).purge_before(1_000_000), None, "0 keeps everything");
        assert_eq!(days(1).purge_before(1_000_000), Some(1_000_000 - 86_400));
        assert!(days(MAX_RETENTION_DAYS).validate().is_ok());
        assert_eq!(
            days(MAX_RETENTION_DAYS + 1).validate().unwrap_err().key,
            "audit.retention_days"
        );
    }
}
