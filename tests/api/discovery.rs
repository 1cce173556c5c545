use crate::helpers::{TestDb, spawn_app, spawn_app_with};

#[tokio::test]
async fn metadata_issuer_is_byte_identical_to_the_issuer() {
    let app = spawn_app().await;
    let response = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let metadata: serde_json::Value = response.json().await.unwrap();
    assert_eq!(metadata["issuer"], app.issuer.as_str());
    assert_eq!(metadata["jwks_uri"], format!("{}/jwks.json", app.issuer));
    assert_eq!(metadata["scopes_supported"], serde_json::json!(["mcp"]));
    assert_eq!(
        metadata["authorization_endpoint"],
        format!("{}/authorize", app.issuer)
    );
    assert_eq!(
        metadata["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(metadata["token_endpoint"], format!("{}/token", app.issuer));
    assert_eq!(
        metadata["registration_endpoint"],
        format!("{}/register", app.issuer)
    );
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(
        methods.contains(&"none".into()),
        "claude.ai needs `none` for CIMD"
    );
}

#[tokio::test]
async fn jwks_publishes_one_rs256_key_on_a_fresh_database() {
    let app = spawn_app().await;
    let response = app.get("/jwks.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let jwks: serde_json::Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(key.get("d").is_none(), "no private member");
    let kid = key["kid"].as_str().unwrap();
    let thumbprint =
        authbridge::tokens::jwk::thumbprint(key["n"].as_str().unwrap(), key["e"].as_str().unwrap());
    assert_eq!(kid, thumbprint, "kid is the RFC 7638 thumbprint");
}

#[tokio::test]
async fn issuer_with_a_path_serves_metadata_at_the_inserted_well_known_url() {
    let db = TestDb::new().await;
    // Port 0 is only known after binding, so the test binds a port first to learn a free one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(db, |config| {
        config.server.listen = format!("127.0.0.1:{port}");
        config.server.issuer = Some(format!("http://127.0.0.1:{port}/tenant1"));
    })
    .await;
    let inserted = app
        .get_json("/.well-known/oauth-authorization-server/tenant1")
        .await;
    assert_eq!(
        inserted["issuer"],
        format!("http://127.0.0.1:{port}/tenant1")
    );
    assert_eq!(
        inserted["jwks_uri"],
        format!("http://127.0.0.1:{port}/tenant1/jwks.json")
    );
    let appended = app
        .get_json("/tenant1/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(appended, inserted);
    assert_eq!(
        app.get_json("/tenant1/jwks.json").await["keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get("/.well-known/oauth-authorization-server")
            .await
            .status(),
        404,
        "no root fallback"
    );
}

#[tokio::test]
async fn cors_preflight_like_mcp_inspector() {
    let app = spawn_app().await;
    for path in ["/.well-known/oauth-authorization-server", "/jwks.json"] {
        let response = app
            .http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("Origin", "http://localhost:6274")
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "mcp-protocol-version")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{path}");
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "*");
        let allowed = headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        for header in ["authorization", "content-type", "mcp-protocol-version"] {
            assert!(allowed.contains(header), "{path} allows {header}");
        }
        let simple = app
            .http
            .get(app.url(path))
            .header("Origin", "http://localhost:6274")
            .send()
            .await
            .unwrap();
        assert_eq!(
            simple.headers()["access-control-allow-origin"],
            "*",
            "{path}"
        );
    }
    let health = app
        .http
        .get(app.url("/healthz"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        health
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "CORS only on public OAuth endpoints"
    );
}

/// The metadata's URLs come from `routes`, the JSON endpoints' paths from their `#[oai]`
/// attributes: every advertised endpoint must be served where the metadata says.
#[tokio::test]
async fn every_endpoint_in_the_metadata_is_served_there() {
    let app = spawn_app().await;
    let metadata = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let gets = ["jwks_uri", "authorization_endpoint"];
    let posts = [
        "token_endpoint",
        "registration_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ];
    for (field, method) in gets
        .iter()
        .map(|f| (f, reqwest::Method::GET))
        .chain(posts.iter().map(|f| (f, reqwest::Method::POST)))
    {
        let url = metadata[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}"));
        let path = url.strip_prefix(&app.issuer).expect("below the issuer");
        let status = app
            .http
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            status != 404 && status != 405,
            "{method} {path} ({field}) answered {status}"
        );
    }
}
