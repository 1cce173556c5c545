//! A test double of OwnerRez, built from docs/ownerrez.md and not from authbridge's
//! provider code, so that the two cannot silently agree on something OwnerRez does not do.
//!
//! A poem server on 127.0.0.1:0 serving what the reference describes:
//! - `GET /oauth/authorize`: the user (see [`OwnerRezDouble::set_user`]) logs in at once and is
//!   sent back with `code=tc_…&state=…`, or with `error=access_denied` after
//!   [`OwnerRezDouble::deny_login`].
//! - `POST /oauth/access_token`: `authorization_code` (codes single use, 10 minutes) and
//!   `refresh_token` grants, HTTP Basic client authentication, a User-Agent required, `scope` and
//!   `resource` refused.
//! - `DELETE /oauth/access_token/{token}`: revocation; 404 when the token is unknown or revoked.
//! - `GET /v2/users/me`: Bearer; 401 in OwnerRez's API error shape when the token is not active.
//! - `GET /healthz`: 200, for whoever waits for the double to listen.
//!
//! Every request is recorded ([`OwnerRezDouble::requests`]). Time is read from the clock given to
//! [`OwnerRezDouble::start_with_clock`], so tests can expire codes and tokens without sleeping.
//!
//! The one OwnerRez double of the project: the interop suite runs this file as a program too
//! (`cargo build --example ownerrez-double`, tests/interop/ownerrez_double.rs), with the app's
//! credentials and redirect URLs of its choosing ([`OwnerRezDouble::start_for`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use authbridge::clock::{Clock, SystemClock};
use authbridge::config::OwnerRezConfig;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::{Endpoint, Request, Response, Server};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::JoinHandle;
use url::form_urlencoded;

/// The client id the double's OAuth app has.
pub const CLIENT_ID: &str = "c_authbridge_test";
/// The client secret the double's OAuth app has.
pub const CLIENT_SECRET: &str = "s_authbridge_test_secret";
/// The user who logs in unless [`OwnerRezDouble::set_user`] says otherwise.
pub const USER_ID: i64 = 123_456;
pub const USER_DISPLAY_NAME: &str = "Ann Owner";
/// How long an authorization code lives ("about 10 minutes").
pub const CODE_TTL_SECS: i64 = 600;
/// How long an access token lives under the "Standard" expiry policy (30 days).
pub const ACCESS_TOKEN_TTL_SECS: i64 = 2_592_000;

/// The shape of successful token responses (every field beyond `access_token` may be absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVariant {
    /// The "Standard" expiry policy: `refresh_token`, `expires_in` 2592000, `expires_at`.
    Standard,
    /// The "None" expiry policy: no expiry, no refresh token.
    NoExpiry,
    /// Standard, with `user_id` as a JSON string.
    UserIdAsString,
    /// Standard, without `user_id`.
    MissingUserId,
    /// Standard, with `expires_at` but no `expires_in`.
    ExpiresAtOnly,
}

/// What the double serves; each can be made to fail with [`OwnerRezDouble::set_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Authorize,
    /// `POST /oauth/access_token`.
    Token,
    /// `DELETE /oauth/access_token/{token}`.
    Revoke,
    UsersMe,
}

/// How a route fails instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 500 with an HTML body.
    ServerError,
    /// 429, OwnerRez's rate limit.
    TooManyRequests,
    /// Answers 503 only after this long (longer than the client's timeout).
    Hang(Duration),
    /// 400 `{"error": "invalid_grant", ...}`.
    InvalidGrant,
    /// 401 in OwnerRez's API error shape with `code: invalid_token`.
    InvalidToken,
    /// 401 `{"error": "invalid_client"}`: our client secret is no longer accepted.
    InvalidClient,
    /// 401 with an HTML body and no OAuth error.
    Unauthorized,
    /// 403 with an HTML body, as a web application firewall answers.
    Forbidden,
}

