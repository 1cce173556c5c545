//! Properties over HTTP: random form bodies to `/token`, random JSON to `/register` and random
//! query strings to `/authorize`, each against one server spawned per property. Every answer
//! must be a well-formed RFC error (JSON whose `error` is one the endpoint may give, with its
//! status and an RFC 6749 §5.2 `error_description`), a page, or a success; never a 5xx and
//! never a dropped connection (which is what a panicking handler gives).
//!
//! A few hundred cases each, so the suite stays fast; `PROPTEST_CASES` runs more.

use std::future::Future;

use authbridge::oauth::redirect_uri::match_redirect_uri;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::browser::query_of;
use crate::helpers::{TestApp, TestDb, spawn_app, spawn_app_with};

/// Cases per HTTP property unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 300;

/// Runs `property` over `strategy`, `PROPTEST_CASES` or [`DEFAULT_CASES`] times.
fn check<S: Strategy>(strategy: S, property: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let config = Config {
        cases,
        failure_persistence: None,
        // Each shrinking step is a request: keep a failure's report quick.
        max_shrink_iters: 200,
        ..Config::default()
    };
    if let Err(failure) = TestRunner::new(config).run(&strategy, property) {
        panic!("{failure}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn block_on<T>(runtime: &tokio::runtime::Runtime, future: impl Future<Output = T>) -> T {
    runtime.block_on(future)
}

/// Characters that change how forms, JSON, URIs and headers are read.
const SPECIAL: &[char] = &[
    '&',
    '=',
    '+',
    '%',
    ' ',
    '#',
    '?',
    '/',
    ':',
    '@',
    '"',
    '\\',
    '\'',
    '<',
    '\0',
    '\n',
    '\r',
    '\t',
    '\u{7f}',
    'é',
    '\u{202e}',
    '\u{feff}',
    '\u{1f600}',
    'A',
    'z',
    '0',
];

fn tricky(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            3 => proptest::sample::select(SPECIAL),
            2 => proptest::char::range('!', '~'),
            1 => any::<char>(),
        ],
        0..=max,
    )
    .prop_map(String::from_iter)
}

/// Percent-escapes of any bytes: invalid UTF-8, NUL, truncated escapes.
fn escapes() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..6)
            .prop_map(|bytes| bytes.iter().map(|b| format!("%{b:02X}")).collect()),
        proptest::sample::select(&["%", "%0", "%zz", "%00", "%C3%28", "%FF", "%E2%80%AE"][..])
            .prop_map(str::to_owned),
    ]
}

fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A form or query value: near-valid ones from `known`, odd text, raw escapes.
fn value(known: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(known).prop_map(|v| form_encode(&v)),
        2 => tricky(12).prop_map(|v| form_encode(&v)),
        1 => escapes(),
        1 => Just(String::new()),
    ]
}

/// `name=value&…` of up to `max_pairs` pairs, names from `names` or odd, some repeated, some
/// without `=`.
fn form(
    names: &'static [&'static str],
    values: Vec<String>,
    max_pairs: usize,
) -> impl Strategy<Value = String> {
    let name = prop_oneof![
        6 => proptest::sample::select(names).prop_map(str::to_owned),
        1 => tricky(5).prop_map(|n| form_encode(&n)),
        1 => escapes(),
    ];
    let pair = (name, value(values), 0u8..10).prop_map(|(name, value, shape)| match shape {
        0 => name,
        1 => format!("{name}={value}={value}"),
        _ => format!("{name}={value}"),
    });
    (
        proptest::collection::vec(pair, 0..=max_pairs),
        proptest::sample::select(&["&", "&", "&&", ";"][..]),
    )
        .prop_map(|(pairs, separator)| pairs.join(separator))
}

