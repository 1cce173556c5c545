//! The `authbridge` command: a thin shell over the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use authbridge::app::Application;
use authbridge::bootstrap;
use authbridge::clients::admin::ClientView;
use authbridge::clock::{Clock, Rfc3339, SystemClock};
use authbridge::config::{CONFIG_FILE_VARIABLE, Config, LogConfig};
use authbridge::store::audit::{AuditRecord, actors};
use authbridge::store::clients::ClientKind;
use authbridge::tokens::keyring::KeySummary;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "authbridge",
    version,
    about = "OAuth 2.1 authorization server for MCP hosts"
)]
struct Cli {
    /// TOML configuration file (keys and defaults: config/default.toml).
    #[arg(long, global = true, env = CONFIG_FILE_VARIABLE)]
    config: Option<PathBuf>,
    /// Log at `log.level` (default `info`). Commands other than `serve` log only warnings and
    /// errors unless this is given, `log.level` is configured or RUST_LOG is set.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (applies pending migrations first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage OAuth clients (the same operations as the admin API, audited as `cli`).
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Print a new admin API token and the configuration line that accepts it.
    AdminToken {
        /// Who will hold the token (recorded in the audit trail).
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// Exit 0 when the local server answers GET /healthz (for container health checks).
    Healthcheck,
    /// Print the OpenAPI document.
    Openapi {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// How a command prints its answer on standard output.
#[derive(Args)]
struct Output {
    /// Print the answer as JSON (times in RFC 3339), for scripts.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// List clients (tab-separated: id, kind, name, auth method, disabled, created).
    List {
        /// Only `dynamic` or `admin` clients.
        #[arg(long)]
        kind: Option<ClientKind>,
        #[command(flatten)]
        output: Output,
    },
    /// Create a client; prints its id and, for a confidential client, its secret (once).
    Create {
        #[arg(long)]
        name: String,
        /// A redirect URI; repeat for several.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Choose the client id instead of generating one.
        #[arg(long)]
        client_id: Option<String>,
        /// A public client (no secret, PKCE only).
        #[arg(long)]
        public: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Delete a client; it is unusable at once.
    Delete {
        client_id: String,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List the published signing keys (tab-separated: kid, state, created, activates).
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Publish a new signing key; it starts signing after keys.activation_delay_secs.
    Rotate {
        #[command(flatten)]
        output: Output,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("authbridge: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::AdminToken { name, output } = &cli.command {
        let token = authbridge::tokens::opaque::generate("adm");
        let hash = authbridge::tokens::opaque::hash(&token);
        if output.json {
            print_json(&json!({ "name": name, "token": token, "sha256": hash }))?;
        } else {
            println!("token (give it to {name}; it is not stored anywhere): {token}");
            println!("add to the configuration's [admin] section:");
            println!("tokens = [{{ name = \"{name}\", sha256 = \"{hash}\" }}]");
        }
        return Ok(());
    }
    if let Command::Openapi { output } = &cli.command {
        let document = authbridge::app::openapi_document().await?;
        match output {
            Some(path) => std::fs::write(path, document + "\n")?,
            None => println!("{document}"),
        }
        return Ok(());
    }
    let (config, origins) = Config::load_with_origins(cli.config.as_deref())?;
    // An operator command's answer is what it prints; its logs are noise unless asked for.
    let log = if matches!(cli.command, Command::Serve)
        || cli.verbose
        || origins.of("log.level").is_some()
    {
        config.log.clone()
    } else {
        LogConfig {
            level: "warn".into(),
            ..config.log.clone()
        }
    };
    authbridge::telemetry::init(&log);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Serve => serve(config, clock).await,
        Command::Migrate => {
            let store = bootstrap::open_store(&config).await?;
            store.close().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys { command } => keys(config, clock, command).await,
        Command::Clients { command } => clients(config, clock, command).await,
        Command::Healthcheck => healthcheck(&config).await,
        Command::Openapi { .. } | Command::AdminToken { .. } => unreachable!("handled above"),
    }
}

async fn keys(config: Config, clock: Arc<dyn Clock>, command: KeysCommand) -> anyhow::Result<()> {
    let store = bootstrap::open_store(&config).await?;
    let vault = Arc::new(bootstrap::open_vault(&config)?);
    bootstrap::check_vault(&store, &vault, clock.now()).await?;
    let keys = bootstrap::load_signing_keys(&config, &store, vault, clock).await?;
    let (new_key, output) = match command {
        KeysCommand::List { output } => (None, output),
        KeysCommand::Rotate { output } => {
            let key = keys.rotate().await?;
            let summary = json!({"kid": key.kid, "activates_at": key.activates_at});
            store
                .record_change(AuditRecord::new(
                    SystemClock.now(),
                    actors::CLI,
                    "keys.rotate",
                    &summary,
                ))
                .await?;
            (Some(KeyOutput::from(key)), output)
        }
    };
    let listed: Vec<KeyOutput> = keys.summaries().into_iter().map(KeyOutput::from).collect();
    store.close().await?;
    if output.json {
        return print_json(&KeysAnswer {
            new_key,
            keys: listed,
        });
    }
    if let Some(key) = new_key {
        println!(
            "new key {} is published now and signs from {} (in {} s)",
            key.kid, key.activates_at, config.keys.activation_delay_secs
        );
    }
    for key in listed {
        println!(
            "{}\t{}\tcreated {}\tactivates {}",
            key.kid, key.state, key.created_at, key.activates_at
        );
    }
    Ok(())
}

async fn serve(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let app = Application::build(config, clock).await?;
    let issuer = app.issuer().clone();
    println!("authbridge is listening on http://{}", app.local_addr());
    println!("  issuer:   {issuer}");
    println!("  metadata: {}", format_metadata_url(&issuer));
    println!("  jwks:     {}", issuer.endpoint("/jwks.json"));
    println!("  api docs: {}", issuer.endpoint("/docs"));
    if let Some(metrics) = app.metrics_addr() {
        println!("  metrics:  http://{metrics}/metrics");
    }
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The operator's actor name in the audit trail for CLI changes.
const CLI_ACTOR: &str = "cli";

async fn clients(
    config: Config,
    clock: Arc<dyn Clock>,
    command: ClientsCommand,
) -> anyhow::Result<()> {
    use authbridge::clients::admin::NewClient;
    use authbridge::clients::registry::Registry;

    let store = bootstrap::open_store(&config).await?;
    let issuer = config.issuer(config.listen_addr()?)?;
    let registry = Registry::new(store.clone(), clock, issuer, config.registration.clone());
    match command {
        ClientsCommand::List { kind, output } => list_clients(&registry, kind, &output).await?,
        ClientsCommand::Create {
            name,
            redirect_uris,
            client_id,
            public,
            output,
        } => {
            let method = if public {
                "none"
            } else {
                "client_secret_basic"
            };
            let new = NewClient {
                client_id,
                client_name: name,
                redirect_uris,
                token_endpoint_auth_method: Some(method.into()),
            };
            create_client(&registry, new, &output).await?;
        }
        ClientsCommand::Delete { client_id, output } => {
            let client_id = authbridge::clients::admin::named_client_id(&client_id)?;
            registry.admin_delete(CLI_ACTOR, &client_id).await?;
            if output.json {
                print_json(&json!({ "deleted": client_id }))?;
            } else {
                println!("deleted {client_id}");
            }
        }
    }
    store.close().await?;
    Ok(())
}

/// `clients list`: every page of the admin listing, as JSON or one tab-separated line each.
async fn list_clients(
    registry: &authbridge::clients::registry::Registry,
    kind: Option<ClientKind>,
    output: &Output,
) -> anyhow::Result<()> {
    use authbridge::store::clients::ClientFilter;
    let mut listed = Vec::new();
    let mut cursor = None;
    loop {
        let filter = ClientFilter {
            kind,
            after_client_id: cursor,
            limit: 200,
            ..ClientFilter::default()
        };
        let (clients, next) = registry.admin_list(filter).await?;
        listed.extend(clients.into_iter().map(ClientOutput::from));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if output.json {
        print_json(&ClientsAnswer { clients: listed })?;
    } else {
        for c in listed {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                c.client_id,
                c.kind,
                c.client_name.unwrap_or_default(),
                c.token_endpoint_auth_method,
                if c.disabled { "disabled" } else { "enabled" },
                c.created_at
            );
        }
    }
    Ok(())
}

/// `clients create`: the new client's id, and its secret once.
async fn create_client(
    registry: &authbridge::clients::registry::Registry,
    new: authbridge::clients::admin::NewClient,
    output: &Output,
) -> anyhow::Result<()> {
    let (client, secret) = registry.admin_create(CLI_ACTOR, new).await?;
    if output.json {
        print_json(&CreatedClient {
            client: client.into(),
            client_secret: secret,
        })?;
    } else {
        println!("client_id: {}", client.client_id);
        if let Some(secret) = secret {
            println!("client_secret (shown once): {secret}");
        }
    }
    Ok(())
}

/// Prints one JSON document on standard output.
fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `keys list --json` and `keys rotate --json`.
#[derive(Serialize)]
struct KeysAnswer {
    /// The key `keys rotate` published.
    #[serde(skip_serializing_if = "Option::is_none")]
    new_key: Option<KeyOutput>,
    keys: Vec<KeyOutput>,
}

/// `clients list --json`.
#[derive(Serialize)]
struct ClientsAnswer {
    clients: Vec<ClientOutput>,
}

/// `clients create --json`: the admin API's answer, with times in RFC 3339.
#[derive(Serialize)]
struct CreatedClient {
    client: ClientOutput,
    /// Shown only here; absent for a public client.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

/// A signing key as the CLI shows it.
#[derive(Serialize)]
struct KeyOutput {
    kid: String,
    state: &'static str,
    created_at: Rfc3339,
    activates_at: Rfc3339,
}

impl From<KeySummary> for KeyOutput {
    fn from(key: KeySummary) -> Self {
        Self {
            kid: key.kid,
            state: key.state,
            created_at: Rfc3339(key.created_at),
            activates_at: Rfc3339(key.activates_at),
        }
    }
}

/// A client as the CLI shows it: the admin API's fields, with times in RFC 3339.
#[derive(Serialize)]
struct ClientOutput {
    client_id: authbridge::ids::ClientId,
    kind: String,
    client_name: Option<String>,
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: String,
    disabled: bool,
    created_at: Rfc3339,
    updated_at: Rfc3339,
    first_authorized_at: Option<Rfc3339>,
    last_used_at: Option<Rfc3339>,
    resource_server_for: Option<String>,
    /// The client's own access-token lifetime, in seconds, when an operator set one.
    access_token_ttl_secs: Option<i64>,
    metadata: serde_json::Value,
}

impl From<ClientView> for ClientOutput {
    fn from(client: ClientView) -> Self {
        Self {
            client_id: client.client_id,
            kind: client.kind,
            client_name: client.client_name,
            redirect_uris: client.redirect_uris,
            token_endpoint_auth_method: client.token_endpoint_auth_method,
            disabled: client.disabled,
            created_at: Rfc3339(client.created_at),
            updated_at: Rfc3339(client.updated_at),
            first_authorized_at: client.first_authorized_at.map(Rfc3339),
            last_used_at: client.last_used_at.map(Rfc3339),
            resource_server_for: client.resource_server_for,
            access_token_ttl_secs: client.access_token_ttl_secs,
            metadata: client.metadata,
        }
    }
}

/// Calls `/healthz` on the configured listen port over loopback.
async fn healthcheck(config: &Config) -> anyhow::Result<()> {
    let mut addr = config.listen_addr()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let prefix = config.issuer(addr)?.path().to_owned();
    let url = format!("http://{addr}{prefix}/healthz");
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()?
        .get(&url)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    Ok(())
}

fn format_metadata_url(issuer: &authbridge::oauth::issuer::Issuer) -> String {
    let origin_len = issuer.as_str().len() - issuer.path().len();
    format!(
        "{}{}",
        &issuer.as_str()[..origin_len],
        issuer.metadata_path()
    )
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.ok();
    tracing::info!("shutting down: finishing in-flight requests");
}
