//! Remembered consent: whether an approval the user asked to remember covers a new
//! authorization request, so that the consent page may be skipped.
//!
//! A remembered approval covers only what the user saw (the MCP authorization spec's
//! confused-deputy rule: every client ends up behind the same upstream client): the same
//! client, unchanged since (its metadata fingerprint), the same redirect URI, the same
//! resource, and no scope beyond those approved. Anything wider shows the page again.
//!
//! Hosts register themselves again every few days (a new `client_id` with the same metadata).
//! An approval carries over to such a registration only when nothing the user saw differs and
//! the codes go to the same party: the same *software* (identical metadata: name, redirect
//! URIs, everything), and an `https` redirect URI on a non-loopback host, exactly the approved
//! one. Whoever registers a copy cannot receive codes at someone else's https endpoint, so the
//! copy's approvals reach only the party that already had them. A loopback or private-use
//! scheme redirect can be answered by any program on the machine, so there a new `client_id`
//! always shows the page.

use super::redirect_uri::match_redirect_uri;
use super::scope::ScopeSet;

/// What one approval was given for, or what one request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentTerms<'a> {
    pub client_id: &'a str,
    /// A digest of the client's metadata as the consent page showed it; any edit of the client
    /// (RFC 7592, the admin API, a changed metadata document) changes it.
    pub client_fingerprint: &'a str,
    /// The client's software (a digest of its metadata alone), for dynamic clients.
    pub software: Option<&'a str>,
    pub redirect_uri: &'a str,
    /// The canonical resource URI (RFC 8707).
    pub resource: &'a str,
    /// Space-separated scopes (RFC 6749 §3.3).
    pub scope: &'a str,
}

/// Whether the `approved` terms cover the `requested` ones.
///
/// The redirect URI must be the approved one exactly, except that for `http` on a loopback
/// host any port matches (RFC 8252 §7.3): a native app picks a new port each run, the page
/// shows "this computer" and never the port, and any local program could bind any port
/// anyway. The requested scopes must be a subset of the approved ones; order and repetition do
/// not matter.
///
/// Another client is covered only as the module says: the same software, through an https
/// redirect URI on a non-loopback host.
pub fn is_covered(approved: &ConsentTerms<'_>, requested: &ConsentTerms<'_>) -> bool {
    let same_client = approved.client_id == requested.client_id
        && !approved.client_fingerprint.is_empty()
        && approved.client_fingerprint == requested.client_fingerprint;
    let same_software = approved.software.is_some_and(|s| !s.is_empty())
        && approved.software == requested.software
        && is_web_redirect(requested.redirect_uri);
    (same_client || same_software)
        && approved.resource == requested.resource
        && match_redirect_uri([approved.redirect_uri], requested.redirect_uri).is_some()
        && ScopeSet::from_stored(requested.scope)
            .is_subset_of(&ScopeSet::from_stored(approved.scope))
}

