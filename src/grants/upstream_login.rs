//! The upstream's answer to a login, decided: the callback's `error` or `code`, then the
//! server-to-server code exchange's outcome, each mapped to the authorization error the client
//! is told (RFC 6749 §4.1.2.1) and the reason it is counted under. An upstream outage is told
//! apart (`temporarily_unavailable`) so the client can offer a retry; the user declining, or the
//! upstream refusing, is `access_denied`; an answer that names no user is our `server_error`.

use crate::monitoring::LoginFailure;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::upstream::{UpstreamError, UpstreamTokens};

/// Why a login that came back from the upstream was not completed: counted under `reason`,
/// told to the client as `code` with `description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginRefusal {
    pub reason: LoginFailure,
    pub code: ErrorCode,
    pub description: &'static str,
}

impl LoginRefusal {
    fn new(reason: LoginFailure, code: ErrorCode, description: &'static str) -> Self {
        Self {
            reason,
            code,
            description,
        }
    }

    /// Our own storage or vault failed.
    pub fn server_error(description: &'static str) -> Self {
        Self::new(
            LoginFailure::ServerError,
            ErrorCode::ServerError,
            description,
        )
    }

    fn upstream_unavailable() -> Self {
        Self::new(
            LoginFailure::UpstreamUnavailable,
            ErrorCode::TemporarilyUnavailable,
            "the sign-in service is unavailable; try again",
        )
    }

    fn user_not_identified() -> Self {
        Self::new(
            LoginFailure::UpstreamMalformed,
            ErrorCode::ServerError,
            "the sign-in service did not identify the user",
        )
    }

    /// The error the client is redirected with.
    pub fn to_oauth_error(self) -> OAuthError {
        OAuthError::new(self.code, self.description)
    }
}

/// The upstream's authorization code from its redirect (`error` and `code` as sent), or why
/// the user did not get one.
pub fn upstream_code<'a>(
    error: Option<&str>,
    code: Option<&'a str>,
) -> Result<&'a str, LoginRefusal> {
    if let Some(error) = error {
        return Err(match error {
            "temporarily_unavailable" | "server_error" => LoginRefusal::upstream_unavailable(),
            _ => LoginRefusal::new(
                LoginFailure::UpstreamDenied,
                ErrorCode::AccessDenied,
                "the sign-in at the upstream was not completed",
            ),
        });
    }
    code.ok_or_else(|| {
        LoginRefusal::new(
            LoginFailure::UpstreamMalformed,
            ErrorCode::AccessDenied,
            "the sign-in service returned no authorization code",
        )
    })
}

/// The code exchange failed.
pub fn exchange_refusal(error: &UpstreamError) -> LoginRefusal {
    match error {
        UpstreamError::Unavailable(_) => LoginRefusal::upstream_unavailable(),
        UpstreamError::Refused { .. } => LoginRefusal::new(
            LoginFailure::UpstreamRefused,
            ErrorCode::AccessDenied,
            "the sign-in service refused the login",
        ),
        UpstreamError::Malformed(_) => LoginRefusal::user_not_identified(),
    }
}

/// The code exchange answered: a grant must belong to someone, so an answer without a user
/// identifier is refused.
pub fn check_identified(tokens: &UpstreamTokens) -> Result<(), LoginRefusal> {
    if tokens.subject.is_empty() {
        Err(LoginRefusal::user_not_identified())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_answers() {
        let cases: [(
            &str,
            Option<&str>,
            Option<&str>,
            Result<&str, (LoginFailure, ErrorCode)>,
        ); 6] = [
            ("a code", None, Some("c"), Ok("c")),
            (
                "the user declined",
                Some("access_denied"),
                None,
                Err((LoginFailure::UpstreamDenied, ErrorCode::AccessDenied)),
            ),
            (
                "an error wins over a code",
                Some("access_denied"),
                Some("c"),
                Err((LoginFailure::UpstreamDenied, ErrorCode::AccessDenied)),
            ),
            (
                "the upstream is down",
                Some("temporarily_unavailable"),
                None,
                Err((
                    LoginFailure::UpstreamUnavailable,
                    ErrorCode::TemporarilyUnavailable,
                )),
            ),
            (
                "the upstream failed",
                Some("server_error"),
                None,
                Err((
                    LoginFailure::UpstreamUnavailable,
                    ErrorCode::TemporarilyUnavailable,
                )),
            ),
            (
                "neither error nor code",
                None,
                None,
                Err((LoginFailure::UpstreamMalformed, ErrorCode::AccessDenied)),
            ),
        ];
        for (name, error, code, expected) in cases {
            let answer = upstream_code(error, code).map_err(|r| (r.reason, r.code));
            assert_eq!(answer, expected, "{name}");
        }
    }

    #[test]
    fn exchange_failures() {
        let cases = [
            (
                UpstreamError::Unavailable("timeout".into()),
                LoginFailure::UpstreamUnavailable,
                ErrorCode::TemporarilyUnavailable,
            ),
            (
                UpstreamError::Refused {
                    code: "invalid_grant".into(),
                    description: None,
                },
                LoginFailure::UpstreamRefused,
                ErrorCode::AccessDenied,
            ),
            (
                UpstreamError::Malformed("no access_token".into()),
                LoginFailure::UpstreamMalformed,
                ErrorCode::ServerError,
            ),
        ];
        for (error, reason, code) in cases {
            let refusal = exchange_refusal(&error);
            assert_eq!((refusal.reason, refusal.code), (reason, code), "{error}");
        }
    }

    #[test]
    fn a_login_needs_a_user() {
        let mut tokens = UpstreamTokens {
            access_token: "at".into(),
            refresh_token: None,
            expires_at: None,
            subject: "42".into(),
            display_name: None,
        };
        assert!(check_identified(&tokens).is_ok());
        tokens.subject.clear();
        assert_eq!(
            check_identified(&tokens).unwrap_err().reason,
            LoginFailure::UpstreamMalformed
        );
    }
}
