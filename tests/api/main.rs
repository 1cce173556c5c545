//! Black-box tests: each test starts the real server on port 0 with a fresh database (SQLite
//! by default, PostgreSQL when TEST_POSTGRES_URL is set) and talks to it over HTTP.
//!
//! The modules are grouped by the endpoint whose answers they pin. A test reads as the flow it
//! pins through [`helpers::TestApp`]'s one method per endpoint (tests/api/endpoints.rs):
//! `app.register_public(…)`, `app.log_in_with_dev(…)`, `app.redeem_code(…)`, `app.refresh(…)`,
//! `app.exchange(…)`, `app.revoke(…)`, `app.introspect(…)`, `app.admin_…(…)`.

// The harness: the server and its database, one method per endpoint, a scripted browser, the
// scene most token tests start from.
mod browser;
mod endpoints;
mod helpers;
mod scene;

// The doubles: OwnerRez (also the interop suite's, as the `ownerrez-double` example) and an MCP
// server behind the gateway.
mod mcp_backend;
mod ownerrez_double;

// Discovery: the metadata documents, `/jwks.json` and the signing keys behind it.
mod discovery;
mod key_schedule;
mod keys;
mod openapi;

// `/register` (RFC 7591, RFC 7592) and client ID metadata documents.
mod cimd;
mod registration;
mod registration_abuse;
mod reregistration;

// `/authorize`: the consent page, the upstream login and `/upstream/callback`.
mod consent;
mod login;
mod login_races;
mod redirects;
mod upstream;

// `/token`: the authorization code and refresh grants, token exchange (RFC 8693), and what
// real hosts send there.
mod exchange;
mod interop;
mod token;

// `/revoke` (RFC 7009), `/introspect` (RFC 7662), and revocation however it comes.
mod grant_revocation;
mod introspection;
mod revocation;

// The connected-apps page and the operator console (web sessions).
mod account;
mod console;
mod console_actions;
mod console_pages;

// The admin API and the audit trail it reads.
mod admin;
mod audit;

// Gateway mode: the resources authbridge serves itself.
mod gateway;
mod gateway_auth;
mod gateway_log;
mod gateway_tokens;

// Across every endpoint: HTTP basics, hostile input, the database pool, storage at rest,
// metrics, the CLI.
mod cli;
mod cli_output;
mod database;
mod hardening;
mod http_basics;
mod metrics;
mod properties;
mod storage;
