//! `/introspect` (RFC 7662): for the resource server of a token's resource only.

use serde_json::{Value, json};

use crate::endpoints::ClientAuth;
use crate::scene::{RESOURCE, error_of, resource_server, setup};

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
        .introspect(ClientAuth::Basic(&other_id, &other_secret), s.access())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other, json!({"active": false}), "another resource's token");
    let (plain_id, plain_secret) = resource_server(&s.app, None).await;
    let refused = s
        .app
        .introspect(ClientAuth::Basic(&plain_id, &plain_secret), s.access())
        .await;
    assert_eq!(error_of(refused).await, (401, "invalid_client".into()));
    let public = s
        .app
        .introspect(ClientAuth::Public(&s.client_id), s.access())
        .await;
    assert_eq!(error_of(public).await, (401, "invalid_client".into()));
    let anonymous = s.app.introspect(ClientAuth::Anonymous, s.access()).await;
    assert_eq!(error_of(anonymous).await, (401, "invalid_client".into()));
}
