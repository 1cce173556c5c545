//! Table tests of the upstream wire format: parsing, classification, URL building.
use serde_json::json;

use super::*;

const NOW: i64 = 1_800_000_000;

fn refused(error: UpstreamError) -> (String, Option<String>) {
    match error {
        UpstreamError::Refused { code, description } => (code, description),
        other => panic!("not a refusal: {other:?}"),
    }
}

#[test]
fn token_responses_of_every_known_shape() {
    // (what it proves, body, refresh_token, expires_at)
    let cases: [(&str, Value, Option<&str>, Option<i64>); 12] = [
        (
            "ownerrez none policy",
            json!({"access_token": "at_1", "token_type": "bearer", "scope": "all", "user_id": 1}),
            None,
            None,
        ),
        (
            "ownerrez standard",
            json!({"access_token": "at_1", "token_type": "bearer", "refresh_token": "rt_1", "expires_in": 2_592_000, "expires_at": "2000-01-01T00:00:00Z", "refresh_token_supported": true}),
            Some("rt_1"),
            Some(NOW + 2_592_000),
        ),
        (
            "token type in any case",
            json!({"access_token": "at_1", "token_type": "Bearer"}),
            None,
            None,
        ),
        (
            "token type absent",
            json!({"access_token": "at_1"}),
            None,
            None,
        ),
        (
            "expires_in as a string",
            json!({"access_token": "at_1", "expires_in": "3600"}),
            None,
            Some(NOW + 3600),
        ),
        (
            "expires_in as a float",
            json!({"access_token": "at_1", "expires_in": 3600.0}),
            None,
            Some(NOW + 3600),
        ),
        (
            "expires_at in RFC 3339",
            json!({"access_token": "at_1", "expires_at": "2027-01-14T08:00:00Z"}),
            None,
            Some(1_799_913_600),
        ),
        (
            "expires_at with an offset",
            json!({"access_token": "at_1", "expires_at": "2027-01-14T10:00:00+02:00"}),
            None,
            Some(1_799_913_600),
        ),
        (
            "expires_at in .NET's 7 digits",
            json!({"access_token": "at_1", "expires_at": "2027-01-14T08:00:00.1234567Z"}),
            None,
            Some(1_799_913_600),
        ),
        (
            "expires_at without an offset is UTC",
            json!({"access_token": "at_1", "expires_at": "2027-01-14T08:00:00"}),
            None,
            Some(1_799_913_600),
        ),
        (
            "unparseable expiry is no expiry",
            json!({"access_token": "at_1", "expires_in": "soon", "expires_at": "tomorrow"}),
            None,
            None,
        ),
        (
            "nulls are absent",
            json!({"access_token": "at_1", "token_type": null, "refresh_token": null, "expires_in": null, "expires_at": null}),
            None,
            None,
        ),
    ];
    for (name, body, refresh_token, expires_at) in cases {
        let parsed = parse_token_response(body, NOW).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.access_token, "at_1", "{name}");
        assert_eq!(parsed.refresh_token.as_deref(), refresh_token, "{name}");
        assert_eq!(parsed.expires_at, expires_at, "{name}");
    }
}

#[test]
fn unusable_token_responses_are_malformed() {
    let cases = [
        ("no access token", json!({"token_type": "bearer"})),
        ("null access token", json!({"access_token": null})),
        ("empty access token", json!({"access_token": ""})),
        ("numeric access token", json!({"access_token": 12})),
        ("not an object", json!(["at_1"])),
        (
            "another token type",
            json!({"access_token": "at_1", "token_type": "mac"}),
        ),
    ];
    for (name, body) in cases {
        let error = parse_token_response(body, NOW).err();
        assert!(
            matches!(error, Some(UpstreamError::Malformed(_))),
            "{name}: {error:?}"
        );
    }
}

#[test]
fn identifiers_are_strings_or_integers() {
    let body = json!({"a": 123456, "b": "u-1", "c": "", "d": 1.5, "e": true, "f": null, "user": {"id": 7}, "list": [{"id": "x"}]});
    let cases = [
        ("a", Some("123456")),
        ("b", Some("u-1")),
        ("c", None),
        ("d", None),
        ("e", None),
        ("f", None),
        ("missing", None),
        ("user.id", Some("7")),
        ("user.id.deeper", None),
        ("list.0.id", Some("x")),
        ("list.1.id", None),
    ];
    for (path, expected) in cases {
        let found = lookup(&body, path).and_then(identifier);
        assert_eq!(found.as_deref(), expected, "{path}");
    }
}