/// A request as the double received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The raw (still percent-encoded) path.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body's fields, when it is a form.
    pub form: Vec<(String, String)>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, &name.to_ascii_lowercase())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        find(&self.query, name)
    }

    /// A form field of the body.
    pub fn field(&self, name: &str) -> Option<&str> {
        find(&self.form, name)
    }

    /// The names of the form fields, in order.
    pub fn field_names(&self) -> Vec<&str> {
        self.form.iter().map(|(k, _)| k.as_str()).collect()
    }

    pub fn grant_type(&self) -> Option<&str> {
        self.field("grant_type")
    }

    /// The HTTP Basic user and password, each form-urlencoding decoded (RFC 6749 §2.3.1).
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        let (scheme, encoded) = self.header("authorization")?.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        Some((form_decode(user), form_decode(password)))
    }

    /// The Bearer token of the Authorization header.
    pub fn bearer_token(&self) -> Option<&str> {
        let (scheme, token) = self.header("authorization")?.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }
}

fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Decodes one application/x-www-form-urlencoded value.
fn form_decode(value: &str) -> String {
    form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Records `request` with its already read `body`. Public for other doubles in this test crate.
pub fn record(request: &Request, body: &[u8]) -> RecordedRequest {
    let pairs = |bytes: &[u8]| -> Vec<(String, String)> {
        form_urlencoded::parse(bytes)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    };
    let is_form = request
        .content_type()
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    RecordedRequest {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        query: pairs(request.uri().query().unwrap_or("").as_bytes()),
        headers: request
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        form: if is_form { pairs(body) } else { Vec::new() },
    }
}

/// Serves `endpoint` on 127.0.0.1 at a free port. Public for other doubles in this test crate.
pub fn serve(endpoint: impl Endpoint + 'static) -> (SocketAddr, JoinHandle<std::io::Result<()>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = TcpAcceptor::from_std(listener).unwrap();
    (
        address,
        tokio::spawn(Server::new_with_acceptor(acceptor).run(endpoint)),
    )
}

/// A JSON response.
pub fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(body.to_string())
}

/// A random token with OwnerRez's prefix (`tc_`, `at_`, `rt_`).
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    format!("{prefix}{}", hex::encode(bytes))
}

/// Where the browser was sent back to after [`OwnerRezDouble::log_in`].
#[derive(Debug, Clone)]
pub struct Callback {
    pub location: String,
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

struct IssuedCode {
    user_id: i64,
    display_name: String,
    redirect_uri: String,
    expires_at: i64,
}

struct IssuedToken {
    user_id: i64,
    display_name: String,
    /// None: never expires (refresh tokens, the "None" policy).
    expires_at: Option<i64>,
    revoked: bool,
}

/// The OAuth app the double knows: the credentials every server-to-server call must carry.
#[derive(Debug, Clone)]
pub struct App {
    pub client_id: String,
    pub client_secret: String,
}

impl Default for App {
    /// [`CLIENT_ID`] and [`CLIENT_SECRET`].
    fn default() -> Self {
        Self {
            client_id: CLIENT_ID.to_owned(),
            client_secret: CLIENT_SECRET.to_owned(),
        }
    }
}

struct State {
    clock: Arc<dyn Clock>,
    app: App,
    user: (i64, String),
    deny_login: bool,
    /// The app's redirect URLs; empty: any redirect URI is accepted.
    registered_redirect_uris: Vec<String>,
    variant: TokenVariant,
    failures: HashMap<Route, Failure>,
    rotate_refresh_tokens: bool,
    refuse_redirect_uri_on_exchange: bool,
    codes: HashMap<String, IssuedCode>,
    access_tokens: HashMap<String, IssuedToken>,
    refresh_tokens: HashMap<String, IssuedToken>,
    requests: Vec<RecordedRequest>,
}

/// OwnerRez on a local port. Dropping it stops the server.
pub struct OwnerRezDouble {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for OwnerRezDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OwnerRezDouble {
    /// A double on the system clock.
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// A double reading time from `clock` (share the server's `ManualClock` to move both).
    /// Defaults: the Standard variant, no failures, refresh rotation on, any redirect URI.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        Self::start_for(App::default(), clock).await
    }