/// RFC 6749 §5.2: `error_description` is limited to %x20-21 / %x23-5B / %x5D-7E.
fn is_error_description(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// A JSON error body: `error` one of `allowed`, a description in the RFC's characters, and
/// the status that error has.
fn check_json_error(
    status: u16,
    body: &[u8],
    allowed: &[(&str, u16)],
) -> Result<String, TestCaseError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("{status}: not JSON ({e}): {body:?}")))?;
    let error = body["error"].as_str().unwrap_or_default();
    let Some((_, expected_status)) = allowed.iter().find(|(code, _)| *code == error) else {
        return Err(TestCaseError::fail(format!(
            "{status}: `error` not allowed here: {body}"
        )));
    };
    prop_assert_eq!(status, *expected_status, "{}", body);
    let description = body["error_description"].as_str().unwrap_or_default();
    prop_assert!(
        !description.is_empty() && is_error_description(description),
        "{}",
        body
    );
    Ok(error.to_owned())
}

const TOKEN_FIELDS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "resource",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
];

/// RFC 6749 §5.2, RFC 8707 and RFC 8693: what `/token` may answer to an unknown request.
const TOKEN_ERRORS: &[(&str, u16)] = &[
    ("invalid_request", 400),
    ("invalid_client", 401),
    ("invalid_grant", 400),
    ("unauthorized_client", 400),
    ("unsupported_grant_type", 400),
    ("invalid_scope", 400),
    ("invalid_target", 400),
];

#[derive(Debug, Clone)]
struct TokenRequest {
    body: String,
    content_type: Option<&'static str>,
    authorization: Vec<String>,
}

