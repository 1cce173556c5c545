//! The operator console (`/console`): its sign-in (through the upstream for operators on
//! `console.operators`, or with an admin API token), that no page or form is reachable without
//! a session or from another site, that a session works on every instance sharing the
//! database, and that malformed queries get a `400` or a sane page. The actions on clients,
//! users and keys are in `console_actions.rs`.

use crate::browser::{Browser, hidden_field, page_and_referrer_policy, see_other};
use crate::helpers::{ADMIN_TOKEN, TestApp, TestDb, spawn_app, spawn_app_on, spawn_app_with};
use crate::ownerrez_double::{OwnerRezDouble, USER_ID};
use crate::scene::{REDIRECT, log_in_and_redeem, spawn_with_double_and};

pub const COOKIE: &str = "__Host-ab_console";

/// A server with the console on and the admin-token sign-in offered.
pub async fn spawn_console() -> TestApp {
    spawn_app_with(TestDb::new().await, |c| {
        c.console.enabled = true;
        c.console.admin_token_sign_in = true;
    })
    .await
}

/// A server in front of the OwnerRez double with the console on, `operators` let in through
/// the upstream and the admin-token sign-in offered.
pub async fn spawn_console_with_double(operators: &[&str]) -> (TestApp, OwnerRezDouble) {
    let operators: Vec<String> = operators.iter().map(|s| s.to_string()).collect();
    spawn_with_double_and(move |c| {
        c.console.enabled = true;
        c.console.operators = operators;
        c.console.admin_token_sign_in = true;
    })
    .await
}

/// Signs `browser` in with the test admin token; returns the overview page.
pub async fn sign_in_with_token(app: &TestApp, browser: &mut Browser) -> String {
    let page = browser.get(&app.url("/console/sign-in")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<label for=\"token\">Admin API token</label>"),
        "{html}"
    );
    let response = browser
        .post_form(
            &app.url("/console/sign-in/token"),
            &[("token", ADMIN_TOKEN)],
        )
        .await;
    assert_eq!(see_other(&response), format!("{}/console", app.issuer));
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(COOKIE))
        .expect("a session cookie");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    page_of(app, browser, "/console").await
}

/// `GET path` with the browser's session, asserting a `200` page.
pub async fn page_of(app: &TestApp, browser: &mut Browser, path: &str) -> String {
    let page = browser.get(&app.url(path)).await;
    assert_eq!(page.status(), 200, "GET {path}");
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    page.text().await.unwrap()
}

/// Every page (GET) of the console behind the session.
const PAGES: [&str; 10] = [
    "/console",
    "/console/clients",
    "/console/clients?q=x&kind=dynamic",
    "/console/client?id=x",
    "/console/clients/new",
    "/console/users",
    "/console/user?id=x",
    "/console/keys",
    "/console/audit",
    "/console/audit?actor=x",
];

/// Every form (POST) of the console behind the session.
const FORMS: [&str; 6] = [
    "/console/client/action",
    "/console/clients/new",
    "/console/grant/revoke",
    "/console/keys/rotate",
    "/console/sign-out",
    "/console/client/action",
];

