//! Verification of the access tokens this issuer signed (RFC 9068 §4), for our own endpoints
//! that accept them.
//!
//! Strict by design: exactly RS256, `typ` `at+jwt`, a `kid` naming one of our published keys,
//! the issuer compared byte for byte, and every RFC 9068 claim present. The decision is a pure
//! function over a key lookup and the caller's clock ([`verify_with`]), so it is testable without
//! a database. Nothing here does I/O, and nothing here may log or echo a token or its claims:
//! an error names the failed check, never the value.

use std::borrow::Borrow;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::access::{ACCESS_TOKEN_TYP, AccessClaims};
use super::jwk::ALGORITHM;
use super::keyring::SigningKeys;

/// Why a token was rejected. Deliberately carries no part of the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the token is not a well-formed compact JWS")]
    Malformed,
    #[error("the token's typ is not at+jwt")]
    WrongType,
    #[error("the token is not signed with RS256")]
    WrongAlgorithm,
    #[error("the token names no key this issuer publishes")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token was not issued by this issuer")]
    WrongIssuer,
    #[error("the token is not meant for this audience")]
    WrongAudience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token lacks the {0} claim")]
    MissingClaim(&'static str),
}

/// Clock skew tolerated on `iat` and `nbf` lying in the future, whatever the caller's leeway:
/// a token signed by an instance whose clock runs a little ahead is not refused by another.
pub const START_LEEWAY_SECS: i64 = 30;

/// Verifies an access token we issued and returns its claims.
///
/// `now` comes from the caller's clock; `leeway_secs` tolerates clock skew between instances
/// on `exp` (and on `iat`/`nbf` lying in the future, where at least [`START_LEEWAY_SECS`] is
/// always tolerated). When `expected_audience` is `None`
/// the audience is not checked. The key is looked up among the keys published now (next,
/// active or retired); see [`SigningKeys::verification_key`].
pub fn verify_access_token(
    keys: &SigningKeys,
    token: &str,
    issuer: &str,
    expected_audience: Option<&str>,
    now: i64,
    leeway_secs: i64,
) -> Result<AccessClaims, VerifyError> {
    verify_with(
        |kid| keys.verification_key(kid),
        token,
        issuer,
        expected_audience,
        now,
        leeway_secs,
    )
}

/// [`verify_access_token`] over any key lookup: `lookup` maps a `kid` to its public key, or
/// `None` when no such key is published.
pub fn verify_with<K: Borrow<DecodingKey>>(
    lookup: impl FnOnce(&str) -> Option<K>,
    token: &str,
    issuer: &str,
    expected_audience: Option<&str>,
    now: i64,
    leeway_secs: i64,
) -> Result<AccessClaims, VerifyError> {
    let header = parse_header(token)?;
    // RFC 8725 §3.1: the algorithm is ours to choose, never the token's. Checked before any
    // key is touched, so `none` and HS256-with-our-public-key never reach a verifier.
    if header.alg != ALGORITHM {
        return Err(VerifyError::WrongAlgorithm);
    }
    // RFC 7515 §4.1.11: a recipient must reject extensions it does not understand; we use none.
    if header.crit.is_some() {
        return Err(VerifyError::Malformed);
    }
    // RFC 9068 §4: reject a `typ` other than "at+jwt" or "application/at+jwt", so that an ID
    // token or another JWT signed by the same key cannot pass as an access token.
    if !header.typ.as_deref().is_some_and(is_access_token_typ) {
        return Err(VerifyError::WrongType);
    }
    let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
    let key = lookup(kid).ok_or(VerifyError::UnknownKey)?;

    let claims = jsonwebtoken::decode::<TokenClaims>(token, key.borrow(), &VALIDATION)
        .map_err(|err| verify_error(err.kind()))?
        .claims;
    check_claims(claims, issuer, expected_audience, now, leeway_secs.max(0))
}

