//! The connected-apps page (`/account`) and the web sessions under it: nothing without a
//! session, no cross-site form, each user sees only their own apps, a session works on every
//! instance sharing the database, and a disconnect revokes that app for good (refresh, token
//! exchange, introspection, the gateway) while the user's other apps keep working.

use serde_json::{Value, json};

use crate::browser::{
    Browser, hidden_field, page_and_referrer_policy, register_public_client, see_other,
};
use crate::exchange::{
    REDIRECT, RESOURCE, error_of, exchange_as, log_in_and_redeem, refresh_public, resource_server,
    spawn_with_double_and,
};
use crate::helpers::{TestApp, TestDb, spawn_app, spawn_app_on};
use crate::ownerrez_double::{OwnerRezDouble, USER_DISPLAY_NAME, USER_ID};

pub const COOKIE: &str = "__Host-ab_account";

/// A server in front of the OwnerRez double with the connected-apps page on.
pub async fn spawn_account() -> (TestApp, OwnerRezDouble) {
    spawn_with_double_and(|c| c.account.enabled = true).await
}

/// Signs `browser` in to the connected-apps page through the double (as its current user);
/// returns the page.
pub async fn sign_in(app: &TestApp, double: &OwnerRezDouble, browser: &mut Browser) -> String {
    let start = browser.post_form(&app.url("/account/sign-in"), &[]).await;
    let upstream = see_other(&start);
    assert!(upstream.starts_with(&double.authorize_url()), "{upstream}");
    let callback = double.log_in(&upstream).await;
    let back = browser
        .get(&callback.location.replace(&app.issuer, &app.address))
        .await;
    let cookie = back
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(COOKIE))
        .expect("a session cookie");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert_eq!(see_other(&back), format!("{}/account", app.issuer));
    account_page(app, browser).await
}

/// `GET /account`, asserting it is the page.
pub async fn account_page(app: &TestApp, browser: &mut Browser) -> String {
    let page = browser.get(&app.url("/account")).await;
    assert_eq!(page.status(), 200, "the connected-apps page");
    page.text().await.unwrap()
}

