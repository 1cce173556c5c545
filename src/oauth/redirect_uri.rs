//! Redirect URIs: which may be registered, and which requested URI matches a registered one.
//!
//! Registered URIs are kept as the exact strings the client sent and compared as strings
//! (RFC 6749 §3.1.2.3, OAuth 2.1 §2.3.1): no URL normalisation, so no normaliser quirk can make
//! two different URIs equal. The one exception is RFC 8252 §7.3: for `http` on a loopback host
//! the port is ignored, because native apps listen on an ephemeral port.
//! Which private-use schemes may be registered is `redirect_scheme`'s rule.

use std::fmt;

use super::redirect_scheme::{is_forbidden_scheme, is_native_scheme_allowed, is_scheme_syntax};

/// Why a redirect URI (or an allow-list pattern) is refused; the text names the URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("a redirect URI is longer than {0} characters")]
    TooLong(usize),
    #[error("`{0}` has a fragment, which redirect URIs must not have")]
    Fragment(String),
    #[error("`{0}` contains whitespace or control characters")]
    Whitespace(String),
    #[error("`{0}` contains a backslash")]
    Backslash(String),
    #[error("`{0}` is not an absolute URI")]
    NotAbsolute(String),
    #[error("write the scheme of `{0}` in lower case")]
    SchemeCase(String),
    #[error("`{uri}` is not of the form {scheme}://host/path")]
    NotHierarchical { uri: String, scheme: String },
    #[error(
        "the `{0}:` scheme is not allowed in a redirect URI: it runs code or opens a program other than the app"
    )]
    ForbiddenScheme(String),
    #[error(
        "the `{0}:` scheme is not accepted: a native app's scheme must be reverse-domain (com.example.app:, RFC 8252 §7.1) or one of this server's known app schemes; https and loopback http work for every app"
    )]
    UnknownScheme(String),
    #[error("`{0}` carries user information")]
    UserInformation(String),
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error(
        "`{0}` uses plain http on a host that is not loopback (localhost, 127.0.0.1 or [::1]); use https"
    )]
    PlainHttp(String),
    #[error("`{0}` is only a scheme")]
    OnlyScheme(String),
    #[error("`{0}`: a prefix pattern must start with https:// (or be `loopback` or `scheme://*`)")]
    PatternScheme(String),
    #[error("`{0}`: a prefix pattern must include the host and a `/`")]
    PatternHost(String),
}

/// A redirect URI accepted for registration, kept exactly as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

/// A requested redirect URI that matched a registered one. Only [`match_redirect_uri`] makes
/// one, so an error can be redirected to it only after the match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRedirectUri(String);

/// What kind of place a redirect URI sends the user to, for the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    /// An https URL on a host.
    Web,
    /// http on this machine (a native app's local listener).
    Loopback,
    /// A private-use scheme such as `cursor://` (a native app).
    CustomScheme,
}

impl RedirectUri {
    /// Validates a redirect URI for registration. A private-use scheme must be in the
    /// reverse-domain form or one of `custom_schemes` (RFC 8252 §7.1).
    pub fn parse(
        input: &str,
        max_length: usize,
        custom_schemes: &[String],
    ) -> Result<Self, RedirectUriError> {
        let uri = Self::parse_form(input, max_length)?;
        let scheme = input.split(':').next().unwrap_or_default();
        if matches!(scheme, "http" | "https") || is_native_scheme_allowed(scheme, custom_schemes) {
            return Ok(uri);
        }
        Err(RedirectUriError::UnknownScheme(scheme.to_owned()))
    }

    /// Every rule of [`parse`](Self::parse) except which private-use schemes are accepted.
    fn parse_form(input: &str, max_length: usize) -> Result<Self, RedirectUriError> {
        use RedirectUriError as E;
        let owned = || input.to_owned();
        if input.len() > max_length {
            return Err(E::TooLong(max_length));
        }
        if input.contains('#') {
            return Err(E::Fragment(owned()));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(E::Whitespace(owned()));
        }
        if input.contains('\\') {
            return Err(E::Backslash(owned()));
        }
        let url = url::Url::parse(input).map_err(|_| E::NotAbsolute(owned()))?;
        let scheme = url.scheme();
        // The URL parser forgives what browsers forgive (`HTTPS:`, `https:///host`); a
        // redirect URI is compared as a string, so it must already be in plain form.
        if !input.starts_with(scheme) {
            return Err(E::SchemeCase(owned()));
        }
        let after_scheme = &input[scheme.len()..];
        if matches!(scheme, "http" | "https")
            && (!after_scheme.starts_with("://") || after_scheme.starts_with(":///"))
        {
            return Err(E::NotHierarchical {
                uri: owned(),
                scheme: scheme.to_owned(),
            });
        }
        if is_forbidden_scheme(scheme) {
            return Err(E::ForbiddenScheme(scheme.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(E::UserInformation(owned()));
        }
        match scheme {
            "https" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(E::NoHost(owned()));
                }
            }
            "http" => {
                if !url.host_str().is_some_and(is_loopback_literal) {
                    return Err(E::PlainHttp(owned()));
                }
            }
            // A private-use scheme (RFC 8252 §7.1) for a native app. It must be followed by
            // something: `cursor:` alone names no app callback.
            _ => {
                if input.len() <= scheme.len() + 1 {
                    return Err(E::OnlyScheme(owned()));
                }
            }
        }
        Ok(Self(input.to_owned()))
    }

    /// A URI accepted once (read back from storage), taken as it is: today's rules are not
    /// re-run, so tightening them cannot break what was registered or requested yesterday.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> RedirectKind {
        kind_of(&self.0)
    }
}