#[tokio::test]
async fn the_console_is_off_unless_configured_and_says_so() {
    let app = spawn_app().await;
    for path in PAGES.iter().chain(&["/console/sign-in"]) {
        let page = app.get(path).await;
        assert_eq!(page.status(), 404, "{path}");
        assert!(page.text().await.unwrap().contains("console is turned off"));
    }
    for path in FORMS.iter().chain(&["/console/sign-in/token"]) {
        let response = Browser::new()
            .post_form(&app.url(path), &[("token", ADMIN_TOKEN)])
            .await;
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn no_page_or_form_is_reachable_without_a_session() {
    let app = spawn_console().await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    let sign_in = format!("{}/console/sign-in", app.issuer);
    let mut stranger = Browser::new();
    for path in PAGES {
        assert_eq!(
            see_other(&stranger.get(&app.url(path)).await),
            sign_in,
            "{path}"
        );
    }
    for path in FORMS {
        let fields = [
            ("csrf", "x"),
            ("client", client_id.as_str()),
            ("action", "disable"),
            ("confirm", "yes"),
            ("client_name", "Evil"),
            ("redirect_uris", "https://evil.example/cb"),
        ];
        let response = stranger.post_form(&app.url(path), &fields).await;
        assert_eq!(see_other(&response), sign_in, "{path}");
    }
    // A forged cookie, or the connected-apps cookie, is no console session either.
    for cookie in [
        format!("{COOKIE}={}", "A".repeat(43)),
        format!("__Host-ab_account={}", "A".repeat(43)),
    ] {
        let forged = app
            .http
            .get(app.url("/console"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(see_other(&forged), sign_in);
    }
    let client = app
        .admin_get(&format!("/admin/v1/clients/{client_id}"))
        .await;
    assert_eq!(client["disabled"], false, "nothing changed");
    assert_eq!(app.count_rows("clients", "kind = 'admin'").await, 0);
}

#[tokio::test]
async fn a_cross_site_post_or_a_wrong_csrf_token_is_refused() {
    let app = spawn_console().await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    let mut browser = Browser::new();
    let html = sign_in_with_token(&app, &mut browser).await;
    let csrf = hidden_field(&html, "csrf");
    let cookie = format!("{COOKIE}={}", browser.cookie(COOKIE).unwrap());
    let attempts = [
        (
            "cross-site",
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
        ("wrong token", vec![], "not-the-token"),
        ("no token", vec![], ""),
    ];
    for (name, headers, token) in attempts {
        let mut request = app
            .http
            .post(app.url("/console/client/action"))
            .header("cookie", &cookie)
            .form(&[
                ("csrf", token),
                ("client", client_id.as_str()),
                ("action", "disable"),
                ("confirm", "yes"),
            ]);
        for (header, value) in headers {
            request = request.header(header, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{name}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("Nothing was changed")
        );
    }
    // The token sign-in form refuses a cross-site post too.
    let response = app
        .http
        .post(app.url("/console/sign-in/token"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let client = app
        .admin_get(&format!("/admin/v1/clients/{client_id}"))
        .await;
    assert_eq!(client["disabled"], false, "nothing changed");
}

/// The console's forms work when a browser posts them: `Sec-Fetch-Site: same-origin` and the
/// `Origin` the page's referrer policy allows (`null` under `no-referrer`). The token form and a
/// client action go through.
#[tokio::test]
async fn the_forms_pass_as_a_browser_posts_them() {
    let app = spawn_console().await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    let mut browser = Browser::new();
    let (_, policy) =
        page_and_referrer_policy(browser.get(&app.url("/console/sign-in")).await).await;
    let signed_in = browser
        .submit_from(
            &policy,
            &app.issuer,
            &app.url("/console/sign-in/token"),
            &[("token", ADMIN_TOKEN)],
        )
        .await;
    assert_eq!(see_other(&signed_in), format!("{}/console", app.issuer));

    let page = browser
        .get(&app.url(&format!("/console/client?id={client_id}")))
        .await;
    let (html, policy) = page_and_referrer_policy(page).await;
    let csrf = hidden_field(&html, "csrf");
    let fields = [
        ("csrf", csrf.as_str()),
        ("client", client_id.as_str()),
        ("action", "disable"),
        ("confirm", "yes"),
    ];
    let disabled = browser
        .submit_from(
            &policy,
            &app.issuer,
            &app.url("/console/client/action"),
            &fields,
        )
        .await;
    assert_eq!(disabled.status(), 303, "the disable form");
    let client = app
        .admin_get(&format!("/admin/v1/clients/{client_id}"))
        .await;
    assert_eq!(client["disabled"], true);
}

#[tokio::test]
async fn an_admin_token_signs_in_a_wrong_one_is_refused_and_audited() {
    let app = spawn_console().await;
    let mut browser = Browser::new();
    let overview = sign_in_with_token(&app, &mut browser).await;
    assert!(overview.contains("admin token “test-admin”"), "{overview}");
    let signed_in = app.audit_entries_of("console.sign_in").await;
    assert_eq!(signed_in[0]["actor"], "operator:admin-token:test-admin");

    for token in ["adm_wrong", "", &"x".repeat(5000)] {
        let response = Browser::new()
            .post_form(&app.url("/console/sign-in/token"), &[("token", token)])
            .await;
        assert_eq!(response.status(), 401, "{token:.20}");
        assert!(response.headers().get("set-cookie").is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("id=\"sign-in-error\""), "{html}");
        assert!(html.contains("You are not signed in."));
    }
    let refused = app.audit_entries_of("console.sign_in_refused").await;
    assert_eq!(refused.len(), 3);
    assert!(
        !refused[0]["summary"].to_string().contains("adm_wrong"),
        "never the token"
    );

    // Past the allowance of wrong tokens, the form closes for the minute, even to the right one.
    for _ in 0..7 {
        let response = Browser::new()
            .post_form(
                &app.url("/console/sign-in/token"),
                &[("token", "adm_wrong")],
            )
            .await;
        assert_eq!(response.status(), 401);
    }
    let closed = Browser::new()
        .post_form(
            &app.url("/console/sign-in/token"),
            &[("token", ADMIN_TOKEN)],
        )
        .await;
    assert_eq!(closed.status(), 429);
    assert!(
        closed
            .text()
            .await
            .unwrap()
            .contains("Too many wrong tokens")
    );
    app.clock.advance(61);
    let reopened = Browser::new()
        .post_form(
            &app.url("/console/sign-in/token"),
            &[("token", ADMIN_TOKEN)],
        )
        .await;
    assert_eq!(reopened.status(), 303);
}

#[tokio::test]
async fn the_token_form_is_absent_and_refused_unless_configured() {
    let (app, _double) = spawn_with_double_and(|c| {
        c.console.enabled = true;
        c.console.operators = vec![USER_ID.to_string()];
    })
    .await;
    let html = app.get("/console/sign-in").await.text().await.unwrap();
    assert!(html.contains("Sign in with OwnerRez"), "{html}");
    assert!(!html.contains("Admin API token"));
    let response = Browser::new()
        .post_form(
            &app.url("/console/sign-in/token"),
            &[("token", ADMIN_TOKEN)],
        )
        .await;
    assert_eq!(response.status(), 404);
    assert!(response.headers().get("set-cookie").is_none());
}

/// Signs `browser` in through the OwnerRez double; the answer to the upstream callback.
async fn sign_in_upstream(
    app: &TestApp,
    double: &OwnerRezDouble,
    browser: &mut Browser,
) -> reqwest::Response {
    let start = browser
        .post_form(&app.url("/console/sign-in/upstream"), &[])
        .await;
    let upstream = see_other(&start);
    assert!(upstream.starts_with(&double.authorize_url()), "{upstream}");
    let callback = double.log_in(&upstream).await;
    browser
        .get(&callback.location.replace(&app.issuer, &app.address))
        .await
}

#[tokio::test]
async fn an_operator_signs_in_through_the_upstream_and_anyone_else_is_refused() {
    let (app, double) = spawn_console_with_double(&["999"]).await;
    let mut browser = Browser::new();
    let refused = sign_in_upstream(&app, &double, &mut browser).await;
    assert_eq!(refused.status(), 403);
    assert!(browser.cookie(COOKIE).is_none());
    assert!(refused.text().await.unwrap().contains("not an operator"));
    assert_eq!(
        see_other(&browser.get(&app.url("/console")).await),
        format!("{}/console/sign-in", app.issuer)
    );

    let (app, double) = spawn_console_with_double(&[&USER_ID.to_string()]).await;
    let mut browser = Browser::new();
    let back = sign_in_upstream(&app, &double, &mut browser).await;
    assert_eq!(see_other(&back), format!("{}/console", app.issuer));
    let overview = page_of(&app, &mut browser, "/console").await;
    assert!(overview.contains("Ann Owner"), "{overview}");
    let entry = &app.audit_entries_of("console.sign_in").await[0];
    assert_eq!(entry["actor"], format!("operator:{USER_ID}"));
}

#[tokio::test]
async fn a_session_started_on_one_instance_works_on_another() {
    let app = spawn_console().await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    let mut browser = Browser::new();
    let html = sign_in_with_token(&app, &mut browser).await;
    let csrf = hidden_field(&html, "csrf");
    let second_db = TestDb {
        url: app.db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let other = spawn_app_on(second_db, app.clock.clone(), |c| {
        c.console.enabled = true;
        c.console.admin_token_sign_in = true;
    })
    .await;
    let page = page_of(
        &other,
        &mut browser,
        &format!("/console/client?id={client_id}"),
    )
    .await;
    assert!(page.contains("Disable client"), "{page}");
    // A form of the first instance's page is accepted by the second (same cookie key).
    let fields = [
        ("csrf", csrf.as_str()),
        ("client", client_id.as_str()),
        ("action", "disable"),
        ("confirm", "yes"),
    ];
    let response = browser
        .post_form(&other.url("/console/client/action"), &fields)
        .await;
    assert_eq!(response.status(), 303);
    let client = app
        .admin_get(&format!("/admin/v1/clients/{client_id}"))
        .await;
    assert_eq!(client["disabled"], true);
    // Signing out on the second ends it on the first.
    let signed_out = browser
        .post_form(&other.url("/console/sign-out"), &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(
        see_other(&signed_out),
        format!("{}/console/sign-in", other.issuer)
    );
    assert_eq!(browser.get(&app.url("/console")).await.status(), 303);
    let out = app.audit_entries_of("console.sign_out").await;
    assert_eq!(out[0]["actor"], "operator:admin-token:test-admin");
}

#[tokio::test]
async fn malformed_queries_get_a_400_or_a_sane_page_never_a_server_error() {
    let (app, double) = spawn_console_with_double(&[]).await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    log_in_and_redeem(&app, &double, &client_id).await;
    let mut browser = Browser::new();
    sign_in_with_token(&app, &mut browser).await;
    let huge = "x".repeat(10_000);
    let cases = [
        "/console/clients?page=-1".to_owned(),
        "/console/clients?after=%00".to_owned(),
        format!("/console/clients?q={huge}"),
        "/console/clients?kind=bogus".to_owned(),
        "/console/clients?kind=dynamic&kind=admin".to_owned(),
        "/console/clients?q=%25%5F%5C".to_owned(),
        "/console/clients?q=%ZZ".to_owned(),
        "/console/client".to_owned(),
        "/console/client?id=".to_owned(),
        format!("/console/client?id={huge}"),
        "/console/client?id=nope".to_owned(),
        "/console/client?id=%00".to_owned(),
        "/console/users?after=-1".to_owned(),
        format!("/console/users?after={huge}"),
        "/console/user?id=%00".to_owned(),
        "/console/user?id=nope".to_owned(),
        "/console/audit?before=-1".to_owned(),
        "/console/audit?before=99999999999999".to_owned(),
        "/console/audit?before=abc".to_owned(),
        "/console/audit?since=2026-13-45".to_owned(),
        "/console/audit?until=-1".to_owned(),
        format!("/console/audit?actor={huge}"),
        "/console/audit?since=2026-11-30&until=2026-11-30&actor=a&action=b&target=c".to_owned(),
        "/console/keys?done=%00".to_owned(),
    ];
    for path in cases {
        let response = browser.get(&app.url(&path)).await;
        let status = response.status().as_u16();
        assert!(matches!(status, 200 | 400 | 404), "{path:.80}: {status}");
        assert!(!response.text().await.unwrap().is_empty(), "{path:.80}");
    }
}
