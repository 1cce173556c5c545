//! The authorization request's query (RFC 6749 §3.1 and §4.1.1, RFC 7636, RFC 8707): parsed
//! from generated query strings with repeated, percent-encoded and odd parameters, and refused
//! with the code of the first rule broken, in the documented order.

use proptest::prelude::*;

use super::{config, is_error_description, mutated, tricky_string};
use crate::oauth::authorize::{AuthorizeQuery, Prompt, ResourceRule, validate_authorization};
use crate::oauth::error::ErrorCode;
use crate::oauth::resource::ResourceUri;
use crate::oauth::scope::is_scope_token;

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const OTHER_RESOURCE: &str = "https://other.example.com/";

fn resources(several: bool) -> Vec<ResourceRule> {
    let mut rules = vec![ResourceRule {
        uri: ResourceUri::parse(RESOURCE).unwrap(),
        name: "MCP".into(),
        scopes: vec!["mcp:read".into(), "mcp:write".into()],
        default_scopes: vec!["mcp:read".into()],
    }];
    if several {
        rules.push(ResourceRule {
            uri: ResourceUri::parse(OTHER_RESOURCE).unwrap(),
            name: "Other".into(),
            scopes: vec!["x".into()],
            default_scopes: vec![],
        });
    }
    rules
}

/// The parameters the oracle models, in the order `validate_authorization` checks them.
const PARAMS: [&str; 7] = [
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "state",
    "scope",
    "resource",
    "prompt",
];

/// How one parameter appears in the query.
#[derive(Debug, Clone)]
enum Param {
    Absent,
    Once(String),
    Twice(String, String),
}

impl Param {
    /// The value `AuthorizeQuery::get` must give: the first, empty meaning absent.
    fn value(&self) -> Option<&str> {
        match self {
            Self::Absent => None,
            Self::Once(v) | Self::Twice(v, _) => Some(v.as_str()).filter(|v| !v.is_empty()),
        }
    }
}

fn param(value: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = Param> {
    prop_oneof![
        2 => Just(Param::Absent),
        8 => value.clone().prop_map(Param::Once),
        1 => (value.clone(), value).prop_map(|(a, b)| Param::Twice(a, b)),
    ]
}

fn one_of(values: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    proptest::sample::select(values).prop_map(str::to_owned)
}

/// How a name or value is written into the query.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    /// `application/x-www-form-urlencoded`, as browsers and clients write it.
    Form,
    /// Every byte as `%XX`.
    Percent,
    /// As is, when that cannot change the parameter boundaries.
    Raw,
}

fn encode(text: &str, encoding: Encoding) -> String {
    match encoding {
        Encoding::Form => url::form_urlencoded::byte_serialize(text.as_bytes()).collect(),
        Encoding::Percent => text.bytes().map(|b| format!("%{b:02X}")).collect(),
        Encoding::Raw
            if text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":/.-_~".contains(&b)) =>
        {
            text.to_owned()
        }
        Encoding::Raw => encode(text, Encoding::Form),
    }
}

#[derive(Debug, Clone)]
struct Request {
    params: Vec<(&'static str, Param)>,
    extra: Vec<(String, String)>,
    encodings: Vec<Encoding>,
    order: Vec<proptest::sample::Index>,
    several_resources: bool,
}

impl Request {
    /// The query string: every parameter encoded its own way, in a shuffled order, repeats
    /// and unknown parameters included.
    fn query(&self) -> String {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut second: Vec<(String, String)> = Vec::new();
        for (name, param) in &self.params {
            match param {
                Param::Absent => {}
                Param::Once(v) => pairs.push(((*name).to_owned(), v.clone())),
                Param::Twice(a, b) => {
                    pairs.push(((*name).to_owned(), a.clone()));
                    second.push(((*name).to_owned(), b.clone()));
                }
            }
        }
        // Repeats come after the first value, which is the one `get` keeps.
        for (i, index) in self.order.iter().enumerate() {
            if i < pairs.len() {
                let j = index.index(pairs.len());
                pairs.swap(i, j);
            }
        }
        pairs.extend(self.extra.iter().cloned());
        pairs.extend(second);
        pairs
            .iter()
            .enumerate()
            .map(|(i, (name, value))| {
                let encoding = self.encodings[i % self.encodings.len()];
                format!("{}={}", encode(name, encoding), encode(value, encoding))
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, p)| p.value())
    }

