//! What an outsider can do with the unauthenticated endpoints: take over another host's client
//! through registration dedupe, grow tables without bound, lock real hosts out.

use std::time::Duration;

use reqwest::Method;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::helpers::{TestApp, TestDb, spawn_app, spawn_app_with};

/// Rows in `table` of the app's database.
pub async fn count_rows(app: &TestApp, table: &str) -> i64 {
    let db = Database::connect(&app.db.url).await.unwrap();
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    let count: i64 = row.try_get("", "n").unwrap();
    db.close().await.ok();
    count
}

/// The rows left in `table` once the background housekeeping (every second in these tests)
/// has emptied it, or after five seconds.
async fn rows_after_housekeeping(app: &TestApp, table: &str) -> i64 {
    let mut left = count_rows(app, table).await;
    for _ in 0..50 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = count_rows(app, table).await;
    }
    left
}

/// POSTs a registration as if it came from `source` (the server trusts X-Forwarded-For).
async fn register_from(app: &TestApp, source: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(app.url("/register"))
        .header("x-forwarded-for", source)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn client_exists(app: &TestApp, client_id: &str) -> bool {
    let response = app
        .admin(Method::GET, &format!("/admin/v1/clients/{client_id}"))
        .send()
        .await
        .unwrap();
    response.status() == 200
}

#[tokio::test]
async fn a_deduplicated_registration_grants_no_management_of_the_client() {
    let app = spawn_app().await;
    let body = json!({"client_name": "Visual Studio Code", "redirect_uris": ["http://127.0.0.1:33418/", "https://vscode.dev/redirect"], "token_endpoint_auth_method": "none", "application_type": "native"});
    let owner: Value = app.register(&body).await.json().await.unwrap();
    let owner_token = owner["registration_access_token"].as_str().unwrap();

    // Someone else behind the same address sends the same registration.
    let answer = app.register(&body).await;
    assert_eq!(answer.status(), 201);
    let other: Value = answer.json().await.unwrap();
    assert_eq!(other["client_id"], owner["client_id"], "deduplicated");
    assert!(
        other.get("registration_access_token").is_none(),
        "no management token for a client the caller did not create: {other}"
    );
    assert!(
        other.get("registration_client_uri").is_none(),
        "no management URI either: {other}"
    );
    assert_eq!(
        count_rows(&app, "registration_tokens").await,
        1,
        "a deduplicated answer writes no token row"
    );

    // The registrant still manages its client.
    let uri = owner["registration_client_uri"]
        .as_str()
        .unwrap()
        .replace(&app.issuer, &app.address);
    let read = app.http.get(&uri).bearer_auth(owner_token).send().await;
    assert_eq!(read.unwrap().status(), 200);
}

#[tokio::test]
async fn ipv6_sources_are_limited_per_64() {
    let app = spawn_app_with(TestDb::new().await, |config| {
        config.registration.trust_forwarded_for = true;
        config.registration.per_source_limit = 2;
        config.registration.per_source_window_secs = 60;
    })
    .await;
    let now = app.clock_now();
    app.clock.advance(60 - now.rem_euclid(60));
    let body = |i: u32| json!({"redirect_uris": [format!("https://a.example/{i}")], "token_endpoint_auth_method": "none"});
    for (i, source) in ["2001:db8:1:2::1", "2001:db8:1:2::2"].iter().enumerate() {
        let response = register_from(&app, source, &body(i as u32)).await;
        assert_eq!(response.status(), 201, "{source}");
    }
    // A third address of the same /64 is the same source.
    let limited = register_from(&app, "2001:db8:1:2:ffff:ffff:ffff:ffff", &body(3)).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(
        limited.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    // Another /64 is another source, and so is every IPv4 address.
    for source in ["2001:db8:1:3::1", "192.0.2.7"] {
        assert_eq!(
            register_from(&app, source, &body(4)).await.status(),
            201,
            "{source}"
        );
    }
}

#[tokio::test]
async fn junk_registrations_cannot_lock_real_hosts_out() {
    let app = spawn_app_with(TestDb::new().await, |config| {
        config.registration.trust_forwarded_for = true;
        config.registration.max_dynamic_clients = 3;
    })
    .await;
    // A real host's client that a user has authorized.
    let authorized = app
        .register_public("https://claude.ai/api/mcp/auth_callback", "Claude")
        .await;
    let redirect = app
        .log_in_with_dev(
            &mut Browser::new(),
            &authorized,
            "https://claude.ai/api/mcp/auth_callback",
            "alice",
        )
        .await;
    assert!(redirect.contains("code="), "{redirect}");

    // An attacker fills the rest of the cap with clients nobody will ever authorize.
    let mut junk = Vec::new();
    for i in 0..5 {
        app.clock.advance(1);
        let response = register_from(&app, "198.51.100.9", &json!({"redirect_uris": [format!("https://junk.example/{i}")], "token_endpoint_auth_method": "none"})).await;
        assert_eq!(response.status(), 201, "junk {i}");
        let info: Value = response.json().await.unwrap();
        junk.push(info["client_id"].as_str().unwrap().to_owned());
    }

    // A real host still registers at once, not in 24 hours.
    let real = register_from(&app, "192.0.2.1", &json!({"client_name": "Cursor", "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback"], "token_endpoint_auth_method": "none"})).await;
    assert_eq!(real.status(), 201);
    let real: Value = real.json().await.unwrap();
    assert!(client_exists(&app, real["client_id"].as_str().unwrap()).await);
    // Room was made from the oldest never-authorized clients; the authorized one stays.
    assert!(
        client_exists(&app, &authorized).await,
        "authorized clients are never evicted"
    );
    assert!(
        !client_exists(&app, &junk[0]).await,
        "the oldest junk went first"
    );
    assert!(count_rows(&app, "clients").await <= 3, "the cap holds");
}

#[tokio::test]
async fn the_cap_still_refuses_when_authorized_clients_fill_it() {
    let app = spawn_app_with(TestDb::new().await, |config| {
        config.registration.max_dynamic_clients = 2;
    })
    .await;
    for (i, user) in ["alice", "bob"].iter().enumerate() {
        let uri = format!("https://app{i}.example/cb");
        let client = app.register_public(&uri, "App").await;
        let redirect = app
            .log_in_with_dev(&mut Browser::new(), &client, &uri, user)
            .await;
        assert!(redirect.contains("code="), "{redirect}");
    }
    let refused = app
        .register(&json!({"redirect_uris": ["https://a.example/x"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    // Admin-created clients do not count and are still possible.
    let created = app
        .admin(Method::POST, "/admin/v1/clients")
        .json(&json!({"client_name": "Ops", "redirect_uris": ["https://ops.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
}

#[tokio::test]
async fn the_client_cap_holds_under_concurrent_registrations() {
    let app = spawn_app_with(TestDb::new().await, |config| {
        config.registration.max_dynamic_clients = 5;
    })
    .await;
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (http, url) = (app.http.clone(), app.url("/register"));
        let body = json!({"redirect_uris": [format!("https://p.example/{i}")], "token_endpoint_auth_method": "none"});
        requests.spawn(async move {
            let response = http.post(url).json(&body).send().await.unwrap();
            response.status().as_u16()
        });
    }
    // Housekeeping re-counts the table meanwhile, and must not lose a registration in flight.
    let registry = app.registry.clone();
    let housekeeping = tokio::spawn(async move {
        for _ in 0..100 {
            registry.purge_outsider_rows(60).await.unwrap();
        }
    });
    // Every one succeeds: each makes room from the clients nobody has authorized.
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), 201);
    }
    housekeeping.await.unwrap();
    let rows = count_rows(&app, "clients").await;
    assert_eq!(rows, 5, "never above the cap");
    assert_eq!(
        counter(&app, "dynamic_clients").await,
        rows,
        "the counter is exact"
    );
}

#[tokio::test]
async fn authorization_requests_are_limited_per_source() {
    let app = spawn_app().await;
    let redirect_uri = "https://claude.ai/api/mcp/auth_callback";
    let client_id = app.register_public(redirect_uri, "Claude").await;
    let url = app.authorize_url(&client_id, redirect_uri, &[]);
    let mut browser = Browser::new();
    let mut limited = None;
    for i in 0..200 {
        let response = browser.get(&url).await;
        if response.status() == 429 {
            limited = Some((i, response));
            break;
        }
        assert_eq!(response.status(), 200, "request {i}");
    }
    let (sent, response) = limited.expect("one source cannot write pending requests without bound");
    assert!(response.headers().contains_key("retry-after"));
    assert!(response.headers().get("location").is_none());
    assert_eq!(
        count_rows(&app, "authorization_requests").await,
        sent as i64,
        "a refused request writes no row"
    );
}

#[tokio::test]
async fn housekeeping_purges_rate_limit_rows() {
    let app = spawn_app_with(TestDb::new().await, |config| {
        config.registration.reap_interval_secs = 1;
    })
    .await;
    // The per-source limits count in memory now; rows left by an earlier version are purged.
    let db = Database::connect(&app.db.url).await.unwrap();
    db.execute(Statement::from_string(
        db.get_database_backend(),
        format!(
            "INSERT INTO rate_limits (bucket, window_start, count) VALUES ('register:old', {}, 3)",
            app.clock_now()
        ),
    ))
    .await
    .unwrap();
    assert_eq!(count_rows(&app, "rate_limits").await, 1);
    app.register_public("https://a.example/cb", "A").await;
    assert_eq!(
        count_rows(&app, "rate_limits").await,
        1,
        "a registration writes no counter row"
    );
    app.clock.advance(2 * 86_400);
    assert_eq!(
        rows_after_housekeeping(&app, "rate_limits").await,
        0,
        "stale rate-limit windows are deleted"
    );
}

#[tokio::test]
async fn housekeeping_purges_expired_metadata_documents() {
    let served = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let document = served.clone();
    let endpoint = poem::endpoint::make(move |_request: poem::Request| {
        let body = document.lock().unwrap().clone();
        async move {
            poem::Response::builder()
                .content_type("application/json")
                .header("cache-control", "max-age=300")
                .body(body)
        }
    });
    let (address, _server) = crate::ownerrez_double::serve(endpoint);
    let client_id = format!("http://{address}/oauth/client.json");
    let redirect_uri = "https://chatgpt.com/connector/oauth/abc";
    *served.lock().unwrap() = json!({
        "client_id": client_id,
        "redirect_uris": [redirect_uri],
        "token_endpoint_auth_method": "none",
    })
    .to_string();
    let app = spawn_app_with(TestDb::new().await, |config| {
        config.client_metadata_documents.allow_http_loopback = true;
        config.registration.reap_interval_secs = 1;
    })
    .await;
    let page = Browser::new()
        .get(&app.authorize_url(&client_id, redirect_uri, &[]))
        .await;
    assert_eq!(page.status(), 200);
    assert_eq!(count_rows(&app, "client_documents").await, 1, "cached");
    app.clock.advance(301);
    assert_eq!(
        rows_after_housekeeping(&app, "client_documents").await,
        0,
        "expired documents are deleted"
    );
}

/// The value of a row of the `counters` table.
async fn counter(app: &TestApp, name: &str) -> i64 {
    app.registry.store().counter(name).await.unwrap()
}

#[tokio::test]
async fn the_client_counter_follows_every_insert_and_delete_and_is_reconciled() {
    let app = spawn_app_with(TestDb::new().await, |config| {
        config.registration.max_dynamic_clients = 3;
    })
    .await;
    let dynamic = "dynamic_clients";
    let mut infos = Vec::new();
    for i in 0..3 {
        app.clock.advance(1);
        let response = app
            .register(&json!({"redirect_uris": [format!("https://c.example/{i}")], "token_endpoint_auth_method": "none"}))
            .await;
        infos.push(response.json::<Value>().await.unwrap());
    }
    assert_eq!(counter(&app, dynamic).await, 3);
    // A fourth evicts one: still three.
    app.register(
        &json!({"redirect_uris": ["https://c.example/new"], "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(counter(&app, dynamic).await, 3);
    // RFC 7592 delete, admin delete, and admin clients (never counted).
    let uri = infos[1]["registration_client_uri"]
        .as_str()
        .unwrap()
        .replace(&app.issuer, &app.address);
    let token = infos[1]["registration_access_token"].as_str().unwrap();
    let deleted = app
        .http
        .delete(&uri)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let admin_deleted = app
        .admin(
            Method::DELETE,
            &format!(
                "/admin/v1/clients/{}",
                infos[2]["client_id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(admin_deleted.status(), 204);
    app.admin(Method::POST, "/admin/v1/clients")
        .json(&json!({"client_name": "Ops", "redirect_uris": ["https://ops.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(counter(&app, dynamic).await, 1);
    assert_eq!(count_rows(&app, "clients WHERE kind = 'dynamic'").await, 1);

    // Housekeeping puts a counter that went wrong (a fault, a hand edit) right again.
    let db = Database::connect(&app.db.url).await.unwrap();
    db.execute_unprepared("UPDATE counters SET value = 999 WHERE name = 'dynamic_clients'")
        .await
        .unwrap();
    db.close().await.ok();
    app.registry.purge_outsider_rows(60).await.unwrap();
    assert_eq!(counter(&app, dynamic).await, 1);
    assert_eq!(counter(&app, "client_documents").await, 0);
}

#[tokio::test]
async fn the_counters_start_from_the_rows_a_deployed_database_holds() {
    use migration::{Migrator, MigratorTrait};
    let test_db = TestDb::new().await;
    let db = Database::connect(&test_db.url).await.unwrap();
    // A database deployed before the counters: four migrations, clients and a document.
    Migrator::up(&db, Some(4)).await.unwrap();
    // Created now and still fresh, so that housekeeping's first pass at start-up leaves them
    // alone.
    let now = authbridge::clock::Clock::now(&authbridge::clock::SystemClock);
    for (id, kind) in [
        ("client_a", "dynamic"),
        ("client_b", "dynamic"),
        ("ops", "admin"),
    ] {
        db.execute_unprepared(&format!(
            "INSERT INTO clients (client_id, kind, metadata, token_endpoint_auth_method, created_at, updated_at, disabled) VALUES ('{id}', '{kind}', '{{}}', 'none', {now}, {now}, false)"
        ))
        .await
        .unwrap();
    }
    db.execute_unprepared(&format!(
        "INSERT INTO client_documents (url, document, fetched_at, expires_at) VALUES ('https://a.example/c', '{{}}', {now}, {})",
        now + 3600
    ))
    .await
    .unwrap();
    db.close().await.ok();

    let app = spawn_app_with(test_db, |_| {}).await;
    assert_eq!(counter(&app, "dynamic_clients").await, 2);
    assert_eq!(counter(&app, "client_documents").await, 1);
}
