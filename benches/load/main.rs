//! The load driver: real HTTP against the release binary, started as its own process with a
//! fresh database (SQLite in a temporary directory, or the PostgreSQL database given) and the
//! dev upstream. Documented in benches/README.md.
//!
//!     cargo bench --bench load -- [--database-url URL] crash [--kills 5] ...
//!     cargo bench --bench load -- soak [--duration-secs 600] [--rate 100] ...
//!     cargo bench --bench load -- suite [--scenarios login,refresh] [--concurrency 16,64] ...
//!     cargo bench --bench load -- scenario refresh [--concurrency 16] [--duration 15]
//!
//! Exits with status 1 when a check fails: a lost refresh token or an error after kill -9, a
//! 5xx in the soak or in the suite.

mod crash;
mod fakes;
mod flows;
mod preload;
mod reference;
mod rng;
mod scenario;
mod server;
mod soak;
mod stats;
mod suite;
mod workers;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::rng::Rng;
use crate::server::ServerProcess;

#[derive(Parser)]
#[command(about = "Load, kill -9 and soak runs against the authbridge release binary")]
struct Cli {
    /// The server binary (default: the one cargo built with this driver).
    #[arg(long, global = true, default_value = env!("CARGO_BIN_EXE_authbridge"))]
    binary: PathBuf,
    /// A PostgreSQL database for the server (it must exist and be empty); default: SQLite in
    /// the data directory.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// The server's data directory (kept afterwards, with the server's log); default: a
    /// temporary one.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Logins and refreshes, SIGKILL mid-load, restart on the same database, and every held
    /// refresh token presented again; repeated `kills` times.
    Crash {
        #[arg(long, default_value_t = 5)]
        kills: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Shortest load before a kill, in milliseconds.
        #[arg(long, default_value_t = 1500)]
        min_load_ms: u64,
        /// Longest load before a kill, in milliseconds.
        #[arg(long, default_value_t = 5000)]
        max_load_ms: u64,
        /// Share of new logins among the operations, in percent (the rest are refreshes).
        #[arg(long, default_value_t = 20)]
        login_percent: u32,
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Mixed load at a steady rate, counting 5xx and sampling the server's RSS.
    Soak {
        #[arg(long, default_value_t = 600)]
        duration_secs: u64,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Operations per second over all workers.
        #[arg(long, default_value_t = 100)]
        rate: u32,
        #[arg(long, default_value_t = 30)]
        sample_secs: u64,
        #[arg(long)]
        seed: Option<u64>,
    },
    /// The benchmark suite: every scenario (or those named) at every concurrency, each on a
    /// freshly started server, with throughput, latency, server CPU and memory.
    Suite {
        /// Comma-separated scenarios; default: all.
        #[arg(long, value_delimiter = ',',
              value_parser = clap::builder::PossibleValuesParser::new(scenario::SCENARIOS))]
        scenarios: Vec<String>,
        /// Comma-separated numbers of requests in flight.
        #[arg(long, value_delimiter = ',', default_values_t = [16, 64])]
        concurrency: Vec<usize>,
        /// Measured seconds per scenario and concurrency.
        #[arg(long, default_value_t = 15)]
        duration: u64,
        /// Fill the database first: `small` (the default size when the flag is given) or
        /// `full` (1,000,000 clients, 1,000,000 grants, 10,000,000 rotated refresh tokens).
        #[arg(long, num_args = 0..=1, default_missing_value = "small",
              value_parser = clap::builder::PossibleValuesParser::new(["small", "full"]))]
        preload: Option<String>,
    },
    /// One scenario, for throughput and latency (the suite with one scenario).
    Scenario {
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(scenario::SCENARIOS))]
        name: String,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 15)]
        duration: u64,
    },
}

#[tokio::main]
async fn main() {
    // `cargo bench` adds --bench to the arguments.
    let cli = Cli::parse_from(std::env::args().filter(|a| a != "--bench"));
    let temporary = tempfile::tempdir().expect("a temporary directory");
    let data_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    let engine = match &cli.database_url {
        Some(url) if url.starts_with("postgres") => "PostgreSQL",
        Some(_) => "the given database",
        None => "SQLite",
    };
    let new_server = || ServerProcess::new(&cli.binary, &data_dir, cli.database_url.clone());
    let passed = match cli.command {
        Command::Crash {
            kills,
            concurrency,
            min_load_ms,
            max_load_ms,
            login_percent,
            seed,
        } => {
            let options = crash::CrashOptions {
                kills,
                concurrency: concurrency.max(1),
                load_ms: (min_load_ms, max_load_ms.max(min_load_ms)),
                login_percent,
                seed: seed.unwrap_or_else(Rng::clock_seed),
            };
            crash::run(&mut new_server(), engine, &options).await
        }
        Command::Soak {
            duration_secs,
            concurrency,
            rate,
            sample_secs,
            seed,
        } => {
            let options = soak::SoakOptions {
                duration: Duration::from_secs(duration_secs),
                concurrency: concurrency.max(1),
                rate: rate.max(1),
                sample_every: Duration::from_secs(sample_secs.max(1)),
                seed: seed.unwrap_or_else(Rng::clock_seed),
            };
            soak::run(&mut new_server(), engine, &options).await
        }
        Command::Suite {
            scenarios,
            concurrency,
            duration,
            preload,
        } => {
            let options = suite::SuiteOptions {
                scenarios: if scenarios.is_empty() {
                    scenario::SCENARIOS.map(str::to_owned).to_vec()
                } else {
                    scenarios
                },
                concurrency: concurrency.into_iter().map(|c| c.max(1)).collect(),
                duration: Duration::from_secs(duration.max(1)),
                preload: preload.as_deref().map(preload::Preload::named),
            };
            suite::run(
                &cli.binary,
                &data_dir,
                cli.database_url.clone(),
                engine,
                &options,
            )
            .await
        }
        Command::Scenario {
            name,
            concurrency,
            duration,
        } => {
            let options = suite::SuiteOptions {
                scenarios: vec![name],
                concurrency: vec![concurrency.max(1)],
                duration: Duration::from_secs(duration.max(1)),
                preload: None,
            };
            suite::run(
                &cli.binary,
                &data_dir,
                cli.database_url.clone(),
                engine,
                &options,
            )
            .await
        }
    };
    drop(temporary);
    if !passed {
        eprintln!("FAILED");
        std::process::exit(1);
    }
}
