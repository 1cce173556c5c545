//! The identifiers that cross layers: a client, a user, a grant, a refresh-token family, and
//! the stored hash of an opaque token. Each is its own type so that a function taking two of
//! them cannot be called with the two swapped, and each is the sea-orm column type of the
//! columns that hold it, so a row never hands back a bare `String`.
//!
//! Two ways in, and only two: `FromStr`/`TryFrom<String>` checks a value that comes from
//! outside (a request, a path, a document), and `from_stored` takes what the database holds as
//! it is. Loading a row never re-runs today's rules and never panics: the database column is
//! read through the inner `String` (`DeriveValueType`), not through the parser.
//!
//! This module must never import anything of ours but the leaf `random`: the store and every
//! layer above it name these types.

use std::fmt;
use std::str::FromStr;

/// Why an outside value is not an identifier of the kind asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} bytes")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} holds a character outside visible ASCII")]
    NotVisibleAscii { kind: &'static str },
    #[error("{kind} is not {expected}")]
    Malformed {
        kind: &'static str,
        expected: &'static str,
    },
}

/// The longest identifier accepted from outside. Client ids that are URLs (client ID
/// metadata documents) are the longest kind; the URL rules bound those further.
pub const MAX_ID_BYTES: usize = 2048;

/// The rule every identifier shares: present, bounded, and made of visible ASCII, so that it
/// can sit in a log line, a header or a path without escaping surprises.
fn check_identifier(kind: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong {
            kind,
            max: MAX_ID_BYTES,
        });
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(IdError::NotVisibleAscii { kind });
    }
    Ok(())
}

/// A SHA-256 digest as stored: 64 lower-case hex digits.
fn check_sha256_hex(kind: &'static str, value: &str) -> Result<(), IdError> {
    let is_digest = value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if is_digest {
        Ok(())
    } else {
        Err(IdError::Malformed {
            kind,
            expected: "64 lower-case hex digits (SHA-256)",
        })
    }
}

/// The parts every identifier type has alike: the column type, the two constructors,
/// `as_str`, `Display`, serde (out as the plain string, in through the check; the same JSON as a
/// transparent newtype) and the OpenAPI
/// schema (a string).
macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, kind: $kind:literal, check: $check:path) => {
        // Documented for rustdoc only: the OpenAPI derive would turn the comment into a
        // schema title, and the published document must stay a plain `string`.
        $(#[cfg_attr(doc, $doc)])*
        #[derive(
            Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
            sea_orm::DeriveValueType, serde::Serialize, serde::Deserialize,
            poem_openapi::NewType,
        )]
        #[serde(try_from = "String", into = "String")]
        #[oai(from_json = false, from_parameter = false, from_multipart = false)]
        pub struct $name(String);

        impl $name {
            /// What the database holds, taken as it is: no check, no panic.
            pub fn from_stored(stored: String) -> Self {
                Self(stored)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(value: &str) -> Result<Self, IdError> {
                $check($kind, value)?;
                Ok(Self(value.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(value: String) -> Result<Self, IdError> {
                $check($kind, &value)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl From<&$name> for sea_orm::Value {
            fn from(id: &$name) -> Self {
                sea_orm::Value::from(id.0.clone())
            }
        }

        // A primary key must say what an auto-increment id would become; these never are.
        impl sea_orm::TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, sea_orm::DbErr> {
                Err(sea_orm::DbErr::ConvertFromU64(stringify!($name)))
            }
        }

        // A JSON body is outside input: it goes through the check.
        impl poem_openapi::types::ParseFromJSON for $name {
            fn parse_from_json(
                value: Option<serde_json::Value>,
            ) -> poem_openapi::types::ParseResult<Self> {
                let text = <String as poem_openapi::types::ParseFromJSON>::parse_from_json(value)
                    .map_err(poem_openapi::types::ParseError::propagate)?;
                text.parse().map_err(poem_openapi::types::ParseError::custom)
            }
        }
    };
}

identifier!(
    /// A client's `client_id`: generated at registration, chosen by an operator, or the URL
    /// of a client ID metadata document.
    ClientId,
    kind: "client_id",
    check: check_identifier
);

identifier!(
    /// One of our users (`usr_…`), the subject of the tokens we issue.
    UserId,
    kind: "user_id",
    check: check_identifier
);

identifier!(
    /// A grant (`grt_…`): one user's authorization of one client for one resource.
    GrantId,
    kind: "grant_id",
    check: check_identifier
);

identifier!(
    /// A refresh-token family (`fam_…`): the chain of rotations started by one code.
    FamilyId,
    kind: "family_id",
    check: check_identifier
);

identifier!(
    /// The stored form of an opaque token (a refresh token, a registration access token):
    /// SHA-256, lower-case hex. The token itself is never stored.
    TokenHash,
    kind: "token hash",
    check: check_sha256_hex
);

impl ClientId {
    /// A fresh client id, `client_` and 128 random bits: never a URL, so it cannot be taken
    /// for a Client ID Metadata Document.
    pub fn generate() -> Self {
        Self(format!("client_{}", crate::random::random_base64url(16)))
    }
}

impl UserId {
    /// A fresh user id, `usr_` and 128 random bits.
    pub fn generate() -> Self {
        Self(format!("usr_{}", crate::random::random_base64url(16)))
    }
}

impl GrantId {
    /// A fresh grant id, `grt_` and 128 random bits.
    pub fn generate() -> Self {
        Self(format!("grt_{}", crate::random::random_base64url(16)))
    }
}

impl FamilyId {
    /// A fresh family id, `fam_` and 128 random bits.
    pub fn generate() -> Self {
        Self(format!("fam_{}", crate::random::random_base64url(16)))
    }
}

impl TokenHash {
    /// The hash under which `token` is stored.
    pub fn of(token: &str) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        Self(hex::encode(digest))
    }
}

#[cfg(test)]
mod tests;
