//! Fetching and caching Client ID Metadata Documents: the cached copy while fresh, else one
//! fetch (a limited number at once per host), validated and cached by its `Cache-Control`.
//! A failure is remembered for `failure_cache_secs`, so a bad URL costs one fetch per that
//! time, not one per request. The cache is bounded by `max_cached_documents`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CACHE_CONTROL};
use reqwest::{StatusCode, redirect};
use url::{Host, Url};

use super::limiter::HostLimiter;
use super::network::{ForbiddenAddressError, GuardedResolver, is_allowed_target};
use super::{CimdError, ClientDocument, cache_lifetime, is_client_id_url, validate_document};
use crate::clock::Clock;
use crate::config::{ClientMetadataDocumentConfig, RegistrationConfig};
use crate::ids::ClientId;
use crate::store::Store;
use crate::store::client_documents::ClientDocumentRow;

const USER_AGENT: &str = concat!("authbridge/", env!("CARGO_PKG_VERSION"));

/// Fetches, validates and caches Client ID Metadata Documents. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ClientDocumentResolver {
    http: reqwest::Client,
    config: ClientMetadataDocumentConfig,
    custom_schemes: Vec<String>,
    store: Store,
    clock: Arc<dyn Clock>,
    hosts: Arc<HostLimiter>,
}

/// A successful response: its body and its `Cache-Control` header.
struct FetchedDocument {
    text: String,
    cache_control: String,
}

impl ClientDocumentResolver {
    pub fn new(config: ClientMetadataDocumentConfig, store: Store, clock: Arc<dyn Clock>) -> Self {
        let timeout = Duration::from_millis(config.timeout_ms);
        let http = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .no_proxy()
            .https_only(!config.allow_http_loopback)
            .dns_resolver(Arc::new(GuardedResolver {
                allow_loopback: config.allow_http_loopback,
            }))
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .build()
            // Fails only when the TLS backend cannot start, which no configuration causes.
            .expect("the HTTP client for client metadata documents builds");
        Self {
            http,
            hosts: HostLimiter::new(config.max_concurrent_fetches_per_host),
            config,
            custom_schemes: RegistrationConfig::default().custom_redirect_schemes,
            store,
            clock,
        }
    }

    /// Accepts these private-use redirect schemes in documents (besides reverse-domain ones);
    /// the configured `registration.custom_redirect_schemes`.
    pub fn with_custom_redirect_schemes(mut self, schemes: Vec<String>) -> Self {
        self.custom_schemes = schemes;
        self
    }

    /// The document at `client_id`: the cached copy (or remembered failure) if still fresh,
    /// else fetched, validated and cached for as long as its `Cache-Control` allows (within
    /// the configured bounds).
    pub async fn resolve(&self, client_id: &ClientId) -> Result<ClientDocument, CimdError> {
        if !is_client_id_url(client_id.as_str(), self.config.allow_http_loopback) {
            return Err(CimdError::InvalidUrl);
        }
        if let Some(answer) = self.cached(client_id).await? {
            return answer;
        }
        let host = Url::parse(client_id.as_str())
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        let wait = Duration::from_millis(self.config.timeout_ms);
        let Some(_turn) = self.hosts.turn(&host, wait).await else {
            return Err(CimdError::Busy);
        };
        // Whoever had the turn before may just have fetched (or failed to fetch) this URL.
        if let Some(answer) = self.cached(client_id).await? {
            return answer;
        }
        let outcome = self.fetch(client_id).await.and_then(|fetched| {
            let document =
                validate_document(client_id.as_str(), &fetched.text, &self.custom_schemes)?;
            Ok((document, fetched))
        });
        let (document, fetched) = match outcome {
            Ok(fetched) => fetched,
            Err(error) => {
                self.remember_failure(client_id, &error).await;
                return Err(error);
            }
        };
        let lifetime = cache_lifetime(
            &fetched.cache_control,
            self.config.min_cache_secs,
            self.config.max_cache_secs,
        );
        match lifetime {
            Some(secs) => {
                let now = self.clock.now();
                self.cache(ClientDocumentRow {
                    url: client_id.clone(),
                    document: fetched.text,
                    fetched_at: now,
                    expires_at: now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
                    failure: None,
                    failure_temporary: false,
                })
                .await;
            }
            None => self.forget(client_id).await,
        }
        Ok(document)
    }

