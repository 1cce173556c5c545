//! The operator console's own domain: the figures and warnings of its overview. Everything an
//! operator changes through the console goes through the same functions as the admin API
//! (`clients::admin`, `grants::revoke_grant_as`, `tokens::keyring::SigningKeys::rotate_as`);
//! the pages are in `http::console`. No HTTP types here.

pub mod overview;