    fn is_repeated(&self) -> bool {
        let twice = self
            .params
            .iter()
            .any(|(_, p)| matches!(p, Param::Twice(..)));
        let mut extra_names: Vec<&str> = self.extra.iter().map(|(n, _)| n.as_str()).collect();
        let total = extra_names.len();
        extra_names.sort_unstable();
        extra_names.dedup();
        twice || extra_names.len() != total
    }
}

fn request() -> impl Strategy<Value = Request> {
    let challenge = prop_oneof![
        4 => Just(CHALLENGE.to_owned()),
        2 => mutated(Just(CHALLENGE.to_owned()), 2),
        1 => tricky_string(50),
    ];
    let resource = prop_oneof![
        3 => one_of(&[RESOURCE, "HTTPS://MCP.EXAMPLE.COM/mcp", "https://mcp.example.com:443/mcp?x=1", "https://other.example.com", OTHER_RESOURCE]),
        2 => mutated(Just(RESOURCE.to_owned()), 2),
    ];
    let scope = prop_oneof![
        3 => proptest::sample::subsequence(&["mcp:read", "mcp:write", "offline_access", "mcp:read", "x", "admin", ""][..], 0..=5)
            .prop_map(|tokens| tokens.join(" ")),
        1 => mutated(Just("mcp:read mcp:write".to_owned()), 2),
    ];
    let state = prop_oneof![
        4 => tricky_string(20),
        1 => (2040usize..2060).prop_map(|n| "s".repeat(n)),
    ];
    let params = (
        param(one_of(&[
            "code",
            "code",
            "token",
            "CODE",
            "code id_token",
            "",
            "code ",
        ])),
        param(challenge),
        param(one_of(&["S256", "S256", "plain", "s256", "S512", ""])),
        param(state),
        param(scope),
        param(resource),
        param(one_of(&[
            "consent",
            "none",
            "login consent",
            "consent none",
            "login",
            "",
            "none ",
        ])),
    )
        .prop_map(|(rt, cc, ccm, state, scope, resource, prompt)| {
            PARAMS
                .into_iter()
                .zip([rt, cc, ccm, state, scope, resource, prompt])
                .collect::<Vec<_>>()
        });
    let extra = proptest::collection::vec(
        (
            prop_oneof![
                one_of(&["client_id", "redirect_uri", "nonce"]),
                tricky_string(6)
            ]
            .prop_filter("not a parameter the oracle models", |n| {
                !PARAMS.contains(&n.as_str())
            }),
            tricky_string(10),
        ),
        0..3,
    );
    let encodings = proptest::collection::vec(
        prop_oneof![
            Just(Encoding::Form),
            Just(Encoding::Percent),
            Just(Encoding::Raw)
        ],
        1..4,
    );
    let order = proptest::collection::vec(any::<proptest::sample::Index>(), 0..8);
    (params, extra, encodings, order, any::<bool>()).prop_map(
        |(params, extra, encodings, order, several_resources)| Request {
            params,
            extra,
            encodings,
            order,
            several_resources,
        },
    )
}

/// The oracle: the code of the first rule the request breaks, in the order of
/// `validate_authorization`'s documentation; `None` when it breaks none.
fn expected_refusal(request: &Request, rules: &[ResourceRule]) -> Option<ErrorCode> {
    use ErrorCode::*;
    if request.is_repeated() {
        return Some(InvalidRequest);
    }
    match request.get("response_type") {
        None => return Some(InvalidRequest),
        Some("code") => {}
        Some(_) => return Some(UnsupportedResponseType),
    }
    let challenge_ok = request.get("code_challenge").is_some_and(|c| {
        c.len() == 43
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !challenge_ok || request.get("code_challenge_method") != Some("S256") {
        return Some(InvalidRequest);
    }
    if request
        .get("state")
        .is_some_and(|s| s.len() > 2048 || s.chars().any(char::is_control))
    {
        return Some(InvalidRequest);
    }
    let rule = match request.get("resource") {
        None if rules.len() == 1 => &rules[0],
        None => return Some(InvalidTarget),
        Some(requested) => {
            let canonical = ResourceUri::from_request(requested).ok();
            match rules
                .iter()
                .find(|r| canonical.as_ref().is_some_and(|c| c.names(r.uri.as_str())))
            {
                Some(rule) => rule,
                None => return Some(InvalidTarget),
            }
        }
    };
    // `trim` forgives surrounding whitespace, as the code does; inside, tokens are split on
    // single spaces (RFC 6749 §3.3).
    if let Some(scope) = request
        .get("scope")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let bad = scope
            .split(' ')
            // `offline_access` asks for a refresh token, which every grant gets: accepted, dropped.
            .filter(|t| !t.is_empty() && *t != "offline_access")
            .any(|t| !is_scope_token(t) || !rule.scopes.iter().any(|s| s == t));
        if bad {
            return Some(InvalidScope);
        }
    }
    if request
        .get("prompt")
        .is_some_and(|p| p.split(' ').any(|v| v == "none"))
    {
        return Some(LoginRequired);
    }
    None
}

proptest! {
    #![proptest_config(config(3_000))]

    /// Any query string parses, and every value reads back.
    #[test]
    fn any_query_string_parses(query in tricky_string(60)) {
        let parsed = AuthorizeQuery::parse(&query);
        for name in parsed.repeated() {
            prop_assert!(parsed.is_repeated(name));
        }
        let _ = parsed.get("state");
    }

    /// Generated requests: the first value of each parameter is read, percent-decoded, however
    /// it was encoded; repeats are seen; and the refusal is the RFC code of the first rule
    /// broken (or the request is accepted with exactly what it asked for).
    #[test]
    fn refusals_carry_the_code_of_the_first_rule_broken(request in request()) {
        let rules = resources(request.several_resources);
        let query = AuthorizeQuery::parse(&request.query());
        for (name, param) in &request.params {
            prop_assert_eq!(query.get(name), param.value(), "{}", name);
        }
        prop_assert_eq!(!query.repeated().is_empty(), request.is_repeated());

        let result = validate_authorization(&query, &rules);
        let expected = expected_refusal(&request, &rules);
        match (&result, expected) {
            (Err(error), Some(code)) => {
                prop_assert_eq!(error.code, code, "{}", error.description);
                prop_assert!(!error.description.is_empty());
            }
            (Ok(valid), None) => {
                prop_assert_eq!(Some(valid.code_challenge.as_str()), request.get("code_challenge"));
                prop_assert_eq!(valid.state.as_deref(), request.get("state"));
                let rule = rules.iter().find(|r| r.uri == valid.resource).expect("a configured resource");
                let granted: Vec<&str> = valid.scope.split(' ').filter(|s| !s.is_empty()).collect();
                prop_assert!(granted.iter().all(|s| rule.scopes.iter().any(|r| r == s)));
                let consent = request.get("prompt").is_some_and(|p| p.split(' ').any(|v| v == "consent"));
                prop_assert_eq!(valid.prompt == Prompt::Consent, consent);
            }
            (result, expected) => {
                return Err(TestCaseError::fail(format!(
                    "expected {expected:?}, got {result:?} for {:?}", request.query()
                )));
            }
        }
    }

    /// RFC 6749 §4.1.2.1: an `error_description` is printable ASCII without `"` and `\`,
    /// whatever the request quoted into it.
    #[test]
    fn error_descriptions_stay_in_the_rfc_character_set(request in request()) {
        let rules = resources(request.several_resources);
        if let Err(error) = validate_authorization(&AuthorizeQuery::parse(&request.query()), &rules) {
            prop_assert!(is_error_description(&error.description), "{:?}", error.description);
        }
    }
}
