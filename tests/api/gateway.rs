//! Gateway mode: authbridge serves the MCP endpoint and forwards to an unchanged MCP server
//! (the [`McpBackend`] double) with the user's OwnerRez token. Here: the metadata, the
//! transport proxied faithfully, and what never reaches the backend.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use authbridge::config::{Config, ProxyConfig};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDb, spawn_app_on};
use crate::mcp_backend::{McpBackend, SESSION_ID};
use crate::ownerrez_double::OwnerRezDouble;
use crate::scene::{
    REDIRECT, RESOURCE, in_front_of_the_double, log_in_and_redeem_with, spawn_with_double_and,
};

/// The `Host` of the gateway resource (RESOURCE is `http://localhost:3000/mcp`).
pub const GATEWAY_HOST: &str = "localhost:3000";
pub const METADATA_URL: &str = "http://localhost:3000/.well-known/oauth-protected-resource/mcp";
pub const SUBJECT_HEADER: &str = "x-authbridge-sub";
pub const CLIENT_ID_HEADER: &str = "x-authbridge-client-id";
pub const ALLOWED_ORIGIN: &str = "https://inspector.example";

pub struct Gateway {
    pub app: TestApp,
    pub double: OwnerRezDouble,
    pub backend: McpBackend,
    pub client_id: String,
    pub tokens: Value,
}

/// A server in front of the OwnerRez double whose resource RESOURCE is a gateway to a fresh
/// [`McpBackend`]; a user has logged in through a public client.
pub async fn gateway() -> Gateway {
    gateway_with(|_| {}).await
}

pub async fn gateway_with(adjust: impl FnOnce(&mut Config)) -> Gateway {
    let backend = McpBackend::start();
    let upstream_url = backend.url();
    let (app, double) = spawn_with_double_and(move |c| {
        c.resources[0].proxy = Some(proxy_config(upstream_url));
        adjust(c);
    })
    .await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    let tokens = log_in_and_redeem_with(&app, &double, &client_id, &[("resource", RESOURCE)]).await;
    Gateway {
        app,
        double,
        backend,
        client_id,
        tokens,
    }
}

/// The gateway resource's `proxy` table in front of the backend at `upstream_url`.
fn proxy_config(upstream_url: String) -> ProxyConfig {
    ProxyConfig {
        upstream_url,
        response_timeout_ms: 5_000,
        max_request_bytes: 4096,
        subject_header: Some(SUBJECT_HEADER.into()),
        client_id_header: Some(CLIENT_ID_HEADER.into()),
        allowed_origins: vec![ALLOWED_ORIGIN.into()],
        forward_headers: vec!["X-Trace-Id".into()],
        ..ProxyConfig::default()
    }
}

impl Gateway {
    /// A second instance of the same gateway on the same database (same issuer, clock, double
    /// and backend), as a second replica behind a load balancer.
    pub async fn second_instance(&self) -> TestApp {
        let db = TestDb {
            url: self.app.db.url.clone(),
            dir: tempfile::tempdir().unwrap(),
        };
        let (issuer, upstream, upstream_url) = (
            self.app.issuer.clone(),
            self.double.config(),
            self.backend.url(),
        );
        spawn_app_on(db, self.app.clock.clone(), move |c| {
            c.server.issuer = Some(issuer);
            in_front_of_the_double(c, upstream);
            c.resources[0].proxy = Some(proxy_config(upstream_url));
        })
        .await
    }

    /// A request to the MCP endpoint of `instance` (this gateway's or a second one) with
    /// `token`.
    pub fn on(&self, instance: &TestApp, method: Method, token: &str) -> reqwest::RequestBuilder {
        instance
            .http
            .request(method, instance.url("/mcp"))
            .header("host", GATEWAY_HOST)
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(token)
    }

    pub fn access(&self) -> String {
        self.tokens["access_token"].as_str().unwrap().to_owned()
    }

    /// A request to the gateway's MCP endpoint, without a token.
    pub fn anonymous(&self, method: Method) -> reqwest::RequestBuilder {
        self.app
            .http
            .request(method, self.app.url("/mcp"))
            .header("host", GATEWAY_HOST)
            .header("accept", "application/json, text/event-stream")
    }

    /// A request to the gateway's MCP endpoint with `token`.
    pub fn with_token(&self, method: Method, token: &str) -> reqwest::RequestBuilder {
        self.anonymous(method).bearer_auth(token)
    }

    /// A request with the user's access token.
    pub fn mcp(&self, method: Method) -> reqwest::RequestBuilder {
        self.with_token(method, &self.access())
    }

