//! The default of every setting: what `config/default.toml` documents, and what start-up uses
//! for a key that neither the file nor the environment sets.

use std::path::PathBuf;

use super::*;

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            pending_request_ttl_secs: 600,
            remember_consent_secs: 30 * 24 * 3600,
            per_source_limit: 120,
            per_source_window_secs: 60,
        }
    }
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            require_initial_access_token: false,
            initial_access_token_hashes: Vec::new(),
            max_dynamic_clients: 10_000,
            per_source_limit: 120,
            per_source_window_secs: 60,
            dedupe_window_secs: 600,
            max_redirect_uris: 10,
            max_redirect_uri_length: 2000,
            redirect_uri_allowlist: Vec::new(),
            custom_redirect_schemes: ["cursor", "vscode", "vscode-insiders", "claude", "windsurf"]
                .map(String::from)
                .to_vec(),
            reap_unauthorized_after_secs: 24 * 3600,
            reap_unused_after_days: 90,
            reap_interval_secs: 600,
            trust_forwarded_for: false,
        }
    }
}

impl Default for ClientMetadataDocumentConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_http_loopback: false,
            timeout_ms: 3000,
            max_bytes: 5 * 1024,
            min_cache_secs: 60,
            max_cache_secs: 24 * 3600,
            failure_cache_secs: 30,
            max_cached_documents: 10_000,
            max_concurrent_fetches_per_host: 2,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            encryption: EncryptionConfig::default(),
            tokens: TokenConfig::default(),
            keys: KeyConfig::default(),
            log: LogConfig::default(),
            upstream: UpstreamConfig::default(),
            registration: RegistrationConfig::default(),
            client_metadata_documents: ClientMetadataDocumentConfig::default(),
            admin: AdminConfig::default(),
            login: LoginConfig::default(),
            metrics: MetricsConfig::default(),
            audit: AuditConfig::default(),
            console: super::ConsoleConfig::default(),
            account: super::AccountConfig::default(),
            resources: vec![ResourceConfig {
                uri: "http://localhost:3000/mcp".into(),
                name: "Local MCP server".into(),
                scopes: vec!["mcp".into()],
                default_scopes: vec!["mcp".into()],
                proxy: None,
            }],
            token_lifetimes: Vec::new(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            issuer: None,
            body_limit_bytes: 64 * 1024,
            shutdown_grace_secs: 10,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            sqlite_synchronous: super::SqliteSynchronous::Normal,
        }
    }
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        Self {
            key_id: "1".into(),
            key: None,
            key_file: None,
            previous_key_id: None,
            previous_key: None,
            previous_key_file: None,
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 3600,
            max_access_token_ttl_secs: 24 * 3600,
            authorization_code_ttl_secs: 60,
            refresh_token_idle_ttl_secs: 30 * 24 * 3600,
            refresh_token_absolute_ttl_secs: 90 * 24 * 3600,
            refresh_token_grace_secs: 60,
        }
    }
}

impl Default for KeyConfig {
    fn default() -> Self {
        Self {
            activation_delay_secs: 900,
            refresh_interval_secs: 30,
            rotate_every_days: 0,
            retired_key_published_secs: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            provider: ProviderKind::Dev,
            force_dev: false,
            timeout_ms: 10_000,
            ownerrez: OwnerRezConfig::default(),
            oauth2: OAuth2Config::default(),
        }
    }
}

impl Default for OwnerRezConfig {
    fn default() -> Self {
        Self {
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            authorize_url: "https://app.ownerrez.com/oauth/authorize".into(),
            token_url: "https://api.ownerrez.com/oauth/access_token".into(),
            api_base_url: "https://api.ownerrez.com/v2".into(),
            user_agent: "authbridge".into(),
            send_redirect_uri_on_exchange: true,
            use_pkce: false,
            check_user: false,
            webhook_user: None,
            webhook_password: None,
            webhook_password_file: None,
        }
    }
}

impl Default for OAuth2Config {
    fn default() -> Self {
        Self {
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            authorize_url: None,
            token_url: None,
            userinfo_url: None,
            revocation_url: None,
            client_auth_method: "client_secret_basic".into(),
            use_pkce: true,
            scopes: Vec::new(),
            subject_source: "token_response".into(),
            subject_path: "sub".into(),
            display_name_path: None,
            user_agent: "authbridge".into(),
        }
    }
}
