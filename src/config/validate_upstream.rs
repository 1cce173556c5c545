//! The rules of the `upstream` section: where the dev login may run, and the client and URLs
//! each provider needs.

use std::net::SocketAddr;

use super::{Config, ConfigError, ProviderKind, env_var_name};
use crate::oauth::issuer::Issuer;
use crate::oauth::loopback::is_loopback_host;

impl Config {
    pub(super) fn validate_upstream(
        &self,
        listen: SocketAddr,
        issuer: &Issuer,
    ) -> Result<(), ConfigError> {
        match self.upstream.provider {
            ProviderKind::Dev if !self.upstream.force_dev => self.validate_dev(listen, issuer)?,
            ProviderKind::Dev => {}
            ProviderKind::Ownerrez => self.validate_ownerrez()?,
            ProviderKind::Oauth2 => self.validate_oauth2()?,
        }
        if self.upstream.timeout_ms == 0 || self.upstream.timeout_ms > 60_000 {
            return Err(ConfigError::new(
                "upstream.timeout_ms",
                "must be between 1 and 60000",
            ));
        }
        let o = &self.upstream.ownerrez;
        if o.webhook_user.is_some()
            != (o.webhook_password.is_some() || o.webhook_password_file.is_some())
        {
            return Err(ConfigError::new(
                "upstream.ownerrez.webhook_password",
                "set upstream.ownerrez.webhook_user and a webhook password together (or neither)",
            ));
        }
        if let Some(password) = &o.webhook_password {
            super::password::check_webhook_password(
                "upstream.ownerrez.webhook_password",
                password.expose(),
            )?;
        }
        Ok(())
    }

    /// The dev login lets anyone log in as anyone: only for a server nobody else can
    /// reach, which a loopback issuer alone does not prove (`listen = 0.0.0.0:8080`).
    fn validate_dev(&self, listen: SocketAddr, issuer: &Issuer) -> Result<(), ConfigError> {
        if !listen.ip().is_loopback() {
            return Err(ConfigError::new(
                "upstream.provider",
                format!(
                    "the dev provider lets anyone log in as anyone; it is refused because server.listen `{}` is not a loopback address (listen on 127.0.0.1 or [::1], or set upstream.force_dev = true)",
                    self.server.listen
                ),
            ));
        }
        if !issuer.is_loopback() {
            return Err(ConfigError::new(
                "upstream.provider",
                "the dev provider lets anyone log in as anyone; it is refused because server.issuer is not a loopback URL (or set upstream.force_dev = true)",
            ));
        }
        Ok(())
    }

    fn validate_ownerrez(&self) -> Result<(), ConfigError> {
        let o = &self.upstream.ownerrez;
        require_client(
            "upstream.ownerrez",
            o.client_id.as_deref(),
            o.client_secret.is_some() || o.client_secret_file.is_some(),
        )?;
        validate_url("upstream.ownerrez.authorize_url", &o.authorize_url)?;
        validate_url("upstream.ownerrez.token_url", &o.token_url)?;
        validate_url("upstream.ownerrez.api_base_url", &o.api_base_url)?;
        if o.user_agent.trim().is_empty() {
            return Err(ConfigError::new(
                "upstream.ownerrez.user_agent",
                "must not be empty: OwnerRez rejects requests without a User-Agent",
            ));
        }
        Ok(())
    }

    fn validate_oauth2(&self) -> Result<(), ConfigError> {
        let o = &self.upstream.oauth2;
        require_client(
            "upstream.oauth2",
            o.client_id.as_deref(),
            o.client_secret.is_some() || o.client_secret_file.is_some(),
        )?;
        for (key, value) in [
            ("upstream.oauth2.authorize_url", &o.authorize_url),
            ("upstream.oauth2.token_url", &o.token_url),
        ] {
            match value {
                Some(url) => validate_url(key, url)?,
                None => {
                    return Err(ConfigError::new(key, "is required for the oauth2 provider"));
                }
            }
        }
        for (key, value) in [
            ("upstream.oauth2.userinfo_url", &o.userinfo_url),
            ("upstream.oauth2.revocation_url", &o.revocation_url),
        ] {
            if let Some(url) = value {
                validate_url(key, url)?;
            }
        }
        if !matches!(
            o.client_auth_method.as_str(),
            "client_secret_basic" | "client_secret_post"
        ) {
            return Err(ConfigError::new(
                "upstream.oauth2.client_auth_method",
                "must be client_secret_basic or client_secret_post",
            ));
        }
        match o.subject_source.as_str() {
            "token_response" => {}
            "userinfo" if o.userinfo_url.is_some() => {}
            "userinfo" => {
                return Err(ConfigError::new(
                    "upstream.oauth2.userinfo_url",
                    "is required when upstream.oauth2.subject_source is userinfo",
                ));
            }
            _ => {
                return Err(ConfigError::new(
                    "upstream.oauth2.subject_source",
                    "must be token_response or userinfo",
                ));
            }
        }
        if o.subject_path.trim().is_empty() {
            return Err(ConfigError::new(
                "upstream.oauth2.subject_path",
                "must not be empty",
            ));
        }
        Ok(())
    }
}

fn require_client(
    section: &str,
    client_id: Option<&str>,
    has_secret: bool,
) -> Result<(), ConfigError> {
    if client_id.is_none_or(|id| id.trim().is_empty()) {
        return Err(ConfigError::new(
            format!("{section}.client_id"),
            "is required",
        ));
    }
    if !has_secret {
        let key = format!("{section}.client_secret");
        let message = format!(
            "is required; set {} or name a file with {section}.client_secret_file",
            env_var_name(&key)
        );
        return Err(ConfigError::new(key, message));
    }
    Ok(())
}

fn validate_url(key: &str, value: &str) -> Result<(), ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|e| ConfigError::new(key, format!("`{value}` is not an absolute URL: {e}")))?;
    let loopback = url.host_str().is_some_and(is_loopback_host);
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(ConfigError::new(
            key,
            format!("`{value}` must be an https URL (http only on loopback)"),
        )),
    }
}
