//! Web sessions over HTTP: the extractors every console and connected-apps page goes through
//! ([`Session`] for a page, [`SessionForm`] for every form post: same-origin check, session and
//! CSRF token in one), the sign-in start and sign-out handlers, and the session cookie.
//!
//! A page cannot forget a check: a handler that takes `AccountSession` is never reached
//! without a live session, and one that takes `AccountForm` never without a same-origin post
//! carrying the session's CSRF token. The upstream's answer to a sign-in arrives at the one
//! upstream callback (`callback`), which hands it to `session_callback`.

use std::marker::PhantomData;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{FromRequest, Request, RequestBody, Response, handler};

use super::AppState;
use super::authorize::{error_page, redirect};
use crate::oauth::authorize::AuthorizeQuery;
use crate::oauth::pkce;
use crate::routes::{
    ACCOUNT_PATH, ACCOUNT_SIGN_IN_PATH, CALLBACK_PATH, CONSOLE_PATH, CONSOLE_SIGN_IN_PATH,
};
use crate::sessions::rules::{is_same_origin_post, origin_of};
use crate::sessions::{Purpose, WebSession};
use crate::store::audit::AuditRecord;
use crate::tokens::opaque;
use crate::upstream::AuthorizationRedirect;
use crate::vault::context;

/// A kind of session, as a type: which purpose, whether it is enabled, where its pages are.
pub trait SessionKind: Send + Sync + 'static {
    const PURPOSE: Purpose;
    /// The page a signed-in person lands on.
    const HOME_PATH: &'static str;
    /// The page that offers the sign-in.
    const SIGN_IN_PATH: &'static str;
    fn enabled(state: &AppState) -> bool;
    /// The page shown while the feature is off.
    fn disabled_page() -> Response;
}

/// The operator console's sessions.
pub struct Console;
/// The connected-apps page's sessions.
pub struct Account;

impl SessionKind for Console {
    const PURPOSE: Purpose = Purpose::Console;
    const HOME_PATH: &'static str = CONSOLE_PATH;
    const SIGN_IN_PATH: &'static str = CONSOLE_SIGN_IN_PATH;
    fn enabled(state: &AppState) -> bool {
        state.config.console.enabled
    }
    fn disabled_page() -> Response {
        error_page(
            StatusCode::NOT_FOUND,
            "The operator console is turned off",
            "This server does not offer its operator console. An operator can turn it on with `enabled = true` in the [console] section of the configuration.",
        )
    }
}

impl SessionKind for Account {
    const PURPOSE: Purpose = Purpose::Account;
    const HOME_PATH: &'static str = ACCOUNT_PATH;
    const SIGN_IN_PATH: &'static str = ACCOUNT_SIGN_IN_PATH;
    fn enabled(state: &AppState) -> bool {
        state.config.account.enabled
    }
    fn disabled_page() -> Response {
        error_page(
            StatusCode::NOT_FOUND,
            "This page is not available",
            "This server does not offer a page of connected apps. You can still disconnect an app where you installed it, or in your OwnerRez settings.",
        )
    }
}

/// A page's extractor: the live session of the request, or (when there is none) a `303` to
/// the sign-in page, or the "turned off" page.
pub struct Session<K: SessionKind> {
    pub session: WebSession,
    kind: PhantomData<K>,
}

pub type ConsoleSession = Session<Console>;
pub type AccountSession = Session<Account>;

/// A form post's extractor: the post comes from our own pages (`Sec-Fetch-Site` / `Origin`),
/// a live session sent it, and its `csrf` field is the session's token. Refusals are a `403`
/// page (or the sign-in redirect when there is no session); the handler never runs.
pub struct SessionForm<K: SessionKind> {
    pub session: WebSession,
    pub fields: AuthorizeQuery,
    kind: PhantomData<K>,
}

pub type ConsoleForm = SessionForm<Console>;
pub type AccountForm = SessionForm<Account>;

fn app_state(request: &Request) -> poem::Result<&Arc<AppState>> {
    request.data::<Arc<AppState>>().ok_or_else(|| {
        poem::Error::from_string("no application state", StatusCode::INTERNAL_SERVER_ERROR)
    })
}

fn refusal(response: Response) -> poem::Error {
    super::errors::answer_as_is(response)
}

