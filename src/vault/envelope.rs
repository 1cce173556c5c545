//! Envelope encryption for values that belong to one grant (the upstream tokens).
//!
//! Each value gets its own random 256-bit data key; the data encrypts the value, and the data
//! key is stored *wrapped*: encrypted by one or more key-encryption keys. Today the only
//! wrapping is by the vault's configured key. The list of wrappings is what allows the planned
//! change where the data key is also wrapped by keys derived from our own tokens (so that a
//! database plus the server key alone no longer open a user's upstream token): adding a
//! wrapping kind is a change in this module only.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{KEY_LEN, Vault, VaultError};

/// The stored form: JSON.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// Format version.
    v: u8,
    /// The data key, wrapped by each key-encryption key that may open it.
    keys: Vec<WrappedKey>,
    /// base64url(nonce ‖ ciphertext ‖ tag) of the value under the data key.
    data: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct WrappedKey {
    /// Which kind of key wraps it: `vault` (the configured key; its id is inside the sealed
    /// value).
    by: String,
    key: String,
}

const WRAPPED_BY_VAULT: &str = "vault";

impl Vault {
    /// Encrypts `plaintext` under a fresh data key wrapped by the vault's current key. `context`
    /// binds both the value and its data key to where they are stored.
    pub fn seal_envelope(&self, plaintext: &[u8], context: &str) -> String {
        let mut data_key = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut data_key).expect("the system random generator is available");
        let key = RandomizedNonceKey::new(&AES_256_GCM, &data_key).expect("a 32-byte key");
        let mut buffer = plaintext.to_vec();
        let nonce = key
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut buffer)
            .expect("AES-GCM sealing does not fail for in-memory buffers");
        let mut data = nonce.as_ref().to_vec();
        data.extend_from_slice(&buffer);
        let envelope = Envelope {
            v: 1,
            keys: vec![WrappedKey {
                by: WRAPPED_BY_VAULT.into(),
                key: self.seal(&data_key, &key_context(context)),
            }],
            data: URL_SAFE_NO_PAD.encode(data),
        };
        serde_json::to_string(&envelope).expect("an envelope serialises")
    }

    /// Decrypts a value sealed by [`Vault::seal_envelope`] with the same `context`.
    pub fn open_envelope(&self, sealed: &str, context: &str) -> Result<Vec<u8>, VaultError> {
        let envelope: Envelope = serde_json::from_str(sealed).map_err(|_| VaultError::Malformed)?;
        if envelope.v != 1 {
            return Err(VaultError::Malformed);
        }
        let wrapped = envelope
            .keys
            .iter()
            .find(|k| k.by == WRAPPED_BY_VAULT)
            .ok_or(VaultError::Malformed)?;
        let data_key = self.open(&wrapped.key, &key_context(context))?;
        let key =
            RandomizedNonceKey::new(&AES_256_GCM, &data_key).map_err(|_| VaultError::Malformed)?;
        let mut data = URL_SAFE_NO_PAD
            .decode(&envelope.data)
            .map_err(|_| VaultError::Malformed)?;
        if data.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(VaultError::Malformed);
        }
        let nonce = Nonce::try_assume_unique_for_key(&data[..NONCE_LEN])
            .map_err(|_| VaultError::Malformed)?;
        let plaintext = key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut data[NONCE_LEN..])
            .map_err(|_| VaultError::Rejected)?;
        Ok(plaintext.to_vec())
    }

    /// Re-wraps an envelope's data key under the current vault key (after a key rotation),
    /// without touching the data.
    pub fn rewrap_envelope(&self, sealed: &str, context: &str) -> Result<String, VaultError> {
        let mut envelope: Envelope =
            serde_json::from_str(sealed).map_err(|_| VaultError::Malformed)?;
        for wrapped in envelope
            .keys
            .iter_mut()
            .filter(|k| k.by == WRAPPED_BY_VAULT)
        {
            let data_key = self.open(&wrapped.key, &key_context(context))?;
            wrapped.key = self.seal(&data_key, &key_context(context));
        }
        Ok(serde_json::to_string(&envelope).expect("an envelope serialises"))
    }
}

impl Vault {
    /// Whether an envelope's data key is wrapped under a previous vault key.
    pub fn envelope_needs_rewrap(&self, sealed: &str) -> bool {
        serde_json::from_str::<Envelope>(sealed).is_ok_and(|e| {
            e.keys
                .iter()
                .any(|k| k.by == WRAPPED_BY_VAULT && self.is_sealed_with_old_key(&k.key))
        })
    }
}

fn key_context(context: &str) -> String {
    format!("data_key:{context}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(id: &str, byte: u8) -> Vault {
        Vault::new((id.into(), [byte; KEY_LEN]), None)
    }

    #[test]
    fn envelope_round_trip_and_refusals() {
        let v = vault("1", 3);
        let sealed = v.seal_envelope(b"at_secret", "grant:g1");
        assert!(!sealed.contains("at_secret"));
        assert_eq!(v.open_envelope(&sealed, "grant:g1").unwrap(), b"at_secret");
        assert!(
            v.open_envelope(&sealed, "grant:g2").is_err(),
            "bound to its grant"
        );
        assert!(
            vault("1", 4).open_envelope(&sealed, "grant:g1").is_err(),
            "another key"
        );
        assert_ne!(
            v.seal_envelope(b"at_secret", "grant:g1"),
            sealed,
            "a fresh data key each time"
        );
        assert_eq!(
            v.open_envelope("{}", "grant:g1"),
            Err(VaultError::Malformed)
        );
    }

    #[test]
    fn rewrap_after_key_rotation() {
        let old = vault("old", 1);
        let sealed = old.seal_envelope(b"rt_secret", "grant:g1");
        let rotated = Vault::new(
            ("new".into(), [2; KEY_LEN]),
            Some(("old".into(), [1; KEY_LEN])),
        );
        assert!(rotated.envelope_needs_rewrap(&sealed));
        let rewrapped = rotated.rewrap_envelope(&sealed, "grant:g1").unwrap();
        assert!(!rotated.envelope_needs_rewrap(&rewrapped));
        assert_eq!(
            vault("new", 2)
                .open_envelope(&rewrapped, "grant:g1")
                .unwrap(),
            b"rt_secret"
        );
    }
}