    /// [`OwnerRezDouble::start_with_clock`] for another OAuth app than [`App::default`].
    pub async fn start_for(app: App, clock: Arc<dyn Clock>) -> Self {
        let state = Arc::new(Mutex::new(State {
            clock,
            app,
            user: (USER_ID, USER_DISPLAY_NAME.to_owned()),
            deny_login: false,
            registered_redirect_uris: Vec::new(),
            variant: TokenVariant::Standard,
            failures: HashMap::new(),
            rotate_refresh_tokens: true,
            refuse_redirect_uri_on_exchange: false,
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            requests: Vec::new(),
        }));
        let shared = state.clone();
        let endpoint = poem::endpoint::make(move |request: Request| {
            let state = shared.clone();
            async move { answer(&state, request).await }
        });
        let (address, task) = serve(endpoint);
        Self {
            address,
            state,
            task,
        }
    }

    /// The port the double listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/oauth/authorize", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth/access_token", self.base_url())
    }

    /// The API base, `…/v2`.
    pub fn api_base_url(&self) -> String {
        format!("{}/v2", self.base_url())
    }

    /// authbridge's OwnerRez configuration pointing at this double, with the app's client id
    /// (the secret is passed separately) and everything else at its default.
    pub fn config(&self) -> OwnerRezConfig {
        OwnerRezConfig {
            client_id: Some(self.lock().app.client_id.clone()),
            authorize_url: self.authorize_url(),
            token_url: self.token_url(),
            api_base_url: self.api_base_url(),
            ..OwnerRezConfig::default()
        }
    }

    /// The user who logs in at `/oauth/authorize` from now on.
    pub fn set_user(&self, user_id: i64, display_name: &str) {
        self.lock().user = (user_id, display_name.to_owned());
    }

    /// Makes the user refuse the app: `/oauth/authorize` redirects with `error=access_denied`.
    pub fn deny_login(&self, deny: bool) {
        self.lock().deny_login = deny;
    }

    /// Adds a redirect URL to the app's; once it has one, other redirect URIs get a 400 page.
    pub fn register_redirect_uri(&self, uri: &str) {
        self.lock().registered_redirect_uris.push(uri.to_owned());
    }

    pub fn set_token_variant(&self, variant: TokenVariant) {
        self.lock().variant = variant;
    }

    /// Makes `route` fail the given way (`None`: answer normally again).
    pub fn set_failure(&self, route: Route, failure: Option<Failure>) {
        let mut state = self.lock();
        match failure {
            Some(failure) => state.failures.insert(route, failure),
            None => state.failures.remove(&route),
        };
    }

    /// On (the default): a refresh returns a new refresh token and retires the old one. Off: the
    /// response has no `refresh_token` and the old one stays valid.
    pub fn set_refresh_rotation(&self, rotate: bool) {
        self.lock().rotate_refresh_tokens = rotate;
    }

    /// Models the one client that reports a 403 when `redirect_uri` is sent with the code.
    pub fn refuse_redirect_uri_on_exchange(&self, refuse: bool) {
        self.lock().refuse_redirect_uri_on_exchange = refuse;
    }

    /// A code for the current user, as if they had logged in with `redirect_uri`.
    pub fn issue_code(&self, redirect_uri: &str) -> String {
        let mut state = self.lock();
        let code = random_token("tc_");
        let (user_id, display_name) = state.user.clone();
        let expires_at = state.clock.now() + CODE_TTL_SECS;
        let issued = IssuedCode {
            user_id,
            display_name,
            redirect_uri: redirect_uri.to_owned(),
            expires_at,
        };
        state.codes.insert(code.clone(), issued);
        code
    }

    /// Follows an authorization URL as the user's browser would, up to the redirect back.
    pub async fn log_in(&self, authorization_url: &str) -> Callback {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = http
            .get(authorization_url)
            .send()
            .await
            .expect("the double answers");
        assert_eq!(response.status(), 302, "the double redirects back");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let url = url::Url::parse(&location).expect("an absolute callback URL");
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        Callback {
            code: param("code"),
            state: param("state"),
            error: param("error"),
            location,
        }
    }

    /// The user disconnected the app: every token of `user_id` stops working at once.
    pub fn invalidate_user(&self, user_id: i64) {
        let mut state = self.lock();
        let state = &mut *state;
        let records = state
            .access_tokens
            .values_mut()
            .chain(state.refresh_tokens.values_mut());
        records
            .filter(|t| t.user_id == user_id)
            .for_each(|t| t.revoked = true);
    }

