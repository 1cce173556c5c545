//! `GET /authorize` and the consent form it shows (answered at `POST /authorize/consent`,
//! in `consent`).
//!
//! Until the client and its redirect URI are verified, every error is an HTML page and never
//! a redirect (RFC 6749 §4.1.2.1): an unverified redirect URI would make this server an open
//! redirector. Only `match_redirect_uri` produces a [`VerifiedRedirectUri`], so only errors
//! after that point can be redirected. Consent comes before the user is sent upstream: every
//! client ends up behind the same upstream client, so the user must see which one is asking.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};

use super::AppState;
use super::consent;
use super::pages::{self, ConsentPage, ErrorPage};
use crate::clients::resolve::{ClientOrigin, ResolveError, ResolvedClient, resolve_client};
use crate::ids::ClientId;
use crate::oauth::authorize::{AuthorizeQuery, Prompt, ValidAuthorization, validate_authorization};
use crate::oauth::consent::ConsentTerms;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::pkce;
use crate::oauth::redirect_uri::{VerifiedRedirectUri, match_redirect_uri};
use crate::oauth::scope::ScopeSet;
use crate::routes::{CALLBACK_PATH, CONSENT_PATH};
use crate::store::login::{RequestRow, RequestStatus};
use crate::tokens::opaque;
use crate::upstream::AuthorizationRedirect;
use crate::vault::context;

/// An HTML error page: the browser stays here.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    pages::html_response(status, pages::render_error(&ErrorPage { title, message }))
}

/// A `302` to `location`, never cached, with the given cookies.
pub fn redirect(location: &str, cookies: &[String]) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::FOUND)
        .header("location", location)
        .header("cache-control", "no-store");
    for cookie in cookies {
        builder = builder.header("set-cookie", cookie.as_str());
    }
    builder.finish()
}

/// The client's redirect URI with `params` appended to its query (RFC 6749 §4.1.2).
pub fn redirect_uri_with(uri: &VerifiedRedirectUri, params: &[(&str, &str)]) -> String {
    let mut out = uri.as_str().to_owned();
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    out.push(if out.contains('?') { '&' } else { '?' });
    out.push_str(&serializer.finish());
    out
}

/// An error sent back to the client's verified redirect URI, with `state` and `iss`
/// (RFC 9207).
pub fn error_redirect(
    state: &AppState,
    uri: &VerifiedRedirectUri,
    error: &OAuthError,
    client_state: Option<&str>,
) -> Response {
    let mut params = vec![
        ("error", error.code.as_str()),
        ("error_description", error.description.as_str()),
    ];
    if let Some(client_state) = client_state {
        params.push(("state", client_state));
    }
    params.push(("iss", state.issuer.as_str()));
    tracing::info!(error = %error.code, "authorization request refused with a redirect");
    redirect(&redirect_uri_with(uri, &params), &[])
}

/// An error found after the redirect URI is verified: sent back to the client when it may
/// receive errors (`ResolvedClient::may_redirect_errors`), else shown here, naming the app's
/// host, so this server never bounces a browser to a site no one has vouched for
/// (RFC 9700 §4.11.2).
fn refuse_verified(
    state: &AppState,
    client: &ResolvedClient,
    uri: &VerifiedRedirectUri,
    error: &OAuthError,
    client_state: Option<&str>,
) -> Response {
    if client.may_redirect_errors {
        return error_redirect(state, uri, error, client_state);
    }
    tracing::info!(error = %error.code, "authorization request refused with a page (client not yet approved)");
    let status = StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let message = format!(
        "{} ({}). Go back to the app at {} and try again.",
        error.description,
        error.code,
        uri.display_host()
    );
    error_page(status, "This sign-in request cannot be used", &message)
}

#[handler]
pub async fn authorize(request: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let query = AuthorizeQuery::parse(request.uri().query().unwrap_or_default());
    let (client, redirect_uri) = match verify_client_and_redirect_uri(state, &query).await {
        Ok(verified) => verified,
        Err(page) => return page,
    };

    // From here on, errors go back to a client that may receive them.
    let valid = match validate_authorization(&query, &state.resources) {
        Ok(valid) => valid,
        Err(error) => {
            return refuse_verified(state, &client, &redirect_uri, &error, query.get("state"));
        }
    };

    let now = state.clock.now();
    let pending =
        match store_pending_request(state, request, &client, &redirect_uri, &valid, now).await {
            Ok(pending) => pending,
            Err(response) => return response,
        };
    tracing::info!(client_id = %client.client_id, resource = %valid.resource, "authorization request accepted");

    // An approval this browser remembers skips the page when it covers this request, unless
    // the client asks for consent.
    let terms = ConsentTerms {
        client_id: client.client_id.as_str(),
        client_fingerprint: &client.fingerprint,
        software: client.software.as_deref(),
        redirect_uri: redirect_uri.as_str(),
        resource: valid.resource.as_str(),
        scope: &valid.scope,
    };
    if valid.prompt == Prompt::Default
        && consent::is_remembered(state, request, &client.client_id, &terms, now).await
    {
        tracing::info!(client_id = %client.client_id, "remembered approval: straight to the upstream");
        return begin_upstream(state, &pending.handle, &pending.browser, pending.cookies).await;
    }
    render_consent(state, &client, &redirect_uri, &valid, pending)
}

