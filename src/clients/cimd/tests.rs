//! Unit tests of the Client ID Metadata Document rules.
use std::net::IpAddr;

use serde_json::json;

use super::*;

#[test]
fn client_id_urls() {
    let accepted = [
        (
            "claude.ai document",
            "https://claude.ai/oauth/mcp-oauth-client-metadata",
        ),
        (
            "ChatGPT document",
            "https://chatgpt.com/oauth/abc/client.json",
        ),
        ("query", "https://app.example.com/client?v=2"),
        ("explicit port", "https://app.example.com:8443/client.json"),
        (
            "https on loopback (refused later, by address)",
            "https://127.0.0.1:8443/c",
        ),
    ];
    let refused = [
        ("root path", "https://app.example.com/"),
        ("no path", "https://app.example.com"),
        ("root path with query", "https://app.example.com/?client=1"),
        ("fragment", "https://app.example.com/client#x"),
        ("empty fragment", "https://app.example.com/client#"),
        ("user", "https://user@app.example.com/client"),
        (
            "user and password",
            "https://user:pw@app.example.com/client",
        ),
        ("dot segment", "https://app.example.com/a/./client"),
        ("double-dot segment", "https://app.example.com/a/../client"),
        (
            "encoded double-dot segment",
            "https://app.example.com/a/%2e%2e/client",
        ),
        (
            "upper-case host (not canonical)",
            "https://App.example.com/client",
        ),
        (
            "default port (not canonical)",
            "https://app.example.com:443/client",
        ),
        ("plain http", "http://app.example.com/client"),
        ("plain http on loopback", "http://127.0.0.1:8080/client"),
        ("opaque client id", "my-client"),
        ("other scheme", "ftp://app.example.com/client"),
        ("empty", ""),
        ("leading space", " https://app.example.com/client"),
    ];
    for (name, url) in accepted {
        assert!(is_client_id_url(url, false), "{name}: `{url}` refused");
        // Parsed as a `ClientId` at every entry point first: it must pass there too.
        assert!(
            url.parse::<crate::ids::ClientId>().is_ok(),
            "{name}: `{url}` is not a ClientId"
        );
    }
    for (name, url) in refused {
        assert!(!is_client_id_url(url, false), "{name}: `{url}` accepted");
    }
    let long = format!("https://app.example.com/{}", "a".repeat(MAX_URL_LENGTH));
    assert!(!is_client_id_url(&long, false), "longer than the column");
    let longest = &long[..MAX_URL_LENGTH];
    assert!(is_client_id_url(longest, false), "as long as the column");
    assert!(
        longest.parse::<crate::ids::ClientId>().is_ok(),
        "the longest is a ClientId"
    );
}

#[test]
fn client_id_urls_with_the_test_switch() {
    let cases = [
        ("http 127.0.0.1", "http://127.0.0.1:8080/client", true),
        ("http localhost", "http://localhost:8080/client", true),
        ("http [::1]", "http://[::1]:8080/client", true),
        (
            "http on another host",
            "http://app.example.com/client",
            false,
        ),
        (
            "http on a name starting like localhost",
            "http://localhost.evil.com/c",
            false,
        ),
        ("http loopback root path", "http://127.0.0.1:8080/", false),
        (
            "https still accepted",
            "https://app.example.com/client",
            true,
        ),
    ];
    for (name, url, expected) in cases {
        assert_eq!(is_client_id_url(url, true), expected, "{name}: `{url}`");
    }
}

