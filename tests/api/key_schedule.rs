//! Scheduled key rotation (`keys.rotate_every_days`) across two instances on one database with
//! a shared manual clock: exactly one new key per period, published before it signs, and the
//! retired key published until the longest token it signed (a per-pattern lifetime) expired.

use std::time::{Duration, Instant};

use authbridge::config::{Config, TokenLifetimeConfig};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::browser::{Browser, query_of};
use crate::helpers::{TestApp, TestDb, spawn_app_on, spawn_app_with};

const DAY: i64 = 86_400;
const ACTIVATION_DELAY: i64 = 900;
/// The longest access-token lifetime in these tests: claude.ai's redirect URI gets it.
const LONG_TTL: i64 = 7200;
const REDIRECT: &str = "https://claude.ai/api/mcp/auth_callback";

fn daily_rotation(config: &mut Config) {
    config.keys.rotate_every_days = 1;
    config.tokens.max_access_token_ttl_secs = LONG_TTL as u64;
    config.token_lifetimes = vec![TokenLifetimeConfig {
        redirect_uri: REDIRECT.into(),
        access_token_ttl_secs: LONG_TTL as u64,
    }];
}

/// A second instance on `first`'s database, sharing its clock.
async fn second_instance(first: &TestApp, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb {
        url: first.db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    spawn_app_on(db, first.clock.clone(), adjust).await
}

async fn wait_until_published(app: &TestApp, kid: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = app.jwks_kids().await;
        if kids.iter().any(|k| k == kid) {
            return;
        }
        assert!(Instant::now() < deadline, "{kid} never published: {kids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn scheduler_audit_entries(app: &TestApp) -> Vec<Value> {
    let page: Value = app.admin_get("/admin/v1/audit?limit=200").await;
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "scheduler")
        .cloned()
        .collect()
}

/// Verifies `token` with the key the served JWKS publishes under its `kid`, as a resource
/// server would; `false` when the kid is not published.
async fn verifies_with_served_jwks(app: &TestApp, token: &str) -> bool {
    let kid = decode_header(token).unwrap().kid.unwrap();
    let jwks: JwkSet = app.get("/jwks.json").await.json().await.unwrap();
    let Some(jwk) = jwks.find(&kid) else {
        return false;
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["http://localhost:3000/mcp"]);
    // The manual clock is ahead of the wall clock the validator reads: only the signature and
    // the key are the question here.
    validation.validate_exp = false;
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).is_ok()
}

