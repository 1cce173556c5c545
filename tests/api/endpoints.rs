//! [`TestApp`], one method per endpoint, so that a test reads as the flow it pins:
//! `app.register_public(…)`, `app.log_in_with_dev(…)`, `app.redeem_code(…)`, `app.refresh(…)`,
//! `app.exchange(…)`, `app.revoke(…)`, `app.introspect(…)`, `app.admin_…(…)`.
//!
//! A method that a test uses to look at refusals returns the raw response; one that is only a
//! step on the way to what a test checks (registering, logging in, an admin set-up call)
//! asserts that it succeeded and returns what the next step needs.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::browser::{
    Browser, CHALLENGE, VERIFIER, dev_login, hidden_field, location, query_of, see_other,
};
use crate::helpers::TestApp;
use crate::ownerrez_double::OwnerRezDouble;

/// RFC 8693's grant type.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693's token type of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// How a call to `/token`, `/revoke` or `/introspect` names its client.
#[derive(Clone, Copy, Debug)]
pub enum ClientAuth<'a> {
    /// A public client: `client_id` in the form.
    Public(&'a str),
    /// A confidential client with HTTP Basic (`client_secret_basic`).
    Basic(&'a str, &'a str),
    /// No client at all.
    Anonymous,
}

/// `/register` (RFC 7591).
impl TestApp {
    /// Registers `body`, asserting 201; returns the client information.
    pub async fn register_client(&self, body: &Value) -> Value {
        let response = self.register(body).await;
        assert_eq!(response.status(), 201, "registration of {body}");
        response.json().await.expect("a JSON body")
    }

    /// Registers a public client with one redirect URI; returns its client_id.
    pub async fn register_public(&self, redirect_uri: &str, name: &str) -> String {
        let info = self
            .register_client(&json!({
                "client_name": name,
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "none",
            }))
            .await;
        info["client_id"].as_str().unwrap().to_owned()
    }
}

/// `/register/{client_id}` (RFC 7592): the registrant reads, replaces or deletes its client.
impl TestApp {
    /// `method /register/{client_id}` with `token` as the bearer (none when `None`) and `body`
    /// as JSON when given.
    pub async fn manage_registration(
        &self,
        method: Method,
        client_id: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .http
            .request(method, self.url(&format!("/register/{client_id}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }
}

/// `/authorize`, the consent page, the upstream login and the way back.
impl TestApp {
    /// An authorization URL with PKCE (S256, [`CHALLENGE`]), `state=st-1` and any `extra`
    /// parameters.
    pub fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let mut url = url::Url::parse(&self.url("/authorize")).unwrap();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("code_challenge", CHALLENGE)
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", "st-1");
            for (name, value) in extra {
                query.append_pair(name, value);
            }
        }
        url.into()
    }

    /// Opens the authorization URL `authorize` in `browser` and approves the consent page;
    /// returns where the answer sends the browser (the upstream's login).
    pub async fn authorize_through_consent(
        &self,
        browser: &mut Browser,
        authorize: &str,
    ) -> String {
        let page = browser.get(authorize).await;
        assert_eq!(page.status(), 200, "the consent page");
        let html = page.text().await.unwrap();
        let request = hidden_field(&html, "request");
        let csrf = hidden_field(&html, "csrf");
        let fields = [
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("decision", "approve"),
        ];
        see_other(
            &browser
                .post_form(&self.url("/authorize/consent"), &fields)
                .await,
        )
    }

    /// Follows the upstream's redirect to our callback; returns the redirect to the client.
    pub async fn back_from_upstream(&self, browser: &mut Browser, callback: &str) -> String {
        let response = browser
            .get(&callback.replace(&self.issuer, &self.address))
            .await;
        location(&response)
    }

    /// A whole login of `user` through `client_id` with the dev upstream (consent, the dev
    /// login page, the callback); returns the final redirect to the client.
    pub async fn log_in_with_dev(
        &self,
        browser: &mut Browser,
        client_id: &str,
        redirect_uri: &str,
        user: &str,
    ) -> String {
        let authorize = self.authorize_url(client_id, redirect_uri, &[]);
        self.log_in_with_dev_at(browser, &authorize, user).await
    }

    /// [`TestApp::log_in_with_dev`] from the authorization URL `authorize`.
    pub async fn log_in_with_dev_at(
        &self,
        browser: &mut Browser,
        authorize: &str,
        user: &str,
    ) -> String {
        let upstream = self.authorize_through_consent(browser, authorize).await;
        let callback = dev_login(browser, self, &upstream, user).await;
        self.back_from_upstream(browser, &callback).await
    }

    /// A whole login at the OwnerRez double: consent, the double's login, the callback;
    /// returns the final redirect to the client.
    pub async fn log_in_with_ownerrez(
        &self,
        browser: &mut Browser,
        double: &OwnerRezDouble,
        authorize: &str,
    ) -> String {
        let upstream = self.authorize_through_consent(browser, authorize).await;
        let callback = double.log_in(&upstream).await;
        self.back_from_upstream(browser, &callback.location).await
    }
}

/// The `code` of a redirect to the client (panics naming the redirect when it has none).
pub fn code_of(redirect: &str) -> String {
    query_of(redirect)
        .get("code")
        .unwrap_or_else(|| panic!("no code: {redirect}"))
        .clone()
}

/// `/token`: the authorization code, refresh and token exchange grants.
impl TestApp {
    /// POSTs `form` to `path` as `client`.
    pub async fn post_form_as(
        &self,
        path: &str,
        client: ClientAuth<'_>,
        form: &[(&str, &str)],
    ) -> Response {
        let mut request = self.http.post(self.url(path));
        let mut fields: Vec<(&str, &str)> = Vec::with_capacity(form.len() + 1);
        match client {
            ClientAuth::Public(client_id) => fields.push(("client_id", client_id)),
            ClientAuth::Basic(client_id, secret) => {
                request = request.basic_auth(client_id, Some(secret));
            }
            ClientAuth::Anonymous => {}
        }
        fields.extend_from_slice(form);
        request.form(&fields).send().await.expect("request sent")
    }

    /// POSTs `form` to `/token` as it is (the client, if any, named in the form).
    pub async fn token(&self, form: &[(&str, &str)]) -> Response {
        self.post_form_as("/token", ClientAuth::Anonymous, form)
            .await
    }

    /// A public client redeems `code` (with the [`VERIFIER`] of [`CHALLENGE`]).
    pub async fn redeem_code(&self, client_id: &str, code: &str, redirect_uri: &str) -> Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", VERIFIER),
        ])
        .await
    }

    /// A public client's `refresh_token` grant.
    pub async fn refresh(&self, client_id: &str, refresh_token: &str) -> Response {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// A resource server (HTTP Basic) exchanges our access token `subject` (RFC 8693).
    pub async fn exchange(&self, client_id: &str, secret: &str, subject: &str) -> Response {
        let form = [
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ];
        self.post_form_as("/token", ClientAuth::Basic(client_id, secret), &form)
            .await
    }
}

