//! The context (AES-GCM additional data) of every kind of sealed value, in one place.
//!
//! A context binds a sealed value to its purpose and its row: a value copied into another row
//! or column does not open. The strings are part of the data at rest: changing one makes every
//! value sealed under the old spelling unreadable, so they are pinned by a test below.

use crate::ids::{GrantId, TokenHash};

/// A grant's upstream tokens (an envelope, see [`super::Vault::seal_envelope`]).
pub fn grant_tokens(grant_id: &GrantId) -> String {
    format!("grant:{grant_id}")
}

/// The PKCE verifier of a pending login, sent upstream when the user comes back.
pub fn upstream_pkce(state_hash: &str) -> String {
    format!("upstream_pkce:{state_hash}")
}

/// The response a rotated refresh token gave, replayed within the grace window.
pub fn rotation_response(token_hash: &TokenHash) -> String {
    format!("refresh_successor:{token_hash}")
}

/// A private signing key.
pub fn signing_key(kid: &str) -> String {
    format!("signing_key:{kid}")
}

/// The known value that proves the configured key opens this database (also its setting name).
pub const VAULT_CHECK: &str = "vault_check";

/// The server's cookie-signing key (also its setting name).
pub const COOKIE_KEY: &str = "cookie_key";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_spellings_do_not_change() {
        assert_eq!(
            grant_tokens(&GrantId::from_stored("grt_1".into())),
            "grant:grt_1"
        );
        assert_eq!(upstream_pkce("ab"), "upstream_pkce:ab");
        assert_eq!(
            rotation_response(&TokenHash::from_stored("cd".into())),
            "refresh_successor:cd"
        );
        assert_eq!(signing_key("k1"), "signing_key:k1");
        assert_eq!(VAULT_CHECK, "vault_check");
        assert_eq!(COOKIE_KEY, "cookie_key");
    }
}
