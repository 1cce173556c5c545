//! A client revoking one of its tokens (RFC 7009): a refresh token revokes its whole family, an
//! access token of ours is deny-listed (by `jti`) until it expires. Unknown tokens, and tokens
//! of other clients, get the same answer: a client learns nothing about tokens that are not its
//! own, and cannot revoke them (RFC 7009 §2.2).

use serde_json::json;

use crate::clients::authenticate::AuthenticatedClient;
use crate::ids::{ClientId, FamilyId, GrantId, TokenHash};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::StoreError;
use crate::store::audit::{AuditRecord, actors};
use crate::store::tokens::FamilyRow;
use crate::tokens::access::AccessClaims;
use crate::tokens::verify::verify_access_token;

use super::service::TokenService;

/// What the store and the keys say about a presented token.
#[derive(Debug, Clone, Copy)]
pub enum RevocationTarget<'a> {
    /// A refresh token we hold; its family when that still exists.
    RefreshToken { family: Option<&'a FamilyRow> },
    /// Not a refresh token we hold: the claims when it is an access token we signed (any
    /// audience, expired or not).
    AccessToken(Option<&'a AccessClaims>),
}

/// What to do with a revocation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationDecision {
    /// Revoke the family (and deny-list its unexpired access tokens).
    RevokeFamily {
        family_id: FamilyId,
        grant_id: GrantId,
    },
    /// Deny-list the access token until it expires.
    DenyAccessToken { jti: String, expires_at: i64 },
    /// Answer as if revoked: unknown, already gone, or another client's.
    Nothing,
}

/// RFC 7009 §2.1: `token` is required.
pub fn required_token(token: Option<&str>) -> Result<&str, OAuthError> {
    token.ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "token is required"))
}

/// Decides on a revocation by `client_id` of the token described by `target`.
pub fn decide_revocation(client_id: &ClientId, target: RevocationTarget<'_>) -> RevocationDecision {
    match target {
        RevocationTarget::RefreshToken {
            family: Some(family),
        } if &family.client_id == client_id => RevocationDecision::RevokeFamily {
            family_id: family.family_id.clone(),
            grant_id: family.grant_id.clone(),
        },
        RevocationTarget::AccessToken(Some(claims)) if client_id.as_str() == claims.client_id => {
            RevocationDecision::DenyAccessToken {
                jti: claims.jti.clone(),
                expires_at: claims.exp,
            }
        }
        RevocationTarget::RefreshToken { .. } | RevocationTarget::AccessToken(_) => {
            RevocationDecision::Nothing
        }
    }
}

/// What was loaded for a decision.
enum Loaded {
    RefreshToken(Option<FamilyRow>),
    AccessToken(Option<AccessClaims>),
}

impl Loaded {
    fn target(&self) -> RevocationTarget<'_> {
        match self {
            Loaded::RefreshToken(family) => RevocationTarget::RefreshToken {
                family: family.as_ref(),
            },
            Loaded::AccessToken(claims) => RevocationTarget::AccessToken(claims.as_ref()),
        }
    }
}

impl TokenService {
    /// Revokes `token` for `client`, as RFC 7009 asks; `source` is the caller's address (for
    /// the audit trail).
    pub async fn revoke_token(
        &self,
        client: &AuthenticatedClient,
        token: Option<&str>,
        source: Option<&str>,
    ) -> Result<(), OAuthError> {
        let token = required_token(token)?;
        let now = self.clock.now();
        let applied = async {
            let loaded = self.load_revocation_target(token, now).await?;
            let decision = decide_revocation(&client.client_id, loaded.target());
            self.apply_revocation(client, decision, source, now).await
        }
        .await;
        applied.map_err(|error| {
            tracing::error!(%error, "revocation failed");
            OAuthError::new(
                ErrorCode::ServerError,
                "the server could not complete the request",
            )
        })
    }

