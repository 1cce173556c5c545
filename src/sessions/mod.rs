//! Web sessions of the operator console and of the connected-apps page: who is signed in, for
//! which purpose, until when, and the CSRF token of their forms. Sessions live in the database
//! under the SHA-256 of a random cookie value, so every instance sharing the database knows
//! them and a copy of the database holds none. No HTTP types here: `http::session` turns
//! requests into calls of [`WebSessions`].

pub mod operators;
pub mod rules;

use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::Clock;
use crate::config::Config;
use crate::ids::UserId;
use crate::store::web_sessions::{WebSessionRow, WebSignInRow};
use crate::store::{Store, StoreError};
use crate::tokens::opaque;
use rules::{PerMinuteLimit, Timeouts};

/// Live sessions one person may hold per purpose; a new sign-in evicts the oldest beyond it.
pub const MAX_SESSIONS_PER_PERSON: u64 = 10;
/// Sign-ins one instance starts per minute (each stores a pending row).
pub const SIGN_IN_STARTS_PER_MINUTE: u32 = 300;
/// How long a started sign-in may take at the upstream.
pub const SIGN_IN_TTL_SECS: i64 = 600;
/// Wrong admin tokens one instance accepts on the console's sign-in form per minute; beyond
/// it the form answers `429` until the minute ends (each failure is audited).
pub const TOKEN_SIGN_IN_FAILURES_PER_MINUTE: u32 = 10;

/// What a session is for; each has its own cookie, timeouts and sign-in page. Defined with the
/// table that stores it, as its column type.
pub use crate::store::web_sessions::Purpose;

impl Purpose {
    /// Its name in logs and in the CSRF message; also its stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Account => "account",
        }
    }

    /// The session cookie's name. Always `__Host-`: Secure, Path=/, no Domain, so no other
    /// host or path can set or read it (browsers treat http://127.0.0.1 as secure too).
    pub fn cookie_name(self) -> &'static str {
        match self {
            Self::Console => "__Host-ab_console",
            Self::Account => "__Host-ab_account",
        }
    }
}

/// A live session, as loaded for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub purpose: Purpose,
    /// Account: our user id. Console: the operator's upstream user id, or `admin-token:<name>`.
    pub subject: String,
    /// What the pages call the person.
    pub label: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub absolute_expires_at: i64,
    session_hash: String,
    csrf: String,
}

impl WebSession {
    /// The token every form of this session carries as `csrf`.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// An account session's user: the id the session row holds, taken as stored.
    pub fn user_id(&self) -> UserId {
        UserId::from_stored(self.subject.clone())
    }

    /// Who acts, for the audit trail: `operator:<subject>` or `user:<subject>`.
    pub fn actor(&self) -> String {
        match self.purpose {
            Purpose::Console => console_actor(&self.subject),
            Purpose::Account => format!("user:{}", self.subject),
        }
    }
}

/// The audit actor of an operator: `operator:<subject>`.
pub fn console_actor(subject: &str) -> String {
    format!("operator:{subject}")
}

/// The sessions service, shared by the handlers.
pub struct WebSessions {
    store: Store,
    clock: Arc<dyn Clock>,
    key: hmac::Key,
    console: Timeouts,
    account: Timeouts,
    starts: PerMinuteLimit,
    token_failures: PerMinuteLimit,
}

impl WebSessions {
    /// `key_bytes`: the server's cookie key (the same on every instance), which signs the
    /// CSRF tokens.
    pub fn new(config: &Config, store: Store, clock: Arc<dyn Clock>, key_bytes: &[u8]) -> Self {
        Self {
            store,
            clock,
            key: hmac::Key::new(hmac::HMAC_SHA256, key_bytes),
            console: Timeouts::from_minutes_and_hours(
                config.console.session_idle_minutes,
                config.console.session_absolute_hours,
            ),
            account: Timeouts::from_minutes_and_hours(
                config.account.session_idle_minutes,
                config.account.session_absolute_hours,
            ),
            starts: PerMinuteLimit::new(SIGN_IN_STARTS_PER_MINUTE),
            token_failures: PerMinuteLimit::new(TOKEN_SIGN_IN_FAILURES_PER_MINUTE),
        }
    }

    fn timeouts(&self, purpose: Purpose) -> Timeouts {
        match purpose {
            Purpose::Console => self.console,
            Purpose::Account => self.account,
        }
    }

    /// How long a session of `purpose` lasts at most, in seconds (the cookie's `Max-Age`).
    pub fn absolute_secs(&self, purpose: Purpose) -> i64 {
        self.timeouts(purpose).absolute_secs
    }

    /// Counts a sign-in start; `false` when this instance has started its allowance this
    /// minute.
    pub fn allow_sign_in_start(&self) -> bool {
        self.starts.allow(self.clock.now())
    }

    /// Counts a wrong admin token on the console's sign-in form.
    pub fn count_token_failure(&self) {
        self.token_failures.allow(self.clock.now());
    }

    /// Whether this instance has seen its allowance of wrong admin tokens this minute: the
    /// form then checks no token until the minute ends.
    pub fn token_sign_in_closed(&self) -> bool {
        self.token_failures.is_spent(self.clock.now())
    }

