//! The upstream providers over real HTTP: `ownerrez` against the OwnerRez double (built from
//! docs/ownerrez.md), `oauth2` against a small standards-following double defined
//! here. Each test asserts what the double was sent as well as what the provider returned.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use authbridge::clock::ManualClock;
use authbridge::config::{OAuth2Config, OwnerRezConfig};
use authbridge::upstream::oauth2::OAuth2Provider;
use authbridge::upstream::ownerrez::OwnerRezProvider;
use authbridge::upstream::{
    AuthorizationRedirect, UpstreamError, UpstreamProvider, UpstreamTokens,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use poem::{Request, Response};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::ownerrez_double::{
    ACCESS_TOKEN_TTL_SECS, CLIENT_ID, CLIENT_SECRET, Failure, OwnerRezDouble, RecordedRequest,
    Route, TokenVariant, USER_DISPLAY_NAME, json_response, random_token, record, serve,
};

const START: i64 = 1_800_000_000;
const CALLBACK: &str = "https://auth.example.com/upstream/callback";
const USER_AGENT: &str = "authbridge-test/1.0 (ops@example.com)";
/// The providers' timeout in these tests; a hanging double waits much longer.
const TIMEOUT: Duration = Duration::from_millis(400);
const HANG: Duration = Duration::from_secs(5);
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// An OwnerRez provider and the double it talks to, on one manual clock.
struct OwnerRez {
    double: OwnerRezDouble,
    provider: OwnerRezProvider,
}

async fn ownerrez(adjust: impl FnOnce(&mut OwnerRezConfig)) -> OwnerRez {
    let clock = ManualClock::starting_at(START);
    let double = OwnerRezDouble::start_with_clock(clock.clone()).await;
    let mut config = OwnerRezConfig {
        user_agent: USER_AGENT.into(),
        ..double.config()
    };
    adjust(&mut config);
    let provider = OwnerRezProvider::new(&config, CLIENT_SECRET.into(), TIMEOUT, clock);
    OwnerRez { double, provider }
}

impl OwnerRez {
    /// Logs in through the double and returns the callback's code.
    async fn code(&self) -> String {
        let request = AuthorizationRedirect {
            redirect_uri: CALLBACK,
            state: "st_1",
            code_challenge: Some(CHALLENGE),
        };
        let callback = self
            .double
            .log_in(&self.provider.authorization_url(&request))
            .await;
        callback.code.expect("a code")
    }

    async fn exchange(&self) -> Result<UpstreamTokens, UpstreamError> {
        let code = self.code().await;
        self.provider
            .exchange_code(&code, CALLBACK, Some(VERIFIER))
            .await
    }

    fn token_requests(&self) -> Vec<RecordedRequest> {
        self.double.requests_to("/oauth/access_token")
    }
}

fn refused_code(result: Result<impl std::fmt::Debug, UpstreamError>) -> String {
    match result {
        Err(UpstreamError::Refused { code, .. }) => code,
        other => panic!("not a refusal: {other:?}"),
    }
}

fn is_unavailable<T>(result: &Result<T, UpstreamError>) -> bool {
    matches!(result, Err(UpstreamError::Unavailable(_)))
}

/// The checks every request to OwnerRez's token endpoint must pass.
fn assert_app_request(request: &RecordedRequest) {
    assert_eq!(
        request.basic_credentials(),
        Some((CLIENT_ID.into(), CLIENT_SECRET.into()))
    );
    assert_eq!(request.header("user-agent"), Some(USER_AGENT));
    assert_eq!(request.header("accept"), Some("application/json"));
}

#[tokio::test]
async fn ownerrez_login_redirect_carries_only_the_confirmed_parameters() {
    let o = ownerrez(|_| {}).await;
    let request = AuthorizationRedirect {
        redirect_uri: CALLBACK,
        state: "st 1/é",
        code_challenge: Some(CHALLENGE),
    };
    let callback = o
        .double
        .log_in(&o.provider.authorization_url(&request))
        .await;
    assert!(
        callback
            .code
            .as_deref()
            .is_some_and(|c| c.starts_with("tc_")),
        "{callback:?}"
    );
    assert_eq!(callback.state.as_deref(), Some("st 1/é"));
    assert!(callback.location.starts_with(CALLBACK));
    let authorize = &o.double.requests_to("/oauth/authorize")[0];
    let names: Vec<&str> = authorize.query.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["response_type", "client_id", "redirect_uri", "state"]
    );
    assert_eq!(authorize.query_param("redirect_uri"), Some(CALLBACK));
    assert!(!o.provider.uses_pkce());
}

