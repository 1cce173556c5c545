//! Token machinery: signing keys and their lifecycle, the JWKS, and compact JWS signing.

pub mod access;
pub mod jwk;
pub mod jws;
pub mod keyring;
pub mod lifecycle;
pub mod lifetime;
pub mod opaque;
pub mod verify;
