//! Remembered consent: an approval the user asked to remember skips the page only for what the
//! user saw (the client as it then was, the redirect URI, the resource and a scope set that
//! covers the request); anything wider shows the page again. And the consent form's answer is a
//! 303.

use authbridge::config::ResourceConfig;
use serde_json::{Value, json};

use crate::browser::{Browser, dev_login, hidden_field, location, query_of, see_other};
use crate::helpers::{TestApp, TestDb, spawn_app_with};

const REDIRECT: &str = "https://claude.ai/api/mcp/auth_callback";
const OTHER_REDIRECT: &str = "https://claude.com/api/mcp/auth_callback";
const RESOURCE: &str = "http://localhost:3000/mcp";
const OTHER_RESOURCE: &str = "http://localhost:4000/mcp";

/// A server with two resources, each offering `mcp:read` and `mcp:write`.
async fn spawn_with_two_resources() -> TestApp {
    spawn_app_with(TestDb::new().await, |c| {
        c.resources = [RESOURCE, OTHER_RESOURCE]
            .iter()
            .map(|uri| ResourceConfig {
                uri: (*uri).into(),
                name: format!("MCP at {uri}"),
                scopes: vec!["mcp:read".into(), "mcp:write".into()],
                default_scopes: vec!["mcp:read".into()],
                proxy: None,
            })
            .collect();
    })
    .await
}

/// A registered public client with both redirect URIs: (client_id, its RFC 7592 information).
async fn register(app: &TestApp) -> (String, Value) {
    register_named(app, "Claude").await
}

