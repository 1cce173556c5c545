//! Attacks on access-token verification, each case named by what it proves.
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::store::Store;
use crate::tokens::jwk::{GeneratedKey, generate_rsa_key};
use crate::tokens::jws::Signer;
use crate::tokens::keyring::KeyTiming;
use crate::vault::Vault;

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "https://api.example.com/mcp";
const NOW: i64 = 1_750_000_000;
const EXP: i64 = NOW + 300;
const LEEWAY: i64 = 60;

fn good_claims() -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        sub: "usr_1".into(),
        aud: AUDIENCE.into(),
        client_id: "cli_1".into(),
        scope: "read write".into(),
        iat: NOW - 10,
        exp: EXP,
        jti: "jti_1".into(),
        auth_time: NOW - 100,
    }
}

/// The good claims as JSON, edited.
fn claims_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut value = serde_json::to_value(good_claims()).unwrap();
    edit(value.as_object_mut().unwrap());
    value.to_string()
}

fn good_claims_json() -> String {
    claims_with(|_| {})
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An RS256 signature by `pair` over any header and payload text.
fn rs256(pair: &KeyPair, header: &str, claims: &str) -> String {
    rs256_segments(pair, &b64(header), &b64(claims))
}

/// An RS256 signature by `pair` over already encoded segments.
fn rs256_segments(pair: &KeyPair, header: &str, claims: &str) -> String {
    let input = format!("{header}.{claims}");
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{input}.{}", b64(signature))
}

/// The key-confusion forgery: an HS256 token whose HMAC secret is public.
fn hs256(secret: &[u8], header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag))
}

/// Replaces one segment of a compact JWS.
fn with_segment(token: &str, index: usize, segment: &str) -> String {
    let mut segments: Vec<&str> = token.split('.').collect();
    segments[index] = segment;
    segments.join(".")
}

/// Flips one character in the middle of the signature: still valid base64url.
fn flip_signature_byte(token: &str) -> String {
    let signature = token.rsplit('.').next().unwrap();
    let mut bytes = signature.as_bytes().to_vec();
    bytes[100] = if bytes[100] == b'A' { b'B' } else { b'A' };
    with_segment(token, 2, std::str::from_utf8(&bytes).unwrap())
}

struct Keys {
    ours: GeneratedKey,
    pair: Arc<KeyPair>,
    decoding: DecodingKey,
    other: KeyPair,
}

impl Keys {
    fn new() -> Self {
        let ours = generate_rsa_key();
        let pair = Arc::new(KeyPair::from_pkcs8(&ours.pkcs8).unwrap());
        let decoding = DecodingKey::from_rsa_components(&ours.jwk.n, &ours.jwk.e).unwrap();
        let other = KeyPair::from_pkcs8(&generate_rsa_key().pkcs8).unwrap();
        Self {
            ours,
            pair,
            decoding,
            other,
        }
    }

    fn kid(&self) -> &str {
        &self.ours.jwk.kid
    }

    fn lookup(&self, kid: &str) -> Option<&DecodingKey> {
        (kid == self.kid()).then_some(&self.decoding)
    }

    /// A token signed the way the token endpoint signs.
    fn sign(&self, typ: &str, claims: &str) -> String {
        let claims: Value = serde_json::from_str(claims).unwrap();
        Signer::new(self.kid().to_owned(), self.pair.clone()).sign(typ, &claims)
    }

    fn header(&self, alg: &str) -> String {
        json!({ "alg": alg, "typ": ACCESS_TOKEN_TYP, "kid": self.kid() }).to_string()
    }

    /// Our public key in the forms an attacker would try as an HMAC secret.
    fn public_key_forms(&self) -> Vec<(&'static str, Vec<u8>)> {
        let spki: PublicKeyX509Der<'static> = self.pair.public_key().as_der().unwrap();
        let spki = spki.as_ref().to_vec();
        let base64 = STANDARD.encode(&spki);
        let lines: Vec<&str> = base64
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        );
        vec![
            ("PEM", pem.into_bytes()),
            ("SPKI DER", spki),
            ("PKCS#1 DER", self.pair.public_key().as_ref().to_vec()),
            ("JWK JSON", serde_json::to_vec(&self.ours.jwk).unwrap()),
        ]
    }
}

struct Case {
    name: String,
    token: String,
    audience: Option<&'static str>,
    now: i64,
    leeway: i64,
    expect: Result<AccessClaims, VerifyError>,
}

