//! authbridge: an OAuth 2.1 authorization server for MCP hosts, federating the user's login to
//! an upstream (OwnerRez) that offers one static client and no dynamic registration.
#![forbid(unsafe_code)]

pub mod app;
pub mod bootstrap;
pub mod clients;
pub mod clock;
pub mod config;
pub mod console;
pub mod gateway;
pub mod grants;
pub mod housekeeping;
pub mod http;
pub mod ids;
pub mod monitoring;
pub mod oauth;
pub mod random;
pub mod routes;
pub mod sessions;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod upstream;
pub mod vault;
