//! Token exchange (RFC 8693) for the MCP server, revocation (RFC 7009) and introspection
//! (RFC 7662), against the OwnerRez double.

use authbridge::config::{ProviderKind, ResourceConfig, Secret};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, approve, authorize_url, location, query_of, register_public_client};
use crate::helpers::{TestApp, TestDb, spawn_app_on};
use crate::ownerrez_double::{CLIENT_SECRET, Failure, OwnerRezDouble, Route};

pub const REDIRECT: &str = "https://chatgpt.com/connector/oauth/abc";
pub const RESOURCE: &str = "http://localhost:3000/mcp";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

struct Setup {
    app: TestApp,
    double: OwnerRezDouble,
    client_id: String,
    /// The MCP server's confidential client, marked as the resource server of RESOURCE.
    server_id: String,
    server_secret: String,
    tokens: Value,
}

/// The webhook credentials of [`spawn_with_double`]'s server.
pub const WEBHOOK_USER: &str = "ownerrez";
pub const WEBHOOK_PASSWORD: &str = "a-webhook-password-of-decent-length-7f3a";

/// A server in front of the OwnerRez double (sharing its clock), with a second resource.
pub async fn spawn_with_double() -> (TestApp, OwnerRezDouble) {
    spawn_with_double_and(|_| {}).await
}

/// [`spawn_with_double`], with `extra` applied to the configuration last.
pub async fn spawn_with_double_and(
    extra: impl FnOnce(&mut authbridge::config::Config),
) -> (TestApp, OwnerRezDouble) {
    let clock = authbridge::clock::ManualClock::starting_at(authbridge::clock::Clock::now(
        &authbridge::clock::SystemClock,
    ));
    let double = OwnerRezDouble::start_with_clock(clock.clone()).await;
    let config = double.config();
    let app = spawn_app_on(TestDb::new().await, clock, move |c| {
        c.upstream.provider = ProviderKind::Ownerrez;
        c.upstream.ownerrez = config;
        c.upstream.ownerrez.client_secret = Some(Secret::new(CLIENT_SECRET));
        c.upstream.ownerrez.webhook_user = Some(WEBHOOK_USER.into());
        c.upstream.ownerrez.webhook_password = Some(Secret::new(WEBHOOK_PASSWORD));
        c.upstream.timeout_ms = 1000;
        c.tokens.refresh_token_idle_ttl_secs = 60 * 24 * 3600;
        c.resources.push(ResourceConfig {
            uri: "https://other.example/mcp".into(),
            name: "Other".into(),
            scopes: vec!["mcp".into()],
            default_scopes: vec!["mcp".into()],
        });
        extra(c);
    })
    .await;
    (app, double)
}

/// The OwnerRez user logs in through `client_id` (a public client redirecting to REDIRECT) for
/// RESOURCE, and the client redeems the code; returns the token response.
pub async fn log_in_and_redeem(app: &TestApp, double: &OwnerRezDouble, client_id: &str) -> Value {
    let mut browser = Browser::new();
    let upstream = approve(
        &mut browser,
        app,
        &authorize_url(app, client_id, REDIRECT, &[("resource", RESOURCE)]),
    )
    .await;
    let callback = double.log_in(&upstream).await;
    let code = query_of(&location(
        &browser
            .get(&callback.location.replace(&app.issuer, &app.address))
            .await,
    ))["code"]
        .clone();
    let response = crate::browser::redeem_code(app, client_id, &code, REDIRECT).await;
    assert_eq!(response.status(), 200, "the code is redeemed");
    response.json().await.unwrap()
}

async fn setup() -> Setup {
    let (app, double) = spawn_with_double().await;
    let client_id = register_public_client(&app, REDIRECT, "ChatGPT").await;
    let tokens = log_in_and_redeem(&app, &double, &client_id).await;
    let (server_id, server_secret) = resource_server(&app, Some(RESOURCE)).await;
    Setup {
        app,
        double,
        client_id,
        server_id,
        server_secret,
        tokens,
    }
}

