//! Client metadata (RFC 7591 §2 and §3.2.2): generated registration bodies, near-valid field
//! by field, refused with `invalid_redirect_uri` exactly when the redirect URIs are at fault
//! and `invalid_client_metadata` otherwise; accepted ones echo back to themselves.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{config, near_valid_uri, real_redirect_uri, tricky_string};
use crate::oauth::client_metadata::{ClientMetadata, MetadataRules};
use crate::oauth::redirect_uri::{AllowPattern, RedirectUri};
use crate::oauth::scope::is_scope_token;

const MAX_URIS: usize = 3;
const MAX_URI_LENGTH: usize = 200;

fn rules(loopback_only: bool) -> MetadataRules {
    MetadataRules {
        max_redirect_uris: MAX_URIS,
        max_redirect_uri_length: MAX_URI_LENGTH,
        allowlist: if loopback_only {
            vec![AllowPattern::parse("loopback").unwrap()]
        } else {
            Vec::new()
        },
        custom_schemes: super::custom_schemes(),
    }
}

fn strings(values: &'static [&'static str]) -> impl Strategy<Value = Value> + Clone {
    proptest::sample::select(values).prop_map(Value::from)
}

/// A JSON value of another type than the field expects.
fn wrong_type() -> impl Strategy<Value = Value> + Clone {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(json!({"a": [1]})),
        Just(json!([null])),
    ]
}

/// A field that is usually present and usually near-valid.
fn field(
    valid: impl Strategy<Value = Value> + Clone + 'static,
) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        6 => valid.prop_map(Some),
        1 => wrong_type().prop_map(Some),
    ]
}

fn redirect_uris() -> impl Strategy<Value = Value> + Clone {
    let uri = prop_oneof![
        4 => real_redirect_uri().prop_map(Value::from),
        3 => near_valid_uri().prop_map(Value::from),
        1 => wrong_type(),
    ];
    proptest::collection::vec(uri, 0..=MAX_URIS + 1).prop_map(Value::Array)
}

fn string_list(values: &'static [&'static str]) -> impl Strategy<Value = Value> + Clone {
    proptest::sample::subsequence(values, 0..=values.len()).prop_map(|v| json!(v))
}

fn body() -> impl Strategy<Value = Map<String, Value>> {
    let fields = (
        field(redirect_uris()),
        field(prop_oneof![
            strings(&[
                "none",
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "None",
                ""
            ]),
            tricky_string(8).prop_map(Value::from),
        ]),
        field(string_list(&[
            "authorization_code",
            "refresh_token",
            "implicit",
            "authorization_code",
            "client_credentials",
        ])),
        field(string_list(&["code", "token", "code"])),
        field(prop_oneof![
            4 => tricky_string(20).prop_map(Value::from),
            1 => (195usize..205).prop_map(|n| Value::from("n".repeat(n))),
        ]),
        field(
            prop_oneof![near_valid_uri(), Just("https://app.example/".to_owned())]
                .prop_map(Value::from),
        ),
        field(
            prop_oneof![
                near_valid_uri(),
                Just("https://app.example/logo.png".to_owned())
            ]
            .prop_map(Value::from),
        ),
        field(prop_oneof![
            strings(&["mcp", "claudeai", "a b", "a  b", ""]),
            tricky_string(8).prop_map(Value::from)
        ]),
        field(prop_oneof![
            strings(&["native", "web", "Web"]),
            tricky_string(4).prop_map(Value::from)
        ]),
    );
    let extra = proptest::collection::vec(
        (
            prop_oneof![
                strings(&[
                    "client_id",
                    "client_secret",
                    "registration_access_token",
                    "client_id_issued_at",
                    "software_id"
                ])
                .prop_map(|v| v.as_str().unwrap().to_owned()),
                tricky_string(6),
            ],
            prop_oneof![tricky_string(10).prop_map(Value::from), wrong_type()],
        ),
        0..4,
    );
    (fields, extra).prop_map(
        |((uris, method, grants, responses, name, client_uri, logo, scope, kind), extra)| {
            let mut body: Map<String, Value> = extra.into_iter().collect();
            for (key, value) in [
                ("redirect_uris", uris),
                ("token_endpoint_auth_method", method),
                ("grant_types", grants),
                ("response_types", responses),
                ("client_name", name),
                ("client_uri", client_uri),
                ("logo_uri", logo),
                ("scope", scope),
                ("application_type", kind),
            ] {
                match value {
                    Some(value) => body.insert(key.to_owned(), value),
                    None => body.remove(key),
                };
            }
            body
        },
    )
}