#[test]
fn random_token_requests_get_rfc_errors() {
    let runtime = runtime();
    let (app, public_id, (confidential_id, secret)) = block_on(&runtime, async {
        let app = spawn_app().await;
        let public_id = app.register_public("https://app.example.com/cb", "P").await;
        let info: Value = app
            .register(&json!({"redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "client_secret_post"}))
            .await
            .json()
            .await
            .unwrap();
        let confidential = (
            info["client_id"].as_str().unwrap().to_owned(),
            info["client_secret"].as_str().unwrap().to_owned(),
        );
        (app, public_id, confidential)
    });
    let basic = |id: &str, secret: &str| {
        use base64::Engine;
        let encoded = format!("{}:{}", form_encode(id), form_encode(secret));
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(encoded)
        )
    };
    let values: Vec<String> = [
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "client_credentials",
        &public_id,
        &confidential_id,
        &secret,
        "https://app.example.com/cb",
        "https://app.example.com/client.json",
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        "urn:ietf:params:oauth:token-type:access_token",
        "mcp",
    ]
    .map(str::to_owned)
    .to_vec();
    let authorization = prop_oneof![
        4 => Just(Vec::new()),
        1 => Just(vec![basic(&confidential_id, &secret)]),
        1 => Just(vec![basic(&public_id, "")]),
        1 => (tricky(6), tricky(6)).prop_map(move |(i, s)| vec![basic(&i, &s)]),
        1 => proptest::sample::select(&["Basic !!!", "Bearer abc", "basic", "Basic Og=="][..]).prop_map(|h| vec![h.to_owned()]),
        1 => Just(vec!["Basic YTpi".to_owned(), "Basic YTpi".to_owned()]),
    ];
    let content_type = proptest::sample::select(
        &[
            Some("application/x-www-form-urlencoded"),
            Some("application/x-www-form-urlencoded"),
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            Some("APPLICATION/X-WWW-FORM-URLENCODED"),
            Some("application/json"),
            Some("text/plain"),
            None,
        ][..],
    );
    let request = (form(TOKEN_FIELDS, values, 8), content_type, authorization).prop_map(
        |(body, content_type, authorization)| TokenRequest {
            body,
            content_type,
            authorization,
        },
    );
    check(request, |request| {
        block_on(&runtime, async {
            let mut builder = app.http.post(app.url("/token")).body(request.body.clone());
            if let Some(content_type) = request.content_type {
                builder = builder.header("content-type", content_type);
            }
            for value in &request.authorization {
                builder = builder.header("authorization", value.as_str());
            }
            let response = builder
                .send()
                .await
                .map_err(|e| TestCaseError::fail(format!("no answer (a panic?): {e}")))?;
            let status = response.status().as_u16();
            let challenge = response.headers().contains_key("www-authenticate");
            prop_assert_eq!(
                response
                    .headers()
                    .get("cache-control")
                    .and_then(|v| v.to_str().ok()),
                Some("no-store")
            );
            let body = response.bytes().await.unwrap_or_default();
            let error = check_json_error(status, &body, TOKEN_ERRORS)?;
            prop_assert!(
                error != "invalid_client" || challenge,
                "401 without WWW-Authenticate"
            );
            Ok(())
        })
    });
    block_on(&runtime, app.stop());
}

/// Registration bodies: near-valid metadata objects, arbitrary JSON, and non-JSON.
fn registration_body() -> impl Strategy<Value = (Vec<u8>, &'static str)> {
    let uri = prop_oneof![
        12 => proptest::sample::select(&[
            "https://app.example.com/cb", "http://127.0.0.1/cb", "http://localhost:8080/cb",
            "cursor://app/cb", "https://app.example.com/cb2", "http://[::1]/cb",
        ][..]).prop_map(Value::from),
        3 => proptest::sample::select(&[
            "http://evil.example/cb", "https://a.example/cb#x",
            "javascript:alert(1)", "https://u:p@a.example/cb", "HTTPS://a.example/cb",
        ][..]).prop_map(Value::from),
        2 => tricky(20).prop_map(|t| Value::from(format!("https://a.example/{t}"))),
        1 => tricky(10).prop_map(Value::from),
        1 => Just(json!(1)),
    ];
    let field_value = prop_oneof![
        tricky(12).prop_map(Value::from),
        proptest::sample::select(
            &[
                "none",
                "client_secret_post",
                "client_secret_basic",
                "private_key_jwt",
                "authorization_code",
                "native",
                "web"
            ][..]
        )
        .prop_map(Value::from),
        proptest::collection::vec(
            proptest::sample::select(
                &[
                    "authorization_code",
                    "refresh_token",
                    "implicit",
                    "code",
                    "token"
                ][..]
            )
            .prop_map(Value::from),
            0..3,
        )
        .prop_map(Value::Array),
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
    ];
    let name = prop_oneof![
        4 => proptest::sample::select(&[
            "token_endpoint_auth_method", "grant_types", "response_types", "client_name",
            "client_uri", "logo_uri", "scope", "application_type", "client_id", "software_id",
        ][..]).prop_map(str::to_owned),
        1 => tricky(6),
    ];
    // Usually plausible values of the fields hosts send, then random fields on top.
    let plausible = proptest::sample::subsequence(
        &[
            ("token_endpoint_auth_method", "none"),
            ("client_name", "Some App"),
            ("grant_types", "authorization_code refresh_token"),
            ("response_types", "code"),
            ("application_type", "native"),
            ("client_uri", "https://app.example.com/"),
        ][..],
        0..=6,
    );
    let object = (
        proptest::option::weighted(0.95, proptest::collection::vec(uri, 1..3)),
        plausible,
        proptest::collection::vec((name, field_value), 0..2),
    )
        .prop_map(|(uris, plausible, fields)| {
            let mut object: serde_json::Map<String, Value> = plausible
                .into_iter()
                .map(|(name, value)| {
                    let value = match name {
                        "grant_types" | "response_types" => {
                            json!(value.split(' ').collect::<Vec<_>>())
                        }
                        _ => json!(value),
                    };
                    (name.to_owned(), value)
                })
                .collect();
            object.extend(fields);
            if let Some(uris) = uris {
                object.insert("redirect_uris".into(), Value::Array(uris));
            }
            serde_json::to_vec(&Value::Object(object)).unwrap()
        });
    let content_type = proptest::sample::select(
        &[
            "application/json",
            "application/json",
            "application/json",
            "application/json; charset=utf-8",
            "application/json",
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
        ][..],
    );
    let body = prop_oneof![
        6 => object,
        1 => Just(b"[]".to_vec()),
        1 => tricky(20).prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..30),
    ];
    (body, content_type)
}

/// RFC 7591 §3.2.2, and the rate limit.
const REGISTRATION_ERRORS: &[(&str, u16)] = &[
    ("invalid_redirect_uri", 400),
    ("invalid_client_metadata", 400),
    ("temporarily_unavailable", 429),
];

#[test]
fn random_registrations_get_rfc_answers() {
    let runtime = runtime();
    let app = block_on(
        &runtime,
        spawn_app_with(block_on(&runtime, TestDb::new()), |config| {
            config.registration.per_source_limit = 100_000
        }),
    );
    check(registration_body(), |(body, content_type)| {
        block_on(&runtime, async {
            let response = app
                .http
                .post(app.url("/register"))
                .header("content-type", content_type)
                .body(body.clone())
                .send()
                .await
                .map_err(|e| TestCaseError::fail(format!("no answer (a panic?): {e}")))?;
            let status = response.status().as_u16();
            let answer = response.bytes().await.unwrap_or_default();
            if status == 201 {
                let info: Value = serde_json::from_slice(&answer).expect("a JSON registration");
                prop_assert!(info["client_id"].is_string());
                prop_assert!(
                    info.as_object().unwrap().values().all(|v| !v.is_null()),
                    "{}",
                    info
                );
            } else {
                check_json_error(status, &answer, REGISTRATION_ERRORS)?;
            }
            Ok(())
        })
    });
    block_on(&runtime, app.stop());
}

const AUTHORIZE_FIELDS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "state",
    "scope",
    "resource",
    "prompt",
];

