//! Client authentication at the token endpoint (RFC 6749 §2.3): which credentials a request
//! presents. Exactly one method per request; `client_secret_basic` values are
//! form-urlencoded inside the Basic header (RFC 6749 §2.3.1), which generic Basic parsers forget.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::error::{ErrorCode, OAuthError};

/// The credentials a token request presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedClient {
    /// A public client: `client_id` in the body, no secret.
    Public { client_id: String },
    /// `client_secret_basic`.
    Basic { client_id: String, secret: String },
    /// `client_secret_post`.
    Post { client_id: String, secret: String },
}

impl PresentedClient {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Public { client_id }
            | Self::Basic { client_id, .. }
            | Self::Post { client_id, .. } => client_id,
        }
    }

    pub fn secret(&self) -> Option<&str> {
        match self {
            Self::Public { .. } => None,
            Self::Basic { secret, .. } | Self::Post { secret, .. } => Some(secret),
        }
    }

    pub fn used_basic(&self) -> bool {
        matches!(self, Self::Basic { .. })
    }

    /// The `token_endpoint_auth_method` this presentation is (RFC 7591 §2).
    pub fn auth_method(&self) -> &'static str {
        match self {
            Self::Public { .. } => "none",
            Self::Basic { .. } => "client_secret_basic",
            Self::Post { .. } => "client_secret_post",
        }
    }
}

/// RFC 7591 §2: `token_endpoint_auth_method` is the method the client uses at the token
/// endpoint; a client registered for one does not authenticate with another (a secret sent
/// where the client never sends it is a secret that leaked).
pub fn check_auth_method(registered: &str, presented: &PresentedClient) -> Result<(), OAuthError> {
    let used = presented.auth_method();
    if used == registered {
        return Ok(());
    }
    Err(OAuthError::new(
        ErrorCode::InvalidClient,
        format!("this client authenticates with `{registered}`, not `{used}`"),
    ))
}

/// Reads the credentials from the `Authorization` header and the body's `client_id` and
/// `client_secret`.
pub fn presented_client(
    authorization: Option<&str>,
    body_client_id: Option<&str>,
    body_secret: Option<&str>,
) -> Result<PresentedClient, OAuthError> {
    let invalid_client = |m: &str| OAuthError::new(ErrorCode::InvalidClient, m);
    if let Some(header) = authorization {
        // RFC 7235 §2.1: the auth-scheme is case-insensitive.
        let Some((_, encoded)) = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Basic"))
        else {
            return Err(invalid_client(
                "only HTTP Basic client authentication is accepted in the Authorization header",
            ));
        };
        if body_secret.is_some() {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "use one client authentication method, not Basic and client_secret together",
            ));
        }
        let decoded = STANDARD
            .decode(encoded.trim())
            .map_err(|_| invalid_client("the Basic credentials are not valid base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| invalid_client("the Basic credentials are not UTF-8"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| invalid_client("the Basic credentials have no `:`"))?;
        let (client_id, secret) = (form_decode(id), form_decode(secret));
        if body_client_id.is_some_and(|body_id| body_id != client_id) {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "client_id in the body differs from the one in the Authorization header",
            ));
        }
        if client_id.is_empty() {
            return Err(invalid_client("the Basic credentials name no client"));
        }
        return Ok(PresentedClient::Basic { client_id, secret });
    }
    let Some(client_id) = body_client_id.filter(|id| !id.is_empty()) else {
        return Err(invalid_client(
            "no client authentication: send client_id (and the secret, if the client has one)",
        ));
    };
    Ok(match body_secret {
        Some(secret) => PresentedClient::Post {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
        },
        None => PresentedClient::Public {
            client_id: client_id.to_owned(),
        },
    })
}

/// `application/x-www-form-urlencoded` decoding of one value (`+` is a space).
fn form_decode(value: &str) -> String {
    url::form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn methods() {
        assert_eq!(
            presented_client(None, Some("c1"), None).unwrap(),
            PresentedClient::Public {
                client_id: "c1".into()
            }
        );
        assert_eq!(
            presented_client(None, Some("c1"), Some("s")).unwrap(),
            PresentedClient::Post {
                client_id: "c1".into(),
                secret: "s".into()
            }
        );
        assert_eq!(
            presented_client(Some(&basic("c1", "s")), None, None).unwrap(),
            PresentedClient::Basic {
                client_id: "c1".into(),
                secret: "s".into()
            }
        );
        assert!(
            presented_client(Some(&basic("c1", "s")), Some("c1"), None).is_ok(),
            "the same id in the body too"
        );
    }

    #[test]
    fn the_basic_scheme_name_is_case_insensitive() {
        let encoded = STANDARD.encode("c1:s");
        for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
            assert_eq!(
                presented_client(Some(&format!("{scheme} {encoded}")), None, None),
                Ok(PresentedClient::Basic {
                    client_id: "c1".into(),
                    secret: "s".into()
                }),
                "{scheme}"
            );
        }
    }

    #[test]
    fn the_registered_method_is_the_only_one() {
        let public = presented_client(None, Some("c1"), None).unwrap();
        let post = presented_client(None, Some("c1"), Some("s")).unwrap();
        let basic = presented_client(Some(&basic("c1", "s")), None, None).unwrap();
        let cases = [
            ("none", &public, true),
            ("none", &post, false),
            ("none", &basic, false),
            ("client_secret_post", &post, true),
            ("client_secret_post", &basic, false),
            ("client_secret_post", &public, false),
            ("client_secret_basic", &basic, true),
            ("client_secret_basic", &post, false),
            ("client_secret_basic", &public, false),
            ("private_key_jwt", &basic, false),
        ];
        for (registered, presented, accepted) in cases {
            let result = check_auth_method(registered, presented);
            assert_eq!(result.is_ok(), accepted, "{registered} with {presented:?}");
            if let Err(error) = result {
                assert_eq!(error.code, ErrorCode::InvalidClient);
            }
        }
    }

    #[test]
    fn basic_values_are_form_urlencoded() {
        // RFC 6749 §2.3.1: a secret with `:` or `%` is encoded before Basic.
        let presented =
            presented_client(Some(&basic("my%3Aclient", "p%40ss+word%3A1")), None, None).unwrap();
        assert_eq!(
            presented,
            PresentedClient::Basic {
                client_id: "my:client".into(),
                secret: "p@ss word:1".into()
            }
        );
    }

    #[test]
    fn refusals() {
        let cases = [
            (
                "nothing",
                presented_client(None, None, None),
                ErrorCode::InvalidClient,
            ),
            (
                "two methods",
                presented_client(Some(&basic("c1", "s")), None, Some("s")),
                ErrorCode::InvalidRequest,
            ),
            (
                "ids differ",
                presented_client(Some(&basic("c1", "s")), Some("c2"), None),
                ErrorCode::InvalidRequest,
            ),
            (
                "bearer header",
                presented_client(Some("Bearer x"), Some("c1"), None),
                ErrorCode::InvalidClient,
            ),
            (
                "bad base64",
                presented_client(Some("Basic !!!"), None, None),
                ErrorCode::InvalidClient,
            ),
            (
                "no colon",
                presented_client(
                    Some(&format!("Basic {}", STANDARD.encode("c1"))),
                    None,
                    None,
                ),
                ErrorCode::InvalidClient,
            ),
        ];
        for (name, result, code) in cases {
            assert_eq!(result.unwrap_err().code, code, "{name}");
        }
    }
}