/// An https URI on a host that is not this machine: only its host's owner receives what is
/// sent there.
fn is_web_redirect(uri: &str) -> bool {
    use url::Host;
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    url.scheme() == "https"
        && match url.host() {
            Some(Host::Domain(domain)) => {
                let domain = domain.trim_end_matches('.').to_ascii_lowercase();
                domain != "localhost" && !domain.ends_with(".localhost")
            }
            Some(Host::Ipv4(ip)) => !ip.is_loopback() && !ip.is_unspecified(),
            Some(Host::Ipv6(ip)) => !ip.is_loopback() && !ip.is_unspecified(),
            None => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPROVED: ConsentTerms<'static> = ConsentTerms {
        client_id: "cl_1",
        client_fingerprint: "f1",
        software: Some("sw1"),
        redirect_uri: "https://claude.ai/api/mcp/auth_callback",
        resource: "https://mcp.example.com/mcp",
        scope: "mcp:read mcp:write",
    };

    #[test]
    fn coverage() {
        let loopback = ConsentTerms {
            redirect_uri: "http://127.0.0.1:33418/callback",
            ..APPROVED
        };
        type Case = (
            &'static str,
            ConsentTerms<'static>,
            ConsentTerms<'static>,
            bool,
        );
        let cases: [Case; 16] = [
            ("the same request is covered", APPROVED, APPROVED, true),
            (
                "a subset of the scopes is covered",
                APPROVED,
                ConsentTerms {
                    scope: "mcp:read",
                    ..APPROVED
                },
                true,
            ),
            (
                "scope order and repetition do not matter",
                APPROVED,
                ConsentTerms {
                    scope: "mcp:write  mcp:read mcp:write",
                    ..APPROVED
                },
                true,
            ),
            (
                "no scope at all is covered",
                APPROVED,
                ConsentTerms {
                    scope: "",
                    ..APPROVED
                },
                true,
            ),
            (
                "another scope is not covered",
                ConsentTerms {
                    scope: "mcp:read",
                    ..APPROVED
                },
                ConsentTerms {
                    scope: "mcp:write",
                    ..APPROVED
                },
                false,
            ),
            (
                "a wider scope set is not covered",
                ConsentTerms {
                    scope: "mcp:read",
                    ..APPROVED
                },
                APPROVED,
                false,
            ),
            (
                "a scope is a whole token, not a prefix",
                ConsentTerms {
                    scope: "mcp",
                    ..APPROVED
                },
                ConsentTerms {
                    scope: "mcp:read",
                    ..APPROVED
                },
                false,
            ),
            (
                "another resource is not covered",
                APPROVED,
                ConsentTerms {
                    resource: "https://mcp.example.com/other",
                    ..APPROVED
                },
                false,
            ),
            (
                "another client is not covered",
                APPROVED,
                ConsentTerms {
                    client_id: "cl_2",
                    software: Some("sw2"),
                    ..APPROVED
                },
                false,
            ),
            (
                "a changed client is not covered",
                APPROVED,
                ConsentTerms {
                    client_fingerprint: "f2",
                    software: Some("sw2"),
                    ..APPROVED
                },
                false,
            ),
            (
                "an empty fingerprint covers nothing",
                ConsentTerms {
                    client_fingerprint: "",
                    software: None,
                    ..APPROVED
                },
                ConsentTerms {
                    client_fingerprint: "",
                    software: None,
                    ..APPROVED
                },
                false,
            ),
            (
                "another https redirect URI is not covered",
                APPROVED,
                ConsentTerms {
                    redirect_uri: "https://claude.com/api/mcp/auth_callback",
                    ..APPROVED
                },
                false,
            ),
            (
                "an https redirect URI must match exactly",
                APPROVED,
                ConsentTerms {
                    redirect_uri: "https://claude.ai/api/mcp/auth_callback?x=1",
                    ..APPROVED
                },
                false,
            ),
            (
                "a loopback redirect URI on another port is covered",
                loopback,
                ConsentTerms {
                    redirect_uri: "http://127.0.0.1:50123/callback",
                    ..APPROVED
                },
                true,
            ),
            (
                "a loopback redirect URI with another path is not covered",
                loopback,
                ConsentTerms {
                    redirect_uri: "http://127.0.0.1:33418/other",
                    ..APPROVED
                },
                false,
            ),
            (
                "localhost is not 127.0.0.1",
                loopback,
                ConsentTerms {
                    redirect_uri: "http://localhost:33418/callback",
                    ..APPROVED
                },
                false,
            ),
        ];
        for (name, approved, requested, covered) in cases {
            assert_eq!(is_covered(&approved, &requested), covered, "{name}");
        }
    }

    /// A host that registered itself again: a new client id (and so a new fingerprint) with
    /// the same software.
    #[test]
    fn coverage_of_a_registration_of_the_same_software() {
        let again = ConsentTerms {
            client_id: "cl_2",
            client_fingerprint: "f2",
            ..APPROVED
        };
        let native = |redirect_uri| ConsentTerms {
            redirect_uri,
            ..APPROVED
        };
        type Case = (
            &'static str,
            ConsentTerms<'static>,
            ConsentTerms<'static>,
            bool,
        );
        let cases: [Case; 10] = [
            (
                "the same software through the same https redirect",
                APPROVED,
                again,
                true,
            ),
            (
                "other software",
                APPROVED,
                ConsentTerms {
                    software: Some("sw2"),
                    ..again
                },
                false,
            ),
            (
                "no software (an admin or metadata-document client)",
                APPROVED,
                ConsentTerms {
                    software: None,
                    ..again
                },
                false,
            ),
            (
                "an approval without software covers only its client",
                ConsentTerms {
                    software: None,
                    ..APPROVED
                },
                ConsentTerms {
                    software: None,
                    ..again
                },
                false,
            ),
            (
                "an empty software covers nothing",
                ConsentTerms {
                    software: Some(""),
                    ..APPROVED
                },
                ConsentTerms {
                    software: Some(""),
                    ..again
                },
                false,
            ),
            (
                "a loopback redirect: any local program could answer",
                native("http://127.0.0.1:33418/callback"),
                ConsentTerms {
                    client_id: "cl_2",
                    client_fingerprint: "f2",
                    ..native("http://127.0.0.1:33418/callback")
                },
                false,
            ),
            (
                "https on localhost is this machine too",
                native("https://localhost/callback"),
                ConsentTerms {
                    client_id: "cl_2",
                    client_fingerprint: "f2",
                    ..native("https://localhost/callback")
                },
                false,
            ),
            (
                "a private-use scheme: any app could claim it",
                native("cursor://anysphere.cursor-retrieval/oauth/callback"),
                ConsentTerms {
                    client_id: "cl_2",
                    client_fingerprint: "f2",
                    ..native("cursor://anysphere.cursor-retrieval/oauth/callback")
                },
                false,
            ),
            (
                "the same software, a wider scope",
                ConsentTerms {
                    scope: "mcp:read",
                    ..APPROVED
                },
                again,
                false,
            ),
            (
                "the same software, another resource",
                APPROVED,
                ConsentTerms {
                    resource: "https://mcp.example.com/other",
                    ..again
                },
                false,
            ),
        ];
        for (name, approved, requested, covered) in cases {
            assert_eq!(is_covered(&approved, &requested), covered, "{name}");
        }
    }
}