/// The grant ids of the page's disconnect forms, in order.
pub fn grant_ids(html: &str) -> Vec<String> {
    html.match_indices("name=\"grant\" value=\"")
        .map(|(at, marker)| {
            let rest = &html[at + marker.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

async fn disconnect(
    app: &TestApp,
    browser: &mut Browser,
    csrf: &str,
    grant: &str,
) -> reqwest::Response {
    browser
        .post_form(
            &app.url("/account/disconnect"),
            &[("csrf", csrf), ("grant", grant)],
        )
        .await
}

/// The user's grants through the admin API, as (grant id, live).
async fn grants_of_first_user(app: &TestApp) -> Vec<(String, bool)> {
    let (_, grants) = crate::login::first_user_grants(app).await;
    grants["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["grant_id"].as_str().unwrap().to_owned(),
                g["revoked_at"].is_null(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_page_is_off_unless_configured_and_says_so() {
    let app = spawn_app().await;
    for path in ["/account", "/account/sign-in"] {
        let page = app.get(path).await;
        assert_eq!(page.status(), 404, "{path}");
        let html = page.text().await.unwrap();
        assert!(
            html.contains("does not offer a page of connected apps"),
            "{html}"
        );
    }
    let start = app
        .http
        .post(app.url("/account/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 404);
    let console = app
        .http
        .post(app.url("/console/sign-in/upstream"))
        .send()
        .await
        .unwrap();
    assert_eq!(console.status(), 404);
    assert!(
        console
            .text()
            .await
            .unwrap()
            .contains("console is turned off")
    );
}

#[tokio::test]
async fn no_page_or_form_is_reachable_without_a_session() {
    let (app, double) = spawn_account().await;
    let client_id = register_public_client(&app, REDIRECT, "ChatGPT").await;
    log_in_and_redeem(&app, &double, &client_id).await;
    let (grant, _) = grants_of_first_user(&app).await.remove(0);
    let sign_in = format!("{}/account/sign-in", app.issuer);
    let mut stranger = Browser::new();
    assert_eq!(
        see_other(&stranger.get(&app.url("/account")).await),
        sign_in
    );
    for (path, fields) in [
        (
            "/account/disconnect",
            vec![("grant", grant.as_str()), ("csrf", "x")],
        ),
        ("/account/disconnect", vec![("all", "yes")]),
        ("/account/sign-out", vec![]),
    ] {
        let response = stranger.post_form(&app.url(path), &fields).await;
        assert_eq!(see_other(&response), sign_in, "{path}");
    }
    // A forged cookie is no session either.
    let forged = app
        .http
        .get(app.url("/account"))
        .header("cookie", format!("{COOKIE}={}", "A".repeat(43)))
        .send()
        .await
        .unwrap();
    assert_eq!(see_other(&forged), sign_in);
    assert_eq!(
        grants_of_first_user(&app).await,
        [(grant, true)],
        "nothing revoked"
    );
    // The sign-in page itself is open.
    let page = stranger
        .get(&sign_in.replace(&app.issuer, &app.address))
        .await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Sign in with OwnerRez"));
}

#[tokio::test]
async fn a_cross_site_post_or_a_wrong_csrf_token_is_refused() {
    let (app, double) = spawn_account().await;
    let client_id = register_public_client(&app, REDIRECT, "ChatGPT").await;
    log_in_and_redeem(&app, &double, &client_id).await;
    let mut browser = Browser::new();
    let html = sign_in(&app, &double, &mut browser).await;
    let csrf = hidden_field(&html, "csrf");
    let grant = grant_ids(&html).remove(0);
    let cookie = format!("{COOKIE}={}", browser.cookie(COOKIE).unwrap());
    let attempts = [
        (
            "cross-site fetch metadata",
            vec![("sec-fetch-site", "cross-site")],
            csrf.as_str(),
        ),
        (
            "same-site sibling",
            vec![("sec-fetch-site", "same-site")],
            csrf.as_str(),
        ),
        (
            "foreign origin",
            vec![("origin", "https://evil.example")],
            csrf.as_str(),
        ),
        ("opaque origin", vec![("origin", "null")], csrf.as_str()),
        ("wrong csrf token", vec![], "AAAA"),
        ("no csrf token", vec![], ""),
    ];
    for (name, headers, token) in attempts {
        let mut request = app
            .http
            .post(app.url("/account/disconnect"))
            .header("cookie", &cookie)
            .form(&[("csrf", token), ("grant", grant.as_str())]);
        for (header, value) in headers {
            request = request.header(header, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{name}");
    }
    assert_eq!(grants_of_first_user(&app).await, [(grant.clone(), true)]);
    let start = app
        .http
        .post(app.url("/account/sign-in"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 403, "a sign-in started from another site");
    // The same post from our own page goes through.
    let own = app
        .http
        .post(app.url("/account/disconnect"))
        .header("cookie", &cookie)
        .header("origin", &app.issuer)
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf", csrf.as_str()), ("grant", grant.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 303);
    assert_eq!(grants_of_first_user(&app).await, [(grant, false)]);
}

/// The pages' forms work when a browser posts them: Chromium sends `Sec-Fetch-Site:
/// same-origin` and the `Origin` the page's `Referrer-Policy` allows, which is `null` under
/// `no-referrer`. The sign-in button and the disconnect form go through, and neither page sends
/// its address to another site.
#[tokio::test]
async fn our_own_forms_pass_as_a_browser_posts_them() {
    let (app, double) = spawn_account().await;
    let client_id = register_public_client(&app, REDIRECT, "ChatGPT").await;
    log_in_and_redeem(&app, &double, &client_id).await;
    let mut browser = Browser::new();
    let private = |policy: &str| ["no-referrer", "same-origin"].contains(&policy);

    let shown = browser.get(&app.url("/account/sign-in")).await;
    let (_, policy) = page_and_referrer_policy(shown).await;
    assert!(private(&policy), "Referrer-Policy {policy}");
    let start = browser
        .submit_from(&policy, &app.issuer, &app.url("/account/sign-in"), &[])
        .await;
    assert_eq!(start.status(), 303, "the sign-in button");
    let callback = double.log_in(&see_other(&start)).await;
    let back = browser
        .get(&callback.location.replace(&app.issuer, &app.address))
        .await;
    assert_eq!(see_other(&back), format!("{}/account", app.issuer));

    let shown = browser.get(&app.url("/account")).await;
    let (html, policy) = page_and_referrer_policy(shown).await;
    assert!(private(&policy), "Referrer-Policy {policy}");
    let csrf = hidden_field(&html, "csrf");
    let grant = grant_ids(&html).remove(0);
    let disconnected = browser
        .submit_from(
            &policy,
            &app.issuer,
            &app.url("/account/disconnect"),
            &[("csrf", csrf.as_str()), ("grant", grant.as_str())],
        )
        .await;
    assert_eq!(disconnected.status(), 303, "the disconnect form");
    assert_eq!(grants_of_first_user(&app).await, [(grant, false)]);
}

#[tokio::test]
async fn each_user_sees_and_disconnects_only_their_own_apps() {
    let (app, double) = spawn_account().await;
    let ann_app = register_public_client(&app, REDIRECT, "Ann's ChatGPT").await;
    let bob_app = register_public_client(&app, REDIRECT, "Bob's Claude").await;
    log_in_and_redeem(&app, &double, &ann_app).await;
    double.set_user(USER_ID + 1, "Bob Builder");
    log_in_and_redeem(&app, &double, &bob_app).await;

    let mut bob = Browser::new();
    let bob_page = sign_in(&app, &double, &mut bob).await;
    assert!(
        bob_page.contains("Bob&#x27;s Claude") && !bob_page.contains("Ann"),
        "{bob_page}"
    );
    assert!(bob_page.contains("Bob Builder"));
    let bob_grant = grant_ids(&bob_page).remove(0);

    double.set_user(USER_ID, USER_DISPLAY_NAME);
    let mut ann = Browser::new();
    let ann_page = sign_in(&app, &double, &mut ann).await;
    assert!(
        ann_page.contains("Ann&#x27;s ChatGPT") && !ann_page.contains("Bob"),
        "{ann_page}"
    );
    assert_eq!(grant_ids(&ann_page).len(), 1);

    // Ann posts Bob's grant id with her own valid form: nothing happens to Bob's app.
    let csrf = hidden_field(&ann_page, "csrf");
    let response = disconnect(&app, &mut ann, &csrf, &bob_grant).await;
    assert!(see_other(&response).ends_with("/account?done=gone"));
    let bob_again = account_page(&app, &mut bob).await;
    assert_eq!(grant_ids(&bob_again), [bob_grant]);
}

#[tokio::test]
async fn a_session_started_on_one_instance_works_on_another() {
    let (app, double) = spawn_account().await;
    let client_id = register_public_client(&app, REDIRECT, "ChatGPT").await;
    log_in_and_redeem(&app, &double, &client_id).await;
    let mut browser = Browser::new();
    let html = sign_in(&app, &double, &mut browser).await;
    let csrf = hidden_field(&html, "csrf");
    let grant = grant_ids(&html).remove(0);

    let second_db = TestDb {
        url: app.db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let config = double.config();
    let other = spawn_app_on(second_db, app.clock.clone(), move |c| {
        c.upstream.provider = authbridge::config::ProviderKind::Ownerrez;
        c.upstream.ownerrez = config;
        c.upstream.ownerrez.client_secret = Some(authbridge::config::Secret::new(
            crate::ownerrez_double::CLIENT_SECRET,
        ));
        c.account.enabled = true;
    })
    .await;
    let page = browser.get(&other.url("/account")).await;
    assert_eq!(page.status(), 200, "the other instance knows the session");
    assert_eq!(
        grant_ids(&page.text().await.unwrap()),
        std::slice::from_ref(&grant)
    );
    // A form of the first instance's page is accepted by the second (same cookie key).
    let response = browser
        .post_form(
            &other.url("/account/disconnect"),
            &[("csrf", csrf.as_str()), ("grant", grant.as_str())],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(grants_of_first_user(&app).await, [(grant, false)]);
    // Signing out on the second ends it on the first.
    let value = browser.cookie(COOKIE).unwrap();
    let signed_out = browser
        .post_form(&other.url("/account/sign-out"), &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(
        see_other(&signed_out),
        format!("{}/account/sign-in", other.issuer)
    );
    let after = app
        .http
        .get(app.url("/account"))
        .header("cookie", format!("{COOKIE}={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303, "the row is gone everywhere");
}

/// A resource server of RESOURCE: (client id, secret).
struct Server(String, String);

impl Server {
    async fn exchange(&self, app: &TestApp, tokens: &Value) -> reqwest::Response {
        exchange_as(
            app,
            &self.0,
            &self.1,
            tokens["access_token"].as_str().unwrap(),
        )
        .await
    }

    async fn introspect(&self, app: &TestApp, tokens: &Value) -> Value {
        let response = app
            .http
            .post(app.url("/introspect"))
            .basic_auth(&self.0, Some(&self.1))
            .form(&[("token", tokens["access_token"].as_str().unwrap())])
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }
}

async fn refresh(app: &TestApp, client_id: &str, tokens: &Value) -> reqwest::Response {
    refresh_public(app, client_id, tokens["refresh_token"].as_str().unwrap()).await
}

#[tokio::test]
async fn disconnecting_one_app_revokes_it_everywhere_and_keeps_the_other() {
    let (app, double) = spawn_account().await;
    let first = register_public_client(&app, REDIRECT, "First app").await;
    let second = register_public_client(&app, REDIRECT, "Second app").await;
    let first_tokens = log_in_and_redeem(&app, &double, &first).await;
    let second_tokens = log_in_and_redeem(&app, &double, &second).await;
    let (id, secret) = resource_server(&app, Some(RESOURCE)).await;
    let server = Server(id, secret);
    assert_eq!(server.exchange(&app, &first_tokens).await.status(), 200);

    let mut browser = Browser::new();
    let html = sign_in(&app, &double, &mut browser).await;
    assert!(
        html.contains("First app") && html.contains("Second app"),
        "{html}"
    );
    assert!(html.contains("<time datetime=\""), "exact times");
    assert!(html.contains("just now"), "relative times");
    assert!(
        html.contains("with your account at OwnerRez."),
        "names the upstream"
    );
    let grants = grant_ids(&html);
    assert_eq!(grants.len(), 2);
    let csrf = hidden_field(&html, "csrf");
    // The page's order is its own (most recently used first): pick the first app's form.
    let first_app = html
        .split("<section class=\"app\"")
        .find(|section| section.contains("First app"))
        .expect("the first app has a section");
    let first_grant = grant_ids(first_app).remove(0);
    assert!(grants.contains(&first_grant));
    let response = disconnect(&app, &mut browser, &csrf, &first_grant).await;
    let location = see_other(&response);
    assert!(location.ends_with("/account?done=one"), "{location}");
    let after = browser.get(&app.url("/account?done=one")).await;
    assert_eq!(after.status(), 200);
    let after = after.text().await.unwrap();
    assert!(
        after.contains("The app was disconnected") && !after.contains("First app"),
        "{after}"
    );

    let dead = [
        (
            "refresh",
            error_of(refresh(&app, &first, &first_tokens).await).await,
        ),
        (
            "exchange",
            error_of(server.exchange(&app, &first_tokens).await).await,
        ),
    ];
    for (name, error) in dead {
        assert_eq!(error, (400, "invalid_grant".to_owned()), "{name}");
    }
    assert_eq!(
        server.introspect(&app, &first_tokens).await,
        json!({"active": false})
    );

    let renewed = refresh(&app, &second, &second_tokens).await;
    assert_eq!(renewed.status(), 200, "the other app keeps working");
    let renewed: Value = renewed.json().await.unwrap();
    assert_eq!(server.exchange(&app, &renewed).await.status(), 200);
    assert_eq!(server.introspect(&app, &renewed).await["active"], true);

    let audit = app.audit_entries_of("grant.revoke").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(
        audit[0]["actor"].as_str().unwrap().starts_with("user:usr_"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn disconnecting_every_app_needs_the_box_ticked() {
    let (app, double) = spawn_account().await;
    for name in ["One", "Two", "Three"] {
        let client = register_public_client(&app, REDIRECT, name).await;
        log_in_and_redeem(&app, &double, &client).await;
    }
    let mut browser = Browser::new();
    let html = sign_in(&app, &double, &mut browser).await;
    assert!(html.contains("Yes, disconnect all 3 apps"));
    let csrf = hidden_field(&html, "csrf");
    let unticked = browser
        .post_form(&app.url("/account/disconnect"), &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(unticked.status(), 400);
    assert!(
        grants_of_first_user(&app)
            .await
            .iter()
            .all(|(_, live)| *live)
    );
    let all = browser
        .post_form(
            &app.url("/account/disconnect"),
            &[("csrf", csrf.as_str()), ("all", "yes")],
        )
        .await;
    assert!(see_other(&all).ends_with("/account?done=all"));
    assert!(
        grants_of_first_user(&app)
            .await
            .iter()
            .all(|(_, live)| !*live)
    );
    let empty = account_page(&app, &mut browser).await;
    assert!(
        empty.contains("No app is connected to your account"),
        "{empty}"
    );
}

#[tokio::test]
async fn sessions_end_when_idle_at_their_absolute_limit_and_on_sign_out() {
    let (app, double) = spawn_with_double_and(|c| {
        c.account.enabled = true;
        c.account.session_idle_minutes = 10;
        c.account.session_absolute_hours = 1;
    })
    .await;
    let mut browser = Browser::new();
    let html = sign_in(&app, &double, &mut browser).await;
    assert!(
        html.contains("No app is connected"),
        "a user without apps: {html}"
    );
    // Active every 9 minutes: alive until the hour is over.
    for _ in 0..6 {
        app.clock.advance(9 * 60);
        account_page(&app, &mut browser).await;
    }
    app.clock.advance(7 * 60);
    assert_eq!(
        browser.get(&app.url("/account")).await.status(),
        303,
        "absolute limit"
    );

    sign_in(&app, &double, &mut browser).await;
    app.clock.advance(10 * 60 + 1);
    assert_eq!(
        browser.get(&app.url("/account")).await.status(),
        303,
        "idle limit"
    );
    assert!(
        app.run_housekeeping().await.web_sessions >= 2,
        "expired rows purged"
    );

    let html = sign_in(&app, &double, &mut browser).await;
    let csrf = hidden_field(&html, "csrf");
    let out = browser
        .post_form(&app.url("/account/sign-out"), &[("csrf", csrf.as_str())])
        .await;
    let cleared = out.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cleared.starts_with(&format!("{COOKIE}=;")) && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(app.count_rows("web_sessions", "1 = 1").await, 0);
}

#[tokio::test]
async fn a_person_keeps_at_most_ten_sessions() {
    let (app, double) = spawn_account().await;
    let mut first = Browser::new();
    sign_in(&app, &double, &mut first).await;
    for _ in 0..10 {
        app.clock.advance(1);
        sign_in(&app, &double, &mut Browser::new()).await;
    }
    assert_eq!(
        app.count_rows("web_sessions", "purpose = 'account'").await,
        10
    );
    assert_eq!(
        first.get(&app.url("/account")).await.status(),
        303,
        "the oldest was evicted"
    );
}

#[tokio::test]
async fn a_sign_in_state_is_used_once_and_only_by_its_browser() {
    let (app, double) = spawn_account().await;
    let mut browser = Browser::new();
    let upstream = see_other(&browser.post_form(&app.url("/account/sign-in"), &[]).await);
    let callback = double.log_in(&upstream).await;
    let callback_url = callback.location.replace(&app.issuer, &app.address);
    let mut thief = Browser::new();
    let stolen = thief.get(&callback_url).await;
    assert_eq!(stolen.status(), 400, "another browser cannot complete it");
    assert_eq!(browser.get(&callback_url).await.status(), 303);
    assert_eq!(browser.get(&callback_url).await.status(), 400, "used once");
}

async fn sign_in_to_console(
    app: &TestApp,
    double: &OwnerRezDouble,
    browser: &mut Browser,
) -> reqwest::Response {
    let start = browser
        .post_form(&app.url("/console/sign-in/upstream"), &[])
        .await;
    let callback = double.log_in(&see_other(&start)).await;
    browser
        .get(&callback.location.replace(&app.issuer, &app.address))
        .await
}

#[tokio::test]
async fn only_listed_operators_get_a_console_session() {
    let (app, double) = spawn_with_double_and(|c| {
        c.console.enabled = true;
        c.console.operators = vec![(USER_ID + 1).to_string()];
    })
    .await;
    let refused = sign_in_to_console(&app, &double, &mut Browser::new()).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("not an operator"));
    assert_eq!(app.count_rows("web_sessions", "1 = 1").await, 0);

    double.set_user(USER_ID + 1, "Olga Operator");
    let mut operator = Browser::new();
    let admitted = sign_in_to_console(&app, &double, &mut operator).await;
    assert_eq!(see_other(&admitted), format!("{}/console", app.issuer));
    assert!(operator.cookie("__Host-ab_console").is_some());
    assert!(operator.cookie(COOKIE).is_none(), "one cookie per purpose");
    let audit = app.audit_entries_of("console.sign_in").await;
    assert_eq!(audit[0]["actor"], format!("operator:{}", USER_ID + 1));
    assert_eq!(
        app.count_rows("web_sessions", "purpose = 'console'").await,
        1
    );
}
