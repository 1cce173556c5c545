//! The token endpoint: authorization code with PKCE, RFC 9068 access tokens validated strictly,
//! refresh rotation with its grace window and reuse detection, and every error path.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Value, json};

use crate::browser::{Browser, VERIFIER, login_with_dev, query_of, register_public_client};
use crate::helpers::{TestApp, spawn_app};

const REDIRECT: &str = "https://claude.ai/api/mcp/auth_callback";

/// A public client and a fresh authorization code for user `alice`.
async fn code_for(app: &TestApp) -> (String, String) {
    let client_id = register_public_client(app, REDIRECT, "Claude").await;
    let code = fresh_code(app, &client_id, "alice").await;
    (client_id, code)
}

async fn fresh_code(app: &TestApp, client_id: &str, user: &str) -> String {
    let redirect = login_with_dev(app, &mut Browser::new(), client_id, REDIRECT, user).await;
    query_of(&redirect)["code"].clone()
}

async fn post_token(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.http
        .post(app.url("/token"))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn exchange(app: &TestApp, client_id: &str, code: &str) -> reqwest::Response {
    crate::browser::redeem_code(app, client_id, code, REDIRECT).await
}

async fn refresh(app: &TestApp, client_id: &str, token: &str) -> reqwest::Response {
    post_token(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", token),
        ],
    )
    .await
}

async fn ok_json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

async fn error_of(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    body["error"].as_str().unwrap().to_owned()
}

/// Validates an access token the way a strict resource server does: RS256 only, the key from
/// the served JWKS, `typ`, `iss`, `aud`, `exp`, every RFC 9068 claim.
async fn validate_strictly(app: &TestApp, token: &str) -> Value {
    let header = decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwks: JwkSet = app.get("/jwks.json").await.json().await.unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the kid is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256];
    validation.set_issuer(&[app.issuer.as_str()]);
    validation.set_audience(&["http://localhost:3000/mcp"]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat", "jti"]);
    let claims = decode::<Value>(token, &key, &validation)
        .expect("a strict validator accepts it")
        .claims;
    for claim in ["client_id", "scope", "auth_time"] {
        assert!(claims.get(claim).is_some(), "{claim} present");
    }
    claims
}

#[tokio::test]
async fn code_exchange_issues_a_strictly_valid_rfc_9068_token() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let tokens = ok_json(exchange(&app, &client_id, &code).await).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "mcp");
    assert!(tokens["refresh_token"].as_str().unwrap().starts_with("rt_"));
    let claims = validate_strictly(&app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        claims["iss"],
        app.issuer.as_str(),
        "byte-identical to the metadata"
    );
    assert_eq!(claims["client_id"], client_id.as_str());
    assert!(
        claims["sub"].as_str().unwrap().starts_with("usr_"),
        "our stable user id"
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let tokens = ok_json(exchange(&app, &client_id, &code).await).await;
    assert_eq!(
        error_of(exchange(&app, &client_id, &code).await, 400).await,
        "invalid_grant"
    );
    let refreshed = refresh(&app, &client_id, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        error_of(refreshed, 400).await,
        "invalid_grant",
        "the refresh token issued from the code is revoked"
    );
}

#[tokio::test]
async fn code_exchange_errors() {
    let app = spawn_app().await;
    let client_id = register_public_client(&app, REDIRECT, "Claude").await;
    let other_client =
        register_public_client(&app, "https://claude.com/api/mcp/auth_callback", "Other").await;
    type Overrides = Vec<(&'static str, String)>;
    let cases: Vec<(&str, Overrides, u16, &str)> = vec![
        (
            "wrong verifier",
            vec![("code_verifier", "x".repeat(43))],
            400,
            "invalid_grant",
        ),
        (
            "missing verifier",
            vec![("code_verifier", String::new())],
            400,
            "invalid_request",
        ),
        (
            "other redirect_uri",
            vec![("redirect_uri", "https://claude.ai/other".into())],
            400,
            "invalid_grant",
        ),
        (
            "missing redirect_uri",
            vec![("redirect_uri", String::new())],
            400,
            "invalid_grant",
        ),
        (
            "other client",
            vec![("client_id", other_client.clone())],
            400,
            "invalid_grant",
        ),
        (
            "other resource",
            vec![("resource", "https://other.example/mcp".into())],
            400,
            "invalid_target",
        ),
        (
            "unknown code",
            vec![("code", "code_unknown".into())],
            400,
            "invalid_grant",
        ),
    ];
    for (name, overrides, status, error) in cases {
        let code = fresh_code(&app, &client_id, "alice").await;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("client_id", client_id.clone()),
            ("code", code),
            ("redirect_uri", REDIRECT.into()),
            ("code_verifier", VERIFIER.into()),
        ];
        for (key, value) in overrides {
            form.retain(|(k, _)| *k != key);
            if !value.is_empty() {
                form.push((key, value));
            }
        }
        let borrowed: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            error_of(post_token(&app, &borrowed).await, status).await,
            error,
            "{name}"
        );
    }
    // An expired code (past 60 s).
    let code = fresh_code(&app, &client_id, "alice").await;
    app.clock.advance(61);
    assert_eq!(
        error_of(exchange(&app, &client_id, &code).await, 400).await,
        "invalid_grant",
        "expired code"
    );
}

