//! The console's pages as an operator reads them: empty and with data, client text escaped,
//! times relative and exact, listings paged, metadata-document clients listed as their own kind.

use serde_json::Value;

use crate::browser::Browser;
use crate::console::{page_of, sign_in_with_token, spawn_console, spawn_console_with_double};
use crate::console_actions::{between, rel};
use crate::helpers::{TestDb, spawn_app_with};
use crate::scene::{REDIRECT, log_in_and_redeem};

const OPERATOR: &str = "operator:admin-token:test-admin";

#[tokio::test]
async fn pages_render_empty_and_with_data() {
    let (app, double) = spawn_console_with_double(&[]).await;
    let mut browser = Browser::new();
    let overview = sign_in_with_token(&app, &mut browser).await;
    assert!(overview.contains("id=\"dynamic-clients\">0<"), "{overview}");
    assert!(overview.contains("have not been counted yet"));
    assert!(
        overview.contains("Anyone can register a client"),
        "open registration warning"
    );
    let clients = page_of(&app, &mut browser, "/console/clients").await;
    assert!(clients.contains("No client yet."));
    assert!(clients.contains("<label for=\"q\">Search clients</label>"));
    let users = page_of(&app, &mut browser, "/console/users").await;
    assert!(users.contains("No user has logged in yet."));

    let client_id = app.register_public(REDIRECT, "Chat<b>GPT</b>").await;
    log_in_and_redeem(&app, &double, &client_id).await;
    app.run_housekeeping().await;
    let overview = page_of(&app, &mut browser, "/console").await;
    assert!(overview.contains("id=\"dynamic-clients\">1<"), "{overview}");
    assert!(overview.contains("id=\"users\">1<"));
    assert!(overview.contains("id=\"live-grants\">1<"));
    assert!(overview.contains("id=\"tokens-issued\">1<"));
    assert!(overview.contains("Signing keys"));
    let clients = page_of(&app, &mut browser, "/console/clients").await;
    assert!(
        clients.contains("Chat&lt;b&gt;GPT&lt;&#x2f;b&gt;"),
        "escaped: {clients}"
    );
    assert!(!clients.contains("<b>GPT"));
    let client = page_of(
        &app,
        &mut browser,
        &format!("/console/client?id={client_id}"),
    )
    .await;
    assert!(client.contains("just now"), "relative times");
    assert!(client.contains("<time datetime="), "exact times");
    assert!(!client.contains("No user has a live grant"));
    let audit = page_of(&app, &mut browser, "/console/audit").await;
    assert!(audit.contains("console.sign_in"), "{audit}");
    let only = page_of(
        &app,
        &mut browser,
        &format!("/console/audit?actor={OPERATOR}"),
    )
    .await;
    assert!(only.contains("console.sign_in"));
    let none = page_of(&app, &mut browser, "/console/audit?action=nothing.like.it").await;
    assert!(none.contains("No entry matches."));
    let by_day = page_of(
        &app,
        &mut browser,
        "/console/audit?since=1970-01-01&until=1970-01-02",
    )
    .await;
    assert!(by_day.contains("No entry matches."));
}

#[tokio::test]
async fn listings_are_paged() {
    let app = spawn_console().await;
    let mut browser = Browser::new();
    sign_in_with_token(&app, &mut browser).await;
    let mut ids = Vec::new();
    for n in 0..55 {
        let body = serde_json::json!({
            "client_name": format!("Host {n}"),
            "redirect_uris": [format!("https://host{n}.example/cb")],
            "token_endpoint_auth_method": "none",
        });
        let created: Value = app.admin_create_client(&body).await;
        ids.push(created["client"]["client_id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    let first = page_of(&app, &mut browser, "/console/clients").await;
    assert!(first.contains(&ids[49]) && !first.contains(&ids[50]));
    let next = between(&first, "<a href=\"", "\" id=\"next-page\"");
    let next = &next[next.rfind('"').map_or(0, |at| at + 1)..];
    let next = rel(
        &app,
        &next
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
            .replace("&#x3d;", "="),
    );
    let second = page_of(&app, &mut browser, &next).await;
    assert!(second.contains(&ids[50]) && second.contains(&ids[54]));
    assert!(!second.contains(&ids[49]));
    assert!(!second.contains("id=\"next-page\""));
}

#[tokio::test]
async fn metadata_document_clients_are_listed_as_their_own_kind() {
    let document = crate::login::ServedDocument::start("Docu<i>App</i>", REDIRECT);
    let app = spawn_app_with(TestDb::new().await, |c| {
        c.client_metadata_documents.allow_http_loopback = true;
        c.console.enabled = true;
        c.console.admin_token_sign_in = true;
    })
    .await;
    let mut browser = Browser::new();
    sign_in_with_token(&app, &mut browser).await;
    let empty = page_of(&app, &mut browser, "/console/clients?kind=metadata").await;
    assert!(empty.contains("No metadata document is cached."), "{empty}");
    let consent = Browser::new()
        .get(&app.authorize_url(&document.client_id, REDIRECT, &[]))
        .await;
    assert_eq!(consent.status(), 200, "the document is fetched and cached");

    let listed = page_of(&app, &mut browser, "/console/clients?kind=metadata").await;
    assert!(
        listed.contains("Docu&lt;i&gt;App&lt;&#x2f;i&gt;"),
        "{listed}"
    );
    assert!(listed.contains("id=\"documents\""));
    let found = page_of(&app, &mut browser, "/console/clients?kind=metadata&q=docu").await;
    assert!(found.contains("id=\"documents\""));
    let missed = page_of(&app, &mut browser, "/console/clients?kind=metadata&q=zzz").await;
    assert!(missed.contains("No client matches."));
    let others = page_of(&app, &mut browser, "/console/clients?kind=all").await;
    assert!(!others.contains("Docu&lt;i&gt;"), "not a registered client");
    let overview = page_of(&app, &mut browser, "/console").await;
    assert!(
        overview.contains("id=\"metadata-documents\">1<"),
        "{overview}"
    );
}