    async fn load_revocation_target(&self, token: &str, now: i64) -> Result<Loaded, StoreError> {
        if let Some(row) = self.store.refresh_token(&TokenHash::of(token)).await? {
            return Ok(Loaded::RefreshToken(
                self.store.family(&row.family_id).await?,
            ));
        }
        let claims = verify_access_token(
            &self.keys,
            token,
            self.issuer.as_str(),
            None,
            now,
            i64::MAX / 4,
        )
        .ok();
        Ok(Loaded::AccessToken(claims))
    }

    async fn apply_revocation(
        &self,
        client: &AuthenticatedClient,
        decision: RevocationDecision,
        source: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        match decision {
            RevocationDecision::RevokeFamily {
                family_id,
                grant_id,
            } => {
                self.store.revoke_family(&family_id, now).await?;
                tracing::info!(client_id = %client.client_id, "refresh token revoked (family)");
                let summary = json!({
                    "grant_id": grant_id,
                    "family_id": family_id,
                    "reason": "the client revoked its refresh token (RFC 7009)",
                });
                self.store
                    .record_change(
                        AuditRecord::new(now, actors::CLIENT, "grant.revoke_family", &summary)
                            .client(&client.client_id)
                            .source(source),
                    )
                    .await
            }
            RevocationDecision::DenyAccessToken { jti, expires_at } => {
                self.store.deny_access_token(&jti, expires_at).await?;
                tracing::info!(client_id = %client.client_id, "access token revoked");
                Ok(())
            }
            RevocationDecision::Nothing => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(client_id: &str) -> FamilyRow {
        FamilyRow {
            family_id: "fam_1".parse().unwrap(),
            grant_id: "grt_1".parse().unwrap(),
            client_id: client_id.parse().unwrap(),
            code_hash: None,
            auth_time: 1,
            created_at: 1,
            absolute_expires_at: 100,
            revoked_at: None,
            redirect_uri: None,
        }
    }

    fn claims(client_id: &str) -> AccessClaims {
        AccessClaims {
            iss: "https://as.example".into(),
            sub: "usr_1".into(),
            aud: "https://mcp.example/mcp".into(),
            client_id: client_id.into(),
            scope: "mcp".into(),
            iat: 1,
            exp: 50,
            jti: "jti_1".into(),
            auth_time: 1,
        }
    }

    #[test]
    fn decisions() {
        let ours = family("client_1");
        let theirs = family("client_2");
        let our_claims = claims("client_1");
        let their_claims = claims("client_2");
        let revoke_family = RevocationDecision::RevokeFamily {
            family_id: "fam_1".parse().unwrap(),
            grant_id: "grt_1".parse().unwrap(),
        };
        let deny = RevocationDecision::DenyAccessToken {
            jti: "jti_1".into(),
            expires_at: 50,
        };
        let cases = [
            (
                "its own refresh token revokes the family",
                RevocationTarget::RefreshToken {
                    family: Some(&ours),
                },
                revoke_family,
            ),
            (
                "another client's refresh token: nothing",
                RevocationTarget::RefreshToken {
                    family: Some(&theirs),
                },
                RevocationDecision::Nothing,
            ),
            (
                "a refresh token whose family is gone: nothing",
                RevocationTarget::RefreshToken { family: None },
                RevocationDecision::Nothing,
            ),
            (
                "its own access token is deny-listed until it expires",
                RevocationTarget::AccessToken(Some(&our_claims)),
                deny,
            ),
            (
                "another client's access token: nothing",
                RevocationTarget::AccessToken(Some(&their_claims)),
                RevocationDecision::Nothing,
            ),
            (
                "an unknown token: nothing",
                RevocationTarget::AccessToken(None),
                RevocationDecision::Nothing,
            ),
        ];
        for (name, target, expected) in cases {
            assert_eq!(
                decide_revocation(&"client_1".parse().unwrap(), target),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn the_token_is_required() {
        assert_eq!(required_token(Some("t")).unwrap(), "t");
        assert_eq!(
            required_token(None).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }
}
