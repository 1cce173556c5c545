//! `/token` with the token exchange grant (RFC 8693): the MCP server swaps a user's access
//! token for their OwnerRez token, against the OwnerRez double.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::endpoints::{ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE};
use crate::helpers::TestApp;
use crate::ownerrez_double::{Failure, Route};
use crate::scene::setup;

// The scene moved to tests/api/scene.rs and the calls to tests/api/endpoints.rs; these names
// stay importable from here for tests written against them, until none is left.
#[allow(unused_imports)]
pub use crate::scene::{
    REDIRECT, RESOURCE, WEBHOOK_PASSWORD, WEBHOOK_USER, error_of, log_in_and_redeem,
    log_in_and_redeem_with, resource_server, spawn_with_double, spawn_with_double_and,
};

/// A public client's refresh: [`TestApp::refresh`].
#[allow(dead_code)]
pub async fn refresh_public(
    app: &TestApp,
    client_id: &str,
    refresh_token: &str,
) -> reqwest::Response {
    app.refresh(client_id, refresh_token).await
}

/// A resource server's token exchange: [`TestApp::exchange`].
#[allow(dead_code)]
pub async fn exchange_as(
    app: &TestApp,
    id: &str,
    secret: &str,
    subject: &str,
) -> reqwest::Response {
    app.exchange(id, secret, subject).await
}

#[tokio::test]
async fn the_resource_server_gets_the_users_ownerrez_token() {
    let s = setup().await;
    let response = s.exchange(s.access()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    let upstream = body["access_token"].as_str().unwrap();
    assert!(s.double.is_active(upstream), "a live OwnerRez token");
    assert!(
        body["expires_in"].as_i64().unwrap() > 2_500_000,
        "from OwnerRez's 30-day expiry"
    );
    let metadata = s
        .app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&TOKEN_EXCHANGE.into())
    );
}

#[tokio::test]
async fn token_exchange_refusals() {
    let s = setup().await;
    let (unmarked_id, unmarked_secret) = resource_server(&s.app, None).await;
    let (other_id, other_secret) = resource_server(&s.app, Some("https://other.example/mcp")).await;
    let cases = [
        (
            "a public client",
            s.app
                .token(&[
                    ("grant_type", TOKEN_EXCHANGE),
                    ("client_id", s.client_id.as_str()),
                    ("subject_token", s.access()),
                    ("subject_token_type", ACCESS_TOKEN_TYPE),
                ])
                .await,
            (400, "unauthorized_client"),
        ),
        (
            "a client not marked as resource server",
            s.app
                .exchange(&unmarked_id, &unmarked_secret, s.access())
                .await,
            (400, "unauthorized_client"),
        ),
        (
            "the resource server of another resource (aud mismatch)",
            s.app.exchange(&other_id, &other_secret, s.access()).await,
            (400, "invalid_request"),
        ),
        (
            "a wrong secret",
            s.app.exchange(&s.server_id, "wrong", s.access()).await,
            (401, "invalid_client"),
        ),
        (
            "a garbage subject token",
            s.exchange("not.a.jwt").await,
            (400, "invalid_request"),
        ),
        (
            "a refresh token as subject",
            s.exchange(s.tokens["refresh_token"].as_str().unwrap())
                .await,
            (400, "invalid_request"),
        ),
    ];
    for (name, response, expected) in cases {
        let (status, error) = error_of(response).await;
        assert_eq!((status, error.as_str()), expected, "{name}");
    }
    let wrong_type = s
        .app
        .http
        .post(s.app.url("/token"))
        .basic_auth(&s.server_id, Some(&s.server_secret))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", s.access()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(wrong_type).await, (400, "invalid_request".into()));
    let missing = s
        .app
        .http
        .post(s.app.url("/token"))
        .basic_auth(&s.server_id, Some(&s.server_secret))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(missing).await, (400, "invalid_request".into()));
}

/// A copy of `token` with its header replaced.
fn with_header(token: &str, header: Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[0] = URL_SAFE_NO_PAD.encode(header.to_string());
    parts.join(".")
}

#[tokio::test]
async fn forged_and_stale_subject_tokens_are_refused_everywhere() {
    let s = setup().await;
    let token = s.access();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt"}).to_string()),
        parts[1]
    );
    let hs256 = with_header(token, json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}));
    let unknown_kid = with_header(
        token,
        json!({"alg": "RS256", "typ": "at+jwt", "kid": "nope"}),
    );
    let altered_signature = {
        let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        signature[0] ^= 1;
        let encoded = URL_SAFE_NO_PAD.encode(signature);
        parts[2] = &encoded;
        parts.join(".")
    };
    let mut claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    claims["iss"] = format!("{}/", s.app.issuer).into();
    let wrong_issuer = format!(
        "{}.{}.{}",
        token.split('.').next().unwrap(),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        token.split('.').nth(2).unwrap()
    );
    for (name, forged) in [
        ("alg none", unsigned),
        ("HS256", hs256),
        ("unknown kid", unknown_kid),
        ("altered signature", altered_signature),
        ("changed iss", wrong_issuer),
    ] {
        assert_eq!(
            error_of(s.exchange(&forged).await).await,
            (400, "invalid_request".into()),
            "{name}"
        );
        assert_eq!(
            s.introspect(&forged).await,
            json!({"active": false}),
            "{name}"
        );
    }
    // Expired: past the access token's hour.
    s.app.clock.advance(3601);
    assert_eq!(
        error_of(s.exchange(token).await).await,
        (400, "invalid_request".into()),
        "expired"
    );
    assert_eq!(
        s.introspect(token).await,
        json!({"active": false}),
        "expired"
    );
}

