//! Redirect URI registration and matching (RFC 6749 §3.1.2, RFC 8252 §7.3).

use proptest::prelude::*;

use super::{REAL_REDIRECT_URIS, config, mutated, near_valid_uri, real_redirect_uri};
use crate::oauth::redirect_uri::{AllowPattern, RedirectKind, RedirectUri, match_redirect_uri};

const MAX: usize = 2000;

/// The loopback hosts of RFC 8252 §7.3, as literally written in a URI.
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

/// The oracle for RFC 8252 §7.3, written as prefixes rather than as the splitting the code
/// does: `(host, port digits, path-and-query)` of an `http` URI on a literal loopback host, an
/// empty path written as `/`.
fn loopback_parts(uri: &str) -> Option<(&'static str, Option<&str>, String)> {
    let rest = uri.strip_prefix("http://")?;
    let host = LOOPBACK_HOSTS.iter().find(|h| rest.starts_with(**h))?;
    let after_host = &rest[host.len()..];
    let (port, after_port) = match after_host.strip_prefix(':') {
        Some(port_and_tail) => {
            let digits = port_and_tail.bytes().take_while(u8::is_ascii_digit).count();
            (Some(&port_and_tail[..digits]), &port_and_tail[digits..])
        }
        None => (None, after_host),
    };
    let tail = match after_port.chars().next() {
        None => "/".to_owned(),
        Some('?') => format!("/{after_port}"),
        Some('/') => after_port.to_owned(),
        Some(_) => return None,
    };
    Some((host, port, tail))
}

/// A TCP port as URIs write it: 1 to 5 digits, at most 65535.
/// Any number of digits (RFC 3986 §3.2.3 allows leading zeros) naming a port up to 65535.
fn is_valid_port(digits: &str) -> bool {
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.parse::<u32>().is_ok_and(|p| p <= 65_535)
}

/// A registrable URI (mostly real ones, some assembled) and a requested one derived from it.
fn registered_and_requested() -> impl Strategy<Value = (String, String)> {
    let registered = prop_oneof![
        3 => real_redirect_uri(),
        1 => super::assembled_uri().prop_filter("registrable", |u| RedirectUri::parse(u, MAX, &crate::oauth::proptests::custom_schemes()).is_ok()),
    ];
    registered.prop_flat_map(|registered| {
        let base = registered.clone();
        let requested = prop_oneof![
            1 => Just(base.clone()),
            4 => mutated(Just(base.clone()), 3),
            2 => (0u32..200_000).prop_map({
                let base = base.clone();
                move |port| with_port(&base, Some(&port.to_string()))
            }),
            1 => Just(with_port(&base, None)),
            1 => real_redirect_uri(),
        ];
        (Just(registered), requested)
    })
}

/// `uri` with its port replaced (loopback URIs only; others are returned unchanged).
fn with_port(uri: &str, port: Option<&str>) -> String {
    match loopback_parts(uri) {
        Some((host, _, tail)) => match port {
            Some(port) => format!("http://{host}:{port}{tail}"),
            None => format!("http://{host}{tail}"),
        },
        None => uri.to_owned(),
    }
}

