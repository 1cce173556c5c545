//! The `authorization_code` grant: RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6) and resource
//! indicators (RFC 8707 §2.2).
//!
//! Everything is checked before anything is spent: the client the code was issued to, the
//! redirect URI, the PKCE verifier and the resource. So a leaked code is worth nothing to
//! whoever lacks the verifier, and presenting it wrongly does not burn it for its client. Only
//! then is the code spent, by one conditional `UPDATE` in the transaction that starts the
//! refresh-token family and records the access token, so a parallel request presenting it again
//! either finds it spent with its family written, or loses the `UPDATE`; either way it is a
//! replay by the same client and revokes what the code issued (RFC 6749 §4.1.2). Another client
//! presenting a spent code learns nothing and revokes nothing.

use super::{check_resource, grant_error, server_error};
use crate::clients::authenticate::AuthenticatedClient;
use crate::grants::service::{TokenResponse, TokenService};
use crate::ids::{ClientId, FamilyId, TokenHash};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::audit::{AuditRecord, actors};
use crate::store::login::CodeRow;
use crate::store::tokens::FamilyRow;

/// The parameters of an `authorization_code` token request, as sent.
#[derive(Debug, Clone, Copy)]
pub struct CodeRequest<'a> {
    pub code: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    pub resource: Option<&'a str>,
}

/// What to do with a presented code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeDecision {
    /// Every check passed on an unspent, unexpired code: spend it and issue tokens.
    Redeem,
    /// Its client presents it, correctly, after it was spent: revoke what it issued.
    Replay,
    /// Refuse; nothing is spent or revoked.
    Refuse(OAuthError),
}

/// Decides on a code request by `client_id`, given the stored code (`None`: unknown).
pub fn decide_redemption(
    client_id: &ClientId,
    request: &CodeRequest<'_>,
    code: Option<&CodeRow>,
    now: i64,
) -> CodeDecision {
    match check_code_request(client_id, request, code, now) {
        Ok(decision) => decision,
        Err(error) => CodeDecision::Refuse(error),
    }
}

fn check_code_request(
    client_id: &ClientId,
    request: &CodeRequest<'_>,
    code: Option<&CodeRow>,
    now: i64,
) -> Result<CodeDecision, OAuthError> {
    if request.code.is_none() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "code is required",
        ));
    }
    let verifier = request.code_verifier.ok_or_else(|| {
        OAuthError::new(
            ErrorCode::InvalidRequest,
            "code_verifier is required (PKCE)",
        )
    })?;
    let code = code.ok_or_else(|| grant_error("the authorization code is unknown or expired"))?;
    if &code.client_id != client_id {
        return Err(grant_error(
            "the authorization code was issued to another client",
        ));
    }
    // RFC 6749 §4.1.3: the authorization request had one (it is required there), so the token
    // request must repeat it.
    if request.redirect_uri != Some(code.redirect_uri.as_str()) {
        return Err(grant_error(
            "redirect_uri is missing or differs from the authorization request's",
        ));
    }
    if !code.code_challenge.verify(verifier) {
        return Err(grant_error(
            "code_verifier does not match the code_challenge",
        ));
    }
    check_resource(request.resource, code.resource.as_str())?;
    if code.redeemed_at.is_some() {
        return Ok(CodeDecision::Replay);
    }
    if code.expires_at <= now {
        return Err(grant_error("the authorization code is unknown or expired"));
    }
    Ok(CodeDecision::Redeem)
}

