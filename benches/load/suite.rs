//! The benchmark suite (`bash benches/run.sh`): every scenario at every concurrency asked for,
//! each on a freshly started server process on one database (filled first with `--preload`),
//! with a fake OwnerRez and an MCP backend served from this process. Prints a line per run
//! as it ends and a Markdown table at the end: operations/s, p50/p99, failures, server CPU
//! per operation (and in RS256 signatures), idle and peak RSS, the load average.

use std::time::Duration;

use crate::fakes;
use crate::preload::{self, Preload};
use crate::scenario::{self, Outcome};
use crate::server::{ServerProcess, Setup, load_average};

pub struct SuiteOptions {
    pub scenarios: Vec<String>,
    pub concurrency: Vec<usize>,
    pub duration: Duration,
    pub preload: Option<Preload>,
}

/// One scenario at one concurrency.
struct Row {
    scenario: String,
    concurrency: usize,
    outcome: Outcome,
    idle_kib: u64,
    peak_kib: u64,
    load: String,
}

impl Row {
    fn ops_per_sec(&self) -> f64 {
        let ok = self.outcome.stats.summary(self.outcome.op).ok;
        ok as f64 / self.outcome.measured.elapsed.as_secs_f64().max(1e-9)
    }

    fn cpu_us_per_op(&self) -> f64 {
        let summary = self.outcome.stats.summary(self.outcome.op);
        let ops = (summary.ok + summary.failed).max(1);
        self.outcome.measured.cpu.as_secs_f64() * 1e6 / ops as f64
    }

    /// The Markdown table row.
    fn markdown(&self, rs256_us: f64) -> String {
        let s = self.outcome.stats.summary(self.outcome.op);
        let cpu = self.cpu_us_per_op();
        format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {:.0} | {:.2} | {:.1} | {:.1} | {} | {} |",
            self.scenario,
            self.concurrency,
            self.ops_per_sec(),
            s.p50_ms,
            s.p99_ms,
            s.failed,
            cpu,
            cpu / rs256_us,
            self.idle_kib as f64 / 1024.0,
            self.peak_kib as f64 / 1024.0,
            self.load,
            self.outcome.note,
        )
    }
}

/// Runs the suite; false if any request failed with a server error.
pub async fn run(
    binary: &std::path::Path,
    data_dir: &std::path::Path,
    database_url: Option<String>,
    engine: &str,
    options: &SuiteOptions,
) -> bool {
    let rs256_us = crate::reference::rs256_micros();
    println!(
        "RS256 reference: {rs256_us:.0} µs of CPU per signature = {:.0} signatures/s on one core",
        1e6 / rs256_us
    );
    let backend = fakes::start_backend();
    let setup = Setup {
        database_url: database_url.clone(),
        ownerrez: Some(fakes::start_ownerrez()),
        backend: Some(backend.clone()),
    };
    let mut server = ServerProcess::with_setup(binary, data_dir, &setup);
    if let Some(size) = &options.preload {
        // The server creates the schema and its keys; the rows go in by SQL, not over HTTP.
        server.start().await;
        server.stop();
        let url = database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("authbridge.db").display()));
        preload::fill(&url, size).await;
    }
    let mut rows = Vec::new();
    for name in &options.scenarios {
        for &concurrency in &options.concurrency {
            let row = run_one(&mut server, name, concurrency, options, &backend).await;
            println!(
                "{name} c={concurrency}: {:.0}/s, CPU {:.0} µs/op, idle {:.1} MiB, peak {:.1} MiB, load {}",
                row.ops_per_sec(),
                row.cpu_us_per_op(),
                row.idle_kib as f64 / 1024.0,
                row.peak_kib as f64 / 1024.0,
                row.load
            );
            print!("{}", row.outcome.stats.report(row.outcome.measured.elapsed));
            for sample in row.outcome.stats.server_error_samples() {
                println!("    {sample}");
            }
            rows.push(row);
        }
    }
    print_table(engine, options, rs256_us, &rows);
    let errors = server.error_log_lines();
    if errors > 0 {
        println!(
            "{errors} ERROR lines in the server's log: {}",
            server.log_path().display()
        );
    }
    rows.iter()
        .all(|row| row.outcome.stats.server_errors() == 0)
}

async fn run_one(
    server: &mut ServerProcess,
    name: &str,
    concurrency: usize,
    options: &SuiteOptions,
    backend: &str,
) -> Row {
    server.start().await;
    // What the process holds before its first request.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle_kib = server.rss_kib().unwrap_or_default();
    let outcome = scenario::run(server, name, concurrency, options.duration, Some(backend)).await;
    let peak_kib = server.peak_rss_kib().unwrap_or_default();
    server.stop();
    Row {
        scenario: name.to_owned(),
        concurrency,
        outcome,
        idle_kib,
        peak_kib,
        load: load_average(),
    }
}

fn print_table(engine: &str, options: &SuiteOptions, rs256_us: f64, rows: &[Row]) {
    let preload = options
        .preload
        .as_ref()
        .map_or("empty database".to_owned(), Preload::describe);
    println!(
        "\n{engine}, {preload}, {} s per run; RS256: {rs256_us:.0} µs per signature\n",
        options.duration.as_secs()
    );
    println!(
        "| scenario | in flight | ops/s | p50 ms | p99 ms | failed | CPU µs/op | × RS256 | idle MiB | peak MiB | load avg | |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |");
    for row in rows {
        println!("{}", row.markdown(rs256_us));
    }
}
