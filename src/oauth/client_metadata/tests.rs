use super::*;
use serde_json::json;

fn rules() -> MetadataRules {
    MetadataRules {
        max_redirect_uris: 3,
        max_redirect_uri_length: 200,
        allowlist: Vec::new(),
        custom_schemes: vec!["cursor".into()],
    }
}

#[test]
fn defaults_follow_rfc_7591_and_allow_refresh() {
    let m = ClientMetadata::from_json(
        &json!({"redirect_uris": ["https://a.example/cb"]}),
        &rules(),
    )
    .unwrap();
    assert_eq!(m.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
    assert_eq!(m.grant_types, ["authorization_code", "refresh_token"]);
    assert_eq!(m.response_types, ["code"]);
    let echo = m.to_json();
    assert!(!echo.contains_key("client_name"), "absent stays absent");
    assert!(echo.values().all(|v| !v.is_null()));
}

#[test]
fn refresh_is_added_and_unknown_fields_kept() {
    let body = json!({
        "redirect_uris": ["http://127.0.0.1:33418/", "https://vscode.dev/redirect"],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
        "client_name": "Visual Studio Code",
        "software_id": "vscode",
        "x_custom": {"nested": [1, 2]},
        "client_id": "chosen-by-client",
        "scope": "claudeai",
    });
    let m = ClientMetadata::from_json(&body, &rules()).unwrap();
    assert_eq!(m.grant_types, ["authorization_code", "refresh_token"]);
    let echo = m.to_json();
    assert_eq!(echo["software_id"], "vscode");
    assert_eq!(echo["x_custom"], json!({"nested": [1, 2]}));
    assert_eq!(echo["scope"], "claudeai");
    assert!(
        !echo.contains_key("client_id"),
        "generated fields are ignored"
    );
}

#[test]
fn null_fields_count_as_absent_and_are_never_echoed() {
    let body = json!({
        "redirect_uris": ["https://a.example/cb"],
        "client_uri": null,
        "token_endpoint_auth_method": null,
        "software_id": null,
    });
    let m = ClientMetadata::from_json(&body, &rules()).unwrap();
    assert_eq!(m.client_uri, None);
    assert_eq!(m.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
    let echo = m.to_json();
    assert!(!echo.contains_key("software_id"), "{echo:?}");
    assert!(echo.values().all(|v| !v.is_null()));
}

#[test]
fn refusals_with_their_codes() {
    let cases = [
        (
            "not an object",
            json!(["https://a.example/cb"]),
            "invalid_client_metadata",
        ),
        ("no redirect_uris", json!({}), "invalid_redirect_uri"),
        (
            "redirect_uris not an array",
            json!({"redirect_uris": "https://a.example/cb"}),
            "invalid_redirect_uri",
        ),
        (
            "redirect_uris empty",
            json!({"redirect_uris": []}),
            "invalid_redirect_uri",
        ),
        (
            "redirect uri not a string",
            json!({"redirect_uris": [1]}),
            "invalid_redirect_uri",
        ),
        (
            "http to a public host",
            json!({"redirect_uris": ["http://a.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            "fragment",
            json!({"redirect_uris": ["https://a.example/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (
            "javascript",
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            "data",
            json!({"redirect_uris": ["data:text/html,x"]}),
            "invalid_redirect_uri",
        ),
        (
            "operating-system scheme",
            json!({"redirect_uris": ["ms-msdt:/id"]}),
            "invalid_redirect_uri",
        ),
        (
            "unlisted scheme without a dot",
            json!({"redirect_uris": ["myapp://cb"]}),
            "invalid_redirect_uri",
        ),
        (
            "too many",
            json!({"redirect_uris": ["https://a.example/1", "https://a.example/2", "https://a.example/3", "https://a.example/4"]}),
            "invalid_redirect_uri",
        ),
        (
            "overlong",
            json!({"redirect_uris": [format!("https://a.example/{}", "x".repeat(300))]}),
            "invalid_redirect_uri",
        ),
        (
            "unsupported auth method",
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            "auth method wrong type",
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": 1}),
            "invalid_client_metadata",
        ),
        (
            "implicit grant",
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            "only refresh",
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["refresh_token"]}),
            "invalid_client_metadata",
        ),
        (
            "grant_types wrong type",
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": "authorization_code"}),
            "invalid_client_metadata",
        ),
        (
            "token response type",
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            "client_name wrong type",
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": ["x"]}),
            "invalid_client_metadata",
        ),
        (
            "client_name empty",
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": " "}),
            "invalid_client_metadata",
        ),
        (
            "client_name with a bidi override",
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": "Cla\u{202E}edu"}),
            "invalid_client_metadata",
        ),
        (
            "client_name with a zero-width space",
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": "Chat\u{200B}GPT"}),
            "invalid_client_metadata",
        ),
        (
            "client_name with a newline",
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": "a\nb"}),
            "invalid_client_metadata",
        ),
        (
            "logo_uri not https",
            json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "javascript:alert(1)"}),
            "invalid_client_metadata",
        ),
        (
            "bad application_type",
            json!({"redirect_uris": ["https://a.example/cb"], "application_type": "desktop"}),
            "invalid_client_metadata",
        ),
        (
            "bad scope",
            json!({"redirect_uris": ["https://a.example/cb"], "scope": "a\"b"}),
            "invalid_client_metadata",
        ),
    ];
    for (name, body, code) in cases {
        let error = ClientMetadata::from_json(&body, &rules()).expect_err(name);
        assert_eq!(error.code(), code, "{name}: {error}");
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn allow_list_applies() {
    let mut rules = rules();
    rules.allowlist = vec![AllowPattern::parse("loopback").unwrap()];
    assert!(
        ClientMetadata::from_json(&json!({"redirect_uris": ["http://localhost:1/cb"]}), &rules)
            .is_ok()
    );
    let error =
        ClientMetadata::from_json(&json!({"redirect_uris": ["https://a.example/cb"]}), &rules)
            .unwrap_err();
    assert_eq!(error.code(), "invalid_redirect_uri");
}
