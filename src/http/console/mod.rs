//! The operator console's pages (`/console/…`): server-rendered over the admin API's domain
//! functions, every page behind [`ConsoleSession`] and every form behind [`ConsoleForm`] (a
//! same-origin post with the session's CSRF token). Destructive actions answer a confirmation
//! page first and act only on a post carrying `confirm=yes`. Each change is audited by the
//! domain function with the operator as the actor (`operator:<upstream id>` or
//! `operator:admin-token:<name>`).

pub mod audit;
pub mod client_actions;
pub mod clients;
pub mod keys;
pub mod overview;
pub mod sign_in;
pub mod users;

use minijinja::{Value, context};
use poem::http::StatusCode;
use poem::{Request, Response};

use super::AppState;
use super::authorize::{error_page, redirect};
use super::pages::{html_response, render};
use super::registration::request_address;
use crate::oauth::authorize::AuthorizeQuery;
use crate::routes::{
    CONSOLE_AUDIT_PATH, CONSOLE_CLIENTS_PATH, CONSOLE_KEYS_PATH, CONSOLE_PATH,
    CONSOLE_SIGN_OUT_PATH, CONSOLE_USERS_PATH,
};
use crate::sessions::WebSession;
use crate::store::audit::Actor;

pub use super::session::{ConsoleForm, ConsoleSession};

/// The longest search or filter value a page accepts; longer is a `400`.
pub const MAX_QUERY_VALUE: usize = 200;
/// Rows on one page of a listing.
pub const PAGE_SIZE: u64 = 50;

/// The operator of a session, as the audit trail names them, with the request's address.
pub struct Operator {
    name: String,
    source: Option<String>,
}

impl Operator {
    pub fn of(state: &AppState, request: &Request, session: &WebSession) -> Self {
        Self {
            name: session.actor(),
            source: request_address(request, state.config.registration.trust_forwarded_for),
        }
    }

    pub fn actor(&self) -> Actor<'_> {
        Actor {
            name: &self.name,
            source: self.source.as_deref(),
        }
    }
}

/// Renders a console page: `page` (a template under `console/`) with `fields`, and what every
/// page shows (who is signed in, the navigation, the sign-out form).
pub fn console_page(
    state: &AppState,
    session: &WebSession,
    page: &str,
    current: &str,
    fields: Value,
) -> Response {
    let nav = [
        ("Overview", CONSOLE_PATH),
        ("Clients", CONSOLE_CLIENTS_PATH),
        ("Users", CONSOLE_USERS_PATH),
        ("Signing keys", CONSOLE_KEYS_PATH),
        ("Audit log", CONSOLE_AUDIT_PATH),
    ]
    .map(|(label, path)| {
        context! { label, href => state.issuer.endpoint(path), current => path == current }
    });
    let common = context! {
        label => super::pages::without_invisible_controls(&session.label),
        csrf_token => session.csrf_token(),
        sign_out_action => state.issuer.endpoint(CONSOLE_SIGN_OUT_PATH),
        nav => Value::from_iter(nav),
    };
    let body = render(
        &format!("console/{page}.html"),
        context! { ..fields, ..common },
    );
    html_response(StatusCode::OK, body)
}

/// A `303` to `path` below the issuer, with `query` appended (already encoded).
pub fn see_other(state: &AppState, path: &str, query: &[(&str, &str)]) -> Response {
    let mut location = state.issuer.endpoint(path);
    if !query.is_empty() {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in query {
            serializer.append_pair(name, value);
        }
        location.push('?');
        location.push_str(&serializer.finish());
    }
    let mut response = redirect(&location, &[]);
    response.set_status(StatusCode::SEE_OTHER);
    response
}

/// The page for a failure of our own; the cause goes to the log.
pub fn failure_page(error: impl std::fmt::Display, what: &str) -> Response {
    tracing::error!(%error, "console: {what}");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The console could not complete this request. Nothing else was changed; please try again in a moment.",
    )
}

/// A `400` page for a request the console cannot read.
pub fn bad_request_page(message: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This request is not valid",
        message,
    )
}

/// A `404` page.
pub fn not_found_page(what: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        &format!("No such {what}"),
        &format!(
            "This {what} does not exist, or no longer does. Go back to the list and try again."
        ),
    )
}

/// The query of a page request.
pub fn query_of(request: &Request) -> AuthorizeQuery {
    AuthorizeQuery::parse(request.uri().query().unwrap_or_default())
}

/// A query or form value the console cannot read; [`BadInput::page`] is its `400` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput(pub String);

impl BadInput {
    pub fn page(&self) -> Response {
        bad_request_page(&self.0)
    }
}

/// One optional query or form value: absent or blank is `None`; repeated, longer than
/// [`MAX_QUERY_VALUE`] or holding a NUL is [`BadInput`].
pub fn optional_value<'q>(
    fields: &'q AuthorizeQuery,
    name: &str,
) -> Result<Option<&'q str>, BadInput> {
    if fields.is_repeated(name) {
        return Err(BadInput(format!("`{name}` was given more than once.")));
    }
    match fields.get(name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) if value.chars().count() > MAX_QUERY_VALUE => Err(BadInput(format!(
            "`{name}` is too long: at most {MAX_QUERY_VALUE} characters."
        ))),
        Some(value) if value.contains('\0') => Err(BadInput(format!(
            "`{name}` holds a character that is not allowed."
        ))),
        Some(value) => Ok(Some(value)),
    }
}

/// One required value.
pub fn required_value<'q>(fields: &'q AuthorizeQuery, name: &str) -> Result<&'q str, BadInput> {
    optional_value(fields, name)?.ok_or_else(|| BadInput(format!("`{name}` is missing.")))
}

/// Whether a destructive action's post carries its confirmation.
pub fn confirmed(fields: &AuthorizeQuery) -> bool {
    !fields.is_repeated("confirm") && fields.get("confirm") == Some("yes")
}

/// What a confirmation page asks.
pub struct Confirmation<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub action: &'a str,
    /// Hidden fields posted back besides `csrf` and `confirm=yes`.
    pub hidden: &'a [(&'a str, &'a str)],
    pub button: &'a str,
    pub cancel: String,
}

/// The confirmation step of a destructive action: a page whose one form posts the same action
/// again with `confirm=yes`.
pub fn confirmation_page(
    state: &AppState,
    session: &WebSession,
    confirmation: Confirmation<'_>,
) -> Response {
    let hidden = confirmation
        .hidden
        .iter()
        .map(|&(name, value)| context! { name, value });
    console_page(
        state,
        session,
        "confirm",
        "",
        context! {
            title => confirmation.title,
            message => confirmation.message,
            action => state.issuer.endpoint(confirmation.action),
            hidden => Value::from_iter(hidden),
            button => confirmation.button,
            cancel => confirmation.cancel,
        },
    )
}

/// A moment for a template, or none.
pub fn moment(at: Option<i64>, now: i64) -> Value {
    at.map(|at| super::when::Moment::of(at, now).to_value())
        .unwrap_or(Value::from(()))
}
