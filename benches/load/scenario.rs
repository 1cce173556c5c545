//! One scenario on a freshly started server: the inputs it needs are prepared first (clients,
//! logins, tokens; not measured), then its operation runs with CONCURRENCY in flight for the
//! duration, and the server's CPU time over the measured phases is divided by the operations.
//! Scenarios whose operation consumes its input (a code, a token to revoke) alternate
//! preparing a batch and measuring it until the measured time reaches the duration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::flows::{ConfidentialClient, PublicClient, Target, Tokens};
use crate::server::{ADMIN_TOKEN, ServerProcess};
use crate::stats::{Op, Stats};
use crate::workers::{Measured, run_for, run_parallel};

/// Every scenario, in the order the suite runs them.
pub const SCENARIOS: [&str; 10] = [
    "register",
    "login",
    "code",
    "refresh",
    "exchange",
    "introspect",
    "metadata",
    "jwks",
    "gateway",
    "revoke",
];

/// What one scenario measured.
pub struct Outcome {
    /// The operation whose figures count.
    pub op: Op,
    pub stats: Arc<Stats>,
    pub measured: Measured,
    /// Anything else worth printing (the gateway's added latency).
    pub note: String,
}

/// The server under test as a scenario sees it.
struct Bench<'a> {
    server: &'a ServerProcess,
    target: Target,
    client: PublicClient,
    concurrency: usize,
    duration: Duration,
    stats: Arc<Stats>,
}

/// Runs `scenario` against the running `server`.
pub async fn run(
    server: &ServerProcess,
    scenario: &str,
    concurrency: usize,
    duration: Duration,
    backend: Option<&str>,
) -> Outcome {
    let target = server.target();
    let client = target
        .register("bench host", "https://bench.example/oauth/callback")
        .await
        .expect("the bench client registers");
    let bench = Bench {
        server,
        target,
        client,
        concurrency,
        duration,
        stats: Arc::new(Stats::default()),
    };
    let (op, measured, note) = match scenario {
        "register" => (Op::Register, bench.register().await, String::new()),
        "login" => (Op::Login, bench.login().await, String::new()),
        "code" => (Op::Redeem, bench.consuming(Op::Redeem).await, String::new()),
        "refresh" => (Op::Refresh, bench.refresh().await, String::new()),
        "exchange" | "introspect" => bench.with_resource_server(scenario).await,
        "metadata" => (
            Op::Metadata,
            bench
                .document(Op::Metadata, "/.well-known/oauth-authorization-server")
                .await,
            String::new(),
        ),
        "jwks" => (
            Op::Jwks,
            bench.document(Op::Jwks, "/jwks.json").await,
            String::new(),
        ),
        "gateway" => {
            let backend = backend.expect("the gateway scenario has a backend");
            let (measured, note) = bench.gateway(backend).await;
            (Op::Gateway, measured, note)
        }
        "revoke" => (Op::Revoke, bench.consuming(Op::Revoke).await, String::new()),
        other => panic!("unknown scenario {other}"),
    };
    Outcome {
        op,
        stats: bench.stats,
        measured,
        note,
    }
}

