//! Scope syntax (RFC 6749 §3.3), and `offline_access`.

/// OpenID Connect Core §11's request for a refresh token. Some hosts add it to every request.
/// Here every authorization code and refresh is answered with a refresh token whether asked or
/// not (hosts such as claude.ai and ChatGPT never ask, and cannot work without one), so the
/// value is accepted and dropped: it never reaches a grant, the consent page or a token's
/// `scope`.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// `requested` without `offline_access`, spacing otherwise kept.
pub fn without_offline_access(requested: &str) -> String {
    requested
        .split(' ')
        .filter(|token| *token != OFFLINE_ACCESS)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`: printable ASCII except space, `"` and `\`.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_access_is_dropped() {
        let cases = [
            ("alone", "offline_access", ""),
            ("first", "offline_access mcp", "mcp"),
            ("last", "mcp:read offline_access", "mcp:read"),
            ("twice", "offline_access mcp offline_access", "mcp"),
            (
                "a whole token only",
                "offline_access2 offline",
                "offline_access2 offline",
            ),
            ("case matters", "OFFLINE_ACCESS", "OFFLINE_ACCESS"),
            ("absent", "mcp", "mcp"),
        ];
        for (name, requested, kept) in cases {
            assert_eq!(without_offline_access(requested).trim(), kept, "{name}");
        }
    }

    #[test]
    fn scope_tokens() {
        for ok in ["mcp", "mcp:read", "offline_access", "https://x/y", "!"] {
            assert!(is_scope_token(ok), "{ok}");
        }
        for bad in ["", "a b", "a\"b", "a\\b", "é", "a\n"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
    }
}