fn case(name: impl Into<String>, token: String, expect: Result<AccessClaims, VerifyError>) -> Case {
    Case {
        name: name.into(),
        token,
        audience: Some(AUDIENCE),
        now: NOW,
        leeway: LEEWAY,
        expect,
    }
}

fn run(keys: &Keys, cases: Vec<Case>) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let got = verify_with(
                |kid| keys.lookup(kid),
                &c.token,
                ISSUER,
                c.audience,
                c.now,
                c.leeway,
            );
            (got != c.expect).then(|| format!("{}: expected {:?}, got {got:?}", c.name, c.expect))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn accepts_our_tokens_within_the_rules() {
    let keys = Keys::new();
    let good = good_claims_json();
    let mut other_audience = case(
        "any audience is accepted when none is expected",
        keys.sign(
            ACCESS_TOKEN_TYP,
            &claims_with(|c| {
                c.insert("aud".into(), json!("https://other.example.com"));
            }),
        ),
        Ok(AccessClaims {
            aud: "https://other.example.com".into(),
            ..good_claims()
        }),
    );
    other_audience.audience = None;
    let mut single_list = case(
        "a one-member aud list is accepted when no audience is expected",
        keys.sign(
            ACCESS_TOKEN_TYP,
            &claims_with(|c| {
                c.insert("aud".into(), json!([AUDIENCE]));
            }),
        ),
        Ok(good_claims()),
    );
    single_list.audience = None;
    run(
        &keys,
        vec![
            case(
                "a token we signed verifies",
                keys.sign(ACCESS_TOKEN_TYP, &good),
                Ok(good_claims()),
            ),
            case(
                "typ compares case-insensitively",
                keys.sign("AT+JWT", &good),
                Ok(good_claims()),
            ),
            case(
                "typ may carry the application/ prefix",
                keys.sign("Application/at+jwt", &good),
                Ok(good_claims()),
            ),
            case(
                "aud as an array containing the expected audience is accepted",
                keys.sign(
                    ACCESS_TOKEN_TYP,
                    &claims_with(|c| {
                        c.insert("aud".into(), json!(["https://other.example.com", AUDIENCE]));
                    }),
                ),
                Ok(good_claims()),
            ),
            other_audience,
            single_list,
            Case {
                now: EXP + LEEWAY - 1,
                ..case(
                    "expired within the leeway is accepted",
                    keys.sign(ACCESS_TOKEN_TYP, &good),
                    Ok(good_claims()),
                )
            },
            case(
                "iat ahead of now by at most the leeway is accepted",
                keys.sign(
                    ACCESS_TOKEN_TYP,
                    &claims_with(|c| {
                        c.insert("iat".into(), json!(NOW + LEEWAY));
                    }),
                ),
                Ok(AccessClaims {
                    iat: NOW + LEEWAY,
                    ..good_claims()
                }),
            ),
            Case {
                leeway: 0,
                ..case(
                    "iat up to 30 s ahead (another instance's clock) is accepted without leeway",
                    keys.sign(
                        ACCESS_TOKEN_TYP,
                        &claims_with(|c| {
                            c.insert("iat".into(), json!(NOW + 30));
                            c.insert("nbf".into(), json!(NOW + 30));
                        }),
                    ),
                    Ok(AccessClaims {
                        iat: NOW + 30,
                        ..good_claims()
                    }),
                )
            },
            Case {
                now: EXP - 1,
                leeway: -5,
                ..case(
                    "a negative leeway counts as none",
                    keys.sign(ACCESS_TOKEN_TYP, &good),
                    Ok(good_claims()),
                )
            },
        ],
    );
}