#[test]
fn failures_are_classified_by_status_then_body() {
    let rfc = br#"{"error":"invalid_grant","error_description":"used"}"#.as_slice();
    let ownerrez =
        br#"{"messages":["expired"],"code":"invalid_token","status_code":401}"#.as_slice();
    // (what it proves, status, body, what was sent, expected code and description)
    let refusals = [
        (
            "rfc 6749 error",
            400,
            rfc,
            Sent::ClientCredentials,
            "invalid_grant",
            Some("used"),
        ),
        (
            "ownerrez api error",
            401,
            ownerrez,
            Sent::BearerToken,
            "invalid_token",
            Some("expired"),
        ),
        (
            "bare 400",
            400,
            b"oops".as_slice(),
            Sent::ClientCredentials,
            "invalid_request",
            None,
        ),
        (
            "bare 401 for the client",
            401,
            b"".as_slice(),
            Sent::ClientCredentials,
            "invalid_client",
            None,
        ),
        (
            "bare 401 for a token",
            401,
            b"".as_slice(),
            Sent::BearerToken,
            "invalid_token",
            None,
        ),
        (
            "bare 403",
            403,
            b"<html>".as_slice(),
            Sent::ClientCredentials,
            "access_denied",
            None,
        ),
        (
            "other 4xx",
            410,
            b"{}".as_slice(),
            Sent::ClientCredentials,
            "http_410",
            None,
        ),
        (
            "non-string error",
            400,
            br#"{"error":5}"#.as_slice(),
            Sent::ClientCredentials,
            "invalid_request",
            None,
        ),
    ];
    for (name, status, body, sent, code, description) in refusals {
        let status = StatusCode::from_u16(status).unwrap();
        let (got_code, got_description) = refused(classify_failure(status, body, sent));
        assert_eq!(
            (got_code.as_str(), got_description.as_deref()),
            (code, description),
            "{name}"
        );
    }
    for status in [500, 502, 503, 429, 408] {
        let error = classify_failure(
            StatusCode::from_u16(status).unwrap(),
            rfc,
            Sent::ClientCredentials,
        );
        assert!(
            matches!(error, UpstreamError::Unavailable(_)),
            "{status}: {error:?}"
        );
    }
    for status in [302, 304] {
        let error = classify_failure(
            StatusCode::from_u16(status).unwrap(),
            b"",
            Sent::ClientCredentials,
        );
        assert!(
            matches!(error, UpstreamError::Malformed(_)),
            "{status}: {error:?}"
        );
    }
}

#[test]
fn long_descriptions_are_cut() {
    let body = json!({"error": "invalid_grant", "error_description": "x".repeat(5000)}).to_string();
    let (_, description) = refused(classify_failure(
        StatusCode::BAD_REQUEST,
        body.as_bytes(),
        Sent::ClientCredentials,
    ));
    assert_eq!(description.unwrap().len(), MAX_DESCRIPTION_CHARS);
}

#[test]
fn authorization_urls_append_to_any_base() {
    let request = AuthorizationRedirect {
        redirect_uri: "https://auth.example.com/upstream/callback",
        state: "s t&=",
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
    };
    let query = "response_type=code&client_id=c_1&redirect_uri=https%3A%2F%2Fauth.example.com%2Fupstream%2Fcallback&state=s+t%26%3D";
    let cases = [
        (
            "plain base",
            "https://up.example/authorize",
            format!("https://up.example/authorize?{query}"),
        ),
        (
            "base with a query",
            "https://up.example/authorize?tenant=a",
            format!("https://up.example/authorize?tenant=a&{query}"),
        ),
        (
            "base ending in ?",
            "https://up.example/authorize?",
            format!("https://up.example/authorize?{query}"),
        ),
        (
            "base ending in &",
            "https://up.example/a?x=1&",
            format!("https://up.example/a?x=1&{query}"),
        ),
        (
            "base with a fragment",
            "https://up.example/a#top",
            format!("https://up.example/a?{query}#top"),
        ),
    ];
    for (name, base, expected) in cases {
        assert_eq!(
            authorization_url(base, "c_1", &request, None, false),
            expected,
            "{name}"
        );
    }
    let with_all = authorization_url(
        "https://up.example/a",
        "c_1",
        &request,
        Some("openid profile"),
        true,
    );
    assert_eq!(
        with_all,
        format!(
            "https://up.example/a?{query}&scope=openid+profile&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
        )
    );
}

#[test]
fn basic_authorization_urlencodes_before_base64() {
    let credentials = ClientCredentials {
        id: "c_1 x".into(),
        secret: "s:é/+".into(),
        method: ClientAuthMethod::Basic,
    };
    let value = credentials.basic_authorization();
    assert!(value.is_sensitive());
    let encoded = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
    let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
    assert_eq!(decoded, "c_1+x:s%3A%C3%A9%2F%2B");
}
