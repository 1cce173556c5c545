//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic` with
//! form-urlencoded credentials, `client_secret_post`, public clients, and every malformed
//! header in between.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;

use super::{config, is_error_description, tricky_string};
use crate::oauth::client_auth::{PresentedClient, presented_client};
use crate::oauth::error::ErrorCode;

/// RFC 6749 §2.3.1: each of id and secret form-urlencoded, then `id:secret` in Basic.
fn basic_value(id: &str, secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
}

/// An `Authorization` header: well-formed Basic under any spelling of the scheme, or broken.
#[derive(Debug, Clone)]
enum Header {
    Basic {
        scheme: String,
        id: String,
        secret: String,
    },
    /// Base64 of raw bytes (maybe not UTF-8, maybe without `:`).
    RawBytes { scheme: String, bytes: Vec<u8> },
    /// Anything at all.
    Text(String),
}

fn header() -> impl Strategy<Value = Header> {
    let scheme =
        proptest::sample::select(&["Basic", "basic", "BASIC", "bAsIc"][..]).prop_map(str::to_owned);
    prop_oneof![
        4 => (scheme.clone(), tricky_string(12), tricky_string(12))
            .prop_map(|(scheme, id, secret)| Header::Basic { scheme, id, secret }),
        2 => (scheme, proptest::collection::vec(any::<u8>(), 0..24))
            .prop_map(|(scheme, bytes)| Header::RawBytes { scheme, bytes }),
        1 => prop_oneof![
            tricky_string(30),
            Just("Bearer abc".to_owned()),
            Just("Basic".to_owned()),
            Just("Basic ".to_owned()),
            Just("Basic !!!".to_owned()),
            Just(format!("Basic {}", URL_SAFE_NO_PAD.encode("a:b?>"))),
            Just("Digest username=\"a\"".to_owned()),
        ].prop_map(Header::Text),
    ]
}

impl Header {
    fn value(&self) -> String {
        match self {
            Self::Basic { scheme, id, secret } => format!("{scheme} {}", basic_value(id, secret)),
            Self::RawBytes { scheme, bytes } => format!("{scheme} {}", STANDARD.encode(bytes)),
            Self::Text(text) => text.clone(),
        }
    }
}

fn body_value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some("c1".to_owned())),
        2 => tricky_string(8).prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(config(3_000))]

    /// Basic credentials round-trip whatever they contain (`:`, `%`, `+`, spaces, any
    /// Unicode), under any case of the scheme name (RFC 7235 §2.1: auth-schemes are
    /// case-insensitive).
    #[test]
    fn basic_credentials_round_trip(
        scheme in proptest::sample::select(&["Basic", "basic", "BASIC", "bAsIc"][..]),
        id in tricky_string(16).prop_filter("an id", |id| !id.is_empty()),
        secret in tricky_string(16),
        repeat_id_in_body in any::<bool>(),
    ) {
        let header = format!("{scheme} {}", basic_value(&id, &secret));
        let body_id = repeat_id_in_body.then_some(id.as_str());
        prop_assert_eq!(
            presented_client(Some(&header), body_id, None),
            Ok(PresentedClient::Basic { client_id: id.clone(), secret: secret.clone() })
        );
    }

    /// Any combination of header and body fields: no panic, and the refusal is
    /// `invalid_client` for bad credentials or `invalid_request` for a request that mixes
    /// methods (RFC 6749 §2.3 and §5.2).
    #[test]
    fn refusals_are_invalid_client_or_invalid_request(
        header in proptest::option::of(header()),
        body_id in body_value(),
        body_secret in body_value(),
    ) {
        let value = header.as_ref().map(Header::value);
        let result = presented_client(value.as_deref(), body_id.as_deref(), body_secret.as_deref());
        let basic = value.as_deref().and_then(|v| v.split_once(' ')).filter(|(s, _)| s.eq_ignore_ascii_case("basic"));
        let expected = match (&header, basic) {
            (None, _) => match (&body_id, &body_secret) {
                (None, _) => Err(ErrorCode::InvalidClient),
                (Some(id), _) if id.is_empty() => Err(ErrorCode::InvalidClient),
                (Some(id), None) => Ok(PresentedClient::Public { client_id: id.clone() }),
                (Some(id), Some(secret)) => Ok(PresentedClient::Post { client_id: id.clone(), secret: secret.clone() }),
            },
            (Some(_), None) => Err(ErrorCode::InvalidClient),
            (Some(_), Some(_)) if body_secret.is_some() => Err(ErrorCode::InvalidRequest),
            (Some(Header::Basic { id, secret, .. }), Some(_)) => {
                if body_id.as_ref().is_some_and(|b| b != id) {
                    Err(ErrorCode::InvalidRequest)
                } else if id.is_empty() {
                    Err(ErrorCode::InvalidClient)
                } else {
                    Ok(PresentedClient::Basic { client_id: id.clone(), secret: secret.clone() })
                }
            }
            // Undecodable, not UTF-8 or without `:` are `invalid_client`; a decodable pair
            // may still clash with the body.
            (Some(_), Some(_)) => match &result {
                Err(e) if e.code == ErrorCode::InvalidRequest => {
                    prop_assert!(body_id.is_some(), "invalid_request only when the body names another client");
                    Err(ErrorCode::InvalidRequest)
                }
                Err(_) => Err(ErrorCode::InvalidClient),
                Ok(presented) => Ok(presented.clone()),
            },
        };
        match (&result, &expected) {
            (Ok(got), Ok(want)) => prop_assert_eq!(got, want),
            (Err(error), Err(code)) => {
                prop_assert_eq!(error.code, *code, "{}", error.description);
                prop_assert!(is_error_description(&error.description));
            }
            _ => return Err(TestCaseError::fail(format!("expected {expected:?}, got {result:?}"))),
        }
    }
}