#[test]
fn rejects_any_algorithm_but_rs256() {
    let keys = Keys::new();
    let good = good_claims_json();
    let unsigned = format!("{}.{}.", b64(keys.header("none")), b64(&good));
    let mut cases = vec![
        case(
            "alg none with an empty signature",
            unsigned,
            Err(VerifyError::WrongAlgorithm),
        ),
        case(
            "alg none with a valid RS256 signature attached",
            rs256(&keys.pair, &keys.header("none"), &good),
            Err(VerifyError::WrongAlgorithm),
        ),
        case(
            "alg compares case-sensitively",
            rs256(&keys.pair, &keys.header("rs256"), &good),
            Err(VerifyError::WrongAlgorithm),
        ),
        case(
            "alg missing",
            rs256(
                &keys.pair,
                &json!({ "typ": ACCESS_TOKEN_TYP, "kid": keys.kid() }).to_string(),
                &good,
            ),
            Err(VerifyError::Malformed),
        ),
    ];
    for alg in ["RS384", "RS512", "PS256", "ES256", "EdDSA", "HS512"] {
        cases.push(case(
            format!("alg {alg} over a valid RS256 signature"),
            rs256(&keys.pair, &keys.header(alg), &good),
            Err(VerifyError::WrongAlgorithm),
        ));
    }
    for (form, secret) in keys.public_key_forms() {
        cases.push(case(
            format!("HS256 keyed with our public key as {form}"),
            hs256(&secret, &keys.header("HS256"), &good),
            Err(VerifyError::WrongAlgorithm),
        ));
    }
    run(&keys, cases);
}

/// The HS256 forgeries would verify if a verifier let the token pick the algorithm: proof
/// that the forgeries are real, so their rejection above means something.
#[test]
fn hs256_forgeries_verify_under_a_naive_verifier() {
    let keys = Keys::new();
    let good = good_claims_json();
    for (form, secret) in keys.public_key_forms() {
        let token = hs256(&secret, &keys.header("HS256"), &good);
        let mut naive = Validation::new(Algorithm::HS256);
        naive.validate_exp = false;
        naive.validate_aud = false;
        let naive =
            jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(&secret), &naive);
        assert!(naive.is_ok(), "{form}: {naive:?}");
    }
}

#[test]
fn rejects_tokens_not_signed_by_our_published_keys() {
    let keys = Keys::new();
    let good = good_claims_json();
    let token = keys.sign(ACCESS_TOKEN_TYP, &good);
    let altered_payload = with_segment(
        &token,
        1,
        &b64(claims_with(|c| {
            c.insert("sub".into(), json!("usr_admin"));
        })),
    );
    let retyped_header = with_segment(
        &token,
        0,
        &b64(json!({ "alg": "RS256", "typ": "AT+JWT", "kid": keys.kid() }).to_string()),
    );
    run(
        &keys,
        vec![
            case(
                "RS256 by another key naming our kid",
                rs256(&keys.other, &keys.header("RS256"), &good),
                Err(VerifyError::BadSignature),
            ),
            case(
                "unknown kid",
                rs256(
                    &keys.pair,
                    &json!({ "alg": "RS256", "typ": ACCESS_TOKEN_TYP, "kid": "unknown" })
                        .to_string(),
                    &good,
                ),
                Err(VerifyError::UnknownKey),
            ),
            case(
                "missing kid",
                rs256(
                    &keys.pair,
                    &json!({ "alg": "RS256", "typ": ACCESS_TOKEN_TYP }).to_string(),
                    &good,
                ),
                Err(VerifyError::UnknownKey),
            ),
            case(
                "altered payload",
                altered_payload,
                Err(VerifyError::BadSignature),
            ),
            case(
                "altered signature",
                flip_signature_byte(&token),
                Err(VerifyError::BadSignature),
            ),
            case(
                "altered header (the header is signed too)",
                retyped_header,
                Err(VerifyError::BadSignature),
            ),
            case(
                "signature stripped",
                with_segment(&token, 2, ""),
                Err(VerifyError::BadSignature),
            ),
        ],
    );
}

#[test]
fn rejects_anything_but_an_access_token_typ() {
    let keys = Keys::new();
    let good = good_claims_json();
    run(
        &keys,
        vec![
            case(
                "typ JWT",
                keys.sign("JWT", &good),
                Err(VerifyError::WrongType),
            ),
            case(
                "typ application/jwt",
                keys.sign("application/jwt", &good),
                Err(VerifyError::WrongType),
            ),
            case(
                "typ with trailing space",
                keys.sign("at+jwt ", &good),
                Err(VerifyError::WrongType),
            ),
            case(
                "typ missing",
                rs256(
                    &keys.pair,
                    &json!({ "alg": "RS256", "kid": keys.kid() }).to_string(),
                    &good,
                ),
                Err(VerifyError::WrongType),
            ),
        ],
    );
}