/// jsonwebtoken checks the algorithm again and the signature; every claim check is ours, so
/// that time comes from our clock and comparisons are exact.
static VALIDATION: LazyLock<Validation> = LazyLock::new(|| {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256];
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation
});

/// The JOSE header, parsed by us so that any `alg` (including `none`, which jsonwebtoken cannot
/// represent) is reported as the wrong algorithm rather than as garbage. Duplicate members are
/// rejected by serde, so no parser can read a different `alg` from the one we checked.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<IgnoredAny>,
}

/// The payload with every claim optional, so that a missing claim is named.
#[derive(Deserialize)]
struct TokenClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    auth_time: Option<i64>,
}

/// RFC 7519 §4.1.3: one string or an array of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The header of a compact JWS of exactly three segments.
fn parse_header(token: &str) -> Result<JoseHeader, VerifyError> {
    let mut segments = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(VerifyError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| VerifyError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| VerifyError::Malformed)
}

/// RFC 7515 §4.1.9: the "application/" prefix may be omitted, and media types compare
/// case-insensitively.
fn is_access_token_typ(typ: &str) -> bool {
    const PREFIX: &str = "application/";
    let bare = match typ.get(..PREFIX.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(PREFIX) => &typ[PREFIX.len()..],
        _ => typ,
    };
    bare.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
}

fn verify_error(kind: &ErrorKind) -> VerifyError {
    match kind {
        ErrorKind::InvalidSignature | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            VerifyError::BadSignature
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => VerifyError::WrongAlgorithm,
        _ => VerifyError::Malformed,
    }
}

/// The claim checks on a payload whose signature has verified.
fn check_claims(
    claims: TokenClaims,
    issuer: &str,
    expected_audience: Option<&str>,
    now: i64,
    leeway: i64,
) -> Result<AccessClaims, VerifyError> {
    // RFC 9068 §2.2: all of these are required.
    let iss = claims.iss.ok_or(VerifyError::MissingClaim("iss"))?;
    let exp = claims.exp.ok_or(VerifyError::MissingClaim("exp"))?;
    let aud = claims.aud.ok_or(VerifyError::MissingClaim("aud"))?;
    let sub = claims.sub.ok_or(VerifyError::MissingClaim("sub"))?;
    let client_id = claims
        .client_id
        .ok_or(VerifyError::MissingClaim("client_id"))?;
    let iat = claims.iat.ok_or(VerifyError::MissingClaim("iat"))?;
    let jti = claims.jti.ok_or(VerifyError::MissingClaim("jti"))?;
    let scope = claims.scope.ok_or(VerifyError::MissingClaim("scope"))?;
    let auth_time = claims
        .auth_time
        .ok_or(VerifyError::MissingClaim("auth_time"))?;

    // RFC 9068 §4: the issuer "MUST exactly match"; no normalisation of slashes or case.
    if iss != issuer {
        return Err(VerifyError::WrongIssuer);
    }
    let aud = match (aud, expected_audience) {
        (Audience::Many(list), _) if list.is_empty() => {
            return Err(VerifyError::MissingClaim("aud"));
        }
        (Audience::One(aud), None) => aud,
        (Audience::One(aud), Some(expected)) if aud == expected => aud,
        (Audience::Many(list), Some(expected)) if list.iter().any(|a| a == expected) => {
            expected.to_owned()
        }
        // Without an expected audience, a list can only be returned when it has one member.
        (Audience::Many(mut list), None) if list.len() == 1 => list.remove(0),
        _ => return Err(VerifyError::WrongAudience),
    };
    if exp.saturating_add(leeway) <= now {
        return Err(VerifyError::Expired);
    }
    let latest_start = now.saturating_add(leeway.max(START_LEEWAY_SECS));
    if iat > latest_start || claims.nbf.is_some_and(|nbf| nbf > latest_start) {
        return Err(VerifyError::NotYetValid);
    }
    Ok(AccessClaims {
        iss,
        sub,
        aud,
        client_id,
        scope,
        iat,
        exp,
        jti,
        auth_time,
    })
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