/// A confidential admin client, marked as the resource server of `resource` when given.
pub async fn resource_server(app: &TestApp, resource: Option<&str>) -> (String, String) {
    let created: Value = app
        .admin(Method::POST, "/admin/v1/clients")
        .json(
            &json!({"client_name": "MCP server", "redirect_uris": ["https://mcp.example/unused"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["client"]["client_id"].as_str().unwrap().to_owned();
    if let Some(resource) = resource {
        let marked = app
            .admin(
                Method::PUT,
                &format!("/admin/v1/clients/{id}/resource-server"),
            )
            .json(&json!({"resource": resource}))
            .send()
            .await
            .unwrap();
        assert_eq!(marked.status(), 200);
    }
    (id, created["client_secret"].as_str().unwrap().to_owned())
}

/// A public client's `refresh_token` grant at `/token`.
pub async fn refresh_public(
    app: &TestApp,
    client_id: &str,
    refresh_token: &str,
) -> reqwest::Response {
    app.http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap()
}

pub async fn exchange_as(
    app: &TestApp,
    id: &str,
    secret: &str,
    subject: &str,
) -> reqwest::Response {
    app.http
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ])
        .send()
        .await
        .unwrap()
}

pub async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

impl Setup {
    fn access(&self) -> &str {
        self.tokens["access_token"].as_str().unwrap()
    }

    async fn exchange(&self, subject: &str) -> reqwest::Response {
        exchange_as(&self.app, &self.server_id, &self.server_secret, subject).await
    }

    async fn introspect(&self, token: &str) -> Value {
        let response = self
            .app
            .http
            .post(self.app.url("/introspect"))
            .basic_auth(&self.server_id, Some(&self.server_secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Past OwnerRez's 30-day token lifetime: refreshes our tokens (no upstream call) and
    /// returns the new pair, whose access token makes the next exchange refresh upstream.
    async fn tokens_after_upstream_expiry(&self, tokens: &Value) -> Value {
        self.app.clock.advance(30 * 24 * 3600 + 10);
        let refreshed = self
            .refresh(tokens["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(refreshed.status(), 200);
        refreshed.json().await.unwrap()
    }

    async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.app
            .http
            .post(self.app.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", self.client_id.as_str()),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .unwrap()
    }
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
                .http
                .post(s.app.url("/token"))
                .form(&[
                    ("grant_type", TOKEN_EXCHANGE),
                    ("client_id", s.client_id.as_str()),
                    ("subject_token", s.access()),
                    ("subject_token_type", ACCESS_TOKEN_TYPE),
                ])
                .send()
                .await
                .unwrap(),
            (400, "unauthorized_client"),
        ),
        (
            "a client not marked as resource server",
            exchange_as(&s.app, &unmarked_id, &unmarked_secret, s.access()).await,
            (400, "unauthorized_client"),
        ),
        (
            "the resource server of another resource (aud mismatch)",
            exchange_as(&s.app, &other_id, &other_secret, s.access()).await,
            (400, "invalid_request"),
        ),
        (
            "a wrong secret",
            exchange_as(&s.app, &s.server_id, "wrong", s.access()).await,
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

#[tokio::test]
async fn introspection_for_resource_servers_only() {
    let s = setup().await;
    let active = s.introspect(s.access()).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], s.client_id.as_str());
    assert_eq!(active["aud"], RESOURCE);
    assert_eq!(active["iss"], s.app.issuer.as_str());
    for field in ["scope", "sub", "exp", "iat", "jti"] {
        assert!(active.get(field).is_some(), "{field}");
    }
    assert_eq!(s.introspect("garbage").await, json!({"active": false}));
    assert_eq!(
        s.introspect(s.tokens["refresh_token"].as_str().unwrap())
            .await,
        json!({"active": false})
    );
    let (other_id, other_secret) = resource_server(&s.app, Some("https://other.example/mcp")).await;
    let other: Value = s
        .app
        .http
        .post(s.app.url("/introspect"))
        .basic_auth(&other_id, Some(&other_secret))
        .form(&[("token", s.access())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other, json!({"active": false}), "another resource's token");
    let (plain_id, plain_secret) = resource_server(&s.app, None).await;
    let refused = s
        .app
        .http
        .post(s.app.url("/introspect"))
        .basic_auth(&plain_id, Some(&plain_secret))
        .form(&[("token", s.access())])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(refused).await, (401, "invalid_client".into()));
    let public = s
        .app
        .http
        .post(s.app.url("/introspect"))
        .form(&[("client_id", s.client_id.as_str()), ("token", s.access())])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(public).await, (401, "invalid_client".into()));
    let anonymous = s
        .app
        .http
        .post(s.app.url("/introspect"))
        .form(&[("token", s.access())])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(anonymous).await, (401, "invalid_client".into()));
}

#[tokio::test]
async fn revocation_of_access_and_refresh_tokens() {
    let s = setup().await;
    let revoke = |form: Vec<(&'static str, String)>| {
        let app = &s.app;
        async move {
            app.http
                .post(app.url("/revoke"))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    // Unknown tokens: 200. Another client's token: 200, and nothing happens.
    assert_eq!(
        revoke(vec![
            ("client_id", s.client_id.clone()),
            ("token", "unknown".into())
        ])
        .await
        .status(),
        200
    );
    let other =
        register_public_client(&s.app, "https://claude.ai/api/mcp/auth_callback", "Other").await;
    assert_eq!(
        revoke(vec![("client_id", other), ("token", s.access().into())])
            .await
            .status(),
        200
    );
    assert_eq!(
        s.introspect(s.access()).await["active"],
        true,
        "another client cannot revoke it"
    );
    let missing = revoke(vec![("client_id", s.client_id.clone())]).await;
    assert_eq!(error_of(missing).await, (400, "invalid_request".into()));
    let unauthenticated = revoke(vec![("token", s.access().into())]).await;
    assert_eq!(
        error_of(unauthenticated).await,
        (401, "invalid_client".into())
    );

    // The access token, by jti.
    assert_eq!(
        revoke(vec![
            ("client_id", s.client_id.clone()),
            ("token", s.access().into()),
            ("token_type_hint", "access_token".into())
        ])
        .await
        .status(),
        200
    );
    assert_eq!(s.introspect(s.access()).await["active"], false);
    assert_eq!(
        error_of(s.exchange(s.access()).await).await,
        (400, "invalid_request".into())
    );

    // The refresh token: its family.
    let rt = s.tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        revoke(vec![
            ("client_id", s.client_id.clone()),
            ("token", rt.clone())
        ])
        .await
        .status(),
        200
    );
    assert_eq!(
        error_of(s.refresh(&rt).await).await,
        (400, "invalid_grant".into())
    );
}

#[tokio::test]
async fn admin_revokes_a_clients_tokens_and_rotates_keys() {
    let s = setup().await;
    let revoked = s
        .app
        .admin(
            Method::POST,
            &format!("/admin/v1/clients/{}/revoke-tokens", s.client_id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(
        error_of(s.refresh(s.tokens["refresh_token"].as_str().unwrap()).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        s.introspect(s.access()).await["active"],
        false,
        "its access tokens too"
    );

    let keys: Value = s
        .app
        .admin(Method::GET, "/admin/v1/keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    let rotated = s
        .app
        .admin(Method::POST, "/admin/v1/keys/rotate")
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 201);
    let again = s
        .app
        .admin(Method::POST, "/admin/v1/keys/rotate")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(s.app.jwks_kids().await.len(), 2);
    let unauthorized = s
        .app
        .http
        .post(s.app.url("/admin/v1/keys/rotate"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    let unmark = s
        .app
        .admin(
            Method::DELETE,
            &format!("/admin/v1/clients/{}/resource-server", s.server_id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unmark.status(), 200);
    let bad_mark = s
        .app
        .admin(
            Method::PUT,
            &format!("/admin/v1/clients/{}/resource-server", s.server_id),
        )
        .json(&json!({"resource": "https://unknown.example/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_mark.status(), 400);
    let public_mark = s
        .app
        .admin(
            Method::PUT,
            &format!("/admin/v1/clients/{}/resource-server", s.client_id),
        )
        .json(&json!({"resource": RESOURCE}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        public_mark.status(),
        400,
        "a public client cannot be a resource server"
    );
}
