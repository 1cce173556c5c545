//! The console's clients: the list (search by name, id or redirect host; filter by kind;
//! pages of [`PAGE_SIZE`]), one client's page, and the form that creates an admin client.
//! Listing, reading and creating are the admin API's own functions (`clients::admin`).

use std::sync::Arc;

use minijinja::{Value, context};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};

use super::super::AppState;
use super::{
    BadInput, ConsoleForm, ConsoleSession, Operator, PAGE_SIZE, console_page, failure_page, moment,
    not_found_page, optional_value, query_of, required_value,
};
use crate::clients::admin::{AdminError, ClientView, NewClient, named_client_id};
use crate::ids::ClientId;
use crate::routes::{
    CONSOLE_AUDIT_PATH, CONSOLE_CLIENT_ACTION_PATH, CONSOLE_CLIENT_PATH, CONSOLE_CLIENTS_PATH,
    CONSOLE_NEW_CLIENT_PATH, CONSOLE_USER_PATH,
};
use crate::store::clients::{ClientFilter, ClientKind};

/// A client in a list or on its page.
fn client_value(state: &AppState, client: &ClientView, now: i64) -> Value {
    let kind = match client.kind.as_str() {
        "dynamic" => "Registered by a host (dynamic)",
        "admin" => "Created by an operator",
        _ => "Unknown kind",
    };
    let href = link(state, CONSOLE_CLIENT_PATH, "id", client.client_id.as_str());
    context! {
        client_id => client.client_id.as_str(),
        name => client.client_name.as_deref().map(super::super::pages::without_invisible_controls),
        kind,
        href,
        redirect_uris => &client.redirect_uris,
        disabled => client.disabled,
        confidential => client.token_endpoint_auth_method != "none",
        auth_method => &client.token_endpoint_auth_method,
        resource_server_for => &client.resource_server_for,
        created => moment(Some(client.created_at), now),
        first_authorized => moment(client.first_authorized_at, now),
        last_used => moment(client.last_used_at, now),
    }
}

/// `path?name=value` below the issuer.
pub fn link(state: &AppState, path: &str, name: &str, value: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(name, value)
        .finish();
    format!("{}?{query}", state.issuer.endpoint(path))
}

/// The kinds the list filters by: the clients table's two, and the metadata documents.
const KINDS: [&str; 4] = ["all", "dynamic", "admin", "metadata"];

/// What the list shows: (clients or documents as template values, the next page's cursor).
async fn listed(
    state: &AppState,
    kind: &str,
    search: Option<&str>,
    after: Option<&str>,
) -> Result<(Vec<Value>, Option<String>), AdminError> {
    let now = state.clock.now();
    if kind == "metadata" {
        let (documents, next) = state
            .registry
            .admin_list_documents(search, after, PAGE_SIZE)
            .await?;
        let documents = documents.iter().map(|d| {
            context! {
                url => d.url.as_str(),
                name => d.client_name.as_deref().map(super::super::pages::without_invisible_controls),
                redirect_uris => &d.redirect_uris,
                failure => &d.failure,
                fetched => moment(Some(d.fetched_at), now),
                expires => moment(Some(d.expires_at), now),
                grants_href => link(state, CONSOLE_AUDIT_PATH, "target", d.url.as_str()),
            }
        });
        return Ok((documents.collect(), next));
    }
    let filter = ClientFilter {
        kind: kind.parse::<ClientKind>().ok(),
        search: search.map(str::to_owned),
        after_client_id: after.map(str::to_owned),
        limit: PAGE_SIZE,
        ..ClientFilter::default()
    };
    let (clients, next) = state.registry.admin_list(filter).await?;
    let clients = clients.iter().map(|c| client_value(state, c, now));
    Ok((clients.collect(), next))
}

/// `GET /console/clients?q=&kind=&after=&deleted=`.
#[handler]
pub async fn clients_page(
    signed_in: ConsoleSession,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let query = query_of(request);
    let parsed = (|| {
        let kind = optional_value(&query, "kind")?.unwrap_or("all");
        if !KINDS.contains(&kind) {
            return Err(BadInput(
                "`kind` must be all, dynamic, admin or metadata.".into(),
            ));
        }
        let search = optional_value(&query, "q")?;
        let after = optional_value(&query, "after")?;
        let deleted = optional_value(&query, "deleted")?;
        Ok((kind, search, after, deleted))
    })();
    let (kind, search, after, deleted) = match parsed {
        Ok(parsed) => parsed,
        Err(bad) => return bad.page(),
    };
    let (items, next) = match listed(state, kind, search, after).await {
        Ok(listed) => listed,
        Err(error) => return failure_page(error, "could not list clients"),
    };
    let base = state.issuer.endpoint(CONSOLE_CLIENTS_PATH);
    let next_href = next.map(|after| {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", search.unwrap_or_default())
            .append_pair("kind", kind)
            .append_pair("after", &after)
            .finish();
        format!("{base}?{query}")
    });
    let fields = context! {
        items => Value::from(items),
        documents => kind == "metadata",
        search => search.unwrap_or_default(),
        kind,
        paged => after.is_some(),
        deleted,
        first_href => &base,
        next_href,
        new_href => state.issuer.endpoint(CONSOLE_NEW_CLIENT_PATH),
        action => &base,
    };
    let session = &signed_in.session;
    console_page(state, session, "clients", CONSOLE_CLIENTS_PATH, fields)
}

