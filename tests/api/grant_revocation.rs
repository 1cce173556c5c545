//! Revocation is final: however a grant is revoked (admin API, OwnerRez webhook, upstream
//! refusal, client disabled, client deleted, all of a client's tokens revoked), the tokens issued
//! before stop working at once (refresh, token exchange, introspection) and stay dead after the
//! same user logs in again through the same client for the same resource, while the new login's
//! tokens work.

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, location, query_of};
use crate::helpers::TestApp;
use crate::ownerrez_double::{Failure, OwnerRezDouble, Route, USER_ID};
use crate::scene::{
    REDIRECT, RESOURCE, WEBHOOK_PASSWORD, WEBHOOK_USER, error_of, log_in_and_redeem,
    resource_server, spawn_with_double,
};

/// The host's client: public, with an operator-chosen id so that it can be created again after
/// its deletion.
const HOST_CLIENT: &str = "host-static";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revocation {
    AdminGrant,
    Webhook,
    UpstreamRefusal,
    ClientDisabled,
    ClientDeleted,
    ClientTokensRevoked,
}

struct Scene {
    app: TestApp,
    double: OwnerRezDouble,
    server_id: String,
    server_secret: String,
}

impl Scene {
    async fn new() -> Self {
        let (app, double) = spawn_with_double().await;
        create_host_client(&app).await;
        let (server_id, server_secret) = resource_server(&app, Some(RESOURCE)).await;
        Self {
            app,
            double,
            server_id,
            server_secret,
        }
    }

    async fn log_in(&self) -> Value {
        log_in_and_redeem(&self.app, &self.double, HOST_CLIENT).await
    }

    /// A login whose code is not redeemed yet.
    async fn pending_code(&self) -> String {
        let mut browser = Browser::new();
        let upstream = self
            .app
            .authorize_through_consent(
                &mut browser,
                &self
                    .app
                    .authorize_url(HOST_CLIENT, REDIRECT, &[("resource", RESOURCE)]),
            )
            .await;
        let callback = self.double.log_in(&upstream).await;
        let redirect = location(
            &browser
                .get(
                    &callback
                        .location
                        .replace(&self.app.issuer, &self.app.address),
                )
                .await,
        );
        query_of(&redirect)["code"].clone()
    }

