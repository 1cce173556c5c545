//! Operator actions on clients, shared by the admin API and the CLI. Every change is written to
//! the audit trail with who made it and a before/after summary (never a secret).

use serde::Serialize;
use serde_json::{Value, json};

use super::registry::{ClientKind, Registry, apply_metadata, generate_client_id, new_client};
use super::stored::{stored_metadata, stored_redirect_uris};
use crate::ids::ClientId;
use crate::oauth::client_metadata::{ClientMetadata, MetadataError};
use crate::store::StoreError;
use crate::store::audit::{Actor, AuditRecord, AuditRow};
use crate::store::clients::{ClientFilter, ClientRow};
use crate::tokens::opaque;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no client has the id `{0}`")]
    NotFound(String),
    #[error("a client with the id `{0}` already exists")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<MetadataError> for AdminError {
    fn from(error: MetadataError) -> Self {
        AdminError::Invalid(error.to_string())
    }
}

/// A new client as an operator describes it.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// Chosen by the operator (for hosts configured with a static client id), or generated.
    pub client_id: Option<String>,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    /// `none` (public), `client_secret_basic` (default) or `client_secret_post`.
    pub token_endpoint_auth_method: Option<String>,
}

/// Changes to a client; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub client_name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

// What the admin API answers (schema `AdminClient`) and the CLI prints.
/// A client as the admin API shows it.
#[derive(Debug, Clone, Serialize, poem_openapi::Object)]
#[oai(rename = "AdminClient")]
pub struct ClientView {
    pub client_id: ClientId,
    /// `dynamic` (registered by a host) or `admin` (created by an operator).
    pub kind: String,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub first_authorized_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// The resource this client serves (it may then use token exchange and introspection).
    pub resource_server_for: Option<String>,
    /// The access-token lifetime an operator gave this client, in seconds; absent: the
    /// configured one (`[[token_lifetimes]]` or `tokens.access_token_ttl_secs`).
    pub access_token_ttl_secs: Option<i64>,
    /// The full registered metadata, unknown fields included.
    pub metadata: Value,
}

impl ClientView {
    /// The view of a stored client, its metadata as stored (never re-validated).
    pub fn from_row(row: &ClientRow) -> Self {
        let metadata = stored_metadata(row);
        Self {
            client_id: row.client_id.clone(),
            kind: row.kind.as_str().to_owned(),
            client_name: row.client_name.clone(),
            redirect_uris: stored_redirect_uris(&metadata),
            token_endpoint_auth_method: row.token_endpoint_auth_method.clone(),
            disabled: row.disabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
            first_authorized_at: row.first_authorized_at,
            last_used_at: row.last_used_at,
            resource_server_for: row.resource_server_for.clone(),
            access_token_ttl_secs: row.access_token_ttl_secs,
            metadata: Value::Object(metadata),
        }
    }

    fn audit_summary(&self) -> Value {
        json!({
            "client_name": self.client_name,
            "redirect_uris": self.redirect_uris,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "disabled": self.disabled,
        })
    }
}

/// Largest page of a listing.
pub const MAX_PAGE: u64 = 200;

