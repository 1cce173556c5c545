//! What real hosts send: a resource with a trailing slash after its path, `offline_access`
//! in the scope, and access-token lifetimes per redirect-URI pattern and per client for hosts
//! that never refresh.

use authbridge::config::{Config, TokenLifetimeConfig};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, VERIFIER, hidden_field, location, query_of};
use crate::endpoints::code_of;
use crate::helpers::{TestApp, TestDb, spawn_app, spawn_app_with};
use crate::scene::error_of;

const CLAUDE: &str = "https://claude.ai/api/mcp/auth_callback";
const CHATGPT: &str = "https://chatgpt.com/connector_platform_oauth_redirect";
const RESOURCE: &str = "http://localhost:3000/mcp";

/// Logs `alice` in through `client_id` with `extra` authorization parameters; returns the code.
async fn code_with(
    app: &TestApp,
    client_id: &str,
    redirect: &str,
    extra: &[(&str, &str)],
) -> String {
    let authorize = app.authorize_url(client_id, redirect, extra);
    code_of(
        &app.log_in_with_dev_at(&mut Browser::new(), &authorize, "alice")
            .await,
    )
}

/// The code redemption of a public client, with `extra` fields.
async fn redeem(
    app: &TestApp,
    client_id: &str,
    code: &str,
    redirect: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", VERIFIER),
    ];
    form.extend_from_slice(extra);
    app.token(&form).await
}

/// The refresh of a public client, with `extra` fields.
async fn refresh(
    app: &TestApp,
    client_id: &str,
    refresh_token: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("refresh_token", refresh_token),
    ];
    form.extend_from_slice(extra);
    app.token(&form).await
}

async fn ok(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The claims of a JWT, unverified (the token tests verify them strictly).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_resource_with_a_trailing_slash_is_the_configured_resource() {
    let app = spawn_app().await;
    let client_id = app.register_public(CLAUDE, "Claude").await;
    let slashed = format!("{RESOURCE}/");
    let code = code_with(&app, &client_id, CLAUDE, &[("resource", &slashed)]).await;
    let tokens = ok(redeem(&app, &client_id, &code, CLAUDE, &[("resource", &slashed)]).await).await;
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], RESOURCE, "the canonical form goes into aud");
    let rt = tokens["refresh_token"].as_str().unwrap();

    // Real mismatches are still refused, at the token endpoint...
    for other in [
        format!("{RESOURCE}/x"),
        format!("{RESOURCE}//"),
        "http://localhost:3000/mc/".to_owned(),
        "http://localhost:3001/mcp/".to_owned(),
    ] {
        assert_eq!(
            error_of(refresh(&app, &client_id, rt, &[("resource", &other)]).await).await,
            (400, "invalid_target".to_owned()),
            "{other}"
        );
    }
    let refreshed = ok(refresh(&app, &client_id, rt, &[("resource", &slashed)]).await).await;
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["aud"],
        RESOURCE
    );

    // ...and at /authorize (this client has been approved: errors go back to it).
    for other in [format!("{RESOURCE}/x"), format!("{RESOURCE}//")] {
        let response = Browser::new()
            .get(&app.authorize_url(&client_id, CLAUDE, &[("resource", &other)]))
            .await;
        let back = location(&response);
        assert_eq!(
            query_of(&back).get("error").map(String::as_str),
            Some("invalid_target"),
            "{other}"
        );
    }

    // An operator marking a resource server may spell it either way; the configured form is
    // kept, and the exchange checks the subject token's aud against it.
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
    let server_id = created["client"]["client_id"].as_str().unwrap();
    let marked = app
        .admin(
            Method::PUT,
            &format!("/admin/v1/clients/{server_id}/resource-server"),
        )
        .json(&json!({"resource": slashed}))
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), 200);
    let marked: Value = marked.json().await.unwrap();
    assert_eq!(marked["resource_server_for"], RESOURCE);
    let exchanged = app
        .http
        .post(app.url("/token"))
        .basic_auth(server_id, created["client_secret"].as_str())
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", refreshed["access_token"].as_str().unwrap()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        exchanged.status(),
        200,
        "{}",
        exchanged.text().await.unwrap()
    );
    let not_configured = app
        .admin(
            Method::PUT,
            &format!("/admin/v1/clients/{server_id}/resource-server"),
        )
        .json(&json!({"resource": format!("{RESOURCE}/x")}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_configured.status(), 400);
}

#[tokio::test]
async fn offline_access_asks_for_the_refresh_token_every_grant_gets_and_is_never_a_scope() {
    let app = spawn_app().await;
    let client_id = app.register_public(CLAUDE, "Claude").await;

    // The consent page does not list it.
    let mut browser = Browser::new();
    let page = browser
        .get(&app.authorize_url(&client_id, CLAUDE, &[("scope", "mcp offline_access")]))
        .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("offline_access"),
        "not shown as a permission"
    );
    assert!(!hidden_field(&html, "request").is_empty());

    for (name, scope) in [
        ("with a scope", "mcp offline_access"),
        ("alone", "offline_access"),
        ("not asked", ""),
    ] {
        let code = code_with(&app, &client_id, CLAUDE, &[("scope", scope)]).await;
        let tokens = ok(redeem(&app, &client_id, &code, CLAUDE, &[]).await).await;
        assert_eq!(tokens["scope"], "mcp", "{name}");
        assert_eq!(
            claims(tokens["access_token"].as_str().unwrap())["scope"],
            "mcp",
            "{name}"
        );
        assert!(
            tokens["refresh_token"].is_string(),
            "{name}: a refresh token either way"
        );
        let refreshed = ok(refresh(
            &app,
            &client_id,
            tokens["refresh_token"].as_str().unwrap(),
            &[("scope", "offline_access mcp")],
        )
        .await)
        .await;
        assert_eq!(refreshed["scope"], "mcp", "{name}: refresh");
        assert!(refreshed["refresh_token"].is_string());
    }
    // Other unknown scopes are still refused.
    let response = Browser::new()
        .get(&app.authorize_url(&client_id, CLAUDE, &[("scope", "offline_access admin")]))
        .await;
    let back = location(&response);
    assert_eq!(
        query_of(&back).get("error").map(String::as_str),
        Some("invalid_scope")
    );
}

