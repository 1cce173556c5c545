//! Running operations with a fixed number in flight, and measuring the server over a phase:
//! its CPU time (user + system from /proc) and the wall time, added up over the phases that
//! count, so that preparing inputs (logins for code redemptions, sessions for revocations)
//! is never charged to the operation measured.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::server::ServerProcess;

/// Runs `operation(i)` for i in 0..count with `concurrency` in flight.
pub async fn run_parallel<F, Fut>(count: usize, concurrency: usize, operation: F)
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

/// Runs `operation(worker, i)` on `concurrency` workers, each starting its next operation
/// until `duration` has passed; `i` counts operations over all workers.
pub async fn run_for<F, Fut>(duration: Duration, concurrency: usize, operation: F)
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let operation = Arc::new(operation);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (operation, next) = (operation.clone(), next.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    operation(worker, next.fetch_add(1, Ordering::Relaxed)).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker finishes");
    }
}

/// Wall time and server CPU time over the phases measured so far.
#[derive(Debug, Default, Clone, Copy)]
pub struct Measured {
    pub elapsed: Duration,
    pub cpu: Duration,
}

impl Measured {
    /// Awaits `phase`, adding its wall time and the server's CPU time over it.
    pub async fn phase<T>(&mut self, server: &ServerProcess, phase: impl Future<Output = T>) -> T {
        let cpu_before = server.cpu_time().unwrap_or_default();
        let started = Instant::now();
        let out = phase.await;
        self.elapsed += started.elapsed();
        self.cpu += server
            .cpu_time()
            .unwrap_or_default()
            .saturating_sub(cpu_before);
        out
    }
}
