//! Access tokens whose signature has verified, remembered by the SHA-256 of the token until
//! they expire: a host sends the same token with each of its requests, and checking an RS256
//! signature costs more than the rest of a proxied request.
//!
//! Only what the signed token itself says is remembered, and a remembered token is taken only
//! while it has not expired, its audience is the resource asked for and its signing key is still
//! published. Whether its grant is still live (revoked, client disabled, token deny-listed) is
//! read per request, so that a revocation takes effect on the very next request, on any
//! instance. The token itself is not kept, only its digest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::tokens::access::AccessClaims;

/// At most this many tokens are remembered (a few hundred bytes each).
const CAPACITY: usize = 10_000;

/// The SHA-256 of a token.
pub type TokenDigest = [u8; 32];

/// A token whose signature and claims have verified.
pub struct VerifiedToken {
    pub claims: AccessClaims,
    /// The key that signed it: the token is good only while that key is published.
    pub kid: String,
}

#[derive(Default)]
pub struct VerifiedTokens {
    entries: Mutex<HashMap<TokenDigest, Arc<VerifiedToken>>>,
}

pub fn token_digest(token: &str) -> TokenDigest {
    digest(&SHA256, token.as_bytes())
        .as_ref()
        .try_into()
        .expect("a SHA-256 digest is 32 bytes")
}

/// The `kid` of a token's header (one that has verified: it has exactly one).
pub fn key_id(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Header {
        kid: String,
    }
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    serde_json::from_slice::<Header>(&header)
        .ok()
        .map(|header| header.kid)
}

impl VerifiedTokens {
    /// The token with this digest, if it was remembered and has not expired at `now`.
    pub fn get(&self, digest: &TokenDigest, now: i64) -> Option<Arc<VerifiedToken>> {
        let entries = self.entries.lock().expect("never poisoned");
        entries
            .get(digest)
            .filter(|token| token.claims.exp > now)
            .cloned()
    }

    /// Remembers `token`. When full, the expired entries go; when that is not enough, all go
    /// (they are only a shortcut, and each costs one signature check to learn again).
    pub fn insert(&self, digest: TokenDigest, token: Arc<VerifiedToken>, now: i64) {
        let mut entries = self.entries.lock().expect("never poisoned");
        if entries.len() >= CAPACITY {
            entries.retain(|_, token| token.claims.exp > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(digest, token);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(exp: i64) -> Arc<VerifiedToken> {
        Arc::new(VerifiedToken {
            claims: AccessClaims {
                iss: "https://auth.example.com".into(),
                sub: "u1".into(),
                aud: "https://mcp.example.com/mcp".into(),
                client_id: "c1".into(),
                scope: "mcp".into(),
                iat: 0,
                exp,
                jti: "j1".into(),
                auth_time: 0,
            },
            kid: "k1".into(),
        })
    }

    #[test]
    fn a_remembered_token_is_taken_until_it_expires() {
        let tokens = VerifiedTokens::default();
        let digest = token_digest("a.b.c");
        assert!(tokens.get(&digest, 0).is_none());
        tokens.insert(digest, token(100), 0);
        assert!(tokens.get(&digest, 99).is_some());
        assert!(tokens.get(&digest, 100).is_none(), "expired at exp");
        assert!(tokens.get(&token_digest("a.b.d"), 0).is_none());
    }

    #[test]
    fn the_memory_is_bounded() {
        let tokens = VerifiedTokens::default();
        for i in 0..CAPACITY {
            tokens.insert(token_digest(&i.to_string()), token(10), 0);
        }
        assert_eq!(tokens.len(), CAPACITY);
        // Full of live tokens: all go.
        tokens.insert(token_digest("one more"), token(10), 0);
        assert_eq!(tokens.len(), 1);
        for i in 0..CAPACITY - 1 {
            tokens.insert(token_digest(&i.to_string()), token(10), 0);
        }
        // Full, and all expired by now: only they go.
        tokens.insert(token_digest("fresh"), token(100), 50);
        assert_eq!(tokens.len(), 1);
        assert!(tokens.get(&token_digest("fresh"), 50).is_some());
    }

    #[test]
    fn the_key_id_comes_from_the_header() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"at+jwt","kid":"k-7"}"#);
        assert_eq!(key_id(&format!("{header}.e30.sig")).as_deref(), Some("k-7"));
        assert_eq!(key_id("not base64!.e30.sig"), None);
    }
}
