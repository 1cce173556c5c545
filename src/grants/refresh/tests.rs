//! The refresh decisions, each case named by what it proves.

use super::*;

const NOW: i64 = 1_750_000_000;
const GRACE: i64 = 60;
const RESOURCE: &str = "https://mcp.example/mcp";

fn token() -> RefreshRow {
    RefreshRow {
        token_hash: crate::ids::TokenHash::from_stored("h1".into()),
        family_id: "fam_1".parse().unwrap(),
        scope: ScopeSet::from_stored("mcp mcp:write"),
        access_jti: "jti_1".into(),
        access_expires_at: NOW + 3000,
        created_at: NOW - 600,
        idle_expires_at: NOW + 1000,
        rotated_at: None,
        successor: None,
    }
}

fn rotated(ago: i64, successor: bool) -> RefreshRow {
    RefreshRow {
        rotated_at: Some(NOW - ago),
        successor: successor.then(|| "sealed".to_owned()),
        ..token()
    }
}

fn family() -> FamilyRow {
    FamilyRow {
        family_id: "fam_1".parse().unwrap(),
        grant_id: "grt_1".parse().unwrap(),
        client_id: "client_1".parse().unwrap(),
        code_hash: Some(crate::ids::TokenHash::from_stored("c".into())),
        auth_time: NOW - 600,
        created_at: NOW - 600,
        absolute_expires_at: NOW + 10_000,
        revoked_at: None,
        redirect_uri: None,
    }
}

fn grant() -> GrantRow {
    GrantRow {
        grant_id: "grt_1".parse().unwrap(),
        user_id: "usr_1".parse().unwrap(),
        client_id: "client_1".parse().unwrap(),
        resource: crate::oauth::resource::ResourceUri::from_stored(RESOURCE.into()),
        scope: ScopeSet::from_stored("mcp mcp:write"),
        upstream_tokens: None,
        upstream_expires_at: None,
        created_at: NOW - 600,
        updated_at: NOW - 600,
        revoked_at: None,
        refresh_lease_until: None,
    }
}

fn request(scope: Option<&'static str>) -> RefreshRequest<'static> {
    RefreshRequest {
        refresh_token: Some("rt_1"),
        scope,
        resource: None,
        source: "192.0.2.1",
        user_agent: None,
    }
}

fn decide(
    request: &RefreshRequest<'_>,
    token: &RefreshRow,
    family: &FamilyRow,
    grant: Option<&GrantRow>,
) -> RefreshDecision {
    let stored = StoredRefresh {
        token,
        family,
        grant,
    };
    decide_refresh(
        &"client_1".parse().unwrap(),
        request,
        Some(stored),
        GRACE,
        NOW,
    )
}

fn refused(decision: RefreshDecision) -> Option<ErrorCode> {
    match decision {
        RefreshDecision::Refuse(error) => Some(error.code),
        _ => None,
    }
}

#[test]
fn rotation_replay_and_reuse() {
    let full = || ScopeSet::from_stored("mcp mcp:write");
    let cases = [
        (
            "an unused token rotates",
            token(),
            None,
            RefreshDecision::Rotate { scope: full() },
        ),
        (
            "a narrower scope rotates with that scope",
            token(),
            Some("mcp"),
            RefreshDecision::Rotate {
                scope: ScopeSet::from_stored("mcp"),
            },
        ),
        (
            "inside the window with a kept response: replay",
            rotated(30, true),
            None,
            RefreshDecision::Replay { scope: full() },
        ),
        (
            "at the window's last second: replay",
            rotated(GRACE, true),
            None,
            RefreshDecision::Replay { scope: full() },
        ),
        (
            "a replay carries the scope it asks for",
            rotated(1, true),
            Some("mcp"),
            RefreshDecision::Replay {
                scope: ScopeSet::from_stored("mcp"),
            },
        ),
        (
            "after the window: reuse",
            rotated(GRACE + 1, true),
            None,
            RefreshDecision::Reuse,
        ),
        (
            "reuse asking for a wider scope is still reuse",
            rotated(GRACE + 1, true),
            Some("mcp admin"),
            RefreshDecision::Reuse,
        ),
        (
            "inside the window with nothing kept (no grace, or deleted): reuse",
            rotated(0, false),
            None,
            RefreshDecision::Reuse,
        ),
        (
            "a rotated token past its idle expiry is still reuse",
            RefreshRow {
                idle_expires_at: NOW - 1,
                ..rotated(GRACE + 100, false)
            },
            None,
            RefreshDecision::Reuse,
        ),
    ];
    for (name, token, scope, expected) in cases {
        assert_eq!(
            decide(&request(scope), &token, &family(), Some(&grant())),
            expected,
            "{name}"
        );
    }
}

/// A name, the request, the stored token, family and grant, and the refusal's code.
type Refusal<'a> = (
    &'a str,
    RefreshRequest<'a>,
    RefreshRow,
    FamilyRow,
    Option<GrantRow>,
    ErrorCode,
);

