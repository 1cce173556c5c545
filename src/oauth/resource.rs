//! Resource indicators (RFC 8707): the canonical form of a protected resource's URI.
//!
//! The canonical form is what a token's `aud` carries. Clients vary the spelling (upper-case
//! host, explicit default port, a trailing slash on an origin, query parameters), so requested
//! values are normalised before they are compared with the configured resources.

use std::fmt;

/// A resource URI in canonical form: lower-case scheme and host, no default port, `/` for an
/// empty path, no query, no fragment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceUri(String);

impl ResourceUri {
    /// Parses a configured resource. Queries and fragments are refused outright.
    pub fn parse(input: &str) -> Result<Self, String> {
        let url = Self::parse_url(input)?;
        if url.query().is_some() {
            return Err(format!("`{input}` must not have a query"));
        }
        Ok(Self::canonical(url))
    }

    /// Normalises a `resource` parameter sent by a client. A query is dropped (some hosts add
    /// one); a fragment is refused, as RFC 8707 §2 requires.
    pub fn from_request(input: &str) -> Result<Self, String> {
        Self::parse_url(input).map(Self::canonical)
    }

    fn parse_url(input: &str) -> Result<url::Url, String> {
        let url =
            url::Url::parse(input).map_err(|e| format!("`{input}` is not an absolute URI: {e}"))?;
        if url.fragment().is_some() {
            return Err(format!("`{input}` must not have a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{input}` must not carry user information"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("`{input}` has no host"))?;
        match url.scheme() {
            "https" => Ok(url),
            "http" if super::loopback::is_loopback_host(host) => Ok(url),
            _ => Err(format!(
                "`{input}` must be an https URI (http only on loopback)"
            )),
        }
    }

    fn canonical(mut url: url::Url) -> Self {
        // The URL parser already lower-cases scheme and host, drops a default port and turns
        // an empty path into `/`.
        url.set_query(None);
        Self(url.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