#[tokio::test]
async fn ownerrez_denied_login_comes_back_with_access_denied() {
    let o = ownerrez(|_| {}).await;
    o.double.deny_login(true);
    let request = AuthorizationRedirect {
        redirect_uri: CALLBACK,
        state: "st_1",
        code_challenge: None,
    };
    let callback = o
        .double
        .log_in(&o.provider.authorization_url(&request))
        .await;
    assert_eq!(
        (
            callback.code,
            callback.error.as_deref(),
            callback.state.as_deref()
        ),
        (None, Some("access_denied"), Some("st_1"))
    );
}

#[tokio::test]
async fn ownerrez_subject_is_the_user_who_logged_in() {
    let o = ownerrez(|_| {}).await;
    o.double.register_redirect_uri(CALLBACK);
    o.double.set_user(987_654_321, "Bo Host");
    let tokens = o.exchange().await.unwrap();
    assert_eq!(
        (tokens.subject.as_str(), tokens.display_name.as_deref()),
        ("987654321", Some("Bo Host"))
    );
    let elsewhere = AuthorizationRedirect {
        redirect_uri: "https://evil.example/cb",
        state: "st",
        code_challenge: None,
    };
    let response = reqwest::get(o.provider.authorization_url(&elsewhere))
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "one registered redirect URL");
}

#[tokio::test]
async fn ownerrez_code_exchange_sends_what_ownerrez_documents() {
    let o = ownerrez(|_| {}).await;
    let code = o.code().await;
    let tokens = o
        .provider
        .exchange_code(&code, CALLBACK, Some(VERIFIER))
        .await
        .unwrap();
    assert!(tokens.access_token.starts_with("at_"));
    assert!(
        tokens
            .refresh_token
            .as_deref()
            .is_some_and(|t| t.starts_with("rt_"))
    );
    assert_eq!(tokens.subject, "123456");
    assert_eq!(tokens.display_name.as_deref(), Some(USER_DISPLAY_NAME));
    assert_eq!(tokens.expires_at, Some(START + ACCESS_TOKEN_TTL_SECS));
    let sent = &o.token_requests()[0];
    assert_app_request(sent);
    assert_eq!(
        sent.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        sent.field_names(),
        ["grant_type", "code", "redirect_uri"],
        "no PKCE, no scope, no resource"
    );
    assert_eq!(
        (
            sent.grant_type(),
            sent.field("code"),
            sent.field("redirect_uri")
        ),
        (
            Some("authorization_code"),
            Some(code.as_str()),
            Some(CALLBACK)
        )
    );
    assert_eq!(o.double.count("authorization_code"), 1);
    assert!(
        o.double.requests_to("/v2/users/me").is_empty(),
        "check_user is off by default"
    );
}

#[tokio::test]
async fn ownerrez_redirect_uri_on_exchange_follows_the_setting() {
    let sends = ownerrez(|_| {}).await;
    sends.double.refuse_redirect_uri_on_exchange(true);
    assert_eq!(refused_code(sends.exchange().await), "forbidden");

    let omits = ownerrez(|c| c.send_redirect_uri_on_exchange = false).await;
    omits.double.refuse_redirect_uri_on_exchange(true);
    omits.exchange().await.unwrap();
    assert_eq!(
        omits.token_requests()[0].field_names(),
        ["grant_type", "code"]
    );
}

#[tokio::test]
async fn ownerrez_pkce_is_sent_only_when_enabled() {
    let o = ownerrez(|c| c.use_pkce = true).await;
    assert!(o.provider.uses_pkce());
    o.exchange().await.unwrap();
    let authorize = &o.double.requests_to("/oauth/authorize")[0];
    assert_eq!(
        (
            authorize.query_param("code_challenge"),
            authorize.query_param("code_challenge_method")
        ),
        (Some(CHALLENGE), Some("S256"))
    );
    assert_eq!(o.token_requests()[0].field("code_verifier"), Some(VERIFIER));
}