/// The oracle for `redirect_uris` (RFC 7591 §2 and the operator's limits).
fn redirect_uris_valid(body: &Map<String, Value>, loopback_only: bool) -> bool {
    let Some(Value::Array(items)) = body.get("redirect_uris") else {
        return false;
    };
    !items.is_empty()
        && items.len() <= MAX_URIS
        && items.iter().all(|item| {
            item.as_str().is_some_and(|text| {
                RedirectUri::parse(
                    text,
                    MAX_URI_LENGTH,
                    &crate::oauth::proptests::custom_schemes(),
                )
                .is_ok()
                    && (!loopback_only
                        || AllowPattern::Loopback.allows(
                            &RedirectUri::parse(
                                text,
                                MAX_URI_LENGTH,
                                &crate::oauth::proptests::custom_schemes(),
                            )
                            .unwrap(),
                        ))
            })
        })
}

/// The oracle for every other field: absent (or `null`), or of the right type and value.
fn other_fields_valid(body: &Map<String, Value>) -> bool {
    let string = |name: &str, ok: &dyn Fn(&str) -> bool| match body.get(name) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => ok(s),
        Some(_) => false,
    };
    let list = |name: &str, ok: &dyn Fn(&[&str]) -> bool| match body.get(name) {
        None | Some(Value::Null) => true,
        Some(Value::Array(items)) => {
            let texts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            texts.is_some_and(|t| ok(&t))
        }
        Some(_) => false,
    };
    let https_url = |s: &str| {
        s.len() <= 2000
            && url::Url::parse(s).is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some())
    };
    let deceptive = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
    };
    string("token_endpoint_auth_method", &|m| {
        ["none", "client_secret_basic", "client_secret_post"].contains(&m)
    }) && list("grant_types", &|g| {
        g.contains(&"authorization_code")
            && g.iter()
                .all(|g| ["authorization_code", "refresh_token"].contains(g))
    }) && list("response_types", &|r| {
        !r.is_empty() && r.iter().all(|r| *r == "code")
    }) && string("client_name", &|n| {
        !n.chars().any(deceptive) && !n.trim().is_empty() && n.chars().count() <= 200
    }) && string("client_uri", &https_url)
        && string("logo_uri", &https_url)
        && string("scope", &|s| s.split(' ').all(is_scope_token))
        && string("application_type", &|t| t == "native" || t == "web")
}

proptest! {
    #![proptest_config(config(3_000))]

    /// No body panics; `invalid_redirect_uri` exactly when the redirect URIs are at fault
    /// (they are checked first), `invalid_client_metadata` for any other fault, and a body
    /// without fault is accepted.
    #[test]
    fn refusals_name_the_field_at_fault(body in body(), loopback_only in any::<bool>()) {
        let result = ClientMetadata::from_json(&Value::Object(body.clone()), &rules(loopback_only));
        let expected = if !redirect_uris_valid(&body, loopback_only) {
            Some("invalid_redirect_uri")
        } else if !other_fields_valid(&body) {
            Some("invalid_client_metadata")
        } else {
            None
        };
        prop_assert_eq!(result.as_ref().err().map(|e| e.code()), expected, "{:?}", result);
        if let Err(error) = &result {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    /// An accepted registration echoes back to itself (RFC 7592 reads and updates send it
    /// again): no `null`, no server-generated field, every redirect URI once, and the echo
    /// validates to the same metadata.
    #[test]
    fn accepted_metadata_echoes_to_itself(body in body()) {
        let Ok(metadata) = ClientMetadata::from_json(&Value::Object(body.clone()), &rules(false)) else {
            return Ok(());
        };
        let echo = metadata.to_json();
        prop_assert!(echo.values().all(|v| !v.is_null()));
        for generated in ["client_id", "client_secret", "registration_access_token", "client_id_issued_at"] {
            prop_assert!(!echo.contains_key(generated), "{}", generated);
        }
        let uris: Vec<&str> = metadata.redirect_uri_strs().collect();
        let mut unique = uris.clone();
        unique.dedup();
        prop_assert_eq!(uris.len(), unique.len());
        prop_assert!(metadata.grant_types.iter().any(|g| g == "refresh_token"));
        let again = ClientMetadata::from_json(&Value::Object(echo), &rules(false));
        prop_assert_eq!(again, Ok(metadata));
    }

    /// Whatever the JSON, no panic and one of the two RFC 7591 codes.
    #[test]
    fn any_json_gets_one_of_the_two_codes(value in proptest::arbitrary::any::<u8>().prop_flat_map(|_| json_value())) {
        if let Err(error) = ClientMetadata::from_json(&value, &rules(false)) {
            prop_assert!(["invalid_redirect_uri", "invalid_client_metadata"].contains(&error.code()));
        }
    }
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        tricky_string(10).prop_map(Value::from),
        real_redirect_uri().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    strings(&["redirect_uris", "grant_types", "client_name"])
                        .prop_map(|v| v.as_str().unwrap().to_owned()),
                    tricky_string(5)
                ],
                inner,
                0..4,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