async fn register_named(app: &TestApp, name: &str) -> (String, Value) {
    let response = app
        .register(&json!({
            "client_name": name,
            "redirect_uris": [REDIRECT, OTHER_REDIRECT],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_eq!(response.status(), 201);
    let info: Value = response.json().await.unwrap();
    (info["client_id"].as_str().unwrap().to_owned(), info)
}

fn request(app: &TestApp, client_id: &str, redirect: &str, resource: &str, scope: &str) -> String {
    app.authorize_url(
        client_id,
        redirect,
        &[("resource", resource), ("scope", scope)],
    )
}

/// Opens the page at `url` and answers its form with `decision` (and "remember" when asked).
pub async fn answer_page(
    app: &TestApp,
    browser: &mut Browser,
    url: &str,
    decision: &str,
    remember: bool,
) -> reqwest::Response {
    let page = browser.get(url).await;
    assert_eq!(page.status(), 200, "the consent page");
    let html = page.text().await.unwrap();
    let (handle, csrf) = (hidden_field(&html, "request"), hidden_field(&html, "csrf"));
    let mut fields = vec![
        ("request", handle.as_str()),
        ("csrf", csrf.as_str()),
        ("decision", decision),
    ];
    if remember {
        fields.push(("remember", "1"));
    }
    browser
        .post_form(&app.url("/authorize/consent"), &fields)
        .await
}

/// Approves the page at `url` (remembering when asked) and completes the login as `user`.
pub async fn approve_and_log_in(
    app: &TestApp,
    browser: &mut Browser,
    url: &str,
    remember: bool,
    user: &str,
) {
    let approved = answer_page(app, browser, url, "approve", remember).await;
    let upstream = see_other(&approved);
    finish_login(app, browser, &upstream, user).await;
}

/// From the redirect to the dev upstream to the code at the client.
pub async fn finish_login(app: &TestApp, browser: &mut Browser, upstream: &str, user: &str) {
    let callback = dev_login(browser, app, upstream, user).await;
    let back = browser
        .get(&callback.replace(&app.issuer, &app.address))
        .await;
    let redirect = location(&back);
    assert!(query_of(&redirect).contains_key("code"), "{redirect}");
}

/// Whether `url` shows the consent page (true) or goes straight to the upstream (false).
pub async fn shows_page(browser: &mut Browser, url: &str) -> bool {
    let response = browser.get(url).await;
    match response.status().as_u16() {
        200 => true,
        302 => {
            let to = location(&response);
            assert!(to.contains("/dev/upstream/authorize"), "{to}");
            false
        }
        other => panic!("unexpected status {other} for {url}"),
    }
}

#[tokio::test]
async fn a_remembered_approval_covers_only_what_the_user_saw() {
    let app = spawn_with_two_resources().await;
    let (client_id, _) = register(&app).await;
    let mut browser = Browser::new();
    let approved = request(&app, &client_id, REDIRECT, RESOURCE, "mcp:read");
    approve_and_log_in(&app, &mut browser, &approved, true, "alice").await;

    assert!(
        !shows_page(&mut browser, &approved).await,
        "the same request is covered"
    );
    let cases = [
        (
            "another scope",
            request(&app, &client_id, REDIRECT, RESOURCE, "mcp:write"),
        ),
        (
            "a wider scope set",
            request(&app, &client_id, REDIRECT, RESOURCE, "mcp:read mcp:write"),
        ),
        (
            "another resource",
            request(&app, &client_id, REDIRECT, OTHER_RESOURCE, "mcp:read"),
        ),
        (
            "another redirect URI",
            request(&app, &client_id, OTHER_REDIRECT, RESOURCE, "mcp:read"),
        ),
    ];
    for (name, url) in &cases {
        assert!(
            shows_page(&mut browser, url).await,
            "{name}: the page again"
        );
    }
    // The covered request still skips it after all those.
    assert!(!shows_page(&mut browser, &approved).await);
}

#[tokio::test]
async fn a_remembered_approval_covers_a_subset_of_its_scopes() {
    let app = spawn_with_two_resources().await;
    let (client_id, _) = register(&app).await;
    let mut browser = Browser::new();
    let both = request(&app, &client_id, REDIRECT, RESOURCE, "mcp:write mcp:read");
    approve_and_log_in(&app, &mut browser, &both, true, "alice").await;
    for scope in ["mcp:read", "mcp:write", "mcp:read mcp:write"] {
        let url = request(&app, &client_id, REDIRECT, RESOURCE, scope);
        assert!(!shows_page(&mut browser, &url).await, "{scope}: covered");
    }
    // No scope asked: the resource's default (mcp:read), which is covered.
    let default = app.authorize_url(&client_id, REDIRECT, &[("resource", RESOURCE)]);
    assert!(!shows_page(&mut browser, &default).await, "default scope");
    // And a covered request really logs in.
    let response = browser.get(&default).await;
    finish_login(&app, &mut browser, &location(&response), "alice").await;
}

#[tokio::test]
async fn an_edit_of_the_client_voids_a_remembered_approval() {
    let app = spawn_with_two_resources().await;
    let (client_id, info) = register(&app).await;
    let mut browser = Browser::new();
    let url = request(&app, &client_id, REDIRECT, RESOURCE, "mcp:read");
    approve_and_log_in(&app, &mut browser, &url, true, "alice").await;
    assert!(!shows_page(&mut browser, &url).await);

    // RFC 7592 §2.2: the registrant replaces the metadata (here only the name).
    let updated = app
        .http
        .put(info["registration_client_uri"].as_str().unwrap())
        .bearer_auth(info["registration_access_token"].as_str().unwrap())
        .json(&json!({
            "client_id": client_id,
            "client_name": "Claude (now with more access)",
            "redirect_uris": [REDIRECT, OTHER_REDIRECT],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    assert!(
        shows_page(&mut browser, &url).await,
        "changed through RFC 7592: the page again"
    );

    // Approved again as it now is; then the operator edits it through the admin API.
    approve_and_log_in(&app, &mut browser, &url, true, "alice").await;
    assert!(!shows_page(&mut browser, &url).await);
    let patched = app
        .admin_update_client(
            &client_id,
            &json!({"client_name": "Claude (edited by the operator)"}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    assert!(
        shows_page(&mut browser, &url).await,
        "changed through the admin API: the page again"
    );
}

#[tokio::test]
async fn only_a_completed_login_is_remembered_and_only_by_its_browser() {
    let app = spawn_with_two_resources().await;
    let (client_id, _) = register(&app).await;
    let url = request(&app, &client_id, REDIRECT, RESOURCE, "mcp:read");

    // Approved with "remember", but the login at the upstream never finished.
    let mut abandoned = Browser::new();
    let approved = answer_page(&app, &mut abandoned, &url, "approve", true).await;
    see_other(&approved);
    assert!(
        shows_page(&mut abandoned, &url).await,
        "no login completed: nothing remembered"
    );

    // Remembered in one browser, not in another.
    let mut browser = Browser::new();
    approve_and_log_in(&app, &mut browser, &url, true, "alice").await;
    assert!(!shows_page(&mut browser, &url).await);
    assert!(
        shows_page(&mut Browser::new(), &url).await,
        "another browser"
    );

    // Without "remember": the page every time.
    let mut forgetful = Browser::new();
    approve_and_log_in(&app, &mut forgetful, &url, false, "bob").await;
    assert!(shows_page(&mut forgetful, &url).await);

    // Once the pending request's lifetime is over, the housekeeping deletes the abandoned
    // approval, and only it.
    app.clock.advance(601);
    let store = app.registry.store();
    let now = app.clock_now();
    assert_eq!(
        store
            .purge_remembered_consents(now, now - 600)
            .await
            .unwrap(),
        1
    );
    assert!(
        !shows_page(&mut browser, &url).await,
        "alice's approval stays"
    );
}

#[tokio::test]
async fn the_remembered_approval_cookie_is_a_persistent_handle() {
    let app = spawn_with_two_resources().await;
    let (client_id, _) = register(&app).await;
    let url = request(&app, &client_id, REDIRECT, RESOURCE, "mcp:read");
    let approved = answer_page(&app, &mut Browser::new(), &url, "approve", true).await;
    let cookies: Vec<String> = approved
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let consent = cookies
        .iter()
        .find(|c| c.starts_with("ab_consents="))
        .unwrap_or_else(|| panic!("no remembered-approval cookie in {cookies:?}"));
    let value = consent
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("ab_consents=");
    assert_eq!(
        value.len(),
        43,
        "a random handle, nothing readable: {value}"
    );
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
        assert!(consent.contains(attribute), "{attribute} in {consent}");
    }
    // Nothing about the client in the cookie's name or value.
    assert!(!consent.contains(&client_id));
}

#[tokio::test]
async fn revoking_the_grant_voids_the_remembered_approval() {
    let app = spawn_with_two_resources().await;
    let (client_id, _) = register(&app).await;
    let mut browser = Browser::new();
    let url = request(&app, &client_id, REDIRECT, RESOURCE, "mcp:read");
    approve_and_log_in(&app, &mut browser, &url, true, "alice").await;
    assert!(!shows_page(&mut browser, &url).await);

    let (_, grants) = crate::login::first_user_grants(&app).await;
    let grant_id = grants["grants"][0]["grant_id"].as_str().unwrap();
    let revoked = app.admin_revoke_grant(grant_id).await;
    assert_eq!(revoked.status(), 200);
    assert!(
        shows_page(&mut browser, &url).await,
        "a revoked grant's approval is not remembered"
    );
}

#[tokio::test]
async fn remembered_approvals_expire_are_bounded_per_browser_and_purged() {
    let app = spawn_with_two_resources().await;
    let mut browser = Browser::new();
    // One more client than a browser keeps approvals for.
    let mut urls = Vec::new();
    for i in 0..=authbridge::store::consents::MAX_PER_BROWSER {
        // Distinct names: an identical registration would return the same client.
        let (client_id, _) = register_named(&app, &format!("App {i}")).await;
        let url = request(&app, &client_id, REDIRECT, RESOURCE, "mcp:read");
        approve_and_log_in(&app, &mut browser, &url, true, "alice").await;
        app.clock.advance(1);
        urls.push(url);
    }
    assert!(
        shows_page(&mut browser, &urls[0]).await,
        "the oldest approval made room"
    );
    for url in &urls[1..] {
        assert!(!shows_page(&mut browser, url).await, "{url}");
    }

    // Past login.remember_consent_secs: forgotten, and the housekeeping deletes the rows.
    app.clock.advance(30 * 24 * 3600);
    assert!(shows_page(&mut browser, &urls[1]).await, "expired");
    let store = app.registry.store();
    let deleted = store
        .purge_remembered_consents(app.clock_now(), app.clock_now() - 600)
        .await
        .unwrap();
    assert_eq!(deleted, authbridge::store::consents::MAX_PER_BROWSER as u64);
}

#[tokio::test]
async fn the_consent_form_is_answered_with_303_see_other() {
    let app = spawn_with_two_resources().await;
    let (client_id, _) = register(&app).await;
    let url = request(&app, &client_id, REDIRECT, RESOURCE, "mcp:read");
    // A user has approved the client, so a denial goes back to it too (for a client nobody
    // has approved, it is a page: tests/api/redirects.rs).
    approve_and_log_in(&app, &mut Browser::new(), &url, false, "alice").await;
    for decision in ["approve", "deny"] {
        let answer = answer_page(&app, &mut Browser::new(), &url, decision, false).await;
        // RFC 9110 §15.4.4: after a POST, 303 makes every browser follow with a GET.
        assert_eq!(answer.status(), 303, "{decision}");
        assert!(answer.headers().get("location").is_some(), "{decision}");
    }
}

#[tokio::test]
async fn a_changed_metadata_document_voids_a_remembered_approval() {
    let document = crate::login::ServedDocument::start("ChatGPT", REDIRECT);
    let client_id = document.client_id.clone();
    let app = spawn_app_with(TestDb::new().await, |c| {
        c.client_metadata_documents.allow_http_loopback = true
    })
    .await;
    let mut browser = Browser::new();
    let url = app.authorize_url(&client_id, REDIRECT, &[]);
    approve_and_log_in(&app, &mut browser, &url, true, "alice").await;
    assert!(!shows_page(&mut browser, &url).await);

    // The document changes; once the cached copy expires, the new one is what the page shows.
    document.publish("ChatGPT, now asking for more");
    app.clock.advance(61);
    assert!(shows_page(&mut browser, &url).await, "the page again");
}
