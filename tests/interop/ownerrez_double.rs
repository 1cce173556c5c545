//! The OwnerRez test double of the Rust tests (tests/api/ownerrez_double.rs) as a program, for
//! the interop suite: the Rust tests and the interop clients meet the same double, so they
//! cannot see two OwnerRezes that disagree.
//!
//!   cargo build --example ownerrez-double
//!   ownerrez-double --port-file FILE --client-id c_… --client-secret s_… [--redirect-uri URL]…
//!
//! Listens on 127.0.0.1 at a free port and writes the port to FILE once it listens (through
//! FILE.tmp, renamed, so that a reader never sees half a number). `--redirect-uri` names the
//! app's redirect URLs (repeatable; any is accepted when there is none). Serves until it is
//! killed (SIGTERM) or interrupted.

// The program serves; the test-only parts of the double (failures, variants, the request log)
// are driven by the Rust tests.
#[allow(dead_code)]
#[path = "../api/ownerrez_double.rs"]
mod ownerrez_double;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use authbridge::clock::SystemClock;
use clap::Parser;

use ownerrez_double::{App, OwnerRezDouble};

#[derive(Parser)]
#[command(about = "The OwnerRez test double of authbridge's tests")]
struct Args {
    /// Where to write the port once the double listens.
    #[arg(long)]
    port_file: PathBuf,
    /// The OAuth app's client id.
    #[arg(long)]
    client_id: String,
    /// The OAuth app's client secret.
    #[arg(long)]
    client_secret: String,
    /// One of the app's redirect URLs (repeatable).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let app = App {
        client_id: args.client_id,
        client_secret: args.client_secret,
    };
    let double = OwnerRezDouble::start_for(app, Arc::new(SystemClock)).await;
    for uri in &args.redirect_uris {
        double.register_redirect_uri(uri);
    }
    let partial = args.port_file.with_extension("tmp");
    std::fs::write(&partial, double.port().to_string())
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &args.port_file)
        .with_context(|| format!("renaming to {}", args.port_file.display()))?;
    eprintln!("ownerrez-double: listening on {}", double.base_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
