//! The reaper of abandoned dynamic clients, and the purge of what outsiders wrote that no longer
//! counts. Both run from housekeeping.

use serde_json::json;

use super::registry::Registry;
use crate::store::StoreError;
use crate::store::audit::actors;

impl Registry {
    /// Deletes abandoned dynamic clients; returns how many went.
    pub async fn reap(&self) -> Result<usize, StoreError> {
        let now = self.now();
        let created_before = now - self.config().reap_unauthorized_after_secs as i64;
        let unused_before = now - (self.config().reap_unused_after_days as i64) * 86_400;
        let reaped = self
            .store()
            .reap_dynamic_clients(created_before, unused_before, now)
            .await?;
        if !reaped.is_empty() {
            tracing::info!(count = reaped.len(), "reaped abandoned dynamic clients");
            let rule = json!({
                "reason": "abandoned: never authorized, or unused for too long",
                "reap_unauthorized_after_secs": self.config().reap_unauthorized_after_secs,
                "reap_unused_after_days": self.config().reap_unused_after_days,
            });
            self.record_server_deletions(actors::REAPER, "client.reap", &reaped, &rule)
                .await;
        }
        Ok(reaped.len())
    }

    /// Deletes what outsiders wrote that no longer counts: rate-limit windows older than
    /// `longest_window_secs`, and expired metadata documents and remembered failures; then
    /// re-counts the capped tables, so a count can never stay wrong. Returns the rows deleted.
    pub async fn purge_outsider_rows(&self, longest_window_secs: u64) -> Result<u64, StoreError> {
        let now = self.now();
        let window = i64::try_from(longest_window_secs).unwrap_or(i64::MAX);
        let mut deleted = self
            .store()
            .delete_stale_rate_limits(now.saturating_sub(window))
            .await?;
        deleted += self.store().delete_expired_client_documents(now).await?;
        self.store().reconcile_counters().await?;
        Ok(deleted)
    }
}