    /// Whether `access_token` was issued, is not revoked and has not expired.
    pub fn is_active(&self, access_token: &str) -> bool {
        let state = self.lock();
        state
            .access_tokens
            .get(access_token)
            .is_some_and(|t| state.is_live(t))
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// The requests to `path` (e.g. `/oauth/access_token`).
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// How many token requests carried `grant_type` (answered or not).
    pub fn count(&self, grant_type: &str) -> usize {
        let state = self.lock();
        state
            .requests
            .iter()
            .filter(|r| r.grant_type() == Some(grant_type))
            .count()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl State {
    fn is_live(&self, token: &IssuedToken) -> bool {
        !token.revoked && token.expires_at.is_none_or(|at| at > self.clock.now())
    }

    /// Issues tokens for `user_id` and renders them in the current variant.
    fn token_response(
        &mut self,
        user_id: i64,
        display_name: &str,
        refresh_token: Option<String>,
    ) -> Value {
        let now = self.clock.now();
        let standard = self.variant != TokenVariant::NoExpiry;
        let access_token = random_token("at_");
        let expires_at = standard.then_some(now + ACCESS_TOKEN_TTL_SECS);
        let record = IssuedToken {
            user_id,
            display_name: display_name.to_owned(),
            expires_at,
            revoked: false,
        };
        self.access_tokens.insert(access_token.clone(), record);
        let mut body = json!({
            "access_token": access_token,
            "token_type": "bearer",
            "scope": "all",
            "user_id": user_id,
            "user_display_name": display_name,
        });
        if !standard {
            return body;
        }
        if let Some(refresh_token) = refresh_token {
            body["refresh_token"] = json!(refresh_token);
        }
        body["expires_in"] = json!(ACCESS_TOKEN_TTL_SECS);
        let expires_at = OffsetDateTime::from_unix_timestamp(now + ACCESS_TOKEN_TTL_SECS).unwrap();
        body["expires_at"] = json!(expires_at.format(&Rfc3339).unwrap());
        body["refresh_token_supported"] = json!(true);
        let object = body.as_object_mut().unwrap();
        match self.variant {
            TokenVariant::UserIdAsString => {
                object.insert("user_id".into(), json!(user_id.to_string()));
            }
            TokenVariant::MissingUserId => {
                object.remove("user_id");
            }
            TokenVariant::ExpiresAtOnly => {
                object.remove("expires_in");
            }
            TokenVariant::Standard | TokenVariant::NoExpiry => {}
        }
        body
    }

    fn new_refresh_token(&mut self, user_id: i64, display_name: &str) -> Option<String> {
        if self.variant == TokenVariant::NoExpiry {
            return None;
        }
        let token = random_token("rt_");
        let record = IssuedToken {
            user_id,
            display_name: display_name.to_owned(),
            expires_at: None,
            revoked: false,
        };
        self.refresh_tokens.insert(token.clone(), record);
        Some(token)
    }
}

fn route_of(method: &str, path: &str) -> Option<Route> {
    match (method, path) {
        ("GET", "/oauth/authorize") => Some(Route::Authorize),
        ("POST", "/oauth/access_token") => Some(Route::Token),
        ("DELETE", p) if p.starts_with("/oauth/access_token/") => Some(Route::Revoke),
        ("GET", "/v2/users/me") => Some(Route::UsersMe),
        _ => None,
    }
}

async fn answer(state: &Mutex<State>, mut request: Request) -> Response {
    if request.method() == poem::http::Method::GET && request.uri().path() == "/healthz" {
        return Response::builder().content_type("text/plain").body("ok");
    }
    let body = request.take_body().into_bytes().await.unwrap_or_default();
    let recorded = record(&request, &body);
    let route = route_of(&recorded.method, &recorded.path);
    let failure = {
        let mut state = state.lock().unwrap();
        state.requests.push(recorded.clone());
        route.and_then(|r| state.failures.get(&r).copied())
    };
    if let Some(failure) = failure {
        return fail(failure).await;
    }
    let mut state = state.lock().unwrap();
    match route {
        Some(Route::Authorize) => authorize(&mut state, &recorded),
        Some(Route::Token) => token(&mut state, &recorded),
        Some(Route::Revoke) => revoke(&mut state, &recorded),
        Some(Route::UsersMe) => users_me(&state, &recorded),
        None => api_error(404, "not_found", "No such endpoint"),
    }
}

async fn fail(failure: Failure) -> Response {
    match failure {
        Failure::ServerError => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .content_type("text/html")
            .body("<html><body>Server Error</body></html>"),
        Failure::TooManyRequests => api_error(429, "rate_limited", "Too many requests"),
        Failure::Hang(delay) => {
            tokio::time::sleep(delay).await;
            Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .finish()
        }
        Failure::InvalidGrant => oauth_error(400, "invalid_grant", "The grant is invalid"),
        Failure::InvalidToken => api_error(401, "invalid_token", "The access token is invalid"),
        Failure::InvalidClient => {
            oauth_error(401, "invalid_client", "Client authentication failed")
        }
        Failure::Unauthorized => html_error(StatusCode::UNAUTHORIZED, "Unauthorized"),
        Failure::Forbidden => html_error(StatusCode::FORBIDDEN, "Request blocked"),
    }
}

fn html_error(status: StatusCode, title: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html")
        .body(format!("<html><body><h1>{title}</h1></body></html>"))
}

/// OwnerRez's API error body: `{"messages": [...], "code": ..., "status_code": ...}`.
fn api_error(status: u16, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"messages": [message], "code": code, "status_code": status}),
    )
}

