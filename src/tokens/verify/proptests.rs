//! Property tests of access-token verification: tampered tokens (headers, claims, signatures,
//! the compact form itself) never verify, and every token signed with our key is judged by
//! the RFC 9068 rules in their order, against an oracle written from a model of its claims.

use std::sync::{Arc, LazyLock};

use aws_lc_rs::rsa::KeyPair;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::oauth::proptests::{config, mutated, tricky_string};
use crate::tokens::jwk::generate_rsa_key;
use crate::tokens::jws::Signer;

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "https://api.example.com/mcp";
const NOW: i64 = 1_750_000_000;

struct Keys {
    kid: String,
    signer: Signer,
    decoding: DecodingKey,
    /// A token signed the way the token endpoint signs, with valid claims.
    good: String,
    /// The good token's header and claims signed by a key we do not publish, under our kid.
    foreign: String,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let ours = generate_rsa_key();
    let pair = Arc::new(KeyPair::from_pkcs8(&ours.pkcs8).unwrap());
    let kid = ours.jwk.kid.clone();
    let signer = Signer::new(kid.clone(), pair);
    let other = Arc::new(KeyPair::from_pkcs8(&generate_rsa_key().pkcs8).unwrap());
    let good = signer.sign(ACCESS_TOKEN_TYP, &good_claims());
    let foreign = Signer::new(kid.clone(), other).sign(ACCESS_TOKEN_TYP, &good_claims());
    Keys {
        decoding: DecodingKey::from_rsa_components(&ours.jwk.n, &ours.jwk.e).unwrap(),
        kid,
        signer,
        good,
        foreign,
    }
});

fn good_claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "usr_1", "aud": AUDIENCE, "client_id": "cli_1", "scope": "mcp",
        "iat": NOW - 10, "exp": NOW + 300, "jti": "jti_1", "auth_time": NOW - 100,
    })
}

fn verify(token: &str, audience: Option<&str>, leeway: i64) -> Result<AccessClaims, VerifyError> {
    let keys = &*KEYS;
    verify_with(
        |kid| (kid == keys.kid).then_some(&keys.decoding),
        token,
        ISSUER,
        audience,
        NOW,
        leeway,
    )
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JOSE header an attacker might write: any `alg` (`none`, HS256 and look-alikes included),
/// any `typ`, our kid or another, maybe `crit`.
fn header() -> impl Strategy<Value = Value> {
    let alg = proptest::sample::select(
        &[
            "RS256", "RS256", "none", "None", "HS256", "rs256", "RS384", "PS256", "ES256",
            "RS256 ", "",
        ][..],
    );
    let typ = proptest::option::of(proptest::sample::select(
        &[
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "JWT",
            "jwt",
            "at+jwt ",
            "",
        ][..],
    ));
    let kid = prop_oneof![3 => Just(None), 1 => Just(Some("other".to_owned())), 1 => tricky_string(4).prop_map(Some)];
    (alg, typ, kid, any::<bool>(), any::<bool>()).prop_map(|(alg, typ, kid, ours, crit)| {
        let mut header = json!({ "alg": alg });
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        let kid = if ours { Some(KEYS.kid.clone()) } else { kid };
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        if crit {
            header["crit"] = json!(["exp"]);
        }
        header
    })
}

/// One way of tampering with a compact JWS.
#[derive(Debug, Clone)]
enum Tamper {
    /// Edits anywhere in the token's text.
    Text(String),
    /// Another header, the payload and signature kept.
    Header(Value),
    /// A claim changed, the header and signature kept.
    Claim(&'static str, Value),
    /// One bit of the signature flipped.
    SignatureBit(usize),
    /// A signature by another key.
    Foreign,
    /// The token in standard base64 or with padding: same bytes, other text.
    Alphabet { standard: bool, padding: bool },
}

fn tamper() -> impl Strategy<Value = Tamper> {
    let claim = proptest::sample::select(
        &[
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "scope",
            "client_id",
            "nbf",
            "x",
        ][..],
    );
    let value = prop_oneof![
        tricky_string(8).prop_map(Value::from),
        (NOW - 1000..NOW + 1000).prop_map(Value::from),
        Just(json!([AUDIENCE, "https://evil.example"])),
        Just(Value::Null),
    ];
    prop_oneof![
        3 => mutated(Just(KEYS.good.clone()), 3).prop_map(Tamper::Text),
        2 => header().prop_map(Tamper::Header),
        2 => (claim, value).prop_map(|(c, v)| Tamper::Claim(c, v)),
        2 => (0usize..2048).prop_map(Tamper::SignatureBit),
        1 => Just(Tamper::Foreign),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(standard, padding)| Tamper::Alphabet { standard, padding }),
    ]
}

fn apply(tamper: &Tamper) -> String {
    let good = &KEYS.good;
    let segments: Vec<&str> = good.split('.').collect();
    let join = |h: &str, p: &str, s: &str| format!("{h}.{p}.{s}");
    match tamper {
        Tamper::Text(text) => text.clone(),
        Tamper::Header(header) => join(&b64(header.to_string()), segments[1], segments[2]),
        Tamper::Claim(name, value) => {
            let mut claims = good_claims();
            claims[*name] = value.clone();
            join(segments[0], &b64(claims.to_string()), segments[2])
        }
        Tamper::SignatureBit(bit) => {
            let mut signature = URL_SAFE_NO_PAD.decode(segments[2]).unwrap();
            signature[bit / 8] ^= 1 << (bit % 8);
            join(segments[0], segments[1], &b64(signature))
        }
        Tamper::Foreign => KEYS.foreign.clone(),
        Tamper::Alphabet { standard, padding } => {
            let encode = |segment: &str| {
                let bytes = URL_SAFE_NO_PAD.decode(segment).unwrap();
                let mut text = if *standard {
                    base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes)
                } else {
                    b64(&bytes)
                };
                if *padding {
                    while text.len() % 4 != 0 {
                        text.push('=');
                    }
                }
                text
            };
            segments
                .iter()
                .map(|s| encode(s))
                .collect::<Vec<_>>()
                .join(".")
        }
    }
}

