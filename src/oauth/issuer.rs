//! The issuer identifier (RFC 8414 §2) and the URLs derived from it.
//!
//! The issuer string is kept exactly as configured: clients compare it byte for byte with the
//! metadata's `issuer`, the JWT `iss` and the RFC 9207 `iss` on redirects.

use std::fmt;

/// Why an issuer URL is refused (RFC 8414 §2); the text names the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    #[error("`{uri}` is not an absolute URL: {reason}")]
    NotAbsolute { uri: String, reason: String },
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error("`{0}` must use https (http is allowed only for loopback hosts)")]
    PlainHttp(String),
    #[error("`{uri}` has scheme `{scheme}`; an issuer is an https URL")]
    Scheme { uri: String, scheme: String },
    #[error("`{0}` must not have a query (RFC 8414 §2)")]
    Query(String),
    #[error("`{0}` must not have a fragment (RFC 8414 §2)")]
    Fragment(String),
    #[error("`{0}` must not carry user information")]
    UserInformation(String),
    #[error(
        "`{0}` ends with a slash; write it without one (clients compare the issuer byte for byte)"
    )]
    TrailingSlash(String),
    #[error("`{uri}` is not in canonical form; write it as `{canonical}`")]
    NotCanonical { uri: String, canonical: String },
}

/// A validated issuer URL: absolute, `https` (or `http` on a loopback host), no query, no
/// fragment, no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    value: String,
    path: String,
    loopback: bool,
}

impl Issuer {
    pub fn parse(input: &str) -> Result<Self, IssuerError> {
        use IssuerError as E;
        let owned = || input.to_owned();
        let url = url::Url::parse(input).map_err(|e| E::NotAbsolute {
            uri: owned(),
            reason: e.to_string(),
        })?;
        let host = url.host_str().ok_or_else(|| E::NoHost(owned()))?;
        let loopback = super::loopback::is_loopback_host(host);
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(E::PlainHttp(owned())),
            other => {
                return Err(E::Scheme {
                    uri: owned(),
                    scheme: other.to_owned(),
                });
            }
        }
        if url.query().is_some() || input.contains('?') {
            return Err(E::Query(owned()));
        }
        if url.fragment().is_some() || input.contains('#') {
            return Err(E::Fragment(owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(E::UserInformation(owned()));
        }
        if input.ends_with('/') {
            return Err(E::TrailingSlash(owned()));
        }
        // Reject anything the URL parser would rewrite (upper-case host, default port, dot
        // segments): the configured string must already be the form clients will see.
        let canonical = url.as_str().trim_end_matches('/');
        if canonical != input {
            return Err(E::NotCanonical {
                uri: owned(),
                canonical: canonical.to_owned(),
            });
        }
        let path = url.path().trim_end_matches('/').to_owned();
        Ok(Self {
            value: input.to_owned(),
            path,
            loopback,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The issuer's path without a trailing slash: `""` for `https://h`, `"/t1"` for `https://h/t1`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// An absolute URL of one of our endpoints; `endpoint` starts with `/`.
    pub fn endpoint(&self, endpoint: &str) -> String {
        format!("{}{endpoint}", self.value)
    }

    /// Where RFC 8414 §3 says clients fetch this issuer's metadata: the well-known segment
    /// inserted between the host and the issuer's path.
    pub fn metadata_path(&self) -> String {
        format!("/.well-known/oauth-authorization-server{}", self.path)
    }
}

impl std::str::FromStr for Issuer {
    type Err = IssuerError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_issuers_keep_their_exact_string() {
        for input in [
            "https://auth.example.com",
            "https://h.example/t1",
            "http://127.0.0.1:8080",
            "http://localhost:9000",
            "http://[::1]:8080",
        ] {
            assert_eq!(Issuer::parse(input).unwrap().as_str(), input);
        }
    }

    #[test]
    fn refused_issuers() {
        let cases = [
            ("relative", "auth.example.com"),
            ("plain http to a public host", "http://auth.example.com"),
            ("query", "https://auth.example.com?x=1"),
            ("empty query", "https://auth.example.com/?"),
            ("fragment", "https://auth.example.com#x"),
            ("trailing slash", "https://auth.example.com/"),
            ("upper-case host", "https://Auth.example.com"),
            ("default port", "https://auth.example.com:443"),
            ("userinfo", "https://u:p@auth.example.com"),
            ("other scheme", "ftp://auth.example.com"),
        ];
        for (name, input) in cases {
            assert!(
                Issuer::parse(input).is_err(),
                "{name}: {input} was accepted"
            );
        }
    }

    #[test]
    fn metadata_path_inserts_the_well_known_segment() {
        assert_eq!(
            Issuer::parse("https://h.example").unwrap().metadata_path(),
            "/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            Issuer::parse("https://h.example/t1")
                .unwrap()
                .metadata_path(),
            "/.well-known/oauth-authorization-server/t1"
        );
    }

    #[test]
    fn endpoints_extend_the_issuer() {
        let issuer = Issuer::parse("https://h.example/t1").unwrap();
        assert_eq!(
            issuer.endpoint("/jwks.json"),
            "https://h.example/t1/jwks.json"
        );
    }
}
