//! The `authbridge` command: a thin shell over the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use authbridge::app::Application;
use authbridge::bootstrap;
use authbridge::clock::{Clock, SystemClock};
use authbridge::config::Config;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "authbridge",
    version,
    about = "OAuth 2.1 authorization server for MCP hosts"
)]
struct Cli {
    /// TOML configuration file (keys and defaults: config/default.toml).
    #[arg(long, global = true, env = "AUTHBRIDGE_CONFIG")]
    config: Option<PathBuf>,
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

#[derive(Subcommand)]
enum ClientsCommand {
    /// List clients (tab-separated: id, kind, name, auth method, disabled, created).
    List {
        /// Only `dynamic` or `admin` clients.
        #[arg(long)]
        kind: Option<String>,
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
    },
    /// Delete a client; it is unusable at once.
    Delete { client_id: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List the published signing keys and their states.
    List,
    /// Publish a new signing key; it starts signing after keys.activation_delay_secs.
    Rotate,
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
    if let Command::AdminToken { name } = &cli.command {
        let token = authbridge::tokens::opaque::generate("adm");
        let hash = authbridge::tokens::opaque::hash(&token);
        println!("token (give it to {name}; it is not stored anywhere): {token}");
        println!("add to the configuration's [admin] section:");
        println!("tokens = [{{ name = \"{name}\", sha256 = \"{hash}\" }}]");
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
    let config = Config::load(cli.config.as_deref())?;
    authbridge::telemetry::init(&config.log);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Serve => serve(config, clock).await,
        Command::Migrate => {
            let store = bootstrap::open_store(&config).await?;
            store.close().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys { command } => {
            let store = bootstrap::open_store(&config).await?;
            let vault = Arc::new(bootstrap::open_vault(&config)?);
            bootstrap::check_vault(&store, &vault, clock.now()).await?;
            let keys = bootstrap::load_signing_keys(&config, &store, vault, clock).await?;
            match command {
                KeysCommand::List => {}
                KeysCommand::Rotate => {
                    let key = keys.rotate().await?;
                    println!(
                        "new key {} is published now and signs from Unix time {} (in {} s)",
                        key.kid, key.activates_at, config.keys.activation_delay_secs
                    );
                }
            }
            for key in keys.summaries() {
                println!(
                    "{}\t{}\tcreated {}\tactivates {}",
                    key.kid, key.state, key.created_at, key.activates_at
                );
            }
            store.close().await?;
            Ok(())
        }
        Command::Clients { command } => clients(config, clock, command).await,
        Command::Healthcheck => healthcheck(&config).await,
        Command::Openapi { .. } | Command::AdminToken { .. } => unreachable!("handled above"),
    }
}

async fn serve(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let app = Application::build(config, clock).await?;
    let issuer = app.issuer().clone();
    println!("authbridge is listening on http://{}", app.local_addr());
    println!("  issuer:   {issuer}");
    println!("  metadata: {}", format_metadata_url(&issuer));
    println!("  jwks:     {}", issuer.endpoint("/jwks.json"));
    println!("  api docs: {}", issuer.endpoint("/docs"));
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn clients(
    config: Config,
    clock: Arc<dyn Clock>,
    command: ClientsCommand,
) -> anyhow::Result<()> {
    use authbridge::clients::admin::NewClient;
    use authbridge::clients::registry::Registry;
    use authbridge::store::clients::ClientFilter;

    let store = bootstrap::open_store(&config).await?;
    let issuer = config.issuer(config.listen_addr()?)?;
    let registry = Registry::new(store.clone(), clock, issuer, config.registration.clone());
    const ACTOR: &str = "cli";
    match command {
        ClientsCommand::List { kind } => {
            let mut cursor = None;
            loop {
                let filter = ClientFilter {
                    kind: kind.clone(),
                    after_client_id: cursor,
                    limit: 200,
                    ..ClientFilter::default()
                };
                let (clients, next) = registry.admin_list(filter).await?;
                for c in clients {
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
                match next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        ClientsCommand::Create {
            name,
            redirect_uris,
            client_id,
            public,
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
            let (client, secret) = registry.admin_create(ACTOR, new).await?;
            println!("client_id: {}", client.client_id);
            if let Some(secret) = secret {
                println!("client_secret (shown once): {secret}");
            }
        }
        ClientsCommand::Delete { client_id } => {
            registry.admin_delete(ACTOR, &client_id).await?;
            println!("deleted {client_id}");
        }
    }
    store.close().await?;
    Ok(())
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
