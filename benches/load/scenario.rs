//! One operation at a time, for throughput: the inputs are prepared first (clients, logins,
//! tokens), then COUNT operations run with CONCURRENCY in flight, and the server's CPU time over
//! that phase is divided by the operations. For the benchmark suite.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::flows::{PublicClient, Target, Tokens};
use crate::server::{ADMIN_TOKEN, ServerProcess};
use crate::stats::{Op, Stats};

pub const SCENARIOS: [&str; 5] = ["register", "login", "refresh", "exchange", "revoke"];

/// Runs `operation(i)` for i in 0..count with `concurrency` in flight.
async fn run_parallel<F, Fut>(count: usize, concurrency: usize, operation: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let operation = Arc::new(operation);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (operation, next) = (operation.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= count {
                        break;
                    }
                    operation(i).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker finishes");
    }
}

/// `count` logged-in sessions of `client`, prepared (not measured).
async fn sessions(
    target: &Target,
    client: &PublicClient,
    count: usize,
    concurrency: usize,
) -> Vec<Tokens> {
    let out = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
    let (target, client, sink) = (target.clone(), client.clone(), out.clone());
    run_parallel(count, concurrency, move |i| {
        let (target, client, sink) = (target.clone(), client.clone(), sink.clone());
        async move {
            let code = target
                .login(&client, &format!("bench-u{}", i % 100))
                .await
                .expect("a preparatory login");
            let tokens = target
                .redeem(&client, &code)
                .await
                .expect("a preparatory redemption");
            sink.lock().unwrap().push(tokens);
        }
    })
    .await;
    std::mem::take(&mut *out.lock().unwrap())
}

/// With `LOAD_CALLGRIND` set (the server started under `valgrind --tool=callgrind`, for
/// example through a `--binary` script that execs it), zeroes the counts before the measured
/// phase (`-z`) and dumps them after it (`-d`), so the dump holds the operations alone:
/// instruction counts, repeatable on a busy machine where CPU time is not.
fn callgrind(server: &ServerProcess, action: &str) {
    if std::env::var_os("LOAD_CALLGRIND").is_none() {
        return;
    }
    if let Some(pid) = server.pid() {
        let status = std::process::Command::new("callgrind_control")
            .args([action, &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "callgrind_control {action} failed"
        );
    }
}

pub async fn run(
    server: &mut ServerProcess,
    engine: &str,
    scenario: &str,
    count: usize,
    concurrency: usize,
) -> bool {
    server.start().await;
    let target = server.target();
    let client = target
        .register("bench host", "https://bench.example/oauth/callback")
        .await
        .expect("the bench client registers");
    let stats = Arc::new(Stats::default());
    let prepared = match scenario {
        "refresh" | "revoke" => sessions(&target, &client, count, concurrency).await,
        "exchange" => sessions(&target, &client, count.min(100), concurrency).await,
        _ => Vec::new(),
    };
    let prepared = Arc::new(prepared);
    let resource_server = match scenario {
        "exchange" => Some(
            target
                .resource_server(ADMIN_TOKEN)
                .await
                .expect("the resource server client is created"),
        ),
        _ => None,
    };
    let cpu_before = server.cpu_time().unwrap_or_default();
    callgrind(server, "-z");
    let started = Instant::now();
    let (t, c, s, p) = (
        target.clone(),
        client.clone(),
        stats.clone(),
        prepared.clone(),
    );
    let name = scenario.to_owned();
    run_parallel(count, concurrency, move |i| {
        let (target, client, stats, prepared) = (t.clone(), c.clone(), s.clone(), p.clone());
        let (name, resource_server) = (name.clone(), resource_server.clone());
        async move {
            let started = Instant::now();
            match name.as_str() {
                "register" => {
                    let result = target
                        .register(
                            &format!("bench {i}"),
                            &format!("https://bench{i}.example/cb"),
                        )
                        .await;
                    stats.record(Op::Register, &result, started.elapsed());
                }
                "login" => {
                    let result = target.login(&client, &format!("bench-u{}", i % 100)).await;
                    stats.record(Op::Login, &result, started.elapsed());
                }
                "refresh" => {
                    let result = target.refresh(&client, &prepared[i].refresh_token).await;
                    stats.record(Op::Refresh, &result, started.elapsed());
                }
                "exchange" => {
                    let server = resource_server.as_ref().expect("created above");
                    let tokens = &prepared[i % prepared.len()];
                    let result = target.exchange(server, &tokens.access_token).await;
                    stats.record(Op::Exchange, &result, started.elapsed());
                }
                "revoke" => {
                    let result = target.revoke(&client, &prepared[i].refresh_token).await;
                    stats.record(Op::Revoke, &result, started.elapsed());
                }
                other => panic!("unknown scenario {other}"),
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    callgrind(server, "-d");
    let cpu = server
        .cpu_time()
        .unwrap_or_default()
        .saturating_sub(cpu_before);
    server.stop();
    println!(
        "{scenario} on {engine}: {count} operations, concurrency {concurrency}, {:.2} s; server CPU {:.0} ms = {:.0} µs per operation",
        elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1000.0,
        cpu.as_secs_f64() * 1e6 / count as f64
    );
    print!("{}", stats.report(elapsed));
    stats.server_errors() == 0
}
