//! The token endpoint: authorization code with PKCE, RFC 9068 access tokens validated strictly,
//! refresh rotation with its grace window and reuse detection, and every error path.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Value, json};

use crate::browser::{Browser, VERIFIER};
use crate::endpoints::{ClientAuth, code_of};
use crate::helpers::{TestApp, spawn_app};

const REDIRECT: &str = "https://claude.ai/api/mcp/auth_callback";

/// A public client and a fresh authorization code for user `alice`.
async fn code_for(app: &TestApp) -> (String, String) {
    let client_id = app.register_public(REDIRECT, "Claude").await;
    let code = fresh_code(app, &client_id, "alice").await;
    (client_id, code)
}

async fn fresh_code(app: &TestApp, client_id: &str, user: &str) -> String {
    let back = app
        .log_in_with_dev(&mut Browser::new(), client_id, REDIRECT, user)
        .await;
    code_of(&back)
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
    let tokens = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
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
    let tokens = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
    assert_eq!(
        error_of(app.redeem_code(&client_id, &code, REDIRECT).await, 400).await,
        "invalid_grant"
    );
    let refreshed = app
        .refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        error_of(refreshed, 400).await,
        "invalid_grant",
        "the refresh token issued from the code is revoked"
    );
}

#[tokio::test]
async fn code_exchange_errors() {
    let app = spawn_app().await;
    let client_id = app.register_public(REDIRECT, "Claude").await;
    let other_client = app
        .register_public("https://claude.com/api/mcp/auth_callback", "Other")
        .await;
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
            error_of(app.token(&borrowed).await, status).await,
            error,
            "{name}"
        );
    }
    // An expired code (past 60 s).
    let code = fresh_code(&app, &client_id, "alice").await;
    app.clock.advance(61);
    assert_eq!(
        error_of(app.redeem_code(&client_id, &code, REDIRECT).await, 400).await,
        "invalid_grant",
        "expired code"
    );
}

#[tokio::test]
async fn client_authentication_failures_are_401_invalid_client() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let unknown = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "client_nope"),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(error_of(unknown, 401).await, "invalid_client");
    let none = app
        .token(&[("grant_type", "authorization_code"), ("code", &code)])
        .await;
    assert_eq!(error_of(none, 401).await, "invalid_client");
    let secret_for_public = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("client_secret", "x"),
            ("code", &code),
        ])
        .await;
    // RFC 6749 §5.2: a 401 names an HTTP authentication scheme the client may use, and Basic
    // is the only one here, also when the client authenticated in the body.
    assert_eq!(
        secret_for_public.headers()["www-authenticate"],
        r#"Basic realm="authbridge""#
    );
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
    let post = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("client_secret", secret),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .await;
    ok_json(post).await;

    // client_secret_basic percent-decodes (RFC 6749 §2.3.1).
    let registered: Value = app
        .register(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}))
        .await
        .json()
        .await
        .unwrap();
    let (id, secret) = (
        registered["client_id"].as_str().unwrap(),
        registered["client_secret"].as_str().unwrap(),
    );
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
        error_of(app.redeem_code(&client_id, &code, REDIRECT).await, 401).await,
        "invalid_client"
    );
}

#[tokio::test]
async fn malformed_token_requests() {
    let app = spawn_app().await;
    let client_id = app.register_public(REDIRECT, "Claude").await;
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
    let unsupported = app
        .token(&[("grant_type", "password"), ("client_id", &client_id)])
        .await;
    assert_eq!(error_of(unsupported, 400).await, "unsupported_grant_type");
    let missing = app.token(&[("client_id", &client_id)]).await;
    assert_eq!(error_of(missing, 400).await, "invalid_request");
    let no_token = app
        .token(&[("grant_type", "refresh_token"), ("client_id", &client_id)])
        .await;
    assert_eq!(error_of(no_token, 400).await, "invalid_request");
}

