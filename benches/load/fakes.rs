//! What the server talks to, served from the driver's own process so that their work is not
//! counted in the server's CPU time: a fake OwnerRez (the authorization redirect, the token
//! endpoint for codes and refreshes, revocation) and a trivial MCP backend for gateway mode.
//!
//! The fake OwnerRez knows no users: the driver adds `user=NAME` to the authorization URL the
//! server redirected it to, and the code it gets back carries that name to the token request,
//! whose answer names the user (`user_id`), as OwnerRez's does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use poem::http::StatusCode;
use poem::web::{Form, Query};
use poem::{EndpointExt, Response, Route, delete, get, handler, post};
use serde::Deserialize;
use serde_json::json;

/// What every backend answer is: a JSON-RPC result with no tools.
const BACKEND_ANSWER: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#;

static ISSUED: AtomicU64 = AtomicU64::new(0);

/// Serves `endpoint` on a free loopback port in this process; returns its base URL.
fn serve(endpoint: poem::endpoint::BoxEndpoint<'static>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking socket");
    let address = listener.local_addr().expect("a bound address");
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    let options = authbridge::http::server::ServeOptions {
        header_read_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(1),
    };
    tokio::spawn(authbridge::http::server::serve(
        listener,
        endpoint,
        options,
        std::future::pending(),
    ));
    format!("http://{address}")
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    redirect_uri: String,
    state: String,
    user: Option<String>,
}

/// The user "signs in" at once: back to the server's callback with a code naming them.
#[handler]
fn authorize(Query(query): Query<AuthorizeQuery>) -> Response {
    let user = query.user.unwrap_or_else(|| "bench-user".into());
    let n = ISSUED.fetch_add(1, Ordering::Relaxed);
    let mut back = match url::Url::parse(&query.redirect_uri) {
        Ok(url) => url,
        Err(_) => return StatusCode::BAD_REQUEST.into(),
    };
    back.query_pairs_mut()
        .append_pair("code", &format!("orc.{n}.{user}"))
        .append_pair("state", &query.state);
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", back.as_str())
        .finish()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: Option<String>,
    refresh_token: Option<String>,
}

/// Codes and refresh tokens both carry the user's name after their second dot.
#[handler]
fn token(Form(form): Form<TokenForm>) -> Response {
    let presented = match form.grant_type.as_str() {
        "authorization_code" => form.code,
        "refresh_token" => form.refresh_token,
        _ => None,
    };
    let Some(user) = presented
        .as_deref()
        .and_then(|v| v.splitn(3, '.').nth(2))
        .map(str::to_owned)
    else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .content_type("application/json")
            .body(r#"{"error":"invalid_grant"}"#);
    };
    let n = ISSUED.fetch_add(1, Ordering::Relaxed);
    let body = json!({
        "access_token": format!("ora.{n}.{user}"),
        "token_type": "bearer",
        "refresh_token": format!("orr.{n}.{user}"),
        "expires_in": 30 * 86_400,
        "user_id": user,
    });
    Response::builder()
        .content_type("application/json")
        .body(body.to_string())
}

#[handler]
fn revoke() -> StatusCode {
    StatusCode::OK
}

/// Starts the fake OwnerRez; returns its base URL (`/oauth/authorize`, `/oauth/access_token`).
pub fn start_ownerrez() -> String {
    let routes = Route::new()
        .at("/oauth/authorize", get(authorize))
        .at("/oauth/access_token", post(token))
        .at("/oauth/access_token/:token", delete(revoke));
    serve(routes.boxed())
}

/// Starts an MCP backend that answers every request at once with the same result; returns
/// its URL.
pub fn start_backend() -> String {
    let endpoint = poem::endpoint::make_sync(|_| {
        Response::builder()
            .content_type("application/json")
            .header("mcp-session-id", "bench")
            .body(BACKEND_ANSWER)
    })
    .map_to_response()
    .boxed();
    format!("{}/mcp", serve(endpoint))
}