/// The OAuth error body: `{"error": ..., "error_description": ...}`.
fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn redirect(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", format!("{redirect_uri}{separator}{query}"))
        .finish()
}

fn authorize(state: &mut State, request: &RecordedRequest) -> Response {
    let bad_request = |message: &str| {
        Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .content_type("text/plain")
            .body(message.to_owned())
    };
    if request.query_param("client_id") != Some(state.app.client_id.as_str()) {
        return bad_request("unknown client_id");
    }
    let Some(redirect_uri) = request.query_param("redirect_uri") else {
        return bad_request("redirect_uri is required");
    };
    let registered = &state.registered_redirect_uris;
    if !registered.is_empty() && !registered.iter().any(|r| r == redirect_uri) {
        return bad_request("redirect_uri is not the app's redirect URL");
    }
    let mut params = Vec::new();
    if request.query_param("response_type") != Some("code") {
        params.push(("error", "unsupported_response_type"));
    } else if request.query_param("scope").is_some() || request.query_param("resource").is_some() {
        params.push(("error", "invalid_request"));
    } else if state.deny_login {
        params.push(("error", "access_denied"));
    }
    let code;
    if params.is_empty() {
        let (user_id, display_name) = state.user.clone();
        code = random_token("tc_");
        let expires_at = state.clock.now() + CODE_TTL_SECS;
        let issued = IssuedCode {
            user_id,
            display_name,
            redirect_uri: redirect_uri.to_owned(),
            expires_at,
        };
        state.codes.insert(code.clone(), issued);
        params.push(("code", &code));
    }
    if let Some(request_state) = request.query_param("state") {
        params.push(("state", request_state));
    }
    redirect(redirect_uri, &params)
}

/// The refusal of a server-to-server call that fails the first checks: a User-Agent is required,
/// then the app's HTTP Basic credentials.
fn refuse_app_request(app: &App, request: &RecordedRequest) -> Option<Response> {
    if request
        .header("user-agent")
        .is_none_or(|ua| ua.trim().is_empty())
    {
        return Some(api_error(
            400,
            "user_agent_required",
            "A User-Agent header is required",
        ));
    }
    if request.basic_credentials() != Some((app.client_id.clone(), app.client_secret.clone())) {
        return Some(oauth_error(
            401,
            "invalid_client",
            "Client authentication failed",
        ));
    }
    None
}

