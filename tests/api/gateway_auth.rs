//! Authentication at the gateway (issue 12, point 4): every way a token can fail gets the
//! challenge MCP hosts (re)start OAuth on, and nothing reaches the backend.

use reqwest::Method;
use serde_json::{Value, json};

use crate::endpoints::ClientAuth;
use crate::gateway::{GATEWAY_HOST, METADATA_URL, gateway, gateway_with};
use crate::scene::{REDIRECT, RESOURCE, log_in_and_redeem_with};

fn www_authenticate(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

fn invalid_token_challenge(description: &str) -> String {
    format!(
        r#"Bearer error="invalid_token", error_description="{description}", resource_metadata="{METADATA_URL}", scope="mcp""#
    )
}

async fn ping(builder: reqwest::RequestBuilder) -> reqwest::Response {
    builder
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn no_token_is_a_challenge_without_an_error_code() {
    let g = gateway().await;
    for (name, request) in [
        ("no Authorization", g.anonymous(Method::POST)),
        (
            "another scheme",
            g.anonymous(Method::POST).basic_auth("u", Some("p")),
        ),
        (
            "a token in the query string only",
            g.app
                .http
                .post(g.app.url(&format!("/mcp?access_token={}", g.access())))
                .header("host", GATEWAY_HOST),
        ),
    ] {
        let response = ping(request).await;
        assert_eq!(response.status(), 401, "{name}");
        // RFC 6750 §3.1: no error code when the request had no credentials.
        assert_eq!(
            www_authenticate(&response),
            format!(r#"Bearer resource_metadata="{METADATA_URL}", scope="mcp""#),
            "{name}"
        );
    }
    assert!(g.backend.requests().is_empty());
}

#[tokio::test]
async fn bad_tokens_are_invalid_token() {
    let g = gateway().await;
    let access = g.access();
    let mut tampered = access.clone();
    tampered.pop();
    tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
    for (name, token, description) in [
        (
            "garbage",
            "not-a-jwt".to_owned(),
            "the token is not one this server issued",
        ),
        (
            "a bad signature",
            tampered,
            "the token is not one this server issued",
        ),
        (
            "a refresh token",
            g.tokens["refresh_token"].as_str().unwrap().to_owned(),
            "the token is not one this server issued",
        ),
    ] {
        let response = ping(g.with_token(Method::POST, &token)).await;
        assert_eq!(response.status(), 401, "{name}");
        assert_eq!(
            www_authenticate(&response),
            invalid_token_challenge(description),
            "{name}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
    let malformed = ping(
        g.anonymous(Method::POST)
            .header("authorization", "Bearer a\"b"),
    )
    .await;
    assert_eq!(malformed.status(), 401);
    assert!(www_authenticate(&malformed).starts_with(r#"Bearer error="invalid_token""#));

    g.app.clock.advance(3601);
    let expired = ping(g.mcp(Method::POST)).await;
    assert_eq!(expired.status(), 401);
    assert_eq!(
        www_authenticate(&expired),
        invalid_token_challenge("the token has expired")
    );
    assert!(g.backend.requests().is_empty());
}

#[tokio::test]
async fn a_token_for_another_resource_is_refused() {
    let g = gateway().await;
    let other = log_in_and_redeem_with(
        &g.app,
        &g.double,
        &g.client_id,
        &[("resource", "https://other.example/mcp")],
    )
    .await;
    let response = ping(g.with_token(Method::POST, other["access_token"].as_str().unwrap())).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        www_authenticate(&response),
        invalid_token_challenge("the token is not meant for this resource")
    );
    assert!(g.backend.requests().is_empty());
}

#[tokio::test]
async fn a_revoked_grant_is_refused_on_the_next_request() {
    let g = gateway().await;
    assert_eq!(ping(g.mcp(Method::POST)).await.status(), 200);
    let sub = crate::gateway::jwt_claims(&g.access())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let grants: Value = g
        .app
        .admin(Method::GET, &format!("/admin/v1/users/{sub}/grants"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grant_id = grants["grants"][0]["grant_id"].as_str().unwrap().to_owned();
    let revoked = g
        .app
        .admin(Method::POST, &format!("/admin/v1/grants/{grant_id}/revoke"))
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    // The access token is still unexpired: only the live check can refuse it.
    let response = ping(g.mcp(Method::POST)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        www_authenticate(&response),
        invalid_token_challenge("the authorization has been revoked")
    );
    assert_eq!(
        g.backend.requests().len(),
        1,
        "only the request before the revocation"
    );
}

#[tokio::test]
async fn a_disabled_client_is_refused() {
    let g = gateway().await;
    let disabled = g
        .app
        .admin_update_client(&g.client_id, &json!({"disabled": true}))
        .await;
    assert_eq!(disabled.status(), 200);
    let response = ping(g.mcp(Method::POST)).await;
    assert_eq!(response.status(), 401);
    assert!(www_authenticate(&response).contains(r#"error="invalid_token""#));
    assert!(g.backend.requests().is_empty());
}

#[tokio::test]
async fn a_token_of_a_revoked_refresh_family_is_refused() {
    let g = gateway().await;
    let revoked = g
        .app
        .revoke(
            ClientAuth::Public(&g.client_id),
            &[("token", g.tokens["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    let response = ping(g.mcp(Method::POST)).await;
    assert_eq!(response.status(), 401);
    assert!(www_authenticate(&response).contains(r#"error="invalid_token""#));
    assert!(g.backend.requests().is_empty());
}

#[tokio::test]
async fn a_token_without_the_required_scope_is_a_403_step_up() {
    let g = gateway_with(|c| {
        c.resources[0].scopes = vec!["mcp".into(), "mcp:read".into()];
        c.resources[0].default_scopes = vec!["mcp".into()];
    })
    .await;
    let client_id = g.app.register_public(REDIRECT, "Reader").await;
    let narrow = log_in_and_redeem_with(
        &g.app,
        &g.double,
        &client_id,
        &[("resource", RESOURCE), ("scope", "mcp:read")],
    )
    .await;
    assert_eq!(narrow["scope"], "mcp:read");
    let response = ping(g.with_token(Method::POST, narrow["access_token"].as_str().unwrap())).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        www_authenticate(&response),
        format!(
            r#"Bearer error="insufficient_scope", resource_metadata="{METADATA_URL}", scope="mcp""#
        )
    );
    assert!(g.backend.requests().is_empty());
    assert_eq!(
        ping(g.mcp(Method::POST)).await.status(),
        200,
        "the full token passes"
    );
}

#[tokio::test]
async fn a_refused_post_leaves_the_connection_usable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let g = gateway().await;
    let address = g.app.address.trim_start_matches("http://").to_owned();
    let mut host = tokio::net::TcpStream::connect(&address).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {GATEWAY_HOST}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (head, body) = request.split_at(request.len() - body.len());
    // The SDKs send their first request without a token, then retry on the same connection;
    // the body may arrive a moment after the head.
    for attempt in 0..2 {
        host.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        host.write_all(body.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&received).contains("\"error\"") {
            let n = host.read(&mut buffer).await.unwrap();
            assert!(n > 0, "attempt {attempt}: the connection was closed");
            received.extend_from_slice(&buffer[..n]);
        }
        let text = String::from_utf8_lossy(&received);
        assert!(
            text.starts_with("HTTP/1.1 401"),
            "attempt {attempt}: {text}"
        );
        assert!(
            !text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_grant_revoked_on_another_instance_is_refused_on_the_next_request() {
    // Two replicas on one database: the one that serves the request never saw the revocation.
    let g = gateway().await;
    let second = g.second_instance().await;
    let access = g.access();
    for instance in [&g.app, &second] {
        assert_eq!(
            ping(g.on(instance, Method::POST, &access)).await.status(),
            200,
            "both instances let the token through before"
        );
    }
    let sub = crate::gateway::jwt_claims(&access)["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let grants: Value = second
        .admin(Method::GET, &format!("/admin/v1/users/{sub}/grants"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grant_id = grants["grants"][0]["grant_id"].as_str().unwrap().to_owned();
    let revoked = second
        .admin(Method::POST, &format!("/admin/v1/grants/{grant_id}/revoke"))
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    for instance in [&g.app, &second] {
        let response = ping(g.on(instance, Method::POST, &access)).await;
        assert_eq!(response.status(), 401);
        assert_eq!(
            www_authenticate(&response),
            invalid_token_challenge("the authorization has been revoked")
        );
    }
    assert_eq!(
        g.backend.requests().len(),
        2,
        "only the requests before the revocation"
    );
}

#[tokio::test]
async fn a_token_let_through_before_is_checked_again_on_every_request() {
    // The gateway remembers that a token's signature verified; its lifetime, its grant, its
    // client and the deny-list are still checked each time.
    let expired = gateway().await;
    assert_eq!(ping(expired.mcp(Method::POST)).await.status(), 200);
    expired.app.clock.advance(3601);
    let response = ping(expired.mcp(Method::POST)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        www_authenticate(&response),
        invalid_token_challenge("the token has expired")
    );

    let g = gateway().await;
    assert_eq!(ping(g.mcp(Method::POST)).await.status(), 200);
    let revoked = g
        .app
        .revoke(
            ClientAuth::Public(&g.client_id),
            &[
                ("token", g.access().as_str()),
                ("token_type_hint", "access_token"),
            ],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    let response = ping(g.mcp(Method::POST)).await;
    assert_eq!(response.status(), 401, "a deny-listed access token");
    assert!(www_authenticate(&response).contains(r#"error="invalid_token""#));

    let g = gateway().await;
    assert_eq!(ping(g.mcp(Method::POST)).await.status(), 200);
    let disabled = g
        .app
        .admin_update_client(&g.client_id, &json!({"disabled": true}))
        .await;
    assert_eq!(disabled.status(), 200);
    let response = ping(g.mcp(Method::POST)).await;
    assert_eq!(response.status(), 401, "a disabled client");
    assert!(www_authenticate(&response).contains(r#"error="invalid_token""#));
    assert_eq!(g.backend.requests().len(), 1);
}
