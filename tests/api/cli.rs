//! The `authbridge` binary: configuration errors, migrations and key rotation from the CLI.

use std::process::{Command, Output};

use crate::helpers::{TEST_ENCRYPTION_KEY, TestDb};

/// Runs the binary in `dir` with only the given AUTHBRIDGE_* variables.
fn authbridge(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authbridge"));
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("AUTHBRIDGE_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("the binary runs")
}

#[test]
fn each_invalid_configuration_exits_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let prod = [
        ("AUTHBRIDGE_UPSTREAM__PROVIDER", "ownerrez"),
        ("AUTHBRIDGE_UPSTREAM__OWNERREZ__CLIENT_ID", "c_1"),
        ("AUTHBRIDGE_UPSTREAM__OWNERREZ__CLIENT_SECRET", "s_1"),
    ];
    type Env<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, Env, &str)> = vec![
        (
            "relative issuer",
            vec![("AUTHBRIDGE_SERVER__ISSUER", "auth.example.com")],
            "server.issuer",
        ),
        (
            "issuer with query",
            vec![("AUTHBRIDGE_SERVER__ISSUER", "http://127.0.0.1:8080?a=b")],
            "server.issuer",
        ),
        (
            "issuer with fragment",
            vec![("AUTHBRIDGE_SERVER__ISSUER", "http://127.0.0.1:8080#f")],
            "server.issuer",
        ),
        (
            "http issuer on a public host",
            vec![
                ("AUTHBRIDGE_SERVER__ISSUER", "http://auth.example.com"),
                ("AUTHBRIDGE_UPSTREAM__FORCE_DEV", "true"),
            ],
            "server.issuer",
        ),
        (
            "unknown key",
            vec![("AUTHBRIDGE_SERVER__LISTEN_PORT", "80")],
            "server.listen_port",
        ),
        (
            "missing encryption key outside dev mode",
            prod.to_vec(),
            "encryption.key",
        ),
        (
            "short encryption key",
            [prod.as_slice(), &[("AUTHBRIDGE_ENCRYPTION__KEY", "AAAA")]].concat(),
            "encryption.key",
        ),
        (
            "encryption key not base64",
            [
                prod.as_slice(),
                &[("AUTHBRIDGE_ENCRYPTION__KEY", "not base64!")],
            ]
            .concat(),
            "encryption.key",
        ),
        (
            "non-numeric lifetime",
            vec![("AUTHBRIDGE_TOKENS__ACCESS_TOKEN_TTL_SECS", "long")],
            "tokens.access_token_ttl_secs",
        ),
    ];
    for (name, env, key) in cases {
        let output = authbridge(dir.path(), &["serve"], &env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(key),
            "{name}: expected the key `{key}` in: {stderr}"
        );
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing is written when the configuration is invalid"
    );
}

#[test]
fn invalid_configuration_files_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "relative resource",
            "[[resources]]\nuri = \"mcp\"\nname = \"x\"\nscopes = [\"a\"]\ndefault_scopes = []\n",
            "resources[0].uri",
        ),
        (
            "secret in the file",
            "[encryption]\nkey = \"KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=\"\n",
            "encryption.key",
        ),
        ("unknown section", "[serverr]\nlisten = \"x\"\n", "serverr"),
    ];
    for (name, toml, key) in cases {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, toml).unwrap();
        let output = authbridge(
            dir.path(),
            &["--config", file.to_str().unwrap(), "serve"],
            &[],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(key),
            "{name}: expected `{key}` in: {stderr}"
        );
    }
    let output = authbridge(dir.path(), &["--config", "/nonexistent.toml", "serve"], &[]);
    assert_eq!(output.status.code(), Some(2));
}

