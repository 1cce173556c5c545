//! The console's sign-in page: a button that signs in through the upstream (operators on
//! `console.operators`), and, with `console.admin_token_sign_in`, a form taking an admin API
//! token, checked against `[[admin.tokens]]` by the admin API's own comparison. Wrong tokens
//! are audited and, beyond [`crate::sessions::TOKEN_SIGN_IN_FAILURES_PER_MINUTE`] on one instance, close the
//! form until the minute ends.

use std::sync::Arc;

use minijinja::context;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};
use serde_json::json;

use super::super::AppState;
use super::super::pages::{html_response, render};
use super::super::registration::request_address;
use super::super::session::{
    Console, SessionKind, audit_console, refuse_cross_site, signed_in_response,
};
use crate::oauth::authorize::AuthorizeQuery;
use crate::routes::{CONSOLE_PATH, CONSOLE_SIGN_IN_TOKEN_PATH, CONSOLE_SIGN_IN_UPSTREAM_PATH};
use crate::sessions::Purpose;
use crate::sessions::operators::{admin_token_holder, admin_token_subject};
use crate::store::audit::AuditRecord;

/// The longest token the form reads; a real one is far shorter.
const MAX_TOKEN_CHARS: usize = 512;

/// The sign-in page with `status` and, after a refused token, why.
fn page(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let body = render(
        "console/sign_in.html",
        context! {
            upstream_name => state.upstream_display_name(),
            upstream_action => state.issuer.endpoint(CONSOLE_SIGN_IN_UPSTREAM_PATH),
            upstream_enabled => !state.config.console.operators.is_empty(),
            token_enabled => state.config.console.admin_token_sign_in,
            token_action => state.issuer.endpoint(CONSOLE_SIGN_IN_TOKEN_PATH),
            error,
            session_hours => state.config.console.session_absolute_hours,
        },
    );
    html_response(status, body)
}

/// `GET /console/sign-in`.
#[handler]
pub async fn sign_in_page(Data(state): Data<&Arc<AppState>>) -> Response {
    if !Console::enabled(state) {
        return Console::disabled_page();
    }
    page(state, StatusCode::OK, None)
}

/// `POST /console/sign-in/token`: `token=<admin API token>`. Right: a session and the overview.
/// Wrong: the form again, `401`, and an audit entry; too many wrong ones: `429`.
#[handler]
pub async fn token_sign_in(
    request: &Request,
    body: String,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    if !Console::enabled(state) {
        return Console::disabled_page();
    }
    if !state.config.console.admin_token_sign_in {
        return super::super::authorize::error_page(
            StatusCode::NOT_FOUND,
            "Signing in with an admin token is turned off",
            "This console does not accept admin API tokens. An operator can turn it on with `admin_token_sign_in = true` in the [console] section of the configuration.",
        );
    }
    if let Some(refusal) = refuse_cross_site(state, request) {
        return refusal;
    }
    if state.sessions.token_sign_in_closed() {
        return page(
            state,
            StatusCode::TOO_MANY_REQUESTS,
            Some(
                "Too many wrong tokens were tried in the last minute. Wait a minute and try again.",
            ),
        );
    }
    let fields = AuthorizeQuery::parse(&body);
    let token = fields
        .get("token")
        .filter(|_| !fields.is_repeated("token"))
        .map(str::trim)
        .filter(|token| !token.is_empty() && token.chars().count() <= MAX_TOKEN_CHARS);
    let holder = token.and_then(|token| admin_token_holder(&state.config.admin.tokens, token));
    let Some(name) = holder else {
        state.sessions.count_token_failure();
        audit_refusal(state, request, token.is_some()).await;
        let message = match token {
            Some(_) => "That is not an admin token of this server. Check it and try again.",
            None => "Enter an admin API token.",
        };
        return page(state, StatusCode::UNAUTHORIZED, Some(message));
    };
    let subject = admin_token_subject(&name);
    let label = format!("admin token “{name}”");
    audit_console(state, request, &subject, &label, "console.sign_in").await;
    let home = state.issuer.endpoint(CONSOLE_PATH);
    signed_in_response(state, Purpose::Console, &subject, &label, &home).await
}

/// Records a refused token sign-in (at most [`crate::sessions::TOKEN_SIGN_IN_FAILURES_PER_MINUTE`] a minute
/// per instance reach here), never the token.
async fn audit_refusal(state: &AppState, request: &Request, token_given: bool) {
    tracing::warn!("console sign-in with a wrong admin token refused");
    let address = request_address(request, state.config.registration.trust_forwarded_for);
    let reason = if token_given {
        "not a configured admin token"
    } else {
        "no token"
    };
    let record = AuditRecord::new(
        state.clock.now(),
        "anonymous",
        "console.sign_in_refused",
        &json!({ "reason": reason }),
    )
    .source(address.as_deref());
    if let Err(error) = state.store.record_change(record).await {
        tracing::error!(%error, "could not audit a refused console sign-in");
    }
}
