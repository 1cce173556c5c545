//! Black-box tests: each test starts the real server on port 0 with a fresh database (SQLite
//! by default, PostgreSQL when TEST_POSTGRES_URL is set) and talks to it over HTTP.

mod account;
mod admin;
mod audit;
mod browser;
mod cimd;
mod cli;
mod cli_output;
mod consent;
mod discovery;
mod exchange;
mod gateway;
mod gateway_auth;
mod gateway_tokens;
mod grant_revocation;
mod hardening;
mod helpers;
mod http_basics;
mod interop;
mod key_schedule;
mod keys;
mod login;
mod login_races;
mod mcp_backend;
mod metrics;
mod openapi;
mod ownerrez_double;
mod properties;
mod redirects;
mod registration;
mod registration_abuse;
mod reregistration;
mod storage;
mod token;
mod upstream;