/// Loads the live session of `K` from the request's cookie.
async fn load_session<K: SessionKind>(
    state: &AppState,
    request: &Request,
) -> Result<WebSession, Response> {
    if !K::enabled(state) {
        return Err(K::disabled_page());
    }
    let sign_in = || {
        let mut response = redirect(&state.issuer.endpoint(K::SIGN_IN_PATH), &[]);
        response.set_status(StatusCode::SEE_OTHER);
        response
    };
    let Some(value) = session_cookie(request, K::PURPOSE) else {
        return Err(sign_in());
    };
    match state.sessions.find(K::PURPOSE, &value).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(sign_in()),
        Err(error) => {
            tracing::error!(%error, "could not load a web session");
            Err(unavailable_page())
        }
    }
}

impl<'a, K: SessionKind> FromRequest<'a> for Session<K> {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = app_state(request)?;
        let session = load_session::<K>(state, request).await.map_err(refusal)?;
        Ok(Self {
            session,
            kind: PhantomData,
        })
    }
}

impl<'a, K: SessionKind> FromRequest<'a> for SessionForm<K> {
    async fn from_request(request: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let state = app_state(request)?;
        if !K::enabled(state) {
            return Err(refusal(K::disabled_page()));
        }
        if let Some(page) = refuse_cross_site(state, request) {
            return Err(refusal(page));
        }
        let session = load_session::<K>(state, request).await.map_err(refusal)?;
        let text = String::from_request(request, body).await?;
        let fields = AuthorizeQuery::parse(&text);
        let csrf_ok = !fields.is_repeated("csrf")
            && fields
                .get("csrf")
                .is_some_and(|token| state.sessions.verify_csrf(&session, token));
        if !csrf_ok {
            tracing::warn!(
                purpose = K::PURPOSE.as_str(),
                "form post with a bad CSRF token refused"
            );
            return Err(refusal(error_page(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "Nothing was changed. Go back, reload the page and try again.",
            )));
        }
        Ok(Self {
            session,
            fields,
            kind: PhantomData,
        })
    }
}

/// A `403` page when a post does not come from our own pages (a cross-site form, a sibling
/// site); `None` when it may go on.
pub fn refuse_cross_site(state: &AppState, request: &Request) -> Option<Response> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let ours = origin_of(state.issuer.as_str());
    if is_same_origin_post(header("sec-fetch-site"), header("origin"), &ours) {
        return None;
    }
    tracing::warn!("cross-site form post refused");
    Some(error_page(
        StatusCode::FORBIDDEN,
        "This form was sent from another site",
        "Nothing was changed. If you meant to do this, open this page directly and try again.",
    ))
}

fn unavailable_page() -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again in a moment.",
    )
}

/// The session cookie of `purpose`, when the request carries one that looks like ours.
fn session_cookie(request: &Request, purpose: Purpose) -> Option<String> {
    request
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == purpose.cookie_name())
        .map(|(_, value)| value.to_owned())
        .filter(|value| value.len() == 43)
}

/// The `Set-Cookie` header of a session: `__Host-`, Secure, HttpOnly, Lax (the return from the
/// upstream is a cross-site navigation, which Strict would strip), gone with the session.
fn session_cookie_header(purpose: Purpose, value: &str, max_age: i64) -> String {
    format!(
        "{}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}",
        purpose.cookie_name()
    )
}

/// A `303` to `location`.
fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = redirect(location, cookies);
    response.set_status(StatusCode::SEE_OTHER);
    response
}

/// Starts a session for `subject` and answers `303` to `location` with its cookie. The
/// upstream sign-in and the console's admin-token form both end here.
pub async fn signed_in_response(
    state: &AppState,
    purpose: Purpose,
    subject: &str,
    label: &str,
    location: &str,
) -> Response {
    match state.sessions.create(purpose, subject, label).await {
        Ok(value) => {
            let max_age = state.sessions.absolute_secs(purpose);
            tracing::info!(purpose = purpose.as_str(), "web session started");
            see_other(location, &[session_cookie_header(purpose, &value, max_age)])
        }
        Err(error) => {
            tracing::error!(%error, "could not store a web session");
            unavailable_page()
        }
    }
}

