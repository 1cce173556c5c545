//! The user's path: `/authorize` → consent → upstream login → callback → the client's
//! redirect URI with `code`, `state` and `iss`, with each provider and each bad input.

use authbridge::config::{ProviderKind, Secret};
use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, dev_login, hidden_field, location, query_of, see_other};
use crate::hardening::STRONG_WEBHOOK_PASSWORD;
use crate::helpers::{TestApp, TestDb, spawn_app, spawn_app_on, spawn_app_with};
use crate::ownerrez_double::{
    CLIENT_ID, CLIENT_SECRET, Failure, OwnerRezDouble, Route, TokenVariant,
};

const CLIENT_REDIRECT: &str = "https://claude.ai/api/mcp/auth_callback";

/// The first user's id and their grants, through the admin API.
pub async fn first_user_grants(app: &TestApp) -> (String, Value) {
    let users = app.admin_get("/admin/v1/users").await;
    let user_id = users["users"][0]["user_id"].as_str().unwrap().to_owned();
    let grants = app.admin_user_grants(&user_id).await;
    for grant in grants["grants"].as_array().unwrap() {
        for hidden in ["upstream_tokens", "refresh_lease_until", "user_id"] {
            assert!(grant.get(hidden).is_none(), "the admin API shows {hidden}");
        }
    }
    (user_id, grants)
}

fn assert_success(app: &TestApp, redirect: &str) -> String {
    assert!(redirect.starts_with(CLIENT_REDIRECT), "{redirect}");
    let params = query_of(redirect);
    assert_eq!(params.get("state").map(String::as_str), Some("st-1"));
    assert_eq!(
        params.get("iss"),
        Some(&app.issuer),
        "RFC 9207 iss, byte-identical"
    );
    assert!(!params.contains_key("error"), "{redirect}");
    params["code"].clone()
}

fn assert_error(app: &TestApp, redirect: &str, error: &str) {
    let params = query_of(redirect);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some(error),
        "{redirect}"
    );
    assert!(
        params
            .get("error_description")
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(params.get("state").map(String::as_str), Some("st-1"));
    assert_eq!(params.get("iss"), Some(&app.issuer));
}

