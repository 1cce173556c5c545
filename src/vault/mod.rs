//! Encryption of data at rest: private signing keys, upstream tokens, and the other values
//! whose contexts are listed in [`context`].
//!
//! AES-256-GCM with a random 96-bit nonce per value, under a key from configuration. Every
//! sealed value names the id of the key that sealed it, so the configured key can be rotated:
//! the new key seals, the previous one still opens. The caller passes a context string (one of
//! [`context`]) that is authenticated with the value, so a sealed value copied
//! into another row or column does not open. Key material never leaves this module.

pub mod context;
mod envelope;

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Length of an encryption key in bytes.
pub const KEY_LEN: usize = 32;

/// Version tag of the sealed format: `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`.
const FORMAT: &str = "v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("the value was sealed with encryption key `{0}`, which is not configured")]
    UnknownKey(String),
    #[error("the sealed value is malformed")]
    Malformed,
    #[error(
        "the value does not open with the configured key (wrong key, or the value was altered)"
    )]
    Rejected,
}

/// The configured encryption keys: one that seals, and optionally an older one that still opens.
pub struct Vault {
    current_id: String,
    keys: HashMap<String, RandomizedNonceKey>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("current_id", &self.current_id)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// A vault that seals with `current` and also opens values sealed with `previous`.
    pub fn new(
        current: (String, [u8; KEY_LEN]),
        previous: Option<(String, [u8; KEY_LEN])>,
    ) -> Self {
        let mut keys = HashMap::new();
        for (id, bytes) in std::iter::once(current.clone()).chain(previous) {
            let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
                .expect("a 32-byte AES-256 key is always accepted");
            keys.insert(id, key);
        }
        Self {
            current_id: current.0,
            keys,
        }
    }

    /// The id of the key that seals new values.
    pub fn current_key_id(&self) -> &str {
        &self.current_id
    }

    /// Whether a previous key is configured besides the current one: only then can anything
    /// sealed before a rotation be opened, so only then is there anything to re-seal.
    pub fn has_previous_key(&self) -> bool {
        self.keys.len() > 1
    }

    /// Encrypts `plaintext`, binding it to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let key = &self.keys[&self.current_id];
        let mut buffer = plaintext.to_vec();
        let nonce = key
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut buffer)
            .expect("AES-GCM sealing does not fail for in-memory buffers");
        let mut payload = Vec::with_capacity(NONCE_LEN + buffer.len());
        payload.extend_from_slice(nonce.as_ref());
        payload.extend_from_slice(&buffer);
        format!(
            "{FORMAT}.{}.{}",
            self.current_id,
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    /// Decrypts a value sealed by [`Vault::seal`] with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, VaultError> {
        let (key_id, payload) = Self::split(sealed)?;
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| VaultError::UnknownKey(key_id.to_owned()))?;
        let mut payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| VaultError::Malformed)?;
        if payload.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(VaultError::Malformed);
        }
        let nonce = Nonce::try_assume_unique_for_key(&payload[..NONCE_LEN])
            .map_err(|_| VaultError::Malformed)?;
        let plaintext = key
            .open_in_place(
                nonce,
                Aad::from(context.as_bytes()),
                &mut payload[NONCE_LEN..],
            )
            .map_err(|_| VaultError::Rejected)?;
        Ok(plaintext.to_vec())
    }

    /// Whether a sealed value should be sealed again under the current key.
    pub fn is_sealed_with_old_key(&self, sealed: &str) -> bool {
        Self::split(sealed).is_ok_and(|(key_id, _)| key_id != self.current_id)
    }

    fn split(sealed: &str) -> Result<(&str, &str), VaultError> {
        let mut parts = sealed.splitn(3, '.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(FORMAT), Some(key_id), Some(payload)) => Ok((key_id, payload)),
            _ => Err(VaultError::Malformed),
        }
    }
}

/// Why a configured key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("is not valid base64 (generate one with `openssl rand -base64 32`)")]
    NotBase64,
    #[error("must be {KEY_LEN} bytes, got {0}")]
    Length(usize),
}

/// Parses a key given as base64 (standard or URL-safe alphabet) of exactly 32 bytes.
pub fn parse_key(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let text = text.trim();
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .map_err(|_| KeyError::NotBase64)?;
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| KeyError::Length(bytes.len()))
}

/// A fresh random key, base64-encoded, for development mode.
pub fn generate_key() -> String {
    let mut bytes = [0u8; KEY_LEN];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator is available");
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(id: &str, byte: u8) -> Vault {
        Vault::new((id.into(), [byte; KEY_LEN]), None)
    }

    #[test]
    fn round_trip() {
        let v = vault("1", 7);
        let sealed = v.seal(b"secret", "ctx");
        assert!(sealed.starts_with("v1.1."));
        assert!(!sealed.contains("secret"));
        assert_eq!(v.open(&sealed, "ctx").unwrap(), b"secret");
    }

    #[test]
    fn nonces_differ_between_seals() {
        let v = vault("1", 7);
        assert_ne!(v.seal(b"same", "ctx"), v.seal(b"same", "ctx"));
    }

    #[test]
    fn refusals() {
        let v = vault("1", 7);
        let sealed = v.seal(b"secret", "ctx");
        assert_eq!(
            v.open(&sealed, "other"),
            Err(VaultError::Rejected),
            "other context"
        );
        assert_eq!(
            vault("1", 8).open(&sealed, "ctx"),
            Err(VaultError::Rejected),
            "other key, same id"
        );
        assert_eq!(
            vault("2", 7).open(&sealed, "ctx"),
            Err(VaultError::UnknownKey("1".into())),
            "unknown id"
        );
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            v.open(std::str::from_utf8(&altered).unwrap(), "ctx"),
            Err(VaultError::Rejected),
            "altered"
        );
        assert_eq!(
            v.open("v1.1.AAAA", "ctx"),
            Err(VaultError::Malformed),
            "too short"
        );
        assert_eq!(
            v.open("v2.1.AAAA", "ctx"),
            Err(VaultError::Malformed),
            "other format"
        );
    }

    #[test]
    fn previous_key_still_opens_after_rotation() {
        let old = vault("old", 1);
        let sealed = old.seal(b"secret", "ctx");
        let rotated = Vault::new(
            ("new".into(), [2; KEY_LEN]),
            Some(("old".into(), [1; KEY_LEN])),
        );
        assert!(rotated.is_sealed_with_old_key(&sealed));
        assert_eq!(rotated.open(&sealed, "ctx").unwrap(), b"secret");
        assert!(!rotated.is_sealed_with_old_key(&rotated.seal(b"x", "ctx")));
    }

    #[test]
    fn key_parsing() {
        assert!(parse_key(&generate_key()).is_ok());
        assert!(parse_key("not base64!").is_err());
        assert_eq!(
            parse_key("AAAA").unwrap_err().to_string(),
            "must be 32 bytes, got 3"
        );
    }
}