#[tokio::test]
async fn client_authentication_failures_are_401_invalid_client() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let unknown = post_token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "client_nope"),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(error_of(unknown, 401).await, "invalid_client");
    let none = post_token(
        &app,
        &[("grant_type", "authorization_code"), ("code", &code)],
    )
    .await;
    assert_eq!(error_of(none, 401).await, "invalid_client");
    let secret_for_public = post_token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("client_secret", "x"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(error_of(secret_for_public, 401).await, "invalid_client");

    // A confidential client (claude.ai registers with client_secret_post).
    let registered: Value = app
        .register(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"}))
        .await
        .json()
        .await
        .unwrap();
    let (id, secret) = (
        registered["client_id"].as_str().unwrap(),
        registered["client_secret"].as_str().unwrap(),
    );
    let code = fresh_code(&app, id, "bob").await;
    let wrong_basic = app
        .http
        .post(app.url("/token"))
        .basic_auth(id, Some("wrong"))
        .form(&[("grant_type", "authorization_code"), ("code", &code)])
        .send()
        .await
        .unwrap();
    assert!(
        wrong_basic.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(error_of(wrong_basic, 401).await, "invalid_client");
    let both = app
        .http
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_secret", secret),
            ("code", &code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(both, 400).await,
        "invalid_request",
        "one method per request"
    );
    let post = post_token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("client_secret", secret),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    ok_json(post).await;

    // client_secret_basic percent-decodes (RFC 6749 §2.3.1).
    let code = fresh_code(&app, id, "bob").await;
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let basic = app
        .http
        .post(app.url("/token"))
        .basic_auth(id, Some(encoded))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    ok_json(basic).await;

    // A deleted client gets invalid_client, so the host registers again.
    let code = fresh_code(&app, &client_id, "alice").await;
    let admin = app
        .admin(
            reqwest::Method::DELETE,
            &format!("/admin/v1/clients/{client_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 204);
    assert_eq!(
        error_of(exchange(&app, &client_id, &code).await, 401).await,
        "invalid_client"
    );
}

#[tokio::test]
async fn malformed_token_requests() {
    let app = spawn_app().await;
    let client_id = register_public_client(&app, REDIRECT, "Claude").await;
    let repeated = app
        .http
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&grant_type=refresh_token&client_id={client_id}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(repeated, 400).await, "invalid_request");
    let json_body = app
        .http
        .post(app.url("/token"))
        .json(&json!({"grant_type": "refresh_token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(json_body, 400).await, "invalid_request");
    let unsupported = post_token(
        &app,
        &[("grant_type", "password"), ("client_id", &client_id)],
    )
    .await;
    assert_eq!(error_of(unsupported, 400).await, "unsupported_grant_type");
    let missing = post_token(&app, &[("client_id", &client_id)]).await;
    assert_eq!(error_of(missing, 400).await, "invalid_request");
    let no_token = post_token(
        &app,
        &[("grant_type", "refresh_token"), ("client_id", &client_id)],
    )
    .await;
    assert_eq!(error_of(no_token, 400).await, "invalid_request");
}

#[tokio::test]
async fn refresh_rotates_with_a_grace_window_then_detects_reuse() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let first = ok_json(exchange(&app, &client_id, &code).await).await;
    let old = first["refresh_token"].as_str().unwrap().to_owned();

    let second = ok_json(refresh(&app, &client_id, &old).await).await;
    let new = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new, old, "rotated");
    validate_strictly(&app, second["access_token"].as_str().unwrap()).await;

    // A retry with the old token inside the grace window gets the same answer.
    app.clock.advance(30);
    let retry = ok_json(refresh(&app, &client_id, &old).await).await;
    assert_eq!(
        retry, second,
        "the same pair: the client ends with the live token either way"
    );

    // After the window, the old token is reuse: the family is revoked, the new token too.
    app.clock.advance(31);
    assert_eq!(
        error_of(refresh(&app, &client_id, &old).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(
        error_of(refresh(&app, &client_id, &new).await, 400).await,
        "invalid_grant",
        "whole family revoked"
    );
}

#[tokio::test]
async fn refresh_scope_and_resource_rules() {
    let app = crate::helpers::spawn_app_with(crate::helpers::TestDb::new().await, |c| {
        c.resources[0].scopes = vec!["mcp".into(), "mcp:write".into()];
        c.resources[0].default_scopes = vec!["mcp".into(), "mcp:write".into()];
    })
    .await;
    let (client_id, code) = code_for(&app).await;
    let tokens = ok_json(exchange(&app, &client_id, &code).await).await;
    assert_eq!(tokens["scope"], "mcp mcp:write");
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let widened = post_token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &rt),
            ("scope", "mcp admin"),
        ],
    )
    .await;
    assert_eq!(error_of(widened, 400).await, "invalid_scope");
    let other_resource = post_token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &rt),
            ("resource", "https://other.example/"),
        ],
    )
    .await;
    assert_eq!(error_of(other_resource, 400).await, "invalid_target");
    let narrowed = ok_json(
        post_token(
            &app,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", &rt),
                ("scope", "mcp"),
                ("resource", "http://localhost:3000/mcp"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(narrowed["scope"], "mcp");
    let claims = validate_strictly(&app, narrowed["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["scope"], "mcp");
    let other =
        register_public_client(&app, "https://claude.com/api/mcp/auth_callback", "Other").await;
    let stolen = refresh(&app, &other, narrowed["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        error_of(stolen, 400).await,
        "invalid_grant",
        "another client's refresh token"
    );
}

#[tokio::test]
async fn fifty_parallel_redemptions_of_one_code_give_exactly_one_success() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (http, url, client_id, code) = (
            app.http.clone(),
            app.url("/token"),
            client_id.clone(),
            code.clone(),
        );
        requests.spawn(async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("client_id", client_id.as_str()),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ];
            http.post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = requests.join_next().await {
        statuses.push(status.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        49,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn fifty_parallel_refreshes_leave_one_working_refresh_token() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let tokens = ok_json(exchange(&app, &client_id, &code).await).await;
    let old = tokens["refresh_token"].as_str().unwrap().to_owned();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (http, url, client_id, old) = (
            app.http.clone(),
            app.url("/token"),
            client_id.clone(),
            old.clone(),
        );
        requests.spawn(async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("client_id", client_id.as_str()),
                ("refresh_token", old.as_str()),
            ];
            let response = http.post(url).form(&form).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["refresh_token"]
                .as_str()
                .unwrap()
                .to_owned()
        });
    }
    let mut issued = Vec::new();
    while let Some(token) = requests.join_next().await {
        issued.push(token.unwrap());
    }
    issued.dedup();
    assert_eq!(
        issued.len(),
        1,
        "every parallel refresh got the same new token: one live head"
    );
    // Whichever the client kept, it works after the grace window.
    app.clock.advance(120);
    ok_json(refresh(&app, &client_id, &issued[0]).await).await;
    assert_eq!(
        error_of(refresh(&app, &client_id, &old).await, 400).await,
        "invalid_grant",
        "reuse after the window"
    );
}

#[tokio::test]
async fn tokens_of_a_retired_key_still_verify_and_new_ones_use_the_new_kid() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let before = ok_json(exchange(&app, &client_id, &code).await).await;
    let old_kid = decode_header(before["access_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    let rotated = app.keys.rotate().await.unwrap();
    app.clock.advance(900);
    let after =
        ok_json(refresh(&app, &client_id, before["refresh_token"].as_str().unwrap()).await).await;
    let new_kid = decode_header(after["access_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(new_kid, rotated.kid);
    assert_ne!(new_kid, old_kid);
    validate_strictly(&app, before["access_token"].as_str().unwrap()).await;
    validate_strictly(&app, after["access_token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn metadata_lists_the_token_endpoint() {
    let app = spawn_app().await;
    let metadata = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(metadata["token_endpoint"], format!("{}/token", app.issuer));
    assert_eq!(
        metadata["grant_types_supported"],
        json!([
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(
        metadata["revocation_endpoint"],
        format!("{}/revoke", app.issuer)
    );
    assert_eq!(
        metadata["introspection_endpoint"],
        format!("{}/introspect", app.issuer)
    );
}

#[tokio::test]
async fn housekeeping_deletes_what_can_no_longer_be_used() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let tokens = ok_json(exchange(&app, &client_id, &code).await).await;
    // A revoked access token is remembered until it expires, then forgotten.
    let revoked = app
        .http
        .post(app.url("/revoke"))
        .form(&[
            ("client_id", client_id.as_str()),
            ("token", tokens["access_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let store = app.registry.store();
    assert_eq!(
        store.delete_expired(app.clock_now()).await.unwrap(),
        0,
        "nothing has expired yet"
    );
    // Past the code's hour of grace, the denylist entry's expiry and the family's 90 days.
    app.clock.advance(91 * 24 * 3600);
    let deleted = store.delete_expired(app.clock_now()).await.unwrap();
    assert!(
        deleted >= 4,
        "code, denylist entry, refresh token and family: {deleted}"
    );
    assert!(!store.is_access_token_denied("anything").await.unwrap());
    assert_eq!(
        error_of(
            refresh(&app, &client_id, tokens["refresh_token"].as_str().unwrap()).await,
            400
        )
        .await,
        "invalid_grant"
    );
}
