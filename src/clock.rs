//! Time as the server sees it. Everything that expires reads the clock through this trait,
//! so tests can move time forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in whole seconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970");
        i64::try_from(since_epoch.as_secs()).expect("seconds fit in i64")
    }
}

/// A clock that only moves when told to. For tests.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn starting_at(now: i64) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(now)))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A Unix time shown to people: RFC 3339 in UTC (`2026-11-30T05:34:50Z`), as text and when
/// serialised. A stored value outside the calendar's range shows as the number it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub i64);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use time::format_description::well_known::Rfc3339 as Format;
        match time::OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Format).ok())
        {
            Some(formatted) => f.write_str(&formatted),
            None => write!(f, "{}", self.0),
        }
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::Rfc3339;

    #[test]
    fn unix_times_show_as_rfc_3339_in_utc() {
        let cases = [
            ("the epoch", 0, "1970-01-01T00:00:00Z"),
            ("a time in 2026", 1_796_015_833, "2026-11-30T05:17:13Z"),
            ("before the epoch", -1, "1969-12-31T23:59:59Z"),
            (
                "out of range shows the number",
                i64::MAX,
                "9223372036854775807",
            ),
        ];
        for (name, secs, shown) in cases {
            assert_eq!(Rfc3339(secs).to_string(), shown, "{name}");
            assert_eq!(
                serde_json::to_value(Rfc3339(secs)).unwrap(),
                serde_json::json!(shown),
                "{name}"
            );
        }
    }
}
