//! What an outsider cannot do to the server itself: forge log lines, hold connections open
//! with a slow request, or reach a dev login or a weak webhook password on a deployment; and
//! browsers are told to stay on https.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authbridge::app::Application;
use authbridge::config::{Config, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::browser::{Browser, query_of};
use crate::helpers::{CapturedLog, TestDb, spawn_app_with, test_config};

/// A webhook password as `openssl rand -base64 24` makes one.
pub const STRONG_WEBHOOK_PASSWORD: &str = "q3Vx8Rk2TzP0mN7wLs4YbHc9JfGd1Ae6";

#[tokio::test]
async fn attacker_supplied_values_cannot_forge_log_lines() {
    // Every event the server logs, in the production text format.
    let (log, _guard) = CapturedLog::start(tracing::Level::INFO);

    let app = spawn_app_with(TestDb::new().await, |c| {
        c.upstream.ownerrez.webhook_user = Some("ownerrez".into());
        c.upstream.ownerrez.webhook_password = Some(Secret::new(STRONG_WEBHOOK_PASSWORD));
    })
    .await;
    let redirect = "https://claude.ai/api/mcp/auth_callback";
    let client_id = app.register_public(redirect, "Claude").await;
    let mut browser = Browser::new();
    let upstream = app
        .authorize_through_consent(&mut browser, &app.authorize_url(&client_id, redirect, &[]))
        .await;
    let state = query_of(&upstream)["state"].clone();
    let forged =
        "access_denied\n2030-01-01T00:00:00.000000Z  INFO FORGED-CALLBACK: admin logged in";
    let mut callback = url::Url::parse(&app.url("/upstream/callback")).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("state", &state)
        .append_pair("error", forged);
    let answer = browser.get(callback.as_str()).await;
    assert_eq!(answer.status(), 302, "the error goes back to the client");

    let webhook = app
        .http
        .post(app.url("/upstream/webhook"))
        .basic_auth("ownerrez", Some(STRONG_WEBHOOK_PASSWORD))
        .json(&serde_json::json!({"action": "x\r\nFORGED-WEBHOOK\u{2028}line"}))
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 200);
    let long = "a".repeat(50_000);
    let webhook = app
        .http
        .post(app.url("/upstream/webhook"))
        .basic_auth("ownerrez", Some(STRONG_WEBHOOK_PASSWORD))
        .json(&serde_json::json!({"action": long}))
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 200);

    let text = log.text();
    assert!(
        text.contains(r"access_denied\n2030-01-01"),
        "the value is logged, escaped: {text}"
    );
    assert!(text.contains(r"x\r\nFORGED-WEBHOOK\u{2028}line"), "{text}");
    for line in text.lines() {
        assert!(
            !line.starts_with("2030-01-01") && !line.starts_with("FORGED"),
            "a forged line: {line}"
        );
        assert!(!line.contains('\u{2028}'), "a raw line separator: {line}");
        assert!(
            line.len() < 2_000,
            "an unbounded field: {} bytes",
            line.len()
        );
    }
}