/// A claim in a generated payload.
#[derive(Debug, Clone)]
enum Claim {
    Absent,
    Null,
    Value(Value),
    /// A value of the wrong JSON type: the payload does not deserialise.
    WrongType(Value),
}

fn claim(
    value: impl Strategy<Value = Value> + Clone + 'static,
    wrong: Value,
) -> impl Strategy<Value = Claim> {
    prop_oneof![
        1 => Just(Claim::Absent),
        1 => Just(Claim::Null),
        12 => value.prop_map(Claim::Value),
        1 => Just(Claim::WrongType(wrong)),
    ]
}

fn time_claim() -> impl Strategy<Value = Claim> {
    claim(
        (-200i64..200).prop_map(|offset| Value::from(NOW + offset)),
        json!("1750000000"),
    )
}

fn text_claim(values: &'static [&'static str]) -> impl Strategy<Value = Claim> {
    claim(
        proptest::sample::select(values).prop_map(Value::from),
        json!(7),
    )
}

const CLAIM_NAMES: [&str; 10] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "auth_time",
];

fn claims() -> impl Strategy<Value = Vec<Claim>> {
    let aud = claim(
        prop_oneof![
            proptest::sample::select(
                &[
                    AUDIENCE,
                    "https://api.example.com/mcp/",
                    "https://other.example"
                ][..]
            )
            .prop_map(Value::from),
            proptest::sample::subsequence(
                &[AUDIENCE, "https://other.example", "https://third.example"][..],
                0..=3
            )
            .prop_map(|v| json!(v)),
        ],
        json!([1]),
    );
    (
        text_claim(&[
            ISSUER,
            ISSUER,
            "https://auth.example.com/",
            "https://AUTH.example.com",
            "https://evil.example",
        ]),
        text_claim(&["usr_1"]),
        aud,
        time_claim(),
        time_claim(),
        prop_oneof![3 => Just(Claim::Absent), 1 => time_claim()],
        text_claim(&["jti_1"]),
        text_claim(&["cli_1"]),
        text_claim(&["mcp", ""]),
        time_claim(),
    )
        .prop_map(|(a, b, c, d, e, f, g, h, i, j)| vec![a, b, c, d, e, f, g, h, i, j])
}

fn payload(claims: &[Claim]) -> Map<String, Value> {
    CLAIM_NAMES
        .iter()
        .zip(claims)
        .filter_map(|(name, claim)| match claim {
            Claim::Absent => None,
            Claim::Null => Some(((*name).to_owned(), Value::Null)),
            Claim::Value(v) | Claim::WrongType(v) => Some(((*name).to_owned(), v.clone())),
        })
        .collect()
}