#[test]
fn checks_issuer_audience_and_time_exactly() {
    let keys = Keys::new();
    let good = good_claims_json();
    let signed =
        |edit: fn(&mut Map<String, Value>)| keys.sign(ACCESS_TOKEN_TYP, &claims_with(edit));
    let mut list_without_expected = case(
        "aud list of several without an expected audience",
        signed(|c| {
            c.insert("aud".into(), json!([AUDIENCE, "https://other.example.com"]));
        }),
        Err(VerifyError::WrongAudience),
    );
    list_without_expected.audience = None;
    run(
        &keys,
        vec![
            case(
                "wrong iss",
                signed(|c| {
                    c.insert("iss".into(), json!("https://evil.example.com"));
                }),
                Err(VerifyError::WrongIssuer),
            ),
            case(
                "iss with a trailing slash",
                signed(|c| {
                    c.insert("iss".into(), json!("https://auth.example.com/"));
                }),
                Err(VerifyError::WrongIssuer),
            ),
            case(
                "iss differing only in case",
                signed(|c| {
                    c.insert("iss".into(), json!("https://AUTH.example.com"));
                }),
                Err(VerifyError::WrongIssuer),
            ),
            case(
                "iss as an array",
                signed(|c| {
                    c.insert("iss".into(), json!([ISSUER]));
                }),
                Err(VerifyError::Malformed),
            ),
            case(
                "wrong aud",
                signed(|c| {
                    c.insert("aud".into(), json!("https://other.example.com"));
                }),
                Err(VerifyError::WrongAudience),
            ),
            case(
                "aud with a trailing slash",
                signed(|c| {
                    c.insert("aud".into(), json!("https://api.example.com/mcp/"));
                }),
                Err(VerifyError::WrongAudience),
            ),
            case(
                "aud array without the expected audience",
                signed(|c| {
                    c.insert("aud".into(), json!(["https://other.example.com"]));
                }),
                Err(VerifyError::WrongAudience),
            ),
            case(
                "aud as an empty array",
                signed(|c| {
                    c.insert("aud".into(), json!([]));
                }),
                Err(VerifyError::MissingClaim("aud")),
            ),
            list_without_expected,
            Case {
                now: EXP + LEEWAY,
                ..case(
                    "expired beyond the leeway",
                    keys.sign(ACCESS_TOKEN_TYP, &good),
                    Err(VerifyError::Expired),
                )
            },
            Case {
                now: EXP,
                leeway: 0,
                ..case(
                    "expired at exactly exp without leeway",
                    keys.sign(ACCESS_TOKEN_TYP, &good),
                    Err(VerifyError::Expired),
                )
            },
            case(
                "iat in the future beyond the leeway",
                signed(|c| {
                    c.insert("iat".into(), json!(NOW + LEEWAY + 1));
                }),
                Err(VerifyError::NotYetValid),
            ),
            Case {
                leeway: 0,
                ..case(
                    "iat more than 30 s ahead without leeway",
                    signed(|c| {
                        c.insert("iat".into(), json!(NOW + 31));
                    }),
                    Err(VerifyError::NotYetValid),
                )
            },
            Case {
                leeway: 0,
                ..case(
                    "nbf more than 30 s ahead without leeway",
                    signed(|c| {
                        c.insert("nbf".into(), json!(NOW + 31));
                    }),
                    Err(VerifyError::NotYetValid),
                )
            },
            case(
                "nbf in the future beyond the leeway",
                signed(|c| {
                    c.insert("nbf".into(), json!(NOW + LEEWAY + 1));
                }),
                Err(VerifyError::NotYetValid),
            ),
            case(
                "exp as a string",
                signed(|c| {
                    c.insert("exp".into(), json!(EXP.to_string()));
                }),
                Err(VerifyError::Malformed),
            ),
        ],
    );
}

#[test]
fn requires_every_rfc_9068_claim() {
    let keys = Keys::new();
    let mut cases = Vec::new();
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
        "auth_time",
    ] {
        cases.push(case(
            format!("{claim} missing"),
            keys.sign(
                ACCESS_TOKEN_TYP,
                &claims_with(|c| {
                    c.remove(claim);
                }),
            ),
            Err(VerifyError::MissingClaim(claim)),
        ));
        cases.push(case(
            format!("{claim} null"),
            keys.sign(
                ACCESS_TOKEN_TYP,
                &claims_with(|c| {
                    c.insert(claim.into(), Value::Null);
                }),
            ),
            Err(VerifyError::MissingClaim(claim)),
        ));
    }
    run(&keys, cases);
}