#[tokio::test]
async fn migrate_then_keys_rotate_and_list() {
    let db = TestDb::new().await;
    let env = [
        ("AUTHBRIDGE_DATABASE__URL", db.url.as_str()),
        ("AUTHBRIDGE_ENCRYPTION__KEY", TEST_ENCRYPTION_KEY),
    ];
    let dir = db.dir.path();
    let migrate = authbridge(dir, &["migrate"], &env);
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let list = authbridge(dir, &["keys", "list"], &env);
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains("\tactive\t"), "{listed}");

    let rotate = authbridge(dir, &["keys", "rotate"], &env);
    let rotated = String::from_utf8_lossy(&rotate.stdout).into_owned();
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    assert!(
        rotated.contains("\tnext\t") && rotated.contains("\tactive\t"),
        "{rotated}"
    );

    let again = authbridge(dir, &["keys", "rotate"], &env);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a second pending rotation is refused"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already waiting"));
}

#[tokio::test]
async fn serve_prints_its_urls_and_stops_on_sigterm() {
    let db = TestDb::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_authbridge"))
        .arg("serve")
        .current_dir(db.dir.path())
        .env("AUTHBRIDGE_SERVER__LISTEN", &listen)
        .env("AUTHBRIDGE_DATABASE__URL", &db.url)
        .env("AUTHBRIDGE_ENCRYPTION__KEY", TEST_ENCRYPTION_KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let metadata_url = format!("http://{listen}/.well-known/oauth-authorization-server");
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(response) = client.get(&metadata_url).send().await {
            let metadata: serde_json::Value = response.json().await.unwrap();
            assert_eq!(metadata["issuer"], format!("http://{listen}"));
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the server answered");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "exit status after SIGTERM: {:?}",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("issuer:   http://{listen}")),
        "{stdout}"
    );
    assert!(stdout.contains(&metadata_url), "{stdout}");
}

#[tokio::test]
async fn clients_create_list_delete_from_the_cli() {
    let db = TestDb::new().await;
    let env = [
        ("AUTHBRIDGE_DATABASE__URL", db.url.as_str()),
        ("AUTHBRIDGE_ENCRYPTION__KEY", TEST_ENCRYPTION_KEY),
    ];
    let dir = db.dir.path();
    let create = authbridge(
        dir,
        &[
            "clients",
            "create",
            "--name",
            "Cursor",
            "--redirect-uri",
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "--client-id",
            "cursor",
            "--public",
        ],
        &env,
    );
    let created = String::from_utf8_lossy(&create.stdout).into_owned();
    assert!(
        create.status.success(),
        "{}",
        String::from_utf8_lossy(&create.stderr)
    );
    assert!(
        created.contains("client_id: cursor") && !created.contains("client_secret"),
        "{created}"
    );

    let confidential = authbridge(
        dir,
        &[
            "clients",
            "create",
            "--name",
            "Ops",
            "--redirect-uri",
            "https://ops.example/cb",
        ],
        &env,
    );
    assert!(
        String::from_utf8_lossy(&confidential.stdout).contains("client_secret (shown once): sec_")
    );
    let bad = authbridge(
        dir,
        &[
            "clients",
            "create",
            "--name",
            "Bad",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        &env,
    );
    assert_eq!(bad.status.code(), Some(2));

    let list =
        String::from_utf8_lossy(&authbridge(dir, &["clients", "list"], &env).stdout).into_owned();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        list.contains("cursor\tadmin\tCursor\tnone\tenabled"),
        "{list}"
    );

    assert!(
        authbridge(dir, &["clients", "delete", "cursor"], &env)
            .status
            .success()
    );
    let missing = authbridge(dir, &["clients", "delete", "cursor"], &env);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no client"));
    let list =
        String::from_utf8_lossy(&authbridge(dir, &["clients", "list"], &env).stdout).into_owned();
    assert_eq!(list.lines().count(), 1);
}

#[test]
fn admin_token_prints_a_token_and_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let output = authbridge(dir.path(), &["admin-token", "ops"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let token = stdout.lines().next().unwrap().rsplit(' ').next().unwrap();
    assert!(token.starts_with("adm_"));
    assert!(
        stdout.contains(&authbridge::tokens::opaque::hash(token)),
        "{stdout}"
    );
}
