//! `POST /console/client/action`: one action on one client (`client`, `action`), each the admin
//! API's own function with the operator as the actor. Destructive actions (disable, rotate the
//! secret, revoke every token, delete) answer a confirmation page unless the post carries
//! `confirm=yes`.

use std::sync::Arc;

use poem::web::Data;
use poem::{Request, Response, handler};

use super::super::AppState;
use super::clients::{link, secret_page};
use super::{
    Confirmation, ConsoleForm, Operator, bad_request_page, confirmation_page, confirmed,
    failure_page, not_found_page, optional_value, required_value, see_other,
};
use crate::clients::admin::{AdminError, ClientChanges, named_client_id};
use crate::ids::ClientId;
use crate::routes::{CONSOLE_CLIENT_ACTION_PATH, CONSOLE_CLIENT_PATH, CONSOLE_CLIENTS_PATH};
use crate::store::audit::Actor;

/// The actions, and for a destructive one what its confirmation says: (title, message, button).
fn confirmation_of(action: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match action {
        "disable" => (
            "Disable this client?",
            "It can no longer log users in or get tokens, and every grant it holds is revoked at once: its refresh tokens stop working. Enabling it later brings none of them back.",
            "Yes, disable client",
        ),
        "rotate-secret" => (
            "Rotate this client's secret?",
            "A new secret is made and shown once. The current secret stops working at once, so the client fails until it is given the new one.",
            "Yes, rotate secret",
        ),
        "revoke-tokens" => (
            "Revoke every token of this client?",
            "Every grant of this client is revoked: its refresh and access tokens stop working and its users must log in again.",
            "Yes, revoke all tokens",
        ),
        "delete" => (
            "Delete this client?",
            "The client is removed for good and its grants revoked. A host that registered it must register again. This cannot be undone.",
            "Yes, delete client",
        ),
        _ => return None,
    })
}

/// The post.
#[handler]
pub async fn client_action(
    form: ConsoleForm,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let fields = &form.fields;
    let (client_id, action) = match (
        required_value(fields, "client"),
        required_value(fields, "action"),
    ) {
        (Ok(client), Ok(action)) => (client, action),
        (Err(bad), _) | (_, Err(bad)) => return bad.page(),
    };
    let back = link(state, CONSOLE_CLIENT_PATH, "id", client_id);
    if let Some((title, message, button)) = confirmation_of(action)
        && !confirmed(fields)
    {
        return confirmation_page(
            state,
            &form.session,
            Confirmation {
                title,
                message,
                action: CONSOLE_CLIENT_ACTION_PATH,
                hidden: &[("client", client_id), ("action", action)],
                button,
                cancel: back,
            },
        );
    }
    let operator = Operator::of(state, request, &form.session);
    let result = match named_client_id(client_id) {
        Ok(client_id) => perform(state, &form, operator.actor(), &client_id, action).await,
        // An id that does not parse names no client: answered as an unknown one is.
        Err(error) => KNOWN_ACTIONS.contains(&action).then_some(Err(error)),
    };
    let Some(result) = result else {
        return bad_request_page("This action is not known.");
    };
    match result {
        Ok(response) => response,
        Err(AdminError::NotFound(_)) => not_found_page("client"),
        Err(error @ (AdminError::Invalid(_) | AdminError::Conflict(_))) => {
            bad_request_page(&error.to_string())
        }
        Err(AdminError::Store(error)) => failure_page(error, "could not change a client"),
    }
}

/// The actions [`perform`] carries out.
const KNOWN_ACTIONS: &[&str] = &[
    "disable",
    "enable",
    "revoke-tokens",
    "delete",
    "rotate-secret",
    "resource-server",
];

/// Carries out a confirmed `action` on `client_id` as `actor`: the page to answer with, or
/// the registry's refusal; `None` for an action the console does not know.
async fn perform(
    state: &Arc<AppState>,
    form: &ConsoleForm,
    actor: Actor<'_>,
    client_id: &ClientId,
    action: &str,
) -> Option<Result<Response, AdminError>> {
    let registry = &state.registry;
    let done = |done: &str| {
        see_other(
            state,
            CONSOLE_CLIENT_PATH,
            &[("id", client_id.as_str()), ("done", done)],
        )
    };
    Some(match action {
        "disable" | "enable" => {
            let changes = ClientChanges {
                disabled: Some(action == "disable"),
                ..ClientChanges::default()
            };
            let outcome = registry.admin_update(actor, client_id, changes).await;
            outcome.map(|_| {
                done(if action == "disable" {
                    "disabled"
                } else {
                    "enabled"
                })
            })
        }
        "revoke-tokens" => registry
            .admin_revoke_client_tokens(actor, client_id)
            .await
            .map(|()| done("revoked")),
        "delete" => registry.admin_delete(actor, client_id).await.map(|()| {
            see_other(
                state,
                CONSOLE_CLIENTS_PATH,
                &[("deleted", client_id.as_str())],
            )
        }),
        "rotate-secret" => registry
            .admin_rotate_secret(actor, client_id)
            .await
            .map(|secret| secret_page(state, &form.session, client_id, Some(&secret), "rotated")),
        "resource-server" => {
            let resource = match optional_value(&form.fields, "resource") {
                Ok(resource) => resource,
                Err(bad) => return Some(Ok(bad.page())),
            };
            let configured: Vec<String> = state
                .resources
                .iter()
                .map(|r| r.uri.as_str().to_owned())
                .collect();
            registry
                .admin_set_resource_server(actor, client_id, resource, &configured)
                .await
                .map(|_| done("resource-server"))
        }
        _ => return None,
    })
}