/// `/revoke` (RFC 7009) and `/introspect` (RFC 7662).
impl TestApp {
    /// POSTs `form` to `/revoke` as `client`.
    pub async fn revoke(&self, client: ClientAuth<'_>, form: &[(&str, &str)]) -> Response {
        self.post_form_as("/revoke", client, form).await
    }

    /// POSTs `token=…` to `/introspect` as `client`.
    pub async fn introspect(&self, client: ClientAuth<'_>, token: &str) -> Response {
        self.post_form_as("/introspect", client, &[("token", token)])
            .await
    }

    /// [`TestApp::introspect`] by a resource server, asserting 200; returns the answer.
    pub async fn introspect_ok(&self, client_id: &str, secret: &str, token: &str) -> Value {
        let response = self
            .introspect(ClientAuth::Basic(client_id, secret), token)
            .await;
        assert_eq!(response.status(), 200, "introspection");
        response.json().await.expect("a JSON body")
    }
}

/// The admin API (`/admin/v1/…`), with the test admin token.
impl TestApp {
    /// Sends `method path` (with `body` as JSON when given); returns the raw response.
    pub async fn admin_call(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut request = self.admin(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    /// `GET path`, asserting 200; returns the JSON answer.
    pub async fn admin_get(&self, path: &str) -> Value {
        let response = self.admin_call(Method::GET, path, None).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    /// `POST /admin/v1/clients`, asserting 201; returns the answer (`client`, `client_secret`).
    pub async fn admin_create_client(&self, body: &Value) -> Value {
        let response = self
            .admin_call(Method::POST, "/admin/v1/clients", Some(body))
            .await;
        assert_eq!(response.status(), 201, "POST /admin/v1/clients {body}");
        response.json().await.expect("a JSON body")
    }

    /// `PATCH /admin/v1/clients/{client_id}` with `body`.
    pub async fn admin_update_client(&self, client_id: &str, body: &Value) -> Response {
        let path = format!("/admin/v1/clients/{client_id}");
        self.admin_call(Method::PATCH, &path, Some(body)).await
    }

    /// `DELETE /admin/v1/clients/{client_id}`.
    pub async fn admin_delete_client(&self, client_id: &str) -> Response {
        let path = format!("/admin/v1/clients/{client_id}");
        self.admin_call(Method::DELETE, &path, None).await
    }

    /// `PUT /admin/v1/clients/{client_id}/resource-server`: makes the client the resource
    /// server of `resource`.
    pub async fn admin_mark_resource_server(&self, client_id: &str, resource: &str) -> Response {
        let path = format!("/admin/v1/clients/{client_id}/resource-server");
        self.admin_call(Method::PUT, &path, Some(&json!({"resource": resource})))
            .await
    }

    /// `POST /admin/v1/clients/{client_id}/revoke-tokens`.
    pub async fn admin_revoke_client_tokens(&self, client_id: &str) -> Response {
        let path = format!("/admin/v1/clients/{client_id}/revoke-tokens");
        self.admin_call(Method::POST, &path, None).await
    }

    /// `POST /admin/v1/grants/{grant_id}/revoke`.
    pub async fn admin_revoke_grant(&self, grant_id: &str) -> Response {
        let path = format!("/admin/v1/grants/{grant_id}/revoke");
        self.admin_call(Method::POST, &path, None).await
    }

    /// `GET /admin/v1/users/{user_id}/grants`, asserting 200.
    pub async fn admin_user_grants(&self, user_id: &str) -> Value {
        self.admin_get(&format!("/admin/v1/users/{user_id}/grants"))
            .await
    }

    /// `POST /admin/v1/keys/rotate`.
    pub async fn admin_rotate_keys(&self) -> Response {
        self.admin_call(Method::POST, "/admin/v1/keys/rotate", None)
            .await
    }
}
