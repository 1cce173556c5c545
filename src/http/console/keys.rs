//! `GET /console/keys`: the signing keys, their states and times; `POST /console/keys/rotate`
//! starts a rotation ([`crate::tokens::keyring::SigningKeys::rotate_as`], the admin API's own)
//! after a confirmation step.

use std::sync::Arc;

use minijinja::{Value, context};
use poem::web::Data;
use poem::{Request, Response, handler};

use super::super::AppState;
use super::{
    Confirmation, ConsoleForm, ConsoleSession, Operator, bad_request_page, confirmation_page,
    confirmed, console_page, failure_page, moment, optional_value, query_of, see_other,
};
use crate::routes::{CONSOLE_KEYS_PATH, CONSOLE_KEYS_ROTATE_PATH};
use crate::tokens::keyring::KeyError;

/// What a key's state means, in plain words.
fn state_text(state: &str) -> &'static str {
    match state {
        "next" => "Published, not signing yet",
        "active" => "Signing new tokens",
        "retired" => "Published until the tokens it signed expire",
        _ => "Unknown",
    }
}

/// The page.
#[handler]
pub async fn keys_page(
    signed_in: ConsoleSession,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let query = query_of(request);
    let done = match optional_value(&query, "done") {
        Ok(done) => done.filter(|d| *d == "rotated"),
        Err(bad) => return bad.page(),
    };
    let now = state.clock.now();
    let keys = state.keys.summaries().into_iter().map(|k| {
        context! {
            kid => k.kid,
            state => k.state,
            state_text => state_text(k.state),
            created => moment(Some(k.created_at), now),
            activates => moment(Some(k.activates_at), now),
        }
    });
    let fields = context! {
        keys => Value::from_iter(keys),
        done,
        rotate_action => state.issuer.endpoint(CONSOLE_KEYS_ROTATE_PATH),
        activation_minutes => state.config.keys.activation_delay_secs / 60,
        rotate_every_days => state.config.keys.rotate_every_days,
    };
    console_page(state, &signed_in.session, "keys", CONSOLE_KEYS_PATH, fields)
}

/// The rotation.
#[handler]
pub async fn rotate_key(
    form: ConsoleForm,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    if !confirmed(&form.fields) {
        return confirmation_page(
            state,
            &form.session,
            Confirmation {
                title: "Start a key rotation?",
                message: "A new signing key is published now and starts signing after the activation delay; the current key keeps being published until the tokens it signed expire. Only one rotation can wait at a time.",
                action: CONSOLE_KEYS_ROTATE_PATH,
                hidden: &[],
                button: "Yes, rotate signing key",
                cancel: state.issuer.endpoint(CONSOLE_KEYS_PATH),
            },
        );
    }
    let operator = Operator::of(state, request, &form.session);
    match state.keys.rotate_as(operator.actor()).await {
        Ok(_) => see_other(state, CONSOLE_KEYS_PATH, &[("done", "rotated")]),
        Err(error @ KeyError::RotationPending { .. }) => {
            bad_request_page(&format!("No new rotation was started: {error}."))
        }
        Err(error) => failure_page(error, "could not rotate the signing key"),
    }
}
