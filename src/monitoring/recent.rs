//! The last 24 hours of a few events, counted in this process for the console's overview:
//! tokens issued, logins failed (by reason) and failed upstream calls (by endpoint). Hourly
//! buckets in a ring, so recording is one short lock and reading sums 24 buckets, whatever the
//! traffic. Per instance: behind a load balancer each instance shows its own share.

use std::sync::Mutex;

/// What is counted; the index of each figure in a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecentEvent {
    TokenIssued,
    /// A [`super::LoginFailure`], by its index.
    LoginFailed(usize),
    /// A failed upstream call, by its endpoint's index (code exchange, refresh, revoke).
    UpstreamFailed(usize),
}

const LOGIN_REASONS: usize = 6;
const UPSTREAM_ENDPOINTS: usize = 3;
const FIGURES: usize = 1 + LOGIN_REASONS + UPSTREAM_ENDPOINTS;
const HOURS: usize = 24;

impl RecentEvent {
    fn index(self) -> Option<usize> {
        match self {
            RecentEvent::TokenIssued => Some(0),
            RecentEvent::LoginFailed(reason) if reason < LOGIN_REASONS => Some(1 + reason),
            RecentEvent::UpstreamFailed(endpoint) if endpoint < UPSTREAM_ENDPOINTS => {
                Some(1 + LOGIN_REASONS + endpoint)
            }
            _ => None,
        }
    }
}

/// The sums over the last 24 hours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentCounts {
    pub tokens_issued: u64,
    /// By [`super::LoginFailure`] label, in their order.
    pub logins_failed: Vec<(&'static str, u64)>,
    /// By upstream endpoint label (`code_exchange`, `refresh`, `revoke`).
    pub upstream_failures: Vec<(&'static str, u64)>,
}

/// The ring of hourly buckets: (hour, counts).
#[derive(Debug)]
pub struct RecentWindow {
    buckets: Mutex<[(i64, [u64; FIGURES]); HOURS]>,
}

impl Default for RecentWindow {
    fn default() -> Self {
        Self {
            buckets: Mutex::new([(i64::MIN, [0; FIGURES]); HOURS]),
        }
    }
}

impl RecentWindow {
    /// Counts one `event` at `now` (Unix seconds).
    pub fn record(&self, event: RecentEvent, now: i64) {
        let Some(index) = event.index() else {
            return;
        };
        let hour = now.div_euclid(3600);
        let slot = usize::try_from(hour.rem_euclid(HOURS as i64)).unwrap_or(0);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = &mut buckets[slot];
        if bucket.0 != hour {
            *bucket = (hour, [0; FIGURES]);
        }
        bucket.1[index] = bucket.1[index].saturating_add(1);
    }

    /// The sums of the buckets of the 24 hours up to `now` (this hour included).
    pub fn sums(&self, now: i64) -> [u64; FIGURES] {
        let hour = now.div_euclid(3600);
        let buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut sums = [0u64; FIGURES];
        for (at, counts) in buckets.iter() {
            if *at > hour - HOURS as i64 && *at <= hour {
                for (sum, count) in sums.iter_mut().zip(counts) {
                    *sum = sum.saturating_add(*count);
                }
            }
        }
        sums
    }

    /// The sums, named.
    pub fn counts(
        &self,
        now: i64,
        login_labels: [&'static str; LOGIN_REASONS],
        upstream_labels: [&'static str; UPSTREAM_ENDPOINTS],
    ) -> RecentCounts {
        let sums = self.sums(now);
        RecentCounts {
            tokens_issued: sums[0],
            logins_failed: login_labels
                .into_iter()
                .zip(sums[1..].iter().copied())
                .collect(),
            upstream_failures: upstream_labels
                .into_iter()
                .zip(sums[1 + LOGIN_REASONS..].iter().copied())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_24_hours_only() {
        let window = RecentWindow::default();
        let start = 1_000 * 3600;
        window.record(RecentEvent::TokenIssued, start);
        window.record(RecentEvent::TokenIssued, start + 3599);
        window.record(RecentEvent::LoginFailed(2), start + 3600);
        window.record(RecentEvent::UpstreamFailed(1), start + 3600);
        window.record(RecentEvent::LoginFailed(99), start);
        assert_eq!(window.sums(start + 3600)[0], 2);
        assert_eq!(window.sums(start + 3600)[3], 1);
        assert_eq!(window.sums(start + 3600)[1 + LOGIN_REASONS + 1], 1);
        // 24 hours after the first hour, its bucket no longer counts.
        assert_eq!(window.sums(start + 24 * 3600)[0], 0);
        assert_eq!(window.sums(start + 24 * 3600)[3], 1);
        // The ring reuses the slot of an old hour for a new one.
        window.record(RecentEvent::TokenIssued, start + 24 * 3600);
        assert_eq!(window.sums(start + 24 * 3600)[0], 1);
    }
}