impl TokenService {
    /// Redeems an authorization code for an access token and the first refresh token of a new
    /// family.
    pub async fn exchange_code(
        &self,
        client: &AuthenticatedClient,
        request: CodeRequest<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        let now = self.clock.now();
        let code_hash = request.code.map(TokenHash::of);
        let stored = match &code_hash {
            Some(hash) => self.store.code(hash).await.map_err(server_error)?,
            None => None,
        };
        let (row, code_hash) = match (
            decide_redemption(&client.client_id, &request, stored.as_ref(), now),
            stored,
            code_hash,
        ) {
            (CodeDecision::Redeem, Some(row), Some(hash)) => (row, hash),
            (CodeDecision::Replay, _, Some(hash)) => {
                return self.revoke_replayed(client, &hash, now).await;
            }
            (CodeDecision::Refuse(error), _, _) => return Err(error),
            (CodeDecision::Redeem | CodeDecision::Replay, _, _) => {
                return Err(grant_error("the authorization code is unknown or expired"));
            }
        };
        let family = FamilyRow {
            family_id: FamilyId::generate(),
            grant_id: row.grant_id.clone(),
            client_id: client.client_id.clone(),
            code_hash: Some(code_hash.clone()),
            auth_time: row.auth_time,
            created_at: now,
            absolute_expires_at: now + self.config.refresh_token_absolute_ttl_secs as i64,
            revoked_at: None,
            redirect_uri: Some(row.redirect_uri.clone()),
        };
        let (response, first) = self.issue(
            client.access_token_ttl_secs,
            &row.user_id,
            &row.resource,
            &family,
            &row.scope,
            now,
        )?;
        let redeemed = self
            .store
            .redeem_code(&code_hash, family, first, now)
            .await
            .map_err(server_error)?;
        if !redeemed {
            // A parallel request spent it first (a replay), or the grant was revoked meanwhile.
            let again = self.store.code(&code_hash).await.map_err(server_error)?;
            return match decide_redemption(&client.client_id, &request, again.as_ref(), now) {
                CodeDecision::Replay => self.revoke_replayed(client, &code_hash, now).await,
                CodeDecision::Refuse(error) => Err(error),
                CodeDecision::Redeem => Err(grant_error("the authorization has been revoked")),
            };
        }
        if client.use_to_record(now) {
            self.store
                .touch_client(&client.client_id, now)
                .await
                .map_err(server_error)?;
        }
        tracing::info!(client_id = %client.client_id, grant_id = %row.grant_id, "authorization code redeemed");
        Ok(response)
    }

