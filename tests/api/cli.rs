//! The `authbridge` binary: configuration errors, migrations and key rotation from the CLI.

use std::process::{Command, Output};

use crate::helpers::{TEST_ENCRYPTION_KEY, TestDb};

/// Runs the binary in `dir` with only the given AUTHBRIDGE_* variables (and no RUST_LOG or
/// NO_COLOR from the test's own environment).
pub fn authbridge(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authbridge"));
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars() {
        let name_upper = name.to_ascii_uppercase();
        if name_upper.starts_with("AUTHBRIDGE_") || name == "RUST_LOG" || name == "NO_COLOR" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("the binary runs")
}

/// The variables that point the binary at a test database, with a fixed encryption key.
pub fn database_env(db: &TestDb) -> [(&'static str, &str); 2] {
    [
        ("AUTHBRIDGE_DATABASE__URL", db.url.as_str()),
        ("AUTHBRIDGE_ENCRYPTION__KEY", TEST_ENCRYPTION_KEY),
    ]
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
            "metrics enabled without an exposure",
            vec![("AUTHBRIDGE_METRICS__ENABLED", "true")],
            "metrics.listen",
        ),
        (
            "metrics on a listener that is no address",
            vec![
                ("AUTHBRIDGE_METRICS__ENABLED", "true"),
                ("AUTHBRIDGE_METRICS__LISTEN", "localhost"),
            ],
            "metrics.listen",
        ),
        (
            "an audit retention beyond a century",
            vec![("AUTHBRIDGE_AUDIT__RETENTION_DAYS", "40000")],
            "audit.retention_days",
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

#[test]
fn configuration_errors_name_the_variable_or_the_file_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("authbridge.toml");
    let path = file.to_str().unwrap();
    type Env<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, &str, Env, String)> = vec![
        (
            "a stray variable",
            "",
            vec![("AUTHBRIDGE_CMD", "x")],
            "environment variable AUTHBRIDGE_CMD: unknown key cmd".into(),
        ),
        (
            "a stray variable in lower case",
            "",
            vec![("authbridge_server__listen_port", "80")],
            "environment variable authbridge_server__listen_port: unknown key server.listen_port"
                .into(),
        ),
        (
            "the file variable misspelt is no file",
            "",
            vec![("AUTHBRIDGE_Config", "x.toml")],
            "environment variable AUTHBRIDGE_Config: unknown key config".into(),
        ),
        (
            "a variable of the wrong type",
            "",
            vec![("AUTHBRIDGE_TOKENS__ACCESS_TOKEN_TTL_SECS", "long")],
            "environment variable AUTHBRIDGE_TOKENS__ACCESS_TOKEN_TTL_SECS: tokens.access_token_ttl_secs: invalid type"
                .into(),
        ),
        (
            "an invalid value from a variable, over a valid one in the file",
            "[server]\nissuer = \"https://auth.example.com\"\n",
            vec![("AUTHBRIDGE_SERVER__ISSUER", "auth.example.com")],
            "environment variable AUTHBRIDGE_SERVER__ISSUER: server.issuer: ".into(),
        ),
        (
            "an unknown key in the file",
            "[server]\nlisten = \"127.0.0.1:8080\"\nlisten_port = 80\n",
            vec![],
            format!("{path}:3: unknown key server.listen_port"),
        ),
        (
            "an invalid value in the file",
            "\n[server]\nissuer = \"auth.example.com\"\n",
            vec![],
            format!("{path}:3: server.issuer: "),
        ),
    ];
    for (name, toml, env, expected) in cases {
        std::fs::write(&file, toml).unwrap();
        let output = authbridge(dir.path(), &["--config", path, "serve"], &env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        let expected = format!("authbridge: invalid configuration: {expected}");
        assert!(
            stderr.starts_with(&expected),
            "{name}: expected `{expected}…` in: {stderr}"
        );
    }
}

#[tokio::test]
async fn the_configuration_file_variable_is_no_key() {
    let db = TestDb::new().await;
    let dir = db.dir.path();
    let file = dir.join("authbridge.toml");
    std::fs::write(&file, "data_dir = \"from-the-file\"\n").unwrap();
    let env = [
        ("AUTHBRIDGE_CONFIG", file.to_str().unwrap()),
        ("AUTHBRIDGE_DATABASE__URL", db.url.as_str()),
        ("AUTHBRIDGE_ENCRYPTION__KEY", TEST_ENCRYPTION_KEY),
    ];
    let output = authbridge(dir, &["migrate"], &env);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // And the file it names is the one read: an error only that file can cause names it.
    std::fs::write(&file, "data_dirr = \"x\"\n").unwrap();
    let output = authbridge(dir, &["migrate"], &env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:1: unknown key data_dirr", file.display())),
        "{stderr}"
    );
}

#[tokio::test]
async fn migrate_then_keys_rotate_and_list() {
    let db = TestDb::new().await;
    let env = database_env(&db);
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
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_authbridge"))
        .arg("serve")
        .current_dir(db.dir.path())
        .env("AUTHBRIDGE_SERVER__LISTEN", &listen)
        .env("AUTHBRIDGE_DATABASE__URL", &db.url)
        .env("AUTHBRIDGE_ENCRYPTION__KEY", TEST_ENCRYPTION_KEY)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let metadata_url = format!("http://{listen}/.well-known/oauth-authorization-server");
    // A generous deadline: on a loaded machine a debug build's migrations and first signing
    // key take seconds. An early exit fails at once instead of waiting it out.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut ready = false;
    while !ready && std::time::Instant::now() < deadline {
        if let Ok(response) = client.get(&metadata_url).send().await {
            let metadata: serde_json::Value = response.json().await.unwrap();
            assert_eq!(metadata["issuer"], format!("http://{listen}"));
            ready = true;
        } else {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the server exited before it answered"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    assert!(ready, "the server answered within 60 s");
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
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("shutting down"),
        "serve logs at info: {stderr}"
    );
    assert!(!stderr.contains('\x1b'), "no colour into a pipe: {stderr}");
}

#[tokio::test]
async fn clients_create_list_delete_from_the_cli() {
    let db = TestDb::new().await;
    let env = database_env(&db);
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
