use super::*;

const MAX: usize = 2000;

/// The configured known hosts' schemes (the default configuration).
fn known() -> Vec<String> {
    ["cursor", "vscode", "vscode-insiders", "claude", "windsurf"]
        .map(String::from)
        .to_vec()
}

fn parse(uri: &str) -> Result<RedirectUri, RedirectUriError> {
    RedirectUri::parse(uri, MAX, &known())
}

/// Every redirect URI of docs/mcp-hosts.md, registered as the host sends it.
const REAL_HOSTS: &[(&str, &str)] = &[
    ("ChatGPT", "https://chatgpt.com/connector/oauth/abc123"),
    (
        "ChatGPT legacy",
        "https://chatgpt.com/connector_platform_oauth_redirect",
    ),
    ("claude.ai", "https://claude.ai/api/mcp/auth_callback"),
    ("claude.com", "https://claude.com/api/mcp/auth_callback"),
    ("Claude Code localhost", "http://localhost/callback"),
    ("Claude Code 127.0.0.1", "http://127.0.0.1/callback"),
    (
        "Cursor custom scheme",
        "cursor://anysphere.cursor-mcp/oauth/callback",
    ),
    ("Cursor loopback", "http://localhost:8787/callback"),
    ("VS Code loopback with port", "http://127.0.0.1:33418/"),
    ("VS Code loopback without port", "http://127.0.0.1/"),
    ("VS Code web", "https://vscode.dev/redirect"),
    ("VS Code insiders", "https://insiders.vscode.dev/redirect"),
    ("MCP Inspector", "http://localhost:6274/oauth/callback"),
    (
        "MCP Inspector debug",
        "http://localhost:6274/oauth/callback/debug",
    ),
    ("IPv6 loopback", "http://[::1]:8080/cb"),
    ("reverse-domain scheme", "com.example.app:/oauth2redirect"),
];

#[test]
fn every_real_host_redirect_uri_registers() {
    for (host, uri) in REAL_HOSTS {
        let parsed = parse(uri).unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(parsed.as_str(), *uri, "{host}: kept exactly");
    }
}

#[test]
fn refused_at_registration() {
    let cases = [
        ("plain http to another host", "http://example.com/cb"),
        ("plain http to a private address", "http://192.168.1.2/cb"),
        (
            "http to a name that only starts like localhost",
            "http://localhost.evil.com/cb",
        ),
        ("fragment", "https://app.example.com/cb#x"),
        ("empty fragment", "https://app.example.com/cb#"),
        ("userinfo", "https://user:pw@app.example.com/cb"),
        (
            "userinfo without password",
            "https://user@app.example.com/cb",
        ),
        ("javascript", "javascript:alert(1)"),
        ("data", "data:text/html,<script>alert(1)</script>"),
        ("file", "file:///etc/passwd"),
        ("blob", "blob:https://a.example/uuid"),
        ("vbscript", "vbscript:msgbox(1)"),
        ("about", "about:blank"),
        ("upper-case dangerous scheme", "JavaScript:alert(1)"),
        ("relative", "/callback"),
        ("scheme-relative", "//app.example.com/cb"),
        ("empty", ""),
        ("only a scheme", "cursor:"),
        ("whitespace", "https://app.example.com/c b"),
        ("https without host", "https:///cb"),
        ("https with one slash", "https:/a.example/cb"),
        ("backslash", "https://a.example\\@evil.example/cb"),
        ("upper-case scheme", "HTTPS://a.example/cb"),
    ];
    for (name, uri) in cases {
        assert!(parse(uri).is_err(), "{name}: `{uri}` was accepted");
    }
    let long = format!("https://app.example.com/{}", "a".repeat(MAX));
    assert!(parse(&long).is_err(), "overlong");
}

