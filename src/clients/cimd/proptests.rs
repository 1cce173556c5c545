//! Property tests of Client ID Metadata Documents: which client ids are document URLs, and the
//! validation of generated documents (near-valid field by field) with messages that quote
//! document values only as RFC 6749 §5.2 allows.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::oauth::proptests::{
    assembled_uri, config, is_error_description, mutated, near_valid_uri, real_redirect_uri,
    tricky_string,
};

const URL: &str = "https://app.example.com/oauth/client.json";

fn client_id_candidates() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => mutated(
            proptest::sample::select(&[URL, "https://claude.ai/oauth/mcp-oauth-client-metadata", "http://127.0.0.1:8080/client", "https://[::1]/c?v=1"][..])
                .prop_map(str::to_owned),
            3,
        ),
        1 => mutated(assembled_uri(), 1),
    ]
}

/// A document field: usually present and near-valid, sometimes `null` or of another type.
fn field(valid: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        6 => valid.prop_map(Some),
        1 => Just(Some(Value::Null)),
        1 => prop_oneof![Just(json!(1)), Just(json!({"a": 1})), Just(json!(["x"])), Just(json!(true))].prop_map(Some),
    ]
}

fn document() -> impl Strategy<Value = Map<String, Value>> {
    let uris = proptest::collection::vec(
        prop_oneof![4 => real_redirect_uri().prop_map(Value::from), 2 => near_valid_uri().prop_map(Value::from), 1 => Just(json!(5))],
        0..4,
    )
    .prop_map(Value::Array);
    let text = || tricky_string(10).prop_map(Value::from);
    (
        field(prop_oneof![6 => Just(Value::from(URL)), 1 => mutated(Just(URL.to_owned()), 1).prop_map(Value::from)]),
        field(uris),
        field(prop_oneof![
            proptest::sample::select(&["none", "private_key_jwt", "client_secret_basic", "client_secret_post", "client_secret_jwt", "tls_client_auth"][..]).prop_map(Value::from),
            text(),
        ]),
        field(text()),
        field(text()),
        field(near_valid_uri().prop_map(Value::from)),
        prop_oneof![4 => Just(None), 1 => field(text())],
        prop_oneof![4 => Just(None), 1 => field(Just(json!(0)))],
    )
        .prop_map(|(id, uris, method, name, client_uri, logo, secret, secret_expiry)| {
            [
                ("client_id", id),
                ("redirect_uris", uris),
                ("token_endpoint_auth_method", method),
                ("client_name", name),
                ("client_uri", client_uri),
                ("logo_uri", logo),
                ("client_secret", secret),
                ("client_secret_expires_at", secret_expiry),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| (name.to_owned(), v)))
            .collect()
        })
}

proptest! {
    #![proptest_config(config(3_000))]

    /// A client id counts as a document URL only when it is exactly its canonical https URL
    /// (http on loopback with the test switch), with a path, no fragment, no user information
    /// and no dot segments.
    #[test]
    fn client_id_urls_are_canonical_https_urls(candidate in client_id_candidates(), allow_http in any::<bool>()) {
        if !is_client_id_url(&candidate, allow_http) {
            return Ok(());
        }
        let url = Url::parse(&candidate).expect("a document URL parses");
        prop_assert_eq!(url.as_str(), candidate.as_str());
        prop_assert!(candidate.len() <= MAX_URL_LENGTH);
        prop_assert!(url.scheme() == "https" || (allow_http && url.scheme() == "http"
            && matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))));
        prop_assert!(url.fragment().is_none() && url.username().is_empty() && url.password().is_none());
        prop_assert!(url.path() != "/" && !url.path().split('/').any(|s| s == "." || s == ".."));
        // The HTTP layer parses every client id before it looks here: no document URL may be
        // refused there.
        prop_assert!(candidate.parse::<crate::ids::ClientId>().is_ok());
    }

    /// Any document: no panic; only the refusals a document can earn (never a network or
    /// cache error); an accepted one is served from its own URL, lists only registrable
    /// redirect URIs and no secret; every message keeps to RFC 6749 §5.2's characters.
    #[test]
    fn documents_are_validated_field_by_field(document in document(), raw_text in tricky_string(20)) {
        let text = Value::Object(document.clone()).to_string();
        for text in [text.as_str(), raw_text.as_str()] {
            match validate_document(URL, text, &crate::oauth::proptests::custom_schemes()) {
                Ok(valid) => {
                    prop_assert_eq!(valid.client_id.as_str(), URL);
                    prop_assert_eq!(document.get("client_id"), Some(&Value::from(URL)));
                    prop_assert!(!valid.redirect_uris.is_empty());
                    for uri in &valid.redirect_uris {
                        prop_assert!(RedirectUri::parse(uri, MAX_REDIRECT_URI_LENGTH, &crate::oauth::proptests::custom_schemes()).is_ok());
                    }
                    prop_assert!(["none", "private_key_jwt"].contains(&valid.token_endpoint_auth_method.as_str()));
                    prop_assert!(document.get("client_secret").is_none_or(Value::is_null));
                }
                Err(error) => {
                    prop_assert!(!error.is_temporary(), "{}", error);
                    prop_assert!(
                        matches!(
                            error,
                            CimdError::NotJson
                                | CimdError::ClientIdMismatch
                                | CimdError::SecretInDocument
                                | CimdError::MissingRedirectUris
                                | CimdError::InvalidRedirectUri(_)
                                | CimdError::InvalidField(_)
                                | CimdError::SecretAuthMethod(_)
                                | CimdError::UnsupportedAuthMethod(_)
                        ),
                        "{}", error
                    );
                    prop_assert!(is_error_description(&error.to_string()), "{}", error);
                }
            }
        }
    }

    /// `Cache-Control` of any shape gives a lifetime within the configured bounds, or none
    /// for `no-store`.
    #[test]
    fn cache_lifetimes_stay_within_bounds(
        header in mutated(proptest::sample::select(&["max-age=300", "no-store", "public, max-age=99999999999999999999999", "max-age=\"60\", no-cache"][..]).prop_map(str::to_owned), 3),
        min in 0u64..1000,
        extra in 0u64..100_000,
    ) {
        let max = min + extra;
        match cache_lifetime(&header, min, max) {
            Some(secs) => prop_assert!((min..=max).contains(&secs)),
            None => prop_assert!(header.to_ascii_lowercase().contains("no-store")),
        }
    }
}
