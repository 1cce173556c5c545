//! The server under load: the release binary started as its own process on a loopback port,
//! in development mode (the dev upstream), on SQLite in its data directory or on the
//! PostgreSQL database it is given. It can be killed with SIGKILL and started again on the
//! same port, data directory and database.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::flows::Target;

/// The admin API token the server accepts (only its hash is in the configuration).
pub const ADMIN_TOKEN: &str = "adm_load_driver_token_not_a_secret";

/// What the server is set up with beyond its defaults.
#[derive(Default, Clone)]
pub struct Setup {
    /// A PostgreSQL database (it must exist and be empty); default: SQLite in the data
    /// directory.
    pub database_url: Option<String>,
    /// The base URL of a fake OwnerRez ([`crate::fakes`]); default: the dev upstream, served
    /// by the server itself.
    pub ownerrez: Option<String>,
    /// An MCP backend: the server then also has the gateway resource `{base}/mcp` in front
    /// of it, next to the default resource.
    pub backend: Option<String>,
}

/// The 32-byte encryption key the OwnerRez runs need (in base64); not a secret.
const ENCRYPTION_KEY: &str = "YmVuY2gtZW5jcnlwdGlvbi1rZXktMzItYnl0ZXMhISE=";

pub struct ServerProcess {
    binary: PathBuf,
    data_dir: PathBuf,
    database_url: Option<String>,
    /// Whether the upstream is a fake OwnerRez, which needs secrets from the environment.
    ownerrez: bool,
    port: u16,
    child: Option<Child>,
}

impl ServerProcess {
    /// A server of `binary` on `data_dir` (created if missing), on `database_url` or SQLite
    /// in `data_dir`, with the dev upstream, not started yet.
    pub fn new(binary: &Path, data_dir: &Path, database_url: Option<String>) -> Self {
        let setup = Setup {
            database_url,
            ..Setup::default()
        };
        Self::with_setup(binary, data_dir, &setup)
    }

    /// A server of `binary` on `data_dir` (created if missing) set up as `setup` says, not
    /// started yet.
    pub fn with_setup(binary: &Path, data_dir: &Path, setup: &Setup) -> Self {
        std::fs::create_dir_all(data_dir).expect("the data directory can be created");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        std::fs::write(data_dir.join("load.toml"), configuration(port, setup))
            .expect("the configuration is written");
        Self {
            binary: binary.to_owned(),
            data_dir: data_dir.to_owned(),
            database_url: setup.database_url.clone(),
            ownerrez: setup.ownerrez.is_some(),
            port,
            child: None,
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn target(&self) -> Target {
        Target::new(&self.base())
    }

    /// The server's log (stderr of every start, appended).
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("server.log")
    }

    /// Starts the server and waits until `/readyz` answers; returns how long that took.
    pub async fn start(&mut self) -> Duration {
        assert!(self.child.is_none(), "the server is already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("the log file opens");
        let mut command = Command::new(&self.binary);
        command
            .arg("serve")
            .env("AUTHBRIDGE_CONFIG", self.data_dir.join("load.toml"))
            .env(
                "AUTHBRIDGE_SERVER__LISTEN",
                format!("127.0.0.1:{}", self.port),
            )
            .env("AUTHBRIDGE_DATA_DIR", &self.data_dir)
            // Warnings, and the refresh grant's info lines: a token presented again within
            // the grace window is logged there, which the kill -9 run counts.
            .env(
                "AUTHBRIDGE_LOG__LEVEL",
                "warn,authbridge::grants::refresh=info",
            )
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(url) = &self.database_url {
            command.env("AUTHBRIDGE_DATABASE__URL", url);
        }
        if self.ownerrez {
            // Secrets come only from the environment; these two protect nothing.
            command
                .env("AUTHBRIDGE_ENCRYPTION__KEY", ENCRYPTION_KEY)
                .env("AUTHBRIDGE_UPSTREAM__OWNERREZ__CLIENT_SECRET", "s_bench");
        }
        let started = Instant::now();
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let target = self.target();
        while !target.is_ready().await {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "the server exited at start ({status}); see {}",
                    self.log_path().display()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server did not become ready in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        started.elapsed()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the process ends at once, mid-request, with nothing flushed or shut down.
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL is delivered");
            child.wait().ok();
        }
    }

    /// SIGTERM and wait: a graceful stop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .ok();
            child.wait().ok();
        }
    }

    /// The server's resident memory in KiB (VmRSS from /proc).
    pub fn rss_kib(&self) -> Option<u64> {
        self.proc_status_kib("VmRSS:")
    }

    /// The most resident memory the server has had since it started, in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.proc_status_kib("VmHWM:")
    }

    fn proc_status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }

    /// The server's CPU time so far (user + system, from /proc/<pid>/stat).
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10)) // USER_HZ is 100 on Linux
    }

    /// Lines of the server's log at ERROR level so far.
    pub fn error_log_lines(&self) -> usize {
        self.log_lines_containing("ERROR")
    }

    /// Lines of the server's log so far that contain `text`.
    pub fn log_lines_containing(&self, text: &str) -> usize {
        std::fs::read_to_string(self.log_path())
            .map(|log| log.lines().filter(|l| l.contains(text)).count())
            .unwrap_or(0)
    }
}

/// The configuration file for one load generator on one address: per-source limits and the
/// dynamic client cap are lifted (a run registers more than the default 10,000), an admin
/// token is named, and the upstream and resources are as `setup` says; every other setting
/// is the default.
fn configuration(port: u16, setup: &Setup) -> String {
    let mut config = format!(
        "[registration]\nper_source_limit = 1000000\nmax_dynamic_clients = 1000000000\n\n\
         [login]\nper_source_limit = 1000000\n\n\
         [admin]\ntokens = [{{ name = \"load\", sha256 = \"{}\" }}]\n\n",
        authbridge::tokens::opaque::hash(ADMIN_TOKEN)
    );
    if let Some(base) = &setup.ownerrez {
        config.push_str(&format!(
            "[upstream]\nprovider = \"ownerrez\"\n\n\
             [upstream.ownerrez]\nclient_id = \"c_bench\"\n\
             authorize_url = \"{base}/oauth/authorize\"\n\
             token_url = \"{base}/oauth/access_token\"\napi_base_url = \"{base}/v2\"\n\n"
        ));
    }
    if let Some(backend) = &setup.backend {
        config.push_str(&format!(
            "[[resources]]\nuri = \"{}\"\nname = \"Local MCP server\"\n\
             scopes = [\"mcp\"]\ndefault_scopes = [\"mcp\"]\n\n\
             [[resources]]\nuri = \"http://127.0.0.1:{port}/mcp\"\nname = \"Gateway\"\n\
             scopes = [\"mcp\"]\ndefault_scopes = [\"mcp\"]\n\
             proxy = {{ upstream_url = \"{backend}\" }}\n",
            crate::flows::RESOURCE
        ));
    }
    config
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The machine's load averages (1, 5, 15 min), as /proc/loadavg says.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
