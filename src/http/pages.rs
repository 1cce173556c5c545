//! The server-rendered HTML pages: consent, errors that cannot be redirected, and the dev
//! upstream's login form, with the security headers every page carries.
//!
//! Client metadata is attacker-controlled, so every value goes through a minijinja template
//! with HTML auto-escaping on for every template; this module must never build HTML with
//! `format!`. The pages use no JavaScript and load nothing: the Content-Security-Policy allows
//! only the inline style sheet of `templates/base.html`.

use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value, context};
use poem::Response;
use poem::http::StatusCode;

use crate::oauth::redirect_uri::RedirectKind;

/// Where a client came from, shown on the consent page so the user can weigh its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOrigin {
    /// Registered itself through dynamic client registration: nobody checked its name.
    Dynamic,
    /// Created by the operator (admin API or CLI).
    Admin,
    /// A Client ID Metadata Document fetched from `host`.
    MetadataDocument { host: String },
}

/// What the consent page shows and where its form posts.
pub struct ConsentPage<'a> {
    /// The client's self-chosen name; may be hostile.
    pub client_name: &'a str,
    pub client_origin: ClientOrigin,
    /// The redirect URI's host, or `scheme://` for a custom scheme.
    pub redirect_host: &'a str,
    pub redirect_kind: RedirectKind,
    pub resource_name: &'a str,
    pub resource_uri: &'a str,
    pub scopes: &'a [String],
    /// "OwnerRez", or "the sign-in service".
    pub upstream_name: &'a str,
    pub form_action: &'a str,
    /// Posted back as `request`.
    pub request_handle: &'a str,
    /// Posted back as `csrf`.
    pub csrf_token: &'a str,
    /// `Some(n)` offers a `remember` checkbox that skips consent for `n` days.
    pub remember_days: Option<u64>,
    /// The connected-apps page, when it is on: the page says the app can be disconnected there.
    pub account_url: Option<&'a str>,
}

/// An error shown to the user instead of a redirect (for example an unverified redirect URI).
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// The simulated upstream's login form (the `dev` provider): any user name signs in.
pub struct DevLoginPage<'a> {
    pub form_action: &'a str,
    /// Hidden inputs posted back with the user name, as (name, value).
    pub hidden: &'a [(&'a str, &'a str)],
}

/// The Content-Security-Policy of every page. No `form-action`: Chrome applies it to the
/// redirect that follows a form submission, which would block the redirect to the upstream.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// The referrer policy of every page (also in `base.html`'s `<meta name="referrer">`).
const REFERRER_POLICY: &str = "same-origin";

/// The templates, parsed once. They are compiled into the binary, so a template that does
/// not parse or render is a programming error the unit tests catch, not a runtime condition.
fn templates() -> &'static Environment<'static> {
    static TEMPLATES: OnceLock<Environment<'static>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in [
            ("base.html", include_str!("../../templates/base.html")),
            ("consent.html", include_str!("../../templates/consent.html")),
            ("error.html", include_str!("../../templates/error.html")),
            (
                "dev_login.html",
                include_str!("../../templates/dev_login.html"),
            ),
            ("account.html", include_str!("../../templates/account.html")),
            (
                "account_sign_in.html",
                include_str!("../../templates/account_sign_in.html"),
            ),
        ]
        .into_iter()
        .chain(CONSOLE_TEMPLATES)
        {
            env.add_template(name, source)
                .unwrap_or_else(|error| panic!("template {name} does not parse: {error}"));
        }
        env
    })
}

/// The operator console's pages (`http::console`).
const CONSOLE_TEMPLATES: [(&str, &str); 13] = [
    (
        "console/macros.html",
        include_str!("../../templates/console/macros.html"),
    ),
    (
        "console/layout.html",
        include_str!("../../templates/console/layout.html"),
    ),
    (
        "console/sign_in.html",
        include_str!("../../templates/console/sign_in.html"),
    ),
    (
        "console/confirm.html",
        include_str!("../../templates/console/confirm.html"),
    ),
    (
        "console/overview.html",
        include_str!("../../templates/console/overview.html"),
    ),
    (
        "console/clients.html",
        include_str!("../../templates/console/clients.html"),
    ),
    (
        "console/client.html",
        include_str!("../../templates/console/client.html"),
    ),
    (
        "console/new_client.html",
        include_str!("../../templates/console/new_client.html"),
    ),
    (
        "console/secret.html",
        include_str!("../../templates/console/secret.html"),
    ),
    (
        "console/users.html",
        include_str!("../../templates/console/users.html"),
    ),
    (
        "console/user.html",
        include_str!("../../templates/console/user.html"),
    ),
    (
        "console/keys.html",
        include_str!("../../templates/console/keys.html"),
    ),
    (
        "console/audit.html",
        include_str!("../../templates/console/audit.html"),
    ),
];

