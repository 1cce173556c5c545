//! What each operation did: answers by class (success, 4xx, 5xx, no answer) and latencies,
//! shared by all workers of a run.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::flows::Failure;

/// The operations the driver performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Register,
    /// The browser part of a login: /authorize, consent, upstream login, callback.
    Login,
    /// The authorization code redeemed at /token.
    Redeem,
    Refresh,
    Exchange,
    Revoke,
    /// A refresh with a revoked token, which succeeds when it is refused.
    RefreshRevoked,
    Introspect,
    /// The authorization server metadata document (RFC 8414).
    Metadata,
    Jwks,
    /// An MCP request through the gateway.
    Gateway,
    /// The same MCP request sent straight to the backend, for comparison.
    Direct,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::Login => "login",
            Op::Redeem => "redeem",
            Op::Refresh => "refresh",
            Op::Exchange => "exchange",
            Op::Revoke => "revoke",
            Op::RefreshRevoked => "revoked-refresh",
            Op::Introspect => "introspect",
            Op::Metadata => "metadata",
            Op::Jwks => "jwks",
            Op::Gateway => "gateway",
            Op::Direct => "direct",
        }
    }
}

#[derive(Default, Clone)]
struct Counts {
    ok: u64,
    client_errors: u64,
    server_errors: u64,
    no_answer: u64,
    latencies_us: Vec<u32>,
}

/// One operation's figures: successes, failures of every kind, latency percentiles of the
/// successes in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub ok: u64,
    pub failed: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Counts {
    /// The latency at `p` (0 to 1) of the sorted `latencies_us`, in milliseconds.
    fn percentile(sorted: &[u32], p: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let i = ((sorted.len() - 1) as f64 * p).round() as usize;
        f64::from(sorted[i]) / 1000.0
    }
}

/// Counts per operation. Cheap enough to record every request of a load run.
#[derive(Default)]
pub struct Stats {
    counts: Mutex<BTreeMap<Op, Counts>>,
    /// The first few server errors, to show what went wrong.
    server_error_samples: Mutex<Vec<String>>,
}

impl Stats {
    pub fn record<T>(&self, op: Op, result: &Result<T, Failure>, elapsed: Duration) {
        let mut counts = self.counts.lock().unwrap();
        let entry = counts.entry(op).or_default();
        match result {
            Ok(_) => {
                entry.ok += 1;
                entry
                    .latencies_us
                    .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
            }
            Err(failure) if failure.is_server_error() => {
                entry.server_errors += 1;
                let mut samples = self.server_error_samples.lock().unwrap();
                if samples.len() < 10 {
                    samples.push(format!("{}: {failure}", op.name()));
                }
            }
            Err(Failure::NoAnswer(_)) => entry.no_answer += 1,
            Err(_) => entry.client_errors += 1,
        }
    }

    /// Every 5xx (and every server error a login reported to the client) so far.
    pub fn server_errors(&self) -> u64 {
        self.counts
            .lock()
            .unwrap()
            .values()
            .map(|c| c.server_errors)
            .sum()
    }

    /// Successful operations so far.
    pub fn successes(&self) -> u64 {
        self.counts.lock().unwrap().values().map(|c| c.ok).sum()
    }

    pub fn server_error_samples(&self) -> Vec<String> {
        self.server_error_samples.lock().unwrap().clone()
    }

    /// The figures of `op` so far.
    pub fn summary(&self, op: Op) -> Summary {
        let Some(mut c) = self.counts.lock().unwrap().get(&op).cloned() else {
            return Summary::default();
        };
        c.latencies_us.sort_unstable();
        Summary {
            ok: c.ok,
            failed: c.client_errors + c.server_errors + c.no_answer,
            p50_ms: Counts::percentile(&c.latencies_us, 0.5),
            p99_ms: Counts::percentile(&c.latencies_us, 0.99),
        }
    }

    /// One line per operation: counts, then latency percentiles of the successes, and the
    /// rate over `elapsed`.
    pub fn report(&self, elapsed: Duration) -> String {
        let mut counts = self.counts.lock().unwrap().clone();
        let mut out = String::new();
        for (op, c) in counts.iter_mut() {
            c.latencies_us.sort_unstable();
            let pct = |p: f64| Counts::percentile(&c.latencies_us, p);
            out.push_str(&format!(
                "  {:<15} ok {:>7}  4xx {:>5}  5xx {:>3}  no answer {:>4}  {:>7.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms\n",
                op.name(),
                c.ok,
                c.client_errors,
                c.server_errors,
                c.no_answer,
                c.ok as f64 / elapsed.as_secs_f64().max(1e-9),
                pct(0.5),
                pct(0.99),
                pct(1.0),
            ));
        }
        out
    }
}
