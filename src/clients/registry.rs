//! The client registry: dynamic registration (RFC 7591), its management protocol (RFC 7592),
//! the registration policy (initial access token, per-source rate, global cap, idempotent
//! re-registration); the reaping of abandoned dynamic clients is in `clients::reaper`.
//!
//! Registration is unauthenticated, so nothing here may let one caller act on a client another
//! caller created: a deduplicated answer names the existing client but carries no
//! registration access token. And no caller may lock the others out: when the cap is reached,
//! the oldest client that no user ever authorized makes room.
//!
//! Admin-created clients live in the same table (`kind = admin`) and are handled by
//! `clients::admin`, which shares the row conversions defined here.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::clock::Clock;
use crate::config::RegistrationConfig;
use crate::ids::{ClientId, TokenHash};
use crate::oauth::client_metadata::{
    ClientMetadata, GENERATED_FIELDS, MetadataError, MetadataRules,
};
use crate::oauth::issuer::Issuer;
use crate::oauth::redirect_uri::AllowPattern;
use crate::routes::REGISTER_PATH;
use crate::store::audit::{AuditRecord, actors};
use crate::store::clients::{CappedInsert, ClientRow};
use crate::store::{Store, StoreError};
use crate::tokens::opaque;

use super::source_limit::SourceLimit;
use super::stored::stored_metadata;
use super::trail::metadata_summary;
pub use crate::store::clients::ClientKind;

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// Missing or wrong registration access token or initial access token.
    #[error("{0}")]
    InvalidToken(&'static str),
    #[error("too many registrations from this source; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("this server has reached its limit of registered clients; retry later")]
    CapReached { retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a client information response lets its caller do through RFC 7592.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Management<'a> {
    /// A new registration access token, and the registration client URI to use it at.
    Token(&'a str),
    /// The registration client URI only (the caller already holds a token).
    Uri,
    /// Nothing: the caller may not be the client's registrant.
    None,
}

/// The outcome of a registration or an RFC 7592 read/update: the client information
/// response (RFC 7591 §3.2.1).
#[derive(Debug, Clone)]
pub struct ClientInformation {
    pub client_id: ClientId,
    pub body: Map<String, Value>,
    /// False when an identical recent registration was returned instead of a new client.
    pub created: bool,
}

/// Why an RFC 7592 request may not manage the client it names, whatever the reason.
pub const NOT_MANAGED: &str =
    "the registration access token is missing, wrong, or not for this client";

pub struct Registry {
    store: Store,
    clock: Arc<dyn Clock>,
    issuer: Issuer,
    config: RegistrationConfig,
    rules: MetadataRules,
    /// `per_source_limit`, counted in this instance's memory (see [`SourceLimit`]).
    per_source: SourceLimit,
}

impl Registry {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        issuer: Issuer,
        config: RegistrationConfig,
    ) -> Self {
        let allowlist = config
            .redirect_uri_allowlist
            .iter()
            .map(|p| AllowPattern::parse(p).expect("validated with the configuration"))
            .collect();
        let rules = MetadataRules {
            max_redirect_uris: config.max_redirect_uris,
            max_redirect_uri_length: config.max_redirect_uri_length,
            allowlist,
            custom_schemes: config.custom_redirect_schemes.clone(),
        };
        Self {
            per_source: SourceLimit::new(config.per_source_limit, config.per_source_window_secs),
            store,
            clock,
            issuer,
            config,
            rules,
        }
    }

    pub fn rules(&self) -> &MetadataRules {
        &self.rules
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub(super) fn config(&self) -> &RegistrationConfig {
        &self.config
    }

    /// RFC 7591 §3: registers a dynamic client from `body`, sent from `source` (the rate
    /// limit's key) at `address` (the audit trail's). The client, its registration access token
    /// and the audit entry of its creation are one write.
    pub async fn register(
        &self,
        body: &Value,
        source: &str,
        address: Option<&str>,
        initial_access_token: Option<&str>,
    ) -> Result<ClientInformation, RegistrationError> {
        if self.config.require_initial_access_token {
            let valid = initial_access_token.is_some_and(|token| {
                self.config
                    .initial_access_token_hashes
                    .iter()
                    .any(|hash| opaque::verify(token, &hash.to_ascii_lowercase()))
            });
            if !valid {
                return Err(RegistrationError::InvalidToken(
                    "registration requires a valid initial access token",
                ));
            }
        }
        let metadata = ClientMetadata::from_json(body, &self.rules)?;
        let now = self.clock.now();

        // Hosts re-register on every connection. An identical public registration from the
        // same source is answered with the client it already made, writing nothing. (A
        // confidential client always gets a new id: its secret exists only in the first answer.)
        let fingerprint = (!metadata.token_endpoint_auth_method.has_secret())
            .then(|| registration_fingerprint(source, &metadata));
        if let Some(fingerprint) = &fingerprint
            && let Some(existing) = self.recent_identical(fingerprint, now).await?
        {
            return Ok(existing);
        }

        if let Some(retry_after) = self.per_source.hit(source, now) {
            return Err(RegistrationError::RateLimited { retry_after });
        }

        let client_id = generate_client_id();
        let (mut row, secret) = new_client(client_id.clone(), ClientKind::Dynamic, &metadata, now);
        row.registration_fingerprint = fingerprint;
        row.source = Some(source.chars().take(64).collect());
        let token = opaque::generate("reg");
        let body = self.information(
            &row,
            &metadata.to_json(),
            secret.as_deref(),
            Management::Token(&token),
        );
        let summary = json!({"after": metadata_summary(&body)});
        let created = AuditRecord::new(now, actors::REGISTRANT, "client.register", &summary)
            .client(&client_id)
            .source(address);
        self.insert_within_cap(&row, &TokenHash::of(&token), created)
            .await?;
        tracing::info!(%client_id, auth_method = %row.token_endpoint_auth_method, "client registered");
        Ok(ClientInformation {
            client_id,
            body,
            created: true,
        })
    }

    /// The client an identical registration from the same source made within the dedupe
    /// window, answered without any management power: whoever sends the same metadata from
    /// behind the same NAT is not necessarily its registrant.
    async fn recent_identical(
        &self,
        fingerprint: &str,
        now: i64,
    ) -> Result<Option<ClientInformation>, RegistrationError> {
        let since = now - self.config.dedupe_window_secs as i64;
        let Some(existing) = self
            .store
            .recent_client_by_fingerprint(fingerprint, since)
            .await?
            .filter(|row| !row.disabled)
        else {
            return Ok(None);
        };
        tracing::info!(client_id = %existing.client_id, "identical registration: returning the existing client");
        Ok(Some(ClientInformation {
            client_id: existing.client_id.clone(),
            body: self.information(
                &existing,
                &stored_metadata(&existing),
                None,
                Management::None,
            ),
            created: false,
        }))
    }

    /// Inserts a new dynamic client under the cap. A full cap loses its oldest client that no
    /// user ever authorized, in the same transaction, so registrations nobody completes cannot
    /// lock real hosts out; only authorized clients can fill it.
    async fn insert_within_cap(
        &self,
        row: &ClientRow,
        token_hash: &TokenHash,
        created: AuditRecord,
    ) -> Result<(), RegistrationError> {
        let cap = Some(self.config.max_dynamic_clients);
        match self
            .store
            .insert_client(row, Some(token_hash), cap, true, Some(created))
            .await?
        {
            CappedInsert::Inserted => Ok(()),
            CappedInsert::MadeRoom { evicted } => {
                tracing::info!(client_id = %evicted, "client cap reached: deleted the oldest never-authorized (or the longest superseded) client");
                self.record_server_deletions(
                    actors::SERVER,
                    "client.evict",
                    &[evicted],
                    &json!({"reason": "the client cap was reached: the oldest client no user ever authorized (or, when none was left, the registration superseded longest ago by a newer one of the same software) made room for a new registration"}),
                )
                .await;
                Ok(())
            }
            CappedInsert::Full => {
                tracing::warn!(
                    max = self.config.max_dynamic_clients,
                    "dynamic client cap reached by authorized clients"
                );
                Err(RegistrationError::CapReached {
                    retry_after: self.config.reap_interval_secs,
                })
            }
        }
    }

    /// RFC 7592 §2: authenticates a management request. Any failure is the same
    /// `invalid_token`, so a caller learns nothing about other clients.
    pub async fn authorize_management(
        &self,
        client_id: &ClientId,
        bearer: Option<&str>,
    ) -> Result<ClientRow, RegistrationError> {
        let invalid = RegistrationError::InvalidToken(NOT_MANAGED);
        let Some(token) = bearer else {
            return Err(invalid);
        };
        match self
            .store
            .client_by_registration_token(&TokenHash::of(token))
            .await?
        {
            Some(row) if &row.client_id == client_id && row.kind == ClientKind::Dynamic => Ok(row),
            _ => Err(invalid),
        }
    }

    /// RFC 7592 §2.1: the client's current information, its metadata as stored.
    pub fn read(&self, row: &ClientRow) -> ClientInformation {
        ClientInformation {
            client_id: row.client_id.clone(),
            body: self.information(row, &stored_metadata(row), None, Management::Uri),
            created: false,
        }
    }

    /// RFC 7592 §2.2: replaces the client's metadata.
    pub async fn update(
        &self,
        row: ClientRow,
        body: &Value,
    ) -> Result<ClientInformation, RegistrationError> {
        let fields = body.as_object();
        let named_id = fields
            .and_then(|f| f.get("client_id"))
            .and_then(Value::as_str);
        if named_id != Some(row.client_id.as_str()) {
            return Err(MetadataError::InvalidClientMetadata(
                "the body's client_id must equal the client being updated".into(),
            )
            .into());
        }
        if let Some(secret) = fields.and_then(|f| f.get("client_secret")) {
            let matches = secret
                .as_str()
                .zip(row.secret_hash.as_deref())
                .is_some_and(|(s, h)| opaque::verify(s, h));
            if !matches {
                return Err(MetadataError::InvalidClientMetadata(
                    "client_secret does not match the client's secret".into(),
                )
                .into());
            }
        }
        let metadata = ClientMetadata::from_json(body, &self.rules)?;
        let (row, new_secret) = apply_metadata(row, &metadata, self.clock.now());
        if !self.store.update_client(&row).await? {
            return Err(RegistrationError::InvalidToken(
                "the client no longer exists",
            ));
        }
        tracing::info!(client_id = %row.client_id, "client metadata replaced (RFC 7592)");
        Ok(ClientInformation {
            client_id: row.client_id.clone(),
            body: self.information(
                &row,
                &metadata.to_json(),
                new_secret.as_deref(),
                Management::Uri,
            ),
            created: false,
        })
    }

    /// RFC 7592 §2.3: deletes the client. It is unusable at once.
    pub async fn delete(&self, row: ClientRow) -> Result<(), RegistrationError> {
        self.store.delete_client(&row.client_id, self.now()).await?;
        tracing::info!(client_id = %row.client_id, "client deleted by its registrant (RFC 7592)");
        Ok(())
    }

    /// The client information response: the metadata echo, then the generated fields (which
    /// the metadata can never override).
    pub fn information(
        &self,
        row: &ClientRow,
        metadata: &Map<String, Value>,
        secret: Option<&str>,
        management: Management<'_>,
    ) -> Map<String, Value> {
        let mut body: Map<String, Value> = metadata
            .iter()
            .filter(|(name, _)| !GENERATED_FIELDS.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        body.insert("client_id".into(), row.client_id.as_str().into());
        body.insert("client_id_issued_at".into(), row.created_at.into());
        if let Some(secret) = secret {
            body.insert("client_secret".into(), secret.into());
            body.insert("client_secret_expires_at".into(), 0.into());
        }
        if let Management::Token(token) = management {
            body.insert("registration_access_token".into(), token.into());
        }
        if row.kind == ClientKind::Dynamic && management != Management::None {
            body.insert(
                "registration_client_uri".into(),
                self.registration_client_uri(&row.client_id).into(),
            );
        }
        body
    }

    pub fn registration_client_uri(&self, client_id: &ClientId) -> String {
        self.issuer
            .endpoint(&format!("{REGISTER_PATH}/{client_id}"))
    }
}

/// A new client of `kind` with `metadata`, and its secret when its method has one (shown
/// once).
pub fn new_client(
    client_id: ClientId,
    kind: ClientKind,
    metadata: &ClientMetadata,
    now: i64,
) -> (ClientRow, Option<String>) {
    apply_metadata(blank_client(client_id, kind, now), metadata, now)
}

/// A client created at `now` with no metadata yet, never used.
pub(crate) fn blank_client(client_id: ClientId, kind: ClientKind, now: i64) -> ClientRow {
    ClientRow {
        client_id,
        kind,
        client_name: None,
        metadata: String::new(),
        token_endpoint_auth_method: String::new(),
        secret_hash: None,
        registration_fingerprint: None,
        source: None,
        created_at: now,
        updated_at: now,
        first_authorized_at: None,
        last_used_at: None,
        disabled: false,
        resource_server_for: None,
        access_token_ttl_secs: None,
        software_id: None,
        superseded_at: None,
    }
}

/// Applies new metadata to a row. A client that moves to a secret-based method gets a new
/// secret (returned once); one that moves to `none` loses its secret.
pub fn apply_metadata(
    mut row: ClientRow,
    metadata: &ClientMetadata,
    now: i64,
) -> (ClientRow, Option<String>) {
    let method = metadata.token_endpoint_auth_method;
    let mut new_secret = None;
    if method.has_secret() && row.secret_hash.is_none() {
        let secret = opaque::generate("sec");
        row.secret_hash = Some(opaque::hash(&secret));
        new_secret = Some(secret);
    }
    if !method.has_secret() {
        row.secret_hash = None;
    }
    row.client_name = metadata.client_name.clone();
    row.metadata = Value::Object(metadata.to_json()).to_string();
    row.token_endpoint_auth_method = method.as_str().into();
    row.registration_fingerprint = None;
    row.software_id = (row.kind == ClientKind::Dynamic).then(|| software_id(metadata));
    row.updated_at = now;
    (row, new_secret)
}

/// `client_<22 base64url characters>`: 128 random bits, never a URL, so it cannot be confused
/// with a Client ID Metadata Document.
pub fn generate_client_id() -> ClientId {
    ClientId::generate()
}

/// SHA-256 over the source and the metadata with object keys sorted, so key order does not
/// make two identical registrations differ.
fn registration_fingerprint(source: &str, metadata: &ClientMetadata) -> String {
    let canonical = canonical_json(&Value::Object(metadata.to_json()));
    opaque::hash(&format!("{source}\n{canonical}"))
}

/// What software a dynamic client is: SHA-256 over its metadata alone (no source, no time), so
/// every identical registration shares it wherever it comes from. Used to recognise a host
/// registering itself again (see `oauth::consent` and the cap's eviction order).
pub fn software_id(metadata: &ClientMetadata) -> String {
    let canonical = canonical_json(&Value::Object(metadata.to_json()));
    opaque::hash(&format!("software\n{canonical}"))
}

fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), canonical_json(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
