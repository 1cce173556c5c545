//! The requests a host, a browser and an MCP server make, over real HTTP: registration, the
//! whole browser login (against the dev upstream or a fake OwnerRez), code redemption, refresh,
//! token exchange, introspection, revocation, the public documents and a gateway request. Each returns what it obtained or a [`Failure`] that says whether the server
//! failed (5xx) or refused (4xx).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

/// RFC 7636 Appendix B: a verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The resource every login asks for unless told otherwise: the default configuration's.
pub const RESOURCE: &str = "http://localhost:3000/mcp";
/// What a gateway request sends.
const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

/// Why an operation did not give what it should have.
#[derive(Debug, Clone)]
pub enum Failure {
    /// No HTTP answer: the connection failed or was cut (a killed server), or a timeout.
    NoAnswer(String),
    /// An HTTP answer other than the expected one; `error` is the OAuth error code, if any.
    Status { status: u16, error: String },
    /// The login ended at the client's redirect URI with `?error=`.
    Redirected { error: String },
}

impl Failure {
    /// A 5xx, or a login the server ended with `server_error` or `temporarily_unavailable`:
    /// the server failed, not the request.
    pub fn is_server_error(&self) -> bool {
        match self {
            Failure::NoAnswer(_) => false,
            Failure::Status { status, .. } => *status >= 500,
            Failure::Redirected { error } => {
                error == "server_error" || error == "temporarily_unavailable"
            }
        }
    }

    /// An `invalid_grant` refusal: the token or code is not (or no longer) good.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, Failure::Status { error, .. } if error == "invalid_grant")
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoAnswer(reason) => write!(f, "no answer ({reason})"),
            Failure::Status { status, error } => write!(f, "HTTP {status} {error}"),
            Failure::Redirected { error } => write!(f, "login ended with error={error}"),
        }
    }
}

/// A public client registered by the driver, as a host registers itself.
#[derive(Debug, Clone)]
pub struct PublicClient {
    pub client_id: String,
    pub redirect_uri: String,
}

/// A confidential client with credentials (the MCP server doing token exchange).
#[derive(Debug, Clone)]
pub struct ConfidentialClient {
    pub client_id: String,
    pub client_secret: String,
}

/// An access token and the refresh token that came with it.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// One server, as clients see it.
#[derive(Clone)]
pub struct Target {
    http: reqwest::Client,
    base: String,
    /// The resource logins ask for.
    resource: String,
}

fn no_answer(error: reqwest::Error) -> Failure {
    Failure::NoAnswer(error.to_string())
}

/// The failure an unexpected answer means, with the OAuth `error` of a JSON body.
async fn unexpected(response: reqwest::Response) -> Failure {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let error = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(80).collect());
    Failure::Status { status, error }
}

/// A 200 whose body is read to the end, or the failure the answer is.
async fn read_ok(response: reqwest::Result<reqwest::Response>) -> Result<(), Failure> {
    let response = response.map_err(no_answer)?;
    if response.status() != 200 {
        return Err(unexpected(response).await);
    }
    response.bytes().await.map_err(no_answer)?;
    Ok(())
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned)
}

fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// The value of a hidden form field in a page (minijinja escapes `/` and `=`).
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(
        html[start..start + end]
            .replace("&#x2f;", "/")
            .replace("&#x3d;", "=")
            .replace("&amp;", "&"),
    )
}

/// A cookie jar of one browser.
#[derive(Default)]
struct Cookies(HashMap<String, String>);

impl Cookies {
    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            if let Some((name, value)) = value
                .to_str()
                .ok()
                .and_then(|v| v.split(';').next())
                .and_then(|pair| pair.split_once('='))
            {
                self.0.insert(name.into(), value.into());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Target {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            resource: RESOURCE.to_owned(),
        }
    }

