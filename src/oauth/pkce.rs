//! PKCE (RFC 7636), S256 only: plain offers no protection once the challenge leaks.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// Why an authorization request's PKCE parameters are refused (RFC 7636 §4.4.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge is required (PKCE with S256)")]
    Missing,
    #[error("code_challenge_method must be S256; plain is not accepted")]
    Plain,
    #[error("code_challenge_method `{0}` is not supported; use S256")]
    UnknownMethod(String),
    #[error("code_challenge must be the 43-character base64url SHA-256 of the verifier")]
    Malformed,
}

/// A validated S256 code challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// RFC 7636 §4.2: `code_challenge_method` must be `S256` (an absent method means `plain`),
    /// and the challenge is the base64url SHA-256 of a verifier: exactly 43 characters.
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Self, PkceError> {
        let challenge = challenge.ok_or(PkceError::Missing)?;
        match method {
            Some("S256") => {}
            None | Some("plain") => return Err(PkceError::Plain),
            Some(other) => return Err(PkceError::UnknownMethod(other.to_owned())),
        }
        let well_formed = challenge.len() == 43
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(PkceError::Malformed);
        }
        Ok(Self(challenge.to_owned()))
    }

    /// A challenge already validated (read back from storage).
    pub fn from_stored(challenge: String) -> Self {
        Self(challenge)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: whether `verifier` hashes to this challenge, compared in constant time.
    pub fn verify(&self, verifier: &str) -> bool {
        is_verifier(verifier) && s256(verifier).as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL(SHA256(ASCII(verifier)))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// A fresh verifier and its S256 challenge, for requests authbridge itself sends upstream.
pub fn generate_pair() -> (String, String) {
    let verifier = crate::random::random_base64url(32);
    let challenge = s256(&verifier);
    (verifier, challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_appendix_b() {
        assert_eq!(s256(VERIFIER), CHALLENGE);
        let challenge = CodeChallenge::parse(Some(CHALLENGE), Some("S256")).unwrap();
        assert!(challenge.verify(VERIFIER));
        assert!(!challenge.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"));
        assert!(!challenge.verify("short"));
    }

    #[test]
    fn refused_challenges() {
        let cases = [
            ("missing", None, Some("S256")),
            ("plain method", Some(CHALLENGE), Some("plain")),
            ("method absent means plain", Some(CHALLENGE), None),
            ("unknown method", Some(CHALLENGE), Some("S512")),
            ("too short", Some("abc"), Some("S256")),
            (
                "bad characters",
                Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"),
                Some("S256"),
            ),
        ];
        for (name, challenge, method) in cases {
            assert!(CodeChallenge::parse(challenge, method).is_err(), "{name}");
        }
    }

    #[test]
    fn generated_pairs_verify() {
        let (verifier, challenge) = generate_pair();
        assert!(
            CodeChallenge::parse(Some(&challenge), Some("S256"))
                .unwrap()
                .verify(&verifier)
        );
    }
}