#[test]
fn forbidden_addresses() {
    let allowed = [
        ("public IPv4", "93.184.215.14"),
        ("just above CGNAT", "100.128.0.1"),
        ("just above 172.16/12", "172.32.0.1"),
        ("just above benchmarking", "198.20.0.1"),
        ("last before multicast", "223.255.255.254"),
        ("public IPv6", "2606:4700:4700::1111"),
        ("IPv4-mapped public", "::ffff:93.184.215.14"),
        ("NAT64 of public", "64:ff9b::5db8:d70e"),
        ("6to4 of public", "2002:5db8:d70e::1"),
    ];
    let forbidden = [
        ("unspecified", "0.0.0.0"),
        ("this network", "0.1.2.3"),
        ("loopback", "127.0.0.1"),
        ("loopback elsewhere in 127/8", "127.1.2.3"),
        ("private 10/8", "10.1.2.3"),
        ("private 172.16/12", "172.16.0.1"),
        ("private 172.16/12, top", "172.31.255.255"),
        ("private 192.168/16", "192.168.1.1"),
        ("link-local, cloud metadata", "169.254.169.254"),
        ("CGNAT 100.64/10", "100.64.0.1"),
        ("CGNAT 100.64/10, top", "100.127.255.255"),
        ("IETF protocol assignments", "192.0.0.8"),
        ("documentation TEST-NET-1", "192.0.2.1"),
        ("documentation TEST-NET-2", "198.51.100.1"),
        ("documentation TEST-NET-3", "203.0.113.1"),
        ("benchmarking 198.18/15", "198.18.0.1"),
        ("benchmarking 198.18/15, top", "198.19.255.255"),
        ("multicast", "224.0.0.1"),
        ("reserved 240/4", "240.0.0.1"),
        ("broadcast", "255.255.255.255"),
        ("IPv6 unspecified", "::"),
        ("IPv6 loopback", "::1"),
        ("IPv4-mapped loopback", "::ffff:127.0.0.1"),
        ("IPv4-mapped private", "::ffff:10.0.0.1"),
        ("IPv4-mapped link-local", "::ffff:169.254.169.254"),
        ("IPv4-compatible (deprecated)", "::127.0.0.1"),
        ("NAT64 of loopback", "64:ff9b::127.0.0.1"),
        ("NAT64 of private", "64:ff9b::c0a8:101"),
        ("local-use NAT64", "64:ff9b:1::1"),
        ("6to4 of loopback", "2002:7f00:1::1"),
        ("6to4 of private", "2002:a00:1::1"),
        ("unique-local fd00::/8", "fd12:3456::1"),
        ("unique-local fc00::/8", "fc00::1"),
        ("link-local fe80::/10", "fe80::1"),
        ("site-local fec0::/10", "fec0::1"),
        ("IPv6 multicast", "ff02::1"),
        ("discard-only 100::/64", "100::1"),
        ("Teredo", "2001:0:4136:e378::1"),
        ("documentation 2001:db8::/32", "2001:db8::1"),
        ("documentation 3fff::/20", "3fff::1"),
        ("benchmarking 2001:2::/48", "2001:2::1"),
    ];
    for (name, address) in allowed {
        assert!(
            !is_forbidden_address(address.parse().unwrap()),
            "{name}: {address}"
        );
    }
    for (name, address) in forbidden {
        assert!(
            is_forbidden_address(address.parse().unwrap()),
            "{name}: {address}"
        );
    }
}

#[test]
fn loopback_is_a_target_only_with_the_test_switch() {
    for address in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
        let ip: IpAddr = address.parse().unwrap();
        assert!(
            !is_allowed_target(ip, false),
            "{address} without the switch"
        );
        assert!(is_allowed_target(ip, true), "{address} with the switch");
    }
    let private: IpAddr = "10.0.0.1".parse().unwrap();
    assert!(!is_allowed_target(private, true), "private stays forbidden");
}

#[test]
fn cache_lifetimes() {
    let (min, max) = (60, 86_400);
    let cases = [
        ("absent", "", Some(min)),
        ("max-age within bounds", "max-age=300", Some(300)),
        ("max-age below the minimum", "max-age=5", Some(min)),
        ("max-age zero", "max-age=0", Some(min)),
        ("max-age above the maximum", "max-age=604800", Some(max)),
        (
            "max-age beyond u64",
            "max-age=99999999999999999999999",
            Some(max),
        ),
        (
            "among other directives",
            "public, max-age=600, must-revalidate",
            Some(600),
        ),
        ("upper case", "Max-Age=600", Some(600)),
        ("quoted", "max-age=\"600\"", Some(600)),
        ("spaces", " max-age = 600 ", Some(600)),
        ("first max-age wins", "max-age=600, max-age=900", Some(600)),
        ("invalid max-age", "max-age=soon", Some(min)),
        ("negative max-age", "max-age=-1", Some(min)),
        ("no-store", "no-store", None),
        ("no-store with max-age", "max-age=600, no-store", None),
        ("upper-case no-store", "NO-STORE", None),
        ("no-cache is not no-store", "no-cache", Some(min)),
    ];
    for (name, header, expected) in cases {
        assert_eq!(
            cache_lifetime(header, min, max),
            expected,
            "{name}: `{header}`"
        );
    }
}

const URL: &str = "https://app.example.com/client.json";
const AUTH: &str = "token_endpoint_auth_method";

/// A valid document with `field` set to `value` (`null` for "absent").
fn document_with(field: &str, value: Value) -> String {
    let mut document = json!({
        "client_id": URL,
        "redirect_uris": ["https://app.example.com/callback"],
    });
    document[field] = value;
    document.to_string()
}

#[test]
fn valid_documents() {
    let minimal = validate_document(URL, &document_with("client_name", Value::Null), &[]).unwrap();
    assert_eq!(minimal.client_id, URL);
    assert_eq!(minimal.redirect_uris, ["https://app.example.com/callback"]);
    assert_eq!(
        minimal.token_endpoint_auth_method, "none",
        "absent means none"
    );
    assert_eq!(minimal.client_name, None, "null means absent");

    let text = json!({
        "client_id": URL,
        "redirect_uris": ["https://app.example.com/cb", "http://127.0.0.1/cb"],
        "client_name": "Example",
        "client_uri": "https://app.example.com",
        "logo_uri": "https://app.example.com/logo.png",
        "token_endpoint_auth_method": "none",
        "jwks_uri": "https://app.example.com/jwks.json",
    })
    .to_string();
    let full = validate_document(URL, &text, &[]).unwrap();
    assert_eq!(full.redirect_uris.len(), 2);
    assert_eq!(full.client_name.as_deref(), Some("Example"));
    assert_eq!(full.client_uri.as_deref(), Some("https://app.example.com"));
    let logo = full.logo_uri.as_deref();
    assert_eq!(logo, Some("https://app.example.com/logo.png"));
    assert_eq!(full.token_endpoint_auth_method, "none");
    assert_eq!(full.raw["jwks_uri"], "https://app.example.com/jwks.json");
}

