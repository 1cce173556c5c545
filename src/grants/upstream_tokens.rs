//! The upstream tokens a grant holds, sealed in the vault as an envelope bound to the grant
//! (`vault::context::grant_tokens`). Written by the login callback and by the upstream refresh
//! of a token exchange; read by token exchange and by revocation.

use serde::{Deserialize, Serialize};

use crate::ids::GrantId;
use crate::upstream::UpstreamTokens;
use crate::vault::{Vault, VaultError, context};

/// What is sealed in a grant: the upstream tokens, without the user's identity.
#[derive(Serialize, Deserialize)]
pub struct SealedUpstreamTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<i64>,
}

/// Why a grant's sealed tokens could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("the opened value is not the sealed upstream tokens' format")]
    Format,
}

impl SealedUpstreamTokens {
    /// The part of an upstream answer that the grant keeps.
    pub fn from_upstream(tokens: &UpstreamTokens) -> Self {
        Self {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            expires_at: tokens.expires_at,
        }
    }

    /// The plaintext that is sealed.
    pub fn to_plaintext(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("tokens serialise")
    }

    /// Seals the tokens for the grant `grant_id`.
    pub fn seal(&self, vault: &Vault, grant_id: &GrantId) -> String {
        seal_plaintext(vault, &self.to_plaintext(), grant_id)
    }

    /// Opens what [`SealedUpstreamTokens::seal`] sealed for the grant `grant_id`.
    pub fn open(vault: &Vault, sealed: &str, grant_id: &GrantId) -> Result<Self, OpenError> {
        let plain = vault.open_envelope(sealed, &context::grant_tokens(grant_id))?;
        serde_json::from_slice(&plain).map_err(|_| OpenError::Format)
    }
}

/// Seals an already serialised [`SealedUpstreamTokens`] for the grant `grant_id` (the login
/// serialises once, before the grant id is known).
pub fn seal_plaintext(vault: &Vault, plaintext: &[u8], grant_id: &GrantId) -> String {
    vault.seal_envelope(plaintext, &context::grant_tokens(grant_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: &str) -> GrantId {
        id.parse().unwrap()
    }

    fn vault() -> Vault {
        Vault::new(("1".into(), [7; 32]), None)
    }

    #[test]
    fn sealed_tokens_open_only_for_their_grant() {
        let vault = vault();
        let tokens = SealedUpstreamTokens {
            access_token: "at".into(),
            refresh_token: Some("rt".into()),
            expires_at: Some(5),
        };
        let sealed = tokens.seal(&vault, &grant("grt_a"));
        let opened = SealedUpstreamTokens::open(&vault, &sealed, &grant("grt_a")).unwrap();
        assert_eq!(opened.access_token, "at");
        assert_eq!(opened.refresh_token.as_deref(), Some("rt"));
        assert_eq!(opened.expires_at, Some(5));
        assert!(matches!(
            SealedUpstreamTokens::open(&vault, &sealed, &grant("grt_b")),
            Err(OpenError::Vault(_))
        ));
    }

    #[test]
    fn a_sealed_value_of_another_shape_is_a_format_error() {
        let vault = vault();
        let sealed = seal_plaintext(&vault, b"[1, 2]", &grant("grt_a"));
        assert!(matches!(
            SealedUpstreamTokens::open(&vault, &sealed, &grant("grt_a")),
            Err(OpenError::Format)
        ));
    }
}
