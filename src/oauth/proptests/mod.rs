//! Property tests of the protocol parsers an outsider reaches: thousands of generated inputs
//! per property, most of them near-valid (a real value with a few mutations, or one assembled
//! from tricky parts), each asserting that nothing panics and that every refusal carries the
//! RFC's error code.
//!
//! The case counts are sized so that the whole property suite stays fast in CI; set
//! `PROPTEST_CASES` to run every property with more cases (README, "Property tests"). A failure
//! prints the smallest input that fails: turn it into a named case of the parser's unit tests.
//! This module also holds the generators the other parsers' properties share.

mod authorize;
mod client_auth;
mod client_metadata;
mod pkce;
mod redirect_uri;
mod resource_and_issuer;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// The environment variable that overrides every property's case count.
pub const CASES_ENV: &str = "PROPTEST_CASES";

/// A configuration of `default_cases` cases, or of `PROPTEST_CASES` when it is set. Failures
/// are not persisted to files: the report prints the minimal input to pin as a unit test.
/// Custom redirect schemes allowed as the default configuration allows them.
pub fn custom_schemes() -> Vec<String> {
    ["cursor", "vscode", "vscode-insiders", "claude", "windsurf"]
        .map(String::from)
        .to_vec()
}

pub fn config(default_cases: u32) -> Config {
    let cases = std::env::var(CASES_ENV)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default_cases);
    let defaults = Config::default();
    Config {
        cases,
        failure_persistence: None,
        // Filtered strategies reject a share of their draws: keep the allowance proportional
        // when more cases are asked for than the default.
        max_local_rejects: defaults.max_local_rejects.max(cases.saturating_mul(16)),
        ..defaults
    }
}

/// Characters that change how a URI, a form or a token is read.
const SPECIAL_CHARS: &[char] = &[
    ':',
    '/',
    '?',
    '#',
    '@',
    '[',
    ']',
    '%',
    '.',
    '\\',
    ' ',
    '\t',
    '\n',
    '\r',
    '\0',
    '+',
    '&',
    '=',
    ';',
    ',',
    '"',
    '\'',
    '<',
    '>',
    '`',
    '~',
    '*',
    '-',
    '_',
    'A',
    'z',
    '0',
    '9',
    'é',
    'ı',
    'K',
    '\u{7f}',
    '\u{85}',
    '\u{a0}',
    '\u{200b}',
    '\u{202e}',
    '\u{2028}',
    '\u{feff}',
    '\u{ff0f}',
    '\u{1f600}',
];

/// Fragments that turn one URI into another of a different kind.
const SPECIAL_FRAGMENTS: &[&str] = &[
    "@evil.example",
    ".evil.example",
    ":99999",
    ":65536",
    ":0",
    ":8080",
    ":443",
    ":",
    "%2e%2e",
    "/..",
    "/./",
    "//",
    "\\\\",
    "#x",
    "?x=1",
    "&",
    "%00",
    "%0a",
    "%zz",
    "%",
    "%25",
    "[::1]",
    "localhost",
    "127.0.0.1",
    "HTTP://",
    "https://",
    "javascript:",
    "user:pw@",
];

/// Any character, weighted towards the ones that matter to parsers.
pub fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::sample::select(SPECIAL_CHARS),
        2 => proptest::char::range(' ', '~'),
        1 => any::<char>(),
    ]
}

/// A short string of [`tricky_char`]s.
pub fn tricky_string(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(tricky_char(), 0..=max_chars).prop_map(String::from_iter)
}

