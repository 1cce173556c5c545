//! What an operator does in the console, each through the admin API's own functions: disable
//! a host's client (its next refresh is `invalid_client`), revoke a user's grant from the
//! user's page, rotate a secret (shown once), delete after a confirmation, create a client,
//! rotate the signing key; every change audited with the operator's identity.

use crate::browser::{Browser, hidden_field, see_other};
use crate::console::{page_of, sign_in_with_token, spawn_console, spawn_console_with_double};
use crate::helpers::TestApp;
use crate::scene::{REDIRECT, error_of, log_in_and_redeem};

const OPERATOR: &str = "operator:admin-token:test-admin";

/// Posts a console form with the page's CSRF token.
pub async fn post(
    app: &TestApp,
    browser: &mut Browser,
    csrf: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut all = vec![("csrf", csrf)];
    all.extend_from_slice(fields);
    browser.post_form(&app.url(path), &all).await
}

pub fn rel(app: &TestApp, location: &str) -> String {
    location.replace(&app.issuer, "")
}

#[tokio::test]
async fn disabling_a_dcr_client_found_by_search_fails_its_next_refresh() {
    let (app, double) = spawn_console_with_double(&[]).await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    let other_id = app
        .register_public("https://claude.ai/api/mcp/auth_callback", "Claude")
        .await;
    let tokens = log_in_and_redeem(&app, &double, &client_id).await;
    let mut browser = Browser::new();
    let overview = sign_in_with_token(&app, &mut browser).await;
    let csrf = hidden_field(&overview, "csrf");

    // Found by name, by id and by redirect host; the other client is not listed.
    for q in ["chatg", client_id.as_str(), "chatgpt.com"] {
        let list = page_of(
            &app,
            &mut browser,
            &format!("/console/clients?q={q}&kind=dynamic"),
        )
        .await;
        assert!(list.contains(&client_id), "{q}: {list}");
        assert!(!list.contains(&other_id), "{q}");
    }
    let none = page_of(&app, &mut browser, "/console/clients?q=nothing-like-it").await;
    assert!(none.contains("No client matches."));
    let admin_only = page_of(&app, &mut browser, "/console/clients?kind=admin").await;
    assert!(!admin_only.contains(&client_id));

    let page = page_of(
        &app,
        &mut browser,
        &format!("/console/client?id={client_id}"),
    )
    .await;
    assert!(page.contains("<button type=\"submit\" id=\"disable-client\" class=\"secondary\">Disable client</button>"), "{page}");
    assert!(page.contains("chatgpt.com"));
    // The first post asks for confirmation and changes nothing.
    let fields = [("client", client_id.as_str()), ("action", "disable")];
    let confirm = post(&app, &mut browser, &csrf, "/console/client/action", &fields).await;
    assert_eq!(confirm.status(), 200);
    let confirm = confirm.text().await.unwrap();
    assert!(confirm.contains("Yes, disable client"), "{confirm}");
    assert_eq!(hidden_field(&confirm, "confirm"), "yes");
    assert_eq!(
        app.refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let tokens = log_in_and_redeem(&app, &double, &client_id).await;

    let fields = [
        ("client", client_id.as_str()),
        ("action", "disable"),
        ("confirm", "yes"),
    ];
    let done = post(&app, &mut browser, &csrf, "/console/client/action", &fields).await;
    let back = rel(&app, &see_other(&done));
    assert!(back.ends_with("done=disabled"), "{back}");
    let page = page_of(&app, &mut browser, &back).await;
    assert!(page.contains("The client was disabled"));
    assert!(page.contains("Enable client"));

    let refresh = app
        .refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(error_of(refresh).await, (401, "invalid_client".to_owned()));
    let entry = &app.audit_entries_of("client.update").await[0];
    assert_eq!(entry["actor"], OPERATOR);
    assert_eq!(entry["client_id"], client_id.as_str());
    assert_eq!(entry["summary"]["after"]["disabled"], true);
}

#[tokio::test]
async fn revoking_a_grant_from_the_users_page_fails_its_refresh() {
    let (app, double) = spawn_console_with_double(&[]).await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    let tokens = log_in_and_redeem(&app, &double, &client_id).await;
    let mut browser = Browser::new();
    let overview = sign_in_with_token(&app, &mut browser).await;
    let csrf = hidden_field(&overview, "csrf");
    let users = page_of(&app, &mut browser, "/console/users").await;
    assert!(users.contains("Ann Owner"), "{users}");
    let (user_id, _) = crate::login::first_user_grants(&app).await;
    let page = page_of(&app, &mut browser, &format!("/console/user?id={user_id}")).await;
    assert!(page.contains("Revoke grant"), "{page}");
    assert!(page.contains("ChatGPT"));
    let grant = hidden_field(&page, "grant");

    let confirm = post(
        &app,
        &mut browser,
        &csrf,
        "/console/grant/revoke",
        &[("grant", &grant)],
    )
    .await;
    assert_eq!(confirm.status(), 200);
    assert!(confirm.text().await.unwrap().contains("Yes, revoke grant"));
    let done = post(
        &app,
        &mut browser,
        &csrf,
        "/console/grant/revoke",
        &[("grant", &grant), ("confirm", "yes")],
    )
    .await;
    let back = rel(&app, &see_other(&done));
    assert!(back.ends_with("done=revoked"), "{back}");
    let page = page_of(&app, &mut browser, &back).await;
    assert!(page.contains("The grant was revoked."));
    assert!(!page.contains("Revoke grant</button>"));

    let refresh = app
        .refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(error_of(refresh).await.1, "invalid_grant");
    let entry = &app.audit_entries_of("grant.revoke").await[0];
    assert_eq!(entry["actor"], OPERATOR);
    assert_eq!(entry["summary"]["via"], "console");
    // Revoking it again says so and records nothing.
    let again = post(
        &app,
        &mut browser,
        &csrf,
        "/console/grant/revoke",
        &[("grant", &grant), ("confirm", "yes")],
    )
    .await;
    assert!(see_other(&again).ends_with("done=gone"));
    assert_eq!(app.audit_entries_of("grant.revoke").await.len(), 1);
}

/// Creates a confidential client through the console's form; (client id, secret).
async fn create_client(app: &TestApp, browser: &mut Browser, csrf: &str) -> (String, String) {
    let form = page_of(app, browser, "/console/clients/new").await;
    assert!(form.contains("<label for=\"client_name\">Name</label>"));
    let fields = [
        ("client_name", "MCP server"),
        (
            "redirect_uris",
            "https://mcp.example/cb\r\nhttps://mcp.example/cb2",
        ),
        ("client_id", ""),
        ("token_endpoint_auth_method", "client_secret_basic"),
    ];
    let created = post(app, browser, csrf, "/console/clients/new", &fields).await;
    assert_eq!(created.status(), 200);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let html = created.text().await.unwrap();
    let secret = between(&html, "id=\"client-secret\">", "<");
    let id = between(&html, "id=\"client-id\">", "<");
    (id, secret)
}

pub fn between(html: &str, start: &str, end: &str) -> String {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    let to = html[from..].find(end).unwrap();
    html[from..from + to].to_owned()
}

/// Whether `secret` authenticates `client_id` at the token endpoint (a wrong secret is `401
/// invalid_client`; a right one gets as far as the unknown refresh token).
async fn secret_works(app: &TestApp, client_id: &str, secret: &str) -> bool {
    let response = app
        .post_form_as(
            "/token",
            crate::endpoints::ClientAuth::Basic(client_id, secret),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "rt_unknown"),
            ],
        )
        .await;
    response.status() != 401
}

