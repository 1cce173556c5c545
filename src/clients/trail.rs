//! Audit entries for the changes that clients and the server itself make to registrations:
//! RFC 7591 registrations and RFC 7592 updates and deletions (by the registrant, with its
//! address), and the deletions of the reaper and of the client cap. An entry that cannot be
//! written is logged: the change it describes has already been made.

use serde_json::{Map, Value, json};

use super::registry::Registry;
use crate::ids::ClientId;
use crate::store::audit::{AuditRecord, actors};

/// The fields of a client's metadata an audit entry shows (never a secret).
pub fn metadata_summary(information: &Map<String, Value>) -> Value {
    let field = |name: &str| information.get(name).cloned().unwrap_or(Value::Null);
    json!({
        "client_name": field("client_name"),
        "redirect_uris": field("redirect_uris"),
        "token_endpoint_auth_method": field("token_endpoint_auth_method"),
    })
}

impl Registry {
    /// Records a change a registrant made to its own client, from `address`.
    pub async fn record_registrant_change(
        &self,
        address: Option<&str>,
        action: &str,
        client_id: &ClientId,
        summary: &Value,
    ) {
        let record = AuditRecord::new(self.now(), actors::REGISTRANT, action, summary)
            .client(client_id)
            .source(address);
        if let Err(error) = self.store().record_change(record).await {
            tracing::error!(%error, %action, %client_id, "could not audit a registrant's change");
        }
    }

    /// Records clients the server deleted by itself, one entry each.
    pub(super) async fn record_server_deletions(
        &self,
        actor: &str,
        action: &str,
        client_ids: &[ClientId],
        summary: &Value,
    ) {
        let now = self.now();
        let records = client_ids
            .iter()
            .map(|id| AuditRecord::new(now, actor, action, summary).client(id))
            .collect();
        if let Err(error) = self.store().record_audits(records).await {
            tracing::error!(%error, %action, count = client_ids.len(), "could not audit deleted clients");
        }
    }
}
