//! kill -9 under load. Workers log users in and refresh their tokens, as hosts do, each
//! keeping the last refresh token it was answered with for every login (a chain). At a random
//! moment the server gets SIGKILL; it is started again on the same database, and every chain's
//! held token is presented once more. It must work: either it was never rotated, or its
//! rotation committed and the answer was lost with the kill, and the grace window hands the
//! same successor out again. Earlier tokens of a chain were legitimately rotated: their
//! successor was received, and it is what the chain holds. A held token refused is *lost*.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::flows::{Failure, PublicClient, Target, Tokens};
use crate::rng::Rng;
use crate::server::ServerProcess;
use crate::stats::{Op, Stats};

/// What the server logs when a rotated refresh token is presented again within the grace
/// window (src/grants/refresh.rs).
const GRACE_REPLAY: &str = "presented again within the grace window";

pub struct CrashOptions {
    pub kills: usize,
    pub concurrency: usize,
    /// How long the load runs before the kill: a random time in this range (milliseconds).
    pub load_ms: (u64, u64),
    /// Share of operations that are new logins (the rest are refreshes), in percent.
    pub login_percent: u32,
    pub seed: u64,
}

/// One login's refresh tokens, as its client holds them.
struct Chain {
    client: usize,
    /// The last tokens the client was answered with.
    tokens: Tokens,
    /// Refresh tokens received on this chain since its login.
    received: u64,
    /// A refresh with the held token was sent and got no answer (the kill).
    in_flight: bool,
}

/// What a worker holds when the server dies.
#[derive(Default)]
struct Held {
    chains: Vec<Chain>,
    /// Codes whose redemption got no answer.
    codes: Vec<(usize, String)>,
    /// Requests that got no answer.
    cut: usize,
}

/// Totals over every round.
#[derive(Default)]
struct Totals {
    held: u64,
    ok: u64,
    lost: u64,
    errors: u64,
    in_flight: u64,
    replays: u64,
    received: u64,
}

pub async fn run(server: &mut ServerProcess, engine: &str, options: &CrashOptions) -> bool {
    server.start().await;
    let target = server.target();
    let mut clients = Vec::new();
    for i in 0..4 {
        let redirect = format!("https://host{i}.example/oauth/callback");
        let client = target
            .register(&format!("crash host {i}"), &redirect)
            .await
            .expect("the load clients register");
        clients.push(client);
    }
    let clients = Arc::new(clients);
    let mut rng = Rng::new(options.seed);
    let mut chains: Vec<Chain> = Vec::new();
    let mut totals = Totals::default();
    println!(
        "kill -9 under load on {engine}: {} kills, {} workers, {}% logins, seed {}",
        options.kills, options.concurrency, options.login_percent, options.seed
    );
    for round in 1..=options.kills {
        let load_ms = rng.between(options.load_ms.0, options.load_ms.1);
        let stats = Arc::new(Stats::default());
        let started = Instant::now();
        let held = load_then_kill(
            server,
            &target,
            &clients,
            std::mem::take(&mut chains),
            options,
            rng.next(),
            Duration::from_millis(load_ms),
            &stats,
        )
        .await;
        let loaded = started.elapsed();
        let in_flight = held.chains.iter().filter(|c| c.in_flight).count();
        let received: u64 = held.chains.iter().map(|c| c.received).sum();
        println!(
            "round {round}/{}: killed after {:.2} s of load ({} requests cut); held at kill: {} refresh tokens ({} with a refresh in flight; {} refresh tokens received in all on these logins), {} codes with a redemption in flight; 5xx before the kill: {}",
            options.kills,
            loaded.as_secs_f64(),
            held.cut,
            held.chains.len(),
            in_flight,
            received,
            held.codes.len(),
            stats.server_errors(),
        );
        for sample in stats.server_error_samples() {
            println!("  server error before the kill: {sample}");
        }
        let restart = server.start().await;
        let replays_before = server.log_lines_containing(GRACE_REPLAY);
        let (verified, outcome) = verify(&target, &clients, held, options.concurrency).await;
        let replays = server.log_lines_containing(GRACE_REPLAY) - replays_before;
        println!(
            "  restarted in {:.2} s; verified: {} OK ({} of them had a refresh in flight, {} answered from the grace window: rotated before the kill, answer lost), {} lost, {} errors; codes: {} redeemed, {} refused (redeemed before the kill; the family is revoked as reuse)",
            restart.as_secs_f64(),
            outcome.ok,
            outcome.ok_in_flight,
            replays,
            outcome.lost,
            outcome.errors,
            outcome.codes_redeemed,
            outcome.codes_refused,
        );
        totals.held += outcome.ok + outcome.lost + outcome.errors;
        totals.ok += outcome.ok;
        totals.lost += outcome.lost;
        totals.errors += outcome.errors + stats.server_errors();
        totals.in_flight += in_flight as u64;
        totals.replays += replays as u64;
        // Surviving logins carry on into the next round, so this round's count includes the
        // earlier ones'.
        totals.received = received;
        chains = verified;
    }
    server.stop();
    println!(
        "total on {engine}: {} refresh tokens held at {} kills ({} received in all), {} verified OK, {} lost, {} errors ({} had a refresh in flight at the kill, {} answered from the grace window); server log ERROR lines: {}",
        totals.held,
        options.kills,
        totals.received,
        totals.ok,
        totals.lost,
        totals.errors,
        totals.in_flight,
        totals.replays,
        server.error_log_lines(),
    );
    totals.lost == 0 && totals.errors == 0
}