#[test]
fn refusals_change_nothing() {
    let revoked_family = FamilyRow {
        revoked_at: Some(NOW - 1),
        ..family()
    };
    let expired_family = FamilyRow {
        absolute_expires_at: NOW,
        ..family()
    };
    let other_client = FamilyRow {
        client_id: "client_2".parse().unwrap(),
        ..family()
    };
    let revoked_grant = GrantRow {
        revoked_at: Some(NOW - 1),
        ..grant()
    };
    let idle = RefreshRow {
        idle_expires_at: NOW,
        ..token()
    };
    let cases: Vec<Refusal> = vec![
        (
            "no refresh_token",
            RefreshRequest {
                refresh_token: None,
                ..request(None)
            },
            token(),
            family(),
            Some(grant()),
            ErrorCode::InvalidRequest,
        ),
        (
            "another client's token",
            request(None),
            token(),
            other_client.clone(),
            Some(grant()),
            ErrorCode::InvalidGrant,
        ),
        (
            "another client replaying a rotated token: no reuse detection",
            request(None),
            rotated(GRACE + 1, false),
            other_client,
            Some(grant()),
            ErrorCode::InvalidGrant,
        ),
        (
            "a revoked family",
            request(None),
            token(),
            revoked_family.clone(),
            Some(grant()),
            ErrorCode::InvalidGrant,
        ),
        (
            "a rotated token of a revoked family: refused, not replayed",
            request(None),
            rotated(1, true),
            revoked_family,
            Some(grant()),
            ErrorCode::InvalidGrant,
        ),
        (
            "a family past its absolute expiry",
            request(None),
            token(),
            expired_family,
            Some(grant()),
            ErrorCode::InvalidGrant,
        ),
        (
            "a revoked grant",
            request(None),
            token(),
            family(),
            Some(revoked_grant),
            ErrorCode::InvalidGrant,
        ),
        (
            "a deleted grant",
            request(None),
            token(),
            family(),
            None,
            ErrorCode::InvalidGrant,
        ),
        (
            "an idle-expired token",
            request(None),
            idle,
            family(),
            Some(grant()),
            ErrorCode::InvalidGrant,
        ),
        (
            "a wider scope",
            request(Some("mcp admin")),
            token(),
            family(),
            Some(grant()),
            ErrorCode::InvalidScope,
        ),
        (
            "another resource",
            RefreshRequest {
                resource: Some("https://other.example/mcp"),
                ..request(None)
            },
            token(),
            family(),
            Some(grant()),
            ErrorCode::InvalidTarget,
        ),
    ];
    for (name, request, token, family, grant, expected) in cases {
        assert_eq!(
            refused(decide(&request, &token, &family, grant.as_ref())),
            Some(expected),
            "{name}"
        );
    }
    assert_eq!(
        refused(decide_refresh(
            &"client_1".parse().unwrap(),
            &request(None),
            None,
            GRACE,
            NOW
        )),
        Some(ErrorCode::InvalidGrant),
        "an unknown token"
    );
}

#[test]
fn a_replay_is_answered_only_for_the_scope_of_its_rotation() {
    let replayed = TokenResponse {
        access_token: "at".into(),
        token_type: "Bearer".into(),
        expires_in: 3600,
        refresh_token: Some("rt_2".into()),
        scope: "mcp".into(),
    };
    assert!(check_replay_scope(&ScopeSet::from_stored("mcp"), &replayed).is_ok());
    for other in ["mcp mcp:write", "mcp:write", ""] {
        assert_eq!(
            check_replay_scope(&ScopeSet::from_stored(other), &replayed)
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant,
            "{other:?}"
        );
    }
}

#[test]
fn scope_narrowing() {
    let granted = ScopeSet::from_stored("a b");
    assert_eq!(narrow_scope(None, &granted).unwrap().to_string(), "a b");
    assert_eq!(
        narrow_scope(Some("  "), &granted).unwrap().to_string(),
        "a b"
    );
    assert_eq!(narrow_scope(Some("b"), &granted).unwrap().to_string(), "b");
    assert_eq!(
        narrow_scope(Some("b a a"), &granted).unwrap().to_string(),
        "a b"
    );
    assert_eq!(
        narrow_scope(Some("offline_access"), &granted)
            .unwrap()
            .to_string(),
        "a b"
    );
    assert_eq!(
        narrow_scope(Some("b offline_access"), &granted)
            .unwrap()
            .to_string(),
        "b"
    );
    assert_eq!(
        narrow_scope(Some("c"), &granted).unwrap_err().code,
        ErrorCode::InvalidScope
    );
}