impl Registry {
    /// Creates a client; returns it and its secret (shown once) when it has one.
    pub async fn admin_create<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        new: NewClient,
    ) -> Result<(ClientView, Option<String>), AdminError> {
        let client_id = match new.client_id {
            Some(id) => validate_chosen_client_id(&id)?,
            None => generate_client_id(),
        };
        let body = json!({
            "client_name": new.client_name,
            "redirect_uris": new.redirect_uris,
            "token_endpoint_auth_method": new.token_endpoint_auth_method.unwrap_or_else(|| "client_secret_basic".into()),
        });
        let metadata = ClientMetadata::from_json(&body, self.rules())?;
        if metadata.client_name.is_none() {
            return Err(AdminError::Invalid("client_name is required".into()));
        }
        if self.store().client(&client_id).await?.is_some() {
            return Err(AdminError::Conflict(client_id.to_string()));
        }
        let (row, secret) = new_client(client_id.clone(), ClientKind::Admin, &metadata, self.now());
        self.store()
            .insert_client(&row, None, None, false, None)
            .await
            .map_err(|error| match error {
                // Two operators choosing the same id at once: the primary key decides.
                StoreError::Db(_) => AdminError::Conflict(client_id.to_string()),
                other => AdminError::Store(other),
            })?;
        let view = ClientView::from_row(&row);
        self.audit(
            actor,
            "client.create",
            &client_id,
            json!({"after": view.audit_summary()}),
        )
        .await?;
        Ok((view, secret))
    }

    pub async fn admin_list(
        &self,
        mut filter: ClientFilter,
    ) -> Result<(Vec<ClientView>, Option<String>), AdminError> {
        filter.limit = filter.limit.clamp(1, MAX_PAGE);
        let rows = self.store().list_clients(&filter).await?;
        let next = (rows.len() as u64 == filter.limit)
            .then(|| rows.last().map(|r| r.client_id.to_string()))
            .flatten();
        Ok((rows.iter().map(ClientView::from_row).collect(), next))
    }

    pub async fn admin_get(&self, client_id: &ClientId) -> Result<ClientView, AdminError> {
        Ok(ClientView::from_row(&self.existing(client_id).await?))
    }

    pub async fn admin_update<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        client_id: &ClientId,
        changes: ClientChanges,
    ) -> Result<ClientView, AdminError> {
        let mut row = self.existing(client_id).await?;
        let before = ClientView::from_row(&row);
        // New metadata is validated; a change of `disabled` alone keeps the metadata as stored,
        // so a client registered under older rules can still be disabled.
        if changes.client_name.is_some() || changes.redirect_uris.is_some() {
            let mut body = before.metadata.clone();
            if let Some(name) = changes.client_name {
                body["client_name"] = name.into();
            }
            if let Some(uris) = changes.redirect_uris {
                body["redirect_uris"] = uris.into();
            }
            let metadata = ClientMetadata::from_json(&body, self.rules())?;
            (row, _) = apply_metadata(row, &metadata, self.now());
        }
        row.updated_at = self.now();
        if let Some(disabled) = changes.disabled {
            if disabled && !row.disabled {
                // Revoked before the flag is stored: a failure in between leaves the client
                // enabled (the operator retries), never disabled with live tokens.
                self.store()
                    .revoke_grants_of_client(client_id, self.now())
                    .await?;
            }
            row.disabled = disabled;
        }
        if !self.store().update_client(&row).await? {
            return Err(AdminError::NotFound(client_id.to_string()));
        }
        let after = ClientView::from_row(&row);
        self.audit(
            actor,
            "client.update",
            client_id,
            json!({"before": before.audit_summary(), "after": after.audit_summary()}),
        )
        .await?;
        Ok(after)
    }

    pub async fn admin_delete<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        client_id: &ClientId,
    ) -> Result<(), AdminError> {
        let before = ClientView::from_row(&self.existing(client_id).await?);
        if !self.store().delete_client(client_id, self.now()).await? {
            return Err(AdminError::NotFound(client_id.to_string()));
        }
        self.audit(
            actor,
            "client.delete",
            client_id,
            json!({"before": before.audit_summary()}),
        )
        .await?;
        Ok(())
    }

    /// Replaces a confidential client's secret; the new one is returned once.
    pub async fn admin_rotate_secret<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        client_id: &ClientId,
    ) -> Result<String, AdminError> {
        let mut row = self.existing(client_id).await?;
        if row.secret_hash.is_none() {
            return Err(AdminError::Invalid(
                "this client is public (token_endpoint_auth_method none): it has no secret".into(),
            ));
        }
        let secret = opaque::generate("sec");
        row.secret_hash = Some(opaque::hash(&secret));
        row.updated_at = self.now();
        if !self.store().update_client(&row).await? {
            return Err(AdminError::NotFound(client_id.to_string()));
        }
        self.audit(actor, "client.rotate_secret", client_id, json!({}))
            .await?;
        Ok(secret)
    }

    pub async fn admin_audit(
        &self,
        before_id: Option<i32>,
        limit: u64,
    ) -> Result<Vec<AuditRow>, AdminError> {
        Ok(self
            .store()
            .audit_entries(before_id, limit.clamp(1, MAX_PAGE))
            .await?)
    }

    /// The audit trail filtered (the console's audit log), newest first.
    pub async fn admin_audit_filtered(
        &self,
        mut filter: crate::store::audit::AuditFilter,
    ) -> Result<Vec<AuditRow>, AdminError> {
        filter.limit = filter.limit.clamp(1, MAX_PAGE);
        Ok(self.store().audit_filtered(&filter).await?)
    }

    async fn existing(&self, client_id: &ClientId) -> Result<ClientRow, AdminError> {
        self.store()
            .client(client_id)
            .await?
            .ok_or_else(|| AdminError::NotFound(client_id.to_string()))
    }

    async fn audit<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        action: &str,
        client_id: &ClientId,
        summary: Value,
    ) -> Result<(), AdminError> {
        let actor = actor.into();
        let record = AuditRecord::new(self.now(), actor.name, action, &summary)
            .client(client_id)
            .source(actor.source);
        self.store().record_change(record).await?;
        tracing::info!(actor = %actor.name, %action, %client_id, "admin change");
        Ok(())
    }
}