fn claude_for_a_day(config: &mut Config) {
    config.token_lifetimes = vec![TokenLifetimeConfig {
        redirect_uri: CLAUDE.into(),
        access_token_ttl_secs: 86_400,
    }];
}

/// `expires_in` and the JWT's lifetime of a token response.
fn lifetimes(tokens: &Value) -> (i64, i64) {
    let access = claims(tokens["access_token"].as_str().unwrap());
    (
        tokens["expires_in"].as_i64().unwrap(),
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn access_token_lifetimes_by_redirect_uri_pattern_and_by_client() {
    let app = spawn_app_with(TestDb::new().await, claude_for_a_day).await;
    let claude = app.register_public(CLAUDE, "Claude").await;
    let chatgpt = app.register_public(CHATGPT, "ChatGPT").await;

    let code = code_with(&app, &claude, CLAUDE, &[]).await;
    let tokens = ok(redeem(&app, &claude, &code, CLAUDE, &[]).await).await;
    assert_eq!(
        lifetimes(&tokens),
        (86_400, 86_400),
        "the pattern's lifetime"
    );
    let code = code_with(&app, &chatgpt, CHATGPT, &[]).await;
    let other = ok(redeem(&app, &chatgpt, &code, CHATGPT, &[]).await).await;
    assert_eq!(lifetimes(&other), (3600, 3600), "no pattern: the default");

    // At refresh too.
    let tokens = ok(refresh(
        &app,
        &claude,
        tokens["refresh_token"].as_str().unwrap(),
        &[],
    )
    .await)
    .await;
    assert_eq!(lifetimes(&tokens), (86_400, 86_400));

    // An operator's lifetime for one client wins, from its next refresh.
    let path = format!("/admin/v1/clients/{chatgpt}/access-token-lifetime");
    let set = app
        .admin(Method::PUT, &path)
        .json(&json!({"access_token_ttl_secs": 43_200}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let view: Value = set.json().await.unwrap();
    assert_eq!(view["access_token_ttl_secs"], 43_200);
    let other = ok(refresh(
        &app,
        &chatgpt,
        other["refresh_token"].as_str().unwrap(),
        &[],
    )
    .await)
    .await;
    assert_eq!(lifetimes(&other), (43_200, 43_200), "the client's lifetime");
    // Cleared: the configuration applies again.
    let cleared = app.admin(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(cleared.status(), 200);
    let view: Value = cleared.json().await.unwrap();
    assert!(view["access_token_ttl_secs"].is_null());
    let other = ok(refresh(
        &app,
        &chatgpt,
        other["refresh_token"].as_str().unwrap(),
        &[],
    )
    .await)
    .await;
    assert_eq!(lifetimes(&other), (3600, 3600));

    // Each change is audited.
    let audit: Value = app.admin_get("/admin/v1/audit").await;
    let changes: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "client.access_token_ttl")
        .collect();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[1]["summary"]["after"], 43_200);
    assert_eq!(changes[0]["summary"]["before"], 43_200);
}

#[tokio::test]
async fn the_admin_lifetime_api_refuses_what_it_must() {
    let app = spawn_app().await;
    let client = app.register_public(CLAUDE, "Claude").await;
    let path = format!("/admin/v1/clients/{client}/access-token-lifetime");
    for (name, body, status) in [
        (
            "beyond the maximum",
            json!({"access_token_ttl_secs": 86_401}),
            400,
        ),
        ("under a minute", json!({"access_token_ttl_secs": 59}), 400),
        ("negative", json!({"access_token_ttl_secs": -1}), 400),
        ("not a number", json!({"access_token_ttl_secs": "1d"}), 400),
        ("missing", json!({}), 400),
    ] {
        let response = app
            .admin(Method::PUT, &path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{name}");
    }
    let unknown = app
        .admin(
            Method::PUT,
            "/admin/v1/clients/client_nope/access-token-lifetime",
        )
        .json(&json!({"access_token_ttl_secs": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let unknown = app
        .admin(
            Method::DELETE,
            "/admin/v1/clients/client_nope/access-token-lifetime",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let anonymous = app
        .http
        .put(app.url(&path))
        .json(&json!({"access_token_ttl_secs": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong_token = app
        .http
        .put(app.url(&path))
        .bearer_auth("adm_not_the_token")
        .json(&json!({"access_token_ttl_secs": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), 401);
    let view: Value = app.admin_get(&format!("/admin/v1/clients/{client}")).await;
    assert!(view["access_token_ttl_secs"].is_null(), "nothing was set");
}
