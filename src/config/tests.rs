//! Tests of the configuration's layering and rules.
use super::*;

fn with_toml(toml: &str) -> Result<Config, ConfigError> {
    let figment = Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml));
    Config::from_figment(&figment)
}

#[test]
fn defaults_are_valid() {
    Config::default().validate().unwrap();
}

#[test]
fn documented_defaults_match_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let documented: Config = Figment::new()
        .merge(Toml::file_exact(path))
        .extract()
        .unwrap();
    assert_eq!(documented, Config::default());
}

#[test]
fn each_invalid_case_names_its_key() {
    let cases = [
        (
            "relative issuer",
            "[server]\nissuer = \"auth.example.com\"",
            "server.issuer",
        ),
        (
            "issuer with query",
            "[server]\nissuer = \"https://a.example/?x=1\"",
            "server.issuer",
        ),
        (
            "issuer with fragment",
            "[server]\nissuer = \"https://a.example/#f\"",
            "server.issuer",
        ),
        (
            "plain http issuer",
            "[server]\nissuer = \"http://a.example\"\n[upstream]\nforce_dev = true",
            "server.issuer",
        ),
        (
            "unknown key",
            "[server]\nlisten_port = 1",
            "server.listen_port",
        ),
        ("unknown section", "[nope]\nx = 1", "nope"),
        (
            "relative resource",
            "[[resources]]\nuri = \"/mcp\"\nname = \"x\"\nscopes = [\"a\"]\ndefault_scopes = []",
            "resources[0].uri",
        ),
        (
            "secret in file",
            "[encryption]\nkey = \"AAAA\"",
            "encryption.key",
        ),
        (
            "dev on public issuer",
            "[server]\nissuer = \"https://auth.example.com\"\nlisten = \"0.0.0.0:8080\"",
            "upstream.provider",
        ),
        (
            "dev on every interface with a loopback issuer",
            "[server]\nlisten = \"0.0.0.0:8080\"\nissuer = \"http://127.0.0.1:8080\"",
            "upstream.provider",
        ),
        (
            "no header read timeout",
            "[server]\nheader_read_timeout_secs = 0",
            "server.header_read_timeout_secs",
        ),
        (
            "endless body read timeout",
            "[server]\nbody_read_timeout_secs = 3600",
            "server.body_read_timeout_secs",
        ),
        (
            "ownerrez without key",
            "[upstream]\nprovider = \"ownerrez\"\n[upstream.ownerrez]\nclient_id = \"c_1\"\nclient_secret_file = \"/s\"",
            "encryption.key",
        ),
        (
            "activation shorter than jwks cache",
            "[keys]\nactivation_delay_secs = 10",
            "keys.activation_delay_secs",
        ),
        (
            "wrong type",
            "[tokens]\naccess_token_ttl_secs = \"long\"",
            "tokens.access_token_ttl_secs",
        ),
        (
            "an operating-system scheme as a known app scheme",
            "[registration]\ncustom_redirect_schemes = [\"cursor\", \"ms-msdt\"]",
            "registration.custom_redirect_schemes[1]",
        ),
        (
            "a scheme written with its colon",
            "[registration]\ncustom_redirect_schemes = [\"cursor:\"]",
            "registration.custom_redirect_schemes[0]",
        ),
        (
            "https as a custom scheme",
            "[registration]\ncustom_redirect_schemes = [\"https\"]",
            "registration.custom_redirect_schemes[0]",
        ),
        (
            "no authorization requests at all",
            "[login]\nper_source_limit = 0",
            "login.per_source_limit",
        ),
        (
            "no concurrent fetches",
            "[client_metadata_documents]\nmax_concurrent_fetches_per_host = 0",
            "client_metadata_documents.max_concurrent_fetches_per_host",
        ),
        (
            "failures remembered for hours",
            "[client_metadata_documents]\nfailure_cache_secs = 7200",
            "client_metadata_documents.failure_cache_secs",
        ),
    ];
    for (name, toml, key) in cases {
        let error = with_toml(toml).expect_err(name);
        assert_eq!(error.key, key, "{name}: {error}");
    }
}

#[test]
fn env_var_names() {
    assert_eq!(env_var_name("encryption.key"), "AUTHBRIDGE_ENCRYPTION__KEY");
}

#[test]
fn secrets_are_not_printed() {
    assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
}

