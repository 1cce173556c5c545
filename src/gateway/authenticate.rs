//! Who is calling: the bearer token (ours) checked offline, then the grant behind it checked
//! live in one query. The token never leaves this module's caller: it is not forwarded, logged
//! or echoed.

use std::sync::Arc;

use poem::http::{HeaderMap, header};

use super::Gateway;
use super::resource::GatewayResource;
use super::respond::Refusal;
use super::verified::{VerifiedToken, key_id, token_digest};
use crate::ids::GrantId;
use crate::oauth::scope::ScopeSet;
use crate::store::StoreError;
use crate::tokens::verify::{VerifyError, verify_access_token};

/// An authenticated caller with a live grant.
pub struct Caller {
    pub token: Arc<VerifiedToken>,
    pub grant_id: GrantId,
    /// The grant's sealed upstream tokens.
    pub sealed: Option<String>,
}

impl Caller {
    pub fn subject(&self) -> &str {
        &self.token.claims.sub
    }

    pub fn client_id(&self) -> &str {
        &self.token.claims.client_id
    }
}

pub enum AuthError {
    Refused(Refusal),
    Store(StoreError),
}

/// The bearer token of `Authorization`, from the header only (never the query string).
/// `Ok(None)` when there is none or another scheme is used (RFC 6750 §3.1: no error code).
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, Refusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Refusal::InvalidToken("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| Refusal::InvalidToken("the Authorization header is not text"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim();
    // RFC 6750 §2.1 b64token.
    let well_formed = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
    if well_formed {
        Ok(Some(token))
    } else {
        Err(Refusal::InvalidToken("the bearer token is malformed"))
    }
}

fn describe(error: &VerifyError) -> &'static str {
    match error {
        VerifyError::Expired => "the token has expired",
        VerifyError::WrongAudience => "the token is not meant for this resource",
        VerifyError::NotYetValid => "the token is not valid yet",
        _ => "the token is not one this server issued",
    }
}

impl Gateway {
    pub(super) async fn authenticate(
        &self,
        resource: &GatewayResource,
        headers: &HeaderMap,
    ) -> Result<Caller, AuthError> {
        let token = bearer_token(headers)
            .map_err(AuthError::Refused)?
            .ok_or(AuthError::Refused(Refusal::NoToken))?;
        let token = self.verify(resource, token)?;
        let claims = &token.claims;
        let grant = self
            .store
            .live_grant_for_token(
                &claims.user_id(),
                &claims.client(),
                &claims.aud,
                &claims.jti,
            )
            .await
            .map_err(AuthError::Store)?
            .ok_or(AuthError::Refused(Refusal::InvalidToken(
                "the authorization has been revoked",
            )))?;
        let granted = ScopeSet::from_stored(&claims.scope);
        if !resource
            .required_scopes
            .iter()
            .all(|needed| granted.contains(needed))
        {
            return Err(AuthError::Refused(Refusal::InsufficientScope));
        }
        Ok(Caller {
            token,
            grant_id: grant.grant_id,
            sealed: grant.upstream_tokens,
        })
    }

    /// The token's claims for `resource`: remembered from an earlier request, or verified
    /// offline (signature, issuer, audience, lifetime) and remembered.
    fn verify(
        &self,
        resource: &GatewayResource,
        token: &str,
    ) -> Result<Arc<VerifiedToken>, AuthError> {
        let now = self.clock.now();
        let digest = token_digest(token);
        if let Some(known) = self.verified.get(&digest, now)
            && known.claims.aud == resource.uri
            && self.keys.verification_key(&known.kid).is_some()
        {
            return Ok(known);
        }
        let claims = verify_access_token(
            &self.keys,
            token,
            self.issuer.as_str(),
            Some(&resource.uri),
            now,
            0,
        )
        .map_err(|error| AuthError::Refused(Refusal::InvalidToken(describe(&error))))?;
        // Cannot fail: a token that verified has a header naming its key.
        let Some(kid) = key_id(token) else {
            let malformed = describe(&VerifyError::Malformed);
            return Err(AuthError::Refused(Refusal::InvalidToken(malformed)));
        };
        let verified = Arc::new(VerifiedToken { claims, kid });
        self.verified.insert(digest, verified.clone(), now);
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bearer_tokens_come_from_one_authorization_header() {
        assert_eq!(bearer_token(&headers(&[])), Ok(None));
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.def-_~+/="])),
            Ok(Some("abc.def-_~+/="))
        );
        assert_eq!(bearer_token(&headers(&["bearer  abc "])), Ok(Some("abc")));
        assert_eq!(
            bearer_token(&headers(&["Basic dXNlcjpwYXNz"])),
            Ok(None),
            "another scheme is no token"
        );
        for (name, values) in [
            ("empty", vec!["Bearer "]),
            ("a quote", vec!["Bearer a\"b"]),
            ("a comma", vec!["Bearer a,b"]),
            ("two headers", vec!["Bearer a", "Bearer b"]),
        ] {
            assert!(
                matches!(
                    bearer_token(&headers(&values)),
                    Err(Refusal::InvalidToken(_))
                ),
                "{name}"
            );
        }
    }
}