#[test]
fn matching() {
    let cases: &[(&str, &[&str], &str, bool)] = &[
        (
            "https exact",
            &["https://claude.ai/api/mcp/auth_callback"],
            "https://claude.ai/api/mcp/auth_callback",
            true,
        ),
        (
            "https trailing slash differs",
            &["https://claude.ai/api/mcp/auth_callback"],
            "https://claude.ai/api/mcp/auth_callback/",
            false,
        ),
        (
            "https case differs",
            &["https://claude.ai/api/mcp/auth_callback"],
            "https://Claude.ai/api/mcp/auth_callback",
            false,
        ),
        (
            "https port is not ignored",
            &["https://vscode.dev/redirect"],
            "https://vscode.dev:444/redirect",
            false,
        ),
        (
            "https extra query",
            &["https://chatgpt.com/connector/oauth/abc"],
            "https://chatgpt.com/connector/oauth/abc?x=1",
            false,
        ),
        (
            "ChatGPT other callback id",
            &["https://chatgpt.com/connector/oauth/abc"],
            "https://chatgpt.com/connector/oauth/abd",
            false,
        ),
        (
            "loopback any port",
            &["http://localhost:6274/oauth/callback"],
            "http://localhost:51234/oauth/callback",
            true,
        ),
        (
            "loopback registered without port",
            &["http://127.0.0.1/callback"],
            "http://127.0.0.1:49152/callback",
            true,
        ),
        (
            "loopback requested without port",
            &["http://127.0.0.1:33418/"],
            "http://127.0.0.1/",
            true,
        ),
        (
            "VS Code port-less root",
            &["http://127.0.0.1/"],
            "http://127.0.0.1:33418/",
            true,
        ),
        (
            "empty path equals /",
            &["http://127.0.0.1/"],
            "http://127.0.0.1:33418",
            true,
        ),
        (
            "IPv6 loopback any port",
            &["http://[::1]/cb"],
            "http://[::1]:9000/cb",
            true,
        ),
        (
            "localhost is not 127.0.0.1",
            &["http://localhost/callback"],
            "http://127.0.0.1:5000/callback",
            false,
        ),
        (
            "127.0.0.1 is not localhost",
            &["http://127.0.0.1/callback"],
            "http://localhost:5000/callback",
            false,
        ),
        (
            "loopback path exact",
            &["http://localhost/callback"],
            "http://localhost:5000/callback/",
            false,
        ),
        (
            "loopback path case",
            &["http://localhost/callback"],
            "http://localhost:5000/Callback",
            false,
        ),
        (
            "loopback query exact",
            &["http://localhost/cb?a=1"],
            "http://localhost:5000/cb?a=1",
            true,
        ),
        (
            "loopback query differs",
            &["http://localhost/cb?a=1"],
            "http://localhost:5000/cb?a=2",
            false,
        ),
        (
            "loopback scheme exact",
            &["http://localhost/cb"],
            "https://localhost:5000/cb",
            false,
        ),
        (
            "loopback port must be digits",
            &["http://localhost/cb"],
            "http://localhost:abc/cb",
            false,
        ),
        (
            "loopback userinfo trick",
            &["http://localhost/cb"],
            "http://localhost:1@evil.com/cb",
            false,
        ),
        (
            "custom scheme exact",
            &["cursor://anysphere.cursor-mcp/oauth/callback"],
            "cursor://anysphere.cursor-mcp/oauth/callback",
            true,
        ),
        (
            "custom scheme differs",
            &["cursor://anysphere.cursor-mcp/oauth/callback"],
            "cursor://anysphere.cursor-mcp/oauth/other",
            false,
        ),
        (
            "second registered URI",
            &["https://a.example/cb", "http://localhost/cb"],
            "http://localhost:7/cb",
            true,
        ),
        ("nothing registered", &[], "https://a.example/cb", false),
    ];
    for (name, registered, requested, expected) in cases {
        let matched = match_redirect_uri(registered.iter().copied(), requested);
        assert_eq!(matched.is_some(), *expected, "{name}");
        if let Some(uri) = matched {
            assert_eq!(
                uri.as_str(),
                *requested,
                "{name}: the requested URI is used, port included"
            );
        }
    }
}

