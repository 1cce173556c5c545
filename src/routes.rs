//! The path of every endpoint below the issuer, in one place: the router (`app`), the
//! metadata document (`http::discovery`) and every URL we hand out (the registration client
//! URI, our upstream callback, the dev login form) read them here. A leaf: it imports nothing.
//!
//! The JSON endpoints' paths are also spelled in their `#[oai(path = …)]` attributes, which
//! take only literals; `tests/api/discovery.rs` checks that the metadata's URLs are served.

/// The authorization endpoint (RFC 6749 §3.1).
pub const AUTHORIZE_PATH: &str = "/authorize";
/// The consent form's target.
pub const CONSENT_PATH: &str = "/authorize/consent";
/// Where the upstream sends the user back after the login.
pub const CALLBACK_PATH: &str = "/upstream/callback";
/// The upstream's webhook (OwnerRez: the user disconnected the app).
pub const WEBHOOK_PATH: &str = "/upstream/webhook";
/// The token endpoint (RFC 6749 §3.2).
pub const TOKEN_PATH: &str = "/token";
/// The revocation endpoint (RFC 7009).
pub const REVOKE_PATH: &str = "/revoke";
/// The introspection endpoint (RFC 7662).
pub const INTROSPECT_PATH: &str = "/introspect";
/// The JWKS (RFC 7517), named by the metadata's `jwks_uri`.
pub const JWKS_PATH: &str = "/jwks.json";
/// The registration endpoint (RFC 7591); a client's configuration endpoint (RFC 7592) is
/// `<REGISTER_PATH>/<client_id>`.
pub const REGISTER_PATH: &str = "/register";
/// The dev upstream's login form (provider `dev` only).
pub const DEV_AUTHORIZE_PATH: &str = "/dev/upstream/authorize";
/// Prometheus metrics (`[metrics]`): on the main listener only with `metrics.token_sha256`, or
/// alone on the separate listener of `metrics.listen`.
pub const METRICS_PATH: &str = "/metrics";
/// The operator console (`[console]`); its pages are below it.
pub const CONSOLE_PATH: &str = "/console";
/// The console's sign-in page (its upstream button posts to [`CONSOLE_SIGN_IN_UPSTREAM_PATH`]).
pub const CONSOLE_SIGN_IN_PATH: &str = "/console/sign-in";
/// Starts an operator's sign-in through the upstream (POST).
pub const CONSOLE_SIGN_IN_UPSTREAM_PATH: &str = "/console/sign-in/upstream";
/// The console's admin-token sign-in form's target (POST; `console.admin_token_sign_in`).
pub const CONSOLE_SIGN_IN_TOKEN_PATH: &str = "/console/sign-in/token";
/// Ends the operator's session (POST).
pub const CONSOLE_SIGN_OUT_PATH: &str = "/console/sign-out";
/// The console's clients: search, filter by kind, pages (`?q=&kind=&after=`).
pub const CONSOLE_CLIENTS_PATH: &str = "/console/clients";
/// One client's page (`?id=`); ids are passed as query and form values, never as path
/// segments, so any stored id (even a URL) names its page.
pub const CONSOLE_CLIENT_PATH: &str = "/console/client";
/// The form that creates an admin client (GET), and its target (POST).
pub const CONSOLE_NEW_CLIENT_PATH: &str = "/console/clients/new";
/// An action on one client (POST `client`, `action`, and `confirm=yes` for destructive ones).
pub const CONSOLE_CLIENT_ACTION_PATH: &str = "/console/client/action";
/// The users (`?after=`).
pub const CONSOLE_USERS_PATH: &str = "/console/users";
/// One user's page and grants (`?id=`).
pub const CONSOLE_USER_PATH: &str = "/console/user";
/// Revokes one grant (POST `grant`, `confirm=yes`).
pub const CONSOLE_GRANT_REVOKE_PATH: &str = "/console/grant/revoke";
/// The signing keys.
pub const CONSOLE_KEYS_PATH: &str = "/console/keys";
/// Starts a key rotation (POST, `confirm=yes`).
pub const CONSOLE_KEYS_ROTATE_PATH: &str = "/console/keys/rotate";
/// The audit log (`?actor=&action=&target=&since=&until=&before=`).
pub const CONSOLE_AUDIT_PATH: &str = "/console/audit";
/// The user's connected-apps page (`[account]`).
pub const ACCOUNT_PATH: &str = "/account";
/// Its sign-in page (GET) and the start of the sign-in through the upstream (POST).
pub const ACCOUNT_SIGN_IN_PATH: &str = "/account/sign-in";
/// Ends the user's session (POST).
pub const ACCOUNT_SIGN_OUT_PATH: &str = "/account/sign-out";
/// Disconnects one app, or all of them (POST).
pub const ACCOUNT_DISCONNECT_PATH: &str = "/account/disconnect";
