//! The gateway's log (issue 12, point 6): one line per proxied request with the resource, the
//! method, the MCP session, the status and the backend's latency, and never a token or a
//! cookie, at any level, whichever way the request went (JSON, an SSE stream, a DELETE, an
//! upstream refresh on the way, a refusal).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::gateway::{GATEWAY_HOST, gateway};
use crate::helpers::CapturedLog;
use crate::ownerrez_double::random_token;
use crate::scene::RESOURCE;

/// The message of the gateway's line per request.
const GATEWAY_LINE: &str = "gateway request";

/// One request as its log line must describe it.
struct Expected {
    session: &'static str,
    method: &'static str,
    status: u16,
    /// Whether the request reached the backend (a refusal never does).
    proxied: bool,
}

/// The lines of `log` with the gateway's message, once `count` of them are there (the line
/// is written before the answer leaves; the bound only keeps a missing line from hanging).
async fn gateway_lines(log: &CapturedLog, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = log.lines_with(GATEWAY_LINE);
        if lines.len() >= count || Instant::now() >= deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The value of `field=` in a text-format line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    line[start..].split(' ').next()
}

/// The parts of a token a log could carry: the whole, and for a JWT its payload and its
/// signature (the header is the same for every token of a key, and a cut-off value would still
/// give one of these away).
fn secret_parts(token: &str) -> Vec<String> {
    let mut parts = vec![token.to_owned()];
    let segments: Vec<&str> = token.split('.').collect();
    if segments.len() == 3 {
        parts.extend(segments[1..].iter().map(|s| s.to_string()));
    }
    parts
}

#[tokio::test]
async fn one_line_per_proxied_request_naming_no_token_or_cookie() {
    // Everything, down to TRACE: an operator debugging with a verbose filter gets no secret.
    let (log, _guard) = CapturedLog::start(tracing::Level::TRACE);
    let g = gateway().await;
    g.backend.serve_get_stream();
    let cookie_value = random_token("ck_");
    let cookie = format!("session={cookie_value}");
    let first_access = g.access();
    let on_gateway = |method: Method, session: &str| {
        g.anonymous(method)
            .header("mcp-session-id", session)
            .header("cookie", &cookie)
    };

    let post = on_gateway(Method::POST, "log-post")
        .bearer_auth(&first_access)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(post.headers()["content-type"], "application/json");

    // Our token refreshed after OwnerRez's expired: the next request refreshes upstream first.
    let refreshed = g.refresh_after_upstream_expiry().await;
    let access = refreshed["access_token"].as_str().unwrap().to_owned();
    let post = on_gateway(Method::POST, "log-post-refreshing")
        .bearer_auth(&access)
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(g.double.count("refresh_token"), 1, "an upstream refresh");

    let mut stream = on_gateway(Method::GET, "log-get")
        .bearer_auth(&access)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let event = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .expect("the backend's event is relayed")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&event).contains("notifications/message"));
    drop(stream);

    let delete = on_gateway(Method::DELETE, "log-delete")
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);

    // A forged signature (the last character changed) and our token in the query string.
    let mut forged = access.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let refused = on_gateway(Method::POST, "log-refused")
        .bearer_auth(&forged)
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let in_query = g
        .app
        .http
        .post(g.app.url(&format!("/mcp?access_token={access}")))
        .header("host", GATEWAY_HOST)
        .header("mcp-session-id", "log-query")
        .header("cookie", &cookie)
        .json(&json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), 401);

    let expected = [
        Expected {
            session: "log-post",
            method: "POST",
            status: 200,
            proxied: true,
        },
        Expected {
            session: "log-post-refreshing",
            method: "POST",
            status: 200,
            proxied: true,
        },
        Expected {
            session: "log-get",
            method: "GET",
            status: 200,
            proxied: true,
        },
        Expected {
            session: "log-delete",
            method: "DELETE",
            status: 204,
            proxied: true,
        },
        Expected {
            session: "log-refused",
            method: "POST",
            status: 401,
            proxied: false,
        },
        Expected {
            session: "log-query",
            method: "POST",
            status: 401,
            proxied: false,
        },
    ];
    let lines = gateway_lines(&log, expected.len()).await;
    assert_eq!(
        lines.len(),
        expected.len(),
        "one line per proxied request:\n{}",
        lines.join("\n")
    );
    for request in &expected {
        let mine: Vec<&String> = lines
            .iter()
            .filter(|line| field(line, "session") == Some(request.session))
            .collect();
        assert_eq!(mine.len(), 1, "{}: {lines:#?}", request.session);
        let line = mine[0];
        assert_eq!(field(line, "resource"), Some(RESOURCE), "{line}");
        assert_eq!(field(line, "method"), Some(request.method), "{line}");
        assert_eq!(
            field(line, "status"),
            Some(request.status.to_string().as_str()),
            "{line}"
        );
        let backend = field(line, "backend_micros");
        if request.proxied {
            assert!(
                backend.is_some_and(|micros| micros.parse::<u64>().is_ok()),
                "the backend's latency: {line}"
            );
        } else {
            assert_eq!(backend, None, "a refusal never reached the backend: {line}");
        }
        assert!(
            field(line, "micros").is_some_and(|micros| micros.parse::<u64>().is_ok()),
            "{line}"
        );
    }

    let text = log.text();
    assert!(
        text.contains("upstream token refreshed"),
        "the capture sees the server's own lines: {text}"
    );
    let refresh_token =
        |body: &serde_json::Value| body["refresh_token"].as_str().unwrap().to_owned();
    let mut secrets = vec![
        ("our first access token", first_access.clone()),
        ("our refreshed access token", access.clone()),
        ("the forged token", forged.clone()),
        ("our first refresh token", refresh_token(&g.tokens)),
        ("our refreshed refresh token", refresh_token(&refreshed)),
        ("a cookie value", cookie_value.clone()),
    ];
    let upstream = g
        .double
        .issued_access_tokens()
        .into_iter()
        .map(|t| ("an OwnerRez access token", t))
        .chain(
            g.double
                .issued_refresh_tokens()
                .into_iter()
                .map(|t| ("an OwnerRez refresh token", t)),
        )
        .collect::<Vec<_>>();
    assert_eq!(
        upstream.len(),
        4,
        "the first and the refreshed of each: {upstream:?}"
    );
    secrets.extend(upstream);
    for (name, secret) in &secrets {
        for part in secret_parts(secret) {
            assert!(
                !text.contains(&part),
                "{name} is in the log:\n{}",
                text.lines()
                    .filter(|line| line.contains(&part))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}
