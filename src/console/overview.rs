//! The console's overview: clients by kind, users, live grants, the last 24 hours on this
//! instance, the signing keys, and the warnings an operator must see. Every figure is read from
//! a counter or from memory: a page view counts no table ([`Store::recount_snapshots`] does,
//! in housekeeping).

use crate::config::{Config, ProviderKind};
use crate::monitoring::Metrics;
use crate::monitoring::recent::RecentCounts;
use crate::store::counters::{
    ADMIN_CLIENTS, CLIENT_DOCUMENTS, COUNTED_AT, DYNAMIC_CLIENTS, LIVE_GRANTS, USERS,
};
use crate::store::{Store, StoreError};
use crate::tokens::keyring::{KeySummary, SigningKeys};

/// The share of `registration.max_dynamic_clients` from which the overview warns.
pub const CAP_WARNING_PERCENT: u64 = 90;
/// With `keys.rotate_every_days = 0`, the age of the signing key from which the overview warns.
pub const UNROTATED_KEY_WARNING_DAYS: i64 = 90;

/// Everything the overview shows.
#[derive(Debug, Clone)]
pub struct Overview {
    pub figures: Figures,
    pub recent: RecentCounts,
    pub keys: Vec<KeySummary>,
    pub warnings: Vec<Warning>,
}

/// The counted figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub dynamic_clients: i64,
    pub admin_clients: i64,
    /// Cached Client ID Metadata Documents (and remembered failures to fetch one).
    pub metadata_documents: i64,
    pub users: i64,
    pub live_grants: i64,
    /// When housekeeping last counted users, live grants and admin clients; `None`: not yet.
    pub counted_at: Option<i64>,
}

/// Something an operator should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The simulated upstream is on: anyone can sign in as anyone.
    DevProvider,
    /// Anyone may register a client, with any redirect URI.
    OpenRegistration,
    /// Dynamic clients are at or above [`CAP_WARNING_PERCENT`] of the cap.
    ClientCapNearlyReached { count: i64, max: u64 },
    /// The signing key has signed for longer than the rotation policy says.
    KeyOlderThanPolicy {
        kid: String,
        age_days: i64,
        policy_days: i64,
    },
    /// No key signs: tokens cannot be issued.
    NoActiveKey,
}

/// The overview now.
pub async fn overview(
    store: &Store,
    config: &Config,
    keys: &SigningKeys,
    metrics: &Metrics,
    now: i64,
) -> Result<Overview, StoreError> {
    let counters = store.counters().await?;
    let read = |name: &str| counters.get(name).copied().unwrap_or(0);
    let figures = Figures {
        dynamic_clients: read(DYNAMIC_CLIENTS),
        admin_clients: read(ADMIN_CLIENTS),
        metadata_documents: read(CLIENT_DOCUMENTS),
        users: read(USERS),
        live_grants: read(LIVE_GRANTS),
        counted_at: Some(read(COUNTED_AT)).filter(|at| *at > 0),
    };
    let keys = keys.summaries();
    let warnings = warnings(config, &figures, &keys, now);
    Ok(Overview {
        figures,
        recent: metrics.recent(),
        keys,
        warnings,
    })
}

/// The warnings of a configuration, its figures and its keys at `now`.
pub fn warnings(config: &Config, figures: &Figures, keys: &[KeySummary], now: i64) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if config.upstream.provider == ProviderKind::Dev {
        warnings.push(Warning::DevProvider);
    }
    let registration = &config.registration;
    if !registration.require_initial_access_token && registration.redirect_uri_allowlist.is_empty()
    {
        warnings.push(Warning::OpenRegistration);
    }
    let max = registration.max_dynamic_clients;
    let count = u64::try_from(figures.dynamic_clients).unwrap_or(0);
    if max > 0 && count.saturating_mul(100) >= max.saturating_mul(CAP_WARNING_PERCENT) {
        warnings.push(Warning::ClientCapNearlyReached {
            count: figures.dynamic_clients,
            max,
        });
    }
    match keys.iter().find(|key| key.state == "active") {
        None => warnings.push(Warning::NoActiveKey),
        Some(key) => {
            let policy_days = match i64::try_from(config.keys.rotate_every_days).unwrap_or(0) {
                0 => UNROTATED_KEY_WARNING_DAYS,
                days => days,
            };
            let age_days = (now - key.activates_at.max(key.created_at)) / 86_400;
            if age_days > policy_days {
                warnings.push(Warning::KeyOlderThanPolicy {
                    kid: key.kid.clone(),
                    age_days,
                    policy_days,
                });
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(state: &'static str, activates_at: i64) -> KeySummary {
        KeySummary {
            kid: "k1".into(),
            state,
            created_at: activates_at,
            activates_at,
        }
    }

    fn safe_config() -> Config {
        let mut config = Config::default();
        config.upstream.provider = ProviderKind::Ownerrez;
        config.registration.require_initial_access_token = true;
        config.registration.max_dynamic_clients = 100;
        config.keys.rotate_every_days = 30;
        config
    }

    #[test]
    fn each_warning_and_its_absence() {
        let now = 1_000 * 86_400;
        let fresh = [key("active", now - 86_400)];
        let quiet = Figures::default();
        assert_eq!(warnings(&safe_config(), &quiet, &fresh, now), []);

        let mut dev = safe_config();
        dev.upstream.provider = ProviderKind::Dev;
        assert_eq!(warnings(&dev, &quiet, &fresh, now), [Warning::DevProvider]);

        let mut open = safe_config();
        open.registration.require_initial_access_token = false;
        assert_eq!(
            warnings(&open, &quiet, &fresh, now),
            [Warning::OpenRegistration]
        );
        open.registration.redirect_uri_allowlist = vec!["https://chatgpt.com/*".into()];
        assert_eq!(warnings(&open, &quiet, &fresh, now), []);

        let full = |count| Figures {
            dynamic_clients: count,
            ..Figures::default()
        };
        assert_eq!(warnings(&safe_config(), &full(89), &fresh, now), []);
        assert_eq!(
            warnings(&safe_config(), &full(90), &fresh, now),
            [Warning::ClientCapNearlyReached {
                count: 90,
                max: 100
            }]
        );

        let old = [key("active", now - 31 * 86_400)];
        assert_eq!(
            warnings(&safe_config(), &quiet, &old, now),
            [Warning::KeyOlderThanPolicy {
                kid: "k1".into(),
                age_days: 31,
                policy_days: 30
            }]
        );
        let mut on_request = safe_config();
        on_request.keys.rotate_every_days = 0;
        assert_eq!(warnings(&on_request, &quiet, &old, now), []);

        assert_eq!(
            warnings(&safe_config(), &quiet, &[key("next", now + 60)], now),
            [Warning::NoActiveKey]
        );
    }
}
