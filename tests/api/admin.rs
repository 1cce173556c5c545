//! The admin API: every endpoint with a valid, an invalid and a missing token, and the audit
//! trail it leaves.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::scene::{RESOURCE, error_of, setup};

async fn create(app: &TestApp, body: Value) -> Value {
    let response = app
        .admin(Method::POST, "/admin/v1/clients")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_endpoint_refuses_an_invalid_or_missing_token() {
    let app = spawn_app().await;
    let created = create(
        &app,
        json!({"client_name": "Ops", "redirect_uris": ["https://ops.example/cb"]}),
    )
    .await;
    let id = created["client"]["client_id"].as_str().unwrap().to_owned();
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/admin/v1/clients".into(),
            Some(json!({"client_name": "X", "redirect_uris": ["https://x.example/cb"]})),
        ),
        (Method::GET, "/admin/v1/clients".into(), None),
        (Method::GET, format!("/admin/v1/clients/{id}"), None),
        (
            Method::PATCH,
            format!("/admin/v1/clients/{id}"),
            Some(json!({"disabled": true})),
        ),
        (Method::DELETE, format!("/admin/v1/clients/{id}"), None),
        (Method::POST, format!("/admin/v1/clients/{id}/secret"), None),
        (Method::GET, "/admin/v1/audit".into(), None),
        (
            Method::PUT,
            format!("/admin/v1/clients/{id}/resource-server"),
            Some(json!({"resource": "http://localhost:3000/mcp"})),
        ),
        (
            Method::DELETE,
            format!("/admin/v1/clients/{id}/resource-server"),
            None,
        ),
        (
            Method::POST,
            format!("/admin/v1/clients/{id}/revoke-tokens"),
            None,
        ),
        (Method::GET, "/admin/v1/users".into(), None),
        (Method::GET, "/admin/v1/users/usr_x/grants".into(), None),
        (Method::POST, "/admin/v1/grants/grt_x/revoke".into(), None),
        (Method::GET, "/admin/v1/keys".into(), None),
        (Method::POST, "/admin/v1/keys/rotate".into(), None),
    ];
    for (method, path, body) in &endpoints {
        for token in [None, Some("adm_not_a_real_token"), Some("")] {
            let mut request = app.http.request(method.clone(), app.url(path));
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                401,
                "{method} {path} with token {token:?}"
            );
            assert_eq!(
                response.headers()["www-authenticate"],
                r#"Bearer error="invalid_token""#
            );
            let error: Value = response.json().await.unwrap();
            assert_eq!(
                error,
                json!({"error": "invalid_token", "error_description": "a valid admin bearer token is required"}),
                "{method} {path}"
            );
        }
    }
    // Nothing changed without a valid token.
    let client: Value = app.admin_get(&format!("/admin/v1/clients/{id}")).await;
    assert_eq!(client["disabled"], false);
    let audit: Value = app.admin_get("/admin/v1/audit").await;
    assert_eq!(
        audit["entries"].as_array().unwrap().len(),
        1,
        "only the create"
    );
}

