//! Remembered consent: whether an approval the user asked to remember covers a new
//! authorization request, so that the consent page may be skipped.
//!
//! A remembered approval covers only what the user saw (the MCP authorization spec's
//! confused-deputy rule: every client ends up behind the same upstream client): the same
//! client, unchanged since (its metadata fingerprint), the same redirect URI, the same
//! resource, and no scope beyond those approved. Anything wider shows the page again.

use super::redirect_uri::match_redirect_uri;

/// What one approval was given for, or what one request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentTerms<'a> {
    pub client_id: &'a str,
    /// A digest of the client's metadata as the consent page showed it; any edit of the client
    /// (RFC 7592, the admin API, a changed metadata document) changes it.
    pub client_fingerprint: &'a str,
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
pub fn is_covered(approved: &ConsentTerms<'_>, requested: &ConsentTerms<'_>) -> bool {
    approved.client_id == requested.client_id
        && !approved.client_fingerprint.is_empty()
        && approved.client_fingerprint == requested.client_fingerprint
        && approved.resource == requested.resource
        && match_redirect_uri([approved.redirect_uri], requested.redirect_uri).is_some()
        && scopes(requested.scope).all(|wanted| scopes(approved.scope).any(|s| s == wanted))
}

fn scopes(scope: &str) -> impl Iterator<Item = &str> {
    scope.split(' ').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPROVED: ConsentTerms<'static> = ConsentTerms {
        client_id: "cl_1",
        client_fingerprint: "f1",
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
                    ..APPROVED
                },
                false,
            ),
            (
                "a changed client is not covered",
                APPROVED,
                ConsentTerms {
                    client_fingerprint: "f2",
                    ..APPROVED
                },
                false,
            ),
            (
                "an empty fingerprint covers nothing",
                ConsentTerms {
                    client_fingerprint: "",
                    ..APPROVED
                },
                ConsentTerms {
                    client_fingerprint: "",
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
}
