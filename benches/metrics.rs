//! The cost of counting one HTTP request (the route template found by matching, the counter
//! and the latency histogram), on one thread, against this server's real route templates.
//!
//!     cargo bench --bench metrics [-- REQUESTS]

use std::time::{Duration, Instant};

use authbridge::monitoring::{Metrics, RouteTable};

/// The templates of a server with the dev upstream and metrics behind a token: the OpenAPI
/// operations and the pages.
const TEMPLATES: &[&str] = &[
    "/.well-known/oauth-authorization-server",
    "/jwks.json",
    "/healthz",
    "/readyz",
    "/register",
    "/register/{client_id}",
    "/admin/v1/clients",
    "/admin/v1/clients/{client_id}",
    "/admin/v1/clients/{client_id}/resource-server",
    "/admin/v1/clients/{client_id}/revoke-tokens",
    "/admin/v1/clients/{client_id}/secret",
    "/admin/v1/audit",
    "/admin/v1/users",
    "/admin/v1/users/{user_id}/grants",
    "/admin/v1/grants/{grant_id}/revoke",
    "/admin/v1/keys",
    "/admin/v1/keys/rotate",
    "/token",
    "/revoke",
    "/introspect",
    "/authorize",
    "/authorize/consent",
    "/upstream/callback",
    "/upstream/webhook",
    "/openapi.json",
    "/docs",
    "/docs/*",
    "/dev/upstream/authorize",
    "/metrics",
];

/// What hosts mostly call, one unknown path among them.
const PATHS: &[(&str, &str, u16)] = &[
    ("/token", "POST", 200),
    ("/token", "POST", 400),
    ("/authorize", "GET", 200),
    ("/register", "POST", 201),
    ("/register/client_AbCdEfGhIjKlMnOpQrStUv", "GET", 200),
    ("/.well-known/oauth-authorization-server", "GET", 200),
    ("/jwks.json", "GET", 200),
    ("/wp-login.php", "GET", 404),
];

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let requests: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let metrics = Metrics::new(RouteTable::new(TEMPLATES.iter().map(|t| t.to_string())));
    let started = Instant::now();
    for i in 0..requests {
        let (path, method, status) = PATHS[i % PATHS.len()];
        let elapsed = Duration::from_micros((i % 5000) as u64);
        metrics.http.record(path, method, status, elapsed);
        // The server folds samples into the histograms every 5 s.
        if i % 100_000 == 0 {
            metrics.run_upkeep();
        }
    }
    let took = started.elapsed();
    println!(
        "{requests} requests counted in {:.3} s: {:.0} ns per request",
        took.as_secs_f64(),
        took.as_nanos() as f64 / requests as f64
    );
}