    /// RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization
    /// server MUST deny the request and SHOULD revoke (when possible) all tokens previously
    /// issued based on that authorization code."
    async fn revoke_replayed(
        &self,
        client: &AuthenticatedClient,
        code_hash: &TokenHash,
        now: i64,
    ) -> Result<TokenResponse, OAuthError> {
        tracing::warn!(client_id = %client.client_id, "authorization code replayed: revoking the tokens issued from it");
        self.store
            .revoke_tokens_of_code(code_hash, now)
            .await
            .map_err(server_error)?;
        let summary = serde_json::json!({
            "reason": "an authorization code was presented again: the tokens issued from it are revoked",
        });
        self.audit(
            AuditRecord::new(now, actors::CLIENT, "grant.revoke_code_tokens", &summary)
                .client(&client.client_id),
        )
        .await;
        Err(grant_error("the authorization code was already used"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::pkce::CodeChallenge;
    use crate::oauth::redirect_uri::RedirectUri;
    use crate::oauth::resource::ResourceUri;
    use crate::oauth::scope::ScopeSet;

    const NOW: i64 = 1_750_000_000;
    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const REDIRECT: &str = "https://host.example/cb";
    const RESOURCE: &str = "https://mcp.example/mcp";

    fn stored() -> CodeRow {
        CodeRow {
            code_hash: TokenHash::from_stored("h".into()),
            grant_id: "grt_1".parse().unwrap(),
            client_id: "client_1".parse().unwrap(),
            user_id: "usr_1".parse().unwrap(),
            redirect_uri: RedirectUri::from_stored(REDIRECT.into()),
            code_challenge: CodeChallenge::from_stored(CHALLENGE.into()),
            resource: ResourceUri::from_stored(RESOURCE.into()),
            scope: ScopeSet::from_stored("mcp"),
            auth_time: NOW - 10,
            created_at: NOW - 10,
            expires_at: NOW + 50,
            redeemed_at: None,
            access_jti: None,
        }
    }

    fn request() -> CodeRequest<'static> {
        CodeRequest {
            code: Some("code_1"),
            redirect_uri: Some(REDIRECT),
            code_verifier: Some(VERIFIER),
            resource: None,
        }
    }

    /// A name, the presenting client, the request, the stored code, and what to expect.
    type Case<'a, T> = (&'a str, &'a str, CodeRequest<'a>, Option<CodeRow>, T);

    fn refused_with(decision: CodeDecision) -> Option<ErrorCode> {
        match decision {
            CodeDecision::Refuse(error) => Some(error.code),
            _ => None,
        }
    }

    #[test]
    fn decisions() {
        let spent = CodeRow {
            redeemed_at: Some(NOW - 5),
            ..stored()
        };
        let spent_and_expired = CodeRow {
            redeemed_at: Some(NOW - 100),
            expires_at: NOW - 40,
            ..stored()
        };
        let expired = CodeRow {
            expires_at: NOW,
            ..stored()
        };
        let wrong_verifier = "x".repeat(43);
        let cases: Vec<Case<CodeDecision>> = vec![
            (
                "a correct request redeems",
                "client_1",
                request(),
                Some(stored()),
                CodeDecision::Redeem,
            ),
            (
                "the same resource, spelt differently, redeems",
                "client_1",
                CodeRequest {
                    resource: Some("HTTPS://MCP.example/mcp"),
                    ..request()
                },
                Some(stored()),
                CodeDecision::Redeem,
            ),
            (
                "its client presenting it again is a replay",
                "client_1",
                request(),
                Some(spent.clone()),
                CodeDecision::Replay,
            ),
            (
                "a replay stays a replay after expiry",
                "client_1",
                request(),
                Some(spent_and_expired),
                CodeDecision::Replay,
            ),
        ];
        for (name, client_id, request, code, expected) in cases {
            assert_eq!(
                decide_redemption(&client_id.parse().unwrap(), &request, code.as_ref(), NOW),
                expected,
                "{name}"
            );
        }
        let refusals: Vec<Case<ErrorCode>> = vec![
            (
                "no code",
                "client_1",
                CodeRequest {
                    code: None,
                    ..request()
                },
                Some(stored()),
                ErrorCode::InvalidRequest,
            ),
            (
                "no verifier",
                "client_1",
                CodeRequest {
                    code_verifier: None,
                    ..request()
                },
                Some(stored()),
                ErrorCode::InvalidRequest,
            ),
            (
                "an unknown code",
                "client_1",
                request(),
                None,
                ErrorCode::InvalidGrant,
            ),
            (
                "an expired code",
                "client_1",
                request(),
                Some(expired),
                ErrorCode::InvalidGrant,
            ),
            (
                "another client, before it is spent",
                "client_2",
                request(),
                Some(stored()),
                ErrorCode::InvalidGrant,
            ),
            (
                "another client, after it is spent: no replay",
                "client_2",
                request(),
                Some(spent.clone()),
                ErrorCode::InvalidGrant,
            ),
            (
                "a wrong verifier on a spent code: no replay",
                "client_1",
                CodeRequest {
                    code_verifier: Some(&wrong_verifier),
                    ..request()
                },
                Some(spent),
                ErrorCode::InvalidGrant,
            ),
            (
                "no redirect_uri",
                "client_1",
                CodeRequest {
                    redirect_uri: None,
                    ..request()
                },
                Some(stored()),
                ErrorCode::InvalidGrant,
            ),
            (
                "another redirect_uri",
                "client_1",
                CodeRequest {
                    redirect_uri: Some("https://host.example/other"),
                    ..request()
                },
                Some(stored()),
                ErrorCode::InvalidGrant,
            ),
            (
                "another resource",
                "client_1",
                CodeRequest {
                    resource: Some("https://other.example/mcp"),
                    ..request()
                },
                Some(stored()),
                ErrorCode::InvalidTarget,
            ),
        ];
        for (name, client_id, request, code, expected) in refusals {
            assert_eq!(
                refused_with(decide_redemption(
                    &client_id.parse().unwrap(),
                    &request,
                    code.as_ref(),
                    NOW
                )),
                Some(expected),
                "{name}"
            );
        }
    }
}
