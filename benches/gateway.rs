//! Gateway mode: the latency and server CPU time a proxied MCP request costs over calling the
//! backend directly.
//!
//!     cargo bench --bench gateway [-- REQUESTS]
//!
//! Starts a trivial MCP backend in this process (a fixed JSON-RPC answer, no work), then the
//! release binary as its own process (development mode, SQLite in a temporary directory) with one
//! gateway resource in front of that backend, logs a user in through the real flow, and sends
//! REQUESTS `tools/list` POSTs one at a time (default 5,000), first straight to the backend,
//! then through the gateway, each after a warm-up. Reported: latency percentiles of both, the
//! added latency (gateway minus direct, at each percentile), and the server's CPU time (user +
//! system from /proc) per proxied request, logging at `info` (one line per request) to
//! /dev/null. The backend and the load generator run in this process and are not counted in the
//! CPU figure.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use poem::{EndpointExt, Response};
use serde_json::Value;

mod common;
use common::{REDIRECT, VERIFIER, cpu_time, login};

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
const WARM_UP: usize = 500;

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A backend that answers every request at once with the same JSON-RPC result.
fn start_backend() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let endpoint = poem::endpoint::make_sync(|_| {
        Response::builder()
            .content_type("application/json")
            .header("mcp-session-id", "bench")
            .body(r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#)
    })
    .map_to_response()
    .boxed();
    let options = authbridge::http::server::ServeOptions {
        header_read_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(1),
    };
    tokio::spawn(authbridge::http::server::serve(
        listener,
        endpoint,
        options,
        std::future::pending(),
    ));
    format!("http://{address}/mcp")
}

fn start_server(backend: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("authbridge.toml");
    std::fs::write(
        &config,
        format!(
            "[[resources]]\nuri = \"{base}/mcp\"\nname = \"Bench\"\nscopes = [\"mcp\"]\ndefault_scopes = [\"mcp\"]\nproxy = {{ upstream_url = \"{backend}\" }}\n"
        ),
    )
    .unwrap();
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_authbridge"));
    let child = Command::new(&binary)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("AUTHBRIDGE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("AUTHBRIDGE_DATA_DIR", dir.path())
        // The gateway's one line per request is part of its cost.
        .env("AUTHBRIDGE_LOG__LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    Server {
        child,
        base,
        _dir: dir,
    }
}

/// Sends `count` POSTs one at a time; returns each one's latency.
async fn measure(http: &reqwest::Client, url: &str, token: &str, count: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let response = http
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(BODY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        latencies.push(started.elapsed());
    }
    latencies.sort();
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let requests: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let backend = start_backend();
    let server = start_server(&backend);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for _ in 0..200 {
        if http
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let registered: Value = http
        .post(format!("{}/register", server.base))
        .json(
            &serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let code = login(&http, &server.base, &client_id, "bench-user").await;
    let tokens: Value = http
        .post(format!("{}/token", server.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"].as_str().expect("an access token");
    let gateway = format!("{}/mcp", server.base);

    measure(&http, &backend, token, WARM_UP).await;
    let direct = measure(&http, &backend, token, requests).await;
    measure(&http, &gateway, token, WARM_UP).await;
    let pid = server.child.id();
    let (cpu_before, started) = (cpu_time(pid), Instant::now());
    let proxied = measure(&http, &gateway, token, requests).await;
    let (cpu, elapsed) = (cpu_time(pid) - cpu_before, started.elapsed());

    println!("{requests} requests, one at a time, after {WARM_UP} to warm up");
    for (name, p) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
        let (d, g) = (percentile(&direct, p), percentile(&proxied, p));
        println!(
            "{name}: direct {:.0} µs, through the gateway {:.0} µs, added {:.0} µs",
            micros(d),
            micros(g),
            micros(g) - micros(d)
        );
    }
    println!(
        "server CPU: {:.0} ms over {:.2} s = {:.0} µs per proxied request",
        cpu.as_secs_f64() * 1000.0,
        elapsed.as_secs_f64(),
        micros(cpu) / requests as f64
    );
}
