//! The token swap at the gateway (issue 12, point 5): the backend gets the user's OwnerRez
//! token, refreshed upstream once however many requests need it, refreshed and retried once when
//! the backend refuses it, and an `invalid_grant` upstream revokes the grant.

use reqwest::Method;
use serde_json::{Value, json};

use crate::gateway::{Gateway, gateway};
use crate::ownerrez_double::{Failure, Route};

impl Gateway {
    /// Past OwnerRez's 30-day token lifetime; our own tokens are refreshed (no upstream call)
    /// and the new access token returned.
    async fn access_after_upstream_expiry(&self) -> String {
        let body = self.refresh_after_upstream_expiry().await;
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Past OwnerRez's 30-day token lifetime, our refresh grant's answer (new access and
    /// refresh tokens; no upstream call yet).
    pub async fn refresh_after_upstream_expiry(&self) -> Value {
        self.app.clock.advance(30 * 24 * 3600 + 10);
        let refreshed = self
            .app
            .http
            .post(self.app.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", self.client_id.as_str()),
                (
                    "refresh_token",
                    self.tokens["refresh_token"].as_str().unwrap(),
                ),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(refreshed.status(), 200);
        refreshed.json().await.unwrap()
    }

    async fn ping_with(&self, token: &str) -> reqwest::Response {
        self.with_token(Method::POST, token)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap()
    }

    fn upstream_refreshes(&self) -> usize {
        self.double.count("refresh_token")
    }

    async fn grant_is_revoked(&self) -> bool {
        self.app
            .count_rows("grants", "revoked_at IS NOT NULL")
            .await
            == 1
    }
}

#[tokio::test]
async fn twenty_parallel_requests_with_an_expired_upstream_token_refresh_it_once() {
    let g = gateway().await;
    assert_eq!(g.call("ping").await.status(), 200);
    let before = g.last_backend_bearer();
    let access = g.access_after_upstream_expiry().await;
    let requests = (0..20).map(|_| g.ping_with(&access));
    let responses = futures_util::future::join_all(requests).await;
    for response in responses {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        g.upstream_refreshes(),
        1,
        "one upstream refresh for twenty requests"
    );
    let requests = g.backend.requests();
    assert_eq!(requests.len(), 21);
    let fresh = requests[1].0.bearer_token().unwrap().to_owned();
    assert_ne!(fresh, before);
    assert!(g.double.is_active(&fresh));
    assert!(
        requests[1..]
            .iter()
            .all(|(r, _)| r.bearer_token() == Some(fresh.as_str())),
        "every request carried the one refreshed token"
    );
}

#[tokio::test]
async fn a_backend_401_refreshes_once_and_retries_once() {
    let g = gateway().await;
    assert_eq!(g.call("ping").await.status(), 200);
    let refused = g.last_backend_bearer();
    g.backend.refuse_token(&refused);
    let response = g.call("tools/call").await;
    assert_eq!(response.status(), 200);
    assert_eq!(g.upstream_refreshes(), 1);
    let requests = g.backend.requests();
    assert_eq!(
        requests.len(),
        3,
        "the first call, the refused one and its retry"
    );
    assert_eq!(requests[1].0.bearer_token(), Some(refused.as_str()));
    let retried = requests[2].0.bearer_token().unwrap();
    assert_ne!(retried, refused);
    assert_eq!(requests[1].1, requests[2].1, "the same body is sent again");
    // The refreshed token is kept: the next request needs no refresh.
    assert_eq!(g.call("ping").await.status(), 200);
    assert_eq!(g.upstream_refreshes(), 1);
}

#[tokio::test]
async fn a_backend_still_refusing_after_the_retry_is_a_502() {
    let g = gateway().await;
    g.backend.refuse_every_token();
    let response = g.call("ping").await;
    assert_eq!(response.status(), 502);
    assert_eq!(g.upstream_refreshes(), 1, "one refresh");
    assert_eq!(g.backend.requests().len(), 2, "one retry");
    assert!(
        !g.grant_is_revoked().await,
        "the backend's refusal is not the user's"
    );
}

#[tokio::test]
async fn invalid_grant_upstream_revokes_the_grant_and_the_host_must_reauthorize() {
    let g = gateway().await;
    g.backend.refuse_every_token();
    g.double
        .set_failure(Route::Token, Some(Failure::InvalidGrant));
    let response = g.call("ping").await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    assert!(g.grant_is_revoked().await);
    let again = g.call("ping").await;
    assert_eq!(again.status(), 401);
    assert_eq!(
        g.backend.requests().len(),
        1,
        "the revoked grant stops at the gateway"
    );
}

#[tokio::test]
async fn an_expired_upstream_token_refused_with_invalid_grant_revokes_the_grant() {
    let g = gateway().await;
    let access = g.access_after_upstream_expiry().await;
    g.double
        .set_failure(Route::Token, Some(Failure::InvalidGrant));
    let response = g.ping_with(&access).await;
    assert_eq!(response.status(), 401);
    assert!(g.grant_is_revoked().await);
    assert!(g.backend.requests().is_empty());
}

#[tokio::test]
async fn other_upstream_failures_are_temporary_and_keep_the_grant() {
    let g = gateway().await;
    let access = g.access_after_upstream_expiry().await;
    for failure in [
        Failure::ServerError,
        Failure::InvalidClient,
        Failure::Forbidden,
    ] {
        g.double.set_failure(Route::Token, Some(failure));
        let response = g.ping_with(&access).await;
        assert_eq!(response.status(), 503, "{failure:?}");
        assert_eq!(response.headers()["retry-after"], "5");
        assert!(!g.grant_is_revoked().await, "{failure:?}");
    }
    g.double.set_failure(Route::Token, None);
    assert_eq!(
        g.ping_with(&access).await.status(),
        200,
        "the lease was released"
    );
    assert!(g.backend.requests().len() == 1);
}

#[tokio::test]
async fn parallel_requests_on_two_instances_refresh_the_expired_upstream_token_once() {
    let g = gateway().await;
    let second = g.second_instance().await;
    assert_eq!(g.call("ping").await.status(), 200);
    let before = g.last_backend_bearer();
    let access = g.access_after_upstream_expiry().await;
    let requests = (0..20).map(|i| {
        let instance = if i % 2 == 0 { &g.app } else { &second };
        g.on(instance, Method::POST, &access)
            .json(&json!({"jsonrpc": "2.0", "id": i, "method": "ping"}))
            .send()
    });
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(
        g.upstream_refreshes(),
        1,
        "one upstream refresh for twenty requests on two instances"
    );
    let requests = g.backend.requests();
    assert_eq!(requests.len(), 21);
    let fresh = requests[1].0.bearer_token().unwrap().to_owned();
    assert_ne!(fresh, before);
    assert!(
        requests[1..]
            .iter()
            .all(|(r, _)| r.bearer_token() == Some(fresh.as_str())),
        "every request carried the one refreshed token"
    );
    // Each instance goes on with the refreshed token, however it last opened the old one.
    for instance in [&g.app, &second] {
        let response = g
            .on(instance, Method::POST, &access)
            .json(&json!({"jsonrpc": "2.0", "id": 99, "method": "ping"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(g.last_backend_bearer(), fresh);
    }
    assert_eq!(g.upstream_refreshes(), 1);
}