#[tokio::test]
async fn twenty_parallel_exchanges_with_an_expired_upstream_token_refresh_once() {
    let s = setup().await;
    // OwnerRez tokens live 30 days; ours are refreshed meanwhile (no upstream call).
    let refreshed = s.tokens_after_upstream_expiry(&s.tokens).await;
    let subject = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(s.double.count("refresh_token"), 0);

    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (http, url, id, secret, subject) = (
            s.app.http.clone(),
            s.app.url("/token"),
            s.server_id.clone(),
            s.server_secret.clone(),
            subject.clone(),
        );
        requests.spawn(async move {
            let form = [
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", subject.as_str()),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ];
            let response = http
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        });
    }
    let mut tokens = Vec::new();
    while let Some(token) = requests.join_next().await {
        tokens.push(token.unwrap());
    }
    assert_eq!(
        s.double.count("refresh_token"),
        1,
        "exactly one upstream refresh"
    );
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "everyone got the refreshed token");
    assert!(s.double.is_active(&tokens[0]));
}

#[tokio::test]
async fn upstream_outage_keeps_the_grant_and_refusal_revokes_it() {
    let s = setup().await;
    let refreshed = s.tokens_after_upstream_expiry(&s.tokens).await;
    let subject = refreshed["access_token"].as_str().unwrap().to_owned();

    s.double
        .set_failure(Route::Token, Some(Failure::ServerError));
    assert_eq!(
        error_of(s.exchange(&subject).await).await,
        (503, "temporarily_unavailable".into())
    );
    s.double.set_failure(
        Route::Token,
        Some(Failure::Hang(std::time::Duration::from_secs(3))),
    );
    assert_eq!(
        error_of(s.exchange(&subject).await).await,
        (503, "temporarily_unavailable".into())
    );
    s.double.set_failure(Route::Token, None);
    assert_eq!(
        s.exchange(&subject).await.status(),
        200,
        "the grant survived the outage"
    );

    // Later the upstream refuses the refresh: the grant is revoked.
    let refreshed = s.tokens_after_upstream_expiry(&refreshed).await;
    let subject = refreshed["access_token"].as_str().unwrap().to_owned();
    s.double
        .set_failure(Route::Token, Some(Failure::InvalidGrant));
    assert_eq!(
        error_of(s.exchange(&subject).await).await,
        (400, "invalid_grant".into())
    );
    s.double.set_failure(Route::Token, None);
    assert_eq!(
        error_of(s.exchange(&subject).await).await,
        (400, "invalid_grant".into()),
        "stays revoked"
    );
    assert_eq!(
        error_of(
            s.refresh(refreshed["refresh_token"].as_str().unwrap())
                .await
        )
        .await,
        (400, "invalid_grant".into())
    );
}

/// Only `invalid_grant` means the user's upstream authorization is gone. A refused client
/// (a rotated secret) or a bare 401/403 (a WAF page) is the operator's problem: the grant, its
/// tokens and the lease survive, and the MCP server is told to retry.
#[tokio::test]
async fn upstream_refusals_other_than_invalid_grant_keep_the_grant() {
    let s = setup().await;
    let refreshed = s.tokens_after_upstream_expiry(&s.tokens).await;
    let subject = refreshed["access_token"].as_str().unwrap().to_owned();
    for failure in [
        Failure::InvalidClient,
        Failure::Unauthorized,
        Failure::Forbidden,
    ] {
        s.double.set_failure(Route::Token, Some(failure));
        assert_eq!(
            error_of(s.exchange(&subject).await).await,
            (503, "temporarily_unavailable".into()),
            "{failure:?}"
        );
        assert_eq!(
            s.introspect(&subject).await["active"],
            true,
            "{failure:?}: the grant is kept"
        );
    }
    s.double.set_failure(Route::Token, None);
    let response = s.exchange(&subject).await;
    assert_eq!(response.status(), 200, "the lease was released");
    assert_eq!(s.double.count("refresh_token"), 4, "one upstream try each");
    let again = s
        .refresh(refreshed["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(again.status(), 200, "the refresh token still works");
}
