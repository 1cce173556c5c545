//! The signing keys of this issuer: loaded from the database, decrypted and parsed once, and
//! refreshed periodically so that a rotation made by another instance is picked up within
//! `keys.refresh_interval_secs`.
//!
//! Readers take an `Arc` snapshot ([`KeyRing`]) under a short read lock: signing and serving
//! the JWKS never touch the database, the vault or a DER parser.

use std::sync::{Arc, RwLock};

use aws_lc_rs::rsa::KeyPair;
use bytes::Bytes;
use jsonwebtoken::DecodingKey;
use serde::Serialize;

use super::jwk::{ALGORITHM, PublicJwk, generate_rsa_key};
use super::jws::Signer;
use super::lifecycle::{KeyState, key_states, rotation_due};
use crate::clock::{Clock, Rfc3339};
use crate::store::signing_keys::SigningKeyRow;
use crate::store::{Store, StoreError};
use crate::vault::{Vault, VaultError, context};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid} cannot be decrypted: {source}")]
    Vault { kid: String, source: VaultError },
    #[error("signing key {kid} is stored in a form this server cannot read")]
    Corrupt { kid: String },
    #[error(
        "key {kid} is already waiting to become active (at {}); rotate again after that",
        Rfc3339(*activates_at)
    )]
    RotationPending { kid: String, activates_at: i64 },
    #[error("no signing key is active")]
    NoActiveKey,
}

/// Timing of the key lifecycle.
#[derive(Debug, Clone, Copy)]
pub struct KeyTiming {
    /// Seconds a new key is published before it signs.
    pub activation_delay: i64,
    /// Seconds a retired key stays published: the longest a token it signed can live.
    pub retire_for: i64,
    /// Seconds a key signs before the scheduler rotates it; `None`: only on request.
    pub rotate_every: Option<i64>,
}

/// One published key, parsed.
struct LoadedKey {
    activates_at: i64,
    created_at: i64,
    jwk: PublicJwk,
    signer: Signer,
    /// The public key as jsonwebtoken verifies with it, built once when the key is loaded.
    decoding_key: Arc<DecodingKey>,
}

/// An immutable snapshot of the published keys.
pub struct KeyRing {
    keys: Vec<LoadedKey>,
    jwks: Bytes,
}

/// A key as reported to operators.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeySummary {
    pub kid: String,
    pub state: &'static str,
    pub created_at: i64,
    pub activates_at: i64,
}

#[derive(Serialize)]
struct JwkSet<'a> {
    keys: Vec<&'a PublicJwk>,
}

impl KeyRing {
    fn empty() -> Self {
        Self {
            keys: Vec::new(),
            jwks: Bytes::from_static(br#"{"keys":[]}"#),
        }
    }

    fn states(&self, now: i64, timing: KeyTiming) -> Vec<KeyState> {
        let activations: Vec<i64> = self.keys.iter().map(|k| k.activates_at).collect();
        key_states(&activations, now, timing.retire_for)
    }
}

/// The issuer's signing keys.
pub struct SigningKeys {
    store: Store,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
    timing: KeyTiming,
    ring: RwLock<Arc<KeyRing>>,
}

impl SigningKeys {
    /// Loads the keys, generating the first one on a fresh database and re-sealing keys that
    /// were sealed under a previous encryption key.
    pub async fn load(
        store: Store,
        vault: Arc<Vault>,
        clock: Arc<dyn Clock>,
        timing: KeyTiming,
    ) -> Result<Self, KeyError> {
        let keys = Self {
            store,
            vault,
            clock,
            timing,
            ring: RwLock::new(Arc::new(KeyRing::empty())),
        };
        keys.reseal_with_current_key().await?;
        keys.refresh().await?;
        if keys.signer().is_none() {
            // A fresh database (or every key expired): nothing was published before, so
            // no verifier can be holding an old JWKS, and the key may sign at once.
            let now = keys.clock.now();
            keys.insert_new_key(now, now, None).await?;
            keys.refresh().await?;
        }
        Ok(keys)
    }

