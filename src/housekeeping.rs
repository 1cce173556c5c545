//! Background housekeeping, every `registration.reap_interval_secs`: the reaper of abandoned
//! dynamic clients, the purges of what can no longer be used (stale rate-limit windows and
//! expired metadata documents; expired codes, pending requests, denylist entries and refresh
//! families; remembered approvals; expired web sessions and sign-ins; audit entries past
//! `audit.retention_days`), each run that
//! deleted something recorded in the audit trail; and the recount of the console overview's
//! snapshot figures (users, live grants, admin clients).

use std::sync::Arc;

use serde_json::json;

use crate::clients::registry::Registry;
use crate::config::{AuditConfig, Config, TokenConfig};
use crate::store::audit::{AuditRecord, actors};

/// What one run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub reaped_clients: usize,
    pub outsider_rows: u64,
    pub expired_rows: u64,
    pub remembered_approvals: u64,
    /// Expired console and connected-apps sessions and unfinished sign-ins.
    pub web_sessions: u64,
    pub audit_entries: u64,
}

pub struct Housekeeping {
    registry: Arc<Registry>,
    tokens: TokenConfig,
    audit: AuditConfig,
    /// An approval whose login has not completed within the pending request's lifetime never
    /// will.
    login_ttl_secs: i64,
    /// A rate-limit row is dead once its window has passed; the longest window decides.
    longest_window_secs: u64,
}

impl Housekeeping {
    pub fn new(config: &Config, registry: Arc<Registry>) -> Self {
        Self {
            registry,
            tokens: config.tokens.clone(),
            audit: config.audit.clone(),
            login_ttl_secs: config.login.pending_request_ttl_secs as i64,
            longest_window_secs: config
                .registration
                .per_source_window_secs
                .max(config.login.per_source_window_secs),
        }
    }

    /// One run. A failing step is logged and the others still run.
    pub async fn run_once(&self) -> Purged {
        let registry = &self.registry;
        let store = registry.store();
        let mut purged = Purged::default();
        match registry.reap().await {
            Ok(count) => purged.reaped_clients = count,
            Err(error) => tracing::error!(%error, "could not reap abandoned clients"),
        }
        match registry.purge_outsider_rows(self.longest_window_secs).await {
            Ok(count) => purged.outsider_rows = count,
            Err(error) => tracing::error!(%error, "housekeeping of outsider rows failed"),
        }
        let cutoffs = crate::grants::housekeeping_cutoffs(&self.tokens, registry.now());
        match store.delete_expired(&cutoffs).await {
            Ok(count) => purged.expired_rows = count,
            Err(error) => tracing::error!(%error, "housekeeping failed"),
        }
        let now = registry.now();
        match store
            .purge_remembered_consents(now, now - self.login_ttl_secs)
            .await
        {
            Ok(count) => purged.remembered_approvals = count,
            Err(error) => tracing::error!(%error, "housekeeping of remembered approvals failed"),
        }
        match store.purge_web_sessions(now).await {
            Ok(count) => purged.web_sessions = count,
            Err(error) => tracing::error!(%error, "housekeeping of web sessions failed"),
        }
        if let Some(before) = self.audit.purge_before(now) {
            match store.purge_audit(before).await {
                Ok(count) => purged.audit_entries = count,
                Err(error) => tracing::error!(%error, "housekeeping of the audit trail failed"),
            }
        }
        if let Err(error) = store.recount_snapshots(now).await {
            tracing::error!(%error, "could not recount the console's figures");
        }
        self.record(&purged, now).await;
        purged
    }

    /// One audit entry for a run that deleted something besides clients (the reaper records
    /// each client it deletes).
    async fn record(&self, purged: &Purged, now: i64) {
        let deleted = purged.outsider_rows
            + purged.expired_rows
            + purged.remembered_approvals
            + purged.web_sessions
            + purged.audit_entries;
        if deleted == 0 {
            return;
        }
        tracing::info!(
            outsider_rows = purged.outsider_rows,
            expired_rows = purged.expired_rows,
            remembered_approvals = purged.remembered_approvals,
            web_sessions = purged.web_sessions,
            audit_entries = purged.audit_entries,
            "housekeeping: deleted what can no longer be used"
        );
        let summary = json!({
            "rate_limits_and_metadata_documents": purged.outsider_rows,
            "expired_codes_requests_and_tokens": purged.expired_rows,
            "remembered_approvals": purged.remembered_approvals,
            "web_sessions_and_sign_ins": purged.web_sessions,
            "audit_entries": purged.audit_entries,
            "audit_retention_days": self.audit.retention_days,
        });
        let record = AuditRecord::new(now, actors::HOUSEKEEPING, "housekeeping.purge", &summary);
        if let Err(error) = self.registry.store().record_change(record).await {
            tracing::error!(%error, "could not audit a housekeeping run");
        }
    }
}