const REDIRECT_URIS: &[&str] = &[
    "https://app.example.com/cb",
    "http://127.0.0.1/cb",
    "http://localhost:8765/callback",
    "cursor://app/cb",
];

/// Errors `/authorize` may send back to a verified redirect URI (RFC 6749 §4.1.2.1, OpenID
/// Connect's `login_required`); a server error is not one a random request may cause.
const AUTHORIZE_ERRORS: &[&str] = &[
    "invalid_request",
    "unsupported_response_type",
    "invalid_scope",
    "invalid_target",
    "login_required",
];

#[test]
fn random_authorization_requests_get_pages_or_verified_redirects() {
    let runtime = runtime();
    let (app, client_id) = block_on(&runtime, async {
        // No metadata-document client ids: those would be fetched from the network.
        let db = TestDb::new().await;
        let app = spawn_app_with(db, |c| {
            c.client_metadata_documents.enabled = false;
            // Hundreds of requests from one address: past the per-source limit otherwise.
            c.login.per_source_limit = 1_000_000;
        })
        .await;
        let info: Value = app
            .register(
                &json!({"redirect_uris": REDIRECT_URIS, "token_endpoint_auth_method": "none"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let client_id = info["client_id"].as_str().unwrap().to_owned();
        // A client some user has approved, so that errors after the redirect URI is verified
        // are redirected (an unapproved one gets pages only) and both paths are exercised.
        let db = sea_orm::Database::connect(&app.db.url).await.unwrap();
        sea_orm::ConnectionTrait::execute_unprepared(
            &db,
            &format!("UPDATE clients SET first_authorized_at = 1 WHERE client_id = '{client_id}'"),
        )
        .await
        .unwrap();
        db.close().await.ok();
        (app, client_id)
    });
    // Variants of the registered URIs, including a loopback port out of range (issue 9 item
    // 9: it once matched and then panicked).
    let mut values: Vec<String> = REDIRECT_URIS.iter().map(|u| (*u).to_owned()).collect();
    values.extend(
        [
            "http://127.0.0.1:51234/cb",
            "http://127.0.0.1:99999/cb",
            "http://localhost:65536/callback",
            "http://localhost:1/callback",
            "http://localhost:65535/callback",
            "http://localhost:8765/callback/",
            "http://127.0.0.1:8080/cb?x=1",
            "http://[::1]:8080/cb",
            "https://app.example.com/cb/",
            "https://APP.example.com/cb",
            "https://app.example.com:443/cb",
            "https://app.example.com/cb#x",
            "https://app.example.com.evil.example/cb",
            "cursor://app/cb2",
            "code",
            "token",
            "S256",
            "plain",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "consent",
            "none",
            "mcp",
            "unknown-client",
            &app.issuer,
        ]
        .map(str::to_owned),
    );
    values.push(client_id.clone());
    values.push(client_id.clone());
    // Mostly a plausible request (this client, one of its URIs, PKCE) with random parameters
    // added or repeated, so that the checks after the client and redirect URI are reached.
    let plausible = [
        format!("client_id={client_id}"),
        "redirect_uri=http%3A%2F%2F127.0.0.1%3A4321%2Fcb".to_owned(),
        "response_type=code".to_owned(),
        "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
            .to_owned(),
    ];
    let query = (
        proptest::collection::vec(any::<bool>(), 4),
        proptest::sample::select(REDIRECT_URIS),
        form(AUTHORIZE_FIELDS, values, 3),
    )
        .prop_map(move |(keep, redirect_uri, random)| {
            let mut parts: Vec<String> = plausible
                .iter()
                .zip(&keep)
                .filter(|(_, keep)| **keep)
                .map(|(part, _)| {
                    part.replace(
                        "http%3A%2F%2F127.0.0.1%3A4321%2Fcb",
                        &form_encode(redirect_uri),
                    )
                })
                .collect();
            parts.push(random);
            parts.join("&")
        });
    check(query, |query| {
        block_on(&runtime, async {
            let response = app
                .http
                .get(format!("{}?{query}", app.url("/authorize")))
                .send()
                .await
                .map_err(|e| TestCaseError::fail(format!("no answer (a panic?): {e}")))?;
            let status = response.status().as_u16();
            prop_assert!(status < 500, "{} for {}", status, query);
            if status == 302 {
                let location = response.headers()["location"].to_str().unwrap().to_owned();
                check_error_redirect(&app, &client_id, &query, &location)?;
            } else {
                let content_type = response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                prop_assert!(
                    content_type.starts_with("text/html"),
                    "{} {}",
                    status,
                    content_type
                );
                prop_assert!(status == 200 || status == 400, "{} for {}", status, query);
            }
            Ok(())
        })
    });
    block_on(&runtime, app.stop());
}

/// A redirect goes only to the client's own redirect URI (the one requested, which matched a
/// registered one), with an allowed error, our `iss` (RFC 9207) and a valid description.
fn check_error_redirect(
    app: &TestApp,
    client_id: &str,
    query: &str,
    location: &str,
) -> Result<(), TestCaseError> {
    let sent: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let first = |name: &str| sent.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let sent_client = first("client_id");
    prop_assert_eq!(sent_client.as_deref(), Some(client_id));
    let requested = first("redirect_uri").unwrap_or_default();
    prop_assert!(
        match_redirect_uri(REDIRECT_URIS.iter().copied(), &requested).is_some(),
        "redirected to unverified {}",
        requested
    );
    prop_assert!(
        location.starts_with(&requested),
        "{} is not {}",
        location,
        requested
    );
    let params = query_of(location);
    let error = params.get("error").map(String::as_str).unwrap_or_default();
    prop_assert!(AUTHORIZE_ERRORS.contains(&error), "{}", location);
    prop_assert_eq!(params.get("iss"), Some(&app.issuer));
    prop_assert!(
        is_error_description(&params["error_description"]),
        "{}",
        location
    );
    Ok(())
}

// Cases the properties found, pinned. Each failed on PostgreSQL before its fix (a text column
// cannot hold NUL, so the query failed and the answer was a 500).

#[tokio::test]
async fn a_client_id_with_a_nul_byte_is_an_unknown_client() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "a\0b"),
            ("code", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    let page = app
        .get("/authorize?client_id=a%00b&redirect_uri=https%3A%2F%2Fa.example%2Fcb")
        .await;
    assert_eq!(page.status(), 400, "the page for an unknown client");
}

#[tokio::test]
async fn a_state_with_a_nul_byte_is_an_invalid_request() {
    let app = spawn_app().await;
    let redirect = "https://app.example.com/cb";
    let client_id = app.register_public(redirect, "App").await;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "a\0b")
        .finish();
    let response = app.get(&format!("/authorize?{query}")).await;
    // No user has approved this dynamic client yet, so the error is a page here, not a
    // redirect (RFC 9700 §4.11.2); what matters is that it is a refusal, not a 500.
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("state"), "{page}");
}
