//! `POST /authorize/consent`, the consent form's answer, and remembered approvals.
//!
//! An approval the user asks to remember is stored (`store::consents`) under the hash of a
//! random handle the browser keeps in an HttpOnly cookie, bound to the terms the page showed:
//! the client's fingerprint, the redirect URI, the resource and the scopes. It counts only once
//! the login it started has completed (the callback records the user on it), and a later
//! request skips the page only when `oauth::consent::is_covered` says the approval covers it.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};

use super::AppState;
use super::authorize::{begin_upstream, error_page, error_redirect, stored_redirect_uri};
use crate::clients::resolve::may_redirect_errors;
use crate::ids::ClientId;
use crate::oauth::authorize::AuthorizeQuery;
use crate::oauth::consent::{ConsentTerms, is_covered};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::consents::RememberedConsentRow;
use crate::store::login::RequestRow;
use crate::tokens::opaque;

/// The consent form's answer. Every redirect is a 303 (RFC 9110 §15.4.4): the browser follows
/// it with a GET, never by re-posting the form.
#[handler]
pub async fn consent(
    request: &Request,
    body: String,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let mut response = answer(request, &body, state).await;
    if response.status() == StatusCode::FOUND {
        response.set_status(StatusCode::SEE_OTHER);
    }
    response
}

async fn answer(request: &Request, body: &str, state: &AppState) -> Response {
    let expired = || {
        error_page(
            StatusCode::BAD_REQUEST,
            "This page has expired",
            "The approval form was already used, has expired, or was not opened in this browser. Go back to the app and connect again.",
        )
    };
    let failed = || {
        error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Please try again.",
        )
    };
    let form = AuthorizeQuery::parse(body);
    if !form.repeated().is_empty() {
        return expired();
    }
    let (Some(handle), Some(csrf), Some(decision)) =
        (form.get("request"), form.get("csrf"), form.get("decision"))
    else {
        return expired();
    };
    let Some(browser) = state.cookies.browser_value(request) else {
        return expired();
    };
    let Some(client_fingerprint) = state.cookies.verify_csrf(csrf, handle, &browser) else {
        tracing::warn!("consent form with a bad CSRF token refused");
        return expired();
    };
    let now = state.clock.now();
    let request_hash = opaque::hash(handle);
    let browser_hash = opaque::hash(&browser);
    match decision {
        "deny" => match state
            .store
            .deny_request(&request_hash, &browser_hash, now)
            .await
        {
            Ok(Some(row)) => answer_denial(state, &row).await,
            Ok(None) => expired(),
            Err(error) => {
                tracing::error!(%error, "could not record the denial");
                failed()
            }
        },
        "approve" => {
            let mut cookies = Vec::new();
            if form.get("remember") == Some("1") && state.config.login.remember_consent_secs > 0 {
                match state
                    .store
                    .pending_request(&request_hash, &browser_hash, now)
                    .await
                {
                    Ok(Some(row)) => {
                        cookies.extend(
                            remember_approval(state, request, &row, &client_fingerprint, now).await,
                        );
                    }
                    Ok(None) => return expired(),
                    Err(error) => {
                        tracing::error!(%error, "could not load the pending request");
                        return failed();
                    }
                }
            }
            tracing::info!("user approved consent");
            begin_upstream(state, handle, &browser, cookies).await
        }
        _ => expired(),
    }
}

/// The answer to a denial: `access_denied` back to the client (RFC 6749 §4.1.2.1) when it may
/// receive errors, else a page here that names the app's host, so that pressing Deny on the
/// page of a client no one has approved does not bounce the user to its site (RFC 9700
/// §4.11.2). When that cannot be checked, the page.
async fn answer_denial(state: &AppState, row: &RequestRow) -> Response {
    tracing::info!(client_id = %row.client_id, "user denied consent");
    let uri = stored_redirect_uri(row);
    let may_redirect = match may_redirect_errors(&state.store, &row.client_id).await {
        Ok(may_redirect) => may_redirect,
        Err(error) => {
            tracing::error!(%error, "could not look up the client of a denial; showing a page");
            false
        }
    };
    if may_redirect {
        let error = OAuthError::new(ErrorCode::AccessDenied, "the user declined");
        return error_redirect(state, &uri, &error, row.state.as_deref());
    }
    let message = format!(
        "You did not allow the app at {} to connect. Nothing was shared with it.",
        uri.display_host()
    );
    error_page(StatusCode::OK, "You declined", &message)
}