#[tokio::test]
async fn a_created_or_rotated_secret_is_shown_once() {
    let app = spawn_console().await;
    let mut browser = Browser::new();
    let csrf = hidden_field(&sign_in_with_token(&app, &mut browser).await, "csrf");
    let (client_id, secret) = create_client(&app, &mut browser, &csrf).await;
    assert!(secret.len() > 20, "{secret}");
    assert!(secret_works(&app, &client_id, &secret).await);
    let page = page_of(
        &app,
        &mut browser,
        &format!("/console/client?id={client_id}"),
    )
    .await;
    assert!(!page.contains(&secret), "never shown again");
    assert_eq!(
        app.audit_entries_of("client.create").await[0]["actor"],
        OPERATOR
    );

    let fields = [("client", client_id.as_str()), ("action", "rotate-secret")];
    let confirm = post(&app, &mut browser, &csrf, "/console/client/action", &fields).await;
    assert!(confirm.text().await.unwrap().contains("Yes, rotate secret"));
    assert!(
        secret_works(&app, &client_id, &secret).await,
        "unchanged until confirmed"
    );
    let fields = [
        ("client", client_id.as_str()),
        ("action", "rotate-secret"),
        ("confirm", "yes"),
    ];
    let rotated = post(&app, &mut browser, &csrf, "/console/client/action", &fields).await;
    assert_eq!(rotated.status(), 200);
    assert_eq!(rotated.headers()["cache-control"], "no-store");
    let new_secret = between(&rotated.text().await.unwrap(), "id=\"client-secret\">", "<");
    assert_ne!(new_secret, secret);
    assert!(!secret_works(&app, &client_id, &secret).await);
    assert!(secret_works(&app, &client_id, &new_secret).await);
    let page = page_of(
        &app,
        &mut browser,
        &format!("/console/client?id={client_id}"),
    )
    .await;
    assert!(!page.contains(&new_secret));
    assert_eq!(
        app.audit_entries_of("client.rotate_secret").await[0]["actor"],
        OPERATOR
    );

    // A refused form says why, keeps what was typed, and creates nothing.
    let bad = post(
        &app,
        &mut browser,
        &csrf,
        "/console/clients/new",
        &[("client_name", "Bad"), ("redirect_uris", "not a uri")],
    )
    .await;
    assert_eq!(bad.status(), 400);
    let html = bad.text().await.unwrap();
    assert!(html.contains("The client was not created."), "{html}");
    assert!(html.contains("not a uri"));
    assert_eq!(app.count_rows("clients", "client_name = 'Bad'").await, 0);
}

