//! `/revoke` (RFC 7009): a client revokes its own access tokens (by jti) and refresh tokens
//! (their family); anything else is answered 200 and changes nothing.

use crate::endpoints::ClientAuth;
use crate::scene::{error_of, setup};

#[tokio::test]
async fn revocation_of_access_and_refresh_tokens() {
    let s = setup().await;
    // Unknown tokens: 200. Another client's token: 200, and nothing happens.
    assert_eq!(s.revoke(&[("token", "unknown")]).await.status(), 200);
    let other = s
        .app
        .register_public("https://claude.ai/api/mcp/auth_callback", "Other")
        .await;
    assert_eq!(
        s.app
            .revoke(ClientAuth::Public(&other), &[("token", s.access())])
            .await
            .status(),
        200
    );
    assert_eq!(
        s.introspect(s.access()).await["active"],
        true,
        "another client cannot revoke it"
    );
    let missing = s.revoke(&[]).await;
    assert_eq!(error_of(missing).await, (400, "invalid_request".into()));
    let unauthenticated = s
        .app
        .revoke(ClientAuth::Anonymous, &[("token", s.access())])
        .await;
    assert_eq!(
        error_of(unauthenticated).await,
        (401, "invalid_client".into())
    );

    // The access token, by jti.
    assert_eq!(
        s.revoke(&[("token", s.access()), ("token_type_hint", "access_token")])
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
    assert_eq!(s.revoke(&[("token", &rt)]).await.status(), 200);
    assert_eq!(
        error_of(s.refresh(&rt).await).await,
        (400, "invalid_grant".into())
    );
}