/// Runs the load for `duration`, then kills the server; returns what the workers hold.
#[allow(clippy::too_many_arguments)]
async fn load_then_kill(
    server: &mut ServerProcess,
    target: &Target,
    clients: &Arc<Vec<PublicClient>>,
    chains: Vec<Chain>,
    options: &CrashOptions,
    seed: u64,
    duration: Duration,
    stats: &Arc<Stats>,
) -> Held {
    let killed = Arc::new(AtomicBool::new(false));
    // The chains that survived earlier rounds are dealt out to the workers.
    let mut shares: Vec<Vec<Chain>> = (0..options.concurrency).map(|_| Vec::new()).collect();
    for (i, chain) in chains.into_iter().enumerate() {
        shares[i % options.concurrency].push(chain);
    }
    let workers: Vec<_> = shares
        .into_iter()
        .enumerate()
        .map(|(w, share)| {
            let worker = Worker {
                id: w,
                target: target.clone(),
                clients: clients.clone(),
                stats: stats.clone(),
                killed: killed.clone(),
                rng: Rng::new(seed.wrapping_add(w as u64 * 7919)),
                login_percent: options.login_percent,
            };
            tokio::spawn(worker.run(share))
        })
        .collect();
    tokio::time::sleep(duration).await;
    killed.store(true, Ordering::SeqCst);
    server.sigkill();
    let mut held = Held::default();
    for worker in workers {
        let part = worker.await.expect("a worker finishes");
        held.chains.extend(part.chains);
        held.codes.extend(part.codes);
        held.cut += part.cut;
    }
    held
}

struct Worker {
    id: usize,
    target: Target,
    clients: Arc<Vec<PublicClient>>,
    stats: Arc<Stats>,
    killed: Arc<AtomicBool>,
    rng: Rng,
    login_percent: u32,
}

impl Worker {
    async fn run(mut self, chains: Vec<Chain>) -> Held {
        let mut held = Held {
            chains,
            ..Held::default()
        };
        let mut logins = 0usize;
        while !self.killed.load(Ordering::SeqCst) {
            let login = held.chains.is_empty() || self.rng.percent(self.login_percent);
            let stop = if login {
                logins += 1;
                self.login(&mut held, logins).await
            } else {
                let i = self.rng.below(held.chains.len());
                self.refresh(&mut held, i).await
            };
            if stop {
                held.cut += 1;
                break;
            }
        }
        held
    }

