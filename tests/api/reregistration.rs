//! A host that registers itself again every few days, from another address each time (as the
//! claude.ai web connector was reported to): its user approves no more often than the approval
//! rules require, and its abandoned registrations do not fill the client cap. Neither may
//! reach a client another party controls.

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, query_of};
use crate::consent::{approve_and_log_in, finish_login, shows_page};
use crate::helpers::{TestApp, TestDb, spawn_app_with};

const CLAUDE: &str = "https://claude.ai/api/mcp/auth_callback";
const LOOPBACK: &str = "http://127.0.0.1/callback";
const DAY: i64 = 86_400;

async fn spawn(cap: u64) -> TestApp {
    spawn_app_with(TestDb::new().await, |config| {
        config.registration.trust_forwarded_for = true;
        config.registration.max_dynamic_clients = cap;
    })
    .await
}

/// Registers a public client as if from `source`; returns the response.
async fn register_from(
    app: &TestApp,
    source: &str,
    name: &str,
    redirect: &str,
) -> reqwest::Response {
    app.http
        .post(app.url("/register"))
        .header("x-forwarded-for", source)
        .json(&json!({
            "client_name": name,
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
}

async fn client_from(app: &TestApp, source: &str, name: &str, redirect: &str) -> String {
    let response = register_from(app, source, name, redirect).await;
    assert_eq!(response.status(), 201);
    let info: Value = response.json().await.unwrap();
    info["client_id"].as_str().unwrap().to_owned()
}

async fn client_exists(app: &TestApp, client_id: &str) -> bool {
    app.admin(Method::GET, &format!("/admin/v1/clients/{client_id}"))
        .send()
        .await
        .unwrap()
        .status()
        == 200
}

/// `user` logs in through `client_id` in a fresh browser and the client redeems the code;
/// returns the refresh token.
async fn log_in(app: &TestApp, client_id: &str, user: &str) -> String {
    let redirect = app
        .log_in_with_dev(&mut Browser::new(), client_id, CLAUDE, user)
        .await;
    let code = query_of(&redirect)["code"].clone();
    let response = app.redeem_code(client_id, &code, CLAUDE).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_remembered_approval_covers_the_same_hosts_next_registration_and_nothing_else() {
    let app = spawn(100).await;
    let first = client_from(&app, "198.51.100.1", "Claude", CLAUDE).await;
    let mut browser = Browser::new();
    let url = |client: &str| app.authorize_url(client, CLAUDE, &[]);
    approve_and_log_in(&app, &mut browser, &url(&first), true, "alice").await;

    // Three days later, from another address: a new client, the same software.
    app.clock.advance(3 * DAY);
    let again = client_from(&app, "203.0.113.7", "Claude", CLAUDE).await;
    assert_ne!(
        again, first,
        "a new registration (the dedupe is per source and window)"
    );
    assert!(
        !shows_page(&mut browser, &url(&again)).await,
        "no second approval"
    );
    let straight = browser.get(&url(&again)).await;
    finish_login(
        &app,
        &mut browser,
        &crate::browser::location(&straight),
        "alice",
    )
    .await;

    // Anything the user did not see shows the page: another name, another redirect URI, another
    // browser.
    let renamed = client_from(&app, "203.0.113.8", "Claude (beta)", CLAUDE).await;
    assert!(
        shows_page(&mut browser, &url(&renamed)).await,
        "other software"
    );
    assert!(
        shows_page(&mut Browser::new(), &url(&again)).await,
        "another browser"
    );

    // A loopback (or private-use scheme) redirect can be answered by any program on the
    // machine: there a new registration is never covered by another's approval.
    let native = client_from(&app, "198.51.100.1", "Claude Code", LOOPBACK).await;
    let native_url =
        |client: &str| app.authorize_url(client, "http://127.0.0.1:4711/callback", &[]);
    approve_and_log_in(&app, &mut browser, &native_url(&native), true, "alice").await;
    assert!(
        !shows_page(&mut browser, &native_url(&native)).await,
        "its own approval"
    );
    app.clock.advance(3 * DAY);
    let native_again = client_from(&app, "203.0.113.9", "Claude Code", LOOPBACK).await;
    assert!(
        shows_page(&mut browser, &native_url(&native_again)).await,
        "a loopback client's copy is approved again"
    );

    // Revoking the app forgets the approval for every registration of it.
    let revoked = app
        .admin(
            Method::POST,
            &format!("/admin/v1/clients/{again}/revoke-tokens"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let third = client_from(&app, "203.0.113.10", "Claude", CLAUDE).await;
    assert!(
        shows_page(&mut browser, &url(&third)).await,
        "approved again after a revocation"
    );
}

#[tokio::test]
async fn a_hosts_abandoned_registrations_make_room_under_a_full_cap() {
    let app = spawn(2).await;
    let first = client_from(&app, "198.51.100.1", "Claude", CLAUDE).await;
    let old_refresh = log_in(&app, &first, "alice").await;
    app.clock.advance(3 * DAY);
    let second = client_from(&app, "203.0.113.7", "Claude", CLAUDE).await;
    log_in(&app, &second, "alice").await;

    // Both are authorized, so neither would make room before; the first is superseded by the
    // second for its only user, so it does now.
    let other_host = register_from(&app, "192.0.2.1", "ChatGPT", "https://chatgpt.com/cb").await;
    assert_eq!(other_host.status(), 201, "room was made");
    assert!(
        !client_exists(&app, &first).await,
        "the superseded registration went"
    );
    assert!(client_exists(&app, &second).await, "the one in use stays");
    let refused = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", first.as_str()),
            ("refresh_token", old_refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "its tokens went with it");
}

#[tokio::test]
async fn a_registration_another_user_authorized_or_that_is_used_again_is_not_superseded() {
    // Another user of the old registration: it is not only this user's to abandon.
    let app = spawn(2).await;
    let shared = client_from(&app, "198.51.100.1", "Claude", CLAUDE).await;
    log_in(&app, &shared, "alice").await;
    log_in(&app, &shared, "bob").await;
    app.clock.advance(3 * DAY);
    let newer = client_from(&app, "203.0.113.7", "Claude", CLAUDE).await;
    log_in(&app, &newer, "alice").await;
    let refused = register_from(&app, "192.0.2.1", "ChatGPT", "https://chatgpt.com/cb").await;
    assert_eq!(refused.status(), 429, "nothing may make room");
    assert!(client_exists(&app, &shared).await);

    // Used again after it was superseded: in use, so kept.
    let app = spawn(2).await;
    let first = client_from(&app, "198.51.100.1", "Claude", CLAUDE).await;
    let refresh_token = log_in(&app, &first, "alice").await;
    app.clock.advance(3 * DAY);
    let second = client_from(&app, "203.0.113.7", "Claude", CLAUDE).await;
    log_in(&app, &second, "alice").await;
    let used = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", first.as_str()),
            ("refresh_token", refresh_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 200);
    let refused = register_from(&app, "192.0.2.1", "ChatGPT", "https://chatgpt.com/cb").await;
    assert_eq!(refused.status(), 429, "a client in use is never evicted");
    assert!(client_exists(&app, &first).await && client_exists(&app, &second).await);
}
