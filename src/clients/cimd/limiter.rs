//! How many metadata-document fetches one instance makes to one host at once. Anyone can name
//! any URL as a `client_id`, so without a limit one request per URL could point a burst of
//! fetches at one host. Further fetches wait for a turn (they usually then find the document
//! in the cache); one that waits longer than it may gives up. Only hosts with a fetch in
//! flight or waiting are remembered, so the map stays as small as the traffic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
pub(super) struct HostLimiter {
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// The right to fetch from a host; given back when dropped.
pub(super) struct HostTurn {
    limiter: Arc<HostLimiter>,
    host: String,
    permit: Option<OwnedSemaphorePermit>,
    semaphore: Option<Arc<Semaphore>>,
}

impl HostLimiter {
    pub(super) fn new(per_host: usize) -> Arc<Self> {
        Arc::new(Self {
            per_host: per_host.max(1),
            hosts: Mutex::new(HashMap::new()),
        })
    }

    /// Waits up to `wait` for a turn to fetch from `host`; `None` when none came in time.
    pub(super) async fn turn(self: &Arc<Self>, host: &str, wait: Duration) -> Option<HostTurn> {
        let semaphore = self
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone();
        let acquired = tokio::time::timeout(wait, semaphore.clone().acquire_owned()).await;
        let mut turn = HostTurn {
            limiter: self.clone(),
            host: host.to_owned(),
            permit: None,
            semaphore: Some(semaphore),
        };
        match acquired {
            Ok(Ok(permit)) => {
                turn.permit = Some(permit);
                Some(turn)
            }
            // Timed out (or the semaphore closed, which never happens): the turn is dropped,
            // which forgets the host if nobody else is using it.
            _ => None,
        }
    }

    /// Forgets `host` when nobody holds or awaits a turn for it (only the map holds its
    /// semaphore). Every clone is made under the lock, so the count cannot change meanwhile.
    fn forget_if_idle(&self, host: &str, semaphore: Arc<Semaphore>) {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        drop(semaphore);
        if hosts
            .get(host)
            .is_some_and(|kept| Arc::strong_count(kept) == 1)
        {
            hosts.remove(host);
        }
    }

    #[cfg(test)]
    fn remembered_hosts(&self) -> usize {
        self.hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for HostTurn {
    fn drop(&mut self) {
        self.permit.take();
        if let Some(semaphore) = self.semaphore.take() {
            self.limiter.forget_if_idle(&self.host, semaphore);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_per_host_are_limited_and_hosts_forgotten() {
        let limiter = HostLimiter::new(2);
        let wait = Duration::from_millis(50);
        let first = limiter.turn("a.example", wait).await.expect("a turn");
        let second = limiter.turn("a.example", wait).await.expect("a turn");
        assert!(
            limiter.turn("a.example", wait).await.is_none(),
            "a third fetch to the same host waits, then gives up"
        );
        let other = limiter.turn("b.example", wait).await;
        assert!(other.is_some(), "another host is not held up");
        drop(other);
        drop(first);
        let third = limiter.turn("a.example", wait).await;
        assert!(third.is_some(), "a turn given back is taken again");
        drop((second, third));
        assert_eq!(limiter.remembered_hosts(), 0, "idle hosts are forgotten");
    }
}
