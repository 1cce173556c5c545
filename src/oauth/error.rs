//! The protocol's error codes (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7591 §3.2.2,
//! RFC 8707, OpenID Connect's `login_required`/`consent_required`), each with the HTTP status it
//! has when answered directly. Every OAuth error the server answers is one of these; `http::errors`
//! turns them into responses.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    LoginRequired,
    ConsentRequired,
    InvalidToken,
    InsufficientScope,
    InvalidRedirectUri,
    InvalidClientMetadata,
    TemporarilyUnavailable,
    ServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
        }
    }

    /// The status when the error is the response itself (not a redirect).
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            // RFC 6750 §3.1.
            Self::AccessDenied | Self::InsufficientScope => 403,
            Self::TemporarilyUnavailable => 503,
            Self::ServerError => 500,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol error with its human-readable description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    /// An error whose description is reduced to what RFC 6749 §5.2 allows: descriptions quote
    /// what the client sent, which may hold anything.
    pub fn new(code: ErrorCode, description: impl std::fmt::Display) -> Self {
        Self {
            code,
            description: to_error_description(&description.to_string(), MAX_DESCRIPTION_CHARS),
        }
    }
}

/// The longest `error_description` answered, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// `text` reduced to the characters RFC 6749 §5.2 allows in `error_description`
/// (%x20-21 / %x23-5B / %x5D-7E; anything else becomes `?`) and cut after `max_chars`.
pub fn to_error_description(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| match c {
            '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e' => c,
            _ => '?',
        })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_has_its_rfc_status() {
        let cases = [
            (ErrorCode::InvalidRequest, "invalid_request", 400),
            (ErrorCode::InvalidClient, "invalid_client", 401),
            (ErrorCode::InvalidToken, "invalid_token", 401),
            (ErrorCode::InsufficientScope, "insufficient_scope", 403),
            (ErrorCode::AccessDenied, "access_denied", 403),
            (ErrorCode::InvalidRedirectUri, "invalid_redirect_uri", 400),
            (
                ErrorCode::InvalidClientMetadata,
                "invalid_client_metadata",
                400,
            ),
            (ErrorCode::InvalidTarget, "invalid_target", 400),
            (
                ErrorCode::TemporarilyUnavailable,
                "temporarily_unavailable",
                503,
            ),
            (ErrorCode::ServerError, "server_error", 500),
        ];
        for (code, name, status) in cases {
            assert_eq!((code.as_str(), code.status()), (name, status), "{name}");
        }
    }

    #[test]
    fn descriptions_keep_to_the_rfc_6749_character_set() {
        let cases = [
            (
                "printable ASCII is kept",
                "scope `a:b` is not offered",
                "scope `a:b` is not offered",
            ),
            ("quote and backslash", "`a\"b\\c`", "`a?b?c`"),
            ("control characters", "a\nb\r\u{7f}\0", "a?b???"),
            ("non-ASCII", "é\u{202e}", "??"),
        ];
        for (name, text, expected) in cases {
            assert_eq!(
                OAuthError::new(ErrorCode::InvalidRequest, text).description,
                expected,
                "{name}"
            );
        }
        let long = OAuthError::new(ErrorCode::InvalidRequest, "a".repeat(5000)).description;
        assert_eq!(
            long.len(),
            MAX_DESCRIPTION_CHARS + 3,
            "cut, with an ellipsis"
        );
    }
}
