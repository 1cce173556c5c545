//! Access tokens: RFC 9068 JWTs signed with the active key.

use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, UserId};

/// The `typ` header of an RFC 9068 access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// RFC 9068 §2.2 claims. `sub` is authbridge's own user id (`usr_…`): stable for one upstream
/// identity (provider + upstream subject), never the upstream's id itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub auth_time: i64,
}

impl AccessClaims {
    /// The user the token was issued to. Its signature is ours and `sub` is a user id we
    /// stored, so it is taken as stored, not re-checked.
    pub fn user_id(&self) -> UserId {
        UserId::from_stored(self.sub.clone())
    }

    /// The client the token was issued to. The claim stays a plain string on the wire; its
    /// signature is ours and it names a client id we stored, so it is taken as stored.
    pub fn client(&self) -> ClientId {
        ClientId::from_stored(self.client_id.clone())
    }
}