    /// A login and its code redemption; returns whether the server stopped answering.
    async fn login(&mut self, held: &mut Held, n: usize) -> bool {
        let client_index = self.rng.below(self.clients.len());
        let client = &self.clients[client_index];
        let user = format!("crash-w{}-u{}", self.id, n % 50);
        let started = Instant::now();
        let code = self.target.login(client, &user).await;
        self.stats.record(Op::Login, &code, started.elapsed());
        let code = match code {
            Ok(code) => code,
            Err(Failure::NoAnswer(_)) => return self.killed.load(Ordering::SeqCst),
            Err(_) => return false,
        };
        let started = Instant::now();
        let tokens = self.target.redeem(client, &code).await;
        self.stats.record(Op::Redeem, &tokens, started.elapsed());
        match tokens {
            Ok(tokens) => {
                held.chains.push(Chain {
                    client: client_index,
                    tokens,
                    received: 1,
                    in_flight: false,
                });
                false
            }
            Err(Failure::NoAnswer(_)) => {
                held.codes.push((client_index, code));
                self.killed.load(Ordering::SeqCst)
            }
            Err(_) => false,
        }
    }

    /// One refresh of chain `i`; returns whether the server stopped answering.
    async fn refresh(&mut self, held: &mut Held, i: usize) -> bool {
        let chain = &mut held.chains[i];
        let client = &self.clients[chain.client];
        let started = Instant::now();
        let result = self
            .target
            .refresh(client, &chain.tokens.refresh_token)
            .await;
        self.stats.record(Op::Refresh, &result, started.elapsed());
        match result {
            Ok(tokens) => {
                chain.tokens = tokens;
                chain.received += 1;
                chain.in_flight = false;
                false
            }
            Err(Failure::NoAnswer(_)) => {
                chain.in_flight = true;
                self.killed.load(Ordering::SeqCst)
            }
            Err(failure) => {
                // Refused while the server was up: this is a failure of the run, not the kill.
                eprintln!("refresh refused during the load: {failure}");
                held.chains.swap_remove(i);
                false
            }
        }
    }
}

#[derive(Default)]
struct Outcome {
    ok: u64,
    ok_in_flight: u64,
    lost: u64,
    errors: u64,
    codes_redeemed: u64,
    codes_refused: u64,
}

/// Presents every held token (and code) once; returns the chains that go on, with their new
/// tokens, and the counts.
async fn verify(
    target: &Target,
    clients: &Arc<Vec<PublicClient>>,
    held: Held,
    concurrency: usize,
) -> (Vec<Chain>, Outcome) {
    let queue = Arc::new(std::sync::Mutex::new(held.chains));
    let results = Arc::new(std::sync::Mutex::new((Vec::new(), Outcome::default())));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (target, clients, queue, results) =
                (target.clone(), clients.clone(), queue.clone(), results.clone());
            tokio::spawn(async move {
                loop {
                    let Some(mut chain) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let client = &clients[chain.client];
                    let result = target.refresh(client, &chain.tokens.refresh_token).await;
                    let mut results = results.lock().unwrap();
                    match result {
                        Ok(tokens) => {
                            results.1.ok += 1;
                            results.1.ok_in_flight += u64::from(chain.in_flight);
                            chain.tokens = tokens;
                            chain.received += 1;
                            chain.in_flight = false;
                            results.0.push(chain);
                        }
                        Err(failure) if failure.is_invalid_grant() => {
                            results.1.lost += 1;
                            eprintln!(
                                "lost: a held refresh token was refused after the restart (in flight at the kill: {})",
                                chain.in_flight
                            );
                        }
                        Err(failure) => {
                            results.1.errors += 1;
                            eprintln!("verification failed: {failure}");
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a verifier finishes");
    }
    let (mut chains, mut outcome) = std::mem::take(&mut *results.lock().unwrap());
    for (client, code) in held.codes {
        match target.redeem(&clients[client], &code).await {
            Ok(tokens) => {
                outcome.codes_redeemed += 1;
                chains.push(Chain {
                    client,
                    tokens,
                    received: 1,
                    in_flight: false,
                });
            }
            Err(failure) if failure.is_invalid_grant() => outcome.codes_refused += 1,
            Err(failure) => {
                outcome.errors += 1;
                eprintln!("code verification failed: {failure}");
            }
        }
    }
    (chains, outcome)
}