    async fn refresh(&self, tokens: &Value) -> reqwest::Response {
        self.app
            .http
            .post(self.app.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", HOST_CLIENT),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap()
    }

    async fn exchange(&self, tokens: &Value) -> reqwest::Response {
        self.app
            .exchange(
                &self.server_id,
                &self.server_secret,
                tokens["access_token"].as_str().unwrap(),
            )
            .await
    }

    async fn introspect(&self, tokens: &Value) -> Value {
        let token = tokens["access_token"].as_str().unwrap();
        self.app
            .introspect_ok(&self.server_id, &self.server_secret, token)
            .await
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> u16 {
        let response = self.app.admin_call(method, path, body.as_ref()).await;
        response.status().as_u16()
    }

    /// The user's one live grant.
    async fn live_grant_id(&self) -> String {
        let (_, grants) = crate::login::first_user_grants(&self.app).await;
        let live: Vec<&Value> = grants["grants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["revoked_at"].is_null())
            .collect();
        assert_eq!(live.len(), 1, "{grants}");
        live[0]["grant_id"].as_str().unwrap().to_owned()
    }

    /// Revokes the way `how` says; returns the tokens the host held at that moment.
    async fn revoke(&self, how: Revocation, tokens: Value) -> Value {
        let client = format!("/admin/v1/clients/{HOST_CLIENT}");
        match how {
            Revocation::AdminGrant => {
                let grant_id = self.live_grant_id().await;
                let path = format!("/admin/v1/grants/{grant_id}/revoke");
                assert_eq!(self.admin(Method::POST, &path, None).await, 200);
            }
            Revocation::Webhook => {
                let event = json!({"id": 7, "user_id": USER_ID, "action": "application_authorization_revoked", "entity_type": "user", "entity_id": USER_ID});
                let response = self
                    .app
                    .http
                    .post(self.app.url("/upstream/webhook"))
                    .basic_auth(WEBHOOK_USER, Some(WEBHOOK_PASSWORD))
                    .json(&event)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
            Revocation::UpstreamRefusal => {
                // OwnerRez's token expires; the host refreshes ours, then OwnerRez refuses
                // the upstream refresh with invalid_grant.
                self.app.clock.advance(30 * 24 * 3600 + 10);
                let refreshed = self.refresh(&tokens).await;
                assert_eq!(refreshed.status(), 200);
                let tokens: Value = refreshed.json().await.unwrap();
                self.double
                    .set_failure(Route::Token, Some(Failure::InvalidGrant));
                assert_eq!(
                    error_of(self.exchange(&tokens).await).await,
                    (400, "invalid_grant".into())
                );
                self.double.set_failure(Route::Token, None);
                return tokens;
            }
            Revocation::ClientDisabled => {
                let body = json!({"disabled": true});
                assert_eq!(self.admin(Method::PATCH, &client, Some(body)).await, 200);
            }
            Revocation::ClientDeleted => {
                assert_eq!(self.admin(Method::DELETE, &client, None).await, 204);
            }
            Revocation::ClientTokensRevoked => {
                let path = format!("{client}/revoke-tokens");
                assert_eq!(self.admin(Method::POST, &path, None).await, 204);
            }
        }
        tokens
    }

    /// What the operator does before the client can log anyone in again.
    async fn restore_client(&self, how: Revocation) {
        match how {
            Revocation::ClientDisabled => {
                let client = format!("/admin/v1/clients/{HOST_CLIENT}");
                let body = json!({"disabled": false});
                assert_eq!(self.admin(Method::PATCH, &client, Some(body)).await, 200);
            }
            Revocation::ClientDeleted => create_host_client(&self.app).await,
            _ => {}
        }
    }

    /// The old tokens fail everywhere: refresh with `refresh_error`, token exchange with
    /// `exchange_error`, introspection inactive.
    async fn assert_dead(
        &self,
        how: Revocation,
        old: &Value,
        refresh_error: (u16, &str),
        exchange_error: &str,
    ) {
        assert_eq!(
            error_of(self.refresh(old).await).await,
            (refresh_error.0, refresh_error.1.to_owned()),
            "{how:?}: refresh with the old refresh token"
        );
        assert_eq!(
            error_of(self.exchange(old).await).await,
            (400, exchange_error.to_owned()),
            "{how:?}: token exchange of the old access token"
        );
        assert_eq!(
            self.introspect(old).await,
            json!({"active": false}),
            "{how:?}: introspection of the old access token"
        );
    }
}

async fn create_host_client(app: &TestApp) {
    let created = app
        .admin(Method::POST, "/admin/v1/clients")
        .json(&json!({
            "client_id": HOST_CLIENT,
            "client_name": "A host",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
}

async fn revocation_sticks(how: Revocation) {
    let scene = Scene::new().await;
    let tokens = scene.log_in().await;
    assert_eq!(scene.exchange(&tokens).await.status(), 200);
    assert_eq!(scene.introspect(&tokens).await["active"], true);
    let pending = scene.pending_code().await;

    let old = scene.revoke(how, tokens).await;
    let client_gone = matches!(how, Revocation::ClientDisabled | Revocation::ClientDeleted);
    let refresh_error = if client_gone {
        (401, "invalid_client")
    } else {
        (400, "invalid_grant")
    };
    scene
        .assert_dead(how, &old, refresh_error, "invalid_grant")
        .await;

    scene.restore_client(how).await;
    assert_eq!(
        error_of(scene.app.redeem_code(HOST_CLIENT, &pending, REDIRECT).await).await,
        (400, "invalid_grant".into()),
        "{how:?}: a code issued before the revocation"
    );
    let new = scene.log_in().await;
    scene
        .assert_dead(how, &old, (400, "invalid_grant"), "invalid_request")
        .await;

    assert_eq!(
        scene.exchange(&new).await.status(),
        200,
        "{how:?}: the new login's access token is exchanged"
    );
    assert_eq!(scene.introspect(&new).await["active"], true, "{how:?}");
    assert_eq!(
        scene.refresh(&new).await.status(),
        200,
        "{how:?}: the new login's refresh token works"
    );
}

#[tokio::test]
async fn a_grant_revoked_by_the_admin_api_stays_revoked() {
    revocation_sticks(Revocation::AdminGrant).await;
}

#[tokio::test]
async fn a_grant_revoked_by_the_ownerrez_webhook_stays_revoked() {
    revocation_sticks(Revocation::Webhook).await;
}

#[tokio::test]
async fn a_grant_revoked_by_an_upstream_invalid_grant_stays_revoked() {
    revocation_sticks(Revocation::UpstreamRefusal).await;
}

#[tokio::test]
async fn a_disabled_clients_tokens_stay_revoked() {
    revocation_sticks(Revocation::ClientDisabled).await;
}

#[tokio::test]
async fn a_deleted_clients_tokens_stay_revoked() {
    revocation_sticks(Revocation::ClientDeleted).await;
}

#[tokio::test]
async fn revoking_all_of_a_clients_tokens_sticks() {
    revocation_sticks(Revocation::ClientTokensRevoked).await;
}

/// A database whose grants were revoked (or deleted with their client) by the earlier code,
/// which left their families live: upgrading revokes those families and deny-lists their access
/// tokens, and from then on a user may hold a revoked grant and a live one for the same client.
#[tokio::test]
async fn upgrading_revokes_what_earlier_revocations_left_live() {
    use migration::MigratorTrait;
    let db = crate::helpers::TestDb::new().await;
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    migration::Migrator::up(&conn, Some(4)).await.unwrap();
    let conn = &conn;
    let run = |sql: String| async move { execute(conn, sql).await.unwrap() };
    run("INSERT INTO users VALUES ('usr_1', 'dev', 'alice', NULL, 1, 1)".into()).await;
    for (grant, revoked_at) in [("grt_revoked", "500"), ("grt_live", "NULL")] {
        let resource = format!("https://{grant}.example/mcp");
        run(format!("INSERT INTO grants VALUES ('{grant}', 'usr_1', 'client_1', '{resource}', 'mcp', NULL, NULL, 1, 1, {revoked_at}, NULL)")).await;
    }
    for (family, grant) in [
        ("fam_revoked", "grt_revoked"),
        ("fam_live", "grt_live"),
        ("fam_orphan", "grt_deleted"),
    ] {
        run(format!("INSERT INTO refresh_families VALUES ('{family}', '{grant}', 'client_1', NULL, 1, 100, 99999999999, NULL)")).await;
        run(format!("INSERT INTO refresh_tokens VALUES ('hash_{family}', '{family}', 'mcp', 'jti_{family}', 99999999999, 100, 99999999999, NULL, NULL)")).await;
    }
    migration::Migrator::up(conn, None).await.unwrap();

    let revoked_at = |family: &'static str| async move {
        let sql = format!("SELECT revoked_at FROM refresh_families WHERE family_id = '{family}'");
        query(conn, sql).await[0]
            .try_get::<Option<i64>>("", "revoked_at")
            .unwrap()
    };
    assert_eq!(
        revoked_at("fam_revoked").await,
        Some(500),
        "as of its grant's revocation"
    );
    assert_eq!(
        revoked_at("fam_orphan").await,
        Some(100),
        "its grant is gone"
    );
    assert_eq!(revoked_at("fam_live").await, None);
    let denied: Vec<String> = query(
        conn,
        "SELECT jti FROM revoked_access_tokens ORDER BY jti".into(),
    )
    .await
    .iter()
    .map(|row| row.try_get("", "jti").unwrap())
    .collect();
    assert_eq!(denied, ["jti_fam_orphan", "jti_fam_revoked"]);

    // One live grant per user, client and resource; revoked ones beside it.
    let resource = "https://grt_revoked.example/mcp";
    let insert = |id: &str| {
        format!(
            "INSERT INTO grants VALUES ('{id}', 'usr_1', 'client_1', '{resource}', 'mcp', NULL, NULL, 1, 1, NULL, NULL)"
        )
    };
    run(insert("grt_relogin")).await;
    assert!(
        execute(conn, insert("grt_twice")).await.is_err(),
        "a second live grant is refused"
    );
}

async fn execute(
    conn: &sea_orm::DatabaseConnection,
    sql: String,
) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
    use sea_orm::ConnectionTrait;
    conn.execute(sea_orm::Statement::from_string(
        conn.get_database_backend(),
        sql,
    ))
    .await
}

async fn query(conn: &sea_orm::DatabaseConnection, sql: String) -> Vec<sea_orm::QueryResult> {
    use sea_orm::ConnectionTrait;
    conn.query_all(sea_orm::Statement::from_string(
        conn.get_database_backend(),
        sql,
    ))
    .await
    .unwrap()
}
