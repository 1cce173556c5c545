//! DCR throughput: registrations per second against a real server on loopback with an SQLite
//! database, over HTTP, like hosts register.
//!
//!     cargo bench --bench registration [-- TOTAL CONCURRENCY]
//!
//! Every registration is distinct (no de-duplication) and the per-source limit is lifted, so
//! each request validates, hashes two fresh secrets and inserts a client in one transaction.

use std::sync::Arc;
use std::time::Instant;

use authbridge::app::Application;
use authbridge::clock::SystemClock;
use authbridge::config::{Config, Secret};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);

    // Server errors, if any, are printed with their cause.
    tracing_subscriber::fmt()
        .with_env_filter("error")
        .with_writer(std::io::stderr)
        .init();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.server.listen = "127.0.0.1:0".into();
    config.database.url = Some(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    ));
    config.encryption.key = Some(Secret::new(authbridge::vault::generate_key()));
    config.registration.per_source_limit = u32::MAX;
    config.registration.max_dynamic_clients = u64::MAX;
    let app = Application::build(config, Arc::new(SystemClock))
        .await
        .expect("server starts");
    let url = format!("http://{}/register", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        stopped.await.ok();
    }));

    let http = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url, next) = (http.clone(), url.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let body = serde_json::json!({
                        "client_name": format!("bench {i}"),
                        "redirect_uris": [format!("https://bench.example/cb/{i}")],
                        "token_endpoint_auth_method": if i % 2 == 0 { "none" } else { "client_secret_post" },
                    });
                    let response = http.post(&url).json(&body).send().await.expect("request sent");
                    let status = response.status();
                    assert_eq!(status, 201, "{}", response.text().await.unwrap_or_default());
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "registration: {total} registrations, concurrency {concurrency}, {:.2} s, {:.0} registrations/s (SQLite)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    stop.send(()).ok();
    server.await.unwrap().unwrap();
}