/// A "cannot be used" page for a request whose client or redirect URI is not yet verified.
fn unverified_request_page(message: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in request cannot be used",
        message,
    )
}

/// Decides which client asks and whether the redirect URI is one it registered; every
/// refusal is a page, since nothing yet says where a redirect could safely go.
async fn verify_client_and_redirect_uri(
    state: &AppState,
    query: &AuthorizeQuery,
) -> Result<(ResolvedClient, VerifiedRedirectUri), Response> {
    if query.is_repeated("client_id") || query.is_repeated("redirect_uri") {
        return Err(unverified_request_page(
            "The request names its app or its return address more than once.",
        ));
    }
    let Some(client_id) = query.get("client_id") else {
        return Err(unverified_request_page(
            "The request does not say which app is asking (client_id is missing).",
        ));
    };
    // Outside input: an id that does not parse names no client, and is answered as one.
    let Ok(client_id) = client_id.parse::<ClientId>() else {
        return Err(unverified_request_page(&ResolveError::Unknown.to_string()));
    };
    let client = resolve_requesting_client(state, &client_id).await?;

    // Exact (or loopback with any port) among the registered ones. It is required, so that
    // the token request can be required to repeat it (RFC 6749 §4.1.3).
    let Some(requested) = query.get("redirect_uri") else {
        return Err(unverified_request_page(
            "The request does not say where to return you (redirect_uri is missing).",
        ));
    };
    let Some(redirect_uri) =
        match_redirect_uri(client.redirect_uris.iter().map(String::as_str), requested)
    else {
        return Err(unverified_request_page(
            "The app asked to return you to an address it has not registered. Nothing was sent to it.",
        ));
    };
    Ok((client, redirect_uri))
}

/// Finds the client by its id (registered, or a metadata document fetched now); a failure to
/// look is told apart from an unknown client so the user knows whether retrying can help.
async fn resolve_requesting_client(
    state: &AppState,
    client_id: &ClientId,
) -> Result<ResolvedClient, Response> {
    let documents = &state.config.client_metadata_documents;
    match resolve_client(
        &state.store,
        &state.documents,
        documents.enabled,
        documents.allow_http_loopback,
        client_id,
    )
    .await
    {
        Ok(client) => Ok(client),
        Err(ResolveError::Store(error)) => {
            tracing::error!(%error, "client lookup failed");
            Err(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again in a moment.",
            ))
        }
        Err(ResolveError::Document(error)) if error.is_temporary() => Err(error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The app could not be checked",
            "Its description could not be fetched right now. Please try again in a moment.",
        )),
        Err(error) => Err(unverified_request_page(&error.to_string())),
    }
}

/// A stored, still unapproved request: the handle the consent form carries and the browser
/// it is bound to.
struct PendingRequest {
    handle: String,
    browser: String,
    /// A new browser cookie to set, when the browser had none.
    cookies: Vec<String>,
}

/// Stores the validated request under a fresh handle, bound to this browser (given a cookie
/// now if it has none), so that consent and the callback can only continue it here.
async fn store_pending_request(
    state: &AppState,
    request: &Request,
    client: &ResolvedClient,
    redirect_uri: &VerifiedRedirectUri,
    valid: &ValidAuthorization,
    now: i64,
) -> Result<PendingRequest, Response> {
    let (browser, new_cookie) = match state.cookies.browser_value(request) {
        Some(value) => (value, None),
        None => {
            let (value, header) = state.cookies.new_browser_value();
            (value, Some(header))
        }
    };
    let handle = opaque::generate("req");
    let row = RequestRow {
        request_hash: opaque::hash(&handle),
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_redirect_uri(),
        state: valid.state.clone(),
        code_challenge: valid.code_challenge.clone(),
        scope: ScopeSet::from_stored(&valid.scope),
        resource: valid.resource.clone(),
        prompt: (valid.prompt == Prompt::Consent).then(|| "consent".to_owned()),
        browser_hash: opaque::hash(&browser),
        upstream_state_hash: None,
        upstream_pkce_verifier: None,
        status: RequestStatus::Pending,
        created_at: now,
        expires_at: now + state.config.login.pending_request_ttl_secs as i64,
    };
    if let Err(error) = state.store.insert_authorization_request(row).await {
        tracing::error!(%error, "could not store the authorization request");
        return Err(refuse_verified(
            state,
            client,
            redirect_uri,
            &OAuthError::new(ErrorCode::ServerError, "the request could not be stored"),
            valid.state.as_deref(),
        ));
    }
    Ok(PendingRequest {
        handle,
        browser,
        cookies: new_cookie.into_iter().collect(),
    })
}