impl VerifiedRedirectUri {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI as the redirect URI its request is stored and later compared with.
    pub fn to_redirect_uri(&self) -> RedirectUri {
        RedirectUri(self.0.clone())
    }

    pub fn kind(&self) -> RedirectKind {
        kind_of(&self.0)
    }

    /// The host (or the scheme, for a custom-scheme URI) to show the user. A URI stored under
    /// older rules may not parse; its scheme is shown then.
    pub fn display_host(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(url) => match url.host_str() {
                Some(host) if matches!(url.scheme(), "http" | "https") => host.to_owned(),
                _ => format!("{}://", url.scheme()),
            },
            Err(_) => format!("{}://", self.0.split(':').next().unwrap_or_default()),
        }
    }
}

impl fmt::Display for VerifiedRedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn kind_of(uri: &str) -> RedirectKind {
    if uri.starts_with("https://") {
        RedirectKind::Web
    } else if uri.starts_with("http://") {
        RedirectKind::Loopback
    } else {
        RedirectKind::CustomScheme
    }
}

/// The loopback hosts of RFC 8252 §7.3 and §8.3, as they appear in a URL.
fn is_loopback_literal(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

/// Returns the requested URI, verified, when it equals one of the registered URIs: exactly, or
/// for `http` on a loopback host, exactly except for the port (RFC 8252 §7.3). `localhost` and
/// `127.0.0.1` are different hosts.
pub fn match_redirect_uri<'a>(
    registered: impl IntoIterator<Item = &'a str>,
    requested: &str,
) -> Option<VerifiedRedirectUri> {
    let requested_portless = loopback_without_port(requested);
    for candidate in registered {
        if candidate == requested {
            return Some(VerifiedRedirectUri(requested.to_owned()));
        }
        if let (Some(want), Some(have)) = (&requested_portless, loopback_without_port(candidate))
            && *want == have
        {
            return Some(VerifiedRedirectUri(requested.to_owned()));
        }
    }
    None
}

/// For an `http` URI on a loopback host, the URI with its port removed and an empty path
/// written as `/`; `None` for anything else. Works on the raw string so nothing else is
/// normalised.
fn loopback_without_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, port) = authority.split_at(close + 1);
        if !(port.is_empty() || is_port(port)) {
            return None;
        }
        host
    } else {
        match authority.split_once(':') {
            Some((host, port)) if is_port(&format!(":{port}")) => host,
            Some(_) => return None,
            None => authority,
        }
    };
    if !is_loopback_literal(host) {
        return None;
    }
    let tail = if tail.is_empty() || tail.starts_with('?') {
        format!("/{tail}")
    } else {
        tail.to_owned()
    };
    Some(format!("http://{host}{tail}"))
}

/// `:` and a TCP port, 1 to 65535, in digits (RFC 3986 §3.2.3 allows leading zeros).
fn is_port(text: &str) -> bool {
    text.strip_prefix(':').is_some_and(|digits| {
        !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.parse::<u16>().is_ok_and(|port| port > 0)
    })
}

/// An operator's allow-list entry for registered redirect URIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowPattern {
    /// `loopback`: http on localhost, 127.0.0.1 or [::1], any port and path.
    Loopback,
    /// `cursor://*`: any URI of this private-use scheme.
    Scheme(String),
    /// `https://chatgpt.com/connector/*`: any URI starting with this prefix.
    Prefix(String),
    /// Anything else: this exact URI.
    Exact(String),
}

impl std::str::FromStr for AllowPattern {
    type Err = RedirectUriError;

    fn from_str(pattern: &str) -> Result<Self, Self::Err> {
        Self::parse(pattern)
    }
}

impl AllowPattern {
    pub fn parse(pattern: &str) -> Result<Self, RedirectUriError> {
        if pattern == "loopback" {
            return Ok(Self::Loopback);
        }
        let Some(prefix) = pattern.strip_suffix('*') else {
            RedirectUri::parse_form(pattern, usize::MAX)?;
            return Ok(Self::Exact(pattern.to_owned()));
        };
        if let Some(scheme) = prefix.strip_suffix("://")
            && !scheme.is_empty()
            && !matches!(scheme, "http" | "https")
            && !is_forbidden_scheme(scheme)
            && is_scheme_syntax(scheme)
        {
            return Ok(Self::Scheme(scheme.to_owned()));
        }
        // A prefix must include the host and a path separator, so `https://a.com*` cannot
        // match `https://a.com.evil.example`.
        let after_scheme = prefix
            .strip_prefix("https://")
            .ok_or_else(|| RedirectUriError::PatternScheme(pattern.to_owned()))?;
        match after_scheme.find('/') {
            Some(slash) if slash > 0 => Ok(Self::Prefix(prefix.to_owned())),
            _ => Err(RedirectUriError::PatternHost(pattern.to_owned())),
        }
    }

    pub fn allows(&self, uri: &RedirectUri) -> bool {
        self.allows_str(uri.as_str())
    }

    /// [`allows`](Self::allows) for a URI already validated (a stored one).
    pub fn allows_str(&self, uri: &str) -> bool {
        match self {
            Self::Loopback => loopback_without_port(uri).is_some(),
            Self::Scheme(scheme) => uri
                .strip_prefix(scheme.as_str())
                .is_some_and(|rest| rest.starts_with("://")),
            Self::Prefix(prefix) => uri.starts_with(prefix.as_str()),
            Self::Exact(exact) => uri == exact,
        }
    }
}

#[cfg(test)]
mod tests;
