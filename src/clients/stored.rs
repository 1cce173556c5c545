//! A client's stored metadata, read back exactly as it was accepted. Validation happens where
//! metadata enters (a registration, an RFC 7592 update, the admin API); reading a row never
//! runs today's rules again and never fails, so a rule tightened today cannot make a client
//! registered yesterday unreadable.

use serde_json::{Map, Value};

use crate::store::clients::ClientRow;

/// The metadata stored with a client, exactly as it was accepted. It is never validated again:
/// rules tightened since (a scheme refused today, a lower limit) must not make yesterday's
/// client unreadable. A row that is not a JSON object (written by hand) reads as empty.
pub fn stored_metadata(row: &ClientRow) -> Map<String, Value> {
    match serde_json::from_str(&row.metadata) {
        Ok(Value::Object(metadata)) => metadata,
        _ => {
            tracing::warn!(client_id = %row.client_id, "stored client metadata is not a JSON object");
            Map::new()
        }
    }
}

/// The redirect URIs in stored metadata: its `redirect_uris` strings, as stored.
pub fn stored_redirect_uris(metadata: &Map<String, Value>) -> Vec<String> {
    metadata
        .get("redirect_uris")
        .and_then(Value::as_array)
        .map(|uris| {
            uris.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(metadata: &str) -> ClientRow {
        use crate::clients::registry::{ClientKind, blank_client};
        ClientRow {
            metadata: metadata.into(),
            token_endpoint_auth_method: "none".into(),
            ..blank_client(
                crate::ids::ClientId::from_stored("client_x".into()),
                ClientKind::Dynamic,
                0,
            )
        }
    }

    #[test]
    fn stored_rows_read_back_without_validation() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "refused by today's rules, read as stored",
                r#"{"redirect_uris": ["ms-msdt:/x", "https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}"#,
                &["ms-msdt:/x", "https://a.example/cb"],
            ),
            (
                "non-string entries are skipped",
                r#"{"redirect_uris": [1, null, "https://a.example/cb"]}"#,
                &["https://a.example/cb"],
            ),
            (
                "redirect_uris not an array",
                r#"{"redirect_uris": "x"}"#,
                &[],
            ),
            ("not an object", r#""text""#, &[]),
            ("not JSON", "{", &[]),
        ];
        for (name, metadata, uris) in cases {
            let stored = stored_metadata(&row(metadata));
            assert_eq!(stored_redirect_uris(&stored), *uris, "{name}");
        }
        let kept = stored_metadata(&row(r#"{"software_id": "kept", "redirect_uris": []}"#));
        assert_eq!(kept["software_id"], "kept", "unknown fields stay");
    }
}