    /// A fresh answer from the cache: the document, or the failure remembered for the URL.
    /// `None` when it must be fetched (nothing cached, expired, or valid only under older
    /// rules).
    async fn cached(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<Result<ClientDocument, CimdError>>, CimdError> {
        let Some(row) = self.store.client_document(client_id).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        if now >= row.expires_at {
            return Ok(None);
        }
        if let Some(description) = row.failure {
            return Ok(Some(Err(CimdError::Remembered {
                description,
                temporary: row.failure_temporary,
                for_secs: self.config.failure_cache_secs,
            })));
        }
        match validate_document(client_id.as_str(), &row.document, &self.custom_schemes) {
            Ok(document) => Ok(Some(Ok(document))),
            Err(error) => {
                tracing::info!(url = %client_id, %error, "cached document no longer valid");
                Ok(None)
            }
        }
    }

    /// Remembers that `client_id` failed, for `failure_cache_secs`, replacing any cached copy
    /// (an expired copy must not be served after a failed refetch either). A failure of our
    /// own (the store, our fetch limit) says nothing about the URL and is not remembered.
    async fn remember_failure(&self, client_id: &ClientId, error: &CimdError) {
        if matches!(error, CimdError::Store(_) | CimdError::Busy) {
            return;
        }
        if self.config.failure_cache_secs == 0 {
            return self.forget(client_id).await;
        }
        let now = self.clock.now();
        let for_secs = i64::try_from(self.config.failure_cache_secs).unwrap_or(i64::MAX);
        self.cache(ClientDocumentRow {
            url: client_id.clone(),
            document: String::new(),
            fetched_at: now,
            expires_at: now.saturating_add(for_secs),
            failure: Some(error.to_string()),
            failure_temporary: error.is_temporary(),
        })
        .await;
    }

    /// Stores a cache row within `max_cached_documents`; when the cache is full, expired rows
    /// are dropped first, and if it is still full the row is not cached (the document is
    /// valid either way).
    async fn cache(&self, row: ClientDocumentRow) {
        let cap = self.config.max_cached_documents;
        let url = row.url.clone();
        let mut stored = self.store.put_client_document(row.clone(), cap).await;
        if matches!(stored, Ok(false)) {
            let purged = self
                .store
                .delete_expired_client_documents(self.clock.now())
                .await;
            if matches!(purged, Ok(count) if count > 0) {
                stored = self.store.put_client_document(row, cap).await;
            }
        }
        match stored {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(url = %url, max = cap, "client metadata document cache is full");
                self.forget(&url).await;
            }
            Err(error) => {
                tracing::warn!(url = %url, %error, "could not cache a document");
                self.forget(&url).await;
            }
        }
    }

    /// Drops the cached copy of `client_id`. A failure here only leaves garbage behind, which
    /// expires, and must not hide the outcome of the fetch.
    async fn forget(&self, client_id: &ClientId) {
        if let Err(error) = self.store.delete_client_document(client_id).await {
            tracing::warn!(url = %client_id, %error, "could not drop a client metadata document");
        }
    }

    async fn fetch(&self, client_id: &ClientId) -> Result<FetchedDocument, CimdError> {
        let url = Url::parse(client_id.as_str()).map_err(|_| CimdError::InvalidUrl)?;
        // reqwest does not call the resolver for an IP literal, so check it here.
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !is_allowed_target(ip, self.config.allow_http_loopback)
        {
            return Err(CimdError::ForbiddenAddress);
        }
        let mut response = self
            .http
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(CimdError::Redirect);
        }
        if status != StatusCode::OK {
            return Err(CimdError::Status(status.as_u16()));
        }
        let max_bytes = self.config.max_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > max_bytes as u64)
        {
            return Err(CimdError::TooLarge);
        }
        let cache_control = response
            .headers()
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        // Content-Length may be absent or wrong: count what actually arrives.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if body.len() + chunk.len() > max_bytes {
                return Err(CimdError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).map_err(|_| CimdError::NotJson)?;
        Ok(FetchedDocument {
            text,
            cache_control,
        })
    }
}

fn request_error(error: reqwest::Error) -> CimdError {
    if error.is_timeout() {
        return CimdError::Timeout;
    }
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        if cause.is::<ForbiddenAddressError>() {
            return CimdError::ForbiddenAddress;
        }
        source = cause.source();
    }
    CimdError::Network(error)
}