/// `GET /console/client?id=&done=`: a client, its live grants and its actions.
#[handler]
pub async fn client_page(
    signed_in: ConsoleSession,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let query = query_of(request);
    let (client_id, done) = match (required_value(&query, "id"), optional_value(&query, "done")) {
        (Ok(id), Ok(done)) => (id, done),
        (Err(bad), _) | (_, Err(bad)) => return bad.page(),
    };
    let client = match named_client_id(client_id) {
        Ok(client_id) => state.registry.admin_get(&client_id).await,
        Err(error) => Err(error),
    };
    let client = match client {
        Ok(client) => client,
        Err(AdminError::NotFound(_)) => return not_found_page("client"),
        Err(error) => return failure_page(error, "could not read a client"),
    };
    let grants = match state
        .store
        .live_grants_of_client(&client.client_id, PAGE_SIZE)
        .await
    {
        Ok(grants) => grants,
        Err(error) => return failure_page(error, "could not list a client's grants"),
    };
    let now = state.clock.now();
    let grants_capped = grants.len() as u64 == PAGE_SIZE;
    let grants = grants.iter().map(|g| {
        context! {
            user_href => link(state, CONSOLE_USER_PATH, "id", g.user_id.as_str()),
            user_id => g.user_id.as_str(),
            resource => g.resource.as_str(),
            scope => g.scope.to_string(),
            created => moment(Some(g.created_at), now),
        }
    });
    let resources = state.resources.iter().map(|r| {
        context! { uri => r.uri.as_str(), name => &r.name }
    });
    let fields = context! {
        client => client_value(state, &client, now),
        metadata => serde_json::to_string_pretty(&client.metadata).unwrap_or_default(),
        grants => Value::from_iter(grants),
        grants_capped,
        resources => Value::from_iter(resources),
        done => done.filter(|d| DONE_MESSAGES.iter().any(|(key, _)| key == d)).map(done_message),
        action => state.issuer.endpoint(CONSOLE_CLIENT_ACTION_PATH),
        list_href => state.issuer.endpoint(CONSOLE_CLIENTS_PATH),
    };
    console_page(
        state,
        &signed_in.session,
        "client",
        CONSOLE_CLIENTS_PATH,
        fields,
    )
}

/// What the client page says after an action (`?done=`).
const DONE_MESSAGES: [(&str, &str); 5] = [
    (
        "disabled",
        "The client was disabled and its grants revoked.",
    ),
    (
        "enabled",
        "The client was enabled. Its users must log in again.",
    ),
    (
        "revoked",
        "Every token of the client was revoked. Its users must log in again.",
    ),
    (
        "resource-server",
        "The client's resource server setting was saved.",
    ),
    ("created", "The client was created."),
];

fn done_message(done: &str) -> &'static str {
    DONE_MESSAGES
        .iter()
        .find(|(key, _)| *key == done)
        .map_or("", |(_, message)| message)
}

/// `GET /console/clients/new`: the form.
#[handler]
pub async fn new_client_page(
    signed_in: ConsoleSession,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    new_client_form(state, &signed_in.session, None, &NewClientFields::default())
}

#[derive(Default)]
struct NewClientFields {
    client_id: String,
    client_name: String,
    redirect_uris: String,
    auth_method: String,
}

fn new_client_form(
    state: &AppState,
    session: &crate::sessions::WebSession,
    error: Option<&str>,
    fields: &NewClientFields,
) -> Response {
    let mut response = console_page(
        state,
        session,
        "new_client",
        CONSOLE_CLIENTS_PATH,
        context! {
            error,
            client_id => &fields.client_id,
            client_name => &fields.client_name,
            redirect_uris => &fields.redirect_uris,
            auth_method => &fields.auth_method,
            action => state.issuer.endpoint(CONSOLE_NEW_CLIENT_PATH),
        },
    );
    if error.is_some() {
        response.set_status(StatusCode::BAD_REQUEST);
    }
    response
}

/// `POST /console/clients/new`: `client_name`, `redirect_uris` (one a line), optional
/// `client_id` and `token_endpoint_auth_method`. The secret is shown once, on the answer.
#[handler]
pub async fn create_client(
    form: ConsoleForm,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let f = &form.fields;
    let text = |name: &str| f.get(name).unwrap_or_default().to_owned();
    let fields = NewClientFields {
        client_id: text("client_id"),
        client_name: text("client_name"),
        redirect_uris: text("redirect_uris"),
        auth_method: text("token_endpoint_auth_method"),
    };
    let new = NewClient {
        client_id: Some(fields.client_id.trim().to_owned()).filter(|id| !id.is_empty()),
        client_name: fields.client_name.trim().to_owned(),
        redirect_uris: fields
            .redirect_uris
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect(),
        token_endpoint_auth_method: Some(fields.auth_method.trim().to_owned())
            .filter(|m| !m.is_empty()),
    };
    let operator = Operator::of(state, request, &form.session);
    match state.registry.admin_create(operator.actor(), new).await {
        Ok((client, secret)) => secret_page(
            state,
            &form.session,
            &client.client_id,
            secret.as_deref(),
            "created",
        ),
        Err(AdminError::Store(error)) => failure_page(error, "could not create a client"),
        Err(error) => new_client_form(state, &form.session, Some(&error.to_string()), &fields),
    }
}

/// The page that shows a client secret, once: not cached, never shown again.
pub fn secret_page(
    state: &AppState,
    session: &crate::sessions::WebSession,
    client_id: &ClientId,
    secret: Option<&str>,
    what: &str,
) -> Response {
    console_page(
        state,
        session,
        "secret",
        CONSOLE_CLIENTS_PATH,
        context! {
            client_id => client_id.as_str(),
            secret,
            what,
            client_href => link(state, CONSOLE_CLIENT_PATH, "id", client_id.as_str()),
        },
    )
}
