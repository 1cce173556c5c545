//! The connected-apps page (`/account`): a user signed in through the upstream sees every app
//! that holds access for them and disconnects one or all. A disconnect is the admin API's
//! revocation ([`crate::grants::revoke_grant`]): at once and for good, for refresh, token
//! exchange, the gateway and introspection alike. Pages and forms go through the session
//! extractors, so none is reachable without a session and no form without its CSRF token.

use std::sync::Arc;

use minijinja::{Value, context};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};

use super::AppState;
use super::authorize::{error_page, redirect};
use super::pages::{html_response, render};
use super::registration::request_address;
use super::session::{Account, AccountForm, AccountSession, SessionKind};
use super::when::Moment;
use crate::grants::connected::{AppIdentity, ConnectedApp, connected_apps};
use crate::ids::{ClientId, GrantId};
use crate::oauth::authorize::AuthorizeQuery;
use crate::routes::{
    ACCOUNT_DISCONNECT_PATH, ACCOUNT_PATH, ACCOUNT_SIGN_IN_PATH, ACCOUNT_SIGN_OUT_PATH,
};
use crate::sessions::WebSession;
use crate::store::audit::Actor;

/// `GET /account/sign-in`: the button that starts the sign-in through the upstream.
#[handler]
pub async fn sign_in_page(Data(state): Data<&Arc<AppState>>) -> Response {
    if !Account::enabled(state) {
        return Account::disabled_page();
    }
    let hours = state.config.account.session_absolute_hours;
    let body = render(
        "account_sign_in.html",
        context! {
            upstream_name => state.upstream_display_name(),
            form_action => state.issuer.endpoint(ACCOUNT_SIGN_IN_PATH),
            session_hours => hours,
        },
    );
    html_response(StatusCode::OK, body)
}

/// One app as the template shows it.
fn view_of(state: &AppState, app: ConnectedApp, now: i64) -> Value {
    let (identity, identity_host) = match app.identity {
        AppIdentity::VerifiedUrl { host } => ("verified_url", host),
        AppIdentity::SelfRegistered => ("self_registered", String::new()),
        AppIdentity::Operator => ("operator", String::new()),
        AppIdentity::Unknown => ("unknown", String::new()),
    };
    let resource_name = state
        .resources
        .iter()
        .find(|rule| rule.uri.as_str() == app.resource)
        .map(|rule| rule.name.clone())
        .unwrap_or_else(|| "A service no longer offered".to_owned());
    context! {
        grant_id => app.grant_id.as_str(),
        name => super::pages::without_invisible_controls(&app.name),
        identity,
        identity_host,
        redirect_hosts => app.redirect_hosts,
        resource => app.resource,
        resource_name,
        scopes => app.scopes,
        first => Moment::of(app.first_authorized_at, now).to_value(),
        last => Moment::of(app.last_used_at, now).to_value(),
    }
}

/// `GET /account`: the user's apps (or the designed empty state), and what the last action did.
#[handler]
pub async fn account_page(
    signed_in: AccountSession,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let session = &signed_in.session;
    let apps = match connected_apps(&state.store, &session.user_id()).await {
        Ok(apps) => apps,
        Err(error) => {
            tracing::error!(%error, "could not list a user's connected apps");
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Your apps could not be loaded",
                "Nothing was changed. Please reload the page in a moment.",
            );
        }
    };
    let now = state.clock.now();
    let query = AuthorizeQuery::parse(request.uri().query().unwrap_or_default());
    let done = query
        .get("done")
        .filter(|done| matches!(*done, "one" | "all" | "gone"))
        .unwrap_or_default();
    let apps: Vec<Value> = apps
        .into_iter()
        .map(|app| view_of(state, app, now))
        .collect();
    let body = render(
        "account.html",
        context! {
            label => super::pages::without_invisible_controls(&session.label),
            csrf_token => session.csrf_token(),
            sign_out_action => state.issuer.endpoint(ACCOUNT_SIGN_OUT_PATH),
            disconnect_action => state.issuer.endpoint(ACCOUNT_DISCONNECT_PATH),
            upstream_name => state.upstream_display_name(),
            apps => Value::from(apps),
            done,
        },
    );
    html_response(StatusCode::OK, body)
}

/// `POST /account/disconnect`: `grant=<id>` disconnects that app, `all=yes` every app.
#[handler]
pub async fn disconnect(
    form: AccountForm,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let session = &form.session;
    let fields = &form.fields;
    let result = match (fields.get("grant"), fields.get("all")) {
        (Some(grant_id), None) if !fields.is_repeated("grant") => {
            disconnect_one(state, request, session, grant_id).await
        }
        (None, Some("yes")) => disconnect_all(state, request, session).await,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Nothing was disconnected",
                "Choose an app to disconnect, or tick the box to disconnect every app.",
            );
        }
    };
    match result {
        Ok(done) => {
            let location = format!("{}?done={done}", state.issuer.endpoint(ACCOUNT_PATH));
            let mut response = redirect(&location, &[]);
            response.set_status(StatusCode::SEE_OTHER);
            response
        }
        Err(error) => {
            tracing::error!(%error, "could not disconnect an app");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The app could not be disconnected",
                "Something went wrong on our side. Please go back and try again.",
            )
        }
    }
}

/// Revokes one of the user's live grants; `gone` when it is not (or no longer) theirs and live.
async fn disconnect_one(
    state: &AppState,
    request: &Request,
    session: &WebSession,
    grant_id: &str,
) -> Result<&'static str, crate::store::StoreError> {
    // No grant has an id that is not one.
    let Ok(grant_id) = grant_id.parse::<GrantId>() else {
        return Ok("gone");
    };
    match state.store.grant(&grant_id).await? {
        Some(grant) if grant.user_id == *session.subject.as_str() && grant.revoked_at.is_none() => {
            Ok(
                if revoke(state, request, session, &grant.grant_id, &grant.client_id).await? {
                    "one"
                } else {
                    "gone"
                },
            )
        }
        _ => Ok("gone"),
    }
}

/// Revokes every live grant of the user.
async fn disconnect_all(
    state: &AppState,
    request: &Request,
    session: &WebSession,
) -> Result<&'static str, crate::store::StoreError> {
    let grants = state.store.grants_of_user(&session.user_id()).await?;
    for grant in grants.iter().filter(|g| g.revoked_at.is_none()) {
        revoke(state, request, session, &grant.grant_id, &grant.client_id).await?;
    }
    Ok("all")
}

/// The admin API's revocation, audited with the user as the actor; `false` when the grant was
/// revoked meanwhile.
async fn revoke(
    state: &AppState,
    request: &Request,
    session: &WebSession,
    grant_id: &GrantId,
    client_id: &ClientId,
) -> Result<bool, crate::store::StoreError> {
    let address = request_address(request, state.config.registration.trust_forwarded_for);
    let actor_name = session.actor();
    let actor = Actor {
        name: &actor_name,
        source: address.as_deref(),
    };
    let revoked =
        crate::grants::revoke_grant_as(&state.tokens, actor, grant_id, Some("connected-apps page"))
            .await?;
    if revoked.is_some() {
        tracing::info!(%grant_id, %client_id, "user disconnected an app");
    }
    Ok(revoked.is_some())
}