    /// Stores a pending sign-in under the hash of the upstream `state`, bound to the browser
    /// (the hash of its binding cookie), with the sealed upstream PKCE verifier if any.
    pub async fn begin_sign_in(
        &self,
        purpose: Purpose,
        state_hash: &str,
        browser_hash: &str,
        sealed_verifier: Option<String>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.store
            .insert_web_sign_in(WebSignInRow {
                state_hash: state_hash.to_owned(),
                purpose,
                browser_hash: browser_hash.to_owned(),
                upstream_pkce_verifier: sealed_verifier,
                created_at: now,
                expires_at: now + SIGN_IN_TTL_SECS,
            })
            .await
    }

    /// Consumes a pending sign-in once (see [`Store::consume_web_sign_in`]); its purpose and
    /// sealed verifier.
    pub async fn consume_sign_in(
        &self,
        state_hash: &str,
        browser_hash: &str,
    ) -> Result<Option<(Purpose, Option<String>)>, StoreError> {
        let row = self
            .store
            .consume_web_sign_in(state_hash, browser_hash, self.clock.now())
            .await?;
        Ok(row.map(|row| (row.purpose, row.upstream_pkce_verifier)))
    }

    /// Starts a session; the value for its cookie. The person's oldest sessions beyond
    /// [`MAX_SESSIONS_PER_PERSON`] end.
    pub async fn create(
        &self,
        purpose: Purpose,
        subject: &str,
        label: &str,
    ) -> Result<String, StoreError> {
        let value = opaque::random_base64url(32);
        let now = self.clock.now();
        let timeouts = self.timeouts(purpose);
        let absolute = now.saturating_add(timeouts.absolute_secs);
        let row = WebSessionRow {
            session_hash: opaque::hash(&value),
            purpose,
            subject: subject.to_owned(),
            label: label.to_owned(),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: timeouts.idle_expiry(now, absolute),
            absolute_expires_at: absolute,
        };
        self.store
            .insert_web_session(row, MAX_SESSIONS_PER_PERSON)
            .await?;
        Ok(value)
    }

    /// The live session of this cookie value, its idle expiry moved on (written at most once a
    /// minute); `None` when there is none or it expired.
    pub async fn find(
        &self,
        purpose: Purpose,
        cookie_value: &str,
    ) -> Result<Option<WebSession>, StoreError> {
        let now = self.clock.now();
        let hash = opaque::hash(cookie_value);
        let Some(row) = self.store.live_web_session(&hash, purpose, now).await? else {
            return Ok(None);
        };
        if rules::is_touch_due(row.last_seen_at, now) {
            let idle = self
                .timeouts(purpose)
                .idle_expiry(now, row.absolute_expires_at);
            self.store.touch_web_session(&hash, now, idle).await?;
        }
        let csrf = self.sign_csrf(purpose, &hash);
        Ok(Some(WebSession {
            purpose,
            subject: row.subject,
            label: row.label,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            absolute_expires_at: row.absolute_expires_at,
            session_hash: hash,
            csrf,
        }))
    }

    /// Whether `token` is the CSRF token of `session`, compared in constant time.
    pub fn verify_csrf(&self, session: &WebSession, token: &str) -> bool {
        URL_SAFE_NO_PAD.decode(token).is_ok_and(|tag| {
            hmac::verify(
                &self.key,
                &csrf_message(session.purpose, &session.session_hash),
                &tag,
            )
            .is_ok()
        })
    }

    /// Ends the session (sign-out): its row goes, so the cookie is worthless everywhere.
    pub async fn end(&self, session: &WebSession) -> Result<(), StoreError> {
        self.store.delete_web_session(&session.session_hash).await
    }

    fn sign_csrf(&self, purpose: Purpose, session_hash: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, &csrf_message(purpose, session_hash)))
    }
}

fn csrf_message(purpose: Purpose, session_hash: &str) -> Vec<u8> {
    format!("web-csrf\n{}\n{session_hash}", purpose.as_str()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_round_trip_and_have_host_cookies() {
        use sea_orm::{ActiveEnum, Iterable};
        // Every purpose: the stored strings are the ones written before the column was an enum.
        assert_eq!(Purpose::iter().count(), 2);
        for purpose in Purpose::iter() {
            assert_eq!(purpose.to_value(), purpose.as_str());
            assert_eq!(
                Purpose::try_from_value(&purpose.as_str().to_owned()),
                Ok(purpose)
            );
            assert!(purpose.cookie_name().starts_with("__Host-"));
        }
        assert!(Purpose::try_from_value(&"admin".to_owned()).is_err());
        assert_ne!(
            Purpose::Console.cookie_name(),
            Purpose::Account.cookie_name()
        );
    }

    #[test]
    fn actors_name_the_purpose_and_the_person() {
        let session = WebSession {
            purpose: Purpose::Console,
            subject: "42".into(),
            label: "Ada".into(),
            created_at: 0,
            last_seen_at: 0,
            absolute_expires_at: 0,
            session_hash: "h".into(),
            csrf: String::new(),
        };
        assert_eq!(session.actor(), "operator:42");
        let user = WebSession {
            purpose: Purpose::Account,
            subject: "usr_1".into(),
            ..session
        };
        assert_eq!(user.actor(), "user:usr_1");
    }
}
