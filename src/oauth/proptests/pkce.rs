//! PKCE (RFC 7636) and scope syntax (RFC 6749 §3.3): challenges, verifiers and scope tokens
//! against oracles written from the RFCs' ABNF.

use proptest::prelude::*;

use super::{config, mutated, tricky_string};
use crate::oauth::pkce::{CodeChallenge, is_verifier, s256};
use crate::oauth::scope::is_scope_token;

/// RFC 7636 §4.1: `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
const UNRESERVED: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

fn verifier() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(UNRESERVED.chars().collect::<Vec<_>>()),
        43..=128,
    )
    .prop_map(String::from_iter)
}

/// Verifiers around the rules: valid ones mutated, lengths near the bounds, anything.
fn near_verifier() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => mutated(verifier(), 2),
        1 => (41usize..=44, 126usize..=130, any::<bool>())
            .prop_map(|(short, long, pick)| "a".repeat(if pick { short } else { long })),
        1 => tricky_string(60),
    ]
}

proptest! {
    #![proptest_config(config(3_000))]

    /// A verifier is exactly what RFC 7636 §4.1 says: 43 to 128 unreserved characters.
    #[test]
    fn verifiers_follow_the_abnf(candidate in near_verifier()) {
        let expected = (43..=128).contains(&candidate.chars().count())
            && candidate.chars().all(|c| UNRESERVED.contains(c));
        prop_assert_eq!(is_verifier(&candidate), expected);
    }

    /// RFC 7636 §4.6: a challenge verifies exactly its own verifier, and never a string that
    /// is not a verifier, even one whose hash it is.
    #[test]
    fn a_challenge_verifies_only_its_verifier(original in verifier(), presented in near_verifier()) {
        let challenge = CodeChallenge::parse(Some(&s256(&original)), Some("S256")).expect("an S256 challenge");
        prop_assert!(challenge.verify(&original));
        prop_assert_eq!(challenge.verify(&presented), presented == original);
        let own = CodeChallenge::from_stored(s256(&presented));
        prop_assert_eq!(own.verify(&presented), is_verifier(&presented));
    }

    /// RFC 7636 §4.2 and §4.3: only `S256` with a 43-character base64url challenge.
    #[test]
    fn challenges_need_s256_and_43_base64url_characters(
        challenge in proptest::option::of(prop_oneof![mutated(verifier().prop_map(|v| s256(&v)), 2), tricky_string(50)]),
        method in proptest::option::of(prop_oneof![
            proptest::sample::select(&["S256", "plain", "s256", "S256 ", ""][..]).prop_map(str::to_owned),
            tricky_string(6),
        ]),
    ) {
        let well_formed = challenge.as_deref().is_some_and(|c| {
            c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        let result = CodeChallenge::parse(challenge.as_deref(), method.as_deref());
        prop_assert_eq!(result.is_ok(), well_formed && method.as_deref() == Some("S256"));
        if let Ok(parsed) = result {
            prop_assert_eq!(Some(parsed.as_str()), challenge.as_deref());
        }
    }

    /// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
    #[test]
    fn scope_tokens_follow_the_abnf(token in tricky_string(12)) {
        let expected = !token.is_empty()
            && token.chars().all(|c| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c));
        prop_assert_eq!(is_scope_token(&token), expected);
    }
}
