//! Scope syntax (RFC 6749 §3.3), scope sets and their order, and `offline_access`.

use std::fmt;

/// OpenID Connect Core §11's request for a refresh token. Some hosts add it to every request.
/// Here every authorization code and refresh is answered with a refresh token whether asked or
/// not (hosts such as claude.ai and ChatGPT never ask, and cannot work without one), so the
/// value is accepted and dropped: it never reaches a grant, the consent page or a token's
/// `scope`.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`: printable ASCII except space, `"` and `\`.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// A set of scope tokens, kept in a chosen order (the resource's, or the grant's) so that
/// equal sets print equally; compared as a set. Its text form is the tokens joined by one space,
/// as a `scope` parameter and a stored row hold them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(Vec<String>);

/// Why a requested scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A token breaks RFC 6749 §3.3's syntax.
    #[error("scope is malformed")]
    Malformed,
    /// A token is not among those that may be asked for.
    #[error("scope `{0}` is not available")]
    NotAvailable(String),
}

impl ScopeSet {
    /// The set of the space-separated tokens of `scope`, in their order, repeated and empty
    /// ones dropped, without checking their syntax: for values accepted once (a stored grant's
    /// scope, a token's `scope` claim, configuration).
    pub fn from_stored(scope: &str) -> Self {
        Self::from_tokens(scope.split(' '))
    }

    /// The set of `tokens`, in their order, repeated and empty ones dropped.
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        let mut kept: Vec<String> = Vec::new();
        for token in tokens.into_iter().filter(|t| !t.is_empty()) {
            if !kept.iter().any(|k| k == token) {
                kept.push(token.to_owned());
            }
        }
        Self(kept)
    }

    /// A requested `scope` parameter: every token must be well-formed (RFC 6749 §3.3);
    /// `offline_access` is dropped (see [`OFFLINE_ACCESS`]).
    pub fn parse_request(scope: &str) -> Result<Self, ScopeError> {
        let tokens = scope
            .split(' ')
            .filter(|t| !t.is_empty() && *t != OFFLINE_ACCESS);
        let mut checked = Vec::new();
        for token in tokens {
            if !is_scope_token(token) {
                return Err(ScopeError::Malformed);
            }
            checked.push(token);
        }
        Ok(Self::from_tokens(checked))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    /// Whether every token of `self` is in `other`; order and repetition do not matter.
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.iter().all(|token| other.contains(token))
    }

    /// The part of `self` that `requested` asks for, in `self`'s order: a request may narrow
    /// a set, never widen it (RFC 6749 §6). Refuses the first token `self` lacks.
    pub fn narrow_to(&self, requested: &ScopeSet) -> Result<ScopeSet, ScopeError> {
        if let Some(missing) = requested.iter().find(|token| !self.contains(token)) {
            return Err(ScopeError::NotAvailable(missing.to_owned()));
        }
        Ok(Self(
            self.0
                .iter()
                .filter(|token| requested.contains(token))
                .cloned()
                .collect(),
        ))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
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
            let parsed = ScopeSet::parse_request(requested).unwrap();
            assert_eq!(parsed.to_string(), kept, "{name}");
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

    #[test]
    fn scope_sets() {
        let granted = ScopeSet::from_stored("mcp:read mcp:write");
        type Case = (&'static str, &'static str, Result<&'static str, ScopeError>);
        let narrowing: [Case; 5] = [
            (
                "the same set",
                "mcp:write mcp:read",
                Ok("mcp:read mcp:write"),
            ),
            (
                "a subset, in the granted order",
                "mcp:write",
                Ok("mcp:write"),
            ),
            (
                "repetition does not matter",
                "mcp:read mcp:read",
                Ok("mcp:read"),
            ),
            ("nothing asked", "", Ok("")),
            (
                "a token not granted",
                "mcp:read admin",
                Err(ScopeError::NotAvailable("admin".into())),
            ),
        ];
        for (name, requested, expected) in narrowing {
            let narrowed = granted
                .narrow_to(&ScopeSet::from_stored(requested))
                .map(|set| set.to_string());
            assert_eq!(narrowed, expected.map(str::to_owned), "{name}");
        }
        let subsets = [
            ("empty", "", true),
            ("one of them", "mcp:read", true),
            ("both, reordered", "mcp:write mcp:read", true),
            ("one more", "mcp:read admin", false),
        ];
        for (name, scope, subset) in subsets {
            assert_eq!(
                ScopeSet::from_stored(scope).is_subset_of(&granted),
                subset,
                "{name}"
            );
        }
    }

    #[test]
    fn requested_scopes() {
        let cases = [
            ("tokens kept in order", "b a", Ok("b a")),
            ("extra spaces", " a  b ", Ok("a b")),
            ("offline_access dropped", "offline_access a", Ok("a")),
            ("a malformed token", "a \\b", Err(ScopeError::Malformed)),
        ];
        for (name, scope, expected) in cases {
            let parsed = ScopeSet::parse_request(scope).map(|set| set.to_string());
            assert_eq!(parsed, expected.map(str::to_owned), "{name}");
        }
        assert_eq!(ScopeSet::from_stored("a b a").to_string(), "a b");
    }
}
