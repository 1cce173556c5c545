//! Dynamic Client Registration (RFC 7591) and management (RFC 7592) as real hosts use them.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDb, spawn_app, spawn_app_with};

/// Registers `body` and asserts the RFC 7591 success shape of a new client, with its RFC 7592
/// management token; returns the response body.
async fn register_ok(app: &TestApp, body: Value) -> Value {
    let info = register_answered(app, body).await;
    let client_id = info["client_id"].as_str().unwrap();
    assert!(info["registration_access_token"].is_string());
    assert_eq!(
        info["registration_client_uri"],
        format!("{}/register/{client_id}", app.issuer)
    );
    info
}

/// Registers `body` and asserts the RFC 7591 success shape of an identical registration's
/// answer: the existing client, without any way to manage it.
async fn register_deduplicated(app: &TestApp, body: Value) -> Value {
    let info = register_answered(app, body).await;
    assert!(info.get("registration_access_token").is_none(), "{info}");
    assert!(info.get("registration_client_uri").is_none(), "{info}");
    info
}

/// Registers `body` and asserts the RFC 7591 success shape; returns the response body.
async fn register_answered(app: &TestApp, body: Value) -> Value {
    let response = app.register(&body).await;
    assert_eq!(
        response.status(),
        201,
        "a strict client rejects anything but 201"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let info: Value = response.json().await.unwrap();
    let client_id = info["client_id"].as_str().unwrap();
    assert!(!client_id.starts_with("https://"));
    assert!(info["client_id_issued_at"].is_i64(), "a number");
    assert_eq!(
        info["redirect_uris"], body["redirect_uris"],
        "echoed exactly"
    );
    assert!(
        info.as_object().unwrap().values().all(|v| !v.is_null()),
        "never null: {info}"
    );
    info
}

/// The RFC 7592 URI of a registration, on the test server's address.
fn management_uri(app: &TestApp, info: &Value) -> String {
    let uri = info["registration_client_uri"].as_str().unwrap();
    uri.replace(&app.issuer, &app.address)
}

async fn client_count(app: &TestApp) -> usize {
    let page: Value = app.admin_get("/admin/v1/clients?limit=200").await;
    page["clients"].as_array().unwrap().len()
}

#[tokio::test]
async fn chatgpt_registration() {
    let app = spawn_app().await;
    let info = register_ok(
        &app,
        json!({
            "client_name": "ChatGPT",
            "redirect_uris": ["https://chatgpt.com/connector/oauth/abc123", "https://chatgpt.com/connector_platform_oauth_redirect"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(info["token_endpoint_auth_method"], "none");
    assert!(
        info.get("client_secret").is_none(),
        "public clients get no secret"
    );
    assert_eq!(
        info["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
}

#[tokio::test]
async fn claude_ai_registration_with_client_secret_post() {
    let app = spawn_app().await;
    let info = register_ok(
        &app,
        json!({
            "client_name": "claudeai",
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "claudeai",
        }),
    )
    .await;
    assert_eq!(info["token_endpoint_auth_method"], "client_secret_post");
    assert!(info["client_secret"].as_str().unwrap().len() >= 32);
    assert_eq!(info["client_secret_expires_at"], 0);
    assert_eq!(info["scope"], "claudeai", "recorded as sent");
}

#[tokio::test]
async fn claude_code_registration() {
    let app = spawn_app().await;
    let info = register_ok(
        &app,
        json!({
            "client_name": "Claude Code",
            "redirect_uris": ["http://localhost:54321/callback"],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(
        info["grant_types"],
        json!(["authorization_code", "refresh_token"]),
        "refresh always honoured"
    );
}

#[tokio::test]
async fn cursor_registration() {
    let app = spawn_app().await;
    register_ok(
        &app,
        json!({
            "client_name": "Cursor",
            "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }),
    )
    .await;
}

#[tokio::test]
async fn vs_code_native_with_https_and_loopback_uris() {
    let app = spawn_app().await;
    let info = register_ok(
        &app,
        json!({
            "client_name": "Visual Studio Code",
            "application_type": "native",
            "redirect_uris": ["http://127.0.0.1:33418/", "http://127.0.0.1/", "https://vscode.dev/redirect", "https://insiders.vscode.dev/redirect"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(info["application_type"], "native");
}

#[tokio::test]
async fn mcp_inspector_registration_keeps_unknown_fields() {
    let app = spawn_app().await;
    let info = register_ok(
        &app,
        json!({
            "client_name": "MCP Inspector",
            "client_uri": "https://github.com/modelcontextprotocol/inspector",
            "redirect_uris": ["http://localhost:6274/oauth/callback", "http://localhost:6274/oauth/callback/debug"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "software_id": "mcp-inspector",
            "x_vendor_extension": {"a": [1, 2]},
        }),
    )
    .await;
    assert_eq!(info["software_id"], "mcp-inspector");
    assert_eq!(info["x_vendor_extension"], json!({"a": [1, 2]}));
    assert_eq!(
        info["client_uri"],
        "https://github.com/modelcontextprotocol/inspector"
    );
}

#[tokio::test]
async fn bad_metadata_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let cases = [
        (
            "http to a non-loopback host",
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            "fragment",
            json!({"redirect_uris": ["https://a.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            "javascript scheme",
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            "data scheme",
            json!({"redirect_uris": ["data:text/html,hi"]}),
            "invalid_redirect_uri",
        ),
        (
            "too many redirect URIs",
            json!({"redirect_uris": (0..11).map(|i| format!("https://a.example/{i}")).collect::<Vec<_>>()}),
            "invalid_redirect_uri",
        ),
        (
            "redirect_uris wrong type",
            json!({"redirect_uris": "https://a.example/cb"}),
            "invalid_redirect_uri",
        ),
        (
            "client_name wrong type",
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": 42}),
            "invalid_client_metadata",
        ),
        (
            "grant_types wrong type",
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": {"a": 1}}),
            "invalid_client_metadata",
        ),
        (
            "unsupported auth method",
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_jwt"}),
            "invalid_client_metadata",
        ),
        (
            "not an object",
            json!(["https://a.example/cb"]),
            "invalid_client_metadata",
        ),
    ];
    for (name, body, code) in cases {
        let response = app.register(&body).await;
        assert_eq!(response.status(), 400, "{name}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], code, "{name}: {error}");
        assert!(
            !error["error_description"].as_str().unwrap().is_empty(),
            "{name}"
        );
    }
    let not_json = app
        .http
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(
        not_json.json::<Value>().await.unwrap()["error"],
        "invalid_client_metadata"
    );
    let wrong_type = app
        .http
        .post(app.url("/register"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 400);
    let huge = json!({"redirect_uris": ["https://a.example/cb"], "padding": "x".repeat(70 * 1024)});
    let too_big = app.register(&huge).await;
    assert_eq!(too_big.status(), 413);
    assert_eq!(
        too_big.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    assert_eq!(client_count(&app).await, 0, "nothing stored");
}

#[tokio::test]
async fn rfc7592_read_update_delete_with_good_wrong_and_missing_tokens() {
    let app = spawn_app().await;
    let info = register_ok(&app, json!({"client_name": "Tool", "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"})).await;
    let uri = management_uri(&app, &info);
    let client_id = info["client_id"].as_str().unwrap();
    assert_eq!(uri, app.url(&format!("/register/{client_id}")));
    let token = info["registration_access_token"].as_str().unwrap();
    let manage = |method: Method, body: Option<Value>| {
        let app = &app;
        async move {
            app.manage_registration(method, client_id, Some(token), body.as_ref())
                .await
        }
    };
    let other = register_ok(&app, json!({"client_name": "Other", "redirect_uris": ["https://b.example/cb"], "token_endpoint_auth_method": "none"})).await;
    let other_token = other["registration_access_token"].as_str().unwrap();

    for (name, auth) in [
        ("missing", None),
        ("wrong", Some("reg_wrong")),
        ("another client's", Some(other_token)),
    ] {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let body = (method == Method::PUT).then(|| json!({"client_id": info["client_id"], "redirect_uris": ["https://a.example/cb"]}));
            let response = app
                .manage_registration(method.clone(), client_id, auth, body.as_ref())
                .await;
            assert_eq!(response.status(), 401, "{method} with a {name} token");
            assert!(
                response.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
            assert_eq!(
                response.json::<Value>().await.unwrap()["error"],
                "invalid_token"
            );
        }
    }

    let read: Value = manage(Method::GET, None).await.json().await.unwrap();
    assert_eq!(read["client_id"], info["client_id"]);
    assert_eq!(read["client_name"], "Tool");

    let update = json!({"client_id": info["client_id"], "client_name": "Tool 2", "redirect_uris": ["https://a.example/cb2"], "token_endpoint_auth_method": "none"});
    let updated = manage(Method::PUT, Some(update)).await;
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["client_name"], "Tool 2");
    assert_eq!(updated["redirect_uris"], json!(["https://a.example/cb2"]));

    let bad_update =
        json!({"client_id": info["client_id"], "redirect_uris": ["http://evil.example/cb"]});
    let refused = manage(Method::PUT, Some(bad_update)).await;
    assert_eq!(refused.status(), 400);
    let mismatched =
        json!({"client_id": "client_other", "redirect_uris": ["https://a.example/cb"]});
    assert_eq!(manage(Method::PUT, Some(mismatched)).await.status(), 400);
    let still: Value = manage(Method::GET, None).await.json().await.unwrap();
    assert_eq!(
        still["redirect_uris"],
        json!(["https://a.example/cb2"]),
        "a refused update changes nothing"
    );

    assert_eq!(manage(Method::DELETE, None).await.status(), 204);
    assert_eq!(
        manage(Method::GET, None).await.status(),
        401,
        "gone at once"
    );
    let admin_view = app
        .admin_call(Method::GET, &format!("/admin/v1/clients/{client_id}"), None)
        .await;
    assert_eq!(admin_view.status(), 404);
}

#[tokio::test]
async fn identical_public_registration_from_the_same_source_returns_the_same_client() {
    let app = spawn_app().await;
    let body = json!({"client_name": "ChatGPT", "redirect_uris": ["https://chatgpt.com/connector/oauth/x"], "token_endpoint_auth_method": "none"});
    let first = register_ok(&app, body.clone()).await;
    // Same metadata, keys in another order.
    let reordered = json!({"token_endpoint_auth_method": "none", "redirect_uris": ["https://chatgpt.com/connector/oauth/x"], "client_name": "ChatGPT"});
    let second = register_deduplicated(&app, reordered).await;
    assert_eq!(first["client_id"], second["client_id"]);
    assert_eq!(first["client_id_issued_at"], second["client_id_issued_at"]);
    // Only the registrant manages the client.
    let uri = management_uri(&app, &first);
    let token = first["registration_access_token"].as_str().unwrap();
    assert_eq!(
        app.http
            .get(&uri)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // After the window, a new client.
    app.clock.advance(601);
    let third = register_ok(&app, body.clone()).await;
    assert_ne!(first["client_id"], third["client_id"]);
    // Confidential clients are never shared: their secret exists only in the first answer.
    let confidential = json!({"redirect_uris": ["https://claude.ai/api/mcp/auth_callback"], "token_endpoint_auth_method": "client_secret_post"});
    let a = register_ok(&app, confidential.clone()).await;
    let b = register_ok(&app, confidential).await;
    assert_ne!(a["client_id"], b["client_id"]);
}

#[tokio::test]
async fn per_source_rate_limit_answers_429_with_retry_after() {
    let app = spawn_app_with(TestDb::new().await, |config| {
        config.registration.per_source_limit = 3;
        config.registration.per_source_window_secs = 60;
    })
    .await;
    // Align to the start of a window so the test does not straddle two.
    let now = app.clock_now();
    app.clock.advance(60 - now.rem_euclid(60));
    for i in 0..3 {
        register_ok(&app, json!({"redirect_uris": [format!("https://a.example/{i}")], "token_endpoint_auth_method": "none"})).await;
    }
    let limited = app.register(&json!({"redirect_uris": ["https://a.example/9"], "token_endpoint_auth_method": "none"})).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "60");
    // A repeat of an earlier registration is not a new client and is still answered.
    register_deduplicated(
        &app,
        json!({"redirect_uris": ["https://a.example/0"], "token_endpoint_auth_method": "none"}),
    )
    .await;
    app.clock.advance(60);
    register_ok(
        &app,
        json!({"redirect_uris": ["https://a.example/10"], "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(client_count(&app).await, 4);
}

#[tokio::test]
async fn initial_access_token_when_required() {
    let iat = "iat_for_tests";
    let app = spawn_app_with(TestDb::new().await, |config| {
        config.registration.require_initial_access_token = true;
        config.registration.initial_access_token_hashes =
            vec![authbridge::tokens::opaque::hash(iat)];
    })
    .await;
    let body = json!({"redirect_uris": ["https://a.example/cb"]});
    let missing = app.register(&body).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"],
        "invalid_token"
    );
    let wrong = app
        .http
        .post(app.url("/register"))
        .bearer_auth("nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let good = app
        .http
        .post(app.url("/register"))
        .bearer_auth(iat)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 201);
}

#[tokio::test]
async fn reaper_deletes_abandoned_dynamic_clients_only() {
    let app = spawn_app().await;
    let dynamic = register_ok(
        &app,
        json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"}),
    )
    .await;
    let admin = app
        .admin(Method::POST, "/admin/v1/clients")
        .json(&json!({"client_name": "Ops", "redirect_uris": ["https://ops.example/cb"]}))
        .send()
        .await
        .unwrap();
    let admin: Value = admin.json().await.unwrap();
    let dynamic_id = dynamic["client_id"].as_str().unwrap();
    let admin_id = admin["client"]["client_id"].as_str().unwrap();

    // Not yet: one second before the never-authorized limit (24 h).
    app.clock.advance(24 * 3600 - 1);
    assert_eq!(app.reap().await, 0);
    app.clock.advance(2);
    assert_eq!(app.reap().await, 1);
    let gone = app
        .admin(Method::GET, &format!("/admin/v1/clients/{dynamic_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let uri = management_uri(&app, &dynamic);
    let token = dynamic["registration_access_token"].as_str().unwrap();
    assert_eq!(
        app.http
            .get(&uri)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // The host learns it at the token endpoint, and registers again.
    let token = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", dynamic_id),
            ("refresh_token", "rt_x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 401);
    assert_eq!(
        token.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // Admin clients are never reaped, however old and unused.
    app.clock.advance(400 * 24 * 3600);
    assert_eq!(app.reap().await, 0);
    let kept = app
        .admin(Method::GET, &format!("/admin/v1/clients/{admin_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), 200);
}

#[tokio::test]
async fn cors_preflight_on_register() {
    let app = spawn_app().await;
    let response = app
        .http
        .request(Method::OPTIONS, app.url("/register"))
        .header("Origin", "http://localhost:6274")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type, mcp-protocol-version",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn parallel_registrations_all_succeed() {
    let app = spawn_app().await;
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (http, url) = (app.http.clone(), app.url("/register"));
        let method = if i % 2 == 0 {
            "none"
        } else {
            "client_secret_post"
        };
        let body = json!({"redirect_uris": [format!("https://p.example/{i}")], "token_endpoint_auth_method": method});
        requests.spawn(async move {
            let response = http.post(url).json(&body).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        });
    }
    while let Some(result) = requests.join_next().await {
        let (status, body) = result.unwrap();
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(client_count(&app).await, 40);
}
