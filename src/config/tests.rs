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
fn loopback_hosts() {
    for host in [
        "localhost",
        "127.0.0.1",
        "127.8.0.1",
        "[::1]",
        "::1",
        "LOCALHOST",
    ] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in [
        "example.com",
        "10.0.0.1",
        "localhost.example.com",
        "0.0.0.0",
    ] {
        assert!(!is_loopback_host(host), "{host}");
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