/// Renders one of the compiled-in templates (escaping every value).
pub(super) fn render(name: &str, context: Value) -> String {
    templates()
        .get_template(name)
        .and_then(|template| template.render(context))
        .unwrap_or_else(|error| panic!("template {name} does not render: {error}"))
}

/// The consent page: which app, which redirect host, which resource, approve or deny.
pub fn render_consent(page: &ConsentPage) -> String {
    let (origin, origin_host) = match &page.client_origin {
        ClientOrigin::Dynamic => ("dynamic", ""),
        ClientOrigin::Admin => ("admin", ""),
        ClientOrigin::MetadataDocument { host } => ("metadata_document", host.as_str()),
    };
    let redirect_kind = match page.redirect_kind {
        RedirectKind::Web => "web",
        RedirectKind::Loopback => "loopback",
        RedirectKind::CustomScheme => "custom_scheme",
    };
    render(
        "consent.html",
        context! {
            client_name => without_invisible_controls(page.client_name),
            origin,
            origin_host,
            redirect_host => page.redirect_host,
            redirect_kind,
            resource_name => page.resource_name,
            resource_uri => page.resource_uri,
            scopes => Value::from_iter(page.scopes.iter().map(String::as_str)),
            upstream_name => page.upstream_name,
            form_action => page.form_action,
            request_handle => page.request_handle,
            csrf_token => page.csrf_token,
            remember_days => page.remember_days,
            account_url => page.account_url,
        },
    )
}

