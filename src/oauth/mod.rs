//! Protocol rules as plain Rust: no HTTP types, no I/O. Each rule lives in one function with
//! its tests beside it.

pub mod authorize;
pub mod client_auth;
pub mod client_metadata;
pub mod consent;
pub mod error;
pub mod issuer;
pub mod loopback;
pub mod pkce;
pub mod redirect_scheme;
pub mod redirect_uri;
pub mod resource;
pub mod scope;

#[cfg(test)]
pub(crate) mod proptests;