#[tokio::test]
async fn whole_login_with_the_dev_provider() {
    let app = spawn_app().await;
    let client_id = app.register_public(CLIENT_REDIRECT, "Claude").await;
    let mut browser = Browser::new();
    let redirect = app
        .log_in_with_dev(&mut browser, &client_id, CLIENT_REDIRECT, "alice")
        .await;
    let code = assert_success(&app, &redirect);
    assert!(code.starts_with("code_"));

    // The user and the grant are visible to operators.
    let users: Value = app.admin_get("/admin/v1/users").await;
    let users = users["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["provider"], "dev");
    assert_eq!(users[0]["upstream_subject"], "alice");
    let grants: Value = app
        .admin_get(&format!(
            "/admin/v1/users/{}/grants",
            users[0]["user_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(grants["grants"][0]["client_id"], client_id.as_str());
    assert_eq!(
        grants["grants"][0]["scope"], "mcp",
        "no scope asked: the resource's default"
    );
    assert_eq!(grants["grants"][0]["resource"], "http://localhost:3000/mcp");

    // A second login of the same user reuses the user and the grant.
    let again = app
        .log_in_with_dev(&mut Browser::new(), &client_id, CLIENT_REDIRECT, "alice")
        .await;
    assert_success(&app, &again);
    let users: Value = app.admin_get("/admin/v1/users").await;
    assert_eq!(users["users"].as_array().unwrap().len(), 1);
}

/// A server using the OwnerRez provider pointed at the double.
async fn spawn_with_ownerrez(double: &OwnerRezDouble) -> TestApp {
    let config = double.config();
    spawn_app_with(TestDb::new().await, move |c| {
        c.upstream.provider = ProviderKind::Ownerrez;
        c.upstream.ownerrez = config;
        c.upstream.ownerrez.client_secret = Some(Secret::new(CLIENT_SECRET));
        c.upstream.ownerrez.user_agent = "authbridge-tests/1.0".into();
        c.upstream.timeout_ms = 1000;
    })
    .await
}

/// Runs the login through the OwnerRez double; returns the redirect to the client.
async fn login_with_ownerrez(
    app: &TestApp,
    double: &OwnerRezDouble,
    browser: &mut Browser,
    client_id: &str,
) -> String {
    let upstream = app
        .authorize_through_consent(
            browser,
            &app.authorize_url(client_id, CLIENT_REDIRECT, &[("scope", "mcp")]),
        )
        .await;
    assert!(upstream.starts_with(&double.authorize_url()), "{upstream}");
    let callback = double.log_in(&upstream).await;
    let response = browser
        .get(&callback.location.replace(&app.issuer, &app.address))
        .await;
    location(&response)
}

#[tokio::test]
async fn whole_login_with_ownerrez_sends_exactly_what_ownerrez_expects() {
    let double = OwnerRezDouble::start().await;
    let app = spawn_with_ownerrez(&double).await;
    let client_id = app.register_public(CLIENT_REDIRECT, "ChatGPT").await;
    let redirect = login_with_ownerrez(&app, &double, &mut Browser::new(), &client_id).await;
    assert_success(&app, &redirect);

    let authorize = &double.requests_to("/oauth/authorize")[0];
    for forbidden in ["scope", "resource", "code_challenge"] {
        assert!(
            authorize.query_param(forbidden).is_none(),
            "{forbidden} must not be sent to OwnerRez"
        );
    }
    assert_eq!(authorize.query_param("client_id"), Some(CLIENT_ID));
    assert_eq!(
        authorize.query_param("redirect_uri"),
        Some(format!("{}/upstream/callback", app.issuer).as_str())
    );
    let exchange = &double.requests_to("/oauth/access_token")[0];
    assert_eq!(
        exchange.basic_credentials(),
        Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned()))
    );
    assert_eq!(exchange.header("user-agent"), Some("authbridge-tests/1.0"));
    assert_eq!(exchange.header("accept"), Some("application/json"));
    assert_eq!(exchange.grant_type(), Some("authorization_code"));
    assert!(exchange.field("code").is_some_and(|c| c.starts_with("tc_")));
    assert_eq!(
        exchange.field("redirect_uri"),
        Some(format!("{}/upstream/callback", app.issuer).as_str())
    );
    for forbidden in ["scope", "resource"] {
        assert!(
            exchange.field(forbidden).is_none(),
            "{forbidden} must not be sent to OwnerRez"
        );
    }

    let users: Value = app.admin_get("/admin/v1/users").await;
    assert_eq!(users["users"][0]["provider"], "ownerrez");
    assert_eq!(
        users["users"][0]["upstream_subject"],
        crate::ownerrez_double::USER_ID.to_string()
    );
}

#[tokio::test]
async fn whole_login_with_the_generic_oauth2_provider() {
    let double = OwnerRezDouble::start().await;
    let (authorize, token) = (double.authorize_url(), double.token_url());
    let app = spawn_app_with(TestDb::new().await, move |c| {
        c.upstream.provider = ProviderKind::Oauth2;
        c.upstream.oauth2.client_id = Some(CLIENT_ID.into());
        c.upstream.oauth2.client_secret = Some(Secret::new(CLIENT_SECRET));
        c.upstream.oauth2.authorize_url = Some(authorize);
        c.upstream.oauth2.token_url = Some(token);
        c.upstream.oauth2.use_pkce = false;
        c.upstream.oauth2.subject_path = "user_id".into();
        c.upstream.oauth2.display_name_path = Some("user_display_name".into());
        c.upstream.oauth2.user_agent = "authbridge-tests".into();
    })
    .await;
    let client_id = app.register_public(CLIENT_REDIRECT, "Generic").await;
    let redirect = login_with_ownerrez(&app, &double, &mut Browser::new(), &client_id).await;
    assert_success(&app, &redirect);
    let users: Value = app.admin_get("/admin/v1/users").await;
    assert_eq!(users["users"][0]["provider"], "oauth2");
}

#[tokio::test]
async fn upstream_failures_reach_the_client_as_the_right_error() {
    let double = OwnerRezDouble::start().await;
    let app = spawn_with_ownerrez(&double).await;
    let client_id = app.register_public(CLIENT_REDIRECT, "ChatGPT").await;

    double.deny_login(true);
    let redirect = login_with_ownerrez(&app, &double, &mut Browser::new(), &client_id).await;
    assert_error(&app, &redirect, "access_denied");
    double.deny_login(false);

    double.set_failure(Route::Token, Some(Failure::ServerError));
    let redirect = login_with_ownerrez(&app, &double, &mut Browser::new(), &client_id).await;
    assert_error(&app, &redirect, "temporarily_unavailable");

    double.set_failure(
        Route::Token,
        Some(Failure::Hang(std::time::Duration::from_secs(3))),
    );
    let redirect = login_with_ownerrez(&app, &double, &mut Browser::new(), &client_id).await;
    assert_error(&app, &redirect, "temporarily_unavailable");
    double.set_failure(Route::Token, None);

    double.set_token_variant(TokenVariant::MissingUserId);
    let redirect = login_with_ownerrez(&app, &double, &mut Browser::new(), &client_id).await;
    assert_error(&app, &redirect, "server_error");

    // None of the failures wrote a user or a grant.
    let users: Value = app.admin_get("/admin/v1/users").await;
    assert_eq!(
        users["users"].as_array().unwrap().len(),
        0,
        "nothing half-written"
    );
}

#[tokio::test]
async fn errors_before_the_redirect_uri_is_verified_are_pages_not_redirects() {
    let app = spawn_app().await;
    let client_id = app
        .register_public("http://localhost:6274/oauth/callback", "Inspector")
        .await;
    let mut browser = Browser::new();
    let cases = [
        (
            "unknown client",
            app.authorize_url(
                "client_unknown",
                "http://localhost:6274/oauth/callback",
                &[],
            ),
        ),
        (
            "unregistered redirect URI",
            app.authorize_url(&client_id, "https://evil.example/cb", &[]),
        ),
        (
            "redirect path differs",
            app.authorize_url(&client_id, "http://localhost:6274/oauth/other", &[]),
        ),
        (
            "localhost is not 127.0.0.1",
            app.authorize_url(&client_id, "http://127.0.0.1:6274/oauth/callback", &[]),
        ),
    ];
    for (name, url) in cases {
        let response = browser.get(&url).await;
        assert_eq!(response.status(), 400, "{name}");
        assert!(
            response.headers().get("location").is_none(),
            "{name}: no redirect"
        );
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{name}"
        );
    }
    let missing = browser.get(&app.url("/authorize?response_type=code")).await;
    assert_eq!(missing.status(), 400);
    let no_redirect = browser
        .get(&app.url(&format!(
            "/authorize?response_type=code&client_id={client_id}"
        )))
        .await;
    assert_eq!(no_redirect.status(), 400, "redirect_uri is required");
    assert!(no_redirect.headers().get("location").is_none());
    // Loopback with another port is the same redirect URI (RFC 8252 §7.3).
    let other_port = browser
        .get(&app.authorize_url(&client_id, "http://localhost:50123/oauth/callback", &[]))
        .await;
    assert_eq!(other_port.status(), 200, "the consent page");
}

#[tokio::test]
async fn errors_after_verification_are_redirected_with_state_and_iss() {
    let app = spawn_app().await;
    let client_id = app.register_public(CLIENT_REDIRECT, "Claude").await;
    let mut browser = Browser::new();
    // Errors are redirected once a user has approved the client (see tests/api/redirects.rs
    // for a client nobody has approved yet).
    let approved = app
        .log_in_with_dev(&mut browser, &client_id, CLIENT_REDIRECT, "alice")
        .await;
    assert_success(&app, &approved);
    let base = format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&state=st-1",
        app.address,
        urlencode(CLIENT_REDIRECT)
    );
    let challenge = format!(
        "&code_challenge={}&code_challenge_method=S256",
        crate::browser::CHALLENGE
    );
    let cases = [
        ("missing PKCE", base.clone(), "invalid_request"),
        (
            "plain PKCE",
            format!(
                "{base}&code_challenge={}&code_challenge_method=plain",
                crate::browser::CHALLENGE
            ),
            "invalid_request",
        ),
        (
            "unknown resource",
            format!("{base}{challenge}&resource=https%3A%2F%2Fother.example%2Fmcp"),
            "invalid_target",
        ),
        (
            "unknown scope",
            format!("{base}{challenge}&scope=admin"),
            "invalid_scope",
        ),
        (
            "prompt=none",
            format!("{base}{challenge}&prompt=none"),
            "login_required",
        ),
        (
            "implicit flow",
            base.replace("response_type=code", "response_type=token") + &challenge,
            "unsupported_response_type",
        ),
    ];
    for (name, url, error) in cases {
        let response = browser.get(&url).await;
        let redirect = location(&response);
        assert!(redirect.starts_with(CLIENT_REDIRECT), "{name}");
        assert_error(&app, &redirect, error);
    }
    // A resource with a trailing slash and no scope: accepted, defaults applied.
    let page = browser
        .get(&format!(
            "{base}{challenge}&resource=http%3A%2F%2Flocalhost%3A3000%2Fmcp"
        ))
        .await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("mcp"));
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn consent_denied_and_forged_consent_posts() {
    let app = spawn_app().await;
    let client_id = app.register_public(CLIENT_REDIRECT, "Claude").await;
    let mut browser = Browser::new();
    let page = browser
        .get(&app.authorize_url(&client_id, CLIENT_REDIRECT, &[]))
        .await;
    let html = page.text().await.unwrap();
    let request = hidden_field(&html, "request");
    let csrf = hidden_field(&html, "csrf");
    let consent_url = app.url("/authorize/consent");

    // No CSRF token, a wrong one, or another browser: a page, nothing happens.
    let no_csrf = browser
        .post_form(
            &consent_url,
            &[("request", &request), ("decision", "approve")],
        )
        .await;
    assert_eq!(no_csrf.status(), 400);
    let wrong = browser
        .post_form(
            &consent_url,
            &[
                ("request", &request),
                ("csrf", "forged"),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), 400);
    let mut other = Browser::new();
    let other_browser = other
        .post_form(
            &consent_url,
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(other_browser.status(), 400);

    // The real browser can still deny. No user has approved this client yet, so the answer
    // is a page here (tests/api/redirects.rs has the redirect once a user has).
    let denied = browser
        .post_form(
            &consent_url,
            &[("request", &request), ("csrf", &csrf), ("decision", "deny")],
        )
        .await;
    assert_eq!(denied.status(), 200);
    assert!(denied.headers().get("location").is_none());
    assert!(denied.text().await.unwrap().contains("You declined"));
    // And the request is spent.
    let again = browser
        .post_form(
            &consent_url,
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn upstream_state_is_single_use_bound_to_the_browser_and_short_lived() {
    let app = spawn_app().await;
    let client_id = app.register_public(CLIENT_REDIRECT, "Claude").await;

    // Tampered state.
    let mut browser = Browser::new();
    let upstream = app
        .authorize_through_consent(
            &mut browser,
            &app.authorize_url(&client_id, CLIENT_REDIRECT, &[]),
        )
        .await;
    let callback = dev_login(&mut browser, &app, &upstream, "bob")
        .await
        .replace(&app.issuer, &app.address);
    let state = query_of(&callback)["state"].clone();
    let tampered = callback.replace(&state, &format!("{state}x"));
    assert_eq!(browser.get(&tampered).await.status(), 400);

    // Another browser cannot use it.
    assert_eq!(Browser::new().get(&callback).await.status(), 400);

    // The right browser can, once.
    let first = browser.get(&callback).await;
    assert_success(&app, &location(&first));
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status(), 400, "replayed state");
    assert!(replay.headers().get("location").is_none());

    // Expired state: past login.pending_request_ttl_secs.
    let mut late = Browser::new();
    let upstream = app
        .authorize_through_consent(
            &mut late,
            &app.authorize_url(&client_id, CLIENT_REDIRECT, &[]),
        )
        .await;
    let callback = dev_login(&mut late, &app, &upstream, "bob")
        .await
        .replace(&app.issuer, &app.address);
    app.clock.advance(601);
    assert_eq!(late.get(&callback).await.status(), 400, "expired state");

    // Unknown state.
    assert_eq!(
        browser
            .get(&app.url("/upstream/callback?code=x&state=nope"))
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn remembered_consent_skips_the_page_unless_prompt_consent() {
    let app = spawn_app().await;
    let client_id = app.register_public(CLIENT_REDIRECT, "Claude").await;
    let mut browser = Browser::new();
    let page = browser
        .get(&app.authorize_url(&client_id, CLIENT_REDIRECT, &[]))
        .await;
    let html = page.text().await.unwrap();
    let (request, csrf) = (hidden_field(&html, "request"), hidden_field(&html, "csrf"));
    let approved = browser
        .post_form(
            &app.url("/authorize/consent"),
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "approve"),
                ("remember", "1"),
            ],
        )
        .await;
    let set_cookie: Vec<String> = approved
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        set_cookie.iter().any(|c| c.starts_with("ab_consents=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")),
        "{set_cookie:?}"
    );
    let upstream = see_other(&approved);
    // Remembered once the login completes.
    let callback = dev_login(&mut browser, &app, &upstream, "alice").await;
    let back = browser
        .get(&callback.replace(&app.issuer, &app.address))
        .await;
    assert_success(&app, &location(&back));

    let again = browser
        .get(&app.authorize_url(&client_id, CLIENT_REDIRECT, &[]))
        .await;
    assert!(
        location(&again).contains("/dev/upstream/authorize"),
        "straight to the upstream"
    );
    let forced = browser
        .get(&app.authorize_url(&client_id, CLIENT_REDIRECT, &[("prompt", "consent")]))
        .await;
    assert_eq!(forced.status(), 200, "prompt=consent shows the page");
    let other_client = app
        .register_public("https://claude.com/api/mcp/auth_callback", "Other")
        .await;
    let other = browser
        .get(&app.authorize_url(
            &other_client,
            "https://claude.com/api/mcp/auth_callback",
            &[],
        ))
        .await;
    assert_eq!(other.status(), 200, "remembered per client");
}

#[tokio::test]
async fn client_names_are_escaped_on_the_consent_page() {
    let app = spawn_app().await;
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let client_id = app.register_public(CLIENT_REDIRECT, hostile).await;
    let html = Browser::new()
        .get(&app.authorize_url(&client_id, CLIENT_REDIRECT, &[]))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("<script>alert(1)"),
        "raw markup from the client"
    );
    assert!(!html.contains("<img src=x"), "raw markup from the client");
    assert!(html.contains("&lt;script&gt;"), "shown as text");
}