#[test]
fn rejects_malformed_tokens() {
    let keys = Keys::new();
    let good = good_claims_json();
    let token = keys.sign(ACCESS_TOKEN_TYP, &good);
    let header = keys.header("RS256");
    let duplicate_sub = good.replacen('{', r#"{"sub":"usr_admin","#, 1);
    let duplicate_alg = format!(
        r#"{{"alg":"none","alg":"RS256","typ":"at+jwt","kid":"{}"}}"#,
        keys.kid()
    );
    let critical = json!({
        "alg": "RS256", "typ": ACCESS_TOKEN_TYP, "kid": keys.kid(), "crit": ["exp"], "exp": 1
    })
    .to_string();
    run(
        &keys,
        vec![
            case("empty string", String::new(), Err(VerifyError::Malformed)),
            case("two segments", "a.b".into(), Err(VerifyError::Malformed)),
            case(
                "four segments",
                "a.b.c.d".into(),
                Err(VerifyError::Malformed),
            ),
            case(
                "three garbage segments",
                "a.b.c".into(),
                Err(VerifyError::Malformed),
            ),
            case("only dots", "..".into(), Err(VerifyError::Malformed)),
            case(
                "a valid token with a fourth segment",
                format!("{token}.x"),
                Err(VerifyError::Malformed),
            ),
            case(
                "a valid token with base64 padding",
                rs256_segments(&keys.pair, &b64(&header), &format!("{}=", b64(&good))),
                Err(VerifyError::Malformed),
            ),
            case(
                "header that is not a JSON object",
                format!("{}.{}.{}", b64("[]"), b64(&good), b64("sig")),
                Err(VerifyError::Malformed),
            ),
            case(
                "payload that is not JSON",
                rs256(&keys.pair, &header, "not json"),
                Err(VerifyError::Malformed),
            ),
            case(
                "duplicate alg in the header",
                rs256(&keys.pair, &duplicate_alg, &good),
                Err(VerifyError::Malformed),
            ),
            case(
                "duplicate sub in the payload",
                rs256(&keys.pair, &header, &duplicate_sub),
                Err(VerifyError::Malformed),
            ),
            case(
                "a critical header extension",
                rs256(&keys.pair, &critical, &good),
                Err(VerifyError::Malformed),
            ),
        ],
    );
}

/// The `SigningKeys` lookup: tokens verify while their key is published and stop when it
/// is removed, with no database read per verification.
#[tokio::test]
async fn verify_access_token_follows_the_key_lifecycle() {
    let store = Store::connect("sqlite::memory:", 1).await.unwrap();
    store.migrate().await.unwrap();
    let vault = Arc::new(Vault::new(("1".into(), [7; 32]), None));
    let clock = ManualClock::starting_at(NOW);
    let timing = KeyTiming {
        activation_delay: 100,
        retire_for: 1000,
        rotate_every: None,
    };
    let keys = SigningKeys::load(store, vault, clock.clone(), timing)
        .await
        .unwrap();
    let claims = |iat: i64| AccessClaims {
        iat,
        exp: iat + 300,
        ..good_claims()
    };
    let verify = |token: &str| {
        verify_access_token(&keys, token, ISSUER, Some(AUDIENCE), clock.now(), LEEWAY)
    };

    let first_signer = keys.signer().unwrap();
    let first = first_signer.sign(ACCESS_TOKEN_TYP, &claims(NOW));
    assert_eq!(verify(&first), Ok(claims(NOW)), "active key");

    let next = keys.rotate().await.unwrap();
    assert!(
        keys.verification_key(&next.kid).is_some(),
        "a next key is published, so it verifies"
    );
    assert_eq!(verify(&first), Ok(claims(NOW)), "still active");

    clock.advance(100);
    assert_ne!(keys.signer().unwrap().kid(), first_signer.kid());
    assert_eq!(verify(&first), Ok(claims(NOW)), "retired key");
    let second = keys
        .signer()
        .unwrap()
        .sign(ACCESS_TOKEN_TYP, &claims(NOW + 100));
    assert_eq!(verify(&second), Ok(claims(NOW + 100)), "new active key");

    clock.advance(1000);
    assert_eq!(
        verify(&first),
        Err(VerifyError::UnknownKey),
        "removed before the refresh that drops it"
    );
    keys.refresh().await.unwrap();
    assert_eq!(verify(&first), Err(VerifyError::UnknownKey), "removed");
    assert!(keys.verification_key(&next.kid).is_some());
}