/// A long-lived access token for a new login through claude.ai's redirect URI.
async fn long_lived_token(app: &TestApp) -> String {
    let client_id = app.register_public(REDIRECT, "Claude").await;
    let redirect = app
        .log_in_with_dev(&mut Browser::new(), &client_id, REDIRECT, "alice")
        .await;
    let code = query_of(&redirect)["code"].clone();
    let response = app.redeem_code(&client_id, &code, REDIRECT).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], LONG_TTL, "the pattern's lifetime");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn two_instances_rotate_once_per_period_publish_first_and_keep_the_old_key_for_the_longest_token()
 {
    let first = spawn_app_with(TestDb::new().await, daily_rotation).await;
    let second = second_instance(&first, daily_rotation).await;
    let old = first.jwks_kids().await;
    assert_eq!(old.len(), 1);
    assert_eq!(second.jwks_kids().await, old, "one key, shared");

    // Not due until the successor must be published to take over after a day.
    first.clock.advance(DAY - ACTIVATION_DELAY - 1);
    for app in [&first, &second] {
        assert!(
            app.keys.rotate_if_due().await.unwrap().is_none(),
            "not due yet"
        );
    }
    first.clock.advance(1);
    // Both instances check (each on its own schedule, every second in tests, and here at once
    // as well): the database lets exactly one of them rotate.
    let (a, b) = tokio::join!(first.keys.rotate_if_due(), second.keys.rotate_if_due());
    let made: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert!(
        made.len() <= 1,
        "at most one rotation from the race: {made:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while first.count_rows("signing_keys", "1 = 1").await < 2 {
        assert!(Instant::now() < deadline, "no scheduled rotation happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        first.count_rows("signing_keys", "1 = 1").await,
        2,
        "exactly one new key, however many checks ran"
    );
    let new = first
        .jwks_kids()
        .await
        .into_iter()
        .find(|k| *k != old[0])
        .or_else(|| made.first().map(|k| k.kid.clone()))
        .expect("the new key");
    for app in [&first, &second] {
        wait_until_published(app, &new).await;
        assert_eq!(app.jwks_kids().await.len(), 2);
        assert_eq!(
            app.keys.signer().unwrap().kid(),
            old[0],
            "published before it signs"
        );
    }
    let audit = scheduler_audit_entries(&first).await;
    assert_eq!(audit.len(), 1, "one audit entry: {audit:?}");
    assert_eq!(audit[0]["action"], "keys.rotate");
    assert_eq!(audit[0]["summary"]["kid"], new.as_str());
    assert_eq!(audit[0]["summary"]["replaces"], old[0].as_str());

    // The last token the old key signs, with the longest lifetime there is.
    first.clock.advance(ACTIVATION_DELAY - 1);
    let token = long_lived_token(&first).await;
    assert_eq!(decode_header(&token).unwrap().kid.unwrap(), old[0]);
    first.clock.advance(1);
    for app in [&first, &second] {
        assert_eq!(app.keys.signer().unwrap().kid(), new, "the new key signs");
        assert!(
            app.keys.rotate_if_due().await.unwrap().is_none(),
            "no second rotation in the period"
        );
    }

    // Published until that token has expired (plus a minute of clock skew)...
    first.clock.advance(LONG_TTL + 60 - 1);
    for app in [&first, &second] {
        app.keys.refresh().await.unwrap();
        assert!(app.jwks_kids().await.contains(&old[0]), "still published");
        assert!(verifies_with_served_jwks(app, &token).await);
    }
    // ...and not a second longer.
    first.clock.advance(1);
    for app in [&first, &second] {
        app.keys.refresh().await.unwrap();
        assert_eq!(app.jwks_kids().await, vec![new.clone()], "the old key left");
        assert!(!verifies_with_served_jwks(app, &token).await);
    }
    assert_eq!(first.count_rows("signing_keys", "1 = 1").await, 1);
    assert_eq!(scheduler_audit_entries(&first).await.len(), 1);
}

/// Without the background checks (an hour apart here), many concurrent checks on two
/// instances: one rotation. An operator's rotation of the same key loses the same way.
#[tokio::test]
async fn concurrent_checks_on_two_instances_rotate_exactly_once() {
    let quiet = |config: &mut Config| {
        daily_rotation(config);
        config.keys.refresh_interval_secs = 3600;
        config.keys.activation_delay_secs = 3900;
    };
    let first = spawn_app_with(TestDb::new().await, quiet).await;
    let second = second_instance(&first, quiet).await;
    first.clock.advance(DAY);
    let mut checks = Vec::new();
    for app in [&first, &second, &first, &second, &first, &second] {
        let keys = app.keys.clone();
        checks.push(tokio::spawn(async move { keys.rotate_if_due().await }));
    }
    let mut made = Vec::new();
    for check in checks {
        if let Some(key) = check.await.unwrap().unwrap() {
            made.push(key);
        }
    }
    assert_eq!(made.len(), 1, "exactly one check rotated: {made:?}");
    assert_eq!(first.count_rows("signing_keys", "1 = 1").await, 2);
    assert!(
        second.keys.rotate().await.is_err(),
        "a rotation is already pending"
    );
    assert_eq!(first.count_rows("signing_keys", "1 = 1").await, 2);
    assert_eq!(scheduler_audit_entries(&first).await.len(), 1);
}

#[tokio::test]
async fn without_a_schedule_keys_are_rotated_only_on_request() {
    let app = spawn_app_with(TestDb::new().await, |_| {}).await;
    app.clock.advance(400 * DAY);
    assert!(app.keys.rotate_if_due().await.unwrap().is_none());
    assert_eq!(app.jwks_kids().await.len(), 1);
}