#[tokio::test]
async fn nothing_secret_is_stored_in_the_clear() {
    let double = OwnerRezDouble::start().await;
    let app = spawn_with_ownerrez(&double).await;
    let client_id = app.register_public(CLIENT_REDIRECT, "ChatGPT").await;
    let mut browser = Browser::new();
    let upstream = app
        .authorize_through_consent(
            &mut browser,
            &app.authorize_url(&client_id, CLIENT_REDIRECT, &[]),
        )
        .await;
    let upstream_state = query_of(&upstream)["state"].clone();
    let callback = double.log_in(&upstream).await;
    let redirect = location(
        &browser
            .get(&callback.location.replace(&app.issuer, &app.address))
            .await,
    );
    let code = assert_success(&app, &redirect);
    let exchange = &double.requests_to("/oauth/access_token")[0];
    let upstream_code = exchange.field("code").unwrap().to_owned();
    let access_tokens = double.issued_access_tokens();
    assert!(!access_tokens.is_empty());

    let raw = crate::storage::raw_database(&app).await;
    let mut secrets = vec![code, upstream_state, upstream_code];
    secrets.extend(access_tokens);
    secrets.extend(double.issued_refresh_tokens());
    for secret in secrets {
        assert!(
            !crate::storage::contains(&raw, secret.as_bytes()),
            "a secret is stored in the clear"
        );
    }
}

