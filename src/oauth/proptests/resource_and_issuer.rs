//! Resource indicators (RFC 8707) and the issuer identifier (RFC 8414 §2): canonical forms
//! that are fixed points, spelling variants that meet, and real differences that never do.

use proptest::prelude::*;

use super::{assembled_uri, config, mutated, near_valid_uri};
use crate::oauth::issuer::Issuer;
use crate::oauth::resource::ResourceUri;

const RESOURCES: &[&str] = &[
    "https://mcp.example.com/mcp",
    "https://mcp.example.com/",
    "https://mcp.example.com:8443/a/b",
    "http://localhost:3000/mcp",
    "http://127.0.0.1/",
    "http://[::1]:9/mcp",
];

fn resource() -> impl Strategy<Value = String> {
    proptest::sample::select(RESOURCES).prop_map(str::to_owned)
}

/// A spelling of `uri` that RFC 8707 clients vary without meaning another resource: case of
/// scheme and host, an explicit default port, an empty path for `/`, a query.
fn respelled(
    uri: &str,
    upper_scheme: bool,
    upper_host: bool,
    default_port: bool,
    query: bool,
) -> String {
    let url = url::Url::parse(uri).expect("a resource parses");
    let scheme = if upper_scheme {
        url.scheme().to_uppercase()
    } else {
        url.scheme().to_owned()
    };
    let host = url.host_str().expect("a host");
    let host = if upper_host {
        host.to_uppercase()
    } else {
        host.to_owned()
    };
    let port = match url.port() {
        Some(port) => format!(":{port}"),
        None if default_port => format!(":{}", url.port_or_known_default().expect("http(s)")),
        None => String::new(),
    };
    let path = if url.path() == "/" && query {
        ""
    } else {
        url.path()
    };
    let query = if query { "?client=x&v=1" } else { "" };
    format!("{scheme}://{host}{port}{path}{query}")
}

proptest! {
    #![proptest_config(config(3_000))]

    /// Whatever a client sends, an accepted resource is in canonical form: https (or http on
    /// loopback), no query, fragment or user information, and parsing it again gives itself.
    #[test]
    fn accepted_resources_are_canonical_fixed_points(input in prop_oneof![
        2 => mutated(resource(), 3),
        1 => near_valid_uri(),
        1 => mutated(assembled_uri(), 1),
    ]) {
        let Ok(resource) = ResourceUri::from_request(&input) else { return Ok(()) };
        let url = url::Url::parse(resource.as_str()).expect("canonical form parses");
        prop_assert!(url.query().is_none() && url.fragment().is_none());
        prop_assert!(url.username().is_empty() && url.password().is_none());
        let host = url.host_str().expect("a host");
        prop_assert!(url.scheme() == "https" || (url.scheme() == "http" && crate::oauth::loopback::is_loopback_host(host)));
        prop_assert_eq!(ResourceUri::from_request(resource.as_str()), Ok(resource.clone()));
        prop_assert_eq!(ResourceUri::parse(resource.as_str()), Ok(resource.clone()));
        if input.contains('#') {
            return Err(TestCaseError::fail("a fragment was accepted (RFC 8707 §2)"));
        }
    }

    /// Spelling variants of a configured resource mean that resource.
    #[test]
    fn spelling_variants_meet(
        uri in resource(),
        (upper_scheme, upper_host, default_port, query) in any::<(bool, bool, bool, bool)>(),
    ) {
        let variant = respelled(&uri, upper_scheme, upper_host, default_port, query);
        prop_assert_eq!(ResourceUri::from_request(&variant), ResourceUri::parse(&uri), "{}", variant);
    }

    /// A resource is never confused with another: different configured resources stay
    /// different, and a mutated one equals the original only when the URL parser reads the
    /// same scheme, host, port and path.
    #[test]
    fn different_resources_stay_different(uri in resource(), other in mutated(resource(), 2)) {
        let (Ok(a), Ok(b)) = (ResourceUri::parse(&uri), ResourceUri::from_request(&other)) else {
            return Ok(());
        };
        let (x, y) = (url::Url::parse(&uri).unwrap(), url::Url::parse(&other).unwrap());
        let same = x.scheme() == y.scheme() && x.host() == y.host()
            && x.port_or_known_default() == y.port_or_known_default() && x.path() == y.path();
        prop_assert_eq!(a == b, same, "{} vs {}", uri, other);
    }

    /// An accepted issuer is exactly its canonical URL (RFC 8414 §2: https, no query or
    /// fragment), so clients comparing it byte for byte agree, and its derived URLs extend it.
    #[test]
    fn accepted_issuers_are_canonical(input in prop_oneof![
        mutated(proptest::sample::select(&["https://auth.example.com", "https://h.example/t1", "http://127.0.0.1:8080", "http://[::1]:8080"][..]).prop_map(str::to_owned), 3),
        mutated(assembled_uri(), 1),
    ]) {
        let Ok(issuer) = Issuer::parse(&input) else { return Ok(()) };
        prop_assert_eq!(issuer.as_str(), input.as_str());
        prop_assert!(!input.contains(['?', '#']) && !input.ends_with('/'));
        let url = url::Url::parse(&input).expect("an issuer parses");
        prop_assert_eq!(url.as_str().trim_end_matches('/'), input.as_str());
        prop_assert!(url.scheme() == "https" || issuer.is_loopback());
        prop_assert_eq!(issuer.endpoint("/token"), format!("{input}/token"));
        prop_assert!(issuer.metadata_path().starts_with("/.well-known/oauth-authorization-server"));
        prop_assert_eq!(issuer.path(), url.path().trim_end_matches('/'));
    }
}
