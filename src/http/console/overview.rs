//! `GET /console`: the overview ([`crate::console::overview`]).

use std::sync::Arc;

use minijinja::{Value, context};
use poem::web::Data;
use poem::{Response, handler};

use super::super::AppState;
use super::{ConsoleSession, console_page, failure_page, moment};
use crate::console::overview::{Overview, Warning, overview};
use crate::routes::{CONSOLE_CLIENTS_PATH, CONSOLE_KEYS_PATH, CONSOLE_PATH};

/// A warning in plain words: (title, what to do).
fn warning_text(warning: &Warning) -> (String, String) {
    match warning {
        Warning::DevProvider => (
            "The simulated sign-in is on".into(),
            "Upstream provider `dev` lets anyone sign in as anyone. Use it only for trials; set upstream.provider to ownerrez or oauth2.".into(),
        ),
        Warning::OpenRegistration => (
            "Anyone can register a client".into(),
            "Registration needs no initial access token and no redirect URI allow-list is set. Set registration.redirect_uri_allowlist to the hosts you expect.".into(),
        ),
        Warning::ClientCapNearlyReached { count, max } => (
            "The client cap is nearly reached".into(),
            format!("{count} of at most {max} dynamic clients are registered. Raise registration.max_dynamic_clients or delete unused clients."),
        ),
        Warning::KeyOlderThanPolicy { kid, age_days, policy_days } => (
            "The signing key is due for rotation".into(),
            format!("Key {kid} has signed for {age_days} days; the policy is {policy_days} days. Rotate it on the signing keys page."),
        ),
        Warning::NoActiveKey => (
            "No key is signing".into(),
            "Tokens cannot be issued until a signing key is active. See the signing keys page.".into(),
        ),
    }
}

fn view(state: &AppState, overview: Overview, now: i64) -> Value {
    let f = overview.figures;
    let warnings = overview.warnings.iter().map(|w| {
        let (title, text) = warning_text(w);
        context! { title, text }
    });
    let keys = overview.keys.iter().map(|k| {
        context! { kid => &k.kid, state => k.state, since => moment(Some(k.activates_at), now) }
    });
    let failed: u64 = overview.recent.logins_failed.iter().map(|(_, n)| n).sum();
    let upstream_failed: u64 = overview
        .recent
        .upstream_failures
        .iter()
        .map(|(_, n)| n)
        .sum();
    let reasons = |list: &[(&'static str, u64)]| {
        Value::from_iter(
            list.iter()
                .filter(|(_, n)| *n > 0)
                .map(|(reason, count)| context! { reason => *reason, count }),
        )
    };
    context! {
        dynamic_clients => f.dynamic_clients,
        dynamic_clients_max => state.config.registration.max_dynamic_clients,
        admin_clients => f.admin_clients,
        metadata_documents => f.metadata_documents,
        users => f.users,
        live_grants => f.live_grants,
        counted_at => moment(f.counted_at, now),
        tokens_issued => overview.recent.tokens_issued,
        logins_failed => failed,
        login_reasons => reasons(&overview.recent.logins_failed),
        upstream_failed,
        upstream_reasons => reasons(&overview.recent.upstream_failures),
        keys => Value::from_iter(keys),
        warnings => Value::from_iter(warnings),
        clients_href => state.issuer.endpoint(CONSOLE_CLIENTS_PATH),
        keys_href => state.issuer.endpoint(CONSOLE_KEYS_PATH),
    }
}

/// `GET /console`.
#[handler]
pub async fn overview_page(
    signed_in: ConsoleSession,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let now = state.clock.now();
    let found = overview(
        &state.store,
        &state.config,
        &state.keys,
        &state.metrics,
        now,
    )
    .await;
    match found {
        Ok(found) => console_page(
            state,
            &signed_in.session,
            "overview",
            CONSOLE_PATH,
            view(state, found, now),
        ),
        Err(error) => failure_page(error, "could not read the overview"),
    }
}