/// The client an operator names (an admin API path, a console form, the CLI): an id that does
/// not parse names no client, and answers as an unknown one does.
pub fn named_client_id(raw: &str) -> Result<ClientId, AdminError> {
    raw.parse()
        .map_err(|_| AdminError::NotFound(raw.to_owned()))
}

/// An operator-chosen client id: 1 to 128 URL-safe characters, and never an `http(s)` URL
/// (those name Client ID Metadata Documents).
fn validate_chosen_client_id(id: &str) -> Result<ClientId, AdminError> {
    let charset_ok = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
    let invalid = || {
        AdminError::Invalid(
            "client_id must be 1 to 128 characters of A-Z, a-z, 0-9, -, _, . and ~".into(),
        )
    };
    if id.is_empty() || id.len() > 128 || !charset_ok {
        return Err(invalid());
    }
    // Narrower than `ClientId`'s own rule, so this never refuses; kept as a check all the same.
    id.parse().map_err(|_| invalid())
}

impl Registry {
    /// Marks a confidential client as the resource server of `resource` (a configured resource,
    /// by its canonical URI), or unmarks it with `None`. Only then may it use token exchange
    /// and introspection.
    pub async fn admin_set_resource_server<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        client_id: &ClientId,
        resource: Option<&str>,
        configured: &[String],
    ) -> Result<ClientView, AdminError> {
        let mut row = self.existing(client_id).await?;
        let canonical = match resource {
            Some(resource) => {
                let canonical = crate::oauth::resource::ResourceUri::from_request(resource)
                    .map_err(|error| AdminError::Invalid(error.to_string()))?;
                // The configured spelling is the one stored (and compared with `aud`).
                let Some(configured) = configured.iter().find(|c| canonical.names(c)) else {
                    return Err(AdminError::Invalid(format!(
                        "`{resource}` is not a configured resource"
                    )));
                };
                let canonical = crate::oauth::resource::ResourceUri::parse(configured)
                    .map_err(|error| AdminError::Invalid(error.to_string()))?;
                if row.secret_hash.is_none() {
                    return Err(AdminError::Invalid("a resource server must be a confidential client (it authenticates with a secret)".into()));
                }
                Some(canonical.as_str().to_owned())
            }
            None => None,
        };
        let before = row.resource_server_for.clone();
        row.resource_server_for = canonical.clone();
        row.updated_at = self.now();
        if !self.store().update_client(&row).await? {
            return Err(AdminError::NotFound(client_id.to_string()));
        }
        self.audit(
            actor,
            "client.resource_server",
            client_id,
            json!({"before": before, "after": canonical}),
        )
        .await?;
        Ok(ClientView::from_row(&row))
    }

    /// Revokes every grant of a client: its codes, refresh-token families and the access tokens
    /// issued with them. Its users log in again.
    pub async fn admin_revoke_client_tokens<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        client_id: &ClientId,
    ) -> Result<(), AdminError> {
        self.existing(client_id).await?;
        self.store()
            .revoke_grants_of_client(client_id, self.now())
            .await?;
        self.audit(actor, "client.revoke_tokens", client_id, json!({}))
            .await?;
        Ok(())
    }

    /// Gives a client its own access-token lifetime (60 s to `max_secs`, the configured
    /// maximum), or takes it away with `None`. It applies from the client's next code exchange
    /// or refresh; tokens already issued keep their `exp`. Remembered approvals stay valid:
    /// nothing the user saw changed.
    pub async fn admin_set_access_token_ttl<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        client_id: &ClientId,
        secs: Option<i64>,
        max_secs: i64,
    ) -> Result<ClientView, AdminError> {
        if let Some(secs) = secs
            && !(60..=max_secs).contains(&secs)
        {
            return Err(AdminError::Invalid(format!(
                "access_token_ttl_secs must be between 60 and {max_secs} (tokens.max_access_token_ttl_secs)"
            )));
        }
        let before = self.existing(client_id).await?.access_token_ttl_secs;
        if !self
            .store()
            .set_client_access_token_ttl(client_id, secs)
            .await?
        {
            return Err(AdminError::NotFound(client_id.to_string()));
        }
        self.audit(
            actor,
            "client.access_token_ttl",
            client_id,
            json!({"before": before, "after": secs}),
        )
        .await?;
        Ok(ClientView::from_row(&self.existing(client_id).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_client_ids() {
        for ok in ["cursor", "claude-static.1", "a~b_c"] {
            assert!(validate_chosen_client_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "https://x.example/c", "a b", "a/b", &"x".repeat(129)] {
            assert!(validate_chosen_client_id(bad).is_err(), "{bad}");
        }
    }
}