/// Stores the approval of `row` for this browser; the `Set-Cookie` header of its handle (kept
/// for as long as the approval), or `None` when it could not be stored: the login goes on, the
/// page will simply show again next time.
async fn remember_approval(
    state: &AppState,
    request: &Request,
    row: &RequestRow,
    client_fingerprint: &str,
    now: i64,
) -> Option<String> {
    let max_age = state.config.login.remember_consent_secs;
    let handle = state
        .cookies
        .consent_handle(request)
        .unwrap_or_else(|| state.cookies.new_consent_handle());
    let approval = RememberedConsentRow {
        request_hash: row.request_hash.clone(),
        handle_hash: opaque::hash(&handle),
        client_id: row.client_id.clone(),
        client_fingerprint: client_fingerprint.to_owned(),
        software_id: approved_software(state, &row.client_id, client_fingerprint).await,
        redirect_uri: row.redirect_uri.clone(),
        resource: row.resource.clone(),
        scope: row.scope.clone(),
        user_id: None,
        created_at: now,
        expires_at: now.saturating_add(i64::try_from(max_age).unwrap_or(i64::MAX)),
    };
    match state.store.remember_consent(approval).await {
        Ok(()) => Some(state.cookies.consent_handle_cookie(&handle, max_age)),
        Err(error) => {
            tracing::error!(%error, "could not remember the approval; the login goes on");
            None
        }
    }
}

/// The software of the client the page showed, when the client is still as shown (the page's
/// fingerprint is its current one): an approval covers other registrations of exactly that
/// software (`oauth::consent`). A client changed meanwhile, or a failed lookup, gives `None`:
/// the approval then covers its own client only.
async fn approved_software(state: &AppState, client_id: &ClientId, shown: &str) -> Option<String> {
    let row = state.store.client(client_id).await.ok().flatten()?;
    if row.kind != crate::clients::registry::ClientKind::Dynamic
        || crate::clients::resolve::stored_client_fingerprint(&row) != shown
    {
        return None;
    }
    row.software_id
}

/// Whether this browser holds a remembered approval, from a completed login and not expired,
/// that covers `requested` (the terms of `client_id`'s request). A database failure shows the
/// page.
pub async fn is_remembered(
    state: &AppState,
    request: &Request,
    client_id: &ClientId,
    requested: &ConsentTerms<'_>,
    now: i64,
) -> bool {
    if state.config.login.remember_consent_secs == 0 {
        return false;
    }
    let Some(handle) = state.cookies.consent_handle(request) else {
        return false;
    };
    match state
        .store
        .remembered_consents(&opaque::hash(&handle), client_id, requested.software, now)
        .await
    {
        Ok(approvals) => approvals.iter().any(|approval| {
            let scope = approval.scope.to_string();
            is_covered(&approved_terms(approval, &scope), requested)
        }),
        Err(error) => {
            tracing::error!(%error, "could not read remembered approvals; showing the page");
            false
        }
    }
}

/// `row`'s terms; `scope` is its scope's text.
fn approved_terms<'a>(row: &'a RememberedConsentRow, scope: &'a str) -> ConsentTerms<'a> {
    ConsentTerms {
        client_id: row.client_id.as_str(),
        client_fingerprint: &row.client_fingerprint,
        software: row.software_id.as_deref(),
        redirect_uri: row.redirect_uri.as_str(),
        resource: row.resource.as_str(),
        scope,
    }
}