/// One edit of a string.
#[derive(Debug, Clone)]
enum Edit {
    Insert(Index, char),
    Delete(Index),
    Replace(Index, char),
    Splice(Index, &'static str),
    FlipCase(Index),
    Truncate(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), tricky_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<Index>().prop_map(Edit::Delete),
        (any::<Index>(), tricky_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<Index>(), proptest::sample::select(SPECIAL_FRAGMENTS))
            .prop_map(|(i, s)| Edit::Splice(i, s)),
        any::<Index>().prop_map(Edit::FlipCase),
        any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
    match edit {
        Edit::Insert(i, c) => chars.insert(at(i, chars.len() + 1), *c),
        Edit::Delete(i) if !chars.is_empty() => {
            chars.remove(at(i, chars.len()));
        }
        Edit::Replace(i, c) if !chars.is_empty() => {
            let i = at(i, chars.len());
            chars[i] = *c;
        }
        Edit::Splice(i, s) => {
            let i = at(i, chars.len() + 1);
            chars.splice(i..i, s.chars());
        }
        Edit::FlipCase(i) if !chars.is_empty() => {
            let i = at(i, chars.len());
            let c = chars[i];
            chars[i] = if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
        }
        Edit::Truncate(i) => chars.truncate(at(i, chars.len() + 1)),
        _ => {}
    }
    chars.into_iter().collect()
}

/// `base` with up to `max_edits` random edits: the near-valid inputs that find parser bugs.
pub fn mutated(
    base: impl Strategy<Value = String>,
    max_edits: usize,
) -> impl Strategy<Value = String> {
    (base, proptest::collection::vec(edit(), 0..=max_edits))
        .prop_map(|(text, edits)| edits.iter().fold(text, |text, e| apply(&text, e)))
}

/// A URI assembled from parts that each exercise a rule: schemes, separators, hosts (loopback
/// spellings, look-alikes, userinfo tricks), ports (in and out of range), paths, queries and
/// fragments.
pub fn assembled_uri() -> impl Strategy<Value = String> {
    let scheme = proptest::sample::select(
        &[
            "http",
            "https",
            "HTTP",
            "Https",
            "cursor",
            "com.example.app",
            "javascript",
            "data",
            "file",
            "ws",
            "ftp",
            "",
            "h\u{0131}tps",
        ][..],
    );
    let separator = proptest::sample::select(&["://", "://", "://", ":", ":/", ":///", "//"][..]);
    let host = proptest::sample::select(
        &[
            "localhost",
            "127.0.0.1",
            "[::1]",
            "LOCALHOST",
            "localhost.",
            "127.1",
            "127.0.0.2",
            "0x7f.0.0.1",
            "[::ffff:127.0.0.1]",
            "[0:0::1]",
            "localhost.evil.example",
            "evil.example",
            "claude.ai",
            "Claude.ai",
            "chatgpt.com",
            "user@localhost",
            "localhost:1@evil.example",
            "xn--80ak6aa92e.com",
            "",
            "[::1",
            "a..example",
        ][..],
    );
    let port = prop_oneof![
        3 => Just(String::new()),
        1 => proptest::sample::select(&[":", ":0", ":80", ":443", ":65535", ":65536", ":99999", ":123456", ":abc", ":-1", ":+1", ": 1", ":0x50"][..]).prop_map(str::to_owned),
        2 => (0u32..200_000).prop_map(|p| format!(":{p}")),
    ];
    let path = proptest::sample::select(
        &[
            "",
            "/",
            "/cb",
            "/callback",
            "/oauth/callback",
            "/CB",
            "/cb/",
            "/a/../cb",
            "/%2e%2e/cb",
            "/./cb",
            "//cb",
            "/cb;x",
            "/c%62",
            "/mcp",
            "/api/mcp/auth_callback",
        ][..],
    );
    let query = proptest::sample::select(&["", "", "?", "?a=1", "?a=2", "?x"][..]);
    let fragment = proptest::sample::select(&["", "", "", "#", "#x"][..]);
    (scheme, separator, host, port, path, query, fragment).prop_map(
        |(scheme, separator, host, port, path, query, fragment)| {
            format!("{scheme}{separator}{host}{port}{path}{query}{fragment}")
        },
    )
}

/// Redirect URIs real hosts register (docs/mcp-hosts.md), and a few more.
pub const REAL_REDIRECT_URIS: &[&str] = &[
    "https://chatgpt.com/connector/oauth/abc123",
    "https://chatgpt.com/connector_platform_oauth_redirect",
    "https://claude.ai/api/mcp/auth_callback",
    "http://localhost/callback",
    "http://127.0.0.1/callback",
    "cursor://anysphere.cursor-mcp/oauth/callback",
    "http://localhost:8787/callback",
    "http://127.0.0.1:33418/",
    "http://127.0.0.1/",
    "https://vscode.dev/redirect",
    "http://localhost:6274/oauth/callback",
    "http://[::1]:8080/cb",
    "http://localhost/cb?a=1",
    "com.example.app:/oauth2redirect",
];

/// A real redirect URI.
pub fn real_redirect_uri() -> impl Strategy<Value = String> {
    proptest::sample::select(REAL_REDIRECT_URIS).prop_map(str::to_owned)
}

/// Near-valid URIs: real ones mutated, and assembled ones mutated a little.
pub fn near_valid_uri() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => mutated(real_redirect_uri(), 3),
        2 => mutated(assembled_uri(), 1),
        1 => tricky_string(40),
    ]
}

/// RFC 6749 §5.2: `error_description` is limited to %x20-21 / %x23-5B / %x5D-7E.
pub fn is_error_description(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}
