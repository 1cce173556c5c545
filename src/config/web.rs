//! The browser-facing sections beside the OAuth flow: the operator console (`[console]`) and
//! the user's connected-apps page (`[account]`), both off unless configured, and their rules.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The operator console (`/console`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    pub enabled: bool,
    /// Upstream (OwnerRez) user ids let in through the upstream sign-in.
    pub operators: Vec<String>,
    /// Offer a form where an admin API token signs in (needs `[[admin.tokens]]`).
    pub admin_token_sign_in: bool,
    pub session_idle_minutes: u64,
    pub session_absolute_hours: u64,
}

/// The connected-apps page (`/account`), where users see and disconnect the apps that hold
/// access for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountConfig {
    pub enabled: bool,
    pub session_idle_minutes: u64,
    pub session_absolute_hours: u64,
}

/// A day, the longest idle timeout.
const MAX_IDLE_MINUTES: u64 = 24 * 60;
/// Thirty days, the longest a session may last.
const MAX_ABSOLUTE_HOURS: u64 = 30 * 24;

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            operators: Vec::new(),
            admin_token_sign_in: false,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
        }
    }
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
        }
    }
}

impl ConsoleConfig {
    /// `has_admin_tokens`: whether `[[admin.tokens]]` configures any token.
    pub fn validate(&self, has_admin_tokens: bool) -> Result<(), ConfigError> {
        validate_timeouts(
            "console",
            self.session_idle_minutes,
            self.session_absolute_hours,
        )?;
        if let Some(bad) = self
            .operators
            .iter()
            .find(|id| id.trim().is_empty() || id.trim() != id.as_str() || id.len() > 255)
        {
            return Err(ConfigError::new(
                "console.operators",
                format!(
                    "`{bad}` is not an upstream user id (1 to 255 characters, no surrounding spaces)"
                ),
            ));
        }
        if self.admin_token_sign_in && !has_admin_tokens {
            return Err(ConfigError::new(
                "console.admin_token_sign_in",
                "needs at least one [[admin.tokens]] entry (`authbridge admin-token NAME` makes one)",
            ));
        }
        if self.enabled && self.operators.is_empty() && !self.admin_token_sign_in {
            return Err(ConfigError::new(
                "console.operators",
                "the console is enabled but nobody can sign in: list the operators' upstream user ids, or set console.admin_token_sign_in = true",
            ));
        }
        Ok(())
    }

    /// Whether `upstream_subject` is an operator.
    pub fn is_operator(&self, upstream_subject: &str) -> bool {
        self.operators.iter().any(|id| id == upstream_subject)
    }
}

impl AccountConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_timeouts(
            "account",
            self.session_idle_minutes,
            self.session_absolute_hours,
        )
    }
}

fn validate_timeouts(
    section: &str,
    idle_minutes: u64,
    absolute_hours: u64,
) -> Result<(), ConfigError> {
    if !(1..=MAX_IDLE_MINUTES).contains(&idle_minutes) {
        return Err(ConfigError::new(
            format!("{section}.session_idle_minutes"),
            format!("must be between 1 and {MAX_IDLE_MINUTES}"),
        ));
    }
    if !(1..=MAX_ABSOLUTE_HOURS).contains(&absolute_hours) {
        return Err(ConfigError::new(
            format!("{section}.session_absolute_hours"),
            format!("must be between 1 and {MAX_ABSOLUTE_HOURS}"),
        ));
    }
    if idle_minutes > absolute_hours * 60 {
        return Err(ConfigError::new(
            format!("{section}.session_idle_minutes"),
            format!("must not exceed {section}.session_absolute_hours"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_valid() {
        let console = ConsoleConfig::default();
        assert!(!console.enabled);
        console.validate(false).unwrap();
        assert!(!AccountConfig::default().enabled);
        AccountConfig::default().validate().unwrap();
    }

    #[test]
    fn each_invalid_case_names_its_key() {
        let enabled = |operators: &[&str], token: bool| ConsoleConfig {
            enabled: true,
            operators: operators.iter().map(|s| s.to_string()).collect(),
            admin_token_sign_in: token,
            ..ConsoleConfig::default()
        };
        let cases = [
            (
                "nobody can sign in",
                enabled(&[], false),
                true,
                "console.operators",
            ),
            (
                "blank operator",
                enabled(&[" "], false),
                true,
                "console.operators",
            ),
            (
                "padded operator",
                enabled(&[" 7"], false),
                true,
                "console.operators",
            ),
            (
                "token sign-in without tokens",
                enabled(&[], true),
                false,
                "console.admin_token_sign_in",
            ),
            (
                "idle 0",
                ConsoleConfig {
                    session_idle_minutes: 0,
                    ..enabled(&["7"], false)
                },
                true,
                "console.session_idle_minutes",
            ),
            (
                "absolute too long",
                ConsoleConfig {
                    session_absolute_hours: 721,
                    ..enabled(&["7"], false)
                },
                true,
                "console.session_absolute_hours",
            ),
            (
                "idle beyond absolute",
                ConsoleConfig {
                    session_idle_minutes: 120,
                    session_absolute_hours: 1,
                    ..enabled(&["7"], false)
                },
                true,
                "console.session_idle_minutes",
            ),
        ];
        for (name, config, tokens, key) in cases {
            assert_eq!(config.validate(tokens).unwrap_err().key, key, "{name}");
        }
        enabled(&["7"], false).validate(false).unwrap();
        enabled(&[], true).validate(true).unwrap();
        let account = AccountConfig {
            session_absolute_hours: 0,
            ..AccountConfig::default()
        };
        assert_eq!(
            account.validate().unwrap_err().key,
            "account.session_absolute_hours"
        );
    }

    #[test]
    fn operators_match_exactly() {
        let console = ConsoleConfig {
            operators: vec!["123".into()],
            ..ConsoleConfig::default()
        };
        assert!(console.is_operator("123"));
        assert!(!console.is_operator("1234") && !console.is_operator(""));
    }
}