#[test]
fn errors_in_a_file_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let resource = "uri = \"http://localhost:3000/mcp\"\nname = \"x\"\nscopes = [\"mcp\"]\ndefault_scopes = []\n";
    let cases = [
        (
            "unknown key in a table",
            "[server]\nlisten = \"127.0.0.1:8080\"\nlisten_port = 1\n".to_owned(),
            "3: unknown key server.listen_port",
        ),
        (
            "unknown table",
            "data_dir = \"./data\"\n\n[nope]\nx = 1\n".to_owned(),
            "3: unknown key nope",
        ),
        (
            "unknown key under a dotted table header",
            "[upstream.ownerrez]\n\nclient_idd = \"c_1\"\n".to_owned(),
            "3: unknown key upstream.ownerrez.client_idd",
        ),
        (
            "unknown key in the second of an array of tables",
            format!("[[resources]]\n{resource}\n[[resources]]\n{resource}foo = 1\n"),
            "12: unknown key resources[1].foo",
        ),
        (
            "unknown key in an inline table",
            "[admin]\ntokens = [\n  { name = \"a\", sha256 = \"b\", x = 1 },\n]\n".to_owned(),
            "3: unknown key admin.tokens[0].x",
        ),
        (
            "wrong type",
            "[tokens]\naccess_token_ttl_secs = \"long\"\n".to_owned(),
            "2: tokens.access_token_ttl_secs: invalid type",
        ),
        (
            "secret in the file",
            "[encryption]\n# the key\nkey = \"AAAA\"\n".to_owned(),
            "3: encryption.key: secrets may not be written",
        ),
        (
            "invalid value",
            "\n[server]\nissuer = \"auth.example.com\"\n".to_owned(),
            "3: server.issuer: ",
        ),
        (
            "invalid value in an array of tables",
            "[[resources]]\nname = \"x\"\nuri = \"/mcp\"\nscopes = [\"a\"]\ndefault_scopes = []\n"
                .to_owned(),
            "3: resources[0].uri: ",
        ),
    ];
    for (name, toml, expected) in cases {
        let file = dir.path().join("authbridge.toml");
        std::fs::write(&file, toml).unwrap();
        let figment =
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::file_exact(&file));
        let error = Config::from_figment(&figment).expect_err(name);
        let expected = format!("invalid configuration: {}:{expected}", file.display());
        assert!(
            error.to_string().starts_with(&expected),
            "{name}: expected `{expected}…`, got `{error}`"
        );
    }
}

#[test]
fn errors_name_the_environment_variable_as_spelled() {
    let names = [
        "PATH",
        "AUTHBRIDGE_CONFIG",
        "AUTHBRIDGE_CMD",
        "authbridge_log__levell",
        "AUTHBRIDGE_NOPE__X",
        "AUTHBRIDGE_SERVER__LISTEN",
        "AUTHBRIDGE_SERVER__LISTEN_PORT",
        "AUTHBRIDGE_RESOURCES",
    ];
    let cases = [
        ("a stray variable", "cmd", Some("AUTHBRIDGE_CMD")),
        ("any case", "log.levell", Some("authbridge_log__levell")),
        ("a table it made", "nope", Some("AUTHBRIDGE_NOPE__X")),
        (
            "the exact key",
            "server.listen_port",
            Some("AUTHBRIDGE_SERVER__LISTEN_PORT"),
        ),
        (
            "an array it set whole",
            "resources[0].uri",
            Some("AUTHBRIDGE_RESOURCES"),
        ),
        ("the file's variable is no key", "config", None),
        ("a key nobody set", "server.issuer", None),
    ];
    for (name, key, expected) in cases {
        let found =
            error::variable_setting(names.iter().map(|n| n.to_string()), &error::key_path(key));
        assert_eq!(found.as_deref(), expected, "{name}");
    }
}

#[test]
fn an_unknown_key_reads_as_the_operator_wrote_it() {
    let error = ConfigError::new("cmd", error::UNKNOWN_KEY)
        .at(Some(Origin::Environment("AUTHBRIDGE_CMD".into())));
    assert_eq!(
        error.to_string(),
        "invalid configuration: environment variable AUTHBRIDGE_CMD: unknown key cmd"
    );
    let error = ConfigError::new("server.issuer", "must use https").at(Some(Origin::File {
        path: "/etc/authbridge.toml".into(),
        line: Some(4),
    }));
    assert_eq!(
        error.to_string(),
        "invalid configuration: /etc/authbridge.toml:4: server.issuer: must use https"
    );
}

#[test]
fn key_names_and_paths_round_trip() {
    for key in [
        "cmd",
        "server.listen",
        "resources[0].uri",
        "admin.tokens[12].sha256",
    ] {
        assert_eq!(error::key_name(&error::key_path(key)), key);
    }
}
