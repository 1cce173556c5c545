//! Opaque high-entropy values (client secrets, registration access tokens, admin tokens) and
//! the SHA-256 hashes they are stored as. The database never holds one of these in the clear,
//! so a leaked database yields no usable credential.

use subtle::ConstantTimeEq;

pub use crate::random::random_base64url;

/// Bytes of randomness in every generated value: 256 bits.
const ENTROPY_BYTES: usize = 32;

/// A random value `<prefix>_<43 base64url characters>`.
pub fn generate(prefix: &str) -> String {
    format!("{prefix}_{}", random_base64url(ENTROPY_BYTES))
}

/// The stored form of a secret value: SHA-256, lower-case hex.
pub fn hash(value: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        value.as_bytes(),
    ))
}

/// Whether `value` hashes to `stored`, compared in constant time.
pub fn verify(value: &str, stored: &str) -> bool {
    hash(value).as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_are_prefixed_unique_and_long() {
        let a = generate("sec");
        assert!(a.starts_with("sec_"));
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(a, generate("sec"));
    }

    #[test]
    fn hashing_and_verification() {
        // SHA-256("abc"), FIPS 180-2 Appendix B.1.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(verify("abc", &hash("abc")));
        assert!(!verify("abd", &hash("abc")));
        assert!(!verify("abc", "short"));
    }
}
