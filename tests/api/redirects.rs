//! Where `/authorize` may send a browser: never onward for a client no user has approved
//! (RFC 9700 §4.11.2), never to a scheme that starts a local program, and never a crash on an
//! odd URI or an old stored client.

use reqwest::Method;
use sea_orm::{ConnectionTrait, Database, Statement, Value as SqlValue};
use serde_json::{Value, json};

use crate::browser::{Browser, hidden_field, query_of, see_other};
use crate::helpers::{TestApp, spawn_app};

fn assert_html_page(response: &reqwest::Response, status: u16, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    assert!(
        response.headers().get("location").is_none(),
        "{what}: no redirect"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{what}"
    );
}

#[tokio::test]
async fn an_unapproved_dynamic_client_cannot_bounce_users_to_its_site() {
    let app = spawn_app().await;
    let evil = "https://evil.example/x";
    let client_id = app.register_public(evil, "Totally legit").await;
    let mut browser = Browser::new();
    for (name, extra) in [
        ("implicit flow", vec![("response_type", "token")]),
        ("unknown scope", vec![("scope", "admin")]),
        ("prompt=none", vec![("prompt", "none")]),
    ] {
        let mut url = app.authorize_url(&client_id, evil, &[]);
        for (key, value) in &extra {
            if *key == "response_type" {
                url = url.replace("response_type=code", &format!("response_type={value}"));
            } else {
                url.push_str(&format!("&{key}={value}"));
            }
        }
        let response = browser.get(&url).await;
        assert_html_page(&response, 400, name);
        let html = response.text().await.unwrap();
        assert!(
            html.contains("evil.example"),
            "{name}: the page names the app's host"
        );
    }
}

#[tokio::test]
async fn schemes_that_start_local_programs_are_refused() {
    let app = spawn_app().await;
    let refused = Some("invalid_redirect_uri");
    let cases = [
        ("ms-msdt:/id%20PCWDiagnostic", refused),
        ("search-ms:query=x", refused),
        ("intent://scan/#Intent;scheme=zxing;end", refused),
        ("jar:https://evil.example/a.jar!/", refused),
        ("view-source:https://evil.example/", refused),
        ("ws://evil.example/socket", refused),
        ("wss://evil.example/socket", refused),
        ("mailto:someone@evil.example", refused),
        ("ms-settings:privacy", refused),
        ("myapp://callback", refused),
        ("tel:+15551234", refused),
        ("cursor://anysphere.cursor-mcp/oauth/callback", None),
        (
            "vscode://vscode.github-authentication/did-authenticate",
            None,
        ),
        ("vscode-insiders://x/cb", None),
        ("claude://claude.ai/callback", None),
        ("windsurf://codeium.windsurf/cb", None),
        ("com.example.app:/oauth2redirect", None),
    ];
    for (uri, error) in cases {
        let response = app
            .register(&json!({"redirect_uris": [uri], "token_endpoint_auth_method": "none"}))
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        match error {
            Some(error) => {
                assert_eq!(status, 400, "{uri}");
                assert_eq!(body["error"], error, "{uri}");
            }
            None => assert_eq!(status, 201, "{uri}: {body}"),
        }
    }
}

#[tokio::test]
async fn an_out_of_range_loopback_port_is_refused_not_a_crash() {
    let app = spawn_app().await;
    let client_id = app.register_public("http://localhost/cb", "Local").await;
    let mut browser = Browser::new();
    for requested in [
        "http://localhost:99999/cb",
        "http://localhost:65536/cb",
        "http://localhost:00000/cb",
    ] {
        let response = browser
            .get(&app.authorize_url(&client_id, requested, &[]))
            .await;
        assert_html_page(&response, 400, requested);
    }
    let ok = browser
        .get(&app.authorize_url(&client_id, "http://localhost:65535/cb", &[]))
        .await;
    assert_eq!(ok.status(), 200, "the highest port is a port");
}

