//! The simulated upstream's login page (`/dev/upstream/authorize`), mounted only with the
//! `dev` provider. It only ever sends the browser to authbridge's own callback.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};

use super::AppState;
use super::authorize::{error_page, redirect};
use super::pages::{self, DevLoginPage};
use crate::oauth::authorize::AuthorizeQuery;
use crate::routes::{CALLBACK_PATH, DEV_AUTHORIZE_PATH};
use crate::upstream::dev::DevProvider;

/// The fields carried from the authorize URL through the login form.
const CARRIED: [&str; 3] = ["redirect_uri", "state", "code_challenge"];

fn dev_provider(state: &AppState) -> Option<&DevProvider> {
    state.dev.as_deref()
}

#[handler]
pub async fn login_page(request: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let query = AuthorizeQuery::parse(request.uri().query().unwrap_or_default());
    let callback = state.issuer.endpoint(CALLBACK_PATH);
    if query.get("redirect_uri") != Some(callback.as_str()) || query.get("state").is_none() {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Development login",
            "This login page only serves authbridge's own callback.",
        );
    }
    let hidden: Vec<(&str, &str)> = CARRIED
        .iter()
        .filter_map(|name| query.get(name).map(|v| (*name, v)))
        .collect();
    let action = state.issuer.endpoint(DEV_AUTHORIZE_PATH);
    pages::html_response(
        StatusCode::OK,
        pages::render_dev_login(&DevLoginPage {
            form_action: &action,
            hidden: &hidden,
        }),
    )
}

#[handler]
pub async fn login_submit(body: String, Data(state): Data<&Arc<AppState>>) -> Response {
    let Some(dev) = dev_provider(state) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "The development login is not enabled.",
        );
    };
    let form = AuthorizeQuery::parse(&body);
    let callback = state.issuer.endpoint(CALLBACK_PATH);
    let (Some(username), Some(upstream_state)) = (form.get("username"), form.get("state")) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Development login",
            "Type a user name.",
        );
    };
    if form.get("redirect_uri") != Some(callback.as_str()) || !DevProvider::valid_username(username)
    {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Development login",
            "Type a user name of 1 to 64 characters.",
        );
    }
    let code = dev.issue_code(username, &callback, form.get("code_challenge"));
    let mut location = url::Url::parse(&callback).expect("the callback is a URL");
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", upstream_state);
    redirect(location.as_str(), &[])
}
