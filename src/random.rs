//! Values from the system's cryptographic random generator. A leaf: every layer may use it,
//! and it uses nothing of ours.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `bytes` random bytes, base64url without padding.
pub fn random_base64url(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buffer).expect("the system random generator is available");
    URL_SAFE_NO_PAD.encode(buffer)
}

/// A random 256-bit key.
pub fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).expect("the system random generator is available");
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_requested_length_and_differ() {
        assert_eq!(random_base64url(32).len(), 43);
        assert_eq!(random_base64url(16).len(), 22);
        assert_ne!(random_base64url(32), random_base64url(32));
        assert_ne!(random_key(), random_key());
    }
}
