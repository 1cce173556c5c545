//! The upstream's answer to a web sign-in (console or connected-apps page), handed over by the
//! one upstream callback once the sign-in's state was consumed: the code is exchanged server
//! to server, the person is admitted (an operator only when on `console.operators`), and a
//! session starts. The upstream tokens are not kept: a web session needs only the identity.

use poem::http::StatusCode;
use poem::{Request, Response};

use super::AppState;
use super::authorize::error_page;
use super::callback::{exchange_upstream_code, upstream_code};
use super::session::{audit_console, signed_in_response};
use crate::ids::UserId;
use crate::oauth::authorize::AuthorizeQuery;
use crate::routes::{ACCOUNT_PATH, ACCOUNT_SIGN_IN_PATH, CONSOLE_PATH, CONSOLE_SIGN_IN_PATH};
use crate::sessions::Purpose;
use crate::store::StoreError;
use crate::telemetry::untrusted;
use crate::vault::context;

/// A consumed web sign-in.
pub struct ConsumedSignIn {
    purpose: Purpose,
    state_hash: String,
    sealed_verifier: Option<String>,
}

/// Consumes the web sign-in of this state and browser, if there is one.
pub(super) async fn consume_sign_in(
    state: &AppState,
    state_hash: String,
    browser_hash: &str,
) -> Result<Option<ConsumedSignIn>, StoreError> {
    let found = state
        .sessions
        .consume_sign_in(&state_hash, browser_hash)
        .await?;
    Ok(found.map(|(purpose, sealed_verifier)| ConsumedSignIn {
        purpose,
        state_hash,
        sealed_verifier,
    }))
}

fn sign_in_path(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Console => CONSOLE_SIGN_IN_PATH,
        Purpose::Account => ACCOUNT_SIGN_IN_PATH,
    }
}

/// A page saying the sign-in did not work, and why in plain words.
fn failed_page(status: StatusCode, message: &str) -> Response {
    error_page(status, "The sign-in did not work", message)
}

/// Completes a consumed web sign-in: exchange, admission, session.
pub(super) async fn complete_web_sign_in(
    state: &AppState,
    request: &Request,
    query: &AuthorizeQuery,
    sign_in: ConsumedSignIn,
) -> Response {
    let again = format!(
        "Start again at {}.",
        state.issuer.endpoint(sign_in_path(sign_in.purpose))
    );
    let code = match upstream_code(query) {
        Ok(code) => code,
        Err(refusal) => {
            return failed_page(
                StatusCode::BAD_REQUEST,
                &format!("{}. {again}", capitalised(refusal.description)),
            );
        }
    };
    let verifier = match &sign_in.sealed_verifier {
        None => None,
        Some(sealed) => match state
            .vault
            .open(sealed, &context::upstream_pkce(&sign_in.state_hash))
        {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(error) => {
                tracing::error!(%error, "could not open a web sign-in's PKCE verifier");
                return failed_page(StatusCode::INTERNAL_SERVER_ERROR, &again);
            }
        },
    };
    let tokens = match exchange_upstream_code(state, code, verifier.as_deref()).await {
        Ok(tokens) => tokens,
        Err(refusal) => {
            return failed_page(
                StatusCode::BAD_GATEWAY,
                &format!("{}. {again}", capitalised(refusal.description)),
            );
        }
    };
    let label = tokens
        .display_name
        .clone()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| tokens.subject.clone());
    match sign_in.purpose {
        Purpose::Console => admit_operator(state, request, &tokens.subject, &label).await,
        Purpose::Account => {
            admit_user(
                state,
                &tokens.subject,
                tokens.display_name.as_deref(),
                &label,
            )
            .await
        }
    }
}

/// An operator is let in only when their upstream user id is on `console.operators`.
async fn admit_operator(
    state: &AppState,
    request: &Request,
    subject: &str,
    label: &str,
) -> Response {
    if !state.config.console.is_operator(subject) {
        tracing::warn!(subject = %untrusted(subject), "console sign-in of someone who is not an operator refused");
        return error_page(
            StatusCode::FORBIDDEN,
            "You are not an operator here",
            "You signed in, but your account is not on this server's list of operators, so the console stays closed. An operator can add your user id to console.operators.",
        );
    }
    audit_console(state, request, subject, label, "console.sign_in").await;
    let home = state.issuer.endpoint(CONSOLE_PATH);
    signed_in_response(state, Purpose::Console, subject, label, &home).await
}

/// A user's session is keyed by our user id: the user a login through any app created, or a
/// new one (who then simply has no apps yet).
async fn admit_user(
    state: &AppState,
    subject: &str,
    display_name: Option<&str>,
    label: &str,
) -> Response {
    let new_user_id = UserId::generate();
    let user_id = match state
        .store
        .user_for_upstream_identity(
            state.upstream.name(),
            subject,
            display_name,
            &new_user_id,
            state.clock.now(),
        )
        .await
    {
        Ok(user_id) => user_id,
        Err(error) => {
            tracing::error!(%error, "could not find the user of a web sign-in");
            return failed_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Please try again in a moment.",
            );
        }
    };
    let home = state.issuer.endpoint(ACCOUNT_PATH);
    signed_in_response(state, Purpose::Account, user_id.as_str(), label, &home).await
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