    /// The same server, with logins asking for `resource`.
    pub fn for_resource(&self, resource: &str) -> Self {
        Self {
            resource: resource.to_owned(),
            ..self.clone()
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Whether `/readyz` answers 200.
    pub async fn is_ready(&self) -> bool {
        self.http
            .get(self.url("/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    }

    /// Registers a public client (RFC 7591) named `name` with one redirect URI.
    pub async fn register(&self, name: &str, redirect_uri: &str) -> Result<PublicClient, Failure> {
        let body = json!({
            "client_name": name,
            "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": "none",
        });
        let response = self
            .http
            .post(self.url("/register"))
            .json(&body)
            .send()
            .await
            .map_err(no_answer)?;
        if response.status() != 201 {
            return Err(unexpected(response).await);
        }
        let info: Value = response.json().await.map_err(no_answer)?;
        Ok(PublicClient {
            client_id: info["client_id"].as_str().unwrap_or_default().to_owned(),
            redirect_uri: redirect_uri.to_owned(),
        })
    }

    /// Creates a confidential client through the admin API and makes it the resource server
    /// of the target's resource, so that it may exchange and introspect access tokens.
    pub async fn resource_server(&self, admin_token: &str) -> Result<ConfidentialClient, Failure> {
        let created = self
            .http
            .post(self.url("/admin/v1/clients"))
            .bearer_auth(admin_token)
            .json(&json!({"client_name": "load: MCP server", "redirect_uris": ["https://mcp.example/unused"]}))
            .send()
            .await
            .map_err(no_answer)?;
        if !created.status().is_success() {
            return Err(unexpected(created).await);
        }
        let created: Value = created.json().await.map_err(no_answer)?;
        let client = ConfidentialClient {
            client_id: created["client"]["client_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            client_secret: created["client_secret"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        };
        let marked = self
            .http
            .put(self.url(&format!(
                "/admin/v1/clients/{}/resource-server",
                client.client_id
            )))
            .bearer_auth(admin_token)
            .json(&json!({"resource": self.resource}))
            .send()
            .await
            .map_err(no_answer)?;
        if !marked.status().is_success() {
            return Err(unexpected(marked).await);
        }
        Ok(client)
    }

    /// A whole browser login of `user` through `client`: /authorize, the consent page
    /// approved, the dev upstream's form, the callback. Returns the authorization code.
    pub async fn login(&self, client: &PublicClient, user: &str) -> Result<String, Failure> {
        let mut cookies = Cookies::default();
        let mut authorize = url::Url::parse(&self.url("/authorize")).expect("a URL");
        authorize
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &client.redirect_uri)
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &self.resource)
            .append_pair("state", "load");
        let page = self
            .http
            .get(authorize.as_str())
            .send()
            .await
            .map_err(no_answer)?;
        if page.status() != 200 {
            return Err(unexpected(page).await);
        }
        cookies.keep(&page);
        let html = page.text().await.map_err(no_answer)?;
        let (Some(request), Some(csrf)) =
            (hidden_field(&html, "request"), hidden_field(&html, "csrf"))
        else {
            return Err(Failure::Status {
                status: 200,
                error: "no consent form".into(),
            });
        };
        let approved = self
            .http
            .post(self.url("/authorize/consent"))
            .header("cookie", cookies.header())
            .form(&[
                ("request", request.as_str()),
                ("csrf", csrf.as_str()),
                ("decision", "approve"),
            ])
            .send()
            .await
            .map_err(no_answer)?;
        cookies.keep(&approved);
        let Some(upstream) = location(&approved) else {
            return Err(unexpected(approved).await);
        };
        let callback = self.sign_in_upstream(&upstream, user).await?;
        let back = self
            .http
            .get(&callback)
            .header("cookie", cookies.header())
            .send()
            .await
            .map_err(no_answer)?;
        let Some(to_client) = location(&back) else {
            return Err(unexpected(back).await);
        };
        let params = query_of(&to_client);
        match (params.get("code"), params.get("error")) {
            (Some(code), _) => Ok(code.clone()),
            (None, Some(error)) => Err(Failure::Redirected {
                error: error.clone(),
            }),
            (None, None) => Err(Failure::Redirected {
                error: "neither code nor error".into(),
            }),
        }
    }

    /// The upstream's part of a login: `user` signs in at the upstream the server sent the
    /// browser to (`upstream`); returns the callback URL the upstream sends it back to.
    async fn sign_in_upstream(&self, upstream: &str, user: &str) -> Result<String, Failure> {
        let dev = upstream.starts_with(&self.url("/dev/upstream/authorize"));
        let answer = if dev {
            let upstream = query_of(upstream);
            let field = |name: &str| upstream.get(name).map(String::as_str).unwrap_or_default();
            self.http
                .post(self.url("/dev/upstream/authorize"))
                .form(&[
                    ("username", user),
                    ("redirect_uri", field("redirect_uri")),
                    ("state", field("state")),
                    ("code_challenge", field("code_challenge")),
                ])
                .send()
                .await
        } else {
            // The fake OwnerRez (benches/load/fakes.rs) takes the user from the query.
            let mut url = url::Url::parse(upstream).map_err(|_| Failure::Status {
                status: 302,
                error: "the upstream URL is not a URL".into(),
            })?;
            url.query_pairs_mut().append_pair("user", user);
            self.http.get(url.as_str()).send().await
        }
        .map_err(no_answer)?;
        match location(&answer) {
            Some(callback) => Ok(callback),
            None => Err(unexpected(answer).await),
        }
    }

    async fn token_request(
        &self,
        form: &[(&str, &str)],
        basic: Option<&ConfidentialClient>,
    ) -> Result<Value, Failure> {
        self.token_form("/token", form, basic).await
    }

    /// POSTs `form` to `path`, with HTTP Basic client authentication if `basic`; the JSON
    /// body of a 200.
    async fn token_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<&ConfidentialClient>,
    ) -> Result<Value, Failure> {
        let mut request = self.http.post(self.url(path)).form(form);
        if let Some(client) = basic {
            request = request.basic_auth(&client.client_id, Some(&client.client_secret));
        }
        let response = request.send().await.map_err(no_answer)?;
        if response.status() != 200 {
            return Err(unexpected(response).await);
        }
        response.json().await.map_err(no_answer)
    }

    fn tokens_of(body: &Value) -> Result<Tokens, Failure> {
        match (
            body["access_token"].as_str(),
            body["refresh_token"].as_str(),
        ) {
            (Some(access), Some(refresh)) => Ok(Tokens {
                access_token: access.to_owned(),
                refresh_token: refresh.to_owned(),
            }),
            _ => Err(Failure::Status {
                status: 200,
                error: "no access or refresh token".into(),
            }),
        }
    }

    /// Redeems an authorization code (with PKCE and the resource).
    pub async fn redeem(&self, client: &PublicClient, code: &str) -> Result<Tokens, Failure> {
        let body = self
            .token_request(
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", &client.client_id),
                    ("code", code),
                    ("redirect_uri", &client.redirect_uri),
                    ("code_verifier", VERIFIER),
                    ("resource", &self.resource),
                ],
                None,
            )
            .await?;
        Self::tokens_of(&body)
    }

    /// Rotates a refresh token.
    pub async fn refresh(
        &self,
        client: &PublicClient,
        refresh_token: &str,
    ) -> Result<Tokens, Failure> {
        let body = self
            .token_request(
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &client.client_id),
                    ("refresh_token", refresh_token),
                ],
                None,
            )
            .await?;
        Self::tokens_of(&body)
    }

    /// Exchanges a user's access token for their upstream token (RFC 8693), as the MCP
    /// server does.
    pub async fn exchange(
        &self,
        server: &ConfidentialClient,
        access_token: &str,
    ) -> Result<(), Failure> {
        let body = self
            .token_request(
                &[
                    ("grant_type", TOKEN_EXCHANGE),
                    ("subject_token", access_token),
                    ("subject_token_type", ACCESS_TOKEN_TYPE),
                ],
                Some(server),
            )
            .await?;
        match body["access_token"].as_str() {
            Some(_) => Ok(()),
            None => Err(Failure::Status {
                status: 200,
                error: "no upstream token".into(),
            }),
        }
    }

    /// Revokes a refresh token (RFC 7009), which ends its family.
    pub async fn revoke(&self, client: &PublicClient, refresh_token: &str) -> Result<(), Failure> {
        let response = self
            .http
            .post(self.url("/revoke"))
            .form(&[
                ("client_id", client.client_id.as_str()),
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
            ])
            .send()
            .await
            .map_err(no_answer)?;
        if response.status() != 200 {
            return Err(unexpected(response).await);
        }
        Ok(())
    }

    /// Introspects an access token (RFC 7662) as the resource server; it must be active.
    pub async fn introspect(
        &self,
        server: &ConfidentialClient,
        access_token: &str,
    ) -> Result<(), Failure> {
        let body = self
            .token_form(
                "/introspect",
                &[("token", access_token), ("token_type_hint", "access_token")],
                Some(server),
            )
            .await?;
        match body["active"].as_bool() {
            Some(true) => Ok(()),
            _ => Err(Failure::Status {
                status: 200,
                error: "inactive".into(),
            }),
        }
    }

    /// GETs a public document at `path` (metadata, JWKS); it must answer 200.
    pub async fn document(&self, path: &str) -> Result<(), Failure> {
        let response = self.http.get(self.url(path)).send().await;
        read_ok(response).await
    }

    /// An MCP `tools/list` POSTed to `url` (the gateway, or the backend directly) with an
    /// access token; it must answer 200.
    pub async fn mcp_request(&self, url: &str, access_token: &str) -> Result<(), Failure> {
        let response = self
            .http
            .post(url)
            .bearer_auth(access_token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(TOOLS_LIST)
            .send()
            .await;
        read_ok(response).await
    }
}
