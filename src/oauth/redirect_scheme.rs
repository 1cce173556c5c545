//! Which private-use redirect URI schemes (RFC 8252 §7.1) may be registered. Such a scheme
//! hands the browser to a local program, so only two kinds are accepted: the reverse-domain
//! form the RFC asks for (`com.example.app:`), and the short list of known hosts' schemes the
//! operator configures (`cursor`, `vscode`, …). Schemes that run code or belong to the
//! operating system or the browser (`javascript:`, `ms-msdt:`, `search-ms:`, `intent:`, …) are
//! refused whatever the configuration says.

/// Schemes that run code, read local data, or hand the URI to a program of the operating
/// system or the browser rather than to the app that registered it: never a redirect target,
/// not even when configured.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "blob",
    "vbscript",
    "about",
    "filesystem",
    "view-source",
    "jar",
    "intent",
    "ms-msdt",
    "ms-settings",
    "ms-officecmd",
    "search-ms",
    "search",
    "shell",
    "ws",
    "wss",
    "ftp",
    "mailto",
    "tel",
    "sms",
    "x-apple.systempreferences",
];

/// Whether `scheme` may never be a redirect target (in any case).
pub fn is_forbidden_scheme(scheme: &str) -> bool {
    FORBIDDEN_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
}

/// Whether `scheme` is written as RFC 3986 §3.1 allows, in lower case: a letter, then letters,
/// digits, `+`, `-` and `.`.
pub fn is_scheme_syntax(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
        })
}

/// Whether a native app may register redirect URIs of the private-use `scheme`: not forbidden,
/// and either reverse-domain (at least two non-empty labels separated by dots) or one of the
/// `configured` known hosts' schemes.
pub fn is_native_scheme_allowed(scheme: &str, configured: &[String]) -> bool {
    let reverse_domain = scheme.contains('.') && scheme.split('.').all(|label| !label.is_empty());
    !is_forbidden_scheme(scheme)
        && is_scheme_syntax(scheme)
        && (reverse_domain || configured.iter().any(|allowed| allowed == scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_schemes() {
        let configured: Vec<String> = ["cursor", "vscode", "vscode-insiders", "claude", "windsurf"]
            .map(String::from)
            .to_vec();
        let cases = [
            ("Cursor, configured", "cursor", true),
            ("VS Code, configured", "vscode", true),
            ("VS Code Insiders, configured", "vscode-insiders", true),
            ("Claude, configured", "claude", true),
            ("Windsurf, configured", "windsurf", true),
            ("reverse-domain", "com.example.app", true),
            (
                "reverse-domain with digits and dashes",
                "io.my-app2.mcp",
                true,
            ),
            ("unknown, no dot", "myapp", false),
            ("longer than a configured one", "cursorx", false),
            ("an empty label", "com..app", false),
            ("a trailing dot", "com.example.", false),
            ("upper case", "Com.Example.App", false),
            ("Windows troubleshooter (Follina)", "ms-msdt", false),
            ("Windows settings", "ms-settings", false),
            ("Office command handler", "ms-officecmd", false),
            ("Windows search", "search-ms", false),
            ("Android intent", "intent", false),
            ("Java archive", "jar", false),
            ("view-source", "view-source", false),
            ("websocket", "ws", false),
            ("secure websocket", "wss", false),
            ("mail", "mailto", false),
            ("telephone", "tel", false),
            ("text message", "sms", false),
            ("ftp", "ftp", false),
            ("javascript", "javascript", false),
            (
                "macOS preferences, dotted",
                "x-apple.systempreferences",
                false,
            ),
        ];
        for (name, scheme, allowed) in cases {
            assert_eq!(
                is_native_scheme_allowed(scheme, &configured),
                allowed,
                "{name}: `{scheme}`"
            );
        }
    }

    #[test]
    fn a_forbidden_scheme_stays_forbidden_when_configured() {
        let configured = ["ms-msdt".to_owned(), "myapp".to_owned()];
        assert!(!is_native_scheme_allowed("ms-msdt", &configured));
        assert!(is_native_scheme_allowed("myapp", &configured));
        assert!(is_forbidden_scheme("MS-MSDT"), "case does not matter");
    }

    #[test]
    fn scheme_syntax() {
        for ok in ["cursor", "com.example.app", "a+b-c.d1"] {
            assert!(is_scheme_syntax(ok), "{ok}");
        }
        for bad in ["", "1app", "cursor:", "Cursor", "a b", "a_b"] {
            assert!(!is_scheme_syntax(bad), "{bad}");
        }
    }
}
