//! Soak: minutes of mixed load (register, login, refresh, exchange, revoke) at a steady rate,
//! counting every 5xx and sampling the server's resident memory (VmRSS) at the start, every
//! sample interval and at the end. Revoked refresh tokens are presented once more and must be
//! refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::flows::{ConfidentialClient, Failure, PublicClient, Target, Tokens};
use crate::rng::Rng;
use crate::server::{ADMIN_TOKEN, ServerProcess, load_average};
use crate::stats::{Op, Stats};

pub struct SoakOptions {
    pub duration: Duration,
    pub concurrency: usize,
    /// Operations per second over all workers.
    pub rate: u32,
    pub sample_every: Duration,
    pub seed: u64,
}

/// Logins a worker keeps before it revokes instead of logging in again: bounded state.
const MAX_CHAINS_PER_WORKER: usize = 40;

struct Shared {
    target: Target,
    clients: Vec<PublicClient>,
    server: ConfidentialClient,
    stats: Stats,
    stop: AtomicBool,
    registrations: AtomicU64,
    /// Revoked refresh tokens that still worked afterwards (must stay 0).
    revoked_still_working: AtomicU64,
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

pub async fn run(server: &mut ServerProcess, engine: &str, options: &SoakOptions) -> bool {
    server.start().await;
    let target = server.target();
    let mut clients = Vec::new();
    for i in 0..4 {
        let redirect = format!("https://host{i}.example/oauth/callback");
        clients.push(
            target
                .register(&format!("soak host {i}"), &redirect)
                .await
                .expect("the load clients register"),
        );
    }
    let resource_server = target
        .resource_server(ADMIN_TOKEN)
        .await
        .expect("the resource server client is created");
    let shared = Arc::new(Shared {
        target,
        clients,
        server: resource_server,
        stats: Stats::default(),
        stop: AtomicBool::new(false),
        registrations: AtomicU64::new(0),
        revoked_still_working: AtomicU64::new(0),
    });
    println!(
        "soak on {engine}: {} s, {} workers, {} operations/s (register 5%, login 10%, refresh 50%, exchange 25%, revoke 10%), seed {}",
        options.duration.as_secs(),
        options.concurrency,
        options.rate,
        options.seed
    );
    let started = Instant::now();
    let rss_start = server.rss_kib();
    let sample = |at: Duration, shared: &Shared, rss: Option<u64>| {
        println!(
            "  t={:>4}s  RSS {:>9}  operations {:>7}  5xx {:>3}  load {}",
            at.as_secs(),
            mib(rss),
            shared.stats.successes(),
            shared.stats.server_errors(),
            load_average()
        );
    };
    sample(Duration::ZERO, &shared, rss_start);
    let interval = Duration::from_secs_f64(options.concurrency as f64 / f64::from(options.rate));
    let workers: Vec<_> = (0..options.concurrency)
        .map(|w| {
            let shared = shared.clone();
            let rng = Rng::new(options.seed.wrapping_add(w as u64 * 7919));
            tokio::spawn(worker(shared, w, rng, interval))
        })
        .collect();
    let mut rss_max = rss_start.unwrap_or(0);
    while started.elapsed() < options.duration {
        let left = options.duration.saturating_sub(started.elapsed());
        tokio::time::sleep(left.min(options.sample_every)).await;
        let rss = server.rss_kib();
        rss_max = rss_max.max(rss.unwrap_or(0));
        sample(started.elapsed(), &shared, rss);
    }
    shared.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("a worker finishes");
    }
    let elapsed = started.elapsed();
    let rss_end = server.rss_kib();
    rss_max = rss_max.max(rss_end.unwrap_or(0));
    server.stop();
    print!("{}", shared.stats.report(elapsed));
    for sample in shared.stats.server_error_samples() {
        println!("  server error: {sample}");
    }
    let server_errors = shared.stats.server_errors();
    let revoked_working = shared.revoked_still_working.load(Ordering::SeqCst);
    println!(
        "summary on {engine}: {:.0} s, {} operations, 5xx {}, revoked tokens that still worked {}, RSS start {} end {} max {}, server log ERROR lines {}",
        elapsed.as_secs_f64(),
        shared.stats.successes(),
        server_errors,
        revoked_working,
        mib(rss_start),
        mib(rss_end),
        mib(Some(rss_max)),
        server.error_log_lines(),
    );
    server_errors == 0 && revoked_working == 0
}

