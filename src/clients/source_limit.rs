//! The per-source registration limit, counted in this instance's memory.
//!
//! A registration writes its client row and nothing else: counting it per source in a shared
//! table would cost a write (and on SQLite a turn of the one writer) per request for a limit
//! that is about fairness, not safety. The safety is the database's: the cap on live dynamic
//! clients is taken in the same transaction as the insert, on every instance at once
//! (`store::counters`). What counting in memory changes: with several instances behind a load
//! balancer, one source may register up to the limit *on each instance* per window, and a
//! restart forgets the current window. The global cap still bounds what all of them store.
//!
//! Windows are fixed and aligned to multiples of their length, as in `store::rate_limits`, so
//! `Retry-After` is the time to the window's end.

use std::collections::HashMap;
use std::sync::Mutex;

/// Sources remembered at once. A flood from more sources within one window forgets the counts
/// of this window (the limit restarts for everyone); the global cap still holds.
const MAX_SOURCES: usize = 65_536;

/// Counts hits per source per fixed window.
#[derive(Debug)]
pub struct SourceLimit {
    limit: u32,
    window_secs: i64,
    /// Source → (start of its window, hits in it).
    counts: Mutex<HashMap<String, (i64, u32)>>,
}

impl SourceLimit {
    pub fn new(limit: u32, window_secs: u64) -> Self {
        Self {
            limit,
            window_secs: i64::try_from(window_secs.max(1)).unwrap_or(i64::MAX),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a hit from `source` at `now`. `None` while within the limit, else the seconds
    /// until the window ends (at least 1).
    pub fn hit(&self, source: &str, now: i64) -> Option<u64> {
        let window_start = now - now.rem_euclid(self.window_secs);
        // A poisoned lock only means another request panicked while counting: the counts are
        // still plain numbers.
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= MAX_SOURCES && !counts.contains_key(source) {
            counts.retain(|_, (start, _)| *start == window_start);
            if counts.len() >= MAX_SOURCES {
                counts.clear();
            }
        }
        let entry = counts.entry(source.to_owned()).or_insert((window_start, 0));
        if entry.0 != window_start {
            *entry = (window_start, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 <= self.limit {
            return None;
        }
        let remaining = window_start.saturating_add(self.window_secs) - now;
        Some(u64::try_from(remaining).unwrap_or(0).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_source_per_window() {
        let limit = SourceLimit::new(2, 60);
        assert_eq!(limit.hit("a", 120), None);
        assert_eq!(limit.hit("a", 130), None);
        assert_eq!(limit.hit("a", 150), Some(30), "third hit in the window");
        assert_eq!(limit.hit("b", 150), None, "another source counts apart");
        assert_eq!(limit.hit("a", 179), Some(1));
        assert_eq!(limit.hit("a", 180), None, "a new window starts again");
    }

    #[test]
    fn a_flood_of_sources_stays_bounded() {
        let limit = SourceLimit::new(1, 60);
        for i in 0..(MAX_SOURCES + 10) {
            assert_eq!(limit.hit(&i.to_string(), 0), None);
        }
        let held = limit.counts.lock().unwrap().len();
        assert!(held <= MAX_SOURCES, "{held} sources held");
        assert_eq!(limit.hit("late", 60), None);
    }
}
