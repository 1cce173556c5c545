//! Logins that race: the same user signing in through the same client and resource from
//! several browsers at once. Every login completes (no 5xx), and the database holds one user,
//! one live grant and one code per login, all on that grant: nothing half-written.

use serde_json::Value;

use crate::browser::{Browser, dev_login, query_of};
use crate::helpers::{TestApp, spawn_app};
use crate::login::first_user_grants;

const CLIENT_REDIRECT: &str = "https://claude.ai/api/mcp/auth_callback";

/// Brings `count` browsers of `user` up to the upstream's redirect to our callback.
async fn browsers_at_the_callback(
    app: &TestApp,
    client_id: &str,
    user: &str,
    count: usize,
) -> Vec<(Browser, String)> {
    let mut ready = Vec::new();
    for _ in 0..count {
        let mut browser = Browser::new();
        let authorize = app.authorize_url(client_id, CLIENT_REDIRECT, &[]);
        let upstream = app
            .authorize_through_consent(&mut browser, &authorize)
            .await;
        let callback = dev_login(&mut browser, app, &upstream, user).await;
        ready.push((browser, callback.replace(&app.issuer, &app.address)));
    }
    ready
}

/// Follows every callback at the same time; returns each answer's status and `Location`.
async fn follow_all(ready: Vec<(Browser, String)>) -> Vec<(u16, Option<String>)> {
    let tasks: Vec<_> = ready
        .into_iter()
        .map(|(mut browser, callback)| {
            tokio::spawn(async move {
                let response = browser.get(&callback).await;
                let location = response
                    .headers()
                    .get("location")
                    .map(|l| l.to_str().unwrap().to_owned());
                (response.status().as_u16(), location)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_logins_of_one_user_share_one_live_grant() {
    let app = spawn_app().await;
    let client_id = app.register_public(CLIENT_REDIRECT, "Claude").await;
    // The first round creates the user and the grant; the second finds both live.
    for round in ["first logins", "logins with a live grant"] {
        let ready = browsers_at_the_callback(&app, &client_id, "alice", 8).await;
        let answers = follow_all(ready).await;
        for (status, redirect) in &answers {
            assert_eq!(*status, 302, "{round}: every login completes");
            let redirect = redirect.as_deref().unwrap();
            assert!(
                query_of(redirect).contains_key("code"),
                "{round}: {redirect}"
            );
        }
        for (_, redirect) in &answers {
            let code = &query_of(redirect.as_deref().unwrap())["code"];
            let tokens = app.redeem_code(&client_id, code, CLIENT_REDIRECT).await;
            assert_eq!(tokens.status(), 200, "{round}: every code works");
        }
    }
    assert_eq!(app.count_rows("users", "1 = 1").await, 1, "one user");
    let (_, grants) = first_user_grants(&app).await;
    let grants: &Vec<Value> = grants["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 1, "one grant: {grants:?}");
    let grant_id = grants[0]["grant_id"].as_str().unwrap();
    assert_eq!(
        app.count_rows("authorization_codes", &format!("grant_id = '{grant_id}'"))
            .await,
        16,
        "every code on the one grant"
    );
    assert_eq!(app.count_rows("authorization_codes", "1 = 1").await, 16);
}