#[test]
fn refused_documents() {
    let cases = [
        (
            "client_id absent",
            "client_id",
            Value::Null,
            "ClientIdMismatch",
        ),
        (
            "client_id with a slash added",
            "client_id",
            json!(format!("{URL}/")),
            "ClientIdMismatch",
        ),
        (
            "client_id upper case",
            "client_id",
            json!(URL.to_uppercase()),
            "ClientIdMismatch",
        ),
        (
            "client_id a number",
            "client_id",
            json!(1),
            "ClientIdMismatch",
        ),
        (
            "redirect_uris absent",
            "redirect_uris",
            Value::Null,
            "MissingRedirectUris",
        ),
        (
            "redirect_uris empty",
            "redirect_uris",
            json!([]),
            "MissingRedirectUris",
        ),
        (
            "redirect_uris a string",
            "redirect_uris",
            json!("https://a.example/cb"),
            "InvalidField",
        ),
        (
            "redirect_uris with a number",
            "redirect_uris",
            json!([1]),
            "InvalidField",
        ),
        (
            "fragment",
            "redirect_uris",
            json!(["https://a.example/cb#x"]),
            "InvalidRedirectUri",
        ),
        (
            "plain http",
            "redirect_uris",
            json!(["http://a.example/cb"]),
            "InvalidRedirectUri",
        ),
        (
            "javascript:",
            "redirect_uris",
            json!(["javascript:alert(1)"]),
            "InvalidRedirectUri",
        ),
        (
            "client_secret_basic",
            AUTH,
            json!("client_secret_basic"),
            "SecretAuthMethod",
        ),
        (
            "client_secret_post",
            AUTH,
            json!("client_secret_post"),
            "SecretAuthMethod",
        ),
        (
            "client_secret_jwt",
            AUTH,
            json!("client_secret_jwt"),
            "SecretAuthMethod",
        ),
        (
            "private_key_jwt, not implemented yet",
            AUTH,
            json!("private_key_jwt"),
            "UnsupportedAuthMethod",
        ),
        (
            "operating-system redirect scheme",
            "redirect_uris",
            json!(["ms-msdt:/id"]),
            "InvalidRedirectUri",
        ),
        (
            "unknown auth method",
            AUTH,
            json!("tls_client_auth"),
            "UnsupportedAuthMethod",
        ),
        (
            "auth method not a string",
            AUTH,
            json!(["none"]),
            "InvalidField",
        ),
        (
            "client_secret",
            "client_secret",
            json!("s3cret"),
            "SecretInDocument",
        ),
        (
            "client_secret_expires_at",
            "client_secret_expires_at",
            json!(0),
            "SecretInDocument",
        ),
        (
            "client_name a number",
            "client_name",
            json!(7),
            "InvalidField",
        ),
        (
            "client_uri an object",
            "client_uri",
            json!({}),
            "InvalidField",
        ),
        (
            "logo_uri a boolean",
            "logo_uri",
            json!(true),
            "InvalidField",
        ),
    ];
    for (name, field, value, expected) in cases {
        let refusal = validate_document(URL, &document_with(field, value), &[]);
        let refusal = format!("{:?}", refusal.expect_err(name));
        assert!(refusal.starts_with(expected), "{name}: {refusal}");
    }
    for text in ["<html>", "", "[]", "\"text\"", "{\"client_id\":"] {
        let refusal = validate_document(URL, text, &[]).expect_err(text);
        assert!(
            matches!(refusal, CimdError::NotJson),
            "`{text}`: {refusal:?}"
        );
    }
}

#[test]
fn messages_quote_document_values_only_as_printable_ascii() {
    let uri = "https://a.example/cb#\n<b>\"é\\";
    let text = document_with("redirect_uris", json!([uri]));
    let message = validate_document(URL, &text, &[]).unwrap_err().to_string();
    let allowed = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e');
    assert!(message.chars().all(allowed), "{message}");
    assert!(printable(&"a".repeat(1000)).len() < 310, "shortened");
}

#[test]
fn temporary_errors() {
    let remembered = |temporary| CimdError::Remembered {
        description: "x".into(),
        temporary,
        for_secs: 30,
    };
    let temporary = [
        CimdError::Timeout,
        CimdError::Status(503),
        CimdError::Status(429),
        CimdError::Busy,
        remembered(true),
    ];
    let permanent = [
        remembered(false),
        CimdError::Status(404),
        CimdError::Redirect,
        CimdError::ForbiddenAddress,
        CimdError::TooLarge,
        CimdError::ClientIdMismatch,
    ];
    assert!(temporary.iter().all(CimdError::is_temporary));
    assert!(!permanent.iter().any(CimdError::is_temporary));
}