fn token(state: &mut State, request: &RecordedRequest) -> Response {
    if let Some(refusal) = refuse_app_request(&state.app, request) {
        return refusal;
    }
    if request
        .header("content-type")
        .is_none_or(|t| !t.starts_with("application/x-www-form-urlencoded"))
    {
        return oauth_error(400, "invalid_request", "The body must be a form");
    }
    if request.field("scope").is_some() || request.field("resource").is_some() {
        return oauth_error(
            400,
            "invalid_request",
            "scope and resource are not supported",
        );
    }
    match request.grant_type() {
        Some("authorization_code") => exchange_code(state, request),
        Some("refresh_token") => refresh(state, request),
        _ => oauth_error(400, "unsupported_grant_type", "Unsupported grant_type"),
    }
}

fn exchange_code(state: &mut State, request: &RecordedRequest) -> Response {
    if state.refuse_redirect_uri_on_exchange && request.field("redirect_uri").is_some() {
        return api_error(403, "forbidden", "Forbidden");
    }
    // Single use: a presented code is gone whatever happens next.
    let issued = request
        .field("code")
        .and_then(|code| state.codes.remove(code));
    let Some(issued) = issued.filter(|c| c.expires_at > state.clock.now()) else {
        return oauth_error(400, "invalid_grant", "The code is invalid or expired");
    };
    if request
        .field("redirect_uri")
        .is_some_and(|uri| uri != issued.redirect_uri)
    {
        return oauth_error(400, "invalid_grant", "redirect_uri does not match");
    }
    let refresh_token = state.new_refresh_token(issued.user_id, &issued.display_name);
    json_response(
        200,
        &state.token_response(issued.user_id, &issued.display_name, refresh_token),
    )
}

fn refresh(state: &mut State, request: &RecordedRequest) -> Response {
    let presented = request
        .field("refresh_token")
        .unwrap_or_default()
        .to_owned();
    let found = state
        .refresh_tokens
        .get(&presented)
        .filter(|t| state.is_live(t));
    let Some((user_id, display_name)) = found.map(|t| (t.user_id, t.display_name.clone())) else {
        return oauth_error(400, "invalid_grant", "The refresh token is invalid");
    };
    let refresh_token = if state.rotate_refresh_tokens {
        if let Some(old) = state.refresh_tokens.get_mut(&presented) {
            old.revoked = true;
        }
        state.new_refresh_token(user_id, &display_name)
    } else {
        None
    };
    json_response(
        200,
        &state.token_response(user_id, &display_name, refresh_token),
    )
}

fn revoke(state: &mut State, request: &RecordedRequest) -> Response {
    if let Some(refusal) = refuse_app_request(&state.app, request) {
        return refusal;
    }
    let encoded = request.path.trim_start_matches("/oauth/access_token/");
    // A path segment: `+` is itself, not a space.
    let token = form_decode(&encoded.replace('+', "%2B"));
    let now = state.clock.now();
    match state.access_tokens.get_mut(&token) {
        Some(t) if !t.revoked && t.expires_at.is_none_or(|at| at > now) => {
            t.revoked = true;
            Response::builder().status(StatusCode::OK).finish()
        }
        _ => api_error(404, "not_found", "The access token was not found"),
    }
}

fn users_me(state: &State, request: &RecordedRequest) -> Response {
    if request
        .header("user-agent")
        .is_none_or(|ua| ua.trim().is_empty())
    {
        return api_error(
            400,
            "user_agent_required",
            "A User-Agent header is required",
        );
    }
    let Some(token) = request.bearer_token() else {
        return api_error(401, "auth_required", "Authorization is required");
    };
    match state.access_tokens.get(token).filter(|t| state.is_live(t)) {
        // The real fields are unknown (ownerrez.md); `id` and `name` are a guess.
        Some(t) => json_response(200, &json!({"id": t.user_id, "name": t.display_name})),
        None => api_error(
            401,
            "invalid_token",
            "The access token is invalid or has expired",
        ),
    }
}

/// What the double handed out, for tests that look for secrets at rest.
impl OwnerRezDouble {
    /// Every access token issued so far.
    pub fn issued_access_tokens(&self) -> Vec<String> {
        self.lock().access_tokens.keys().cloned().collect()
    }

    /// Every refresh token issued so far.
    pub fn issued_refresh_tokens(&self) -> Vec<String> {
        self.lock().refresh_tokens.keys().cloned().collect()
    }
}
