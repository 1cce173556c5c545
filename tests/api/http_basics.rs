use crate::helpers::spawn_app;

async fn assert_json_error(response: reqwest::Response, status: u16, error: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_path_is_a_json_404() {
    let app = spawn_app().await;
    assert_json_error(app.get("/nope").await, 404, "not_found").await;
}

#[tokio::test]
async fn wrong_method_is_a_json_405() {
    let app = spawn_app().await;
    let response = app.http.post(app.url("/jwks.json")).send().await.unwrap();
    assert_json_error(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_or_without_a_length() {
    let app = spawn_app().await;
    let big = vec![b'a'; 65 * 1024];
    let declared = app
        .http
        .post(app.url("/healthz"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_json_error(declared, 413, "invalid_request").await;
    // A chunked body declares no length; it is cut off while being read.
    let (status, body) = post_chunked(&app.address, "/healthz", &big).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("\"error\":\"invalid_request\""), "{body}");
}

/// Sends a chunked POST over a raw connection and returns the status and body.
async fn post_chunked(address: &str, path: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(4096) {
        let sent = stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await;
        if sent.is_err()
            || stream.write_all(chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break; // the server may answer and close before the whole body is sent
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
    assert_eq!(app.get_json("/readyz").await["status"], "ready");
}

#[tokio::test]
async fn graceful_stop_completes() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let started = std::time::Instant::now();
    app.stop().await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