/// `POST /account/sign-in`: see [`start_sign_in`].
#[handler]
pub async fn start_account_sign_in(
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    start_sign_in::<Account>(request, state).await
}

/// `POST /console/sign-in/upstream`: see [`start_sign_in`].
#[handler]
pub async fn start_console_sign_in(
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    start_sign_in::<Console>(request, state).await
}

/// `POST /account/sign-out`: see [`sign_out`].
#[handler]
pub async fn account_sign_out(
    form: AccountForm,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    sign_out(form, request, state).await
}

/// `POST /console/sign-out`: see [`sign_out`].
#[handler]
pub async fn console_sign_out(
    form: ConsoleForm,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    sign_out(form, request, state).await
}

/// The `POST` of a sign-in page's button: a pending sign-in bound to this browser, then the
/// upstream's login. Same-origin posts only, and at most
/// [`crate::sessions::SIGN_IN_STARTS_PER_MINUTE`] per instance.
pub async fn start_sign_in<K: SessionKind>(request: &Request, state: &AppState) -> Response {
    if !K::enabled(state) {
        return K::disabled_page();
    }
    if let Some(page) = refuse_cross_site(state, request) {
        return page;
    }
    if !state.sessions.allow_sign_in_start() {
        return error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ins right now",
            "Please wait a minute and try again.",
        );
    }
    let (browser, cookies) = match state.cookies.browser_value(request) {
        Some(value) => (value, Vec::new()),
        None => {
            let (value, header) = state.cookies.new_browser_value();
            (value, vec![header])
        }
    };
    let upstream_state = opaque::random_base64url(32);
    let state_hash = opaque::hash(&upstream_state);
    let (verifier, challenge) = match state.upstream.uses_pkce() {
        true => {
            let (verifier, challenge) = pkce::generate_pair();
            (Some(verifier), Some(challenge))
        }
        false => (None, None),
    };
    let sealed = verifier.map(|v| {
        state
            .vault
            .seal(v.as_bytes(), &context::upstream_pkce(&state_hash))
    });
    if let Err(error) = state
        .sessions
        .begin_sign_in(K::PURPOSE, &state_hash, &opaque::hash(&browser), sealed)
        .await
    {
        tracing::error!(%error, "could not store a web sign-in");
        return unavailable_page();
    }
    let callback = state.issuer.endpoint(CALLBACK_PATH);
    let location = state.upstream.authorization_url(&AuthorizationRedirect {
        redirect_uri: &callback,
        state: &upstream_state,
        code_challenge: challenge.as_deref(),
    });
    tracing::info!(
        purpose = K::PURPOSE.as_str(),
        provider = state.upstream.name(),
        "web sign-in sent to the upstream"
    );
    see_other(&location, &cookies)
}

/// The `POST` of a "Sign out" button: the session's row goes (the cookie is then worthless on
/// every instance) and the cookie is cleared.
pub async fn sign_out<K: SessionKind>(
    form: SessionForm<K>,
    request: &Request,
    state: &AppState,
) -> Response {
    if let Err(error) = state.sessions.end(&form.session).await {
        tracing::error!(%error, "could not end a web session");
        return unavailable_page();
    }
    if K::PURPOSE == Purpose::Console {
        let session = &form.session;
        audit_console(
            state,
            request,
            &session.subject,
            &session.label,
            "console.sign_out",
        )
        .await;
    }
    let cleared = session_cookie_header(K::PURPOSE, "", 0);
    see_other(&state.issuer.endpoint(K::SIGN_IN_PATH), &[cleared])
}

/// Records a console sign-in or sign-out with the operator's identity (best effort).
pub async fn audit_console(
    state: &AppState,
    request: &Request,
    subject: &str,
    label: &str,
    action: &str,
) {
    let address = super::registration::request_address(
        request,
        state.config.registration.trust_forwarded_for,
    );
    let summary = serde_json::json!({ "operator": subject, "label": label });
    let actor = crate::sessions::console_actor(subject);
    let record =
        AuditRecord::new(state.clock.now(), &actor, action, &summary).source(address.as_deref());
    if let Err(error) = state.store.record_change(record).await {
        tracing::error!(%error, "could not audit a console session");
    }
}