impl Bench<'_> {
    /// How many inputs one batch of a consuming scenario prepares.
    fn batch(&self) -> usize {
        (self.concurrency * 64).max(512)
    }

    /// `count` logged-in sessions of the bench client, prepared (not measured).
    async fn sessions(&self, target: &Target, count: usize) -> Vec<Tokens> {
        let codes = self.codes(target, count).await;
        let out = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
        let (target, client, sink) = (target.clone(), self.client.clone(), out.clone());
        let codes = Arc::new(codes);
        run_parallel(codes.len(), self.concurrency, move |i| {
            let (target, client, sink, codes) =
                (target.clone(), client.clone(), sink.clone(), codes.clone());
            async move {
                let tokens = target
                    .redeem(&client, &codes[i])
                    .await
                    .expect("a preparatory redemption");
                sink.lock().unwrap().push(tokens);
            }
        })
        .await;
        std::mem::take(&mut *out.lock().unwrap())
    }

    /// `count` authorization codes from whole logins, prepared (not measured).
    async fn codes(&self, target: &Target, count: usize) -> Vec<String> {
        let out = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
        let (target, client, sink) = (target.clone(), self.client.clone(), out.clone());
        run_parallel(count, self.concurrency, move |i| {
            let (target, client, sink) = (target.clone(), client.clone(), sink.clone());
            async move {
                let code = target
                    .login(&client, &format!("bench-u{}", i % 100))
                    .await
                    .expect("a preparatory login");
                sink.lock().unwrap().push(code);
            }
        })
        .await;
        std::mem::take(&mut *out.lock().unwrap())
    }

    async fn register(&self) -> Measured {
        let (target, stats) = (self.target.clone(), self.stats.clone());
        let mut measured = Measured::default();
        let run = run_for(self.duration, self.concurrency, move |_, i| {
            let (target, stats) = (target.clone(), stats.clone());
            async move {
                let started = Instant::now();
                let result = target
                    .register(
                        &format!("bench {i}"),
                        &format!("https://bench{i}.example/cb"),
                    )
                    .await;
                stats.record(Op::Register, &result, started.elapsed());
            }
        });
        measured.phase(self.server, run).await;
        measured
    }

    /// The whole browser flow and the code redemption that ends it.
    async fn login(&self) -> Measured {
        let (target, client, stats) =
            (self.target.clone(), self.client.clone(), self.stats.clone());
        let mut measured = Measured::default();
        let run = run_for(self.duration, self.concurrency, move |_, i| {
            let (target, client, stats) = (target.clone(), client.clone(), stats.clone());
            async move {
                let started = Instant::now();
                let result = match target.login(&client, &format!("bench-u{}", i % 100)).await {
                    Ok(code) => target.redeem(&client, &code).await.map(drop),
                    Err(failure) => Err(failure),
                };
                stats.record(Op::Login, &result, started.elapsed());
            }
        });
        measured.phase(self.server, run).await;
        measured
    }

    /// Operations that consume their input, code redemptions (`Op::Redeem`) or revocations
    /// (`Op::Revoke`) of refresh tokens: a batch of inputs is prepared (whole logins, and their
    /// redemptions for tokens), then consumed and measured, until the measured time reaches
    /// the duration.
    async fn consuming(&self, op: Op) -> Measured {
        let mut measured = Measured::default();
        while measured.elapsed < self.duration {
            let inputs = if op == Op::Redeem {
                self.codes(&self.target, self.batch()).await
            } else {
                let sessions = self.sessions(&self.target, self.batch()).await;
                sessions.into_iter().map(|t| t.refresh_token).collect()
            };
            let inputs = Arc::new(inputs);
            let (target, client, stats) =
                (self.target.clone(), self.client.clone(), self.stats.clone());
            let run = run_parallel(inputs.len(), self.concurrency, move |i| {
                let (target, client, stats, inputs) = (
                    target.clone(),
                    client.clone(),
                    stats.clone(),
                    inputs.clone(),
                );
                async move {
                    let started = Instant::now();
                    let result = if op == Op::Redeem {
                        target.redeem(&client, &inputs[i]).await.map(drop)
                    } else {
                        target.revoke(&client, &inputs[i]).await
                    };
                    stats.record(op, &result, started.elapsed());
                }
            });
            measured.phase(self.server, run).await;
        }
        measured
    }

    /// Each worker rotates its own session's refresh token, one request at a time, as a host
    /// does.
    async fn refresh(&self) -> Measured {
        let held: Vec<_> = self
            .sessions(&self.target, self.concurrency)
            .await
            .into_iter()
            .map(|t| tokio::sync::Mutex::new(t.refresh_token))
            .collect();
        let held = Arc::new(held);
        let (target, client, stats) =
            (self.target.clone(), self.client.clone(), self.stats.clone());
        let mut measured = Measured::default();
        let run = run_for(self.duration, self.concurrency, move |worker, _| {
            let (target, client, stats, held) =
                (target.clone(), client.clone(), stats.clone(), held.clone());
            async move {
                let mut token = held[worker].lock().await;
                let started = Instant::now();
                let result = target.refresh(&client, &token).await;
                stats.record(Op::Refresh, &result, started.elapsed());
                if let Ok(tokens) = result {
                    *token = tokens.refresh_token;
                }
            }
        });
        measured.phase(self.server, run).await;
        measured
    }

    /// Token exchange (RFC 8693) or introspection (RFC 7662) of 100 users' access tokens by
    /// the resource server.
    async fn with_resource_server(&self, scenario: &str) -> (Op, Measured, String) {
        let server = self
            .target
            .resource_server(ADMIN_TOKEN)
            .await
            .expect("the resource server client is created");
        let sessions = Arc::new(self.sessions(&self.target, 100).await);
        let op = if scenario == "exchange" {
            Op::Exchange
        } else {
            Op::Introspect
        };
        let (target, stats) = (self.target.clone(), self.stats.clone());
        let mut measured = Measured::default();
        let run = run_for(self.duration, self.concurrency, move |_, i| {
            let (target, stats, sessions, server) = (
                target.clone(),
                stats.clone(),
                sessions.clone(),
                server.clone(),
            );
            async move {
                let token = &sessions[i % sessions.len()].access_token;
                let started = Instant::now();
                let result = as_resource_server(&target, op, &server, token).await;
                stats.record(op, &result, started.elapsed());
            }
        });
        measured.phase(self.server, run).await;
        (op, measured, String::new())
    }

    /// GETs of a public document.
    async fn document(&self, op: Op, path: &'static str) -> Measured {
        let (target, stats) = (self.target.clone(), self.stats.clone());
        let mut measured = Measured::default();
        let run = run_for(self.duration, self.concurrency, move |_, _| {
            let (target, stats) = (target.clone(), stats.clone());
            async move {
                let started = Instant::now();
                let result = target.document(path).await;
                stats.record(op, &result, started.elapsed());
            }
        });
        measured.phase(self.server, run).await;
        measured
    }

    /// MCP requests straight to the backend, then through the gateway (only those are
    /// measured on the server); the note gives what the gateway adds at p50 and p99.
    async fn gateway(&self, backend: &str) -> (Measured, String) {
        let gateway = format!("{}/mcp", self.target.base());
        let target = self.target.for_resource(&gateway);
        let token = self.sessions(&target, 1).await.remove(0).access_token;
        let mut measured = Measured::default();
        for (op, url) in [(Op::Direct, backend.to_owned()), (Op::Gateway, gateway)] {
            let (target, stats, token) = (target.clone(), self.stats.clone(), token.clone());
            let url = Arc::new(url);
            let run = run_for(self.duration, self.concurrency, move |_, _| {
                let (target, stats, token, url) =
                    (target.clone(), stats.clone(), token.clone(), url.clone());
                async move {
                    let started = Instant::now();
                    let result = target.mcp_request(&url, &token).await;
                    stats.record(op, &result, started.elapsed());
                }
            });
            if op == Op::Gateway {
                measured.phase(self.server, run).await;
            } else {
                run.await;
            }
        }
        let (direct, proxied) = (
            self.stats.summary(Op::Direct),
            self.stats.summary(Op::Gateway),
        );
        let note = format!(
            "adds {:.2} ms at p50, {:.2} ms at p99 (direct {:.2} / {:.2} ms)",
            proxied.p50_ms - direct.p50_ms,
            proxied.p99_ms - direct.p99_ms,
            direct.p50_ms,
            direct.p99_ms
        );
        (measured, note)
    }
}

async fn as_resource_server(
    target: &Target,
    op: Op,
    server: &ConfidentialClient,
    token: &str,
) -> Result<(), crate::flows::Failure> {
    if op == Op::Exchange {
        target.exchange(server, token).await
    } else {
        target.introspect(server, token).await
    }
}