/// Replaces bidi overrides and invisible format characters with U+FFFD, so that a client
/// name such as `Cla\u{202E}edu` cannot display as another app's name ("Claude").
pub(super) fn without_invisible_controls(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{061C}'
            | '\u{FEFF}' => '\u{FFFD}',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// A page for an error that must not be redirected to the client.
pub fn render_error(page: &ErrorPage) -> String {
    render(
        "error.html",
        context! { title => page.title, message => page.message },
    )
}

/// The dev upstream's login form.
pub fn render_dev_login(page: &DevLoginPage) -> String {
    let hidden = page
        .hidden
        .iter()
        .map(|&(name, value)| Value::from_iter([name, value]));
    render(
        "dev_login.html",
        context! { form_action => page.form_action, hidden => Value::from_iter(hidden) },
    )
}

/// An HTML response with the security headers of every page: not cached, not framed, no
/// scripts or external loads, no referrer to any other site, no content sniffing.
///
/// The referrer policy is `same-origin`, not `no-referrer`: under `no-referrer` browsers send
/// `Origin: null` with the pages' own form posts (the Fetch standard), and the same-origin
/// check of the sign-in and session forms must refuse a `null` origin.
pub fn html_response(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("x-frame-options", "DENY")
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("referrer-policy", REFERRER_POLICY)
        .header("x-content-type-options", "nosniff")
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = r#""><img src=x onerror=alert(1)><script>alert(1)</script>"#;

    /// Asserts that `html` contains `text`, showing the page when it does not.
    #[track_caller]
    fn has(html: &str, text: &str) {
        assert!(html.contains(text), "`{text}` is missing from:\n{html}");
    }

    fn consent(kind: RedirectKind, origin: ClientOrigin, remember: Option<u64>) -> String {
        let scopes = ["mcp".to_owned(), "<script>alert(2)</script>".to_owned()];
        render_consent(&ConsentPage {
            client_name: HOSTILE,
            client_origin: origin,
            redirect_host: "claude.ai",
            redirect_kind: kind,
            resource_name: "OwnerRez MCP",
            resource_uri: "https://mcp.example.com/mcp",
            scopes: &scopes,
            upstream_name: "OwnerRez",
            form_action: "/authorize/consent",
            request_handle: "req\"<1>",
            csrf_token: "csrf'&2",
            remember_days: remember,
            account_url: None,
        })
    }

    #[test]
    fn hostile_client_names_and_scopes_render_as_text() {
        let html = consent(RedirectKind::Web, ClientOrigin::Dynamic, None);
        assert!(
            !html.contains("<script>") && !html.contains("<img"),
            "{html}"
        );
        has(&html, r#"id="client-name">&quot;&gt;&lt;img src=x"#);
        has(&html, "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;");
        has(&html, "&lt;script&gt;alert(2)");
    }

    #[test]
    fn bidi_overrides_in_a_client_name_are_shown_not_applied() {
        let name = without_invisible_controls("Cla\u{202E}edu\u{200B}\n");
        assert_eq!(name, "Cla\u{FFFD}edu\u{FFFD}\u{FFFD}");
        assert_eq!(without_invisible_controls("Zürich 東京"), "Zürich 東京");
    }

    #[test]
    fn the_form_posts_approve_or_deny_with_the_escaped_request_and_csrf_token() {
        let html = consent(RedirectKind::Web, ClientOrigin::Dynamic, None);
        has(
            &html,
            r#"method="post" action="&#x2f;authorize&#x2f;consent""#,
        );
        has(&html, r#"name="request" value="req&quot;&lt;1&gt;""#);
        has(&html, r#"name="csrf" value="csrf&#x27;&amp;2""#);
        has(&html, r#"name="decision" value="approve" id="approve""#);
        has(&html, r#"name="decision" value="deny" id="deny""#);
    }

    #[test]
    fn native_app_redirects_warn_and_web_redirects_do_not() {
        let cases = [
            (RedirectKind::Web, None),
            (RedirectKind::Loopback, Some("an app on this computer")),
            (
                RedirectKind::CustomScheme,
                Some("an app installed on this device"),
            ),
        ];
        for (kind, warning) in cases {
            let html = consent(kind, ClientOrigin::Dynamic, None);
            assert_eq!(
                html.contains(r#"class="notice""#),
                warning.is_some(),
                "{kind:?}"
            );
            if let Some(warning) = warning {
                has(&html, warning);
            }
        }
    }

    #[test]
    fn the_origin_of_the_client_is_stated() {
        let cimd = ClientOrigin::MetadataDocument {
            host: "app.example<b>".to_owned(),
        };
        let cases = [
            (ClientOrigin::Dynamic, "registered itself automatically"),
            (ClientOrigin::Admin, "configured by the operator"),
            (
                cimd,
                "verified by its web address <code>app.example&lt;b&gt;</code>",
            ),
        ];
        for (origin, text) in cases {
            has(&consent(RedirectKind::Web, origin, None), text);
        }
    }

    #[test]
    fn the_remember_checkbox_appears_only_when_offered() {
        let without = consent(RedirectKind::Web, ClientOrigin::Admin, None);
        assert!(!without.contains(r#"name="remember""#));
        let with = consent(RedirectKind::Web, ClientOrigin::Admin, Some(30));
        has(&with, r#"type="checkbox" name="remember" value="1""#);
        has(&with, "for this app on this browser for 30 days");
        has(
            &consent(RedirectKind::Web, ClientOrigin::Admin, Some(1)),
            "for 1 day<",
        );
    }

    #[test]
    fn the_connected_apps_page_is_linked_only_when_on() {
        let off = consent(RedirectKind::Web, ClientOrigin::Admin, None);
        assert!(!off.contains("disconnect"));
        let scopes = ["mcp".to_owned()];
        let on = render_consent(&ConsentPage {
            client_name: "App",
            client_origin: ClientOrigin::Admin,
            redirect_host: "claude.ai",
            redirect_kind: RedirectKind::Web,
            resource_name: "OwnerRez MCP",
            resource_uri: "https://mcp.example.com/mcp",
            scopes: &scopes,
            upstream_name: "OwnerRez",
            form_action: "/authorize/consent",
            request_handle: "r",
            csrf_token: "c",
            remember_days: None,
            account_url: Some("https://auth.example.com/account"),
        });
        has(
            &on,
            r#"You can disconnect apps at any time at <a href="https:&#x2f;&#x2f;auth.example.com&#x2f;account">"#,
        );
    }

    #[test]
    fn the_error_page_escapes_its_message() {
        let html = render_error(&ErrorPage {
            title: "Unknown app",
            message: "<script>alert(1)</script>",
        });
        has(&html, "<h1>Unknown app</h1>");
        has(&html, "&lt;script&gt;alert(1)");
        assert!(!html.contains("<script>"));
        // The page's own referrer policy overrides the header's: the two must agree.
        has(
            &html,
            &format!(r#"<meta name="referrer" content="{REFERRER_POLICY}">"#),
        );
    }

    #[test]
    fn the_dev_login_form_carries_its_hidden_inputs_escaped() {
        let html = render_dev_login(&DevLoginPage {
            form_action: "/upstream/dev/login",
            hidden: &[("state", "s\"><script>")],
        });
        has(&html, "Not for production");
        has(&html, r#"<input type="text" id="username" name="username""#);
        has(&html, r#"<button id="login" type="submit""#);
        has(&html, r#"name="state" value="s&quot;&gt;&lt;script&gt;""#);
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn html_responses_carry_the_security_headers() {
        let response = html_response(StatusCode::BAD_REQUEST, "<p>x</p>".to_owned());
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let expected = [
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-store"),
            ("x-frame-options", "DENY"),
            ("content-security-policy", CONTENT_SECURITY_POLICY),
            ("referrer-policy", "same-origin"),
            ("x-content-type-options", "nosniff"),
        ];
        for (name, value) in expected {
            assert_eq!(response.headers().get(name).unwrap(), value, "{name}");
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("form-action"));
    }
}