#[tokio::test]
async fn client_lifecycle_through_the_admin_api_with_audit() {
    let app = spawn_app().await;
    // An operator-chosen id for a host with a static client id, public.
    let cursor = create(&app, json!({"client_id": "cursor-static", "client_name": "Cursor", "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback"], "token_endpoint_auth_method": "none"})).await;
    assert_eq!(cursor["client"]["client_id"], "cursor-static");
    assert_eq!(cursor["client"]["kind"], "admin");
    assert!(cursor.get("client_secret").is_none());
    // A generated id, confidential: the secret is shown once.
    let ops = create(
        &app,
        json!({"client_name": "Ops Tool", "redirect_uris": ["https://ops.example/cb"]}),
    )
    .await;
    let ops_id = ops["client"]["client_id"].as_str().unwrap().to_owned();
    let first_secret = ops["client_secret"].as_str().unwrap().to_owned();
    assert!(ops_id.starts_with("client_"));

    let duplicate = app.admin(Method::POST, "/admin/v1/clients").json(&json!({"client_id": "cursor-static", "client_name": "Again", "redirect_uris": ["https://x.example/cb"]})).send().await.unwrap();
    assert_eq!(duplicate.status(), 409);
    let bad = app
        .admin(Method::POST, "/admin/v1/clients")
        .json(&json!({"client_name": "Bad", "redirect_uris": ["http://evil.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let url_id = app.admin(Method::POST, "/admin/v1/clients").json(&json!({"client_id": "https://x.example/c", "client_name": "Bad", "redirect_uris": ["https://x.example/cb"]})).send().await.unwrap();
    assert_eq!(url_id.status(), 400);
    let wrong_types = app
        .admin(Method::POST, "/admin/v1/clients")
        .json(&json!({"client_name": 5, "redirect_uris": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_types.status(), 400);

    // A dynamic client too, to filter by kind.
    let dynamic = app.register(&json!({"client_name": "ChatGPT", "redirect_uris": ["https://chatgpt.com/connector/oauth/a"], "token_endpoint_auth_method": "none"})).await;
    assert_eq!(dynamic.status(), 201);

    let list = |query: &'static str| {
        let app = &app;
        async move {
            let response = app
                .admin(Method::GET, &format!("/admin/v1/clients{query}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{query}");
            response.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(list("").await["clients"].as_array().unwrap().len(), 3);
    assert_eq!(
        list("?kind=dynamic").await["clients"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        list("?kind=admin").await["clients"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        list("?name=tool").await["clients"][0]["client_name"],
        "Ops Tool",
        "case-insensitive name filter"
    );
    assert_eq!(
        list("?name=100%25").await["clients"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "LIKE wildcards are literal"
    );
    let page1 = list("?limit=2").await;
    assert_eq!(page1["clients"].as_array().unwrap().len(), 2);
    let cursor_value = page1["next_cursor"].as_str().unwrap().to_owned();
    let page2: Value = app
        .admin_get(&format!("/admin/v1/clients?limit=2&cursor={cursor_value}"))
        .await;
    assert_eq!(page2["clients"].as_array().unwrap().len(), 1);
    assert!(page2.get("next_cursor").is_none());
    let bad_kind = app
        .admin(Method::GET, "/admin/v1/clients?kind=other")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_kind.status(), 400);
    let bad_limit = app
        .admin(Method::GET, "/admin/v1/clients?limit=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_limit.status(), 400);

    let patched = app.admin_update_client(&ops_id, &json!({"client_name": "Ops Tool 2", "redirect_uris": ["https://ops.example/cb2"], "disabled": true})).await;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["client_name"], "Ops Tool 2");
    assert_eq!(patched["redirect_uris"], json!(["https://ops.example/cb2"]));
    assert_eq!(patched["disabled"], true);
    let bad_patch = app
        .admin_update_client(&ops_id, &json!({"redirect_uris": ["javascript:alert(1)"]}))
        .await;
    assert_eq!(bad_patch.status(), 400);
    let missing_patch = app
        .admin(Method::PATCH, "/admin/v1/clients/nope")
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing_patch.status(), 404);

    let rotated = app
        .admin(Method::POST, &format!("/admin/v1/clients/{ops_id}/secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    assert_eq!(rotated.headers()["cache-control"], "no-store");
    let rotated: Value = rotated.json().await.unwrap();
    assert_ne!(rotated["client_secret"].as_str().unwrap(), first_secret);
    let public_rotate = app
        .admin(Method::POST, "/admin/v1/clients/cursor-static/secret")
        .send()
        .await
        .unwrap();
    assert_eq!(public_rotate.status(), 400, "a public client has no secret");

    assert_eq!(app.admin_delete_client("cursor-static").await.status(), 204);
    assert_eq!(
        app.admin(Method::GET, "/admin/v1/clients/cursor-static")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(app.admin_delete_client("cursor-static").await.status(), 404);

    let audit: Value = app.admin_get("/admin/v1/audit").await;
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "client.delete",
            "client.rotate_secret",
            "client.update",
            "client.register",
            "client.create",
            "client.create"
        ],
        "newest first"
    );
    for entry in entries {
        let expected = if entry["action"] == "client.register" {
            "registrant"
        } else {
            "test-admin"
        };
        assert_eq!(entry["actor"], expected, "{entry}");
    }
    let update = &entries[2];
    assert_eq!(update["action"], "client.update");
    assert_eq!(update["client_id"], ops_id);
    assert_eq!(update["summary"]["before"]["client_name"], "Ops Tool");
    assert_eq!(update["summary"]["after"]["client_name"], "Ops Tool 2");
    assert_eq!(update["summary"]["after"]["disabled"], true);
    let raw = audit.to_string();
    assert!(
        !raw.contains(&first_secret) && !raw.contains(rotated["client_secret"].as_str().unwrap()),
        "no secret in the audit trail"
    );
    let older: Value = app.admin_get("/admin/v1/audit?limit=2").await;
    let before = older["next_before"].as_i64().unwrap();
    let rest: Value = app
        .admin_get(&format!("/admin/v1/audit?before={before}"))
        .await;
    assert_eq!(rest["entries"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn openapi_lists_every_admin_operation_with_schemas() {
    let app = spawn_app().await;
    let document = app.get_json("/openapi.json").await;
    let operations = [
        ("/admin/v1/clients", "post"),
        ("/admin/v1/clients", "get"),
        ("/admin/v1/clients/{client_id}", "get"),
        ("/admin/v1/clients/{client_id}", "patch"),
        ("/admin/v1/clients/{client_id}", "delete"),
        ("/admin/v1/clients/{client_id}/secret", "post"),
        ("/admin/v1/audit", "get"),
    ];
    for (path, method) in operations {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} missing");
        assert!(
            operation["security"].to_string().contains("AdminToken"),
            "{method} {path} is secured"
        );
    }
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for schema in [
        "AdminClient",
        "CreateClientRequest",
        "CreatedClient",
        "UpdateClientRequest",
        "ClientPage",
        "ClientSecret",
        "AuditPage",
        "AuditEntry",
        "ErrorBody",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
}

/// Every admin surface answers a request it cannot parse with the same 400 body.
#[tokio::test]
async fn unparsable_requests_get_one_error_shape() {
    let app = spawn_app().await;
    let requests = [
        app.admin(Method::POST, "/admin/v1/clients")
            .header("content-type", "application/json")
            .body("{not json"),
        app.admin(Method::GET, "/admin/v1/clients?limit=many"),
        app.admin(Method::GET, "/admin/v1/audit?before=yesterday"),
        app.admin(Method::GET, "/admin/v1/users?limit=-1"),
        app.admin(Method::PATCH, "/admin/v1/clients/x")
            .header("content-type", "application/json")
            .body("[]"),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        let url = response.url().to_string();
        assert_eq!(response.status(), 400, "{url}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "invalid_request", "{url}");
        assert!(error["error_description"].is_string(), "{url}");
    }
}

#[tokio::test]
async fn admin_revokes_a_clients_tokens_and_rotates_keys() {
    let s = setup().await;
    let revoked = s.app.admin_revoke_client_tokens(&s.client_id).await;
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

    let keys = s.app.admin_get("/admin/v1/keys").await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    let rotated = s.app.admin_rotate_keys().await;
    assert_eq!(rotated.status(), 201);
    let again = s.app.admin_rotate_keys().await;
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
        .admin_call(
            Method::DELETE,
            &format!("/admin/v1/clients/{}/resource-server", s.server_id),
            None,
        )
        .await;
    assert_eq!(unmark.status(), 200);
    let bad_mark = s
        .app
        .admin_mark_resource_server(&s.server_id, "https://unknown.example/")
        .await;
    assert_eq!(bad_mark.status(), 400);
    let public_mark = s
        .app
        .admin_mark_resource_server(&s.client_id, RESOURCE)
        .await;
    assert_eq!(
        public_mark.status(),
        400,
        "a public client cannot be a resource server"
    );
}