#[test]
fn private_use_schemes_at_registration() {
    let cases: &[(&str, &str, bool)] = &[
        (
            "Cursor, a configured scheme",
            "cursor://anysphere.cursor-mcp/oauth/callback",
            true,
        ),
        (
            "reverse-domain scheme, one slash",
            "com.example.app:/oauth2redirect",
            true,
        ),
        ("unknown scheme without a dot", "myapp://callback", false),
        (
            "Windows troubleshooter (Follina)",
            "ms-msdt:/id%20PCWDiagnostic",
            false,
        ),
        ("websocket", "ws://evil.example/socket", false),
        (
            "Android intent",
            "intent://scan/#Intent;scheme=zxing;end",
            false,
        ),
    ];
    for (name, uri, accepted) in cases {
        assert_eq!(parse(uri).is_ok(), *accepted, "{name}: `{uri}`");
    }
    let refusal = parse("myapp://callback").unwrap_err().to_string();
    assert!(refusal.contains("reverse-domain"), "{refusal}");
}

#[test]
fn loopback_ports_must_be_ports() {
    let registered = ["http://localhost/cb"];
    let cases = [
        ("highest port", "http://localhost:65535/cb", true),
        ("leading zeros", "http://localhost:0080/cb", true),
        ("above 65535", "http://localhost:65536/cb", false),
        ("five nines", "http://localhost:99999/cb", false),
        ("port zero", "http://localhost:0/cb", false),
        ("zeros", "http://localhost:00000/cb", false),
        ("empty port", "http://localhost:/cb", false),
        ("sign", "http://localhost:+80/cb", false),
        ("IPv6 above 65535", "http://[::1]:70000/cb", false),
    ];
    for (name, requested, matches) in cases {
        let registered = if requested.contains("[::1]") {
            ["http://[::1]/cb"]
        } else {
            registered
        };
        let matched = match_redirect_uri(registered, requested);
        assert_eq!(matched.is_some(), matches, "{name}: `{requested}`");
        if let Some(uri) = matched {
            assert!(
                !uri.display_host().is_empty(),
                "{name}: shown without a panic"
            );
        }
    }
}

#[test]
fn display_host_never_panics_on_a_stored_uri() {
    let cases = [
        ("unparsable stored URI", "ms-msdt:/legacy", "ms-msdt://"),
        ("not a URI at all", "%%%", "%%%://"),
        ("https", "https://claude.ai/cb", "claude.ai"),
    ];
    for (name, stored, shown) in cases {
        let verified = match_redirect_uri([stored], stored).expect("a URI matches itself");
        assert_eq!(verified.display_host(), shown, "{name}");
    }
}

#[test]
fn allow_list_patterns() {
    let uri = |s: &str| parse(s).unwrap();
    let chatgpt = AllowPattern::parse("https://chatgpt.com/connector/*").unwrap();
    assert!(chatgpt.allows(&uri("https://chatgpt.com/connector/oauth/x")));
    assert!(!chatgpt.allows(&uri("https://chatgpt.com.evil.example/connector/x")));
    let loopback = AllowPattern::parse("loopback").unwrap();
    assert!(loopback.allows(&uri("http://127.0.0.1:33418/")));
    assert!(!loopback.allows(&uri("https://localhost/cb")));
    let cursor = AllowPattern::parse("cursor://*").unwrap();
    assert!(cursor.allows(&uri("cursor://anysphere.cursor-mcp/oauth/callback")));
    assert!(!cursor.allows(&uri("cursorx.app://a/b")));
    let exact = AllowPattern::parse("https://claude.ai/api/mcp/auth_callback").unwrap();
    assert!(exact.allows(&uri("https://claude.ai/api/mcp/auth_callback")));
    assert!(!exact.allows(&uri("https://claude.ai/api/mcp/auth_callback2")));
    for bad in [
        "https://chatgpt.com*",
        "http://*",
        "https://*",
        "javascript:*",
        "ms-msdt://*",
        "not a uri",
    ] {
        assert!(AllowPattern::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn kinds_and_display_hosts() {
    let verified = |s: &str| match_redirect_uri([s], s).unwrap();
    assert_eq!(verified("https://claude.ai/cb").kind(), RedirectKind::Web);
    assert_eq!(
        verified("http://127.0.0.1:1/").kind(),
        RedirectKind::Loopback
    );
    assert_eq!(verified("cursor://x/y").kind(), RedirectKind::CustomScheme);
    assert_eq!(verified("https://claude.ai/cb").display_host(), "claude.ai");
    assert_eq!(verified("cursor://x/y").display_host(), "cursor://");
}
