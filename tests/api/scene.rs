//! Where most token tests start: a server in front of the OwnerRez double (sharing its clock),
//! a user logged in through a public client, and the MCP server's confidential client marked as
//! the resource server of [`RESOURCE`].

use authbridge::config::{OwnerRezConfig, ProviderKind, ResourceConfig, Secret};
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::endpoints::{ClientAuth, code_of};
use crate::helpers::{TestApp, TestDb, spawn_app_on};
use crate::ownerrez_double::{CLIENT_SECRET, OwnerRezDouble};

pub const REDIRECT: &str = "https://chatgpt.com/connector/oauth/abc";
pub const RESOURCE: &str = "http://localhost:3000/mcp";

/// The webhook credentials of [`spawn_with_double`]'s server.
pub const WEBHOOK_USER: &str = "ownerrez";
pub const WEBHOOK_PASSWORD: &str = "a-webhook-password-of-decent-length-7f3a";

/// A server in front of the OwnerRez double (sharing its clock), with a second resource.
pub async fn spawn_with_double() -> (TestApp, OwnerRezDouble) {
    spawn_with_double_and(|_| {}).await
}

/// [`spawn_with_double`], with `extra` applied to the configuration last.
pub async fn spawn_with_double_and(
    extra: impl FnOnce(&mut authbridge::config::Config),
) -> (TestApp, OwnerRezDouble) {
    let clock = authbridge::clock::ManualClock::starting_at(authbridge::clock::Clock::now(
        &authbridge::clock::SystemClock,
    ));
    let double = OwnerRezDouble::start_with_clock(clock.clone()).await;
    let upstream = double.config();
    let app = spawn_app_on(TestDb::new().await, clock, move |c| {
        in_front_of_the_double(c, upstream);
        extra(c);
    })
    .await;
    (app, double)
}

/// The configuration of [`spawn_with_double`]'s server, given the double's
/// (`OwnerRezDouble::config`); a second instance on the same database takes it too.
pub fn in_front_of_the_double(c: &mut authbridge::config::Config, upstream: OwnerRezConfig) {
    c.upstream.provider = ProviderKind::Ownerrez;
    c.upstream.ownerrez = upstream;
    c.upstream.ownerrez.client_secret = Some(Secret::new(CLIENT_SECRET));
    c.upstream.ownerrez.webhook_user = Some(WEBHOOK_USER.into());
    c.upstream.ownerrez.webhook_password = Some(Secret::new(WEBHOOK_PASSWORD));
    c.upstream.timeout_ms = 1000;
    c.tokens.refresh_token_idle_ttl_secs = 60 * 24 * 3600;
    c.resources.push(ResourceConfig {
        uri: "https://other.example/mcp".into(),
        name: "Other".into(),
        scopes: vec!["mcp".into()],
        default_scopes: vec!["mcp".into()],
        proxy: None,
    });
}

/// The OwnerRez user logs in through `client_id` (a public client redirecting to REDIRECT) for
/// RESOURCE, and the client redeems the code; returns the token response.
pub async fn log_in_and_redeem(app: &TestApp, double: &OwnerRezDouble, client_id: &str) -> Value {
    log_in_and_redeem_with(app, double, client_id, &[("resource", RESOURCE)]).await
}

/// [`log_in_and_redeem`] with these authorization request parameters (`resource`, `scope`).
pub async fn log_in_and_redeem_with(
    app: &TestApp,
    double: &OwnerRezDouble,
    client_id: &str,
    params: &[(&str, &str)],
) -> Value {
    let authorize = app.authorize_url(client_id, REDIRECT, params);
    let back = app
        .log_in_with_ownerrez(&mut Browser::new(), double, &authorize)
        .await;
    let response = app.redeem_code(client_id, &code_of(&back), REDIRECT).await;
    assert_eq!(response.status(), 200, "the code is redeemed");
    response.json().await.unwrap()
}

/// A confidential admin client, marked as the resource server of `resource` when given;
/// returns its id and secret.
pub async fn resource_server(app: &TestApp, resource: Option<&str>) -> (String, String) {
    let created = app
        .admin_create_client(
            &json!({"client_name": "MCP server", "redirect_uris": ["https://mcp.example/unused"]}),
        )
        .await;
    let id = created["client"]["client_id"].as_str().unwrap().to_owned();
    if let Some(resource) = resource {
        let marked = app.admin_mark_resource_server(&id, resource).await;
        assert_eq!(marked.status(), 200);
    }
    (id, created["client_secret"].as_str().unwrap().to_owned())
}

/// The status and the `error` of a refusal.
pub async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A logged-in user's tokens and the resource server that may exchange and introspect them.
pub struct Setup {
    pub app: TestApp,
    pub double: OwnerRezDouble,
    /// The public client the user logged in through (redirecting to REDIRECT).
    pub client_id: String,
    /// The MCP server's confidential client, marked as the resource server of RESOURCE.
    pub server_id: String,
    pub server_secret: String,
    /// The token response of the user's login.
    pub tokens: Value,
}

/// [`Setup`]: the server in front of the double, a user's login through ChatGPT, the resource
/// server.
pub async fn setup() -> Setup {
    let (app, double) = spawn_with_double().await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    let tokens = log_in_and_redeem(&app, &double, &client_id).await;
    let (server_id, server_secret) = resource_server(&app, Some(RESOURCE)).await;
    Setup {
        app,
        double,
        client_id,
        server_id,
        server_secret,
        tokens,
    }
}

impl Setup {
    /// The user's access token.
    pub fn access(&self) -> &str {
        self.tokens["access_token"].as_str().unwrap()
    }

    /// The resource server exchanges `subject`.
    pub async fn exchange(&self, subject: &str) -> reqwest::Response {
        self.app
            .exchange(&self.server_id, &self.server_secret, subject)
            .await
    }

    /// The resource server introspects `token` (asserting 200).
    pub async fn introspect(&self, token: &str) -> Value {
        self.app
            .introspect_ok(&self.server_id, &self.server_secret, token)
            .await
    }

    /// The user's client refreshes with `refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.app.refresh(&self.client_id, refresh_token).await
    }

    /// The user's client revokes with `form` (RFC 7009).
    pub async fn revoke(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.app
            .revoke(ClientAuth::Public(&self.client_id), form)
            .await
    }

    /// Past OwnerRez's 30-day token lifetime: refreshes our tokens (no upstream call) and
    /// returns the new pair, whose access token makes the next exchange refresh upstream.
    pub async fn tokens_after_upstream_expiry(&self, tokens: &Value) -> Value {
        self.app.clock.advance(30 * 24 * 3600 + 10);
        let refreshed = self
            .refresh(tokens["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(refreshed.status(), 200);
        refreshed.json().await.unwrap()
    }
}