    /// Re-reads the keys from the database, drops keys past their lifecycle, and publishes a
    /// new snapshot. Keys already parsed are reused, not decrypted again.
    pub async fn refresh(&self) -> Result<(), KeyError> {
        let rows = self.store.signing_keys().await?;
        let now = self.clock.now();
        let activations: Vec<i64> = rows.iter().map(|r| r.activates_at).collect();
        let states = key_states(&activations, now, self.timing.retire_for);

        let current = self.snapshot();
        let mut loaded = Vec::new();
        let mut removed = Vec::new();
        for (row, state) in rows.into_iter().zip(states) {
            if !state.is_published() {
                removed.push(row.kid);
                continue;
            }
            let reused = current.keys.iter().find(|k| k.jwk.kid == row.kid);
            let key = match reused {
                Some(key) => LoadedKey {
                    activates_at: row.activates_at,
                    created_at: row.created_at,
                    jwk: key.jwk.clone(),
                    signer: key.signer.clone(),
                    decoding_key: Arc::clone(&key.decoding_key),
                },
                None => self.parse_row(&row)?,
            };
            loaded.push(key);
        }
        if !removed.is_empty() {
            let count = self.store.delete_signing_keys(&removed).await?;
            tracing::info!(count, kids = ?removed, "removed retired signing keys");
            // Several instances may remove the same keys: the one whose delete took them says so.
            if count > 0 {
                let summary = serde_json::json!({"kids": removed, "reason": "retired, and every token they signed has expired"});
                let record = crate::store::audit::AuditRecord::new(
                    self.clock.now(),
                    crate::store::audit::actors::SERVER,
                    "keys.remove",
                    &summary,
                );
                self.store.record_change(record).await?;
            }
        }
        let jwks = serde_json::to_vec(&JwkSet {
            keys: loaded.iter().map(|k| &k.jwk).collect(),
        })
        .expect("a JWK set serialises");
        let ring = KeyRing {
            keys: loaded,
            jwks: Bytes::from(jwks),
        };
        *self.ring.write().expect("key ring lock is never poisoned") = Arc::new(ring);
        Ok(())
    }

    /// Starts a rotation: a new key, published now, signing after the activation delay.
    pub async fn rotate(&self) -> Result<KeySummary, KeyError> {
        self.refresh().await?;
        if let Some(pending) = self.pending_key() {
            return Err(pending);
        }
        let newest = self.snapshot().keys.last().map(|k| k.jwk.kid.clone());
        match self.start_rotation(newest).await? {
            Some(key) => Ok(key),
            // Another instance (or the scheduler) rotated the same key a moment earlier.
            None => Err(self.pending_key().unwrap_or(KeyError::NoActiveKey)),
        }
    }

    /// An operator's rotation (the admin API, the console): [`Self::rotate`], then the audit
    /// entry `keys.rotate` naming `actor`. A failure to audit is logged: the key exists by then.
    pub async fn rotate_as(
        &self,
        actor: crate::store::audit::Actor<'_>,
    ) -> Result<KeySummary, KeyError> {
        let key = self.rotate().await?;
        let summary = serde_json::json!({"kid": key.kid, "activates_at": key.activates_at});
        let record = crate::store::audit::AuditRecord::new(
            self.clock.now(),
            actor.name,
            "keys.rotate",
            &summary,
        )
        .source(actor.source);
        if let Err(error) = self.store.record_change(record).await {
            tracing::error!(%error, "could not audit a key rotation");
        }
        Ok(key)
    }

    /// The scheduled rotation: when the active key has signed for `rotate_every` (less the
    /// activation delay, so that its successor takes over on time), publishes its successor.
    /// Every instance calls this; the database lets exactly one of them rotate a given key
    /// (`signing_keys.rotates_from` is unique), and that one writes the audit entry. Returns
    /// the new key when this call made it.
    pub async fn rotate_if_due(&self) -> Result<Option<KeySummary>, KeyError> {
        let Some(period) = self.timing.rotate_every else {
            return Ok(None);
        };
        self.refresh().await?;
        let now = self.clock.now();
        let ring = self.snapshot();
        let states = ring.states(now, self.timing);
        if states.contains(&KeyState::Next) {
            return Ok(None);
        }
        let Some(active) = ring
            .keys
            .iter()
            .zip(&states)
            .find(|(_, s)| **s == KeyState::Active)
            .map(|(k, _)| k)
        else {
            return Ok(None);
        };
        if !rotation_due(
            active.activates_at,
            now,
            period,
            self.timing.activation_delay,
        ) {
            return Ok(None);
        }
        let replaced = active.jwk.kid.clone();
        let Some(key) = self.start_rotation(Some(replaced.clone())).await? else {
            return Ok(None);
        };
        let summary = serde_json::json!({
            "kid": key.kid,
            "activates_at": key.activates_at,
            "replaces": replaced,
        });
        if let Err(error) = self
            .store
            .record_audit(
                now,
                crate::store::audit::actors::SCHEDULER,
                "keys.rotate",
                None,
                summary.to_string(),
            )
            .await
        {
            tracing::error!(%error, "could not audit a scheduled key rotation");
        }
        Ok(Some(key))
    }

    /// The key waiting to become active, as the error a second rotation gets.
    fn pending_key(&self) -> Option<KeyError> {
        let ring = self.snapshot();
        let states = ring.states(self.clock.now(), self.timing);
        ring.keys
            .iter()
            .zip(&states)
            .find(|(_, s)| **s == KeyState::Next)
            .map(|(key, _)| KeyError::RotationPending {
                kid: key.jwk.kid.clone(),
                activates_at: key.activates_at,
            })
    }

