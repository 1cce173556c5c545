//! Signing-key lifecycle over real servers: persistence across restarts, rotation published
//! before use, pick-up by another instance, removal after the retired key's tokens expire.

use std::time::Duration;

use crate::helpers::{TestDb, spawn_app, spawn_app_on, spawn_app_with};

#[tokio::test]
async fn restart_keeps_the_same_key() {
    let app = spawn_app().await;
    let before = app.jwks_kids().await;
    let db = app.stop().await;
    let app = spawn_app_with(db, |_| {}).await;
    assert_eq!(app.jwks_kids().await, before);
}

#[tokio::test]
async fn rotation_publishes_first_and_signs_after_the_activation_delay() {
    let app = spawn_app().await;
    let old = app.jwks_kids().await;
    assert_eq!(old.len(), 1);
    assert_eq!(app.keys.signer().unwrap().kid(), old[0]);

    let new = app.keys.rotate().await.unwrap();
    let kids = app.jwks_kids().await;
    assert_eq!(
        kids,
        vec![old[0].clone(), new.kid.clone()],
        "both keys published at once"
    );
    assert_eq!(
        app.keys.signer().unwrap().kid(),
        old[0],
        "the new key does not sign yet"
    );

    let again = app.keys.rotate().await;
    assert!(
        again.is_err(),
        "a second rotation while one is pending is refused"
    );

    app.clock.advance(900 - 1);
    assert_eq!(
        app.keys.signer().unwrap().kid(),
        old[0],
        "one second before activation"
    );
    app.clock.advance(1);
    assert_eq!(
        app.keys.signer().unwrap().kid(),
        new.kid,
        "active at activates_at"
    );
    assert_eq!(
        app.jwks_kids().await.len(),
        2,
        "the retired key stays published"
    );

    // The retired key stays until the longest token it signed can have expired: the longest
    // access-token lifetime a client may be given, plus 60 s of skew.
    let longest = app.tokens.max_access_token_ttl_secs as i64;
    app.clock.advance(longest + 60 - 1);
    app.keys.refresh().await.unwrap();
    assert_eq!(app.jwks_kids().await.len(), 2);
    app.clock.advance(1);
    app.keys.refresh().await.unwrap();
    assert_eq!(
        app.jwks_kids().await,
        vec![new.kid],
        "removed once its tokens have expired"
    );
}

#[tokio::test]
async fn another_instance_picks_up_a_rotation_within_the_refresh_interval() {
    let first = spawn_app().await;
    let old = first.jwks_kids().await;
    // A second instance on the same database, sharing the clock, rotates.
    let db = TestDb {
        url: first.db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let second = spawn_app_on(db, first.clock.clone(), |_| {}).await;
    assert_eq!(
        second.jwks_kids().await,
        old,
        "the second instance uses the existing key"
    );
    let new = second.keys.rotate().await.unwrap();

    // keys.refresh_interval_secs is 1 in tests: the first instance must see it within ~1 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let kids = first.jwks_kids().await;
        if kids.contains(&new.kid) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rotation not picked up: {kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.clock.advance(900);
    assert_eq!(first.keys.signer().unwrap().kid(), new.kid);
    assert_eq!(second.keys.signer().unwrap().kid(), new.kid);
}

#[tokio::test]
async fn a_wrong_encryption_key_stops_start_up() {
    let app = spawn_app().await;
    let db = app.stop().await;
    let mut config = crate::helpers::test_config(&db);
    config.encryption.key = Some(authbridge::config::Secret::new(
        authbridge::vault::generate_key(),
    ));
    let clock = authbridge::clock::ManualClock::starting_at(0);
    let error = authbridge::app::Application::build(config, clock)
        .await
        .err()
        .expect("start-up refused");
    assert!(error.to_string().contains("encryption.key"), "{error}");
}

#[tokio::test]
async fn the_encryption_key_can_be_rotated() {
    let app = spawn_app().await;
    let kids = app.jwks_kids().await;
    let db = app.stop().await;
    let new_key = authbridge::vault::generate_key();
    let app = spawn_app_with(db, |config| {
        config.encryption.previous_key_id = Some(config.encryption.key_id.clone());
        config.encryption.previous_key = config.encryption.key.take();
        config.encryption.key_id = "2".into();
        config.encryption.key = Some(authbridge::config::Secret::new(new_key.clone()));
    })
    .await;
    assert_eq!(app.jwks_kids().await, kids, "same signing key, re-sealed");
    let db = app.stop().await;
    // The previous key is no longer needed: everything was re-sealed with key 2.
    let app = spawn_app_with(db, |config| {
        config.encryption.key_id = "2".into();
        config.encryption.key = Some(authbridge::config::Secret::new(new_key));
    })
    .await;
    assert_eq!(app.jwks_kids().await, kids);
}

/// After an encryption-key rotation, a start-up with the previous key re-wraps every grant's
/// sealed upstream tokens, so that once the previous key is dropped the user's OwnerRez token
/// still opens for token exchange.
#[tokio::test]
async fn rotating_the_encryption_key_re_wraps_the_grants_upstream_tokens() {
    let s = crate::scene::setup().await;
    let (issuer, upstream, clock) = (s.app.issuer.clone(), s.double.config(), s.app.clock.clone());
    let before: serde_json::Value = s.exchange(s.access()).await.json().await.unwrap();
    let (access, server_id, server_secret) = (
        s.access().to_owned(),
        s.server_id.clone(),
        s.server_secret.clone(),
    );
    let db = s.app.stop().await;
    let new_key = authbridge::vault::generate_key();
    let restart = |db, previous: bool| {
        let (issuer, upstream, new_key) = (issuer.clone(), upstream.clone(), new_key.clone());
        spawn_app_on(db, clock.clone(), move |c| {
            c.server.issuer = Some(issuer);
            crate::scene::in_front_of_the_double(c, upstream);
            if previous {
                c.encryption.previous_key_id = Some(c.encryption.key_id.clone());
                c.encryption.previous_key = c.encryption.key.take();
            }
            c.encryption.key_id = "2".into();
            c.encryption.key = Some(authbridge::config::Secret::new(new_key));
        })
    };
    let rotated = restart(db, true).await;
    let db = rotated.stop().await;
    let app = restart(db, false).await;
    let response = app.exchange(&server_id, &server_secret, &access).await;
    assert_eq!(
        response.status(),
        200,
        "the upstream token opens under key 2"
    );
    let after: serde_json::Value = response.json().await.unwrap();
    assert_eq!(after["access_token"], before["access_token"]);
}