/// The oracle: RFC 9068 §4 and RFC 7519 §4.1, in the order the verifier documents.
fn expected(
    claims: &[Claim],
    typ_ok: bool,
    audience: Option<&str>,
    leeway: i64,
) -> Result<(), VerifyError> {
    if !typ_ok {
        return Err(VerifyError::WrongType);
    }
    if claims.iter().any(|c| matches!(c, Claim::WrongType(_))) {
        return Err(VerifyError::Malformed);
    }
    let get = |name: &str| match &claims[CLAIM_NAMES.iter().position(|n| *n == name).unwrap()] {
        Claim::Value(v) => Some(v.clone()),
        _ => None,
    };
    for name in [
        "iss",
        "exp",
        "aud",
        "sub",
        "client_id",
        "iat",
        "jti",
        "scope",
        "auth_time",
    ] {
        if get(name).is_none() {
            return Err(VerifyError::MissingClaim(
                CLAIM_NAMES.iter().find(|n| **n == name).unwrap(),
            ));
        }
    }
    if get("iss").unwrap() != ISSUER {
        return Err(VerifyError::WrongIssuer);
    }
    match (get("aud").unwrap(), audience) {
        (Value::Array(list), _) if list.is_empty() => return Err(VerifyError::MissingClaim("aud")),
        (Value::String(_), None) => {}
        (Value::String(aud), Some(expected)) if aud == expected => {}
        (Value::Array(list), Some(expected)) if list.iter().any(|a| a == expected) => {}
        (Value::Array(list), None) if list.len() == 1 => {}
        _ => return Err(VerifyError::WrongAudience),
    }
    let leeway = leeway.max(0);
    let time = |name: &str| get(name).and_then(|v| v.as_i64());
    if time("exp").unwrap() + leeway <= NOW {
        return Err(VerifyError::Expired);
    }
    // A start in the future is tolerated up to the leeway, and never less than the verifier's
    // fixed allowance for clock skew between instances.
    let latest_start = NOW + leeway.max(super::START_LEEWAY_SECS);
    if time("iat").unwrap() > latest_start || time("nbf").is_some_and(|nbf| nbf > latest_start) {
        return Err(VerifyError::NotYetValid);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(2_000))]

    /// A token that is not exactly the one we signed never verifies, whatever was changed.
    #[test]
    fn tampered_tokens_never_verify(tamper in tamper(), audience in proptest::option::of(Just(AUDIENCE))) {
        prop_assert!(verify(&KEYS.good, audience, 0).is_ok(), "the untampered token verifies");
        let token = apply(&tamper);
        if token != KEYS.good {
            let result = verify(&token, audience, 0);
            prop_assert!(result.is_err(), "{:?} verified: {}", tamper, token);
        }
    }

    /// Every token signed with our key gets the verdict of the RFC 9068 rules in order:
    /// `typ`, claim types, each required claim, issuer, audience, expiry, not-before.
    #[test]
    fn signed_claims_are_judged_in_rfc_order(
        claims in claims(),
        typ in proptest::sample::select(&["at+jwt", "application/at+jwt", "AT+JWT", "JWT", "at+jwt "][..]),
        audience in proptest::option::of(Just(AUDIENCE)),
        leeway in -10i64..120,
    ) {
        let token = KEYS.signer.sign(typ, &Value::Object(payload(&claims)));
        let typ_ok = ["at+jwt", "application/at+jwt", "AT+JWT"].contains(&typ);
        let result = verify(&token, audience, leeway);
        let want = expected(&claims, typ_ok, audience, leeway);
        let got = result.as_ref().map(|_| ()).map_err(|e| format!("{e:?}"));
        prop_assert_eq!(got, want.map_err(|e| format!("{e:?}")), "{:?}", claims);
        if let Ok(verified) = result {
            prop_assert_eq!(verified.iss.as_str(), ISSUER);
            if let Some(audience) = audience {
                prop_assert_eq!(verified.aud.as_str(), audience);
            }
        }
    }

    /// Garbage in three segments (any header, any payload, any signature) never verifies.
    #[test]
    fn garbage_never_verifies(
        header in prop_oneof![header().prop_map(|h| b64(h.to_string())), tricky_string(20)],
        payload in prop_oneof![Just(b64(good_claims().to_string())), tricky_string(20)],
        signature in prop_oneof![proptest::collection::vec(any::<u8>(), 0..300).prop_map(b64), tricky_string(20)],
    ) {
        let token = format!("{header}.{payload}.{signature}");
        prop_assert!(verify(&token, None, 60).is_err());
    }
}