/// The consent page for a stored request; its form is bound to the request, the browser and
/// the client's current description by the CSRF token.
fn render_consent(
    state: &AppState,
    client: &ResolvedClient,
    redirect_uri: &VerifiedRedirectUri,
    valid: &ValidAuthorization,
    pending: PendingRequest,
) -> Response {
    let csrf = state
        .cookies
        .csrf_token(&pending.handle, &pending.browser, &client.fingerprint);
    let origin = match &client.origin {
        ClientOrigin::Dynamic => pages::ClientOrigin::Dynamic,
        ClientOrigin::Admin => pages::ClientOrigin::Admin,
        ClientOrigin::MetadataDocument { host } => {
            pages::ClientOrigin::MetadataDocument { host: host.clone() }
        }
    };
    let scopes: Vec<String> = valid
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let form_action = state.issuer.endpoint(CONSENT_PATH);
    let remember = state.config.login.remember_consent_secs;
    let account_url = state
        .config
        .account
        .enabled
        .then(|| state.issuer.endpoint(crate::routes::ACCOUNT_PATH));
    let page = ConsentPage {
        client_name: &client.name,
        client_origin: origin,
        redirect_host: &redirect_uri.display_host(),
        redirect_kind: redirect_uri.kind(),
        resource_name: &valid.resource_name,
        resource_uri: valid.resource.as_str(),
        scopes: &scopes,
        upstream_name: state.upstream_display_name(),
        form_action: &form_action,
        request_handle: &pending.handle,
        csrf_token: &csrf,
        remember_days: (remember > 0).then(|| remember.div_ceil(86_400)),
        account_url: account_url.as_deref(),
    };
    let mut response = pages::html_response(StatusCode::OK, pages::render_consent(&page));
    for cookie in pending.cookies {
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append("set-cookie", value);
        }
    }
    response
}

/// The redirect URI stored with a request: it was verified before the request was stored.
pub fn stored_redirect_uri(row: &RequestRow) -> VerifiedRedirectUri {
    match_redirect_uri([row.redirect_uri.as_str()], row.redirect_uri.as_str())
        .expect("a URI matches itself")
}

/// Moves an approved request upstream: a fresh single-use state (stored hashed) and, when the
/// provider takes it, PKCE; then the redirect to the upstream's login.
pub(super) async fn begin_upstream(
    state: &AppState,
    handle: &str,
    browser: &str,
    cookies: Vec<String>,
) -> Response {
    let upstream_state = opaque::random_base64url(32);
    let state_hash = opaque::hash(&upstream_state);
    let (verifier, challenge) = if state.upstream.uses_pkce() {
        let (verifier, challenge) = pkce::generate_pair();
        (Some(verifier), Some(challenge))
    } else {
        (None, None)
    };
    let sealed = verifier.map(|v| {
        state
            .vault
            .seal(v.as_bytes(), &context::upstream_pkce(&state_hash))
    });
    let now = state.clock.now();
    match state
        .store
        .approve_request(
            &opaque::hash(handle),
            &opaque::hash(browser),
            &state_hash,
            sealed,
            now,
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This page has expired",
                "The approval was already used or has expired. Go back to the app and connect again.",
            );
        }
        Err(error) => {
            tracing::error!(%error, "could not record the approval");
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again.",
            );
        }
    }
    let callback = state.issuer.endpoint(CALLBACK_PATH);
    let location = state.upstream.authorization_url(&AuthorizationRedirect {
        redirect_uri: &callback,
        state: &upstream_state,
        code_challenge: challenge.as_deref(),
    });
    tracing::info!(
        provider = state.upstream.name(),
        "sending the user to the upstream login"
    );
    state.metrics.login_started();
    redirect(&location, &cookies)
}
