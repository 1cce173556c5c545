//! The committed OpenAPI document must be what the code generates.

#[tokio::test]
async fn committed_openapi_document_is_current() {
    let generated = authbridge::app::openapi_document().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is stale: run `cargo run -- openapi --output openapi/openapi.json`"
    );
}

#[tokio::test]
async fn served_document_lists_every_json_endpoint() {
    let app = crate::helpers::spawn_app().await;
    let document = app.get_json("/openapi.json").await;
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/jwks.json",
        "/healthz",
        "/readyz",
        "/register",
        "/token",
        "/revoke",
        "/introspect",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert_eq!(document["servers"][0]["url"], app.issuer);
    let docs = app.get("/docs").await;
    assert_eq!(docs.status(), 200);
    assert!(
        docs.text().await.unwrap().contains("swagger"),
        "Swagger UI at /docs"
    );
}
