//! The CLI as an operator and a script meet it: only the answer on standard output, logs at
//! warn unless asked for, times in RFC 3339, `--json`, and colour only on a terminal.

use std::process::Output;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{authbridge, database_env};
use crate::helpers::TestDb;

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&stdout(output)).expect("standard output is one JSON document")
}

/// An RFC 3339 time in UTC.
fn rfc3339(text: &str) -> OffsetDateTime {
    assert!(text.ends_with('Z'), "{text} is in UTC");
    OffsetDateTime::parse(text, &Rfc3339).expect("an RFC 3339 time")
}

/// An RFC 3339 time in UTC within a few minutes of now.
fn assert_recent_rfc3339(text: &str) {
    let age = OffsetDateTime::now_utc() - rfc3339(text);
    assert!(age.whole_minutes().abs() < 5, "{text} is now");
}

#[tokio::test]
async fn operator_commands_print_only_their_answer_and_log_when_asked() {
    let db = TestDb::new().await;
    let dir = db.dir.path();
    let env = database_env(&db);
    let migrate = authbridge(dir, &["migrate"], &env);
    assert_eq!(stdout(&migrate), "migrations applied\n");
    assert_eq!(
        String::from_utf8_lossy(&migrate.stderr),
        "",
        "no logs by default"
    );

    let list = authbridge(dir, &["keys", "list"], &env);
    let listed = stdout(&list);
    assert_eq!(
        String::from_utf8_lossy(&list.stderr),
        "",
        "no logs by default"
    );
    let fields: Vec<&str> = listed.trim_end().split('\t').collect();
    let [_, state, created, activates] = fields[..] else {
        panic!("kid, state, created, activates: {listed}")
    };
    assert_eq!(state, "active");
    assert_recent_rfc3339(created.strip_prefix("created ").unwrap());
    assert_recent_rfc3339(activates.strip_prefix("activates ").unwrap());

    type Env<'a> = Vec<(&'a str, &'a str)>;
    let asked: [(&str, Vec<&str>, Env); 4] = [
        ("--verbose", vec!["--verbose", "keys", "list"], vec![]),
        ("-v after the command", vec!["keys", "list", "-v"], vec![]),
        (
            "log.level configured",
            vec!["keys", "list"],
            vec![("AUTHBRIDGE_LOG__LEVEL", "info")],
        ),
        ("RUST_LOG", vec!["keys", "list"], vec![("RUST_LOG", "info")]),
    ];
    for (name, args, extra) in asked {
        let output = authbridge(dir, &args, &[env.as_slice(), &extra].concat());
        assert_eq!(stdout(&output), listed, "{name}: the same answer");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(" INFO "), "{name}: logs at info: {stderr}");
        assert!(
            !stderr.contains('\x1b'),
            "{name}: no colour into a pipe: {stderr}"
        );
    }
}

#[tokio::test]
async fn every_command_that_prints_data_has_json_for_scripts() {
    let db = TestDb::new().await;
    let dir = db.dir.path();
    let env = database_env(&db);
    let keys = json(&authbridge(dir, &["keys", "list", "--json"], &env));
    let [key] = keys["keys"].as_array().unwrap().as_slice() else {
        panic!("one key: {keys}")
    };
    assert_eq!(key["state"], "active");
    assert_recent_rfc3339(key["created_at"].as_str().unwrap());
    assert_recent_rfc3339(key["activates_at"].as_str().unwrap());

    let rotated = json(&authbridge(dir, &["keys", "rotate", "--json"], &env));
    assert_eq!(rotated["new_key"]["state"], "next", "{rotated}");
    assert_eq!(rotated["keys"].as_array().unwrap().len(), 2, "{rotated}");
    let new_key = &rotated["new_key"];
    let delay = rfc3339(new_key["activates_at"].as_str().unwrap())
        - rfc3339(new_key["created_at"].as_str().unwrap());
    assert_eq!(
        delay.whole_seconds(),
        900,
        "keys.activation_delay_secs: {rotated}"
    );

    let create = |id: &str, public: bool| {
        let mut args = vec![
            "clients",
            "create",
            "--json",
            "--name",
            "Ops",
            "--redirect-uri",
            "https://ops.example/cb",
            "--client-id",
            id,
        ];
        if public {
            args.push("--public");
        }
        json(&authbridge(dir, &args, &env))
    };
    let confidential = create("ops", false);
    assert_eq!(confidential["client"]["client_id"], "ops");
    assert_eq!(
        confidential["client"]["redirect_uris"],
        serde_json::json!(["https://ops.example/cb"])
    );
    assert_recent_rfc3339(confidential["client"]["created_at"].as_str().unwrap());
    assert!(
        confidential["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("sec_")
    );
    let public = create("cursor", true);
    assert!(public.get("client_secret").is_none(), "{public}");

    let clients = json(&authbridge(dir, &["clients", "list", "--json"], &env));
    let ids: Vec<&str> = clients["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cursor", "ops"]);
    assert_recent_rfc3339(clients["clients"][0]["updated_at"].as_str().unwrap());
    assert_eq!(clients["clients"][0]["last_used_at"], Value::Null);
    let text = stdout(&authbridge(dir, &["clients", "list"], &env));
    assert!(
        text.lines()
            .all(|line| line.rsplit('\t').next().unwrap().ends_with('Z')),
        "created in RFC 3339: {text}"
    );

    let deleted = json(&authbridge(
        dir,
        &["clients", "delete", "ops", "--json"],
        &env,
    ));
    assert_eq!(deleted, serde_json::json!({ "deleted": "ops" }));

    let token = json(&authbridge(dir, &["admin-token", "ops", "--json"], &[]));
    let secret = token["token"].as_str().unwrap();
    assert_eq!(token["name"], "ops");
    assert_eq!(token["sha256"], authbridge::tokens::opaque::hash(secret));
}

/// Runs the binary under a pseudo-terminal (Python's `pty`, as `script` differs between
/// systems) and returns everything it wrote there.
fn on_a_terminal(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let spawn = "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)";
    let mut command = vec!["-c", spawn, env!("CARGO_BIN_EXE_authbridge")];
    command.extend_from_slice(args);
    let output = std::process::Command::new("python3")
        .args(&command)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    let db = TestDb::new().await;
    let dir = db.dir.path();
    let env = database_env(&db);
    let coloured = on_a_terminal(dir, &["--verbose", "migrate"], &env);
    assert!(
        coloured.contains("INFO") && coloured.contains("\x1b["),
        "{coloured}"
    );

    let plain = on_a_terminal(
        dir,
        &["--verbose", "migrate"],
        &[env.as_slice(), &[("NO_COLOR", "1")]].concat(),
    );
    assert!(plain.contains("INFO"), "{plain}");
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain}");
}