/// `sql` with `?` placeholders, for either engine.
fn statement(backend: sea_orm::DatabaseBackend, sql: &str, values: Vec<SqlValue>) -> Statement {
    let sql = if backend == sea_orm::DatabaseBackend::Postgres {
        let mut n = 0;
        sql.chars()
            .map(|c| {
                if c == '?' {
                    n += 1;
                    format!("${n}")
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Writes a dynamic client straight into the database, as an older version could have stored
/// it, with a registration access token; returns the token.
async fn insert_old_client(app: &TestApp, client_id: &str, metadata: &Value) -> String {
    let db = Database::connect(&app.db.url).await.unwrap();
    let backend = db.get_database_backend();
    let now = app.clock_now();
    let insert = |sql: &str, values: Vec<SqlValue>| statement(backend, sql, values);
    db.execute(insert(
        "INSERT INTO clients (client_id, kind, client_name, metadata, token_endpoint_auth_method, created_at, updated_at, disabled) VALUES (?, 'dynamic', ?, ?, 'none', ?, ?, ?)",
        vec![
            client_id.into(),
            metadata["client_name"].as_str().map(str::to_owned).into(),
            metadata.to_string().into(),
            now.into(),
            now.into(),
            false.into(),
        ],
    ))
    .await
    .unwrap();
    let token = format!("reg_old_{client_id}");
    db.execute(insert(
        "INSERT INTO registration_tokens (token_hash, client_id, created_at) VALUES (?, ?, ?)",
        vec![
            authbridge::tokens::opaque::hash(&token).into(),
            client_id.into(),
            now.into(),
        ],
    ))
    .await
    .unwrap();
    db.close().await.ok();
    token
}

#[tokio::test]
async fn a_stored_client_that_fails_todays_rules_still_answers() {
    let app = spawn_app().await;
    let client_id = "client_registered_under_older_rules";
    let uris: Vec<String> = (0..15)
        .map(|i| format!("https://old.example/{i}"))
        .chain(["ms-msdt:/legacy".to_owned()])
        .collect();
    let metadata = json!({
        "client_name": "Old\u{202E}app",
        "redirect_uris": uris,
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["authorization_code", "implicit"],
        "logo_uri": "http://not-https.example/logo.png",
        "software_id": "kept",
    });
    let token = insert_old_client(&app, client_id, &metadata).await;

    // /authorize: the consent page for a URI it registered.
    let page = Browser::new()
        .get(&app.authorize_url(client_id, "https://old.example/3", &[]))
        .await;
    assert_eq!(page.status(), 200, "the consent page");

    // The admin API lists it, shows it, and can disable it.
    let list = app
        .admin(Method::GET, "/admin/v1/clients?limit=200")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.unwrap();
    let listed = list["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == client_id)
        .expect("listed");
    assert_eq!(
        listed["redirect_uris"].as_array().unwrap().len(),
        16,
        "as stored"
    );
    let one = app
        .admin(Method::GET, &format!("/admin/v1/clients/{client_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let disabled = app
        .admin_update_client(client_id, &json!({"disabled": true}))
        .await;
    assert_eq!(disabled.status(), 200, "{}", disabled.text().await.unwrap());

    // RFC 7592 read: the metadata as it was accepted.
    let read = app
        .http
        .get(app.url(&format!("/register/{client_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["client_id"], client_id);
    assert_eq!(read["software_id"], "kept");
    assert_eq!(read["redirect_uris"].as_array().unwrap().len(), 16);
}

#[tokio::test]
async fn a_stored_user_and_grant_with_ids_and_scope_todays_rules_refuse_still_answer() {
    let app = spawn_app().await;
    let client_id = "client_of_an_old_grant";
    insert_old_client(
        &app,
        client_id,
        &json!({"client_name": "Old", "redirect_uris": []}),
    )
    .await;
    // Ids no parse accepts (blank, a space, non-ASCII) and an empty scope: loaded as stored.
    let (user_id, grant_id) = ("usr_old", "grt old é");
    let db = Database::connect(&app.db.url).await.unwrap();
    let backend = db.get_database_backend();
    let now = app.clock_now();
    db.execute(statement(
        backend,
        "INSERT INTO users (user_id, provider, upstream_subject, display_name, created_at, updated_at) VALUES (?, 'dev', 'old-subject', NULL, ?, ?)",
        vec![user_id.into(), now.into(), now.into()],
    ))
    .await
    .unwrap();
    db.execute(statement(
        backend,
        "INSERT INTO grants (grant_id, user_id, client_id, resource, scope, upstream_tokens, created_at, updated_at) VALUES (?, ?, ?, '', '', NULL, ?, ?)",
        vec![grant_id.into(), user_id.into(), client_id.into(), now.into(), now.into()],
    ))
    .await
    .unwrap();
    db.execute(statement(
        backend,
        "INSERT INTO users (user_id, provider, upstream_subject, display_name, created_at, updated_at) VALUES ('', 'dev', 'blank-subject', NULL, ?, ?)",
        vec![now.into(), now.into()],
    ))
    .await
    .unwrap();
    db.close().await.ok();

    let users = app
        .admin(Method::GET, "/admin/v1/users")
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
    let users: Value = users.json().await.unwrap();
    let ids: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"") && ids.contains(&user_id), "{ids:?}");

    let grants = app
        .admin(Method::GET, &format!("/admin/v1/users/{user_id}/grants"))
        .send()
        .await
        .unwrap();
    assert_eq!(grants.status(), 200);
    let grants: Value = grants.json().await.unwrap();
    assert_eq!(grants["grants"][0]["grant_id"], grant_id, "as stored");
    assert_eq!(grants["grants"][0]["scope"], "", "as stored");

    // The client's page in the admin API reads its grants too.
    let client = app
        .admin(Method::GET, &format!("/admin/v1/clients/{client_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(client.status(), 200);
}

#[tokio::test]
async fn a_stored_client_with_unreadable_metadata_still_answers() {
    let app = spawn_app().await;
    let client_id = "client_with_broken_metadata";
    let token = insert_old_client(&app, client_id, &json!("not an object")).await;
    let page = Browser::new()
        .get(&app.authorize_url(client_id, "https://old.example/cb", &[]))
        .await;
    assert_html_page(&page, 400, "no redirect URI can match");
    let one = app
        .admin(Method::GET, &format!("/admin/v1/clients/{client_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let read = app
        .http
        .get(app.url(&format!("/register/{client_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
}

/// Opens the consent page in `browser` and presses Deny.
async fn deny(
    app: &TestApp,
    browser: &mut Browser,
    client_id: &str,
    redirect_uri: &str,
) -> reqwest::Response {
    let page = browser
        .get(&app.authorize_url(client_id, redirect_uri, &[]))
        .await;
    assert_eq!(page.status(), 200, "the consent page");
    let html = page.text().await.unwrap();
    let request = hidden_field(&html, "request");
    let csrf = hidden_field(&html, "csrf");
    browser
        .post_form(
            &app.url("/authorize/consent"),
            &[("request", &request), ("csrf", &csrf), ("decision", "deny")],
        )
        .await
}

#[tokio::test]
async fn denying_an_unapproved_dynamic_client_stays_on_our_origin() {
    let app = spawn_app().await;
    let evil = "https://evil.example/x";
    let client_id = app.register_public(evil, "Totally legit").await;
    let mut browser = Browser::new();
    let denied = deny(&app, &mut browser, &client_id, evil).await;
    assert_html_page(&denied, 200, "deny for a client nobody approved");
    let html = denied.text().await.unwrap();
    assert!(
        html.contains("evil.example"),
        "the page names the app's host"
    );
    assert!(
        !html.contains("access_denied") && !html.contains("evil.example/x"),
        "nothing that carries the error to the client"
    );

    // Once a user has approved the client, a denial goes back to it as RFC 6749 §4.1.2.1 says.
    let approved = app
        .log_in_with_dev(&mut Browser::new(), &client_id, evil, "alice")
        .await;
    assert!(approved.starts_with(evil), "{approved}");
    let denied = deny(&app, &mut Browser::new(), &client_id, evil).await;
    let location = see_other(&denied);
    assert!(location.starts_with(evil), "{location}");
    assert_eq!(
        query_of(&location).get("error").map(String::as_str),
        Some("access_denied")
    );
}

/// A client whose stored id today's parse refuses (a space, non-ASCII) is listed as stored,
/// with its grant and its audit entry; named from outside (the admin API's path, `/token`,
/// `/authorize`), it is answered exactly as a client nobody registered is.
#[tokio::test]
async fn a_stored_client_whose_id_todays_parse_refuses_is_listed_and_named_as_unknown() {
    let app = spawn_app().await;
    let odd = "client old é";
    insert_old_client(
        &app,
        odd,
        &json!({"client_name": "Odd", "redirect_uris": ["https://odd.example/cb"]}),
    )
    .await;
    let db = Database::connect(&app.db.url).await.unwrap();
    let backend = db.get_database_backend();
    let now = app.clock_now();
    db.execute(statement(
        backend,
        "INSERT INTO users (user_id, provider, upstream_subject, display_name, created_at, updated_at) VALUES ('usr_odd', 'dev', 'odd-subject', NULL, ?, ?)",
        vec![now.into(), now.into()],
    ))
    .await
    .unwrap();
    db.execute(statement(
        backend,
        "INSERT INTO grants (grant_id, user_id, client_id, resource, scope, upstream_tokens, created_at, updated_at) VALUES ('grt_odd', 'usr_odd', ?, '', 'mcp', NULL, ?, ?)",
        vec![odd.into(), now.into(), now.into()],
    ))
    .await
    .unwrap();
    db.execute(statement(
        backend,
        "INSERT INTO admin_audit (at, actor, action, client_id, summary, source_address) VALUES (?, 'cli', 'client.create', ?, '{}', NULL)",
        vec![now.into(), odd.into()],
    ))
    .await
    .unwrap();
    db.close().await.ok();

    let list: Value = app
        .admin(Method::GET, "/admin/v1/clients?limit=200")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = list["clients"].as_array().unwrap();
    assert!(listed.iter().any(|c| c["client_id"] == odd), "{list}");
    let grants = app
        .admin(Method::GET, "/admin/v1/users/usr_odd/grants")
        .send()
        .await
        .unwrap();
    assert_eq!(grants.status(), 200);
    let grants: Value = grants.json().await.unwrap();
    assert_eq!(grants["grants"][0]["client_id"], odd, "as stored");
    let audit = app
        .admin(Method::GET, "/admin/v1/audit")
        .send()
        .await
        .unwrap();
    assert_eq!(audit.status(), 200);
    let audit: Value = audit.json().await.unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["client_id"] == odd), "{audit}");

    // Named from outside: the odd id and an id nobody registered get the same answers.
    let mut answers = Vec::new();
    for client_id in [odd, "client_nobody_registered"] {
        let admin = app
            .admin(Method::GET, &format!("/admin/v1/clients/{client_id}"))
            .send()
            .await
            .unwrap();
        let admin_status = admin.status().as_u16();
        let admin_error = admin.json::<Value>().await.unwrap()["error"].clone();
        let token = app.refresh(client_id, "rt_whatever").await;
        let token = (
            token.status().as_u16(),
            token.json::<Value>().await.unwrap(),
        );
        let page = Browser::new()
            .get(&app.authorize_url(client_id, "https://odd.example/cb", &[]))
            .await;
        let page_status = page.status().as_u16();
        let page_says_unknown = page.text().await.unwrap().contains("not registered here");
        answers.push((
            admin_status,
            admin_error,
            token,
            page_status,
            page_says_unknown,
        ));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 404);
    assert_eq!(answers[0].1, "not_found");
    assert_eq!(answers[0].2.0, 401);
    assert_eq!(answers[0].2.1["error"], "invalid_client");
    assert!(answers[0].4, "the unknown-client page");
}