/// Starts a server with `adjust` applied; the start-up error, if any.
async fn start(adjust: impl FnOnce(&mut Config)) -> Result<(), String> {
    let db = TestDb::new().await;
    let mut config = test_config(&db);
    adjust(&mut config);
    let clock: Arc<dyn authbridge::clock::Clock> = Arc::new(authbridge::clock::SystemClock);
    Application::build(config, clock)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_dev_login_is_refused_on_a_non_loopback_listen_address() {
    // A loopback issuer does not make a server on every interface local.
    let error = start(|c| {
        c.server.listen = "0.0.0.0:0".into();
        c.server.issuer = Some("http://127.0.0.1:8080".into());
    })
    .await
    .expect_err("the dev provider on 0.0.0.0");
    assert!(error.contains("upstream.provider"), "{error}");
    assert!(error.contains("server.listen"), "{error}");

    start(|c| {
        c.server.listen = "0.0.0.0:0".into();
        c.server.issuer = Some("http://127.0.0.1:8080".into());
        c.upstream.force_dev = true;
    })
    .await
    .expect("explicitly forced");
    start(|c| c.server.listen = "[::1]:0".into())
        .await
        .expect("IPv6 loopback");
}

#[tokio::test]
async fn a_weak_webhook_password_stops_start_up_naming_the_key() {
    let weak = [
        "hook-secret",
        "aaaaaaaaaaaaaaaaaaaaaaaa",
        "passwordpassword",
    ];
    for password in weak {
        let error = start(|c| {
            c.upstream.ownerrez.webhook_user = Some("ownerrez".into());
            c.upstream.ownerrez.webhook_password = Some(Secret::new(password));
        })
        .await
        .expect_err(password);
        assert!(
            error.contains("upstream.ownerrez.webhook_password"),
            "{password}: {error}"
        );
    }
    // The same rule for a password read from a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("webhook-password");
    std::fs::write(&file, "hook-secret\n").unwrap();
    let error = start(|c| {
        c.upstream.ownerrez.webhook_user = Some("ownerrez".into());
        c.upstream.ownerrez.webhook_password_file = Some(file.clone());
    })
    .await
    .expect_err("a weak password in a file");
    assert!(
        error.contains("upstream.ownerrez.webhook_password"),
        "{error}"
    );

    start(|c| {
        c.upstream.ownerrez.webhook_user = Some("ownerrez".into());
        c.upstream.ownerrez.webhook_password = Some(Secret::new(STRONG_WEBHOOK_PASSWORD));
    })
    .await
    .expect("a strong password");
}

#[tokio::test]
async fn every_response_carries_hsts_when_the_issuer_is_https() {
    let app = spawn_app_with(TestDb::new().await, |c| {
        c.server.issuer = Some("https://auth.example.test".into());
        c.upstream.force_dev = true;
    })
    .await;
    let responses = [
        app.get("/healthz").await,
        app.get("/.well-known/oauth-authorization-server").await,
        app.get("/authorize").await,
        app.get("/no-such-page").await,
        app.http
            .post(app.url("/token"))
            .form(&[("grant_type", "nope")])
            .send()
            .await
            .unwrap(),
    ];
    for response in responses {
        let hsts = response
            .headers()
            .get("strict-transport-security")
            .unwrap_or_else(|| panic!("no HSTS on {} {}", response.status(), response.url()));
        assert_eq!(hsts, "max-age=31536000", "{}", response.url());
    }

    let plain = spawn_app_with(TestDb::new().await, |_| {}).await;
    let response = plain.get("/healthz").await;
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none(),
        "never on an http issuer (RFC 6797 §7.2)"
    );
}

/// A raw connection to the server.
async fn connect(address: &str) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection, for at most `limit`; what it sent, and
/// whether it closed.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> (String, bool) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&received).into_owned(), true);
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn a_half_sent_request_head_is_cut_off_after_the_header_timeout() {
    let app = spawn_app_with(TestDb::new().await, |c| {
        c.server.header_read_timeout_secs = 1;
    })
    .await;
    let mut stream = connect(&app.address).await;
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "the connection is still open after 5 s");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );

    // An idle kept-alive connection is closed after the same time.
    let mut idle = connect(&app.address).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle connection is still open after 5 s");

    // A prompt client is not affected.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn a_slow_request_body_is_answered_408_after_the_body_timeout() {
    let app = spawn_app_with(TestDb::new().await, |c| {
        c.server.body_read_timeout_secs = 1;
    })
    .await;
    let mut stream = connect(&app.address).await;
    let started = Instant::now();
    stream
        .write_all(
            b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
        )
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("invalid_request"), "{answer}");
    assert!(closed, "the connection is closed after a 408");
    assert!(started.elapsed() < Duration::from_secs(3));
}