#[tokio::test]
async fn ownerrez_every_token_response_variant_is_understood() {
    // (variant, has a refresh token, expires_at)
    let cases = [
        (
            TokenVariant::Standard,
            true,
            Some(START + ACCESS_TOKEN_TTL_SECS),
        ),
        (TokenVariant::NoExpiry, false, None),
        (
            TokenVariant::UserIdAsString,
            true,
            Some(START + ACCESS_TOKEN_TTL_SECS),
        ),
        (
            TokenVariant::ExpiresAtOnly,
            true,
            Some(START + ACCESS_TOKEN_TTL_SECS),
        ),
    ];
    for (variant, has_refresh_token, expires_at) in cases {
        let o = ownerrez(|_| {}).await;
        o.double.set_token_variant(variant);
        let tokens = o
            .exchange()
            .await
            .unwrap_or_else(|e| panic!("{variant:?}: {e}"));
        assert_eq!(tokens.subject, "123456", "{variant:?}");
        assert_eq!(
            tokens.refresh_token.is_some(),
            has_refresh_token,
            "{variant:?}"
        );
        assert_eq!(tokens.expires_at, expires_at, "{variant:?}");
        assert!(o.double.is_active(&tokens.access_token), "{variant:?}");
    }
}

#[tokio::test]
async fn ownerrez_missing_user_id_is_malformed() {
    let o = ownerrez(|_| {}).await;
    o.double.set_token_variant(TokenVariant::MissingUserId);
    match o.exchange().await {
        Err(UpstreamError::Malformed(message)) => assert!(message.contains("user_id"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ownerrez_outages_are_unavailable() {
    for failure in [
        Failure::ServerError,
        Failure::TooManyRequests,
        Failure::Hang(HANG),
    ] {
        let o = ownerrez(|_| {}).await;
        let code = o.code().await;
        o.double.set_failure(Route::Token, Some(failure));
        let started = std::time::Instant::now();
        let result = o.provider.exchange_code(&code, CALLBACK, None).await;
        assert!(is_unavailable(&result), "{failure:?}: {result:?}");
        assert!(
            started.elapsed() < HANG / 2,
            "{failure:?} waited for the double"
        );
        assert!(
            is_unavailable(&o.provider.refresh("rt_x").await),
            "{failure:?}"
        );
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let token_url = format!("http://{}/oauth/access_token", closed.local_addr().unwrap());
    drop(closed);
    let o = ownerrez(|c| c.token_url = token_url).await;
    assert!(is_unavailable(&o.exchange().await));
}

#[tokio::test]
async fn ownerrez_refusals_carry_the_upstream_code_and_no_secret() {
    let o = ownerrez(|_| {}).await;
    let code = o.code().await;
    o.provider
        .exchange_code(&code, CALLBACK, None)
        .await
        .unwrap();
    let reused = o.provider.exchange_code(&code, CALLBACK, None).await;
    let text = format!("{reused:?} {}", reused.as_ref().unwrap_err());
    assert!(
        !text.contains(&code) && !text.contains(CLIENT_SECRET),
        "{text}"
    );
    assert_eq!(refused_code(reused), "invalid_grant");

    o.double
        .set_failure(Route::Token, Some(Failure::InvalidGrant));
    assert_eq!(
        refused_code(o.provider.refresh("rt_x").await),
        "invalid_grant"
    );
    o.double
        .set_failure(Route::Token, Some(Failure::InvalidToken));
    assert_eq!(
        refused_code(o.exchange().await),
        "invalid_token",
        "OwnerRez's API error shape"
    );

    let wrong_secret = ownerrez(|_| {}).await;
    let config = wrong_secret.double.config();
    let provider = OwnerRezProvider::new(
        &config,
        "s_wrong".into(),
        TIMEOUT,
        ManualClock::starting_at(START),
    );
    let code = wrong_secret.code().await;
    assert_eq!(
        refused_code(provider.exchange_code(&code, CALLBACK, None).await),
        "invalid_client"
    );
}

#[tokio::test]
async fn ownerrez_refresh_with_rotation_stores_the_new_refresh_token() {
    let o = ownerrez(|_| {}).await;
    let first = o.exchange().await.unwrap();
    let old = first.refresh_token.unwrap();
    let refreshed = o.provider.refresh(&old).await.unwrap();
    let new = refreshed
        .refresh_token
        .clone()
        .expect("a rotated refresh token");
    assert_ne!(new, old);
    assert_ne!(refreshed.access_token, first.access_token);
    assert_eq!(
        (refreshed.subject.as_str(), refreshed.expires_at),
        ("123456", Some(START + ACCESS_TOKEN_TTL_SECS))
    );
    let sent = o.token_requests().pop().unwrap();
    assert_app_request(&sent);
    assert_eq!(
        sent.form,
        [
            ("grant_type".into(), "refresh_token".into()),
            ("refresh_token".into(), old.clone())
        ]
    );
    assert_eq!(
        refused_code(o.provider.refresh(&old).await),
        "invalid_grant",
        "the old one is retired"
    );
    o.provider.refresh(&new).await.unwrap();
    assert_eq!(o.double.count("refresh_token"), 3);
}

#[tokio::test]
async fn ownerrez_refresh_without_rotation_keeps_the_old_refresh_token() {
    let o = ownerrez(|_| {}).await;
    o.double.set_refresh_rotation(false);
    let old = o.exchange().await.unwrap().refresh_token.unwrap();
    for _ in 0..2 {
        let refreshed = o.provider.refresh(&old).await.unwrap();
        assert_eq!(
            refreshed.refresh_token, None,
            "the caller keeps the old one"
        );
        assert!(o.double.is_active(&refreshed.access_token));
    }
}

#[tokio::test]
async fn ownerrez_refresh_after_deauthorization_is_refused() {
    let o = ownerrez(|_| {}).await;
    let tokens = o.exchange().await.unwrap();
    o.double.invalidate_user(123_456);
    assert!(!o.double.is_active(&tokens.access_token));
    assert_eq!(
        refused_code(o.provider.refresh(&tokens.refresh_token.unwrap()).await),
        "invalid_grant"
    );
}

#[tokio::test]
async fn ownerrez_revoke_deletes_the_token_and_accepts_404() {
    let o = ownerrez(|_| {}).await;
    let tokens = o.exchange().await.unwrap();
    o.provider.revoke(&tokens.access_token).await.unwrap();
    assert!(!o.double.is_active(&tokens.access_token));
    o.provider
        .revoke(&tokens.access_token)
        .await
        .expect("404: already revoked");
    o.provider.revoke("at x/y+z").await.expect("404: unknown");
    let deletes: Vec<RecordedRequest> = o
        .double
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 3);
    deletes.iter().for_each(assert_app_request);
    assert_eq!(
        deletes[0].path,
        format!("/oauth/access_token/{}", tokens.access_token)
    );
    assert_eq!(deletes[2].path, "/oauth/access_token/at%20x%2Fy+z");

    o.double
        .set_failure(Route::Revoke, Some(Failure::ServerError));
    assert!(is_unavailable(&o.provider.revoke("at_1").await));
}

#[tokio::test]
async fn ownerrez_check_user_calls_users_me_with_the_new_token() {
    let o = ownerrez(|c| c.check_user = true).await;
    let tokens = o.exchange().await.unwrap();
    assert_eq!(tokens.subject, "123456");
    let me = &o.double.requests_to("/v2/users/me")[0];
    assert_eq!(me.bearer_token(), Some(tokens.access_token.as_str()));
    assert_eq!(me.header("user-agent"), Some(USER_AGENT));

    let cases = [
        (Failure::InvalidToken, "refused"),
        (Failure::ServerError, "unavailable"),
        (Failure::Hang(HANG), "unavailable"),
    ];
    for (failure, expected) in cases {
        o.double.set_failure(Route::UsersMe, Some(failure));
        let result = o.exchange().await;
        let got = match &result {
            Err(UpstreamError::Refused { code, .. }) if code == "invalid_token" => "refused",
            Err(UpstreamError::Unavailable(_)) => "unavailable",
            _ => "other",
        };
        assert_eq!(got, expected, "{failure:?}: {result:?}");
    }
}

// The generic provider, against a double that follows RFC 6749, RFC 7636 and RFC 7009.

/// What the generic double answers and what it was sent.
struct GenericState {
    /// `client_secret_basic` or `client_secret_post`: the only method it accepts.
    auth_method: &'static str,
    /// The challenge of each code it issued.
    codes: Vec<(String, Option<String>)>,
    /// The token endpoint's answer; its `access_token` is the one userinfo accepts.
    token_status: u16,
    token_body: Value,
    userinfo: Value,
    /// Userinfo refuses every token, as after the user revoked the app.
    userinfo_refuses: bool,
    requests: Vec<RecordedRequest>,
}

struct GenericDouble {
    base: String,
    state: Arc<Mutex<GenericState>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for GenericDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GenericDouble {
    async fn start(auth_method: &'static str, token_body: Value, userinfo: Value) -> Self {
        let state = Arc::new(Mutex::new(GenericState {
            auth_method,
            codes: Vec::new(),
            token_status: 200,
            token_body,
            userinfo,
            userinfo_refuses: false,
            requests: Vec::new(),
        }));
        let shared = state.clone();
        let endpoint = poem::endpoint::make(move |mut request: Request| {
            let state = shared.clone();
            async move {
                let body = request.take_body().into_bytes().await.unwrap_or_default();
                let recorded = record(&request, &body);
                let mut state = state.lock().unwrap();
                state.requests.push(recorded.clone());
                generic_answer(&mut state, &recorded)
            }
        });
        let (address, task) = serve(endpoint);
        Self {
            base: format!("http://{address}"),
            state,
            task,
        }
    }

    fn config(&self) -> OAuth2Config {
        OAuth2Config {
            client_id: Some("app:1".into()),
            authorize_url: Some(format!("{}/authorize", self.base)),
            token_url: Some(format!("{}/token", self.base)),
            userinfo_url: Some(format!("{}/userinfo", self.base)),
            revocation_url: Some(format!("{}/revoke", self.base)),
            client_auth_method: self.state.lock().unwrap().auth_method.into(),
            user_agent: USER_AGENT.into(),
            ..OAuth2Config::default()
        }
    }

    fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Logs in through the double and returns the code.
    async fn code(&self, provider: &OAuth2Provider, challenge: Option<&str>) -> String {
        let request = AuthorizationRedirect {
            redirect_uri: CALLBACK,
            state: "st",
            code_challenge: challenge,
        };
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(provider.authorization_url(&request))
            .send()
            .await
            .unwrap();
        let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned()
    }
}

fn generic_answer(state: &mut GenericState, request: &RecordedRequest) -> Response {
    let error = |status: u16, code: &str| json_response(status, &json!({"error": code}));
    match request.path.as_str() {
        "/authorize" => {
            let code = random_token("gc_");
            state.codes.push((
                code.clone(),
                request.query_param("code_challenge").map(str::to_owned),
            ));
            let location = format!(
                "{CALLBACK}?code={code}&state={}",
                request.query_param("state").unwrap_or_default()
            );
            Response::builder()
                .status(poem::http::StatusCode::FOUND)
                .header("location", location)
                .finish()
        }
        "/userinfo" => match request.bearer_token() {
            Some(token)
                if !state.userinfo_refuses
                    && Some(token) == state.token_body["access_token"].as_str() =>
            {
                json_response(200, &state.userinfo)
            }
            _ => error(401, "invalid_token"),
        },
        "/token" | "/revoke" => {
            let client_authenticated = match state.auth_method {
                "client_secret_post" => {
                    request.header("authorization").is_none()
                        && request.field("client_id") == Some("app:1")
                        && request.field("client_secret") == Some("secret")
                }
                _ => {
                    request.basic_credentials() == Some(("app:1".into(), "secret".into()))
                        && request.field("client_secret").is_none()
                }
            };
            if !client_authenticated {
                return error(401, "invalid_client");
            }
            if request.path == "/revoke" {
                return json_response(200, &json!({}));
            }
            if request.grant_type() == Some("authorization_code") {
                let Some(index) = state
                    .codes
                    .iter()
                    .position(|(code, _)| Some(code.as_str()) == request.field("code"))
                else {
                    return error(400, "invalid_grant");
                };
                // RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) == code_challenge.
                let (_, challenge) = state.codes.remove(index);
                let verified = request.field("code_verifier").map(|v| {
                    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
                        &aws_lc_rs::digest::SHA256,
                        v.as_bytes(),
                    ))
                });
                if challenge != verified {
                    return error(400, "invalid_grant");
                }
            }
            json_response(state.token_status, &state.token_body)
        }
        _ => error(404, "not_found"),
    }
}

async fn generic(
    auth_method: &'static str,
    token_body: Value,
    userinfo: Value,
    adjust: impl FnOnce(&mut OAuth2Config),
) -> (GenericDouble, OAuth2Provider) {
    let double = GenericDouble::start(auth_method, token_body, userinfo).await;
    let mut config = double.config();
    adjust(&mut config);
    let provider = OAuth2Provider::new(
        &config,
        "secret".into(),
        TIMEOUT,
        ManualClock::starting_at(START),
    );
    (double, provider)
}

#[tokio::test]
async fn oauth2_client_secret_post_with_pkce_scopes_and_subject_from_the_token_response() {
    let token = json!({"access_token": "g_at", "token_type": "Bearer", "expires_in": "3600", "refresh_token": "g_rt", "user": {"id": 42, "name": "Ann"}});
    let (double, provider) = generic("client_secret_post", token, json!({}), |c| {
        c.use_pkce = true;
        c.scopes = vec!["openid".into(), "offline_access".into()];
        c.subject_path = "user.id".into();
        c.display_name_path = Some("user.name".into());
    })
    .await;
    assert_eq!(provider.name(), "oauth2");
    let code = double.code(&provider, Some(CHALLENGE)).await;
    let tokens = provider
        .exchange_code(&code, CALLBACK, Some(VERIFIER))
        .await
        .unwrap();
    assert_eq!(
        (tokens.subject.as_str(), tokens.display_name.as_deref()),
        ("42", Some("Ann"))
    );
    assert_eq!(
        (tokens.refresh_token.as_deref(), tokens.expires_at),
        (Some("g_rt"), Some(START + 3600))
    );
    let authorize = &double.requests_to("/authorize")[0];
    assert_eq!(
        authorize.query_param("scope"),
        Some("openid offline_access")
    );
    assert_eq!(authorize.query_param("code_challenge_method"), Some("S256"));
    let sent = &double.requests_to("/token")[0];
    assert_eq!(
        sent.field_names(),
        [
            "grant_type",
            "code",
            "redirect_uri",
            "code_verifier",
            "client_id",
            "client_secret"
        ]
    );
    assert_eq!(sent.header("user-agent"), Some(USER_AGENT));
    assert!(double.requests_to("/userinfo").is_empty());

    let refreshed = provider.refresh("g_rt").await.unwrap();
    assert_eq!(
        refreshed.subject, "42",
        "read again from the refresh response"
    );
    assert_eq!(
        double.requests_to("/token")[1].field("grant_type"),
        Some("refresh_token")
    );
}

#[tokio::test]
async fn oauth2_client_secret_basic_with_subject_from_userinfo() {
    let token = json!({"access_token": "g_at", "token_type": "bearer"});
    let userinfo = json!({"sub": "user-7", "name": "Bo"});
    let (double, provider) = generic("client_secret_basic", token, userinfo, |c| {
        c.subject_source = "userinfo".into();
        c.display_name_path = Some("name".into());
    })
    .await;
    let code = double.code(&provider, None).await;
    let tokens = provider.exchange_code(&code, CALLBACK, None).await.unwrap();
    assert_eq!(
        (
            tokens.subject.as_str(),
            tokens.display_name.as_deref(),
            tokens.refresh_token,
            tokens.expires_at
        ),
        ("user-7", Some("Bo"), None, None)
    );
    let sent = &double.requests_to("/token")[0];
    assert_eq!(
        sent.field_names(),
        ["grant_type", "code", "redirect_uri"],
        "no PKCE when off, no scope when none"
    );
    let userinfo = &double.requests_to("/userinfo")[0];
    assert_eq!(
        (userinfo.bearer_token(), userinfo.header("user-agent")),
        (Some("g_at"), Some(USER_AGENT))
    );

    let refreshed = provider.refresh("g_rt").await.unwrap();
    assert_eq!(
        (refreshed.subject.as_str(), refreshed.refresh_token),
        ("", None),
        "userinfo is not called on a refresh"
    );
    assert_eq!(double.requests_to("/userinfo").len(), 1);
}

#[tokio::test]
async fn oauth2_revocation_is_rfc_7009_and_optional() {
    let (double, provider) = generic("client_secret_basic", json!({}), json!({}), |_| {}).await;
    provider.revoke("g_at").await.unwrap();
    let sent = &double.requests_to("/revoke")[0];
    assert_eq!(
        sent.form,
        [
            ("token".into(), "g_at".into()),
            ("token_type_hint".into(), "access_token".into())
        ]
    );
    assert_eq!(
        sent.basic_credentials(),
        Some(("app:1".into(), "secret".into()))
    );

    let (double, provider) = generic("client_secret_basic", json!({}), json!({}), |c| {
        c.revocation_url = None
    })
    .await;
    provider.revoke("g_at").await.unwrap();
    assert!(double.state.lock().unwrap().requests.is_empty());
}

#[tokio::test]
async fn oauth2_errors_are_classified_like_ownerrez() {
    let token = json!({"access_token": "g_at", "id": 5});
    let (double, provider) =
        generic("client_secret_basic", token, json!({"sub": "x"}), |_| {}).await;
    let code = double.code(&provider, None).await;
    match provider.exchange_code(&code, CALLBACK, None).await {
        Err(UpstreamError::Malformed(message)) => assert!(message.contains("`sub`"), "{message}"),
        other => panic!("no subject: {other:?}"),
    }
    assert_eq!(
        refused_code(provider.exchange_code("gc_unknown", CALLBACK, None).await),
        "invalid_grant"
    );
    double.state.lock().unwrap().token_status = 503;
    assert!(is_unavailable(&provider.refresh("g_rt").await));

    let (double, provider) = generic(
        "client_secret_basic",
        json!({"access_token": "g_at"}),
        json!({"sub": "x"}),
        |c| c.subject_source = "userinfo".into(),
    )
    .await;
    double.state.lock().unwrap().userinfo_refuses = true;
    let code = double.code(&provider, None).await;
    assert_eq!(
        refused_code(provider.exchange_code(&code, CALLBACK, None).await),
        "invalid_token",
        "userinfo refused the token"
    );
}

// The double itself: the rules from ownerrez.md that the providers above never break.

#[tokio::test]
async fn ownerrez_double_enforces_the_documented_rules() {
    let clock = ManualClock::starting_at(START);
    let double = OwnerRezDouble::start_with_clock(clock.clone()).await;
    let http = reqwest::Client::new();
    let post = |form: Vec<(&'static str, String)>, user_agent: Option<&str>| {
        let mut request = http
            .post(double.token_url())
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&form);
        request = match user_agent {
            Some(ua) => request.header("user-agent", ua),
            None => request,
        };
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let exchange = |code: String| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", CALLBACK.to_owned()),
        ]
    };

    let (status, body) = post(exchange(double.issue_code(CALLBACK)), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("user_agent_required"))
    );
    for extra in ["scope", "resource"] {
        let mut form = exchange(double.issue_code(CALLBACK));
        form.push((extra, "x".into()));
        assert_eq!(post(form, Some(USER_AGENT)).await.0, 400, "{extra}");
    }
    let code = double.issue_code(CALLBACK);
    clock.advance(crate::ownerrez_double::CODE_TTL_SECS + 1);
    assert_eq!(
        post(exchange(code), Some(USER_AGENT)).await.1["error"],
        "invalid_grant",
        "codes live 10 minutes"
    );
    let code = double.issue_code(CALLBACK);
    assert_eq!(post(exchange(code.clone()), Some(USER_AGENT)).await.0, 200);
    assert_eq!(
        post(exchange(code), Some(USER_AGENT)).await.1["error"],
        "invalid_grant",
        "codes are single use"
    );
    let response = http
        .post(double.token_url())
        .header("user-agent", USER_AGENT)
        .form(&exchange(double.issue_code(CALLBACK)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "Basic auth is required");
    let me = http
        .get(format!("{}/users/me", double.api_base_url()))
        .header("user-agent", USER_AGENT)
        .bearer_auth("at_unknown")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            me.status().as_u16(),
            me.json::<Value>().await.unwrap()["code"].clone()
        ),
        (401, json!("invalid_token"))
    );
    assert_eq!(double.count("authorization_code"), 7);
}