#[tokio::test]
async fn refresh_rotates_with_a_grace_window_then_detects_reuse() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let first = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
    let old = first["refresh_token"].as_str().unwrap().to_owned();

    let second = ok_json(app.refresh(&client_id, &old).await).await;
    let new = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new, old, "rotated");
    validate_strictly(&app, second["access_token"].as_str().unwrap()).await;

    // A retry with the old token inside the grace window gets the same answer.
    app.clock.advance(30);
    let retry = ok_json(app.refresh(&client_id, &old).await).await;
    assert_eq!(
        retry, second,
        "the same pair: the client ends with the live token either way"
    );

    // After the window, the old token is reuse: the family is revoked, the new token too.
    app.clock.advance(31);
    assert_eq!(
        error_of(app.refresh(&client_id, &old).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(
        error_of(app.refresh(&client_id, &new).await, 400).await,
        "invalid_grant",
        "whole family revoked"
    );
}

/// A server whose resource grants `mcp mcp:write` by default.
async fn spawn_with_two_scopes() -> TestApp {
    crate::helpers::spawn_app_with(crate::helpers::TestDb::new().await, |c| {
        c.resources[0].scopes = vec!["mcp".into(), "mcp:write".into()];
        c.resources[0].default_scopes = vec!["mcp".into(), "mcp:write".into()];
    })
    .await
}

#[tokio::test]
async fn refresh_scope_and_resource_rules() {
    let app = spawn_with_two_scopes().await;
    let (client_id, code) = code_for(&app).await;
    let tokens = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
    assert_eq!(tokens["scope"], "mcp mcp:write");
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let widened = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &rt),
            ("scope", "mcp admin"),
        ])
        .await;
    assert_eq!(error_of(widened, 400).await, "invalid_scope");
    let other_resource = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &rt),
            ("resource", "https://other.example/"),
        ])
        .await;
    assert_eq!(error_of(other_resource, 400).await, "invalid_target");
    let narrowed = ok_json(
        app.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &rt),
            ("scope", "mcp"),
            ("resource", "http://localhost:3000/mcp"),
        ])
        .await,
    )
    .await;
    assert_eq!(narrowed["scope"], "mcp");
    let claims = validate_strictly(&app, narrowed["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["scope"], "mcp");
    let other = app
        .register_public("https://claude.com/api/mcp/auth_callback", "Other")
        .await;
    let stolen = app
        .refresh(&other, narrowed["refresh_token"].as_str().unwrap())
        .await;
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
            let response = http.post(url).form(&form).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        });
    }
    let mut statuses = Vec::new();
    let mut issued = Vec::new();
    while let Some(answer) = requests.join_next().await {
        let (status, body) = answer.unwrap();
        statuses.push(status);
        if status == 200 {
            issued.push(body);
        }
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
    // The same client presented the code again after it was redeemed: what it issued is
    // revoked, however the replays interleaved with the redemption.
    assert_eq!(
        error_of(
            app.refresh(&client_id, issued[0]["refresh_token"].as_str().unwrap())
                .await,
            400
        )
        .await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn fifty_parallel_refreshes_leave_one_working_refresh_token() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let tokens = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
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
    ok_json(app.refresh(&client_id, &issued[0]).await).await;
    assert_eq!(
        error_of(app.refresh(&client_id, &old).await, 400).await,
        "invalid_grant",
        "reuse after the window"
    );
}

#[tokio::test]
async fn tokens_of_a_retired_key_still_verify_and_new_ones_use_the_new_kid() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let before = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
    let old_kid = decode_header(before["access_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    let rotated = app.keys.rotate().await.unwrap();
    app.clock.advance(900);
    let after = ok_json(
        app.refresh(&client_id, before["refresh_token"].as_str().unwrap())
            .await,
    )
    .await;
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
    let tokens = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
    // A revoked access token is remembered until it expires, then forgotten.
    let revoked = app
        .revoke(
            ClientAuth::Public(&client_id),
            &[("token", tokens["access_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    let store = app.registry.store();
    assert_eq!(app.housekeeping().await, 0, "nothing has expired yet");
    // Past the code's hour of grace, the denylist entry's expiry and the family's 90 days.
    app.clock.advance(91 * 24 * 3600);
    let deleted = app.housekeeping().await;
    assert!(
        deleted >= 4,
        "code, denylist entry, refresh token and family: {deleted}"
    );
    assert!(!store.is_access_token_denied("anything").await.unwrap());
    assert_eq!(
        error_of(
            app.refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
                .await,
            400
        )
        .await,
        "invalid_grant"
    );
}

/// Registers a confidential client with `method`; returns its id and secret.
async fn register_confidential(app: &TestApp, method: &str) -> (String, String) {
    let registered: Value = app
        .register(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": method}))
        .await
        .json()
        .await
        .unwrap();
    (
        registered["client_id"].as_str().unwrap().to_owned(),
        registered["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// RFC 7591 §2: the registered `token_endpoint_auth_method` is the one the client uses; a
/// secret sent another way is refused.
#[tokio::test]
async fn the_registered_token_endpoint_auth_method_is_enforced() {
    let app = spawn_app().await;
    let (post_id, post_secret) = register_confidential(&app, "client_secret_post").await;
    let (basic_id, basic_secret) = register_confidential(&app, "client_secret_basic").await;
    let redeem_with_basic = |id: String, secret: String, code: String| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/token"))
                .basic_auth(id, Some(secret))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let redeem_with_post = |id: String, secret: String, code: String| {
        let app = &app;
        async move {
            app.token(&[
                ("grant_type", "authorization_code"),
                ("client_id", id.as_str()),
                ("client_secret", secret.as_str()),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ])
            .await
        }
    };

    let code = fresh_code(&app, &post_id, "alice").await;
    let wrong = redeem_with_basic(post_id.clone(), post_secret.clone(), code.clone()).await;
    assert_eq!(
        error_of(wrong, 401).await,
        "invalid_client",
        "a client_secret_post client using Basic"
    );
    ok_json(redeem_with_post(post_id.clone(), post_secret.clone(), code).await).await;

    let code = fresh_code(&app, &basic_id, "alice").await;
    let wrong = redeem_with_post(basic_id.clone(), basic_secret.clone(), code.clone()).await;
    assert_eq!(
        error_of(wrong, 401).await,
        "invalid_client",
        "a client_secret_basic client sending its secret in the body"
    );
    ok_json(redeem_with_basic(basic_id, basic_secret, code).await).await;
}

/// A leaked code is worth nothing without the client's PKCE verifier and redirect URI, and
/// presenting it wrongly does not burn it for the client it was issued to.
#[tokio::test]
async fn a_code_presented_wrongly_is_not_burned() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let other = app
        .register_public("https://claude.com/api/mcp/auth_callback", "Other")
        .await;
    type Overrides = Vec<(&'static str, String)>;
    let attempts: Vec<(&str, Overrides, &str)> = vec![
        (
            "another client",
            vec![("client_id", other.clone())],
            "invalid_grant",
        ),
        (
            "a wrong verifier",
            vec![("code_verifier", "y".repeat(43))],
            "invalid_grant",
        ),
        (
            "another redirect_uri",
            vec![("redirect_uri", "https://claude.ai/elsewhere".into())],
            "invalid_grant",
        ),
        (
            "another resource",
            vec![("resource", "https://other.example/mcp".into())],
            "invalid_target",
        ),
    ];
    for (name, overrides, error) in attempts {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("client_id", client_id.clone()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT.into()),
            ("code_verifier", VERIFIER.into()),
        ];
        for (key, value) in overrides {
            form.retain(|(k, _)| *k != key);
            form.push((key, value));
        }
        let borrowed: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            error_of(app.token(&borrowed).await, 400).await,
            error,
            "{name}"
        );
    }
    let tokens = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
    ok_json(
        app.refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
            .await,
    )
    .await;
}

/// RFC 6749 §4.1.2: a code used twice by its client revokes what it issued; another client
/// presenting it learns nothing and revokes nothing.
#[tokio::test]
async fn a_code_replayed_by_another_client_revokes_nothing() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let tokens = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
    let other = app
        .register_public("https://claude.com/api/mcp/auth_callback", "Other")
        .await;
    let replay = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", other.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(error_of(replay, 400).await, "invalid_grant");
    ok_json(
        app.refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
            .await,
    )
    .await;
}

/// With a grace window of 0 nothing of a rotation is kept: a second use of a rotated token is
/// reuse at once.
#[tokio::test]
async fn without_a_grace_window_no_rotation_response_is_kept() {
    let app = crate::helpers::spawn_app_with(crate::helpers::TestDb::new().await, |c| {
        c.tokens.refresh_token_grace_secs = 0;
    })
    .await;
    let (client_id, code) = code_for(&app).await;
    let first = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
    let old = first["refresh_token"].as_str().unwrap().to_owned();
    let second = ok_json(app.refresh(&client_id, &old).await).await;
    assert_eq!(
        app.count_rows("refresh_tokens", "successor IS NOT NULL")
            .await,
        0,
        "no sealed response stored"
    );
    assert_eq!(
        error_of(app.refresh(&client_id, &old).await, 400).await,
        "invalid_grant",
        "the same token again, even in the same second, is reuse"
    );
    assert_eq!(
        error_of(
            app.refresh(&client_id, second["refresh_token"].as_str().unwrap())
                .await,
            400
        )
        .await,
        "invalid_grant",
        "the family is revoked"
    );
}

/// The sealed response of a rotation (it holds the new refresh token) lives only as long as the
/// grace window: housekeeping deletes it once the window has closed.
#[tokio::test]
async fn a_rotation_response_is_deleted_when_the_grace_window_closes() {
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let first = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
    ok_json(
        app.refresh(&client_id, first["refresh_token"].as_str().unwrap())
            .await,
    )
    .await;
    assert_eq!(
        app.count_rows("refresh_tokens", "successor IS NOT NULL")
            .await,
        1
    );
    app.housekeeping().await;
    assert_eq!(
        app.count_rows("refresh_tokens", "successor IS NOT NULL")
            .await,
        1,
        "kept while the window is open"
    );
    app.clock.advance(61);
    app.housekeeping().await;
    assert_eq!(
        app.count_rows("refresh_tokens", "successor IS NOT NULL")
            .await,
        0,
        "deleted once it closed"
    );
}

/// A retry inside the grace window gets the rotation's response only when it asks for the same
/// scope; asking for another scope must not silently hand over the rotation's.
#[tokio::test]
async fn a_replay_asking_for_another_scope_is_refused() {
    let app = spawn_with_two_scopes().await;
    let (client_id, code) = code_for(&app).await;
    let first = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
    let old = first["refresh_token"].as_str().unwrap().to_owned();
    let with_scope = |scope: Option<&'static str>| {
        let (app, client_id, old) = (&app, client_id.clone(), old.clone());
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("client_id", client_id.as_str()),
                ("refresh_token", old.as_str()),
            ];
            if let Some(scope) = scope {
                form.push(("scope", scope));
            }
            app.token(&form).await
        }
    };
    let narrowed = ok_json(with_scope(Some("mcp")).await).await;
    assert_eq!(narrowed["scope"], "mcp");
    assert_eq!(
        error_of(with_scope(None).await, 400).await,
        "invalid_grant",
        "the full scope was asked for, the rotation narrowed it"
    );
    assert_eq!(
        error_of(with_scope(Some("mcp:write")).await, 400).await,
        "invalid_grant",
        "another narrower scope"
    );
    assert_eq!(
        ok_json(with_scope(Some("mcp")).await).await,
        narrowed,
        "the same request gets the same answer"
    );
    ok_json(
        app.refresh(&client_id, narrowed["refresh_token"].as_str().unwrap())
            .await,
    )
    .await;
}

/// Nothing a login leaves behind lives forever: a rotated refresh token goes once it would
/// have expired unrotated (and its access token has), a grant whose families are all unusable
/// drops its sealed upstream tokens, and a revoked grant goes once nothing refers to it.
#[tokio::test]
async fn housekeeping_bounds_rotated_tokens_and_upstream_tokens() {
    const DAY: i64 = 24 * 3600;
    let app = spawn_app().await;
    let (client_id, code) = code_for(&app).await;
    let first = ok_json(app.redeem_code(&client_id, &code, REDIRECT).await).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let second = ok_json(app.refresh(&client_id, &r1).await).await;
    app.clock.advance(20 * DAY);
    let third = ok_json(
        app.refresh(&client_id, second["refresh_token"].as_str().unwrap())
            .await,
    )
    .await;
    let rotated = "rotated_at IS NOT NULL";
    app.housekeeping().await;
    assert_eq!(app.count_rows("refresh_tokens", rotated).await, 2, "kept");

    // Day 31: the first two tokens are past their 30 idle days.
    app.clock.advance(11 * DAY);
    app.housekeeping().await;
    assert_eq!(app.count_rows("refresh_tokens", rotated).await, 0, "purged");
    assert_eq!(
        error_of(app.refresh(&client_id, &r1).await, 400).await,
        "invalid_grant",
        "a purged token is unknown"
    );
    let sealed = "upstream_tokens IS NOT NULL";
    assert_eq!(app.count_rows("grants", sealed).await, 1);
    let fourth = ok_json(
        app.refresh(&client_id, third["refresh_token"].as_str().unwrap())
            .await,
    )
    .await;

    // Day 62: the head token idled out too; nothing can use the upstream tokens any more.
    app.clock.advance(31 * DAY);
    app.housekeeping().await;
    assert_eq!(app.count_rows("grants", sealed).await, 0, "dropped");
    assert_eq!(
        error_of(
            app.refresh(&client_id, fourth["refresh_token"].as_str().unwrap())
                .await,
            400
        )
        .await,
        "invalid_grant"
    );

    // A revoked grant stays listed for 30 days, and goes once its family has expired (day 90).
    app.registry
        .store()
        .revoke_grants_of_client(&client_id.parse().unwrap(), app.clock_now())
        .await
        .unwrap();
    app.clock.advance(29 * DAY);
    app.housekeeping().await;
    assert_eq!(app.count_rows("grants", "1 = 1").await, 1, "still listed");
    app.clock.advance(2 * DAY);
    app.housekeeping().await;
    assert_eq!(app.count_rows("refresh_families", "1 = 1").await, 0);
    assert_eq!(app.count_rows("grants", "1 = 1").await, 0, "gone");
}
