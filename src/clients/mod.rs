//! OAuth clients: registration (RFC 7591/7592), Client ID Metadata Documents, the admin
//! operations on clients, and their lifecycle.

pub mod admin;
pub mod authenticate;
pub mod cimd;
pub mod documents;
pub mod reaper;
pub mod registry;
pub mod resolve;
pub mod source_limit;
pub mod stored;
pub mod trail;
