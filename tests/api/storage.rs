//! What is at rest: no private key and no encryption key in the clear.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sea_orm::{ConnectionTrait, Database, Statement};

use crate::helpers::{TEST_ENCRYPTION_KEY, spawn_app};

/// Every form a secret could take in the database.
fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    vec![
        secret.to_vec(),
        STANDARD.encode(secret).into_bytes(),
        URL_SAFE_NO_PAD.encode(secret).into_bytes(),
        hex::encode(secret).into_bytes(),
    ]
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The raw bytes at rest: the SQLite files, or every row of every table as text.
pub async fn raw_database(app: &crate::helpers::TestApp) -> Vec<u8> {
    if app.db.is_sqlite() {
        return app
            .db
            .sqlite_files()
            .iter()
            .flat_map(|f| std::fs::read(f).unwrap())
            .collect();
    }
    let db = Database::connect(&app.db.url).await.unwrap();
    let backend = db.get_database_backend();
    let tables = db
        .query_all(Statement::from_string(
            backend,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        ))
        .await
        .unwrap();
    let mut raw = Vec::new();
    for table in tables {
        let name: String = table.try_get("", "tablename").unwrap();
        let rows = db
            .query_all(Statement::from_string(
                backend,
                format!("SELECT CAST(t.* AS TEXT) AS row FROM \"{name}\" t"),
            ))
            .await
            .unwrap();
        for row in rows {
            let text: String = row.try_get("", "row").unwrap();
            raw.extend_from_slice(text.as_bytes());
        }
    }
    raw
}

#[tokio::test]
async fn no_private_key_or_encryption_key_in_the_clear() {
    let app = spawn_app().await;
    app.keys.rotate().await.unwrap(); // two private keys at rest
    let key = authbridge::vault::parse_key(TEST_ENCRYPTION_KEY).unwrap();
    let vault = authbridge::vault::Vault::new(("1".into(), key), None);

    let raw = raw_database(&app).await;

    let db = Database::connect(&app.db.url).await.unwrap();
    let backend = db.get_database_backend();
    let rows = db
        .query_all(Statement::from_string(
            backend,
            "SELECT kid, public_jwk, private_key FROM signing_keys",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let kid: String = row.try_get("", "kid").unwrap();
        let sealed: String = row.try_get("", "private_key").unwrap();
        let public_jwk: String = row.try_get("", "public_jwk").unwrap();
        let pkcs8 = vault
            .open(&sealed, &authbridge::vault::context::signing_key(&kid))
            .unwrap();
        // Guard: the search below finds key material that is at rest in the clear. The public
        // modulus is a run of the private key's own encoding and is stored, in the clear, in
        // this row's public JWK: if the raw read missed the row, or no form matched how the
        // table spells key bytes, this fails (else finding no private key would prove nothing).
        let jwk: serde_json::Value = serde_json::from_str(&public_jwk).unwrap();
        let modulus = URL_SAFE_NO_PAD
            .decode(jwk["n"].as_str().expect("an RSA public JWK"))
            .unwrap();
        assert!(
            contains(&pkcs8, &modulus),
            "the modulus of {kid} is part of its private key"
        );
        assert!(
            forms(&modulus).iter().any(|form| contains(&raw, form)),
            "the raw read finds the public modulus of {kid} as stored"
        );
        // The private exponent alone must not appear either: check a run from the middle of
        // the DER encoding as well as the whole.
        let middle = &pkcs8[pkcs8.len() / 2..pkcs8.len() / 2 + 64];
        for secret in [&pkcs8[..], middle] {
            for form in forms(secret) {
                assert!(
                    !contains(&raw, &form),
                    "private key of {kid} found in the clear"
                );
            }
        }
    }
    for form in forms(&key)
        .into_iter()
        .chain([TEST_ENCRYPTION_KEY.as_bytes().to_vec()])
    {
        assert!(
            !contains(&raw, &form),
            "encryption key found in the database"
        );
    }
}