proptest! {
    #![proptest_config(config(3_000))]

    /// A registered URI is kept exactly, and is only what RFC 6749 §3.1.2 and OAuth 2.1 allow:
    /// absolute, no fragment, no user information, no dangerous scheme, https or loopback http.
    #[test]
    fn registration_accepts_only_plain_absolute_uris(input in near_valid_uri()) {
        let Ok(uri) = RedirectUri::parse(&input, MAX, &crate::oauth::proptests::custom_schemes()) else { return Ok(()) };
        prop_assert_eq!(uri.as_str(), input.as_str());
        prop_assert!(!input.contains('#') && !input.contains('\\'));
        prop_assert!(!input.chars().any(|c| c.is_whitespace() || c.is_control()));
        let url = url::Url::parse(&input).expect("an accepted URI parses");
        prop_assert!(input.starts_with(url.scheme()), "scheme written in lower case");
        prop_assert!(url.username().is_empty() && url.password().is_none());
        prop_assert!(!["javascript", "data", "file", "blob", "vbscript", "about", "filesystem"]
            .contains(&url.scheme()));
        match url.scheme() {
            "https" => prop_assert!(input.starts_with("https://") && url.host_str().is_some_and(|h| !h.is_empty())),
            "http" => prop_assert!(input.starts_with("http://")
                && url.host_str().is_some_and(|h| LOOPBACK_HOSTS.contains(&h))),
            _ => prop_assert_eq!(uri.kind(), RedirectKind::CustomScheme),
        }
        // Registered once, a URI matches itself and renders on the consent page.
        let verified = match_redirect_uri([input.as_str()], &input);
        prop_assert_eq!(verified.as_ref().map(|v| v.as_str()), Some(input.as_str()));
        let verified = verified.expect("matched");
        prop_assert_eq!(verified.kind(), uri.kind());
        prop_assert!(!verified.display_host().is_empty());
    }

    /// Overlong input is refused before it is parsed.
    #[test]
    fn registration_refuses_overlong_uris(input in near_valid_uri(), max in 0usize..60) {
        if input.len() > max {
            prop_assert!(RedirectUri::parse(&input, max, &crate::oauth::proptests::custom_schemes()).is_err());
        }
    }

    /// Matching never matches a different scheme, host, path or query: a requested URI
    /// matches only when it is the registered one exactly, or (for http on a literal loopback
    /// host) differs in nothing but the port. Whether the port is valid is the next property's.
    #[test]
    fn matching_never_matches_another_scheme_host_path_or_query(
        (registered, requested) in registered_and_requested()
    ) {
        let matched = match_redirect_uri([registered.as_str()], &requested);
        if let Some(verified) = &matched {
            prop_assert_eq!(verified.as_str(), requested.as_str(), "the requested URI is used");
        }
        if matched.is_none() || requested == registered {
            prop_assert_eq!(matched.is_some(), requested == registered, "exact match always matches");
            return Ok(());
        }
        let Some((host, _, tail)) = loopback_parts(&registered) else {
            return Err(TestCaseError::fail(format!(
                "{requested:?} matched non-loopback {registered:?}"
            )));
        };
        let requested_parts = loopback_parts(&requested);
        prop_assert!(
            requested_parts.as_ref().is_some_and(|(h, _, t)| *h == host && *t == tail),
            "{requested:?} matched {registered:?} but differs beyond the port"
        );
        // Cross-check with a real URL parser wherever it reads the requested URI.
        if let (Ok(want), Ok(have)) = (url::Url::parse(&registered), url::Url::parse(&requested)) {
            prop_assert_eq!(have.scheme(), "http");
            prop_assert_eq!(have.host_str(), want.host_str());
            prop_assert_eq!(have.path(), want.path());
            prop_assert_eq!(have.query(), want.query());
            prop_assert!(have.username().is_empty() && have.password().is_none());
            prop_assert!(have.fragment().is_none());
        }
    }

    /// With several registered URIs, a request matches when it matches any one of them.
    #[test]
    fn matching_a_list_is_matching_any_member(
        registered in proptest::sample::subsequence(REAL_REDIRECT_URIS, 0..=REAL_REDIRECT_URIS.len()),
        requested in mutated(real_redirect_uri(), 2),
    ) {
        let any = registered.iter().any(|r| match_redirect_uri([*r], &requested).is_some());
        prop_assert_eq!(match_redirect_uri(registered.iter().copied(), &requested).is_some(), any);
    }

    /// An allow-list prefix pattern never lets a URI on another host through.
    #[test]
    fn allow_list_prefixes_keep_their_host(
        pattern in mutated(Just("https://chatgpt.com/connector/*".to_owned()), 2),
        candidate in near_valid_uri(),
    ) {
        let (Ok(AllowPattern::Prefix(prefix)), Ok(uri)) =
            (AllowPattern::parse(&pattern), RedirectUri::parse(&candidate, MAX, &crate::oauth::proptests::custom_schemes()))
        else { return Ok(()) };
        if AllowPattern::Prefix(prefix.clone()).allows(&uri) {
            let want = url::Url::parse(&prefix).expect("a prefix pattern is a URL");
            let have = url::Url::parse(uri.as_str()).expect("a registered URI parses");
            prop_assert_eq!(have.host_str(), want.host_str());
            prop_assert_eq!(have.scheme(), "https");
        }
    }
}

proptest! {
    #![proptest_config(config(3_000))]

    /// RFC 8252 §7.3: a loopback match ignores the port and only the port, and only a port a
    /// URI can have; the verified URI is one that could be registered and renders on the
    /// consent page.
    #[test]
    fn loopback_matching_ignores_only_a_valid_port(
        (registered, requested) in registered_and_requested()
    ) {
        let matched = match_redirect_uri([registered.as_str()], &requested);
        let expected = requested == registered
            || match (loopback_parts(&registered), loopback_parts(&requested)) {
                (Some((h1, p1, t1)), Some((h2, p2, t2))) => {
                    h1 == h2 && t1 == t2 && p1.is_none_or(is_valid_port) && p2.is_none_or(is_valid_port)
                }
                _ => false,
            };
        // Port 0 is a valid URI port but no listener's: either answer is acceptable.
        let is_port_zero = |uri: &str| loopback_parts(uri).is_some_and(|(_, p, _)| p.is_some_and(|p| p.bytes().all(|b| b == b'0')));
        let port_zero = is_port_zero(&requested) || is_port_zero(&registered);
        if !port_zero {
            prop_assert_eq!(matched.is_some(), expected, "{:?} against {:?}", requested, registered);
        }
        if let Some(verified) = matched {
            prop_assert!(RedirectUri::parse(verified.as_str(), usize::MAX, &crate::oauth::proptests::custom_schemes()).is_ok());
            prop_assert!(!verified.display_host().is_empty());
        }
    }
}
