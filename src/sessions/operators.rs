//! Who may act as an operator: the holder of a configured admin API token (the admin API's
//! bearer check and the console's token sign-in use the same comparison), and how an
//! operator's session names them in the audit trail. No HTTP types here.

use subtle::ConstantTimeEq;

use crate::config::AdminTokenConfig;
use crate::tokens::opaque;

/// The subject of a console session opened with an admin token: `admin-token:<name>`.
pub fn admin_token_subject(name: &str) -> String {
    format!("admin-token:{name}")
}

/// The configured name of the admin token `presented`, if it is one. Every configured hash is
/// compared in constant time, whatever matched earlier, so the time taken says nothing about
/// which (or whether a) token matched.
pub fn admin_token_holder(tokens: &[AdminTokenConfig], presented: &str) -> Option<String> {
    let presented = opaque::hash(presented);
    let mut found = None;
    for token in tokens {
        let matches: bool = presented
            .as_bytes()
            .ct_eq(token.sha256.to_ascii_lowercase().as_bytes())
            .into();
        if matches {
            found = Some(token.name.clone());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(name: &str, token: &str) -> AdminTokenConfig {
        AdminTokenConfig {
            name: name.into(),
            sha256: opaque::hash(token).to_ascii_uppercase(),
        }
    }

    #[test]
    fn a_configured_token_names_its_holder_and_nothing_else_does() {
        let tokens = [configured("alice", "tok-a"), configured("bob", "tok-b")];
        assert_eq!(admin_token_holder(&tokens, "tok-b").as_deref(), Some("bob"));
        for wrong in ["", "tok-", "tok-a ", "TOK-A", &opaque::hash("tok-a")] {
            assert_eq!(admin_token_holder(&tokens, wrong), None, "{wrong}");
        }
        assert_eq!(admin_token_holder(&[], "tok-a"), None);
    }
}
