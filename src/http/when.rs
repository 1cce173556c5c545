//! Times on the server-rendered pages: relative ("3 hours ago") for reading, exact (UTC) for
//! checking, and the RFC 3339 form for the `<time datetime>` attribute.

use minijinja::{Value, context};

use crate::clock::Rfc3339;

/// A moment as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// "just now", "5 minutes ago", "in 2 hours", …
    pub relative: String,
    /// `2026-11-30T11:02:03Z`
    pub iso: String,
    /// `30 Nov 2026, 11:02 UTC`
    pub exact: String,
}

impl Moment {
    pub fn of(at: i64, now: i64) -> Self {
        Self {
            relative: relative(at, now),
            iso: Rfc3339(at).to_string(),
            exact: exact(at),
        }
    }

    /// For a template: `relative`, `iso` and `exact`.
    pub fn to_value(&self) -> Value {
        context! { relative => &self.relative, iso => &self.iso, exact => &self.exact }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn exact(at: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(at) {
        Ok(t) => format!(
            "{} {} {}, {:02}:{:02} UTC",
            t.day(),
            MONTHS[usize::from(u8::from(t.month())) - 1],
            t.year(),
            t.hour(),
            t.minute()
        ),
        Err(_) => at.to_string(),
    }
}

/// How long ago (or ahead) `at` is, in the largest whole unit.
pub fn relative(at: i64, now: i64) -> String {
    let delta = now.saturating_sub(at);
    let seconds = delta.unsigned_abs();
    if seconds < 60 {
        return "just now".to_owned();
    }
    let (count, unit) = match seconds {
        s if s < 3_600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3_600, "hour"),
        s if s < 30 * 86_400 => (s / 86_400, "day"),
        s if s < 365 * 86_400 => (s / (30 * 86_400), "month"),
        s => (s / (365 * 86_400), "year"),
    };
    let plural = if count == 1 { "" } else { "s" };
    if delta >= 0 {
        format!("{count} {unit}{plural} ago")
    } else {
        format!("in {count} {unit}{plural}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_use_the_largest_whole_unit() {
        let now = 1_000_000_000;
        let cases = [
            (0, "just now"),
            (59, "just now"),
            (60, "1 minute ago"),
            (119, "1 minute ago"),
            (7_200, "2 hours ago"),
            (86_400, "1 day ago"),
            (45 * 86_400, "1 month ago"),
            (800 * 86_400, "2 years ago"),
            (-3_600, "in 1 hour"),
        ];
        for (ago, text) in cases {
            assert_eq!(relative(now - ago, now), text, "{ago}");
        }
    }

    #[test]
    fn exact_times_are_utc() {
        let moment = Moment::of(1_764_500_523, 1_764_500_523);
        assert_eq!(moment.iso, "2025-11-30T11:02:03Z");
        assert_eq!(moment.exact, "30 Nov 2025, 11:02 UTC");
        assert_eq!(moment.relative, "just now");
    }
}
