//! How long an access token lives: the lifetime an operator gave its client, else the one of
//! the first `[[token_lifetimes]]` pattern its redirect URI matches, else
//! `tokens.access_token_ttl_secs`. Every one of them is bounded by
//! `tokens.max_access_token_ttl_secs` (checked where it is set), which is also how long a
//! retired signing key stays published.

use crate::config::Config;
use crate::oauth::redirect_uri::AllowPattern;

/// The access-token lifetimes of this server.
#[derive(Debug, Clone)]
pub struct Lifetimes {
    default_secs: i64,
    max_secs: i64,
    patterns: Vec<(AllowPattern, i64)>,
}

impl Lifetimes {
    pub fn from_config(config: &Config) -> Self {
        Self {
            default_secs: config.tokens.access_token_ttl_secs as i64,
            max_secs: config.longest_access_token_ttl_secs() as i64,
            patterns: config
                .lifetime_patterns()
                .into_iter()
                .map(|(pattern, secs)| (pattern, secs as i64))
                .collect(),
        }
    }

    /// The lifetime of an access token for a client with `client_secs` set by an operator,
    /// issued in a family whose code went to `redirect_uri`. A stored value beyond today's
    /// maximum (the maximum was lowered since) is cut to it: retired keys are published only
    /// that long.
    pub fn access_token_ttl(&self, client_secs: Option<i64>, redirect_uri: Option<&str>) -> i64 {
        let by_pattern = || {
            let uri = redirect_uri?;
            self.patterns
                .iter()
                .find(|(pattern, _)| pattern.allows_str(uri))
                .map(|(_, secs)| *secs)
        };
        client_secs
            .or_else(by_pattern)
            .unwrap_or(self.default_secs)
            .clamp(1, self.max_secs)
    }

    /// The longest lifetime an operator may give a client.
    pub fn max_secs(&self) -> i64 {
        self.max_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifetimes() -> Lifetimes {
        Lifetimes {
            default_secs: 3600,
            max_secs: 86_400,
            patterns: vec![
                (
                    AllowPattern::parse("https://claude.ai/api/mcp/auth_callback").unwrap(),
                    86_400,
                ),
                (AllowPattern::parse("loopback").unwrap(), 7200),
                (AllowPattern::parse("https://claude.ai/*").unwrap(), 600),
            ],
        }
    }

    #[test]
    fn which_lifetime_a_token_gets() {
        let claude = Some("https://claude.ai/api/mcp/auth_callback");
        let cases = [
            (
                "no rule: the default",
                None,
                Some("https://chatgpt.com/cb"),
                3600,
            ),
            ("an exact pattern", None, claude, 86_400),
            ("the first matching pattern wins", None, claude, 86_400),
            (
                "a later prefix pattern",
                None,
                Some("https://claude.ai/other"),
                600,
            ),
            (
                "loopback on any port",
                None,
                Some("http://127.0.0.1:43512/callback"),
                7200,
            ),
            ("the client's own lifetime wins", Some(900), claude, 900),
            (
                "a family from before redirect URIs were kept",
                None,
                None,
                3600,
            ),
            (
                "a client's lifetime beyond the maximum is cut",
                Some(999_999),
                None,
                86_400,
            ),
            (
                "an exact pattern is exact",
                None,
                Some("https://claude.ai.evil.example/api/mcp/auth_callback"),
                3600,
            ),
        ];
        for (name, client, redirect_uri, expected) in cases {
            assert_eq!(
                lifetimes().access_token_ttl(client, redirect_uri),
                expected,
                "{name}"
            );
        }
    }
}