#[tokio::test]
async fn ownerrez_deauthorization_webhook_revokes_the_users_grants() {
    let double = OwnerRezDouble::start().await;
    let config = double.config();
    let app = spawn_app_with(TestDb::new().await, move |c| {
        c.upstream.provider = ProviderKind::Ownerrez;
        c.upstream.ownerrez = config;
        c.upstream.ownerrez.client_secret = Some(Secret::new(CLIENT_SECRET));
        c.upstream.ownerrez.webhook_user = Some("ownerrez".into());
        c.upstream.ownerrez.webhook_password = Some(Secret::new(STRONG_WEBHOOK_PASSWORD));
    })
    .await;
    let client_id = app.register_public(CLIENT_REDIRECT, "ChatGPT").await;
    let redirect = login_with_ownerrez(&app, &double, &mut Browser::new(), &client_id).await;
    let code = assert_success(&app, &redirect);
    let exchange = app.redeem_code(&client_id, &code, CLIENT_REDIRECT).await;
    assert_eq!(exchange.status(), 200);
    let tokens: Value = exchange.json().await.unwrap();
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("client_id", client_id.as_str()),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let webhook = app.url("/upstream/webhook");
    let event = json!({"id": 1, "user_id": crate::ownerrez_double::USER_ID, "action": "application_authorization_revoked", "entity_type": "user", "entity_id": crate::ownerrez_double::USER_ID});

    let unauthenticated = app.http.post(&webhook).json(&event).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let wrong = app
        .http
        .post(&webhook)
        .basic_auth("ownerrez", Some("nope"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let test_ping = app
        .http
        .post(&webhook)
        .basic_auth("ownerrez", Some(STRONG_WEBHOOK_PASSWORD))
        .json(&json!({"action": "webhook_test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(test_ping.status(), 200);

    for _ in 0..2 {
        let revoked = app
            .http
            .post(&webhook)
            .basic_auth("ownerrez", Some(STRONG_WEBHOOK_PASSWORD))
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 200, "idempotent");
    }
    let (_, grants) = first_user_grants(&app).await;
    assert!(grants["grants"][0]["revoked_at"].is_i64(), "{grants}");
    // The user's next token use fails: the host must send the user through login again.
    let refreshed = app
        .http
        .post(app.url("/token"))
        .form(&refresh_form)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 400);
    assert_eq!(
        refreshed.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn admin_revokes_a_grant_locally_even_when_the_upstream_fails() {
    let double = OwnerRezDouble::start().await;
    let app = spawn_with_ownerrez(&double).await;
    let client_id = app.register_public(CLIENT_REDIRECT, "ChatGPT").await;
    assert_success(
        &app,
        &login_with_ownerrez(&app, &double, &mut Browser::new(), &client_id).await,
    );
    let (user_id, grants) = first_user_grants(&app).await;
    let grant_id = grants["grants"][0]["grant_id"].as_str().unwrap().to_owned();

    double.set_failure(Route::Revoke, Some(Failure::ServerError));
    let revoke = app.admin_revoke_grant(&grant_id).await;
    assert_eq!(revoke.status(), 200);
    let body: Value = revoke.json().await.unwrap();
    assert_eq!(body["upstream_revoked"], false, "reported, not blocking");
    let grants: Value = app
        .admin_get(&format!("/admin/v1/users/{user_id}/grants"))
        .await;
    assert!(grants["grants"][0]["revoked_at"].is_i64());
    let revocations = double
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(revocations, 1, "the upstream revocation was attempted");

    let missing = app
        .admin(Method::POST, "/admin/v1/grants/grt_nope/revoke")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let no_token = app
        .http
        .post(app.url(&format!("/admin/v1/grants/{grant_id}/revoke")))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
}

#[tokio::test]
async fn two_instances_share_the_login_state() {
    // The consent page on one instance, the callback on another: nothing lives in memory.
    let first = spawn_app().await;
    let client_id = first.register_public(CLIENT_REDIRECT, "Claude").await;
    let db = TestDb {
        url: first.db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let issuer = first.issuer.clone();
    let second = spawn_app_on(db, first.clock.clone(), move |c| {
        c.server.issuer = Some(issuer)
    })
    .await;
    let mut browser = Browser::new();
    let upstream = first
        .authorize_through_consent(
            &mut browser,
            &first.authorize_url(&client_id, CLIENT_REDIRECT, &[]),
        )
        .await;
    let callback = dev_login(&mut browser, &first, &upstream, "carol").await;
    let on_second = callback.replace(&first.issuer, &second.address);
    let response = browser.get(&on_second).await;
    let redirect = location(&response);
    assert!(query_of(&redirect).contains_key("code"), "{redirect}");
}

/// A Client ID Metadata Document served on loopback (which the test switch allows) for 60 s
/// of caching, whose name a test can change.
pub struct ServedDocument {
    pub client_id: String,
    redirect_uri: String,
    document: std::sync::Arc<std::sync::Mutex<String>>,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ServedDocument {
    pub fn start(name: &str, redirect_uri: &str) -> Self {
        let document = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let served = document.clone();
        let endpoint = poem::endpoint::make(move |_request: poem::Request| {
            let body = served.lock().unwrap().clone();
            async move {
                poem::Response::builder()
                    .content_type("application/json")
                    .header("cache-control", "max-age=60")
                    .body(body)
            }
        });
        let (address, server) = crate::ownerrez_double::serve(endpoint);
        let served = Self {
            client_id: format!("http://{address}/oauth/client.json"),
            redirect_uri: redirect_uri.to_owned(),
            document,
            _server: server,
        };
        served.publish(name);
        served
    }

    /// Serves the document with `name` from now on.
    pub fn publish(&self, name: &str) {
        *self.document.lock().unwrap() = json!({
            "client_id": self.client_id,
            "client_name": name,
            "redirect_uris": [self.redirect_uri],
            "token_endpoint_auth_method": "none",
        })
        .to_string();
    }
}

#[tokio::test]
async fn a_client_id_metadata_document_client_logs_in_and_gets_tokens() {
    let document = ServedDocument::start("ChatGPT", CLIENT_REDIRECT);
    let client_id = document.client_id.clone();
    let app = spawn_app_with(TestDb::new().await, |c| {
        c.client_metadata_documents.allow_http_loopback = true
    })
    .await;

    let mut browser = Browser::new();
    let page = browser
        .get(&app.authorize_url(&client_id, CLIENT_REDIRECT, &[]))
        .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("127.0.0.1"), "the document's host is shown");
    let redirect = app
        .log_in_with_dev(&mut browser, &client_id, CLIENT_REDIRECT, "dora")
        .await;
    let code = assert_success(&app, &redirect);
    let tokens = app.redeem_code(&client_id, &code, CLIENT_REDIRECT).await;
    assert_eq!(tokens.status(), 200);

    // A redirect URI the document does not list is refused without a redirect.
    let other = browser
        .get(&app.authorize_url(&client_id, "https://evil.example/cb", &[]))
        .await;
    assert_eq!(other.status(), 400);
    assert!(other.headers().get("location").is_none());
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_login_finish() {
    let double = OwnerRezDouble::start().await;
    let app = spawn_with_ownerrez(&double).await;
    let client_id = app.register_public(CLIENT_REDIRECT, "ChatGPT").await;
    let mut browser = Browser::new();
    let upstream = app
        .authorize_through_consent(
            &mut browser,
            &app.authorize_url(&client_id, CLIENT_REDIRECT, &[]),
        )
        .await;
    let callback = double.log_in(&upstream).await;
    // OwnerRez takes 600 ms to answer the code exchange (the client timeout is 1 s).
    double.set_failure(
        Route::Token,
        Some(Failure::Hang(std::time::Duration::from_millis(600))),
    );
    let url = callback.location.replace(&app.issuer, &app.address);
    let in_flight = tokio::spawn(async move {
        let mut browser = browser;
        browser.get(&url).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let address = app.address.clone();
    let stopped = tokio::spawn(app.stop());
    let response = in_flight.await.unwrap();
    // The double answers 503 after its delay, so the login ends in a redirect to the client
    // with temporarily_unavailable: what matters is that the answer arrived.
    assert_eq!(
        response.status(),
        302,
        "the request in flight got its answer"
    );
    assert!(location(&response).starts_with(CLIENT_REDIRECT));
    stopped.await.unwrap();
    assert!(
        reqwest::get(format!("{address}/healthz")).await.is_err(),
        "no new connections after the stop"
    );
}
