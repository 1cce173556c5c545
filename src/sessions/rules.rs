//! The rules of web sessions as plain functions over values and the clock: expiries, the
//! same-origin test of a form post, and the per-instance bound on sign-in starts.

use std::sync::Mutex;

/// How long a session lasts, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub idle_secs: i64,
    pub absolute_secs: i64,
}

impl Timeouts {
    pub fn from_minutes_and_hours(idle_minutes: u64, absolute_hours: u64) -> Self {
        Self {
            idle_secs: i64::try_from(idle_minutes.saturating_mul(60)).unwrap_or(i64::MAX),
            absolute_secs: i64::try_from(absolute_hours.saturating_mul(3600)).unwrap_or(i64::MAX),
        }
    }

    /// The idle expiry after a request at `now`: never past the absolute expiry.
    pub fn idle_expiry(&self, now: i64, absolute_expires_at: i64) -> i64 {
        now.saturating_add(self.idle_secs).min(absolute_expires_at)
    }
}

/// A session's last-seen time is written at most this often: a page view within a minute of
/// the last recorded one costs no write (the idle timeout is then at most a minute early).
pub const TOUCH_EVERY_SECS: i64 = 60;

/// Whether a request at `now` should record itself on a session last seen at `last_seen_at`.
pub fn is_touch_due(last_seen_at: i64, now: i64) -> bool {
    now - last_seen_at >= TOUCH_EVERY_SECS
}

/// Whether a form post comes from our own pages. Browsers say where a request comes from in
/// `Sec-Fetch-Site` and `Origin`; when one is present it must name our origin (a cross-site,
/// same-site-but-other-origin, or `null` origin post is refused). A request with neither is
/// not from a current browser, and the form's CSRF token alone decides.
pub fn is_same_origin_post(
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
    our_origin: &str,
) -> bool {
    if let Some(site) = sec_fetch_site
        && !site.eq_ignore_ascii_case("same-origin")
    {
        return false;
    }
    match origin {
        Some(origin) => origin.eq_ignore_ascii_case(our_origin),
        None => true,
    }
}

/// The origin (`scheme://host[:port]`) of an absolute URL such as the issuer.
pub fn origin_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(url) => url.origin().ascii_serialization(),
        Err(_) => String::new(),
    }
}

/// At most `limit` events per minute (a fixed window), counted in this process.
#[derive(Debug)]
pub struct PerMinuteLimit {
    limit: u32,
    window: Mutex<(i64, u32)>,
}

impl PerMinuteLimit {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            window: Mutex::new((i64::MIN, 0)),
        }
    }

    /// Counts one event at `now`; `false` when the minute's allowance is spent.
    pub fn allow(&self, now: i64) -> bool {
        let minute = now.div_euclid(60);
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if window.0 != minute {
            *window = (minute, 0);
        }
        if window.1 >= self.limit {
            return false;
        }
        window.1 += 1;
        true
    }

    /// Whether the allowance of the minute of `now` is spent, counting nothing.
    pub fn is_spent(&self, now: i64) -> bool {
        let window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        window.0 == now.div_euclid(60) && window.1 >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_expiry_never_passes_the_absolute_one() {
        let timeouts = Timeouts::from_minutes_and_hours(30, 12);
        assert_eq!(timeouts.idle_secs, 1800);
        assert_eq!(timeouts.absolute_secs, 43_200);
        assert_eq!(timeouts.idle_expiry(1000, 100_000), 2800);
        assert_eq!(timeouts.idle_expiry(99_000, 100_000), 100_000);
    }

    #[test]
    fn touches_are_written_at_most_once_a_minute() {
        assert!(!is_touch_due(1000, 1059));
        assert!(is_touch_due(1000, 1060));
    }

    #[test]
    fn only_same_origin_posts_pass() {
        let ours = "https://auth.example.com";
        let cases = [
            (
                "same origin, both headers",
                Some("same-origin"),
                Some(ours),
                true,
            ),
            ("origin only", None, Some(ours), true),
            ("fetch metadata only", Some("same-origin"), None, true),
            ("no browser headers", None, None, true),
            (
                "cross-site",
                Some("cross-site"),
                Some("https://evil.example"),
                false,
            ),
            (
                "same-site sibling",
                Some("same-site"),
                Some("https://app.example.com"),
                false,
            ),
            (
                "other origin without fetch metadata",
                None,
                Some("https://evil.example"),
                false,
            ),
            ("opaque origin", None, Some("null"), false),
            (
                "other port",
                None,
                Some("https://auth.example.com:8443"),
                false,
            ),
            ("user-initiated", Some("none"), None, false),
        ];
        for (name, site, origin, allowed) in cases {
            assert_eq!(is_same_origin_post(site, origin, ours), allowed, "{name}");
        }
    }

    #[test]
    fn origins_of_issuers() {
        assert_eq!(
            origin_of("https://auth.example.com/t1"),
            "https://auth.example.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }

    #[test]
    fn the_limit_resets_each_minute() {
        let limit = PerMinuteLimit::new(2);
        assert!(limit.allow(60) && limit.allow(61));
        assert!(!limit.allow(119));
        assert!(limit.allow(120));
        assert!(!limit.is_spent(120) && limit.allow(121) && limit.is_spent(121));
        assert!(!limit.is_spent(180), "a new minute");
    }
}
