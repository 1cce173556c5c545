//! Resource indicators (RFC 8707): the canonical form of a protected resource's URI.
//!
//! The canonical form is what a token's `aud` carries. Clients vary the spelling (upper-case
//! host, explicit default port, a trailing slash on an origin, query parameters), so requested
//! values are normalised before they are compared with the configured resources; and hosts and
//! SDKs that normalise URLs add (or drop) one trailing slash after a path, so
//! [`ResourceUri::names`] lets `https://h/mcp/` name the configured `https://h/mcp`. The
//! configured form is always the one that goes into `aud`.

use std::fmt;

/// Why a resource URI is refused; the text names the URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceUriError {
    #[error("`{uri}` is not an absolute URI: {reason}")]
    NotAbsolute { uri: String, reason: String },
    #[error("`{0}` must not have a fragment")]
    Fragment(String),
    #[error("`{0}` must not carry user information")]
    UserInformation(String),
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error("`{0}` must be an https URI (http only on loopback)")]
    NotHttps(String),
    #[error("`{0}` must not have a query")]
    Query(String),
}

/// A resource URI in canonical form: lower-case scheme and host, no default port, `/` for an
/// empty path, no query, no fragment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceUri(String);

impl ResourceUri {
    /// Parses a configured resource. Queries and fragments are refused outright.
    pub fn parse(input: &str) -> Result<Self, ResourceUriError> {
        let url = Self::parse_url(input)?;
        if url.query().is_some() {
            return Err(ResourceUriError::Query(input.to_owned()));
        }
        Ok(Self::canonical(url))
    }

    /// Normalises a `resource` parameter sent by a client. A query is dropped (some hosts add
    /// one); a fragment is refused, as RFC 8707 §2 requires.
    pub fn from_request(input: &str) -> Result<Self, ResourceUriError> {
        Self::parse_url(input).map(Self::canonical)
    }

    fn parse_url(input: &str) -> Result<url::Url, ResourceUriError> {
        use ResourceUriError as E;
        let owned = || input.to_owned();
        let url = url::Url::parse(input).map_err(|e| E::NotAbsolute {
            uri: owned(),
            reason: e.to_string(),
        })?;
        if url.fragment().is_some() {
            return Err(E::Fragment(owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(E::UserInformation(owned()));
        }
        let host = url.host_str().ok_or_else(|| E::NoHost(owned()))?;
        match url.scheme() {
            "https" => Ok(url),
            "http" if super::loopback::is_loopback_host(host) => Ok(url),
            _ => Err(E::NotHttps(owned())),
        }
    }

    fn canonical(mut url: url::Url) -> Self {
        // The URL parser already lower-cases scheme and host, drops a default port and turns
        // an empty path into `/`.
        url.set_query(None);
        Self(url.to_string())
    }

    /// A resource accepted once (read back from storage), taken as it is: not re-parsed nor
    /// re-normalised, so what a grant was issued for is what it is compared as.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this requested resource names `configured` (a canonical URI): the same, or the
    /// same but for one trailing slash after a non-empty path (`https://h/mcp/` for
    /// `https://h/mcp`, and the other way round). Anything else is another resource:
    /// `https://h/mcp//`, `https://h/mcp/x`, `https://h/` for `https://h/mcp`.
    pub fn names(&self, configured: &str) -> bool {
        let (requested, configured) = (self.as_str(), configured);
        let one_slash_more = |longer: &str, shorter: &str| {
            longer.strip_suffix('/') == Some(shorter) && !shorter.ends_with('/')
        };
        requested == configured
            || one_slash_more(requested, configured)
            || one_slash_more(configured, requested)
    }
}

/// A configured resource ([`ResourceUri::parse`]).
impl std::str::FromStr for ResourceUri {
    type Err = ResourceUriError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_of_requested_resources() {
        let cases = [
            (
                "trailing slash on origin",
                "https://mcp.example.com",
                "https://mcp.example.com/",
            ),
            (
                "origin with slash",
                "https://mcp.example.com/",
                "https://mcp.example.com/",
            ),
            (
                "upper-case host and scheme",
                "HTTPS://MCP.Example.com/mcp",
                "https://mcp.example.com/mcp",
            ),
            (
                "default port",
                "https://mcp.example.com:443/mcp",
                "https://mcp.example.com/mcp",
            ),
            (
                "other port kept",
                "https://mcp.example.com:8443/mcp",
                "https://mcp.example.com:8443/mcp",
            ),
            (
                "query dropped",
                "https://mcp.example.com/mcp?x=1",
                "https://mcp.example.com/mcp",
            ),
            (
                "path case kept",
                "https://mcp.example.com/MCP",
                "https://mcp.example.com/MCP",
            ),
            (
                "loopback http",
                "http://localhost:3000/mcp",
                "http://localhost:3000/mcp",
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                ResourceUri::from_request(input).unwrap().as_str(),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn a_trailing_slash_after_a_path_names_the_same_resource() {
        let cases = [
            (
                "the same URI",
                "https://h.example/mcp",
                "https://h.example/mcp",
                true,
            ),
            (
                "a slash added",
                "https://h.example/mcp/",
                "https://h.example/mcp",
                true,
            ),
            (
                "a slash dropped",
                "https://h.example/mcp",
                "https://h.example/mcp/",
                true,
            ),
            (
                "a slash added, upper-case host",
                "https://H.EXAMPLE/mcp/",
                "https://h.example/mcp",
                true,
            ),
            (
                "a slash added, with a query",
                "https://h.example/mcp/?x=1",
                "https://h.example/mcp",
                true,
            ),
            (
                "a slash on a deeper path",
                "https://h.example/a/mcp/",
                "https://h.example/a/mcp",
                true,
            ),
            (
                "two slashes",
                "https://h.example/mcp//",
                "https://h.example/mcp",
                false,
            ),
            (
                "two slashes, configured with one",
                "https://h.example/mcp//",
                "https://h.example/mcp/",
                false,
            ),
            (
                "the root for a path",
                "https://h.example/",
                "https://h.example/mcp",
                false,
            ),
            (
                "a double slash at the root",
                "https://h.example//",
                "https://h.example/",
                false,
            ),
            (
                "a longer path",
                "https://h.example/mcp/x",
                "https://h.example/mcp",
                false,
            ),
            (
                "a prefix of the path",
                "https://h.example/mc",
                "https://h.example/mcp",
                false,
            ),
            (
                "path case",
                "https://h.example/MCP/",
                "https://h.example/mcp",
                false,
            ),
            (
                "another host",
                "https://other.example/mcp/",
                "https://h.example/mcp",
                false,
            ),
            (
                "another port",
                "https://h.example:8443/mcp/",
                "https://h.example/mcp",
                false,
            ),
            (
                "a slash-suffixed host",
                "https://h.example.evil/mcp/",
                "https://h.example/mcp",
                false,
            ),
        ];
        for (name, requested, configured, names) in cases {
            let configured = ResourceUri::parse(configured).unwrap();
            assert_eq!(
                ResourceUri::from_request(requested)
                    .unwrap()
                    .names(configured.as_str()),
                names,
                "{name}"
            );
        }
    }

    #[test]
    fn refused_resources() {
        for input in [
            "/mcp",
            "https://h/mcp#frag",
            "http://mcp.example.com/",
            "urn:x:y",
            "https://u@h/mcp",
        ] {
            assert!(ResourceUri::from_request(input).is_err(), "{input}");
        }
        assert!(ResourceUri::parse("https://h/mcp?x=1").is_err());
    }
}