/// One logged-in client session of a worker.
struct Session {
    client: usize,
    tokens: Tokens,
}

async fn worker(shared: Arc<Shared>, id: usize, mut rng: Rng, interval: Duration) {
    let mut sessions: Vec<Session> = Vec::new();
    let mut logins = 0usize;
    let mut next = Instant::now() + Duration::from_millis(rng.between(0, 1000));
    while !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep_until(next.into()).await;
        // Behind schedule (a slow answer), the worker goes on at its pace without a burst.
        next = (next + interval).max(Instant::now());
        let roll = rng.below(100);
        if roll < 5 {
            register(&shared, id).await;
        } else if sessions.is_empty() || (roll < 15 && sessions.len() < MAX_CHAINS_PER_WORKER) {
            logins += 1;
            let user = format!("soak-w{id}-u{}", logins % 25);
            if let Some(session) = login(&shared, &mut rng, &user).await {
                sessions.push(session);
            }
        } else if roll < 65 {
            let i = rng.below(sessions.len());
            refresh(&shared, &mut sessions, i).await;
        } else if roll < 90 {
            let i = rng.below(sessions.len());
            let started = Instant::now();
            let result = shared
                .target
                .exchange(&shared.server, &sessions[i].tokens.access_token)
                .await;
            shared
                .stats
                .record(Op::Exchange, &result, started.elapsed());
        } else {
            let i = rng.below(sessions.len());
            revoke(&shared, sessions.swap_remove(i)).await;
        }
    }
}

async fn register(shared: &Shared, worker: usize) {
    let n = shared.registrations.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    let result = shared
        .target
        .register(
            &format!("soak registration {worker}-{n}"),
            &format!("https://soak{n}.example/cb"),
        )
        .await;
    shared
        .stats
        .record(Op::Register, &result, started.elapsed());
}

async fn login(shared: &Shared, rng: &mut Rng, user: &str) -> Option<Session> {
    let client_index = rng.below(shared.clients.len());
    let client = &shared.clients[client_index];
    let started = Instant::now();
    let code = shared.target.login(client, user).await;
    shared.stats.record(Op::Login, &code, started.elapsed());
    let started = Instant::now();
    let tokens = shared.target.redeem(client, &code.ok()?).await;
    shared.stats.record(Op::Redeem, &tokens, started.elapsed());
    Some(Session {
        client: client_index,
        tokens: tokens.ok()?,
    })
}

async fn refresh(shared: &Shared, sessions: &mut Vec<Session>, i: usize) {
    let client = &shared.clients[sessions[i].client];
    let started = Instant::now();
    let result = shared
        .target
        .refresh(client, &sessions[i].tokens.refresh_token)
        .await;
    shared.stats.record(Op::Refresh, &result, started.elapsed());
    match result {
        Ok(tokens) => sessions[i].tokens = tokens,
        Err(failure) => {
            eprintln!("refresh failed: {failure}");
            sessions.swap_remove(i);
        }
    }
}

/// Revokes the session's refresh token, then checks that it no longer refreshes.
async fn revoke(shared: &Shared, session: Session) {
    let client = &shared.clients[session.client];
    let started = Instant::now();
    let result = shared
        .target
        .revoke(client, &session.tokens.refresh_token)
        .await;
    shared.stats.record(Op::Revoke, &result, started.elapsed());
    if result.is_err() {
        return;
    }
    let started = Instant::now();
    let refused = match shared
        .target
        .refresh(client, &session.tokens.refresh_token)
        .await
    {
        Err(failure) if failure.is_invalid_grant() => Ok(()),
        Err(failure) => Err(failure),
        Ok(_) => {
            shared.revoked_still_working.fetch_add(1, Ordering::SeqCst);
            Err(Failure::Status {
                status: 200,
                error: "a revoked refresh token still works".into(),
            })
        }
    };
    shared
        .stats
        .record(Op::RefreshRevoked, &refused, started.elapsed());
}
