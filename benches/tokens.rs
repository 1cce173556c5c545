//! Token endpoint throughput and the server's CPU time per issued token.
//!
//!     cargo bench --bench tokens [-- LOGINS CONCURRENCY]
//!
//! Starts the release binary as its own process (development mode, SQLite in a temporary
//! directory), logs LOGINS users in through the real login flow (authorize, consent, dev login,
//! callback), then measures, each at CONCURRENCY requests in flight:
//! - the `authorization_code` grant: LOGINS code redemptions;
//! - the `refresh_token` grant: LOGINS rotations.
//!
//! CPU time is the server process's user + system time (from /proc) over each phase, divided by
//! the tokens issued; the load generator runs in this process and is not counted.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{REDIRECT, VERIFIER, cpu_time, login};

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

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_authbridge"));
    let child = Command::new(&binary)
        .arg("serve")
        .env("AUTHBRIDGE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("AUTHBRIDGE_DATA_DIR", dir.path())
        .env("AUTHBRIDGE_LOG__LEVEL", "warn")
        .env("AUTHBRIDGE_REGISTRATION__PER_SOURCE_LIMIT", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// Runs `forms` against /token with `concurrency` in flight; returns the responses.
async fn run(
    http: &reqwest::Client,
    base: &str,
    forms: Vec<Vec<(String, String)>>,
    concurrency: usize,
) -> Vec<Value> {
    let forms = Arc::new(std::sync::Mutex::new(
        forms.into_iter().enumerate().collect::<Vec<_>>(),
    ));
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, url, forms, results) = (
            http.clone(),
            format!("{base}/token"),
            forms.clone(),
            results.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let Some((i, form)) = forms.lock().unwrap().pop() else {
                    break;
                };
                let response = http.post(&url).form(&form).send().await.unwrap();
                assert_eq!(response.status(), 200);
                let body: Value = response.json().await.unwrap();
                results.lock().unwrap().push((i, body));
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let mut results = std::mem::take(&mut *results.lock().unwrap());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, body)| body).collect()
}

fn report(name: &str, count: usize, elapsed: Duration, cpu: Duration) {
    println!(
        "{name}: {count} tokens in {:.2} s = {:.0} tokens/s; server CPU {:.0} ms = {:.0} µs per token",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1000.0,
        cpu.as_secs_f64() * 1e6 / count as f64
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let logins: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let server = start_server();
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

    let mut codes = Vec::with_capacity(logins);
    for i in 0..logins {
        codes.push(login(&http, &server.base, &client_id, &format!("user{i}")).await);
    }

    let pid = server.child.id();
    let forms: Vec<Vec<(String, String)>> = codes
        .iter()
        .map(|code| {
            vec![
                ("grant_type".into(), "authorization_code".into()),
                ("client_id".into(), client_id.clone()),
                ("code".into(), code.clone()),
                ("redirect_uri".into(), REDIRECT.into()),
                ("code_verifier".into(), VERIFIER.into()),
            ]
        })
        .collect();
    let (cpu_before, started) = (cpu_time(pid), Instant::now());
    let tokens = run(&http, &server.base, forms, concurrency).await;
    report(
        "authorization_code",
        logins,
        started.elapsed(),
        cpu_time(pid) - cpu_before,
    );

    let forms: Vec<Vec<(String, String)>> = tokens
        .iter()
        .map(|t| {
            vec![
                ("grant_type".into(), "refresh_token".into()),
                ("client_id".into(), client_id.clone()),
                (
                    "refresh_token".into(),
                    t["refresh_token"].as_str().unwrap().into(),
                ),
            ]
        })
        .collect();
    let (cpu_before, started) = (cpu_time(pid), Instant::now());
    run(&http, &server.base, forms, concurrency).await;
    report(
        "refresh_token",
        logins,
        started.elapsed(),
        cpu_time(pid) - cpu_before,
    );
}