#[tokio::test]
async fn delete_needs_a_confirmation_and_the_resource_server_mark_is_set() {
    let app = spawn_console().await;
    let mut browser = Browser::new();
    let csrf = hidden_field(&sign_in_with_token(&app, &mut browser).await, "csrf");
    let (client_id, _) = create_client(&app, &mut browser, &csrf).await;

    let resource = "http://localhost:3000/mcp";
    let fields = [
        ("client", client_id.as_str()),
        ("action", "resource-server"),
        ("resource", resource),
    ];
    let marked = post(&app, &mut browser, &csrf, "/console/client/action", &fields).await;
    assert_eq!(marked.status(), 303);
    let client = app
        .admin_get(&format!("/admin/v1/clients/{client_id}"))
        .await;
    assert_eq!(client["resource_server_for"], resource);
    let fields = [
        ("client", client_id.as_str()),
        ("action", "resource-server"),
        ("resource", "https://nope.example/"),
    ];
    let refused = post(&app, &mut browser, &csrf, "/console/client/action", &fields).await;
    assert_eq!(refused.status(), 400);

    for unconfirmed in [
        vec![],
        vec![("confirm", "no")],
        vec![("confirm", "yes"), ("confirm", "yes")],
    ] {
        let mut fields = vec![("client", client_id.as_str()), ("action", "delete")];
        fields.extend(unconfirmed);
        let page = post(&app, &mut browser, &csrf, "/console/client/action", &fields).await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("Yes, delete client"));
        assert_eq!(
            app.count_rows("clients", &format!("client_id = '{client_id}'"))
                .await,
            1
        );
    }
    let fields = [
        ("client", client_id.as_str()),
        ("action", "delete"),
        ("confirm", "yes"),
    ];
    let deleted = post(&app, &mut browser, &csrf, "/console/client/action", &fields).await;
    let back = rel(&app, &see_other(&deleted));
    let list = page_of(&app, &mut browser, &back).await;
    assert!(list.contains("was deleted"), "{list}");
    assert_eq!(
        app.count_rows("clients", &format!("client_id = '{client_id}'"))
            .await,
        0
    );
    assert_eq!(
        app.audit_entries_of("client.delete").await[0]["actor"],
        OPERATOR
    );
    let gone = browser
        .get(&app.url(&format!("/console/client?id={client_id}")))
        .await;
    assert_eq!(gone.status(), 404);
    let again = post(&app, &mut browser, &csrf, "/console/client/action", &fields).await;
    assert_eq!(again.status(), 404);
    let unknown = [
        ("client", client_id.as_str()),
        ("action", "explode"),
        ("confirm", "yes"),
    ];
    let unknown = post(
        &app,
        &mut browser,
        &csrf,
        "/console/client/action",
        &unknown,
    )
    .await;
    assert_eq!(unknown.status(), 400);
}

#[tokio::test]
async fn the_signing_key_is_rotated_after_a_confirmation() {
    let app = spawn_console().await;
    let mut browser = Browser::new();
    let csrf = hidden_field(&sign_in_with_token(&app, &mut browser).await, "csrf");
    let keys = page_of(&app, &mut browser, "/console/keys").await;
    assert!(keys.contains("Signing new tokens"), "{keys}");
    let confirm = post(&app, &mut browser, &csrf, "/console/keys/rotate", &[]).await;
    assert!(
        confirm
            .text()
            .await
            .unwrap()
            .contains("Yes, rotate signing key")
    );
    assert_eq!(app.jwks_kids().await.len(), 1);
    let rotated = post(
        &app,
        &mut browser,
        &csrf,
        "/console/keys/rotate",
        &[("confirm", "yes")],
    )
    .await;
    let back = rel(&app, &see_other(&rotated));
    let keys = page_of(&app, &mut browser, &back).await;
    assert!(keys.contains("A rotation was started."));
    assert!(keys.contains("Published, not signing yet"));
    assert_eq!(
        app.audit_entries_of("keys.rotate").await[0]["actor"],
        OPERATOR
    );
    // A second rotation while one waits is refused, plainly.
    let again = post(
        &app,
        &mut browser,
        &csrf,
        "/console/keys/rotate",
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(again.status(), 400);
}