    /// POSTs a JSON-RPC request with the user's token.
    pub async fn call(&self, method: &str) -> reqwest::Response {
        self.mcp(Method::POST)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method}))
            .send()
            .await
            .unwrap()
    }

    /// The OwnerRez access token the backend received on its last request.
    pub fn last_backend_bearer(&self) -> String {
        let requests = self.backend.requests();
        let (last, _) = requests.last().expect("the backend was called");
        last.bearer_token().unwrap().to_owned()
    }
}

#[tokio::test]
async fn each_gateway_resource_publishes_protected_resource_metadata() {
    let g = gateway().await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let response = g
            .app
            .http
            .get(g.app.url(path))
            .header("host", GATEWAY_HOST)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let document: Value = response.json().await.unwrap();
        assert_eq!(document["resource"], RESOURCE, "{path}");
        assert_eq!(document["authorization_servers"], json!([g.app.issuer]));
        assert_eq!(document["scopes_supported"], json!(["mcp"]));
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    }
    // Another Host is the authorization server's, which has no such document.
    let elsewhere = g.app.get("/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(elsewhere.status(), 404);
    assert!(g.backend.requests().is_empty());
}

#[tokio::test]
async fn a_json_answer_comes_back_with_the_transport_headers_both_ways() {
    let g = gateway().await;
    let response = g
        .mcp(Method::POST)
        .header("mcp-session-id", "host-session")
        .header("mcp-protocol-version", "2025-06-18")
        .header("x-trace-id", "trace-1")
        .header("cookie", "session=ours")
        .header("x-forwarded-for", "10.0.0.1")
        .header(SUBJECT_HEADER, "someone-else")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["mcp-session-id"], SESSION_ID);
    assert_eq!(headers["mcp-protocol-version"], "2025-06-18");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers.get("set-cookie").is_none(),
        "backend cookies stay behind"
    );
    assert!(
        headers.get("x-backend-secret").is_none(),
        "only allowed headers"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 7);

    let requests = g.backend.requests();
    assert_eq!(requests.len(), 1);
    let (sent, body) = &requests[0];
    let upstream = sent.bearer_token().unwrap();
    assert_ne!(upstream, g.access(), "our token is never forwarded");
    assert!(g.double.is_active(upstream), "the user's OwnerRez token");
    assert_eq!(sent.header("mcp-session-id"), Some("host-session"));
    assert_eq!(sent.header("mcp-protocol-version"), Some("2025-06-18"));
    assert_eq!(
        sent.header("accept"),
        Some("application/json, text/event-stream")
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("x-trace-id"), Some("trace-1"));
    assert_eq!(sent.header("cookie"), None, "cookies are never forwarded");
    assert_eq!(sent.header("x-forwarded-for"), None);
    let sub = jwt_claims(&g.access())["sub"].as_str().unwrap().to_owned();
    assert_eq!(
        sent.header(SUBJECT_HEADER),
        Some(sub.as_str()),
        "ours, not the host's"
    );
    assert_eq!(sent.header(CLIENT_ID_HEADER), Some(g.client_id.as_str()));
    assert_eq!(
        serde_json::from_slice::<Value>(body).unwrap()["method"],
        "tools/list"
    );
    let everything = format!("{:?}", sent.headers);
    assert!(
        !everything.contains(&g.access()),
        "our token appears nowhere"
    );
}

/// The claims of a JWT, unverified.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[tokio::test]
async fn an_sse_answer_is_streamed_event_by_event() {
    let g = gateway().await;
    let mut response = g.call("stream").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["mcp-session-id"], SESSION_ID);
    // The backend holds its second event until released: the first must arrive before.
    let first = tokio::time::timeout(Duration::from_secs(5), response.chunk())
        .await
        .expect("the first event arrives while the backend still holds the second")
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&first);
    assert!(first.contains("notifications/progress"), "{first}");
    assert!(!first.contains("result"), "{first}");
    g.backend.release();
    let rest = tokio::time::timeout(Duration::from_secs(5), response.text())
        .await
        .unwrap()
        .unwrap();
    assert!(rest.contains("\"result\""), "{rest}");
}

