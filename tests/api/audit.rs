//! The audit trail: every change of a client, grant or key, with who made it, the source
//! address when a request made it, and what changed, read back through the admin API; and its
//! retention.

use serde_json::{Value, json};

use crate::cli::{authbridge, database_env};
use crate::endpoints::ClientAuth;
use crate::helpers::{TestApp, TestDb, spawn_app, spawn_app_with};
use crate::ownerrez_double::USER_ID;
use crate::scene::{
    REDIRECT, WEBHOOK_PASSWORD, WEBHOOK_USER, log_in_and_redeem, spawn_with_double,
};

/// The one entry with this action.
async fn only_entry(app: &TestApp, action: &str) -> Value {
    let entries = app.audit_entries_of(action).await;
    assert_eq!(entries.len(), 1, "one {action} entry: {entries:?}");
    entries.into_iter().next().unwrap()
}

fn assert_entry(entry: &Value, actor: &str, client_id: Option<&str>, source: Option<&str>) {
    assert_eq!(entry["actor"], actor, "{entry}");
    assert_eq!(entry["client_id"].as_str(), client_id, "{entry}");
    assert_eq!(entry["source_address"].as_str(), source, "{entry}");
    assert!(entry["at"].as_i64().unwrap() > 0, "{entry}");
}

#[tokio::test]
async fn registrations_and_rfc_7592_updates_and_deletions_are_audited_with_their_source() {
    let app = spawn_app().await;
    let registered = app
        .register(&json!({"client_name": "Before", "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(registered.status(), 201);
    let info: Value = registered.json().await.unwrap();
    let client_id = info["client_id"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    let uri = app.url(&format!("/register/{client_id}"));

    let created = only_entry(&app, "client.register").await;
    assert_entry(&created, "registrant", Some(client_id), Some("127.0.0.1"));
    assert_eq!(created["summary"]["after"]["client_name"], "Before");
    assert!(
        !created.to_string().contains(token),
        "no registration access token in the trail"
    );

    let updated = app
        .http
        .put(&uri)
        .bearer_auth(token)
        .json(&json!({"client_id": client_id, "client_name": "After", "redirect_uris": ["https://a.example/cb2"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let update = only_entry(&app, "client.update").await;
    assert_entry(&update, "registrant", Some(client_id), Some("127.0.0.1"));
    assert_eq!(update["summary"]["before"]["client_name"], "Before");
    assert_eq!(update["summary"]["after"]["client_name"], "After");
    assert_eq!(
        update["summary"]["after"]["redirect_uris"],
        json!(["https://a.example/cb2"])
    );

    // A refused update changes nothing and records nothing.
    let refused = app
        .http
        .put(&uri)
        .bearer_auth("reg_wrong")
        .json(&json!({"client_id": client_id, "redirect_uris": ["https://evil.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(app.audit_entries_of("client.update").await.len(), 1);

    let deleted = app
        .http
        .delete(&uri)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let delete = only_entry(&app, "client.delete").await;
    assert_entry(&delete, "registrant", Some(client_id), Some("127.0.0.1"));
    assert_eq!(delete["summary"]["before"]["client_name"], "After");
}

async fn send_webhook(app: &TestApp, event: &Value) -> u16 {
    let response = app
        .http
        .post(app.url("/upstream/webhook"))
        .basic_auth(WEBHOOK_USER, Some(WEBHOOK_PASSWORD))
        .json(event)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test]
async fn the_upstream_webhook_revocations_are_audited_per_grant() {
    let (app, double) = spawn_with_double().await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    log_in_and_redeem(&app, &double, &client_id).await;
    let login = only_entry(&app, "grant.create").await;
    assert_entry(&login, "user", Some(&client_id), Some("127.0.0.1"));
    let grant_id = login["summary"]["grant_id"].as_str().unwrap().to_owned();

    let event = json!({"id": 7, "user_id": USER_ID, "action": "application_authorization_revoked", "entity_type": "user", "entity_id": USER_ID});
    assert_eq!(send_webhook(&app, &event).await, 200);
    let revoked = only_entry(&app, "grant.revoke").await;
    assert_entry(&revoked, "upstream", Some(&client_id), Some("127.0.0.1"));
    assert_eq!(revoked["summary"]["grant_id"], grant_id.as_str());

    // The same webhook again finds nothing live: nothing more is recorded.
    assert_eq!(send_webhook(&app, &event).await, 200);
    assert_eq!(app.audit_entries_of("grant.revoke").await.len(), 1);
}

#[tokio::test]
async fn refresh_token_reuse_and_rfc_7009_revocations_are_audited() {
    let (app, double) = spawn_with_double().await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    let tokens = log_in_and_redeem(&app, &double, &client_id).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(app.refresh(&client_id, &first).await.status(), 200);
    app.clock
        .advance(app.tokens.refresh_token_grace_secs as i64 + 1);
    assert_eq!(app.refresh(&client_id, &first).await.status(), 400, "reuse");
    let reuse = only_entry(&app, "grant.revoke_family").await;
    assert_entry(&reuse, "client", Some(&client_id), Some("127.0.0.1"));
    assert!(
        reuse["summary"]["reason"]
            .as_str()
            .unwrap()
            .contains("grace window")
    );

    let tokens = log_in_and_redeem(&app, &double, &client_id).await;
    let revoked = app
        .revoke(
            ClientAuth::Public(&client_id),
            &[("token", tokens["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    let entries = app.audit_entries_of("grant.revoke_family").await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_entry(&entries[0], "client", Some(&client_id), Some("127.0.0.1"));
    assert!(
        entries[0]["summary"]["reason"]
            .as_str()
            .unwrap()
            .contains("RFC 7009")
    );
}

#[tokio::test]
async fn reaper_deletions_are_audited_per_client() {
    let app = spawn_app().await;
    let client_id = app
        .register_public("https://a.example/cb", "Abandoned")
        .await;
    app.clock.advance(24 * 3600 + 1);
    assert_eq!(app.reap().await, 1);
    let reaped = only_entry(&app, "client.reap").await;
    assert_entry(&reaped, "reaper", Some(&client_id), None);
    assert_eq!(reaped["summary"]["reap_unauthorized_after_secs"], 24 * 3600);
}

#[tokio::test]
async fn housekeeping_purges_are_audited_and_old_entries_are_purged() {
    let app = spawn_app_with(TestDb::new().await, |c| c.audit.retention_days = 1).await;
    let client_id = app.register_public("https://a.example/cb", "Old").await;
    assert_eq!(app.audit_entries_of("client.register").await.len(), 1);
    // The per-source limits count in memory: a rate-limit row is one an earlier version left.
    let db = sea_orm::Database::connect(&app.db.url).await.unwrap();
    sea_orm::ConnectionTrait::execute(
        &db,
        sea_orm::Statement::from_string(
            sea_orm::ConnectionTrait::get_database_backend(&db),
            format!(
                "INSERT INTO rate_limits (bucket, window_start, count) VALUES ('register:old', {}, 1)",
                app.clock_now()
            ),
        ),
    )
    .await
    .unwrap();

    // Nothing expired yet: a run that deletes nothing records nothing.
    let purged = app.run_housekeeping().await;
    assert_eq!(purged.audit_entries, 0);
    assert!(app.audit_entries_of("housekeeping.purge").await.is_empty());

    app.clock.advance(2 * 24 * 3600);
    let purged = app.run_housekeeping().await;
    assert_eq!(purged.reaped_clients, 1, "the never-authorized client");
    assert!(purged.outsider_rows >= 1, "the stale rate-limit window");
    assert_eq!(
        purged.audit_entries, 1,
        "the registration entry, two days old"
    );
    assert!(
        app.audit_entries_of("client.register").await.is_empty(),
        "entries past the retention are gone"
    );
    let reaped = only_entry(&app, "client.reap").await;
    assert_eq!(
        reaped["client_id"],
        client_id.as_str(),
        "recorded now, so kept"
    );
    let run = only_entry(&app, "housekeeping.purge").await;
    assert_entry(&run, "housekeeping", None, None);
    assert_eq!(run["summary"]["audit_entries"], 1);
    assert_eq!(run["summary"]["audit_retention_days"], 1);
    assert!(
        run["summary"]["rate_limits_and_metadata_documents"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[tokio::test]
async fn audit_entries_are_kept_forever_with_a_zero_retention() {
    let app = spawn_app_with(TestDb::new().await, |c| c.audit.retention_days = 0).await;
    app.register_public("https://a.example/cb", "Kept").await;
    app.clock.advance(3 * 365 * 24 * 3600);
    assert_eq!(app.run_housekeeping().await.audit_entries, 0);
    assert_eq!(app.audit_entries_of("client.register").await.len(), 1);
}

#[tokio::test]
async fn a_key_rotation_from_the_cli_is_audited() {
    let db = TestDb::new().await;
    let rotate = authbridge(
        db.dir.path(),
        &["keys", "rotate", "--json"],
        &database_env(&db),
    );
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    let answer: Value = serde_json::from_slice(&rotate.stdout).unwrap();
    let kid = answer["new_key"]["kid"].as_str().unwrap().to_owned();

    let app = spawn_app_with(db, |_| {}).await;
    let rotation = only_entry(&app, "keys.rotate").await;
    assert_entry(&rotation, "cli", None, None);
    assert_eq!(rotation["summary"]["kid"], kid.as_str());
    assert!(rotation["summary"]["activates_at"].as_i64().is_some());
}

#[tokio::test]
async fn removed_signing_keys_are_audited_once() {
    let app = spawn_app().await;
    let old = app.jwks_kids().await;
    app.keys.rotate().await.unwrap();
    // Active after the activation delay; the old key goes once the longest token it can have
    // signed has expired (tokens.max_access_token_ttl_secs plus 60 s).
    let longest = app.tokens.max_access_token_ttl_secs as i64;
    app.clock.advance(900 + longest + 60);
    app.keys.refresh().await.unwrap();
    app.keys.refresh().await.unwrap();
    let removed = only_entry(&app, "keys.remove").await;
    assert_entry(&removed, "server", None, None);
    assert_eq!(removed["summary"]["kids"], json!(old));
}

#[tokio::test]
async fn a_client_evicted_by_the_cap_is_audited() {
    let app = spawn_app_with(TestDb::new().await, |c| {
        c.registration.max_dynamic_clients = 1;
    })
    .await;
    let first = app.register_public("https://a.example/cb", "First").await;
    app.register_public("https://b.example/cb", "Second").await;
    let evicted = only_entry(&app, "client.evict").await;
    assert_entry(&evicted, "server", Some(&first), None);
}

#[tokio::test]
async fn a_replayed_authorization_code_is_audited() {
    let app = spawn_app().await;
    let redirect = "https://a.example/cb";
    let client_id = app.register_public(redirect, "App").await;
    let mut browser = crate::browser::Browser::new();
    let back = app
        .log_in_with_dev(&mut browser, &client_id, redirect, "ann")
        .await;
    let code = crate::browser::query_of(&back)["code"].clone();
    let first = app.redeem_code(&client_id, &code, redirect).await;
    assert_eq!(first.status(), 200);
    let replay = app.redeem_code(&client_id, &code, redirect).await;
    assert_eq!(replay.status(), 400);
    let revoked = only_entry(&app, "grant.revoke_code_tokens").await;
    assert_entry(&revoked, "client", Some(&client_id), None);
}

#[tokio::test]
async fn admin_api_changes_carry_the_token_name_and_the_source_address() {
    let app = spawn_app().await;
    let created = app
        .admin(reqwest::Method::POST, "/admin/v1/clients")
        .json(&json!({"client_name": "Ops", "redirect_uris": ["https://ops.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let client_id = created["client"]["client_id"].as_str().unwrap();
    let rotated = app
        .admin(reqwest::Method::POST, "/admin/v1/keys/rotate")
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 201);
    let create = only_entry(&app, "client.create").await;
    assert_entry(&create, "test-admin", Some(client_id), Some("127.0.0.1"));
    let rotation = only_entry(&app, "keys.rotate").await;
    assert_entry(&rotation, "test-admin", None, Some("127.0.0.1"));
}

#[tokio::test]
async fn a_grant_the_upstream_refuses_to_refresh_is_audited() {
    let (app, double) = spawn_with_double().await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    let tokens = log_in_and_redeem(&app, &double, &client_id).await;
    let (server_id, server_secret) =
        crate::scene::resource_server(&app, Some(crate::scene::RESOURCE)).await;
    // OwnerRez's token expires; the host refreshes ours, then OwnerRez refuses the upstream
    // refresh with invalid_grant.
    app.clock.advance(30 * 24 * 3600 + 10);
    let refreshed = app
        .refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refreshed.status(), 200);
    let tokens: Value = refreshed.json().await.unwrap();
    double.set_failure(
        crate::ownerrez_double::Route::Token,
        Some(crate::ownerrez_double::Failure::InvalidGrant),
    );
    let access = tokens["access_token"].as_str().unwrap();
    let exchanged = app.exchange(&server_id, &server_secret, access).await;
    assert_eq!(exchanged.status(), 400);
    let revoked = only_entry(&app, "grant.revoke").await;
    assert_entry(&revoked, "upstream", Some(&client_id), None);
    assert!(
        revoked["summary"]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid_grant")
    );
}
