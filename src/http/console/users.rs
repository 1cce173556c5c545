//! The console's users (upstream id, name, last login), one user's grants, and the revocation
//! of a grant ([`crate::grants::revoke_grant_as`], the admin API's own).

use std::sync::Arc;

use minijinja::{Value, context};
use poem::web::Data;
use poem::{Request, Response, handler};

use super::super::AppState;
use super::clients::link;
use super::{
    Confirmation, ConsoleForm, ConsoleSession, Operator, PAGE_SIZE, confirmation_page, confirmed,
    console_page, failure_page, moment, not_found_page, optional_value, query_of, required_value,
    see_other,
};
use crate::ids::{GrantId, UserId};
use crate::routes::{
    CONSOLE_CLIENT_PATH, CONSOLE_GRANT_REVOKE_PATH, CONSOLE_USER_PATH, CONSOLE_USERS_PATH,
};

/// `GET /console/users?after=`.
#[handler]
pub async fn users_page(
    signed_in: ConsoleSession,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let query = query_of(request);
    let after = match optional_value(&query, "after") {
        Ok(after) => after,
        Err(bad) => return bad.page(),
    };
    let users = match state.store.list_users(after, PAGE_SIZE).await {
        Ok(users) => users,
        Err(error) => return failure_page(error, "could not list users"),
    };
    let now = state.clock.now();
    let next_href = (users.len() as u64 == PAGE_SIZE)
        .then(|| users.last())
        .flatten()
        .map(|last| link(state, CONSOLE_USERS_PATH, "after", last.user_id.as_str()));
    let users = users.iter().map(|u| {
        context! {
            href => link(state, CONSOLE_USER_PATH, "id", u.user_id.as_str()),
            user_id => u.user_id.as_str(),
            upstream_subject => &u.upstream_subject,
            provider => &u.provider,
            name => u.display_name.as_deref().map(super::super::pages::without_invisible_controls),
            last_login => moment(Some(u.updated_at), now),
        }
    });
    let fields = context! {
        users => Value::from_iter(users),
        paged => after.is_some(),
        first_href => state.issuer.endpoint(CONSOLE_USERS_PATH),
        next_href,
    };
    console_page(
        state,
        &signed_in.session,
        "users",
        CONSOLE_USERS_PATH,
        fields,
    )
}

/// `GET /console/user?id=&done=`: the user and every grant (live first), each live one with
/// its revoke button.
#[handler]
pub async fn user_page(
    signed_in: ConsoleSession,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let query = query_of(request);
    let (user_id, done) = match (required_value(&query, "id"), optional_value(&query, "done")) {
        (Ok(id), Ok(done)) => (id, done),
        (Err(bad), _) | (_, Err(bad)) => return bad.page(),
    };
    // No user has an id that is not one.
    let Ok(user_id) = user_id.parse::<UserId>() else {
        return not_found_page("user");
    };
    let user = match state.store.user(&user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return not_found_page("user"),
        Err(error) => return failure_page(error, "could not read a user"),
    };
    let mut grants = match state.store.grants_of_user(&user_id).await {
        Ok(grants) => grants,
        Err(error) => return failure_page(error, "could not list a user's grants"),
    };
    grants.sort_by_key(|g| (g.revoked_at.is_some(), std::cmp::Reverse(g.created_at)));
    let now = state.clock.now();
    let mut views = Vec::with_capacity(grants.len());
    for g in &grants {
        let last_refresh = match state.store.grant_last_token_at(&g.grant_id).await {
            Ok(at) => at,
            Err(error) => return failure_page(error, "could not read a grant"),
        };
        let client_name = match state.store.client(&g.client_id).await {
            Ok(client) => client.and_then(|c| c.client_name),
            Err(error) => return failure_page(error, "could not read a client"),
        };
        views.push(context! {
            grant_id => g.grant_id.as_str(),
            client_id => g.client_id.as_str(),
            client_name => client_name.as_deref().map(super::super::pages::without_invisible_controls),
            client_href => link(state, CONSOLE_CLIENT_PATH, "id", g.client_id.as_str()),
            resource => g.resource.as_str(),
            scopes => g.scope.iter().map(str::to_owned).collect::<Vec<_>>(),
            created => moment(Some(g.created_at), now),
            last_refresh => moment(last_refresh, now),
            revoked => moment(g.revoked_at, now),
        });
    }
    let fields = context! {
        user_id => user.user_id.as_str(),
        upstream_subject => user.upstream_subject,
        provider => user.provider,
        name => user.display_name.as_deref().map(super::super::pages::without_invisible_controls),
        first_login => moment(Some(user.created_at), now),
        last_login => moment(Some(user.updated_at), now),
        grants => Value::from(views),
        done => done.filter(|d| matches!(*d, "revoked" | "gone")),
        revoke_action => state.issuer.endpoint(CONSOLE_GRANT_REVOKE_PATH),
        list_href => state.issuer.endpoint(CONSOLE_USERS_PATH),
    };
    console_page(
        state,
        &signed_in.session,
        "user",
        CONSOLE_USERS_PATH,
        fields,
    )
}

/// `POST /console/grant/revoke`: `grant`, and `confirm=yes` (else the confirmation page).
/// Answers a `303` to the grant's user's page.
#[handler]
pub async fn revoke_grant(
    form: ConsoleForm,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let grant_id = match required_value(&form.fields, "grant") {
        Ok(grant) => grant,
        Err(bad) => return bad.page(),
    };
    // No grant has an id that is not one.
    let Ok(parsed_grant_id) = grant_id.parse::<GrantId>() else {
        return not_found_page("grant");
    };
    let grant = match state.store.grant(&parsed_grant_id).await {
        Ok(Some(grant)) => grant,
        Ok(None) => return not_found_page("grant"),
        Err(error) => return failure_page(error, "could not read a grant"),
    };
    if !confirmed(&form.fields) {
        return confirmation_page(
            state,
            &form.session,
            Confirmation {
                title: "Revoke this grant?",
                message: "The client loses this user's access at once: its refresh and access tokens stop working, and the user must log in again to use it.",
                action: CONSOLE_GRANT_REVOKE_PATH,
                hidden: &[("grant", grant_id)],
                button: "Yes, revoke grant",
                cancel: link(state, CONSOLE_USER_PATH, "id", grant.user_id.as_str()),
            },
        );
    }
    let operator = Operator::of(state, request, &form.session);
    let revoked = crate::grants::revoke_grant_as(
        &state.tokens,
        operator.actor(),
        &parsed_grant_id,
        Some("console"),
    )
    .await;
    match revoked {
        Ok(found) => {
            let done = if found.is_some() { "revoked" } else { "gone" };
            see_other(
                state,
                CONSOLE_USER_PATH,
                &[("id", grant.user_id.as_str()), ("done", done)],
            )
        }
        Err(error) => failure_page(error, "could not revoke a grant"),
    }
}