#[tokio::test]
async fn the_get_stream_is_relayed_and_closed_when_the_host_leaves() {
    let g = gateway().await;
    let refused = g.mcp(Method::GET).send().await.unwrap();
    assert_eq!(refused.status(), 405, "the backend's 405 passes through");
    assert_eq!(refused.headers()["allow"], "POST, DELETE");

    g.backend.serve_get_stream();
    // A raw socket, so that "the host disconnects" is a closed connection.
    let address = g.app.address.trim_start_matches("http://").to_owned();
    let mut host = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "GET /mcp HTTP/1.1\r\nHost: {GATEWAY_HOST}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\nLast-Event-ID: g0\r\nMcp-Session-Id: {SESSION_ID}\r\n\r\n",
        g.access()
    );
    host.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let read_event = async {
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&received).contains("notifications/message") {
            let n = host.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the gateway closed the stream");
            received.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read_event)
        .await
        .expect("the backend's event is relayed at once");
    let text = String::from_utf8_lossy(&received).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{text}"
    );
    assert!(
        text.contains("\"resumed_after\":\"g0\""),
        "Last-Event-ID reached the backend: {text}"
    );
    assert_eq!(g.backend.open_streams(), 1);
    drop(host);
    let closed = async {
        while g.backend.open_streams() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the backend's stream is closed once the host disconnects");
}

#[tokio::test]
async fn delete_ends_the_session_at_the_backend() {
    let g = gateway().await;
    let response = g
        .mcp(Method::DELETE)
        .header("mcp-session-id", SESSION_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let requests = g.backend.requests();
    assert_eq!(requests[0].0.method, "DELETE");
    assert_eq!(requests[0].0.header("mcp-session-id"), Some(SESSION_ID));
}

#[tokio::test]
async fn request_bodies_are_bounded_and_other_methods_refused() {
    let g = gateway().await;
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"pad": "x".repeat(5000)}});
    let response = g.mcp(Method::POST).json(&big).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let put = g.mcp(Method::PUT).send().await.unwrap();
    assert_eq!(put.status(), 405);
    assert_eq!(put.headers()["allow"], "GET, POST, DELETE");
    assert!(
        g.backend.requests().is_empty(),
        "nothing reached the backend"
    );
}

#[tokio::test]
async fn origins_outside_the_allow_list_are_refused() {
    let g = gateway().await;
    let foreign = g
        .mcp(Method::POST)
        .header("origin", "http://evil.example")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert!(g.backend.requests().is_empty());
    for origin in [ALLOWED_ORIGIN, "http://localhost:3000"] {
        let allowed = g
            .mcp(Method::POST)
            .header("origin", origin)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), 200, "{origin}");
        assert_eq!(allowed.headers()["access-control-allow-origin"], origin);
    }
    let preflight = g
        .anonymous(Method::OPTIONS)
        .header("origin", ALLOWED_ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        ALLOWED_ORIGIN
    );
}

#[tokio::test]
async fn gateway_answers_carry_hsts_under_an_https_issuer() {
    let backend = McpBackend::start();
    let upstream_url = backend.url();
    let app = crate::helpers::spawn_app_with(crate::helpers::TestDb::new().await, move |c| {
        c.server.issuer = Some("https://auth.example".into());
        c.upstream.force_dev = true;
        c.resources[0].proxy = Some(ProxyConfig {
            upstream_url,
            ..ProxyConfig::default()
        });
    })
    .await;
    let refused = app
        .http
        .post(app.url("/mcp"))
        .header("host", GATEWAY_HOST)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert_eq!(refused.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn an_unreachable_backend_is_a_502() {
    let g = gateway_with(|c| {
        c.resources[0].proxy.as_mut().unwrap().upstream_url = "http://127.0.0.1:9/mcp".into();
    })
    .await;
    let response = g.call("ping").await;
    assert_eq!(response.status(), 502);
}

#[tokio::test]
async fn a_chunked_body_over_the_bound_is_refused_without_a_length() {
    let g = gateway().await;
    let address = g.app.address.trim_start_matches("http://").to_owned();
    let mut host = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {GATEWAY_HOST}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        g.access()
    );
    host.write_all(head.as_bytes()).await.unwrap();
    // 5 chunks of 1,000 bytes: past the 4,096-byte bound with no Content-Length to tell.
    let chunk = format!("3e8\r\n{}\r\n", "x".repeat(1000));
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    for _ in 0..5 {
        if host.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    host.write_all(b"0\r\n\r\n").await.ok();
    let read_answer = async {
        while !String::from_utf8_lossy(&received).contains("\r\n\r\n") {
            let n = host.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the gateway closed the connection without an answer");
            received.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read_answer)
        .await
        .expect("an answer");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        g.backend.requests().is_empty(),
        "nothing reached the backend"
    );
}