    /// Inserts the successor of `replaces`, published now and signing after the activation
    /// delay; `None` when another rotation of the same key won.
    async fn start_rotation(
        &self,
        replaces: Option<String>,
    ) -> Result<Option<KeySummary>, KeyError> {
        let now = self.clock.now();
        let activates_at = now + self.timing.activation_delay;
        let inserted = self.insert_new_key(now, activates_at, replaces).await?;
        self.refresh().await?;
        let Some(kid) = inserted else {
            return Ok(None);
        };
        tracing::info!(%kid, activates_at, "signing key rotation started");
        Ok(Some(KeySummary {
            kid,
            state: KeyState::Next.as_str(),
            created_at: now,
            activates_at,
        }))
    }

    /// The key that signs now, if any.
    pub fn signer(&self) -> Option<Signer> {
        let ring = self.snapshot();
        let states = ring.states(self.clock.now(), self.timing);
        ring.keys
            .iter()
            .zip(states)
            .find(|(_, s)| *s == KeyState::Active)
            .map(|(k, _)| k.signer.clone())
    }

    /// The JWKS document (RFC 7517 §5), serialised once per refresh.
    pub fn jwks(&self) -> Bytes {
        self.snapshot().jwks.clone()
    }

    /// The public key published under `kid`, if that key is published now (next, active or
    /// retired), ready for jsonwebtoken to verify with. Built once per loaded key, not per call.
    pub fn verification_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        let ring = self.snapshot();
        let states = ring.states(self.clock.now(), self.timing);
        ring.keys
            .iter()
            .zip(states)
            .find(|(k, s)| k.jwk.kid == kid && s.is_published())
            .map(|(k, _)| Arc::clone(&k.decoding_key))
    }

    /// The published keys and their states now.
    pub fn summaries(&self) -> Vec<KeySummary> {
        let ring = self.snapshot();
        let states = ring.states(self.clock.now(), self.timing);
        ring.keys
            .iter()
            .zip(states)
            .map(|(k, s)| KeySummary {
                kid: k.jwk.kid.clone(),
                state: s.as_str(),
                created_at: k.created_at,
                activates_at: k.activates_at,
            })
            .collect()
    }

    fn snapshot(&self) -> Arc<KeyRing> {
        self.ring
            .read()
            .expect("key ring lock is never poisoned")
            .clone()
    }

    /// Generates and stores a key; its kid, or `None` when a key already succeeds `rotates_from`.
    async fn insert_new_key(
        &self,
        now: i64,
        activates_at: i64,
        rotates_from: Option<String>,
    ) -> Result<Option<String>, KeyError> {
        let generated = generate_rsa_key();
        let kid = generated.jwk.kid.clone();
        let row = SigningKeyRow {
            kid: kid.clone(),
            algorithm: ALGORITHM.into(),
            public_jwk: serde_json::to_string(&generated.jwk).expect("a JWK serialises"),
            private_key: self
                .vault
                .seal(&generated.pkcs8, &context::signing_key(&kid)),
            created_at: now,
            activates_at,
            rotates_from,
        };
        Ok(self.store.insert_signing_key(row).await?.then_some(kid))
    }

    fn parse_row(&self, row: &SigningKeyRow) -> Result<LoadedKey, KeyError> {
        let corrupt = || KeyError::Corrupt {
            kid: row.kid.clone(),
        };
        if row.algorithm != ALGORITHM {
            return Err(corrupt());
        }
        let jwk: PublicJwk = serde_json::from_str(&row.public_jwk).map_err(|_| corrupt())?;
        let pkcs8 = self
            .vault
            .open(&row.private_key, &context::signing_key(&row.kid))
            .map_err(|source| KeyError::Vault {
                kid: row.kid.clone(),
                source,
            })?;
        let pair = KeyPair::from_pkcs8(&pkcs8).map_err(|_| corrupt())?;
        if super::jwk::public_jwk(&pair) != jwk || jwk.kid != row.kid {
            return Err(corrupt());
        }
        let decoding_key =
            DecodingKey::from_rsa_components(&jwk.n, &jwk.e).map_err(|_| corrupt())?;
        Ok(LoadedKey {
            activates_at: row.activates_at,
            created_at: row.created_at,
            jwk,
            signer: Signer::new(row.kid.clone(), Arc::new(pair)),
            decoding_key: Arc::new(decoding_key),
        })
    }

    async fn reseal_with_current_key(&self) -> Result<(), KeyError> {
        for row in self.store.signing_keys().await? {
            if self.vault.is_sealed_with_old_key(&row.private_key) {
                let context = context::signing_key(&row.kid);
                let plain = self
                    .vault
                    .open(&row.private_key, &context)
                    .map_err(|source| KeyError::Vault {
                        kid: row.kid.clone(),
                        source,
                    })?;
                self.store
                    .reseal_signing_key(&row.kid, self.vault.seal(&plain, &context))
                    .await?;
                tracing::info!(kid = %row.kid, key_id = self.vault.current_key_id(), "re-sealed signing key under the current encryption key");
            }
        }
        Ok(())
    }
}
