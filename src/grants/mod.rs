//! The token endpoint's grants and the revocation of what they issue.
//!
//! Each rule is a plain decision function over (request, stored state, now) returning a
//! decision value, unit-tested without a database: which authorization code is redeemed or
//! revokes what it issued ([`code`]), whether a refresh token rotates, replays its rotation
//! within the grace window or is reuse ([`refresh`]), what a client's revocation revokes
//! ([`token_revocation`], RFC 7009), what introspection answers ([`introspection`], RFC 7662),
//! whether a token exchange may proceed ([`exchange`], RFC 8693), and what the client is told
//! when the upstream login fails ([`upstream_login`]). The flows around them load the state
//! from the store, call the decision, and apply it (a single-use step with one conditional
//! `UPDATE` inside one transaction); the store decides nothing, and every lifetime it applies
//! comes from here ([`housekeeping_cutoffs`]). [`service`] holds what the flows run on and
//! builds the tokens they issue, [`revoke`] revokes grants on an operator's request,
//! [`upstream_tokens`] is how a grant keeps its upstream tokens sealed, and
//! [`upstream_refresh`] opens them and refreshes them under the grant's lease (for token
//! exchange and the gateway).

pub mod code;
pub mod connected;
pub mod exchange;
pub mod introspection;
pub mod refresh;
pub mod revoke;
pub mod service;
pub mod token_revocation;
pub mod upstream_login;
pub mod upstream_refresh;
pub mod upstream_tokens;

pub use revoke::{Revocation, revoke_grant, revoke_grant_as};

use crate::config::TokenConfig;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::resource::ResourceUri;
use crate::store::StoreError;
use crate::store::tokens::Cutoffs;

/// A live grant keeps its upstream tokens this long after its last login or upstream refresh
/// even with no usable family: a login's code (at most 10 minutes) may still be redeemed.
const UNUSED_GRANT_KEEPS_UPSTREAM_SECS: i64 = 3600;

/// An expired authorization code is kept this long, so that presenting it again is still told
/// apart from presenting an unknown one.
const EXPIRED_CODE_RETENTION_SECS: i64 = 3600;

/// A revoked grant stays listed (admin API) this long, then goes once nothing refers to it.
const REVOKED_GRANT_RETENTION_SECS: i64 = 30 * 24 * 3600;

/// What housekeeping at `now` may delete under this configuration.
pub fn housekeeping_cutoffs(config: &TokenConfig, now: i64) -> Cutoffs {
    Cutoffs {
        now,
        codes_expired_before: now - EXPIRED_CODE_RETENTION_SECS,
        // The window is closed once `now - rotated_at > grace` (see `refresh::decide_refresh`).
        successors_rotated_before: now - config.refresh_token_grace_secs as i64,
        grants_untouched_since: now - UNUSED_GRANT_KEEPS_UPSTREAM_SECS,
        grants_revoked_before: now - REVOKED_GRANT_RETENTION_SECS,
    }
}

fn grant_error(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

/// Fixed text for the client; the cause goes to the log.
fn server_error(error: StoreError) -> OAuthError {
    tracing::error!(%error, "token endpoint storage failure");
    OAuthError::new(
        ErrorCode::ServerError,
        "the server could not complete the request",
    )
}

/// RFC 8707 §2.2: a `resource` on the token request must be the one the grant is for.
fn check_resource(requested: Option<&str>, bound: &str) -> Result<(), OAuthError> {
    let Some(requested) = requested else {
        return Ok(());
    };
    let normalised = ResourceUri::from_request(requested)
        .map_err(|m| OAuthError::new(ErrorCode::InvalidTarget, m))?;
    if normalised.names(bound) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource differs from the one this authorization is for",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_must_match_the_grant() {
        assert!(check_resource(None, "https://h/mcp").is_ok());
        assert!(check_resource(Some("HTTPS://H/mcp"), "https://h/mcp").is_ok());
        assert!(check_resource(Some("https://h/mcp/"), "https://h/mcp").is_ok());
        assert_eq!(
            check_resource(Some("https://h/mcp/x"), "https://h/mcp")
                .unwrap_err()
                .code,
            ErrorCode::InvalidTarget
        );
        assert_eq!(
            check_resource(Some("https://other/mcp"), "https://h/mcp")
                .unwrap_err()
                .code,
            ErrorCode::InvalidTarget
        );
    }
}
